"""The op table (DESIGN rule 3): every transfer function, loss and optimizer, once.

Each entry names the op as PsyNeuLink, MDF and ONNX call it, lists its
parameters with PsyNeuLink's defaults, and gives its numpy forward and
derivative. Elementwise transfer functions also give the forward and the
derivative as *expressions* in the restricted grammar of :mod:`mdfx.expr`
(``x`` is the net input, ``y`` the output): the LLVM backend compiles the
backward pass from these, and the MDF writer emits them, so a gradient rule
is written once, as data.

Backends register their own rule per op in their own table (for example
``mdfx.runners.reference.TRANSFER``); ``tests/test_ops_coverage.py`` fails,
naming the gap, when a backend lacks a rule for an op listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from mdfx.errors import UnsupportedError

Array = np.ndarray


@dataclass(frozen=True)
class TransferOp:
    """One transfer function of a TransferMechanism."""

    name: str  #: mdfx's key for the op, also the MDF metadata name
    pnl_name: str  #: the PsyNeuLink Function class
    params: MappingProxyType  #: parameter name -> PsyNeuLink default
    mdf_function: str | None  #: the modeci-mdf standard function, when one computes it exactly
    onnx_op: str  #: the main ONNX operator of the export
    forward: Callable[..., Array]  #: numpy ``forward(x, **params) -> y``
    vjp: Callable[..., Array]  #: numpy ``vjp(x, y, g, **params) -> g·dy/dx`` (a row vector times the Jacobian)
    expr: str | None = None  #: forward as an expression in ``x`` and the params (elementwise ops)
    dexpr: str | None = None  #: dy/dx as an expression in ``x``, ``y`` and the params
    elementwise: bool = True


def _elementwise(forward: Callable[..., Array], derivative: Callable[..., Array]) -> Callable[..., Array]:
    def vjp(x: Array, y: Array, g: Array, **p: float) -> Array:
        return g * derivative(x, y, **p)

    return vjp


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


def _op(name: str, pnl: str, params: dict[str, float], mdf: str | None, onnx: str, fwd, der,
        expr: str, dexpr: str) -> TransferOp:
    return TransferOp(name, pnl, MappingProxyType(params), mdf, onnx, fwd, _elementwise(fwd, der), expr, dexpr)


TRANSFER: MappingProxyType = MappingProxyType({
    op.name: op
    for op in [
        _op("linear", "Linear", {"slope": 1.0, "intercept": 0.0, "scale": 1.0, "offset": 0.0}, "linear", "Add",
            linear, d_linear, "scale * (slope * x + intercept) + offset", "scale * slope + 0 * x"),
        _op("logistic", "Logistic", {"gain": 1.0, "bias": 0.0, "x_0": 0.0, "offset": 0.0, "scale": 1.0},
            "logistic", "Sigmoid", logistic, d_logistic,
            "scale / (1 + exp(-gain * (x + bias - x_0))) + offset",
            "gain * scale * ((y - offset) / scale) * (1 - (y - offset) / scale)"),
        _op("relu", "ReLU", {"gain": 1.0, "bias": 0.0, "leak": 0.0}, "Relu", "LeakyRelu",
            relu, d_relu,
            "where(x - bias > 0, gain * (x - bias), leak * gain * (x - bias))",
            "where(x - bias > 0, gain + 0 * x, leak * gain + 0 * x)"),
        _op("tanh", "Tanh", {"gain": 1.0, "bias": 0.0, "x_0": 0.0, "offset": 0.0, "scale": 1.0},
            "tanh", "Tanh", tanh, d_tanh,
            "scale * tanh(gain * (x + bias - x_0) + offset)", "gain * scale * (1 - (y / scale) ** 2)"),
        _op("exponential", "Exponential", {"rate": 1.0, "bias": 0.0, "scale": 1.0, "offset": 0.0},
            "exponential", "Exp", exponential, d_exponential,
            "scale * exp(rate * x + bias) + offset", "rate * (y - offset)"),
        _op("identity", "Identity", {}, None, "Identity", identity, d_identity, "x", "1 + 0 * x"),
        TransferOp("softmax", "SoftMax", MappingProxyType({"gain": 1.0}), None, "Softmax",
                   softmax, vjp_softmax, elementwise=False),
    ]
})

#: PsyNeuLink class name -> op key.
BY_PNL_NAME = MappingProxyType({op.pnl_name: op.name for op in TRANSFER.values()})


def transfer_op(name: str) -> TransferOp:
    """Look up a transfer op by mdfx key or PsyNeuLink name; the error lists what exists."""
    key = BY_PNL_NAME.get(name, name)
    if key not in TRANSFER:
        known = ", ".join(op.pnl_name for op in TRANSFER.values())
        raise UnsupportedError(f"unknown transfer function {name!r}; supported: {known}")
    return TRANSFER[key]


def fill_params(op: TransferOp, given: dict[str, float]) -> dict[str, float]:
    """The op's parameters with defaults filled in, once, at the boundary (STYLE: defaults from the schema)."""
    unknown = set(given) - set(op.params)
    if unknown:
        raise UnsupportedError(
            f"{op.pnl_name} has no parameter {', '.join(sorted(unknown))}; "
            f"its parameters are {', '.join(op.params) or '(none)'}"
        )
    return {k: float(given.get(k, default)) for k, default in op.params.items()}


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
