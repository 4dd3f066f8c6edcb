"""mdfx LLVMRun against the C yardstick, network by network, in one table.

Run from the repository root::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.bench_llvm [--quick] [--rounds N]

For each :mod:`bench.networks` case (XOR 2-10-1, digits 64-100-10 with minibatch
1 and 32, the semantic net; SGD, MSE, logistic, float64, the same initial
weights) it reports:

* ``llvm kernel``: µs per trial inside the compiled learn kernel (one call runs
  the whole learn()), the like of ``C -O3``, the time inside the C function;
* ``llvm train()``: µs per trial of the whole :func:`mdfx.runners.llvm.train`
  call (validation, buffers, results: what a user waits for, kernel cached);
* ``ratio``: llvm kernel / C;
* ``IR / opt / codegen``: the compile stages of the kernel (ms), from a cold cache;
* ``first learn``: a fresh interpreter's first learn(), from ``import
  mdfx.runners.llvm`` (llvmlite included) to the trained weights (ms).

``--deep N`` instead times the compilation of an N-layer chain (MatMul, Add, Relu per
layer, width 8; issue 12's scaling case): the learn kernel for minibatch 1 and 4 and the
infer kernel, from a cold cache, each stage in ms.

Rounds are interleaved (C, then llvm, each round) and the table keeps the best
round of each, which is the least disturbed by other processes; compile times
and first learns are likewise the best of three. Before timing, the C
yardstick's trained weights are checked against ours (rtol 1e-9).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from bench import networks
from bench.yardstick_c import CFLAGS, c_train
from mdfx.converters.llvm import jit
from mdfx.runners import llvm
from mdfx.runners.training import LearnSpec
from mdfx.schema.graph import Graph, Node, Param

FIRST_LEARN = r"""
import sys, time, json
from bench import networks
case = getattr(networks, sys.argv[1])(*map(int, sys.argv[2:]))
net, spec = case.net(), case.spec()
start = time.perf_counter()
from mdfx.runners import llvm
llvm.train(net, spec)
print(json.dumps(time.perf_counter() - start))
"""


def first_learn_seconds(case_args: list[str]) -> float:
    """A fresh interpreter's first learn() of a case, llvmlite import and compilation included."""
    out = subprocess.run([sys.executable, "-c", FIRST_LEARN, *case_args], capture_output=True, text=True,
                         check=True)
    return float(json.loads(out.stdout))


def cold_compile_stats(case: networks.BenchCase, repeats: int) -> dict[str, float]:
    """The compile stages of the case's kernel: the fastest of ``repeats`` compilations from a cold cache."""
    runs = []
    for _ in range(repeats):
        jit.clear_cache()
        llvm.train(case.net(), case.spec())
        runs.append(dict(jit.last_compile_stats))
    return min(runs, key=lambda stats: stats["total_s"])


def measure(case: networks.BenchCase, rounds: int) -> dict[str, float]:
    spec = case.spec()
    compile_stats = cold_compile_stats(case, 3)
    ours = llvm.train(case.net(), spec)
    theirs, _ = c_train(case.net(), spec)
    for name, value in ours.params.items():
        np.testing.assert_allclose(theirs.params[name], value, rtol=1e-9, atol=1e-12,
                                   err_msg=f"{case.name}: C and LLVM disagree on {name}")
    best = {"c": np.inf, "kernel": np.inf, "train": np.inf}
    for _ in range(rounds):
        best["c"] = min(best["c"], c_train(case.net(), spec)[1])
        net = case.net()
        start = time.perf_counter()
        llvm.train(net, spec)
        best["train"] = min(best["train"], time.perf_counter() - start)
        best["kernel"] = min(best["kernel"], llvm.last_train_stats["kernel_s"])
    us = {k: v / case.trials * 1e6 for k, v in best.items()}
    return {**us, "ratio": best["kernel"] / best["c"], **{k: compile_stats[k] * 1e3 for k in
                                                          ("ir_s", "opt_s", "codegen_s", "total_s")}}


def deep_chain(depth: int, width: int = 8) -> Graph:
    """``depth`` layers of MatMul, Add (bias), Relu."""
    rng = np.random.default_rng(0)
    params, nodes, x = [], [], "x"
    for i in range(depth):
        params += [Param(f"w{i}", rng.uniform(-0.5, 0.5, (width, width))), Param(f"b{i}", np.zeros(width))]
        nodes += [Node(f"m{i}", "MatMul", [x, f"w{i}"], f"m{i}"), Node(f"a{i}", "Add", [f"m{i}", f"b{i}"], f"a{i}"),
                  Node(f"r{i}", "Relu", [f"a{i}"], f"r{i}")]
        x = f"r{i}"
    return Graph.build(f"chain{depth}", {"x": (width,)}, params, nodes, [x])


def deep(depth: int) -> None:
    g = deep_chain(depth)
    out = g.outputs[0]
    x = {"x": np.random.default_rng(1).uniform(size=(4, 8))}
    print(f"{depth}-layer chain ({len(g.nodes)} nodes, {len(g.params)} params): compile ms, cold cache")
    print("| kernel | IR | opt | codegen | total |")
    print("|---|---|---|---|---|")
    for label, call in [("learn, minibatch 1", lambda: llvm.train(g, LearnSpec(x, {out: np.zeros((4, 8))}))),
                        ("learn, minibatch 4", lambda: llvm.train(g, LearnSpec(x, {out: np.zeros((4, 8))},
                                                                               minibatch_size=4))),
                        ("infer", lambda: llvm.run(g, x))]:
        jit.clear_cache()
        call()
        st = jit.last_compile_stats
        print(f"| {label} | {st['ir_s'] * 1e3:.0f} | {st['opt_s'] * 1e3:.0f} | {st['codegen_s'] * 1e3:.0f} "
              f"| {st['total_s'] * 1e3:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and rounds: a smoke run")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--deep", type=int, default=0, help="time the compilation of an N-layer chain instead")
    args = parser.parse_args()
    if args.deep:
        deep(args.deep)
        return
    rounds = 3 if args.quick else args.rounds
    cases = networks.cases(quick=args.quick)
    fresh = {"xor": ["xor"], "digits mb1": ["digits", "1"], "digits mb32": ["digits", "32"],
             "semantic": ["semantic"]}
    print(f"C: gcc {' '.join(CFLAGS)}; llvm: llvmlite MCJIT, pipeline {jit.TUNING}; float64, SGD, MSE")
    print("| network | trials | llvm kernel µs/trial | llvm train() µs/trial | C -O3 µs/trial | ratio "
          "| IR / opt / codegen ms | compile ms | first learn ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        m = measure(case, rounds)
        first = min(first_learn_seconds(fresh[case.name]) for _ in range(3)) * 1e3 if not args.quick \
            else float("nan")
        print(f"| {case.name} | {case.trials} | {m['kernel']:.3f} | {m['train']:.3f} | {m['c']:.3f} "
              f"| {m['ratio']:.2f}x | {m['ir_s']:.0f} / {m['opt_s']:.0f} / {m['codegen_s']:.0f} "
              f"| {m['total_s']:.0f} | {first:.0f} |", flush=True)


if __name__ == "__main__":
    main()
