"""PsyNeuLink names that mdfx knows of but does not implement: importing them works, using them
raises :class:`~mdfx.errors.UnsupportedError` naming the thing and what to use instead.

A PsyNeuLink script or test file imports dozens of names at its top (schedulers, control,
integrators); without them the whole file stops at its first line, even the parts about
learning that mdfx runs. With them, only the part that uses one fails, and it says why.
"""

from __future__ import annotations

from enum import Enum, Flag, IntFlag
from typing import Any, NoReturn

from mdfx.errors import UnsupportedError

#: what to do instead, said by every import-only name
_INSTEAD = ("mdfx builds feed-forward networks of ProcessingMechanism/TransferMechanism joined by "
            "MappingProjections and learns them by backpropagation; run this part in PsyNeuLink")


def _refuse(name: str, kind: str) -> NoReturn:
    raise UnsupportedError(f"{name}: PsyNeuLink's {kind} is not implemented in mdfx ({_INSTEAD})")


class _ImportOnlyMeta(type):
    """Class attributes of an import-only class (``DDM.DECISION_VARIABLE``) refuse too."""

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        _refuse(f"{cls.__name__}.{attr}", cls._kind)  # type: ignore[attr-defined]


class ImportOnly(metaclass=_ImportOnlyMeta):
    """Base of the import-only classes. One can be made (a script or test file builds its
    arguments at import time), but using it raises UnsupportedError: calling it, reading an
    attribute, or giving it to a mechanism or composition (which reads its attributes)."""

    _kind = "component"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = (args, kwargs)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        _refuse(f"{type(self).__name__}.{attr}" if not attr.startswith("_") else type(self).__name__,
                self._kind)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        _refuse(type(self).__name__, self._kind)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(import only)"


def _import_only(name: str, kind: str) -> type:
    return _ImportOnlyMeta(name, (ImportOnly,), {"_kind": kind, "__doc__": f"PsyNeuLink's {kind} "
                                                "(import only: using it raises UnsupportedError)."})


class CostFunctions(Flag):
    """The costs a PsyNeuLink ControlSignal or TransferWithCosts adds (PsyNeuLink 0.21's values).

    mdfx has neither: the flag exists so that scripts import and combine it; what takes it
    (``TransferWithCosts``, ``ControlSignal``) raises UnsupportedError.
    """

    NONE = 0
    INTENSITY = 1
    ADJUSTMENT = 2
    DURATION = 4
    ALL = 7
    DEFAULTS = 0


class TimeScale(Enum):
    """PsyNeuLink 0.21's scheduler time scales, with its aliases (import only: mdfx has no scheduler)."""

    CONSIDERATION_SET_EXECUTION = 0
    PASS = 1
    ENVIRONMENT_STATE_UPDATE = 2
    ENVIRONMENT_SEQUENCE = 3
    LIFE = 4
    TIME_STEP = 0
    TRIAL = 2
    RUN = 3


class PathwayRole(Enum):
    """PsyNeuLink 0.21's pathway roles (import only)."""

    ORIGIN = 0
    INPUT = 1
    SINGLETON = 2
    INTERNAL = 3
    OUTPUT = 4
    TERMINAL = 5
    CYCLE = 6
    CONTROL = 7
    LEARNING = 8


class SchedulingMode(Enum):
    """PsyNeuLink 0.21's scheduling modes (import only: mdfx runs nodes in topological order)."""

    STANDARD = 1
    EXACT_TIME = 2


class EdgeType(Enum):
    """PsyNeuLink 0.21's projection edge types (import only: mdfx networks are feed-forward)."""

    NON_FEEDBACK = False
    FEEDBACK = True
    FLEXIBLE = "MAYBE"


class FieldType(Enum):
    """PsyNeuLink 0.21's EMComposition field types (import only)."""

    KEY = 0
    VALUE = 1


class ReportDevices(Flag):
    """PsyNeuLink 0.21's report devices (import only: mdfx reports nothing per trial)."""

    CONSOLE = 1
    RECORD = 2
    DIVERT = 4
    PNL_VIEW = 8


class ReportSimulations(Enum):
    """PsyNeuLink 0.21's report-simulations switch (import only)."""

    OFF = 0
    ON = 1


class ContextFlags(IntFlag):
    """PsyNeuLink 0.21's context flags (import only: mdfx has one execution context)."""

    UNSET = 0
    DEFERRED_INIT = 1
    INITIALIZING = 2
    VALIDATING = 4
    INITIALIZED = 8
    RESET = 16
    UNINITIALIZED = 32
    INITIALIZATION_MASK = 63
    PREPARING = 64
    PROCESSING = 128
    LEARNING = 256
    CONTROL = 512
    DISPLAYING = 1024
    IDLE = 2048
    EXECUTING = 896
    EXECUTION_PHASE_MASK = 4032
    COMMAND_LINE = 4096
    CONSTRUCTOR = 8192
    METHOD = 16384
    COMPOSITION = 32768
    SHOW_GRAPH = 65536
    NONE = 131072
    SOURCE_MASK = 258048
    DEFAULT_MODE = 262144
    LEARNING_MODE = 524288
    SIMULATION_MODE = 1048576
    RUN_MODE_MASK = 1835008
    ALL_FLAGS = 2097151


#: name -> what it is in PsyNeuLink; each becomes an import-only class of mdfx
NAMES = {
    # integrators and mechanisms that hold state over time steps
    "DriftDiffusionIntegrator": "integrator function", "AdaptiveIntegrator": "integrator function",
    "SimpleIntegrator": "integrator function", "IntegratorFunction": "integrator function",
    "AccumulatorIntegrator": "integrator function", "LeakyCompetingIntegrator": "integrator function",
    "FitzHughNagumoIntegrator": "integrator function", "DriftDiffusionAnalytical": "DDM function",
    "IntegratorMechanism": "mechanism", "DDM": "mechanism", "LCAMechanism": "mechanism",
    "RecurrentTransferMechanism": "mechanism", "KohonenMechanism": "mechanism",
    "EpisodicMemoryMechanism": "mechanism", "DictionaryMemory": "memory function",
    "CompositionInterfaceMechanism": "mechanism",
    "TransferWithCosts": "transfer function with costs", "UserDefinedFunction": "function",
    "HypersphericalToCartesian": "transfer function", "Gaussian": "transfer function",
    "GaussianDistort": "transfer function", "BinomialDistort": "transfer function", "Dropout": "transfer function",
    "DefaultControlMechanism": "control mechanism", "GatingSignal": "port", "LearningSignal": "port",
    "ModulatorySignal": "port", "Buffer": "function", "CompositionFunctionApproximator": "function",
    "LeabraFunction": "function", "MatrixMemory": "memory function", "MatrixTransform": "function",
    "NormalDist": "distribution function", "UniformDist": "distribution function", "Rearrange": "function",
    "Reduce": "function", "SampleSpec": "sample specification", "All": "scheduling condition",
    "BeforeNode": "scheduling condition", "BeforeNodes": "scheduling condition", "Condition": "scheduling condition",
    "Not": "scheduling condition", "Or": "scheduling condition", "Threshold": "scheduling condition",
    # control
    "ControlMechanism": "control mechanism", "LCControlMechanism": "control mechanism",
    "OptimizationControlMechanism": "control mechanism", "ControlProjection": "projection",
    "ControlSignal": "port", "GridSearch": "optimization function",
    # scheduling conditions and preferences
    "Scheduler": "scheduler", "AtTimeStep": "scheduling condition", "AtTrial": "scheduling condition",
    "EveryNCalls": "scheduling condition", "Never": "scheduling condition", "AfterNCalls": "scheduling condition",
    "AfterNTrials": "scheduling condition", "EveryNPasses": "scheduling condition",
    "BeforeNCalls": "scheduling condition", "WhenFinished": "scheduling condition", "Always": "scheduling condition",
    "TimeInterval": "scheduling condition", "PreferenceEntry": "preference", "PreferenceLevel": "preference",
    # other learning rules (mdfx learns by backpropagation only)
    "Reinforcement": "learning function", "TDLearning": "learning function",
}

#: whether the graph_scheduler package's structural conditions are available: not in mdfx
graph_structure_conditions_available = False
gsc_unavailable_message = "mdfx has no scheduler, so no graph-structure scheduling conditions"

#: import-only until mdfx has them; ``mdfx/__init__`` adds each only where no real one is defined
LATER = {name: _import_only(name, kind) for name, kind in {
    "GRUComposition": "composition", "EMComposition_Proj": "composition", "EMComposition": "composition",
    "PytorchGRUCompositionWrapper": "PyTorch wrapper"}.items()}

_CLASSES = {name: _import_only(name, kind) for name, kind in NAMES.items()}
globals().update(_CLASSES)

__all__ = ["ContextFlags", "CostFunctions", "EdgeType", "FieldType", "ImportOnly", "PathwayRole", "ReportDevices",
           "ReportSimulations", "SchedulingMode", "TimeScale",
           "graph_structure_conditions_available", "gsc_unavailable_message", *_CLASSES]
