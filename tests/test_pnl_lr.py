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
    assert [rep.get_torch_learning_rate_for_projection(p) for p in (ip, hp, op)] == [2.7, 0.001, 1.4]
    result = outer.learn(inputs={a: [[.1, .2, .3]]}, targets={z: [[1, 1, 1, 1, 1]]},
                         learning_rate={hp: 0.5, ip: False}, execution_mode=mode)
    assert_close(result, [[1.0064717071422, 0.9412004600412098, 1.023906804431046, 1.0045696101322676,
                           0.970441683473473]], rtol=1e-10, what=f"after a learn() with a dict ({mode.name})")
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
             ({"nope": .5}, r"projection 'nope' is not in the composition or any composition nested in it"),
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
