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
