"""The PyTorch backend against the spec: ``runners.torch.train`` vs ``training.train_reference``.

Every case trains two copies of one graph, one per backend, and compares the
per-minibatch losses, the trained parameters (in the result and written back
into the graph), the last epoch's outputs and the number of epochs run.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from export_nets import NON_DEFAULT  # noqa: E402
from helpers import tol  # noqa: E402

from mdfx import ops  # noqa: E402
from mdfx.converters.torch import GRAPH_RULES, LOSS_RULES, to_module  # noqa: E402
from mdfx.errors import DataError, MdfxError  # noqa: E402
from mdfx.runners import reference, training  # noqa: E402
from mdfx.runners import torch as torch_runner  # noqa: E402
from mdfx.schema.graph import Graph  # noqa: E402
from mdfx.schema.mechanisms import MechanismSpec, ProjectionSpec  # noqa: E402
from mdfx.schema.mechanisms import build as build_network  # noqa: E402

#: helpers.TOL loosened for training runs: each step's rounding difference from the spec feeds the
#: next step (float64: a few ulps per step, over tens of steps; float32: the same at float32's
#: precision), so trained weights and losses agree less closely than one evaluation does.
TOL: dict[str, dict[str, float]] = {
    "float64": tol("float64", rtol=1e-10, atol=1e-13),
    "float32": tol("float32", rtol=1e-4, atol=1e-5),
}

# --- building nets and specs -------------------------------------------------------------


def node(name: str, size: int, op: str = "linear", params: dict[str, float] | None = None,
         bias: np.ndarray | None = None, bias_learnable: bool = True) -> MechanismSpec:
    return MechanismSpec(name, size, op, ops.fill_params(ops.transfer_op(op), params or {}), bias, bias_learnable)


def proj(rng: np.random.Generator, sender: MechanismSpec, receiver: MechanismSpec, learnable: bool = True,
         name: str | None = None) -> ProjectionSpec:
    matrix = rng.uniform(-0.8, 0.8, size=(sender.size, receiver.size))
    return ProjectionSpec(name or f"MappingProjection from {sender.name} to {receiver.name}",
                          sender.name, receiver.name, matrix, learnable)


def chain_net(hidden_op: str = "logistic", out_op: str = "logistic", hidden_params: dict | None = None,
              out_params: dict | None = None, seed: int = 0) -> Graph:
    """in (3) -> hidden (5, with a bias) -> out (2)."""
    rng = np.random.default_rng(seed)
    a = node("in", 3)
    h = node("hidden", 5, hidden_op, hidden_params, bias=rng.uniform(-0.3, 0.3, 5))
    o = node("out", 2, out_op, out_params)
    return build_network("chain", [a, h, o], [proj(rng, a, h), proj(rng, h, o)])


def graph_net(seed: int = 0) -> Graph:
    """Two inputs converging on one layer, a skip projection, two outputs, frozen parts."""
    rng = np.random.default_rng(seed)
    item = node("item", 4)
    relation = node("relation", 2, "linear", {"slope": 0.5}, bias=rng.uniform(-0.5, 0.5, 2))
    rep = node("rep", 3, "logistic", bias=rng.uniform(-0.5, 0.5, 3), bias_learnable=False)
    hidden = node("hidden", 5, "tanh", NON_DEFAULT["tanh"], bias=rng.uniform(-0.5, 0.5, 5))
    attr = node("attr", 4, "logistic")
    conf = node("conf", 2, "relu", NON_DEFAULT["relu"])
    projections = [
        proj(rng, item, rep),
        proj(rng, rep, hidden),
        proj(rng, relation, hidden),             # converging on hidden
        proj(rng, hidden, attr),
        proj(rng, item, attr, name="skip.item->attr"),  # skip connection; a '.' in the name
        proj(rng, hidden, conf, learnable=False),
    ]
    return build_network("graph", [item, relation, rep, hidden, attr, conf], projections)


def make_spec(net: Graph, trials: int = 7, data_seed: int = 1, targets: Callable | None = None,
              **kw) -> training.LearnSpec:
    """Random inputs and targets for ``net``; ``kw`` are LearnSpec fields (``seed`` is the shuffle's)."""
    rng = np.random.default_rng(data_seed)
    inputs = {name: rng.uniform(-1, 1, (trials, net.size(name))) for name in net.inputs}
    make = targets or (lambda shape: rng.uniform(0.1, 0.9, shape))
    tgts = {name: make((trials, net.size(name))) for name in net.outputs}
    kw.setdefault("epochs", 6)
    kw.setdefault("learning_rate", 0.1)
    return training.LearnSpec(inputs, tgts, **kw)


def check_against_reference(net: Graph, spec: training.LearnSpec) -> training.LearnResult:
    """Train a copy with each backend; compare everything a LearnResult holds, printing both sides."""
    ref_net, torch_net = net.copy(), net.copy()
    ref = training.train_reference(ref_net, spec)
    got = torch_runner.train(torch_net, spec)
    tol = TOL[spec.dtype]
    # assert_allclose counts NaN == NaN as equal: a diverged run must not pass as agreement
    assert np.all(np.isfinite(ref.losses)), f"the reference run diverged: {ref.losses}"
    assert got.epochs_run == ref.epochs_run, f"epochs_run: torch {got.epochs_run}, reference {ref.epochs_run}"
    np.testing.assert_allclose(got.losses, ref.losses, **tol, err_msg="per-minibatch losses (torch vs reference)")
    assert list(got.params) == list(ref.params)
    for name, want in ref.params.items():
        np.testing.assert_allclose(got.params[name], want, **tol, err_msg=f"trained {name!r}")
    assert list(torch_net.params) == list(ref_net.params)
    for name, p_ref in ref_net.params.items():
        np.testing.assert_allclose(torch_net.params[name].value, p_ref.value, **tol, err_msg=f"written back {name!r}")
    assert list(got.last_outputs) == list(ref.last_outputs)
    for name, want in ref.last_outputs.items():
        np.testing.assert_allclose(got.last_outputs[name], want, **tol, err_msg=f"last outputs of {name!r}")
    return got


# --- the op tables ----------------------------------------------------------------------


def test_every_op_and_loss_has_a_rule():
    missing = sorted(op.name for op in ops.transfer_ops() if op.name not in GRAPH_RULES)
    assert not missing, f"transfer ops without a torch rule: {missing}"
    assert sorted(LOSS_RULES) == sorted(ops.LOSSES), "losses without a torch rule"


@pytest.mark.parametrize("params", ["default", "non_default"])
@pytest.mark.parametrize("op", sorted(op.transfer_key for op in ops.transfer_ops()))
def test_transfer_op_trains_like_reference(op: str, params: str):
    p = NON_DEFAULT[op] if params == "non_default" else {}
    # the op sits on the path twice: as the hidden layer and as the output layer
    net = chain_net(op, op, p, p)
    check_against_reference(net, make_spec(net, minibatch_size=3))


#: Per loss: the output op whose values the loss expects, and a target maker.
LOSS_CASES: dict[str, tuple[str, Callable[[np.random.Generator, tuple], np.ndarray]]] = {
    "MSE": ("logistic", lambda rng, s: rng.uniform(0, 1, s)),
    "SSE": ("logistic", lambda rng, s: rng.uniform(0, 1, s)),
    "L1": ("tanh", lambda rng, s: rng.uniform(-1, 1, s)),
    "CROSS_ENTROPY": ("linear", lambda rng, s: rng.dirichlet(np.ones(s[1]), s[0])),  # probabilities
    "BINARY_CROSS_ENTROPY": ("logistic", lambda rng, s: rng.uniform(0, 1, s)),
    "KL_DIV": ("linear", lambda rng, s: np.where(rng.uniform(size=s) < 0.3, 0.0, rng.dirichlet(np.ones(s[1]), s[0]))),
    "NLL": ("linear", lambda rng, s: np.eye(s[1])[rng.integers(0, s[1], s[0])]),  # one-hot classes
    "POISSON_NLL": ("linear", lambda rng, s: rng.poisson(2.0, s).astype(float)),
    "SOFT_MARGIN": ("tanh", lambda rng, s: rng.choice([-1.0, 1.0], s)),
    "SOFT_MARGIN_SUM": ("linear", lambda rng, s: rng.choice([-1.0, 1.0], s)),
}


@pytest.mark.parametrize("loss", sorted(ops.LOSSES))
def test_loss_trains_like_reference(loss: str):
    assert loss in LOSS_CASES, f"add a case for loss {loss} to LOSS_CASES"
    out_op, make_targets = LOSS_CASES[loss]
    net = chain_net("logistic", out_op)
    rng = np.random.default_rng(5)
    check_against_reference(net, make_spec(net, minibatch_size=2, loss=loss,
                                           targets=lambda s: make_targets(rng, s)))


# --- the learn() plan ---------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("minibatch_size", [1, 3])
def test_optimizers_and_minibatches(optimizer: str, weight_decay: float, minibatch_size: int):
    net = graph_net()  # 7 trials: minibatches of 3 leave a shorter last one
    spec = make_spec(net, optimizer=optimizer, weight_decay=weight_decay, minibatch_size=minibatch_size,
                     learning_rate=0.05 if optimizer == "adam" else 0.2)
    check_against_reference(net, spec)


@pytest.mark.parametrize("patience", [None, 2])
def test_randomized_minibatches_with_seed(patience: int | None):
    net = graph_net()
    check_against_reference(net, make_spec(net, minibatch_size=2, randomize_minibatch=True, seed=42,
                                           epochs=8, patience=patience, learning_rate=3.0))


def test_patience_stops_at_the_same_epoch():
    net = chain_net()
    # a large learning rate makes the loss bounce, so patience triggers well before the last epoch
    spec = make_spec(net, epochs=60, learning_rate=40.0, patience=3, min_delta=1e-3, minibatch_size=7)
    got = check_against_reference(net, spec)
    assert got.epochs_run < spec.epochs, "the case should stop early"


def test_callbacks_are_called_as_by_reference():
    net = chain_net()

    def calls_of(train: Callable) -> list:
        calls: list = []
        spec = make_spec(net, epochs=2, minibatch_size=3, patience=5,
                         call_before_minibatch=lambda: calls.append("before"),
                         call_after_minibatch=lambda: calls.append("after"),
                         on_minibatch=lambda e, b, loss: calls.append((e, b, round(loss, 9))))
        train(net.copy(), spec)
        return calls

    got, want = calls_of(torch_runner.train), calls_of(training.train_reference)
    assert got == want
    # 7 trials in minibatches of 3: 3 minibatches per epoch, each before, on_minibatch, after
    assert [c[:2] for c in got[1::3]] == [(e, b) for e in range(2) for b in range(3)]
    assert got[::3] == ["before"] * 6 and got[2::3] == ["after"] * 6


def test_float32_is_close_and_leaves_frozen_arrays_alone():
    net = graph_net()
    spec = make_spec(net, minibatch_size=3, dtype="float32", optimizer="adam", learning_rate=0.01)
    got = check_against_reference(net, spec)
    assert got.params[net.mechanisms.projections[0].name].dtype == np.float64
    trained = net.copy()
    torch_runner.train(trained, spec)
    frozen = "MappingProjection from hidden to conf"
    np.testing.assert_array_equal(trained.params[frozen].value, net.params[frozen].value,
                                  err_msg="a frozen matrix was rounded to float32")
    np.testing.assert_array_equal(trained.params["rep.bias"].value, net.params["rep.bias"].value, err_msg="frozen rep.bias")


def test_no_epochs():
    net = chain_net()
    got = check_against_reference(net, make_spec(net, epochs=0))
    assert got.losses == [] and got.epochs_run == 0


def test_missing_targets_name_the_node():
    net = chain_net()
    spec = make_spec(net)
    spec.targets = {}
    with pytest.raises(DataError, match=r"targets given for nothing; give targets for one or more outputs of 'chain': 'out'"):
        torch_runner.train(net, spec)


# --- the update equals torch.optim --------------------------------------------------------


@pytest.mark.parametrize("weight_decay", [0.0, 0.03])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_update_matches_torch_optim(optimizer: str, weight_decay: float):
    rng = np.random.default_rng(3)
    shapes = [(3, 4), (4,)]
    ours = [torch.tensor(rng.normal(size=s), requires_grad=True) for s in shapes]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    update = torch_runner.make_update(optimizer, ours, lr=0.01, weight_decay=weight_decay)
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer]
    opt = cls(theirs, lr=0.01, weight_decay=weight_decay)
    for _ in range(25):
        grads = [torch.tensor(rng.normal(size=s)) for s in shapes]
        update(grads)
        for p, g in zip(theirs, grads, strict=True):
            p.grad = g.clone()
        opt.step()
    for a, b in zip(ours, theirs, strict=True):
        # one optimizer step on weights of size ~1: the atol floor is below an ulp of the weights
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **tol("float64", atol=1e-15),
                                   err_msg=f"{optimizer} update vs torch.optim")


# --- the module -----------------------------------------------------------------------------


def test_forward_matches_reference_and_returns_every_node():
    net = graph_net()
    x = {name: a for name, a in make_spec(net).inputs.items()}
    module = to_module(net)
    values = module({k: torch.tensor(v) for k, v in x.items()}, all_nodes=True)
    graph = net
    env = reference.forward(graph, x)
    want_values = {node: env[tensor] for node, tensor in graph.mechanisms.tensors.items()}
    assert list(values) == [n.name for n in net.mechanisms.nodes]
    for name, want in want_values.items():
        np.testing.assert_allclose(values[name].detach().numpy(), want, **TOL["float64"], err_msg=name)
    out = torch_runner.run(net, x)
    assert list(out) == net.outputs
    for name in net.outputs:
        np.testing.assert_allclose(out[name], want_values[name], **TOL["float64"], err_msg=f"run(): {name}")


def test_parameters_and_buffers():
    net = graph_net()
    module = to_module(net)
    learnable = list(training.learnable_params(net))
    assert [module.tensor(n) for n in learnable] == list(module.parameters())
    assert {n for n in module.names if n not in learnable} == {
        "MappingProjection from hidden to conf", "rep.bias"}
    assert all(isinstance(module.tensor(n), torch.nn.Parameter) for n in learnable)


def test_state_dict_keys_are_net_names_and_round_trip(tmp_path):
    net = graph_net()
    module = to_module(net)
    keys = list(module.state_dict())
    want = [p.name for p in net.mechanisms.projections] + [n.bias for n in net.mechanisms.nodes if n.bias is not None]
    assert keys == want
    path = tmp_path / "weights.pt"
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    torch.save(module.state_dict(), path)
    fresh = to_module(net)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    for name, value in module.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[name].numpy(), value.numpy(), err_msg=name)
    fresh.copy_into(net)
    np.testing.assert_array_equal(net.params["skip.item->attr"].value,
                                  module.tensor("skip.item->attr").detach().numpy())


def test_load_state_dict_names_bad_keys():
    module = to_module(chain_net())
    with pytest.raises(RuntimeError, match="Unexpected key.*'?bogus"):
        module.load_state_dict({**module.state_dict(), "bogus": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="hidden.bias.*shape"):
        module.load_state_dict({**module.state_dict(), "hidden.bias": torch.zeros(2, dtype=torch.float64)})


def test_float32_module():
    module = to_module(chain_net(), dtype="float32")
    assert module.dtype == torch.float32
    assert all(t.dtype == torch.float32 for t in module.state_dict().values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the error on machines without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_a_clear_error(device: str):
    with pytest.raises(MdfxError, match=f"'{device}'.*CUDA is not available"):
        to_module(chain_net(), device=device)
    with pytest.raises(MdfxError, match=f"'{device}'"):
        torch_runner.train(chain_net(), make_spec(chain_net()), device=device)


def test_bad_device_and_dtype():
    with pytest.raises(MdfxError, match="'tpu:0'"):
        to_module(chain_net(), device="tpu:0")
    with pytest.raises(MdfxError, match="'float16'.*float64, float32"):
        to_module(chain_net(), dtype="float16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_trains_like_reference():
    net = graph_net()
    spec = make_spec(net, minibatch_size=3, randomize_minibatch=True, seed=0)
    ref = training.train_reference(net.copy(), spec)
    got = torch_runner.train(net.copy(), spec, device="cuda")
    np.testing.assert_allclose(got.losses, ref.losses, **TOL["float64"], err_msg="cuda losses")


def test_import_mdfx_does_not_import_torch():
    code = ("import sys, mdfx, mdfx.ops, mdfx.runners.training, mdfx.converters; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_training_does_not_import_dynamo():
    # torch.optim's first use imports torch._dynamo (about a second); train() must not pay that
    code = ("import sys, numpy as np; from mdfx.runners import torch as rt, training; "
            "from mdfx.schema.mechanisms import MechanismSpec, ProjectionSpec, build as build_network; "
            "net = build_network('n', [MechanismSpec('a', 1, 'identity'), MechanismSpec('b', 1, 'identity')], "
            "[ProjectionSpec('p', 'a', 'b', np.ones((1, 1)))]); "
            "rt.train(net, training.LearnSpec({'a': np.ones((2, 1))}, {'b': np.zeros((2, 1))}, optimizer='adam')); "
            "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)



@pytest.mark.parametrize("minibatch_size", [1, 3])
def test_every_epochs_outputs_from_the_reused_buffers(minibatch_size: int):
    """Each epoch's losses and outputs go into buffers made once per learn() and reused every
    epoch (read out per epoch); shuffled, 7 trials (minibatches of 3 end with a shorter one)."""
    net = chain_net()
    spec = make_spec(net, minibatch_size=minibatch_size, randomize_minibatch=True, seed=3, epochs=4,
                     optimizer="adam", weight_decay=0.05, learning_rate=0.05, keep_epoch_outputs=True)
    ref = training.train_reference(net.copy(), spec)
    got = check_against_reference(net, spec)
    assert len(got.epoch_outputs) == len(ref.epoch_outputs) == 4
    for epoch, (g, r) in enumerate(zip(got.epoch_outputs, ref.epoch_outputs, strict=True)):
        np.testing.assert_allclose(g["out"], r["out"], **TOL["float64"], err_msg=f"epoch {epoch}'s outputs")
    assert not np.allclose(got.epoch_outputs[0]["out"], got.epoch_outputs[-1]["out"])
