"""Per-call cost: one ``run()`` of one trial and one ``learn()`` of one trial, per mode.

The network is the 784-256-128-10 logistic MLP of issue 9, float64, SGD, MSE,
built with the Composition API. Each mdfx figure is the median over many calls
on an already-built composition (the first call builds the graph and each
backend's compiled form; later calls reuse them), against the yardsticks:

* ``torch forward``: ``module(x)`` of the same MLP as ``nn.Sequential`` under ``no_grad``;
* ``torch SGD step``: forward, MSE loss, ``backward()``, ``optimizer.step()``;
* PsyNeuLink 0.21's figures (run() 172 ms, learn() 82 ms per call) were measured
  from outside and are quoted, not rerun here.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.bench_percall [--calls N]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import mdfx

SIZES = (784, 256, 128, 10)


def build() -> tuple[mdfx.AutodiffComposition, list, dict, dict]:
    rng = np.random.default_rng(0)
    mechs = [mdfx.TransferMechanism(input_shapes=SIZES[0], name="in")]
    mechs += [mdfx.TransferMechanism(input_shapes=n, function=mdfx.Logistic, name=f"h{i}")
              for i, n in enumerate(SIZES[1:])]
    comp = mdfx.AutodiffComposition(learning_rate=0.01, name="mlp")
    path: list = [mechs[0]]
    weights = []
    for a, b, m in zip(SIZES, SIZES[1:], mechs[1:], strict=False):
        w = rng.uniform(-0.1, 0.1, (a, b))
        weights.append(w)
        path += [w, m]
    comp.add_linear_processing_pathway(path)
    x = {mechs[0]: rng.uniform(0, 1, (1, SIZES[0]))}
    t = {mechs[-1]: rng.uniform(0, 1, (1, SIZES[-1]))}
    return comp, weights, x, t


def median_us(fn: Callable[[], object], calls: int) -> float:
    fn()  # build / compile once
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def torch_yardsticks(weights: list[np.ndarray], x: dict, t: dict, calls: int) -> tuple[float, float]:
    import torch

    torch.set_num_threads(1)
    layers: list[torch.nn.Module] = []
    for w in weights:
        lin = torch.nn.Linear(*w.shape, bias=False).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T))
        layers += [lin, torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    xt = torch.from_numpy(next(iter(x.values())))
    tt = torch.from_numpy(next(iter(t.values())))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def forward() -> None:
        with torch.no_grad():
            model(xt)

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(xt), tt).backward()
        opt.step()

    return median_us(forward, calls), median_us(step, calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    comp, weights, x, t = build()
    fwd, step = torch_yardsticks(weights, x, t, args.calls)
    rows = [("torch module forward", fwd, fwd), ("torch SGD step", step, step)]
    modes = [("Python", mdfx.ExecutionMode.Python), ("PyTorch", mdfx.ExecutionMode.PyTorch),
             ("LLVMRun", mdfx.ExecutionMode.LLVMRun)]
    for label, mode in modes:
        us = median_us(lambda mode=mode: comp.run(inputs=x, execution_mode=mode), args.calls)
        rows.append((f"mdfx run() {label}", us, fwd))
    for label, mode in modes:
        us = median_us(lambda mode=mode: comp.learn(inputs=x, targets=t, execution_mode=mode), args.calls)
        rows.append((f"mdfx learn() {label}", us, step))
    rows.append(("PsyNeuLink 0.21 run() (quoted)", 172e3, fwd))
    rows.append(("PsyNeuLink 0.21 learn() (quoted)", 82e3, step))
    print(f"784-256-128-10 logistic, float64, one trial per call; median of {args.calls} calls")
    print("| call | µs per call | × torch's |")
    print("|---|---|---|")
    for name, us, base in rows:
        print(f"| {name} | {us:.1f} | {us / base:.2f}× |")


if __name__ == "__main__":
    main()
