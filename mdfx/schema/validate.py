"""The one check of data and learn() options in front of every runner (DESIGN rule 6).

Every entry point — ``learn()``/``run()``, ``mdfx.runners.*.train``/``run``,
``train_reference``, ``mdfx.validate`` and the CLI — calls these before any
array reaches numpy loops, torch or compiled code, so all of them refuse the
same things with the same message:

* :func:`trials_array`: a ``(trials, size)`` array of real numbers: no complex
  numbers (the imaginary part would be dropped), no masked arrays (the mask
  would be dropped), no strings (``"1.5"`` would be parsed), no objects; finite;
  at least one trial; within :mod:`mdfx.limits`. Returns a C-contiguous copy
  or view of the requested float dtype.
* :func:`learn_options`: integer ranges of epochs, minibatch size and trial
  counts in Python integers (no int64 wrap-around can reach a kernel), the
  trial-order table within the limits, a finite non-negative learning rate and
  weight decay.
* :func:`learn_spec`: both of the above for a runner's ``(graph, LearnSpec)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mdfx import files, limits
from mdfx.errors import DataError, MdfxError, SchemaError, UnsupportedError, one_line

#: numpy kinds accepted as numbers: bool, signed and unsigned integers, floats.
_REAL_KINDS = "biuf"


def field(obj: Any, key: str, where: str, types: type | tuple[type, ...] = object, kind: str = "") -> Any:
    """``obj[key]`` of a model file, checked where a reader reads it: ``obj`` a mapping, the field
    present and of ``types`` (never a bool where a number or name is meant); a SchemaError that
    names the field and what it holds otherwise."""
    if not isinstance(obj, Mapping):
        raise SchemaError(f"{where} must be a mapping, but holds a {type(obj).__name__}")
    if key not in obj:
        raise SchemaError(f"{where}: field {key!r} is missing")
    value = obj[key]
    if not isinstance(value, types) or (isinstance(value, bool) and types is not object and bool not in (
            types if isinstance(types, tuple) else (types,))):
        wanted = kind or (types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types))
        raise SchemaError(f"{where}: field {key!r} must be a {wanted}, but holds a {type(value).__name__} "
                          f"({one_line(repr(value), 40)})")
    return value


def real_array(value: Any, what: str, error: type[MdfxError] = DataError) -> np.ndarray:
    """``value`` as a numpy array of real numbers, refusing what a float conversion would hide
    (``error``: DataError for data, SchemaError for a model file's contents)."""
    if isinstance(value, np.ma.MaskedArray):
        raise error(f"{what} is a masked array; give a plain array (fill or drop the masked values)")
    if isinstance(value, str | bytes):
        raise error(f"{what} is a string ({value[:40]!r}); give numbers")
    if getattr(value, "requires_grad", False) is True:
        # a torch tensor in an autograd graph: numpy cannot read it without cutting it off
        raise error(f"{what} is a torch tensor that requires grad; pass tensor.detach() (mdfx computes its "
                    "own gradients)")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, OverflowError, RuntimeError) as exc:
        raise error(f"{what} is not a numeric array: {one_line(exc)}") from None
    kind = array.dtype.kind
    if kind == "c":
        raise error(f"{what} holds complex numbers ({array.dtype}); mdfx computes with real numbers")
    if kind in "USa":
        raise error(f"{what} is not numeric: it holds strings ({array.dtype}); give numbers, not text")
    if kind == "O":
        # Nested lists of unequal length or mixed content; try the float conversion that
        # names the problem, but still refuse strings and complex values inside.
        flat = _flatten_objects(array, what, error)
        try:
            array = np.asarray(flat, dtype=np.float64).reshape(array.shape)
        except (TypeError, ValueError) as exc:
            raise error(f"{what} is not a numeric array: {exc}") from None
    elif kind not in _REAL_KINDS:
        raise error(f"{what} has dtype {array.dtype}; give real numbers")
    return array


def _flatten_objects(array: np.ndarray, what: str, error: type[MdfxError]) -> list[float]:
    out = []
    for item in array.ravel():
        if isinstance(item, bool | np.bool_) or not isinstance(item, numbers.Real):
            raise error(f"{what} is not a numeric array: it holds {type(item).__name__} {item!r:.40}")
        try:
            out.append(float(item))
        except OverflowError:  # a Python int beyond float64 (10**400)
            raise error(f"{what} holds {str(item)[:20]}... ({len(str(item))} digits), beyond float64's range "
                        "(about 1.8e308)") from None
    return out


def trials_array(value: Any, what: str, size: int | None = None, dtype: Any = np.float64,
                 allow_empty: bool = False) -> np.ndarray:
    """A validated ``(trials, size)`` C-contiguous array of ``dtype`` (see the module docstring)."""
    array = real_array(value, what)
    if array.ndim != 2 or (size is not None and array.shape[1] != size):
        expected = f"(trials, {size})" if size is not None else "(trials, features)"
        raise DataError(f"{what} has shape {array.shape}; expected {expected}")
    if array.shape[0] == 0 and not allow_empty:
        raise DataError(f"{what} has 0 trials; give at least one row")
    return finite_array(array, what, dtype)


def finite_array(array: np.ndarray, what: str, dtype: Any = np.float64) -> np.ndarray:
    """A real ``array`` (from :func:`real_array`, any shape) as a C-contiguous ``dtype`` array:
    within :mod:`mdfx.limits`, finite after the conversion."""
    limits.check_elements(array.shape, what)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.require(array, dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])
    if out.size and not np.isfinite(out).all():
        bad = tuple(np.argwhere(~np.isfinite(out))[0])
        note = ""
        if np.isfinite(np.asarray(array[bad], dtype=np.float64)):
            note = f" after conversion to {np.dtype(dtype).name} (it overflows)"
        where = f"row {bad[0]}, column {bad[1]}" if len(bad) == 2 else f"index {bad}"
        raise DataError(f"{what} contains NaN or infinite values{note}, first at {where}: {array[bad]!r}")
    return out


def node_arrays(given: Mapping[str, Any], nodes: Sequence[str], sizes: Mapping[str, int], role: str,
                dtype: Any = np.float64, allow_empty: bool = False, trials: int | None = None
                ) -> dict[str, np.ndarray]:
    """One checked ``(trials, size)`` array per node name in ``nodes``, all with one trial count
    (``trials`` when given: the inputs' count, for targets)."""
    others = "the inputs have" if trials is not None else "the others have"
    if not isinstance(given, Mapping):
        raise DataError(f"{role}s must be a dict {{node name: (trials, size) array}}, "
                        f"got {type(given).__name__}")
    out: dict[str, np.ndarray] = {}
    for name in nodes:
        if name not in given:
            raise DataError(f"no {role} for node {name!r}; give an array of shape (trials, {sizes[name]}) "
                            f"(the {role}s given are for: {', '.join(map(repr, given)) or 'nothing'})")
        array = trials_array(given[name], f"{role} for node {name!r}", sizes[name], dtype, allow_empty)
        if trials is None:
            trials = array.shape[0]
        elif array.shape[0] != trials:
            raise DataError(f"{role} for node {name!r} has {array.shape[0]} trials; {others} {trials}")
        out[name] = array
    return out


# --- learn() options ------------------------------------------------------------------


def whole(value: Any, what: str, minimum: int, maximum: int | None = None) -> int:
    """An integer (Python or numpy, not bool, not float) in [minimum, maximum]."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise DataError(f"{what} must be an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise DataError(f"{what} must be an integer >= {minimum}{upper}, got {value}")
    return value


def finite(value: Any, what: str, minimum: float | None = 0.0) -> float:
    """A finite real number (not bool, not complex, not a string) >= ``minimum``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise DataError(f"{what} must be a real number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise DataError(f"{what} must be finite, got {number!r}")
    if minimum is not None and number < minimum:
        raise DataError(f"{what} must be >= {minimum:g}, got {number!r}")
    return number


def learn_options(*, trials: int, epochs: Any, minibatch_size: Any, learning_rate: Any,
                  weight_decay: Any = 0.0, patience: Any = None, min_delta: Any = 0.0,
                  min_epochs: int = 1, max_minibatch: int | None = None) -> None:
    """Refuse learn() options that cannot train or would overflow (see the module docstring).

    ``max_minibatch`` defaults to ``trials`` (learn() refuses a larger minibatch, as
    PsyNeuLink does); the runners accept any size up to 2**63 - 1 (one minibatch of everything).
    """
    trials = whole(trials, "the number of trials", 1)
    epochs = whole(epochs, "epochs", min_epochs)
    whole(minibatch_size, "minibatch_size", 1, trials if max_minibatch is None else max_minibatch)
    limits.check_order_table(epochs, trials)
    finite(learning_rate, "learning_rate")
    finite(weight_decay, "weight_decay")
    if patience is not None:
        whole(patience, "patience", 0)
    finite(min_delta, "min_delta", minimum=None)


def _is_graph(model: Any) -> bool:
    return hasattr(model, "params") and hasattr(model, "shapes")


def sizes(net: Any) -> dict[str, int]:
    """Features per sample of every graph input and output, and of every mechanism (by name)."""
    out = {t: net.size(t) for t in [*net.inputs, *net.outputs]}
    if net.mechanisms is not None:
        out.update({n.name: n.size for n in net.mechanisms.nodes})
    return out


def _rows(given: Any, model: Any) -> Any:
    """A graph's (trials, *features) arrays as the (trials, size) rows the checks read."""
    if not _is_graph(model) or not isinstance(given, Mapping):
        return given
    out = {}
    for k, v in given.items():
        a = np.asarray(v) if not isinstance(v, np.ma.MaskedArray) else v
        if k in model.shapes and a.ndim > 2 and a.shape[1:] == model.features(k):
            a = a.reshape(len(a), -1)
        out[k] = a
    return out


def run_inputs(net: Any, inputs: Mapping[str, Any], allow_empty: bool = False) -> None:
    """Check a runner's ``run(model, inputs)`` data: one (trials, size) real array per input."""
    x = node_arrays(_rows(inputs, net), list(net.inputs), sizes(net), "input", allow_empty=allow_empty)
    integer_inputs(net, x)


def integer_inputs(net: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """An integer input's values are whole numbers, in range for every Gather that reads them.

    The backends carry indices in float buffers and do not check them again (a compiled
    lookup out of range would read another row, or memory): this is the one check.
    """
    if not _is_graph(net):
        return
    for name, dtype in getattr(net, "input_dtypes", {}).items():
        a = arrays.get(name)
        if a is None or not a.size:
            continue
        if not np.array_equal(a, np.trunc(a)):
            bad = float(a[a != np.trunc(a)].ravel()[0])
            raise DataError(f"input {name!r} of {net.name!r} is {dtype} (indices), but holds {bad!r}; give whole "
                            "numbers")
        top = 2**31 if dtype == "int32" else 2**63
        lo, hi = float(a.min()), float(a.max())
        if lo < -top or hi >= top:
            raise DataError(f"input {name!r} of {net.name!r} holds {lo:g}..{hi:g}, outside {dtype}")
        for node, n in net.index_bounds.get(name, []):
            if lo < -n or hi >= n:
                raise DataError(f"input {name!r} of {net.name!r} holds indices {int(lo)}..{int(hi)}; node {node!r} "
                                f"(Gather) reads a table of {n} rows (valid: {-n}..{n - 1})")


def learn_spec(net: Any, spec: Any, min_epochs: int = 0) -> None:
    """Check a runner's ``(graph, LearnSpec)`` whoever built it: data arrays and options.

    Runners call this first, so ``mdfx.runners.*.train`` is as safe as ``learn()``.
    Targets are for the tensors trained (at least one, each a tensor of the graph; a
    mechanism's name stands for its value tensor).
    """
    x = node_arrays(_rows(spec.inputs, net), list(net.inputs), sizes(net), "input")
    integer_inputs(net, x)
    trials = len(next(iter(x.values())))
    outputs = net.output_names()
    internal = dict(getattr(spec, "target_tensors", {}))
    tensor = net.tensor_of
    # a trained tensor is an output or any other tensor of the graph (an INTERNAL sample)
    tensors = {*net.inputs, *(n.output for n in net.nodes)}
    unknown = [k for k in spec.targets if tensor(k) not in tensors]
    unknown += [k for k in [*internal, *internal.values(), *getattr(spec, "recorded", [])] if tensor(k) not in tensors]
    if unknown or not (spec.targets or internal):
        raise DataError(f"targets given for {', '.join(map(repr, [*spec.targets, *internal])) or 'nothing'}; "
                        f"give targets for one or more outputs of {net.name!r}: {', '.join(map(repr, outputs))}"
                        + (f" ({', '.join(map(repr, unknown))} is not a tensor of the graph)" if unknown else ""))
    for k in [*spec.targets, *internal]:
        if not net.differentiable(tensor(k)):
            raise UnsupportedError(f"target {k!r}: output {k!r} of {net.name!r} is computed by an op that takes "
                                   "no gradient (ArgMax, ZipMap, a label lookup); train a differentiable output")
    for k, t in internal.items():
        if net.features(tensor(k)) != net.features(tensor(t)):
            raise DataError(f"tensor {k!r} of {net.name!r} has features {net.features(tensor(k))} but its target "
                            f"{t!r} has {net.features(tensor(t))}; they must match")
    outputs = list(spec.targets)
    known = sizes(net)
    known.update({k: net.size(tensor(k)) for k in outputs if k not in known})
    node_arrays(_rows(spec.targets, net), outputs, known, "target", trials=trials)
    learn_options(trials=trials, epochs=spec.epochs, minibatch_size=spec.minibatch_size,
                  learning_rate=spec.learning_rate, weight_decay=spec.weight_decay,
                  patience=spec.patience, min_delta=spec.min_delta, min_epochs=min_epochs,
                  max_minibatch=2**63 - 1)


# --- what a model file declares ---------------------------------------------------------


def node_size(value: Any, where: str) -> int:
    """A declared layer size: a whole number >= 1 (``3.0`` is 3; ``2.7`` and ``"3"`` are refused),
    within ``max_tensor_elements``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise SchemaError(f"{where}: size {value!r:.40} is not a number")
    if isinstance(value, numbers.Integral):
        size = int(value)
    else:
        number = float(value)
        if not math.isfinite(number) or number != int(number):
            raise SchemaError(f"{where}: size {number!r} is not a whole number")
        size = int(number)
    if size < 1:
        raise SchemaError(f"{where}: size {size} must be at least 1")
    limits.check_elements(size, f"{where}: size")
    return size


def weights(value: Any, where: str) -> np.ndarray:
    """A weight, bias or parameter array from a file: real (no complex, strings, masks) and finite."""
    return files.finite(real_array(value, where, SchemaError), where)


def network_values(g: Any, source: str) -> None:
    """Refuse a loaded PsyNeuLink-style network (a graph with ``mechanisms``) with non-finite
    weights or parameters, or sizes over the limits.

    ``source`` names the file (or object) in the message. Called by every loader
    after the dialect built the network, so each dialect need not repeat it.
    """
    net = g.mechanisms
    budget = limits.Budget(source)
    limits.check_count(len(net.nodes) + len(net.projections), f"{source}: nodes and projections")
    for node in net.nodes:
        node_size(node.size, f"{source}: node {node.name!r}")
        budget.take(node.size, f"node {node.name!r}")
        for key, value in node.params.items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(value):
                raise SchemaError(f"{source}: node {node.name!r} parameter {key!r} is {value!r}; "
                                  "parameters must be finite")
        if node.bias is not None:
            weights(g.params[node.bias].value, f"{source}: node {node.name!r} bias")
    for p in net.projections:
        matrix = g.params[p.name].value
        budget.take(matrix.shape, f"projection {p.name!r}")
        weights(matrix, f"{source}: projection {p.name!r} matrix")
    t = g.training
    if t is not None:
        for key in ("learning_rate", "weight_decay"):
            value = getattr(t, key)
            if not math.isfinite(value) or value < 0:
                raise SchemaError(f"{source}: training {key} is {value!r}; it must be finite and >= 0")
