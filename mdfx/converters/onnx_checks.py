"""Checks of ONNX node attributes and index inputs, made at import before anything is built.

onnxruntime refuses a Gather index out of range, a Slice on an axis the tensor does not
have or a NaN ``alpha``; a lenient importer would wrap the index, take the axis modulo the
rank or compute NaN outputs, and train on a wrong network without a word. Each check here
raises :class:`~mdfx.errors.UnsupportedError` naming the node, the op, what it holds and
what ONNX expects instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mdfx.errors import UnsupportedError

#: numpy's (and so the reference runner's) rank limit.
MAX_RANK = 64

#: Float attributes that may be infinite (a bound of "no bound").
_INF_OK = {("Clip", "min"), ("Clip", "max")}
#: Float attributes that must not be negative (a variance offset).
_NON_NEGATIVE = {("LayerNormalization", "epsilon"), ("BatchNormalization", "epsilon")}
#: Attributes ONNX requires (an importer would otherwise fail looking them up).
_REQUIRED = {"Cast": ("to",)}
#: String attributes with the values ONNX allows.
_CHOICES = {("Gelu", "approximate"): ("none", "tanh")}


def _label(name: str, op: str) -> str:
    return f"node {name!r} ({op})"


def attributes(name: str, op: str, attrs: dict[str, Any]) -> None:
    """Every float attribute finite (NaN/inf give NaN outputs and weights), the ones that are an
    offset under a square root not negative, string choices among ONNX's, required ones given."""
    for key in _REQUIRED.get(op, ()):
        if key not in attrs:
            raise UnsupportedError(f"{_label(name, op)}: attribute {key!r} is missing; ONNX requires it")
    for key, value in attrs.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, float) and not (math.isfinite(v) or ((op, key) in _INF_OK and not math.isnan(v))):
                raise UnsupportedError(f"{_label(name, op)}: attribute {key}={v!r} is not a finite number; it "
                                       "would give NaN or infinite outputs (onnxruntime refuses it too)")
            if isinstance(v, float) and (op, key) in _NON_NEGATIVE and v < 0:
                raise UnsupportedError(f"{_label(name, op)}: attribute {key}={v!r} is negative; it is added to a "
                                       "variance under a square root and gives NaN outputs")
        choices = _CHOICES.get((op, key))
        if choices is not None and value not in choices:
            raise UnsupportedError(f"{_label(name, op)}: attribute {key}={value!r} is not one of "
                                   f"{', '.join(map(repr, choices))}")


def axis(name: str, op: str, ax: int, rank: int, what: str = "axis") -> int:
    """``ax`` in ONNX's range ``[-rank, rank - 1]``, as a non-negative axis."""
    if rank < 1:
        raise UnsupportedError(f"{_label(name, op)}: its data is a scalar (rank 0); {op} needs a tensor of "
                               "rank 1 or more")
    if not -rank <= int(ax) < rank:
        raise UnsupportedError(f"{_label(name, op)}: {what} {int(ax)} is out of range for its rank-{rank} data "
                               f"(ONNX takes {-rank}..{rank - 1})")
    return int(ax) % rank


def int_tensor(name: str, op: str, what: str, value: np.ndarray) -> None:
    """An index input holds integers (ONNX types it int32/int64); float indices would be truncated."""
    if np.asarray(value).dtype.kind not in "iu":
        raise UnsupportedError(f"{_label(name, op)}: its {what} have dtype {np.asarray(value).dtype}; ONNX "
                               "takes int32 or int64 indices")


def gather(name: str, shape: Sequence[int], indices: np.ndarray | None, ax: int, batch: int) -> int:
    """Gather's axis in range, integer indices in ``[-d, d - 1]`` (never wrapped); the axis."""
    a = axis(name, "Gather", ax, len(shape))
    if indices is None:
        return a
    int_tensor(name, "Gather", "indices", indices)
    size = shape[a]
    if size == batch:
        return a  # the batch axis: refused by the translation, which says why
    flat = np.asarray(indices).reshape(-1)
    bad = flat[(flat < -size) | (flat >= size)]
    if bad.size:
        raise UnsupportedError(f"node {name!r} (Gather): index {int(bad[0])} is out of range for axis {a} of size "
                               f"{size} (ONNX takes {-size}..{size - 1})")
    return a


def slice_(name: str, shape: Sequence[int], starts: Sequence[int], ends: Sequence[int],
           axes: Sequence[int] | None, steps: Sequence[int] | None) -> list[int]:
    """Slice's starts/ends/axes/steps of one length, each axis in range and once; the axes."""
    rank = len(shape)
    if rank < 1:
        axis(name, "Slice", 0, rank)
    n = len(starts)
    lengths = {"starts": n, "ends": len(ends), **({"axes": len(axes)} if axes is not None else {}),
               **({"steps": len(steps)} if steps is not None else {})}
    if len(set(lengths.values())) != 1:
        raise UnsupportedError(f"node {name!r} (Slice): {', '.join(f'{k} has {v}' for k, v in lengths.items())} "
                               "values; ONNX needs one of each per sliced axis")
    resolved = [axis(name, "Slice", a, rank, "axes value") for a in (axes if axes is not None else range(n))]
    if len(set(resolved)) != len(resolved):
        raise UnsupportedError(f"node {name!r} (Slice): axes {list(map(int, axes or []))} name axis "
                               f"{next(a for a in resolved if resolved.count(a) > 1)} twice; ONNX slices each "
                               "axis once")
    if steps is not None and 0 in [int(s) for s in steps]:
        raise UnsupportedError(f"node {name!r} (Slice): a step is 0; ONNX steps are non-zero")
    return resolved


def split(name: str, size: int, sizes: Sequence[int], outputs: int) -> None:
    """Split sizes non-negative, one per output, adding up to the split axis."""
    values = [int(s) for s in sizes]
    if any(s < 0 for s in values):
        raise UnsupportedError(f"node {name!r} (Split): sizes {values} hold a negative size")
    if len(values) != outputs:
        raise UnsupportedError(f"node {name!r} (Split): {len(values)} sizes {values} for {outputs} outputs; ONNX "
                               "needs one size per output")
    if sum(values) != size:
        raise UnsupportedError(f"node {name!r} (Split): sizes {values} add up to {sum(values)}, not the axis "
                               f"size {size}")


def rank(name: str, op: str, r: int) -> None:
    if r > MAX_RANK:
        raise UnsupportedError(f"node {name!r} ({op}): a result of rank {r}; mdfx (as numpy) takes tensors of "
                               f"rank up to {MAX_RANK}")
