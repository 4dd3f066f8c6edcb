"""ONNX export: every transfer op against the numpy reference, names, dtypes, opsets, atomic save."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
from export_nets import NON_DEFAULT, OP_CASES, inputs_for, multi_net, node, op_net, proj

from mdfx import ops
from mdfx.converters import onnx_export
from mdfx.converters.onnx_export import ExportError, onnx_name, save_onnx, to_onnx
from mdfx.errors import GraphError, MdfxError
from mdfx.runners import ort, reference
from mdfx.runners.compare import TOLERANCES
from mdfx.schema.mechanisms import build as build_network


def check_against_reference(net: Graph, dtype: str, opset: int = 17) -> onnx.ModelProto:
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
    net = build_network("input_op", [node("x", 3, "logistic", NON_DEFAULT["logistic"], bias=np.array([0.1, -0.2, 0.3]))],
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
        assert dims == ["batch", net.mechanisms.node(value.name).size], f"{value.name}: dims {dims}"
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    for p in net.mechanisms.projections:
        assert weights[p.name].dtype == np_dtype, f"{p.name}: {weights[p.name].dtype}"
        np.testing.assert_array_equal(weights[p.name], net.params[p.name].value.astype(np_dtype), err_msg=p.name)
    np.testing.assert_array_equal(weights["h.bias"], net.params["h.bias"].value.astype(np_dtype))


def test_weights_are_the_current_values() -> None:
    net = op_net("linear", {})
    before = ort.run(to_onnx(net, "float64"), inputs_for(net))["out"]
    net.params[net.mechanisms.projections[0].name].value[...] *= 2.0
    net.params["hidden.bias"].value[:] = 0.0
    after = check_against_reference(net, "float64")
    assert not np.allclose(ort.run(after, inputs_for(net))["out"], before), "export must use current weights"


def test_names_are_sanitized_only_when_needed_and_mapped() -> None:
    rng = np.random.default_rng(0)
    a, h, o = node("input layer", 2), node("2nd-hidden", 3, "relu"), node("output", 2)
    net = build_network("my net", [a, h, o], [proj(rng, a, h), proj(rng, h, o)])
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
    net = build_network("collide", [a, b, o], [proj(rng, a, o), proj(rng, b, o)])
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
    # refused where the graph is built (before any export)
    with pytest.raises(GraphError, match="node 'lone' of 'partial' is not an INPUT node and has no incoming projection"):
        build_network("partial", [a, lone, o], [proj(rng, a, o), proj(rng, lone, o)], inputs=["a"])


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


# --- op graphs: every graph op, imported files, round trips -------------------------------------

from mdfx.schema.graph import Graph, Node, Param  # noqa: E402

_RNG = np.random.default_rng(5)


def _p(name: str, *shape: int, positive: bool = False, learnable: bool = True) -> Param:
    v = _RNG.uniform(0.5, 1.5, shape) if positive else _RNG.uniform(-1, 1, shape)
    return Param(name, v, learnable)


#: graph op -> (input feature shape, params, input tensors besides x, attrs); x is (batch, *shape)
_UNARY = ["Identity", "Neg", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Exp", "Erf", "Softplus", "Elu", "Selu",
          "HardSigmoid", "Reciprocal"]
GRAPH_CASES: dict[str, tuple[tuple[int, ...], list[Param], list[str], dict]] = {
    **{op: ((4,), [], [], {}) for op in _UNARY},
    # float attributes that float32 holds exactly (ONNX attributes are float32)
    "LeakyRelu": ((4,), [], [], {"alpha": 0.25}), "HardSigmoid": ((4,), [], [], {"alpha": 0.25, "beta": 0.5}),
    "Log": ((4,), [], [], {}), "Sqrt": ((4,), [], [], {}), "Abs": ((4,), [], [], {}),
    "Gelu": ((4,), [], [], {"approximate": "tanh"}),
    "Add": ((4,), [_p("b", 4)], ["b"], {}), "Sub": ((4,), [_p("b", 4)], ["b"], {}),
    "Mul": ((4,), [_p("s", 1)], ["s"], {}), "Div": ((4,), [_p("d", 4, positive=True)], ["d"], {}),
    "MatMul": ((4,), [_p("w", 4, 3)], ["w"], {}),
    "Gemm": ((4,), [_p("l.weight", 3, 4), _p("l.bias", 3)], ["l.weight", "l.bias"],
             {"transB": 1, "alpha": 0.5, "beta": 2.0}),
    "Clip": ((4,), [], [], {"min": -0.3, "max": 0.4}), "Pow": ((4,), [], [], {"exponent": 3.0}),
    "Cast": ((4,), [], [], {"to": 1}), "Dropout": ((4,), [], [], {"ratio": 0.2}),
    "Softmax": ((4,), [], [], {"axis": -1}), "LogSoftmax": ((4,), [], [], {"axis": 1}),
    "Concat": ((4,), [], [], {"axis": 1}),
    "Slice": ((2, 6), [], [], {"starts": [1], "ends": [5], "axes": [2], "steps": [2]}),
    "Reshape": ((2, 6), [], [], {"shape": [0, 3, 4]}), "Flatten": ((2, 3), [], [], {"axis": 1}),
    "Squeeze": ((1, 4), [], [], {"axes": [1]}), "Unsqueeze": ((4,), [], [], {"axes": [1]}),
    "Transpose": ((2, 3), [], [], {"perm": [0, 2, 1]}),
    "ReduceSum": ((2, 3), [], [], {"axes": [2], "keepdims": 0}),
    "ReduceMean": ((2, 3), [], [], {"axes": [1, 2], "keepdims": 1}),
    "ReduceMax": ((2, 3), [], [], {"axes": [-1], "keepdims": 1}),
    "LayerNormalization": ((2, 4), [_p("ln.w", 4), _p("ln.b", 4)], ["ln.w", "ln.b"], {"axis": -1, "epsilon": 2.0**-10}),
    "BatchNormalization": ((3,), [_p("bn.w", 3), _p("bn.b", 3), _p("bn.m", 3, learnable=False),
                                  _p("bn.v", 3, positive=True, learnable=False)],
                           ["bn.w", "bn.b", "bn.m", "bn.v"], {"epsilon": 2.0**-10, "momentum": 0.875}),
    "ArgMax": ((4,), [], [], {"axis": 1}),
    # recurrent layers (batch first in the graph; exported as layout 0 between Transposes)
    "LSTM": ((3, 2), [_p("W", 1, 12, 2), _p("R", 1, 12, 3), _p("B", 1, 24)], ["W", "R", "B"], {"hidden_size": 3}),
    "GRU": ((3, 2), [_p("W", 2, 9, 2), _p("R", 2, 9, 3), _p("B", 2, 18)], ["W", "R", "B"],
            {"hidden_size": 3, "direction": "bidirectional", "linear_before_reset": 1}),
    "RNN": ((3, 2), [_p("W", 1, 3, 2), _p("R", 1, 3, 3)], ["W", "R"], {"hidden_size": 3, "direction": "reverse"}),
    # constant indices (an embedding lookup by an int64 input: tests/test_sequences.py)
    "Gather": ((3, 4), [Param("idx", np.array([[3.0, 0.0], [-1.0, 1.0]]), False, "int64")], ["idx"], {"axis": 2}),
    "CastLabel": ((4,), [], [], {"to": 7}),
    "Conv": ((2, 5, 5), [_p("c.weight", 4, 1, 3, 3), _p("c.bias", 4)], ["c.weight", "c.bias"],
             {"group": 2, "strides": [2, 1], "pads": [1, 0, 1, 1], "dilations": [1, 2]}),
    "ConvTranspose": ((2, 3, 3), [_p("t.weight", 2, 3, 3, 3), _p("t.bias", 3)], ["t.weight", "t.bias"],
                      {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}),
    "MaxPool": ((2, 6, 5), [], [], {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 0],
                                     "ceil_mode": 1, "dilations": [1, 2]}),
    "AveragePool": ((2, 6, 5), [], [], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                         "count_include_pad": 1}),
    "Pad": ((2, 3, 4), [], [], {"pads": [0, 0, 1, 2, 0, 1, 0, 3], "value": 0.5}),
}


def _case_graph(op: str) -> Graph:
    shape, params, extra, attrs = GRAPH_CASES[op]
    nodes = []
    x = "x"
    if op in ("Log", "Sqrt"):  # a positive argument
        nodes.append(Node("abs", "Abs", ["x"], "ax"))
        x = "ax"
    if op == "Concat":
        nodes.append(Node("mul", "Mul", ["x", "x"], "xx"))
        extra = ["xx"]
    nodes.append(Node(f"the_{op}", op, [x, *extra], "y", dict(attrs)))
    return Graph.build(f"case_{op}", {"x": shape}, [Param(p.name, p.value.copy(), p.learnable, p.dtype) for p in params],
                       nodes, ["y"])


@pytest.mark.parametrize("opset", [13, 17, 21])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", list(GRAPH_CASES))
def test_every_graph_op_exports(op: str, dtype: str, opset: int) -> None:
    g = _case_graph(op)
    model = to_onnx(g, dtype=dtype, opset=opset)  # check_model(full_check=True) inside
    x = np.random.default_rng(0).uniform(-1, 1, (5, *g.inputs["x"]))
    try:
        session = ort.prepare(model)
    except MdfxError as exc:
        if "NOT_IMPLEMENTED" in str(exc) and dtype == "float64":
            pytest.skip(f"onnxruntime has no float64 kernel here: {str(exc)[-80:]}")
        raise
    if op in ("LSTM", "GRU", "RNN") and dtype == "float64":
        pytest.skip("onnxruntime has no float64 kernel for recurrent ops (tests/test_sequences.py checks them "
                    "against torch in float64)")
    got, want = session({"x": x})["y"], reference.run(g, {"x": x})["y"]
    assert got.shape == want.shape, f"{op}: shape {got.shape} vs reference {want.shape}"
    # ops with float32 constants in onnxruntime's kernels or attributes are float32-exact only
    tol = TOLERANCES["float32"] if op in ("Gelu", "LeakyRelu", "HardSigmoid", "Selu", "Elu") else TOLERANCES[dtype]
    np.testing.assert_allclose(np.asarray(got, dtype=float), want, **tol, err_msg=f"{op} at {dtype}, opset {opset}")
    assert [n.name for n in model.graph.node if n.name == f"the_{op}"] or op in ("LayerNormalization", "Gelu"), \
        "the node keeps its name"


def test_every_graph_op_has_an_export_case() -> None:
    plain = {op for op in ops.GRAPH_OPS if not op.startswith(("pnl.", "ai.onnx.ml."))}
    assert plain - set(GRAPH_CASES) == set(), f"no export case for {sorted(plain - set(GRAPH_CASES))}"


def test_dtype_defaults_to_the_graphs_and_float32_for_compositions() -> None:
    g = _case_graph("Gemm")
    elem = {"float64": onnx.TensorProto.DOUBLE, "float32": onnx.TensorProto.FLOAT}
    for dtype in ("float64", "float32"):
        g.dtype = dtype
        model = to_onnx(g)
        assert model.graph.input[0].type.tensor_type.elem_type == elem[dtype]
        assert {i.data_type for i in model.graph.initializer} == {elem[dtype]}
    assert to_onnx(multi_net()).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_onnx_file_round_trip_keeps_names_layouts_and_dtype(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    import warnings

    from mdfx.converters.onnx_import import load_onnx

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(2, 3, dtype=torch.float64),), str(path), dynamo=False,
                          input_names=["features"], output_names=["scores"], opset_version=17,
                          dynamic_axes={"features": {0: "n"}, "scores": {0: "n"}})
    original = onnx.load(str(path))
    g = load_onnx(path)
    again = to_onnx(g)
    assert [i.name for i in again.graph.input] == ["features"] and [o.name for o in again.graph.output] == ["scores"]
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in again.graph.initializer}
    for init in original.graph.initializer:
        value = onnx.numpy_helper.to_array(init)
        assert init.name in inits, f"initializer {init.name} lost; have {sorted(inits)}"
        assert inits[init.name].shape == value.shape and inits[init.name].dtype == value.dtype, init.name
        np.testing.assert_array_equal(inits[init.name], value, err_msg=init.name)
    assert {n.name for n in original.graph.node} <= {n.name for n in again.graph.node}
    assert again.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    x = np.random.default_rng(1).normal(size=(4, 3))
    np.testing.assert_allclose(ort.run(again, {"features": x})["scores"], ort.run(path, {"features": x})["scores"],
                               rtol=1e-12, atol=1e-14)
    back = load_onnx(again)
    assert [(k, p.shape, p.learnable, p.dtype) for k, p in back.params.items()] == \
        [(k, p.shape, p.learnable, p.dtype) for k, p in g.params.items()]
    assert to_onnx(g, dtype="float32").graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_composition_round_trip_keeps_its_names(tmp_path) -> None:
    from helpers import xor_composition

    import mdfx

    comp, x, _ = xor_composition()
    path = mdfx.save(comp, tmp_path / "xor.onnx")
    model = onnx.load(str(path))
    assert ([i.name for i in model.graph.input], [o.name for o in model.graph.output]) == (["xor_in"], ["xor_out"])
    props = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert props[onnx_export.LAYER_NAMES_KEY] == {"xor_hid/in_to_hid": "xor_hid", "xor_out/hid_to_out": "xor_out"}
    back = mdfx.load(path)
    assert (list(back.graph.inputs), back.graph.outputs) == (["xor_in"], ["xor_out"])
    assert back.graph.layers == props[onnx_export.LAYER_NAMES_KEY], back.graph.layers
    assert {"in_to_hid", "hid_to_out"} <= set(back.graph.params)
    want = comp.run(inputs=x)
    np.testing.assert_allclose(back.run(inputs={"xor_in": x[comp.nodes[0]]}), want, rtol=1e-6, atol=1e-7)


def test_skl2onnx_classifier_round_trip(tmp_path) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    import warnings

    from sklearn.neural_network import MLPClassifier

    from mdfx.converters.onnx_import import load_onnx

    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(x, np.arange(20) % 3)
    path = tmp_path / "clf.onnx"
    path.write_bytes(skl2onnx.to_onnx(clf, x[:1]).SerializeToString())
    again = to_onnx(load_onnx(path))
    assert ("ai.onnx.ml", 1) in [(o.domain, o.version) for o in again.opset_import]
    assert [o.name for o in again.graph.output] == ["output_label", "output_probability"]
    got, want = ort.run(again, {"X": x}), ort.run(path, {"X": x})
    np.testing.assert_array_equal(got["output_label"], want["output_label"])
    assert [list(d) for d in got["output_probability"]] == [list(d) for d in want["output_probability"]]
    np.testing.assert_allclose([list(d.values()) for d in got["output_probability"]],
                               [list(d.values()) for d in want["output_probability"]], rtol=1e-6)


@pytest.mark.parametrize("op", list(GRAPH_CASES))
def test_every_graph_op_round_trips_through_onnx(op: str) -> None:
    """Graph -> ONNX (opset 21) -> Graph gives the same ops, params and numbers: each op maps both ways."""
    from mdfx.converters.onnx_import import load_onnx

    g = _case_graph(op)
    back = load_onnx(to_onnx(g, dtype="float64", opset=21))
    assert [n.op for n in back.nodes] == [n.op for n in g.nodes], str(back)
    assert [(k, p.shape, p.learnable) for k, p in back.params.items() if k in g.params] == \
        [(k, p.shape, p.learnable) for k, p in g.params.items()]
    x = np.random.default_rng(0).uniform(-1, 1, (4, *g.inputs["x"]))
    want, got = reference.run(g, {"x": x})["y"], reference.run(back, {"x": x})["y"]
    if any(isinstance(v, float) for v in g.nodes[-1].attrs.values()) and op not in ("Clip", "Pow", "Dropout"):
        # ONNX stores float attributes (alpha, epsilon...) as float32: 0.01 comes back as 0.009999999776
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-12, err_msg=op)
    else:
        np.testing.assert_array_equal(got, want, err_msg=op)


def test_dropout_with_ratio_and_training_mode_inputs_imports_as_identity() -> None:
    from onnx import TensorProto, helper, numpy_helper

    from mdfx.converters.onnx_import import load_onnx

    nodes = [helper.make_node("Dropout", ["x", "ratio", "mode"], ["y", "mask"], name="drop")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
                              [numpy_helper.from_array(np.array(0.3, np.float32), "ratio"),
                               numpy_helper.from_array(np.array(False), "mode")])
    g = load_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert [(n.op, n.attrs) for n in g.nodes] == [("Dropout", {"ratio": pytest.approx(0.3)})]
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(reference.run(g, {"x": x})["y"], x)


def test_a_float64_leak_that_float32_cannot_hold_survives_the_round_trip() -> None:
    from mdfx.converters.onnx_import import load_onnx

    g = Graph.build("leaky", {"x": (3,)}, [], [Node("act", "LeakyRelu", ["x"], "y", {"alpha": 0.1})], ["y"])
    model = to_onnx(g, dtype="float64")
    assert [n.op_type for n in model.graph.node] == ["PRelu"], "a float32 alpha attribute would round 0.1"
    back = load_onnx(model)
    assert [(n.op, n.attrs) for n in back.nodes] == [("LeakyRelu", {"alpha": 0.1})]
    assert [n.op_type for n in to_onnx(g, dtype="float32").graph.node] == ["LeakyRelu"]


def test_the_export_records_which_params_learn() -> None:
    from mdfx.converters.onnx_import import load_onnx

    g = Graph.build("g", {"x": (3,)}, [Param("w", np.ones((3, 2))), Param("onnx::Mul_1", np.ones((3, 2)) * 2),
                                       Param("scale", np.array(4.0), learnable=False)],
                    [Node("mm", "MatMul", ["x", "w"], "h"), Node("mm2", "MatMul", ["x", "onnx::Mul_1"], "h2"),
                     Node("add", "Add", ["h", "h2"], "s"), Node("mul", "Mul", ["s", "scale"], "y")], ["y"])
    model = to_onnx(g)
    props = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert props[onnx_export.LEARNABLE_KEY] == ["w", "onnx::Mul_1"]
    back = load_onnx(model)  # the record beats the naming rule ("onnx::Mul_1" looks generated)
    assert {k: p.learnable for k, p in back.params.items()} == {"w": True, "onnx::Mul_1": True, "scale": False}
