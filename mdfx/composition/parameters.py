"""PsyNeuLink's ``component.parameters.<name>.get(context)`` / ``.set(value, context)``.

mdfx keeps one value per parameter: ``context`` is accepted and ignored, and each
Parameter reads and writes an attribute of its owner. (A projection's matrix is the
one value kept per composition, PsyNeuLink's execution contexts; it reads as the
composition that last ran or learned, see ``MappingProjection._enter``.)
"""

from __future__ import annotations

from typing import Any

from mdfx.errors import ParameterError


class Parameter:
    """One named parameter of ``owner``: its attribute ``attr``, writable or not.

    Plain data (owner, attribute name, flag), so components stay picklable and copyable.
    """

    def __init__(self, owner: object, name: str, attr: str, writable: bool | str = True) -> None:
        self._owner = owner
        self.name = name
        self._attr = attr
        #: True (assign the attribute), False (read-only) or the name of the owner's setter method
        self._writable = writable

    def get(self, context: object = None) -> Any:
        """The current value (``context`` is accepted for PsyNeuLink compatibility)."""
        return getattr(self._owner, self._attr)

    _get = get

    def set(self, value: Any, context: object = None, override: bool = False) -> None:
        if not self._writable:
            raise ParameterError(f"parameter {self.name!r} of {getattr(self._owner, 'name', self._owner)!r} "
                                 "is read-only")
        if isinstance(self._writable, str):
            getattr(self._owner, self._writable)(value)
        else:
            setattr(self._owner, self._attr, value)

    @property
    def base(self) -> Any:
        return self.get()

    @base.setter
    def base(self, value: Any) -> None:
        self.set(value)

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, {self.get()!r})"


class Parameters:
    """The ``parameters`` namespace of a component: attribute ``x`` is a :class:`Parameter`."""

    def __init__(self, owner: object, **params: tuple[str, bool | str]) -> None:
        self._owner = owner
        self._params = {name: Parameter(owner, name, attr, writable) for name, (attr, writable) in params.items()}

    def __getattr__(self, name: str) -> Parameter:
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        if name.startswith("_"):  # copy/pickle probe private names before __dict__ is filled
            raise AttributeError(name)
        owner = self.__dict__.get("_owner")
        raise AttributeError(f"{getattr(owner, 'name', owner)!r} has no parameter {name!r} "
                             f"(it has: {', '.join(params)})")

    def add(self, **params: tuple[str, bool | str]) -> None:
        """Add parameters (a subclass adds its own to its base class's)."""
        self._params.update({name: Parameter(self._owner, name, attr, writable)
                             for name, (attr, writable) in params.items()})

    def __contains__(self, name: str) -> bool:
        return name in self._params

    def names(self) -> list[str]:
        return list(self._params)


def attribute(owner: object, attr: str, writable: bool | str = True) -> tuple[str, bool | str]:
    """The spec of a parameter that reads (and, if ``writable``, writes) ``owner.attr``."""
    return attr, writable
