"""LLVM training of a 20-30-10 net with a SoftMax output: the cost of its generated backward.

Run it on two trees and compare (one core, one thread; the machine's load shows in the spread):

    PYTHONPATH=<tree> OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 python bench/bench_softmax_backward.py
"""

from __future__ import annotations

import time

import numpy as np

import mdfx as pnl


def main(n_out: int = 10, repeats: int = 15) -> float:
    rng = np.random.default_rng(0)
    i = pnl.TransferMechanism(size=20, name="i")
    h = pnl.TransferMechanism(size=30, function=pnl.Logistic, name="h")
    o = pnl.TransferMechanism(size=n_out, function=pnl.SoftMax, name="o")
    comp = pnl.AutodiffComposition(learning_rate=0.1, loss_spec=pnl.Loss.CROSS_ENTROPY)
    comp.add_linear_processing_pathway([i, pnl.MappingProjection(matrix=rng.uniform(-.5, .5, (20, 30))), h,
                                        pnl.MappingProjection(matrix=rng.uniform(-.5, .5, (30, n_out))), o])
    x, t = rng.uniform(size=(200, 20)), np.eye(n_out)[rng.integers(0, n_out, 200)]
    mode = pnl.ExecutionMode.LLVMRun
    comp.learn(inputs={i: x}, targets={o: t}, epochs=1, minibatch_size=10, execution_mode=mode)  # compile
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        comp.learn(inputs={i: x}, targets={o: t}, epochs=20, minibatch_size=10, execution_mode=mode)
        best = min(best, time.perf_counter() - t0)
    print(f"SoftMax({n_out}) output, LLVM learn of 20 epochs x 200 trials: best {best * 1e3:.2f} ms of {repeats}")
    return best


if __name__ == "__main__":
    main()
