"""``python -m mdfx`` is the ``mdfx`` command."""

from mdfx.cli import entry

entry()
