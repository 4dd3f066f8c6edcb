"""MDF written by PsyNeuLink 0.21 (``pnl.get_mdf_serialized`` / ``as_mdf_model``).

What PsyNeuLink writes for an AutodiffComposition (measured, see
``tests/pnl_reference/facts.md``):

* a node per TransferMechanism; its function is the one the ``*_RESULT`` output
  port names, with ``metadata.type`` the PsyNeuLink class (Linear, Logistic, ...)
  and the parameters as ``args`` (``variable0`` is the input);
* a projection either as a ``<name>_dummy_node`` node of type MappingProjection
  with an ``onnx::MatMul`` whose ``B`` is the matrix, between a ``*_pre_edge`` and
  a ``*_post_edge``, or as an edge whose metadata holds that MatMul;
* after learn(), ``TARGET for X`` / ``LOSS for X`` nodes, which we drop;
* a receiver with several afferents sums them (an ``onnx::ReduceSum``), which is
  what a mechanism does anyway.

Parameters PsyNeuLink carries beyond ours are folded in when that is exact
(ReLU's ``scale``) and refused otherwise. A vector-valued bias or intercept
becomes the node's bias vector.

The same structure written by other tools (modeci-mdf's "PsyNeuLink style"
idiom: ``*_dummy_node`` MatMul nodes, no metadata) is read too; there the
functions mean what modeci-mdf's standard library says, which differs from
PsyNeuLink only in Logistic's ``offset`` (inside the exponent), so a non-zero
offset is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mdfx import ops
from mdfx.errors import UnsupportedError, one_line
from mdfx.schema import validate
from mdfx.schema.graph import Graph, TrainingSpec
from mdfx.schema.mechanisms import MechanismSpec, ProjectionSpec
from mdfx.schema.mechanisms import build as build_network

#: Node types that PsyNeuLink adds for learning; they are not part of the network.
LEARNING_TYPES = {"LossMechanism", "ComparatorMechanism", "LearningMechanism", "ObjectiveMechanism"}


def _written_by_pnl(model: dict[str, Any]) -> bool:
    body = next(iter(model.values()))
    app = str(body.get("generating_application", ""))
    return app.lower().startswith("psyneulink") and "v0.1" not in str(body.get("format", ""))


def _is_dummy(node_id: str, node: dict) -> bool:
    kind = (node.get("metadata") or {}).get("type")
    fns = (node.get("functions") or {}).values()
    return kind == "MappingProjection" or (
        kind is None and node_id.endswith("_dummy_node") and any(f.get("function") == "onnx::MatMul" for f in fns))


def detect(model: dict[str, Any], graph: dict[str, Any]) -> bool:
    if _written_by_pnl(model):
        return True
    nodes = graph.get("nodes") or {}
    return any(_is_dummy(i, n) for i, n in nodes.items()) and not any(
        (n.get("metadata") or {}).get("type") for n in nodes.values())


def read(model: dict[str, Any], graph: dict[str, Any]) -> Graph:
    nodes_in: dict[str, dict] = graph.get("nodes") or {}
    meta = graph.get("metadata") or {}
    mechanisms: dict[str, MechanismSpec] = {}
    dummies: dict[str, np.ndarray] = {}
    learnable: dict[str, bool] = {}
    dropped: set[str] = set()
    pnl_semantics = _written_by_pnl(model)
    for node_id, node in nodes_in.items():
        kind = (node.get("metadata") or {}).get("type")
        if kind is None:
            kind = "MappingProjection" if _is_dummy(node_id, node) else "TransferMechanism"
        if kind == "TransferMechanism":
            mechanisms[node_id] = _mechanism(node_id, node, pnl_semantics)
        elif kind == "MappingProjection":
            dummies[node_id] = _matmul_matrix(node.get("functions") or {}, f"node {node_id!r}")
            learnable[node_id] = bool((node.get("metadata") or {}).get("learnable", True))
        elif kind in LEARNING_TYPES or node_id.startswith(("TARGET", "LOSS")):
            dropped.add(node_id)
        else:
            raise UnsupportedError(f"node {node_id!r} is a PsyNeuLink {kind}; mdfx reads AutodiffCompositions "
                                   "of TransferMechanisms and MappingProjections")
    projections = _projections(graph.get("edges") or {}, mechanisms, dummies, learnable, dropped)
    order = [n for n in meta.get("node_ordering") or [] if n in mechanisms]
    order += [n for n in mechanisms if n not in order]
    loss = str(meta.get("loss_spec", "Loss.MSE")).split(".")[-1]
    if loss.upper() not in {*ops.LOSSES, *ops.LOSS_ALIASES, "L0", "SUM"}:
        raise UnsupportedError(f"graph metadata loss_spec {one_line(meta.get('loss_spec'), 40)}: not a "
                               f"PsyNeuLink Loss; mdfx reads Loss.{', Loss.'.join(ops.LOSSES)}")
    lr = (graph.get("parameters") or {}).get("learning_rate", 0.001)
    training = TrainingSpec(loss=loss, learning_rate=float(lr if lr is not None else 0.001))
    name = next(iter(model))
    return build_network(name, [mechanisms[n] for n in order], projections, training,
                     autodiff=meta.get("type", "AutodiffComposition") == "AutodiffComposition")


def _mechanism(node_id: str, node: dict, pnl_semantics: bool = True) -> MechanismSpec:
    functions = node.get("functions") or {}
    ports = node.get("output_ports") or {}
    result = next((p for pid, p in ports.items() if pid.endswith("RESULT")), next(iter(ports.values()), None))
    if result is None or result.get("value") not in functions:
        raise UnsupportedError(f"node {node_id!r}: no output port names its transfer function")
    fn = functions[result["value"]]
    pnl_name = (fn.get("metadata") or {}).get("type") or str(fn.get("function", "")).capitalize()
    op = ops.transfer_op(_PNL_ALIASES.get(pnl_name, pnl_name))
    raw = {k: v for k, v in (fn.get("args") or {}).items() if k != "variable0"}
    vectors = {k: np.array(v, dtype=np.float64) for k, v in raw.items() if isinstance(v, list)}
    args = {k: float(v) for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if not pnl_semantics and op.transfer_key == "logistic" and args.get("offset", 0.0) != 0.0:
        raise UnsupportedError(f"node {node_id!r}: logistic with offset={args['offset']} in a file not written "
                               "by PsyNeuLink (modeci-mdf puts offset inside the exponent) is not supported")
    params = ops.fill_params(op, _fold(op.transfer_key, args, node_id))
    shape = result.get("shape") or next(iter((node.get("input_ports") or {}).values()), {}).get("shape")
    size = validate.node_size(shape[-1], f"node {node_id!r} shape") if shape else 1
    key = op.transfer_key
    return MechanismSpec(node_id, size, key, params, _vector_bias(key, vectors, params, node_id, size))


def _vector_bias(op: str, vectors: dict[str, np.ndarray], params: dict[str, float], node_id: str,
                 size: int) -> np.ndarray | None:
    """A per-unit bias or intercept, as the node's bias added to its net input."""
    if not vectors:
        return None
    (key, vec), *rest = vectors.items()
    if rest:
        raise UnsupportedError(f"node {node_id!r}: several vector-valued parameters "
                               f"({', '.join(vectors)}) are not supported")
    vec = vec.reshape(-1)
    if vec.shape != (size,):
        raise UnsupportedError(f"node {node_id!r}: parameter {key!r} has {vec.size} values for {size} units")
    # op(x + b) must equal the function with the vector parameter:
    rules = {("logistic", "bias"): 1.0, ("tanh", "bias"): 1.0, ("relu", "bias"): -1.0,
             ("linear", "intercept"): 1.0 / params.get("slope", 1.0),
             ("exponential", "bias"): 1.0 / params.get("rate", 1.0)}
    if (op, key) not in rules:
        raise UnsupportedError(f"node {node_id!r}: a vector-valued {key!r} of {op} is not supported")
    return vec * rules[op, key]


#: PsyNeuLink class names whose op key differs from its PNL name.
_PNL_ALIASES = {"Softmax": "SoftMax", "Relu": "ReLU"}

#: Arguments PsyNeuLink writes that carry no meaning for the function's value.
_IGNORED = {"softmax": {"adapt_scale", "adapt_base", "adapt_entropy_weighting"}}


def _fold(op: str, args: dict[str, float], node_id: str) -> dict[str, float]:
    """PsyNeuLink's parameter set -> ours, exactly, or an error naming the parameter."""
    args = {k: v for k, v in args.items() if k not in _IGNORED.get(op, set())}
    if op == "relu":
        scale, offset = args.pop("scale", 1.0), args.pop("offset", 0.0)
        if offset != 0.0:
            raise UnsupportedError(f"node {node_id!r}: ReLU with offset={offset} is not supported")
        args["gain"] = scale * args.get("gain", 1.0)
    known = set(ops.transfer_op(op).attrs)
    for key in list(args):
        if key not in known:
            raise UnsupportedError(f"node {node_id!r}: {ops.transfer_op(op).pnl_name} parameter {key!r} "
                                   f"is not supported (mdfx has {', '.join(known) or 'none'})")
    return args


def _matmul_matrix(functions: dict, where: str) -> np.ndarray:
    for fn in functions.values():
        if fn.get("function") == "onnx::MatMul" and isinstance((fn.get("args") or {}).get("B"), list):
            return np.array(fn["args"]["B"], dtype=np.float64)
    raise UnsupportedError(f"{where}: a MappingProjection without an inline onnx::MatMul matrix")


def _projections(edges: dict[str, dict], mechanisms: dict[str, MechanismSpec], dummies: dict[str, np.ndarray],
                 learnable: dict[str, bool], dropped: set[str]) -> list[ProjectionSpec]:
    into: dict[str, str] = {}
    out_of: dict[str, str] = {}
    projections = []
    for edge_id, edge in edges.items():
        s, r = edge["sender"], edge["receiver"]
        if s in dropped or r in dropped:
            continue
        if r in dummies:
            into[r] = s
        elif s in dummies:
            out_of[s] = r
        elif s in mechanisms and r in mechanisms:
            m = edge.get("metadata") or {}
            matrix = _matmul_matrix(m.get("functions") or {}, f"edge {edge_id!r}")
            projections.append(ProjectionSpec(edge_id, s, r, matrix, bool(m.get("learnable", True))))
        else:
            raise UnsupportedError(f"edge {edge_id!r} joins {s!r} to {r!r}, which mdfx cannot place")
    for dummy, matrix in dummies.items():
        if dummy not in into or dummy not in out_of:
            raise UnsupportedError(f"projection node {dummy!r} is not connected on both sides")
        name = dummy.removesuffix("_dummy_node")
        projections.append(ProjectionSpec(name, into[dummy], out_of[dummy], matrix, learnable[dummy]))
    return projections
