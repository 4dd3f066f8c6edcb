"""Graph -> ModECI MDF (our dialect), through modeci-mdf's classes: :func:`graph_to_mdf`.

An op graph (a model brought from torch, ONNX or foreign MDF) is written one MDF
node per op. A graph with its mechanisms (a composition built with mechanisms,
:attr:`~mdfx.schema.graph.Graph.mechanisms`) is written PsyNeuLink-style, as follows.

One MDF node per mechanism. A node computes, as MDF ``functions`` listed in
dependency order (modeci-mdf's engine evaluates them in order):

* ``<projection>_out = MatMul(in_<projection>, <projection>)`` per incoming
  projection, whose matrix is a node ``Parameter`` named after the projection;
* ``net_input`` = their sum (or the ``input`` port of an INPUT node), plus the
  ``node_bias`` parameter when the node has a bias;
* ``value`` = the transfer function, through modeci-mdf's standard functions
  (``linear``, ``logistic``, ``tanh``, ``exponential``, ``Relu``, ``MatMul``)
  and arithmetic, so modeci-mdf's own engine runs the file.

Exact names, function parameters and training settings ride in ``metadata``
under the key ``"mdfx"``; the reader uses those, so a round trip is exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from mdfx import ops
from mdfx.errors import UnsupportedError
from mdfx.schema.graph import Graph, Mechanism, TrainingSpec

DIALECT = "mdfx"
FORMAT_VERSION = 1
RESERVED = {"input", "net_input", "value", "node_bias", "ones", "s", "z", "r", "e", "total", "sq"}

FunctionSpec = tuple[str, dict[str, Any]]  # (function id, Function kwargs)


def _num(v: float) -> str:
    """A float in an expression: repr round-trips exactly; parentheses keep negatives safe."""
    return f"({v!r})"


def _mdf_linear(refs: list[str], p: dict[str, Any]) -> list[FunctionSpec]:
    x = refs[0]
    lin = {"function": "linear", "args": {"variable0": x, "slope": p["slope"], "intercept": p["intercept"]}}
    if p["scale"] == 1.0 and p["offset"] == 0.0:
        return [("value", lin)]
    # modeci-mdf's linear has no scale/offset: PsyNeuLink's are applied after it.
    return [("s", lin), ("value", {"value": f"{_num(p['scale'])} * s + {_num(p['offset'])}"})]


def _mdf_logistic(refs: list[str], p: dict[str, Any]) -> list[FunctionSpec]:
    x = refs[0]
    # modeci-mdf's logistic puts ``offset`` inside the exponent; PsyNeuLink adds it outside.
    args = {"gain": p["gain"], "bias": p["bias"], "offset": 0.0}
    if p["scale"] == 1.0 and p["x_0"] == 0.0 and p["offset"] == 0.0:
        return [("value", {"function": "logistic", "args": {"variable0": x, **args}})]
    return [("s", {"function": "logistic", "args": {"variable0": f"{x} - {_num(p['x_0'])}", **args}}),
            ("value", {"value": f"{_num(p['scale'])} * s + {_num(p['offset'])}"})]


def _mdf_tanh(refs: list[str], p: dict[str, Any]) -> list[FunctionSpec]:
    x = refs[0]
    inner = f"{_num(p['gain'])} * ({x} + {_num(p['bias'])} - {_num(p['x_0'])}) + {_num(p['offset'])}"
    return [("value", {"function": "tanh", "args": {"variable0": inner, "scale": p["scale"]}})]


def _mdf_exponential(refs: list[str], p: dict[str, Any]) -> list[FunctionSpec]:
    x = refs[0]
    return [("value", {"function": "exponential", "args": {"variable0": x, **p}})]


def _mdf_relu(refs: list[str], p: dict[str, Any]) -> list[FunctionSpec]:
    x = refs[0]
    # gain*relu(z) + leak*gain*min(z, 0), with min(z, 0) = z - relu(z)
    leak = p["leak"] * p["gain"]
    tail = f" + {_num(leak)} * (z - r)" if leak else ""
    return [("z", {"value": f"{x} - {_num(p['bias'])}"}),
            ("r", {"function": "Relu", "args": {"A": "z"}}),
            ("value", {"value": f"{_num(p['gain'])} * r{tail}"})]


def _mdf_softmax(refs: list[str], p: dict[str, Any]) -> list[FunctionSpec]:
    x = refs[0]
    # modeci-mdf's expressions have no sum(): the total is e @ ones (the "ones" parameter).
    return [("e", {"function": "exponential",
                   "args": {"variable0": f"{_num(p['gain'])} * {x}", "scale": 1.0, "rate": 1.0,
                            "bias": 0.0, "offset": 0.0}}),
            ("total", {"function": "MatMul", "args": {"A": "e", "B": "ones"}}),
            ("value", {"value": "e / total"})]


def _mdf_normalize(refs: list[str], p: dict[str, Any]) -> list[FunctionSpec]:
    x = refs[0]
    # the squared norm is (x * x) @ ones, as SoftMax's total
    return [("sq", {"value": f"{x} * {x}"}),
            ("total", {"function": "MatMul", "args": {"A": "sq", "B": "ones"}}),
            ("value", {"value": f"{x} / maximum(sqrt(total), {_num(p['eps'])})"})]


def _mdf_identity(refs: list[str], p: dict[str, Any]) -> list[FunctionSpec]:
    x = refs[0]
    return [("value", {"value": x})]


#: ``rule(refs, attrs) -> [(function id, Function kwargs)]``: the MDF functions computing a node's
#: ``value`` from its inputs (``refs``: each input's port or parameter id).
Rule = Callable[[list[str], dict[str, Any]], list[FunctionSpec]]


def _onnx_function(op: str) -> Rule:
    """An op written as modeci-mdf's ``onnx::<Op>`` function: the ONNX input names as args, and the
    numeric attributes (exact values and every attribute ride in the node's metadata)."""
    spec = ops.graph_op(op)

    def rule(refs: list[str], attrs: dict[str, Any]) -> list[FunctionSpec]:
        names = [n.rstrip("?").removesuffix("...") for n in spec.inputs]
        if spec.inputs and spec.inputs[0].endswith("..."):
            names = [f"{names[0]}{i}" for i in range(len(refs))]
        args: dict[str, Any] = {n: r for n, r in zip(names, refs, strict=False) if r}
        args.update({k: v for k, v in _json(attrs).items() if isinstance(v, int | float) and not isinstance(v, bool)})
        return [("value", {"function": f"onnx::{op}", "args": args})]

    return rule


#: This backend's rule per graph op: PsyNeuLink's transfer functions through modeci-mdf's standard
#: functions (so its engine runs the file), every other op as ``onnx::<Op>``.
RULES: dict[str, Rule] = {
    "pnl.Linear": _mdf_linear,
    "pnl.Logistic": _mdf_logistic,
    "pnl.Tanh": _mdf_tanh,
    "pnl.Exponential": _mdf_exponential,
    "pnl.ReLU": _mdf_relu,
    "pnl.SoftMax": _mdf_softmax,
    "pnl.Normalize": _mdf_normalize,
    "pnl.Identity": _mdf_identity,
}
# a transfer function added to the op table needs its own rule above (the coverage test says so)
RULES.update({name: _onnx_function(name) for name, op in ops.GRAPH_OPS.items() if op.pnl_name is None})


def mdf_ids_list(names: list[str], taken: set[str] = frozenset()) -> list[str]:
    """Like :func:`mdf_ids`, one id per entry of ``names`` (which may repeat)."""
    used = set(taken)
    out = []
    for name in names:
        (candidate,) = mdf_ids([name], used).values()
        used.add(candidate)
        out.append(candidate)
    return out


def mdf_ids(names: list[str], taken: set[str] = frozenset()) -> dict[str, str]:
    """Valid, unique MDF ids for ``names`` (originals are kept in metadata)."""
    out: dict[str, str] = {}
    used = set(taken)
    for name in names:
        base = re.sub(r"\W", "_", name) or "_"
        if base[0].isdigit():
            base = "_" + base
        candidate, i = base, 1
        while candidate in used:
            candidate = f"{base}_{i}"
            i += 1
        used.add(candidate)
        out[name] = candidate
    return out


def refuse_ports(name: str, ports: int, combine: str) -> None:
    """UnsupportedError for a mechanism with several InputPorts: the MDF layout has one per mechanism."""
    if ports > 1:
        raise UnsupportedError(f"node {name!r} has {ports} InputPorts ({combine} of them); "
                               "mdfx does not write such a node to MDF yet")


def _mechanisms_to_mdf(g: Graph) -> Any:
    """Write a graph with mechanisms as a ``modeci_mdf.mdf.Model``, PsyNeuLink-style (current weights)."""
    from modeci_mdf.mdf import Edge, Model, Node, OutputPort, Parameter
    from modeci_mdf.mdf import Graph as MdfGraph

    net = g.mechanisms
    training = g.training or TrainingSpec()
    node_ids = mdf_ids([n.name for n in net.nodes])
    proj_ids = mdf_ids([p.name for p in net.projections], taken=RESERVED)
    graph = MdfGraph(id=mdf_ids([g.name])[g.name], metadata={DIALECT: {
        "format_version": FORMAT_VERSION,
        "name": g.name,
        "kind": "AutodiffComposition" if net.autodiff else "Composition",
        "inputs": list(net.inputs),
        "outputs": list(net.outputs),
        "training": {
            "loss": training.loss,
            "optimizer": training.optimizer,
            "learning_rate": training.learning_rate,
            "weight_decay": training.weight_decay,
            "disable_learning": training.disable_learning,
        },
    }})
    for node in net.nodes:
        graph.nodes.append(_node(g, node, node_ids[node.name], proj_ids, Node, Parameter, OutputPort))
    for p in net.projections:
        graph.edges.append(Edge(
            id=proj_ids[p.name], sender=node_ids[p.sender], sender_port="output",
            receiver=node_ids[p.receiver], receiver_port=f"in_{proj_ids[p.name]}",
            metadata={DIALECT: {"name": p.name, "learnable": g.params[p.name].learnable, "matrix": proj_ids[p.name]}},
        ))
    return Model(id=graph.id, graphs=[graph], metadata={DIALECT: {"format_version": FORMAT_VERSION}})


def _node(g: Graph, node: Mechanism, node_id: str, proj_ids: dict[str, str],
          Node, Parameter, OutputPort) -> Any:  # noqa: N803 - classes passed in
    from modeci_mdf.mdf import Function, InputPort

    refuse_ports(node.name, node.ports, node.combine)
    op = ops.transfer_op(node.function)
    bias = g.params[node.bias] if node.bias is not None else None
    mdf_node = Node(id=node_id, metadata={DIALECT: {
        "name": node.name, "kind": "TransferMechanism", "size": node.size,
        "function": op.pnl_name, "params": dict(node.params),
        "bias_learnable": bias.learnable if bias is not None else True,
    }})
    functions: list[FunctionSpec] = []
    if node.name in g.mechanisms.inputs:
        mdf_node.input_ports.append(InputPort(id="input", shape=(node.size,), type="float64"))
        terms = ["input"]
    else:
        terms = []
        for p in g.mechanisms.incoming(node.name):
            pid = proj_ids[p.name]
            matrix = g.params[p.name].value
            mdf_node.input_ports.append(InputPort(id=f"in_{pid}", shape=(matrix.shape[0],), type="float64"))
            mdf_node.parameters.append(Parameter(id=pid, value=matrix.tolist()))
            functions.append((f"{pid}_out", {"function": "MatMul", "args": {"A": f"in_{pid}", "B": pid}}))
            terms.append(f"{pid}_out")
    if bias is not None:
        mdf_node.parameters.append(Parameter(id="node_bias", value=bias.value.tolist()))
        terms.append("node_bias")
    if node.function in ("softmax", "normalize"):
        mdf_node.parameters.append(Parameter(id="ones", value=[1.0] * node.size))
    functions.append(("net_input", {"value": " + ".join(terms)}))
    functions.extend(RULES[op.name](["net_input"], ops.fill_params(op, node.params)))
    for fid, kwargs in functions:
        mdf_node.functions.append(Function(id=fid, **kwargs))
    mdf_node.output_ports.append(OutputPort(id="output", value="value", shape=(node.size,), type="float64"))
    return mdf_node


# --- op graphs (models brought from torch, ONNX or foreign MDF) ----------------------------

#: graph metadata ``kind`` of an op graph written by :func:`graph_to_mdf`
GRAPH_KIND = "Graph"
GRAPH_FORMAT_VERSION = 1


def to_mdf(model: Graph) -> Any:
    """:func:`graph_to_mdf` (the name the façade and compositions use)."""
    return graph_to_mdf(model)


def graph_to_mdf(g: Graph) -> Any:
    """A :class:`~mdfx.schema.graph.Graph` as MDF, a ``modeci_mdf.mdf.Model`` in mdfx's dialect
    (current weights): its faithful serialization.

    A graph with mechanisms is written one MDF node per mechanism (see the module
    docstring), which modeci-mdf's engine runs in float64. An op graph:

    * each graph input is a node with an ``input`` port passed to its ``output`` port;
    * each op is a node whose function is the op: ``onnx::<Op>`` with the ONNX
      input names as args (``pnl.<Function>`` ops are written through modeci-mdf's
      standard functions, as compositions are), reading its computed inputs
      through input ports fed by edges and its params as node Parameters with their
      values (a param several ops read is written on each);
    * exact names, attributes, param learnable flags and dtypes ride in
      ``metadata["mdfx"]``; :func:`mdfx.schema.dialects.mdfx.read` rebuilds the
      identical graph from them.
    """
    from modeci_mdf.mdf import Edge, Function, InputPort, Model, Node, OutputPort, Parameter
    from modeci_mdf.mdf import Graph as MdfGraph

    if not isinstance(g, Graph):
        raise TypeError(f"graph_to_mdf() takes a Graph, got {type(g).__name__}")
    if g.mechanisms is not None:
        return _mechanisms_to_mdf(g)
    ids, node_ids = graph_ids(g)
    mdf_graph = MdfGraph(id=mdf_ids([g.name])[g.name], metadata={DIALECT: {
        "format_version": FORMAT_VERSION, "kind": GRAPH_KIND, "graph_format_version": GRAPH_FORMAT_VERSION,
        "name": g.name, "dtype": g.dtype,
        "inputs": [[k, list(v)] for k, v in g.inputs.items()], "outputs": list(g.outputs),
        **({"input_dtypes": dict(g.input_dtypes)} if g.input_dtypes else {}),
        "params": list(g.params), "meta": _facts_out(g),
    }})
    producer: dict[str, str] = {}
    for name, shape in g.inputs.items():
        mdf_graph.nodes.append(Node(
            id=ids[name], metadata={DIALECT: {"kind": "input", "name": name}},
            input_ports=[InputPort(id="input", shape=tuple(shape), type=g.input_dtypes.get(name, g.dtype))],
            output_ports=[OutputPort(id="output", value="input")]))
        producer[name] = ids[name]
    edge_ids: set[str] = set()
    for node, node_id in zip(g.nodes, node_ids, strict=True):
        computed = [t for t in dict.fromkeys(node.inputs) if t and t not in g.params]
        ports = {t: f"in{i}" for i, t in enumerate(computed)}
        pids = mdf_ids([t for t in dict.fromkeys(node.inputs) if t in g.params],
                       taken={*ports.values(), *node.attrs, *RESERVED, "output"})
        mdf_node = Node(id=node_id, metadata={DIALECT: {
            "kind": "op", "name": node.name, "op": node.op, "inputs": list(node.inputs), "output": node.output,
            "attrs": _json(node.attrs)}})
        for t, port in ports.items():
            mdf_node.input_ports.append(InputPort(id=port, shape=_shape(g.shapes[t]), type=g.dtype))
            eid = mdf_ids([f"{producer[t]}_{node_id}_{port}"], taken=edge_ids)[f"{producer[t]}_{node_id}_{port}"]
            edge_ids.add(eid)
            mdf_graph.edges.append(Edge(id=eid, sender=producer[t], sender_port="output", receiver=node_id,
                                        receiver_port=port))
        for t, pid in pids.items():
            p = g.params[t]
            mdf_node.parameters.append(Parameter(id=pid, value=p.value.tolist(), metadata={DIALECT: {
                "name": p.name, "learnable": p.learnable, "dtype": p.dtype}}))
        if node.op in ("pnl.SoftMax", "pnl.Normalize"):  # they sum with @ ones
            mdf_node.parameters.append(Parameter(id="ones", value=[1.0] * g.features(node.inputs[0])[-1]))
        refs = [ports.get(t) or pids.get(t) or "" for t in node.inputs]
        for fid, kwargs in _op_functions(g, node, refs):
            mdf_node.functions.append(Function(id=fid, **kwargs))
        mdf_node.output_ports.append(OutputPort(id="output", value="value", shape=_shape(g.shapes[node.output]),
                                                type=g.dtype))
        mdf_graph.nodes.append(mdf_node)
        producer[node.output] = node_id
    return Model(id=mdf_graph.id, graphs=[mdf_graph], metadata={DIALECT: {"format_version": FORMAT_VERSION}})


def graph_ids(g: Any) -> tuple[dict[str, str], list[str]]:
    """The MDF node ids :func:`graph_to_mdf` gives: one per graph input (by name), one per op (in order).

    Names may repeat (an input and the op that transforms it), so ids are made in one pass.
    """
    all_ids = mdf_ids_list([*g.inputs, *(n.name for n in g.nodes)])
    return dict(zip(g.inputs, all_ids[:len(g.inputs)], strict=True)), all_ids[len(g.inputs):]


def _op_functions(g: Any, node: Any, refs: list[str]) -> list[FunctionSpec]:
    """The MDF functions computing ``value`` for one op (its rule of :data:`RULES`)."""
    op = ops.graph_op(node.op)
    attrs = ops.fill_params(op, node.attrs) if op.pnl_name is not None else node.attrs
    return RULES[node.op](refs, attrs)


def _shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A port's shape as the mechanism layout gives it: per sample (without the batch axis)."""
    return tuple(int(d) for d in (shape[1:] if shape and shape[0] == ops.BATCH else shape))


def _json(value: Any) -> Any:
    """Attributes and metadata as JSON/YAML-safe values (arrays and tuples as lists)."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _facts_out(g: Graph) -> dict[str, Any]:
    """The graph's typed fields a file holds (``"meta"``; the reader's ``_facts_in`` reads them back)."""
    import numpy as np

    out: dict[str, Any] = {}
    if g.source:
        out["source"] = g.source
    if g.layers:
        out["layers"] = dict(g.layers)
    if g.extra_outputs:
        out["extra_outputs"] = list(g.extra_outputs)
    if g.state_dict_keys is not None:
        out["state_dict_keys"] = dict(g.state_dict_keys)
    if g.extra_state:
        out["extra_state"] = {k: {"dtype": str(np.asarray(a).dtype), "value": np.asarray(a).tolist()}
                              for k, a in g.extra_state.items()}
    if g.training is not None:
        out["training"] = {"dataclass": "TrainingSpec", **_json(asdict(g.training))}
    return out
