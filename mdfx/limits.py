"""Resource limits: what a file, a data set or a learn() call may make mdfx allocate.

A model file is a description, not a program, and a few bytes can declare a
matrix of 10**12 elements, a YAML alias that expands a million times or an
expression nested a thousand deep. mdfx checks every such size against these
limits *before* it allocates or recurses, and refuses what is over them with
a :class:`~mdfx.errors.LimitError` that names the thing, the size and the
limit (and how to raise it).

Defaults (each overridable by the environment variable in brackets, read at
import, or at run time with :func:`set`):

=========================  ===========  ==============================================
limit                      default      what it bounds
=========================  ===========  ==============================================
``max_tensor_elements``    2**27        one array (weight, bias, folded constant,
                                        data array, node size): 1 GiB as float64
                                        [MDFX_MAX_TENSOR_ELEMENTS]
``max_total_elements``     2**28        all arrays of one file or data set together
                                        (2 GiB as float64) [MDFX_MAX_TOTAL_ELEMENTS]
``max_nodes``              100_000      nodes, projections or ops of one model
                                        [MDFX_MAX_NODES]
``max_expression_length``  10_000       characters of one MDF expression
                                        [MDFX_MAX_EXPRESSION_LENGTH]
``max_expression_depth``   100          nesting depth of one expression
                                        [MDFX_MAX_EXPRESSION_DEPTH]
``max_order_elements``     2**28        epochs x trials of a learn() trial-order
                                        table (int64: 2 GiB) [MDFX_MAX_ORDER_ELEMENTS]
``max_yaml_aliases``       10_000       YAML alias uses (``*ref``) in one file
                                        [MDFX_MAX_YAML_ALIASES]
``max_yaml_nodes``         2**24        YAML nodes after alias expansion
                                        [MDFX_MAX_YAML_NODES]
``max_file_bytes``         2**31        a model or data file read as a whole
                                        [MDFX_MAX_FILE_BYTES]
``max_sweep_runs``         100_000      runs of one sweep (grid points x seeds x data
                                        sets), counted before expanding
                                        [MDFX_MAX_SWEEP_RUNS]
``max_generator_dicts``    100_000      dicts one learn(inputs=generator) trains on
                                        [MDFX_MAX_GENERATOR_DICTS]
``max_input_calls``        2**20        calls of one learn(inputs=function)
                                        [MDFX_MAX_INPUT_CALLS]
``scheduler_timeout_s``    30           seconds to connect to a sweep's --scheduler
                                        and complete the Dask handshake
                                        [MDFX_SCHEDULER_TIMEOUT_S]
``max_llvm_inputs``        256          inputs of a graph LLVMRun compiles (compile
                                        time grows with their square)
                                        [MDFX_MAX_LLVM_INPUTS]
=========================  ===========  ==============================================

Usage::

    import mdfx.limits
    mdfx.limits.set(max_tensor_elements=2**30)          # from now on
    with mdfx.limits.set(max_nodes=10):                  # only inside the block
        mdfx.load("model.json")
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from mdfx.errors import LimitError


@dataclass(frozen=True)
class Limits:
    """The limits in force; see the module docstring for each one's meaning."""

    max_tensor_elements: int = 2**27
    max_total_elements: int = 2**28
    max_nodes: int = 100_000
    max_expression_length: int = 10_000
    max_expression_depth: int = 100
    max_order_elements: int = 2**28
    max_yaml_aliases: int = 10_000
    max_yaml_nodes: int = 2**24
    max_file_bytes: int = 2**31
    max_sweep_runs: int = 100_000
    max_generator_dicts: int = 100_000
    max_input_calls: int = 2**20
    scheduler_timeout_s: int = 30
    max_llvm_inputs: int = 256


def _env_name(field: str) -> str:
    return f"MDFX_{field.upper()}"


def _from_env() -> Limits:
    values: dict[str, int] = {}
    for f in fields(Limits):
        text = os.environ.get(_env_name(f.name))
        if text is None:
            continue
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise LimitError(f"environment variable {_env_name(f.name)}={text!r} is not an integer") from None
        if value < 1:
            raise LimitError(f"environment variable {_env_name(f.name)}={text!r} must be at least 1")
        values[f.name] = value
    return Limits(**values)


_current: Limits = _from_env()


def current() -> Limits:
    """The limits in force now."""
    return _current


class _Restore:
    """What :func:`set` returns: the change is already made; ``with`` undoes it on exit."""

    def __init__(self, previous: Limits) -> None:
        self._previous = previous

    def __enter__(self) -> Limits:
        return _current

    def __exit__(self, *exc: object) -> None:
        global _current
        _current = self._previous


def set(**changes: int) -> _Restore:  # noqa: A001 - the public name asked for: mdfx.limits.set
    """Change some limits now; used as a context manager, the old ones come back on exit."""
    global _current
    known = {f.name for f in fields(Limits)}
    unknown = sorted(changes.keys() - known)
    if unknown:
        raise LimitError(f"unknown limit {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for name, value in changes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LimitError(f"limit {name} must be an integer >= 1, got {value!r}")
    previous = _current
    _current = replace(_current, **changes)
    return _Restore(previous)


def _hint(name: str) -> str:
    return f"raise it with mdfx.limits.set({name}=...) or {_env_name(name)}"


# --- checks ---------------------------------------------------------------------------


def elements(shape: Iterable[Any]) -> int:
    """The element count of ``shape`` in Python integers (never overflows)."""
    return math.prod(int(d) for d in shape)


def check_elements(shape: Sequence[Any] | int, what: str) -> int:
    """Refuse an array of ``shape`` (or that many elements) over ``max_tensor_elements``."""
    n = int(shape) if isinstance(shape, int) else elements(shape)
    limit = _current.max_tensor_elements
    if n > limit:
        shown = f"{n} elements" if isinstance(shape, int) else f"shape {tuple(int(d) for d in shape)} ({n} elements)"
        raise LimitError(f"{what}: {shown} is over the limit of {limit} elements per tensor; "
                         f"{_hint('max_tensor_elements')}")
    return n


class Budget:
    """Counts the elements of every array of one file or data set against ``max_total_elements``."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.used = 0

    def take(self, shape: Sequence[Any] | int, part: str) -> None:
        n = check_elements(shape, f"{self.what}: {part}")
        self.used += n
        limit = _current.max_total_elements
        if self.used > limit:
            raise LimitError(f"{self.what}: its arrays hold more than {limit} elements in all "
                             f"(reached at {part}); {_hint('max_total_elements')}")


def check_count(n: int, what: str, name: str = "max_nodes") -> None:
    """Refuse ``n`` things (nodes, ops, aliases...) over the limit ``name``."""
    limit = getattr(_current, name)
    if n > limit:
        raise LimitError(f"{what}: {n} is over the limit of {limit}; {_hint(name)}")


def check_order_table(epochs: int, trials: int) -> None:
    """Refuse a learn() whose (epochs, trials) trial-order table is over ``max_order_elements``."""
    n = int(epochs) * int(trials)  # Python ints: exact however large
    limit = _current.max_order_elements
    if n > limit:
        raise LimitError(f"learn(): epochs x trials = {int(epochs)} x {int(trials)} = {n} trial slots is "
                         f"over the limit of {limit}; {_hint('max_order_elements')}")


def check_file_size(size: int, path: object) -> None:
    limit = _current.max_file_bytes
    if size > limit:
        raise LimitError(f"{path}: {size} bytes is over the limit of {limit} bytes for a file read whole; "
                         f"{_hint('max_file_bytes')}")


def _broadcast(shapes: Sequence[Sequence[int]]) -> tuple[int, ...] | None:
    """numpy's broadcast shape of ``shapes`` without allocating; None if they do not broadcast."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(-rank, 0):
        dims = {int(s[axis]) for s in shapes if len(s) >= -axis} - {1}
        if len(dims) > 1:
            return None
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def folded_shape(op_type: str, shapes: Sequence[Sequence[int]], attrs: dict[str, Any] | None = None
                 ) -> tuple[int, ...] | None:
    """The shape folding ``op_type`` over constants of ``shapes`` would produce (None: unknown)."""
    attrs = attrs or {}
    if op_type in ("Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater", "Where", "Min", "Max"):
        return _broadcast(shapes)
    if op_type in ("MatMul", "Gemm") and len(shapes) >= 2 and len(shapes[0]) >= 1 and len(shapes[1]) >= 1:
        a, b = list(shapes[0]), list(shapes[1])
        if op_type == "Gemm":
            if len(a) != 2 or len(b) != 2:
                return None
            a = a[::-1] if int(attrs.get("transA", 0)) else a
            b = b[::-1] if int(attrs.get("transB", 0)) else b
            out = (int(a[0]), int(b[1]))
            return _broadcast([out, *shapes[2:]]) if len(shapes) > 2 else out
        if len(a) == 1 or len(b) == 1:
            return tuple(int(d) for d in (a[:-1] if len(b) == 1 else [*a[:-1], b[-1]]))
        batch = _broadcast([a[:-2], b[:-2]])
        return None if batch is None else (*batch, int(a[-2]), int(b[-1]))
    return None


def check_fold(op_type: str, shapes: Sequence[Sequence[int]], where: str,
               attrs: dict[str, Any] | None = None) -> None:
    """Called before constant folding computes ``op_type`` over constants of ``shapes``:
    refuse a result over ``max_tensor_elements`` (a tiny file can declare a huge product)."""
    shape = folded_shape(op_type, shapes, attrs)
    if shape is not None:
        check_elements(shape, f"{where} ({op_type}): folding its constant operands {[tuple(s) for s in shapes]}")
