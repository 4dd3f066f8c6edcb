"""PsyNeuLink's Normalize transfer function: direct calls, its torch function, and learning
through it in every mode, against PsyNeuLink 0.21's numbers (tests/pnl_reference/probe_normalize.py)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

import mdfx as pnl

# probe_normalize.py "calls": (x, eps, per_item) -> PsyNeuLink's f(x)
CALLS = [
    ([3.0, 4.0], 1e-12, True, [0.6, 0.8]),
    ([0.0, 0.0], 1e-3, True, [0.0, 0.0]),
    ([3e-4, 4e-4], 1e-3, True, [0.3, 0.4]),
    ([[3.0, 4.0], [3e-4, 4e-4]], 1e-3, True, [[0.6, 0.8], [0.3, 0.4]]),
    ([[3.0, 4.0], [3e-4, 4e-4]], 1e-3, False,
     [[0.599999997, 0.7999999959999999], [5.999999969999999e-05, 7.99999996e-05]]),
]
# probe_normalize.py "learn": A (Normalize eps=1e-3) -W-> B (Logistic), lr 0.5, 2 epochs, PyTorch mode
LEARNED = {
    1: ([[0.9356369715957764, 0.5001662221776997], [-0.5208875974786336, 0.9473081790182941]],
        [[0.29228220991920495, 0.6510407445372359]]),
    2: ([[0.957685995452896, 0.5080596746667378], [-0.4919261940866888, 0.9575738938189906]],
        [[0.2956118325262758, 0.6523236767649003]]),
}


def test_defaults_are_psyneulinks() -> None:
    f = pnl.Normalize()
    assert (f.eps, f.per_item) == (1e-12, True), (f.eps, f.per_item)


@pytest.mark.parametrize(("x", "eps", "per_item", "expected"), CALLS)
def test_direct_call_gives_psyneulinks_values(x: list, eps: float, per_item: bool, expected: list) -> None:
    got = pnl.Normalize(default_variable=x, eps=eps, per_item=per_item)(np.array(x))
    assert_close(got, expected, rtol=1e-12, atol=1e-15, what=f"Normalize(eps={eps}, per_item={per_item})({x})")


@pytest.mark.parametrize(("x", "eps", "per_item", "expected"), CALLS)
def test_torch_function_gives_the_same_values_and_differentiates(x: list, eps: float, per_item: bool,
                                                                 expected: list) -> None:
    torch = pytest.importorskip("torch")
    fn = pnl.Normalize(eps=eps, per_item=per_item)._gen_pytorch_fct("cpu", context=pnl.Context())
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = fn(xt)
    assert_close(y.detach().numpy(), expected, rtol=1e-12, atol=1e-15, what="torch Normalize")
    (y * torch.arange(1.0, y.numel() + 1, dtype=torch.float64).reshape(y.shape)).sum().backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all(), xt.grad


@pytest.mark.parametrize("mode", ["Python", "PyTorch", "LLVMRun"])
@pytest.mark.parametrize("minibatch", [1, 2])
@pytest.mark.parametrize("per_item", [True, False])
def test_learning_through_normalize_gives_psyneulinks_numbers(mode: str, minibatch: int, per_item: bool) -> None:
    """PsyNeuLink 0.21 learns this in PyTorch mode (per_item=True); it has no compiled Normalize
    and refuses per_item=False in PyTorch mode, where a trial is one item and mdfx normalizes it
    alike (PsyNeuLink's Python mode gives the same numbers at minibatch 1)."""
    if mode == "PyTorch":
        pytest.importorskip("torch")
    if mode == "LLVMRun":
        pytest.importorskip("llvmlite")
    a = pnl.TransferMechanism(input_shapes=2, function=pnl.Normalize(eps=1e-3, per_item=per_item), name="A")
    w = pnl.MappingProjection(matrix=np.array([[1.0, 0.5], [-0.5, 1.0]]), name="W")
    b = pnl.TransferMechanism(input_shapes=2, function=pnl.Logistic(), name="B")
    comp = pnl.AutodiffComposition(pathways=[[a, w, b]], learning_rate=0.5)
    x = np.array([[3.0, 4.0], [3e-4, 4e-4], [-1.0, 2.0]])
    t = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    comp.learn(inputs={a: x}, targets={b: t}, epochs=2, minibatch_size=minibatch,
               execution_mode=getattr(pnl.ExecutionMode, mode))
    matrix, last = LEARNED[minibatch]
    assert_close(w.parameters.matrix.get(comp), matrix, rtol=1e-10, what=f"W after learn() in {mode}")
    assert_close(comp.run(inputs={a: x}), last, rtol=1e-10, what=f"run() after learn() in {mode}")


def test_normalize_round_trips_through_mdf(tmp_path: object) -> None:
    a = pnl.TransferMechanism(input_shapes=3, function=pnl.Normalize(eps=0.5), name="A")
    b = pnl.TransferMechanism(input_shapes=2, name="B")
    comp = pnl.AutodiffComposition(pathways=[[a, pnl.MappingProjection(matrix=np.arange(6.0).reshape(3, 2)), b]])
    x = {a: np.array([[1.0, 2.0, 2.0], [0.1, 0.0, 0.2]])}
    path = tmp_path / "n.json"  # type: ignore[operator]
    pnl.save(comp, path)
    back = pnl.load(path)
    assert_close(back.run(inputs={back.nodes[0]: x[a]}), comp.run(inputs=x), rtol=1e-12, what="MDF round trip")
    assert_close(comp.run(inputs=x), [[0.2 * 0 + 0.4 * 4, 0.2 * 1 + 0.4 * 5]], rtol=1e-12,
                 what="the last trial: ||x|| = 0.22 < eps, so x / 0.5 = (0.2, 0, 0.4), times W")
