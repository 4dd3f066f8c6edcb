"""``Net``: the one typed form of a feed-forward network that every converter consumes.

``schema`` builds it from MDF (any dialect); converters and runners never
look at raw MDF (DESIGN rule 2). A ``Net`` is plain data: nodes in
topological order, projections, input/output roles, float64 arrays.

Semantics of one forward pass, per trial (the reference runner is the spec):

* an INPUT node (no incoming projection) takes the external input ``u``:
  ``x = u (+ bias)``;
* any other node sums its incoming projections:
  ``x = sum_p value[p.sender] @ p.matrix (+ bias)``;
* ``value[node] = op.forward(x, **node.params)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mdfx import ops
from mdfx.errors import GraphError

#: how a node's InputPorts combine into its net input (PsyNeuLink's LinearCombination operations)
COMBINE = ("sum", "product", "concat")


@dataclass
class NodeSpec:
    """A TransferMechanism: ``size`` units, one transfer op with all its params filled."""

    name: str
    size: int
    op: str  #: the transfer function's key (``"logistic"``, :attr:`mdfx.ops.GraphOp.transfer_key`)
    params: dict[str, float] = field(default_factory=dict)
    bias: np.ndarray | None = None  #: optional trainable bias added to the net input (mdfx extension)
    bias_learnable: bool = True
    #: InputPorts, each with its own projections (PsyNeuLink's input_ports): ``combine`` "sum" or
    #: "product" (a LinearCombination) joins ``ports`` ports of ``size`` units elementwise;
    #: "concat" lays ports of ``port_sizes`` side by side (``size`` is their sum) and the transfer
    #: op (elementwise) maps each, giving one OutputPort per InputPort
    ports: int = 1
    combine: str = "sum"
    port_sizes: tuple[int, ...] = ()

    def port_size(self, port: int) -> int:
        return self.port_sizes[port] if self.combine == "concat" else self.size

    def port_offset(self, port: int) -> int:
        """Where OutputPort ``port``'s units start in the node's value."""
        return sum(self.port_sizes[:port]) if self.combine == "concat" else 0


@dataclass
class ProjectionSpec:
    """A MappingProjection: ``value[receiver] += value[sender] @ matrix``."""

    name: str
    sender: str
    receiver: str
    matrix: np.ndarray  #: float64, shape (sender.size, receiver.size)
    learnable: bool = True
    receiver_port: int = 0  #: the receiver's InputPort it reaches (see NodeSpec.ports)
    sender_port: int = 0  #: the sender's OutputPort it leaves (of a "concat" node; else 0)


@dataclass
class TrainingSpec:
    """The AutodiffComposition's training settings, kept in MDF metadata."""

    loss: str = "MSE"
    optimizer: str = "sgd"
    learning_rate: float = 0.001
    weight_decay: float = 0.0
    disable_learning: bool = False


@dataclass
class Net:
    """A validated feed-forward network. Build with :func:`Net.build` to get the checks."""

    name: str
    nodes: list[NodeSpec]  #: topological order
    projections: list[ProjectionSpec]
    inputs: list[str]
    outputs: list[str]
    training: TrainingSpec = field(default_factory=TrainingSpec)
    autodiff: bool = True  #: written by an AutodiffComposition (False: plain Composition)

    @classmethod
    def build(cls, name: str, nodes: list[NodeSpec], projections: list[ProjectionSpec],
              training: TrainingSpec | None = None, autodiff: bool = True,
              inputs: list[str] | None = None, outputs: list[str] | None = None) -> Net:
        """Check the graph rules and order the nodes; roles default to PsyNeuLink's.

        INPUT nodes are those with no incoming projection, OUTPUT nodes those with
        no outgoing one, each in the order the nodes were given.
        """
        by_name: dict[str, NodeSpec] = {}
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
        seen_proj: set[str] = set()
        for p in projections:
            if p.name in seen_proj:
                raise GraphError(f"two projections are named {p.name!r}")
            seen_proj.add(p.name)
            for end, role in ((p.sender, "sender"), (p.receiver, "receiver")):
                if end not in by_name:
                    raise GraphError(
                        f"projection {p.name!r}: {role} {end!r} is not a node of {name!r} "
                        f"(nodes: {', '.join(by_name) or 'none'})"
                    )
            if not 0 <= p.receiver_port < by_name[p.receiver].ports:
                raise GraphError(f"projection {p.name!r} reaches InputPort {p.receiver_port} of {p.receiver!r}, "
                                 f"which has {by_name[p.receiver].ports} InputPort(s)")
            sender = by_name[p.sender]
            if not 0 <= p.sender_port < (sender.ports if sender.combine == "concat" else 1):
                raise GraphError(f"projection {p.name!r} leaves OutputPort {p.sender_port} of {p.sender!r}, which "
                                 "has no such OutputPort")
            want = (sender.port_size(p.sender_port), by_name[p.receiver].port_size(p.receiver_port))
            if p.matrix.shape != want:
                raise GraphError(
                    f"projection {p.name!r} from {p.sender!r} (size {want[0]}) to {p.receiver!r} "
                    f"(size {want[1]}) has a matrix of shape {p.matrix.shape}; expected {want}"
                )
        for node in nodes:
            if node.bias is not None and node.bias.shape != (node.size,):
                raise GraphError(
                    f"node {node.name!r} has a bias of shape {node.bias.shape}; expected ({node.size},)"
                )
        order = _topological(nodes, projections)
        receivers = {p.receiver for p in projections}
        senders = {p.sender for p in projections}
        inputs = inputs or [n.name for n in nodes if n.name not in receivers]
        outputs = outputs or [n.name for n in nodes if n.name not in senders]
        return cls(name, order, list(projections), inputs, outputs, training or TrainingSpec(), autodiff)

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise GraphError(f"{self.name!r} has no node {name!r}")

    def incoming(self, name: str) -> list[ProjectionSpec]:
        return [p for p in self.projections if p.receiver == name]

    def projection(self, name: str) -> ProjectionSpec:
        for p in self.projections:
            if p.name == name:
                return p
        raise GraphError(f"{self.name!r} has no projection {name!r}")

    def copy(self) -> Net:
        """A deep copy of the arrays, so training one copy leaves the other untouched."""
        nodes = [replace(n, params=dict(n.params), bias=None if n.bias is None else n.bias.copy())
                 for n in self.nodes]
        projs = [replace(p, matrix=p.matrix.copy()) for p in self.projections]
        return replace(self, nodes=nodes, projections=projs, inputs=list(self.inputs),
                       outputs=list(self.outputs), training=replace(self.training))

    def structure_key(self) -> tuple:
        """What a compiled kernel depends on: everything but the weight values."""
        return (
            tuple((n.name, n.size, n.op, tuple(sorted(n.params.items())), n.bias is not None, n.bias_learnable,
                   n.ports, n.combine, n.port_sizes)
                  for n in self.nodes),
            tuple((p.sender, p.receiver, p.matrix.shape, p.learnable, p.receiver_port, p.sender_port)
                  for p in self.projections),
            tuple(self.inputs),
            tuple(self.outputs),
        )


def _topological(nodes: list[NodeSpec], projections: list[ProjectionSpec]) -> list[NodeSpec]:
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
