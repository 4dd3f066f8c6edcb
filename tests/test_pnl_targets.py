"""AutodiffComposition(targets=...): external and internal targets, LossMechanism, learn()'s checks.

The numbers were measured with PsyNeuLink 0.21 in PyTorch mode by
tests/pnl_reference/probe_targets.py (see facts.md, "Targets"); every mode must give them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mdfx as pnl
from tests.helpers import assert_close

MODES = [pnl.ExecutionMode.Python, pnl.ExecutionMode.PyTorch, pnl.ExecutionMode.LLVMRun]
PM, MP = pnl.ProcessingMechanism, pnl.MappingProjection


def names(nodes: list) -> list[str]:
    return [n.name for n in nodes]


def sample_and_logistic_target() -> tuple:
    x, s = PM(name="X", input_shapes=2), PM(name="S", input_shapes=2)
    t = PM(name="T", input_shapes=2, function=pnl.Logistic())
    ws = MP(sender=x, receiver=s, matrix=np.array([[1.0, 0.5], [0.2, 0.3]]))
    wt = MP(sender=x, receiver=t, matrix=np.array([[0.4, 0.1], [0.7, 0.9]]))
    comp = pnl.AutodiffComposition(pathways=[[x, ws, s], [x, wt, t]], targets=[(s, t)], learning_rate=0.1)
    return comp, x, s, t, ws, wt


# probe_targets.py case 1: (minibatch size, last result, trained ws, losses)
CASE1 = {
    1: ([0.42153344803157466, 0.03405335683476121],
        [[0.9162797968923552, 0.49922228199426616], [0.04210554781878158, 0.18238534657596364]],
        [0.17327624325372948, 0.0495932107365949, 0.039151901850790566, 0.036180822005913396]),
    2: ([0.3454851216674206, -0.010902310827398454],
        [[0.9556187147274221, 0.4976700823559466], [0.10027780786195724, 0.22936336212394792]],
        [0.11866709093598185, 0.06980482944314095]),
}


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
@pytest.mark.parametrize("minibatch", [1, 2])
def test_internal_target_is_a_constant_of_the_loss(mode: pnl.ExecutionMode, minibatch: int) -> None:
    comp, x, s, t, ws, wt = sample_and_logistic_target()
    wt_before = wt.matrix.copy()
    result = comp.learn(inputs={x: [[1.0, 2.0], [0.5, -1.0]]}, epochs=2, minibatch_size=minibatch,
                        execution_mode=mode)
    want_result, want_ws, want_losses = CASE1[minibatch]
    assert_close(result, [want_result], 1e-12, what=f"last result ({mode.name}, minibatch {minibatch})")
    assert_close(ws.matrix, want_ws, 1e-12, what="the sample's weights")
    # PsyNeuLink: no gradient reaches the target's side, although its projection is learnable
    assert_close(wt.matrix, wt_before, 0, what="the target's weights")
    assert_close(comp.losses, want_losses, 1e-12, what="losses")
    assert names(comp.get_nodes_by_role(pnl.NodeRole.OUTPUT)) == ["S"]
    assert len(comp.results) == 4 and all(len(row) == 1 for row in comp.results)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_internal_sample_with_internal_target_beside_an_external_one(mode: pnl.ExecutionMode) -> None:
    a, b, c, t = PM(name="A2"), PM(name="B2"), PM(name="C2"), PM(name="T2")
    comp = pnl.AutodiffComposition(pathways=[[a, b, c], t], targets={b: t, c: pnl.TARGET}, learning_rate=0.5)
    assert names(comp.loss_mechanisms) == ["LOSS for B2", "LOSS for C2"]
    assert names(comp.target_mechanisms) == ["T2", "TARGET for C2"]
    assert names(comp.sample_mechanisms) == ["B2", "C2"]
    assert names(comp.target_internal_mechanisms) == ["T2"]
    assert names(comp.target_input_mechanisms) == ["TARGET for C2"]
    result = comp.learn(inputs={a: [[1.0], [2.0]], t: [[3.0], [-1.0]]}, targets={c: [[2.0], [0.5]]},
                        execution_mode=mode)
    # probe_targets.py case 2
    assert_close(result, [[16.0]], 1e-12, what="last result")
    assert_close([p.matrix[0, 0] for p in comp.projections], [-76.0, -122.0], 1e-12, what="trained weights")
    assert_close(comp.losses, [5.0, 321.25], 1e-12, what="losses (the two terms summed)")
    assert names(comp.get_nodes_by_role(pnl.NodeRole.OUTPUT)) == ["C2"]
    assert_close(np.array(comp.results, dtype=float).ravel(), [1.0, 16.0], 1e-12, what="results: C2 only")


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_one_target_trial_serves_every_input_trial(mode: pnl.ExecutionMode) -> None:
    a, b = pnl.TransferMechanism(name="A3"), pnl.TransferMechanism(name="B3")
    comp = pnl.AutodiffComposition([a, b])
    result = comp.learn(inputs={a: [[1], [2]]}, targets={b: [[0.5]]}, epochs=3, execution_mode=mode)
    # probe_targets.py case 3
    assert_close(result, [[1.970227273023488]], 1e-12, what="last result")
    assert_close(comp.losses, [0.25, 2.244004, 0.243056888064, 2.2023864989571846, 0.23627941286345078,
                               2.161568234342082], 1e-12, what="losses")


def test_loss_mechanism_and_the_forms_of_targets() -> None:
    a1, b1, c1 = PM(name="a1"), PM(name="b1"), PM(name="c1")
    a2, b2, c2 = PM(name="a2"), PM(name="b2"), PM(name="c2")
    solo = PM(name="solo")
    given = pnl.LossMechanism(sample=b2.output_port, target=solo)
    comp = pnl.AutodiffComposition(pathways=[[a1, b1, c1], [a2, b2, c2], solo],
                                   targets=[{b1: c2.output_port}, (c1, pnl.TARGET), given, (c2, solo)])
    losses = comp.loss_mechanisms
    assert [(lm.sample, lm.target) for lm in losses] == [
        (b1.output_port, c2.output_port), (c1.output_port, comp.target_input_mechanisms[0].output_port),
        (b2.output_port, solo.output_port), (c2.output_port, solo.output_port)]
    assert losses[2] is given
    # c2 and solo are targets, so not OUTPUT nodes; c1 is
    assert names(comp.get_nodes_by_role(pnl.NodeRole.OUTPUT)) == ["c1"]
    assert names(comp.get_nodes_by_role(pnl.NodeRole.TARGET_INTERNAL)) == ["c2", "solo"]
    assert comp._get_target_mechs(scope=pnl.INTERNAL) == comp.target_internal_mechanisms


@pytest.mark.parametrize(("targets", "error", "match"), [
    (pnl.TARGET, pnl.ParameterError, "targets='TARGET'"),
    ({1: "b"}, pnl.ParameterError, "the sample 1 must be a mechanism"),
    ({"b": [[1]]}, pnl.ParameterError, "the sample 'b' must be a mechanism"),
])
def test_malformed_targets_are_refused_at_construction(targets: object, error: type, match: str) -> None:
    a, b = PM(name="a"), PM(name="b")
    with pytest.raises(error, match=match):
        pnl.AutodiffComposition([a, b], targets=targets)


def test_targets_naming_what_cannot_learn_are_refused() -> None:
    a, b, t = PM(name="a"), PM(name="b"), PM(name="t")
    outside = PM(name="outside")
    with pytest.raises(pnl.CompositionError, match="'outside', which is not a node of 'c1'"):
        pnl.AutodiffComposition([[a, b], t], targets={b: outside}, name="c1").target_input_mechanisms  # noqa: B018
    with pytest.raises(pnl.AutodiffCompositionError, match="no learnable projection leads to 'a'"):
        pnl.AutodiffComposition([[a, b], t], targets={a: t}, name="c2").target_input_mechanisms  # noqa: B018
    x, y, z = PM(name="x"), PM(name="y"), PM(name="z")
    with pytest.raises(pnl.AutodiffCompositionError, match="'MappingProjection from y.* lead to no sample"):
        pnl.AutodiffComposition([[x, y, z], t], targets={y: t}, name="c3").loss_mechanisms  # noqa: B018
    with pytest.raises(pnl.CompositionError, match="two targets for 'b'"):
        pnl.AutodiffComposition([[a, b], t, x], targets={b: t, b.output_port: x}, name="c4").loss_mechanisms  # noqa: B018


def test_learn_checks_its_targets_against_the_pairs() -> None:
    a, b, c, t = PM(name="a"), PM(name="b"), PM(name="c"), PM(name="t")
    comp = pnl.AutodiffComposition([[a, b, c], t], targets={b: t, c: pnl.TARGET}, name="comp")
    x = {a: [[1.0]]}
    with pytest.raises(pnl.AutodiffCompositionError, match="values for 'b', whose target is the node 't'"):
        comp.learn(inputs=x, targets={b: [[1]], c: [[1]]})
    with pytest.raises(pnl.CompositionError, match="'a' is not a sample with an external target"):
        comp.learn(inputs=x, targets={a: [[1]], c: [[1]]})
    with pytest.raises(pnl.CompositionError, match="the targets for 'c' must be numbers"):
        comp.learn(inputs=x, targets={c: t})
    with pytest.raises(pnl.CompositionError, match="targets key 'elsewhere' is not a node of 'comp'"):
        comp.learn(inputs=x, targets={c: [[1]], PM(name="elsewhere"): [[1]]})
    with pytest.raises(pnl.CompositionError, match="different values for 'c'"):
        comp.learn(inputs=x, targets={c: [[1]], c.output_port: [[2]]})
    with pytest.raises(pnl.CompositionError, match="no targets for 'c'"):
        comp.learn(inputs=x)
    with pytest.warns(UserWarning, match=r"keyed by TARGET nodes \(TARGET for c\)"):
        comp.learn(inputs=x, targets={comp.target_input_mechanisms[0]: [[1]]})


def test_run_refuses_target_inputs_of_another_length() -> None:
    a, b = pnl.TransferMechanism(name="A"), pnl.TransferMechanism(name="B")
    comp = pnl.Composition(name="comp")
    pathway = comp.add_backpropagation_learning_pathway(pathway=[a, b])
    with pytest.raises(pnl.CompositionError, match="different numbers of trials"):
        comp.run(inputs={a: [[1.0], [2.0]], pathway.target: [[1.0], [2.0], [3.0]]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        comp.run(inputs={a: [[1.0], [2.0]], pathway.target: [[1.0], [2.0]]})
    assert len(comp.results) == 2


def test_a_loss_mechanism_is_no_pathway_node_and_targets_read_back() -> None:
    a, b, c, s = (PM(name=n) for n in "abcs")
    manual = pnl.LossMechanism(sample=b.output_port, target=s.output_port, name="MANUAL")
    # PsyNeuLink 0.21 takes the pathway and refuses when learning is set up (measured)
    stray = pnl.AutodiffComposition(pathways=[[a, b, c], manual], targets={c: pnl.TARGET})
    with pytest.raises(pnl.CompositionError, match="'MANUAL' was given in a pathway: a LossMechanism is not a node"):
        stray.infer_backpropagation_learning_pathways(execution_mode=pnl.ExecutionMode.Python)
    with pytest.raises(pnl.AutodiffCompositionError, match="'MANUAL' was given in a pathway"):
        stray.learn(inputs={a: [[1.0]]}, targets={c: [[1.0]]})
    comp = pnl.AutodiffComposition(pathways=[[a, b, c], s], targets={c: s, b.output_port: pnl.TARGET})
    assert comp.targets == [(c, s), (b.output_port, pnl.TARGET)]
    assert pnl.AutodiffComposition([a, b]).targets is None


def test_target_attributes_and_python_mode_builds_no_pytorch_representation() -> None:
    pairs = [(PM(name=f"p{i}A"), PM(name=f"p{i}B")) for i in range(4)]
    (a1, b1), (a2, b2), (a3, b3), (a4, b4) = pairs
    comp = pnl.AutodiffComposition(pathways=[list(p) for p in pairs], learning_rate=0.1,
                                   targets={b1: a2, b2.output_port: a4, b3: a4, b4: pnl.TARGET})
    assert names(comp._samples_and_targets.sample_mechs) == ["p0B", "p1B", "p2B", "p3B"]
    assert names(comp._get_target_mechs(scope=pnl.INTERNAL)) == ["p1A", "p3A"]
    assert names(comp._get_targets_dict()) == ["p1A", "p3A", "TARGET for p3B"]
    comp.learn(inputs={a1: [[1]], a2: [[2]], a3: [[3]], a4: [[4]]}, targets={b4: [[9]]},
               execution_mode=pnl.ExecutionMode.Python)
    # measured (facts.md section 11): the four MSE terms 1 + 4 + 1 + 25, one SGD step each
    assert_close(comp.losses, [31.0], 1e-12, what="summed loss")
    assert_close([p.matrix[0, 0] for p in comp.projections], [1.2, 1.8, 1.6, 5.0], 1e-12, what="weights")
    assert comp.pytorch_representation is None


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_internal_target_training_equals_torch_with_the_target_detached(mode: pnl.ExecutionMode) -> None:
    """PsyNeuLink's own equivalence case: inputs -> SAMPLE (learns) -> OUTPUTS (frozen), and
    inputs -> TARGET (frozen), SAMPLE trained towards TARGET; torch computes the same step."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    w_s, w_t, w_o = np.eye(3), rng.normal(size=(3, 3)), np.eye(3)
    stim = rng.random((1, 3))
    ws = torch.tensor(w_s, requires_grad=True)
    x = torch.tensor(stim)
    loss = torch.nn.functional.mse_loss(x @ ws, (x @ torch.tensor(w_t)).detach())
    loss.backward()
    want = (ws - 0.01 * ws.grad).detach().numpy()
    i, s = PM(name="INPUTS", input_shapes=3), PM(name=pnl.SAMPLE, input_shapes=3)
    t, o = PM(name=pnl.TARGET, input_shapes=3), PM(name="OUTPUTS", input_shapes=3)
    ps = MP(name="S", sender=i, receiver=s, learning_rate=0.01, matrix=w_s.copy())
    pt = MP(name="T", sender=i, receiver=t, learnable=False, matrix=w_t.copy())
    po = MP(name="O", sender=s, receiver=o, learnable=False, matrix=w_o.copy())
    comp = pnl.AutodiffComposition(pathways=[[i, ps, s, po, o], [i, pt, t]], targets=[(s, t)], name="ac")
    comp.learn(inputs={i: stim}, execution_mode=mode)
    comp.run(inputs={i: stim}, execution_mode=mode)
    assert_close(ps.matrix, want, 1e-15, what=f"trained SAMPLE weights ({mode.name})")
    assert_close(comp.losses, [loss.item()], 1e-15, what="loss")
    assert_close(comp.results[1][0], stim[0] @ want @ w_o, 1e-15, what="results after learning: OUTPUTS only")
    assert len(comp.results[0]) == 1


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_each_loss_mechanism_holds_its_loss_on_the_last_minibatch(mode: pnl.ExecutionMode) -> None:
    n = {k: PM(name=k) for k in ["a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4"]}
    comp = pnl.AutodiffComposition(pathways=[[n[f"a{i}"], n[f"b{i}"]] for i in range(1, 5)], learning_rate=0.1,
                                   targets={n["b1"]: n["a2"], n["b2"].output_port: n["a4"], n["b3"]: n["a4"],
                                            n["b4"]: pnl.TARGET})
    comp.learn(inputs={n["a1"]: [[1], [2], [3]], n["a2"]: [[2], [1], [0]], n["a3"]: [[3], [3], [3]],
                       n["a4"]: [[4], [1], [2]]},
               targets={n["b4"]: [[9], [1], [5]]}, minibatch_size=2, epochs=2, execution_mode=mode)
    # probe_targets.py case 4
    values = [float(lm.parameters.value.get("context")) for lm in comp.loss_mechanisms]
    assert_close(values, [0.014399999999999913, 4.0, 0.9292959999999991, 1.5376000000000005], 1e-12,
                 what="each pair's loss on the last minibatch")
    assert_close(comp.losses, [18.0, 12.3, 12.322400000000002, 6.4812959999999995], 1e-12, what="losses")


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_internal_logistic_sample_with_adam_and_minibatches(mode: pnl.ExecutionMode) -> None:
    a, b = PM(name="A5", input_shapes=2), PM(name="B5", input_shapes=3, function=pnl.Logistic())
    c, t = PM(name="C5", input_shapes=2), PM(name="T5", input_shapes=3)
    w1 = MP(sender=a, receiver=b, matrix=np.arange(6.0).reshape(2, 3) / 10)
    w2 = MP(sender=b, receiver=c, matrix=np.arange(6.0).reshape(3, 2) / 7)
    comp = pnl.AutodiffComposition(pathways=[[a, w1, b, w2, c], t], targets={b: t, c: pnl.TARGET},
                                   learning_rate=0.3, optimizer_type="adam")
    comp.learn(inputs={a: [[1.0, 0], [2.0, 1], [0, 1]], t: [[3.0, 0, 1], [-1.0, 1, 1], [0, 0, 0]]},
               targets={c: [[2.0, 1], [0.5, 0], [1, 1]]}, minibatch_size=2, epochs=3, execution_mode=mode)
    # probe_targets.py case 5
    assert_close(w1.matrix, [[-0.434573010377816, -0.5205395636179667, 0.8143591663301475],
                             [-1.3983949259383766, -1.1919074794020097, -0.9190864039062806]], 1e-12, what="A->B")
    assert_close(w2.matrix, [[1.037212193156964, 0.5258760151397637], [1.2632838256735195, 0.7496764020580567],
                             [1.2432661888271208, 0.8439117844668994]], 1e-12, what="B->C")
    assert_close(comp.losses, [2.373013897234607, 0.5847497376349342, 1.9365163714744846, 0.33915304914799427,
                               1.9053281416751062, 0.20051029798919578], 1e-12, what="losses")


def test_a_learning_pathway_whose_last_node_projects_on_trains_that_node() -> None:
    a, b, c = (pnl.TransferMechanism(name=n) for n in "ABC")
    comp = pnl.Composition(name="c")
    pathway = comp.add_backpropagation_learning_pathway([a, b])
    comp.add_linear_processing_pathway([b, c])
    for _ in range(2):
        comp.learn(inputs={a: [[1.0]], pathway.target: [[2.0]]}, execution_mode=pnl.ExecutionMode.Python)
    # measured (facts.md section 11): C is 1.0 in the first learn() and 1.1 in the second, as
    # SGD on B's MSE gives (w = 1 + .05 * 2 * (2 - 1)); the second step makes w 1.19
    assert_close([row[-1] for row in comp.results], [[1.0], [1.1]], 1e-12, what="C in results")
    assert_close(comp.projections[0].matrix, [[1.19]], 1e-12, what="A->B after two learn() calls")
    assert [n.name for n in comp.target_input_mechanisms] == ["TARGET for B"]


def test_a_learning_pathway_that_another_goes_on_from_needs_no_targets() -> None:
    a, b, c = (pnl.TransferMechanism(name=n) for n in "ABC")
    comp = pnl.Composition(name="c")
    comp.add_backpropagation_learning_pathway([a, b])
    comp.add_backpropagation_learning_pathway([b, c])
    comp.learn(inputs={a: [[1.0], [0.5], [2.0]]}, targets={c: [[1.0], [0.0], [1.0]]},
               execution_mode=pnl.ExecutionMode.Python)
    # SGD on C's MSE through B (facts.md section 10's rule, lr .05, gradient 2(y - t)): trial 2
    # moves both weights from 1 to .975, so trial 3 gives 2 * .975 * .975. (PsyNeuLink 0.21 raises
    # LearningMechanismError on this net in Python mode; its semantic-network test has the shape.)
    assert_close([row[0] for row in comp.results], [[1.0], [0.5], [1.90125]], 1e-12, what="C in results")
