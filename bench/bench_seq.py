"""Sequence-model training benchmark: mdfx's modes against a hand-written torch loop, one table.

Run from the repository root, one thread on one core::

    taskset -c 0 .venv/bin/python -m bench.bench_seq            # LSTM hidden 128 over 32 steps
    taskset -c 0 .venv/bin/python -m bench.bench_seq --quick    # a smoke run, seconds

The case is ``nn.LSTM(16, 128, batch_first=True)`` and a Linear on the last step, trained with
SGD on MSE at minibatch 32, float64, from the same initial weights in every mode:

* ``hand torch``: ``bench.bench_train.sgd_loop`` on the module itself (torch's fused LSTM
  kernel) -- the 1.00x column;
* ``mdfx PyTorch``: ``mdfx.from_torch(module)`` then ``learn(execution_mode=PyTorch)``: the
  graph's ONNX-defined LSTM, its time loop written with torch ops (autograd is the BPTT);
* ``mdfx LLVMRun``: the whole learn() in one compiled kernel, the LSTM's time loop inside it
  (per sample, each gate row a dot product; compiled once, the compile included).

Rounds are interleaved and the table shows each mode's median. Before timing, mdfx's trained
weights are checked against the hand loop's (so both do the same work). The transformer row
of the issue is not measured: mdfx does not import attention yet.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch
from torch import nn

import mdfx
from bench.bench_train import sgd_loop


class LastStep(nn.Module):
    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.rnn, self.lin = nn.LSTM(features, hidden, batch_first=True), nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(x)
        return self.lin(y[:, -1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    hidden, steps, features, trials, mb, epochs = (16, 8, 4, 64, 32, 1) if args.quick else (128, 32, 16, 256, 32, 2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(trials, steps, features))
    t = rng.normal(size=(trials, 1))
    torch.manual_seed(0)
    initial = LastStep(features, hidden).double()

    def hand() -> nn.Module:
        m = copy.deepcopy(initial)
        sgd_loop(m, [torch.from_numpy(x)], torch.from_numpy(t), mb, 0.01, epochs)
        return m

    def mode(execution_mode: mdfx.ExecutionMode) -> mdfx.AutodiffComposition:
        comp = mdfx.from_torch(copy.deepcopy(initial), torch.from_numpy(x[:2]), input_names=["x"], output_names=["y"])
        comp.learn(inputs={"x": x}, targets={"y": t}, epochs=epochs, minibatch_size=mb, learning_rate=0.01,
                   execution_mode=execution_mode)
        return comp

    modes = {"hand torch": hand, "mdfx PyTorch": lambda: mode(mdfx.ExecutionMode.PyTorch),
             "mdfx LLVMRun": lambda: mode(mdfx.ExecutionMode.LLVMRun)}
    # the same work: trained weights agree before anything is timed
    want = dict(hand().named_parameters())
    for name in ("mdfx PyTorch", "mdfx LLVMRun"):
        got = mdfx.io.state_dict(modes[name]().graph)
        worst = max(float(np.abs(got[k].numpy() - v.detach().numpy()).max()) for k, v in want.items())
        assert worst < 1e-9, f"{name} trains other weights than the hand loop (max diff {worst:g})"
    times: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(args.rounds):
        for name, fn in modes.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["hand torch"])
    print(f"LSTM hidden {hidden}, {steps} steps, {features} features, {trials} trials, minibatch {mb}, "
          f"{epochs} epochs, float64, 1 thread; median of {args.rounds} rounds")
    print(f"{'mode':<14} {'seconds':>9} {'vs hand torch':>14}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<14} {med:>9.3f} {med / base:>13.2f}x")


if __name__ == "__main__":
    main()
