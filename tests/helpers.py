"""Shared test helpers: small nets, corpus paths, comparisons that print both sides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import mdfx as pnl

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


#: The one tolerance per comparison kind (as JAX's ``default_tolerance``); a test that needs
#: another says why in a comment where it overrides one (:func:`tol`).
TOL: dict[str, dict[str, float]] = {
    # the same operations in the same order: bit for bit
    "exact": {"rtol": 0.0, "atol": 0.0},
    # the same formulas in float64, summed in another order (BLAS blocks, numpy's pairwise sums)
    "float64": {"rtol": 1e-12, "atol": 1e-14},
    # float32 arithmetic against the float64 reference
    "float32": {"rtol": 1e-5, "atol": 1e-6},
    # a gradient against central finite differences (eps 1e-6: truncation ~eps**2, rounding ~1e-16/eps)
    "finite_differences": {"rtol": 1e-5, "atol": 1e-7},
}


def tol(kind: str = "float64", **override: float) -> dict[str, float]:
    """``TOL[kind]`` with ``override`` (say why at the call)."""
    return {**TOL[kind], **override}


def assert_close(actual: object, expected: object, rtol: float | None = None, atol: float | None = None,
                 what: str = "", kind: str = "float64") -> None:
    """``actual`` equals ``expected`` to ``TOL[kind]`` (or the rtol/atol given); prints both on failure."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if rtol is None:
        rtol, atol = TOL[kind]["rtol"], TOL[kind]["atol"] if atol is None else atol
    elif atol is None:
        atol = 0.0  # an rtol given alone is relative only
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


# --- named checks: round trips and gradients -----------------------------------------------------


def graph_of(model: Any) -> Any:
    """The op graph of a Graph, a Composition or a GraphComposition."""
    from mdfx.schema.graph import Graph

    return model if isinstance(model, Graph) else model._graph()


def inputs_for_graph(g: Any, trials: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs ``(trials, *features)`` for every graph input."""
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-1, 1, (trials, *shape)) for k, shape in g.inputs.items()}


def check_roundtrip(model: Any, tmp_path: Path, inputs: dict[str, np.ndarray] | None = None,
                    suffix: str = ".json", onnx: bool = True, dtype: str = "float64") -> Any:
    """``model`` (a Composition, GraphComposition or Graph) -> MDF file -> back gives the same graph:
    ops, names, attributes, params bit for bit, and bit-identical outputs; -> ONNX file -> onnxruntime
    (``onnx``) gives the reference's outputs to ``TOL[dtype]``, and so does the graph imported back.
    Returns the model read back from MDF."""
    from mdfx.composition.graph_model import GraphComposition
    from mdfx.runners import reference
    from mdfx.schema.graph import Graph

    g = graph_of(model)
    inputs = inputs_for_graph(g) if inputs is None else inputs
    want = reference.run(g, inputs)
    saveable = GraphComposition(model) if isinstance(model, Graph) else model
    back = pnl.load(pnl.save(saveable, tmp_path / f"roundtrip{suffix}"))
    b = graph_of(back)
    assert (list(b.inputs.items()), b.outputs, b.dtype) == (list(g.inputs.items()), g.outputs, g.dtype), \
        f"MDF round trip: inputs/outputs/dtype\nback:     {list(b.inputs.items())} {b.outputs} {b.dtype}\n" \
        f"original: {list(g.inputs.items())} {g.outputs} {g.dtype}"
    ops_back = [(n.name, n.op, n.inputs, n.output, n.attrs) for n in b.nodes]
    ops_orig = [(n.name, n.op, n.inputs, n.output, n.attrs) for n in g.nodes]
    assert ops_back == ops_orig, f"MDF round trip: nodes\nback:     {ops_back}\noriginal: {ops_orig}"
    assert [(k, p.learnable, p.dtype) for k, p in b.params.items()] == \
        [(k, p.learnable, p.dtype) for k, p in g.params.items()], f"params {list(b.params)} != {list(g.params)}"
    for k, p in g.params.items():
        assert b.params[k].value.tobytes() == p.value.tobytes(), \
            f"MDF round trip: param {k!r} not bit-exact\nback:     {b.params[k].value.tolist()}\noriginal: {p.value.tolist()}"
    got = reference.run(b, inputs)
    for k in g.outputs:
        assert_close(got[k], want[k], what=f"MDF round trip: output {k!r}", kind="exact")
    if onnx:
        from mdfx.runners import ort

        path = pnl.save(saveable, tmp_path / "roundtrip.onnx", dtype=dtype)
        ran = ort.run(path, {k: v.astype(dtype) for k, v in inputs.items()})
        again = reference.run(graph_of(pnl.load(path)), inputs)
        # ONNX stores float attributes (alpha, epsilon...) as float32, whatever the model's dtype
        rounded = any(isinstance(v, float) and float(np.float32(v)) != v for n in g.nodes for v in n.attrs.values())
        kind = "float32" if rounded else dtype
        for k in g.outputs:
            assert_close(ran[k], want[k], what=f"ONNX ({dtype}) in onnxruntime: output {k!r}", kind=kind)
            assert_close(again[k], want[k], what=f"ONNX ({dtype}) imported back: output {k!r}", kind=kind)
    return back


def _weighted_sum_grads(g: Any, inputs: dict[str, np.ndarray], weights: dict[str, np.ndarray]) -> dict:
    """The reference's d(sum_k weights[k] * output k)/d param, for every learnable param."""
    from mdfx.runners import reference

    return reference.backward(g, reference.forward(g, inputs), weights)


def check_grads(g: Any, inputs: dict[str, np.ndarray], backend: str = "finite_differences", seed: int = 7,
                eps: float = 1e-6) -> None:
    """The gradient of a weighted sum of ``g``'s outputs with respect to each learnable param: the
    numpy reference VJP (``reference.backward``) against ``backend``:

    * ``"finite_differences"``: central differences of the reference's forward (``TOL["finite_differences"]``);
    * ``"torch"``: torch autograd through :mod:`mdfx.converters.torch` (``TOL["float64"]``, loosened: autograd
      accumulates a param's terms in its own order across chained ops);
    * ``"llvm"``: the compiled backward pass, read from one whole-batch SGD step with learning rate 1 on
      an SSE loss whose targets make dL/dy the weights (``w_after = w - grad``).
    """
    import copy

    from mdfx.runners import reference

    out = reference.run(g, inputs)
    rng = np.random.default_rng(seed)
    weights = {k: rng.normal(size=np.shape(v)) for k, v in out.items()}
    want = _weighted_sum_grads(g, inputs, weights)
    assert set(want) == set(g.learnable()), f"gradients for {sorted(want)}, params {sorted(g.learnable())}"
    if backend == "finite_differences":
        def loss() -> float:
            res = reference.run(g, inputs)
            return float(sum(np.sum(res[k] * w) for k, w in weights.items()))

        for name, w in g.learnable().items():
            numeric = np.zeros_like(w)
            for i in np.ndindex(w.shape):
                old = w[i]
                w[i] = old + eps
                up = loss()
                w[i] = old - eps
                down = loss()
                w[i] = old
                numeric[i] = (up - down) / (2 * eps)
            assert_close(want[name], numeric, what=f"{g.name}: reference d loss / d {name} vs finite differences",
                         kind="finite_differences")
    elif backend == "torch":
        import torch

        from mdfx.converters.torch import to_module

        module = to_module(g)
        res = module({k: torch.tensor(v) for k, v in inputs.items()})
        total = sum((res[k] * torch.tensor(w)).sum() for k, w in weights.items())
        names = list(g.learnable())
        got = torch.autograd.grad(total, [module.tensor(n) for n in names], allow_unused=True, materialize_grads=True)
        for n, gt in zip(names, got, strict=True):
            # autograd adds up a param's terms in its own order: a few ulps per chained op
            assert_close(gt.numpy(), want[n], **tol("float64", rtol=1e-10, atol=1e-12),
                         what=f"{g.name}: torch autograd d loss / d {n} vs the reference")
    elif backend == "llvm":
        import mdfx
        from mdfx.composition.graph_model import GraphComposition

        h = copy.deepcopy(g)
        before = {k: v.copy() for k, v in h.learnable().items()}
        # SSE: dL/dy = 2 (y - t), so t = y - w / 2 makes it w
        targets = {k: np.asarray(out[k]) - weights[k] / 2 for k in g.outputs}
        trials = len(next(iter(inputs.values())))
        GraphComposition(h, loss_spec=mdfx.Loss.SSE, optimizer_type="sgd").learn(
            inputs=inputs, targets=targets, epochs=1, minibatch_size=trials, learning_rate=1.0,
            execution_mode=mdfx.ExecutionMode.LLVMRun)
        for n, w in h.learnable().items():
            scale = max(1.0, float(np.max(np.abs(before[n]))))
            # w - (w - grad) loses the low bits of w: the absolute error scales with |w|
            assert_close(before[n] - w, want[n], **tol("float64", rtol=1e-10, atol=1e-13 * scale),
                         what=f"{g.name}: LLVM backward d loss / d {n} vs the reference")
    else:
        raise ValueError(f"unknown backend {backend!r}; use finite_differences, torch or llvm")
