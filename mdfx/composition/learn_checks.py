"""The checks of learn()'s arguments that hold in every execution mode, made before any work.

One function, :func:`check_learn_arguments`, called once from the learn() entry point:
every mode refuses the same values with the same :class:`~mdfx.errors.ParameterError`
(which is also a ``ValueError`` where PsyNeuLink or numpy raised one), instead of one mode
ignoring a value that another refuses, or numpy raising its own exception mid-call.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mdfx.errors import CompositionError, DataError, ParameterError

#: learn(results=...): every trial of every epoch, or only the last epoch's (bounded memory).
RESULTS_MODES = ("all", "last_epoch")
#: learn(dtype=...): the precisions every backend computes in (Python mode computes float64
#: and casts; the torch and LLVM backends compute in it).
LEARN_DTYPES = ("float64", "float32")
#: numpy's seeds are 32-bit: ``default_rng``/``RandomState`` take 0 .. 2**32 - 1.
SEED_RANGE = (0, 2**32 - 1)


#: learn(on_nonfinite=...): raise (mdfx's default) or keep the NaN weights (PsyNeuLink's behaviour).
NONFINITE_CHOICES = ("raise", "keep")


class DivergedError(DataError):
    """learn() whose loss became NaN or infinite (with on_nonfinite="raise")."""


class LearnArgumentError(ParameterError, ValueError):
    """A learn() argument no mode can take (a ValueError too, as numpy's refusals were)."""


def check_learn_arguments(name: str, *, seed: Any, results: Any, learning_rate: Any, dtype: Any,
                          inputs: Any = None, targets: Any = None, on_nonfinite: Any = "raise") -> None:
    """Refuse, naming the argument and what it holds, what learn() cannot take in any mode."""
    from mdfx.composition.learning_rates import check_rate

    where = f"{name!r}.learn()"
    for what, given in (("inputs", inputs), ("targets", targets)):
        if isinstance(given, Mapping):
            nested = given.get("inputs"), given.get("targets") if what == "inputs" else None
            for part in (given, *(g for g in nested if isinstance(g, Mapping))):
                for key, value in part.items():
                    if getattr(value, "requires_grad", False) is True:
                        # numpy cannot read a tensor of an autograd graph without cutting it off
                        raise DataError(f"{where}: {what} for {getattr(key, 'name', key)!r} is a torch tensor that "
                                        "requires grad; pass tensor.detach() (mdfx computes its own gradients)")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            shown = "NaN" if isinstance(seed, float) and math.isnan(seed) else repr(seed)
            raise LearnArgumentError(f"{where}: seed must be an integer in {SEED_RANGE[0]}..{SEED_RANGE[1]} or "
                                     f"None, got {type(seed).__name__} {shown}")
        if not SEED_RANGE[0] <= int(seed) <= SEED_RANGE[1]:
            raise LearnArgumentError(f"{where}: seed must be in {SEED_RANGE[0]}..{SEED_RANGE[1]} (numpy's 32-bit "
                                     f"seeds), got {int(seed)}")
    if not isinstance(results, str) or results not in RESULTS_MODES:
        raise LearnArgumentError(f"{where}: results={results!r}; expected one of {', '.join(RESULTS_MODES)}")
    if not isinstance(dtype, str) or dtype not in LEARN_DTYPES:
        raise LearnArgumentError(f"{where}: dtype={dtype!r}; learn() computes in {' or '.join(LEARN_DTYPES)} "
                                 "(give the name as a string)")
    if not isinstance(on_nonfinite, str) or on_nonfinite not in NONFINITE_CHOICES:
        raise LearnArgumentError(f"{where}: on_nonfinite={on_nonfinite!r}; expected one of "
                                 f"{', '.join(NONFINITE_CHOICES)}")
    check_rate(learning_rate, f"{where}: learning_rate", CompositionError)


def check_finite_losses(name: str, losses: Sequence[float], per_epoch: int, rolled_back: bool = True) -> None:
    """learn(on_nonfinite="raise"): a loss that became NaN or infinite is an error naming where."""
    array = np.asarray(losses, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(array))
    if not bad.size:
        return
    at = int(bad[0])
    per_epoch = max(int(per_epoch), 1)
    raise DivergedError(f"{name!r}.learn(): training diverged: the loss became {float(array[at])!r} at epoch "
                        f"{at // per_epoch} minibatch {at % per_epoch} (minibatch {at} overall); "
                        + ("the weights are those of before the call. " if rolled_back else
                           "the one minibatch's update is kept (its outputs were already not finite). ")
                        + "Lower the learning rate, or pass on_nonfinite='keep' to keep the NaN weights as "
                        "PsyNeuLink does")
