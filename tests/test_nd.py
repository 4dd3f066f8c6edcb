"""N-D tensors: ops that ONNX defines on any rank (MatMul batched at rank 3/4, broadcasting, Transpose that
keeps the batch, Concat, Reduce*, Softmax on any axis, BatchNormalization on (batch, C, H, W), Flatten,
Reshape) run and train like the original torch module in every mode, from torch and from both ONNX exporters."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import assert_close  # noqa: E402

import mdfx  # noqa: E402
from mdfx import ops  # noqa: E402
from mdfx.errors import GraphError  # noqa: E402
from mdfx.runners import reference  # noqa: E402
from mdfx.schema.graph import Graph, Node, Param  # noqa: E402

nn, F = torch.nn, torch.nn.functional


class ND(nn.Module):
    """(batch, 2, 3, 4) through rank-4 and batched rank-3 MatMul, BatchNorm2d, Softmax(dim=1), a Transpose of
    the last two axes, a keepdims mean over (2, 3), Concat + Slice on axis 1, Flatten, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 5) * 0.5)
        self.w4 = nn.Parameter(torch.randn(2, 5, 3) * 0.5)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2 * 3 * 3, 2)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(x @ self.w)
        h = self.bn(h @ self.w4)
        h = torch.softmax(h, dim=1) + h.transpose(2, 3)
        h = h + h.mean(dim=(2, 3), keepdim=True)
        h = torch.cat([h, h * 0.5], dim=1)[:, 1:3]
        return F.log_softmax(self.fc(h.flatten(1)), dim=-1)


def _module() -> nn.Module:
    torch.manual_seed(0)
    return ND().double().eval()


X = np.random.default_rng(0).normal(size=(8, 2, 3, 4))
EXAMPLE = torch.zeros(2, 2, 3, 4, dtype=torch.float64)


def _export(module: nn.Module, path: Path, dynamo: bool) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (EXAMPLE,), str(path), dynamo=dynamo, input_names=["x"], output_names=["y"],
                          dynamic_axes=None if dynamo else {"x": {0: "b"}, "y": {0: "b"}}, verbose=False)
    return path


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("nd")
    # dynamo=True fixes the batch at the example's 2; the import copies the batch from the input instead
    return {f"dynamo={dyn}": _export(_module(), d / f"nd_{dyn}.onnx", dyn) for dyn in (False, True)}


def _want(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("source", ["from_torch", "dynamo=False", "dynamo=True"])
def test_nd_run_equals_the_module(source: str, onnx_files: dict[str, Path]) -> None:
    m = _module()
    comp = mdfx.from_torch(copy.deepcopy(m), EXAMPLE) if source == "from_torch" else mdfx.load(onnx_files[source])
    g = comp.graph
    assert g.inputs[next(iter(g.inputs))] == (2, 3, 4)
    got = reference.run(g, {next(iter(g.inputs)): X})[g.outputs[0]]
    assert_close(got, _want(m, X), rtol=1e-10, atol=1e-12, what=source)


@pytest.mark.parametrize("mode", [mdfx.ExecutionMode.Python, mdfx.ExecutionMode.PyTorch,
                                  mdfx.ExecutionMode.LLVMRun], ids=lambda m: m.name)
def test_nd_training_equals_torch_and_the_state_dict_loads(tmp_path: Path, mode: mdfx.ExecutionMode) -> None:
    m = _module()
    comp = mdfx.from_torch(copy.deepcopy(m), EXAMPLE)
    t = np.random.default_rng(1).normal(size=(8, 2))
    comp.learn(inputs={"x": X}, targets={comp.graph.outputs[0]: t}, epochs=2, minibatch_size=4,
               learning_rate=0.05, execution_mode=mode)
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    losses = []
    for _ in range(2):
        for i in range(0, 8, 4):
            opt.zero_grad()
            loss = F.mse_loss(m(torch.from_numpy(X[i:i + 4])), torch.from_numpy(t[i:i + 4]))
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert_close(comp.losses, losses, rtol=1e-9, atol=1e-12, what=f"{mode.name} losses")
    original = _module()
    original.load_state_dict(torch.load(mdfx.save(comp, tmp_path / "w.pt"), weights_only=True), strict=True)
    for k, v in m.state_dict().items():
        assert_close(original.state_dict()[k].numpy(), v.numpy(), rtol=1e-9, atol=1e-12, what=k)


@pytest.mark.parametrize("suffix", [".json", ".onnx"])
def test_nd_round_trip(tmp_path: Path, suffix: str) -> None:
    m = _module()
    comp = mdfx.from_torch(copy.deepcopy(m), EXAMPLE)
    back = mdfx.load(mdfx.save(comp, tmp_path / f"nd{suffix}"))
    g = back.graph
    got = reference.run(g, {next(iter(g.inputs)): X})[g.outputs[0]]
    assert_close(got, _want(m, X), rtol=1e-10, atol=1e-12, what=suffix)
    if suffix == ".onnx":
        ort = pytest.importorskip("onnxruntime")
        sess = ort.InferenceSession(str(tmp_path / "nd.onnx"))
        feed = X.astype(np.float32) if "float)" in sess.get_inputs()[0].type else X
        assert_close(sess.run(None, {sess.get_inputs()[0].name: feed})[0], _want(m, X), rtol=1e-4, atol=1e-5,
                     what="onnxruntime")


def test_nd_shape_errors_name_node_op_and_shapes() -> None:
    w = Param("w", np.zeros((2, 5, 3)))
    with pytest.raises(GraphError) as err:
        Graph.build("bad", {"x": (2, 3, 4)}, [w], [Node("mm", "MatMul", ["x", "w"], "y")], ["y"])
    msg = str(err.value)
    assert "'mm'" in msg and "MatMul" in msg and "(batch, 2, 3, 4)" in msg and "(2, 5, 3)" in msg, msg
    with pytest.raises(GraphError) as err:
        Graph.build("bad", {"x": (2, 3, 4)}, [], [Node("t", "Transpose", ["x"], "y", {"perm": [1, 0, 2, 3]})],
                    ["y"])
    assert "'t'" in str(err.value) and "batch off axis 0" in str(err.value), str(err.value)


def test_softmax_and_batchnorm_on_any_axis_match_torch() -> None:
    x = np.random.default_rng(3).normal(size=(3, 4, 5, 2))
    for axis in (1, 2, 3, -1):
        want = torch.softmax(torch.from_numpy(x), dim=axis).numpy()
        assert_close(ops.graph_op("Softmax").forward([x], axis=axis), want, rtol=1e-12, atol=1e-15,
                     what=f"axis {axis}")
