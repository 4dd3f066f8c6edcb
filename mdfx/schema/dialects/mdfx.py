"""Our own dialect, as :mod:`mdfx.schema.writer` writes it: everything exact is in metadata.

A composition built with mechanisms reads back as a graph with its mechanisms; an op graph (graph
metadata ``kind: "Graph"``) as the identical :class:`~mdfx.schema.graph.Graph`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mdfx import ops
from mdfx.errors import SchemaError
from mdfx.schema import validate
from mdfx.schema.graph import Graph, Node, Param, TrainingSpec
from mdfx.schema.mechanisms import MechanismSpec, ProjectionSpec
from mdfx.schema.mechanisms import build as build_network
from mdfx.schema.writer import DIALECT, FORMAT_VERSION, GRAPH_FORMAT_VERSION, GRAPH_KIND


def detect(model: dict[str, Any], graph: dict[str, Any]) -> bool:
    return DIALECT in (graph.get("metadata") or {})


def read(model: dict[str, Any], graph: dict[str, Any]) -> Graph:
    meta = graph["metadata"][DIALECT]
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise SchemaError(f"this file was written by a newer mdfx (format {meta['format_version']}); "
                          f"this version reads format {FORMAT_VERSION}")
    if meta.get("kind") == GRAPH_KIND:
        return read_graph(graph)
    nodes_by_id: dict[str, dict] = graph.get("nodes") or {}
    nodes: list[MechanismSpec] = []
    for node_id, node in nodes_by_id.items():
        m = _meta(node, f"node {node_id!r}")
        op = ops.transfer_op(m["function"])
        bias = (node.get("parameters") or {}).get("node_bias")
        nodes.append(MechanismSpec(
            name=m["name"], size=validate.node_size(m["size"], f"node {node_id!r}"), op=op.transfer_key,
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
    return build_network(meta.get("name", next(iter(model))), nodes, projections, training,
                     autodiff=meta.get("kind", "AutodiffComposition") == "AutodiffComposition",
                     inputs=meta.get("inputs"), outputs=meta.get("outputs"))


def _meta(obj: dict, what: str) -> dict:
    m = (obj.get("metadata") or {}).get(DIALECT)
    if m is None:
        raise SchemaError(f"{what} has no {DIALECT!r} metadata; the file mixes dialects")
    return m


def read_graph(graph: dict[str, Any]) -> Graph:
    """An op graph written by :func:`mdfx.schema.writer.graph_to_mdf`, rebuilt from its metadata."""
    meta = graph["metadata"][DIALECT]
    if meta.get("graph_format_version", 0) > GRAPH_FORMAT_VERSION:
        raise SchemaError(f"this op graph was written by a newer mdfx (graph format "
                          f"{meta['graph_format_version']}); this version reads {GRAPH_FORMAT_VERSION}")
    params: dict[str, Param] = {}
    nodes: list[Node] = []
    for node_id, node in (graph.get("nodes") or {}).items():
        m = _meta(node, f"node {node_id!r}")
        if m.get("kind") != "op":
            continue
        for p in (node.get("parameters") or {}).values():
            pm = (p.get("metadata") or {}).get(DIALECT)
            if pm is None or pm["name"] in params:
                continue  # an attribute, or a param already read from an earlier op
            params[pm["name"]] = Param(pm["name"], validate.weights(p["value"], f"node {node_id!r} param {pm['name']!r}"),
                                       bool(pm.get("learnable", True)), str(pm.get("dtype", "float64")))
        nodes.append(Node(m["name"], m["op"], list(m["inputs"]), m["output"], dict(m.get("attrs") or {})))
    order = meta.get("params") or list(params)
    missing = [k for k in order if k not in params]
    if missing:
        raise SchemaError(f"graph {meta.get('name')!r}: params {', '.join(missing)} are listed but no node holds "
                          "their values")
    return Graph.build(meta["name"], {k: tuple(v) for k, v in meta["inputs"]}, [params[k] for k in order],
                       nodes, meta["outputs"], dtype=meta.get("dtype", "float64"),
                       input_dtypes=meta.get("input_dtypes") or {}, **_facts_in(meta.get("meta") or {}))


def _facts_in(meta: dict[str, Any]) -> dict[str, Any]:
    """The graph's typed fields as the writer stored them (``"meta"``: extra state with its dtype,
    training settings as a TrainingSpec); other keys older files hold (opset, producer) are dropped."""
    out: dict[str, Any] = {}
    if "extra_state" in meta:
        out["extra_state"] = {k: np.array(v["value"], dtype=np.dtype(str(v["dtype"]))) for k, v in meta["extra_state"].items()}
    t = meta.get("training")
    if isinstance(t, dict) and t.get("dataclass") == "TrainingSpec":
        out["training"] = TrainingSpec(**{k: v for k, v in t.items() if k != "dataclass"})
    if isinstance(meta.get("state_dict_keys"), dict):
        out["state_dict_keys"] = {str(k): str(v) for k, v in meta["state_dict_keys"].items()}
    if isinstance(meta.get("layers"), dict):
        out["layers"] = {str(k): str(v) for k, v in meta["layers"].items()}
    if isinstance(meta.get("extra_outputs"), list):
        out["extra_outputs"] = tuple(str(t) for t in meta["extra_outputs"])
    if isinstance(meta.get("source"), str):
        out["source"] = meta["source"]
    return out
