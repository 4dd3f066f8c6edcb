"""PsyNeuLink 0.21's module-level names in mdfx: the keyword constants (values measured by
tests/pnl_reference/probe_names.py), `from mdfx import *`, and the import-only names that
refuse when used; and the order in which a plain Composition's learn() checks its arguments."""

from __future__ import annotations

import numpy as np
import pytest

import mdfx as pnl

# probe_names.py: a few of PsyNeuLink 0.21's keyword values (name -> value)
MEASURED = {"TARGET_MECHANISM": "TARGET_MECHANISM", "INPUT_LABELS_DICT": "input_labels_dict",
            "OUTPUT_LABELS_DICT": "output_labels_dict", "ADDITIVE": "additive_param", "CONTROL": "control",
            "AUTO": "auto", "GAIN": "gain", "NESTED": "nested", "INSET": "inset", "KEY_INPUT": "KEY_INPUT",
            "SAMPLE_MECHANISM": "SAMPLE_MECHANISM", "WEIGHTED_AVG": "all", "SINGLETON": "ORIGIN AND TERMINAL"}


def test_star_import_brings_the_keyword_constants() -> None:
    scope: dict = {}
    exec("from mdfx import *", scope)  # noqa: S102  (what a star-import script sees)
    got = {k: scope.get(k) for k in MEASURED}
    assert got == MEASURED, {k: (got[k], v) for k, v in MEASURED.items() if got[k] != v}
    for name in ("AutodiffComposition", "DriftDiffusionIntegrator", "CostFunctions", "ShowGraphError"):
        assert name in scope, name


def test_cost_functions_have_psyneulinks_values() -> None:
    got = {m: int(pnl.CostFunctions[m].value) for m in ("NONE", "INTENSITY", "ADJUSTMENT", "DURATION", "ALL")}
    assert got == {"NONE": 0, "INTENSITY": 1, "ADJUSTMENT": 2, "DURATION": 4, "ALL": 7}, got
    assert [c.name for c in pnl.CostFunctions] == ["INTENSITY", "ADJUSTMENT", "DURATION"]
    # what takes the flag is import-only
    costs = pnl.TransferWithCosts(cost_options=pnl.CostFunctions.INTENSITY)  # made at import time: fine
    with pytest.raises(pnl.UnsupportedError, match="TransferWithCosts"):
        costs([1.0])


@pytest.mark.parametrize("name", ["DriftDiffusionIntegrator", "DDM", "Scheduler", "ControlMechanism"])
def test_import_only_names_refuse_when_used(name: str) -> None:
    cls = getattr(pnl, name)
    made = cls(rate=0.1)  # a test file or script may build one at import time
    with pytest.raises(pnl.UnsupportedError, match=name) as err:
        made()
    assert "not implemented in mdfx" in str(err.value), str(err.value)
    with pytest.raises(pnl.UnsupportedError, match=f"{name}.rate"):
        made.rate  # noqa: B018
    with pytest.raises(pnl.UnsupportedError, match=f"{name}.SOMETHING"):
        cls.SOMETHING  # noqa: B018  (a class attribute of an import-only class refuses too)


def test_import_only_names_refuse_inside_a_network() -> None:
    with pytest.raises(pnl.UnsupportedError, match="DriftDiffusionIntegrator"):
        pnl.TransferMechanism(function=pnl.DriftDiffusionIntegrator(rate=0.1))
    ddm = pnl.DDM(function=pnl.DriftDiffusionIntegrator)
    with pytest.raises(pnl.UnsupportedError, match="DDM"):
        pnl.Composition(pathways=[[pnl.ProcessingMechanism(name="A"), ddm]])


@pytest.mark.parametrize("how", ["run", "learn"])
def test_llvm_per_node_mode_is_import_only(how: str) -> None:
    a = pnl.ProcessingMechanism(name="A", input_shapes=2)
    b = pnl.ProcessingMechanism(name="B", input_shapes=1)
    comp = pnl.AutodiffComposition(pathways=[[a, b]])
    x = {a: np.array([[1.0, 2.0]])}
    with pytest.raises(pnl.UnsupportedError, match="_LLVMPerNode") as err:
        if how == "run":
            comp.run(inputs=x, execution_mode=pnl.ExecutionMode._LLVMPerNode)
        else:
            comp.learn(inputs=x, targets={b: [[1.0]]}, execution_mode=pnl.ExecutionMode._LLVMPerNode)
    assert "LLVMRun" in str(err.value), str(err.value)


@pytest.mark.parametrize(("case", "expected"), [
    ("unknown name", "'woa' is not in the composition"),
    ("projection elsewhere", "'ELSEWHERE' is not in the composition"),
    ("not learnable", "learnable=False"),
])
def test_plain_composition_checks_its_rate_dict_before_saying_nothing_to_learn(case: str, expected: str) -> None:
    """PsyNeuLink 0.21 (measured: its CompositionError is about the dict's key, not about a
    missing learning pathway) checks a Composition's learning_rate dict first."""
    m1, m2 = pnl.ProcessingMechanism(name="M1"), pnl.ProcessingMechanism(name="M2")
    proj = pnl.MappingProjection(m1, m2, learning_rate=0.2, name="P")
    key: object = proj
    if case == "unknown name":
        key = "woa"
    elif case == "projection elsewhere":
        key = pnl.MappingProjection(pnl.ProcessingMechanism(name="M3"), pnl.ProcessingMechanism(name="M4"),
                                    name="ELSEWHERE")
    else:
        proj.learnable = False
    comp = pnl.Composition([m1, proj, m2], learning_rate={pnl.DEFAULT_LEARNING_RATE: 0.1, key: 0.2}, name="C")
    with pytest.raises(pnl.CompositionError) as err:
        comp.learn(inputs={m1: [[1.0]]})
    assert expected in str(err.value) and "nothing to learn" not in str(err.value), str(err.value)
