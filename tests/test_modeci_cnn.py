"""ModECI's pytorch_to_mdf CNN examples (../shared/corpus/modeci-examples-large): their weights are absent,
so they load with weights given (here ``"torch-init"``: drawn as torch initialises the layers), run and
train; one that cannot be kept is refused with one error naming the node and the op. Skips without
../shared. The big nets run in PyTorch mode; ``MDFX_FULL_CNN=1`` adds VGG-16 and ResNet training."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import CORPUS, assert_close  # noqa: E402

import mdfx  # noqa: E402
from mdfx.errors import GraphError  # noqa: E402
from mdfx.runners import reference  # noqa: E402

LARGE = CORPUS / "modeci-examples-large"
pytestmark = pytest.mark.skipif(not LARGE.is_dir(), reason=f"no corpus folder {LARGE}")
FULL = os.environ.get("MDFX_FULL_CNN") == "1"
nn, F = torch.nn, torch.nn.functional


def _load(name: str) -> mdfx.AutodiffComposition:
    return mdfx.from_mdf_with_weights(LARGE / name, "torch-init")


def test_simple_convolution_runs_and_trains_like_the_torch_module() -> None:
    comp = _load("PyTorch_PyTorch_MDF_simple_convolution.json")
    g = comp.graph
    assert [n.op for n in g.nodes] == ["Conv", "Relu", "MaxPool", "Reshape", "Gemm"], [n.op for n in g.nodes]
    w = {k: torch.from_numpy(p.value.copy()) for k, p in g.params.items()}
    # the module pytorch_to_mdf was given (modeci-mdf's example), with the same weights
    m = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2, 1), nn.Flatten(), nn.Linear(5000, 10)).double()
    with torch.no_grad():
        m[0].weight.copy_(w["conv1_weight"])
        m[0].bias.copy_(w["conv1_bias"])
        m[4].weight.copy_(w["fc1_weight"])
        m[4].bias.copy_(w["fc1_bias"])
    x = np.random.default_rng(0).normal(size=(4, 1, 28, 28))
    (name,) = g.inputs
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    assert_close(reference.run(g, {name: x})[g.outputs[0]], want, rtol=1e-10, atol=1e-12, what="run()")
    t = np.random.default_rng(1).normal(size=(4, 10))
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    losses = []
    for i in range(0, 4, 2):
        opt.zero_grad()
        loss = F.mse_loss(m(torch.from_numpy(x[i:i + 2])), torch.from_numpy(t[i:i + 2]))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    for mode in (mdfx.ExecutionMode.Python, mdfx.ExecutionMode.PyTorch, mdfx.ExecutionMode.LLVMRun):
        c = _load("PyTorch_PyTorch_MDF_simple_convolution.json")
        c.learn(inputs={name: x}, targets={g.outputs[0]: t}, minibatch_size=2, learning_rate=0.01,
                execution_mode=mode)
        assert_close(c.losses, losses, rtol=1e-9, atol=1e-12, what=f"{mode.name} losses")
        assert_close(c.graph.params["conv1_weight"].value, m[0].weight.detach().numpy(), rtol=1e-9, atol=1e-12,
                     what=f"{mode.name} conv1_weight")


def test_resnet_loads_and_runs() -> None:
    comp = _load("PyTorch_PyTorch_MDF_resnet.json")
    g = comp.graph
    assert sum(n.op == "Conv" for n in g.nodes) == 20 and g.inputs == {"input1": (3, 224, 224)}
    x = np.random.default_rng(0).normal(size=(1, 3, 224, 224))
    comp.run(inputs={"input1": x}, execution_mode=mdfx.ExecutionMode.PyTorch)
    out = np.asarray(comp.results[-1][0])
    assert out.shape == (1000,) and np.all(np.isfinite(out)), out.shape
    if FULL:  # one training step in PyTorch mode moves the first conv's weights
        w0 = g.params["input4"].value.copy()
        comp.learn(inputs={"input1": x}, targets={g.outputs[0]: np.zeros((1, 1000))}, learning_rate=0.1,
                   execution_mode=mdfx.ExecutionMode.PyTorch)
        assert np.abs(g.params["input4"].value - w0).max() > 0


@pytest.mark.skipif(not FULL, reason="VGG-16's 138M weights take ~20 s to draw; MDFX_FULL_CNN=1 runs it")
def test_vgg16_loads_runs_and_trains() -> None:
    comp = _load("PyTorch_PyTorch_MDF_vgg16.json")
    x = np.random.default_rng(0).normal(size=(1, 3, 224, 224))
    name, out = next(iter(comp.graph.inputs)), comp.graph.outputs[0]
    w0 = comp.graph.params["fc3_weight"].value.copy()
    comp.learn(inputs={name: x}, targets={out: np.zeros((1, 10))}, learning_rate=0.01,
               execution_mode=mdfx.ExecutionMode.PyTorch)
    assert np.isfinite(comp.losses[0]) and np.abs(comp.graph.params["fc3_weight"].value - w0).max() > 0


def test_inception_is_refused_naming_the_node_and_the_op() -> None:
    """The file was traced at batch 1 and reshapes to [-1], merging the batch into the features."""
    with pytest.raises(GraphError, match=r"node 'Reshape_349' \(Reshape\): Reshape of \(batch, 348, 8, 8\) to "
                                         r"\[-1\] merges the batch into the features"):
        _load("PyTorch_inception.json")


def test_weights_can_also_come_from_a_state_dict(tmp_path: Path) -> None:
    path = LARGE / "PyTorch_PyTorch_MDF_simple_convolution.json"
    rng = np.random.default_rng(3)
    sd = {"conv1.weight": rng.normal(size=(8, 1, 3, 3)), "conv1.bias": rng.normal(size=8),
          "fc1.weight": rng.normal(size=(10, 5000)) * 0.01, "fc1.bias": rng.normal(size=10)}
    g = mdfx.from_mdf_with_weights(path, sd).graph
    assert_close(g.params["conv1.weight"].value, sd["conv1.weight"], rtol=0, what="weights kept by their names")
