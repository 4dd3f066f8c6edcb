"""PsyNeuLink 0.9's MDF (format v0.1): small Compositions of TransferMechanisms.

What PsyNeuLink 0.9 wrote differs from today's MDF: shapes are strings such
as ``"(1,)"``, conditions use ``args`` (not ``kwargs``), and each
MappingProjection is an edge whose matrix sits in the edge's metadata
(``functions.LinearMatrix_Function_*.args.B``) with a scalar ``weight``
parameter. modeci-mdf 0.4.13 cannot load these files; this reader takes the
plain dicts.

A file is read when it is a feed-forward network of TransferMechanisms whose
scheduling is the default one (``Always``, ``EveryNCalls(sender, 1)``,
``All`` of those; termination ``Never`` / ``AllHaveRun``). Stateful
mechanisms (IntegratorMechanism, integrator functions, ``integrator_mode``)
and conditions that change what runs when are refused, naming them.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from mdfx import ops
from mdfx.errors import SchemaError, UnsupportedError
from mdfx.schema import validate
from mdfx.schema.graph import Graph
from mdfx.schema.mechanisms import MechanismSpec, ProjectionSpec
from mdfx.schema.mechanisms import build as build_network

#: MDF function name -> PsyNeuLink Function, for functions without metadata.
_BY_FUNCTION = {"linear": "Linear", "logistic": "Logistic", "exponential": "Exponential", "tanh": "Tanh"}


def detect(model: dict[str, Any], graph: dict[str, Any]) -> bool:
    """Format v0.1 written by PsyNeuLink."""
    body = next(iter(model.values()))
    return (str(body.get("format", "")).startswith("ModECI MDF v0.1")
            and "psyneulink" in str(body.get("generating_application", "")).lower())


def read(model: dict[str, Any], graph: dict[str, Any]) -> Graph:
    """The Composition as a graph with its mechanisms (autodiff only if it was an AutodiffComposition); refusals name the construct."""
    graph_id = next(iter(next(iter(model.values()))["graphs"]))
    nodes_by_id: dict[str, dict] = graph.get("nodes") or {}
    edges: dict[str, dict] = graph.get("edges") or {}
    senders: dict[str, set[str]] = {n: set() for n in nodes_by_id}
    for edge_id, edge in edges.items():
        if edge.get("sender") not in nodes_by_id or edge.get("receiver") not in nodes_by_id:
            raise SchemaError(f"edge {edge_id!r} joins {edge.get('sender')!r} to {edge.get('receiver')!r}, "
                              "which are not both nodes of the graph")
        senders[edge["receiver"]].add(edge["sender"])
    nontrivial = scheduling_conditions(graph.get("conditions"), senders)
    if nontrivial:
        raise UnsupportedError(
            f"graph {graph_id!r} has scheduler conditions that change what runs when: "
            f"{'; '.join(nontrivial)}. mdfx runs each node once per trial, after its senders "
            "(feed-forward networks only)"
        )
    nodes = [_node(node_id, node) for node_id, node in nodes_by_id.items()]
    projections = [_projection(edge_id, edge) for edge_id, edge in edges.items()]
    return build_network(graph_id, nodes, projections, autodiff=_kind(graph) == "AutodiffComposition")


def scheduling_conditions(conditions: dict[str, Any] | None, senders: dict[str, set[str]]) -> list[str]:
    """Descriptions of the conditions that differ from running each node once, after its senders.

    ``senders[node]`` are the nodes with an edge into ``node``. Reads PsyNeuLink
    0.9's ``args`` and MDF 0.4's ``kwargs`` spellings.
    """
    if not conditions:
        return []
    out = []
    for node, cond in (conditions.get("node_specific") or {}).items():
        if not _default_condition(cond, senders.get(node, set())):
            out.append(f"{node}: {_describe(cond)}")
    defaults = {"environment_sequence": "Never", "environment_state_update": "AllHaveRun"}
    for scale, cond in (conditions.get("termination") or {}).items():
        allowed = defaults.get(scale, "")
        if not (isinstance(cond, dict) and cond.get("type") == allowed and not _args(cond).get("dependencies")):
            out.append(f"termination {scale}: {_describe(cond)}")
    return out


def _args(cond: dict) -> dict:
    return cond.get("args") or cond.get("kwargs") or {}


def _default_condition(cond: Any, senders: set[str]) -> bool:
    if not isinstance(cond, dict):
        return False
    kind, args = cond.get("type"), _args(cond)
    if kind == "Always":
        return True
    if kind == "EveryNCalls":
        dep = args.get("dependency", args.get("dependencies"))
        return args.get("n") == 1 and dep in senders
    if kind == "All":
        inner = args.get("args") or args.get("dependencies") or []
        return all(_default_condition(c, senders) for c in inner)
    return False


def _describe(cond: Any) -> str:
    if not isinstance(cond, dict):
        return repr(cond)
    args = _args(cond)
    inner = ", ".join(f"{k}={_describe(v) if isinstance(v, dict) else v}" for k, v in args.items())
    return f"{cond.get('type')}({inner})"


def _kind(graph: dict) -> str:
    return str((graph.get("metadata") or {}).get("type", "Composition"))


def _shape_size(text: Any, where: str) -> int:
    """``"(1,)"`` -> 1, ``"(1, 3)"`` -> 3 (a leading batch-like axis is dropped); lists too."""
    dims = [int(d) for d in re.findall(r"\d+", text)] if isinstance(text, str) else list(text or [])
    if not dims:
        raise SchemaError(f"{where} has no shape; mdfx needs it to size the mechanism")
    dims = [validate.node_size(d, where) for d in dims]
    return validate.node_size(math.prod(dims[1:]) if len(dims) > 1 else dims[0], where)


def _node(node_id: str, node: dict) -> MechanismSpec:
    meta = node.get("metadata") or {}
    kind = str(meta.get("type", "?"))
    functions = node.get("functions") or {}
    stateful = [f"{fid} ({(f.get('metadata') or {}).get('type', f.get('function'))})"
                for fid, f in functions.items() if "integrator" in str(f.get("function", "")).lower()]
    if "Integrator" in kind or stateful:
        raise UnsupportedError(f"node {node_id!r} is stateful: {kind} with {', '.join(stateful) or 'an integrator'}; "
                               "mdfx supports feed-forward networks of TransferMechanisms only")
    if kind != "TransferMechanism":
        raise UnsupportedError(f"node {node_id!r} is a {kind}; mdfx reads TransferMechanisms only")
    if meta.get("integrator_mode"):
        raise UnsupportedError(f"node {node_id!r} has integrator_mode on (a stateful mechanism); "
                               "mdfx supports feed-forward networks only")
    if len(functions) != 1:
        raise SchemaError(f"node {node_id!r} has {len(functions)} functions; a TransferMechanism has one")
    fid, fn = next(iter(functions.items()))
    pnl_name = (fn.get("metadata") or {}).get("type") or _BY_FUNCTION.get(str(fn.get("function")), "?")
    try:
        op = ops.transfer_op(pnl_name)
    except UnsupportedError as exc:
        raise UnsupportedError(f"node {node_id!r}, function {fid!r}: {exc}") from None
    params = {}
    for k, v in (fn.get("args") or {}).items():
        if k == "variable0" or k not in op.attrs:
            continue
        if np.size(v) != 1:
            raise UnsupportedError(f"node {node_id!r}: {op.pnl_name} parameter {k}={v!r} is not a number; "
                                   "mdfx reads one value per parameter")
        params[k] = float(np.ravel(v)[0])
    ports = node.get("input_ports") or {}
    if len(ports) != 1:
        raise UnsupportedError(f"node {node_id!r} has {len(ports)} input ports; mdfx reads mechanisms with one")
    port_id, port = next(iter(ports.items()))
    size = _shape_size(port.get("shape"), f"node {node_id!r} input port {port_id!r}")
    return MechanismSpec(node_id, size, op.transfer_key, ops.fill_params(op, params))


def _projection(edge_id: str, edge: dict) -> ProjectionSpec:
    functions = (edge.get("metadata") or {}).get("functions") or {}
    matrices = [f.get("args", {}).get("B") for f in functions.values() if isinstance(f, dict)]
    matrices = [m for m in matrices if m is not None]
    if len(matrices) != 1:
        raise SchemaError(f"edge {edge_id!r} has no LinearMatrix function with a matrix B in its metadata")
    weight = (edge.get("parameters") or {}).get("weight", 1)
    if np.size(weight) != 1:
        raise UnsupportedError(f"edge {edge_id!r} has a weight of shape {np.shape(weight)}; mdfx reads scalar "
                               "edge weights")
    matrix = float(np.ravel(weight)[0]) * np.atleast_2d(np.array(matrices[0], dtype=np.float64))
    return ProjectionSpec(edge_id, edge["sender"], edge["receiver"], matrix)
