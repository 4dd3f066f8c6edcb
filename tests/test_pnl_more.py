"""PsyNeuLink behaviours added for its suite (issue 11, branch more), checked against PsyNeuLink 0.21.

The numbers were measured with PsyNeuLink 0.21 (/tmp/pnlvenv); the scripts and
results are in tests/pnl_reference/facts.md under the section each test names.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

import mdfx as pnl

MODES = [pnl.ExecutionMode.Python, pnl.ExecutionMode.PyTorch, pnl.ExecutionMode.LLVMRun]


# --- "Comparator OutputPorts after learn()" ----------------------------------------------------

# (loss, last trial's OUTCOME, loss port, learned matrix), PsyNeuLink 0.21
COMPARATOR = [
    (pnl.Loss.SSE, [-0.4174794099, 0.207984103, -0.252872098], 0.2814907428,
     [[-0.1843931627, 0.1469538428, 0.0542377504], [-0.328185484, 0.6807343316, 0.4122550517]]),
    (pnl.Loss.MSE, [-0.5708086601, 0.2596116736, -0.2630564319], 0.1541398113,
     [[-0.0729669104, 0.1201043009, 0.1518482965], [0.0625255617, 0.5055258276, 0.4691967209]]),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("loss", "outcome", "loss_value", "matrix"), COMPARATOR)
def test_comparator_output_ports_and_node_values_after_learn(mode: pnl.ExecutionMode, loss: pnl.Loss,
                                                              outcome: list, loss_value: float,
                                                              matrix: list) -> None:
    a = pnl.TransferMechanism(name="a", input_shapes=2)
    b = pnl.TransferMechanism(name="b", function=pnl.Logistic, input_shapes=3)
    comp = pnl.Composition(name="c")
    proj = pnl.MappingProjection(matrix=np.arange(6.0).reshape(2, 3) / 10)
    path = comp.add_backpropagation_learning_pathway([a, proj, b], loss_spec=loss, learning_rate=0.5)
    comp.learn(inputs={a: [[1.0, 2.0], [0.5, -1.0]], path.target: [[0.0, 1.0, 0.5], [1.0, 0.0, 0.0]]},
               num_trials=3, execution_mode=mode)
    objective = path.learning_objective
    assert [p.name for p in objective.output_ports] == ["OUTCOME", loss.name]
    assert objective.output_port is objective.output_ports[0]
    assert_close(objective.output_ports[0].parameters.value.get(comp), outcome, rtol=0, atol=1e-9)
    assert_close(objective.output_ports[loss.name].parameters.value.get(comp), [loss_value], rtol=0, atol=1e-9)
    assert_close(objective.value, [outcome], rtol=0, atol=1e-9)
    # every node keeps its value of the last trial: b's is target - OUTCOME
    assert_close(b.get_output_values(comp)[0], np.array([0.0, 1.0, 0.5]) - outcome, rtol=0, atol=1e-9)
    assert_close(a.get_output_values(comp)[0], [1.0, 2.0], rtol=0)
    assert_close(proj.get_mod_matrix(comp), matrix, rtol=0, atol=1e-9)
    with pytest.raises(KeyError, match="no OutputPort named 'L1'"):
        objective.output_ports["L1"]


# --- "Loss.L0 in a Composition's learning pathway" ---------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_l0_learning_pathway_learns_as_psyneulink(mode: pnl.ExecutionMode) -> None:
    a = pnl.TransferMechanism(name="a", input_shapes=2)
    h = pnl.TransferMechanism(name="h", function=pnl.Logistic, input_shapes=2)
    b = pnl.TransferMechanism(name="b", function=pnl.Logistic, input_shapes=3)
    comp = pnl.Composition(name="c")
    w1 = pnl.MappingProjection(matrix=np.arange(4.0).reshape(2, 2) / 10)
    w2 = pnl.MappingProjection(matrix=np.arange(6.0).reshape(2, 3) / 10)
    path = comp.add_backpropagation_learning_pathway([a, w1, h, w2, b], loss_spec=pnl.Loss.L0, learning_rate=0.5)
    comp.learn(inputs={a: [[1.0, 2.0], [0.5, -1.0]], path.target: [[0.0, 1.0, 0.5], [1.0, 0.0, 0.0]]},
               num_trials=3, execution_mode=mode)
    # PsyNeuLink 0.21: the same weights as Loss.SSE at learning_rate=0.25
    assert_close(w1.get_mod_matrix(comp), [[-0.0015211121, 0.0915759181], [0.2093041159, 0.3074715675]],
                 rtol=0, atol=1e-9)
    assert_close(w2.get_mod_matrix(comp), [[-0.0546337514, 0.1300059853, 0.153244198],
                                           [0.2352879117, 0.4378590441, 0.4523094632]], rtol=0, atol=1e-9)
    assert_close(comp.results[-1], [[0.5448154448, 0.5818952716, 0.5999471786]], rtol=0, atol=1e-9)
    objective = path.learning_objective
    assert [p.name for p in objective.output_ports] == ["OUTCOME", "SUM"]
    assert_close(objective.output_ports["SUM"].value, [-0.226657895], rtol=0, atol=1e-9)


def test_l0_still_refused_by_autodiff_composition() -> None:
    # PsyNeuLink 0.21's AutodiffComposition has no L0 either
    with pytest.raises(pnl.UnsupportedError, match="L0"):
        pnl.AutodiffComposition(loss_spec=pnl.Loss.L0)
