"""Spatial graph ops: Conv, ConvTranspose, MaxPool, AveragePool, Pad (part of the op table, :mod:`mdfx.ops`).

Tensors are ``(batch, channels, *spatial)`` with any number of spatial axes
(1-D ``(N, C, L)``, 2-D ``(N, C, H, W)``). Names, attributes and defaults are
ONNX's. The numpy rules are the spec, written to be read:

* **im2col.** :func:`windows` gathers, for every kernel offset ``k``, the input
  values that offset sees at every output position (one strided slice per
  offset): ``cols[n, c, *k, *o] = xpad[n, c, o * stride + k * dilation]``. A
  convolution is then one matrix product of the weights with ``cols``; its
  gradient scatters back with :func:`add_windows`, the exact transpose.
* **Pooling** takes the max (first max wins, as torch) or the mean of ``cols``
  over the kernel axes.
* **Geometry** (:func:`geometry`) resolves ``auto_pad``, ``pads``, ``strides``,
  ``dilations`` and ``ceil_mode`` into explicit begin/end pads and the output
  size, and refuses (naming what is wrong) strides or dilations < 1, negative or
  absurd pads, and a kernel larger than the padded input.

This module registers its ops into :data:`mdfx.ops.GRAPH_OPS` when
:mod:`mdfx.ops` is imported (it is imported at the end of that module).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from mdfx.ops import BATCH, REQUIRED, GraphOp, Shape, ShapeError, _fmt, register_graph_op

Array = np.ndarray
#: The largest pad mdfx takes on any axis (a larger one is a malformed file, not a model).
MAX_PAD = 1 << 16
AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


@dataclass(frozen=True)
class Geometry:
    """One sliding-window op's resolved geometry over the spatial axes."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    begin: tuple[int, ...]  #: explicit pads before each axis
    end: tuple[int, ...]  #: explicit pads after each axis
    out: tuple[int, ...]  #: output size per axis
    extra: tuple[int, ...]  #: ceil_mode's implicit pads after the explicit ones (never counted as values)


def _ints(values: Any, n: int, default: int, what: str) -> tuple[int, ...]:
    if values is None:
        return (default,) * n
    out = []
    for v in list(values):
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) or not np.isfinite(v) \
                or float(v) != int(v):
            raise ShapeError(f"{what} {list(values)} holds {v!r}; expected integers")
        out.append(int(v))
    if len(out) != n:
        raise ShapeError(f"{what} {list(values)} has {len(out)} entries; expected {n} (one per spatial axis)")
    return tuple(out)


def geometry(spatial: Sequence[int], kernel: Sequence[int], strides: Any, pads: Any, dilations: Any,
             auto_pad: str = "NOTSET", ceil_mode: int = 0, pooling: bool = False) -> Geometry:
    """Resolve a sliding window over ``spatial`` (see the module docstring); raises ShapeError."""
    n = len(spatial)
    k = _ints(kernel, n, 1, "kernel_shape")
    s = _ints(strides, n, 1, "strides")
    d = _ints(dilations, n, 1, "dilations")
    if any(v < 1 for v in k):
        raise ShapeError(f"kernel_shape {list(k)} has a size < 1")
    if any(v < 1 for v in s):
        raise ShapeError(f"strides {list(s)} must be >= 1")
    if any(v < 1 for v in d):
        raise ShapeError(f"dilations {list(d)} must be >= 1")
    extent = [di * (ki - 1) + 1 for ki, di in zip(k, d, strict=True)]
    if auto_pad not in AUTO_PADS:
        raise ShapeError(f"auto_pad {auto_pad!r} is not one of {', '.join(AUTO_PADS)}")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-x // si) for x, si in zip(spatial, s, strict=True)]
        total = [max((o - 1) * si + e - x, 0) for o, si, e, x in zip(out, s, extent, spatial, strict=True)]
        small = [t // 2 for t in total]
        begin = tuple(t - h if auto_pad == "SAME_LOWER" else h for t, h in zip(total, small, strict=True))
        end = tuple(t - b for t, b in zip(total, begin, strict=True))
    elif auto_pad == "VALID":
        begin = end = (0,) * n
    else:
        p = _ints(pads, 2 * n, 0, "pads")
        begin, end = p[:n], p[n:]
    for b, e, ext in zip(begin, end, extent, strict=True):
        if b < 0 or e < 0:
            raise ShapeError(f"pads {list(begin) + list(end)} are negative; mdfx takes pads >= 0")
        if b > MAX_PAD or e > MAX_PAD:
            raise ShapeError(f"pads {list(begin) + list(end)} exceed {MAX_PAD}")
        if pooling and (b >= ext or e >= ext):
            raise ShapeError(f"pads {list(begin) + list(end)} reach a whole window (kernel extent {ext}): a "
                             "window would see padding only")
    out_sizes, extra = [], []
    for x, si, b, e, ext in zip(spatial, s, begin, end, extent, strict=True):
        room = x + b + e - ext
        if room < 0:
            raise ShapeError(f"the kernel (extent {ext} with dilation) is larger than the padded input "
                             f"({x} + {b} + {e})")
        o = (-(-room // si) if ceil_mode else room // si) + 1
        if ceil_mode and (o - 1) * si >= x + b:
            o -= 1  # the last window would start in the end padding (torch's and ONNX's rule)
        out_sizes.append(o)
        extra.append(max(0, (o - 1) * si + ext - (x + b + e)))
    return Geometry(k, s, d, tuple(begin), tuple(end), tuple(out_sizes), tuple(extra))


def pad(x: Array, begin: Sequence[int], end: Sequence[int], value: float = 0.0) -> Array:
    """``x`` padded on its spatial axes (all but the first two) with ``value``."""
    if not any(begin) and not any(end):
        return x
    return np.pad(x, [(0, 0), (0, 0), *zip(begin, end, strict=True)], constant_values=value)


def _offset(k: Sequence[int], g: Geometry, out: Sequence[int]) -> tuple[slice, ...]:
    """The slice of the padded input that kernel offset ``k`` sees at every output position."""
    return (slice(None), slice(None), *(slice(ki * di, ki * di + si * (o - 1) + 1, si)
                                        for ki, di, si, o in zip(k, g.dilations, g.strides, out, strict=True)))


def windows(xp: Array, g: Geometry, out: Sequence[int] | None = None) -> Array:
    """im2col: ``(N, C, *P) -> (N, C, *kernel, *out)``, the input under each kernel offset."""
    out = g.out if out is None else tuple(out)
    cols = np.empty(xp.shape[:2] + g.kernel + tuple(out), dtype=xp.dtype)
    for k in np.ndindex(*g.kernel):
        cols[(slice(None), slice(None), *k)] = xp[_offset(k, g, out)]
    return cols


def add_windows(cols: Array, padded: Sequence[int], g: Geometry, out: Sequence[int] | None = None) -> Array:
    """col2im, the transpose of :func:`windows`: each window's values added back where they came from."""
    out = g.out if out is None else tuple(out)
    acc = np.zeros(tuple(padded), dtype=cols.dtype)
    for k in np.ndindex(*g.kernel):
        acc[_offset(k, g, out)] += cols[(slice(None), slice(None), *k)]
    return acc


def _crop(xp: Array, g: Geometry, spatial: Sequence[int]) -> Array:
    return xp[(slice(None), slice(None), *(slice(b, b + x) for b, x in zip(g.begin, spatial, strict=True)))]


def _spatial_input(x: Shape, what: str) -> None:
    if len(x) < 3:
        raise ShapeError(f"{what} takes (batch, channels, *spatial), got {_fmt(x)}")
    if any(d == BATCH for d in x[1:]):
        raise ShapeError(f"{what}: the batch must be on axis 0, got {_fmt(x)}")


# --- Conv ----------------------------------------------------------------------------------------

_CONV_ATTRS = {"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None, "pads": None,
               "strides": None}


def _conv_geometry(x: Shape, w: Shape, a: dict[str, Any]) -> Geometry:
    if a["kernel_shape"] is not None and tuple(int(v) for v in a["kernel_shape"]) != tuple(w[2:]):
        raise ShapeError(f"kernel_shape {list(a['kernel_shape'])} differs from the weight's {list(w[2:])}")
    return geometry(x[2:], w[2:], a["strides"], a["pads"], a["dilations"], a["auto_pad"])


def _check_group(x: Shape, w: Shape, group: Any, what: str, transposed: bool = False) -> int:
    if isinstance(group, bool) or not isinstance(group, int | np.integer) or group < 1:
        raise ShapeError(f"{what}: group {group!r} must be an integer >= 1")
    g = int(group)
    c = x[1]
    if transposed:  # weight (C, M / group, *k)
        if w[0] != c or c % g:
            raise ShapeError(f"{what}: weight {_fmt(w)} takes {w[0]} input channels; the input has {c} "
                             f"(group {g} must divide them)")
    elif c % g or w[0] % g or w[1] * g != c:
        raise ShapeError(f"{what}: weight {_fmt(w)} with group {g} takes {w[1] * g} input channels in groups "
                         f"of {w[1]} and {w[0]} output channels; the input has {c} (group must divide both)")
    return g


def _conv_infer(shapes: list[Shape | None], **a: Any) -> Shape:
    x, w = shapes[0], shapes[1]
    b = shapes[2] if len(shapes) > 2 else None
    _spatial_input(x, "Conv")
    if w is None or len(w) != len(x) or BATCH in w:
        raise ShapeError(f"Conv: weight {_fmt(w)} must be a (out, in / group, *kernel) param of rank {len(x)}")
    _check_group(x, w, a["group"], "Conv")
    if b is not None and b != (w[0],):
        raise ShapeError(f"Conv: bias {_fmt(b)} must have shape ({w[0]},)")
    g = _conv_geometry(x, w, a)
    return (x[0], w[0], *g.out)


def _conv_parts(x: Array, w: Array, a: dict[str, Any]) -> tuple[Geometry, Array, Array]:
    """The geometry, the input's windows as (N, group, C/group * K, O) and the weight as (group, M/group, C/group * K)."""
    g = _conv_geometry(x.shape, w.shape, a)
    group = int(a["group"])
    n, m = x.shape[0], w.shape[0]
    cols = windows(pad(x, g.begin, g.end), g).reshape(n, group, -1, math.prod(g.out))
    return g, cols, w.reshape(group, m // group, -1)


def conv(xs: list[Array], **a: Any) -> Array:
    x, w = xs[0], xs[1]
    g, cols, wg = _conv_parts(x, w, a)
    y = (wg[None] @ cols).reshape(x.shape[0], w.shape[0], *g.out)
    if len(xs) > 2 and xs[2] is not None:
        y = y + xs[2].reshape(1, -1, *(1,) * len(g.out))
    return y


def conv_vjp(xs: list[Array], y: Array, gy: Array, **a: Any) -> list[Array | None]:
    x, w = xs[0], xs[1]
    g, cols, wg = _conv_parts(x, w, a)
    n, group = x.shape[0], int(a["group"])
    gyg = gy.reshape(n, group, w.shape[0] // group, -1)
    gw = (gyg @ np.swapaxes(cols, -1, -2)).sum(axis=0).reshape(w.shape)
    gcols = (np.swapaxes(wg, -1, -2)[None] @ gyg).reshape(x.shape[:2] + g.kernel + g.out)
    padded = x.shape[:2] + tuple(s + b + e for s, b, e in zip(x.shape[2:], g.begin, g.end, strict=True))
    gx = _crop(add_windows(gcols, padded, g), g, x.shape[2:])
    out: list[Array | None] = [gx, gw]
    if len(xs) > 2:
        out.append(None if xs[2] is None else gy.sum(axis=(0, *range(2, gy.ndim))))
    return out


register_graph_op(GraphOp(
    "Conv", ("X", "W", "B?"), MappingProxyType(_CONV_ATTRS), _conv_infer, conv, conv_vjp,
    notes="1-D, 2-D (any number of spatial axes): strides, pads, auto_pad, dilations, group (depthwise "
          "included), optional bias; numpy im2col"))


# --- ConvTranspose --------------------------------------------------------------------------------


def _convt_geometry(x: Shape, w: Shape, a: dict[str, Any]) -> tuple[Geometry, tuple[int, ...]]:
    """The geometry of the equivalent convolution over the output (``out`` = the input's size), and the
    uncropped output size (stride * (in - 1) + dilated kernel + output_padding)."""
    n = len(x) - 2
    if a["kernel_shape"] is not None and tuple(int(v) for v in a["kernel_shape"]) != tuple(w[2:]):
        raise ShapeError(f"kernel_shape {list(a['kernel_shape'])} differs from the weight's {list(w[2:])}")
    if a["output_shape"] is not None:
        raise ShapeError("output_shape is not taken; give pads and output_padding (as torch's exporters do)")
    if a["auto_pad"] not in ("NOTSET", "VALID"):
        raise ShapeError(f"auto_pad {a['auto_pad']!r} is not taken for ConvTranspose; give explicit pads")
    k = _ints(w[2:], n, 1, "kernel_shape")
    s = _ints(a["strides"], n, 1, "strides")
    d = _ints(a["dilations"], n, 1, "dilations")
    op = _ints(a["output_padding"], n, 0, "output_padding")
    p = (0,) * (2 * n) if a["auto_pad"] == "VALID" else _ints(a["pads"], 2 * n, 0, "pads")
    if any(v < 1 for v in s) or any(v < 1 for v in d):
        raise ShapeError(f"strides {list(s)} and dilations {list(d)} must be >= 1")
    if any(v < 0 for v in p) or any(v > MAX_PAD for v in p):
        raise ShapeError(f"pads {list(p)} must lie in 0..{MAX_PAD}")
    if any(o < 0 or (o >= si and o >= di) for o, si, di in zip(op, s, d, strict=True)):
        raise ShapeError(f"output_padding {list(op)} must be >= 0 and smaller than the stride or the dilation")
    full = tuple(si * (xi - 1) + di * (ki - 1) + 1 + oi
                 for si, xi, di, ki, oi in zip(s, x[2:], d, k, op, strict=True))
    out = tuple(f - b - e for f, b, e in zip(full, p[:n], p[n:], strict=True))
    if any(o < 1 for o in out):
        raise ShapeError(f"pads {list(p)} leave no output (uncropped size {list(full)})")
    return Geometry(k, s, d, p[:n], p[n:], tuple(x[2:]), (0,) * n), full


def _convt_infer(shapes: list[Shape | None], **a: Any) -> Shape:
    x, w = shapes[0], shapes[1]
    b = shapes[2] if len(shapes) > 2 else None
    _spatial_input(x, "ConvTranspose")
    if w is None or len(w) != len(x) or BATCH in w:
        raise ShapeError(f"ConvTranspose: weight {_fmt(w)} must be a (in, out / group, *kernel) param of rank "
                         f"{len(x)}")
    group = _check_group(x, w, a["group"], "ConvTranspose", transposed=True)
    if b is not None and b != (w[1] * group,):
        raise ShapeError(f"ConvTranspose: bias {_fmt(b)} must have shape ({w[1] * group},)")
    g, full = _convt_geometry(x, w, a)
    return (x[0], w[1] * group, *(f - b - e for f, b, e in zip(full, g.begin, g.end, strict=True)))


def conv_transpose(xs: list[Array], **a: Any) -> Array:
    x, w = xs[0], xs[1]
    g, full = _convt_geometry(x.shape, w.shape, a)
    group, n, c = int(a["group"]), x.shape[0], x.shape[1]
    m = w.shape[1] * group
    wg = w.reshape(group, c // group, -1)  # (group, C/group, M/group * K)
    cols = np.swapaxes(wg, -1, -2)[None] @ x.reshape(n, group, c // group, -1)
    y = _crop(add_windows(cols.reshape((n, m) + g.kernel + g.out), (n, m, *full), g), g,
              tuple(f - b - e for f, b, e in zip(full, g.begin, g.end, strict=True)))
    if len(xs) > 2 and xs[2] is not None:
        y = y + xs[2].reshape(1, -1, *(1,) * len(full))
    return y


def conv_transpose_vjp(xs: list[Array], y: Array, gy: Array, **a: Any) -> list[Array | None]:
    x, w = xs[0], xs[1]
    g, full = _convt_geometry(x.shape, w.shape, a)
    group, n, c = int(a["group"]), x.shape[0], x.shape[1]
    gfull = np.zeros(gy.shape[:2] + full, dtype=gy.dtype)
    gfull[(slice(None), slice(None), *(slice(b, b + s) for b, s in zip(g.begin, gy.shape[2:], strict=True)))] = gy
    cols = windows(gfull, g).reshape(n, group, -1, math.prod(g.out))  # (N, group, M/group * K, I)
    wg = w.reshape(group, c // group, -1)
    xg = x.reshape(n, group, c // group, -1)
    gx = (wg[None] @ cols).reshape(x.shape)
    gw = (xg @ np.swapaxes(cols, -1, -2)).sum(axis=0).reshape(w.shape)
    out: list[Array | None] = [gx, gw]
    if len(xs) > 2:
        out.append(None if xs[2] is None else gy.sum(axis=(0, *range(2, gy.ndim))))
    return out


register_graph_op(GraphOp(
    "ConvTranspose", ("X", "W", "B?"),
    MappingProxyType({**_CONV_ATTRS, "output_padding": None, "output_shape": None}),
    _convt_infer, conv_transpose, conv_transpose_vjp,
    notes="the transpose of Conv (col2im of the weights times the input); pads and output_padding, "
          "auto_pad NOTSET or VALID; output_shape is refused"))


# --- pooling --------------------------------------------------------------------------------------

_POOL_ATTRS = {"auto_pad": "NOTSET", "ceil_mode": 0, "dilations": None, "kernel_shape": None, "pads": None,
               "strides": None}


def _pool_geometry(x: Shape, a: dict[str, Any], what: str) -> Geometry:
    if a["kernel_shape"] is None:
        raise ShapeError(f"{what} needs kernel_shape")
    if a.get("storage_order", 0):
        raise ShapeError("storage_order=1 (column-major indices) is not taken")
    return geometry(x[2:], a["kernel_shape"], a["strides"], a["pads"], a["dilations"], a["auto_pad"],
                    int(a["ceil_mode"]), pooling=True)


def _pool_infer(what: str) -> Any:
    def infer(shapes: list[Shape | None], **a: Any) -> Shape:
        x = shapes[0]
        _spatial_input(x, what)
        return (*x[:2], *_pool_geometry(x, a, what).out)

    return infer


def _max_cols(x: Array, a: dict[str, Any]) -> tuple[Geometry, Array]:
    g = _pool_geometry(x.shape, a, "MaxPool")
    end = tuple(e + x_ for e, x_ in zip(g.end, g.extra, strict=True))
    cols = windows(pad(x, g.begin, end, -np.inf), g)
    return g, cols.reshape(x.shape[:2] + (-1,) + g.out)


def max_pool(xs: list[Array], **a: Any) -> Array:
    return _max_cols(xs[0], a)[1].max(axis=2)


def max_pool_vjp(xs: list[Array], y: Array, gy: Array, **a: Any) -> list[Array]:
    """The gradient goes to the first maximum of each window (torch's choice among ties)."""
    x = xs[0]
    g, cols = _max_cols(x, a)
    first = cols.argmax(axis=2)
    onehot = (np.arange(cols.shape[2]).reshape(1, 1, -1, *(1,) * len(g.out)) == first[:, :, None]) * gy[:, :, None]
    padded = x.shape[:2] + tuple(s + b + e + x_ for s, b, e, x_ in zip(x.shape[2:], g.begin, g.end, g.extra,
                                                                       strict=True))
    gxp = add_windows(onehot.reshape(x.shape[:2] + g.kernel + g.out).astype(x.dtype), padded, g)
    return [_crop(gxp, g, x.shape[2:])]


register_graph_op(GraphOp(
    "MaxPool", ("X",), MappingProxyType({**_POOL_ATTRS, "storage_order": 0}), _pool_infer("MaxPool"),
    max_pool, max_pool_vjp,
    notes="ceil_mode and dilations; the gradient goes to the first maximum of a window, as torch; the "
          "Indices output is refused"))


def _avg_parts(x: Array, a: dict[str, Any]) -> tuple[Geometry, Array]:
    """The geometry and, per output position, how many values the mean divides by."""
    g = _pool_geometry(x.shape, a, "AveragePool")
    if any(d != 1 for d in g.dilations):
        raise ShapeError(f"AveragePool with dilations {list(g.dilations)} is not taken")
    # count the positions a window covers: the input, and the explicit pads with count_include_pad
    # (never ceil_mode's implicit end pads, as torch)
    ones = np.ones((1, 1, *x.shape[2:]))
    counted = pad(ones, g.begin, g.end, 1.0 if a["count_include_pad"] else 0.0)
    counted = pad(counted, (0,) * len(g.out), g.extra, 0.0)
    count = windows(counted, g).reshape(1, 1, -1, *g.out).sum(axis=2)
    return g, count


def average_pool(xs: list[Array], **a: Any) -> Array:
    x = xs[0]
    g, count = _avg_parts(x, a)
    end = tuple(e + x_ for e, x_ in zip(g.end, g.extra, strict=True))
    cols = windows(pad(x, g.begin, end), g).reshape(x.shape[:2] + (-1,) + g.out)
    return cols.sum(axis=2) / count


def average_pool_vjp(xs: list[Array], y: Array, gy: Array, **a: Any) -> list[Array]:
    x = xs[0]
    g, count = _avg_parts(x, a)
    share = np.broadcast_to((gy / count)[:, :, None], x.shape[:2] + (math.prod(g.kernel),) + g.out)
    padded = x.shape[:2] + tuple(s + b + e + x_ for s, b, e, x_ in zip(x.shape[2:], g.begin, g.end, g.extra,
                                                                       strict=True))
    gxp = add_windows(share.reshape(x.shape[:2] + g.kernel + g.out), padded, g)
    return [_crop(gxp, g, x.shape[2:])]


register_graph_op(GraphOp(
    "AveragePool", ("X",), MappingProxyType({**_POOL_ATTRS, "count_include_pad": 0}), _pool_infer("AveragePool"),
    average_pool, average_pool_vjp,
    notes="count_include_pad, ceil_mode (its implicit end pads are never counted, as torch); dilations 1"))


# --- Pad ----------------------------------------------------------------------------------------


def _pad_infer(shapes: list[Shape | None], pads: list[int], mode: str, value: float) -> Shape:
    x = shapes[0]
    if mode != "constant":
        raise ShapeError(f"Pad mode {mode!r} is not taken; mdfx pads with a constant")
    p = _ints(pads, 2 * len(x), 0, "pads")
    if x and x[0] == BATCH and (p[0] or p[len(x)]):
        raise ShapeError(f"Pad {list(p)} pads the batch axis; mdfx keeps the batch whole")
    if any(v < 0 or v > MAX_PAD for v in p):
        raise ShapeError(f"pads {list(p)} must lie in 0..{MAX_PAD} (negative pads crop; use Slice)")
    if not np.isfinite(float(value)):
        raise ShapeError(f"Pad value {value!r} is not finite")
    n = len(x)
    return tuple(d if d == BATCH else d + p[i] + p[n + i] for i, d in enumerate(x))


def _np_pad(xs: list[Array], pads: list[int], mode: str, value: float) -> Array:
    n = xs[0].ndim
    return np.pad(xs[0], [(int(pads[i]), int(pads[n + i])) for i in range(n)], constant_values=float(value))


def _pad_vjp(xs: list[Array], y: Array, g: Array, pads: list[int], mode: str, value: float) -> list[Array]:
    n = xs[0].ndim
    return [g[tuple(slice(int(pads[i]), int(pads[i]) + xs[0].shape[i]) for i in range(n))]]


register_graph_op(GraphOp(
    "Pad", ("data",), MappingProxyType({"pads": REQUIRED, "mode": "constant", "value": 0.0}),
    _pad_infer, _np_pad, _pad_vjp,
    notes="constant mode, pads >= 0 (an attribute, folded from ONNX's input), never on the batch axis"))
