"""ONNX export: every transfer op against the numpy reference, names, dtypes, opsets, atomic save."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
from export_nets import NON_DEFAULT, OP_CASES, inputs_for, multi_net, node, op_net, proj

from mdfx.converters import onnx_export
from mdfx.converters.onnx_export import ExportError, onnx_name, save_onnx, to_onnx
from mdfx.errors import GraphError, MdfxError
from mdfx.runners import ort, reference
from mdfx.runners.compare import TOLERANCES
from mdfx.schema.net import Net


def check_against_reference(net: Net, dtype: str, opset: int = 17) -> onnx.ModelProto:
    """Export, check, run in onnxruntime and compare every output with the reference."""
    model = to_onnx(net, dtype=dtype, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    inputs = inputs_for(net)
    want = reference.run(net, inputs)
    got = ort.run(model, inputs)
    assert sorted(got) == sorted(want), f"outputs {sorted(got)} != reference outputs {sorted(want)}"
    for name in want:
        assert got[name].dtype == np.dtype(dtype), f"{name}: dtype {got[name].dtype}, expected {dtype}"
        np.testing.assert_allclose(got[name], want[name], **TOLERANCES[dtype],
                                   err_msg=f"{net.name}: output {name!r} at {dtype}, opset {opset}")
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("op", "params"), OP_CASES, ids=lambda c: c if isinstance(c, str) else ("custom" if c else "default"))
def test_every_transfer_op_matches_reference(op: str, params: dict[str, float], dtype: str) -> None:
    check_against_reference(op_net(op, params), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_op_on_an_input_node(dtype: str) -> None:
    # The transfer and bias of an INPUT node apply to the external input directly.
    net = Net.build("input_op", [node("x", 3, "logistic", NON_DEFAULT["logistic"], bias=np.array([0.1, -0.2, 0.3]))],
                    [])
    model = check_against_reference(net, dtype)
    assert [i.name for i in model.graph.input] == ["x"]
    assert [o.name for o in model.graph.output] == ["x_output"], "a node both input and output"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_several_inputs_outputs_and_converging_projections(dtype: str) -> None:
    net = multi_net()
    model = check_against_reference(net, dtype)
    assert [i.name for i in model.graph.input] == ["a", "b"]
    assert [o.name for o in model.graph.output] == ["o1", "o2"]


def test_graph_is_clean_and_follows_the_reference_order() -> None:
    default = to_onnx(op_net("logistic", {}))
    assert [n.op_type for n in default.graph.node] == [
        "MatMul", "Add", "Sigmoid",  # hidden: projection, bias, op at neutral params
        "MatMul", "Sigmoid",         # out: no bias
    ], [n.op_type for n in default.graph.node]
    full = to_onnx(op_net("logistic", NON_DEFAULT["logistic"]))
    hidden = [n.op_type for n in full.graph.node if n.output[0].startswith("hidden")]
    assert hidden == ["MatMul", "Add", "Add", "Sub", "Mul", "Sigmoid", "Mul", "Add"], hidden
    converging = [n.op_type for n in to_onnx(multi_net()).graph.node if n.output[0].startswith("o2")]
    assert converging == ["MatMul", "MatMul", "Add", "Add", "Tanh"], converging


@pytest.mark.parametrize(("dtype", "leak", "op_type"), [
    ("float32", 0.1, "LeakyRelu"),
    ("float64", 0.25, "LeakyRelu"),  # exact in float32: the attribute loses nothing
    ("float64", 0.1, "PRelu"),       # the float32 alpha attribute would round 0.1
    ("float64", 0.0, "Relu"),
])
def test_relu_lowering(dtype: str, leak: float, op_type: str) -> None:
    model = to_onnx(op_net("relu", {"leak": leak}), dtype=dtype)
    got = {n.op_type for n in model.graph.node} & {"Relu", "LeakyRelu", "PRelu"}
    assert got == {op_type}, f"relu(leak={leak}) at {dtype} lowered to {got}, expected {op_type}"


@pytest.mark.parametrize(("dtype", "elem_type", "np_dtype"), [
    ("float32", onnx.TensorProto.FLOAT, np.float32),
    ("float64", onnx.TensorProto.DOUBLE, np.float64),
])
def test_io_weights_and_opset(dtype: str, elem_type: int, np_dtype: type) -> None:
    net = multi_net()
    model = to_onnx(net, dtype=dtype)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    for value in [*model.graph.input, *model.graph.output]:
        t = value.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        assert t.elem_type == elem_type, f"{value.name}: elem_type {t.elem_type}"
        assert dims == ["batch", net.node(value.name).size], f"{value.name}: dims {dims}"
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    for p in net.projections:
        assert weights[p.name].dtype == np_dtype, f"{p.name}: {weights[p.name].dtype}"
        np.testing.assert_array_equal(weights[p.name], p.matrix.astype(np_dtype), err_msg=p.name)
    np.testing.assert_array_equal(weights["h.bias"], net.node("h").bias.astype(np_dtype))


def test_weights_are_the_current_values() -> None:
    net = op_net("linear", {})
    before = ort.run(to_onnx(net, "float64"), inputs_for(net))["out"]
    net.projections[0].matrix *= 2.0
    net.node("hidden").bias[:] = 0.0
    after = check_against_reference(net, "float64")
    assert not np.allclose(ort.run(after, inputs_for(net))["out"], before), "export must use current weights"


def test_names_are_sanitized_only_when_needed_and_mapped() -> None:
    rng = np.random.default_rng(0)
    a, h, o = node("input layer", 2), node("2nd-hidden", 3, "relu"), node("output", 2)
    net = Net.build("my net", [a, h, o], [proj(rng, a, h), proj(rng, h, o)])
    model = check_against_reference(net, "float64")
    assert [i.name for i in model.graph.input] == ["input_layer"]
    assert [o.name for o in model.graph.output] == ["output"]
    props = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert props[onnx_export.INPUT_NAMES_KEY] == {"input_layer": "input layer"}
    assert props[onnx_export.OUTPUT_NAMES_KEY] == {"output": "output"}
    assert onnx_name("2nd-hidden") == "n_2nd_hidden"
    assert onnx_name("fine_name") == "fine_name"


def test_sanitized_names_that_collide_stay_unique() -> None:
    rng = np.random.default_rng(0)
    a, b, o = node("x y", 2), node("x_y", 2), node("out", 1)
    net = Net.build("collide", [a, b, o], [proj(rng, a, o), proj(rng, b, o)])
    model = check_against_reference(net, "float64")
    assert [i.name for i in model.graph.input] == ["x_y", "x_y_1"]


@pytest.mark.parametrize("opset", [13, 21])
def test_opset_range_is_accepted(opset: int) -> None:
    model = check_against_reference(multi_net(), "float32", opset=opset)
    assert model.opset_import[0].version == opset


@pytest.mark.parametrize("opset", [12, 22, "17"])
def test_opset_outside_range_is_refused(opset: object) -> None:
    with pytest.raises(ExportError, match=r"opset .* is not supported; mdfx exports opsets 13 to 21"):
        to_onnx(multi_net(), opset=opset)  # type: ignore[arg-type]


def test_unknown_dtype_is_refused() -> None:
    with pytest.raises(ExportError, match="dtype 'int8' is not supported; use one of float32, float64, float16"):
        to_onnx(multi_net(), dtype="int8")


def test_node_without_input_is_refused_by_name() -> None:
    rng = np.random.default_rng(0)
    a, lone, o = node("a", 2), node("lone", 2), node("o", 1)
    net = Net.build("partial", [a, lone, o], [proj(rng, a, o), proj(rng, lone, o)], inputs=["a"])
    with pytest.raises(GraphError, match="node 'lone' of 'partial' is not an INPUT node and has no incoming projection"):
        to_onnx(net)


def test_save_onnx_writes_a_loadable_model(tmp_path) -> None:
    net = multi_net()
    path = save_onnx(net, tmp_path / "multi.onnx", dtype="float64")
    assert os.listdir(tmp_path) == ["multi.onnx"], "no temp file left behind"
    got = ort.run(path, inputs_for(net))
    want = reference.run(net, inputs_for(net))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], **TOLERANCES["float64"], err_msg=name)


def test_save_onnx_failure_leaves_no_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old contents")

    def half_write(model: onnx.ModelProto, path: str) -> None:
        with open(path, "wb") as f:
            f.write(model.SerializeToString()[:10])
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(onnx_export.onnx, "save_model", half_write)
    with pytest.raises(OSError, match="disk full"):
        save_onnx(multi_net(), target)
    assert os.listdir(tmp_path) == ["model.onnx"], f"left behind: {os.listdir(tmp_path)}"
    assert target.read_bytes() == b"old contents", "the old file must be untouched"

    fresh = tmp_path / "new.onnx"
    with pytest.raises(OSError, match="disk full"):
        save_onnx(multi_net(), fresh)
    assert not fresh.exists() and os.listdir(tmp_path) == ["model.onnx"], os.listdir(tmp_path)


def test_save_onnx_into_missing_directory_names_it(tmp_path) -> None:
    with pytest.raises(MdfxError, match="directory .*nowhere.* does not exist"):
        save_onnx(multi_net(), tmp_path / "nowhere" / "m.onnx")


def test_export_does_not_import_torch_or_onnxruntime() -> None:
    import subprocess
    import sys

    code = ("import sys, mdfx.converters.onnx_export, mdfx.runners.ort, mdfx.runners.compare; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'llvmlite') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
