"""PsyNeuLink-style networks as op graphs: mechanisms and projections in, a :class:`Graph` out.

A reader of PsyNeuLink's MDF (or of a composition mdfx wrote) describes what it
read as :class:`MechanismSpec` and :class:`ProjectionSpec` items, with their
arrays; :func:`build` checks them (names, sizes, ports, matrix shapes, no
cycle), orders them and writes the ops, one per term:

* a mechanism is its incoming projections, each ``MatMul(sender value, matrix)``,
  summed with ``Add``, plus its bias (``Add``), then its transfer op
  ``pnl.<Function>`` with its parameters; an INPUT mechanism reads the graph
  input named after it;
* the params are the projection matrices (under the projection names,
  ``(sender, receiver)`` as MDF keeps them) and ``"<mechanism>.bias"``, the very
  arrays given (no copies), projections first;
* a mechanism's value is the tensor named after it, except an INPUT mechanism
  that computes something (a bias or a non-identity function): ``"<name>:value"``.

The graph keeps the grouping as :attr:`Graph.mechanisms`. The specs are only
the builder's input: nothing keeps or reads them afterwards.
:func:`mdfx.composition.lower.lower` builds a Composition's graph the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mdfx import ops
from mdfx.errors import GraphError, SchemaError
from mdfx.schema.graph import (
    COMBINE,
    Graph,
    Mechanism,
    Mechanisms,
    Node,
    Param,
    Projection,
    Shape,
    TrainingSpec,
)

#: pnl.Linear's defaults: the identity, which needs no op
_LINEAR_IDENTITY = {"slope": 1.0, "intercept": 0.0, "scale": 1.0, "offset": 0.0}


@dataclass
class MechanismSpec:
    """A TransferMechanism as a reader found it: ``size`` units, one transfer op with all its params.

    ``ports`` / ``combine`` / ``port_sizes``: see :class:`~mdfx.schema.graph.Mechanism`.
    """

    name: str
    size: int
    op: str  #: a transfer op's key (:attr:`mdfx.ops.GraphOp.transfer_key`)
    params: dict[str, float] = field(default_factory=dict)
    bias: np.ndarray | None = None  #: optional bias added to the net input (mdfx extension)
    bias_learnable: bool = True
    ports: int = 1
    combine: str = "sum"
    port_sizes: tuple[int, ...] = ()

    def port_size(self, port: int) -> int:
        return self.port_sizes[port] if self.combine == "concat" else self.size


@dataclass
class ProjectionSpec:
    """A MappingProjection as a reader found it: ``value[receiver] += value[sender] @ matrix``."""

    name: str
    sender: str
    receiver: str
    matrix: np.ndarray  #: float64, shape (sender port size, receiver port size)
    learnable: bool = True
    receiver_port: int = 0
    sender_port: int = 0


def build(name: str, nodes: Sequence[MechanismSpec], projections: Sequence[ProjectionSpec],
          training: TrainingSpec | None = None, autodiff: bool = True, inputs: Sequence[str] | None = None,
          outputs: Sequence[str] | None = None, source: str = "") -> Graph:
    """The network as a graph (see the module docstring); roles default to PsyNeuLink's.

    INPUT mechanisms are those with no incoming projection, OUTPUT mechanisms those
    with no outgoing one, each in the order given. Errors name the mechanism or projection.
    """
    by_name = _check(name, nodes, projections)
    order = topological(list(nodes), list(projections))
    receivers = {p.receiver for p in projections}
    senders = {p.sender for p in projections}
    ins = list(inputs or [n.name for n in nodes if n.name not in receivers])
    outs = list(outputs or [n.name for n in nodes if n.name not in senders])
    for role, listed in (("INPUT", ins), ("OUTPUT", outs)):
        missing = [n for n in listed if n not in by_name]
        if missing or not listed:
            raise SchemaError(f"the {role} nodes {missing or listed!r} are not nodes of the model "
                              f"({', '.join(sorted(by_name))})")
    return _lower(name, order, list(projections), by_name, ins, outs, training, autodiff, source)


def _check(name: str, nodes: Sequence[MechanismSpec], projections: Sequence[ProjectionSpec]
           ) -> dict[str, MechanismSpec]:
    by_name: dict[str, MechanismSpec] = {}
    for node in nodes:
        if node.name in by_name:
            raise GraphError(f"two nodes are named {node.name!r}")
        ops.transfer_op(node.op)
        if node.size < 1:
            raise GraphError(f"node {node.name!r} has size {node.size}; it must be at least 1")
        if node.ports < 1 or node.combine not in COMBINE:
            raise GraphError(f"node {node.name!r}: {node.ports} InputPorts combined by {node.combine!r}; "
                             f"expected at least 1, combined by one of {', '.join(COMBINE)}")
        if node.combine == "concat" and (len(node.port_sizes) != node.ports or sum(node.port_sizes) != node.size
                                         or not ops.transfer_op(node.op).elementwise):
            raise GraphError(f"node {node.name!r}: InputPorts of sizes {node.port_sizes} side by side need "
                             f"{node.ports} sizes summing to its size {node.size} and an elementwise function "
                             f"(not {node.op})")
        by_name[node.name] = node
    seen: set[str] = set()
    for p in projections:
        if p.name in seen:
            raise GraphError(f"two projections are named {p.name!r}")
        seen.add(p.name)
        for end, role in ((p.sender, "sender"), (p.receiver, "receiver")):
            if end not in by_name:
                raise GraphError(f"projection {p.name!r}: {role} {end!r} is not a node of {name!r} "
                                 f"(nodes: {', '.join(by_name) or 'none'})")
        if not 0 <= p.receiver_port < by_name[p.receiver].ports:
            raise GraphError(f"projection {p.name!r} reaches InputPort {p.receiver_port} of {p.receiver!r}, "
                             f"which has {by_name[p.receiver].ports} InputPort(s)")
        sender = by_name[p.sender]
        if not 0 <= p.sender_port < (sender.ports if sender.combine == "concat" else 1):
            raise GraphError(f"projection {p.name!r} leaves OutputPort {p.sender_port} of {p.sender!r}, which "
                             "has no such OutputPort")
        want = (sender.port_size(p.sender_port), by_name[p.receiver].port_size(p.receiver_port))
        if p.matrix.shape != want:
            raise GraphError(f"projection {p.name!r} from {p.sender!r} (size {want[0]}) to {p.receiver!r} "
                             f"(size {want[1]}) has a matrix of shape {p.matrix.shape}; expected {want}")
    for node in nodes:
        if node.bias is not None and node.bias.shape != (node.size,):
            raise GraphError(f"node {node.name!r} has a bias of shape {node.bias.shape}; expected ({node.size},)")
    return by_name


def _lower(name: str, order: list[MechanismSpec], projections: list[ProjectionSpec],
           by_name: dict[str, MechanismSpec], net_inputs: list[str], net_outputs: list[str],
           training: TrainingSpec | None, autodiff: bool, source: str) -> Graph:
    params: list[Param] = []
    nodes: list[Node] = []
    value: dict[str, str] = {}
    sent: dict[tuple[str, int], str] = {}  #: (mechanism, OutputPort) -> the tensor its projections read
    inputs: dict[str, Shape] = {}
    incoming: dict[str, list[ProjectionSpec]] = {n.name: [] for n in order}
    for p in projections:
        incoming[p.receiver].append(p)
    for spec in order:
        n = spec.name
        if spec.combine == "concat" and n in net_outputs:
            raise GraphError(f"OUTPUT node {n!r} of {name!r} has {spec.ports} OutputPorts; mdfx trains and "
                             "reports one value per OUTPUT node (make each port its own mechanism)")
        if n in net_inputs:
            if spec.ports > 1:
                raise GraphError(f"INPUT node {n!r} of {name!r} has {spec.ports} InputPorts; mdfx takes "
                                 "one external input per INPUT node")
            inputs[n] = (spec.size,)
            x = n
        elif spec.ports == 1:
            if not incoming[n]:
                raise GraphError(f"node {n!r} of {name!r} is not an INPUT node and has no incoming "
                                 "projection: nothing computes its value")
            x = _summed(n, incoming[n], sent, params, nodes, f"{n}:net_input")
        else:
            # each InputPort sums its own projections; the ports combine elementwise
            port_values = []
            for port in range(spec.ports):
                reaching = [p for p in incoming[n] if p.receiver_port == port]
                if not reaching:
                    raise GraphError(f"InputPort {port} of node {n!r} in {name!r} has no incoming projection: "
                                     "nothing computes its value")
                port_values.append(_summed(f"{n}:port{port}", reaching, sent, params, nodes, f"{n}:port{port}"))
            x = port_values[0]
            if spec.combine == "concat":  # side by side; the elementwise op maps each port's units
                x = f"{n}:net_input"
                nodes.append(Node(f"{n}/concat", "Concat", port_values, x, {"axis": 1}))
            else:
                op = {"sum": "Add", "product": "Mul"}[spec.combine]
                for i, t in enumerate(port_values[1:], 1):
                    out = f"{n}:{spec.combine}{i}" if i < len(port_values) - 1 else f"{n}:net_input"
                    nodes.append(Node(f"{n}/{spec.combine}{i}", op, [x, t], out))
                    x = out
        identity = spec.op == "identity" or (spec.op == "linear" and spec.params == _LINEAR_IDENTITY)
        if spec.bias is not None:
            bname = f"{n}.bias"
            params.append(Param(bname, spec.bias, spec.bias_learnable))
            out = n if identity and n not in net_inputs else f"{n}:biased"
            nodes.append(Node(f"{n}/bias", "Add", [x, bname], out))
            x = out
        if identity:
            if n not in net_inputs and x != n:
                nodes[-1].output = x = n  # the last term, or the bias, writes the value itself
        else:
            out = f"{n}:value" if n in net_inputs else n
            nodes.append(Node(n, ops.transfer_op(spec.op).name, [x], out, dict(spec.params)))
            x = out
        value[n] = x
        if spec.combine != "concat":
            sent[(n, 0)] = x
            continue
        for port in range(spec.ports):  # each OutputPort: its units of the value
            start = sum(spec.port_sizes[:port])
            sent[(n, port)] = f"{n}:port{port}_value"
            nodes.append(Node(f"{n}/port{port}_value", "Slice", [x], sent[(n, port)],
                              {"starts": [start], "ends": [start + spec.port_sizes[port]], "axes": [1]}))
    grouping = Mechanisms(
        tuple(Mechanism(s.name, s.size, s.op, dict(s.params), value[s.name],
                        f"{s.name}.bias" if s.bias is not None else None, s.ports, s.combine, tuple(s.port_sizes))
              for s in order),
        tuple(Projection(p.name, p.sender, p.receiver, p.receiver_port, p.sender_port) for p in projections),
        tuple(net_inputs), tuple(net_outputs), autodiff)
    biases = {f"{n.name}.bias" for n in order}
    params.sort(key=lambda p: p.name in biases)  # projections, then biases (the state_dict's order)
    return Graph.build(name, inputs, params, nodes, [value[n] for n in net_outputs], mechanisms=grouping,
                       training=training or TrainingSpec(), source=source or "composition")


def _summed(n: str, incoming: list[ProjectionSpec], sent: dict[tuple[str, int], str], params: list[Param],
            nodes: list[Node], out: str) -> str:
    """``sum_p value[p.sender's port] @ p.matrix`` as MatMul and Add nodes named after ``n``; its tensor."""
    terms = []
    for p in incoming:
        params.append(Param(p.name, p.matrix, p.learnable))
        term = f"{n}:{p.name}" if len(incoming) > 1 else out
        nodes.append(Node(f"{n}/{p.name}", "MatMul", [sent[(p.sender, p.sender_port)], p.name], term))
        terms.append(term)
    x = terms[0]
    for i, t in enumerate(terms[1:], 1):
        total = f"{n}:sum{i}" if i < len(terms) - 1 else out
        nodes.append(Node(f"{n}/sum{i}", "Add", [x, t], total))
        x = total
    return x


def topological(nodes: list[MechanismSpec], projections: list[ProjectionSpec]) -> list[MechanismSpec]:
    """Kahn's algorithm, stable in the given node order; a cycle is an error naming its nodes."""
    indeg = {n.name: 0 for n in nodes}
    out: dict[str, list[str]] = {n.name: [] for n in nodes}
    for p in projections:
        indeg[p.receiver] += 1
        out[p.sender].append(p.receiver)
    position = {n.name: i for i, n in enumerate(nodes)}
    ready = [n.name for n in nodes if indeg[n.name] == 0]
    order: list[str] = []
    while ready:
        ready.sort(key=position.__getitem__)
        current = ready.pop(0)
        order.append(current)
        for r in out[current]:
            indeg[r] -= 1
            if indeg[r] == 0:
                ready.append(r)
    if len(order) != len(nodes):
        stuck = [n.name for n in nodes if n.name not in order]
        cyc = [p for p in projections if p.sender in stuck and p.receiver in stuck]
        edges = ", ".join(f"{p.sender!r} -> {p.receiver!r}" for p in cyc)
        raise GraphError(f"the network has a cycle through {', '.join(map(repr, stuck))} ({edges}); "
                         "mdfx supports feed-forward networks only")
    by_name = {n.name: n for n in nodes}
    return [by_name[name] for name in order]
