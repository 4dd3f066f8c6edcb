"""Issue 9's foreign-model corpus as one table: what mdfx does with each file.

Run from the repository root::

    .venv/bin/python -m bench.foreign_corpus [--subset full|default] [--models a,b] [--shard I/N]
                                             [--out DIR] [--jsonl FILE] [--known-failures]
    .venv/bin/python -m bench.foreign_corpus --totals FILE.jsonl [FILE.jsonl ...]

Writes every corpus file of ``tests/foreign`` (full matrix by default: each torch model
through the legacy and dynamo exporters at opsets 17/18/21, fixed and dynamic batch,
float32 and float64, and the skl2onnx MLPs) into a scratch directory, runs the checks of
``tests/test_foreign_corpus.py`` on each (the same functions), and prints per file:

* ``load``: ``mdfx.load`` accepts it;
* ``run``: ``comp.run`` equals onnxruntime on the original file (1e-10 float64, 1e-5 float32);
* ``py`` / ``torch`` / ``llvm``: training in that mode equals the original trained in torch
  (float64 files; SGD, MSE, minibatch 1 and 8, 3 epochs; losses, outputs and parameters
  to 1e-9). A failure says where it first differs: ``loss``, ``out`` (outputs after
  training), ``param`` (a trained parameter: name, layout or value);
* ``export``: ``mdfx.save(comp, .onnx)`` runs in onnxruntime like the original;
* ``sd``: ``mdfx.save(comp, "w.pt")`` loads into the original torch module, giving the trained one;

``n/a``: not applicable (float32 files are not trained; an exporter that wrote no file, or
renamed a parameter, is its limitation, not mdfx's); ``err``: mdfx raised. Then the first
error message of each failing file, and the totals. ``--known-failures`` prints the
``KNOWN_FAILURES`` dict for ``tests/foreign/known_failures.py`` from this run.

The full matrix takes about an hour on two shared cores (the dynamo exporter: 1-5 s a
file). ``--shard 1/2`` and ``--shard 2/2`` split it by model for two processes; each
appends its rows to ``--jsonl`` as it goes, and ``--totals`` prints the table's summary
from such files.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from foreign import checks  # noqa: E402
from foreign.export import Case, CorpusFile, build, default_cases, full_cases, is_trained  # noqa: E402

COLUMNS = {"load": "load", "run": "run", "train-Python": "py", "train-PyTorch": "torch",
           "train-LLVMRun": "llvm", "export": "export", "state_dict": "sd"}
TRAIN = ("train-Python", "train-PyTorch", "train-LLVMRun")


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Not equal to tolerance"):
        lines = [f"{lines[1]} ({lines[0]})"]  # numpy's assert_allclose: the check's own words come second
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:240]


def outcome(check: str, exc: BaseException | None) -> str:
    """A short cell: ok, n/a, FAIL, err, or for training where it first differs."""
    if exc is None:
        return "ok"
    if isinstance(exc, checks.NotApplicable):
        return "n/a"
    if not isinstance(exc, AssertionError):
        return "err"
    if check.startswith("train"):
        text = str(exc)
        for key, cell in (("per-minibatch losses", "loss"), ("after training", "out"), ("parameter", "param"),
                          ("layout", "param")):
            if key in text:
                return cell
    return "FAIL"


def judge(cf: CorpusFile, check: str, workdir: Path) -> BaseException | None:
    try:
        if check == "load":
            checks.check_load(cf)
        elif check == "run":
            checks.check_run(cf)
        elif check.startswith("train-"):
            checks.check_train(cf, check.removeprefix("train-"))
        elif check == "export":
            checks.check_export(cf, workdir)
        else:
            checks.check_state_dict(cf)
    except Exception as exc:  # noqa: BLE001 - every failure is a row of the report
        return exc
    return None


def applicable(case: Case, check: str) -> bool:
    """The checks the test module generates for this case (the others would be n/a)."""
    if check.startswith("train"):
        return is_trained(case)
    if check == "state_dict":
        return case.family == "torch"
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", choices=("full", "default"), default="full")
    parser.add_argument("--models", help="comma-separated model names (default: all)")
    parser.add_argument("--out", help="scratch directory for the corpus (default: a temporary one)")
    parser.add_argument("--shard", help="I/N: only the I-th of N groups of models (1-based)")
    parser.add_argument("--jsonl", help="append each row as one JSON line here, as it is judged")
    parser.add_argument("--totals", nargs="+", metavar="JSONL",
                        help="print the failures and totals of rows written by --jsonl, and exit")
    parser.add_argument("--known-failures", action="store_true",
                        help="print KNOWN_FAILURES for tests/foreign/known_failures.py")
    args = parser.parse_args()
    if args.totals:
        rows = [json.loads(line) for f in args.totals for line in Path(f).read_text().splitlines() if line]
        if args.subset == "default":
            ids = {c.id for c in default_cases()}
            rows = [r for r in rows if r["id"] in ids]
        summary(rows)
        if args.known_failures:
            print(known_failures_source(rows))
        return

    cases = full_cases() if args.subset == "full" else default_cases()
    if args.models:
        wanted = set(args.models.split(","))
        cases = [c for c in cases if c.model in wanted]
    if args.shard:
        index, count = (int(n) for n in args.shard.split("/"))
        models = list(dict.fromkeys(c.model for c in cases))
        mine = set(models[index - 1::count])
        cases = [c for c in cases if c.model in mine]
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="mdfx_foreign_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"{len(cases)} corpus files into {out}", flush=True)

    rows = []
    t_export = t_check = 0.0
    width = max(len(c.id) for c in cases)
    print(f"{'file':<{width}}  " + " ".join(f"{c:>6}" for c in COLUMNS.values()) + "  export s  check s", flush=True)
    for case in cases:
        cf = build(case, out)
        t_export += cf.seconds
        start = time.perf_counter()
        cells, errors = {}, {}
        for check in COLUMNS:
            if not applicable(case, check):
                cells[check] = "-"
                continue
            exc = judge(cf, check, out)
            cells[check] = outcome(check, exc)
            if exc is not None:
                errors[check] = first_line(exc)
        seconds = time.perf_counter() - start
        t_check += seconds
        rows.append({"id": case.id, "model": case.model, "variant": case.variant.id, "cells": cells,
                     "errors": errors, "export_s": round(cf.seconds, 3), "check_s": round(seconds, 3)})
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(rows[-1]) + "\n")
        print(f"{case.id:<{width}}  " + " ".join(f"{cells[c]:>6}" for c in COLUMNS)
              + f"  {cf.seconds:8.2f}  {seconds:7.2f}", flush=True)

    summary(rows)
    print(f"time: writing files {t_export:.0f} s, checks {t_check:.0f} s")
    if args.known_failures:
        print(known_failures_source(rows))


def summary(rows: list[dict]) -> None:
    print("\nfirst error of each failing file:")
    for row in rows:
        failing = [c for c in COLUMNS if row["cells"][c] not in ("ok", "n/a", "-")]
        if failing:
            print(f"  {row['id']}: [{failing[0]}] {row['errors'][failing[0]]}")
    print("\nexporter limitations (files not judged):")
    for row in rows:
        if row["cells"]["load"] == "n/a":
            print(f"  {row['id']}: {row['errors']['load']}")
    refused = Counter(without_node_names(row["errors"]["load"]) for row in rows
                      if row["cells"]["load"] not in ("ok", "n/a"))
    print("\nwhy mdfx refuses files (count, first message):")
    for message, count in refused.most_common():
        print(f"  {count:4d}  {message}")
    print()
    print(totals(rows))
    seconds = sum(r["export_s"] for r in rows), sum(r["check_s"] for r in rows)
    print(f"{len(rows)} rows: writing files {seconds[0]:.0f} s, checks {seconds[1]:.0f} s")


def without_node_names(message: str) -> str:
    """A refusal without its node names and supported-op list, so equal causes count together."""
    message = message.split(". mdfx imports feed-forward")[0]
    return re.sub(r" ?\(node '[^']*'\)|node '[^']*' ", "", message)


def totals(rows: list[dict]) -> str:
    judged = [r for r in rows if r["cells"]["load"] != "n/a"]
    loaded = [r for r in judged if r["cells"]["load"] == "ok"]
    run_ok = [r for r in loaded if r["cells"]["run"] == "ok"]
    no_ort = sum(r["cells"]["run"] == "n/a" for r in loaded)
    trainable = [r for r in loaded if r["cells"]["train-Python"] not in ("-", "n/a")]
    train_ok = [r for r in trainable if all(r["cells"][c] == "ok" for c in TRAIN)]
    silent = [r for r in run_ok if any(r["cells"][c] in ("loss", "out") for c in TRAIN)]
    per_mode = {COLUMNS[c]: sum(r["cells"][c] == "ok" for r in trainable) for c in TRAIN}
    exp_ok = sum(r["cells"]["export"] == "ok" for r in loaded)
    exp_judged = sum(r["cells"]["export"] != "n/a" for r in loaded)
    sd_rows = [r for r in judged if r["cells"]["state_dict"] not in ("-", "n/a")]
    sd_ok = sum(r["cells"]["state_dict"] == "ok" for r in sd_rows)
    stages = Counter(r["cells"][c] for r in trainable for c in TRAIN if r["cells"][c] != "ok")
    return "\n".join([
        f"{len(rows)} files: {len(rows) - len(judged)} not written (exporter limitation), {len(judged)} judged",
        f"loaded {len(loaded)}/{len(judged)}, run ok {len(run_ok)}/{len(loaded) - no_ort} "
        f"({no_ort} more loaded that onnxruntime cannot run: no float64 kernel)",
        f"train ok in all three modes {len(train_ok)}/{len(trainable)} loaded files whose training is checked "
        f"(per mode {per_mode}; failures by first difference {dict(stages)})",
        f"run like onnxruntime but train to other numbers (losses or outputs): {len(silent)}",
        f"export ok {exp_ok}/{exp_judged}, state_dict ok {sd_ok}/{len(sd_rows)} (torch originals it applies to)",
    ])


def known_failures_source(rows: list[dict]) -> str:
    lines = ["KNOWN_FAILURES: dict[str, dict[str, str]] = {"]
    for row in rows:
        failing = {c: row["errors"][c] for c in COLUMNS if row["cells"][c] not in ("ok", "n/a", "-")}
        if not failing:
            continue
        if "load" in failing:
            failing = {"*": failing["load"]}
        lines.append(f"    {row['id']!r}: {{")
        lines += [f"        {c!r}: {reason[:150]!r}," for c, reason in failing.items()]
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
