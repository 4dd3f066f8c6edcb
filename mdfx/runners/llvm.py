"""ExecutionMode.LLVMRun: train and run a Net with kernels compiled by :mod:`mdfx.converters.llvm`.

:func:`train` has exactly the semantics of :func:`mdfx.runners.training.train_reference`
(same trial orders, minibatches, losses, optimizer steps, early stopping and
callbacks); only the arithmetic runs in machine code. How often Python
regains control is the only thing that varies:

* no callbacks and no ``patience``: one kernel call runs the whole learn();
* ``patience`` or ``on_epoch`` set: one call per epoch, then :class:`EarlyStopper` decides;
* any per-minibatch callback set: one call per minibatch, the callbacks around it.

Every buffer the kernel touches is a contiguous numpy array that is checked
here (shape, dtype, contiguity, no overlap) before its address is handed over:
bad data raises :class:`~mdfx.errors.DataError` and never reaches compiled code.
Weights are the net's own arrays when they already have the kernel's layout
(float64, C-contiguous), so training writes into them directly; otherwise
(float32, or an odd layout) the kernel trains a copy that is written back.
So a callback that edits a weight in place is seen by the next minibatch (as
in the reference) in float64; one that replaces a net's array is not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mdfx import ops
from mdfx.errors import DataError, UnsupportedError
from mdfx.runners.training import EarlyStopper, LearnResult, LearnSpec, learnable_params
from mdfx.schema.net import Net

DTYPES: dict[str, type] = {"float64": np.float64, "float32": np.float32}

#: Timing of the last :func:`train` / :func:`run` (seconds): ``compile_s`` (0 on a cache hit),
#: ``kernel_s`` (time inside compiled code), ``total_s`` (the whole call), and ``kernel_calls``.
last_train_stats: dict[str, float] = {}


def train(net: Net, spec: LearnSpec) -> LearnResult:
    """Run ``spec``'s learn() on ``net`` with compiled code; trains ``net`` in place.

    Returns the trained parameters (copies), the loss of every minibatch, the
    number of epochs run and the OUTPUT values of the last epoch, exactly as
    :func:`~mdfx.runners.training.train_reference` does, in ``spec.dtype``.
    """
    from mdfx.converters.llvm import jit  # llvmlite is imported only when this backend runs
    from mdfx.converters.llvm.codegen import signature

    start = time.perf_counter()
    if spec.on_values is not None:
        raise UnsupportedError("per-minibatch node values (logging) exist only in ExecutionMode.Python; "
                               "the LLVM kernel keeps them in registers")
    dtype = _dtype(spec.dtype)
    loss = ops.loss_op(spec.loss).name
    optimizer = ops.optimizer_op(spec.optimizer).name
    batch = _whole(spec.minibatch_size, "minibatch_size", minimum=1)
    epochs = _whole(spec.epochs, "epochs", minimum=0)
    inputs, ntrials = _node_arrays(net, spec.inputs, net.inputs, "input", dtype, None)
    targets, _ = _node_arrays(net, spec.targets, net.outputs, "target", dtype, ntrials)
    if ntrials == 0:
        raise DataError("learn() got 0 trials; give inputs of shape (trials, size) with at least one trial")
    orders = _orders(spec.orders(), epochs, ntrials)
    if epochs == 0:
        return LearnResult({k: v.copy() for k, v in learnable_params(net).items()}, [], 0, {})

    compile_start = time.perf_counter()
    kernel = jit.learn_kernel(net, spec.dtype, loss, optimizer, batch, bool(spec.weight_decay))
    compile_s = time.perf_counter() - compile_start
    # The cached kernel may have been built for another net of this structure (other names):
    # arguments are matched by position, which the structure key fixes, never by name.
    sig = signature(net, optimizer)
    weights = _Weights(net, dtype, read_only=False)
    _check_no_overlap(weights, [*inputs, *targets])
    per_epoch = -(-ntrials // batch)
    carried = spec.optimizer_state
    state = [np.zeros_like(weights.arrays[name]) for name, _ in sig.state]
    if carried is not None:
        for (name, slot), array in zip(sig.state, state, strict=True):
            if slot in carried.slots.get(name, {}):
                array[...] = carried.slots[name][slot]
    step0 = carried.step if carried is not None else 0
    losses = np.zeros(epochs * per_epoch, dtype=dtype)
    last = [np.zeros((ntrials, net.node(name).size), dtype=dtype) for name in sig.outputs]
    buffers = [*weights.arrays.values(), *state, *inputs, *targets, orders, losses, *last]
    pointers = [_address(a) for a in buffers]
    lr, wd = _uniform_rate(net, spec), float(spec.weight_decay)
    calls = 0
    steps_done = 0
    kernel_s = 0.0

    def run_minibatches(k0: int, k1: int) -> None:
        nonlocal calls, kernel_s, steps_done
        t = time.perf_counter()
        status = kernel.cfunc(*pointers, ntrials, k0, k1, lr, wd, step0)
        kernel_s += time.perf_counter() - t
        calls += 1
        steps_done = k1
        if status != 0:
            raise MemoryError("the LLVM learn kernel could not allocate its scratch arrays")

    callbacks = spec.call_before_minibatch or spec.call_after_minibatch or spec.on_minibatch
    stopper = EarlyStopper(spec.patience, spec.min_delta)
    epochs_run = 0
    every: list[dict[str, np.ndarray]] = []
    try:
        if not callbacks and spec.patience is None and spec.on_epoch is None and not spec.keep_epoch_outputs:
            run_minibatches(0, epochs * per_epoch)
            epochs_run = epochs
        else:
            for epoch in range(epochs):
                first = epoch * per_epoch
                if callbacks:
                    for b in range(per_epoch):
                        if spec.call_before_minibatch:
                            spec.call_before_minibatch()
                        run_minibatches(first + b, first + b + 1)
                        if spec.on_minibatch:
                            spec.on_minibatch(epoch, b, float(losses[first + b]))
                        if spec.call_after_minibatch:
                            spec.call_after_minibatch()
                else:
                    run_minibatches(first, first + per_epoch)
                epochs_run = epoch + 1
                if spec.keep_epoch_outputs:
                    every.append({name: out.astype(np.float64) for name, out in zip(sig.outputs, last, strict=True)})
                if spec.on_epoch is None and spec.patience is None:
                    continue  # nobody reads the epoch's loss
                epoch_loss = float(np.mean(losses[first:first + per_epoch], dtype=np.float64))
                if spec.on_epoch:
                    spec.on_epoch(epoch, epoch_loss)
                if stopper.step(epoch_loss):
                    break
    finally:
        weights.write_back()
        if carried is not None:
            carried.step = step0 + steps_done
            for (name, slot), array in zip(sig.state, state, strict=True):
                carried.slots.setdefault(name, {})[slot] = array.astype(np.float64)
    last_train_stats.clear()
    last_train_stats.update(compile_s=compile_s if not jit.last_compile_stats.get("cached") else 0.0,
                            kernel_s=kernel_s, total_s=time.perf_counter() - start, kernel_calls=calls)
    return LearnResult(
        {k: v.copy() for k, v in learnable_params(net).items()},
        losses[:epochs_run * per_epoch].astype(np.float64).tolist(),
        epochs_run,
        {name: out.astype(np.float64) for name, out in zip(sig.outputs, last, strict=True)},
        every,
    )


def run(net: Net, inputs: Mapping[str, Any], dtype: str = "float64") -> dict[str, np.ndarray]:
    """Outputs of the OUTPUT nodes for every trial, by name, each (trials, size) float64.

    ``inputs[name]`` has shape (trials, size) for every INPUT node; one kernel call runs them all.
    """
    from mdfx.converters.llvm import jit

    start = time.perf_counter()
    np_dtype = _dtype(dtype)
    arrays, ntrials = _node_arrays(net, inputs, net.inputs, "input", np_dtype, None)
    outputs = [np.zeros((ntrials, net.node(name).size), dtype=np_dtype) for name in net.outputs]
    if ntrials:
        kernel = jit.infer_kernel(net, dtype)
        weights = _Weights(net, np_dtype, read_only=True)
        buffers = [*weights.arrays.values(), *arrays, *outputs]
        t = time.perf_counter()
        status = kernel.cfunc(*[_address(a) for a in buffers], ntrials)
        last_train_stats.clear()
        last_train_stats.update(kernel_s=time.perf_counter() - t, kernel_calls=1)
        if status != 0:
            raise MemoryError("the LLVM infer kernel could not allocate its scratch arrays")
    last_train_stats.update(total_s=time.perf_counter() - start)
    return {name: out.astype(np.float64, copy=False) for name, out in zip(net.outputs, outputs, strict=True)}


# --- validation: nothing reaches the kernel unchecked ---------------------------------------


def _dtype(name: str) -> type:
    if name not in DTYPES:
        raise UnsupportedError(f"the LLVM backend computes in {' or '.join(DTYPES)}, not {name!r}")
    return DTYPES[name]


def _whole(value: object, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise DataError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _node_arrays(net: Net, given: Mapping[str, Any], nodes: list[str], role: str, dtype: type,
                 ntrials: int | None) -> tuple[list[np.ndarray], int]:
    """One C-contiguous (trials, size) array of ``dtype`` per node, in ``nodes`` order, all with one trial count."""
    arrays = []
    for name in nodes:
        size = net.node(name).size
        if name not in given:
            raise DataError(f"no {role} for node {name!r}; give an array of shape (trials, {size}) "
                            f"(the {role}s given are for: {', '.join(map(repr, given)) or 'nothing'})")
        try:
            array = np.require(np.asarray(given[name]), dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])
        except (TypeError, ValueError) as exc:
            raise DataError(f"{role} for node {name!r} is not numeric: {exc}") from None
        if array.ndim != 2 or array.shape[1] != size:
            raise DataError(f"{role} for node {name!r} has shape {array.shape}; expected (trials, {size})")
        if ntrials is None:
            ntrials = array.shape[0]
        elif array.shape[0] != ntrials:
            raise DataError(f"{role} for node {name!r} has {array.shape[0]} trials; the inputs have {ntrials}")
        arrays.append(array)
    return arrays, ntrials or 0


def _orders(orders: np.ndarray, epochs: int, ntrials: int) -> np.ndarray:
    """The (epochs, trials) int64 trial orders; every index must name a trial (the kernel reads by them)."""
    orders = np.require(orders, dtype=np.int64, requirements=["C_CONTIGUOUS", "ALIGNED"])
    if orders.shape != (epochs, ntrials):
        raise DataError(f"trial orders have shape {orders.shape}; expected ({epochs}, {ntrials})")
    if orders.size and (orders.min() < 0 or orders.max() >= ntrials):
        raise DataError(f"trial orders index trials {orders.min()}..{orders.max()}; there are {ntrials}")
    return orders


class _Weights:
    """The arrays the kernel reads (and trains) for every weight of the net, in the kernel's order.

    Projections, then node biases: the order of :func:`mdfx.converters.llvm.codegen.signature`.
    The net's own array is used when it already is C-contiguous, aligned and of the
    kernel's dtype (and writeable, for training); otherwise a copy, written back after.
    """

    def __init__(self, net: Net, dtype: type, read_only: bool) -> None:
        size = {n.name: n.size for n in net.nodes}
        entries = [(p.name, p.matrix, (size[p.sender], size[p.receiver])) for p in net.projections]
        entries += [(f"{n.name}.bias", n.bias, (n.size,)) for n in net.nodes if n.bias is not None]
        self.arrays: dict[str, np.ndarray] = {}
        self.copied: dict[str, np.ndarray] = {}
        for name, original, shape in entries:
            if not isinstance(original, np.ndarray) or original.shape != shape:
                raise DataError(f"weight {name!r} has shape {np.shape(original)}; the network needs {shape} "
                                "(was the array replaced after the net was built?)")
            if original.dtype.kind != "f":
                raise DataError(f"weight {name!r} has dtype {original.dtype}; it must be a float array")
            flags = original.flags
            if (original.dtype == dtype and flags.c_contiguous and flags.aligned
                    and (read_only or flags.writeable)):
                self.arrays[name] = original
            else:
                self.arrays[name] = np.ascontiguousarray(original, dtype=dtype)
                self.copied[name] = original

    def write_back(self) -> None:
        for name, original in self.copied.items():
            original[...] = self.arrays[name]


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _uniform_rate(net: Net, spec: LearnSpec) -> float:
    """The one learning rate the kernel takes (a scalar argument, so a change never recompiles).

    Per-parameter rates that differ are refused: the kernel has no per-parameter rate yet.
    """
    rates = {name: spec.rate(name) for name in learnable_params(net)}
    if len(set(rates.values())) > 1:
        raise UnsupportedError(
            "ExecutionMode.LLVMRun trains every parameter at one learning rate, but these differ: "
            + ", ".join(f"{n!r}: {r:g}" for n, r in rates.items())
            + "; use ExecutionMode.PyTorch or Python for per-projection learning rates")
    return next(iter(rates.values()), float(spec.learning_rate))


def _check_no_overlap(weights: _Weights, others: list[np.ndarray]) -> None:
    """The kernel assumes distinct buffers (``noalias``); a weight sharing memory is refused.

    Every buffer is C-contiguous here, so it spans [address, address + nbytes).
    """
    spans = [(name, _address(w), _address(w) + w.nbytes) for name, w in weights.arrays.items()]
    other_spans = [(None, _address(o), _address(o) + o.nbytes) for o in others]
    for i, (name, start, end) in enumerate(spans):
        for other, o_start, o_end in spans[i + 1:] + other_spans:
            if start < o_end and o_start < end:
                if other is None:
                    raise DataError(f"weight {name!r} shares memory with an input or target array; pass a copy")
                raise DataError(f"weights {name!r} and {other!r} share memory; the LLVM backend trains "
                                "each weight array on its own: give each its own array (e.g. net.copy())")


def validation_runner(net: Net, dtype: str) -> Callable[[Mapping[str, Any]], dict[str, np.ndarray]]:
    """The ``llvm`` rows of ``mdfx validate``: compiled inference over all trials."""
    from mdfx.converters.llvm import jit

    jit.infer_kernel(net, dtype)  # compile now, so the table's time per trial is the run alone
    return lambda inputs: run(net, inputs, dtype=dtype)
