"""show_graph() and `mdfx show`: what the drawings hold (dot source, no Graphviz program
needed), PsyNeuLink 0.21's warnings and options, and rendered pictures where `dot` exists."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import mdfx as pnl
from mdfx.composition import show_graph as sg

pytest.importorskip("graphviz")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed "
                               "(apt-get install graphviz)")


def nested() -> pnl.AutodiffComposition:
    a = pnl.ProcessingMechanism(name="IN", input_shapes=3)
    h = pnl.ProcessingMechanism(name="HID", input_shapes=4, function=pnl.Logistic)
    i1, i2 = pnl.ProcessingMechanism(name="I1", input_shapes=4), pnl.ProcessingMechanism(name="I2", input_shapes=4)
    o = pnl.ProcessingMechanism(name="OUT", input_shapes=2)
    inner = pnl.AutodiffComposition(name="INNER", pathways=[[i1, i2]])
    return pnl.AutodiffComposition(name="OUTER", pathways=[[a, h, inner, o]])


def test_source_holds_every_node_and_projection_with_roles() -> None:
    src = nested().show_graph(output_fmt="source")
    for line in ('IN [label=IN color=green penwidth=3]', 'OUT [label=OUT color=red penwidth=3]',
                 "subgraph cluster_INNER", "IN -> HID", 'HID -> I1', 'I1 -> I2', 'I2 -> OUT'):
        assert line in src, f"{line!r} not in:\n{src}"
    assert "TARGET" not in src and "LOSS" not in src, src


def test_show_nested_false_draws_the_nested_composition_as_one_box() -> None:
    src = nested().show_graph(show_nested=False, output_fmt="source")
    assert "cluster_" not in src and "INNER [color=gray penwidth=2 shape=box]" in src, src
    assert "HID -> INNER" in src and "INNER -> OUT" in src and "I1 [" not in src and "-> I1" not in src, src


def test_show_pytorch_adds_target_and_loss_and_marks_learnable_projections() -> None:
    src = nested().show_graph(show_pytorch=True, output_fmt="source")
    for line in ('"TARGET for OUT"', '"LOSS for OUT"', '"TARGET for OUT" -> "LOSS for OUT"',
                 'OUT -> "LOSS for OUT"', "IN -> HID [color=orange"):
        assert line in src, f"{line!r} not in:\n{src}"


def test_show_learning_draws_a_compositions_learning_components() -> None:
    comp = pnl.Composition(name="C")
    x, y = pnl.TransferMechanism(name="x", input_shapes=2), pnl.TransferMechanism(name="y", input_shapes=1)
    comp.add_backpropagation_learning_pathway([x, y])
    plain = comp.show_graph(output_fmt="source")
    shown = comp.show_graph(show_learning=True, output_fmt="source")
    assert "Comparator" not in plain and "TARGET for y" not in plain, plain
    for text in ("Comparator", '"TARGET for y" -> Comparator', "y -> Comparator", '"Learning Mechanism for'):
        assert text in shown, f"{text!r} not in:\n{shown}"


def test_labels_show_dimensions() -> None:
    a = pnl.TransferMechanism(name="a", default_variable=[0, 0, 0])
    b = pnl.TransferMechanism(name="b")
    comp = pnl.Composition()
    comp.add_linear_processing_pathway([a, b])
    got = [comp._show_graph._get_graph_node_label(comp, n, show_dimensions=pnl.ALL) for n in (a, b)]
    assert got == ["a\nin (3)  out (3)", "b\nin (1)  out (1)"], got
    assert comp._show_graph._get_graph_node_label(comp, a) == "a"


def test_warnings_as_psyneulink() -> None:
    """PsyNeuLink 0.21 warns (UserWarning) that show_learning draws nothing more for an
    AutodiffComposition, and when show_pytorch finds no learnable projection."""
    a = pnl.ProcessingMechanism(name="A")
    b = pnl.ProcessingMechanism(name="B")
    comp = pnl.AutodiffComposition(pathways=[[a, pnl.MappingProjection(a, b, learnable=False), b]], name="AC")
    with pytest.warns(UserWarning, match="show_learning changes nothing"):
        comp.show_graph(show_learning=True, output_fmt="source")
    with pytest.warns(UserWarning, match="no projection of it learns"):
        comp.show_graph(show_pytorch=True, output_fmt="source")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nested().show_graph(show_pytorch=True, output_fmt="source")  # learnable: no warning


def test_unknown_format_and_missing_dot_are_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    comp = nested()
    with pytest.raises(pnl.ShowGraphError, match="output_fmt='bmp'"):
        comp.show_graph(output_fmt="bmp")
    monkeypatch.setattr(sg.shutil, "which", lambda name: None)
    with pytest.raises(pnl.ShowGraphError) as err:
        comp.show_graph(output_fmt="png")
    assert "apt-get install graphviz" in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert comp.show_graph(output_fmt="source").startswith("digraph OUTER")  # source needs no dot
    with pytest.raises(pnl.ShowGraphError, match="dot"):
        comp.run(inputs={comp.nodes["IN"]: [[1.0, 2.0, 3.0]]}, animate=True)


def test_gv_and_jupyter_return_the_digraph() -> None:
    import graphviz

    for fmt in ("gv", "jupyter"):
        got = nested().show_graph(output_fmt=fmt)
        assert isinstance(got, graphviz.Digraph), type(got)


@needs_dot
@pytest.mark.parametrize("fmt", ["png", "pdf"])
def test_renders_a_picture(tmp_path: Path, fmt: str) -> None:
    out = nested().show_graph(show_pytorch=True, output_fmt=fmt, file=tmp_path / f"g.{fmt}")
    magic = {"png": b"\x89PNG", "pdf": b"%PDF"}[fmt]
    assert out == tmp_path / f"g.{fmt}" and out.read_bytes()[:4] == magic, (out, out.read_bytes()[:8])
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"g.{fmt}"]  # no .gv or temp left


def _mlp_graph() -> object:
    from mdfx.schema.graph import Graph, Node, Param

    rng = np.random.default_rng(0)
    return Graph.build("mlp", {"x": (4,)}, [Param("W", rng.normal(size=(4, 3))),
                                            Param("scale", np.ones(3), learnable=False)],
                       [Node("mm", "MatMul", ["x", "W"], "h"), Node("sc", "Mul", ["h", "scale"], "y")], ["y"])


def test_op_graph_drawing_shows_ops_shapes_and_learnable_vs_frozen() -> None:
    src = sg.draw_graph(_mlp_graph(), "source")
    for text in ('label="x\n(batch, 4)"', 'label="W\n(4, 3) learnable"', 'label="scale\n(3) frozen"',
                 'label="MatMul\nmm\n-> (batch, 3)"', 'label="(batch, 3)"', "fillcolor=\"#e0e0e0\""):
        assert text in src, f"{text!r} not in:\n{src}"


@needs_dot
def test_cli_show_draws_a_loaded_model(tmp_path: Path) -> None:
    from mdfx import cli

    model = tmp_path / "m.json"
    pnl.save(nested(), model)
    assert cli.main(["show", str(model), "-o", str(tmp_path / "m.png")]) == 0
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["show", str(model), "-o", str(tmp_path / "m.gv")]) == 0
    assert (tmp_path / "m.gv").read_text().startswith("digraph")
    assert cli.main(["show", str(model), "-o", str(tmp_path / "m.bmp")]) != 0
