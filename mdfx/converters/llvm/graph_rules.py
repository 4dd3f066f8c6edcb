"""The LLVM backend's rule per graph op (:data:`mdfx.ops.GRAPH_OPS`): ONE table, :data:`GRAPH_RULES`.

A rule emits the code of one op for ONE sample. Shapes are static: a batched
tensor is seen without its batch axis (its per-sample block, contiguous and
row-major), a tensor without a batch (a param, or computed from params only)
is seen whole. :mod:`.graphgen` loops the rule over the rows of a minibatch.
Attribute axes count the batch axis, as ONNX's do; :meth:`Ctx.axis` maps them.

``forward(c)`` writes ``c.y``. ``backward(c)`` ADDS each input's vector-Jacobian
product into ``c.dxs[i]`` (None where that gradient is not needed): gradients of
a broadcast or shared tensor sum up where they land, which is numpy's unbroadcast.

Each rule mirrors the numpy of :mod:`mdfx.ops` operation by operation (same
operands, same order), so float64 agrees with the reference to rounding; sums run
left to right, where numpy sums pairwise or BLAS blocks (a few ulps).

Elementwise ops come from the op table's ``expr``/``dexpr`` (lowered by
:meth:`Emitter.expr`); an op with a gradient in graph ops (:attr:`mdfx.ops.GraphOp.grad`:
the softmax family) has its backward generated from those steps (:class:`GeneratedBackward`);
the rest are hand-written here. Ops that take no gradient
(ArgMax, the ai.onnx.ml tails, CastLabel) are :class:`HostRule`: the runner
computes them with the numpy rule after the compiled float part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from llvmlite import ir

from mdfx import ops
from mdfx.converters.llvm.emit import Emitter
from mdfx.converters.llvm.recurrent_rules import RecurrentRule
from mdfx.errors import UnsupportedError

Shape = tuple[int, ...]


@dataclass
class Ctx:
    """One node, one sample: per-sample pointers and static shapes of its operands."""

    e: Emitter
    node: str
    op: str
    attrs: dict[str, Any]
    xs: list[ir.Value | None]
    xshapes: list[Shape | None]
    y: ir.Value
    yshape: Shape
    batched: bool  #: the output has a batch axis (attribute axes count it)
    dy: ir.Value | None = None
    dxs: list[ir.Value | None] = field(default_factory=list)
    #: per input: an optimizer step to apply in place instead of accumulating a gradient
    #: (single-trial kernels, a param only this node reads, each element reached once)
    fused: list[Fused | None] = field(default_factory=list)
    #: per input: whether it has a batch axis (its pointer is the sample's block)
    xbatched: list[bool] = field(default_factory=list)

    def wants(self, i: int) -> bool:
        """True when input ``i`` takes a gradient (accumulated, or a fused optimizer step)."""
        return (i < len(self.dxs) and self.dxs[i] is not None) or (i < len(self.fused) and self.fused[i] is not None)

    def put(self, i: int) -> Callable[[ir.Value | int, ir.Value], None]:
        """``put(idx, g)``: input ``i``'s gradient at flat ``idx`` is ``g`` (added, or stepped on)."""
        f = self.fused[i] if i < len(self.fused) else None
        if f is None:
            return lambda idx, v: _add_into(self.e, self.dxs[i], idx, v)
        return lambda idx, v: f.step(self.e, self.xs[i], idx, v)

    def axis(self, a: int, rank: int) -> int:
        """An attribute axis of a tensor of per-sample rank ``rank``, as a per-sample axis."""
        full = rank + (1 if self.batched else 0)
        return int(a) % full - (1 if self.batched else 0)

    def refuse(self, why: str) -> UnsupportedError:
        return UnsupportedError(f"node {self.node!r} ({self.op}): the LLVM backend {why}")


@dataclass
class Fused:
    """An optimizer step applied where the gradient is computed: w[idx] = update(w[idx], g)."""

    rule: Any  #: rules.SgdRule / AdamRule
    state: list[ir.Value]
    scalars: Any  #: rules.StepScalars
    hyper: dict[str, float]

    def step(self, e: Emitter, w: ir.Value, idx: ir.Value | int, g: ir.Value) -> None:
        wp = e.at(w, idx)
        e.b.store(self.rule.update(e, e.b.load(wp), g, tuple(e.at(p, idx) for p in self.state), self.scalars,
                                   self.hyper), wp)


def size(shape: Shape | None) -> int:
    return int(np.prod(shape)) if shape else 1


def strides(shape: Shape) -> list[int]:
    out, s = [], 1
    for d in reversed(shape):
        out.append(s)
        s *= d
    return out[::-1]


def bstrides(shape: Shape, out: Shape) -> list[int]:
    """Strides of ``shape`` broadcast (numpy rules, right-aligned) to ``out``: 0 on broadcast axes."""
    shape = tuple(shape)
    while len(shape) > len(out):  # extra leading axes of a broadcast operand are 1s
        if shape[0] != 1:
            raise UnsupportedError(f"shape {shape} does not broadcast to {out}")
        shape = shape[1:]
    pad = (1,) * (len(out) - len(shape)) + shape
    st = strides(pad)
    return [0 if d == 1 and o != 1 else s for d, o, s in zip(pad, out, st, strict=True)]


@contextmanager
def nd_loop(e: Emitter, shape: Shape, *stride_sets: Sequence[int]) -> Iterator[list[ir.Value]]:
    """Nested loops over ``shape`` (axes of size 1 skipped); yields one flat offset per stride set."""
    b = e.b
    with ExitStack() as stack:
        idx = [(d, stack.enter_context(e.loop(n, f"d{d}"))) for d, n in enumerate(shape) if n != 1]
        offs = []
        for st in stride_sets:
            off: ir.Value | None = None
            for d, i in idx:
                if st[d]:
                    term = i if st[d] == 1 else b.mul(i, e.i64(st[d]), flags=["nuw", "nsw"])
                    off = term if off is None else b.add(off, term, flags=["nuw", "nsw"])
            offs.append(off if off is not None else e.i64(0))
        yield offs


def _add_into(e: Emitter, ptr: ir.Value, idx: ir.Value | int, value: ir.Value) -> None:
    e.store(e.b.fadd(e.load(ptr, idx), value), ptr, idx)


def _copy(e: Emitter, src: ir.Value, dst: ir.Value, n: int, accumulate: bool = False) -> None:
    with e.loop(n, "j") as j:
        v = e.load(src, j)
        e.store(e.b.fadd(e.load(dst, j), v) if accumulate else v, dst, j)


def _offset(e: Emitter, ptr: ir.Value, off: ir.Value | int) -> ir.Value:
    return e.at(ptr, off)


# --- elementwise ---------------------------------------------------------------------------------


Scalar = Callable[[Emitter, dict[str, Any]], ir.Value]


@dataclass(frozen=True)
class Elementwise:
    """y = f(x), dx += dy * f'(x, y): from expressions (the op table's), or from Python lowerings."""

    forward_expr: str | None = None
    derivative_expr: str | None = None
    forward_fn: Callable[[Emitter, ir.Value, dict[str, Any]], ir.Value] | None = None
    derivative_fn: Callable[[Emitter, ir.Value, ir.Value, dict[str, Any]], ir.Value] | None = None

    def forward(self, c: Ctx) -> None:
        e = c.e
        params = _numbers(c.attrs)
        with e.loop(size(c.yshape), "j") as j:
            x = e.load(c.xs[0], j)
            v = self.forward_fn(e, x, c.attrs) if self.forward_fn else e.expr(self.forward_expr, {**params, "x": x})
            e.store(v, c.y, j)

    def backward(self, c: Ctx) -> None:
        e = c.e
        if c.dxs[0] is None:
            return
        params = _numbers(c.attrs)
        with e.loop(size(c.yshape), "j") as j:
            x, y = e.load(c.xs[0], j), e.load(c.y, j)
            d = (self.derivative_fn(e, x, y, c.attrs) if self.derivative_fn
                 else e.expr(self.derivative_expr, {**params, "x": x, "y": y}))
            _add_into(e, c.dxs[0], j, e.b.fmul(e.load(c.dy, j), d))  # ops._unary: g * derivative


def _numbers(attrs: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in attrs.items() if isinstance(v, int | float) and not isinstance(v, bool)}


_SQRT2 = float(np.sqrt(2.0))
_SQRT2PI = float(np.sqrt(2.0 * np.pi))
_GELU_K = float(np.sqrt(2.0 / np.pi))


def _gelu(e: Emitter, x: ir.Value, attrs: dict[str, Any]) -> ir.Value:
    b, c = e.b, e.const
    if attrs["approximate"] == "tanh":  # 0.5 * x * (1 + tanh(k * (x + 0.044715 * x**3)))
        cube = b.fmul(b.fmul(x, x), x)
        inner = b.fmul(c(_GELU_K), b.fadd(x, b.fmul(c(0.044715), cube)))
        return b.fmul(b.fmul(c(0.5), x), b.fadd(c(1.0), e.math("tanh", inner)))
    return b.fmul(b.fmul(c(0.5), x), b.fadd(c(1.0), e.math("erf", b.fdiv(x, c(_SQRT2)))))


def _d_gelu(e: Emitter, x: ir.Value, y: ir.Value, attrs: dict[str, Any]) -> ir.Value:
    b, c = e.b, e.const
    if attrs["approximate"] == "tanh":
        inner = b.fmul(c(_GELU_K), b.fadd(x, b.fmul(c(0.044715), b.fmul(b.fmul(x, x), x))))
        t = e.math("tanh", inner)
        left = b.fmul(c(0.5), b.fadd(c(1.0), t))
        right = b.fmul(b.fmul(b.fmul(b.fmul(c(0.5), x), b.fsub(c(1.0), b.fmul(t, t))), c(_GELU_K)),
                       b.fadd(c(1.0), b.fmul(b.fmul(c(3 * 0.044715), x), x)))
        return b.fadd(left, right)
    left = b.fmul(c(0.5), b.fadd(c(1.0), e.math("erf", b.fdiv(x, c(_SQRT2)))))
    gauss = e.math("exp", b.fmul(b.fmul(c(-0.5), x), x))
    return b.fadd(left, b.fdiv(b.fmul(x, gauss), c(_SQRT2PI)))


def _erf(e: Emitter, x: ir.Value, attrs: dict[str, Any]) -> ir.Value:
    return e.math("erf", x)


def _softplus(e: Emitter, x: ir.Value, attrs: dict[str, Any]) -> ir.Value:
    """numpy's logaddexp(0, x): x + log1p(exp(-x)) for x > 0, log1p(exp(x)) otherwise (never overflows)."""
    b, c = e.b, e.const
    pos = b.fadd(x, e.math("log1p", e.math("exp", b.fneg(x))))
    neg = e.math("log1p", e.math("exp", x))
    return b.select(b.fcmp_ordered(">", x, c(0.0)), pos, neg)


def _clip(e: Emitter, x: ir.Value, lo: float, hi: float) -> ir.Value:
    """np.clip: min(max(x, lo), hi), NaN kept."""
    return e.math("minimum", e.maximum(x, e.const(lo)), e.const(hi))


def _hard_sigmoid(e: Emitter, x: ir.Value, attrs: dict[str, Any]) -> ir.Value:
    b = e.b
    return _clip(e, b.fadd(b.fmul(e.const(float(attrs["alpha"])), x), e.const(float(attrs["beta"]))), 0.0, 1.0)


def _d_hard_sigmoid(e: Emitter, x: ir.Value, y: ir.Value, attrs: dict[str, Any]) -> ir.Value:
    b = e.b
    z = b.fadd(b.fmul(e.const(float(attrs["alpha"])), x), e.const(float(attrs["beta"])))
    inside = b.and_(b.fcmp_ordered(">", z, e.const(0.0)), b.fcmp_ordered("<", z, e.const(1.0)))
    return b.select(inside, e.const(float(attrs["alpha"])), e.const(0.0))


def _clip_rule(e: Emitter, x: ir.Value, attrs: dict[str, Any]) -> ir.Value:
    return _clip(e, x, float(attrs["min"]), float(attrs["max"]))


def _d_clip(e: Emitter, x: ir.Value, y: ir.Value, attrs: dict[str, Any]) -> ir.Value:
    b = e.b
    inside = b.and_(b.fcmp_ordered(">=", x, e.const(float(attrs["min"]))),
                    b.fcmp_ordered("<=", x, e.const(float(attrs["max"]))))
    return b.select(inside, e.const(1.0), e.const(0.0))


# --- broadcasting binary ops ---------------------------------------------------------------------


@dataclass(frozen=True)
class Binary:
    """Add/Sub/Mul/Div with numpy broadcasting; the VJP sums back over broadcast axes."""

    kind: str

    def forward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        fn = {"Add": b.fadd, "Sub": b.fsub, "Mul": b.fmul, "Div": b.fdiv}[self.kind]
        sa, sb = (bstrides(s, c.yshape) for s in c.xshapes)
        with nd_loop(e, c.yshape, strides(c.yshape), sa, sb) as (o, ia, ib):
            e.store(fn(e.load(c.xs[0], ia), e.load(c.xs[1], ib)), c.y, o)

    def backward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        wa, wb = c.wants(0), c.wants(1)
        pa, pb = c.put(0), c.put(1)
        sa, sb = (bstrides(s, c.yshape) for s in c.xshapes)
        with nd_loop(e, c.yshape, strides(c.yshape), sa, sb) as (o, ia, ib):
            g = e.load(c.dy, o)
            if self.kind in ("Add", "Sub"):
                if wa:
                    pa(ia, g)
                if wb:
                    pb(ib, g if self.kind == "Add" else b.fneg(g))
            elif self.kind == "Mul":
                av, bv = e.load(c.xs[0], ia), e.load(c.xs[1], ib)  # both read before either may step
                if wa:
                    pa(ia, b.fmul(g, bv))
                if wb:
                    pb(ib, b.fmul(g, av))
            else:  # Div: (g / b, -g * a / (b * b))
                av, bv = e.load(c.xs[0], ia), e.load(c.xs[1], ib)
                if wa:
                    pa(ia, b.fdiv(g, bv))
                if wb:
                    pb(ib, b.fdiv(b.fmul(b.fneg(g), av), b.fmul(bv, bv)))

    def fusable(self, c: Ctx, i: int) -> bool:
        """Each element of input ``i`` gets one gradient term per sample: no broadcast."""
        return _strip(c.xshapes[i]) == _strip(c.yshape)


def _strip(shape: Shape) -> Shape:
    shape = tuple(shape)
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


# --- matrix products -----------------------------------------------------------------------------


def mm(e: Emitter, a: ir.Value, bm: ir.Value, cm: ir.Value | None, m: int, k: int, n: int, ta: bool, tb: bool,
       alpha: float = 1.0, accumulate: bool = False,
       put: Callable[[ir.Value, ir.Value], None] | None = None) -> None:
    """C (m, n) [+]= alpha * op(A) @ op(B), A stored (m, k) or (k, m) when ``ta``, B (k, n) or (n, k) when ``tb``.

    The innermost loop runs over contiguous memory: over C's row (vectorised by LLVM)
    when B is not transposed, else a vectorised dot product of two rows. ``put(idx, v)``,
    when given, receives each term instead of C (with k == 1 each element gets one).
    """
    b = e.b
    if put is not None:
        if k != 1 and not tb:
            raise UnsupportedError("a fused update needs one term per element")

    def a_at(i: ir.Value, p: ir.Value) -> ir.Value:
        return e.load(a, _lin(e, p, m, i) if ta else _lin(e, i, k, p))

    if not tb:
        if not accumulate:
            with e.loop(m * n, "z") as z:
                e.store(e.const(0.0), cm, z)
        with e.loop(m, "i") as i:
            with e.loop(k, "p") as p:
                aip = a_at(i, p)
                if alpha != 1.0:
                    aip = b.fmul(e.const(alpha), aip)
                brow = e.row(bm, p, n)
                if put is not None:
                    with e.loop(n, "j") as j:
                        put(_lin(e, i, n, j), b.fmul(aip, e.load(brow, j)))
                else:
                    crow = e.row(cm, i, n)
                    with e.loop(n, "j") as j:
                        e.store(b.fadd(e.load(crow, j), b.fmul(aip, e.load(brow, j))), crow, j)
        return
    with e.loop(m, "i") as i:
        with e.loop(n, "j") as j:
            if not ta:
                s = e.dot(e.row(a, i, k), e.row(bm, j, k), k)
            else:
                acc = e.var(e.const(0.0), "mm")
                brow = e.row(bm, j, k)
                with e.loop(k, "p") as p:
                    e.add_to(acc, b.fmul(a_at(i, p), e.load(brow, p)))
                s = b.load(acc)
            if alpha != 1.0:
                s = b.fmul(e.const(alpha), s)
            idx = _lin(e, i, n, j)
            if put is not None:
                put(idx, s)
            else:
                e.store(b.fadd(e.load(cm, idx), s) if accumulate else s, cm, idx)


def _lin(e: Emitter, i: ir.Value | int, width: int, j: ir.Value | int) -> ir.Value:
    ii = e.i64(i) if isinstance(i, int) else i
    jj = e.i64(j) if isinstance(j, int) else j
    return e.b.add(e.b.mul(ii, e.i64(width), flags=["nuw", "nsw"]), jj, flags=["nuw", "nsw"])


class MatMulRule:
    """numpy matmul: 1-D operands promoted, leading axes broadcast; one small product per leading index."""

    @staticmethod
    def _plan(c: Ctx) -> tuple[Shape, Shape, Shape, int, int, int]:
        sa, sb = c.xshapes
        a2 = sa if len(sa) >= 2 else (1, sa[0])
        b2 = sb if len(sb) >= 2 else (sb[0], 1)
        m, k, n = a2[-2], a2[-1], b2[-1]
        lead_a, lead_b = a2[:-2], b2[:-2]
        rank = max(len(lead_a), len(lead_b))
        pa = (1,) * (rank - len(lead_a)) + lead_a
        pb = (1,) * (rank - len(lead_b)) + lead_b
        lead = tuple(max(x, y) for x, y in zip(pa, pb, strict=True))
        return lead, pa, pb, m, k, n

    def forward(self, c: Ctx) -> None:
        lead, pa, pb, m, k, n = self._plan(c)
        e = c.e
        with nd_loop(e, lead, _mat_strides(pa, lead, m * k), _mat_strides(pb, lead, k * n),
                     strides(lead) if lead else []) as (oa, ob, oc):
            oc = e.b.mul(oc, e.i64(m * n)) if lead else oc
            mm(e, _offset(e, c.xs[0], oa), _offset(e, c.xs[1], ob), _offset(e, c.y, oc), m, k, n, False, False)

    def backward(self, c: Ctx) -> None:
        lead, pa, pb, m, k, n = self._plan(c)
        e = c.e
        da, db = c.dxs
        fused_b = len(c.fused) > 1 and c.fused[1] is not None
        with nd_loop(e, lead, _mat_strides(pa, lead, m * k), _mat_strides(pb, lead, k * n),
                     strides(lead) if lead else []) as (oa, ob, oc):
            oc = e.b.mul(oc, e.i64(m * n)) if lead else oc
            g = _offset(e, c.dy, oc)
            if da is not None:  # dA += dC @ B^T (B read before it may step)
                mm(e, g, _offset(e, c.xs[1], ob), _offset(e, da, oa), m, n, k, False, True, accumulate=True)
            if fused_b:  # one sample, one product: each element of B gets one term
                mm(e, c.xs[0], g, None, k, m, n, True, False, accumulate=True, put=c.put(1))
            elif db is not None:  # dB += A^T @ dC
                mm(e, _offset(e, c.xs[0], oa), g, _offset(e, db, ob), k, m, n, True, False, accumulate=True)

    def fusable(self, c: Ctx, i: int) -> bool:
        lead, *_ = self._plan(c)
        return i == 1 and not lead and len(c.xshapes[0]) == 1 and len(c.xshapes[1]) == 2


def _mat_strides(lead_of: Shape, lead: Shape, block: int) -> list[int]:
    return [0 if d == 1 and o != 1 else s * block for d, o, s in zip(lead_of, lead, strides(lead_of), strict=True)]


class GemmRule:
    """ONNX Gemm: Y = alpha * op(A) @ op(B) + beta * C (C broadcast)."""

    @staticmethod
    def _dims(c: Ctx) -> tuple[int, int, int, bool, bool]:
        sa, sb = c.xshapes[0], c.xshapes[1]
        ta, tb = bool(c.attrs["transA"]), bool(c.attrs["transB"])
        a2 = sa if len(sa) == 2 else (1, sa[0])  # a batched A: one row per sample
        m, k = (a2[1], a2[0]) if ta else a2
        n = sb[0] if tb else sb[1]
        return m, k, n, ta, tb

    def forward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        m, k, n, ta, tb = self._dims(c)
        alpha, beta = float(c.attrs["alpha"]), float(c.attrs["beta"])
        mm(e, c.xs[0], c.xs[1], c.y, m, k, n, ta, tb)
        has_c = len(c.xs) > 2 and c.xs[2] is not None
        if alpha == 1.0 and not has_c:
            return
        sc = bstrides(c.xshapes[2], c.yshape) if has_c else None
        with nd_loop(e, c.yshape, strides(c.yshape), sc or strides(c.yshape)) as (o, ic):
            v = e.load(c.y, o)
            v = b.fmul(e.const(alpha), v)  # numpy: alpha * (A @ B), then + beta * C
            if has_c:
                v = b.fadd(v, b.fmul(e.const(beta), e.load(c.xs[2], ic)))
            e.store(v, c.y, o)

    def backward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        m, k, n, ta, tb = self._dims(c)
        alpha, beta = float(c.attrs["alpha"]), float(c.attrs["beta"])
        a, bm, g = c.xs[0], c.xs[1], c.dy
        da, db = c.dxs[0], c.dxs[1]
        if da is not None:
            if not ta:  # dA (m, k) += alpha * dY @ op(B)^T
                mm(e, g, bm, da, m, n, k, False, not tb, alpha, True)
            else:  # dA (k, m) += alpha * op(B) @ dY^T
                mm(e, bm, g, da, k, n, m, tb, True, alpha, True)
        if c.wants(1):
            put = c.put(1) if len(c.fused) > 1 and c.fused[1] is not None else None
            if not tb:  # dB (k, n) += alpha * op(A)^T @ dY
                mm(e, a, g, db, k, m, n, not ta, False, alpha, True, put)
            else:  # dB (n, k) += alpha * dY^T @ op(A)
                mm(e, g, a, db, n, m, k, True, ta, alpha, True, put)
        if c.wants(2):
            sc = bstrides(c.xshapes[2], c.yshape)
            pc = c.put(2)
            with nd_loop(e, c.yshape, strides(c.yshape), sc) as (o, ic):
                pc(ic, b.fmul(e.const(beta), e.load(g, o)))

    def fusable(self, c: Ctx, i: int) -> bool:
        if i == 2:
            return _strip(c.xshapes[2]) == _strip(c.yshape)
        return i == 1 and len(c.xshapes[0]) == 1


# --- layout ops ----------------------------------------------------------------------------------


class CopyRule:
    """Reshape, Flatten, Squeeze, Unsqueeze: the same row-major elements under another shape."""

    def forward(self, c: Ctx) -> None:
        _copy(c.e, c.xs[0], c.y, size(c.yshape))

    def backward(self, c: Ctx) -> None:
        if c.dxs[0] is not None:
            _copy(c.e, c.dy, c.dxs[0], size(c.yshape), accumulate=True)


class GatherRule:
    """ONNX Gather, one sample: ``y[o, p, j] = x[o, idx[p], j]`` (o: axes before ``axis``, j: after).

    The table is a param (an embedding) and the indices the sample's, or the data is
    the sample's and the indices a constant. Indices arrive as floats, already checked
    whole and in range at the data boundary; negative ones count from the end.
    Backward scatters: ``dx[o, idx[p], j] += dy[o, p, j]``; indices take no gradient.
    """

    def _plan(self, c: Ctx) -> tuple[int, int, int, int]:
        xs = c.xshapes[0]
        data_batched = bool(c.xbatched) and c.xbatched[0]
        ax = (int(c.attrs["axis"]) % (len(xs) + 1)) - 1 if data_batched else int(c.attrs["axis"]) % len(xs)
        return size(xs[:ax]), xs[ax], size(xs[ax + 1:]), size(c.xshapes[1])

    def _index(self, c: Ctx, p: ir.Value, n: int) -> ir.Value:
        e, b = c.e, c.e.b
        i = b.fptosi(e.load(c.xs[1], p), ir.IntType(64))
        neg = b.icmp_signed("<", i, e.i64(0))
        return b.select(neg, b.add(i, e.i64(n)), i)

    def _rows(self, c: Ctx, o: Any, p: Any, n: int, inner: int, k: int) -> tuple[Any, Any]:
        """Offsets of the table row index ``p`` picks in block ``o`` (src) and of its output row (dst)."""
        e, b = c.e, c.e.b
        i = self._index(c, p, n)
        return (b.mul(b.add(b.mul(o, e.i64(n)), i), e.i64(inner)),
                b.mul(b.add(b.mul(o, e.i64(k)), p), e.i64(inner)))

    def forward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        outer, n, inner, k = self._plan(c)
        with e.loop(outer, "o") as o, e.loop(k, "p") as p:
            src, dst = self._rows(c, o, p, n, inner, k)
            with e.loop(inner, "j") as j:
                e.store(e.load(c.xs[0], b.add(src, j)), c.y, b.add(dst, j))

    def backward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        if not c.wants(0):
            return
        put = c.put(0)
        outer, n, inner, k = self._plan(c)
        with e.loop(outer, "o") as o, e.loop(k, "p") as p:
            src, dst = self._rows(c, o, p, n, inner, k)
            with e.loop(inner, "j") as j:
                put(b.add(src, j), e.load(c.dy, b.add(dst, j)))


class TransposeRule:
    def _xstrides(self, c: Ctx) -> list[int]:
        xs = c.xshapes[0]
        perm = c.attrs["perm"]
        full = len(xs) + (1 if c.batched else 0)
        p = list(range(full))[::-1] if perm is None else [int(i) for i in perm]
        if c.batched:
            p = [i - 1 for i in p[1:]]
        st = strides(xs)
        return [st[i] for i in p]

    def forward(self, c: Ctx) -> None:
        e = c.e
        with nd_loop(e, c.yshape, strides(c.yshape), self._xstrides(c)) as (o, i):
            e.store(e.load(c.xs[0], i), c.y, o)

    def backward(self, c: Ctx) -> None:
        e = c.e
        if c.dxs[0] is None:
            return
        with nd_loop(e, c.yshape, strides(c.yshape), self._xstrides(c)) as (o, i):
            _add_into(e, c.dxs[0], i, e.load(c.dy, o))


class SliceRule:
    def _plan(self, c: Ctx) -> tuple[int, list[int]]:
        xs = c.xshapes[0]
        st = strides(xs)
        a = c.attrs
        starts = [0] * len(xs)
        steps = [1] * len(xs)
        axes = a["axes"] if a["axes"] is not None else range(len(a["starts"]))
        for i, ax in enumerate(axes):
            d = c.axis(ax, len(xs))
            step = int(a["steps"][i]) if a["steps"] else 1
            start, _, step = slice(int(a["starts"][i]), int(a["ends"][i]), step).indices(xs[d])
            starts[d], steps[d] = start, step
        base = sum(s * t for s, t in zip(starts, st, strict=True))
        return base, [t * s for t, s in zip(st, steps, strict=True)]

    def forward(self, c: Ctx) -> None:
        e = c.e
        base, xst = self._plan(c)
        x = _offset(e, c.xs[0], base)
        with nd_loop(e, c.yshape, strides(c.yshape), xst) as (o, i):
            e.store(e.load(x, i), c.y, o)

    def backward(self, c: Ctx) -> None:
        e = c.e
        if c.dxs[0] is None:
            return
        base, xst = self._plan(c)
        dx = _offset(e, c.dxs[0], base)
        with nd_loop(e, c.yshape, strides(c.yshape), xst) as (o, i):
            _add_into(e, dx, i, e.load(c.dy, o))


class ConcatRule:
    def _plan(self, c: Ctx) -> tuple[int, int, list[int]]:
        ax = c.axis(c.attrs["axis"], len(c.yshape))
        outer = size(c.yshape[:ax])
        return outer, size(c.yshape[ax:]), [size(s[ax:]) for s in c.xshapes]

    def forward(self, c: Ctx) -> None:
        e = c.e
        outer, block, inner = self._plan(c)
        with e.loop(outer, "o") as o:
            yrow = e.row(c.y, o, block)
            off = 0
            for x, w in zip(c.xs, inner, strict=True):
                _copy(e, e.row(x, o, w), _offset(e, yrow, off), w)
                off += w

    def backward(self, c: Ctx) -> None:
        e = c.e
        outer, block, inner = self._plan(c)
        with e.loop(outer, "o") as o:
            grow = e.row(c.dy, o, block)
            off = 0
            for dx, w in zip(c.dxs, inner, strict=True):
                if dx is not None:
                    _copy(e, _offset(e, grow, off), e.row(dx, o, w), w, accumulate=True)
                off += w


# --- reductions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReduceRule:
    kind: str  #: "sum", "mean" or "max"

    def _plan(self, c: Ctx) -> tuple[Shape, list[int], int]:
        xs = c.xshapes[0]
        axes = c.attrs["axes"]
        red = set(range(len(xs))) if axes is None else {c.axis(a, len(xs)) for a in axes}
        kept = tuple(1 if d in red else n for d, n in enumerate(xs))
        ost = bstrides(kept, xs)
        return xs, ost, size([xs[d] for d in red])

    def forward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        xs, ost, count = self._plan(c)
        init = float("-inf") if self.kind == "max" else 0.0
        with e.loop(size(c.yshape), "z") as z:
            e.store(e.const(init), c.y, z)
        with nd_loop(e, xs, strides(xs), ost) as (i, o):
            x = e.load(c.xs[0], i)
            acc = e.load(c.y, o)
            e.store(e.maximum(acc, x) if self.kind == "max" else b.fadd(acc, x), c.y, o)
        if self.kind == "mean":  # np.mean: the sum, then / count
            with e.loop(size(c.yshape), "z") as z:
                e.store(b.fdiv(e.load(c.y, z), e.const(count)), c.y, z)

    def backward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        if c.dxs[0] is None:
            return
        xs, ost, count = self._plan(c)
        dx = c.dxs[0]
        if self.kind != "max":
            scale = e.const(count ** -1.0) if self.kind == "mean" else None
            with nd_loop(e, xs, strides(xs), ost) as (i, o):
                g = e.load(c.dy, o)
                _add_into(e, dx, i, g if scale is None else b.fmul(g, scale))
            return
        # ties share the gradient evenly: mask / (number of maxima), as ops._reduce_max_vjp
        ny = size(c.yshape)
        if ny * 8 > 64 * 1024:
            raise c.refuse(f"keeps ReduceMax's tie counts on the stack; {ny} outputs per sample are too many")
        counts = e.scratch(ny, "ties", on_heap=False)
        with e.loop(ny, "z") as z:
            e.store(e.const(0.0), counts, z)
        with nd_loop(e, xs, strides(xs), ost) as (i, o):
            hit = b.fcmp_ordered("==", e.load(c.xs[0], i), e.load(c.y, o))
            _add_into(e, counts, o, b.select(hit, e.const(1.0), e.const(0.0)))
        with nd_loop(e, xs, strides(xs), ost) as (i, o):
            hit = b.fcmp_ordered("==", e.load(c.xs[0], i), e.load(c.y, o))
            mask = b.fdiv(b.select(hit, e.const(1.0), e.const(0.0)), e.load(counts, o))
            _add_into(e, dx, i, b.fmul(mask, e.load(c.dy, o)))


# --- softmax family ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoftmaxRule:
    """Softmax / LogSoftmax over an axis; ``pnl`` is PsyNeuLink's SoftMax (last axis, times ``gain``)."""

    log: bool = False
    pnl: bool = False

    def _plan(self, c: Ctx) -> tuple[int, int, int]:
        ys = c.yshape
        ax = len(ys) - 1 if self.pnl else c.axis(c.attrs["axis"], len(ys))
        return size(ys[:ax]), ys[ax], size(ys[ax + 1:])

    def _lanes(self, c: Ctx):
        outer, n, inner = self._plan(c)
        e = c.e

        @contextmanager
        def lanes() -> Iterator[Callable[[ir.Value], ir.Value]]:
            with e.loop(outer, "o") as o, e.loop(inner, "q") as q:
                base = e.b.add(e.b.mul(o, e.i64(n * inner)), q)
                yield lambda j: e.b.add(base, e.b.mul(j, e.i64(inner))) if inner != 1 else e.b.add(base, j)
        return lanes(), n

    def forward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        lanes, n = self._lanes(c)
        gain = e.const(float(c.attrs["gain"])) if self.pnl else None

        def z(j: ir.Value, at: Callable) -> ir.Value:
            x = e.load(c.xs[0], at(j))
            return b.fmul(gain, x) if gain is not None else x

        with lanes as at:
            top = e.var(e.const(float("-inf")), "max")
            with e.loop(n, "j") as j:
                b.store(e.maximum(b.load(top), z(j, at)), top)
            zmax = b.load(top)
            total = e.var(e.const(0.0), "sum")
            with e.loop(n, "j") as j:
                ej = e.math("exp", b.fsub(z(j, at), zmax))
                if not self.log:
                    e.store(ej, c.y, at(j))
                e.add_to(total, ej)
            s = b.load(total)
            with e.loop(n, "j") as j:
                if self.log:  # z - max - log(sum(exp(z - max)))
                    e.store(b.fsub(b.fsub(z(j, at), zmax), e.math("log", s)), c.y, at(j))
                else:
                    e.store(b.fdiv(e.load(c.y, at(j)), s), c.y, at(j))


# --- backward passes generated from the op table's gradient in graph ops -------------------------

#: The most elements a generated backward keeps on the stack, per sample, for its steps (1 MiB
#: in float64): the steps' temporaries are entry-block allocas of the node function.
MAX_GRAD_SCRATCH = 1 << 17


@dataclass(frozen=True)
class GeneratedBackward:
    """An op whose forward is ``base``'s and whose backward is GENERATED from its gradient in graph
    ops (:attr:`mdfx.ops.GraphOp.grad`): each step runs its own op's forward rule on per-sample
    scratch buffers, and the result is added into the input's gradient. Nothing is hand-written
    twice: the numpy VJP, these steps and this code compute the same operations in the same order."""

    base: Any

    def forward(self, c: Ctx) -> None:
        self.base.forward(c)

    def backward(self, c: Ctx) -> None:
        if not any(c.wants(i) for i in range(len(c.xs))):
            return
        e = c.e
        op = ops.graph_op(c.op)
        steps, grads = op.grad(**c.attrs)
        env: dict[str, tuple[ir.Value, Shape]] = {f"x{i}": (x, s) for i, (x, s) in enumerate(zip(c.xs, c.xshapes,
                                                                                             strict=True))}
        env.update({"y": (c.y, c.yshape), "g": (c.dy, c.yshape)})
        plan = []
        for st in steps:  # shapes first: refuse before emitting anything
            sub = ops.graph_op(st.op)
            attrs = sub.fill(st.attrs, f"node {c.node!r} ({c.op}) gradient step {st.out!r}: ")
            shapes = [() if isinstance(t, float) else env[t][1] for t in st.inputs]
            full = [s if not c.batched or isinstance(t, float) else (ops.BATCH, *s) for t, s in zip(st.inputs, shapes,
                                                                                                   strict=True)]
            out = tuple(sub.infer(full, **attrs))
            out = out[1:] if c.batched else out
            env[st.out] = (None, out)  # type: ignore[assignment]
            plan.append((st, attrs, shapes, out))
        total = sum(size(out) for *_, out in plan)
        if total > MAX_GRAD_SCRATCH:
            raise c.refuse(f"keeps the generated gradient's {total} temporaries per sample on the stack; at most "
                           f"{MAX_GRAD_SCRATCH} fit (use the torch backend for so large a {c.op})")
        for st, attrs, shapes, out in plan:
            xs = []
            for k, t in enumerate(st.inputs):
                if isinstance(t, float):
                    const = e.scratch(1, f"{st.out}_c{k}", on_heap=False)
                    e.store(e.const(t), const, 0)
                    xs.append(const)
                else:
                    xs.append(env[t][0])
            y = e.scratch(size(out), f"{st.out}", on_heap=False)
            GRAPH_RULES[st.op].forward(Ctx(e, c.node, st.op, attrs, xs, shapes, y, out, c.batched))
            env[st.out] = (y, out)
        for i, name in enumerate(grads):
            if name is None or not c.wants(i):
                continue
            ptr, shape = env[name]
            put = c.put(i)
            with e.loop(size(shape), "j") as j:
                put(j, e.load(ptr, j))


@dataclass(frozen=True)
class NormalizeRule:
    """PsyNeuLink's Normalize over the last axis: ops.normalize / ops.vjp_normalize."""

    def _lanes(self, c: Ctx):
        return SoftmaxRule(pnl=True)._lanes(c)

    def _norm(self, c: Ctx, at: Callable) -> tuple[ir.Value, ir.Value]:
        """(||x||, max(||x||, eps)) of one lane."""
        e, b = c.e, c.e.b
        total = e.var(e.const(0.0), "sq")
        with e.loop(c.yshape[-1], "j") as j:
            x = e.load(c.xs[0], at(j))
            e.add_to(total, b.fmul(x, x))
        norm = e.math("sqrt", b.load(total))
        return norm, e.maximum(norm, e.const(float(c.attrs["eps"])))

    def forward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        lanes, n = self._lanes(c)
        with lanes as at:
            _, d = self._norm(c, at)
            with e.loop(n, "j") as j:
                e.store(b.fdiv(e.load(c.xs[0], at(j)), d), c.y, at(j))

    def backward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        if c.dxs[0] is None:
            return
        lanes, n = self._lanes(c)
        with lanes as at:
            norm, d = self._norm(c, at)
            acc = e.var(e.const(0.0), "gy")
            with e.loop(n, "j") as j:
                e.add_to(acc, b.fmul(e.load(c.dy, at(j)), e.load(c.y, at(j))))
            # unclamped (||x|| >= eps): (g - y * sum(g*y)) / ||x||; clamped: g / eps
            gy = b.select(b.fcmp_ordered(">=", norm, e.const(float(c.attrs["eps"]))), b.load(acc), e.const(0.0))
            with e.loop(n, "j") as j:
                g, y = e.load(c.dy, at(j)), e.load(c.y, at(j))
                _add_into(e, c.dxs[0], at(j), b.fdiv(b.fsub(g, b.fmul(y, gy)), d))


# --- normalisation -------------------------------------------------------------------------------


class LayerNormRule:
    """ops._layer_norm / _layer_norm_vjp over axes axis..last, Scale and B broadcast to those axes."""

    def _plan(self, c: Ctx) -> tuple[int, Shape, list[int] | None, list[int] | None]:
        xs = c.xshapes[0]
        ax = c.axis(c.attrs["axis"], len(xs))
        norm = xs[ax:]
        sh = [bstrides(s, norm) if s is not None else None for s in (c.xshapes + [None, None])[1:3]]
        return size(xs[:ax]), norm, sh[0], sh[1]

    def _stats(self, c: Ctx, x: ir.Value, n: int) -> tuple[ir.Value, ir.Value]:
        e, b = c.e, c.e.b
        eps = float(c.attrs["epsilon"])
        tot = e.var(e.const(0.0), "sum")
        with e.loop(n, "j") as j:
            e.add_to(tot, e.load(x, j))
        mu = b.fdiv(b.load(tot), e.const(n))
        sq = e.var(e.const(0.0), "sq")
        with e.loop(n, "j") as j:
            d = b.fsub(e.load(x, j), mu)
            e.add_to(sq, b.fmul(d, d))
        var = b.fdiv(b.load(sq), e.const(n))
        return mu, e.math("sqrt", b.fadd(var, e.const(eps)))

    def forward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        outer, norm, ss, sb = self._plan(c)
        n = size(norm)
        scale = c.xs[1] if len(c.xs) > 1 else None
        bias = c.xs[2] if len(c.xs) > 2 else None
        with e.loop(outer, "o") as o:
            x, y = e.row(c.xs[0], o, n), e.row(c.y, o, n)
            mu, sd = self._stats(c, x, n)
            with nd_loop(e, norm, strides(norm), ss or strides(norm), sb or strides(norm)) as (j, js, jb):
                v = b.fdiv(b.fsub(e.load(x, j), mu), sd)
                if scale is not None:
                    v = b.fmul(v, e.load(scale, js))
                if bias is not None:
                    v = b.fadd(v, e.load(bias, jb))
                e.store(v, y, j)

    def backward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        outer, norm, ss, sb = self._plan(c)
        n = size(norm)
        scale = c.xs[1] if len(c.xs) > 1 else None
        dxs = (c.dxs + [None, None])[:3]
        with e.loop(outer, "o") as o:
            x, g = e.row(c.xs[0], o, n), e.row(c.dy, o, n)
            mu, sd = self._stats(c, x, n)
            inv = b.fdiv(e.const(1.0), sd)
            sgh, sghx = e.var(e.const(0.0), "sgh"), e.var(e.const(0.0), "sghx")
            with nd_loop(e, norm, strides(norm), ss or strides(norm)) as (j, js):
                xhat = b.fmul(b.fsub(e.load(x, j), mu), inv)
                gh = e.load(g, j) if scale is None else b.fmul(e.load(g, j), e.load(scale, js))
                e.add_to(sgh, gh)
                e.add_to(sghx, b.fmul(gh, xhat))
            mean_gh = b.fdiv(b.load(sgh), e.const(n))
            s2 = b.load(sghx)
            with nd_loop(e, norm, strides(norm), ss or strides(norm), sb or strides(norm)) as (j, js, jb):
                gj = e.load(g, j)
                xhat = b.fmul(b.fsub(e.load(x, j), mu), inv)
                gh = gj if scale is None else b.fmul(gj, e.load(scale, js))
                if dxs[0] is not None:
                    inner = b.fsub(b.fsub(gh, mean_gh), b.fdiv(b.fmul(xhat, s2), e.const(n)))
                    _add_into(e, e.row(dxs[0], o, n), j, b.fmul(inv, inner))
                if dxs[1] is not None:
                    _add_into(e, dxs[1], js, b.fmul(gj, xhat))
                if dxs[2] is not None:
                    _add_into(e, dxs[2], jb, gj)


class BatchNormRule:
    """Inference form: (x - mean) * (inv * scale) + bias per channel (axis 1, the first per-sample axis)."""

    def _plan(self, c: Ctx) -> tuple[int, int]:
        if not c.batched:
            raise c.refuse("runs BatchNormalization on batched tensors only")
        return c.yshape[0], size(c.yshape[1:])

    def _inv(self, c: Ctx, ch: ir.Value) -> ir.Value:
        e, b = c.e, c.e.b
        var = e.load(c.xs[4], ch)
        return b.fdiv(e.const(1.0), e.math("sqrt", b.fadd(var, e.const(float(c.attrs["epsilon"])))))

    def forward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        channels, inner = self._plan(c)
        with e.loop(channels, "ch") as ch:
            k = b.fmul(self._inv(c, ch), e.load(c.xs[1], ch))
            mean, bias = e.load(c.xs[3], ch), e.load(c.xs[2], ch)
            x, y = e.row(c.xs[0], ch, inner), e.row(c.y, ch, inner)
            with e.loop(inner, "j") as j:
                e.store(b.fadd(b.fmul(b.fsub(e.load(x, j), mean), k), bias), y, j)

    def backward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        channels, inner = self._plan(c)
        dx, dscale, dbias = (c.dxs + [None] * 3)[:3]
        with e.loop(channels, "ch") as ch:
            inv = self._inv(c, ch)
            k = b.fmul(inv, e.load(c.xs[1], ch))
            mean = e.load(c.xs[3], ch)
            x, g = e.row(c.xs[0], ch, inner), e.row(c.dy, ch, inner)
            with e.loop(inner, "j") as j:
                gj = e.load(g, j)
                if dx is not None:
                    _add_into(e, e.row(dx, ch, inner), j, b.fmul(gj, k))
                if dscale is not None:
                    _add_into(e, dscale, ch, b.fmul(gj, b.fmul(b.fsub(e.load(x, j), mean), inv)))
                if dbias is not None:
                    _add_into(e, dbias, ch, gj)


class RefusedRule:
    """An op the LLVM backend has no kernel for: compiling a graph with it raises, naming the node."""

    def __init__(self, why: str) -> None:
        self.why = why


class HostRule:
    """An op that takes no gradient: computed by the runner with the numpy rule, after the kernel."""

    host = True


# --- the table -----------------------------------------------------------------------------------


def _elementwise_rules() -> dict[str, Elementwise]:
    hand = {
        "Erf": Elementwise(forward_fn=_erf, derivative_expr=ops.GRAPH_OPS["Erf"].dexpr),
        "Gelu": Elementwise(forward_fn=_gelu, derivative_fn=_d_gelu),
        "Softplus": Elementwise(forward_fn=_softplus, derivative_expr=ops.GRAPH_OPS["Softplus"].dexpr),
        # the op table writes these with min/max, which mdfx.expr does not have
        "HardSigmoid": Elementwise(forward_fn=_hard_sigmoid, derivative_fn=_d_hard_sigmoid),
        "Clip": Elementwise(forward_fn=_clip_rule, derivative_fn=_d_clip),
    }
    rules: dict[str, Elementwise] = {}
    for name, op in ops.GRAPH_OPS.items():
        if name in hand:
            rules[name] = hand[name]
        elif op.elementwise and op.expr and op.dexpr:
            rules[name] = Elementwise(op.expr, op.dexpr)
    return rules


# direct-loop kernels of the spatial ops, in their own module (it reads Ctx and _add_into above)
from mdfx.converters.llvm import spatial_rules as _spatial  # noqa: E402

#: Rule per graph op, keyed by the op's name in :data:`mdfx.ops.GRAPH_OPS`.
GRAPH_RULES: MappingProxyType = MappingProxyType({
    **_elementwise_rules(),
    **{k: Binary(k) for k in ("Add", "Sub", "Mul", "Div")},
    # backward generated from the op table's gradient in graph ops
    "pnl.SoftMax": GeneratedBackward(SoftmaxRule(pnl=True)),
    "pnl.Normalize": NormalizeRule(),  # its backward is written by hand (the op has no graph-op gradient)
    "Softmax": GeneratedBackward(SoftmaxRule()),
    "LogSoftmax": GeneratedBackward(SoftmaxRule(log=True)),
    "MatMul": MatMulRule(),
    "Gemm": GemmRule(),
    "Concat": ConcatRule(),
    "Slice": SliceRule(),
    **{k: CopyRule() for k in ("Reshape", "Flatten", "Squeeze", "Unsqueeze")},
    "Transpose": TransposeRule(),
    "Gather": GatherRule(),
    "ReduceSum": ReduceRule("sum"),
    "ReduceMean": ReduceRule("mean"),
    "ReduceMax": ReduceRule("max"),
    "LayerNormalization": LayerNormRule(),
    "BatchNormalization": BatchNormRule(),
    **{k: RecurrentRule(k) for k in ("LSTM", "RNN")},
    "GRU": RefusedRule("does not compile GRU yet (its time loop runs in ExecutionMode.Python and "
                       "ExecutionMode.PyTorch)"),
    **{k: HostRule() for k in ("ArgMax", "ai.onnx.ml.ArrayFeatureExtractor", "ai.onnx.ml.ZipMap", "CastLabel")},
    "Conv": _spatial.ConvRule(),
    "MaxPool": _spatial.PoolRule("MaxPool"),
    "AveragePool": _spatial.PoolRule("AveragePool"),
    "Pad": _spatial.PadRule(),
    "ConvTranspose": RefusedRule("has no kernel for it yet"),
})


def is_host(op: str) -> bool:
    return isinstance(GRAPH_RULES.get(op), HostRule)

