"""The PsyNeuLink-compatible API: building, roles, run() semantics, graph-rule errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import assert_close, xor_composition

import mdfx as pnl
from mdfx import ops


def test_import_is_light() -> None:
    heavy = [m for m in ("torch", "llvmlite", "onnxruntime") if m in sys.modules]
    # Other tests may have imported them; check in a fresh interpreter instead.
    import subprocess

    code = "import mdfx, sys; print(','.join(m for m in ('torch','llvmlite','onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import mdfx pulled in {out} (already loaded in this process: {heavy})"


def test_functions_have_pnl_defaults_and_accept_class_or_instance() -> None:
    m1 = pnl.TransferMechanism(function=pnl.Logistic, size=2)
    m2 = pnl.TransferMechanism(function=pnl.Logistic(gain=2.0), input_shapes=2)
    assert m1.function.params == {"gain": 1.0, "bias": 0.0, "x_0": 0.0, "offset": 0.0, "scale": 1.0}
    assert m2.function.gain == 2.0 and m2.size == 2
    assert pnl.TransferMechanism(size=3).function == pnl.Linear()
    assert pnl.ReLU().params == {"gain": 1.0, "bias": 0.0, "leak": 0.0}
    assert pnl.Tanh().params == {"gain": 1.0, "bias": 0.0, "x_0": 0.0, "offset": 0.0, "scale": 1.0}
    assert pnl.Exponential().params == {"rate": 1.0, "bias": 0.0, "scale": 1.0, "offset": 0.0}
    assert pnl.SoftMax().params == {"gain": 1.0}
    with pytest.raises(pnl.UnsupportedError) as err:
        ops.fill_params(ops.transfer_op("logistic"), {"slope": 1.0})
    assert str(err.value) == "Logistic has no parameter slope; its parameters are gain, bias, x_0, offset, scale"


def test_function_forward_values() -> None:
    x = np.array([-1.0, 0.5, 2.0])
    cases = {
        "Linear": (pnl.Linear(slope=2, intercept=1), 2 * x + 1),
        "Logistic": (pnl.Logistic(gain=2, bias=0.3, x_0=0.2, offset=0.1, scale=1.5),
                     1.5 / (1 + np.exp(-2 * (x + 0.3 - 0.2))) + 0.1),
        "ReLU": (pnl.ReLU(gain=2, bias=0.3, leak=0.1),
                 np.where(x - 0.3 > 0, 2 * (x - 0.3), 0.1 * 2 * (x - 0.3))),
        "Tanh": (pnl.Tanh(gain=2, bias=0.3, x_0=0.2, offset=0.1, scale=1.5),
                 1.5 * np.tanh(2 * (x + 0.3 - 0.2) + 0.1)),
        "Exponential": (pnl.Exponential(rate=2, bias=0.3, scale=1.5, offset=0.1), 1.5 * np.exp(2 * x + 0.3) + 0.1),
        "SoftMax": (pnl.SoftMax(gain=2), np.exp(2 * x) / np.exp(2 * x).sum()),
        "Identity": (pnl.Identity(), x),
    }
    for name, (fn, expected) in cases.items():
        assert_close(fn(x), expected, what=name)


def test_run_returns_last_trial_and_appends_results() -> None:
    comp, x, _ = xor_composition()
    out = comp.run(inputs=x)
    assert len(comp.results) == 4
    assert len(out) == 1 and out[0].shape == (1,)
    assert_close(out[0], comp.results[-1][0], kind="exact")
    out2 = comp.run(inputs=x, num_trials=6)
    assert len(comp.results) == 10
    assert_close(out2[0], comp.results[5][0], kind="exact", what="num_trials repeats inputs: trial 6 == trial 2")
    assert_close(comp.results[5][0], comp.results[1][0], kind="exact")


def test_several_inputs_converge_and_sum() -> None:
    a = pnl.TransferMechanism(size=2, name="a")
    b = pnl.TransferMechanism(size=3, name="b")
    h = pnl.TransferMechanism(size=2, function=pnl.Logistic, name="h")
    o = pnl.TransferMechanism(size=1, name="o")
    wa, wb, wo = np.arange(4.0).reshape(2, 2) / 4, np.arange(6.0).reshape(3, 2) / 6, np.array([[1.0], [-1.0]])
    skip = np.array([[0.5], [0.25]])
    comp = pnl.AutodiffComposition(name="conv")
    comp.add_nodes([a, b, h, o])
    comp.add_projection(pnl.MappingProjection(matrix=wa, name="wa"), a, h)
    comp.add_projection(pnl.MappingProjection(matrix=wb, name="wb"), b, h)
    comp.add_projection(pnl.MappingProjection(matrix=wo, name="wo"), h, o)
    comp.add_projection(pnl.MappingProjection(matrix=skip, name="skip"), a, o)
    assert [n.name for n in comp.get_nodes_by_role(pnl.NodeRole.INPUT)] == ["a", "b"]
    assert [n.name for n in comp.get_nodes_by_role(pnl.NodeRole.OUTPUT)] == ["o"]
    xa, xb = np.array([1.0, -2.0]), np.array([0.5, 0.0, 1.0])
    out = comp.run(inputs={a: [xa], b: [xb]})
    hidden = 1 / (1 + np.exp(-(xa @ wa + xb @ wb)))
    assert_close(out[0], hidden @ wo + xa @ skip)
    assert_close(h.value, [hidden], what="mechanism.value holds the last trial")


def test_default_matrix_and_parameters_get() -> None:
    a = pnl.TransferMechanism(size=2, name="a")
    b = pnl.TransferMechanism(size=2, name="b")
    c = pnl.TransferMechanism(size=3, name="c")
    comp = pnl.Composition(pathways=[[a, b, c]])
    p_ab, p_bc = comp.projections
    assert_close(p_ab.matrix, np.eye(2), kind="exact", what="same sizes: identity")
    assert_close(p_bc.parameters.matrix.get(comp), np.ones((2, 3)), kind="exact", what="different sizes: ones")
    assert p_ab.name == "MappingProjection from a[RESULT] to b[InputPort-0]"


def test_graph_rule_errors_name_nodes_and_shapes() -> None:
    a = pnl.TransferMechanism(size=2, name="a")
    b = pnl.TransferMechanism(size=3, name="b")
    stranger = pnl.TransferMechanism(size=3, name="stranger")
    comp = pnl.AutodiffComposition(name="g")
    comp.add_nodes([a, b])
    with pytest.raises(pnl.GraphError) as err:
        comp.add_projection(pnl.MappingProjection(matrix=np.ones((3, 2)), name="bad"), a, b)
    assert str(err.value) == ("projection 'bad' from 'a' (size 2) to 'b' (size 3) has a matrix of shape (3, 2); "
                              "expected (2, 3)")
    with pytest.raises(pnl.GraphError) as err:
        comp.add_projection(pnl.MappingProjection(name="out"), a, stranger)
    assert "receiver 'stranger' is not a node of 'g'" in str(err.value), str(err.value)
    comp.add_projection(pnl.MappingProjection(name="ab"), a, b)
    with pytest.raises(pnl.GraphError) as err:
        comp.add_projection(pnl.MappingProjection(name="ba"), b, a)
    assert str(err.value).startswith("the network has a cycle through 'a', 'b' ("), str(err.value)
    assert "'b' -> 'a'" in str(err.value)
    assert [p.name for p in comp.projections] == ["ab"], "a refused projection is not added"


def test_bad_inputs_name_the_node() -> None:
    comp, x, _ = xor_composition()
    i = comp.nodes[0]
    cases = [
        ({i: [[1, 2, 3]]}, "input for node 'xor_in' has shape (1, 3); expected (trials, 2)"),
        ({}, "no input given for node 'xor_in' of 'xor'"),
        ({i: [[1, np.nan]]}, "input for node 'xor_in' contains NaN or infinite values"),
        ({"xor_out": [[1]]}, "input given for 'xor_out', which is not an INPUT node of 'xor' (xor_in)"),
    ]
    for inputs, message in cases:
        with pytest.raises(pnl.DataError) as err:
            comp.run(inputs=inputs)
        assert str(err.value) == message


def test_nested_composition_runs_and_learns() -> None:
    comp, x, t = xor_composition()
    outer = pnl.Composition(name="outer")
    outer.add_node(comp)
    before = comp.projections[0].matrix.copy()
    outer.learn(inputs={comp: {"inputs": x, "targets": t, "epochs": 3}}, execution_mode=pnl.ExecutionMode.Python)
    assert len(comp.losses) == 12
    assert not np.array_equal(before, comp.projections[0].matrix), "nested learn() changed the weights"
    out = outer.run(inputs={comp: x})
    assert_close(out[0], comp.results[-1][0], kind="exact")
