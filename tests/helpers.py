"""Shared test helpers: small nets, corpus paths, comparisons that print both sides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import mdfx as pnl

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


def assert_close(actual: object, expected: object, rtol: float, atol: float = 0.0, what: str = "") -> None:
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    # assert_allclose counts NaN == NaN as equal; a NaN on both sides is a failure here
    assert np.all(np.isfinite(e)), f"{what}: expected value is not finite: {e.tolist()}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol,
                               err_msg=f"{what}\nactual:   {a.tolist()}\nexpected: {e.tolist()}")


def xor_composition(seed: int = 0, function: object = None) -> tuple[pnl.AutodiffComposition, dict, dict]:
    """The 2-10-1 logistic XOR net with seeded weights, and its inputs/targets by node."""
    rng = np.random.default_rng(seed)
    fn = function or pnl.Logistic
    i = pnl.TransferMechanism(size=2, function=pnl.Linear, name="xor_in")
    h = pnl.TransferMechanism(size=10, function=fn, name="xor_hid")
    o = pnl.TransferMechanism(size=1, function=fn, name="xor_out")
    w1 = pnl.MappingProjection(matrix=rng.uniform(-1, 1, (2, 10)), sender=i, receiver=h, name="in_to_hid")
    w2 = pnl.MappingProjection(matrix=rng.uniform(-1, 1, (10, 1)), sender=h, receiver=o, name="hid_to_out")
    comp = pnl.AutodiffComposition(learning_rate=0.5, name="xor")
    comp.add_linear_processing_pathway([i, w1, h, w2, o])
    x = {i: [[0, 0], [0, 1], [1, 0], [1, 1]]}
    t = {o: [[0], [1], [1], [0]]}
    return comp, x, t


def torch_sgd(model: Any, x: np.ndarray, t: np.ndarray, epochs: int, mb: int, lr: float) -> list[float]:
    """What train_reference does, written in torch: SGD on MSE (mean), trials in order; the losses."""
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=lr)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    losses = []
    for _ in range(epochs):
        for i in range(0, len(x), mb):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(xt[i:i + mb]), tt[i:i + mb])
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses
