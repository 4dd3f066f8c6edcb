"""The LLVM backend's rule per loss and optimizer (DESIGN rule 3); the graph ops' rules are
:data:`mdfx.converters.llvm.graph_rules.GRAPH_RULES`.

Losses are a table: an elementwise loss is one entry
giving the per-element term, its derivative in ``y`` and the reduction; a loss
that mixes a row (cross-entropy) has its own rule. Each rule mirrors the numpy
in :mod:`mdfx.ops` operation by operation, so float64 results agree to rounding.

Shapes: every rule sees one row (one trial) of ``size`` units. A loss rule
writes that row's d(loss)/dy and returns its summed terms; the kernel adds the
rows up and divides by the rule's ``divisor`` (N for a mean).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from llvmlite import ir

from mdfx.converters.llvm.emit import F64, Emitter

Params = Mapping[str, float]


# --- losses ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ElementwiseLoss:
    """loss = reduce(term(y, t)), dy = grad(y, t) [/ N]: one entry per loss, as data.

    ``reduction`` is ``"mean"`` (over every element of the minibatch, N = rows * size,
    as torch's default) or ``"sum"``.
    """

    term: str
    grad: str
    reduction: str = "mean"

    def divisor(self, e: Emitter, nrows: ir.Value | int, size: int) -> ir.Value | None:
        """What the summed terms and every gradient are divided by (None: nothing)."""
        return _count(e, nrows, size) if self.reduction == "mean" else None

    def row(self, e: Emitter, y: ir.Value, t: ir.Value, dy: ir.Value, size: int,
            divisor: ir.Value | None) -> ir.Value:
        """Write one row of d(loss)/dy; return the row's sum of terms."""
        b = e.b
        total = e.var(e.const(0.0), "loss")
        with e.loop(size, "j") as j:
            env = {"y": e.load(y, j), "t": e.load(t, j)}
            e.add_to(total, e.expr(self.term, env))
            g = e.expr(self.grad, env)
            e.store(g if divisor is None else b.fdiv(g, divisor), dy, j)
        return b.load(total)


class CrossEntropyLoss:
    """ops CROSS_ENTROPY: mean over rows of -sum(t * log_softmax(y)); targets are probabilities."""

    def divisor(self, e: Emitter, nrows: ir.Value | int, size: int) -> ir.Value:
        return _count(e, nrows, 1)

    def row(self, e: Emitter, y: ir.Value, t: ir.Value, dy: ir.Value, size: int,
            divisor: ir.Value | None) -> ir.Value:
        b = e.b
        top = e.var(e.const(float("-inf")), "max")
        with e.loop(size, "j") as j:
            b.store(e.maximum(b.load(top), e.load(y, j)), top)
        ymax = b.load(top)
        sum_exp = e.var(e.const(0.0), "sumexp")
        with e.loop(size, "j") as j:
            e.add_to(sum_exp, e.math("exp", b.fsub(e.load(y, j), ymax)))
        lse = e.math("log", b.load(sum_exp))
        dot, sum_t = e.var(e.const(0.0), "tlogp"), e.var(e.const(0.0), "sumt")
        with e.loop(size, "j") as j:
            tj = e.load(t, j)
            e.add_to(dot, b.fmul(tj, b.fsub(b.fsub(e.load(y, j), ymax), lse)))
            e.add_to(sum_t, tj)
        st = b.load(sum_t)
        with e.loop(size, "j") as j:
            log_p = b.fsub(b.fsub(e.load(y, j), ymax), lse)
            g = b.fsub(b.fmul(e.math("exp", log_p), st), e.load(t, j))
            e.store(b.fdiv(g, divisor), dy, j)
        return b.fneg(b.load(dot))


def _count(e: Emitter, nrows: ir.Value | int, size: int) -> ir.Value:
    """rows * size as a float (the N of a mean)."""
    if isinstance(nrows, int):
        return e.const(nrows * size)
    return e.to_float(e.b.mul(nrows, e.i64(size)))


LossRule = ElementwiseLoss | CrossEntropyLoss

_SOFT_MARGIN = "maximum(-(t * y), 0) + log(1 + exp(-abs(t * y)))"

#: Rule per ``Loss`` member, each mirroring ``ops.LOSSES[name]`` (its reduction included);
#: adding a loss is one entry.
LOSS_RULES: Mapping[str, LossRule] = MappingProxyType({
    "MSE": ElementwiseLoss("(y - t) ** 2", "2 * (y - t)"),
    "SSE": ElementwiseLoss("(y - t) ** 2", "2 * (y - t)", "sum"),
    "L1": ElementwiseLoss("abs(y - t)", "sign(y - t)", "sum"),
    "CROSS_ENTROPY": CrossEntropyLoss(),
    "BINARY_CROSS_ENTROPY": ElementwiseLoss(
        "-(t * maximum(log(y), -100) + (1 - t) * maximum(log(1 - y), -100))",
        "(y - t) / maximum(y * (1 - y), 1e-12)"),
    "KL_DIV": ElementwiseLoss("where(t > 0, t * (log(where(t > 0, t, 1)) - y), 0)", "-t", "sum"),
    "NLL": ElementwiseLoss("-(t * y)", "-t", "sum"),
    "POISSON_NLL": ElementwiseLoss("exp(y) - t * y", "exp(y) - t", "sum"),
    # log(1 + exp(-t y)) written so that exp never overflows
    "SOFT_MARGIN": ElementwiseLoss(_SOFT_MARGIN, "-t / (1 + exp(t * y))"),
    "SOFT_MARGIN_SUM": ElementwiseLoss(_SOFT_MARGIN, "-t / (1 + exp(t * y))", "sum"),
})


# --- optimizers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepScalars:
    """What an optimizer computes once per minibatch, before the elementwise update."""

    lr: ir.Value
    weight_decay: ir.Value | None  #: None when the kernel was built for weight_decay == 0
    extra: tuple[ir.Value, ...] = ()


class SgdRule:
    """ops.sgd_step: w -= lr * (g + weight_decay * w)."""

    state: tuple[str, ...] = ()

    def prepare(self, e: Emitter, step: ir.Value, lr: ir.Value, wd: ir.Value | None,
                hyper: Params) -> StepScalars:
        """``lr`` and ``wd`` arrive as doubles; the update runs in the working type."""
        return StepScalars(e.narrow(lr), None if wd is None else e.narrow(wd))

    def update(self, e: Emitter, w: ir.Value, g: ir.Value, state: tuple[ir.Value, ...],
               s: StepScalars, hyper: Params) -> ir.Value:
        b = e.b
        if s.weight_decay is not None:
            g = b.fadd(g, b.fmul(s.weight_decay, w))
        return b.fsub(w, b.fmul(s.lr, g))


class AdamRule:
    """ops.adam_step, operation by operation; the bias corrections are computed in double."""

    state: tuple[str, ...] = ("m", "v")

    def prepare(self, e: Emitter, step: ir.Value, lr: ir.Value, wd: ir.Value | None,
                hyper: Params) -> StepScalars:
        # numpy computes 1 - beta ** step and lr / bias1 as Python floats (doubles), whatever
        # the dtype of the weights; so do we, then narrow
        b = e.b
        t = b.sitofp(step, F64)
        one = ir.Constant(F64, 1.0)
        bias1 = b.fsub(one, e.math64("pow", ir.Constant(F64, hyper["beta1"]), t))
        bias2 = b.fsub(one, e.math64("pow", ir.Constant(F64, hyper["beta2"]), t))
        extra = (e.narrow(b.fdiv(lr, bias1)), e.narrow(e.math64("sqrt", bias2)))
        return StepScalars(e.narrow(lr), None if wd is None else e.narrow(wd), extra)

    def update(self, e: Emitter, w: ir.Value, g: ir.Value, state: tuple[ir.Value, ...],
               s: StepScalars, hyper: Params) -> ir.Value:
        b = e.b
        m_ptr, v_ptr = state
        beta1, beta2 = e.const(hyper["beta1"]), e.const(hyper["beta2"])
        if s.weight_decay is not None:
            g = b.fadd(g, b.fmul(s.weight_decay, w))
        m = b.fadd(b.fmul(b.load(m_ptr), beta1), b.fmul(e.const(1 - hyper["beta1"]), g))
        v = b.fadd(b.fmul(b.load(v_ptr), beta2), b.fmul(b.fmul(e.const(1 - hyper["beta2"]), g), g))
        b.store(m, m_ptr)
        b.store(v, v_ptr)
        lr_b1, sqrt_b2 = s.extra
        denom = b.fadd(b.fdiv(e.math("sqrt", v), sqrt_b2), e.const(hyper["eps"]))
        return b.fsub(w, b.fdiv(b.fmul(lr_b1, m), denom))


OptimizerRule = SgdRule | AdamRule

#: Rule per optimizer of ``ops.OPTIMIZERS``.
OPTIMIZER_RULES: Mapping[str, OptimizerRule] = MappingProxyType({"sgd": SgdRule(), "adam": AdamRule()})
