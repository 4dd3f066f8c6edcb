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
from typing import Any

import numpy as np

from mdfx.composition.enums import ExecutionMode, Loss
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

    def execute(self, variable: object = None, execution_mode: ExecutionMode = ExecutionMode.Python) -> float:
        """The loss of ``variable`` in ``execution_mode``: Python computes it in numpy; LLVMRun
        (and PsyNeuLink's other compiled modes, its aliases) runs :meth:`as_graph` compiled."""
        if execution_mode is ExecutionMode.Python:
            return self(variable)
        if execution_mode is not ExecutionMode.LLVMRun:
            raise UnsupportedError(f"{self!r}.execute(execution_mode={execution_mode}); mdfx runs a "
                                   "LossFunction in Python or LLVMRun")
        from mdfx.runners import llvm

        v = self.default_variable if variable is None else np.asarray(variable, dtype=np.float64)
        if v is None or v.ndim != 2 or v.shape[0] != 2:
            raise ValueError(f"LossFunction needs a variable of shape (2, n): sample and target, got "
                             f"{None if v is None else v.shape}")
        out = llvm.run(self.as_graph(v.shape[1]), {"sample": v[:1], "target": v[1:]})
        return float(out["loss"][0, 0])

    def as_graph(self, n: int) -> Any:
        """The loss of a sample and a target of ``n`` units as an op graph (one number per trial)."""
        from mdfx.schema.graph import Graph, Node, Param

        nodes = {
            Loss.L0: [Node("d", "Sub", ["sample", "target"], "d"), Node("total", "ReduceSum", ["d"], "total")],
            Loss.L1: [Node("d", "Sub", ["sample", "target"], "d"), Node("a", "Abs", ["d"], "a"),
                      Node("total", "ReduceSum", ["a"], "total")],
            Loss.SSE: [Node("d", "Sub", ["sample", "target"], "d"), Node("sq", "Mul", ["d", "d"], "sq"),
                       Node("total", "ReduceSum", ["sq"], "total")],
            Loss.MSE: [Node("d", "Sub", ["sample", "target"], "d"), Node("sq", "Mul", ["d", "d"], "sq"),
                       Node("total", "ReduceMean", ["sq"], "total")],
            Loss.POISSON_NLL: [Node("log", "Log", ["sample"], "log"), Node("tl", "Mul", ["target", "log"], "tl"),
                               Node("d", "Sub", ["sample", "tl"], "d"),
                               Node("total", "ReduceMean", ["d"], "total")],
            Loss.CROSS_ENTROPY: [Node("p", "Softmax", ["sample"], "p", {"axis": -1}),
                                 Node("lq", "LogSoftmax", ["target"], "lq", {"axis": -1}),
                                 Node("plq", "Mul", ["p", "lq"], "plq"),
                                 Node("total", "ReduceSum", ["plq"], "total")],
        }[self.loss]
        for node in nodes:
            if node.op.startswith("Reduce"):
                node.attrs = {"axes": [1], "keepdims": 1}
        scale = 1.0 / n if self.normalize else 1.0
        nodes.append(Node("loss", "Mul", ["total", "scale"], "loss"))
        return Graph.build(f"LossFunction({self.loss.name})", {"sample": (n,), "target": (n,)},
                           [Param("scale", np.array([scale]), learnable=False)], nodes, ["loss"])

    def __repr__(self) -> str:
        return f"LossFunction(loss={self.loss}, normalize={self.normalize})"
