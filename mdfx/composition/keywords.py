"""PsyNeuLink's module-level keyword constants, with PsyNeuLink 0.21's values (measured).

Scripts use them as dictionary keys and argument values (``learning_components[TARGET_MECHANISM]``,
``learning_rate={DEFAULT_LEARNING_RATE: .1}``, ``set_log_conditions(VALUE)``), so the
strings must equal PsyNeuLink's.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

ALL = "all"
ARRAY = "ARRAY"
CROSS_ENTROPY = "cross-entropy"
DEFAULT_LEARNING_RATE = "default_learning_rate"
EPOCH = "epoch"
ERROR_SIGNAL = "error_signal"
INPUT = "input"
INPUT_SHAPES = "input_shapes"
INTERNAL = "INTERNAL"
LEARNED_PROJECTIONS = "LEARNED_PROJECTIONS"
LEARNING = "LEARNING"
LEARNING_FUNCTION = "learning_function"
LEARNING_MECHANISMS = "LEARNING_MECHANISMS"
LEARNING_RATE = "learning_rate"
MATRIX = "matrix"
MINIBATCH = "minibatch"
NAME = "name"
OBJECTIVE_MECHANISM = "objective_mechanism"
PRODUCT = "product"
PROJECTIONS = "projections"
RUN = "run"
SAMPLE = "SAMPLE"
SELECTED_INPUT_ARRAY = "SELECTED_INPUT_ARRAY"
SOFT_CLAMP = "soft_clamp"
HARD_CLAMP = "hard_clamp"
PULSE_CLAMP = "pulse_clamp"
NO_CLAMP = "no_clamp"
SUM = "sum"
TARGET = "TARGET"
TARGET_MECHANISM = "TARGET_MECHANISM"
TRAINING_SET = "training set"
TRIAL = "trial"
VALUE = "value"
IDENTITY_MATRIX = "IdentityMatrix"
FULL_CONNECTIVITY_MATRIX = "FullConnectivityMatrix"
RANDOM_CONNECTIVITY_MATRIX = "RandomConnectivityMatrix"


class LogCondition(IntFlag):
    """When a logged item is recorded (PsyNeuLink's values). mdfx records per minibatch of learn()."""

    INITIALIZATION = 2
    VALIDATION = 4
    PROCESSING = 128
    LEARNING = 256
    CONTROL = 512
    SIMULATION = 1048576
    TRIAL = 2097152
    RUN = 4194304


class ReportOutput(IntEnum):
    """How much a run reports as it goes (PsyNeuLink's values); mdfx reports nothing per trial."""

    OFF = 0
    TERSE = 1
    USE_PREFS = 2
    FULL = 3


class Context:
    """PsyNeuLink's execution context, accepted where PsyNeuLink takes one.

    mdfx keeps one set of values per composition: every context names that one,
    so two contexts do not hold separate results or weights.
    """

    def __init__(self, execution_id: object = None) -> None:
        self.execution_id = execution_id

    def __repr__(self) -> str:
        return f"Context(execution_id={self.execution_id!r})"
