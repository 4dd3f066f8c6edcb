"""Learning rates and random matrices as PsyNeuLink 0.21 has them (issue 11).

The numbers were measured with real PsyNeuLink 0.21.0.0 by the scripts described
in tests/pnl_reference/facts.md ("Random matrices" and "Learning-rate errors").
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

import mdfx as pnl

MODES = [pnl.ExecutionMode.Python, pnl.ExecutionMode.PyTorch, pnl.ExecutionMode.LLVMRun]

# PsyNeuLink 0.21 after np.random.seed(0): first rows of a 3x4 and then a 4x5 RANDOM_CONNECTIVITY_MATRIX
PNL_RANDOM_3X4_ROW0 = [0.11827442586893322, 0.6399210213275238, 0.1433532874090464, 0.9446689170495839]
PNL_RANDOM_4X5_ROW0 = [0.2828069625764096, 0.1201965612131689, 0.29614019752214493, 0.11872771895424405,
                       0.317983179393976]


def test_random_matrices_follow_psyneulinks_draws() -> None:
    np.random.seed(0)
    a = pnl.ProcessingMechanism(input_shapes=3, name="a")
    b = pnl.ProcessingMechanism(input_shapes=4, name="b")
    c = pnl.ProcessingMechanism(input_shapes=5, name="c")
    p = pnl.MappingProjection(a, b, matrix=pnl.RANDOM_CONNECTIVITY_MATRIX)
    q = pnl.MappingProjection(b, c, matrix=pnl.RANDOM_CONNECTIVITY_MATRIX)
    assert p.matrix.shape == (3, 4) and q.matrix.shape == (4, 5)
    assert_close(p.matrix[0], PNL_RANDOM_3X4_ROW0, rtol=1e-15, what="first random matrix")
    assert_close(q.matrix[0], PNL_RANDOM_4X5_ROW0, rtol=1e-15, what="second random matrix")


def test_random_matrix_without_ends_is_drawn_when_it_joins() -> None:
    np.random.seed(0)
    a = pnl.ProcessingMechanism(input_shapes=3, name="a")
    b = pnl.ProcessingMechanism(input_shapes=4, name="b")
    p = pnl.MappingProjection(matrix=pnl.RANDOM_CONNECTIVITY_MATRIX)
    pnl.AutodiffComposition([a, p, b])
    assert_close(p.matrix[0], PNL_RANDOM_3X4_ROW0, rtol=1e-15, what="matrix drawn in the composition")


def nested_net() -> tuple:
    """input(3) -> [n1(4, Linear) -IDENTITY-> n2(4, Logistic)] -> z(5), random outer matrices."""
    np.random.seed(0)
    n1 = pnl.ProcessingMechanism(function=pnl.Linear, input_shapes=4, name="n1")
    n2 = pnl.ProcessingMechanism(function=pnl.Logistic, input_shapes=4, name="n2")
    hp = pnl.MappingProjection(n1, n2, matrix=pnl.IDENTITY_MATRIX, name="hp")
    inner = pnl.AutodiffComposition([n1, hp, n2], name="inner")
    a = pnl.ProcessingMechanism(input_shapes=3, name="a")
    z = pnl.ProcessingMechanism(input_shapes=5, name="z")
    ip = pnl.MappingProjection(a, n1, matrix=pnl.RANDOM_CONNECTIVITY_MATRIX, learning_rate=2.7, name="ip")
    op = pnl.MappingProjection(n2, z, matrix=pnl.RANDOM_CONNECTIVITY_MATRIX, name="op")
    outer = pnl.AutodiffComposition([a, ip, inner, op, z], name="outer", learning_rate={op: 1.4})
    return outer, a, z, ip, hp, op


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_nested_rates_and_results_match_psyneulink(mode: pnl.ExecutionMode) -> None:
    outer, a, z, ip, hp, op = nested_net()
    result = outer.learn(inputs={a: [[.1, .2, .3]]}, targets={z: [[1, 1, 1, 1, 1]]}, num_trials=2,
                         execution_mode=mode)
    # PsyNeuLink 0.21, PyTorch mode
    assert_close(result, [[1.0198555262294036, 0.7861189229013916, 1.082381620138647, 1.0131759957647248,
                           0.8905843743810791]], rtol=1e-10, what=f"after 2 trials ({mode.name})")
    rep = outer.pytorch_representation
    if mode is pnl.ExecutionMode.Python:
        # PsyNeuLink's Python-mode learn() builds no pytorch_representation (facts.md, section 11)
        assert rep is None, rep
    else:
        assert [rep.get_torch_learning_rate_for_projection(p) for p in (ip, hp, op)] == [2.7, 0.001, 1.4]
    result = outer.learn(inputs={a: [[.1, .2, .3]]}, targets={z: [[1, 1, 1, 1, 1]]},
                         learning_rate={hp: 0.5, ip: False}, execution_mode=mode)
    assert_close(result, [[1.0064717071422, 0.9412004600412098, 1.023906804431046, 1.0045696101322676,
                           0.970441683473473]], rtol=1e-10, what=f"after a learn() with a dict ({mode.name})")
    if mode is not pnl.ExecutionMode.Python:
        assert [rep.get_torch_learning_rate_for_projection(p) for p in (ip, hp, op)] == [False, 0.5, 1.4]
        assert rep._torch_params_for_execution == {ip: False, hp: 0.5, op: 1.4}


def test_build_pytorch_representation_makes_target_and_loss_nodes() -> None:
    outer, *_ = nested_net()
    assert [n.name for n in outer.nodes] == ["a", "inner", "z"]
    outer._build_pytorch_representation()
    # PsyNeuLink 0.21 lists them after the composition's own nodes
    assert [n.name for n in outer.nodes] == ["a", "inner", "z", "TARGET for z", "LOSS for z"]


def test_learning_rate_errors_have_psyneulinks_classes() -> None:
    outer, a, z, ip, hp, op = nested_net()
    data = {"inputs": {a: [[.1, .2, .3]]}, "targets": {z: [[1, 1, 1, 1, 1]]}}
    stranger = pnl.MappingProjection(pnl.ProcessingMechanism(name="s1"), pnl.ProcessingMechanism(name="s2"),
                                     name="stranger")
    cases = [("hello", r"learning_rate must be a number, True, False, None or a dict .*got 'hello'"),
             ({ip: "x"}, r"learning_rate\['ip'\] must be a number.*got 'x'"),
             ({"nope": .5}, r"projection 'nope' is not in the composition that learns or any composition nested in it"),
             ({23: .5}, r"key 23 is neither a projection nor a projection's name"),
             ({stranger: .5}, r"projection 'stranger' is not in the composition")]
    for spec, message in cases:
        with pytest.raises(pnl.CompositionError, match=message):
            outer.learn(**data, learning_rate=spec)
    hp.learnable = False
    with pytest.raises(pnl.CompositionError, match=r"projection 'hp' has learnable=False"):
        outer.learn(**data, learning_rate={hp: .5})
    hp.learnable = True
    # a projection's name is a key as good as the projection
    outer.learn(**data, learning_rate={"hp": .25})
    assert outer.pytorch_representation.get_torch_learning_rate_for_projection(hp) == 0.25
    with pytest.raises(pnl.ParameterError, match=r"learning_rate must be a number.*got 'hello'"):
        pnl.AutodiffComposition(learning_rate="hello")
    x, y = pnl.ProcessingMechanism(name="x"), pnl.ProcessingMechanism(name="y")
    bad_default = pnl.AutodiffComposition([x, y], learning_rate={"nope": .1}, name="bad_default")
    with pytest.raises(pnl.CompositionError, match=r"'bad_default': learning_rate: projection 'nope' is not in"):
        bad_default.learn(inputs={x: [[1.0]]}, targets={y: [[0.0]]})


# PsyNeuLink 0.21, PyTorch mode: A -[[0.5]]-> B (Linear), rate .1, target 2x, inputs from a
# generator function yielding {"inputs", "targets"[, "epochs"]} dicts; the results after learn()
GENERATOR_CASES = [
    ([([1, 2], None), ([3], None)], {}, [0.5, 1.6, 5.28, 6.576]),
    ([([1], None), ([2, 3], None)], {}, [0.5, 1.6]),
    ([([1, 2], None), ([3], None)], {"epochs": 2}, [0.5, 1.6, 1.76, 3.616, 5.8848, 6.09216, 5.926272, 6.0589824]),
    ([([1, 2], None), ([3], None)], {"num_trials": 3}, [0.5, 1.6, 1.76, 5.424, 6.4608, 5.63136]),
    ([([1, 2], 3), ([3], 1)], {}, [0.5, 1.6, 1.76, 3.616, 1.9616, 3.93856, 5.981568, 6.0147456]),
]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
@pytest.mark.parametrize(("chunks", "kwargs", "expected"), GENERATOR_CASES)
def test_generator_dicts_learn_one_after_another(chunks: list, kwargs: dict, expected: list,
                                                 mode: pnl.ExecutionMode) -> None:
    a, b = pnl.ProcessingMechanism(name="A"), pnl.ProcessingMechanism(name="B")
    comp = pnl.AutodiffComposition([a, pnl.MappingProjection(a, b, matrix=[[0.5]]), b], learning_rate=.1)

    def generator() -> object:
        for xs, epochs in chunks:
            chunk: dict = {"inputs": {a: [[x] for x in xs]}, "targets": {b: [[2 * x] for x in xs]}}
            if epochs is not None:
                chunk["epochs"] = epochs
            yield chunk

    comp.learn(inputs=generator, execution_mode=mode, **kwargs)
    assert_close([np.ravel(r)[0] for r in comp.results], expected, rtol=1e-12, what=f"{kwargs} {mode.name}")


def test_a_shared_projection_keeps_one_matrix_per_composition() -> None:
    # PsyNeuLink 0.21 keeps a projection's matrix per composition (execution context): A -[[.5]]-> B,
    # rate .1; c1 learns x=1 -> 2, then c2 (same projection) runs from the initial .5, ...
    a, b = pnl.ProcessingMechanism(name="A"), pnl.ProcessingMechanism(name="B")
    p = pnl.MappingProjection(a, b, matrix=[[0.5]], name="p")
    c1 = pnl.AutodiffComposition([a, p, b], learning_rate=.1, name="c1")
    c2 = pnl.AutodiffComposition([a, p, b], learning_rate=.1, name="c2")
    c1.learn(inputs={a: [[1]]}, targets={b: [[2]]}, execution_mode=pnl.ExecutionMode.Python)

    def run(comp: pnl.Composition) -> float:
        return float(np.ravel(comp.run(inputs={a: [[1]]}))[0])

    assert_close([run(c2), run(c1)], [0.5, 0.8], rtol=1e-12, what="c2 untrained, c1 trained")
    c2.learn(inputs={a: [[1]]}, targets={b: [[0]]}, execution_mode=pnl.ExecutionMode.PyTorch)
    assert_close([run(c1), run(c2)], [0.8, 0.4], rtol=1e-12, what="each keeps its own training")
    c3 = pnl.Composition(name="c3")
    c3.add_backpropagation_learning_pathway([a, p, b], learning_rate=.1)
    c3.learn(inputs={a: [[1]]}, targets={b: [[4]]}, execution_mode=pnl.ExecutionMode.LLVMRun)
    assert_close([run(c3), run(c1), run(c2)], [1.2, 0.8, 0.4], rtol=1e-12, what="a learning pathway too")
    # an assigned matrix is every composition's start again (mdfx: one value per assignment)
    p.matrix = [[1.0]]
    assert_close([run(c1), run(c2)], [1.0, 1.0], rtol=0, what="after an assignment")


def test_pathway_node_with_a_role_and_inputs_for_a_nested_composition() -> None:
    # PsyNeuLink 0.21: [(nested, NodeRole.INPUT), projection, node] makes the nested node an INPUT
    # node; learn() with inputs keyed by a nested composition feeds its INPUT node
    i = pnl.ProcessingMechanism(name="i", input_shapes=2)
    h1 = pnl.ProcessingMechanism(name="h1", input_shapes=3)
    h2 = pnl.ProcessingMechanism(name="h2", input_shapes=4)
    o1 = pnl.ProcessingMechanism(name="o1", input_shapes=3)
    o2 = pnl.ProcessingMechanism(name="o2", input_shapes=5)
    nested = pnl.AutodiffComposition(nodes=[h1, h2], name="nested")
    outer = pnl.AutodiffComposition([[i, pnl.MappingProjection(i, h1), nested, pnl.MappingProjection(h1, o1), o1],
                                     [(nested, pnl.NodeRole.INPUT), pnl.MappingProjection(h2, o2), o2]])
    assert [n.name for n in outer.get_nodes_by_role(pnl.NodeRole.OUTPUT)] == ["o1", "o2"]
    assert {n.name for n in outer.get_nodes_by_role(pnl.NodeRole.INPUT)} == {"i", "h2"}
    targets = {t: t.value for t in outer.target_input_mechanisms}
    outer.learn(inputs={i: np.array([[0, 0], [0, 1], [1, 0], [1, 1]])}, targets=targets, learning_rate=.01,
                num_trials=5, execution_mode=pnl.ExecutionMode.PyTorch)
    # PsyNeuLink 0.21 (o2's input h2 gets no inputs: its default, zeros)
    assert_close([np.ravel(r[0])[0] for r in outer.results], [0, 1, 0.98, 1.908248, 0], rtol=1e-6,
                 what="o1 per trial")
    assert_close([r[1] for r in outer.results], np.zeros((5, 5)), rtol=0, what="o2 per trial")
    with pytest.raises(pnl.CompositionError, match=r"\('o1', NodeRole.INPUT\): 'o1' is not INPUT"):
        pnl.Composition([[i, (o1, pnl.NodeRole.INPUT)]])

    a = pnl.ProcessingMechanism(name="a", input_shapes=2)
    b = pnl.ProcessingMechanism(name="b", input_shapes=3)
    c = pnl.ProcessingMechanism(name="c", input_shapes=3)
    inner = pnl.AutodiffComposition([a, b], name="inner")
    comp = pnl.AutodiffComposition([inner, c])
    comp.learn(inputs={inner: np.array([[0, 0], [0, 1], [1, 0], [1, 1]])}, targets={c: np.zeros((4, 3))},
               learning_rate=.01, num_trials=5, execution_mode=pnl.ExecutionMode.LLVMRun)
    # PsyNeuLink 0.21, PyTorch mode
    assert_close([np.ravel(r)[0] for r in comp.results], [0, 1, 0.98, 1.9082482122666669, 0], rtol=1e-12,
                 what="inputs keyed by the nested composition")
    two = pnl.AutodiffComposition(nodes=[pnl.ProcessingMechanism(name="x"), pnl.ProcessingMechanism(name="y")],
                                  name="two")
    z = pnl.ProcessingMechanism(name="z")
    comp = pnl.AutodiffComposition([two, z])
    with pytest.raises(pnl.DataError, match=r"nested composition 'two', which has 2 INPUT nodes .*\(x, y\)"):
        comp.learn(inputs={two: [[1.0]]}, targets={z: [[0.0]]})


def test_set_weights() -> None:
    a, b = pnl.ProcessingMechanism(name="A", input_shapes=2), pnl.ProcessingMechanism(name="B", input_shapes=3)
    p = pnl.MappingProjection(a, b, name="p")
    inner = pnl.AutodiffComposition([a, p, b], name="inner")
    c = pnl.ProcessingMechanism(name="C")
    outer = pnl.AutodiffComposition([inner, c], name="outer")
    outer.run(inputs={a: [[1, 2]]})
    w = np.arange(6.0).reshape(2, 3)
    inner.set_weights(p, w)  # the nested composition's own projection, set through it
    assert_close(outer.run(inputs={a: [[1, 2]]}), [[6 + 9 + 12]], rtol=0, what="outer sees the weights")
    with pytest.raises(pnl.DataError, match=r"weights for 'p' have shape \(3, 2\); its matrix has shape \(2, 3\)"):
        outer.set_weights(p, w.T)
    with pytest.raises(pnl.CompositionError, match=r"'inner'.set_weights\(\): 'MappingProjection from B"):
        inner.set_weights(outer.projections[0], [[1.0]])


def test_build_pytorch_representation_with_a_learning_rate() -> None:
    # PsyNeuLink 0.21: the rate given to _build_pytorch_representation() replaces the composition's,
    # so a learn() without a rate goes back to it: [10, .9], then [12, .9] with {ab: 12}, then [10, .9]
    a, b, c = (pnl.ProcessingMechanism(name=n) for n in "abc")
    ab = pnl.MappingProjection(a, b, name="ab", learning_rate=True)
    bc = pnl.MappingProjection(b, c, name="bc", learning_rate=.2)
    inner = pnl.AutodiffComposition([b, bc, c], name="inner", learning_rate=.3)
    outer = pnl.AutodiffComposition([a, ab, inner], name="outer", learning_rate=.5)
    rep = outer._build_pytorch_representation({pnl.DEFAULT_LEARNING_RATE: 10, "bc": .9})

    def rates() -> list:
        return [rep.get_torch_learning_rate_for_projection(p) for p in (ab, bc)]

    assert rates() == [10, 0.9]
    data = {"inputs": {a: [[1]]}, "targets": {c: [[1]]}}
    outer.learn(**data, learning_rate={ab: 12}, execution_mode=pnl.ExecutionMode.Python)
    assert rates() == [12, 0.9]
    outer.learn(**data, execution_mode=pnl.ExecutionMode.Python)
    assert rates() == [10, 0.9]
    with pytest.raises(pnl.ParameterError, match="learning_rate must be a number"):
        outer._build_pytorch_representation("fast")


def test_a_nested_dict_may_name_a_projection_of_the_composition_that_learns() -> None:
    # PsyNeuLink 0.21: no error, and the inner entry does not reach the outer projection: [0.001, 0.2]
    a, b, c = (pnl.ProcessingMechanism(name=n) for n in "abc")
    bc = pnl.MappingProjection(b, c, name="bc")
    inner = pnl.AutodiffComposition([b, bc, c], name="inner", learning_rate={"op": .7, pnl.DEFAULT_LEARNING_RATE: .2})
    op = pnl.MappingProjection(a, b, name="op")
    outer = pnl.AutodiffComposition([a, op, inner], name="outer")
    outer.learn(inputs={a: [[1]]}, targets={c: [[1]]}, execution_mode=pnl.ExecutionMode.PyTorch)
    rep = outer.pytorch_representation
    assert [rep.get_torch_learning_rate_for_projection(p) for p in (op, bc)] == [0.001, 0.2]
    with pytest.raises(pnl.CompositionError, match=r"'inner': learning_rate: projection 'op' is not in"):
        inner.learn(inputs={b: [[1]]}, targets={c: [[1]]})
