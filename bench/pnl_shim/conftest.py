"""Root conftest for PsyNeuLink 0.21's test files run by bench/pnl_suite.py (ours; the sdist has none).

Provides the fixtures those files use (``autodiff_mode``, ``comp_mode``,
``func_mode``, ``mech_mode``, ``benchmark``), ``pytest.helpers``, the markers,
a fixed seed per test, and records each test's outcome and first cause in the
JSON file named by ``PNL_SUITE_OUT``. Works against real PsyNeuLink (the
reference column) and against mdfx through the shim.
"""

from __future__ import annotations

import json
import os
import random
import types

import numpy as np
import psyneulink as pnl
import pytest

MODES = os.environ.get("PNL_SUITE_MODES", "Python,PyTorch,LLVMRun").split(",")
MARKERS = ("pytorch", "llvm", "llvm_not_implemented", "composition", "function", "mechanism", "benchmark",
           "autodiff_constructor", "accorrectness", "acidenticalness", "aclogging", "acmisc", "acnested",
           "actime", "cuda", "stress", "control", "learning")
_REAL = hasattr(pnl, "core") and not getattr(pnl, "__mdfx__", False)


def pytest_configure(config: pytest.Config) -> None:
    for m in MARKERS:
        config.addinivalue_line("markers", f"{m}: PsyNeuLink suite marker")
    pytest.helpers = types.SimpleNamespace(  # type: ignore[attr-defined]
        llvm_current_fp_precision=lambda: "fp64",
        get_func_execution=_func_execution,
        get_mech_execution=_mech_execution,
        get_comp_execution_modes=lambda: [pytest.param(getattr(pnl.ExecutionMode, m)) for m in MODES],
    )


def _func_execution(func: object, mode: str) -> object:
    if mode == "Python":
        return func.function if _REAL else func  # type: ignore[attr-defined]
    if _REAL:
        from psyneulink.core import llvm as pnlvm
        return pnlvm.execution.FuncExecution(func).execute
    pytest.skip("mdfx has no per-function LLVM executor (out of scope)")


def _mech_execution(mech: object, mode: str) -> object:
    if mode == "Python":
        return mech.execute  # type: ignore[attr-defined]
    if _REAL:
        from psyneulink.core import llvm as pnlvm
        return pnlvm.execution.MechExecution(mech).execute
    pytest.skip("mdfx has no per-mechanism LLVM executor (out of scope)")


@pytest.fixture(autouse=True)
def _seed() -> None:
    np.random.seed(0)
    random.seed(0)
    if _REAL:
        from psyneulink.core.globals.utilities import set_global_seed
        set_global_seed(0)
        # PsyNeuLink suffixes a repeated default name ("OUTER-1") unless its registry is
        # cleared between tests; tests that look a composition up by name need that
        pnl.clear_registry()
    try:
        import torch
        torch.manual_seed(0)
    except ImportError:
        pass


@pytest.fixture(params=MODES)
def autodiff_mode(request: pytest.FixtureRequest) -> object:
    return getattr(pnl.ExecutionMode, request.param)


@pytest.fixture(params=[m for m in MODES if m != "PyTorch"])
def comp_mode(request: pytest.FixtureRequest) -> object:
    return getattr(pnl.ExecutionMode, request.param)


@pytest.fixture(params=["Python", "LLVM"])
def func_mode(request: pytest.FixtureRequest) -> str:
    return request.param


mech_mode = func_mode


@pytest.fixture
def benchmark() -> object:
    def call(f: object, *args: object, **kwargs: object) -> object:
        return f(*args, **kwargs)  # type: ignore[operator]
    return call


_RECORDS: dict[str, dict] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    rec = _RECORDS.setdefault(item.nodeid, {"outcome": "passed", "cause": ""})
    if report.skipped and rec["outcome"] == "passed":
        rec["outcome"] = "skipped"
        rec["cause"] = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    elif report.failed:
        if report.when == "call":
            rec["outcome"] = "xpassed" if hasattr(report, "wasxfail") else "failed"
        elif rec["outcome"] in ("passed", "skipped"):
            rec["outcome"] = "error"
        if call.excinfo is not None and not rec["cause"]:
            rec["cause"] = f"{call.excinfo.typename}: {str(call.excinfo.value).strip().splitlines()[0][:300]}" \
                if str(call.excinfo.value).strip() else call.excinfo.typename
    elif report.when == "call" and hasattr(report, "wasxfail"):
        rec["outcome"] = "xfailed"


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        text = str(report.longrepr).strip().splitlines()
        cause = next((line for line in reversed(text) if line.startswith("E ")), text[-1] if text else "")
        _RECORDS[report.nodeid] = {"outcome": "error", "cause": "collection: " + cause[2:].strip()[:300]}


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("PNL_SUITE_OUT")
    if out:
        with open(out, "w") as f:
            json.dump(_RECORDS, f, indent=0)
