"""Convolutional training benchmark: mdfx's modes against a hand-written torch loop, one table.

Run from the repository root, one thread (the machine is shared: pin it)::

    taskset -c 0 .venv/bin/python -m bench.bench_cnn            # the table
    taskset -c 0 .venv/bin/python -m bench.bench_cnn --quick    # a smoke run

Two nets, minibatch 32, SGD on MSE, float32 and float64, the same initial weights for every mode:

* ``lenet``: LeNet-5 on 1x28x28 (conv 6@5x5 pad 2, max pool, conv 16@5x5, max pool, 120-84-10);
* ``resnet2``: a two-block ResNet on 3x32x32 (conv stem 16, two basic blocks of conv-BN-ReLU-conv-BN plus
  the input, BatchNorm in train() mode, global average pool, 10).

Modes: ``hand torch`` (the idiomatic loop: the module itself, ``optim.SGD``, ``zero_grad / backward /
step``, ``loss.item()`` per minibatch: the 1.00x column), ``mdfx torch`` (``learn(ExecutionMode.PyTorch)``
of ``mdfx.from_torch(module)``), ``mdfx llvm`` (``ExecutionMode.LLVMRun``: refused by node and op while the
LLVM backend has no convolution kernel; the row says so). Each row gives seconds per epoch (median of the
rounds, modes interleaved), the ratio to the hand loop, and GFLOP/s: the training's multiply-adds
(3x the forward's Conv and Gemm work, 2 flops each) per second, beside the one-thread FMA peak of
:func:`bench.bench_gemm.fma_peak`. Before timing, mdfx's trained weights are checked against the hand loop's.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

import mdfx
from mdfx.errors import UnsupportedError
from mdfx.schema.graph import Graph

nn_f = nn.functional


class _Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn_f.relu(self.b2(self.c2(nn_f.relu(self.b1(self.c1(x))))) + x)


class ResNet2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.block1, self.block2 = _Block(16), _Block(16)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block2(self.block1(nn_f.relu(self.bn(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(h), 1))


def lenet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


NETS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "lenet": (lenet, (1, 28, 28)), "resnet2": (ResNet2, (3, 32, 32))}
MINIBATCH, LR = 32, 0.01


def training_flops(g: Graph, trials: int) -> float:
    """3x the forward's Conv and Gemm/MatMul multiply-adds (forward, the input's and the weight's
    gradients), 2 flops each, for ``trials`` samples."""
    macs = 0
    for n in g.nodes:
        out = g.shapes[n.output]
        if n.op == "Conv":
            w = g.shapes[n.inputs[1]]
            macs += math.prod(out[1:]) * math.prod(w[1:])
        elif n.op in ("Gemm", "MatMul"):
            w = g.shapes[n.inputs[1]]
            macs += math.prod(out[1:]) * (w[1] if n.attrs.get("transB") else w[0])
    return 3 * 2 * macs * trials


def hand_torch(m: nn.Module, x: torch.Tensor, t: torch.Tensor, epochs: int) -> None:
    opt = torch.optim.SGD(m.parameters(), lr=LR)
    batches = list(zip(x.split(MINIBATCH), t.split(MINIBATCH), strict=True))
    for _ in range(epochs):
        for xb, tb in batches:
            opt.zero_grad()
            loss = nn_f.mse_loss(m(xb), tb)
            loss.backward()
            opt.step()
            loss.item()


def _mdfx(m: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> mdfx.AutodiffComposition:
    return mdfx.from_torch(copy.deepcopy(m), torch.zeros(2, *shape, dtype=dtype), input_names=["x"])


def bench(name: str, dtype: str, trials: int, epochs: int, rounds: int, peak: float | None) -> list[str]:
    factory, shape = NETS[name]
    tdt = getattr(torch, dtype)
    torch.manual_seed(0)
    module = factory().to(tdt).train()
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(trials, *shape)), rng.normal(size=(trials, 10))
    xt, tt = torch.from_numpy(x).to(tdt), torch.from_numpy(t).to(tdt)
    flops = training_flops(_mdfx(module, shape, tdt).graph, trials) * epochs

    # the same work: mdfx's trained weights equal the hand loop's before anything is timed
    ref = copy.deepcopy(module)
    hand_torch(ref, xt, tt, 1)
    comp = _mdfx(module, shape, tdt)
    comp.learn(inputs={"x": x}, targets={"output": t}, minibatch_size=MINIBATCH, learning_rate=LR,
               execution_mode=mdfx.ExecutionMode.PyTorch, dtype=dtype)
    tol = 1e-9 if dtype == "float64" else 1e-3
    for k, v in ref.state_dict().items():
        got = mdfx.io.state_dict(comp.graph)[k]
        assert np.allclose(np.asarray(got, dtype=np.float64), v.double().numpy(), rtol=tol, atol=tol), k

    # timed: the training loop from the initial weights (the module copy and the import are made before)
    def run_hand(m: nn.Module) -> None:
        hand_torch(m, xt, tt, epochs)

    def run_mdfx(c: mdfx.AutodiffComposition) -> None:
        c.learn(inputs={"x": x}, targets={"output": t}, epochs=epochs, minibatch_size=MINIBATCH, learning_rate=LR,
                execution_mode=mdfx.ExecutionMode.PyTorch, dtype=dtype)

    def run_llvm(c: mdfx.AutodiffComposition) -> None:
        c.learn(inputs={"x": x}, targets={"output": t}, epochs=epochs, minibatch_size=MINIBATCH, learning_rate=LR,
                execution_mode=mdfx.ExecutionMode.LLVMRun, dtype=dtype)

    refusal = ""
    try:  # compiled once here (the cache keeps it), so the timed runs do not count the compile
        run_llvm(_mdfx(module, shape, tdt))
    except UnsupportedError as exc:
        refusal = str(exc).split(";")[0]
    modes = [("hand torch", run_hand, lambda: copy.deepcopy(module)),
             ("mdfx torch", run_mdfx, lambda: _mdfx(module, shape, tdt))]
    if not refusal:
        modes.append(("mdfx llvm", run_llvm, lambda: _mdfx(module, shape, tdt)))
    times: dict[str, list[float]] = {m[0]: [] for m in modes}
    for _ in range(rounds):
        for mode, fn, fresh in modes:
            subject = fresh()
            start = time.perf_counter()
            fn(subject)
            times[mode].append(time.perf_counter() - start)
    base = float(np.median(times["hand torch"]))
    rows = []
    for mode, ts in times.items():
        s = float(np.median(ts))
        gf = flops / s / 1e9
        rows.append(f"| {name} | {dtype} | {mode} | {s / epochs:.3f} | {s / base:.2f}x | {gf:.2f} | "
                    f"{f'{gf / peak:.0%}' if peak else 'n/a'} |")
    if refusal:
        rows.append(f"| {name} | {dtype} | mdfx llvm | refused: {refusal} | | | |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 64 trials, 1 round")
    args = parser.parse_args()
    torch.set_num_threads(1)
    trials, epochs, rounds = (64, 1, 1) if args.quick else (256, 2, 3)
    peaks: dict[str, float | None] = {}
    for dtype in ("float32", "float64"):
        try:
            from bench.bench_gemm import fma_peak

            peaks[dtype] = fma_peak(dtype) / 1e9
        except Exception:  # noqa: BLE001 - llvmlite missing: no peak column
            peaks[dtype] = None
    print(f"one-thread FMA peak (GFLOP/s): {', '.join(f'{k} {v:.1f}' for k, v in peaks.items() if v)}")
    print(f"{trials} trials x {epochs} epochs, minibatch {MINIBATCH}, SGD lr {LR}, MSE; median of {rounds} rounds")
    print("| net | dtype | mode | s / epoch | vs hand torch | GFLOP/s | of peak |")
    print("|---|---|---|---|---|---|---|")
    for name in NETS:
        for dtype in ("float32", "float64"):
            for row in bench(name, dtype, trials, epochs, rounds, peaks[dtype]):
                print(row, flush=True)


if __name__ == "__main__":
    main()
