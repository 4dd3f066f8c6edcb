"""Convolutional networks, generated at test time: every spatial op and option, from torch and from both
ONNX exporters (opsets 13, 17, 18; float32 and float64; dynamic and fixed batch).

For each module or file: run() equals onnxruntime (float32; the float64 torch module where onnxruntime has
no float64 kernel, as for Conv), training in Python and PyTorch modes equals the same training of the
original torch module in float64 (SGD and Adam, MSE and cross-entropy, minibatch 1 and 8, BatchNorm in
train() mode), LLVMRun refuses by node and op, the export back runs in onnxruntime, the state_dict loads
into the original module, and MDF round-trips exactly.

The default run takes a representative subset; ``MDFX_FULL_CNN=1`` runs every combination.
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from helpers import assert_close  # noqa: E402

import mdfx  # noqa: E402
from mdfx.composition.graph_model import GraphComposition  # noqa: E402
from mdfx.errors import GraphError, UnsupportedError  # noqa: E402
from mdfx.runners import reference  # noqa: E402
from mdfx.schema.graph import Graph, Node, Param  # noqa: E402

nn, F = torch.nn, torch.nn.functional
FULL = os.environ.get("MDFX_FULL_CNN") == "1"


class ResBlock(nn.Module):
    """Conv-BN-ReLU-Conv-BN plus the input (a residual addition), global average pool, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(4)
        self.proj = nn.Conv2d(3, 4, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.b1(self.c1(x)))
        h = F.relu(self.b2(self.c2(h)) + self.proj(x))
        return self.fc(torch.flatten(self.pool(h), 1))


def _lenet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 5), nn.Tanh(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def _grouped() -> nn.Module:
    """Grouped, depthwise (dilated, no bias) convs; ceil_mode and dilated max pooling; average pooling
    without the padding counted."""
    return nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), nn.ReLU(),
                         nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=6, bias=False),
                         nn.MaxPool2d(2, stride=1, dilation=2), nn.MaxPool2d(3, 2, 1, ceil_mode=True),
                         nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
                         nn.Flatten(), nn.Linear(24, 3))


def _conv1d() -> nn.Module:
    return nn.Sequential(nn.Conv1d(2, 4, 3, stride=2, padding=1), nn.BatchNorm1d(4), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Conv1d(4, 4, 3, padding="same"), nn.AvgPool1d(2, count_include_pad=True),
                         nn.Flatten(), nn.Linear(8, 3))


def _convt() -> nn.Module:
    """ConvTranspose2d (stride, pads, output_padding), an asymmetric zero pad, an adaptive pool that divides."""
    return nn.Sequential(nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                         nn.ZeroPad2d((1, 0, 2, 1)), nn.Conv2d(3, 2, 2), nn.AvgPool2d((5, 4)),
                         nn.Flatten(), nn.Linear(8, 3))


def _adaptive() -> nn.Module:
    """AdaptiveAvgPool2d to a size dividing the input (torch's legacy exporter cannot write it: from_torch only)."""
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.AdaptiveAvgPool2d((2, 3)), nn.Flatten(), nn.Linear(18, 3))


#: name -> (module factory, input feature shape)
MODULES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "lenet": (_lenet, (1, 12, 12)),
    "resblock": (ResBlock, (3, 6, 6)),
    "grouped": (_grouped, (4, 9, 9)),
    "conv1d": (_conv1d, (2, 16)),
    "convt_pad": (_convt, (2, 4, 4)),
    "adaptive": (_adaptive, (2, 6, 9)),
}
#: what torch's exporters write (the legacy one has no adaptive_avg_pool2d to a size > 1)
EXPORTED = [n for n in MODULES if n != "adaptive"]
#: with BatchNorm (trained in train() mode below)
WITH_BN = {"resblock", "conv1d"}


def module(name: str, dtype: torch.dtype = torch.float64, train: bool = False) -> nn.Module:
    factory, _ = MODULES[name]
    torch.manual_seed(sum(map(ord, name)))
    m = factory().to(dtype)
    with torch.no_grad():  # BatchNorm statistics as a trained module has them
        for sub in m.modules():
            if isinstance(sub, nn.BatchNorm1d | nn.BatchNorm2d):
                sub.running_mean.uniform_(-0.5, 0.5)
                sub.running_var.uniform_(0.5, 2.0)
                sub.weight.uniform_(0.5, 1.5)
                sub.bias.uniform_(-0.5, 0.5)
                sub.num_batches_tracked.fill_(3)
    return m.train(train)


def data(name: str, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *MODULES[name][1]))


def _out(m: nn.Module, x: np.ndarray) -> np.ndarray:
    dtype = next(m.parameters()).dtype
    with torch.no_grad():
        return m.eval()(torch.from_numpy(x).to(dtype)).double().numpy()


def _quiet() -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return stack


def export(m: nn.Module, name: str, path: Path, dynamo: bool, opset: int, dynamic: bool,
           training: bool = False) -> Path:
    """Export with the settings that keep BatchNormalization in the file (see docs/importing.md)."""
    dtype = next(m.parameters()).dtype
    example = (torch.zeros(2, *MODULES[name][1], dtype=dtype),)
    kw: dict = {"opset_version": opset, "input_names": ["x"], "output_names": ["y"], "dynamo": dynamo}
    if dynamo:
        kw["optimize"] = False  # the optimizer folds an eval-mode BatchNorm into the Conv
        if dynamic:
            kw["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=1024)},)
    else:
        kw["do_constant_folding"] = False  # constant folding fuses BatchNorm into the Conv
        if dynamic:
            kw["dynamic_axes"] = {"x": {0: "batch"}, "y": {0: "batch"}}
        if training:
            kw["training"] = torch.onnx.TrainingMode.TRAINING
    with _quiet():
        torch.onnx.export(m, example, str(path), **kw)
    return path


def _ort_run(path: Path, x: np.ndarray) -> np.ndarray | None:
    """onnxruntime's output, or None where it has no kernel (float64 Conv on the CPU)."""
    try:
        sess = ort.InferenceSession(str(path))
    except Exception as exc:  # onnxruntime's NOT_IMPLEMENTED for a float64 kernel
        if "NOT_IMPLEMENTED" in str(exc):
            return None
        raise
    feed = x.astype(np.float32) if "tensor(float)" == sess.get_inputs()[0].type else x
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: feed})[0], dtype=np.float64)


# --- the file corpus: both exporters, opsets, dtypes, batch ------------------------------------------

CORPUS = [(n, dyn, opset, dt, dynamic) for n in EXPORTED for dyn in (False, True) for opset in (13, 17, 18)
          for dt in ("float32", "float64") for dynamic in (True, False)]
DEFAULT_CORPUS = [("lenet", False, 17, "float32", True), ("resblock", True, 18, "float64", True),
                  ("grouped", False, 13, "float64", False), ("conv1d", True, 17, "float32", False),
                  ("convt_pad", False, 18, "float32", True)]


@pytest.mark.parametrize(("name", "dynamo", "opset", "dtype", "dynamic"), CORPUS if FULL else DEFAULT_CORPUS,
                         ids=lambda v: str(v))
def test_file_runs_like_onnxruntime_and_exports_back(tmp_path: Path, name: str, dynamo: bool, opset: int,
                                                     dtype: str, dynamic: bool) -> None:
    m = module(name, getattr(torch, dtype))
    path = export(m, name, tmp_path / "m.onnx", dynamo, opset, dynamic)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no folded-Conv warning: BatchNormalization was kept
        comp = mdfx.load(path)
    g = comp.graph
    assert g.dtype == dtype
    assert sum(n.op == "BatchNormalization" for n in g.nodes) == (0 if name not in WITH_BN else 2 - (name == "conv1d"))
    x = data(name, 5 if dynamic else 2)
    got = reference.run(g, {"x": x})["y"]
    want = _ort_run(path, x)
    tol = {"float32": (1e-5, 1e-5), "float64": (1e-10, 1e-12)}[dtype]
    if want is None:  # onnxruntime lacks the float64 kernel: the float64 torch module
        want = _out(m, x)
    assert_close(got, want, rtol=tol[0], atol=tol[1], what=f"{name} run() vs onnxruntime/torch")
    back = mdfx.save(comp, tmp_path / "back.onnx", dtype="float32")
    assert_close(_ort_run(back, x), got, rtol=1e-5, atol=1e-5, what=f"{name} export back in onnxruntime")


@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_from_torch_runs_like_the_module(tmp_path: Path, name: str, dtype: str) -> None:
    m = module(name, getattr(torch, dtype))
    comp = mdfx.from_torch(copy.deepcopy(m).eval(), torch.zeros(2, *MODULES[name][1], dtype=getattr(torch, dtype)),
                           input_names=["x"])
    x = data(name, 6)
    got = reference.run(comp.graph, {"x": x})["output"]
    tol = {"float32": (1e-5, 1e-6), "float64": (1e-10, 1e-12)}[dtype]
    assert_close(got, _out(m, x), rtol=tol[0], atol=tol[1], what=f"{name} from_torch run()")
    for mode in (mdfx.ExecutionMode.PyTorch,):
        comp.run(inputs={"x": x}, execution_mode=mode)
        assert_close(np.asarray(comp.results[-1][0]), got[-1], rtol=tol[0], atol=tol[1], what=f"{name} {mode.name}")
    back = mdfx.load(mdfx.save(comp, tmp_path / "m.json"))  # MDF round trip: the same graph
    assert [(n.op, n.attrs) for n in back.graph.nodes] == [(n.op, n.attrs) for n in comp.graph.nodes]
    assert_close(reference.run(back.graph, {"x": x})["output"], got, rtol=0, atol=0, what=f"{name} MDF round trip")
    onnx_back = mdfx.save(comp, tmp_path / "m.onnx", dtype="float32")
    assert_close(_ort_run(onnx_back, x), got, rtol=1e-5, atol=1e-5, what=f"{name} ONNX export in onnxruntime")


# --- training equals torch's ---------------------------------------------------------------------------


def torch_train(m: nn.Module, x: np.ndarray, t: np.ndarray, optimizer: str, loss: str, mb: int, lr: float,
                epochs: int = 2) -> list[float]:
    opt = torch.optim.SGD(m.parameters(), lr=lr) if optimizer == "sgd" else torch.optim.Adam(m.parameters(), lr=lr)
    fn = F.mse_loss if loss == "MSE" else F.cross_entropy
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    losses = []
    for _ in range(epochs):
        for i in range(0, len(x), mb):
            opt.zero_grad()
            value = fn(m(xt[i:i + mb]), tt[i:i + mb])
            value.backward()
            opt.step()
            losses.append(value.item())
    return losses


def _targets(loss: str, n: int) -> np.ndarray:
    r = np.random.default_rng(9)
    return r.normal(size=(n, 3)) if loss == "MSE" else np.eye(3)[r.integers(0, 3, n)]


def _train_and_compare(tmp_path: Path, name: str, comp_graph: Graph, m: nn.Module, optimizer: str, loss: str,
                       mb: int, mode: mdfx.ExecutionMode, output: str, state_dict: bool) -> None:
    x, t = data(name, 8, seed=4), _targets(loss, 8)
    lr = 0.05 if optimizer == "sgd" else 0.01
    comp = GraphComposition(comp_graph, optimizer_type=optimizer,
                            loss_spec=mdfx.Loss.MSE if loss == "MSE" else mdfx.Loss.CROSS_ENTROPY)
    original = copy.deepcopy(m)
    refused = [n for n in comp_graph.nodes if n.op == "ConvTranspose" or n.attrs.get("training_mode")]
    if mode is mdfx.ExecutionMode.LLVMRun and refused:  # no LLVM kernel: refused by node, never run otherwise
        with pytest.raises(UnsupportedError, match=rf"node {refused[0].name!r} \({refused[0].op}.*the LLVM backend"):
            comp.learn(inputs={"x": x}, targets={output: t}, minibatch_size=mb, execution_mode=mode)
        return
    want = torch_train(m, x, t, optimizer, loss, mb, lr)
    comp.learn(inputs={"x": x}, targets={output: t}, epochs=2, minibatch_size=mb, learning_rate=lr,
               execution_mode=mode)
    what = f"{name} {optimizer} {loss} mb={mb} {mode.name}"
    assert_close(comp.losses, want, rtol=1e-9, atol=1e-12, what=f"{what}: losses")
    trained = m.state_dict()
    if state_dict:  # the file loads into the original module and holds torch's trained values
        original.load_state_dict(torch.load(mdfx.save(comp, tmp_path / "w.pt"), weights_only=True), strict=True)
        got = original.state_dict()
    else:
        got = {k: torch.from_numpy(v.value) for k, v in comp_graph.params.items() if k in trained}
        assert got, f"{what}: no param of the file is named like the module's state_dict"
    for key, value in got.items():
        # 1e-9: Adam divides by sqrt(v); a gradient that is zero in exact arithmetic (a conv bias before a
        # training BatchNorm) is rounding noise in both, which its steps carry to ~1e-10
        assert_close(value.double().numpy(), trained[key].double().numpy(), rtol=1e-9, atol=1e-9,
                     what=f"{what}: {key}")


MODES = [mdfx.ExecutionMode.Python, mdfx.ExecutionMode.PyTorch, mdfx.ExecutionMode.LLVMRun]
TRAIN_ALL = list(itertools.product(MODULES, ("sgd", "adam"), ("MSE", "CROSS_ENTROPY"), (1, 8), MODES))
TRAIN_DEFAULT = [("lenet", "sgd", "MSE", 8, MODES[1]), ("resblock", "adam", "CROSS_ENTROPY", 8, MODES[0]),
                 ("resblock", "sgd", "MSE", 1, MODES[1]), ("conv1d", "sgd", "CROSS_ENTROPY", 8, MODES[1]),
                 ("grouped", "adam", "MSE", 8, MODES[1]), ("convt_pad", "sgd", "MSE", 8, MODES[0]),
                 ("lenet", "adam", "CROSS_ENTROPY", 8, MODES[2]), ("grouped", "sgd", "MSE", 1, MODES[2]),
                 ("resblock", "sgd", "MSE", 8, MODES[2])]


@pytest.mark.parametrize(("name", "optimizer", "loss", "mb", "mode"), TRAIN_ALL if FULL else TRAIN_DEFAULT,
                         ids=lambda v: getattr(v, "name", str(v)))
def test_from_torch_training_equals_torch(tmp_path: Path, name: str, optimizer: str, loss: str, mb: int,
                                          mode: mdfx.ExecutionMode) -> None:
    """The module in train(): BatchNorm normalises with batch statistics and updates the running ones."""
    m = module(name, train=True)
    graph = mdfx.from_torch(copy.deepcopy(m), torch.zeros(2, *MODULES[name][1], dtype=torch.float64),
                            input_names=["x"]).graph
    if name in WITH_BN:
        assert all(n.attrs["training_mode"] == 1 for n in graph.nodes if n.op == "BatchNormalization")
    _train_and_compare(tmp_path, name, graph, m, optimizer, loss, mb, mode, "output", state_dict=True)


FILE_TRAIN = [(n, dyn, train) for n in ("resblock", "conv1d", "lenet") for dyn in (False, True)
              for train in (False, True) if not (dyn and train)]


@pytest.mark.parametrize(("name", "dynamo", "train"),
                         FILE_TRAIN if FULL else [("resblock", False, True), ("resblock", True, False)],
                         ids=lambda v: str(v))
def test_onnx_file_training_equals_torch(tmp_path: Path, name: str, dynamo: bool, train: bool) -> None:
    """A float64 file trains like its module: eval() export (BatchNorm frozen statistics) like the module in
    eval(); a TrainingMode.TRAINING export (BatchNormalization training_mode=1) like the module in train()."""
    m = module(name, train=train)
    path = export(m, name, tmp_path / "m.onnx", dynamo, 17, dynamic=True, training=train)
    graph = mdfx.load(path).graph
    if name in WITH_BN:
        assert {n.attrs["training_mode"] for n in graph.nodes if n.op == "BatchNormalization"} == {int(train)}
    for mode in (mdfx.ExecutionMode.PyTorch, mdfx.ExecutionMode.LLVMRun):  # LLVMRun refuses training BatchNorm
        m2 = copy.deepcopy(m).train(train)
        _train_and_compare(tmp_path, name, graph.copy(), m2, "sgd", "MSE", 4, mode, "y", state_dict=False)


def test_llvm_refuses_convtranspose_and_training_batchnorm_by_node() -> None:
    m = module("resblock", train=True)
    comp = mdfx.from_torch(m, torch.zeros(2, 3, 6, 6, dtype=torch.float64))
    x, t = data("resblock", 4), _targets("MSE", 4)
    with pytest.raises(UnsupportedError, match=r"node 'b1' \(BatchNormalization, training_mode=1\): the LLVM"):
        comp.learn(inputs={"x": x}, targets={"output": t}, execution_mode=mdfx.ExecutionMode.LLVMRun)
    comp = mdfx.from_torch(module("convt_pad"), torch.zeros(2, 2, 4, 4, dtype=torch.float64))
    x = data("convt_pad", 4)
    with pytest.raises(UnsupportedError, match=r"node '0' \(ConvTranspose\): the LLVM backend has no kernel"):
        comp.learn(inputs={"input": x}, targets={"output": t}, execution_mode=mdfx.ExecutionMode.LLVMRun)
    with pytest.raises(UnsupportedError, match=r"node '0' \(ConvTranspose\): the LLVM backend has no kernel"):
        comp.run(inputs={"input": x}, execution_mode=mdfx.ExecutionMode.LLVMRun)


@pytest.mark.parametrize("name", ["lenet", "grouped", "resblock", "conv1d"])
def test_llvm_run_equals_the_module(name: str) -> None:
    m = module(name)
    comp = mdfx.from_torch(copy.deepcopy(m), torch.zeros(2, *MODULES[name][1], dtype=torch.float64),
                           input_names=["x"])
    x = data(name, 5)
    comp.run(inputs={"x": x}, execution_mode=mdfx.ExecutionMode.LLVMRun)
    assert_close(np.asarray(comp.results[-1][0]), _out(m, x)[-1], rtol=1e-10, atol=1e-12, what=f"{name} LLVMRun")


def test_batchnorm_train_mode_state_after_training_then_eval(tmp_path: Path) -> None:
    """Running statistics after training equal torch's (momentum, unbiased variance, num_batches_tracked),
    and run() afterwards is the module in eval()."""
    m = module("resblock", train=True)
    comp = mdfx.from_torch(copy.deepcopy(m), torch.zeros(2, 3, 6, 6, dtype=torch.float64))
    x, t = data("resblock", 8), _targets("MSE", 8)
    torch_train(m, x, t, "sgd", "MSE", 4, 0.05)
    comp.learn(inputs={"x": x}, targets={"output": t}, epochs=2, minibatch_size=4, learning_rate=0.05,
               execution_mode=mdfx.ExecutionMode.Python)
    sd = torch.load(mdfx.save(comp, tmp_path / "w.pt"), weights_only=True)
    for key in ("b1.running_mean", "b1.running_var", "b2.running_var"):
        assert_close(sd[key].numpy(), m.state_dict()[key].numpy(), rtol=1e-12, atol=1e-14, what=key)
    assert int(sd["b1.num_batches_tracked"]) == int(m.b1.num_batches_tracked) == 3 + 4
    got = reference.run(comp.graph, {"x": x})["output"]
    assert_close(got, _out(m, x), rtol=1e-10, atol=1e-12, what="run() after training = eval()")


def test_folded_batchnorm_warns_once(tmp_path: Path) -> None:
    m = module("resblock")
    for dynamo in (False, True):
        path = tmp_path / f"folded_{dynamo}.onnx"
        with _quiet():
            torch.onnx.export(m.eval(), (torch.zeros(2, 3, 6, 6, dtype=torch.float64),), str(path), dynamo=dynamo,
                              input_names=["x"], output_names=["y"])
        with pytest.warns(UserWarning, match="looks like an eval-mode BatchNorm folded into its weights") as rec:
            mdfx.load(path)
        assert sum("folded" in str(w.message) for w in rec) == 1, [str(w.message) for w in rec]


# --- refusals name the node, the op and what is wrong ----------------------------------------------------


@pytest.mark.parametrize(("op", "attrs", "wshape", "message"), [
    ("Conv", {"pads": [-1, 0, 0, 0]}, (2, 2, 3, 3), "pads [-1, 0, 0, 0] are negative"),
    ("Conv", {"pads": [float("nan"), 0, 0, 0]}, (2, 2, 3, 3), "expected integers"),
    ("Conv", {"pads": [1 << 20, 0, 0, 0]}, (2, 2, 3, 3), "exceed 65536"),
    ("Conv", {"strides": [0, 1]}, (2, 2, 3, 3), "strides [0, 1] must be >= 1"),
    ("Conv", {"dilations": [1, -2]}, (2, 2, 3, 3), "dilations [1, -2] must be >= 1"),
    ("Conv", {}, (2, 2, 7, 3), "larger than the padded input"),
    ("Conv", {"group": 3}, (3, 1, 3, 3), "group must divide both"),
    ("Conv", {"auto_pad": "SAME"}, (2, 2, 3, 3), "auto_pad 'SAME' is not one of"),
    ("MaxPool", {"kernel_shape": [3, 3], "pads": [3, 0, 0, 0]}, None, "reach a whole window"),
    ("AveragePool", {"kernel_shape": [6, 2]}, None, "larger than the padded input"),
    ("ConvTranspose", {"output_shape": [9, 9]}, (2, 2, 3, 3), "output_shape is not taken"),
    ("Pad", {"pads": [0, 0, 0, -1, 0, 0, 0, 0]}, None, "negative pads crop"),
    ("Pad", {"pads": [1, 0, 0, 0, 0, 0, 0, 0]}, None, "pads the batch axis"),
])
def test_bad_attributes_refused_naming_the_node(op: str, attrs: dict, wshape: tuple | None, message: str) -> None:
    params = [] if wshape is None else [Param("w", np.ones(wshape))]
    with pytest.raises(GraphError) as err:
        Graph.build("bad", {"x": (2, 5, 5)}, params, [Node("the_node", op, ["x", *[p.name for p in params]], "y",
                                                           attrs)], ["y"])
    msg = str(err.value)
    assert f"node 'the_node' ({op})" in msg and message in msg and "(batch, 2, 5, 5)" in msg, msg


def test_bad_onnx_conv_and_resize_refused_naming_the_node() -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from mdfx.converters.onnx_import import load_onnx

    def model(node: onnx.NodeProto) -> onnx.ModelProto:
        g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 2, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w"),
                               numpy_helper.from_array(np.ones(4, np.float32), "scales")])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    with pytest.raises(UnsupportedError, match=r"node 'c' \(Conv\): strides \[0, 1\] must be >= 1; input shapes: "
                                               r"x: \(batch, 2, 5, 5\)"):
        load_onnx(model(helper.make_node("Conv", ["x", "w"], ["y"], name="c", strides=[0, 1])))
    with pytest.raises(UnsupportedError, match=r"Resize \(resampling\) at node 'up'"):
        load_onnx(model(helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up")))


def test_from_torch_refuses_what_it_cannot_keep() -> None:
    cases = [(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")), "padding_mode='reflect'"),
             (nn.Sequential(nn.AdaptiveAvgPool2d(3)), "does not divide it"),
             (nn.Sequential(nn.MaxPool2d(2, return_indices=True)), "return_indices=True"),
             (nn.Sequential(nn.Upsample(scale_factor=2)), r"module '0' \(Upsample\)")]
    for m, message in cases:
        with pytest.raises(UnsupportedError, match=message):
            mdfx.from_torch(m.double(), torch.zeros(2, 1, 4, 4, dtype=torch.float64))


def test_dropout_trains_as_identity_and_infers_exactly() -> None:
    """mdfx cannot draw torch's dropout masks (its RNG stream is torch's own): Dropout is the identity in run()
    and in learn(), which equals the module in eval() exactly."""
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout(0.5), nn.Flatten(), nn.Linear(8, 2)).double().eval()
    comp = mdfx.from_torch(copy.deepcopy(m), torch.zeros(2, 1, 4, 4, dtype=torch.float64), input_names=["x"])
    x = np.random.default_rng(0).normal(size=(3, 1, 4, 4))
    assert_close(reference.run(comp.graph, {"x": x})["output"], _out(m, x), rtol=1e-12, atol=1e-14, what="dropout")
