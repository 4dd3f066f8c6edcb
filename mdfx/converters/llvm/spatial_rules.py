"""The LLVM backend's rules for Conv, MaxPool, AveragePool and Pad: direct loops, one sample at a time.

Each rule resolves its geometry once, at compile time, with the op table's
:func:`mdfx.ops_spatial.geometry` (the same pads, strides, dilations and output
sizes as the numpy reference), then walks every output position and every kernel
offset. An input position outside the input (a pad) reads 0 (Conv, Pad's value,
AveragePool) or is skipped (MaxPool); the index is clamped into the input first,
so no load or store ever leaves its buffer. The sums run in the reference's order
over the kernel (channel, then kernel offsets), so float64 agrees to rounding.

These are direct loops, not the blocked GEMM: correct everywhere, not fast (see
docs/performance.md). ConvTranspose has no kernel here: it is refused by node.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from llvmlite import ir

from mdfx import ops_spatial
from mdfx.converters.llvm.graph_rules import Ctx, _add_into


@contextmanager
def _loops(e: Any, sizes: Sequence[int], name: str) -> Iterator[list[ir.Value]]:
    with ExitStack() as stack:
        yield [stack.enter_context(e.loop(n, f"{name}{i}")) for i, n in enumerate(sizes)]


def _flat(e: Any, idx: Sequence[ir.Value | int], dims: Sequence[int]) -> ir.Value:
    """Row-major offset of ``idx`` in ``dims``."""
    b = e.b
    off: ir.Value = e.i64(0)
    for i, d in zip(idx, dims, strict=True):
        term = i if isinstance(i, ir.Value) else e.i64(i)
        off = b.add(b.mul(off, e.i64(d)), term)
    return off


def _source(e: Any, o: Sequence[ir.Value], k: Sequence[ir.Value], g: ops_spatial.Geometry,
            spatial: Sequence[int]) -> tuple[ir.Value, list[ir.Value]]:
    """(inside the input?, the clamped input position) of output ``o`` under kernel offset ``k``."""
    b = e.b
    ok: ir.Value = ir.Constant(ir.IntType(1), 1)
    pos = []
    for oi, ki, s, d, p, n in zip(o, k, g.strides, g.dilations, g.begin, spatial, strict=True):
        i = b.sub(b.add(b.mul(oi, e.i64(s)), b.mul(ki, e.i64(d))), e.i64(p))
        inside = b.and_(b.icmp_signed(">=", i, e.i64(0)), b.icmp_signed("<", i, e.i64(n)))
        ok = b.and_(ok, inside)
        pos.append(b.select(inside, i, e.i64(0)))
    return ok, pos


class ConvRule:
    """Conv: y[m, o] = b[m] + sum over c, k of w[m, c, k] * x[group(m) * C/group + c, o * s + k * d - pad]."""

    def _geo(self, c: Ctx) -> ops_spatial.Geometry:
        x, w = c.xshapes[0], c.xshapes[1]
        return ops_spatial._conv_geometry((0, *x), w, c.attrs)

    def _walk(self, c: Ctx, body: Any) -> None:
        e, b = c.e, c.e.b
        x, w = c.xshapes[0], c.xshapes[1]
        g = self._geo(c)
        group = int(c.attrs["group"])
        m_per, c_per = w[0] // group, w[1]
        with _loops(e, [group, m_per], "g") as (gi, ml):
            m = b.add(b.mul(gi, e.i64(m_per)), ml)
            with _loops(e, g.out, "o") as o:
                yoff = _flat(e, [m, *o], c.yshape)
                state = body.start(m, yoff)
                with e.loop(c_per, "c") as cl:
                    cin = b.add(b.mul(gi, e.i64(c_per)), cl)
                    with _loops(e, g.kernel, "k") as k:
                        ok, pos = _source(e, o, k, g, x[1:])
                        xoff = _flat(e, [cin, *pos], x)
                        woff = _flat(e, [m, cl, *k], w)
                        body.step(state, ok, xoff, woff)
                body.end(state, m, yoff)

    def forward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        bias = c.xs[2] if len(c.xs) > 2 else None

        class Fwd:
            def start(self, m: ir.Value, yoff: ir.Value) -> ir.Value:
                return e.var(e.const(0.0))

            def step(self, acc: ir.Value, ok: ir.Value, xoff: ir.Value, woff: ir.Value) -> None:
                xv = b.select(ok, e.load(c.xs[0], xoff), e.const(0.0))
                b.store(b.fadd(b.load(acc), b.fmul(e.load(c.xs[1], woff), xv)), acc)

            def end(self, acc: ir.Value, m: ir.Value, yoff: ir.Value) -> None:
                total = b.load(acc)
                e.store(total if bias is None else b.fadd(total, e.load(bias, m)), c.y, yoff)

        self._walk(c, Fwd())

    def backward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        wants = [c.wants(i) for i in range(len(c.xs))]

        class Bwd:
            def start(self, m: ir.Value, yoff: ir.Value) -> ir.Value:
                return e.load(c.dy, yoff)

            def step(self, gy: ir.Value, ok: ir.Value, xoff: ir.Value, woff: ir.Value) -> None:
                if wants[0]:
                    _add_into(e, c.dxs[0], xoff, b.select(ok, b.fmul(gy, e.load(c.xs[1], woff)), e.const(0.0)))
                if wants[1]:
                    xv = b.select(ok, e.load(c.xs[0], xoff), e.const(0.0))
                    c.put(1)(woff, b.fmul(gy, xv))

            def end(self, gy: ir.Value, m: ir.Value, yoff: ir.Value) -> None:
                if len(wants) > 2 and wants[2]:
                    c.put(2)(m, gy)

        self._walk(c, Bwd())


class PoolRule:
    """MaxPool (the first maximum of a window, as torch) and AveragePool (count_include_pad, ceil_mode)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def _geo(self, c: Ctx) -> ops_spatial.Geometry:
        g = ops_spatial._pool_geometry((0, *c.xshapes[0]), c.attrs, self.kind)
        if self.kind == "AveragePool" and any(d != 1 for d in g.dilations):
            raise c.refuse(f"takes AveragePool with dilations 1 only, got {list(g.dilations)}")
        return g

    def _windows(self, c: Ctx, g: ops_spatial.Geometry) -> Iterator[Any]:
        e = c.e
        x = c.xshapes[0]
        with e.loop(x[0], "ch") as ch, _loops(e, g.out, "o") as o:
            yield ch, o, _flat(e, [ch, *o], c.yshape)

    def _count(self, c: Ctx, g: ops_spatial.Geometry, o: Sequence[ir.Value]) -> ir.Value:
        """How many positions the mean divides by: in the input, or in input + explicit pads."""
        e, b = c.e, c.e.b
        spatial = c.xshapes[0][1:]
        include = bool(c.attrs["count_include_pad"])
        count = e.var(e.const(0.0), "count")
        with _loops(e, g.kernel, "kc") as k:
            ok: ir.Value = ir.Constant(ir.IntType(1), 1)
            for oi, ki, s, p, q, n in zip(o, k, g.strides, g.begin, g.end, spatial, strict=True):
                i = b.sub(b.add(b.mul(oi, e.i64(s)), ki), e.i64(p))
                lo, hi = (-p, n + q) if include else (0, n)
                ok = b.and_(ok, b.and_(b.icmp_signed(">=", i, e.i64(lo)), b.icmp_signed("<", i, e.i64(hi))))
            b.store(b.fadd(b.load(count), b.select(ok, e.const(1.0), e.const(0.0))), count)
        return b.load(count)

    def forward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        g = self._geo(c)
        x = c.xshapes[0]
        for ch, o, yoff in self._windows(c, g):
            if self.kind == "MaxPool":
                best = e.var(e.const(-math.inf), "best")
                with _loops(e, g.kernel, "k") as k:
                    ok, pos = _source(e, o, k, g, x[1:])
                    v = e.load(c.xs[0], _flat(e, [ch, *pos], x))
                    better = b.and_(ok, b.fcmp_ordered(">", v, b.load(best)))
                    b.store(b.select(better, v, b.load(best)), best)
                e.store(b.load(best), c.y, yoff)
            else:
                total = e.var(e.const(0.0), "total")
                with _loops(e, g.kernel, "k") as k:
                    ok, pos = _source(e, o, k, g, x[1:])
                    v = b.select(ok, e.load(c.xs[0], _flat(e, [ch, *pos], x)), e.const(0.0))
                    b.store(b.fadd(b.load(total), v), total)
                e.store(b.fdiv(b.load(total), self._count(c, g, o)), c.y, yoff)

    def backward(self, c: Ctx) -> None:
        if not c.wants(0):
            return
        e, b = c.e, c.e.b
        g = self._geo(c)
        x = c.xshapes[0]
        for ch, o, yoff in self._windows(c, g):
            gy = e.load(c.dy, yoff)
            if self.kind == "MaxPool":
                best = e.var(e.const(-math.inf), "best")
                where = e.var(e.i64(-1), "where")
                with _loops(e, g.kernel, "k") as k:
                    ok, pos = _source(e, o, k, g, x[1:])
                    xoff = _flat(e, [ch, *pos], x)
                    v = e.load(c.xs[0], xoff)
                    better = b.and_(ok, b.fcmp_ordered(">", v, b.load(best)))
                    b.store(b.select(better, v, b.load(best)), best)
                    b.store(b.select(better, xoff, b.load(where)), where)
                at = b.load(where)
                found = b.icmp_signed(">=", at, e.i64(0))
                _add_into(e, c.dxs[0], b.select(found, at, e.i64(0)), b.select(found, gy, e.const(0.0)))
            else:
                share = b.fdiv(gy, self._count(c, g, o))
                with _loops(e, g.kernel, "k") as k:
                    ok, pos = _source(e, o, k, g, x[1:])
                    _add_into(e, c.dxs[0], _flat(e, [ch, *pos], x), b.select(ok, share, e.const(0.0)))


class PadRule:
    """Pad (constant): y[o] = x[o - pad] inside the input, the value outside."""

    def _plan(self, c: Ctx) -> tuple[list[int], Sequence[int]]:
        pads = [int(p) for p in c.attrs["pads"]]
        rank = len(pads) // 2
        if c.batched:  # the batch axis is never padded (the shape rule refuses it)
            pads = pads[1:rank] + pads[rank + 1:]
        return pads, c.xshapes[0]

    def _walk(self, c: Ctx) -> Iterator[tuple[ir.Value, ir.Value, ir.Value]]:
        e, b = c.e, c.e.b
        pads, x = self._plan(c)
        n = len(x)
        with _loops(e, c.yshape, "o") as o:
            ok: ir.Value = ir.Constant(ir.IntType(1), 1)
            pos = []
            for oi, p, d in zip(o, pads[:n], x, strict=True):
                i = b.sub(oi, e.i64(p))
                inside = b.and_(b.icmp_signed(">=", i, e.i64(0)), b.icmp_signed("<", i, e.i64(d)))
                ok = b.and_(ok, inside)
                pos.append(b.select(inside, i, e.i64(0)))
            yield ok, _flat(e, pos, x), _flat(e, o, c.yshape)

    def forward(self, c: Ctx) -> None:
        e, b = c.e, c.e.b
        for ok, xoff, yoff in self._walk(c):
            e.store(b.select(ok, e.load(c.xs[0], xoff), e.const(float(c.attrs["value"]))), c.y, yoff)

    def backward(self, c: Ctx) -> None:
        if not c.wants(0):
            return
        e, b = c.e, c.e.b
        for ok, xoff, yoff in self._walk(c):
            _add_into(e, c.dxs[0], xoff, b.select(ok, e.load(c.dy, yoff), e.const(0.0)))
