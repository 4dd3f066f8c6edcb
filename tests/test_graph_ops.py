"""Every graph op against the spec, driven by one table (tests/graph_cases.py).

For each case: the numpy VJP equals central finite differences; torch's forward
and autograd equal the reference; training the graph in PyTorch mode equals
Python mode. Shape errors name the node, the op and the shapes.
"""

from __future__ import annotations

import numpy as np
import pytest
from graph_cases import CASES, HOST_CASES, LLVM_REFUSED, LLVM_REFUSED_CASES
from helpers import assert_close, check_grads, tol

import mdfx
from mdfx import ops
from mdfx.composition.graph_model import GraphComposition
from mdfx.errors import GraphError
from mdfx.runners import reference
from mdfx.schema.graph import Graph, Node, Param

IDS = sorted(CASES)


def test_every_op_has_a_case():
    covered = {k.split("/")[0].split("+")[0] for k in [*CASES, *HOST_CASES]}
    covered |= {"Squeeze", "Unsqueeze", "ArgMax", "ai.onnx.ml.ArrayFeatureExtractor", "ai.onnx.ml.ZipMap",
                "CastLabel"} & ({"Squeeze", "Unsqueeze"} if "Squeeze+Unsqueeze" in CASES else set()) | {
        "ArgMax", "ai.onnx.ml.ArrayFeatureExtractor", "ai.onnx.ml.ZipMap", "CastLabel"}
    missing = sorted(set(ops.GRAPH_OPS) - covered)
    assert not missing, f"graph ops without a test case in tests/graph_cases.py: {missing}"


@pytest.mark.parametrize("case", IDS)
def test_vjp_equals_finite_differences(case):
    g, x = CASES[case]()
    check_grads(g, x, "finite_differences")


@pytest.mark.parametrize("case", IDS)
def test_torch_forward_and_gradients_equal_the_reference(case):
    torch = pytest.importorskip("torch")
    from mdfx.converters.torch import to_module

    g, x = CASES[case]()
    out = to_module(g)({k: torch.tensor(v) for k, v in x.items()})
    want = reference.run(g, x)
    for k in g.outputs:
        assert_close(out[k].detach().numpy(), want[k], what=f"{case}: forward {k}")
    check_grads(g, x, "torch")


@pytest.mark.parametrize("case", IDS)
def test_llvm_gradients_equal_the_reference(case):
    pytest.importorskip("llvmlite")
    if case.split("/")[0] in LLVM_REFUSED or case in LLVM_REFUSED_CASES:
        from mdfx.runners import llvm

        _assert_llvm_refuses(case, llvm.run)
        return
    g, x = CASES[case]()
    check_grads(g, x, "llvm")


@pytest.mark.parametrize("name", sorted(k for k, op in ops.GRAPH_OPS.items() if op.grad is not None))
def test_gradient_in_graph_ops_is_the_numpy_vjp(name):
    """An op's gradient written in graph ops (the LLVM backward is generated from it) computes exactly
    what its numpy VJP does: the same operations in the same order."""
    op = ops.GRAPH_OPS[name]
    rng = np.random.default_rng(3)
    for attrs in ({"axis": -1}, {"axis": 1}) if "axis" in op.attrs else ({"gain": 1.0}, {"gain": 2.5}):
        x = rng.normal(size=(3, 4, 5))
        y = op.forward([x], **attrs)
        g = rng.normal(size=y.shape)
        got, want = ops.run_grad(op, [x], y, g, **attrs)[0], op.vjp([x], y, g, **attrs)[0]
        assert_close(got, want, kind="exact", what=f"{name}{attrs}: graph-op gradient vs numpy VJP")


@pytest.mark.parametrize("mode", [mdfx.ExecutionMode.PyTorch, mdfx.ExecutionMode.LLVMRun], ids=["PyTorch", "LLVMRun"])
@pytest.mark.parametrize("case", IDS)
def test_training_in_each_mode_equals_python_mode(case, mode):
    pytest.importorskip("torch" if mode is mdfx.ExecutionMode.PyTorch else "llvmlite")
    if mode is mdfx.ExecutionMode.LLVMRun and (case.split("/")[0] in LLVM_REFUSED or case in LLVM_REFUSED_CASES):
        _assert_llvm_refuses(case, lambda g, x: GraphComposition(g).learn(
            inputs=x, targets={k: np.asarray(v) for k, v in reference.run(g, x).items()},
            execution_mode=mdfx.ExecutionMode.LLVMRun))
        return
    results = {}
    for each in (mdfx.ExecutionMode.Python, mode):
        g, x = CASES[case]()
        comp = GraphComposition(g)
        out = reference.run(g, x)
        targets = {k: np.asarray(v) * 0.5 + 0.1 for k, v in out.items()}
        comp.learn(inputs=x, targets=targets, epochs=3, minibatch_size=2, learning_rate=0.05,
                   execution_mode=each)
        results[each] = ({k: v.copy() for k, v in g.learnable().items()}, list(comp.losses))
    (p_py, l_py), (p_pt, l_pt) = results.values()
    # three epochs of updates compound each step's rounding differences
    assert_close(l_pt, l_py, **tol(rtol=1e-10), what=f"{case}: per-minibatch losses, {mode.name} vs Python")
    for k in p_py:
        assert_close(p_pt[k], p_py[k], **tol(rtol=1e-10, atol=1e-13),  # as above: compounded updates
                     what=f"{case}: trained {k}, {mode.name} vs Python")


def _llvm_refuses(case: str) -> None:
    """LLVMRun refuses a graph holding an op it does not compile, naming the node and the op."""
    from mdfx.errors import UnsupportedError

    g, x = CASES[case]()
    op = g.nodes[-1].op
    comp = GraphComposition(g)
    with pytest.raises(UnsupportedError, match=rf"node 'rnn' \({op}\): the LLVM backend does not compile "
                                               "recurrent layers"):
        comp.learn(inputs=x, targets={"y": reference.run(g, x)["y"]}, execution_mode=mdfx.ExecutionMode.LLVMRun)
    with pytest.raises(UnsupportedError, match=rf"node 'rnn' \({op}\)"):
        comp.run(inputs=x, execution_mode=mdfx.ExecutionMode.LLVMRun)


@pytest.mark.parametrize("case", IDS)
def test_llvm_run_equals_the_reference(case):
    pytest.importorskip("llvmlite")
    from mdfx.runners import llvm

    if case.split("/")[0] in LLVM_REFUSED or case in LLVM_REFUSED_CASES:
        _assert_llvm_refuses(case, llvm.run)
        return
    g, x = CASES[case]()
    got, want = llvm.run(g, x), reference.run(g, x)
    for k in g.outputs:
        assert_close(got[k], want[k], what=f"{case}: LLVM run() of {k}")


def _assert_llvm_refuses(case: str, call) -> None:
    """An op without an LLVM kernel is refused by name (never a fallback or a wrong number)."""
    g, x = CASES[case]()
    op = case.split("/")[0]
    node = next(n.name for n in g.nodes if n.op == op)
    with pytest.raises(mdfx.UnsupportedError) as err:
        call(g, x)
    assert f"node {node!r} ({op})" in str(err.value) and "LLVM" in str(err.value), str(err.value)


def test_ops_that_take_no_gradient_run_in_every_mode_and_train_through_probabilities():
    pytest.importorskip("torch")
    g, x = HOST_CASES["ArgMax+labels"]()
    comp = GraphComposition(g)
    want = reference.run(g, x)
    probs = want["probabilities"]
    assert want["label"].dtype == np.int64
    np.testing.assert_array_equal(want["label"], np.array([10, 20, 30])[np.argmax(probs, axis=1)])
    assert want["zipped"][0] == {10: probs[0, 0], 20: probs[0, 1], 30: probs[0, 2]}
    from mdfx.runners import torch as torch_runner

    got = torch_runner.run(g, x)
    np.testing.assert_array_equal(got["label"], want["label"])
    assert_close(got["probabilities"], probs, what="torch probabilities")
    with pytest.raises(mdfx.DataError, match="output 'label' of 'Classifier' takes no gradient"):
        comp.learn(inputs=x, targets={"label": np.zeros((3, 1))}, execution_mode=mdfx.ExecutionMode.Python)
    w0 = g.params["W"].value.copy()
    comp.learn(inputs=x, targets={"probabilities": np.eye(3)}, epochs=2, learning_rate=0.5,
               execution_mode=mdfx.ExecutionMode.PyTorch)
    assert np.abs(g.params["W"].value - w0).max() > 1e-4, "training through the probabilities moved nothing"
    assert list(g.params["classes"].value) == [10.0, 20.0, 30.0], "a frozen constant was trained"


@pytest.mark.parametrize(("nodes", "message"), [
    ([Node("mm", "MatMul", ["x", "W"], "y")],
     r"node 'mm' \(MatMul\): MatMul of \(batch, 4\) and \(3, 2\): inner dimensions 4 and 3 differ"),
    ([Node("g", "Gemm", ["x", "W"], "y", {"transB": 1})],
     r"node 'g' \(Gemm\): Gemm: A is \(batch, 4\) and B is \(2, 3\) after transA=0, transB=1"),
    ([Node("s", "ReduceSum", ["x"], "y", {"axes": [0]})], r"reduction over axis 0 .* would mix the samples"),
    ([Node("t", "Transpose", ["x"], "y")], r"Transpose perm \[1, 0\] of \(batch, 4\) moves the batch off axis 0"),
    ([Node("a", "Add", ["x", "nope"], "y")], r"node 'a' \(Add\): reads 'nope', which is neither"),
    ([Node("a", "Frobnicate", ["x"], "y")], r"op 'Frobnicate' is not in the graph IR"),
    ([Node("a", "Relu", ["y"], "y")], r"node 'a' \(Relu\) reads its own output 'y'"),
    ([Node("a", "Relu", ["x"], "y"), Node("b", "Relu", ["x"], "y")], r"nodes 'a' and 'b' both write 'y'"),
    ([Node("a", "Relu", ["z"], "y"), Node("b", "Relu", ["y"], "z")], r"depends on its own output \(a cycle\)"),
])
def test_shape_and_structure_errors_name_the_node_and_the_shapes(nodes, message):
    with pytest.raises(mdfx.MdfxError, match=message):
        Graph.build("bad", {"x": (4,)}, [Param("W", np.ones((3, 2)))], nodes, ["y"])


def test_an_output_that_does_not_depend_on_the_inputs_is_refused():
    with pytest.raises(GraphError, match=r"output 'y' does not depend on the inputs"):
        Graph.build("const", {"x": (2,)}, [Param("W", np.ones((2, 2)))], [Node("t", "Relu", ["W"], "y")], ["y"])


def test_graph_prints_as_text():
    g, _ = CASES["Gemm/transB"]()
    text = str(g)
    assert "graph Gemm (x: (batch, 4)) -> (y)" in text, text
    assert "%y = Gemm(%x, %W, %b) {alpha=0.7, beta=1.3, transA=0, transB=1}  # g" in text, text


@pytest.mark.parametrize("name", sorted(k for k, op in ops.GRAPH_OPS.items() if op.expr or op.dexpr))
def test_an_ops_expressions_compute_its_forward_and_derivative(name):
    """expr / dexpr (what code generators and the MDF writer read) equal the numpy rules."""
    from mdfx import expr as grammar

    op = ops.GRAPH_OPS[name]
    case = next(v for k, v in CASES.items() if k.split("/")[0] == name)
    g, _ = case()
    attrs = next(n.attrs for n in g.nodes if n.op == name)
    x = np.linspace(0.3, 1.7, 9) if name in ("Log", "Sqrt", "Reciprocal", "Pow") else np.linspace(-1.7, 1.3, 9)
    y = op.forward([x], **attrs)
    env = {"x": x, "y": y, **{k: v for k, v in attrs.items() if isinstance(v, int | float)}}
    if op.expr is not None:
        assert_close(grammar.evaluate(op.expr, env), y, what=f"{name}: expr {op.expr}")
    dy = op.vjp([x], y, np.ones_like(x), **attrs)[0]
    assert_close(grammar.evaluate(op.dexpr, env) * np.ones_like(x), dy,
                 what=f"{name}: dexpr {op.dexpr}")
