"""Net -> ModECI MDF (our dialect), through modeci-mdf's classes.

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
from typing import Any

from mdfx import ops
from mdfx.schema.net import Net, NodeSpec

DIALECT = "mdfx"
FORMAT_VERSION = 1
RESERVED = {"input", "net_input", "value", "node_bias", "ones", "s", "z", "r", "e", "total"}

FunctionSpec = tuple[str, dict[str, Any]]  # (function id, Function kwargs)


def _num(v: float) -> str:
    """A float in an expression: repr round-trips exactly; parentheses keep negatives safe."""
    return f"({v!r})"


def _mdf_linear(x: str, p: dict[str, float], size: int) -> list[FunctionSpec]:
    lin = {"function": "linear", "args": {"variable0": x, "slope": p["slope"], "intercept": p["intercept"]}}
    if p["scale"] == 1.0 and p["offset"] == 0.0:
        return [("value", lin)]
    # modeci-mdf's linear has no scale/offset: PsyNeuLink's are applied after it.
    return [("s", lin), ("value", {"value": f"{_num(p['scale'])} * s + {_num(p['offset'])}"})]


def _mdf_logistic(x: str, p: dict[str, float], size: int) -> list[FunctionSpec]:
    # modeci-mdf's logistic puts ``offset`` inside the exponent; PsyNeuLink adds it outside.
    args = {"gain": p["gain"], "bias": p["bias"], "offset": 0.0}
    if p["scale"] == 1.0 and p["x_0"] == 0.0 and p["offset"] == 0.0:
        return [("value", {"function": "logistic", "args": {"variable0": x, **args}})]
    return [("s", {"function": "logistic", "args": {"variable0": f"{x} - {_num(p['x_0'])}", **args}}),
            ("value", {"value": f"{_num(p['scale'])} * s + {_num(p['offset'])}"})]


def _mdf_tanh(x: str, p: dict[str, float], size: int) -> list[FunctionSpec]:
    inner = f"{_num(p['gain'])} * ({x} + {_num(p['bias'])} - {_num(p['x_0'])}) + {_num(p['offset'])}"
    return [("value", {"function": "tanh", "args": {"variable0": inner, "scale": p["scale"]}})]


def _mdf_exponential(x: str, p: dict[str, float], size: int) -> list[FunctionSpec]:
    return [("value", {"function": "exponential", "args": {"variable0": x, **p}})]


def _mdf_relu(x: str, p: dict[str, float], size: int) -> list[FunctionSpec]:
    # gain*relu(z) + leak*gain*min(z, 0), with min(z, 0) = z - relu(z)
    leak = p["leak"] * p["gain"]
    tail = f" + {_num(leak)} * (z - r)" if leak else ""
    return [("z", {"value": f"{x} - {_num(p['bias'])}"}),
            ("r", {"function": "Relu", "args": {"A": "z"}}),
            ("value", {"value": f"{_num(p['gain'])} * r{tail}"})]


def _mdf_softmax(x: str, p: dict[str, float], size: int) -> list[FunctionSpec]:
    # modeci-mdf's expressions have no sum(): the total is e @ ones (the "ones" parameter).
    return [("e", {"function": "exponential",
                   "args": {"variable0": f"{_num(p['gain'])} * {x}", "scale": 1.0, "rate": 1.0,
                            "bias": 0.0, "offset": 0.0}}),
            ("total", {"function": "MatMul", "args": {"A": "e", "B": "ones"}}),
            ("value", {"value": "e / total"})]


def _mdf_identity(x: str, p: dict[str, float], size: int) -> list[FunctionSpec]:
    return [("value", {"value": x})]


#: This backend's rule per transfer op.
TRANSFER_RULES = {
    "linear": _mdf_linear,
    "logistic": _mdf_logistic,
    "tanh": _mdf_tanh,
    "exponential": _mdf_exponential,
    "relu": _mdf_relu,
    "softmax": _mdf_softmax,
    "identity": _mdf_identity,
}


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


def to_mdf(net: Net) -> Any:
    """Write ``net`` as a ``modeci_mdf.mdf.Model`` in mdfx's dialect (current weights)."""
    from modeci_mdf.mdf import Edge, Function, Graph, InputPort, Model, Node, OutputPort, Parameter

    node_ids = mdf_ids([n.name for n in net.nodes])
    proj_ids = mdf_ids([p.name for p in net.projections], taken=RESERVED)
    graph = Graph(id=mdf_ids([net.name])[net.name], metadata={DIALECT: {
        "format_version": FORMAT_VERSION,
        "name": net.name,
        "kind": "AutodiffComposition" if net.autodiff else "Composition",
        "inputs": list(net.inputs),
        "outputs": list(net.outputs),
        "training": {
            "loss": net.training.loss,
            "optimizer": net.training.optimizer,
            "learning_rate": net.training.learning_rate,
            "weight_decay": net.training.weight_decay,
            "disable_learning": net.training.disable_learning,
        },
    }})
    for node in net.nodes:
        graph.nodes.append(_node(net, node, node_ids[node.name], proj_ids,
                                 Node, InputPort, Parameter, Function, OutputPort))
    for p in net.projections:
        graph.edges.append(Edge(
            id=proj_ids[p.name], sender=node_ids[p.sender], sender_port="output",
            receiver=node_ids[p.receiver], receiver_port=f"in_{proj_ids[p.name]}",
            metadata={DIALECT: {"name": p.name, "learnable": p.learnable, "matrix": proj_ids[p.name]}},
        ))
    return Model(id=graph.id, graphs=[graph], metadata={DIALECT: {"format_version": FORMAT_VERSION}})


def _node(net: Net, node: NodeSpec, node_id: str, proj_ids: dict[str, str],
          Node, InputPort, Parameter, Function, OutputPort) -> Any:  # noqa: N803 - classes passed in
    op = ops.TRANSFER[node.op]
    mdf_node = Node(id=node_id, metadata={DIALECT: {
        "name": node.name, "kind": "TransferMechanism", "size": node.size,
        "function": op.pnl_name, "params": dict(node.params),
        "bias_learnable": node.bias_learnable,
    }})
    functions: list[FunctionSpec] = []
    if node.name in net.inputs:
        mdf_node.input_ports.append(InputPort(id="input", shape=(node.size,), type="float64"))
        terms = ["input"]
    else:
        terms = []
        for p in net.incoming(node.name):
            pid = proj_ids[p.name]
            mdf_node.input_ports.append(InputPort(id=f"in_{pid}", shape=(p.matrix.shape[0],), type="float64"))
            mdf_node.parameters.append(Parameter(id=pid, value=p.matrix.tolist()))
            functions.append((f"{pid}_out", {"function": "MatMul", "args": {"A": f"in_{pid}", "B": pid}}))
            terms.append(f"{pid}_out")
    if node.bias is not None:
        mdf_node.parameters.append(Parameter(id="node_bias", value=node.bias.tolist()))
        terms.append("node_bias")
    if node.op == "softmax":
        mdf_node.parameters.append(Parameter(id="ones", value=[1.0] * node.size))
    functions.append(("net_input", {"value": " + ".join(terms)}))
    functions.extend(TRANSFER_RULES[node.op]("net_input", node.params, node.size))
    for fid, kwargs in functions:
        mdf_node.functions.append(Function(id=fid, **kwargs))
    mdf_node.output_ports.append(OutputPort(id="output", value="value", shape=(node.size,), type="float64"))
    return mdf_node
