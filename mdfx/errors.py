"""The one exception family of mdfx (DESIGN rule 7: errors name the thing)."""

from __future__ import annotations


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


class GridError(MdfxError):
    """A sweep's grid, seeds or settings that cannot be run (unknown option, empty list, wrong type)."""
