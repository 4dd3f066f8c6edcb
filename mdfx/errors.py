"""The one exception family of mdfx (DESIGN rule 7: errors name the thing)."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager


class MdfxError(Exception):
    """Base class: every user-facing error that mdfx raises on purpose.

    The CLI prints these in one line and exits non-zero; anything else is a bug
    and shows a traceback.
    """


class GraphError(MdfxError):
    """A composition whose structure cannot be built (cycle, shape mismatch, unknown node)."""


class SchemaError(MdfxError):
    """An MDF file or object that cannot be read, or uses an unsupported construct."""


class UnsupportedError(SchemaError):
    """A model feature mdfx does not support (stateful nodes, conditions, an unknown op...)."""


class DataError(MdfxError):
    """Inputs or targets that do not fit the model (missing node, wrong shape, NaN)."""


class LimitError(MdfxError):
    """A file, data set or call that would exceed a resource limit (see :mod:`mdfx.limits`)."""


#: Exceptions a malformed file can raise deep inside a parser or a dialect (a list where
#: a dict was expected, a missing key, a huge or absurd value, a corrupt archive or pickle).
#: Loaders turn them into :class:`SchemaError` naming the file; other types stay bugs.
_MALFORMED: tuple[type[BaseException], ...] = (
    TypeError, KeyError, AttributeError, ValueError, IndexError, RecursionError, OverflowError,
    MemoryError, EOFError, UnicodeError, zipfile.BadZipFile, pickle.UnpicklingError,
)


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line, cut at ``limit`` characters (for messages quoting foreign text)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


@contextmanager
def reading(source: object, what: str = "model") -> Iterator[None]:
    """Fail closed while reading ``source`` (a path or a description of an object).

    An :class:`MdfxError` gains the source's name when its message lacks it; the
    exceptions of a malformed input (see ``_MALFORMED``) become a :class:`SchemaError`
    that names the source and keeps the original type and text (and the original as
    ``__cause__``), so a bug is still visible but never a bare traceback.
    """
    name = str(source)
    try:
        yield
    except MdfxError as exc:
        if exc.args and isinstance(exc.args[0], str) and name not in exc.args[0]:
            exc.args = (f"{name}: {exc.args[0]}", *exc.args[1:])
        raise
    except _MALFORMED as exc:
        kind = "too deeply nested" if isinstance(exc, RecursionError) else "malformed"
        raise SchemaError(f"{name}: {kind} {what} ({type(exc).__name__}: {one_line(exc)})") from exc
class CompositionError(GraphError):
    """PsyNeuLink's name for a composition that cannot be built or learned as asked."""


class AutodiffCompositionError(CompositionError):
    """PsyNeuLink's name for an AutodiffComposition-specific refusal."""


class ParameterError(MdfxError):
    """A parameter given a value it cannot take (PsyNeuLink's ParameterError)."""


class GridError(MdfxError):
    """A sweep's grid, seeds or settings that cannot be run (unknown option, empty list, wrong type)."""


class RunError(MdfxError):
    """PsyNeuLink's name for a run() that cannot execute as asked."""


class NodeRoleError(CompositionError):
    """PsyNeuLink's name for a node role that cannot be given or required."""


class ShowGraphError(MdfxError):
    """show_graph() asked for something it cannot draw (an unknown option or format)."""


class EMCompositionError(CompositionError):
    """PsyNeuLink's name for an EMComposition that cannot be built or learned as asked."""


class EMCompositionProjError(CompositionError):
    """PsyNeuLink's name for an EMComposition_Proj that cannot be built or learned as asked."""


class GRUCompositionError(CompositionError):
    """PsyNeuLink's name for a GRUComposition that cannot be built or learned as asked."""


class ComponentError(MdfxError):
    """PsyNeuLink's name for a component (mechanism, function, port) that cannot be made as asked."""


class FunctionError(ComponentError):
    """PsyNeuLink's name for a function that cannot be made or computed as asked."""


class ShellClassError(ComponentError):
    """PsyNeuLink's name for an error of its base classes (kept for scripts that catch it)."""
