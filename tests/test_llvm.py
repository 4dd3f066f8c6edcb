"""The LLVM backend against the numpy reference: every op, loss and optimizer; caching; bad input.

Each agreement test trains two copies of one net, one with
``training.train_reference`` and one with ``mdfx.runners.llvm.train``, and
compares the trained weights, the per-minibatch losses, the epochs run and the
last epoch's outputs. Tolerances: :data:`TRAINING_TOL`, helpers.TOL loosened for training.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("llvmlite")

from helpers import TOL, assert_close, tol, xor_composition  # noqa: E402
from llvmlite import ir  # noqa: E402

import mdfx as pnl  # noqa: E402
from mdfx import ops  # noqa: E402
from mdfx.converters.llvm import jit  # noqa: E402
from mdfx.converters.llvm.emit import F64, Emitter  # noqa: E402
from mdfx.errors import DataError, UnsupportedError  # noqa: E402
from mdfx.runners import llvm, reference  # noqa: E402
from mdfx.runners.training import LearnResult, LearnSpec, train_reference  # noqa: E402
from mdfx.schema.graph import Graph, Node, Param  # noqa: E402
from mdfx.schema.mechanisms import MechanismSpec, ProjectionSpec  # noqa: E402
from mdfx.schema.mechanisms import build as build_network  # noqa: E402

#: helpers.TOL loosened for training. float64 differs from numpy only by summation
#: order (BLAS vs our loops) and libm vs numpy's exp/log: rounding, amplified by training.
#: float32 is compared with the float64 reference, so its tolerance is float32's rounding
#: accumulated over a few hundred updates.
TRAINING_TOL = {"float64": tol("float64", rtol=1e-9, atol=1e-12), "float32": tol("float32", rtol=2e-4, atol=2e-5)}

#: Non-default parameters per transfer op, so the parameterisation is tested too.
OP_PARAMS: dict[str, dict[str, float]] = {
    "linear": {"slope": 1.3, "intercept": 0.2},
    "logistic": {"gain": 1.5, "bias": 0.1, "x_0": 0.2, "offset": -0.3, "scale": 1.2},
    "relu": {"gain": 1.2, "bias": 0.05, "leak": 0.1},
    "tanh": {"gain": 0.8, "bias": -0.1, "x_0": 0.05, "offset": 0.2, "scale": 1.4},
    "exponential": {"rate": 0.5, "bias": -0.2, "scale": 0.8, "offset": 0.1},
    "softmax": {"gain": 1.7},
}


def node(name: str, size: int, op: str = "logistic", node_bias: np.ndarray | None = None, **params: float
         ) -> MechanismSpec:
    """A node with ``params`` (defaults filled) and an optional trainable bias on its net input."""
    return MechanismSpec(name, size, op, ops.fill_params(ops.transfer_op(op), params), node_bias)


def make_net(nodes: list[MechanismSpec], edges: list[tuple[str, str]], seed: int = 0, frozen: tuple[str, ...] = ()
             ) -> Graph:
    """Projections "sender->receiver" with uniform(-0.5, 0.5) weights; names in ``frozen`` are not learnable."""
    rng = np.random.default_rng(seed)
    size = {n.name: n.size for n in nodes}
    projections = [ProjectionSpec(f"{s}->{r}", s, r, rng.uniform(-0.5, 0.5, (size[s], size[r])),
                                  learnable=f"{s}->{r}" not in frozen) for s, r in edges]
    return build_network("test", nodes, projections)


def data(net: Graph, trials: int, seed: int = 1, targets: object = None) -> tuple[dict, dict]:
    """Random inputs in [0, 1) for every INPUT node, targets from ``targets(rng, shape)`` (default: uniform)."""
    rng = np.random.default_rng(seed)
    make = targets or (lambda g, shape: g.uniform(0, 1, shape))
    x = {n: rng.uniform(0, 1, (trials, net.size(n))) for n in net.inputs}
    t = {n: make(rng, (trials, net.size(n))) for n in net.outputs}
    return x, t


def check_agrees(net: Graph, spec: LearnSpec, dtype: str = "float64") -> tuple[LearnResult, LearnResult]:
    """Train a copy with each backend; compare everything the result holds, and the nets trained in place."""
    ref_net, llvm_net = net.copy(), net.copy()
    expected = train_reference(ref_net, spec)
    spec.dtype = dtype
    actual = llvm.train(llvm_net, spec)
    tol = TRAINING_TOL[dtype]
    assert actual.epochs_run == expected.epochs_run, (actual.epochs_run, expected.epochs_run)
    assert_close(actual.losses, expected.losses, **tol, what="per-minibatch losses")
    assert set(actual.params) == set(expected.params)
    for name, value in expected.params.items():
        assert_close(actual.params[name], value, **tol, what=f"trained {name}")
    for name, p in llvm_net.params.items():
        assert_close(p.value, ref_net.params[name].value, **tol, what=f"net's {name} trained in place")
    assert set(actual.last_outputs) == set(expected.last_outputs)
    for name, value in expected.last_outputs.items():
        assert_close(actual.last_outputs[name], value, **tol, what=f"last outputs of {name}")
    return expected, actual


# --- every transfer op, every loss, both optimizers ---------------------------------------------


@pytest.mark.parametrize("op", sorted(op.transfer_key for op in ops.transfer_ops()))
def test_every_transfer_op_trains_like_the_reference(op: str) -> None:
    rng = np.random.default_rng(5)
    params = OP_PARAMS.get(op, {})
    net = make_net([node("in", 3, op, node_bias=rng.uniform(-0.2, 0.2, 3), **params),
                    node("hid", 5, op, node_bias=rng.uniform(-0.2, 0.2, 5), **params),
                    node("out", 2, op, **params)],
                   [("in", "hid"), ("hid", "out")])
    x, t = data(net, 7)
    spec = LearnSpec(x, t, epochs=4, minibatch_size=3, randomize_minibatch=True, seed=3, learning_rate=0.1)
    check_agrees(net, spec)
    assert_close(llvm.run(net, x)["out"], reference.run(net, x)["out"], **TRAINING_TOL["float64"], what=f"run() with {op}")


def _probabilities(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    p = rng.uniform(0.05, 1, shape)
    return p / p.sum(axis=1, keepdims=True)


#: Per loss: an OUTPUT op whose values the loss is meant for, and a target maker.
LOSS_CASES: dict[str, tuple[str, object]] = {
    "MSE": ("linear", None),
    "SSE": ("tanh", lambda g, s: g.uniform(-1, 1, s)),
    "L1": ("linear", None),
    "CROSS_ENTROPY": ("softmax", lambda g, s: np.eye(s[1])[g.integers(0, s[1], s[0])]),
    "BINARY_CROSS_ENTROPY": ("logistic", lambda g, s: g.integers(0, 2, s).astype(float)),
    "KL_DIV": ("linear", _probabilities),  # the output is taken as log-probabilities
    "NLL": ("linear", lambda g, s: np.eye(s[1])[g.integers(0, s[1], s[0])]),  # log-probabilities, one-hot
    "POISSON_NLL": ("linear", lambda g, s: g.poisson(2.0, s).astype(float)),  # output = log rate
    "SOFT_MARGIN": ("tanh", lambda g, s: g.choice([-1.0, 1.0], s)),  # targets -1 or 1
    "SOFT_MARGIN_SUM": ("linear", lambda g, s: g.choice([-1.0, 1.0], s)),
}
LOSS_RUNS = [(loss, *LOSS_CASES.get(loss, ("logistic", None))) for loss in sorted(ops.LOSSES)]
LOSS_RUNS.append(("CROSS_ENTROPY", "linear", _probabilities))  # logits, soft targets


@pytest.mark.parametrize(("loss", "out_op", "targets"), LOSS_RUNS, ids=[f"{r[0]}-{r[1]}" for r in LOSS_RUNS])
def test_every_loss_trains_like_the_reference(loss: str, out_op: str, targets: object) -> None:
    net = make_net([node("in", 4, "linear"), node("hid", 6, "tanh"), node("out", 3, out_op)],
                   [("in", "hid"), ("hid", "out")], seed=2)
    x, t = data(net, 10, targets=targets)
    spec = LearnSpec(x, t, epochs=3, minibatch_size=4, learning_rate=0.05, loss=loss)
    check_agrees(net, spec)


@pytest.mark.parametrize("minibatch", [1, 3, 4])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("optimizer", sorted(ops.OPTIMIZERS))
def test_optimizers_weight_decay_and_minibatches(optimizer: str, weight_decay: float, minibatch: int) -> None:
    net = make_net([node("in", 3, "linear", node_bias=np.full(3, 0.1)), node("hid", 4, "relu", leak=0.05),
                    node("out", 2, "logistic", node_bias=np.zeros(2))], [("in", "hid"), ("hid", "out")], seed=7)
    x, t = data(net, 10)
    spec = LearnSpec(x, t, epochs=5, minibatch_size=minibatch, randomize_minibatch=True, seed=11,
                     learning_rate=0.05, optimizer=optimizer, weight_decay=weight_decay)
    check_agrees(net, spec)


def semantic_like() -> Graph:
    """Converging inputs, a skip connection, two outputs, biases (one frozen), a frozen projection."""
    rng = np.random.default_rng(9)
    rep = node("rep", 5, "logistic", node_bias=rng.uniform(-0.3, 0.3, 5))
    hidden = node("hidden", 6, "tanh", node_bias=rng.uniform(-0.3, 0.3, 6))
    hidden.bias_learnable = False
    return make_net(
        [node("item", 4, "linear"), node("relation", 3, "linear", node_bias=rng.uniform(-0.3, 0.3, 3)), rep, hidden,
         node("attr", 7, "logistic", node_bias=rng.uniform(-0.3, 0.3, 7)), node("aux", 2, "linear")],
        [("item", "rep"), ("rep", "hidden"), ("relation", "hidden"), ("hidden", "attr"), ("item", "attr"),
         ("rep", "aux"), ("relation", "aux")],
        seed=4, frozen=("relation->aux",))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_converging_inputs_skip_connections_and_two_outputs(optimizer: str) -> None:
    net = semantic_like()
    assert net.outputs == ["attr", "aux"]
    x, t = data(net, 9)
    frozen = net.params["relation->aux"].value.copy()
    spec = LearnSpec(x, t, epochs=6, minibatch_size=4, randomize_minibatch=True, seed=2, learning_rate=0.05,
                     optimizer=optimizer, weight_decay=0.001)
    _, actual = check_agrees(net, spec)
    assert "relation->aux" not in actual.params and "hidden.bias" not in actual.params
    assert_close(net.params["relation->aux"].value, frozen, kind="exact", what="frozen projection untouched")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_wide_layers_vector_dot_products(dtype: str) -> None:
    """Rows of 21, 90 and 100 units take the vectorised dot product (whole blocks, a spare
    vector, a scalar tail); minibatch 3 sums 100 x 90 gradients in the workspace."""
    net = make_net([node("in", 5, "linear"), node("h1", 100, "tanh", node_bias=np.zeros(100)),
                    node("h2", 90, "logistic"), node("out", 21, "linear")],
                   [("in", "h1"), ("h1", "h2"), ("h2", "out")], seed=3)
    x, t = data(net, 7)
    spec = LearnSpec(x, t, epochs=3, minibatch_size=3, learning_rate=0.01, optimizer="adam")
    check_agrees(net, spec, dtype=dtype)
    check_agrees(net, LearnSpec(x, t, epochs=2, minibatch_size=1, learning_rate=0.01), dtype=dtype)
    single = jit.learn_kernel(net, ["out"], dtype, "MSE", "sgd", True, False)
    assert ("<4 x double>" if dtype == "float64" else "<8 x float>") in single.ir_text  # the explicit dot
    batched = jit.learn_kernel(net, ["out"], dtype, "MSE", "adam", False, False)
    assert "reassoc" in batched.ir_text  # minibatch products: mdfx.converters.llvm.gemm's loops
    assert '@"malloc"' not in batched.ir_text  # scratch is the runner's workspace


def fused_net() -> Graph:
    """Sizes no vector width divides; the first layer's products (4 x 37 x 70) take BLAS, the last loops."""
    return make_net([node("in", 37, "linear"), node("h1", 70, "logistic", node_bias=np.zeros(70)),
                     node("h2", 45, "tanh"), node("out", 9, "linear")], [("in", "h1"), ("h1", "h2"), ("h2", "out")],
                    seed=12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("minibatch", [4, 11, 16])
def test_minibatch_sgd_steps_inside_the_weight_gradient_product(dtype: str, minibatch: int) -> None:
    """11 trials: minibatch 4 ends with a partial one, 16 is larger than the data; per-param
    rates (one 0: the weight must not move) reach the fused step's alpha."""
    net = fused_net()
    x, t = data(net, 11)
    rates = {"in->h1": 0.2, "h2->out": 0.0}
    spec = LearnSpec(x, t, epochs=3, minibatch_size=minibatch, randomize_minibatch=True, seed=4,
                     learning_rate=0.05, param_learning_rates=rates)
    before = net.params["h2->out"].value.copy()
    check_agrees(net, spec, dtype=dtype)
    sig = jit.learn_kernel(net, ["out"], dtype, "MSE", "sgd", False, False).signature
    # fused: no gradient buffer for the weights; the bias (a row loop) keeps its own
    assert [k for k in sig.learnable if f"g:{k}" in sig.layout] == ["h1.bias"], sig.layout
    trained = net.copy()
    spec.dtype = dtype
    llvm.train(trained, spec)
    # (float32 trains a float32 copy: the weight comes back rounded to float32, unmoved)
    assert_close(trained.params["h2->out"].value, before.astype(dtype), kind="exact", what="a weight with rate 0")


def test_weights_shared_or_decayed_keep_their_gradient_buffer() -> None:
    """Only SGD without weight decay, on a weight that one dense layer reads, fuses its step."""
    rng = np.random.default_rng(6)
    params = [_p(rng, "w", (5, 5)), _p(rng, "v", (5, 3))]
    nodes = [Node("a", "MatMul", ["x", "w"], "a"), Node("b", "MatMul", ["a", "w"], "b"),
             Node("o", "MatMul", ["b", "v"], "out")]
    g = Graph.build("shared", {"x": (5,)}, params, nodes, ["out"])
    check_graph(g, minibatch=3)
    sig = jit.learn_kernel(g, ["out"], "float64", "MSE", "sgd", False, False).signature
    assert [k for k in sig.learnable if f"g:{k}" in sig.layout] == ["w"], sig.layout
    check_graph(g, minibatch=3, weight_decay=0.01)
    sig = jit.learn_kernel(g, ["out"], "float64", "MSE", "sgd", False, True).signature
    assert [k for k in sig.learnable if f"g:{k}" in sig.layout] == ["w", "v"], sig.layout


@pytest.mark.parametrize("minibatch", [1, 4])
@pytest.mark.parametrize("patience", [None, 1])
def test_every_epochs_outputs_in_one_kernel_call(minibatch: int, patience: int | None) -> None:
    """keep_epoch_outputs: each epoch's outputs in its own block of the kernel's buffer, so
    without callbacks one call runs the whole learn(); with patience, one call per epoch,
    stopping early (min_delta larger than any improvement)."""
    net = fused_net()
    x, t = data(net, 11)
    spec = LearnSpec(x, t, epochs=5, minibatch_size=minibatch, randomize_minibatch=True, seed=8,
                     learning_rate=0.05, keep_epoch_outputs=True, patience=patience, min_delta=10.0)
    want, got = check_agrees(net, spec)
    assert llvm.last_train_stats["kernel_calls"] == (1 if patience is None else got.epochs_run)
    assert got.epochs_run == (5 if patience is None else 2), got.epochs_run
    assert len(got.epoch_outputs) == len(want.epoch_outputs) == got.epochs_run
    for epoch, (a, b) in enumerate(zip(got.epoch_outputs, want.epoch_outputs, strict=True)):
        assert_close(a["out"], b["out"], **TRAINING_TOL["float64"], what=f"epoch {epoch}'s outputs")
    assert not np.allclose(got.epoch_outputs[0]["out"], got.epoch_outputs[-1]["out"])  # epochs differ
    # the kernel's one buffer, read as a list of dicts: slices, negative indices and the end
    earlier = got.epoch_outputs[:-1]
    assert len(earlier) == got.epochs_run - 1, len(earlier)
    for e in range(-got.epochs_run, got.epochs_run):
        assert_close(got.epoch_outputs[e]["out"], want.epoch_outputs[e]["out"], **TRAINING_TOL["float64"],
                     what=f"epoch_outputs[{e}]")
    if got.epochs_run > 1:
        assert_close(earlier.stacked("out")[-1], want.epoch_outputs[-2]["out"], **TRAINING_TOL["float64"],
                     what="the stacked array's last earlier epoch")
    with pytest.raises(IndexError, match=f"epoch {got.epochs_run} of {got.epochs_run}"):
        got.epoch_outputs[got.epochs_run]


# --- the loop: early stopping, callbacks, dtypes -------------------------------------------------


def xor_net() -> tuple[Graph, dict, dict]:
    net = make_net([node("in", 2, "linear"), node("hid", 10), node("out", 1)], [("in", "hid"), ("hid", "out")])
    x = {"in": np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)}
    t = {"out": np.array([[0], [1], [1], [0]], dtype=float)}
    return net, x, t


@pytest.mark.parametrize(("patience", "min_delta"), [(2, 0.5), (3, 0.0)])
def test_early_stopping_runs_the_same_epochs(patience: int, min_delta: float) -> None:
    net, x, t = xor_net()
    spec = LearnSpec(x, t, epochs=40, learning_rate=0.5, patience=patience, min_delta=min_delta)
    expected, actual = check_agrees(net, spec)
    if min_delta:
        assert actual.epochs_run == patience + 1 < spec.epochs
    assert llvm.last_train_stats["kernel_calls"] == actual.epochs_run  # one call per epoch


def test_callbacks_see_each_minibatch_and_weights_changed_in_place() -> None:
    net, x, t = xor_net()
    x = {"in": np.tile(x["in"], (2, 1))[:7]}
    t = {"out": np.tile(t["out"], (2, 1))[:7]}

    def spec_with(log: list, target: Graph) -> LearnSpec:
        def before() -> None:  # a callback that edits a weight in place: the next minibatch must see it
            log.append("before")
            target.params["hid->out"].value *= 0.99

        return LearnSpec(x, t, epochs=2, minibatch_size=3, learning_rate=0.5, call_before_minibatch=before,
                         call_after_minibatch=lambda: log.append("after"),
                         on_minibatch=lambda e, b, loss: log.append((e, b, loss)),
                         on_epoch=lambda e, loss: log.append(("epoch", e, loss)))

    ref_net, llvm_net, ref_log, llvm_log = net.copy(), net.copy(), [], []
    expected = train_reference(ref_net, spec_with(ref_log, ref_net))
    actual = llvm.train(llvm_net, spec_with(llvm_log, llvm_net))
    assert llvm.last_train_stats["kernel_calls"] == 6  # 2 epochs x 3 minibatches
    assert [type(v) for v in llvm_log] == [type(v) for v in ref_log]
    assert [v for v in llvm_log if isinstance(v, str)] == [v for v in ref_log if isinstance(v, str)]
    records = [(a, b) for a, b in zip(llvm_log, ref_log, strict=True) if isinstance(a, tuple)]
    for a, b in records:
        assert a[:-1] == b[:-1]
        assert_close(a[-1], b[-1], **TRAINING_TOL["float64"], what=f"callback loss {a}")
    for name, value in expected.params.items():
        assert_close(actual.params[name], value, **TRAINING_TOL["float64"], what=name)


def test_float32_is_close_to_float64() -> None:
    net, x, t = xor_net()
    spec = LearnSpec(x, t, epochs=100, minibatch_size=1, learning_rate=0.5)
    expected, actual = check_agrees(net, spec, dtype="float32")
    assert all(isinstance(v, float) for v in actual.losses)
    assert actual.params["in->hid"].dtype == np.float64  # written back into the float64 net
    run32 = llvm.run(net, x, dtype="float32")["out"]
    assert_close(run32, reference.run(net, x)["out"], kind="float32", what="float32 run()")


def test_zero_epochs_and_composition_learn() -> None:
    net, x, t = xor_net()
    spec = LearnSpec(x, t, epochs=0)
    assert llvm.train(net.copy(), spec).epochs_run == train_reference(net.copy(), spec).epochs_run == 0
    results = {}
    for mode in (pnl.ExecutionMode.Python, pnl.ExecutionMode.LLVMRun):
        comp, cx, ct = xor_composition()
        results[mode] = comp.learn(inputs=cx, targets=ct, epochs=20, execution_mode=mode)
    assert_close(results[pnl.ExecutionMode.LLVMRun], results[pnl.ExecutionMode.Python], **TRAINING_TOL["float64"],
                 what="AutodiffComposition.learn(execution_mode=LLVMRun)")


def test_names_from_a_model_file_stay_names() -> None:
    """Node and projection names reach the IR only as (sanitised) value names."""
    odd = ['in "x"\n} ; call @evil', "h\\1:x", "out@!"]
    net = make_net([node(odd[0], 2, "linear"), node(odd[1], 3, "tanh"), node(odd[2], 1)],
                   [(odd[0], odd[1]), (odd[1], odd[2])])
    x, t = data(net, 4)
    check_agrees(net, LearnSpec(x, t, epochs=3, minibatch_size=2, learning_rate=0.5))


# --- compiled-code cache ---------------------------------------------------------------------


def test_second_train_on_the_same_structure_does_not_compile() -> None:
    net = make_net([node("cache_in", 3, "linear"), node("cache_out", 2, "tanh")], [("cache_in", "cache_out")])
    x, t = data(net, 5)
    llvm.train(net.copy(), LearnSpec(x, t, epochs=2))
    assert set(jit.last_compile_stats) >= {"ir_s", "opt_s", "codegen_s", "total_s", "cached"}
    count = jit.compile_count
    other = make_net([node("cache_in", 3, "linear"), node("cache_out", 2, "tanh")], [("cache_in", "cache_out")],
                     seed=99)  # other weights, other data, other lr: same code
    x2, t2 = data(other, 8, seed=4)
    llvm.train(other, LearnSpec(x2, t2, epochs=3, learning_rate=0.3, weight_decay=0.0))
    assert jit.compile_count == count and jit.last_compile_stats["cached"] is True
    assert llvm.last_train_stats["compile_s"] == 0.0
    llvm.train(other, LearnSpec(x2, t2, epochs=1, minibatch_size=2))  # minibatch 1 has its own kernel
    assert jit.compile_count == count + 1
    llvm.train(other, LearnSpec(x2, t2, epochs=1, minibatch_size=5))  # the size itself is an argument
    assert jit.compile_count == count + 1
    poisoned = other.copy()  # a NaN weight is a value, not structure: the key holds no values
    next(iter(poisoned.params.values())).value[0, 0] = np.nan
    llvm.train(poisoned, LearnSpec(x2, t2, epochs=1, minibatch_size=2))
    assert jit.compile_count == count + 1


def test_the_kernel_cache_is_bounded_lru(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jit, "CACHE_SIZE", 2)
    jit.clear_cache()
    graphs = [make_net([node("a", k, "linear"), node("b", 2, "tanh")], [("a", "b")]) for k in (2, 3, 4)]
    x = [{"a": np.ones((3, k))} for k in (2, 3, 4)]
    for g, xi in zip(graphs[:2], x[:2], strict=True):
        llvm.run(g, xi)
    llvm.run(graphs[0], x[0])  # used again: now the most recent
    count = jit.compile_count
    llvm.run(graphs[2], x[2])  # evicts graphs[1], the least recently used
    assert jit.cache_len() == 2 and jit.compile_count == count + 1
    llvm.run(graphs[0], x[0])
    assert jit.compile_count == count + 1
    llvm.run(graphs[1], x[1])
    assert jit.compile_count == count + 2 and jit.cache_len() == 2


def test_cache_size_comes_from_the_environment() -> None:
    code = "from mdfx.converters.llvm import jit; print(jit.CACHE_SIZE)"
    env = {**__import__("os").environ, "MDFX_LLVM_CACHE": "5"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "5", out.stdout + out.stderr
    env["MDFX_LLVM_CACHE"] = "0"
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "MDFX_LLVM_CACHE must be a whole number of kernels >= 1, got '0'" in bad.stderr


# --- bad input never reaches the kernel --------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    (lambda x, t: x.update({"in": np.zeros((4, 3))}), r"input for node 'in' has shape \(4, 3\); expected \(trials, 2\)"),
    (lambda x, t: x.update({"in": np.zeros(8)}), r"input for node 'in' has shape \(8,\)"),
    (lambda x, t: x.update({"in": [["a", "b"]] * 4}), r"input for node 'in' is not numeric"),
    (lambda x, t: t.update({"out": np.zeros((3, 1))}), r"target for node 'out' has 3 trials; the inputs have 4"),
    (lambda x, t: t.update({"nope": np.zeros((4, 10))}), r"\('nope' is not a tensor of the graph\)"),
    (lambda x, t: x.pop("in"), r"no input for node 'in'"),
])
def test_bad_data_raises_data_error(change, message: str) -> None:
    net, x, t = xor_net()
    change(x, t)
    with pytest.raises(DataError, match=message):
        llvm.train(net, LearnSpec(x, t, epochs=1))


def test_bad_options_and_shared_weights_are_refused() -> None:
    net, x, t = xor_net()
    with pytest.raises(DataError, match="minibatch_size must be an integer >= 1"):
        llvm.train(net, LearnSpec(x, t, minibatch_size=0))
    with pytest.raises(UnsupportedError, match="float64 or float32, not 'float16'"):
        llvm.train(net, LearnSpec(x, t, dtype="float16"))
    with pytest.raises(DataError, match=r"input for node 'in' has shape \(4, 5\)"):
        llvm.run(net, {"in": np.zeros((4, 5))})
    shared = make_net([node("in", 2, "linear"), node("hid", 10, node_bias=np.zeros(10)), node("out", 1)],
                      [("in", "hid"), ("hid", "out")])
    shared.params["hid.bias"].value = shared.params["in->hid"].value[0]  # a view into another weight
    with pytest.raises(DataError, match="share memory"):
        llvm.train(shared, LearnSpec(x, t))
    g = net.copy()
    g.params["hid->out"].value = np.zeros((2, 1))  # replaced after Graph.build checked it
    for call in (lambda: llvm.train(g, LearnSpec(x, t)), lambda: llvm.run(g, x)):
        with pytest.raises(DataError, match=r"param 'hid->out' has shape \(2, 1\); the graph needs \(10, 1\)"):
            call()


def test_odd_layouts_are_copied_and_written_back() -> None:
    net, x, t = xor_net()
    fortran = net.copy()
    for p in fortran.mechanisms.projections:
        fortran.params[p.name].value = np.asfortranarray(fortran.params[p.name].value)
    expected = train_reference(net.copy(), LearnSpec(x, t, epochs=5, learning_rate=0.5))
    actual = llvm.train(fortran, LearnSpec({"in": x["in"][:, ::1].T.copy().T}, t, epochs=5, learning_rate=0.5))
    for p in fortran.mechanisms.projections:
        assert_close(fortran.params[p.name].value, expected.params[p.name], **TRAINING_TOL["float64"], what=f"{p.name} written back")
    assert_close(actual.losses, expected.losses, **TRAINING_TOL["float64"], what="losses")


def test_import_mdfx_does_not_import_llvmlite() -> None:
    code = "import sys, mdfx, mdfx.runners.llvm; print('llvmlite' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


# --- expression lowering -------------------------------------------------------------------------


LOWERED = ["x * y - 3", "x / y", "-x ** 2", "x ** 3", "y ** -2", "(x > y) * 2", "where(x >= 0, x, -x)",
           "sign(x)", "maximum(x, y)", "minimum(x, y)", "exp(x) + log(abs(y))", "tanh(x)", "sqrt(abs(x))",
           "x ** 0.5 + 0 * y"]


def test_expressions_lower_to_numpy_semantics() -> None:
    module = ir.Module("exprs")
    for k, text in enumerate(LOWERED):
        fn = ir.Function(module, ir.FunctionType(ir.IntType(32), [F64, F64, F64.as_pointer()]), f"f{k}")
        e = Emitter(module, fn, F64)
        e.store(e.expr(text, {"x": fn.args[0], "y": fn.args[1]}), fn.args[2], 0)
        e.b.ret(ir.Constant(ir.IntType(32), 0))
    engine, _, _ = jit.compile_ir(str(module))
    proto = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_double, ctypes.c_double, ctypes.POINTER(ctypes.c_double))
    points = [(0.7, -1.3), (-2.0, 0.5), (0.0, 3.0), (1.5, 1.5), (np.nan, 1.0), (2.0, np.nan)]
    from mdfx import expr

    for k, text in enumerate(LOWERED):
        f = proto(engine.get_function_address(f"f{k}"))
        for xv, yv in points:
            out = ctypes.c_double()
            f(xv, yv, ctypes.byref(out))
            with np.errstate(all="ignore"):
                want = float(expr.evaluate(text, {"x": xv, "y": yv}))
                if "0 * y" in text:  # folded: the op table's shape idiom, not arithmetic (see emit.py)
                    want = float(expr.evaluate(text.replace(" + 0 * y", ""), {"x": xv}))
            assert out.value == pytest.approx(want, rel=1e-15, nan_ok=True), (text, xv, yv, out.value, want)


def test_logistic_derivative_ir_golden() -> None:
    """A logistic derivative, lowered: one IR instruction per numpy operation, in numpy's order."""
    module = ir.Module("golden")
    fn = ir.Function(module, ir.FunctionType(F64, [F64]), "dlogistic")
    e = Emitter(module, fn, F64)
    e.b.ret(e.expr("gain * y * (1 - y / scale)", {"gain": 2.0, "scale": 1.5, "y": fn.args[0]}))
    body = [line.strip() for line in str(fn).splitlines() if "=" in line or "ret" in line]
    assert body == [
        '%".4" = fmul double 0x4000000000000000, %".1"',
        '%".5" = fdiv double %".1", 0x3ff8000000000000',
        '%".6" = fsub double 0x3ff0000000000000, %".5"',
        '%".7" = fmul double %".4", %".6"',
        'ret double %".7"',
    ], "\n".join(body)


# --- graph ops: every op of mdfx.ops.GRAPH_OPS against the reference, run and training ----------------


def _p(rng: np.random.Generator, name: str, shape: tuple[int, ...], learnable: bool = True, low: float = -0.5,
       high: float = 0.5) -> Param:
    return Param(name, rng.uniform(low, high, shape), learnable)


def around(op: str, attrs: dict | None = None, positive: bool = False) -> Graph:
    """x (batch, 4) -> MatMul -> [a positive shift] -> ``op`` -> MatMul -> out (batch, 3)."""
    rng = np.random.default_rng(len(op))
    params = [_p(rng, "w1", (4, 5)), _p(rng, "w2", (5, 3)), Param("half", np.array([0.5]), False)]
    nodes = [Node("l1", "MatMul", ["x", "w1"], "h")]
    x = "h"
    if positive:
        nodes += [Node("sig", "Sigmoid", ["h"], "s"), Node("shift", "Add", ["s", "half"], "p")]
        x = "p"
    nodes += [Node("op", op, [x], "a", dict(attrs or {})), Node("l2", "MatMul", ["a", "w2"], "out")]
    return Graph.build(f"around_{op}", {"x": (4,)}, params, nodes, ["out"])


POSITIVE = {"Log", "Sqrt", "Reciprocal", "Pow"}
ELEMENTWISE_CASES: list[tuple[str, dict]] = [
    (name, {"Pow": {"exponent": 1.5}, "LeakyRelu": {"alpha": 0.2}, "Elu": {"alpha": 0.7},
            "HardSigmoid": {"alpha": 0.3, "beta": 0.4}, "Clip": {"min": -0.3, "max": 0.4}}.get(name, {}))
    for name, op in ops.GRAPH_OPS.items() if op.elementwise
] + [("Gelu", {"approximate": "tanh"}), ("Pow", {"exponent": 3.0})]


def check_graph(g: Graph, minibatch: int = 3, trials: int = 7, dtype: str = "float64", optimizer: str = "sgd",
                weight_decay: float = 0.0, rates: dict | None = None, epochs: int = 3, lr: float = 0.05) -> None:
    """run() and train() of ``g`` against the reference, every output, in ``dtype``."""
    rng = np.random.default_rng(21)
    x = {k: rng.uniform(-1, 1, (trials, *s)) for k, s in g.inputs.items()}
    tol = TRAINING_TOL[dtype]
    expected = reference.run(g, x)
    actual = llvm.run(g, x, dtype=dtype)
    assert list(actual) == list(expected)
    for k, v in expected.items():
        if v.dtype.kind == "f":
            assert_close(actual[k], v, **tol, what=f"{g.name}: run() output {k}")
        else:
            assert actual[k].tolist() == v.tolist(), (k, actual[k], v)
    t = {o: rng.uniform(-1, 1, (trials, *g.features(o))) for o in g.outputs if g.differentiable(o)}
    spec = LearnSpec(x, t, epochs=epochs, minibatch_size=minibatch, randomize_minibatch=True, seed=5,
                     learning_rate=lr, optimizer=optimizer, weight_decay=weight_decay,
                     param_learning_rates=rates or {})
    ref_g, llvm_g = g.copy(), g.copy()
    want = train_reference(ref_g, spec)
    spec.dtype = dtype
    got = llvm.train(llvm_g, spec)
    assert got.epochs_run == want.epochs_run
    assert_close(got.losses, want.losses, **tol, what=f"{g.name}: losses")
    assert set(got.params) == set(want.params)
    for k, v in want.params.items():
        assert_close(got.params[k], v, **tol, what=f"{g.name}: trained {k}")
        assert_close(llvm_g.params[k].value, ref_g.params[k].value, **tol, what=f"{g.name}: {k} in place")
    for k, v in want.last_outputs.items():
        assert got.last_outputs[k].shape == v.shape
        assert_close(got.last_outputs[k], v, **tol, what=f"{g.name}: last outputs {k}")


@pytest.mark.parametrize(("op", "attrs"), ELEMENTWISE_CASES, ids=[f"{o}{a or ''}" for o, a in ELEMENTWISE_CASES])
def test_every_elementwise_graph_op(op: str, attrs: dict) -> None:
    check_graph(around(op, attrs, positive=op in POSITIVE))


def graph_broadcast(rng: np.random.Generator) -> Graph:
    params = [_p(rng, "p3", (3,)), _p(rng, "p21", (2, 1)), _p(rng, "p13", (1, 3)), Param("half", np.ones(1), False),
              _p(rng, "w", (6, 2))]
    nodes = [Node("a", "Add", ["x", "p3"], "a"), Node("m", "Mul", ["a", "p21"], "m"),
             Node("s", "Sub", ["m", "p13"], "s"), Node("sg", "Sigmoid", ["x"], "sg"),
             Node("d0", "Add", ["sg", "half"], "d0"), Node("d", "Div", ["s", "d0"], "d"),
             Node("silu", "Mul", ["d", "sg"], "silu"), Node("sq", "Mul", ["silu", "silu"], "sq"),
             Node("f", "Flatten", ["sq"], "f"), Node("out", "MatMul", ["f", "w"], "out")]
    return Graph.build("broadcast", {"x": (2, 3)}, params, nodes, ["out"])


def graph_matmul(rng: np.random.Generator) -> Graph:
    params = [_p(rng, "w", (4, 3)), _p(rng, "p", (2, 2)), _p(rng, "v", (4,))]
    nodes = [Node("h", "MatMul", ["x", "w"], "h"), Node("ph", "MatMul", ["p", "h"], "ph"),
             Node("t", "Transpose", ["ph"], "t", {"perm": [0, 2, 1]}), Node("q", "MatMul", ["h", "t"], "q"),
             Node("o1", "Reshape", ["q"], "out1", {"shape": [0, 4]}), Node("o2", "MatMul", ["x", "v"], "out2")]
    return Graph.build("matmul", {"x": (2, 4)}, params, nodes, ["out1", "out2"])


def graph_gemm(rng: np.random.Generator) -> Graph:
    params = [_p(rng, "w", (3, 4)), _p(rng, "c", (3,)), _p(rng, "p1", (4, 3)), _p(rng, "p2", (2, 4)),
              _p(rng, "c2", (1, 2)), _p(rng, "c3", (1,))]
    nodes = [Node("h", "Gemm", ["x", "w", "c"], "h", {"transB": 1, "alpha": 0.7, "beta": 1.3}),
             Node("t", "Tanh", ["h"], "t"),
             Node("m", "Gemm", ["p1", "p2"], "m", {"transA": 1, "transB": 1, "alpha": 0.5}),
             Node("o", "Gemm", ["t", "m", "c2"], "o", {"beta": 0.5}),
             Node("o2", "Gemm", ["o", "m", "c3"], "out", {"transB": 1})]
    return Graph.build("gemm", {"x": (4,)}, params, nodes, ["out"])


def graph_layout(rng: np.random.Generator) -> Graph:
    params = [_p(rng, "w1", (6, 4)), _p(rng, "w2", (7, 2)), _p(rng, "w3", (10, 2))]
    nodes = [Node("a", "MatMul", ["x", "w1"], "a"), Node("b", "Tanh", ["x"], "b"),
             Node("c", "Concat", ["a", "b"], "c", {"axis": 1}),
             Node("s1", "Slice", ["c"], "s1", {"starts": [1], "ends": [9], "axes": [1], "steps": [2]}),
             Node("s2", "Slice", ["c"], "s2", {"starts": [8], "ends": [0], "axes": [-1], "steps": [-3]}),
             Node("cc", "Concat", ["s1", "s2"], "cc", {"axis": -1}), Node("o1", "MatMul", ["cc", "w2"], "out1"),
             Node("r", "Reshape", ["a"], "r", {"shape": [0, 2, 2]}),
             Node("r2", "Reshape", ["x"], "r2", {"shape": [-1, 2, 3]}),
             Node("c3", "Concat", ["r", "r2"], "c3", {"axis": 2}),
             Node("u", "Unsqueeze", ["c3"], "u", {"axes": [1]}), Node("sq", "Squeeze", ["u"], "sq", {"axes": [1]}),
             Node("tr", "Transpose", ["sq"], "tr", {"perm": [0, 2, 1]}), Node("fl", "Flatten", ["tr"], "fl"),
             Node("id", "Identity", ["fl"], "id"), Node("o2", "MatMul", ["id", "w3"], "out2")]
    return Graph.build("layout", {"x": (6,)}, params, nodes, ["out1", "out2"])


def graph_reduce(rng: np.random.Generator) -> Graph:
    params = [_p(rng, "p", (3, 4)), _p(rng, "w", (17, 2))]
    nodes = [Node("h", "Mul", ["x", "p"], "h"),
             Node("rs", "ReduceSum", ["h"], "rs", {"axes": [2], "keepdims": 0}),
             Node("rm", "ReduceMean", ["h"], "rm", {"axes": [1, 3], "keepdims": 1}),
             Node("rx", "ReduceMax", ["h"], "rx", {"axes": [-1], "keepdims": 0}),
             Node("f1", "Flatten", ["rs"], "f1"), Node("f2", "Flatten", ["rm"], "f2"), Node("f3", "Flatten", ["rx"], "f3"),
             Node("c", "Concat", ["f1", "f2", "f3"], "c", {"axis": 1}), Node("o", "MatMul", ["c", "w"], "out")]
    return Graph.build("reduce", {"x": (2, 3, 4)}, params, nodes, ["out"])


def graph_softmax(rng: np.random.Generator) -> Graph:
    params = [_p(rng, "p", (2, 3)), _p(rng, "w", (6, 2))]
    nodes = [Node("h", "Add", ["x", "p"], "h"), Node("s", "Softmax", ["h"], "s", {"axis": 1}),
             Node("l", "LogSoftmax", ["h"], "l", {"axis": -1}), Node("m", "Mul", ["s", "l"], "m"),
             Node("f", "Flatten", ["m"], "f"), Node("o", "MatMul", ["f", "w"], "out1"),
             Node("fh", "Flatten", ["h"], "fh"), Node("ps", "pnl.SoftMax", ["fh"], "out2", {"gain": 1.7})]
    return Graph.build("softmax", {"x": (2, 3)}, params, nodes, ["out1", "out2"])


def graph_norm(rng: np.random.Generator) -> Graph:
    params = [_p(rng, "w", (4, 4)), _p(rng, "g1", (4,), low=0.5, high=1.5), _p(rng, "b1", (4,)),
              _p(rng, "g2", (4,), low=0.5, high=1.5), _p(rng, "bs", (3,), low=0.5, high=1.5), _p(rng, "bb", (3,)),
              _p(rng, "mean", (3,), learnable=False), _p(rng, "var", (3,), learnable=False, low=0.5, high=2.0),
              _p(rng, "wo", (8, 2)), _p(rng, "wb", (6, 2)), _p(rng, "px", (3, 2))]
    nodes = [Node("h", "MatMul", ["x", "w"], "h"),
             Node("ln1", "LayerNormalization", ["h", "g1", "b1"], "ln1", {"epsilon": 1e-3}),
             Node("ln2", "LayerNormalization", ["h", "g2"], "ln2", {"axis": 1}),
             Node("ln3", "LayerNormalization", ["h"], "ln3"),
             Node("s1", "Add", ["ln1", "ln2"], "s1"), Node("s2", "Add", ["s1", "ln3"], "s2"),
             Node("f", "Flatten", ["s2"], "f"), Node("o1", "MatMul", ["f", "wo"], "out1"),
             Node("hx", "Reshape", ["h"], "hx", {"shape": [0, 8]}),
             Node("sl", "Slice", ["hx"], "sl", {"starts": [0], "ends": [6], "axes": [1], "steps": [1]}),
             Node("r", "Reshape", ["sl"], "r", {"shape": [0, 3, 2]}), Node("m", "Mul", ["r", "px"], "m"),
             Node("bn", "BatchNormalization", ["m", "bs", "bb", "mean", "var"], "bn"),
             Node("fb", "Flatten", ["bn"], "fb"), Node("o2", "MatMul", ["fb", "wb"], "out2")]
    return Graph.build("norm", {"x": (2, 4)}, params, nodes, ["out1", "out2"])


STRUCTURES = {"broadcast": graph_broadcast, "matmul": graph_matmul, "gemm": graph_gemm, "layout": graph_layout,
              "reduce": graph_reduce, "softmax": graph_softmax, "norm": graph_norm}


@pytest.mark.parametrize("minibatch", [1, 3, 10])
@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_graph_structures_run_and_train_like_the_reference(name: str, minibatch: int) -> None:
    """Minibatch 1 (steps fused into the backward), 3 (7 trials: a partial last one) and 10 (more than the data)."""
    g = STRUCTURES[name](np.random.default_rng(3))
    check_graph(g, minibatch=minibatch, lr=0.01 if name == "norm" else 0.05)  # norm diverges at 0.05


@pytest.mark.parametrize("name", ["matmul", "norm", "gemm"])
def test_graph_adam_weight_decay_per_param_rates(name: str) -> None:
    g = STRUCTURES[name](np.random.default_rng(4))
    first = next(k for k, p in g.params.items() if p.learnable)
    check_graph(g, minibatch=2, optimizer="adam", weight_decay=0.01, rates={first: 0.2})
    check_graph(g, minibatch=1, optimizer="adam", weight_decay=0.01, rates={first: 0.0})


@pytest.mark.parametrize("name", ["matmul", "norm", "softmax"])
def test_graph_float32(name: str) -> None:
    check_graph(STRUCTURES[name](np.random.default_rng(5)), minibatch=2, dtype="float32")


def test_ops_without_gradient_run_on_the_host() -> None:
    rng = np.random.default_rng(6)
    params = [_p(rng, "w", (3, 4)), _p(rng, "b", (3,))]
    nodes = [Node("logits", "Gemm", ["x", "w", "b"], "logits", {"transB": 1}),
             Node("probs", "Softmax", ["logits"], "probs"),
             Node("label", "ArgMax", ["probs"], "label", {"axis": 1, "keepdims": 0})]
    g = Graph.build("classifier", {"x": (4,)}, params, nodes, ["label", "probs"])
    check_graph(g, minibatch=2)
    assert llvm.run(g, {"x": rng.uniform(-1, 1, (5, 4))})["label"].dtype == np.int64
    with pytest.raises(UnsupportedError, match="'label' of 'classifier' is computed by an op that takes no gradient"):
        llvm.train(g, LearnSpec({"x": np.zeros((2, 4))}, {"label": np.zeros((2,))}))


def test_a_deep_chain_trains_like_the_reference() -> None:
    """100 layers of like shape share a few compiled functions (see bench/bench_llvm.py --deep for 1000)."""
    rng = np.random.default_rng(7)
    params, nodes, x = [], [], "x"
    for i in range(100):
        params += [_p(rng, f"w{i}", (3, 3), low=-0.9, high=0.9), _p(rng, f"b{i}", (3,))]
        nodes += [Node(f"m{i}", "MatMul", [x, f"w{i}"], f"m{i}"), Node(f"a{i}", "Add", [f"m{i}", f"b{i}"], f"a{i}"),
                  Node(f"t{i}", "Tanh", [f"a{i}"], f"t{i}")]
        x = f"t{i}"
    g = Graph.build("deep", {"x": (3,)}, params, nodes, [x])
    check_graph(g, minibatch=2, epochs=2)
    kernel = jit.learn_kernel(g, [x], "float64", "MSE", "sgd", False, False)
    assert kernel.ir_text.count("define internal void") < 12  # shared per op and shape, not per layer


def test_more_arrays_than_ctypes_arguments() -> None:
    """1100 params: one pointer table, not one argument per array (ctypes stops at 1024)."""
    rng = np.random.default_rng(8)
    params = [_p(rng, f"b{i}", (2,), low=-0.01, high=0.01) for i in range(1100)]
    nodes, x = [], "x"
    for i in range(1100):
        nodes.append(Node(f"a{i}", "Add", [x, f"b{i}"], f"a{i}"))
        x = f"a{i}"
    g = Graph.build("wide", {"x": (2,)}, params, nodes, [x])
    check_graph(g, minibatch=1, epochs=1, trials=3)


@pytest.mark.parametrize("minibatch", [2**63 - 1, 2**63 - 3, 2**62 + 5])
def test_huge_minibatch_sizes_train_as_one_minibatch(minibatch: int) -> None:
    net, x, t = xor_net()
    spec = LearnSpec(x, t, epochs=3, minibatch_size=minibatch, learning_rate=0.5)
    expected, actual = check_agrees(net, spec)
    assert len(actual.losses) == 3


def test_minibatch_size_past_int64_is_refused() -> None:
    net, x, t = xor_net()
    with pytest.raises(DataError, match=r"minibatch_size must be an integer >= 1 and <= 9223372036854775807, got 9223372036854775808"):
        llvm.train(net, LearnSpec(x, t, minibatch_size=2**63))


def test_the_kernel_checks_its_own_counts_and_indices() -> None:
    """Called directly with bad counts, the kernel returns a status; it never divides by zero or reads out of range."""
    from mdfx.converters.llvm.graphgen import BAD_ARGUMENT, BAD_INDEX, OK

    net, x, t = xor_net()
    g = net
    for single in (True, False):
        kernel = jit.learn_kernel(g, ["out"], "float64", "MSE", "sgd", single, False)
        sig = kernel.signature
        weights = [p.value.copy() for p in g.params.values()]
        order = np.array([[0, 1, 2, 3]], dtype=np.int64)
        losses, last = np.zeros(4), np.zeros((4, 1))
        ws = np.zeros(4 * sig.ws_rows + sig.ws_fixed)
        bufs = [*weights, x["in"].copy(), t["out"].copy(), order, losses, last, np.full(2, 0.1), ws]
        table = (ctypes.c_void_p * len(bufs))(*[b.ctypes.data for b in bufs])

        def call(ntrials=4, batch=1, k0=0, k1=4, epochs=1, step0=0, cap=4, ws_len=ws.size, every=0, kernel=kernel,
                 table=table) -> int:
            return kernel.cfunc(table, ntrials, batch, k0, k1, epochs, step0, cap, ws_len, 0.0, every)

        assert call() == OK
        assert call(batch=0) == BAD_ARGUMENT  # would divide by zero
        assert call(ntrials=0) == BAD_ARGUMENT
        assert call(k1=5) == BAD_ARGUMENT  # past the last minibatch of the only epoch
        assert call(k0=3, k1=2) == BAD_ARGUMENT
        assert call(cap=0) == BAD_ARGUMENT
        assert call(cap=2**62) == BAD_ARGUMENT  # cap * rows would overflow the workspace check
        assert call(ws_len=3) == BAD_ARGUMENT
        assert call(step0=2**63 - 2) == BAD_ARGUMENT  # the step number would wrap
        assert call(every=2) == BAD_ARGUMENT  # would write past last's epochs * ntrials rows
        assert call(every=-1) == BAD_ARGUMENT
        assert call(every=1) == OK  # one epoch: the one block
        if not single:
            assert call(batch=2**63 - 1, k1=1) == OK
            assert call(batch=2**63 - 3, k1=1, epochs=1) == OK
        order[0, 2] = 7
        assert call() == BAD_INDEX
        order[0, 2] = -1
        assert call() == BAD_INDEX
        order[0, 2] = 2


def test_a_bad_status_becomes_an_mdfx_error(monkeypatch: pytest.MonkeyPatch) -> None:
    net, x, t = xor_net()
    spec = LearnSpec(x, t, epochs=1)
    spec._orders = spec.orders().copy()
    spec._orders[0, 1] = 9  # past the validation in Python, as a corrupted buffer would be
    monkeypatch.setattr(llvm._LazyOrders, "checked", lambda self, rows: rows)
    with pytest.raises(DataError, match=r"refused a trial index outside \[0, trials\)"):
        llvm.train(net, spec)


def test_a_1000_layer_chain_compiles_in_bounded_time() -> None:
    """Issue 12: compile time no longer grows with depth (bench/bench_llvm.py --deep 1000 gives the
    numbers: about 1.3 s here); the bound is generous, for a loaded CI machine."""
    from bench.bench_llvm import deep_chain

    g = deep_chain(1000)
    out = g.outputs[0]
    x = {"x": np.random.default_rng(2).uniform(size=(3, 8))}
    spec = LearnSpec(x, {out: np.random.default_rng(3).uniform(size=(3, 8))}, epochs=1, minibatch_size=2,
                     learning_rate=0.1)
    jit.clear_cache()
    expected = train_reference(g.copy(), spec)
    actual = llvm.train(g.copy(), spec)
    assert jit.last_compile_stats["total_s"] < 60, jit.last_compile_stats
    assert_close(actual.losses, expected.losses, **TRAINING_TOL["float64"], what="1000-layer chain losses")
    for k in ("w0", "b999", "w500"):
        assert_close(actual.params[k], expected.params[k], **TRAINING_TOL["float64"], what=f"1000-layer chain {k}")


def test_a_graph_composition_runs_and_learns_in_llvm_mode() -> None:
    """A graph brought from elsewhere (no mechanisms): learn() and run() dispatch the graph itself."""
    from mdfx.composition.graph_model import GraphComposition

    results, params, losses = {}, {}, {}
    x = np.random.default_rng(9).uniform(-1, 1, (6, 6))
    t = np.random.default_rng(10).uniform(-1, 1, (6, 2))
    for mode in (pnl.ExecutionMode.Python, pnl.ExecutionMode.LLVMRun):
        g = graph_layout(np.random.default_rng(11))
        comp = GraphComposition(g, learning_rate=0.05)
        comp.learn(inputs={"x": x}, targets={"out1": t}, epochs=3, minibatch_size=4, execution_mode=mode)
        results[mode] = comp.run(inputs={"x": x}, execution_mode=mode)
        params[mode] = {k: v.copy() for k, v in comp.parameters_dict().items()}
        losses[mode] = list(comp.losses)
    py, ll = pnl.ExecutionMode.Python, pnl.ExecutionMode.LLVMRun
    assert_close(losses[ll], losses[py], **TRAINING_TOL["float64"], what="GraphComposition losses")
    for k, v in params[py].items():
        assert_close(params[ll][k], v, **TRAINING_TOL["float64"], what=f"GraphComposition {k}")
    assert_close(np.asarray(results[ll], dtype=float), np.asarray(results[py], dtype=float), **TRAINING_TOL["float64"],
                 what="GraphComposition run()")


def test_an_autoencoder_may_use_its_input_as_target() -> None:
    """Inputs and targets are only read: the same array for both is fine (weights may not share)."""
    rng = np.random.default_rng(12)
    g = Graph.build("ae", {"x": (4,)}, [_p(rng, "enc", (4, 2)), _p(rng, "dec", (2, 4))],
                    [Node("h", "MatMul", ["x", "enc"], "h"), Node("t", "Tanh", ["h"], "t"),
                     Node("y", "MatMul", ["t", "dec"], "y")], ["y"])
    x = rng.uniform(-1, 1, (5, 4))
    spec = LearnSpec({"x": x}, {"y": x}, epochs=2, minibatch_size=2, learning_rate=0.1)
    expected = train_reference(g.copy(), spec)
    actual = llvm.train(g.copy(), spec)
    assert_close(actual.losses, expected.losses, **TRAINING_TOL["float64"], what="autoencoder losses")


def test_run_returns_outputs_that_are_inputs_themselves() -> None:
    """A graph may list an input among its outputs (found by the ONNX fuzz): run() returns it
    beside the computed ones, as the reference does."""
    from mdfx.runners import reference
    from mdfx.schema.graph import Graph, Node, Param

    g = Graph.build("pass", {"x": (2,)}, [Param("b", np.array([1.0, -2.0]))], [Node("add", "Add", ["x", "b"], "y")],
                    ["x", "y"])
    x = np.array([[0.5, 1.5], [2.0, -1.0]])
    got, want = llvm.run(g, {"x": x}), reference.run(g, {"x": x})
    assert sorted(got) == ["x", "y"], sorted(got)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], **TOL["exact"], err_msg=name)
