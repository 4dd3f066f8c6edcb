"""PsyNeuLink's ``component.parameters.<name>.get(context)`` / ``.set(value, context)``.

mdfx keeps one value per parameter (no execution contexts): ``context`` is
accepted and ignored, and each Parameter reads and writes an attribute of its owner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mdfx.errors import ParameterError


class Parameter:
    """One named parameter of ``owner``, read and written through ``getter``/``setter``."""

    def __init__(self, owner: object, name: str, getter: Callable[[], Any],
                 setter: Callable[[Any], None] | None = None) -> None:
        self._owner = owner
        self.name = name
        self._getter = getter
        self._setter = setter

    def get(self, context: object = None) -> Any:
        """The current value (``context`` is accepted for PsyNeuLink compatibility)."""
        return self._getter()

    _get = get

    def set(self, value: Any, context: object = None, override: bool = False) -> None:
        if self._setter is None:
            raise ParameterError(f"parameter {self.name!r} of {getattr(self._owner, 'name', self._owner)!r} "
                                 "is read-only")
        self._setter(value)

    @property
    def base(self) -> Any:
        return self._getter()

    @base.setter
    def base(self, value: Any) -> None:
        self.set(value)

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, {self._getter()!r})"


class Parameters:
    """The ``parameters`` namespace of a component: attribute ``x`` is a :class:`Parameter`."""

    def __init__(self, owner: object, **params: tuple[Callable[[], Any], Callable[[Any], None] | None]) -> None:
        self._owner = owner
        self._params = {name: Parameter(owner, name, get, set_) for name, (get, set_) in params.items()}

    def __getattr__(self, name: str) -> Parameter:
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{getattr(self._owner, 'name', self._owner)!r} has no parameter {name!r} "
                             f"(it has: {', '.join(params)})")

    def add(self, **params: tuple[Callable[[], Any], Callable[[Any], None] | None]) -> None:
        """Add parameters (a subclass adds its own to its base class's)."""
        self._params.update({name: Parameter(self._owner, name, get, set_) for name, (get, set_) in params.items()})

    def __contains__(self, name: str) -> bool:
        return name in self._params

    def names(self) -> list[str]:
        return list(self._params)


def attribute(owner: object, attr: str, writable: bool = True
              ) -> tuple[Callable[[], Any], Callable[[Any], None] | None]:
    """A (getter, setter) pair over ``owner.attr``."""
    return (lambda: getattr(owner, attr)), ((lambda v: setattr(owner, attr, v)) if writable else None)
