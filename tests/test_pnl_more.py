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


# --- "Log in PsyNeuLink's layout; synch_*_with_torch='minibatch'" --------------------------------


def _logged_net() -> tuple[pnl.AutodiffComposition, pnl.TransferMechanism, pnl.TransferMechanism,
                           pnl.MappingProjection]:
    i = pnl.TransferMechanism(name="i", default_variable=np.zeros(2))
    o = pnl.TransferMechanism(name="o", default_variable=np.zeros(1), function=pnl.Logistic())
    m = pnl.MappingProjection(matrix=np.array([[0.1], [0.2]]))
    comp = pnl.AutodiffComposition(name="x", learning_rate=0.5)
    comp.add_linear_processing_pathway([i, m, o])
    return comp, i, o, m


@pytest.mark.parametrize("synch", [pnl.RUN, pnl.MINIBATCH])
def test_log_nparray_dictionary_and_nparray_per_minibatch(synch: str, capsys: pytest.CaptureFixture[str]) -> None:
    comp, i, o, m = _logged_net()
    assert comp.default_execution_id == "x"
    i.set_log_conditions("value", pnl.LogCondition.TRIAL)
    o.set_log_conditions("value", pnl.LogCondition.TRIAL)
    m.set_log_conditions("matrix", pnl.LogCondition.TRIAL)
    comp.learn(inputs={"inputs": {i: np.array([[[0, 0]], [[0, 1]], [[1, 0]]])},
                       "targets": {o: np.array([[0], [1], [1]])}, "epochs": 2},
               synch_projection_matrices_with_torch=synch, synch_results_with_torch=synch,
               execution_mode=pnl.ExecutionMode.PyTorch, minibatch_size=2)
    # PsyNeuLink 0.21 (MINIBATCH): two minibatches (2 trials, 1 trial) per epoch, each entry the
    # matrix that minibatch used and the values of its trials
    table = m.log.nparray_dictionary()["x"]
    assert list(table) == ["Run", "Trial", "Pass", "Time_step", "func_matrix", "matrix", "mod_matrix"]
    assert table["Trial"].ravel().tolist() == [0, 1, 2, 3] and table["Run"].ravel().tolist() == [0, 0, 0, 0]
    assert_close(table["matrix"], [[[0.1], [0.2]], [[0.1], [0.25571177]], [[0.21845881], [0.25571177]],
                                   [[0.21845881], [0.3093819]]], rtol=0, atol=1e-8)
    values = o.log.nparray_dictionary("value")["x"]
    assert list(values) == ["Run", "Trial", "Pass", "Time_step", "value"]
    expected = [[0.5, 0.549833997312478], [0.52497918747894], [0.5, 0.5635818599935174], [0.554398530101069]]
    for got, want in zip(values["value"], expected, strict=True):
        assert_close(np.asarray(got).ravel(), want, rtol=0, atol=1e-12)
        assert np.shape(got) == (len(want), 1, 1, 1)
    assert list(i.log.nparray_dictionary()["x"]) == ["Run", "Trial", "Pass", "Time_step", "RESULT", "value"]
    flat = m.log.nparray()
    assert flat.shape == (2, 2) and flat[0].tolist() == ["Execution Context", "x"] and flat[1][0] == "Data"
    assert flat[1][1][1] == [["Trial"], [0], [1], [2], [3]]
    assert flat[1][1][5][0] == "matrix" and np.allclose(flat[1][1][5][1:], table["matrix"])
    o.log.print_entries()
    assert "value        trial 3     [0.55439853]" in capsys.readouterr().out
    # results are the same for every synch choice (PsyNeuLink 0.21: 'run' == 'minibatch' == 'trial')
    assert_close(comp.results[-1], [[0.554398530101069]], rtol=0, atol=1e-12)


def test_synch_options_refused_with_type_named() -> None:
    comp, i, o, _ = _logged_net()
    data = {"inputs": {i: [[0.0, 1.0]]}, "targets": {o: [[1.0]]}}
    with pytest.raises(pnl.UnsupportedError, match="synch_results_with_torch='epoch'"):
        comp.learn(inputs=data, synch_results_with_torch=pnl.EPOCH)
    with pytest.raises(pnl.UnsupportedError, match="synch_projection_matrices_with_torch='trial'"):
        comp.learn(inputs=data, synch_projection_matrices_with_torch=pnl.TRIAL)


# --- "PytorchRepresentation parameters" ------------------------------------------------------


def test_pytorch_representation_params_are_matrix_shaped_copies() -> None:
    torch = pytest.importorskip("torch")
    a, b, c = (pnl.ProcessingMechanism(name=n, input_shapes=k) for n, k in [("A", 2), ("B", 3), ("C", 1)])
    w1 = pnl.MappingProjection(name="W1", matrix=np.arange(6.0).reshape(2, 3) / 10)
    w2 = pnl.MappingProjection(name="W2", matrix=np.ones((3, 1)), learnable=False)
    comp = pnl.AutodiffComposition([a, w1, b, w2, c], learning_rate=0.1)
    rep = comp._build_pytorch_representation()
    # PsyNeuLink 0.21: (sender, receiver) shaped, as the projection's matrix (not torch's (out, in))
    param = rep.get_torch_param_for_projection("W1")
    assert isinstance(param, torch.nn.Parameter) and tuple(param.shape) == (2, 3)
    assert_close(param.detach().numpy(), w1.matrix, rtol=0)
    comp.learn(inputs={a: [[1.0, 2.0]]}, targets={c: [[1.0]]}, execution_mode=pnl.ExecutionMode.PyTorch)
    assert_close(rep.get_torch_param_for_projection(w1).detach().numpy(), w1.matrix, rtol=0)
    assert not np.allclose(w1.matrix, np.arange(6.0).reshape(2, 3) / 10)
    assert [tuple(p.shape) for p in rep.parameters()] == [(2, 3)]  # W2 does not learn
    with pytest.raises(KeyError, match="'W9' is not a projection of"):
        rep.get_torch_param_for_projection("W9")


# --- "learning_rate dict keys" ------------------------------------------------------------------


@pytest.mark.parametrize("key", [23, 2.5, "mechanism"])
def test_learning_rate_dict_key_of_another_kind_refused_at_construction(key: object) -> None:
    a, b = pnl.ProcessingMechanism(name="a"), pnl.ProcessingMechanism(name="b")
    proj = pnl.MappingProjection(a, b, name="IN")
    key = a if key == "mechanism" else key
    # PsyNeuLink 0.21 raises ParameterError for each of these keys, in both constructors
    for make in (pnl.Composition, pnl.AutodiffComposition):
        with pytest.raises(pnl.ParameterError, match="is neither a projection nor a projection's name"):
            make([a, proj, b], learning_rate={pnl.DEFAULT_LEARNING_RATE: 0.1, key: 0.2})
    # learn()'s dict: CompositionError, as PsyNeuLink's learn()
    comp = pnl.AutodiffComposition([a, proj, b])
    with pytest.raises(pnl.CompositionError, match="is neither a projection nor a projection's name"):
        comp.learn(inputs={a: [[1.0]]}, targets={b: [[1.0]]}, learning_rate={key: 0.2})


# --- "(pathway, BackPropagation) in a Composition's pathways" ------------------------------------


def test_pathway_with_learning_function_tuple_is_a_learning_pathway() -> None:
    a, b, c, d = (pnl.TransferMechanism(name=n) for n in "ABCD")
    comp = pnl.Composition(pathways=[([a, b], pnl.BackPropagation), [c, d]], name="c")
    assert [bool(p.learning_components) for p in comp.pathways] == [True, False]
    comp.learn(inputs={a: 1.0, c: 2.0, comp.pathways[0].target: 0.0}, num_trials=3)
    # PsyNeuLink 0.21: B learns towards 0 at the default rate .05 (x 2 for MSE of one unit), D stays
    assert_close(comp.results, [[[1.0], [2.0]], [[0.9], [2.0]], [[0.81], [2.0]]], rtol=1e-12)
    solo = pnl.Composition(pathways=([pnl.TransferMechanism(name="E"), pnl.TransferMechanism(name="F")],
                                     pnl.BackPropagation))
    assert len(solo.pathways) == 1 and solo.pathways[0].learning_components

    class Hebbian:  # a learning function mdfx does not train with
        pass

    with pytest.raises(pnl.UnsupportedError, match="backpropagation only"):
        pnl.Composition(pathways=([pnl.TransferMechanism(name="G"), pnl.TransferMechanism(name="H")], Hebbian))


# --- "results entries are arrays" ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_results_entries_are_arrays_as_psyneulink(mode: pnl.ExecutionMode) -> None:
    a = pnl.ProcessingMechanism(name="a", input_shapes=2)
    b, c, d = (pnl.ProcessingMechanism(name=n, input_shapes=k) for n, k in [("b", 2), ("c", 3), ("d", 2)])
    ragged = pnl.AutodiffComposition([[a, b], [a, c]], name="x", learning_rate=0.1)
    ragged.learn(inputs={a: [[1.0, 2.0]]}, targets={b: [[0.0, 0.0]], c: [[1.0, 1.0, 1.0]]}, epochs=2,
                 execution_mode=mode)
    # PsyNeuLink 0.21: sizes differ -> each entry an object array of (2,) and (3,) arrays
    assert [(type(e), e.dtype, e.shape) for e in ragged.results] == [(np.ndarray, np.dtype(object), (2,))] * 2
    assert [np.shape(v) for v in ragged.results[0]] == [(2,), (3,)]
    same = pnl.AutodiffComposition([[a, b], [a, d]], name="y", learning_rate=0.1)
    same.learn(inputs={a: [[1.0, 2.0]]}, targets={b: [[0.0, 0.0]], d: [[1.0, 1.0]]}, execution_mode=mode)
    # equal sizes -> one (outputs, units) float array per trial (PsyNeuLink: [[1, 2], [1, 2]])
    assert same.results[-1].dtype == np.float64
    assert_close(same.results[-1], [[1.0, 2.0], [1.0, 2.0]], rtol=0)
    same.run(inputs={a: [[1.0, 2.0]]}, execution_mode=mode)
    assert isinstance(same.results[-1], np.ndarray) and same.results[-1].shape == (2, 2)
    plain = pnl.Composition([a, b], name="z")
    plain.run(inputs={a: [[1.0, 2.0], [3.0, 4.0]]}, execution_mode=mode)
    assert isinstance(plain.results[-1], np.ndarray) and plain.results[-1].shape == (1, 2)
    assert_close(plain.results[-1].squeeze(), [3.0, 4.0], rtol=0)
