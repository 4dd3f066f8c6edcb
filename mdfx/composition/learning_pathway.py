"""Learning pathways: PsyNeuLink's ``Pathway``, its learning components and target mechanisms.

``Composition.add_backpropagation_learning_pathway([A, B, C])`` adds the
processing pathway and, as PsyNeuLink does, the nodes that stand for its
learning: a TARGET mechanism for the last node (``TARGET for C``; users give
targets as its inputs), an objective mechanism (``Comparator``) and one
LearningMechanism per learned projection. mdfx does not execute these nodes:
they are names and handles. learn() maps inputs given to a target mechanism
onto targets for its sample node and trains on the same engine (numpy, torch,
LLVM) as AutodiffComposition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mdfx.composition.keywords import (
    LEARNED_PROJECTIONS,
    LEARNING_FUNCTION,
    LEARNING_MECHANISMS,
    OBJECTIVE_MECHANISM,
    TARGET_MECHANISM,
)
from mdfx.composition.mechanisms import ProcessingMechanism, TransferMechanism
from mdfx.composition.parameters import Parameter, Parameters
from mdfx.errors import ParameterError

if TYPE_CHECKING:
    from mdfx.composition.projections import MappingProjection


class BackPropagation:
    """PsyNeuLink's backpropagation learning function: the only one mdfx trains with."""


class Pathway(list):
    """A list of nodes and projections, as PsyNeuLink's ``Pathway`` (``.pathway`` is the list).

    A learning pathway also has ``learning_components``, ``target`` and ``learning_objective``.
    """

    def __init__(self, pathway: object = (), name: str | None = None) -> None:
        super().__init__(pathway)  # type: ignore[arg-type]
        self.name = name
        self.learning_rate: float | bool | None = None
        self.learning_components: dict[str, Any] = {}

    @property
    def pathway(self) -> list:
        return list(self)

    @property
    def target(self) -> TargetMechanism | None:
        return self.learning_components.get(TARGET_MECHANISM)

    @property
    def learning_objective(self) -> ObjectiveMechanism | None:
        return self.learning_components.get(OBJECTIVE_MECHANISM)

    @property
    def learned_projections(self) -> list[MappingProjection]:
        return list(self.learning_components.get(LEARNED_PROJECTIONS, []))

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__  # type: ignore[assignment]


class TargetMechanism(ProcessingMechanism):
    """``TARGET for <node>``: the INPUT node whose inputs are the targets of ``sample``."""

    def __init__(self, sample: TransferMechanism) -> None:
        super().__init__(input_shapes=sample.size, name=f"TARGET for {sample.name}")
        self.sample = sample

    def __lt__(self, other: object) -> bool:
        """By name, so a list of TARGET nodes can be sorted (as PsyNeuLink's can)."""
        if not isinstance(other, TargetMechanism):
            return NotImplemented
        return self.name < other.name


class ObjectiveMechanism:
    """The node that compares a sample with its target (PsyNeuLink's Comparator / LOSS node)."""

    #: PsyNeuLink's ``value``: for a LossMechanism (targets=) its pair's loss on the last minibatch of
    #: the last learn(); for a learning pathway's Comparator the last trial's target - sample
    value: np.ndarray = np.zeros(())

    def __init__(self, name: str, sample: TransferMechanism, target: TargetMechanism,
                 loss_name: str = "MSE") -> None:
        self.name = name
        self.sample = sample.output_port
        self.target = target.output_port
        self.log = sample.log.__class__()
        #: the last trial's error (target - sample) and loss, set by learn() for a learning pathway
        self.error: np.ndarray = np.zeros(sample.size)
        self.loss: np.ndarray = np.zeros(1)
        # PsyNeuLink names its second OutputPort after the loss (``SUM`` for Loss.L0; measured)
        self.output_ports = _Ports([ObjectiveOutputPort(self, "OUTCOME", "error"),
                                    ObjectiveOutputPort(self, loss_name, "loss")])

    @property
    def output_port(self) -> ObjectiveOutputPort:
        return self.output_ports[0]

    @property
    def parameters(self) -> Parameters:
        return Parameters(self, value=("value", False))

    def __repr__(self) -> str:
        return f"(ObjectiveMechanism {self.name})"


class _Ports(list):
    """A list of OutputPorts also indexed by port name (``ports["MSE"]``)."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            for port in self:
                if port.name == key:
                    return port
            raise KeyError(f"no OutputPort named {key!r} (ports: {', '.join(p.name for p in self)})")
        return super().__getitem__(key)


class ObjectiveOutputPort:
    """An OutputPort of an objective node: ``OUTCOME`` (the error) or the loss, by name or index."""

    def __init__(self, owner: ObjectiveMechanism, name: str, attr: str) -> None:
        self.owner = owner
        self.name = name
        self._attr = attr
        self.parameters = Parameters(self, value=("value", False))

    @property
    def value(self) -> np.ndarray:
        return getattr(self.owner, self._attr)

    def __repr__(self) -> str:
        return f"(OutputPort {self.name} of {self.owner.name})"


class LearningMechanism:
    """``Learning Mechanism for <projection>``: holds that projection's learning rate.

    Setting its ``learning_rate`` (``lm.learning_rate.base = x`` or
    ``lm.parameters.learning_rate.set(x)``) overrides every other rate for the
    projection, as in PsyNeuLink.
    """

    def __init__(self, projection: MappingProjection, learning_rate: float | bool | None) -> None:
        self.name = f"Learning Mechanism for {projection.name}"
        self.learned_projection = projection
        self._rate = learning_rate
        #: the projection's own rate when the pathway was made: what a Composition's learning uses
        #: (PsyNeuLink 0.21 ignores later assignments to ``projection.learning_rate`` there)
        self.projection_rate = projection.learning_rate
        self.overridden = False
        self.learning_rate = Parameter(self, "learning_rate", "_rate", "_set_rate")
        self.parameters = Parameters(self, learning_rate=("_rate", "_set_rate"))
        self.log = projection.log.__class__()

    def _set_rate(self, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterError(f"{self.name!r}: learning_rate must be a number, got {value!r}")
        self._rate = float(value)
        self.overridden = True

    def __repr__(self) -> str:
        return f"(LearningMechanism {self.name})"


def learning_components(pathway: Pathway, sample: TransferMechanism, target: TargetMechanism,
                        objective: ObjectiveMechanism, projections: list[MappingProjection],
                        mechanisms: list[LearningMechanism]) -> dict[str, Any]:
    """PsyNeuLink's ``learning_components`` dict of a learning pathway (keys measured)."""
    return {
        "SAMPLE_MECHANISM": sample,
        TARGET_MECHANISM: target,
        OBJECTIVE_MECHANISM: objective,
        LEARNING_MECHANISMS: mechanisms,
        LEARNED_PROJECTIONS: projections,
        LEARNING_FUNCTION: BackPropagation,
    }
