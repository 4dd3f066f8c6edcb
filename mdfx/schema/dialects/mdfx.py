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
    if not isinstance(meta, dict):
        raise SchemaError(f"graph metadata {DIALECT!r} must be a mapping, but holds a {type(meta).__name__}")
    version = meta.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise SchemaError(f"graph metadata {DIALECT!r}: field 'format_version' must be an integer, but holds a "
                          f"{type(version).__name__} ({str(version)[:40]!r})")
    if version > FORMAT_VERSION:
        raise SchemaError(f"this file was written by a newer mdfx (format {meta['format_version']}); "
                          f"this version reads format {FORMAT_VERSION}")
    if meta.get("kind") == GRAPH_KIND:
        return read_graph(graph)
    nodes_by_id: dict[str, dict] = graph.get("nodes") or {}
    nodes: list[MechanismSpec] = []
    for node_id, node in nodes_by_id.items():
        m = _meta(node, f"node {node_id!r}")
        where = f"node {node_id!r}: {DIALECT} metadata"
        op = ops.transfer_op(validate.field(m, "function", where, str, "function name"))
        bias = (node.get("parameters") or {}).get("node_bias")
        params = m.get("params", {})
        if not isinstance(params, dict):
            raise SchemaError(f"{where}: field 'params' must be a mapping, but holds a {type(params).__name__}")
        nodes.append(MechanismSpec(
            name=validate.field(m, "name", where, str, "node name"),
            size=validate.node_size(validate.field(m, "size", where), f"node {node_id!r}"), op=op.transfer_key,
            params=ops.fill_params(op, params),
            bias=None if bias is None else validate.weights(validate.field(bias, "value", f"node {node_id!r} bias"),
                                                           f"node {node_id!r} bias"),
            bias_learnable=bool(m.get("bias_learnable", True)),
        ))
    names = {node_id: spec.name for node_id, spec in zip(nodes_by_id, nodes, strict=True)}
    projections: list[ProjectionSpec] = []
    for edge_id, edge in (graph.get("edges") or {}).items():
        m = _meta(edge, f"edge {edge_id!r}")
        for end in ("sender", "receiver"):
            validate.field(edge, end, f"edge {edge_id!r}", str, "node id")
        receiver = nodes_by_id.get(edge["receiver"])
        if receiver is None or edge["sender"] not in nodes_by_id:
            raise SchemaError(f"edge {edge_id!r} joins {edge['sender']!r} to {edge['receiver']!r}, "
                              "which are not both nodes of the graph")
        param = (receiver.get("parameters") or {}).get(validate.field(m, "matrix", f"edge {edge_id!r}: {DIALECT} "
                                                                                  "metadata", str, "parameter name"))
        if param is None:
            raise SchemaError(f"edge {edge_id!r}: node {edge['receiver']!r} has no matrix parameter "
                              f"{m['matrix']!r}")
        projections.append(ProjectionSpec(
            name=validate.field(m, "name", f"edge {edge_id!r}: {DIALECT} metadata", str, "projection name"),
            sender=names[edge["sender"]], receiver=names[edge["receiver"]],
            matrix=validate.weights(validate.field(param, "value", f"edge {edge_id!r} matrix"),
                                    f"edge {edge_id!r} matrix"), learnable=bool(m.get("learnable", True)),
        ))
    t = meta.get("training", {})
    if not isinstance(t, dict):
        raise SchemaError(f"graph metadata {DIALECT!r}: field 'training' must be a mapping, but holds a "
                          f"{type(t).__name__}")
    numbers = {}
    for key, default in (("learning_rate", 0.001), ("weight_decay", 0.0)):
        value = t.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SchemaError(f"graph metadata {DIALECT!r}: training field {key!r} must be a number, but holds a "
                              f"{type(value).__name__} ({str(value)[:40]!r})")
        numbers[key] = float(value)
    training = TrainingSpec(
        loss=str(t.get("loss", "MSE")), optimizer=str(t.get("optimizer", "sgd")),
        learning_rate=numbers["learning_rate"], weight_decay=numbers["weight_decay"],
        disable_learning=bool(t.get("disable_learning", False)),
    )
    receivers = {p.receiver for p in projections}
    node_names = [n.name for n in nodes]
    return build_network(meta.get("name", next(iter(model))), nodes, projections, training,
                     autodiff=meta.get("kind", "AutodiffComposition") == "AutodiffComposition",
                     inputs=_roles(meta, "inputs", node_names, receivers),
                     outputs=_roles(meta, "outputs", node_names, set()))


def _roles(meta: dict, key: str, nodes: list[str], fed: set[str]) -> list[str] | None:
    """The INPUT or OUTPUT node names a file lists: each a node of the graph, listed once; an INPUT
    node receives no projection (data given to an inner node would silently replace what it computes)."""
    given = meta.get(key)
    if given is None:
        return None
    if not isinstance(given, list) or not all(isinstance(n, str) for n in given):
        raise SchemaError(f"metadata {key!r} must be a list of node names, got {type(given).__name__} "
                          f"{str(given)[:60]!r}")
    for name in given:
        if given.count(name) > 1:
            raise SchemaError(f"metadata {key!r} lists node {name!r} {given.count(name)} times; each role is "
                              "given once")
        if name not in nodes:
            raise SchemaError(f"metadata {key!r} lists {name!r}, which is not a node (nodes: {', '.join(nodes)})")
        if name in fed:
            raise SchemaError(f"metadata {key!r} lists {name!r}, which receives a projection: an INPUT node is "
                              "fed only by data")
    return list(given) or None


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
