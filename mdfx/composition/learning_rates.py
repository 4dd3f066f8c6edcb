"""Which learning rate each projection trains at: PsyNeuLink's precedence, resolved per learn().

A rate may be a number, ``None`` (not given here), ``True`` (not given here, and
protected against a ``False`` default) or ``False``/``0`` (frozen: the projection
does not learn in this learn()). A projection belongs to a chain of levels, its
own composition first, then each composition it is nested in (a learning
pathway's rate counts as part of its composition's level). First decisive wins
(measured in PsyNeuLink 0.21's own tests and runs, see facts.md):

1. a LearningMechanism's rate set by the user;
2. learn()'s dict entry for the projection (``None`` there: skip to 5, ``True``: protected);
3. the levels' dict entries for the projection, innermost first (``True``: protected for good);
4. the projection's own ``learning_rate`` (``True``: protected, except from the outermost level);
5. learn()'s ``learning_rate`` (a number, or the dict's ``DEFAULT_LEARNING_RATE``);
6. the levels' pathway rate, then default, innermost first; a ``False`` freezes unless protected;
7. the default (0.05 for a Composition, 0.001 for an AutodiffComposition).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mdfx.composition.keywords import DEFAULT_LEARNING_RATE
from mdfx.errors import CompositionError, MdfxError, ParameterError

FROZEN = False


def check_rate(value: object, what: str, error: type[MdfxError] = ParameterError, nested: bool = False) -> object:
    """Accept a number, bool, None, or a dict of them (keys: projections, names, DEFAULT_LEARNING_RATE).

    ``error``: the class raised for a value of the wrong type (PsyNeuLink raises
    ParameterError for a constructor's learning_rate, CompositionError for learn()'s)."""
    if isinstance(value, Mapping):
        if nested:
            raise error(f"{what} is a dict inside a learning_rate dict; each projection takes one rate "
                        "(a number, True, False or None)")
        for key, rate in value.items():
            # PsyNeuLink 0.21 refuses a key of another kind when the dict is given (measured)
            if not isinstance(key, str) and not (hasattr(key, "learnable") and hasattr(key, "matrix")):
                raise error(f"{what}: key {key!r} is neither a projection nor a projection's name "
                            "(nor DEFAULT_LEARNING_RATE)")
            check_rate(rate, f"{what}[{getattr(key, 'name', key)!r}]", error, nested=True)
        return dict(value)
    if value is None or isinstance(value, bool | int | float | np.number):
        if isinstance(value, int | float | np.number) and not isinstance(value, bool):
            if nested and not np.isfinite(float(value)):
                # a NaN or infinite rate makes every weight NaN at the first step (a plain number is
                # refused by learn()'s shared option check, mdfx.schema.validate.learn_options)
                raise ParameterError(f"{what} must be a finite number, got {value!r}")
            if value < 0:
                # mdfx's own check (PsyNeuLink leaves it to torch's ValueError): one class everywhere
                raise ParameterError(f"{what} must not be negative, got {value!r}")
        return value
    raise error(f"{what} must be a number, True, False, None or a dict "
                f"{{DEFAULT_LEARNING_RATE: rate, projection: rate}}; got {value!r}")


def check_keys(spec: object, projections: list[Any], what: str) -> None:
    """Every projection a rate dict names (object or name) is one of ``projections`` (those of
    the composition and of the compositions nested in it) and learnable; else CompositionError,
    as PsyNeuLink raises when learn() starts."""
    for key in split(spec)[1]:
        if isinstance(key, str):
            found = [p for p in projections if p.name == key]
        elif hasattr(key, "learnable") and hasattr(key, "matrix"):
            found = [p for p in projections if p is key]
        else:
            raise CompositionError(f"{what}: key {key!r} is neither a projection nor a projection's name "
                                   "(nor DEFAULT_LEARNING_RATE)")
        name = getattr(key, "name", key)
        if not found:
            raise CompositionError(f"{what}: projection {name!r} is not in the composition that learns or any "
                                   "composition nested in it")
        if not found[0].learnable:
            raise CompositionError(f"{what}: projection {name!r} has learnable=False, so it takes no learning "
                                   "rate; set its learnable to True or leave it out of the dict")


def split(spec: object) -> tuple[object, dict[Any, object]]:
    """(default part, per-projection part) of a rate spec."""
    if isinstance(spec, Mapping):
        return spec.get(DEFAULT_LEARNING_RATE), {k: v for k, v in spec.items() if k != DEFAULT_LEARNING_RATE}
    return spec, {}


def lookup(entries: Mapping[Any, object], projection: Any) -> tuple[bool, object]:
    """(found, rate) for ``projection`` keyed by the object or its name."""
    for key, rate in entries.items():
        if key is projection or key == getattr(projection, "name", None):
            return True, rate
    return False, None


def _number(value: object) -> bool:
    return value is not None and not isinstance(value, bool)


def resolve(projection: Any, default: float, levels: list[tuple[object, object]], learn_spec: object,
            mechanism: Any = None) -> float | bool:
    """The rate ``projection`` trains at in this learn(), or False when it is frozen.

    ``levels`` is ``[(composition learning_rate spec, pathway rate), ...]``, innermost first.
    """
    if mechanism is not None and mechanism.overridden:
        return float(mechanism.learning_rate.get())
    learn_default, learn_entries = split(learn_spec)
    protected = strong = False
    found, rate = lookup(learn_entries, projection)
    if found and (_number(rate) or rate is False):
        return _rate(rate)
    skip_specific = found and rate is None
    protected = found and rate is True
    if not skip_specific:
        for comp_spec, _ in levels:
            found, rate = lookup(split(comp_spec)[1], projection)
            if found and (_number(rate) or rate is False):
                return _rate(rate)
            if found and rate is True:
                protected = strong = True
        own = projection.learning_rate
        if _number(own) or own is False:
            return _rate(own)
        protected = protected or own is True
    if _number(learn_default) or (learn_default is False and not protected):
        return _rate(learn_default)
    for i, (comp_spec, pathway_rate) in enumerate(levels):
        outermost = i == len(levels) - 1
        for value in (pathway_rate, split(comp_spec)[0]):
            if _number(value):
                return _rate(value)
            if value is False and not (strong or (protected and not outermost)):
                return FROZEN
    return float(default)


def _rate(value: object) -> float | bool:
    return float(value) if value else FROZEN  # type: ignore[arg-type]
