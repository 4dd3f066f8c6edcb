"""Session-wide pytest hooks."""

from __future__ import annotations

import sys

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # The foreign corpus is written at test time: say how many files and how long it took.
    module = sys.modules.get("test_foreign_corpus")
    line = module.corpus_summary() if module is not None else None
    if line:
        terminalreporter.write_line(line)
