"""ONNX import: torch-exported MLPs at several opsets against onnxruntime, training against torch,
the other trainers, the round trip through our own export, corpus files and error messages."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from helpers import torch_sgd  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

import mdfx  # noqa: E402
from mdfx.converters.onnx_import import load_onnx  # noqa: E402
from mdfx.errors import SchemaError, UnsupportedError  # noqa: E402
from mdfx.runners import ort, reference  # noqa: E402
from mdfx.runners.training import LearnSpec, train_reference  # noqa: E402
from mdfx.schema.net import Net  # noqa: E402

nn = torch.nn
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
OPSETS = (9, 13, 17, 21)
ACTIVATIONS: dict[str, Callable[[], object]] = {
    "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.25), "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=-1), "identity": nn.Identity,
}
#: mdfx op each activation becomes
OPS = {"relu": "relu", "leaky_relu": "relu", "sigmoid": "logistic", "tanh": "tanh", "softmax": "softmax",
       "identity": "identity"}


def mlp(act: str, bias: bool = True, out_act: str = "identity", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3, 4, bias=bias), ACTIVATIONS[act](),
                         nn.Linear(4, 2, bias=bias), ACTIVATIONS[out_act]())


def export(model: nn.Module, path: Path, opset: int, dtype: torch.dtype = torch.float32) -> Path:
    """torch.onnx.export with the TorchScript exporter (the dynamo one needs onnxscript)."""
    x = torch.zeros(2, 3, dtype=dtype)
    kwargs = dict(opset_version=opset, input_names=["x"], output_names=["y"],
                  dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        try:
            torch.onnx.export(model.to(dtype), (x,), str(path), dynamo=False, **kwargs)
        except TypeError:  # a torch without the dynamo switch exports with TorchScript anyway
            torch.onnx.export(model.to(dtype), (x,), str(path), **kwargs)
        except Exception as exc:  # noqa: BLE001 - any exporter failure means: cannot test here
            pytest.skip(f"torch.onnx.export cannot export at opset {opset}: {type(exc).__name__}: {exc}")
    return path


def batch(n: int = 7, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3))


def spec_for(net: Net, x: np.ndarray, t: np.ndarray, **kw: object) -> LearnSpec:
    return LearnSpec(inputs={net.inputs[0]: x}, targets={net.outputs[0]: t}, **kw)


# --- structure and forward ---------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("opset", OPSETS)
def test_matches_onnxruntime(tmp_path: Path, opset: int, act: str, bias: bool) -> None:
    path = export(mlp(act, bias), tmp_path / "m.onnx", opset)
    net = load_onnx(path)
    x = batch()
    got = reference.run(net, {"x": x})["y"]
    want = ort.run(path, {"x": x})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{act}, opset {opset}")
    # one node per Linear (+ activation), the input and the output named after the graph's
    assert [n.op for n in net.nodes] == ["identity", OPS[act], "identity"], [n.op for n in net.nodes]
    assert (net.inputs, net.outputs) == (["x"], ["y"])
    assert all(p.learnable for p in net.projections)
    assert [n.bias is not None for n in net.nodes] == [False, bias, bias]


@pytest.mark.parametrize("opset", OPSETS)
def test_float64_model_and_softmax_output(tmp_path: Path, opset: int) -> None:
    path = export(mlp("tanh", out_act="softmax"), tmp_path / "m.onnx", opset, torch.float64)
    net = load_onnx(path)
    x = batch()
    np.testing.assert_allclose(reference.run(net, {"x": x})["y"], ort.run(path, {"x": x})["y"],
                               rtol=1e-12, atol=1e-14)
    assert net.nodes[-1].op == "softmax"


def test_weights_carried_exactly(tmp_path: Path) -> None:
    model = mlp("relu")
    net = load_onnx(export(model, tmp_path / "m.onnx", 13))
    np.testing.assert_array_equal(net.projection("1.weight").matrix, model[1].weight.detach().double().numpy().T)
    np.testing.assert_array_equal(net.node("y").bias, model[3].bias.detach().double().numpy())
    assert net.node("y").bias.dtype == np.float64


def test_constant_folding_and_no_flatten(tmp_path: Path) -> None:
    """Without constant folding the exporter leaves Transpose ops on the weights; they fold here."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Sigmoid(), nn.Linear(4, 2))
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, 3),), str(path), opset_version=13, dynamo=False,
                          do_constant_folding=False, input_names=["x"], output_names=["y"])
    assert "Transpose" in {n.op_type for n in onnx.load(str(path)).graph.node}
    x = batch(2)  # a fixed batch of 2, as exported
    np.testing.assert_allclose(reference.run(load_onnx(path), {"x": x})["y"], ort.run(path, {"x": x})["y"],
                               rtol=1e-5, atol=1e-6)


# --- training ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_training_matches_torch(tmp_path: Path, act: str, bias: bool) -> None:
    """The imported Net trains as the original torch model does (float64, SGD, MSE mean)."""
    model = mlp(act, bias, out_act="sigmoid" if act == "identity" else "identity")
    net = load_onnx(export(model, tmp_path / "m.onnx", 13))
    model = model.double()  # the same (float32-valued) weights, trained in float64
    x, t = batch(6), np.random.default_rng(2).uniform(size=(6, 2))
    result = train_reference(net, spec_for(net, x, t, epochs=3, minibatch_size=2, learning_rate=0.3))
    want = torch_sgd(model, x, t, epochs=3, mb=2, lr=0.3)
    np.testing.assert_allclose(result.losses, want, rtol=1e-10, err_msg="per-minibatch losses")
    for i, p in zip((1, 3), net.projections, strict=True):
        np.testing.assert_allclose(p.matrix, model[i].weight.detach().numpy().T, rtol=0, atol=1e-8,
                                   err_msg=p.name)
    for i, node in zip((1, 3), net.nodes[1:], strict=True):
        if bias:
            np.testing.assert_allclose(node.bias, model[i].bias.detach().numpy(), rtol=0, atol=1e-8,
                                       err_msg=node.name)
    epoch_loss = np.mean(np.reshape(result.losses, (3, 3)), axis=1)
    assert epoch_loss[-1] < epoch_loss[0], epoch_loss


@pytest.mark.parametrize("backend", ["torch", "llvm"])
def test_other_trainers_match_reference(tmp_path: Path, backend: str) -> None:
    try:
        runner = __import__(f"mdfx.runners.{backend}", fromlist=["train"])
        train = runner.train
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"mdfx.runners.{backend}.train is not available: {exc}")
    net = load_onnx(export(mlp("tanh", out_act="sigmoid"), tmp_path / "m.onnx", 17))
    x, t = batch(6), np.random.default_rng(2).uniform(size=(6, 2))
    want = train_reference(net.copy(), spec_for(net, x, t, epochs=4, minibatch_size=3, learning_rate=0.2))
    got = train(net.copy(), spec_for(net, x, t, epochs=4, minibatch_size=3, learning_rate=0.2))
    np.testing.assert_allclose(got.losses, want.losses, rtol=1e-10, err_msg=f"{backend} losses")
    for name, value in want.params.items():
        np.testing.assert_allclose(got.params[name], value, rtol=1e-10, atol=1e-12, err_msg=f"{backend} {name}")


def test_round_trip_through_our_export(tmp_path: Path) -> None:
    """ONNX -> mdfx -> train -> ONNX -> onnxruntime gives the trained Net's numbers; re-import keeps names."""
    try:
        from mdfx.converters.onnx_export import to_onnx
    except ImportError as exc:
        pytest.skip(f"mdfx.converters.onnx_export is not available: {exc}")
    net = load_onnx(export(mlp("relu", out_act="softmax"), tmp_path / "m.onnx", 17))
    x, t = batch(6), np.random.default_rng(2).uniform(size=(6, 2))
    train_reference(net, spec_for(net, x, t, epochs=2, minibatch_size=2, learning_rate=0.5))
    exported = to_onnx(net, dtype="float64")
    np.testing.assert_allclose(ort.run(exported, {"x": x})["y"], reference.run(net, {"x": x})["y"],
                               rtol=1e-12, atol=1e-14)
    again = load_onnx(exported)
    assert (again.inputs, again.outputs) == (net.inputs, net.outputs)
    assert [(n.op, n.size) for n in again.nodes] == [(n.op, n.size) for n in net.nodes]
    np.testing.assert_allclose(reference.run(again, {"x": x})["y"], reference.run(net, {"x": x})["y"],
                               rtol=1e-12)


def test_mdfx_load_gives_a_trainable_composition(tmp_path: Path) -> None:
    path = export(mlp("sigmoid"), tmp_path / "model.onnx", 13)
    comp = mdfx.load(path)
    assert isinstance(comp, mdfx.AutodiffComposition)
    assert comp.projections and all(p.learnable for p in comp.projections)
    before = [p.matrix.copy() for p in comp.projections]
    x, t = batch(4), np.random.default_rng(2).uniform(size=(4, 2))
    comp.learn(inputs={"x": x}, targets={"y": t}, epochs=5, minibatch_size=4, learning_rate=1.0,
               execution_mode=mdfx.ExecutionMode.Python)
    assert all(not np.array_equal(b, p.matrix) for b, p in zip(before, comp.projections, strict=True))
    assert comp.losses[-1] < comp.losses[0], comp.losses


# --- hand-built graphs: patterns and errors ------------------------------------------------------


def graph_model(nodes: list, inits: list, opset: int = 13, in_type: int = TensorProto.FLOAT,
                inputs: tuple[str, ...] = ("x",)) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, in_type, ["batch", 3]) for n in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor(name, TensorProto.FLOAT, v.shape, v.ravel()) for name, v in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


W = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
B = np.array([0.5, -0.5, 1.0, 0.0], dtype=np.float32)


def test_matmul_add_and_scales_fold_into_one_layer() -> None:
    """MatMul + Add(bias) + Mul(2) + Sub(1) + LeakyRelu: one projection, one node."""
    m = graph_model([
        helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
        helper.make_node("Add", ["B", "h"], ["hb"], name="add"),
        helper.make_node("Mul", ["hb", "two"], ["h2"], name="mul"),
        helper.make_node("Sub", ["h2", "one"], ["h3"], name="sub"),
        helper.make_node("LeakyRelu", ["h3"], ["y"], name="act", alpha=0.5),
    ], [("W", W), ("B", B), ("two", np.array(2.0, np.float32)), ("one", np.array(1.0, np.float32))])
    net = load_onnx(m)
    assert [(n.name, n.op) for n in net.nodes] == [("x", "identity"), ("y", "relu")]
    assert net.node("y").params["leak"] == 0.5
    x = batch()
    np.testing.assert_allclose(reference.run(net, {"x": x})["y"], ort.run(m, {"x": x})["y"], rtol=1e-5, atol=1e-6)


def test_two_inputs_summed_into_one_node() -> None:
    m = graph_model([
        helper.make_node("MatMul", ["a", "W"], ["ha"]),
        helper.make_node("MatMul", ["b", "W2"], ["hb"]),
        helper.make_node("Add", ["ha", "hb"], ["h"]),
        helper.make_node("Tanh", ["h"], ["y"]),
    ], [("W", W), ("W2", -W)], inputs=("a", "b"))
    net = load_onnx(m)
    assert sorted((p.sender, p.receiver) for p in net.projections) == [("a", "y"), ("b", "y")]
    x1, x2 = batch(seed=3), batch(seed=4)
    np.testing.assert_allclose(reference.run(net, {"a": x1, "b": x2})["y"], ort.run(m, {"a": x1, "b": x2})["y"],
                               rtol=1e-5, atol=1e-6)


def test_layer_read_twice_becomes_one_node() -> None:
    """A Gemm output that is a graph output and feeds two activations: one node, shared weights."""
    g = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "B"], ["h"], name="layer"),
         helper.make_node("Relu", ["h"], ["r"], name="relu"),
         helper.make_node("Sigmoid", ["h"], ["s"], name="sig"),
         helper.make_node("Add", ["r", "s"], ["y"], name="sum")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "h")],
        [helper.make_tensor(name, TensorProto.FLOAT, v.shape, v.ravel()) for name, v in (("W", W), ("B", B))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    net = load_onnx(m)
    assert [p.name for p in net.projections if p.learnable] == ["W"]
    assert net.outputs == ["y", "h"] and net.node("h").op == "identity"
    x = batch()
    got, want = reference.run(net, {"x": x}), ort.run(m, {"x": x})
    for name in ("y", "h"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6, err_msg=name)


ERRORS = [
    ("unsupported op", [helper.make_node("Conv", ["x", "W"], ["c"], name="conv1"),
                        helper.make_node("MaxPool", ["c"], ["y"], name="pool1", kernel_shape=[2])], 13,
     UnsupportedError, r"unsupported ONNX ops: Conv \(node 'conv1'\); MaxPool \(node 'pool1'\)\. mdfx imports "
                       r"feed-forward networks built from: Add, Cast, Constant, .*Gemm.*Softmax"),
    ("transA", [helper.make_node("Gemm", ["x", "W"], ["y"], name="g", transA=1)], 13,
     UnsupportedError, r"node 'g' \(Gemm\): transA=1 is not supported"),
    ("product of tensors", [helper.make_node("Mul", ["x", "x"], ["y"], name="sq")], 13,
     UnsupportedError, r"node 'sq' \(Mul\): both operands are computed tensors"),
    ("softmax over batch", [helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=0)], 13,
     UnsupportedError, r"node 'sm' \(Softmax\): axis=0 is not supported"),
    ("old opset", [helper.make_node("Relu", ["x"], ["y"])], 8,
     UnsupportedError, r"default-domain opset 8; mdfx imports opsets 9-21"),
    ("bad weight shape", [helper.make_node("MatMul", ["x", "B"], ["y"], name="mm")], 13,
     UnsupportedError, r"node 'mm' \(MatMul\): weight of shape \(4,\) does not fit an input of 3 features"),
    ("flatten batch", [helper.make_node("Flatten", ["x"], ["y"], name="f", axis=0)], 13,
     UnsupportedError, r"node 'f' \(Flatten\): axis=0 is not supported"),
]


@pytest.mark.parametrize(("nodes", "opset", "error", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_name_the_op(nodes: list, opset: int, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        load_onnx(graph_model(nodes, [("W", W), ("B", B)], opset))


def test_integer_input_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match=r"graph input 'x' has ONNX element type 7; mdfx imports float"):
        load_onnx(graph_model([helper.make_node("Relu", ["x"], ["y"])], [], in_type=TensorProto.INT64))
    with pytest.raises(SchemaError, match="no such file"):
        load_onnx(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(SchemaError, match="not a readable ONNX model"):
        load_onnx(tmp_path / "junk.onnx")


# --- corpus: ONNX files written by older PyTorch ----------------------------------------------------

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")


@needs_corpus
def test_corpus_ab_loads_and_matches_onnxruntime() -> None:
    """x + 1 then * 5 (opset 15): an identity node with a fixed 5*I projection and bias 5."""
    path = CORPUS / "modeci-examples" / "ONNX_ab_torch-jit-export-m2o.onnx"
    net = load_onnx(path)
    x = batch(2)
    np.testing.assert_allclose(reference.run(net, {"input": x})[net.outputs[0]],
                               ort.run(path, {"input": x})["Mul_3__4"], rtol=1e-6)


#: Decision per file: modeci-mdf's own PyTorch export of its MDF examples uses shape ops (the
#: input is ignored, only its shape is read), Reciprocal and Sin; Arrays has no input at all.
REFUSED_ONNX = {
    "PyTorchMDF_ABCD.onnx": r"unsupported ONNX ops: ConstantOfShape .*Reciprocal .*Shape .*Sin \(node '/D/Sin'\)",
    "PyTorchMDF_Simple.onnx": r"unsupported ONNX ops: ConstantOfShape .*Reciprocal \(node '/processing_node/",
    "PyTorchMDF_translated_ABCD.onnx": r"unsupported ONNX ops: ConstantOfShape .*Shape .*Sin \(node 'Sin_33'\)",
    "PyTorchMDF_Arrays.onnx": r"ONNX graph 'main_graph' has no inputs",
}


@needs_corpus
@pytest.mark.parametrize("name", sorted(REFUSED_ONNX))
def test_corpus_files_refused_with_reason(name: str) -> None:
    with pytest.raises(UnsupportedError, match=REFUSED_ONNX[name]):
        load_onnx(CORPUS / "modeci-examples" / name)


def test_mdfx_export_round_trip_keeps_every_name(tmp_path: Path) -> None:
    from helpers import xor_composition

    comp, _, _ = xor_composition()
    back = mdfx.load(mdfx.save(comp, tmp_path / "xor.onnx"))
    assert [n.name for n in back.nodes] == ["xor_in", "xor_hid", "xor_out"]
    assert [p.name for p in back.projections] == ["in_to_hid", "hid_to_out"]
