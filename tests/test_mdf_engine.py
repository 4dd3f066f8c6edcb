"""The modeci-mdf engine runner, on a small MDF model written by hand (no MDF writer needed)."""

from __future__ import annotations

import numpy as np
import pytest
from modeci_mdf.mdf import Edge, Graph, InputPort, Model, Node, OutputPort, Parameter

from mdfx.errors import DataError, SchemaError
from mdfx.runners import mdf_engine

W_A = np.array([[0.5, -0.2, 0.1], [0.3, 0.8, -0.6]])
W_B = np.array([[-0.4, 0.7, 0.2]])


def _node(node_id: str, size: int, value: str = "input", **params: object) -> Node:
    n = Node(id=node_id)
    n.input_ports.append(InputPort(id="input", shape=(size,)))
    for pid, pval in params.items():
        n.parameters.append(Parameter(id=pid, **pval) if isinstance(pval, dict) else Parameter(id=pid, value=pval))
    n.output_ports.append(OutputPort(id="out", value=value))
    return n


def two_input_model() -> Model:
    """a (2) and b (1) -> projections (MatMul nodes) -> h (3, logistic): the PsyNeuLink MDF shape."""
    g = Graph(id="g")
    g.nodes += [
        _node("a", 2), _node("b", 1),
        _node("pa", 2, "y", W=W_A, y="input @ W"), _node("pb", 1, "y", W=W_B, y="input @ W"),
        _node("h", 3, "y", y={"function": "logistic",
                              "args": {"variable0": "in_a + in_b", "gain": 2.0, "bias": 0.0, "offset": 0.0}}),
    ]
    # The engine does not sum edges into one port (the last one wins), so converging
    # projections arrive on a port each and the node adds them.
    g.nodes[-1].input_ports = [InputPort(id="in_a", shape=(3,)), InputPort(id="in_b", shape=(3,))]
    for sender, receiver, port in [("a", "pa", "input"), ("b", "pb", "input"), ("pa", "h", "in_a"), ("pb", "h", "in_b")]:
        g.edges.append(Edge(id=f"{sender}_{receiver}", sender=sender, sender_port="out",
                            receiver=receiver, receiver_port=port))
    return Model(id="m", graphs=[g])


def test_runs_each_trial_like_numpy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, (4, 2)), rng.uniform(-1, 1, (4, 1))
    got = mdf_engine.run(two_input_model(), {"a": a, "b": b}, {"a": "input", "b": "input"}, {"h": "out"})
    want = 1.0 / (1.0 + np.exp(-2.0 * (a @ W_A + b @ W_B)))
    assert got["h"].shape == (4, 3), got["h"].shape
    np.testing.assert_allclose(got["h"], want, rtol=1e-12, err_msg="MDF engine vs numpy, per trial")


def test_errors_name_nodes_and_ports() -> None:
    model = two_input_model()
    x = {"a": np.zeros((1, 2)), "b": np.zeros((1, 1))}
    with pytest.raises(DataError, match="missing input for MDF node 'b'; the input nodes are a, b"):
        mdf_engine.run(model, {"a": x["a"]}, {"a": "input", "b": "input"}, {"h": "out"})
    with pytest.raises(DataError, match="different numbers of trials"):
        mdf_engine.run(model, {"a": np.zeros((2, 2)), "b": x["b"]}, {"a": "input", "b": "input"}, {"h": "out"})
    with pytest.raises(SchemaError, match="MDF node 'h' has no output port 'value'; its output ports are out"):
        mdf_engine.run(model, x, {"a": "input", "b": "input"}, {"h": "value"})
    with pytest.raises(SchemaError, match="the MDF graph has no node 'c'"):
        mdf_engine.run(model, {**x, "c": x["b"]}, {"a": "input", "b": "input", "c": "input"}, {"h": "out"})
    with pytest.raises(SchemaError, match="has no graph 'other'; its graphs are g"):
        mdf_engine.run(model, x, {"a": "input", "b": "input"}, {"h": "out"}, graph="other")


@pytest.mark.parametrize(("value", "message"), [
    (np.array([[1 + 2j, 0]]), r"input for MDF node 'a' holds complex numbers"),
    (np.array([["1.5", "2"]]), r"input for MDF node 'a' is not numeric: it holds strings"),
    (np.array([[np.inf, 0.0]]), r"input for MDF node 'a' contains NaN or infinite values, first at row 0, column 0"),
])
def test_the_shared_validator_guards_the_engine(value: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        mdf_engine.run(two_input_model(), {"a": value, "b": np.zeros((1, 1))}, {"a": "input", "b": "input"},
                       {"h": "out"})


def _tiny_onnx(path) -> None:
    """x (3) -> Gemm -> Relu -> MatMul -> Sigmoid -> y (2), float32, a batch axis named N."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=s).astype(np.float32), n)
             for n, s in (("W", (3, 4)), ("b", (4,)), ("W2", (4, 2)))]
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "W2"], ["m"]), helper.make_node("Sigmoid", ["m"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_cli_validate_runs_the_engine_on_an_imported_onnx_file(tmp_path, capsys) -> None:
    """The engine row runs the imported graph's MDF (onnx:: functions, float32 in modeci-mdf)."""
    import json

    from mdfx.cli import main

    path, report = tmp_path / "tiny.onnx", tmp_path / "rows.json"
    _tiny_onnx(path)
    assert main(["validate", str(path), "--trials", "3", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    rows = {(r["runner"], r["dtype"]): r for r in json.loads(report.read_text())}
    row32, row64 = rows[("mdf_engine", "float32")], rows[("mdf_engine", "float64")]
    assert row32["status"] == "PASS", (row32, out)
    assert 0 < row32["max_abs_diff"] < 1e-6, row32  # float32 arithmetic, not a copy of the reference
    assert row64["status"] == "SKIP" and "computes this graph in float32 only" in row64["note"], row64
    assert "does not take an op graph yet" not in out, out


def test_engine_runs_a_graph_by_tensor_names() -> None:
    from mdfx.runners import reference
    from mdfx.schema.graph import Graph as OpGraph
    from mdfx.schema.graph import Node as OpNode
    from mdfx.schema.graph import Param

    w = np.array([[0.5, -1.0], [2.0, 0.25]])
    g = OpGraph.build("g", {"x": (2,)}, [Param("w", w)],
                      [OpNode("mm", "MatMul", ["x", "w"], "h"), OpNode("t", "Sigmoid", ["h"], "y")], ["y"])
    x = np.array([[1.0, 2.0], [-0.5, 0.1], [0.0, 0.0]])
    got = mdf_engine.run_graph(g, {"x": x})
    want = reference.run(g, {"x": x})["y"]
    assert got["y"].shape == (3, 2), got
    np.testing.assert_allclose(got["y"], want, rtol=1e-6, atol=1e-7)
    assert not np.array_equal(got["y"], want), "float32 arithmetic expected from the onnx:: functions"


def test_engine_refuses_an_attribute_it_would_not_see() -> None:
    from mdfx.schema.graph import Graph as OpGraph
    from mdfx.schema.graph import Node as OpNode

    g = OpGraph.build("g", {"x": (2, 3)}, [], [OpNode("swap", "Transpose", ["x"], "y", {"perm": [0, 2, 1]})], ["y"])
    with pytest.raises(NotImplementedError) as e:
        mdf_engine.validation_runner(g, "float32")
    assert "node 'swap' (Transpose): attribute perm is not a number" in str(e.value), str(e.value)
    with pytest.raises(NotImplementedError) as e:
        mdf_engine.validation_runner(g, "float64")
    assert "computes this graph in float32 only" in str(e.value), str(e.value)


def test_an_op_the_engine_cannot_evaluate_is_refused_by_node() -> None:
    """modeci-mdf 0.4.13's onnx::LayerNormalization raises inside the engine: a skipped row naming the node."""
    from mdfx.schema.graph import Graph as OpGraph
    from mdfx.schema.graph import Node as OpNode
    from mdfx.schema.graph import Param as OpParam

    g = OpGraph.build("g", {"x": (2,)}, [OpParam("s", np.ones(2)), OpParam("b", np.zeros(2))],
                      [OpNode("squash", "LayerNormalization", ["x", "s", "b"], "y")], ["y"])
    with pytest.raises(mdf_engine.EngineError) as e:
        mdf_engine.run_graph(g, {"x": np.ones((2, 2))})
    assert "modeci-mdf's engine could not evaluate MDF node 'squash'" in str(e.value), str(e.value)
    assert isinstance(e.value, NotImplementedError)
