"""The LLVM backend against the numpy reference: every op, loss and optimizer; caching; bad input.

Each agreement test trains two copies of one net, one with
``training.train_reference`` and one with ``mdfx.runners.llvm.train``, and
compares the trained weights, the per-minibatch losses, the epochs run and the
last epoch's outputs. Tolerances live in :data:`TOL`.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("llvmlite")

from helpers import assert_close, xor_composition  # noqa: E402
from llvmlite import ir  # noqa: E402

import mdfx as pnl  # noqa: E402
from mdfx import ops  # noqa: E402
from mdfx.converters.llvm import jit  # noqa: E402
from mdfx.converters.llvm.emit import F64, Emitter  # noqa: E402
from mdfx.errors import DataError, UnsupportedError  # noqa: E402
from mdfx.runners import llvm, reference  # noqa: E402
from mdfx.runners.training import LearnResult, LearnSpec, train_reference  # noqa: E402
from mdfx.schema.net import Net, NodeSpec, ProjectionSpec  # noqa: E402

#: Agreement with the float64 reference. float64 differs from numpy only by summation
#: order (BLAS vs our loops) and libm vs numpy's exp/log: rounding, amplified by training.
#: float32 is compared with the float64 reference, so its tolerance is float32's rounding
#: accumulated over a few hundred updates.
TOL = {"float64": {"rtol": 1e-9, "atol": 1e-12}, "float32": {"rtol": 2e-4, "atol": 2e-5}}

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
         ) -> NodeSpec:
    """A node with ``params`` (defaults filled) and an optional trainable bias on its net input."""
    return NodeSpec(name, size, op, ops.fill_params(ops.TRANSFER[op], params), node_bias)


def make_net(nodes: list[NodeSpec], edges: list[tuple[str, str]], seed: int = 0, frozen: tuple[str, ...] = ()
             ) -> Net:
    """Projections "sender->receiver" with uniform(-0.5, 0.5) weights; names in ``frozen`` are not learnable."""
    rng = np.random.default_rng(seed)
    size = {n.name: n.size for n in nodes}
    projections = [ProjectionSpec(f"{s}->{r}", s, r, rng.uniform(-0.5, 0.5, (size[s], size[r])),
                                  learnable=f"{s}->{r}" not in frozen) for s, r in edges]
    return Net.build("test", nodes, projections)


def data(net: Net, trials: int, seed: int = 1, targets: object = None) -> tuple[dict, dict]:
    """Random inputs in [0, 1) for every INPUT node, targets from ``targets(rng, shape)`` (default: uniform)."""
    rng = np.random.default_rng(seed)
    make = targets or (lambda g, shape: g.uniform(0, 1, shape))
    x = {n: rng.uniform(0, 1, (trials, net.node(n).size)) for n in net.inputs}
    t = {n: make(rng, (trials, net.node(n).size)) for n in net.outputs}
    return x, t


def check_agrees(net: Net, spec: LearnSpec, dtype: str = "float64") -> tuple[LearnResult, LearnResult]:
    """Train a copy with each backend; compare everything the result holds, and the nets trained in place."""
    ref_net, llvm_net = net.copy(), net.copy()
    expected = train_reference(ref_net, spec)
    spec.dtype = dtype
    actual = llvm.train(llvm_net, spec)
    tol = TOL[dtype]
    assert actual.epochs_run == expected.epochs_run, (actual.epochs_run, expected.epochs_run)
    assert_close(actual.losses, expected.losses, **tol, what="per-minibatch losses")
    assert set(actual.params) == set(expected.params)
    for name, value in expected.params.items():
        assert_close(actual.params[name], value, **tol, what=f"trained {name}")
    for p in llvm_net.projections:
        assert_close(p.matrix, ref_net.projection(p.name).matrix, **tol, what=f"net's {p.name} trained in place")
    for n in llvm_net.nodes:
        if n.bias is not None:
            assert_close(n.bias, ref_net.node(n.name).bias, **tol, what=f"net's {n.name}.bias trained in place")
    assert set(actual.last_outputs) == set(expected.last_outputs)
    for name, value in expected.last_outputs.items():
        assert_close(actual.last_outputs[name], value, **tol, what=f"last outputs of {name}")
    return expected, actual


# --- every transfer op, every loss, both optimizers ---------------------------------------------


@pytest.mark.parametrize("op", sorted(ops.TRANSFER))
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
    assert_close(llvm.run(net, x)["out"], reference.run(net, x)["out"], **TOL["float64"], what=f"run() with {op}")


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


def semantic_like() -> Net:
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
    frozen = net.projection("relation->aux").matrix.copy()
    spec = LearnSpec(x, t, epochs=6, minibatch_size=4, randomize_minibatch=True, seed=2, learning_rate=0.05,
                     optimizer=optimizer, weight_decay=0.001)
    _, actual = check_agrees(net, spec)
    assert "relation->aux" not in actual.params and "hidden.bias" not in actual.params
    assert_close(net.projection("relation->aux").matrix, frozen, rtol=0, what="frozen projection untouched")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_wide_layers_vector_dot_products_and_heap_scratch(dtype: str) -> None:
    """Rows of 21, 90 and 100 units take the vectorised dot product (whole blocks, a spare
    vector, a scalar tail); minibatch 3 sums 100 x 90 gradients, in float64 more scratch than the
    stack gets (malloc'd)."""
    net = make_net([node("in", 5, "linear"), node("h1", 100, "tanh", node_bias=np.zeros(100)),
                    node("h2", 90, "logistic"), node("out", 21, "linear")],
                   [("in", "h1"), ("h1", "h2"), ("h2", "out")], seed=3)
    x, t = data(net, 7)
    spec = LearnSpec(x, t, epochs=3, minibatch_size=3, learning_rate=0.01, optimizer="adam")
    check_agrees(net, spec, dtype=dtype)
    kernel = jit.learn_kernel(net, dtype, "MSE", "adam", 3, False)
    assert ("<4 x double>" if dtype == "float64" else "<8 x float>") in kernel.ir_text
    assert ('@"malloc"' in kernel.ir_text) == (dtype == "float64")  # 91 kB of float64 sums; float32: 46 kB


# --- the loop: early stopping, callbacks, dtypes -------------------------------------------------


def xor_net() -> tuple[Net, dict, dict]:
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

    def spec_with(log: list, target: Net) -> LearnSpec:
        def before() -> None:  # a callback that edits a weight in place: the next minibatch must see it
            log.append("before")
            target.projection("hid->out").matrix *= 0.99

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
        assert_close(a[-1], b[-1], **TOL["float64"], what=f"callback loss {a}")
    for name, value in expected.params.items():
        assert_close(actual.params[name], value, **TOL["float64"], what=name)


def test_float32_is_close_to_float64() -> None:
    net, x, t = xor_net()
    spec = LearnSpec(x, t, epochs=100, minibatch_size=1, learning_rate=0.5)
    expected, actual = check_agrees(net, spec, dtype="float32")
    assert all(isinstance(v, float) for v in actual.losses)
    assert actual.params["in->hid"].dtype == np.float64  # written back into the float64 net
    run32 = llvm.run(net, x, dtype="float32")["out"]
    assert_close(run32, reference.run(net, x)["out"], rtol=1e-5, atol=1e-6, what="float32 run()")


def test_zero_epochs_and_composition_learn() -> None:
    net, x, t = xor_net()
    spec = LearnSpec(x, t, epochs=0)
    assert llvm.train(net.copy(), spec).epochs_run == train_reference(net.copy(), spec).epochs_run == 0
    results = {}
    for mode in (pnl.ExecutionMode.Python, pnl.ExecutionMode.LLVMRun):
        comp, cx, ct = xor_composition()
        results[mode] = comp.learn(inputs=cx, targets=ct, epochs=20, execution_mode=mode)
    assert_close(results[pnl.ExecutionMode.LLVMRun], results[pnl.ExecutionMode.Python], **TOL["float64"],
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
    assert jit.last_compile_stats["cached"] is False
    assert set(jit.last_compile_stats) >= {"ir_s", "opt_s", "codegen_s", "total_s"}
    count = jit.compile_count
    other = make_net([node("cache_in", 3, "linear"), node("cache_out", 2, "tanh")], [("cache_in", "cache_out")],
                     seed=99)  # other weights, other data, other lr: same code
    x2, t2 = data(other, 8, seed=4)
    llvm.train(other, LearnSpec(x2, t2, epochs=3, learning_rate=0.3, weight_decay=0.0))
    assert jit.compile_count == count and jit.last_compile_stats["cached"] is True
    assert llvm.last_train_stats["compile_s"] == 0.0
    llvm.train(other, LearnSpec(x2, t2, epochs=1, minibatch_size=2))  # the minibatch size is compiled in
    assert jit.compile_count == count + 1
    renamed = other.copy()  # projection names are not part of the structure: the kernel is reused
    renamed.projections[0].name = "renamed"
    _, actual = check_agrees(renamed, LearnSpec(x2, t2, epochs=2, minibatch_size=2))
    assert jit.compile_count == count + 1 and list(actual.params) == ["renamed"]


# --- bad input never reaches the kernel --------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    (lambda x, t: x.update({"in": np.zeros((4, 3))}), r"input for node 'in' has shape \(4, 3\); expected"),
    (lambda x, t: x.update({"in": np.zeros(8)}), r"input for node 'in' has shape \(8,\)"),
    (lambda x, t: x.update({"in": [["a", "b"]] * 4}), r"input for node 'in' is not numeric"),
    (lambda x, t: t.update({"out": np.zeros((3, 1))}), r"target for node 'out' has 3 trials; the inputs have 4"),
    (lambda x, t: t.pop("out"), r"no target for node 'out'; give an array of shape \(trials, 1\)"),
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
    shared = net.copy()
    shared.node("hid").bias = shared.projection("in->hid").matrix[0]  # a view into another weight
    with pytest.raises(DataError, match="share memory"):
        llvm.train(shared, LearnSpec(x, t))
    resized = net.copy()
    resized.projection("hid->out").matrix = np.zeros((2, 1))  # replaced after Net.build checked it
    for call in (lambda: llvm.train(resized, LearnSpec(x, t)), lambda: llvm.run(resized, x)):
        with pytest.raises(DataError, match=r"weight 'hid->out' has shape \(2, 1\); the network needs \(10, 1\)"):
            call()


def test_odd_layouts_are_copied_and_written_back() -> None:
    net, x, t = xor_net()
    fortran = net.copy()
    for p in fortran.projections:
        p.matrix = np.asfortranarray(p.matrix)
    expected = train_reference(net.copy(), LearnSpec(x, t, epochs=5, learning_rate=0.5))
    actual = llvm.train(fortran, LearnSpec({"in": x["in"][:, ::1].T.copy().T}, t, epochs=5, learning_rate=0.5))
    for p in fortran.projections:
        assert_close(p.matrix, expected.params[p.name], **TOL["float64"], what=f"{p.name} written back")
    assert_close(actual.losses, expected.losses, **TOL["float64"], what="losses")


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
