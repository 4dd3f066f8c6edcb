"""Transfer functions with PsyNeuLink's names, parameters and defaults.

``TransferMechanism(function=Logistic)`` and ``function=Logistic(gain=2)`` both
work, as in PsyNeuLink. The parameters and their defaults live in the op table
(:mod:`mdfx.ops`); these classes only carry a user's choice of values.
"""

from __future__ import annotations

import numpy as np

from mdfx import ops


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
    """``exp(gain * x) / sum(exp(gain * x))`` over the mechanism's units."""

    op_name = "softmax"

    def __init__(self, gain: float | None = None) -> None:
        super().__init__(gain=gain)


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
    cls.op_name: cls for cls in (Linear, Logistic, ReLU, Tanh, SoftMax, Exponential, Identity)
}


def as_function(function: object) -> TransferFunction:
    """Accept a class, an instance, or None (PsyNeuLink's default, Linear)."""
    if function is None:
        return Linear()
    if isinstance(function, type) and issubclass(function, TransferFunction):
        return function()
    if isinstance(function, TransferFunction):
        return function
    known = ", ".join(c.__name__ for c in FUNCTION_CLASSES.values())
    raise TypeError(f"function must be one of {known} (class or instance), got {function!r}")


def from_op(op_name: str, params: dict[str, float]) -> TransferFunction:
    fn = FUNCTION_CLASSES[op_name].__new__(FUNCTION_CLASSES[op_name])
    fn.params = ops.fill_params(ops.transfer_op(op_name), params)
    return fn
