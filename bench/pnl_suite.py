"""PsyNeuLink 0.21's own tests against mdfx. Not part of CI: it downloads the sdist.

    .venv/bin/python -m bench.pnl_suite                       # mdfx, through bench/pnl_shim
    .venv/bin/python -m bench.pnl_suite --reference /tmp/pnlvenv/bin/python   # + real PsyNeuLink's column

Fetches ``psyneulink==0.21.0.0``'s sdist (``pip download --no-binary :all:``) into
``--cache`` (default ~/.cache/mdfx/pnl-suite), extracts the test files below,
puts our ``bench/pnl_shim/conftest.py`` at their root (the sdist ships none) and
runs them with pytest, ``import psyneulink`` resolving to mdfx through
``bench/pnl_shim/psyneulink``. ``autodiff_mode`` runs over Python, PyTorch and
LLVMRun. The reference run (real PsyNeuLink, in its own venv) is cached in
``--cache`` and reused. Prints, and writes to ``--cache``/report.md, a table per
file and mode and each failure's first cause, grouped.

Two counts over the tests PsyNeuLink passes in its own modes, per file, for the core
files and the ones beyond the core: *strict* (the test as written) and
*wording-relaxed* (its comparisons of PsyNeuLink's sentences loosened to the exception
or warning class by the conftest; see bench/pnl_shim/conftest.py). Each loosened
comparison is written to ``--cache``/substitutions.md as (test, PsyNeuLink's sentence,
mdfx's message); a relaxed pass listed in ``WRONG_MISTAKE`` (read from that log: mdfx's
message is about another mistake) does not count.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIM = ROOT / "bench" / "pnl_shim"
SDIST = "psyneulink-0.21.0.0"
CORE = ["composition/test_autodiffcomposition.py", "composition/test_learning.py",
        "functions/test_loss.py", "api/test_api.py"]
#: beyond the core: whole files, and three files of which only the tests about learning
#: count (their id or source matches SELECT's pattern)
BEYOND = ["composition/test_emcomposition.py", "composition/test_em_proj.py",
          "composition/test_grucomposition.py", "composition/test_show_graph.py",
          "functions/test_transfer_normalize.py", "composition/test_composition.py",
          "functions/test_transfer.py", "mdf/test_mdf.py"]
SELECT = {"composition/test_composition.py": r"\.learn\(|AutodiffComposition|learning_pathway|BackPropagation",
          "functions/test_transfer.py": r"pytorch",
          "mdf/test_mdf.py": r"backprop"}
FILES = CORE + BEYOND
#: relaxed passes whose mdfx message, read in substitutions.md, is about a different
#: mistake than PsyNeuLink's sentence: not passes
WRONG_MISTAKE: dict[str, str] = {}
#: PsyNeuLink runs autodiff_mode over these; "Python" is mdfx's extra column
OWN_MODES = ("PyTorch", "LLVMRun")
MODE_IDS = ("Python", "PyTorch", "LLVMRun", "LLVM")


def fetch(cache: Path) -> Path:
    """The extracted test tree with our conftest at its root."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"{SDIST}.tar.gz"
    if not tarball.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "psyneulink==0.21.0.0", "--no-deps",
                        "--no-binary", ":all:", "-d", str(cache)], check=True)
    work = cache / "suite"
    shutil.rmtree(work, ignore_errors=True)
    folders = {f"{SDIST}/tests/{f}".rpartition("/")[0] for f in FILES}
    with tarfile.open(tarball) as tar:
        # the test files and the files beside them (test_mdf reads its model scripts)
        for member in tar.getmembers():
            if member.isfile() and member.name.rpartition("/")[0] in folders:
                target = work / "tests" / member.name.split("/tests/", 1)[1]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    shutil.copy(SHIM / "conftest.py", work / "conftest.py")
    return work


def run_suite(python: str, work: Path, out: Path, shim: bool, extra: list[str], resume: bool = False,
              files: list[str] = FILES) -> dict[str, dict]:
    env = dict(os.environ, PNL_SUITE_OUT=str(out), OPENBLAS_NUM_THREADS="1",
               PNL_SUITE_SELECT=json.dumps(SELECT), PNL_SUITE_RELAX="1" if shim else "0")
    partial = Path(str(out) + ".partial.jsonl")
    earlier: dict[str, dict] = {}
    if resume:  # run only what the stopped run(s) did not reach: the merged JSON and the last lines
        earlier = json.loads(out.read_text()) if out.exists() else {}
        if partial.exists():
            earlier.update(_read_lines(partial))
        done = partial.with_name(partial.name + ".resumed")
        done.write_text("".join(json.dumps({"nodeid": k, **v}) + "\n" for k, v in earlier.items()))
        env["PNL_SUITE_RESUME"] = str(done)
    partial.unlink(missing_ok=True)
    out.unlink(missing_ok=True)  # a stopped run must not leave the last run's outcomes behind
    if not shim:  # PsyNeuLink's own modes only: its Python-mode learning takes hours here
        env.setdefault("PNL_SUITE_AUTODIFF_MODES", ",".join(OWN_MODES))
    if shim:
        env["PYTHONPATH"] = os.pathsep.join([str(SHIM), str(ROOT), env.get("PYTHONPATH", "")])
    # a file that fails to import is one error in the table, not the end of the run
    cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(work), "-rN",
           "--continue-on-collection-errors", *[str(work / "tests" / f) for f in files], *extra]
    subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, check=False)
    results = {**earlier, **(load_results(out) or {})}
    if earlier:
        out.write_text(json.dumps(results, indent=0))
    return results


def load_results(out: Path) -> dict[str, dict] | None:
    """A run's outcomes: its JSON, or the lines of a run stopped before the end."""
    if out.exists():
        return json.loads(out.read_text())
    partial = Path(str(out) + ".partial.jsonl")
    return _read_lines(partial) if partial.exists() else None


def _read_lines(partial: Path) -> dict[str, dict]:
    """The outcomes the conftest wrote test by test: one JSON object per line, with its nodeid."""
    rows = [json.loads(line) for line in partial.read_text().splitlines() if line.strip()]
    return {r.pop("nodeid"): r for r in rows}


def mode_of(nodeid: str) -> str:
    """The test's ``autodiff_mode`` (Python, PyTorch, LLVMRun), ``func <mode>`` for
    ``func_mode``/``mech_mode`` (PsyNeuLink's own modes for functions), or "-"."""
    params = nodeid.partition("[")[2].rstrip("]").split("-")
    mode = next((p for p in params if p in MODE_IDS), "-")
    return f"func {mode}" if mode != "-" and "functions/" in nodeid else mode


def file_of(nodeid: str) -> str:
    return nodeid.split("::")[0].split("tests/")[-1]


def cause_group(cause: str) -> str:
    """Failures with the same first cause up to numbers and array contents."""
    cause = re.sub(r"\[[^\]]*\]", "[...]", cause)
    cause = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", cause)
    cause = re.sub(r"at 0x[0-9a-f]+", "", cause)
    return cause[:160]


#: first causes that are PsyNeuLink's own error/warning sentences compared word for word
#: (mdfx raises the same class in its own words: the project copies no PsyNeuLink text)
TEXT_CAUSES = (r"^AssertionError: Regex pattern did not match", r"^Failed: Regex pattern did not match",
               r"^AssertionError: assert ['\"].*['\"] in ['\"]",
               r"^AttributeError: '\w*Error' object has no attribute 'error_value'")
#: first causes outside issue 11's scope (GRU/EM compositions, RL/TD/Hebbian learning,
#: show_graph, stateful integrators)
OUT_OF_SCOPE = ("GRUComposition", "EMComposition", "'DDM'", "Reinforcement", "td_learning",
                "reinforcement_learning", "RecurrentTransferMechanism", "PredictionErrorDelta", "show_graph",
                "integrator_mode")


def kind_of(cause: str) -> str:
    """Why a test PsyNeuLink passes fails against mdfx: "text", "out of scope" or "behaviour"."""
    if any(re.search(p, cause) for p in TEXT_CAUSES):
        return "text"
    if any(k in cause for k in OUT_OF_SCOPE):
        return "out of scope"
    return "behaviour"


def verdict(rec: dict, nodeid: str = "") -> str:
    """"strict" (passed as written), "relaxed" (passed once PsyNeuLink's sentences were
    loosened to their class), "wrong mistake" (relaxed, but mdfx's message is about another
    mistake: WRONG_MISTAKE) or "no"."""
    if rec.get("outcome") != "passed":
        return "no"
    if not rec.get("loosened"):
        return "strict"
    return "wrong mistake" if nodeid in WRONG_MISTAKE else "relaxed"


def counts(mdfx: dict[str, dict], ref: dict[str, dict] | None) -> list[tuple[str, str, int, int, int, int, int]]:
    """(group, file, PsyNeuLink's passes, mdfx strict, mdfx relaxed, tests the reference did not
    reach, mdfx relaxed passes among those) per file, in PsyNeuLink's own modes. Without a
    reference run every test counts as PsyNeuLink's pass."""
    rows = []
    for group, files in (("core", CORE), ("beyond core", BEYOND)):
        for f in files:
            ids = [k for k in mdfx if file_of(k) == f and mode_of(k) != "Python"]
            unmeasured = [k for k in ids if ref is not None and k not in ref]
            if ref is not None:
                ids = [k for k in ids if ref.get(k, {}).get("outcome") == "passed"]
            v = Counter(verdict(mdfx[k], k) for k in ids)
            u = Counter(verdict(mdfx[k], k) for k in unmeasured)
            rows.append((group, f, len(ids), v["strict"], v["strict"] + v["relaxed"], len(unmeasured),
                         u["strict"] + u["relaxed"]))
    return rows


def counts_table(mdfx: dict[str, dict], ref: dict[str, dict] | None) -> str:
    base = "PsyNeuLink passes" if ref is not None else "tests (no reference run)"
    lines = [f"| group | file | {base} | mdfx strict | mdfx wording-relaxed | not reached by the reference "
             "(mdfx relaxed passes there) |", "|---|---|---|---|---|---|"]
    totals: Counter = Counter()
    for group, f, *row in counts(mdfx, ref):
        n, strict, relaxed, unmeasured, there = row
        lines.append(f"| {group} | {f} | {n} | {strict} | {relaxed} | {unmeasured} ({there}) |")
        for i, value in enumerate(row):
            totals[(group, i)] += value
    for group in ("core", "beyond core"):
        t = [totals[(group, i)] for i in range(5)]
        lines.append(f"| **{group}** | all | {t[0]} | {t[1]} | {t[2]} | {t[3]} ({t[4]}) |")
    return "\n".join(lines)


def substitutions(mdfx: dict[str, dict]) -> str:
    """The log of loosened comparisons: one row per (test, PsyNeuLink's sentence, mdfx's message)."""
    def cell(text: str) -> str:
        return text.replace("|", "/").replace("\n", " ")[:300]
    lines = ["| test | outcome | PsyNeuLink's sentence | mdfx's message |", "|---|---|---|---|"]
    for k, rec in sorted(mdfx.items()):
        for theirs, ours in rec.get("loosened", []):
            lines.append(f"| {cell(k)} | {verdict(rec, k)} | {cell(theirs)} | {cell(ours)} |")
    return "\n".join(lines)


def report(mdfx: dict[str, dict], ref: dict[str, dict] | None) -> str:
    lines = ["| file | mode | tests | PsyNeuLink passes | mdfx passes | of those PsyNeuLink passes | failed | errors | skipped |",
             "|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(file_of(k), mode_of(k)) for k in mdfx})
    totals: Counter = Counter()
    for f, m in keys:
        ids = [k for k in mdfx if file_of(k) == f and mode_of(k) == m]
        c = Counter(mdfx[k]["outcome"] for k in ids)
        ref_pass = [k for k in ids if ref and ref.get(k, {}).get("outcome") == "passed"]
        both = sum(mdfx[k]["outcome"] == "passed" for k in ref_pass)
        lines.append(f"| {f} | {m} | {len(ids)} | {len(ref_pass) if ref else '?'} | {c['passed']} | "
                     f"{both if ref else '?'} | {c['failed']} | {c['error']} | {c['skipped']} |")
        group = "Python" if m == "Python" else "own"
        totals[(group, "ref")] += len(ref_pass)
        totals[(group, "both")] += both
        totals[(group, "mdfx")] += c["passed"]
        totals[(group, "n")] += len(ids)
    lines += ["", counts_table(mdfx, ref), ""]
    for group, label in (("own", "PsyNeuLink's own modes (PyTorch, LLVMRun, func Python/LLVM, tests without a mode)"),
                         ("Python", "autodiff_mode=Python")):
        theirs = (f"PsyNeuLink passes {totals[(group, 'ref')]}; " if ref else
                  "PsyNeuLink's column not run (--reference); ")
        both = f", {totals[(group, 'both')]} of PsyNeuLink's passes" if ref else ""
        lines.append(f"{label}: {totals[(group, 'n')]} tests; {theirs}mdfx passes {totals[(group, 'mdfx')]}{both}")
    causes = Counter(cause_group(v["cause"]) for v in mdfx.values() if v["outcome"] in ("failed", "error"))
    lines += ["", "| failures | first cause |", "|---|---|"]
    lines += [f"| {n} | {c.replace('|', '/')} |" for c, n in causes.most_common()]
    if ref:
        lost = Counter(cause_group(mdfx[k]["cause"]) for k, v in ref.items()
                       if v["outcome"] == "passed" and k in mdfx and mdfx[k]["outcome"] != "passed"
                       and mode_of(k) != "Python")
        kinds = Counter(kind_of(mdfx[k]["cause"]) for k, v in ref.items()
                        if v["outcome"] == "passed" and k in mdfx and mdfx[k]["outcome"] != "passed"
                        and mode_of(k) != "Python")
        lines += ["", "Among tests PsyNeuLink passes in its own modes: "
                  + ", ".join(f"{n} fail on {k}" for k, n in kinds.most_common())
                  + " (text: PsyNeuLink's exact sentences, which mdfx does not copy)",
                  "", "| failures | first cause |", "|---|---|"]
        lines += [f"| {n} | {c.replace('|', '/')} |" for c, n in lost.most_common()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "mdfx" / "pnl-suite")
    ap.add_argument("--reference", metavar="PYTHON", help="interpreter with psyneulink 0.21 installed; "
                    "reruns the reference column (else the cached one is used)")
    ap.add_argument("--resume", action="store_true", help="with --reference: continue a reference run that "
                    "stopped early (its .partial.jsonl), running only the tests it did not reach")
    ap.add_argument("--skip-mdfx", action="store_true", help="with --reference: run PsyNeuLink's column only")
    ap.add_argument("--report-only", action="store_true",
                    help="rebuild the report from the last runs' results in --cache, running nothing")
    ap.add_argument("--files", choices=("all", "core", "beyond"), default="all",
                    help="which group of PsyNeuLink's test files to run (default all)")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (e.g. -k name)")
    args = ap.parse_args(argv)
    ref_file = args.cache / "reference.json"
    if args.report_only:
        mdfx = load_results(args.cache / "mdfx.json")
        if mdfx is None:
            ap.error(f"no mdfx run in {args.cache}")
        print(report(mdfx, load_results(ref_file)))
        (args.cache / "substitutions.md").write_text(substitutions(mdfx) + "\n")
        return 0
    work = fetch(args.cache)
    files = {"all": FILES, "core": CORE, "beyond": BEYOND}[args.files]
    if args.reference:
        run_suite(args.reference, work, ref_file, shim=False, extra=args.pytest_args, resume=args.resume,
                  files=files)
        if args.skip_mdfx:
            return 0
    ref = load_results(ref_file)
    mdfx = run_suite(sys.executable, work, args.cache / "mdfx.json", shim=True, extra=args.pytest_args,
                     files=files)
    text = report(mdfx, ref)
    (args.cache / "report.md").write_text(text + "\n")
    (args.cache / "substitutions.md").write_text(substitutions(mdfx) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
