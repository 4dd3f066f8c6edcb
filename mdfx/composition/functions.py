"""Transfer functions with PsyNeuLink's names, parameters and defaults.

``TransferMechanism(function=Logistic)`` and ``function=Logistic(gain=2)`` both
work, as in PsyNeuLink. The parameters and their defaults live in the op table
(:mod:`mdfx.ops`); these classes only carry a user's choice of values.
"""

from __future__ import annotations

import numpy as np

from mdfx import ops
from mdfx.errors import UnsupportedError


class TransferFunction:
    """Base class: an op from the op table plus the values the user gave."""

    op_name: str = ""

    def __init__(self, **params: float) -> None:
        op = ops.transfer_op(self.op_name)
        # Validates names and fills defaults once, at the boundary.
        self.params: dict[str, float] = ops.fill_params(op, {k: v for k, v in params.items() if v is not None})

    @property
    def op(self) -> ops.GraphOp:
        """The function's graph op (``pnl.Logistic``) in the op table."""
        return ops.transfer_op(self.op_name)

    def __call__(self, variable: object) -> np.ndarray:
        """Evaluate the function on ``variable`` (numpy, like PsyNeuLink's ``function(x)``)."""
        return self.op.forward([np.asarray(variable, dtype=np.float64)], **self.params)

    def _gen_pytorch_fct(self, device: str = "cpu", context: object = None) -> object:
        """The function as a torch callable on tensors (PsyNeuLink's name), differentiable;
        the torch backend's rule for this op."""
        from mdfx.converters.torch import GRAPH_RULES

        rule, params = GRAPH_RULES[self.op.name], dict(self.params)
        return lambda x: rule([x], **params)

    def function(self, variable: object = None, context: object = None, params: object = None) -> np.ndarray:
        """PsyNeuLink's name for evaluating the function on ``variable`` (``context`` is accepted)."""
        return self(variable)

    def __getattr__(self, name: str) -> float:
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params == other.params  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]


class Linear(TransferFunction):
    """``scale * (slope * x + intercept) + offset``."""

    op_name = "linear"

    def __init__(self, slope: float | None = None, intercept: float | None = None,
                 scale: float | None = None, offset: float | None = None) -> None:
        super().__init__(slope=slope, intercept=intercept, scale=scale, offset=offset)


class Logistic(TransferFunction):
    """``scale / (1 + exp(-gain * (x + bias - x_0) + offset))``."""

    op_name = "logistic"

    def __init__(self, gain: float | None = None, x_0: float | None = None, bias: float | None = None,
                 offset: float | None = None, scale: float | None = None) -> None:
        super().__init__(gain=gain, x_0=x_0, bias=bias, offset=offset, scale=scale)


class ReLU(TransferFunction):
    """``gain * (x - bias)`` where positive, ``leak * gain * (x - bias)`` elsewhere."""

    op_name = "relu"

    def __init__(self, gain: float | None = None, bias: float | None = None, leak: float | None = None) -> None:
        super().__init__(gain=gain, bias=bias, leak=leak)


class Tanh(TransferFunction):
    """``scale * tanh(gain * (x + bias - x_0) + offset)``."""

    op_name = "tanh"

    def __init__(self, gain: float | None = None, x_0: float | None = None, bias: float | None = None,
                 offset: float | None = None, scale: float | None = None) -> None:
        super().__init__(gain=gain, x_0=x_0, bias=bias, offset=offset, scale=scale)


class SoftMax(TransferFunction):
    """``exp(gain * x) / sum(exp(gain * x))`` over the mechanism's units.

    Called directly (and in ``_gen_pytorch_fct``), PsyNeuLink 0.21's ``output`` choices
    (measured): ``"all"`` the softmax; ``"arg_max"`` / ``"arg_max_indicator"`` its value / 1 at
    the first maximum, 0 elsewhere; ``"MAX_VAL"`` / ``"MAX_INDICATOR"`` the same at every
    maximum. On a 2-D variable ``per_item=True`` treats each row alone, ``per_item=False`` the
    whole array as one. In a network only ``output="all"`` learns (others are refused there).
    """

    op_name = "softmax"
    OUTPUTS = ("all", "arg_max", "arg_max_indicator", "MAX_VAL", "MAX_INDICATOR")
    output, per_item = "all", True  # also for instances made from an op (functions.from_op)

    def __init__(self, default_variable: object = None, gain: float | None = None, output: str = "all",
                 per_item: bool = True) -> None:
        super().__init__(gain=gain)
        if output not in self.OUTPUTS:
            raise UnsupportedError(f"SoftMax(output={output!r}): mdfx has {', '.join(map(repr, self.OUTPUTS))}")
        self.output, self.per_item, self.default_variable = output, bool(per_item), default_variable

    def __call__(self, variable: object) -> np.ndarray:
        x = np.asarray(variable, dtype=np.float64)
        if self.per_item or x.ndim < 2:
            return _pick(self.op.forward([x], **self.params), self.output, np)
        y = self.op.forward([x.reshape(1, -1)], **self.params).reshape(x.shape)
        return _pick(y.reshape(1, -1), self.output, np).reshape(x.shape)

    def _gen_pytorch_fct(self, device: str = "cpu", context: object = None) -> object:
        import torch

        rule, output, per_item = super()._gen_pytorch_fct(device, context), self.output, self.per_item

        def fct(x: object) -> object:
            if per_item or x.dim() < 2:  # type: ignore[attr-defined]
                return _pick(rule(x), output, torch)
            flat = x.reshape(1, -1)  # type: ignore[attr-defined]
            return _pick(rule(flat), output, torch).reshape(x.shape)  # type: ignore[attr-defined]
        return fct


def _pick(y: object, output: str, xp: object) -> object:
    """SoftMax's ``output`` choice on the softmax ``y`` (last axis), for numpy or torch."""
    if output == "all":
        return y
    top = y.max(-1, keepdims=True) if xp is np else y.max(-1, keepdim=True).values  # type: ignore[attr-defined]
    if output in ("MAX_VAL", "MAX_INDICATOR"):
        mask = y == top
    else:  # the first maximum only
        index = y.argmax(-1)  # type: ignore[attr-defined]
        if xp is np:
            mask = np.zeros(np.shape(y), dtype=bool)
            np.put_along_axis(mask, np.expand_dims(index, -1), True, axis=-1)
        else:
            import torch

            mask = torch.zeros_like(y, dtype=torch.bool).scatter_(-1, index.unsqueeze(-1), True)  # type: ignore
    if output.endswith("indicator") or output.endswith("INDICATOR"):
        return xp.where(mask, 1.0, 0.0) if xp is np else mask.to(y.dtype)  # type: ignore[attr-defined,union-attr]
    return xp.where(mask, y, 0.0) if xp is np else y * mask  # type: ignore[attr-defined,operator]


class Normalize(TransferFunction):
    """``x / max(||x||, eps)``: a sample's units scaled to unit length (PsyNeuLink's Normalize).

    In a mechanism each trial is one item, normalized over its units. Called directly on a 2-D
    variable, ``per_item=True`` normalizes each row and ``per_item=False`` the whole array by
    one norm, as PsyNeuLink 0.21 (measured).
    """

    op_name = "normalize"

    def __init__(self, default_variable: object = None, eps: float | None = None,
                 per_item: bool | None = None) -> None:
        super().__init__(eps=eps, per_item=None if per_item is None else float(bool(per_item)))
        self.default_variable = default_variable

    @property
    def per_item(self) -> bool:
        return bool(self.params["per_item"])

    def __call__(self, variable: object) -> np.ndarray:
        x = np.asarray(variable, dtype=np.float64)
        if self.per_item or x.ndim < 2:
            return self.op.forward([x], **self.params)
        return x / max(float(np.linalg.norm(x)), self.params["eps"])

    def _gen_pytorch_fct(self, device: str = "cpu", context: object = None) -> object:
        import torch

        eps, rule = self.params["eps"], super()._gen_pytorch_fct(device, context)
        if self.per_item:
            return rule
        return lambda x: rule(x) if x.dim() < 2 else x / torch.clamp(torch.linalg.vector_norm(x), min=eps)


class Exponential(TransferFunction):
    """``scale * exp(rate * x + bias) + offset``."""

    op_name = "exponential"

    def __init__(self, rate: float | None = None, bias: float | None = None, scale: float | None = None,
                 offset: float | None = None) -> None:
        super().__init__(rate=rate, bias=bias, scale=scale, offset=offset)


class Identity(TransferFunction):
    """``x``."""

    op_name = "identity"

    def __init__(self) -> None:
        super().__init__()


class LinearCombination(TransferFunction):
    """PsyNeuLink's LinearCombination: the rows of a variable (a mechanism's InputPorts)
    combined elementwise, ``scale * (SUM or PRODUCT of weights * row ** exponents) + offset``.

    As a mechanism's function it combines the mechanism's InputPorts; in a network (and
    so in learning) mdfx takes SUM and PRODUCT with scale and offset, not weights or
    exponents. Called on its own it also computes ``CROSS_ENTROPY``, ``row0 * log(row1)``
    (PsyNeuLink 0.21's definition, measured). After the ports are combined the node
    applies Linear with ``slope=scale, intercept=offset``.
    """

    op_name = "linear"
    OPERATIONS = ("sum", "product", "cross-entropy")

    def __init__(self, default_variable: object = None, weights: object = None, exponents: object = None,
                 operation: str = "sum", scale: float | None = None, offset: float | None = None) -> None:
        super().__init__(slope=scale, intercept=offset)
        if operation not in self.OPERATIONS:
            raise ValueError(f"LinearCombination(operation={operation!r}): expected one of "
                             f"{', '.join(map(repr, self.OPERATIONS))}")
        self.operation = operation
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.exponents = None if exponents is None else np.asarray(exponents, dtype=np.float64)
        self.scale = 1.0 if scale is None else float(scale)
        self.offset = 0.0 if offset is None else float(offset)
        self.default_variable = default_variable

    def __call__(self, variable: object) -> np.ndarray:
        v = np.asarray(variable, dtype=np.float64)
        if v.ndim < 2:  # one row: nothing to combine
            return self.scale * v + self.offset
        if self.exponents is not None:
            v = v ** self.exponents
        if self.weights is not None:
            v = v * self.weights
        if self.operation == "sum":
            combined = np.sum(v, axis=0)
        elif self.operation == "product":
            combined = np.prod(v, axis=0)
        else:
            if len(v) != 2:
                raise ValueError(f"LinearCombination(operation='cross-entropy') takes two rows, got {len(v)}")
            combined = v[0] * np.log(v[1])
        return self.scale * combined + self.offset

    def __repr__(self) -> str:
        return f"LinearCombination(operation={self.operation!r}, scale={self.scale!r}, offset={self.offset!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LinearCombination) and repr(self) == repr(other) and \
            _same(self.weights, other.weights) and _same(self.exponents, other.exponents)

    __hash__ = None  # type: ignore[assignment]


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


#: op key -> class, for building functions from a graph's mechanisms or MDF.
FUNCTION_CLASSES: dict[str, type[TransferFunction]] = {
    cls.op_name: cls for cls in (Linear, Logistic, ReLU, Tanh, SoftMax, Exponential, Identity, Normalize)
}


def as_function(function: object) -> TransferFunction:
    """Accept a class, an instance, or None (PsyNeuLink's default, Linear)."""
    if function is None:
        return Linear()
    if isinstance(function, type) and issubclass(function, TransferFunction):
        return function()
    if isinstance(function, TransferFunction):
        return function
    from mdfx.composition.unsupported import ImportOnly

    if isinstance(function, ImportOnly) or (isinstance(function, type) and issubclass(function, ImportOnly)):
        (function if isinstance(function, ImportOnly) else function())()  # refuses, naming it
    known = ", ".join(c.__name__ for c in FUNCTION_CLASSES.values())
    raise TypeError(f"function must be one of {known} (class or instance), got {function!r}")


def from_op(op_name: str, params: dict[str, float]) -> TransferFunction:
    fn = FUNCTION_CLASSES[op_name].__new__(FUNCTION_CLASSES[op_name])
    fn.params = ops.fill_params(ops.transfer_op(op_name), params)
    return fn
