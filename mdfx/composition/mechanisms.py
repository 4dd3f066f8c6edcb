"""TransferMechanism: a layer of units with one transfer function."""

from __future__ import annotations

import itertools

import numpy as np

from mdfx.composition.functions import TransferFunction, as_function

_counter = itertools.count()


class TransferMechanism:
    """A layer of ``size`` units computing ``function`` of its summed input.

    Accepts PsyNeuLink's ``input_shapes=`` and its older spelling ``size=``, or a
    ``default_variable`` whose length gives the size. ``bias`` (an mdfx
    extension; PsyNeuLink has none) adds a trainable vector to the net input.
    """

    def __init__(self, default_variable: object = None, size: int | None = None,
                 input_shapes: int | None = None, function: object = None, name: str | None = None,
                 bias: object = None, learnable_bias: bool = True) -> None:
        given = [v for v in (size, input_shapes) if v is not None]
        if len(given) == 2 and _as_size(size) != _as_size(input_shapes):
            raise ValueError(f"size={size!r} and input_shapes={input_shapes!r} disagree")
        if given:
            self.size = _as_size(given[0])
        elif default_variable is not None:
            self.size = int(np.atleast_1d(np.asarray(default_variable, dtype=float)).shape[-1])
        else:
            self.size = 1
        self.function: TransferFunction = as_function(function)
        self.name = name if name is not None else f"TransferMechanism-{next(_counter)}"
        self.bias = None if bias is None else np.array(bias, dtype=np.float64).reshape(self.size)
        self.learnable_bias = learnable_bias
        #: the last value computed, shape (1, size) as PsyNeuLink's ``value``
        self.value = np.zeros((1, self.size))
        self.log = _Log()

    @property
    def input_shapes(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"TransferMechanism(name={self.name!r}, size={self.size}, function={self.function!r})"


def _as_size(value: object) -> int:
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"a mechanism's size must be a positive integer, got {value!r}")
    return int(value)


class _Log:
    """Minimal stand-in for PsyNeuLink's Log: values recorded during learn()."""

    def __init__(self) -> None:
        self.entries: dict[str, list[np.ndarray]] = {}
        self.logged: set[str] = set()

    def set_log_conditions(self, items: object, log_condition: object = None) -> None:
        names = [items] if isinstance(items, str) else list(items)  # type: ignore[arg-type]
        self.logged.update(str(n) for n in names)

    def nparray_dict(self) -> dict[str, np.ndarray]:
        return {k: np.array(v) for k, v in self.entries.items()}

    def record(self, item: str, value: np.ndarray) -> None:
        if item in self.logged:
            self.entries.setdefault(item, []).append(np.array(value, copy=True))
