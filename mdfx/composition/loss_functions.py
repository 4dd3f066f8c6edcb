"""PsyNeuLink's ``LossFunction``: a loss as a function object of a (sample, target) variable.

``LossFunction(loss=Loss.MSE, normalize=False)(variable)`` takes ``variable``
of shape (2, n) -- row 0 the sample, row 1 the target -- and returns one number,
divided by ``n`` when ``normalize``. The formulas are PsyNeuLink 0.21's, measured
(tests/pnl_reference/facts.md, "LossFunction"); they are not the training losses
of :mod:`mdfx.ops` (e.g. ``L0`` here is the signed sum of differences, ``CROSS_ENTROPY``
is ``sum(softmax(sample) * log(softmax(target)))``, a negative number).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mdfx.composition.enums import Loss
from mdfx.errors import UnsupportedError

_FORMULAS: dict[Loss, Callable[[np.ndarray, np.ndarray], float]] = {
    Loss.L0: lambda s, t: float(np.sum(s - t)),
    Loss.L1: lambda s, t: float(np.sum(np.abs(s - t))),
    Loss.SSE: lambda s, t: float(np.sum((s - t) ** 2)),
    Loss.MSE: lambda s, t: float(np.mean((s - t) ** 2)),
    Loss.POISSON_NLL: lambda s, t: float(np.mean(s - t * np.log(s))),
    Loss.CROSS_ENTROPY: lambda s, t: float(np.sum(_softmax(s) * _log_softmax(t))),
}


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - np.max(x)  # shifted by the maximum: no overflow in exp
    return shifted - np.log(np.sum(np.exp(shifted)))


def _softmax(x: np.ndarray) -> np.ndarray:
    return np.exp(_log_softmax(x))


class LossFunction:
    """``loss`` of ``variable[0]`` (sample) against ``variable[1]`` (target); one number."""

    def __init__(self, default_variable: object = None, loss: Loss | str = Loss.MSE,
                 normalize: bool = False) -> None:
        loss = loss if isinstance(loss, Loss) else Loss[str(loss).upper()]
        if loss not in _FORMULAS:
            # PsyNeuLink 0.21 refuses BINARY_CROSS_ENTROPY, KL_DIV and NLL here
            raise UnsupportedError(f"LossFunction(loss={loss}) is not supported; supported: "
                                   f"{', '.join(str(k) for k in _FORMULAS)}")
        self.loss = loss
        self.normalize = bool(normalize)
        self.default_variable = None if default_variable is None else np.asarray(default_variable, dtype=float)

    def reduces(self) -> bool:
        """Marks a function that maps a variable to one number (not a layer's transfer function)."""
        return True

    def __call__(self, variable: object = None) -> float:
        v = self.default_variable if variable is None else np.asarray(variable, dtype=np.float64)
        if v is None or v.ndim != 2 or v.shape[0] != 2:
            raise ValueError(f"LossFunction needs a variable of shape (2, n): sample and target, got "
                             f"{None if v is None else v.shape}")
        value = _FORMULAS[self.loss](v[0], v[1])
        return value / v.shape[1] if self.normalize else value

    function = __call__

    def __repr__(self) -> str:
        return f"LossFunction(loss={self.loss}, normalize={self.normalize})"
