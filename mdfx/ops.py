"""The op table (DESIGN rule 3): every op of the graph IR once, plus the losses and optimizers.

:data:`GRAPH_OPS` holds every op a :class:`~mdfx.schema.graph.Graph` may use:
ONNX's ops under ONNX's names, and PsyNeuLink's transfer functions as
``pnl.<Function>`` (``pnl.Logistic``) with their PsyNeuLink, MDF and ONNX names
and PsyNeuLink's parameter defaults. Each entry gives its attributes with
defaults, a static shape rule, the numpy forward and vector-Jacobian product
(the spec); elementwise ops also give the forward and the derivative as
*expressions* in the restricted grammar of :mod:`mdfx.expr` (``x`` is the
input, ``y`` the output): the LLVM backend compiles the backward pass from
these, and the MDF writer emits them, so a gradient rule is written once, as data.

:data:`LOSSES` and :data:`OPTIMIZERS` are not ops of the graph; they are tables
of their own.

Each backend, importer and exporter keeps ONE rule dict keyed by graph op name
(``mdfx.runners.reference.RULES``, ``mdfx.converters.torch.GRAPH_RULES``, ...);
``tests/test_ops_coverage.py`` fails, naming the gap, when a table lacks a rule
for an op listed here. docs/ops.md says how to add an op.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from mdfx.errors import UnsupportedError

Array = np.ndarray


# --- numpy forward and derivative, one pair per op: the spec -------------------


def linear(x: Array, slope: float, intercept: float, scale: float, offset: float) -> Array:
    return scale * (slope * x + intercept) + offset


def d_linear(x: Array, y: Array, slope: float, intercept: float, scale: float, offset: float) -> Array:
    return np.full_like(x, scale * slope)


def logistic(x: Array, gain: float, bias: float, x_0: float, offset: float, scale: float) -> Array:
    # PsyNeuLink 0.21 adds ``offset`` outside the sigmoid (measured; its docs put it inside).
    return scale / (1.0 + np.exp(-gain * (x + bias - x_0))) + offset


def d_logistic(x: Array, y: Array, gain: float, bias: float, x_0: float, offset: float, scale: float) -> Array:
    s = (y - offset) / scale
    return gain * scale * s * (1.0 - s)


def relu(x: Array, gain: float, bias: float, leak: float) -> Array:
    z = x - bias
    return np.where(z > 0, gain * z, leak * gain * z)


def d_relu(x: Array, y: Array, gain: float, bias: float, leak: float) -> Array:
    return np.where(x - bias > 0, gain, leak * gain)


def tanh(x: Array, gain: float, bias: float, x_0: float, offset: float, scale: float) -> Array:
    return scale * np.tanh(gain * (x + bias - x_0) + offset)


def d_tanh(x: Array, y: Array, gain: float, bias: float, x_0: float, offset: float, scale: float) -> Array:
    return gain * scale * (1.0 - (y / scale) ** 2)


def exponential(x: Array, rate: float, bias: float, scale: float, offset: float) -> Array:
    return scale * np.exp(rate * x + bias) + offset


def d_exponential(x: Array, y: Array, rate: float, bias: float, scale: float, offset: float) -> Array:
    return rate * (y - offset)


def identity(x: Array) -> Array:
    return x


def d_identity(x: Array, y: Array) -> Array:
    return np.ones_like(x)


def softmax(x: Array, gain: float) -> Array:
    z = gain * x
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def vjp_softmax(x: Array, y: Array, g: Array, gain: float) -> Array:
    return gain * y * (g - np.sum(g * y, axis=-1, keepdims=True))


def normalize(x: Array, eps: float, per_item: float) -> Array:
    # x / max(||x||, eps) over a sample's units (PsyNeuLink's Normalize, measured); a sample is
    # one item, so ``per_item`` changes nothing here (it matters for a direct call on a 2-D
    # variable: mdfx.Normalize.__call__)
    return x / np.maximum(np.sqrt(np.sum(x * x, axis=-1, keepdims=True)), eps)


def vjp_normalize(x: Array, y: Array, g: Array, eps: float, per_item: float) -> Array:
    # unclamped (||x|| >= eps, where torch.clamp passes the gradient): (g - y (g.y)) / ||x||;
    # clamped: g / eps
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
    unclamped = norm >= eps
    d = np.maximum(norm, eps)
    return np.where(unclamped, (g - y * np.sum(g * y, axis=-1, keepdims=True)) / d, g / d)


# --- losses --------------------------------------------------------------------


@dataclass(frozen=True)
class LossOp:
    """One loss of ``Loss``: numpy forward and gradient over a batch ``y, t`` of shape (B, n).

    ``forward`` returns the loss of the batch as PsyNeuLink computes it for one
    minibatch; ``grad`` its derivative with respect to ``y``.
    """

    name: str  #: the ``Loss`` member
    torch_name: str  #: the torch.nn loss class PsyNeuLink uses
    forward: Callable[[Array, Array], float]
    grad: Callable[[Array, Array], Array]
    notes: str = ""


LOSSES: dict[str, LossOp] = {}


def register_loss(op: LossOp) -> LossOp:
    if op.name in LOSSES:
        raise ValueError(f"loss {op.name} registered twice")
    LOSSES[op.name] = op
    return op


#: Loss names PsyNeuLink also accepts for the same loss.
LOSS_ALIASES = MappingProxyType({"KL": "KL_DIV"})


def loss_op(name: str) -> LossOp:
    key = LOSS_ALIASES.get(name.upper(), name.upper())
    if key in ("L0", "SUM"):
        raise UnsupportedError(f"Loss.{key} is not supported for learning (nor is it in PsyNeuLink 0.21); "
                               f"use one of {', '.join(LOSSES)}")
    if key not in LOSSES:
        raise UnsupportedError(f"unknown loss {name!r}; supported: {', '.join(LOSSES)}")
    return LOSSES[key]


def _mean_n(y: Array) -> float:
    return float(y.size)


def _log_softmax(y: Array) -> Array:
    z = y - np.max(y, axis=-1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


# Each loss is the torch.nn loss that PsyNeuLink 0.21's PyTorch mode applies to the
# (B, n) batch of one minibatch, with PsyNeuLink's reduction (measured: L1, KL_DIV,
# POISSON_NLL and NLL are sum-reduced, MSE and BINARY_CROSS_ENTROPY mean-reduced).
# CROSS_ENTROPY and NLL are computed as they are meant to be; PsyNeuLink 0.21's own
# are broken (its CROSS_ENTROPY is identically 0, its NLL raises), see the README.
for _loss in [
    LossOp("MSE", "MSELoss()",
           lambda y, t: float(np.mean((y - t) ** 2)),
           lambda y, t: 2.0 * (y - t) / _mean_n(y)),
    LossOp("SSE", "MSELoss(reduction='sum')",
           lambda y, t: float(np.sum((y - t) ** 2)),
           lambda y, t: 2.0 * (y - t)),
    LossOp("L1", "L1Loss(reduction='sum')",
           lambda y, t: float(np.sum(np.abs(y - t))),
           lambda y, t: np.sign(y - t)),
    LossOp("CROSS_ENTROPY", "CrossEntropyLoss()",
           lambda y, t: float(np.mean(-np.sum(t * _log_softmax(y), axis=-1))),
           lambda y, t: (np.exp(_log_softmax(y)) * np.sum(t, axis=-1, keepdims=True) - t) / y.shape[0],
           "the output is taken as logits, targets as class probabilities; mean over the minibatch"),
    LossOp("BINARY_CROSS_ENTROPY", "BCELoss()",
           lambda y, t: float(np.mean(-(t * np.maximum(np.log(y), -100.0)
                                        + (1 - t) * np.maximum(np.log(1 - y), -100.0)))),
           lambda y, t: (y - t) / np.maximum(y * (1 - y), 1e-12) / _mean_n(y),
           "outputs must lie in (0, 1)"),
    LossOp("KL_DIV", "KLDivLoss(reduction='sum')",
           lambda y, t: float(np.sum(np.where(t > 0, t * (np.log(np.where(t > 0, t, 1.0)) - y), 0.0))),
           lambda y, t: -t,
           "the output is taken as log-probabilities"),
    LossOp("NLL", "NLLLoss(reduction='sum')",
           lambda y, t: float(-np.sum(t * y)),
           lambda y, t: -t,
           "the output is taken as log-probabilities, targets one-hot (or class probabilities)"),
    LossOp("POISSON_NLL", "PoissonNLLLoss(reduction='sum')",
           lambda y, t: float(np.sum(np.exp(y) - t * y)),
           lambda y, t: np.exp(y) - t,
           "log_input=True: the output is the log rate"),
    # torch.nn.SoftMarginLoss given as loss_spec (mdfx's names; PsyNeuLink's Loss has none)
    LossOp("SOFT_MARGIN", "SoftMarginLoss()",
           lambda y, t: float(np.mean(np.logaddexp(0.0, -t * y))),
           lambda y, t: -t / (1.0 + np.exp(t * y)) / _mean_n(y),
           "targets are -1 or 1; mean over every element"),
    LossOp("SOFT_MARGIN_SUM", "SoftMarginLoss(reduction='sum')",
           lambda y, t: float(np.sum(np.logaddexp(0.0, -t * y))),
           lambda y, t: -t / (1.0 + np.exp(t * y)),
           "targets are -1 or 1"),
]:
    register_loss(_loss)


# --- optimizers ------------------------------------------------------------------


def sgd_step(w: Array, g: Array, state: dict, lr: float, weight_decay: float, step: int) -> None:
    """torch.optim.SGD (no momentum), in place: w -= lr * (g + weight_decay * w)."""
    if weight_decay:
        g = g + weight_decay * w
    w -= lr * g


def adam_step(w: Array, g: Array, state: dict, lr: float, weight_decay: float, step: int,
              beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
    """torch.optim.Adam (L2 weight decay added to the gradient), in place; ``step`` counts from 1."""
    if weight_decay:
        g = g + weight_decay * w
    m = state.setdefault("m", np.zeros_like(w))
    v = state.setdefault("v", np.zeros_like(w))
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    bias1 = 1 - beta1**step
    bias2 = 1 - beta2**step
    w -= (lr / bias1) * m / (np.sqrt(v) / np.sqrt(bias2) + eps)


@dataclass(frozen=True)
class OptimizerOp:
    """An optimizer: its torch class, hyper-parameters (torch's defaults) and numpy step."""

    name: str
    torch_name: str
    step: Callable[..., None]
    hyper: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))


OPTIMIZERS = MappingProxyType({
    "sgd": OptimizerOp("sgd", "SGD", sgd_step),
    "adam": OptimizerOp("adam", "Adam", adam_step,
                        MappingProxyType({"beta1": 0.9, "beta2": 0.999, "eps": 1e-8})),
})


def optimizer_op(name: str) -> OptimizerOp:
    key = name.lower()
    if key not in OPTIMIZERS:
        raise UnsupportedError(f"unknown optimizer_type {name!r}; supported: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[key]


# =====================================================================================
# Graph ops: the vocabulary of the op-graph IR (mdfx.schema.graph)
# =====================================================================================
#
# Every op of a :class:`~mdfx.schema.graph.Graph` is one of these. Names are ONNX's
# where ONNX has the op (same inputs, same attributes, same defaults), and
# ``pnl.<Function>`` for PsyNeuLink's transfer functions with their parameters.
# Inputs that ONNX passes as constant tensors (Reshape's shape, Slice's starts,
# Clip's bounds, Pow's exponent, reduction axes) are *attributes* here: importers
# fold them, so no backend ever reads a shape from a tensor.
#
# Tensors are numpy arrays. A *batched* tensor has the batch along axis 0 and its
# shape is written with ``BATCH`` there; a tensor computed only from parameters
# has no batch axis. Axes in attributes are ONNX's (they count the batch axis).
#
# Per op: ``infer(shapes, **attrs) -> shape`` (static shape rule; raises ShapeError
# saying what it expected), ``forward(xs, **attrs) -> y`` (numpy, the spec) and
# ``vjp(xs, y, g, **attrs) -> [dL/dx or None per input]``. ``vjp`` None: the op takes
# no gradient (ArgMax, the ai.onnx.ml tails); such ops may only feed outputs.

BATCH = -1  #: the batch axis in a static shape
REQUIRED = object()  #: an attribute default meaning "must be given"
Shape = tuple[int, ...]


class ShapeError(ValueError):
    """A shape rule's complaint; the graph builder adds the node and the op."""


@dataclass(frozen=True)
class GradStep:
    """One graph op of a gradient written in graph ops: ``out = op(*inputs, **attrs)``.

    Inputs name the op's inputs ``x0``, ``x1``..., its output ``y``, the incoming
    gradient ``g`` (dL/dy) or an earlier step's ``out``; a float is a scalar constant.
    """

    out: str
    op: str
    inputs: tuple[str | float, ...]
    attrs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


#: ``grad(**attrs) -> (steps, grads)``: an op's VJP written in graph ops; ``grads`` names, per
#: input, the step whose output is that input's gradient (None: the input takes none).
GradRule = Callable[..., tuple[tuple[GradStep, ...], tuple[str | None, ...]]]


@dataclass(frozen=True)
class GraphOp:
    """One op of the graph IR (see the section comment above)."""

    name: str
    inputs: tuple[str, ...]  #: input names; a trailing ``?`` marks an optional input
    attrs: MappingProxyType  #: attribute -> default (:data:`REQUIRED`: must be given)
    infer: Callable[..., Shape]
    forward: Callable[..., Any]
    vjp: Callable[..., list[Any]] | None
    elementwise: bool = False  #: unary elementwise (the LLVM backend may fuse these)
    expr: str | None = None  #: elementwise forward in ``x`` and the attributes (for codegen / MDF)
    dexpr: str | None = None  #: dy/dx in ``x``, ``y`` and the attributes
    notes: str = ""
    #: PsyNeuLink transfer functions only (``pnl.*``): the PsyNeuLink Function class ...
    pnl_name: str | None = None
    #: ... the modeci-mdf standard function that computes it exactly, if one does ...
    mdf_function: str | None = None
    #: the main ONNX operator the op's export writes and its import reads, where it is not the op's
    #: own name (``pnl.Logistic``: Sigmoid; ``CastLabel``: Cast)
    onnx_op: str | None = None
    #: the VJP written in graph ops (unary ops only), from which the LLVM backend generates the
    #: backward pass; it computes what ``vjp`` does, operation by operation (tests check it)
    grad: GradRule | None = None

    @property
    def transfer_key(self) -> str | None:
        """A transfer function's key in a Composition and its MDF (``"logistic"``); None for other ops."""
        return None if self.pnl_name is None else self.pnl_name.lower()

    @property
    def min_inputs(self) -> int:
        return sum(1 for i in self.inputs if not i.endswith("?"))

    def fill(self, given: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """Attributes with defaults filled in, once (STYLE: defaults come from the schema)."""
        unknown = set(given) - set(self.attrs)
        if unknown:
            raise UnsupportedError(f"{where}{self.name} has no attribute {', '.join(sorted(unknown))}; "
                                   f"its attributes are {', '.join(self.attrs) or '(none)'}")
        out = {}
        for k, default in self.attrs.items():
            if k in given:
                out[k] = given[k]
            elif default is REQUIRED:
                raise UnsupportedError(f"{where}{self.name} needs attribute {k!r}")
            else:
                out[k] = default
        return out


GRAPH_OPS: dict[str, GraphOp] = {}


def register_graph_op(op: GraphOp) -> GraphOp:
    if op.name in GRAPH_OPS:
        raise ValueError(f"graph op {op.name} registered twice")
    GRAPH_OPS[op.name] = op
    return op


def graph_op(name: str) -> GraphOp:
    """Look up a graph op; the error lists what exists."""
    if name not in GRAPH_OPS:
        raise UnsupportedError(f"unknown op {name!r}; the graph IR has: {', '.join(sorted(GRAPH_OPS))}")
    return GRAPH_OPS[name]


def run_grad(op: GraphOp, xs: list[Array], y: Array, g: Array, **attrs: Any) -> list[Array | None]:
    """``op``'s gradient computed from its :attr:`GraphOp.grad` steps with each step's numpy forward."""
    assert op.grad is not None, f"{op.name} has no gradient in graph ops"
    steps, grads = op.grad(**attrs)
    env: dict[str, Array] = {f"x{i}": x for i, x in enumerate(xs)} | {"y": y, "g": g}
    for st in steps:
        args = [np.asarray(t, dtype=g.dtype) if isinstance(t, float) else env[t] for t in st.inputs]
        sub = graph_op(st.op)
        env[st.out] = sub.forward(args, **sub.fill(st.attrs, f"{op.name} gradient step {st.out!r}: "))
    return [None if name is None else env[name] for name in grads]


# --- shape helpers ----------------------------------------------------------------------


def _fmt(shape: Shape | None) -> str:
    if shape is None:
        return "(none)"
    return "(" + ", ".join("batch" if d == BATCH else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def broadcast_shapes(*shapes: Shape) -> Shape:
    """numpy broadcasting where ``BATCH`` matches only ``BATCH`` or 1."""
    rank = max(len(s) for s in shapes)
    out = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ShapeError(f"shapes {' and '.join(_fmt(s) for s in shapes)} do not broadcast")
        out.append(dims.pop() if dims else 1)
    if BATCH in out and out.index(BATCH) != 0:
        raise ShapeError(f"broadcasting {' and '.join(_fmt(s) for s in shapes)} would move the batch axis "
                         "off axis 0")
    return tuple(out)


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} is out of range for rank {rank}")
    return axis % rank


def _keeps_batch(x: Shape, axis: int, what: str) -> None:
    if x and x[0] == BATCH and axis == 0:
        raise ShapeError(f"{what} over axis 0 would mix the samples of a batch; mdfx keeps the batch on "
                         "axis 0 (use a feature axis)")


def unbroadcast(g: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``g`` down to ``shape``: the VJP of numpy broadcasting."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _same(shapes: list[Shape | None], **_: Any) -> Shape:
    return shapes[0]


def _bcast(shapes: list[Shape | None], **_: Any) -> Shape:
    return broadcast_shapes(*[s for s in shapes if s is not None])


# --- elementwise -------------------------------------------------------------------------


def _binary(name: str, fwd: Callable[[Array, Array], Array],
            grads: Callable[[Array, Array, Array, Array], tuple[Array, Array]]) -> GraphOp:
    def vjp(xs: list[Array], y: Array, g: Array) -> list[Array]:
        a, b = xs
        ga, gb = grads(a, b, y, g)
        return [unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)]

    return GraphOp(name, ("A", "B"), MappingProxyType({}), _bcast, lambda xs: fwd(xs[0], xs[1]), vjp)


for _b in [
    _binary("Add", np.add, lambda a, b, y, g: (g, g)),
    _binary("Sub", np.subtract, lambda a, b, y, g: (g, -g)),
    _binary("Mul", np.multiply, lambda a, b, y, g: (g * b, g * a)),
    _binary("Div", np.divide, lambda a, b, y, g: (g / b, -g * a / (b * b))),
]:
    register_graph_op(_b)


def _unary(name: str, fwd: Callable[..., Array], der: Callable[..., Array] | None,
           attrs: dict[str, Any] | None = None, expr: str | None = None, dexpr: str | None = None,
           notes: str = "", vjp: Callable[..., list[Any]] | None = None, x: str = "X") -> GraphOp:
    """An elementwise op ``y = fwd(x, **attrs)`` with ``dy/dx = der(x, y, **attrs)``; ``x`` is the
    input's name in ONNX's spelling (``X`` or ``input``), which the MDF writer's ``onnx::`` args use."""
    def default_vjp(xs: list[Array], y: Array, g: Array, **a: Any) -> list[Array]:
        return [g * der(xs[0], y, **a)]

    return GraphOp(name, (x,), MappingProxyType(attrs or {}), _same,
                   lambda xs, **a: fwd(xs[0], **a), vjp or (default_vjp if der else None),
                   elementwise=True, expr=expr, dexpr=dexpr, notes=notes)


def _erf(x: Array) -> Array:
    from math import erf

    return np.vectorize(erf, otypes=[np.float64])(x) if x.size else x.copy()


def _gelu(x: Array, approximate: str = "none") -> Array:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))


def _d_gelu(x: Array, y: Array, approximate: str = "none") -> Array:
    if approximate == "tanh":
        k = np.sqrt(2.0 / np.pi)
        inner = k * (x + 0.044715 * x**3)
        t = np.tanh(inner)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3 * 0.044715 * x * x)
    return 0.5 * (1.0 + _erf(x / np.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def _softplus(x: Array) -> Array:
    return np.logaddexp(0.0, x)


def _sigmoid(x: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-x))


_SELU_ALPHA = 1.67326319217681884765625
_SELU_GAMMA = 1.05070102214813232421875

for _u in [
    _unary("Identity", lambda x: x.copy(), lambda x, y: np.ones_like(x), expr="x", dexpr="1 + 0 * x", x="input"),
    _unary("Neg", np.negative, lambda x, y: -np.ones_like(x), expr="-x", dexpr="-1 + 0 * x"),
    _unary("Relu", lambda x: np.where(x > 0, x, 0.0), lambda x, y: np.where(x > 0, 1.0, 0.0),
           expr="where(x > 0, x, 0 * x)", dexpr="where(x > 0, 1 + 0 * x, 0 * x)"),
    _unary("LeakyRelu", lambda x, alpha: np.where(x > 0, x, alpha * x),
           lambda x, y, alpha: np.where(x > 0, 1.0, alpha), {"alpha": 0.01},
           expr="where(x > 0, x, alpha * x)", dexpr="where(x > 0, 1 + 0 * x, alpha + 0 * x)"),
    _unary("Sigmoid", _sigmoid, lambda x, y: y * (1.0 - y), expr="1 / (1 + exp(-x))", dexpr="y * (1 - y)"),
    _unary("Tanh", np.tanh, lambda x, y: 1.0 - y * y, expr="tanh(x)", dexpr="1 - y * y", x="input"),
    _unary("Exp", np.exp, lambda x, y: y, expr="exp(x)", dexpr="y", x="input"),
    _unary("Log", np.log, lambda x, y: 1.0 / x, expr="log(x)", dexpr="1 / x", x="input"),
    _unary("Sqrt", np.sqrt, lambda x, y: 0.5 / y, expr="sqrt(x)", dexpr="0.5 / y"),
    _unary("Abs", np.abs, lambda x, y: np.sign(x), expr="abs(x)",
           dexpr="where(x > 0, 1 + 0 * x, where(x < 0, -1 + 0 * x, 0 * x))"),
    _unary("Reciprocal", lambda x: 1.0 / x, lambda x, y: -y * y, expr="1 / x", dexpr="-y * y"),
    # erf is not in the expression grammar: backends give Erf's forward a rule of their own
    _unary("Erf", _erf, lambda x, y: 2.0 / np.sqrt(np.pi) * np.exp(-x * x),
           dexpr="1.1283791670955126 * exp(-x * x)", x="input"),
    _unary("Gelu", _gelu, _d_gelu, {"approximate": "none"},
           notes="approximate='none' (erf) or 'tanh', as torch.nn.GELU"),
    _unary("Softplus", _softplus, lambda x, y: _sigmoid(x), expr="log(1 + exp(x))",
           dexpr="1 / (1 + exp(-x))"),
    _unary("Elu", lambda x, alpha: np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0.0)) - 1.0)),
           lambda x, y, alpha: np.where(x > 0, 1.0, y + alpha), {"alpha": 1.0},
           expr="where(x > 0, x, alpha * (exp(x) - 1))", dexpr="where(x > 0, 1 + 0 * x, y + alpha)"),
    _unary("Selu", lambda x, alpha, gamma: gamma * np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0.0)) - 1.0)),
           lambda x, y, alpha, gamma: np.where(x > 0, gamma, y + gamma * alpha),
           {"alpha": _SELU_ALPHA, "gamma": _SELU_GAMMA},
           expr="gamma * where(x > 0, x, alpha * (exp(x) - 1))",
           dexpr="where(x > 0, gamma + 0 * x, y + gamma * alpha)"),
    _unary("HardSigmoid", lambda x, alpha, beta: np.clip(alpha * x + beta, 0.0, 1.0),
           lambda x, y, alpha, beta: np.where((alpha * x + beta > 0) & (alpha * x + beta < 1), alpha, 0.0),
           {"alpha": 0.2, "beta": 0.5},
           expr="minimum(maximum(alpha * x + beta, 0 * x), 1 + 0 * x)",
           dexpr="where(alpha * x + beta > 0, where(alpha * x + beta < 1, alpha + 0 * x, 0 * x), 0 * x)"),
    _unary("Clip", lambda x, min, max: np.clip(x, min, max),
           lambda x, y, min, max: np.where((x >= min) & (x <= max), 1.0, 0.0),
           {"min": -np.inf, "max": np.inf},
           expr="minimum(maximum(x, min + 0 * x), max + 0 * x)",
           dexpr="where(x >= min, where(x <= max, 1 + 0 * x, 0 * x), 0 * x)",
           notes="bounds are attributes (folded from ONNX's constant inputs); gradient 1 inside [min, max] "
                 "as torch.clamp", x="input"),
    _unary("Pow", lambda x, exponent: np.power(x, exponent),
           lambda x, y, exponent: exponent * np.power(x, exponent - 1.0), {"exponent": REQUIRED},
           expr="x ** exponent", dexpr="exponent * x ** (exponent - 1)",
           notes="the exponent is a constant (an attribute); a computed exponent is refused"),
    _unary("Cast", lambda x, to: x.copy(), lambda x, y, to: np.ones_like(x), {"to": 11},
           expr="x", dexpr="1 + 0 * x",
           notes="float to float only; the graph computes in one float dtype, so Cast changes nothing",
           x="input"),
    _unary("Dropout", lambda x, ratio: x.copy(), lambda x, y, ratio: np.ones_like(x), {"ratio": 0.5},
           expr="x", dexpr="1 + 0 * x",
           notes="identity, at inference and in training alike: mdfx trains deterministically, as the "
                 "original module in eval() mode (no random masks)", x="data"),
]:
    register_graph_op(_u)


# --- gradients written in graph ops (GraphOp.grad) ---------------------------------------------


def _softmax_grad(axis: int, gain: float | None = None) -> tuple[tuple[GradStep, ...], tuple[str]]:
    """y * (g - sum(g * y)) over ``axis`` (PsyNeuLink's: (gain * y) * (...)), as the numpy VJPs."""
    steps = [GradStep("gy", "Mul", ("g", "y")),
             GradStep("s", "ReduceSum", ("gy",), MappingProxyType({"axes": [axis], "keepdims": 1})),
             GradStep("d", "Sub", ("g", "s"))]
    if gain is None:
        return (*steps, GradStep("dx", "Mul", ("y", "d"))), ("dx",)
    return (*steps, GradStep("ky", "Mul", (float(gain), "y")), GradStep("dx", "Mul", ("ky", "d"))), ("dx",)


def _log_softmax_grad(axis: int) -> tuple[tuple[GradStep, ...], tuple[str]]:
    """g - exp(y) * sum(g) over ``axis``."""
    return (GradStep("s", "ReduceSum", ("g",), MappingProxyType({"axes": [axis], "keepdims": 1})),
            GradStep("p", "Exp", ("y",)),
            GradStep("t", "Mul", ("p", "s")),
            GradStep("dx", "Sub", ("g", "t"))), ("dx",)



# --- PsyNeuLink's transfer functions: graph ops ``pnl.<Function>`` with PsyNeuLink's parameters --------


def _pnl_op(pnl: str, params: dict[str, float], mdf: str | None, onnx: str, fwd: Callable[..., Array],
            der: Callable[..., Array] | None, expr: str | None = None, dexpr: str | None = None,
            vjp: Callable[..., Array] | None = None, grad: GradRule | None = None) -> GraphOp:
    """``pnl.<pnl>``: an elementwise ``y = fwd(x, **params)`` with ``dy/dx = der(x, y, **params)``, or
    (``vjp`` given) an op over the last axis with that vector-Jacobian product."""
    def graph_vjp(xs: list[Array], y: Array, g: Array, **p: float) -> list[Array]:
        return [vjp(xs[0], y, g, **p) if vjp is not None else g * der(xs[0], y, **p)]

    return GraphOp(f"pnl.{pnl}", ("X",), MappingProxyType(params), _same, lambda xs, **p: fwd(xs[0], **p),
                   graph_vjp, elementwise=vjp is None, expr=expr, dexpr=dexpr,
                   notes=f"PsyNeuLink's {pnl}" + (" over the last axis" if vjp is not None else ""),
                   pnl_name=pnl, mdf_function=mdf, onnx_op=onnx, grad=grad)


for _p in [
    _pnl_op("Linear", {"slope": 1.0, "intercept": 0.0, "scale": 1.0, "offset": 0.0}, "linear", "Add",
            linear, d_linear, "scale * (slope * x + intercept) + offset", "scale * slope + 0 * x"),
    _pnl_op("Logistic", {"gain": 1.0, "bias": 0.0, "x_0": 0.0, "offset": 0.0, "scale": 1.0}, "logistic",
            "Sigmoid", logistic, d_logistic, "scale / (1 + exp(-gain * (x + bias - x_0))) + offset",
            "gain * scale * ((y - offset) / scale) * (1 - (y - offset) / scale)"),
    _pnl_op("ReLU", {"gain": 1.0, "bias": 0.0, "leak": 0.0}, "Relu", "LeakyRelu", relu, d_relu,
            "where(x - bias > 0, gain * (x - bias), leak * gain * (x - bias))",
            "where(x - bias > 0, gain + 0 * x, leak * gain + 0 * x)"),
    _pnl_op("Tanh", {"gain": 1.0, "bias": 0.0, "x_0": 0.0, "offset": 0.0, "scale": 1.0}, "tanh", "Tanh",
            tanh, d_tanh, "scale * tanh(gain * (x + bias - x_0) + offset)", "gain * scale * (1 - (y / scale) ** 2)"),
    _pnl_op("Exponential", {"rate": 1.0, "bias": 0.0, "scale": 1.0, "offset": 0.0}, "exponential", "Exp",
            exponential, d_exponential, "scale * exp(rate * x + bias) + offset", "rate * (y - offset)"),
    _pnl_op("Identity", {}, None, "Identity", identity, d_identity, "x", "1 + 0 * x"),
    _pnl_op("SoftMax", {"gain": 1.0}, None, "Softmax", softmax, None, vjp=vjp_softmax,
            grad=lambda gain: _softmax_grad(-1, gain)),
    # PsyNeuLink 0.21's defaults (measured): eps=1e-12, per_item=True; the LLVM backend has a
    # hand-written backward for it (no graph-op gradient)
    _pnl_op("Normalize", {"eps": 1e-12, "per_item": 1.0}, None, "ReduceSum", normalize, None, vjp=vjp_normalize),
]:
    register_graph_op(_p)




def transfer_ops() -> list[GraphOp]:
    """The graph ops that are PsyNeuLink transfer functions (``pnl.*``), in the table's order."""
    return [op for op in GRAPH_OPS.values() if op.pnl_name is not None]


def transfer_op(name: str) -> GraphOp:
    """A PsyNeuLink transfer function's graph op, by graph op name (``"pnl.Logistic"``), PsyNeuLink
    class name (``"Logistic"``) or a Composition's key (``"logistic"``); the error lists what exists."""
    for op in transfer_ops():
        if name in (op.name, op.pnl_name, op.transfer_key):
            return op
    known = ", ".join(str(op.pnl_name) for op in transfer_ops())
    raise UnsupportedError(f"unknown transfer function {name!r}; supported: {known}")


def fill_params(op: GraphOp, given: Mapping[str, float]) -> dict[str, float]:
    """A transfer function's parameters as floats, defaults filled in once, at the boundary
    (STYLE: defaults from the schema); the error speaks PsyNeuLink's words (parameters)."""
    unknown = set(given) - set(op.attrs)
    if unknown:
        raise UnsupportedError(
            f"{op.pnl_name} has no parameter {', '.join(sorted(unknown))}; "
            f"its parameters are {', '.join(op.attrs) or '(none)'}"
        )
    out = {}
    for k, default in op.attrs.items():
        value = given.get(k, default)
        try:
            out[k] = float(value)
        except (TypeError, ValueError):  # a list, a dict or text where a number is meant
            raise UnsupportedError(f"{op.pnl_name} parameter {k!r} must be a number, but holds a "
                                   f"{type(value).__name__} ({str(value)[:40]!r})") from None
    return out


# --- softmax family ----------------------------------------------------------------------


def _softmax_infer(shapes: list[Shape | None], axis: int) -> Shape:
    x = shapes[0]
    _keeps_batch(x, _axis(axis, len(x)), "Softmax")
    return x


def _np_softmax(x: Array, axis: int) -> Array:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _np_log_softmax(x: Array, axis: int) -> Array:
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


register_graph_op(GraphOp(
    "Softmax", ("input",), MappingProxyType({"axis": -1}), _softmax_infer,
    lambda xs, axis: _np_softmax(xs[0], axis),
    lambda xs, y, g, axis: [y * (g - np.sum(g * y, axis=axis, keepdims=True))], grad=_softmax_grad))
register_graph_op(GraphOp(
    "LogSoftmax", ("input",), MappingProxyType({"axis": -1}), _softmax_infer,
    lambda xs, axis: _np_log_softmax(xs[0], axis),
    lambda xs, y, g, axis: [g - np.exp(y) * np.sum(g, axis=axis, keepdims=True)], grad=_log_softmax_grad))


# --- products ----------------------------------------------------------------------------


def _matmul_infer(shapes: list[Shape | None]) -> Shape:
    a, b = shapes
    if len(a) < 1 or len(b) < 1:
        raise ShapeError(f"MatMul of {_fmt(a)} and {_fmt(b)}: scalars do not multiply as matrices")
    if len(b) == 1:
        if a[-1] != b[0]:
            raise ShapeError(f"MatMul of {_fmt(a)} and {_fmt(b)}: inner dimensions {a[-1]} and {b[0]} differ")
        return a[:-1]
    if len(a) == 1:
        if a[0] != b[-2]:
            raise ShapeError(f"MatMul of {_fmt(a)} and {_fmt(b)}: inner dimensions {a[0]} and {b[-2]} differ")
        return b[:-2] + b[-1:]
    if a[-1] != b[-2]:
        raise ShapeError(f"MatMul of {_fmt(a)} and {_fmt(b)}: inner dimensions {a[-1]} and {b[-2]} differ; "
                         f"expected B of shape ({a[-1]}, n)")
    if b[0] == BATCH and len(b) == 2:
        raise ShapeError(f"MatMul of {_fmt(a)} and {_fmt(b)}: B's rows are samples of the batch; the "
                         "product would mix the samples of a batch")
    lead = broadcast_shapes(a[:-2], b[:-2]) if len(a) > 2 or len(b) > 2 else ()
    return lead + (a[-2], b[-1])


def _matmul_vjp(xs: list[Array], y: Array, g: Array) -> list[Array]:
    a, b = xs
    if b.ndim == 1:
        return [unbroadcast(g[..., None] * b, a.shape), unbroadcast((a * g[..., None]), a.shape[:-1] + b.shape)
                .reshape(-1, b.shape[0]).sum(axis=0)]
    if a.ndim == 1:
        ga = (g[..., None, :] * b).sum(axis=-1)
        return [unbroadcast(ga, a.shape), unbroadcast(a[:, None] * g[..., None, :], b.shape)]
    ga = g @ np.swapaxes(b, -1, -2)
    gb = np.swapaxes(a, -1, -2) @ g
    return [unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)]


register_graph_op(GraphOp("MatMul", ("A", "B"), MappingProxyType({}), _matmul_infer,
                          lambda xs: xs[0] @ xs[1], _matmul_vjp))


def _gemm_infer(shapes: list[Shape | None], alpha: float, beta: float, transA: int, transB: int) -> Shape:
    a, b, c = (shapes + [None])[:3]
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        raise ShapeError(f"Gemm takes 2-D A and B, got {_fmt(a)} and {_fmt(b)}")
    a = a[::-1] if transA else a
    b = b[::-1] if transB else b
    if a[1] != b[0]:
        raise ShapeError(f"Gemm: A is {_fmt(a)} and B is {_fmt(b)} after transA={transA}, transB={transB}; "
                         f"inner dimensions {a[1]} and {b[0]} differ")
    if BATCH in b or (transA and a[0] == BATCH) or a[1] == BATCH:
        raise ShapeError("Gemm: the batch would not stay on axis 0 of the result (transA=1 of a batched A, or "
                         "a batched B)")
    out = (a[0], b[1])
    if c is not None and broadcast_shapes(out, c) != out:
        raise ShapeError(f"Gemm: C of shape {_fmt(c)} does not broadcast to the result {_fmt(out)}")
    return out


def _gemm(xs: list[Array], alpha: float, beta: float, transA: int, transB: int) -> Array:
    a, b, c = (xs + [None])[:3]
    y = alpha * ((a.T if transA else a) @ (b.T if transB else b))
    return y if c is None else y + beta * c


def _gemm_vjp(xs: list[Array], y: Array, g: Array, alpha: float, beta: float, transA: int, transB: int
              ) -> list[Array | None]:
    a, b, c = (xs + [None])[:3]
    a2 = a.T if transA else a
    b2 = b.T if transB else b
    ga2 = alpha * (g @ b2.T)
    gb2 = alpha * (a2.T @ g)
    out: list[Array | None] = [ga2.T if transA else ga2, gb2.T if transB else gb2]
    if len(xs) > 2:
        out.append(None if c is None else unbroadcast(beta * g, c.shape))
    return out


register_graph_op(GraphOp("Gemm", ("A", "B", "C?"),
                          MappingProxyType({"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}),
                          _gemm_infer, _gemm, _gemm_vjp))


# --- shape ops (the batch stays on axis 0) -----------------------------------------------------


def _concat_infer(shapes: list[Shape | None], axis: int) -> Shape:
    rank = len(shapes[0])
    ax = _axis(axis, rank)
    _keeps_batch(shapes[0], ax, "Concat")
    for s in shapes[1:]:
        if len(s) != rank or any(d != e for i, (d, e) in enumerate(zip(s, shapes[0], strict=True)) if i != ax):
            raise ShapeError(f"Concat on axis {axis}: shapes {', '.join(map(_fmt, shapes))} differ off that axis")
    return shapes[0][:ax] + (sum(s[ax] for s in shapes),) + shapes[0][ax + 1:]


def _concat_vjp(xs: list[Array], y: Array, g: Array, axis: int) -> list[Array]:
    ax = axis % y.ndim
    cuts = np.cumsum([x.shape[ax] for x in xs])[:-1]
    return list(np.split(g, cuts, axis=ax))


register_graph_op(GraphOp("Concat", ("inputs...",), MappingProxyType({"axis": REQUIRED}), _concat_infer,
                          lambda xs, axis: np.concatenate(xs, axis=axis), _concat_vjp,
                          notes="any number of inputs, all batched or all not"))


def _slices(shape: tuple[int, ...], starts: list[int], ends: list[int], axes: list[int] | None,
            steps: list[int] | None) -> tuple[slice, ...]:
    index = [slice(None)] * len(shape)
    for i, ax in enumerate(axes if axes is not None else range(len(starts))):
        index[ax % len(shape)] = slice(int(starts[i]), int(ends[i]), int(steps[i]) if steps else 1)
    return tuple(index)


def _slice_infer(shapes: list[Shape | None], starts: list[int], ends: list[int], axes: list[int] | None,
                 steps: list[int] | None) -> Shape:
    x = shapes[0]
    out = list(x)
    for i, ax in enumerate(axes if axes is not None else range(len(starts))):
        a = _axis(ax, len(x))
        _keeps_batch(x, a, "Slice")
        step = int(steps[i]) if steps else 1
        if step == 0:
            raise ShapeError("Slice step 0")
        out[a] = len(range(*slice(int(starts[i]), int(ends[i]), step).indices(x[a])))
        if out[a] == 0:
            raise ShapeError(f"Slice [{starts[i]}:{ends[i]}:{step}] of axis {ax} (size {x[a]}) is empty")
    return tuple(out)


def _slice_vjp(xs: list[Array], y: Array, g: Array, **a: Any) -> list[Array]:
    gx = np.zeros_like(xs[0])
    gx[_slices(xs[0].shape, **a)] = g
    return [gx]


register_graph_op(GraphOp(
    "Slice", ("data",), MappingProxyType({"starts": REQUIRED, "ends": REQUIRED, "axes": None, "steps": None}),
    _slice_infer, lambda xs, **a: xs[0][_slices(xs[0].shape, **a)].copy(), _slice_vjp,
    notes="starts/ends/axes/steps are attributes (folded from ONNX's constant inputs); Split is lowered "
          "to one Slice per output"))


def _reshape_target(x: Shape, shape: list[int], allowzero: int = 0) -> Shape:
    copied = [i for i, v in enumerate(shape) if int(v) == 0 and not allowzero and i >= len(x)]
    if copied:  # 0 copies the input's size on that axis: there must be one
        raise ShapeError(f"Reshape of {_fmt(x)} to {list(shape)}: 0 at position {copied[0]} copies an axis the "
                         f"rank-{len(x)} input does not have")
    target = [x[i] if (int(v) == 0 and not allowzero) else int(v) for i, v in enumerate(shape)]
    known = [d for d in target if d != -1]
    batched = bool(x) and x[0] == BATCH
    if batched:
        if len(target) == 1 and math.prod(x[1:]) != 1:
            raise ShapeError(f"Reshape of {_fmt(x)} to {list(shape)} merges the batch into the features (a file "
                             "traced at batch size 1 does so); mdfx keeps the batch on axis 0")
        if not target or target[0] not in (BATCH,):
            raise ShapeError(f"Reshape of {_fmt(x)} to {list(shape)} does not keep the batch on axis 0 "
                             "(give 0 or -1 for axis 0)")
        rest = target[1:]
        if rest.count(-1) > 1:
            raise ShapeError(f"Reshape to {list(shape)}: more than one -1")
        feats = int(np.prod(x[1:])) if len(x) > 1 else 1
        if -1 in rest:
            k = int(np.prod([d for d in rest if d != -1])) if len(rest) > 1 else 1
            if k == 0 or feats % k:
                raise ShapeError(f"Reshape of {_fmt(x)} to {list(shape)}: {feats} features per sample do not fit")
            rest = [feats // k if d == -1 else d for d in rest]
        if int(np.prod(rest)) != feats:
            raise ShapeError(f"Reshape of {_fmt(x)} to {list(shape)}: {feats} features per sample, the "
                             f"target holds {int(np.prod(rest))}")
        return (BATCH, *rest)
    total = int(np.prod(x))
    if -1 in target:
        k = int(np.prod(known)) if known else 1
        target = [total // k if d == -1 else d for d in target]
    if int(np.prod(target)) != total:
        raise ShapeError(f"Reshape of {_fmt(x)} to {list(shape)}: sizes differ")
    return tuple(target)


def _reshape_infer(shapes: list[Shape | None], shape: list[int], allowzero: int) -> Shape:
    return _reshape_target(shapes[0], shape, allowzero)


def _np_reshape(xs: list[Array], shape: list[int], allowzero: int) -> Array:
    """ONNX Reshape; the graph builder writes a batched tensor's target as ``[0, d1, ...]``."""
    x = xs[0]
    return x.reshape([x.shape[i] if int(v) == 0 and not allowzero else int(v) for i, v in enumerate(shape)])


register_graph_op(GraphOp(
    "Reshape", ("data",), MappingProxyType({"shape": REQUIRED, "allowzero": 0}), _reshape_infer, _np_reshape,
    lambda xs, y, g, **a: [g.reshape(xs[0].shape)],
    notes="a batched tensor keeps its batch: axis 0 of the target is 0 or -1 (the importer rewrites a "
          "fixed batch size there)"))


def _flatten_infer(shapes: list[Shape | None], axis: int) -> Shape:
    x = shapes[0]
    ax = axis % len(x) if axis < 0 else axis
    if x and x[0] == BATCH and ax != 1:
        raise ShapeError(f"Flatten(axis={axis}) of {_fmt(x)} does not keep the batch alone on axis 0 "
                         "(only axis=1 does)")
    head = x[:ax]
    tail = x[ax:]
    return (int(np.prod(head)) if head and BATCH not in head else (BATCH if head else 1),
            int(np.prod(tail)) if tail else 1)


register_graph_op(GraphOp(
    "Flatten", ("input",), MappingProxyType({"axis": 1}), _flatten_infer,
    lambda xs, axis: xs[0].reshape(int(np.prod(xs[0].shape[:axis])), -1),
    lambda xs, y, g, axis: [g.reshape(xs[0].shape)]))


def _squeeze_infer(shapes: list[Shape | None], axes: list[int]) -> Shape:
    x = shapes[0]
    ax = {_axis(a, len(x)) for a in axes}
    for a in ax:
        if x[a] != 1:
            raise ShapeError(f"Squeeze axis {a} of {_fmt(x)} has size {x[a]}, not 1")
    return tuple(d for i, d in enumerate(x) if i not in ax)


def _unsqueeze_infer(shapes: list[Shape | None], axes: list[int]) -> Shape:
    x = shapes[0]
    rank = len(x) + len(axes)
    ax = sorted(_axis(a, rank) for a in axes)
    if x and x[0] == BATCH and 0 in ax:
        raise ShapeError(f"Unsqueeze at axis 0 of {_fmt(x)} would move the batch off axis 0")
    out = list(x)
    for a in ax:
        out.insert(a, 1)
    return tuple(out)


register_graph_op(GraphOp(
    "Squeeze", ("data",), MappingProxyType({"axes": REQUIRED}), _squeeze_infer,
    lambda xs, axes: np.squeeze(xs[0], axis=tuple(axes)),
    lambda xs, y, g, axes: [g.reshape(xs[0].shape)],
    notes="axes are an attribute (folded from ONNX 13's input); the batch axis is never squeezed"))
register_graph_op(GraphOp(
    "Unsqueeze", ("data",), MappingProxyType({"axes": REQUIRED}), _unsqueeze_infer,
    lambda xs, axes: np.expand_dims(xs[0], axis=tuple(axes)),
    lambda xs, y, g, axes: [g.reshape(xs[0].shape)]))


def _transpose_infer(shapes: list[Shape | None], perm: list[int] | None) -> Shape:
    x = shapes[0]
    p = list(range(len(x)))[::-1] if perm is None else [int(i) for i in perm]
    if sorted(p) != list(range(len(x))):
        raise ShapeError(f"Transpose perm {p} is not a permutation of the {len(x)} axes of {_fmt(x)}")
    if x and x[0] == BATCH and p[0] != 0:
        raise ShapeError(f"Transpose perm {p} of {_fmt(x)} moves the batch off axis 0")
    return tuple(x[i] for i in p)


def _perm(x: Array, perm: list[int] | None) -> list[int]:
    return list(range(x.ndim))[::-1] if perm is None else [int(i) for i in perm]


register_graph_op(GraphOp(
    "Transpose", ("data",), MappingProxyType({"perm": None}), _transpose_infer,
    lambda xs, perm: np.ascontiguousarray(np.transpose(xs[0], _perm(xs[0], perm))),
    lambda xs, y, g, perm: [np.transpose(g, np.argsort(_perm(xs[0], perm)))]))


# --- lookups -----------------------------------------------------------------------------------


def _gather_infer(shapes: list[Shape | None], axis: int) -> Shape:
    data, idx = shapes
    ax = _axis(axis, len(data))
    if data and data[0] == BATCH:
        if idx and idx[0] == BATCH:
            raise ShapeError(f"Gather of batched data {_fmt(data)} by batched indices {_fmt(idx)}: each sample "
                             "would pick from another sample's data; mdfx gathers from a table (a param) or "
                             "by constant indices")
        _keeps_batch(data, ax, "Gather")
    return data[:ax] + idx + data[ax + 1:]


def gather_indices(idx: Array, n: int) -> Array:
    """ONNX Gather's indices as int64 in [0, n): negative ones count from the end.

    Indices reach the backends as floats (one buffer type per kernel) and are
    checked at the data boundary (:func:`mdfx.schema.validate.run_inputs`); the
    check here keeps a direct caller of the numpy rule from reading a wrong row.
    """
    i = np.asarray(idx)
    as_int = i.astype(np.int64)
    if i.dtype.kind == "f" and not np.array_equal(as_int, i):
        raise ShapeError("Gather indices are not whole numbers")
    if as_int.size and (as_int.min() < -n or as_int.max() >= n):
        raise ShapeError(f"Gather indices {int(as_int.min())}..{int(as_int.max())} are out of range for an axis "
                         f"of size {n} (valid: {-n}..{n - 1})")
    return np.where(as_int < 0, as_int + n, as_int)


def _gather(xs: list[Array], axis: int) -> Array:
    data = xs[0]
    ax = axis % data.ndim
    return np.take(data, gather_indices(xs[1], data.shape[ax]), axis=ax)


def _gather_vjp(xs: list[Array], y: Array, g: Array, axis: int) -> list[Array | None]:
    """The gradient scatters into the table: each index adds its output's gradient to its row."""
    data = xs[0]
    ax = axis % data.ndim
    idx = gather_indices(xs[1], data.shape[ax])
    gx = np.zeros(data.shape, dtype=np.float64)
    rows = np.moveaxis(gx, ax, 0)  # a view of gx: (data[ax], *data[:ax], *data[ax+1:])
    # g is (*data[:ax], *idx, *data[ax+1:]); with the index axes first it lines up with rows[idx]
    gy = np.moveaxis(g, list(range(ax, ax + idx.ndim)), list(range(idx.ndim)))
    np.add.at(rows, idx, gy)
    return [gx, None]


register_graph_op(GraphOp(
    "Gather", ("data", "indices"), MappingProxyType({"axis": 0}), _gather_infer, _gather, _gather_vjp,
    notes="an embedding lookup: data is a table (a param), indices integers (an int graph input or a "
          "constant); the gradient scatters into the table; indices take none"))


# --- reductions over feature axes ---------------------------------------------------------


def _reduce_infer(shapes: list[Shape | None], axes: list[int] | None, keepdims: int) -> Shape:
    x = shapes[0]
    ax = set(range(len(x))) if axes is None else {_axis(a, len(x)) for a in axes}
    if x and x[0] == BATCH and 0 in ax:
        raise ShapeError(f"a reduction over axis 0 of {_fmt(x)} would mix the samples of a batch; "
                         "reduce over feature axes (give axes)")
    return tuple(1 if i in ax else d for i, d in enumerate(x) if keepdims or i not in ax)


def _axes(x: Array, axes: list[int] | None) -> tuple[int, ...]:
    return tuple(range(x.ndim)) if axes is None else tuple(int(a) % x.ndim for a in axes)


def _reduce_grad(x: Array, g: Array, axes: list[int] | None, keepdims: int) -> Array:
    if not keepdims:
        g = np.expand_dims(g, _axes(x, axes))
    return np.broadcast_to(g, x.shape)


def _reduce_max_vjp(xs: list[Array], y: Array, g: Array, axes: list[int] | None, keepdims: int) -> list[Array]:
    x = xs[0]
    ym = y if keepdims else np.expand_dims(y, _axes(x, axes))
    mask = (x == ym).astype(x.dtype)
    # ties share the gradient evenly, as torch's amax does
    mask /= mask.sum(axis=_axes(x, axes), keepdims=True)
    return [mask * _reduce_grad(x, g, axes, keepdims)]


_REDUCE_ATTRS = MappingProxyType({"axes": None, "keepdims": 1})
register_graph_op(GraphOp(
    "ReduceSum", ("data",), _REDUCE_ATTRS, _reduce_infer,
    lambda xs, axes, keepdims: np.sum(xs[0], axis=_axes(xs[0], axes), keepdims=bool(keepdims)),
    lambda xs, y, g, axes, keepdims: [np.array(_reduce_grad(xs[0], g, axes, keepdims))]))
register_graph_op(GraphOp(
    "ReduceMean", ("data",), _REDUCE_ATTRS, _reduce_infer,
    lambda xs, axes, keepdims: np.mean(xs[0], axis=_axes(xs[0], axes), keepdims=bool(keepdims)),
    lambda xs, y, g, axes, keepdims: [np.array(_reduce_grad(xs[0], g, axes, keepdims))
                                      * (np.prod([xs[0].shape[a] for a in _axes(xs[0], axes)]) ** -1.0)]))
register_graph_op(GraphOp(
    "ReduceMax", ("data",), _REDUCE_ATTRS, _reduce_infer,
    lambda xs, axes, keepdims: np.max(xs[0], axis=_axes(xs[0], axes), keepdims=bool(keepdims)),
    _reduce_max_vjp, notes="ties share the gradient evenly (torch.amax)"))


# --- normalisation -----------------------------------------------------------------------------


def _layer_norm_infer(shapes: list[Shape | None], axis: int, epsilon: float) -> Shape:
    x = shapes[0]
    ax = _axis(axis, len(x))
    _keeps_batch(x, ax, "LayerNormalization")
    norm = x[ax:]
    for what, s in zip(("Scale", "B"), shapes[1:], strict=False):
        if s is not None and broadcast_shapes(norm, s) != norm:
            raise ShapeError(f"LayerNormalization: {what} of shape {_fmt(s)} does not broadcast to the "
                             f"normalised shape {_fmt(norm)}")
    return x


def _layer_norm(xs: list[Array], axis: int, epsilon: float) -> Array:
    x, scale, bias = (xs + [None, None])[:3]
    ax = tuple(range(axis % x.ndim, x.ndim))
    mu = x.mean(axis=ax, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=ax, keepdims=True)
    y = (x - mu) / np.sqrt(var + epsilon)
    if scale is not None:
        y = y * scale
    return y if bias is None else y + bias


def _layer_norm_vjp(xs: list[Array], y: Array, g: Array, axis: int, epsilon: float) -> list[Array | None]:
    x, scale, bias = (xs + [None, None])[:3]
    ax = tuple(range(axis % x.ndim, x.ndim))
    n = int(np.prod([x.shape[a] for a in ax]))
    mu = x.mean(axis=ax, keepdims=True)
    inv = 1.0 / np.sqrt(((x - mu) ** 2).mean(axis=ax, keepdims=True) + epsilon)
    xhat = (x - mu) * inv
    gh = g * scale if scale is not None else g
    gx = inv * (gh - gh.sum(axis=ax, keepdims=True) / n - xhat * (gh * xhat).sum(axis=ax, keepdims=True) / n)
    out: list[Array | None] = [gx]
    if len(xs) > 1:
        out.append(None if scale is None else unbroadcast(g * xhat, scale.shape))
    if len(xs) > 2:
        out.append(None if bias is None else unbroadcast(g, bias.shape))
    return out


register_graph_op(GraphOp(
    "LayerNormalization", ("X", "Scale?", "B?"), MappingProxyType({"axis": -1, "epsilon": 1e-5}),
    _layer_norm_infer, _layer_norm, _layer_norm_vjp,
    notes="normalises over axes axis..last; scale and bias are the learnable affine parameters"))


def _batch_norm_infer(shapes: list[Shape | None], epsilon: float, momentum: float, training_mode: int) -> Shape:
    x = shapes[0]
    if len(x) < 2:
        raise ShapeError(f"BatchNormalization takes (batch, channels, ...), got {_fmt(x)}")
    for what, s in zip(("scale", "B", "mean", "var"), shapes[1:], strict=True):
        if s != (x[1],):
            raise ShapeError(f"BatchNormalization: {what} has shape {_fmt(s)}; expected ({x[1]},), one per channel")
    if training_mode not in (0, 1):
        raise ShapeError(f"BatchNormalization: training_mode {training_mode!r} is not 0 or 1")
    if not 0.0 <= float(momentum) <= 1.0:
        raise ShapeError(f"BatchNormalization: momentum {momentum!r} is not in [0, 1]")
    return x


def _bn_view(v: Array, x: Array) -> Array:
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def _bn_axes(x: Array) -> tuple[int, ...]:
    return (0, *range(2, x.ndim))


def batch_statistics(x: Array) -> tuple[Array, Array, int]:
    """Per channel: the batch mean, the biased variance (what normalises) and the count."""
    red = _bn_axes(x)
    n = x.size // x.shape[1]
    mean = x.mean(axis=red)
    return mean, ((x - _bn_view(mean, x)) ** 2).mean(axis=red), n


def update_running_statistics(x: Array, mean: Array, var: Array, momentum: float) -> None:
    """torch's BatchNorm update in training, in place: ``running = momentum * running + (1 - momentum) *
    batch`` (ONNX's momentum, 1 - torch's) with the *unbiased* batch variance."""
    bmean, bvar, n = batch_statistics(x)
    mean *= momentum
    mean += (1.0 - momentum) * bmean
    var *= momentum
    var += (1.0 - momentum) * bvar * (n / max(n - 1, 1))


def _batch_norm(xs: list[Array], epsilon: float, momentum: float, training_mode: int) -> Array:
    x, scale, bias, mean, var = xs
    if training_mode:  # in learn(): the batch's own statistics (the reference passes 0 in run())
        mean, var, _ = batch_statistics(x)
    inv = 1.0 / np.sqrt(var + epsilon)
    return (x - _bn_view(mean, x)) * _bn_view(inv * scale, x) + _bn_view(bias, x)


def _batch_norm_vjp(xs: list[Array], y: Array, g: Array, epsilon: float, momentum: float, training_mode: int
                    ) -> list[Array | None]:
    x, scale, bias, mean, var = xs
    red = _bn_axes(x)
    if training_mode:  # the statistics depend on x: the full BatchNorm gradient
        mean, var, n = batch_statistics(x)
        inv = 1.0 / np.sqrt(var + epsilon)
        xhat = (x - _bn_view(mean, x)) * _bn_view(inv, x)
        gh = g * _bn_view(scale, x)
        gx = _bn_view(inv, x) * (gh - _bn_view(gh.sum(axis=red) / n, x)
                                 - xhat * _bn_view((gh * xhat).sum(axis=red) / n, x))
        return [gx, (g * xhat).sum(axis=red), g.sum(axis=red), None, None]
    inv = 1.0 / np.sqrt(var + epsilon)
    xhat = (x - _bn_view(mean, x)) * _bn_view(inv, x)
    return [g * _bn_view(inv * scale, x), (g * xhat).sum(axis=red), g.sum(axis=red), None, None]


register_graph_op(GraphOp(
    "BatchNormalization", ("X", "scale", "B", "input_mean", "input_var"),
    MappingProxyType({"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0}), _batch_norm_infer, _batch_norm,
    _batch_norm_vjp,
    notes="training_mode=0: the running statistics are frozen constants, scale and bias train (a torch "
          "BatchNorm in eval()). training_mode=1: learn() normalises with each minibatch's statistics and "
          "updates the running ones (momentum is ONNX's, 1 - torch's; unbiased variance), as a torch BatchNorm "
          "in train(); run() uses the running statistics (eval())"))


# --- outputs that run but take no gradient ---------------------------------------------------


def _argmax_infer(shapes: list[Shape | None], axis: int, keepdims: int, select_last_index: int) -> Shape:
    x = shapes[0]
    ax = _axis(axis, len(x))
    _keeps_batch(x, ax, "ArgMax")
    return tuple(1 if i == ax else d for i, d in enumerate(x) if keepdims or i != ax)


def _argmax(xs: list[Array], axis: int, keepdims: int, select_last_index: int) -> Array:
    x = xs[0]
    if select_last_index:
        flipped = np.flip(x, axis=axis)
        idx = x.shape[axis] - 1 - np.argmax(flipped, axis=axis)
    else:
        idx = np.argmax(x, axis=axis)
    idx = idx.astype(np.int64)
    return np.expand_dims(idx, axis) if keepdims else idx


register_graph_op(GraphOp(
    "ArgMax", ("data",), MappingProxyType({"axis": 0, "keepdims": 1, "select_last_index": 0}),
    _argmax_infer, _argmax, None, notes="int64 indices; takes no gradient"))


def _afe_shape(shapes: list[Shape | None]) -> Shape:
    x, idx = shapes
    if x and x[0] == BATCH:  # features of a batch: (batch, k)
        return (BATCH, int(np.prod([d for d in idx if d != BATCH])) if idx else 1)
    return idx  # a table (class labels) looked up by batched indices


def _afe_forward(xs: list[Array]) -> Array:
    x, idx = xs
    if x.ndim == 1 or (x.ndim == 2 and idx.ndim >= 1 and idx.shape[0] != x.shape[0]):
        return np.take(x.ravel() if x.ndim > 1 else x, idx.astype(np.int64))
    return np.take(x, idx.astype(np.int64).ravel(), axis=-1)


register_graph_op(GraphOp(
    "ai.onnx.ml.ArrayFeatureExtractor", ("X", "Y"), MappingProxyType({}), _afe_shape, _afe_forward, None,
    notes="skl2onnx's label lookup (classes[argmax]); values may be int64 or strings; takes no gradient"))


def _zipmap_shape(shapes: list[Shape | None], classlabels_int64s: Any, classlabels_strings: Any) -> Shape:
    return (shapes[0][0],)


def _zipmap(xs: list[Array], classlabels_int64s: Any, classlabels_strings: Any) -> Any:
    labels = list(classlabels_int64s) if classlabels_int64s is not None else list(classlabels_strings)
    out = np.empty(len(xs[0]), dtype=object)
    out[:] = [dict(zip(labels, map(float, row), strict=True)) for row in xs[0]]
    return out


register_graph_op(GraphOp(
    "ai.onnx.ml.ZipMap", ("X",), MappingProxyType({"classlabels_int64s": None, "classlabels_strings": None}),
    _zipmap_shape, _zipmap, None,
    notes="one {label: probability} dict per sample, as onnxruntime returns it; takes no gradient"))


def _cast_label(shapes: list[Shape | None], to: int) -> Shape:
    return shapes[0]


#: ONNX element types CastLabel casts to, as numpy types (int to int wraps as ONNX says; float to an
#: int type out of its range is undefined in ONNX). Other targets (INT4, UINT4, float8...) are refused
#: at import, since numpy has no type that wraps or saturates as they do.
CAST_LABEL_TYPES: dict[int, Any] = {7: np.int64, 6: np.int32, 5: np.int16, 3: np.int8, 2: np.uint8, 4: np.uint16,
                                    12: np.uint32, 13: np.uint64, 8: object, 9: np.bool_}

register_graph_op(GraphOp(
    "CastLabel", ("input",), MappingProxyType({"to": 7}), _cast_label,
    lambda xs, to: np.asarray(xs[0]).astype(CAST_LABEL_TYPES[int(to)]),
    None, notes="Cast to a non-float type (int64 labels, strings): runs, takes no gradient", onnx_op="Cast"))




# --- recurrence: LSTM, GRU, RNN as ONNX defines them (the spec is mdfx.recurrence) -----------------


def _recurrent_infer(op: str) -> Callable[..., Shape]:
    from mdfx import recurrence

    gates = recurrence.CELLS[op][0]

    def infer(shapes: list[Shape | None], hidden_size: int, direction: str, **a: Any) -> Shape:
        x, w, r = shapes[:3]
        rest = (list(shapes[3:]) + [None] * 4)[:4]
        b, h0 = rest[0], rest[1]
        if direction not in recurrence.DIRECTIONS:
            raise ShapeError(f"{op} direction {direction!r} is not forward, reverse or bidirectional")
        if a.get("input_forget"):
            raise ShapeError(f"{op} input_forget=1 (coupled input and forget gates) is not computed by mdfx")
        nd, hs = recurrence.DIRECTIONS[direction], int(hidden_size)
        if len(x) != 3 or x[0] != BATCH:
            raise ShapeError(f"{op} reads X as (batch, T, input) with the batch on axis 0, got {_fmt(x)}")
        if BATCH in (*w, *r) or (b is not None and BATCH in b):
            raise ShapeError(f"{op}: W, R and B are weights (no batch axis)")
        want = {"W": (nd, gates * hs, x[2]), "R": (nd, gates * hs, hs), "B": (nd, 2 * gates * hs)}
        for what, s in (("W", w), ("R", r), ("B", b)):
            if s is not None and tuple(s) != want[what]:
                raise ShapeError(f"{op}: {what} has shape {_fmt(s)}; expected {_fmt(want[what])} for "
                                 f"hidden_size={hs}, direction={direction}")
        states = [("initial_h", h0)] + ([("initial_c", rest[2])] if op == "LSTM" else [])
        for what, s in states:
            if s is not None and (len(s) != 3 or s[0] not in (BATCH, 1) or tuple(s[1:]) != (nd, hs)):
                raise ShapeError(f"{op}: {what} has shape {_fmt(s)}; expected (batch or 1, {nd}, {hs})")
        if op == "LSTM" and rest[3] is not None and tuple(rest[3]) != (nd, 3 * hs):
            raise ShapeError(f"LSTM: P has shape {_fmt(rest[3])}; expected ({nd}, {3 * hs})")
        try:
            recurrence.activations(op, direction, a.get("activations"), a.get("activation_alpha"),
                                   a.get("activation_beta"))
        except ValueError as exc:
            raise ShapeError(str(exc)) from None
        return (BATCH, x[1], nd, hs)

    return infer


def _recurrent(op: str, inputs: tuple[str, ...], extra: dict[str, Any]) -> GraphOp:
    from mdfx import recurrence

    attrs = {"hidden_size": REQUIRED, "direction": "forward", "activations": None, "activation_alpha": None,
             "activation_beta": None, "clip": None, **extra}
    return GraphOp(op, inputs, MappingProxyType(attrs), _recurrent_infer(op),
                   lambda xs, **a: recurrence.forward(op, xs, a),
                   lambda xs, y, g, **a: recurrence.vjp(op, xs, y, g, a),
                   notes="ONNX's op in layout 1 (batch first): Y is (batch, T, directions, hidden); Y_h is a "
                         "Slice of Y; sequence_lens must be absent or constant and full")


register_graph_op(_recurrent("LSTM", ("X", "W", "R", "B?", "initial_h?", "initial_c?", "P?"), {"input_forget": 0}))
register_graph_op(_recurrent("GRU", ("X", "W", "R", "B?", "initial_h?"), {"linear_before_reset": 0}))
register_graph_op(_recurrent("RNN", ("X", "W", "R", "B?", "initial_h?"), {}))


# Conv, ConvTranspose, MaxPool, AveragePool, Pad: their own module, registered into GRAPH_OPS here
from mdfx import ops_spatial as _spatial  # noqa: E402, F401
