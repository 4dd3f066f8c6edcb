"""PsyNeuLink's ``pytorch_representation``: which projections learn, and at what rate.

PsyNeuLink builds a torch wrapper of the composition and exposes it; mdfx
builds its torch module inside each learn() and keeps none, so this object is
the part scripts read: the learning rate each projection trains at (``False``
when frozen) as of the last ``_build_pytorch_representation()`` or learn().
"""

from __future__ import annotations

from typing import Any


class PytorchRepresentation:
    """The learnable projections of a composition with their resolved learning rates."""

    def __init__(self, composition: Any, rates: dict[str, float], frozen: list[Any]) -> None:
        self.composition = composition
        self._rates: dict[str, float | bool] = {}
        self.update(rates, frozen)

    def update(self, rates: dict[str, float], frozen: list[Any]) -> None:
        """The rates of a new learn() (the same object is kept, as PsyNeuLink keeps its wrapper)."""
        self._rates = dict(rates)
        self._rates.update({p.name: False for p in frozen})

    def get_torch_learning_rate_for_projection(self, projection: Any) -> float | bool:
        """The rate ``projection`` (object or name) trains at; False when it does not learn."""
        name = getattr(projection, "name", projection)
        if name not in self._rates:
            raise KeyError(f"{name!r} is not a learnable projection of {self.composition.name!r} "
                           f"({', '.join(repr(n) for n in self._rates)})")
        return self._rates[name]

    def get_torch_param_for_projection(self, projection: Any) -> Any:
        """``projection``'s (object or name) matrix as a ``torch.nn.Parameter``, (sender, receiver)
        shaped as PsyNeuLink's. mdfx trains no kept torch module: this is a copy of the matrix as
        it is now (changing it changes nothing; use copy_torch_param_to_projection_matrix)."""
        name = getattr(projection, "name", projection)
        found = next((p for p in self.composition._projections if p.name == name), None)
        if found is None:
            raise KeyError(f"{name!r} is not a projection of {self.composition.name!r}")
        return _parameter(found.matrix)

    def parameters(self) -> list[Any]:
        """The learnable projections' matrices as ``torch.nn.Parameter`` copies, in the composition's
        projection order (see get_torch_param_for_projection)."""
        return [_parameter(p.matrix) for p in self.composition._projections if p.name in self._rates]

    @property
    def learning_rates(self) -> dict[str, float | bool]:
        return dict(self._rates)

    @property
    def _torch_params_for_execution(self) -> dict[Any, float | bool]:
        """{projection: rate} of the learnable projections (False: frozen); PsyNeuLink's
        private name, read by its scripts and tests."""
        return {p: self._rates[p.name] for p in self.composition._projections if p.name in self._rates}

    def __repr__(self) -> str:
        return f"PytorchRepresentation({self.composition.name!r}, {self._rates!r})"


def _parameter(matrix: Any) -> Any:
    import torch

    return torch.nn.Parameter(torch.tensor(matrix, dtype=torch.float64))
