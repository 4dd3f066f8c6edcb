"""ExecutionMode.LLVMRun: train and run an op graph with kernels compiled by :mod:`mdfx.converters.llvm`.

:func:`train` has exactly the semantics of :func:`mdfx.runners.training.train_reference`
(same trial orders, minibatches, losses, optimizer steps, per-param learning
rates, early stopping and callbacks); only the arithmetic runs in machine code.
How often Python regains control is the only thing that varies:

* no callbacks and no ``patience``: one kernel call runs the whole learn();
* ``patience`` or ``on_epoch`` set: one call per epoch, then :class:`EarlyStopper` decides;
* any per-minibatch callback set: one call per minibatch, the callbacks around it.

Every buffer the kernel touches is a contiguous numpy array that is checked
here (shape, dtype, contiguity, no overlap) before its address goes into the
kernel's pointer table: bad data raises :class:`~mdfx.errors.DataError` and
never reaches compiled code, and the kernel checks its counts again (a bad one
comes back as a status, turned into a DataError here). Params are the graph's
own arrays when they already have the kernel's layout (float64, C-contiguous),
so training writes into them directly; otherwise (float32, or an odd layout)
the kernel trains a copy that is written back. So a callback that edits a
weight in place is seen by the next minibatch (as in the reference) in float64.

Ops that take no gradient (ArgMax, the ai.onnx.ml tails, CastLabel) run after the
kernel with the numpy rule of :mod:`mdfx.runners.reference` on the float tensors
the kernel computed.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mdfx import limits, ops
from mdfx.errors import DataError, UnsupportedError
from mdfx.runners.training import (
    EpochOutputs,
    LearnResult,
    LearnSpec,
    by_tensor,
    drive,
    learning_rate_of,
    rekey,
)
from mdfx.schema import validate
from mdfx.schema.graph import Graph

DTYPES: dict[str, type] = {"float64": np.float64, "float32": np.float32}

#: Trial rows the infer kernel forwards at a time (its workspace holds this many rows).
INFER_ROWS = 256

#: Timing of the last :func:`train` / :func:`run` (seconds): ``compile_s`` (0 on a cache hit),
#: ``kernel_s`` (time inside compiled code), ``total_s`` (the whole call), and ``kernel_calls``.
last_train_stats: dict[str, float] = {}

_INT64_MAX = 2**63 - 1


def _status_error(status: int, what: str) -> DataError:
    from mdfx.converters.llvm.graphgen import BAD_ARGUMENT, BAD_INDEX

    if status == BAD_INDEX:
        return DataError(f"the LLVM {what} kernel refused a trial index outside [0, trials) in the trial order")
    if status == BAD_ARGUMENT:
        return DataError(f"the LLVM {what} kernel refused its counts (minibatch size, epochs, trials or "
                         "workspace size out of range)")
    return DataError(f"the LLVM {what} kernel returned status {status}")


def train(graph: Graph, spec: LearnSpec) -> LearnResult:
    """Run ``spec``'s learn() on ``graph`` with compiled code; trains it in place.

    ``spec.inputs`` are keyed by graph input, ``spec.targets`` by trained output tensor
    (or a mechanism's name, the way back kept). Returns the trained parameters (copies), the loss of
    every minibatch, the number of epochs run and the trained outputs of the last epoch,
    exactly as :func:`~mdfx.runners.training.train_reference` does, in ``spec.dtype``.
    """
    from mdfx.converters.llvm import jit  # llvmlite is imported only when this backend runs

    # The shared check first: minibatch sizes near 2**63 once wrapped the kernel's
    # int64 arithmetic (SIGFPE / out-of-range reads); NaN rates and bad arrays never reach it.
    validate.learn_spec(graph, spec)
    _check_width(graph)
    start = time.perf_counter()
    keyed, back = by_tensor(graph, spec)
    if back:  # a mechanism whose value has another tensor: train by tensor, key the result back
        return rekey(train(graph, keyed), back)
    if spec.on_values is not None:
        raise UnsupportedError("per-minibatch node values (logging) exist only in ExecutionMode.Python; "
                               "the LLVM kernel keeps them in its workspace")
    for node in graph.nodes:
        if node.op == "BatchNormalization" and node.attrs["training_mode"]:
            raise UnsupportedError(f"node {node.name!r} (BatchNormalization, training_mode=1): the LLVM backend "
                                   "trains BatchNorm in its inference form only (frozen running statistics); train "
                                   "this graph in ExecutionMode.PyTorch or ExecutionMode.Python, or put the "
                                   "module in eval() before importing it")
    dtype = _dtype(spec.dtype)
    loss = ops.loss_op(spec.loss).name
    optimizer = ops.optimizer_op(spec.optimizer).name
    batch = _whole(spec.minibatch_size, "minibatch_size", minimum=1)
    if batch > _INT64_MAX:
        raise DataError(f"minibatch_size must be an integer in [1, 2**63 - 1], got {batch}")
    epochs = _whole(spec.epochs, "epochs", minimum=0)
    targets = spec.trained()
    reported = spec.reported()
    sources = tuple(spec.target_tensors.get(t) if t not in spec.targets else None for t in targets)
    inputs, ntrials = _arrays(graph, spec.inputs, list(graph.inputs), "input", dtype, None)
    target_arrays, _ = _arrays(graph, spec.targets, list(spec.targets), "target", dtype, ntrials)
    if ntrials == 0:
        raise DataError("learn() got 0 trials; give inputs of shape (trials, features) with at least one trial")
    learnable = [k for k, p in graph.params.items() if p.learnable]
    if epochs == 0:
        return LearnResult({k: graph.params[k].value.copy() for k in learnable}, [], 0, {})
    orders = _LazyOrders(spec.orders(), epochs, ntrials)

    compile_start = time.perf_counter()
    kernel = jit.learn_kernel(graph, targets, spec.dtype, loss, optimizer, batch == 1, bool(spec.weight_decay),
                              sources, tuple(reported[len(targets):]))
    compile_s = time.perf_counter() - compile_start
    cached = bool(jit.last_compile_stats.get("cached"))
    sig = kernel.signature
    weights = _Weights(graph, dtype, read_only=False)
    _check_no_overlap(weights, [*inputs, *target_arrays], {k for k, p in graph.params.items() if not p.learnable})
    per_epoch = -(-ntrials // batch)
    carried = spec.optimizer_state
    state = [np.zeros_like(weights.arrays[name]) for name, _ in sig.state]
    if carried is not None:
        for (name, slot), array in zip(sig.state, state, strict=True):
            if slot in carried.slots.get(name, {}):
                array[...] = carried.slots[name][slot]
    step0 = carried.step if carried is not None else 0
    losses = np.zeros(epochs * per_epoch, dtype=dtype)
    # every epoch's outputs (keep_epoch_outputs): the kernel writes epoch e's to rows
    # [e * ntrials, (e + 1) * ntrials) of ``last``, so one call keeps them all
    every_epoch = bool(spec.keep_epoch_outputs)
    blocks = epochs if every_epoch else 1
    last = [np.zeros((blocks * ntrials, graph.size(t)), dtype=dtype) for t in reported]
    rates = np.array([learning_rate_of(spec, k) for k in sig.learnable], dtype=np.float64)
    cap = min(batch, ntrials)
    workspace = np.zeros(cap * sig.ws_rows + sig.ws_fixed, dtype=dtype)
    programs = _programs(kernel, ["fwd", "bwd", "upd"], weights, workspace, cap, dict(zip(sig.state, state, strict=True)),
                         rates, sig.learnable)
    buffers = [*weights.arrays.values(), *state, *inputs, *target_arrays, orders.table, losses, *last, rates,
               workspace, *programs]
    table = _table(buffers)
    wd = float(spec.weight_decay)
    calls = 0
    steps_done = 0
    kernel_s = 0.0

    def run_minibatches(k0: int, k1: int) -> None:
        nonlocal calls, kernel_s, steps_done
        orders.fill(-(-k1 // per_epoch))  # the epochs this call reaches
        t = time.perf_counter()
        status = kernel.cfunc(table, ntrials, batch, k0, k1, epochs, step0, cap, workspace.size, wd, int(every_epoch))
        kernel_s += time.perf_counter() - t
        calls += 1
        if status != 0:
            raise _status_error(status, "learn")
        steps_done = k1

    every: EpochOutputs | list[dict[str, np.ndarray]] = []
    epochs_run = 0
    try:
        # the one schedule: the whole loop in one kernel call unless callbacks or patience cut it
        epochs_run = drive(spec, per_epoch, run_minibatches, lambda k: float(losses[k]))
    finally:
        weights.write_back()
        if carried is not None:
            carried.step = step0 + steps_done
            for (name, slot), array in zip(sig.state, state, strict=True):
                carried.slots.setdefault(name, {})[slot] = array.astype(np.float64)
    # one float64 array per target, (blocks, trials, *features); each epoch's outputs are views into it
    blocked = {t: out.astype(np.float64, copy=False).reshape((blocks, *_rows_shape(spec, graph, t, ntrials)))
               for t, out in zip(reported, last, strict=True)}
    if every_epoch:
        every = EpochOutputs(blocked, epochs_run)
    final = {t: out[max(epochs_run - 1, 0) if every_epoch else 0] for t, out in blocked.items()}
    last_train_stats.clear()
    last_train_stats.update(compile_s=0.0 if cached else compile_s, kernel_s=kernel_s,
                            total_s=time.perf_counter() - start, kernel_calls=calls)
    return LearnResult(
        {k: graph.params[k].value.copy() for k in learnable},
        losses[:epochs_run * per_epoch].astype(np.float64).tolist(),
        epochs_run,
        final,
        every,
    )


def _rows_shape(spec: LearnSpec, graph: Graph, name: str, ntrials: int) -> tuple[int, ...]:
    """One epoch's rows of tensor ``name``: shaped as its targets were given, else (trials, *features)."""
    return np.shape(spec.targets[name]) if name in spec.targets else (ntrials, *graph.features(name))


def run(graph: Graph, inputs: Mapping[str, Any], dtype: str = "float64",
        _checked: bool = False) -> dict[str, np.ndarray]:
    """The graph's outputs for every trial (keyed by :meth:`Graph.output_names`).

    ``inputs[name]`` has shape (trials, *features) (or (trials, size)) for every graph
    input; one kernel call runs them all. Float outputs come back float64 with shape
    (trials, *features); outputs of ops that take no gradient as their numpy rule gives them.
    ``_checked``: the caller has put ``inputs`` through :mod:`mdfx.schema.validate` already
    (a composition's run(), whose ``parse_inputs`` makes the same check), so it is not repeated.
    """
    from mdfx.converters.llvm import jit
    from mdfx.converters.llvm.graph_rules import is_host
    from mdfx.runners.reference import RULES

    if not _checked:
        validate.run_inputs(graph, inputs, allow_empty=True)
    _check_width(graph)
    start = time.perf_counter()
    np_dtype = _dtype(dtype)
    arrays, ntrials = _arrays(graph, inputs, list(graph.inputs), "input", np_dtype, None)
    host: list = []
    host_tensors: set[str] = set()
    for node in graph.nodes:
        if is_host(node.op) or any(t in host_tensors for t in node.inputs):
            host.append(node)
            host_tensors.add(node.output)
    computed = {n.output for n in graph.nodes} - host_tensors
    wanted = [t for t in graph.outputs if t in computed]
    wanted += [t for n in host for t in n.inputs if t in computed and t not in wanted]
    wanted = list(dict.fromkeys(wanted))
    outs = [np.zeros((ntrials, graph.size(t)), dtype=np_dtype) for t in wanted]
    last_train_stats.clear()
    if ntrials and wanted:
        kernel = jit.infer_kernel(graph, wanted, dtype)
        weights = _Weights(graph, np_dtype, read_only=True)
        cap = min(ntrials, INFER_ROWS)
        workspace = np.zeros(cap * kernel.signature.ws_rows + kernel.signature.ws_fixed, dtype=np_dtype)
        programs = _programs(kernel, ["fwd"], weights, workspace, cap)
        table = _table([*weights.arrays.values(), *arrays, *outs, workspace, *programs])
        t = time.perf_counter()
        status = kernel.cfunc(table, ntrials, cap, workspace.size)
        last_train_stats.update(kernel_s=time.perf_counter() - t, kernel_calls=1)
        if status != 0:
            raise _status_error(status, "infer")
    env: dict[str, Any] = {t: o.astype(np.float64, copy=False).reshape((ntrials, *graph.features(t)))
                           for t, o in zip(wanted, outs, strict=True)}
    returned = graph.outputs
    # the numpy tail (host ops), or an output that is an input or a param itself, needs those too
    if host or any(t not in env for t in returned):
        env.update({k: p.value for k, p in graph.params.items()})
        env.update({k: a.astype(np.float64).reshape((ntrials, *graph.inputs[k]))
                    for k, a in zip(graph.inputs, arrays, strict=True)})
        for node in host:  # the tail that takes no gradient, in numpy (reference rules)
            env[node.output] = RULES[node.op][0]([env[t] if t else None for t in node.inputs], **node.attrs)
    last_train_stats.update(total_s=time.perf_counter() - start)
    return graph.named_outputs(env)


# --- validation: nothing reaches the kernel unchecked ---------------------------------------


def _dtype(name: str) -> type:
    if name not in DTYPES:
        raise UnsupportedError(f"the LLVM backend computes in {' or '.join(DTYPES)}, not {name!r}")
    return DTYPES[name]


def _whole(value: object, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise DataError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _arrays(graph: Graph, given: Mapping[str, Any], names: list[str], role: str, dtype: type,
            ntrials: int | None) -> tuple[list[np.ndarray], int]:
    """One C-contiguous (trials, size) array of ``dtype`` per tensor, in ``names`` order, all with one trial count.

    Each may be given as (trials, *features) or flattened to (trials, size).
    """
    arrays = []
    for name in names:
        feats = graph.features(name)
        n = graph.size(name)
        if name not in given:
            raise DataError(f"no {role} for {name!r}; give an array of shape (trials, {', '.join(map(str, feats))}) "
                            f"(the {role}s given are for: {', '.join(map(repr, given)) or 'nothing'})")
        try:
            array = np.require(np.asarray(given[name]), dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])
        except (TypeError, ValueError) as exc:
            raise DataError(f"{role} for {name!r} is not numeric: {exc}") from None
        if array.ndim < 1 or (array.shape[1:] != tuple(feats) and array.shape[1:] != (n,)):
            raise DataError(f"{role} for {name!r} has shape {array.shape}; expected "
                            f"(trials, {', '.join(map(str, feats))})")
        if ntrials is None:
            ntrials = array.shape[0]
        elif array.shape[0] != ntrials:
            raise DataError(f"{role} for {name!r} has {array.shape[0]} trials; the inputs have {ntrials}")
        arrays.append(np.ascontiguousarray(array.reshape(array.shape[0], n)))
    return arrays, ntrials or 0


def _check_width(graph: Graph) -> None:
    """Refuse a graph with more inputs than ``max_llvm_inputs`` before compiling: each input's
    rows are copied by code of its own, and the optimiser's and code generator's time grows
    with the square of the count (about 6 s at 150 inputs, 89 s at 600)."""
    limits.check_count(len(graph.inputs), f"LLVMRun: the inputs of graph {graph.name!r} (compile time grows with "
                       "the square of their number; ExecutionMode.PyTorch or Python run it)", "max_llvm_inputs")


class _LazyOrders:
    """The kernel's (epochs, trials) int64 order table, filled epoch by epoch as the kernel reaches them.

    The table is allocated zeroed (the OS maps those pages only when written), so a learn() of
    2**26 epochs that early stopping ends after 2 touches two rows, not gigabytes. Each row
    is checked when it is copied in: every index names a trial (the kernel reads by them).
    """

    def __init__(self, source: np.ndarray, epochs: int, ntrials: int) -> None:
        if np.shape(source) != (epochs, ntrials):
            raise DataError(f"trial orders have shape {np.shape(source)}; expected ({epochs}, {ntrials})")
        self.source, self.filled = source, 0
        self.table = np.zeros((epochs, ntrials), dtype=np.int64)

    def fill(self, upto: int) -> None:
        if upto <= self.filled:
            return
        self.table[self.filled:upto] = self.checked(np.asarray(self.source[self.filled:upto], dtype=np.int64))
        self.filled = upto

    def checked(self, rows: np.ndarray) -> np.ndarray:
        if rows.size and (rows.min() < 0 or rows.max() >= self.table.shape[1]):
            raise DataError(f"trial orders index trials {rows.min()}..{rows.max()}; there are {self.table.shape[1]}")
        return rows


class _Weights:
    """The arrays the kernel reads (and trains): every param of the graph, in the graph's order.

    The graph's own array is used when it already is C-contiguous, aligned and of the
    kernel's dtype (and writeable, for training); otherwise a copy, written back after.
    """

    def __init__(self, graph: Graph, dtype: type, read_only: bool) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.copied: dict[str, np.ndarray] = {}
        for name, p in graph.params.items():
            original = p.value
            shape = graph.shapes[name]
            if not isinstance(original, np.ndarray) or original.shape != shape:
                raise DataError(f"param {name!r} has shape {np.shape(original)}; the graph needs {shape} "
                                "(was the array replaced after the graph was built?)")
            if original.dtype.kind != "f":
                if p.learnable:
                    raise DataError(f"param {name!r} has dtype {original.dtype}; it must be a float array")
                # a frozen label table (skl2onnx's classes) is read by host ops only, in numpy:
                # the kernel's slot for it holds a placeholder no compiled op reads
                self.arrays[name] = np.zeros(shape, dtype=dtype)
                continue
            flags = original.flags
            if (original.dtype == dtype and flags.c_contiguous and flags.aligned
                    and (read_only or flags.writeable)):
                self.arrays[name] = original
            else:
                self.arrays[name] = np.ascontiguousarray(original, dtype=dtype)
                if not read_only and p.learnable:
                    self.copied[name] = original

    def write_back(self) -> None:
        for name, original in self.copied.items():
            original[...] = self.arrays[name]


def _table(buffers: list[np.ndarray]) -> ctypes.Array:
    """The kernel's one pointer argument: the buffers' addresses, in the signature's order."""
    return (ctypes.c_void_p * len(buffers))(*[_address(a) for a in buffers])


def _programs(kernel: Any, kinds: list[str], weights: _Weights, workspace: np.ndarray, cap: int,
              state: dict[tuple[str, str], np.ndarray] | None = None, rates: np.ndarray | None = None,
              learnable: tuple[str, ...] = ()) -> list[np.ndarray]:
    """The call programs of a big graph's kernel: int64 ``[length, (address, count, pointers...)...]``.

    Each entry names a compiled function and the buffers it works on (see
    :class:`mdfx.converters.llvm.graphgen.Ref`); every address is resolved here, from
    arrays this call has checked and allocated.
    """
    sig = kernel.signature
    base, item = _address(workspace), workspace.itemsize
    index = {k: i for i, k in enumerate(learnable)}

    def address(ref: Any) -> int:
        if ref.kind == "p":
            return _address(weights.arrays[ref.name])
        if ref.kind in ("v", "g"):
            rows, fixed = sig.layout[f"{ref.kind}:{ref.name}"]
            return base + (cap * rows + fixed) * item
        if ref.kind == "s":
            return _address(state[(ref.name, ref.slot)])
        return _address(rates) + 8 * index[ref.name]  # "lr"

    out = []
    for kind in kinds:
        words = [0]
        for fn, refs in sig.programs.get(kind, []):
            words += [kernel.addresses[fn], len(refs), *[address(r) for r in refs]]
        words[0] = len(words)
        out.append(np.array(words, dtype=np.uint64).view(np.int64))
    return out


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _check_no_overlap(weights: _Weights, others: list[np.ndarray], frozen: set[str] = frozenset()) -> None:
    """The kernel assumes distinct buffers (``noalias``); a trained param sharing memory is
    refused (inputs, targets and frozen params may share: none is written).

    Every buffer is C-contiguous here, so it spans [address, address + nbytes); sorted by
    start, each is compared with the furthest-reaching one before it (n log n: graphs have
    thousands of params).
    """
    spans = [(_address(w), _address(w) + w.nbytes, name) for name, w in weights.arrays.items() if w.nbytes]
    spans += [(_address(o), _address(o) + o.nbytes, None) for o in others if o.nbytes]
    spans.sort(key=lambda s: (s[0], s[1]))
    reach: tuple[int, int, str | None] | None = None
    for start, end, name in spans:
        if reach is not None and start < reach[1]:
            other = reach[2]
            read_only = {None, *frozen}  # inputs, targets (a target may be the input) and frozen params
            if not (name in read_only and other in read_only):
                if name is None or other is None:
                    culprit = other if name is None else name
                    raise DataError(f"param {culprit!r} shares memory with an input or target array; pass a copy")
                raise DataError(f"params {other!r} and {name!r} share memory; the LLVM backend trains each "
                                "param array on its own: give each its own array (e.g. graph.copy())")
        if reach is None or end > reach[1]:
            reach = (start, end, name)


def validation_runner(graph: Graph, dtype: str) -> Callable[[Mapping[str, Any]], dict[str, np.ndarray]]:
    """The ``llvm`` rows of ``mdfx validate``: compiled inference over all trials."""
    _check_width(graph)
    return lambda inputs: run(graph, inputs, dtype=dtype)
