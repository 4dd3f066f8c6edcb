"""Composition: mechanisms joined by projections, run through MDF (DESIGN rule 1).

``run()`` goes Composition -> MDF model -> ``Net`` -> runner, so what runs is
exactly what :func:`mdfx.save` writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from mdfx import limits
from mdfx.composition.enums import ExecutionMode, NodeRole
from mdfx.composition.mechanisms import TransferMechanism
from mdfx.composition.projections import MappingProjection
from mdfx.errors import DataError, GraphError
from mdfx.schema import validate
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
        index = self._index()
        if id(node) in index.node_ids:
            return node
        if not isinstance(node, TransferMechanism | Composition):
            raise GraphError(f"{self.name!r}: cannot add {node!r}; nodes are TransferMechanisms or Compositions")
        # the name set is a fast "no"; a hit is confirmed on the list (names can be changed later)
        if node.name in index.node_names and any(n.name == node.name for n in self._nodes):
            raise GraphError(f"{self.name!r} already has a node named {node.name!r}; names must be unique")
        self._nodes.append(node)
        index.add_node(node)
        self._index_key = (len(self._nodes), len(self._projections))
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
        index = self._index()
        for end, role in ((s, "sender"), (r, "receiver")):
            if id(end) not in index.node_ids:
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
        if id(projection) in index.projection_ids:
            return projection
        name = projection.name
        if name in index.projection_names and any(p.name == name for p in self._projections):
            raise GraphError(f"{self.name!r} already has a projection named {name!r}")
        if s is r or _reaches(index.successors, r, s):
            # Only now pay for the full sort: it names the whole cycle in the error.
            specs = [_node_stub(n) for n in self._mechanisms()]
            edges = [_proj_stub(p) for p in [*self._projections, projection]]
            _topological(specs, edges)  # raises GraphError naming the cycle
        self._projections.append(projection)
        index.add_projection(projection, name)
        self._index_key = (len(self._nodes), len(self._projections))
        return projection

    def _index(self) -> _GraphIndex:
        """The lookup sets of add_node / add_projection, kept between calls so a pathway of
        N layers costs O(N) work, not a scan and a full sort per projection (was O(N^3)).
        Rebuilt whenever the node or projection lists changed by other means."""
        key = (len(self._nodes), len(self._projections))
        if getattr(self, "_index_key", None) != key:
            self._graph_index = _GraphIndex()
            for n in self._nodes:
                self._graph_index.add_node(n)
            for p in self._projections:
                self._graph_index.add_projection(p, p.name)
            self._index_key = key
        return self._graph_index

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
        """The composition as a Net (before the MDF round trip)."""
        nested = [n for n in self._nodes if isinstance(n, Composition)]
        if nested:
            raise GraphError(f"{self.name!r} contains nested compositions "
                             f"({', '.join(n.name for n in nested)}); run or learn them through this "
                             "composition's run()/learn(), or save them on their own")
        if not self._nodes:
            raise GraphError(f"{self.name!r} has no nodes")
        nodes = [NodeSpec(m.name, m.size, m.function.op_name, dict(m.function.params),
                          None if m.bias is None else m.bias.copy(), m.learnable_bias)
                 for m in self._mechanisms()]
        projs = [ProjectionSpec(p.name, p.sender.name, p.receiver.name, p.matrix.copy(), p.learnable)
                 for p in self._projections]
        return Net.build(self.name, nodes, projs, self._training_spec(), autodiff=self._autodiff)

    def to_mdf(self) -> Any:
        """The composition as a ``modeci_mdf.mdf.Model`` (current weights)."""
        from mdfx.schema import writer

        return writer.to_mdf(self._spec())

    def to_onnx(self, dtype: str = "float32", opset: int = 17) -> Any:
        """The inference graph as an ``onnx.ModelProto`` with the current (trained) weights."""
        from mdfx.converters.onnx_export import to_onnx

        return to_onnx(self._net(), dtype=dtype, opset=opset)

    def _net(self) -> Net:
        """Composition -> MDF -> Net: the path every runner takes (DESIGN rule 1)."""
        from mdfx.schema import reader

        return reader.from_mdf(self.to_mdf())

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
        net = self._net()
        arrays = parse_inputs(net, inputs or {}, num_trials)
        outputs, values = _run_net(net, arrays, execution_mode)
        for name, value in values.items():
            self._mechanism(name).value = value[-1:].copy()
        trials = len(next(iter(outputs.values())))
        for t in range(trials):
            self.results.append([outputs[name][t].copy() for name in net.outputs])
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


class _GraphIndex:
    """Ids and names of a composition's nodes and projections, and sender id -> receivers."""

    def __init__(self) -> None:
        self.node_ids: set[int] = set()
        self.node_names: set[str] = set()
        self.projection_ids: set[int] = set()
        self.projection_names: set[str] = set()
        self.successors: dict[int, list] = {}

    def add_node(self, node: Any) -> None:
        self.node_ids.add(id(node))
        self.node_names.add(node.name)

    def add_projection(self, projection: MappingProjection, name: str) -> None:
        self.projection_ids.add(id(projection))
        self.projection_names.add(name)
        self.successors.setdefault(id(projection.sender), []).append(projection.receiver)


def _reaches(successors: dict[int, list], start: Any, goal: Any) -> bool:
    """Whether ``goal`` is reachable from ``start`` along projections (iterative DFS)."""
    stack, seen = [start], {id(start)}
    while stack:
        for nxt in successors.get(id(stack.pop()), ()):
            if nxt is goal:
                return True
            if id(nxt) not in seen:
                seen.add(id(nxt))
                stack.append(nxt)
    return False


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


def parse_inputs(net: Net, inputs: Mapping, num_trials: int | None = None,
                 nodes: list[str] | None = None, what: str = "input") -> dict[str, np.ndarray]:
    """Validate ``{node or name: trials}`` into float64 arrays (trials, size), one per node.

    Errors name the node, the shape expected and the shape given.
    """
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
        size = net.node(name).size
        # the shared check refuses complex, masked and string arrays a float cast would hide
        arr = np.array(validate.real_array(by_name[name], f"{what} for node {name!r}"), dtype=np.float64)
        if arr.ndim == 3 and arr.shape[1] == 1:
            arr = arr[:, 0, :]  # PsyNeuLink's per-input-port nesting: [[[...]], ...]
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != size:
            raise DataError(f"{what} for node {name!r} has shape {np.shape(by_name[name])}; "
                            f"expected (trials, {size})")
        if len(arr) == 0:
            raise DataError(f"{what} for node {name!r} has 0 trials; give at least one row")
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{what} for node {name!r} contains NaN or infinite values")
        arrays[name] = arr
    counts = {name: len(a) for name, a in arrays.items()}
    if len(set(counts.values())) > 1:
        raise DataError(f"{what}s have different numbers of trials: {counts}")
    if num_trials is not None:
        validate.whole(num_trials, "num_trials", 1)
        limits.check_elements(num_trials * sum(net.node(k).size for k in arrays), f"{num_trials} trials of {what}s")
        n = len(next(iter(arrays.values())))
        reps = np.arange(num_trials) % n
        arrays = {name: a[reps] for name, a in arrays.items()}
    return arrays


def _run_net(net: Net, arrays: dict[str, np.ndarray], mode: ExecutionMode
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Outputs and every node's values (values from the reference, for mechanism.value)."""
    from mdfx.runners import reference

    if mode in (ExecutionMode.Python, ExecutionMode.PyTorch):
        trace = reference.forward(net, arrays)
        return {n: trace.y[n] for n in net.outputs}, trace.y
    if mode is ExecutionMode.LLVMRun:
        from mdfx.runners import llvm

        outputs = llvm.run(net, arrays)
    elif mode is ExecutionMode.ONNX:
        from mdfx.converters.onnx_export import to_onnx
        from mdfx.runners import ort

        # float64 so ONNX mode gives the reference's numbers; export float32 with mdfx.save.
        outputs = ort.run(to_onnx(net, dtype="float64"), arrays)
    else:
        raise ValueError(f"unsupported execution_mode {mode!r}")
    return outputs, dict(outputs)
