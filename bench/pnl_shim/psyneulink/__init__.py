"""``import psyneulink`` resolved to mdfx, for bench/pnl_suite.py only (not installed, not in CI).

Every name, at any depth (``psyneulink.core.compositions.composition.Composition``),
is looked up on :mod:`mdfx`; a name mdfx lacks raises the usual AttributeError /
ImportError, which the suite report groups as the missing name.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

import mdfx


def __getattr__(name: str) -> object:
    return getattr(mdfx, name)


class _Submodules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Any ``psyneulink.x.y`` is a module whose attributes are mdfx's."""

    def find_spec(self, fullname: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        # lower-case parts are PsyNeuLink's modules; a capitalised one is a class mdfx lacks
        if fullname.startswith(__name__ + ".") and fullname.rpartition(".")[2].islower():
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name)
        module.__path__ = []  # type: ignore[attr-defined]
        module.__getattr__ = __getattr__  # type: ignore[attr-defined]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


sys.meta_path.insert(0, _Submodules())
