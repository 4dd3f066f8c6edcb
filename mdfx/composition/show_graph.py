"""``Composition.show_graph()``: the network drawn with Graphviz, in PsyNeuLink's vocabulary.

Mechanisms are ovals (INPUT nodes green, OUTPUT nodes red, learning components orange),
projections are arrows (learnable ones orange where learning is shown), nested
compositions are boxed clusters (``show_nested``) or one box each. The drawing is a
``graphviz.Digraph``; ``output_fmt`` says what comes back (see :func:`show_graph`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from mdfx.errors import ShowGraphError

#: what show_graph says when Graphviz's ``dot`` program is missing (no regex metacharacters:
#: callers may match on it)
_gv_executable_not_found_error_msg = ("show_graph needs the Graphviz program dot on PATH; install "
                                      "Graphviz: apt-get install graphviz on Debian or Ubuntu, brew "
                                      "install graphviz on macOS, conda install graphviz in conda")

#: output_fmt values: what each returns
RENDERED = ("pdf", "png", "svg")
FORMATS = (*RENDERED, "gv", "source", "jupyter")

INPUT_COLOR, OUTPUT_COLOR, LEARNING_COLOR, DEFAULT_COLOR = "green", "red", "orange", "black"


def digraph_class() -> Any:
    try:
        import graphviz
    except ImportError:
        raise ShowGraphError("show_graph needs the python package graphviz: "
                             "pip install graphviz==0.21 (and Graphviz's dot program)") from None
    return graphviz.Digraph


def require_dot() -> None:
    """Refuse, in one line saying what to install, when Graphviz's ``dot`` is not on PATH."""
    if shutil.which("dot") is None:
        raise ShowGraphError(_gv_executable_not_found_error_msg)


def render(dot: Any, output_fmt: str, file: str | Path | None, name: str) -> Any:
    """What ``output_fmt`` asks for: the dot source, the Digraph, or the path of a rendered file."""
    if output_fmt not in FORMATS:
        raise ShowGraphError(f"show_graph(output_fmt={output_fmt!r}): expected one of {', '.join(FORMATS)}")
    if output_fmt == "source":
        return dot.source
    if output_fmt in ("gv", "jupyter"):  # a notebook shows a Digraph inline
        return dot
    require_dot()
    path = Path(file) if file is not None else Path(f"{_file_name(name)}.{output_fmt}")
    dot.format = output_fmt
    # rendered in a temporary folder beside the picture, then moved in place: a failed
    # render leaves no half file (graphviz's .gv source is cleaned up)
    with tempfile.TemporaryDirectory(dir=path.parent if str(path.parent) else ".") as tmp:
        written = dot.render(filename="graph", directory=tmp, cleanup=True)
        os.replace(written, path)
    return path


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "graph"


class ShowGraph:
    """Draws one composition (PsyNeuLink keeps this object as ``comp._show_graph``)."""

    def __init__(self, composition: Any) -> None:
        self.composition = composition

    def _get_graph_node_label(self, composition: Any, node: Any, show_dimensions: object = None) -> str:
        """A node's label: its name, with its input and output sizes when ``show_dimensions``."""
        if not show_dimensions or not hasattr(node, "size"):
            return node.name
        size_in = sum(getattr(node, "port_sizes", (node.size,)))
        if getattr(node, "combine", None) in ("sum", "product"):
            size_in = node.size
        return f"{node.name}\nin ({size_in})  out ({node.size})"

    def __call__(self, show_learning: bool = False, show_nested: object = True, show_pytorch: bool = False,
                 show_dimensions: object = False, output_fmt: str = "pdf", file: str | Path | None = None,
                 **ignored: object) -> Any:
        comp = self.composition
        autodiff = hasattr(comp, "_build_pytorch_representation")
        if autodiff and show_learning and not show_pytorch:
            warnings.warn(f"show_graph() of {comp.name!r}: show_learning changes nothing for an "
                          "AutodiffComposition; its learning is drawn with show_pytorch=True", UserWarning,
                          stacklevel=3)
        learning = show_pytorch if autodiff else bool(show_learning)
        if autodiff and show_pytorch:
            comp.target_input_mechanisms  # noqa: B018  (the TARGET nodes are made, and bad targets refused, here)
        if not autodiff and show_learning and not comp._learning_nodes:
            warnings.warn(f"show_graph(show_learning=True) of {comp.name!r}: it has no learning pathway to "
                          "draw (add one with add_backpropagation_learning_pathway, or use an "
                          "AutodiffComposition)", UserWarning, stacklevel=3)
        if autodiff and show_pytorch and not any(p.learnable for p in comp._deep_projections()):
            warnings.warn(f"show_graph(show_pytorch=True) of {comp.name!r}: no projection of it learns, "
                          "so there is no PyTorch representation to draw and learn() would have nothing "
                          "to train", UserWarning, stacklevel=3)
        dot = digraph_class()(name=comp.name, graph_attr={"label": comp.name, "rankdir": "BT",
                                                          "overlap": "False"},
                              node_attr={"fontname": "arial", "fontsize": "12", "shape": "oval",
                                         "color": DEFAULT_COLOR, "penwidth": "1"},
                              edge_attr={"fontname": "arial", "fontsize": "10"})
        self._draw(dot, comp, bool(show_nested), learning, show_dimensions, top=True)
        return render(dot, output_fmt, file, comp.name)

    def _draw(self, dot: Any, comp: Any, nested: bool, learning: bool, dims: object, top: bool) -> None:
        from mdfx.composition.composition import Composition
        from mdfx.composition.enums import NodeRole

        inputs = {id(n) for n in comp.get_nodes_by_role(NodeRole.INPUT)}
        outputs = {id(n) for n in comp.get_nodes_by_role(NodeRole.OUTPUT)}
        boxes: dict[str, list] = {}  # a nested composition's name -> its nodes drawn in its cluster
        for node in comp._nodes:
            if isinstance(node, Composition):  # kept whole (not flattened into this one)
                if nested:
                    with dot.subgraph(name=f"cluster_{node.name}") as sub:
                        sub.attr(label=node.name, color="gray", style="rounded")
                        self._draw(sub, node, nested, learning, dims, top=False)
                else:
                    dot.node(node.name, shape="box", color="gray", penwidth="2")
                continue
            owner = self._owner(comp, node)
            color = INPUT_COLOR if id(node) in inputs and top else OUTPUT_COLOR if id(node) in outputs and top \
                else DEFAULT_COLOR
            attrs = {"label": self._get_graph_node_label(comp, node, dims), "color": color,
                     "penwidth": "3" if color != DEFAULT_COLOR else "1"}
            if owner is None:
                dot.node(node.name, **attrs)
            elif nested:
                boxes.setdefault(owner.name, []).append((node.name, attrs))
            elif owner.name not in boxes:
                boxes[owner.name] = []
                dot.node(owner.name, shape="box", color="gray", penwidth="2")
        for name, members in boxes.items():  # one cluster per nested composition
            if members:
                with dot.subgraph(name=f"cluster_{name}") as sub:
                    sub.attr(label=name, color="gray", style="rounded")
                    for member, attrs in members:
                        sub.node(member, **attrs)
        for p in comp._projections:
            if p.sender is None or p.receiver is None:
                continue
            sender, receiver = self._shown(comp, p.sender, nested), self._shown(comp, p.receiver, nested)
            if sender == receiver:  # inside one box
                continue
            dot.edge(sender, receiver, color=LEARNING_COLOR if learning and p.learnable else DEFAULT_COLOR,
                     tooltip=f"{p.name}: {p.matrix.shape[0]}x{p.matrix.shape[1]}"
                     f"{'' if p.learnable else ' (fixed)'}")
        if learning and top:
            self._draw_learning(dot, comp)

    @staticmethod
    def _owner(comp: Any, node: Any) -> Any:
        """The composition nested directly in ``comp`` that ``node`` came from (None: its own)."""
        return next((c for c in reversed(comp._flattened) if c._contains(node)), None)

    def _shown(self, comp: Any, node: Any, nested: bool) -> str:
        """The drawn name of ``node``: its own, or its nested composition's when those are boxes."""
        owner = None if nested else self._owner(comp, node)
        return node.name if owner is None else owner.name

    def _draw_learning(self, dot: Any, comp: Any) -> None:
        """The learning components: a Composition's TARGET, Comparator and LearningMechanisms;
        an AutodiffComposition's TARGET and LOSS for each OUTPUT node that learns."""
        from mdfx.composition.enums import NodeRole
        from mdfx.composition.learning_pathway import (
            LearningMechanism,
            ObjectiveMechanism,
            TargetMechanism,
        )

        if comp._learning_nodes:
            for node in comp._learning_nodes:
                dot.node(node.name, color=LEARNING_COLOR, penwidth="3" if isinstance(node, TargetMechanism) else "1",
                         shape="oval" if not isinstance(node, LearningMechanism) else "box")
                if isinstance(node, ObjectiveMechanism):
                    for port in (node.sample, node.target):
                        owner = getattr(port, "owner", None)
                        if owner is not None:
                            dot.edge(owner.name, node.name, color=LEARNING_COLOR)
                if isinstance(node, LearningMechanism):
                    p = node.learned_projection
                    dot.edge(node.name, p.receiver.name, color=LEARNING_COLOR, style="dashed",
                             tooltip=f"learns {p.name}")
            return
        for out in comp.get_nodes_by_role(NodeRole.OUTPUT):
            target, loss = f"TARGET for {out.name}", f"LOSS for {out.name}"
            dot.node(target, color=LEARNING_COLOR, penwidth="3")
            dot.node(loss, color=LEARNING_COLOR)
            dot.edge(target, loss)
            dot.edge(out.name, loss)
            dot.edge(loss, out.name, color="brown", style="dotted")


def _shape(shape: tuple[int, ...] | None) -> str:
    from mdfx.ops import BATCH

    if shape is None:
        return "?"
    return "(" + ", ".join("batch" if d == BATCH else str(d) for d in shape) + ")"


def draw_graph(graph: Any, output_fmt: str = "png", file: str | Path | None = None) -> Any:
    """Any loaded model's op graph: inputs (green) with their shapes, one box per op with the
    shape it makes, parameters (learnable orange, frozen gray) with theirs, outputs in red.
    ``output_fmt`` as for :meth:`Composition.show_graph`."""
    dot = digraph_class()(name=graph.name, graph_attr={"label": f"{graph.name} ({graph.dtype})", "rankdir": "TB"},
                          node_attr={"fontname": "arial", "fontsize": "11"}, edge_attr={"fontsize": "9"})
    # graphviz ids are numbered (a tensor name may hold ':', which dot reads as a port)
    producer: dict[str, str] = {}  # tensor -> the id of what makes it
    made_by_op: set[str] = set()
    for i, name in enumerate(graph.inputs):
        dot.node(f"i{i}", label=f"{name}\n{_shape(graph.shapes.get(name))}", shape="oval", color=INPUT_COLOR,
                 penwidth="3")
        producer[name] = f"i{i}"
    for i, (key, p) in enumerate(graph.params.items()):
        kind = "learnable" if p.learnable else "frozen"
        dot.node(f"p{i}", label=f"{p.name}\n{_shape(tuple(p.value.shape))} {kind}", shape="note",
                 style="filled", fillcolor="#ffd9a0" if p.learnable else "#e0e0e0",
                 color=LEARNING_COLOR if p.learnable else "gray")
        producer[key] = f"p{i}"
    outputs = set(graph.outputs)
    for i, node in enumerate(graph.nodes):
        out = node.output in outputs
        dot.node(f"o{i}", label=f"{node.op}\n{node.name}\n-> {_shape(graph.shapes.get(node.output))}",
                 shape="box", style="rounded", color=OUTPUT_COLOR if out else DEFAULT_COLOR,
                 penwidth="3" if out else "1")
        for t in node.inputs:
            if t in producer:
                dot.edge(producer[t], f"o{i}", label=_shape(graph.shapes.get(t)) if t in made_by_op else "")
        producer[node.output] = f"o{i}"
        made_by_op.add(node.output)
    for i, name in enumerate(graph.outputs):  # an output that is an input or a param itself
        if name not in made_by_op:
            dot.node(f"r{i}", label=name, shape="oval", color=OUTPUT_COLOR, penwidth="3")
            if name in producer:
                dot.edge(producer[name], f"r{i}")
    return render(dot, output_fmt, file, graph.name)
