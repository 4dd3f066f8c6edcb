"""Which learning rate each projection trains at: PsyNeuLink's precedence, resolved per learn().

A rate may be a number, ``None`` (not given: the next level decides), ``True``
(the next level's number, but never frozen by a ``False`` above it) or
``False``/``0`` (frozen: the projection does not learn in this learn()).
Precedence, first decisive wins (measured in PsyNeuLink 0.21, see facts.md):

1. a LearningMechanism's rate set by the user;
2. learn()'s dict entry for the projection (``None`` there: learn()'s default);
3. the projection's own ``learning_rate`` (a number, or ``False``/``0``);
4. learn()'s ``learning_rate`` (number or the dict's ``DEFAULT_LEARNING_RATE``);
5. the composition's dict entry for the projection;
6. the learning pathway's ``learning_rate``;
7. the composition's ``learning_rate`` (``False`` freezes unless the projection says ``True``);
8. the default (0.05 for a Composition, 0.001 for an AutodiffComposition).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mdfx.composition.keywords import DEFAULT_LEARNING_RATE
from mdfx.errors import ParameterError

FROZEN = False


def check_rate(value: object, what: str) -> object:
    """Accept a number, bool, None, or a dict of them (keys: projections, names, DEFAULT_LEARNING_RATE)."""
    if isinstance(value, Mapping):
        for key, rate in value.items():
            check_rate(rate, f"{what}[{getattr(key, 'name', key)!r}]")
        return dict(value)
    if value is None or isinstance(value, bool | int | float | np.number):
        if isinstance(value, int | float | np.number) and not isinstance(value, bool) and value < 0:
            raise ParameterError(f"{what} must not be negative, got {value!r}")
        return value
    raise ParameterError(f"{what} must be a number, True, False, None or a dict "
                         f"{{DEFAULT_LEARNING_RATE: rate, projection: rate}}; got {value!r}")


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


def resolve(projection: Any, default: float, comp_spec: object, pathway_rate: object, learn_spec: object,
            mechanism: Any = None) -> float | bool:
    """The rate ``projection`` trains at in this learn(), or False when it is frozen."""
    if mechanism is not None and mechanism.overridden:
        return float(mechanism.learning_rate.get())
    learn_default, learn_entries = split(learn_spec)
    comp_default, comp_entries = split(comp_spec)
    found, rate = lookup(learn_entries, projection)
    if found:
        if _number(rate):
            return float(rate) if rate else FROZEN  # type: ignore[arg-type]
        if rate is False:
            return FROZEN
    own = projection.learning_rate
    if _number(own):
        return float(own) if own else FROZEN
    if own is False:
        return FROZEN
    protected = own is True or (found and rate is True)
    if learn_default is False and not protected:
        return FROZEN
    if _number(learn_default):
        return float(learn_default) if learn_default else FROZEN  # type: ignore[arg-type]
    found, rate = lookup(comp_entries, projection)
    if found and _number(rate):
        return float(rate) if rate else FROZEN  # type: ignore[arg-type]
    if found and rate is True:
        protected = True
    if _number(pathway_rate):
        return float(pathway_rate)  # type: ignore[arg-type]
    if pathway_rate is False and not protected:
        return FROZEN
    if _number(comp_default):
        return float(comp_default) if comp_default else FROZEN  # type: ignore[arg-type]
    if comp_default is False and not protected:
        return FROZEN
    return float(default)
