"""ONNX's own backend node tests, generated at test time, in every execution mode.

Every test whose ops mdfx imports runs in Python, PyTorch, LLVMRun and ONNX mode
(see :mod:`onnx_node_cases`). Each passes, or is listed in the one table
:data:`onnx_node_known_failures.KNOWN_FAILURES` and is refused by mdfx with the
error its category names. A result that loads and runs but differs from ONNX's
expected outputs fails the suite whatever the table says: no silent wrong number.
A listed test that passes fails too, so the table shrinks as mdfx grows.

The default run takes every in-scope test's first data set (about a minute alone, two
on the shared machine); ``MDFX_FULL_NODE=1`` runs every data set (with onnx 1.23.2 each
generated test has exactly one, so both runs are the same).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("torch")
pytest.importorskip("llvmlite")

import onnx_node_cases as cases  # noqa: E402
from onnx_node_known_failures import KNOWN_FAILURES, REASONS  # noqa: E402


def _expected_failure(name: str, mode: str) -> str | None:
    entry = KNOWN_FAILURES.get(name.split("[")[0])
    return entry.get(mode) if isinstance(entry, dict) else entry


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict[str, cases.Outcome]]:
    """Every in-scope test's outcome in every mode (each model loaded once)."""
    from mdfx.errors import MdfxError

    out: dict[str, dict[str, cases.Outcome]] = {}
    for case in cases.cases():
        try:
            comp = cases.load(case)
        except MdfxError as exc:
            out[case.name] = dict.fromkeys(cases.MODES, cases.Outcome("refused", f"{type(exc).__name__}: {exc}"))
            continue
        except Exception as exc:  # noqa: BLE001 - a crash of the import is reported per mode
            out[case.name] = dict.fromkeys(cases.MODES, cases.Outcome("crash", f"{type(exc).__name__}: {exc}"))
            continue
        out[case.name] = {mode: cases.check(case, mode, comp) for mode in cases.MODES}
    return out


@pytest.mark.parametrize("mode", cases.MODES)
def test_every_node_test_passes_or_is_refused_as_listed(mode: str, outcomes: dict) -> None:
    problems = []
    for name, by_mode in outcomes.items():
        got = by_mode[mode]
        known = _expected_failure(name, mode)
        if got.status == "wrong":
            problems.append(f"{name}: SILENT WRONG NUMBER ({got.detail})")
        elif got.status == "crash":
            problems.append(f"{name}: crashed with a non-mdfx error ({got.detail})")
        elif known is None and got.status != "pass":
            problems.append(f"{name}: {got.status} but not in KNOWN_FAILURES ({got.detail})")
        elif known is not None and got.status == "pass":
            problems.append(f"{name}: passes now; remove it from KNOWN_FAILURES (listed as {known})")
        elif known is not None and not re.search(REASONS[known][1], got.detail):
            problems.append(f"{name}: listed as {known} but refused otherwise: {got.detail}")
    counts = Counter(by_mode[mode].status for by_mode in outcomes.values())
    print(f"\n{mode}: {len(outcomes)} in-scope node tests: {dict(counts)}")
    assert not problems, f"{len(problems)} problems in {mode} mode:\n" + "\n".join(problems)


def test_the_table_names_only_in_scope_tests_and_known_categories(outcomes: dict) -> None:
    names = {n.split("[")[0] for n in outcomes}
    stale = sorted(set(KNOWN_FAILURES) - names)
    assert not stale, f"KNOWN_FAILURES lists tests that are not in scope (or no longer exist): {stale}"
    cats = {c for v in KNOWN_FAILURES.values() for c in ([v] if isinstance(v, str) else v.values())}
    assert cats <= set(REASONS), f"unknown categories: {sorted(cats - set(REASONS))}"


def test_the_suite_is_large_enough_to_mean_something(outcomes: dict) -> None:
    """Guards the generator: a broken preparation would make an empty (and vacuously green) suite."""
    passing = {m: sum(by_mode[m].status == "pass" for by_mode in outcomes.values()) for m in cases.MODES}
    assert len(outcomes) >= 600, f"only {len(outcomes)} in-scope node tests were generated"
    assert min(passing.values()) >= 220, f"passes per mode: {passing}"


def test_a_wrong_number_is_caught_by_the_comparison() -> None:
    """The checker itself: a result off by more than ONNX's tolerance is 'wrong', not 'pass'."""
    import numpy as np

    case = next(c for c in cases.cases() if c.name == "test_relu")
    want = next(iter(case.expected.values()))
    name = next(iter(case.expected))
    assert cases.compare(case, {name: want}).status == "pass"
    bad = cases.compare(case, {name: want + 0.01})
    assert bad.status == "wrong", bad
    assert cases.compare(case, {name: want[:1]}).status == "wrong"
    assert cases.compare(case, {"other": np.zeros(1)}).status == "wrong"
