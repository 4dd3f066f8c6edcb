"""torch import: from_torch against the module's own forward and training, error messages, lazy
imports, and pytorch_to_mdf output (weights absent) completed from a state_dict or an ONNX file."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import torch_sgd  # noqa: E402

from mdfx.converters.torch_import import from_mdf_with_weights, from_torch  # noqa: E402
from mdfx.errors import SchemaError, UnsupportedError  # noqa: E402
from mdfx.runners import reference  # noqa: E402
from mdfx.runners.training import LearnSpec, train_reference  # noqa: E402
from mdfx.schema import reader  # noqa: E402
from mdfx.schema.dialects.modeci import MissingWeightsError  # noqa: E402

nn, F = torch.nn, torch.nn.functional
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
SIMPLE = CORPUS / "modeci-examples" / "PyTorch_simple_pytorch_to_mdf.json"
needs_corpus = pytest.mark.skipif(not SIMPLE.is_file(), reason=f"no corpus file {SIMPLE}")

ACTIVATIONS = {"relu": (nn.ReLU, "relu"), "leaky_relu": (lambda: nn.LeakyReLU(0.3), "relu"),
               "sigmoid": (nn.Sigmoid, "logistic"), "tanh": (nn.Tanh, "tanh"),
               "softmax": (lambda: nn.Softmax(dim=-1), "softmax"), "identity": (nn.Identity, "identity")}


def sequential(act: str, bias: bool) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3, 5, bias=bias), ACTIVATIONS[act][0](),
                         nn.Linear(5, 2, bias=bias)).double()


def data(n: int = 6, features: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, features)), rng.uniform(size=(n, 2))


def forward(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_sequential_runs_and_trains_like_torch(act: str, bias: bool) -> None:
    model = sequential(act, bias)
    net = from_torch(model, torch.zeros(2, 3))
    assert [(n.name, n.op, n.size) for n in net.nodes] == [
        ("input", "identity", 3), ("1", ACTIVATIONS[act][1], 5), ("output", "identity", 2)]
    assert [p.name for p in net.projections] == ["1.weight", "3.weight"]
    np.testing.assert_array_equal(net.projection("1.weight").matrix, model[1].weight.detach().numpy().T)
    x, t = data()
    np.testing.assert_allclose(reference.run(net, {"input": x})["output"], forward(model, x), rtol=1e-12, atol=1e-15)
    spec = LearnSpec(inputs={"input": x}, targets={"output": t}, epochs=3, minibatch_size=2, learning_rate=0.2)
    result = train_reference(net, spec)
    np.testing.assert_allclose(result.losses, torch_sgd(model, x, t, 3, 2, 0.2), rtol=1e-10)
    np.testing.assert_allclose(net.projection("3.weight").matrix, model[3].weight.detach().numpy().T, atol=1e-10)
    if bias:
        np.testing.assert_allclose(net.node("output").bias, model[3].bias.detach().numpy(), atol=1e-10)


def test_becomes_a_trainable_composition() -> None:
    from mdfx.composition.build import composition_from_net
    from mdfx.composition.enums import ExecutionMode

    model = sequential("sigmoid", True)
    comp = composition_from_net(from_torch(model, torch.zeros(1, 3)))
    x, t = data()
    comp.learn(inputs={"input": x}, targets={"output": t}, epochs=2, minibatch_size=3, learning_rate=0.5,
               execution_mode=ExecutionMode.Python)
    torch_sgd(model, x, t, 2, 3, 0.5)
    matrix = {p.name: p.matrix for p in comp.projections}
    np.testing.assert_allclose(matrix["3.weight"], model[3].weight.detach().numpy().T, atol=1e-10)


class Functional(nn.Module):
    """Named layers, torch functions and arithmetic with constants, two inputs, two outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.enc_a = nn.Linear(3, 4)
        self.enc_b = nn.Linear(2, 4, bias=False)
        self.head = nn.Linear(4, 2)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.enc_a(a) + self.enc_b(b))
        y = F.softmax(self.head(h) * 2.0 - 1.0, dim=-1)
        return y, self.act(h).sigmoid()


def test_fx_module_with_functions_and_two_outputs() -> None:
    model = Functional().double()
    net = from_torch(model, (torch.zeros(1, 3), torch.zeros(1, 2)), output_names=["probs", "features"])
    assert (net.inputs, net.outputs) == (["a", "b"], ["probs", "features"])
    assert sorted((p.name, p.sender, p.receiver) for p in net.projections if p.learnable) == [
        ("enc_a.weight", "a", "enc_a"), ("enc_b.weight", "b", "enc_a"), ("head.weight", "enc_a", "probs")]
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    got = reference.run(net, {"a": a, "b": b})
    with torch.no_grad():
        want = model(torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_allclose(got["probs"], want[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(got["features"], want[1].numpy(), rtol=1e-12)


def test_same_net_as_through_onnx(tmp_path: Path) -> None:
    onnx_import = pytest.importorskip("mdfx.converters.onnx_import")
    model = sequential("tanh", True).float()
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, 3),), str(path), dynamo=False, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "b"}, "output": {0: "b"}})
    a, b = from_torch(model, torch.zeros(1, 3)), onnx_import.load_onnx(path)
    assert [(n.op, n.size, n.bias is not None) for n in a.nodes] == [(n.op, n.size, n.bias is not None) for n in b.nodes]
    for pa, pb in zip(a.projections, b.projections, strict=True):
        np.testing.assert_array_equal(pa.matrix, pb.matrix)


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 2)
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.fc(x), torch.sin(x)], dim=1) + self.conv(x.unsqueeze(1)).flatten(1)


class DataDependent(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x


@pytest.mark.parametrize(("module", "message"), [
    (Branchy(), r"Branchy uses what mdfx cannot import: function 'torch.sin' \(node 'sin'\); function "
                r"'torch.cat' \(node 'cat'\); method 'unsqueeze' \(node 'unsqueeze'\); module 'conv' \(Conv1d\)"
                r".*mdfx imports modules built from nn.Linear, nn.ReLU"),
    (nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=0)), r"1 \(module\) with dim=0 \(mdfx's SoftMax runs over the features"),
    (nn.Sequential(nn.Flatten(0), nn.Linear(3, 2)), r"start_dim=0, end_dim=-1 \(mdfx flattens everything but the batch"),
    (nn.Sequential(nn.Linear(3, 2), nn.Dropout()), r"module '1' \(Dropout\)"),
    (DataDependent(), r"DataDependent cannot be traced with torch.fx \(TraceError"),
], ids=["functions_and_modules", "softmax_dim", "flatten_batch", "dropout", "untraceable"])
def test_unsupported_named(module: nn.Module, message: str) -> None:
    with pytest.raises(UnsupportedError, match=message):
        from_torch(module, torch.zeros(2, 3))


def test_importing_the_converters_does_not_import_torch_or_onnx() -> None:
    code = ("import sys, mdfx, mdfx.converters.torch_import, mdfx.converters.onnx_import, mdfx.schema.reader; "
            "bad = [m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- pytorch_to_mdf output: the weights are not in the file ---------------------------------------


class SimpleNet(nn.Module):
    """The model of PyTorch_simple_pytorch_to_mdf.json (its layer sizes as given)."""

    def __init__(self, sizes: tuple[int, ...] = (150528, 240, 120, 50, 2)) -> None:
        super().__init__()
        self.sizes = sizes
        for i in range(1, 5):
            setattr(self, f"fc{i}", nn.Linear(sizes[i - 1], sizes[i]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, self.sizes[0])
        return self.fc4(F.relu(self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))))


def shrunk_simple_mdf(sizes: tuple[int, ...]) -> dict:
    """The corpus file with smaller layers: the same nodes, ports and idiom (input (1, 1, 2, 3))."""
    d = copy.deepcopy(json.loads(SIMPLE.read_text()))
    nodes = d["SimpleNet"]["graphs"]["SimpleNetGraph"]["nodes"]
    nodes["Reshape_10"]["input_ports"]["input1"]["shape"] = [1, 1, 2, 3]
    nodes["Reshape_10"]["parameters"]["_9"]["value"] = [-1, sizes[0]]
    for i, node in enumerate(("Gemm_11", "Gemm_13", "Gemm_15", "Gemm_17"), start=1):
        ports = nodes[node]["input_ports"]
        ports[f"fc{i}_weight"]["shape"] = [sizes[i], sizes[i - 1]]
        ports[f"fc{i}_bias"]["shape"] = [sizes[i]]
    return d


@needs_corpus
def test_missing_weights_are_named_with_the_way_out() -> None:
    with pytest.raises(MissingWeightsError, match=r"model 'SimpleNet': the weights are not in the file; 8 weight input "
                                          r"ports \(fc1_weight \(240x150528\) of node 'Gemm_11', fc1_bias \(240\).*"
                                          r"Load it with mdfx.from_mdf_with_weights\(path, weights\), weights being "
                                          r"the model's state_dict \(or a .pt / .pth file of it\) or the .onnx file"):
        reader.from_mdf(SIMPLE)


@needs_corpus
def test_corpus_simple_net_with_state_dict_matches_torch() -> None:
    """The real file (a 150528-240-120-50-2 ReLU MLP) with a state_dict: torch's numbers."""
    torch.manual_seed(0)
    model = SimpleNet()
    net = from_mdf_with_weights(SIMPLE, model.state_dict())
    assert [(n.name, n.op, n.size) for n in net.nodes] == [
        ("input1", "identity", 150528), ("Gemm_11", "relu", 240), ("Gemm_13", "relu", 120),
        ("Gemm_15", "relu", 50), ("Gemm_17", "identity", 2)]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want = model(x).numpy()
    got = reference.run(net, {"input1": x.reshape(2, -1).numpy()})["Gemm_17"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)  # torch sums 150528 products in float32


@needs_corpus
@pytest.mark.parametrize("source", ["state_dict", "pt_file", "onnx_file"])
def test_weights_from_state_dict_pt_or_onnx_then_train_like_torch(tmp_path: Path, source: str) -> None:
    sizes = (6, 5, 4, 3, 2)
    torch.manual_seed(3)
    model = SimpleNet(sizes).double()
    weights: object = model.state_dict()
    if source == "pt_file":
        weights = tmp_path / "w.pt"
        torch.save(model.state_dict(), weights)
    elif source == "onnx_file":
        pytest.importorskip("onnx")
        weights = tmp_path / "m.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(1, 1, 2, 3, dtype=torch.float64),), str(weights), dynamo=False)
    net = from_mdf_with_weights(shrunk_simple_mdf(sizes), weights)
    x, t = data(4, 6)
    np.testing.assert_allclose(reference.run(net, {"input1": x})["Gemm_17"], forward(model, x), rtol=1e-12)
    spec = LearnSpec(inputs={"input1": x}, targets={"Gemm_17": t}, epochs=3, minibatch_size=2, learning_rate=0.5)
    result = train_reference(net, spec)
    np.testing.assert_allclose(result.losses, torch_sgd(model, x, t, 3, 2, 0.5), rtol=1e-10)
    assert result.losses[-1] < result.losses[0]


@needs_corpus
def test_weights_that_do_not_fit_are_named() -> None:
    sizes = (6, 5, 4, 3, 2)
    sd = SimpleNet(sizes).state_dict()
    with pytest.raises(SchemaError, match=r"1 weight input port \(fc4_bias \(2\) of node 'Gemm_17'\) is left "
                                          r"unconnected.*the weights given lack them"):
        from_mdf_with_weights(shrunk_simple_mdf(sizes), {k: v for k, v in sd.items() if k != "fc4.bias"})
    sd["fc2.weight"] = torch.zeros(5, 4)
    with pytest.raises(SchemaError, match=r"weight 'fc2_weight' of node 'Gemm_13' has shape \(5, 4\); the MDF "
                                          r"port expects \(4, 5\)"):
        from_mdf_with_weights(shrunk_simple_mdf(sizes), sd)
