"""The size bench in every setting the goals name, and the goals checked from its numbers.

Runs :mod:`bench.bench_size` once per (environment, threads) in a fresh process and
prints one table per setting, then the goals:

* environments: ``override`` sets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (the
  values this machine's image sets, where it does: older OpenBLAS builds crash on the CPU
  without them; a user's machine sets neither); ``unset`` removes both. Only the bench's
  own child processes see the change: tests and CI keep the environment as it is;
* threads: 1 (pinned to one core with ``taskset -c 0``) and 2 (``taskset -c 0,1``);
  ``OPENBLAS_NUM_THREADS``, torch's and XLA's threads follow.

Goals, each row of the goal table saying met or not, with the numbers:

* LLVMRun at or below JAX on every row, in both environments (one thread);
* LLVMRun at ≥80% of the measured peak at minibatch ≥128 on 784-1024-1024-10;
* two threads ≥1.7× the one-thread throughput at minibatch 128 on 784-1024-1024-10,
  for LLVMRun and for PyTorch mode.

    .venv/bin/python -m bench.yardsticks                       # everything (long: ~1 h here)
    .venv/bin/python -m bench.yardsticks --nets 784-1024-1024-10 --minibatch 128 --dtype float64
    .venv/bin/python -m bench.yardsticks --from-json out/yardsticks   # reprint from a run's files
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

#: what this machine's image sets (and, with them, what OpenBLAS runs) when it sets them
OVERRIDE = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"}
ENVS = ("override", "unset")
BIG = "784-1024-1024-10"


def child_env(env: str, threads: int) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in OVERRIDE}
    if env == "override":
        out.update({k: os.environ.get(k, v) for k, v in OVERRIDE.items()})
    out["OPENBLAS_NUM_THREADS"] = out["OMP_NUM_THREADS"] = str(threads)
    return out


def run_setting(env: str, threads: int, passthrough: list[str], out: Path) -> dict:
    path = out / f"{env}-t{threads}.json"
    cores = ",".join(str(i) for i in range(threads))
    cmd = ["taskset", "-c", cores, sys.executable, "-m", "bench.bench_size", "--threads", str(threads),
           "--no-memory", "--json", str(path), *passthrough]
    print(f"== {env}, {threads} thread(s): {' '.join(cmd)}", flush=True)
    done = subprocess.run(cmd, env=child_env(env, threads), text=True, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_size failed ({env}, {threads} threads):\n{done.stderr[-3000:]}")
    print(done.stdout, flush=True)
    return json.loads(path.read_text())


def _cell(row: dict, mode: str) -> float | None:
    us = row.get("us_per_trial") or {}
    return us.get(mode)


def _ratio(row: dict, a: str, b: str) -> float | None:
    """Median over the repeats of a / b, each taken within one run."""
    pairs = [r[a] / r[b] for r in row.get("repeats", []) if a in r and b in r and r[b] > 0]
    return float(np.median(pairs)) if pairs else None


def goals(results: dict[tuple[str, int], dict]) -> list[tuple[str, str, str]]:
    """(goal, met | not met | not measured, the numbers) for each goal."""
    out = []
    for env in ENVS:
        data = results.get((env, 1))
        if data is None:
            out.append((f"LLVMRun ≤ JAX on every row ({env})", "not measured", ""))
            continue
        ratios = [(r, _ratio(r, "mdfx LLVMRun", "JAX")) for r in data["rows"]]
        ratios = [(r, x) for r, x in ratios if x is not None]
        if not ratios:
            out.append((f"LLVMRun ≤ JAX on every row ({env})", "not measured", "no JAX column (jax not installed?)"))
            continue
        worse = [f"{r['net']} mb{r['mb']} {r['dtype']} {x:.2f}×" for r, x in ratios if x > 1.0]
        out.append((f"LLVMRun ≤ JAX on every row ({env}, 1 thread)", "met" if not worse else "not met",
                    f"{len(ratios) - len(worse)} of {len(ratios)} rows; above JAX: " + (", ".join(worse) or "none")))
    for env in ENVS:
        data = results.get((env, 1))
        rows = [r for r in (data or {}).get("rows", []) if r["net"] == BIG and r["mb"] >= 128
                and _cell(r, "mdfx LLVMRun")]
        if not rows:
            out.append((f"LLVMRun ≥80% of the peak, {BIG} mb≥128 ({env})", "not measured", ""))
            continue
        shares = [(r, r["peak_us"] / _cell(r, "mdfx LLVMRun")) for r in rows]
        out.append((f"LLVMRun ≥80% of the peak, {BIG} mb≥128 ({env}, 1 thread)",
                    "met" if all(s >= 0.8 for _, s in shares) else "not met",
                    ", ".join(f"mb{r['mb']} {r['dtype']} {s:.0%} of {data['peak'][r['dtype']] / 1e9:.1f} GFLOP/s"
                              for r, s in shares)))
    for env in ENVS:
        one, two = results.get((env, 1)), results.get((env, 2))
        for mode in ("mdfx LLVMRun", "mdfx PyTorch"):
            name = f"2 threads ≥1.7× one thread, {mode}, {BIG} mb128 ({env})"
            if one is None or two is None:
                out.append((name, "not measured", ""))
                continue
            pairs = []
            for r1 in one["rows"]:
                r2 = next((r for r in two["rows"] if (r["net"], r["mb"], r["dtype"]) ==
                           (r1["net"], r1["mb"], r1["dtype"])), None)
                if r1["net"] == BIG and r1["mb"] == 128 and r2 and _cell(r1, mode) and _cell(r2, mode):
                    pairs.append((r1["dtype"], _cell(r1, mode) / _cell(r2, mode)))
            if not pairs:
                out.append((name, "not measured", ""))
                continue
            out.append((name, "met" if all(s >= 1.7 for _, s in pairs) else "not met",
                        ", ".join(f"{d} {s:.2f}×" for d, s in pairs)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="*", default=list(ENVS), choices=ENVS)
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--out", default="out/yardsticks", help="where each setting's JSON goes")
    parser.add_argument("--from-json", default=None, help="print the tables and goals from an earlier --out")
    args, passthrough = parser.parse_known_args(argv)
    results: dict[tuple[str, int], dict] = {}
    if args.from_json:
        for path in sorted(Path(args.from_json).glob("*-t*.json")):
            env, t = path.stem.rsplit("-t", 1)
            results[(env, int(t))] = json.loads(path.read_text())
    else:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for env in args.envs:
            for threads in args.threads:
                results[(env, threads)] = run_setting(env, threads, passthrough, out)
    print("\n## Goals\n")
    print("| goal | status | numbers |")
    print("|---|---|---|")
    for goal, status, numbers in goals(results):
        print(f"| {goal} | {'**' + status + '**' if status == 'not met' else status} | {numbers} |")
    print("\nSettings: " + "; ".join(f"{env} {t}t: BLAS {d.get('blas')}, env {d.get('env')}"
                                     for (env, t), d in sorted(results.items())))


if __name__ == "__main__":
    main()
