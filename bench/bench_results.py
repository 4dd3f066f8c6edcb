"""What PsyNeuLink's every-epoch ``results`` cost against ``results="last_epoch"``.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.bench_results

XOR 2-10-1 (tests/helpers.py), 4 trials × 500 epochs per learn(), after a warm-up call
that compiles; the median (and the best) of 9 interleaved rounds per mode: on a shared
machine a 1 ms run is often preempted, so the best is the steadier figure for LLVMRun.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import mdfx as pnl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import xor_composition  # noqa: E402


def main() -> None:
    modes = [pnl.ExecutionMode.LLVMRun, pnl.ExecutionMode.PyTorch, pnl.ExecutionMode.Python]
    times: dict[tuple[str, str], list[float]] = {}
    comps = {}
    for mode in modes:
        for res in ("last_epoch", "all"):
            comp, x, t = xor_composition()
            comp.learn(inputs=x, targets=t, epochs=2, execution_mode=mode, results=res)
            comps[mode.name, res] = (comp, x, t)
    for _ in range(9):
        for (mode, res), (comp, x, t) in comps.items():
            start = time.perf_counter()
            comp.learn(inputs=x, targets=t, epochs=500, execution_mode=pnl.ExecutionMode[mode], results=res)
            times.setdefault((mode, res), []).append(time.perf_counter() - start)
            comp.results.clear()
    print("| mode | results='last_epoch' ms | results='all' ms | ratio | best 'last_epoch' ms | best 'all' ms | ratio |")
    print("|---|---|---|---|---|---|---|")
    for mode in modes:
        last = statistics.median(times[mode.name, "last_epoch"]) * 1e3
        every = statistics.median(times[mode.name, "all"]) * 1e3
        best_last, best_every = min(times[mode.name, "last_epoch"]) * 1e3, min(times[mode.name, "all"]) * 1e3
        print(f"| {mode.name} | {last:.3g} | {every:.3g} | {every / last:.3g}x | {best_last:.3g} | {best_every:.3g} | "
              f"{best_every / best_last:.3g}x |")


if __name__ == "__main__":
    main()
