"""Our own dialect, as :mod:`mdfx.schema.writer` writes it: everything exact is in metadata."""

from __future__ import annotations

from typing import Any

from mdfx import ops
from mdfx.errors import SchemaError
from mdfx.schema import validate
from mdfx.schema.net import Net, NodeSpec, ProjectionSpec, TrainingSpec
from mdfx.schema.writer import DIALECT, FORMAT_VERSION


def detect(model: dict[str, Any], graph: dict[str, Any]) -> bool:
    return DIALECT in (graph.get("metadata") or {})


def read(model: dict[str, Any], graph: dict[str, Any]) -> Net:
    meta = graph["metadata"][DIALECT]
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise SchemaError(f"this file was written by a newer mdfx (format {meta['format_version']}); "
                          f"this version reads format {FORMAT_VERSION}")
    nodes_by_id: dict[str, dict] = graph.get("nodes") or {}
    nodes: list[NodeSpec] = []
    for node_id, node in nodes_by_id.items():
        m = _meta(node, f"node {node_id!r}")
        op = ops.transfer_op(m["function"])
        bias = (node.get("parameters") or {}).get("node_bias")
        nodes.append(NodeSpec(
            name=m["name"], size=validate.node_size(m["size"], f"node {node_id!r}"), op=op.name,
            params=ops.fill_params(op, m.get("params", {})),
            bias=None if bias is None else validate.weights(bias["value"], f"node {node_id!r} bias"),
            bias_learnable=bool(m.get("bias_learnable", True)),
        ))
    names = {node_id: _meta(node, f"node {node_id!r}")["name"] for node_id, node in nodes_by_id.items()}
    projections: list[ProjectionSpec] = []
    for edge_id, edge in (graph.get("edges") or {}).items():
        m = _meta(edge, f"edge {edge_id!r}")
        receiver = nodes_by_id.get(edge["receiver"])
        if receiver is None or edge["sender"] not in nodes_by_id:
            raise SchemaError(f"edge {edge_id!r} joins {edge['sender']!r} to {edge['receiver']!r}, "
                              "which are not both nodes of the graph")
        param = (receiver.get("parameters") or {}).get(m["matrix"])
        if param is None:
            raise SchemaError(f"edge {edge_id!r}: node {edge['receiver']!r} has no matrix parameter "
                              f"{m['matrix']!r}")
        projections.append(ProjectionSpec(
            name=m["name"], sender=names[edge["sender"]], receiver=names[edge["receiver"]],
            matrix=validate.weights(param["value"], f"edge {edge_id!r} matrix"), learnable=bool(m.get("learnable", True)),
        ))
    t = meta.get("training", {})
    training = TrainingSpec(
        loss=str(t.get("loss", "MSE")), optimizer=str(t.get("optimizer", "sgd")),
        learning_rate=float(t.get("learning_rate", 0.001)), weight_decay=float(t.get("weight_decay", 0.0)),
        disable_learning=bool(t.get("disable_learning", False)),
    )
    return Net.build(meta.get("name", next(iter(model))), nodes, projections, training,
                     autodiff=meta.get("kind", "AutodiffComposition") == "AutodiffComposition",
                     inputs=meta.get("inputs"), outputs=meta.get("outputs"))


def _meta(obj: dict, what: str) -> dict:
    m = (obj.get("metadata") or {}).get(DIALECT)
    if m is None:
        raise SchemaError(f"{what} has no {DIALECT!r} metadata; the file mixes dialects")
    return m
