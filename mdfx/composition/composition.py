"""Composition: mechanisms joined by projections (DESIGN rule 1: the graph is the hub).

``run()`` and ``learn()`` lower the composition to an op graph
(:func:`mdfx.schema.graph.from_net`) once per structure and keep it, with each
backend's compiled form, until a node, projection, function or size changes.
The graph's params *are* the projections' matrices and the mechanisms' biases
(the same numpy arrays, never copied per call), so training updates them in
place. MDF objects are built only by :meth:`to_mdf` / :func:`mdfx.save`; the
tests prove that the MDF round trip is exact, so what runs is what is saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mdfx.composition.enums import ExecutionMode, NodeRole
from mdfx.composition.mechanisms import TransferMechanism
from mdfx.composition.projections import MappingProjection
from mdfx.errors import DataError, GraphError, UnsupportedError
from mdfx.schema.graph import Graph
from mdfx.schema.net import Net, NodeSpec, ProjectionSpec, TrainingSpec, _topological


class Composition:
    """A feed-forward network of TransferMechanisms and MappingProjections.

    Nodes may also be nested compositions (e.g. an AutodiffComposition inside a
    plain Composition, as in PsyNeuLink's nested-execution example); nested
    compositions cannot be joined to other nodes by projections yet.
    """

    _autodiff = False

    def __init__(self, pathways: object = None, name: str | None = None, **kwargs: Any) -> None:
        self.name = name if name is not None else type(self).__name__
        self._nodes: list[TransferMechanism | Composition] = []
        self._projections: list[MappingProjection] = []
        self.results: list[list[np.ndarray]] = []
        #: (structure key, Net, Graph) of the last lowering; see _lowered()
        self._lowering: tuple[tuple, Net, Graph] | None = None
        for pathway in _as_pathways(pathways):
            self.add_linear_processing_pathway(pathway)

    # --- building -----------------------------------------------------------------

    @property
    def nodes(self) -> list[TransferMechanism | Composition]:
        return list(self._nodes)

    @property
    def projections(self) -> list[MappingProjection]:
        return list(self._projections)

    def add_node(self, node: TransferMechanism | Composition, required_roles: object = None,
                 **kwargs: Any) -> TransferMechanism | Composition:
        """Add a mechanism (or a nested composition); adding the same node twice is a no-op."""
        if any(n is node for n in self._nodes):
            return node
        if not isinstance(node, TransferMechanism | Composition):
            raise GraphError(f"{self.name!r}: cannot add {node!r}; nodes are TransferMechanisms or Compositions")
        if any(n.name == node.name for n in self._nodes):
            raise GraphError(f"{self.name!r} already has a node named {node.name!r}; names must be unique")
        self._nodes.append(node)
        return node

    def add_nodes(self, nodes: Iterable[TransferMechanism | Composition], required_roles: object = None
                  ) -> list[TransferMechanism | Composition]:
        return [self.add_node(n) for n in nodes]

    def add_projection(self, projection: MappingProjection | None = None,
                       sender: TransferMechanism | None = None, receiver: TransferMechanism | None = None,
                       **kwargs: Any) -> MappingProjection:
        """Add ``projection`` from ``sender`` to ``receiver``; checks the graph rules at once.

        Both ends must already be nodes of this composition, the matrix must have
        shape (sender size, receiver size), and the projection must not close a cycle.
        """
        if projection is None:
            projection = MappingProjection(sender=sender, receiver=receiver)
        projection.sender = sender or projection.sender
        projection.receiver = receiver or projection.receiver
        s, r = projection.sender, projection.receiver
        if s is None or r is None:
            raise GraphError(f"projection {projection.name!r} needs both a sender and a receiver")
        for end, role in ((s, "sender"), (r, "receiver")):
            if not any(n is end for n in self._nodes):
                raise GraphError(
                    f"projection {projection.name!r} from {s.name!r} to {r.name!r}: {role} {end.name!r} "
                    f"is not a node of {self.name!r}; add it with add_node() first"
                )
            if isinstance(end, Composition):
                raise GraphError(f"projection {projection.name!r}: projections to or from a nested "
                                 f"composition ({end.name!r}) are not supported yet")
        want = (s.size, r.size)
        if projection.matrix.shape != want:
            raise GraphError(
                f"projection {projection.name!r} from {s.name!r} (size {s.size}) to {r.name!r} "
                f"(size {r.size}) has a matrix of shape {projection.matrix.shape}; expected {want}"
            )
        if any(p is projection for p in self._projections):
            return projection
        if any(p.name == projection.name for p in self._projections):
            raise GraphError(f"{self.name!r} already has a projection named {projection.name!r}")
        specs = [_node_stub(n) for n in self._mechanisms()]
        edges = [_proj_stub(p) for p in [*self._projections, projection]]
        _topological(specs, edges)  # raises GraphError naming the cycle
        self._projections.append(projection)
        return projection

    def add_linear_processing_pathway(self, pathway: list, *args: Any, **kwargs: Any) -> list:
        """Add mechanisms in order, joining consecutive ones by a projection.

        Items between two mechanisms may be a MappingProjection or a matrix
        (array-like); otherwise PsyNeuLink's default matrix is used.
        """
        items = list(pathway)
        mechs = [i for i in items if isinstance(i, TransferMechanism)]
        for m in mechs:
            self.add_node(m)
        prev: TransferMechanism | None = None
        pending: object = None
        for item in items:
            if isinstance(item, TransferMechanism):
                if prev is not None:
                    if isinstance(pending, MappingProjection):
                        self.add_projection(pending, sender=prev, receiver=item)
                    else:
                        self.add_projection(MappingProjection(sender=prev, receiver=item, matrix=pending))
                prev, pending = item, None
            else:
                pending = item
        return items

    # --- roles and the Net ----------------------------------------------------------

    def _mechanisms(self) -> list[TransferMechanism]:
        return [n for n in self._nodes if isinstance(n, TransferMechanism)]

    def get_nodes_by_role(self, role: NodeRole) -> list[TransferMechanism | Composition]:
        receivers = {id(p.receiver) for p in self._projections}
        senders = {id(p.sender) for p in self._projections}
        if role in (NodeRole.INPUT, NodeRole.ORIGIN):
            return [n for n in self._nodes if id(n) not in receivers]
        if role in (NodeRole.OUTPUT, NodeRole.TERMINAL):
            return [n for n in self._nodes if id(n) not in senders]
        if role is NodeRole.INTERNAL:
            return [n for n in self._nodes if id(n) in senders and id(n) in receivers]
        if role is NodeRole.SINGLETON:
            return [n for n in self._nodes if id(n) not in senders and id(n) not in receivers]
        return []  # control, learning and cycle roles do not occur in mdfx's networks

    def _training_spec(self) -> TrainingSpec:
        return TrainingSpec()

    def _spec(self) -> Net:
        """The composition as a Net whose arrays are the projections' and mechanisms' own."""
        nested = [n for n in self._nodes if isinstance(n, Composition)]
        if nested:
            raise GraphError(f"{self.name!r} contains nested compositions "
                             f"({', '.join(n.name for n in nested)}); run or learn them through this "
                             "composition's run()/learn(), or save them on their own")
        if not self._nodes:
            raise GraphError(f"{self.name!r} has no nodes")
        nodes = [NodeSpec(m.name, m.size, m.function.op_name, dict(m.function.params),
                          m.bias, m.learnable_bias)
                 for m in self._mechanisms()]
        projs = [ProjectionSpec(p.name, p.sender.name, p.receiver.name, p.matrix, p.learnable)
                 for p in self._projections]
        return Net.build(self.name, nodes, projs, self._training_spec(), autodiff=self._autodiff)

    def _structure_key(self) -> tuple:
        """Everything a lowering depends on but the weight values (cheap: no arrays are read)."""
        return (
            tuple((id(n), n.name, getattr(n, "size", None), n.function.op_name,
                   tuple(n.function.params.items()), n.bias is not None and n.bias.shape, n.learnable_bias)
                  if isinstance(n, TransferMechanism) else (id(n),) for n in self._nodes),
            tuple((id(p), p.name, id(p.sender), id(p.receiver), p.matrix.shape, p.learnable)
                  for p in self._projections),
        )

    def _lowered(self) -> tuple[Net, Graph]:
        """The Net and the graph of the current structure, built once per structure.

        When only arrays were replaced (``projection.matrix = ...``), the cached
        graph is re-pointed at the new arrays: nothing is rebuilt or copied.
        """
        key = self._structure_key()
        if self._lowering is None or self._lowering[0] != key:
            from mdfx.schema.graph import from_net

            net = self._spec()
            self._lowering = (key, net, from_net(net))
        _, net, graph = self._lowering
        for p in self._projections:
            matrix = p.matrix
            spec = net.projection(p.name)
            if spec.matrix is not matrix:
                spec.matrix = graph.params[p.name].value = matrix
        for m in self._mechanisms():
            if m.bias is not None and graph.params[f"{m.name}.bias"].value is not m.bias:
                net.node(m.name).bias = graph.params[f"{m.name}.bias"].value = m.bias
        return net, graph

    def _io(self) -> IO:
        """The names and sizes that inputs and targets must fit."""
        return IO.of(self._net())

    def _graph(self) -> Graph:
        """The composition as an op graph (cached; its params are the composition's arrays)."""
        return self._lowered()[1]

    def to_mdf(self) -> Any:
        """The composition as a ``modeci_mdf.mdf.Model`` (current weights)."""
        from mdfx.schema import writer

        return writer.to_mdf(self._spec())

    def to_onnx(self, dtype: str | None = None, opset: int = 17) -> Any:
        """The inference graph as an ``onnx.ModelProto`` with the current (trained) weights.

        ``dtype`` None: float32 for a composition, a file's own dtype for an imported graph.
        """
        from mdfx.converters.onnx_export import to_onnx

        return to_onnx(self._graph(), dtype=dtype, opset=opset)

    def _net(self) -> Net:
        """The composition as a Net (cached with the graph; arrays shared with the composition)."""
        return self._lowered()[0]

    def _mechanism(self, name: str) -> TransferMechanism:
        for m in self._mechanisms():
            if m.name == name:
                return m
        raise GraphError(f"{self.name!r} has no mechanism {name!r}")

    # --- running --------------------------------------------------------------------

    def run(self, inputs: Mapping | None = None, num_trials: int | None = None,
            execution_mode: ExecutionMode = ExecutionMode.Python, **kwargs: Any) -> np.ndarray:
        """Run every trial; return the last trial's output values (one row per OUTPUT node).

        Every trial's outputs are appended to ``results``. ``inputs`` maps each
        INPUT node to its trials, ``[[...], ...]`` (a single trial may be given flat).
        """
        nested = [n for n in self._nodes if isinstance(n, Composition)]
        if nested:
            return self._run_nested(inputs or {}, num_trials, execution_mode)
        net, graph = self._lowered()
        io = self._io()
        arrays = parse_inputs(io, inputs or {}, num_trials)
        outputs, values = _run_net(net, graph, arrays, execution_mode)
        for name, value in values.items():
            if name in io.sizes:
                self._mechanism(name).value = value[-1:].copy()
        trials = len(next(iter(outputs.values())))
        for t in range(trials):
            self.results.append([_copy(outputs[name][t]) for name in io.outputs])
        return pnl_value(self.results[-1])

    def _run_nested(self, inputs: Mapping, num_trials: int | None, mode: ExecutionMode) -> list[np.ndarray]:
        last: list[np.ndarray] = []
        for node in self._nodes:
            if not isinstance(node, Composition):
                raise GraphError(f"{self.name!r}: mixing nested compositions with mechanisms is not supported yet")
            given = _lookup(inputs, node)
            if isinstance(given, Mapping) and "inputs" in given:
                given = given["inputs"]
            if given is None:
                raise DataError(f"{self.name!r}: no inputs for nested composition {node.name!r}")
            node.run(inputs=given, num_trials=num_trials, execution_mode=mode)
            last = last + node.results[-1]
        self.results.append(last)
        return pnl_value(last)

    def learn(self, inputs: Mapping | None = None, **kwargs: Any) -> Any:
        """Train the nested AutodiffCompositions, each on the dict given for it.

        ``inputs={autodiff: {"inputs": ..., "targets": ..., "epochs": ...}}``, as in
        PsyNeuLink's nested-execution example.
        """
        from mdfx.composition.autodiff import AutodiffComposition

        result = None
        nested = [n for n in self._nodes if isinstance(n, AutodiffComposition)]
        if not nested:
            raise GraphError(f"{self.name!r} has no AutodiffComposition to learn; "
                             "use AutodiffComposition for learning")
        for node in nested:
            given = _lookup(inputs or {}, node)
            if given is None:
                raise DataError(f"{self.name!r}.learn(): no inputs for {node.name!r}")
            result = node.learn(inputs=given, **kwargs)
        return result


def pnl_value(outputs: list[np.ndarray]) -> np.ndarray:
    """One trial's outputs as PsyNeuLink returns them: a 2-D array (object array if sizes differ)."""
    if len({o.shape for o in outputs}) == 1:
        return np.array(outputs)
    value = np.empty(len(outputs), dtype=object)
    value[:] = outputs
    return value


def _lookup(mapping: Mapping, node: Any) -> Any:
    """A value keyed by the node object or by its name."""
    for key, value in mapping.items():
        if key is node or key == getattr(node, "name", None):
            return value
    return None


def _node_stub(m: TransferMechanism) -> NodeSpec:
    return NodeSpec(m.name, m.size, "identity")


def _proj_stub(p: MappingProjection) -> ProjectionSpec:
    return ProjectionSpec(p.name, p.sender.name, p.receiver.name, np.empty((0, 0)))


def _as_pathways(pathways: object) -> list[list]:
    if pathways is None:
        return []
    items = list(pathways)  # type: ignore[call-overload]
    if items and all(isinstance(i, list | tuple) for i in items):
        return [list(i) for i in items]
    return [items]


@dataclass
class IO:
    """What data must fit: the INPUT and OUTPUT node names and every node's size."""

    name: str
    inputs: list[str]
    outputs: list[str]
    sizes: dict[str, int]

    @classmethod
    def of(cls, net: Net) -> IO:
        return cls(net.name, list(net.inputs), list(net.outputs), {n.name: n.size for n in net.nodes})


def parse_inputs(net: Net | IO, inputs: Mapping, num_trials: int | None = None,
                 nodes: list[str] | None = None, what: str = "input") -> dict[str, np.ndarray]:
    """Validate ``{node or name: trials}`` into float64 arrays (trials, size), one per node.

    Errors name the node, the shape expected and the shape given.
    """
    if isinstance(net, Net):
        net = IO.of(net)
    wanted = nodes if nodes is not None else net.inputs
    if not isinstance(inputs, Mapping):
        if len(wanted) != 1:
            raise DataError(f"{what}s must be a dict {{node: trials}} when there are several "
                            f"{what.upper()} nodes ({', '.join(wanted)})")
        inputs = {wanted[0]: inputs}  # PsyNeuLink accepts a bare list for a single input node
    by_name: dict[str, Any] = {}
    for key, value in inputs.items():
        name = getattr(key, "name", key)
        if not isinstance(name, str):
            raise DataError(f"{what}s must be keyed by node or node name, got {key!r}")
        if name not in wanted:
            raise DataError(f"{what} given for {name!r}, which is not an {what.upper()} node of "
                            f"{net.name!r} ({', '.join(wanted)})")
        by_name[name] = value
    arrays: dict[str, np.ndarray] = {}
    for name in wanted:
        if name not in by_name:
            raise DataError(f"no {what} given for node {name!r} of {net.name!r}")
        size = net.sizes[name]
        try:
            arr = np.array(by_name[name], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{what} for node {name!r} is not a numeric array: {exc}") from None
        if arr.ndim == 3 and arr.shape[1] == 1:
            arr = arr[:, 0, :]  # PsyNeuLink's per-input-port nesting: [[[...]], ...]
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != size:
            raise DataError(f"{what} for node {name!r} has shape {np.shape(by_name[name])}; "
                            f"expected (trials, {size})")
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{what} for node {name!r} contains NaN or infinite values")
        arrays[name] = arr
    counts = {name: len(a) for name, a in arrays.items()}
    if len(set(counts.values())) > 1:
        raise DataError(f"{what}s have different numbers of trials: {counts}")
    if num_trials is not None:
        n = len(next(iter(arrays.values())))
        reps = np.arange(num_trials) % n
        arrays = {name: a[reps] for name, a in arrays.items()}
    return arrays


def _copy(value: Any) -> Any:
    return value.copy() if hasattr(value, "copy") else value


def _run_net(net: Net | None, graph: Graph, arrays: dict[str, np.ndarray], mode: ExecutionMode
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Outputs by OUTPUT node, and every node's values (all of them where the backend gives them).

    ``net`` is None for a graph brought from elsewhere (its nodes are its tensors).
    """
    from mdfx.runners import reference

    tensors = graph.meta.get("node_tensors") or {t: t for t in [*graph.inputs, *graph.outputs]}
    if mode in (ExecutionMode.Python, ExecutionMode.PyTorch):
        env = reference.forward(graph, arrays)
        values = {node: env[tensor] for node, tensor in tensors.items()}
        outputs = net.outputs if net is not None else graph.outputs
        return {n: values[n] for n in outputs}, values
    if mode is ExecutionMode.ONNX:
        from mdfx.runners import ort

        # float64 so ONNX mode gives the reference's numbers (export float32 with mdfx.save); one
        # session per structure, fed the current weights
        by_tensor = ort.run_graph(graph, {tensors.get(n, n): a for n, a in arrays.items()}, dtype="float64")
        outputs = {n: by_tensor[tensors.get(n, n)] for n in (net.outputs if net is not None else graph.outputs)}
        return outputs, dict(outputs)
    if net is None:
        raise UnsupportedError(f"run() of {graph.name!r} in {mode.name} mode: not available yet for graphs "
                               "brought from other tools; use ExecutionMode.Python, PyTorch or ONNX")
    if mode is ExecutionMode.LLVMRun:
        from mdfx.runners import llvm

        outputs = llvm.run(net, arrays)
    else:
        raise ValueError(f"unsupported execution_mode {mode!r}")
    return outputs, dict(outputs)
