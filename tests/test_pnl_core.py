"""PsyNeuLink 0.21's behaviour in the cases tests/pnl_reference/probe_core.py measured: what warns,
what runs, what is refused, and the values that come back."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

import mdfx as pnl


def test_learn_on_a_composition_without_learning_warns_and_runs_the_inputs() -> None:
    """probe_core.py "plain_learn": a UserWarning, learn() returns the last trial's output [[6.0]]
    and results holds each trial ([[2.0]], [[6.0]]); nothing is raised."""
    a, b = pnl.ProcessingMechanism(name="A"), pnl.ProcessingMechanism(name="B")
    comp = pnl.Composition(name="C", pathways=[[a, pnl.MappingProjection(a, b, matrix=[[2.0]]), b]])
    with pytest.warns(UserWarning, match="nothing to learn"):
        got = comp.learn(inputs={a: [[1.0], [3.0]]})
    assert_close(got, [[6.0]], rtol=0, what="learn() return")
    assert_close(np.array(comp.results, dtype=float), [[[2.0]], [[6.0]]], rtol=0, what="results")
    assert_close(comp.projections[0].matrix, [[2.0]], rtol=0, what="the matrix did not change")


def test_show_learning_without_learning_pathways_warns() -> None:
    pytest.importorskip("graphviz")
    a, b = pnl.ProcessingMechanism(name="A"), pnl.ProcessingMechanism(name="B")
    comp = pnl.Composition(name="C", pathways=[[a, b]])
    with pytest.warns(UserWarning, match="no learning pathway"):
        comp.show_graph(show_learning=True, output_fmt="source")


def test_building_the_pytorch_representation_of_nothing_learnable_warns_and_learn_refuses() -> None:
    """probe_core.py "solo_nested_build": two UserWarnings (nothing learns; the nested composition
    has no projections), no error; PsyNeuLink's learn() then refuses."""
    inner = pnl.AutodiffComposition([pnl.ProcessingMechanism(name="S")], name="INNER")
    outer = pnl.AutodiffComposition([inner], name="OUTER")
    with pytest.warns(UserWarning) as record:
        outer._build_pytorch_representation()
    text = " | ".join(str(w.message) for w in record)
    assert "no projection learns" in text and "'INNER', nested in 'OUTER', has no projections" in text, text
    with pytest.raises(pnl.CompositionError):
        outer.learn(inputs={outer.nodes[0]: [[1.0]]})


def test_a_learning_pathway_through_a_nested_composition_is_refused() -> None:
    """probe_core.py "learning_pathway_through_nested": CompositionError when it is made."""
    i, h, o = (pnl.ProcessingMechanism(name=n, input_shapes=2) for n in ("I", "H", "O"))
    with pytest.raises(pnl.CompositionError, match="'N'") as err:
        pnl.Composition(([i, pnl.Composition(name="N", nodes=[h]), o], pnl.BackPropagation))
    assert "AutodiffComposition" in str(err.value), str(err.value)


def test_an_autodiff_composition_holding_a_plain_composition_refuses_to_learn() -> None:
    """probe_core.py "autodiff_learn_with_nested_plain": AutodiffCompositionError from learn();
    run() still works."""
    i, h, o = (pnl.ProcessingMechanism(name=n, input_shapes=2) for n in ("I", "H", "O"))
    comp = pnl.AutodiffComposition([i, pnl.Composition(name="N", nodes=[h]), o], name="AC")
    assert_close(comp.run(inputs={i: [[1.0, 2.0]]}), [[1.0, 2.0]], rtol=0, what="run()")
    with pytest.raises(pnl.AutodiffCompositionError, match="'N' are not AutodiffCompositions"):
        comp.learn(inputs={i: [[0.0, 0.0]]}, execution_mode=pnl.ExecutionMode.PyTorch)


def test_targets_for_a_composition_of_which_nothing_learns_are_refused() -> None:
    """PsyNeuLink 0.21 (its suite, measured by the reference run): AutodiffCompositionError when
    targets are given and every projection is learnable=False."""
    a, b = pnl.ProcessingMechanism(name="A"), pnl.ProcessingMechanism(name="B")
    with pytest.raises(pnl.AutodiffCompositionError, match="targets were given, but no projection of it learns"):
        pnl.AutodiffComposition(pathways=[[a, pnl.MappingProjection(a, b, learnable=False), b]],
                                targets={b: pnl.TARGET}, name="X")
