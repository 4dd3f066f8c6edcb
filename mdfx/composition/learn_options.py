"""learn()'s options as one dataclass, written once.

:meth:`AutodiffComposition.learn` keeps PsyNeuLink's keyword signature (a script
written for PsyNeuLink calls it unchanged) and packs its arguments into one
:class:`LearnOptions`; the session (:mod:`mdfx.composition.learning_session`,
PsyNeuLink's argument forms) and the engine (``AutodiffComposition._learn_plain``)
take that object instead of repeating the ~24 arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from mdfx.composition.enums import ExecutionMode


@dataclass
class LearnOptions:
    """One learn() call's arguments; see :meth:`AutodiffComposition.learn` for their meaning."""

    inputs: Any = None
    targets: Mapping | None = None
    num_trials: int | None = None
    epochs: int = 1
    learning_rate: object = None  #: a number, None, False or PsyNeuLink's dict; the engine gets a float
    minibatch_size: int | str = 1
    randomize_minibatch: bool = False
    patience: int | None = None
    min_delta: float = 0
    call_before_minibatch: Callable | None = None
    call_after_minibatch: Callable | None = None
    execution_mode: ExecutionMode = ExecutionMode.PyTorch
    report_progress: object = None
    seed: int | None = None
    dtype: str = "float64"
    randomize_minibatches: bool | None = None  #: PsyNeuLink 0.21's spelling of randomize_minibatch
    context: object = None
    synch_results_with_torch: object = None
    batched_results: bool = False
    results: str = "all"
    optimizations_per_minibatch: int = 1
    execute_in_additional_optimizations: Mapping | None = None
    synch_projection_matrices_with_torch: object = None
    #: set by the session for the engine: each learnable param's rate where it is not the call's
    param_learning_rates: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, arguments: Mapping[str, Any]) -> LearnOptions:
        """The options among ``arguments`` (a learn()'s ``locals()``: ``self`` and the like are left out)."""
        return cls(**{k: v for k, v in arguments.items() if k in _NAMES})


#: the field names, read once (learn() is called often: fields() costs microseconds a call)
_NAMES = frozenset(f.name for f in fields(LearnOptions))
