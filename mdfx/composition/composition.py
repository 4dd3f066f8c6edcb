"""Composition: mechanisms joined by projections (DESIGN rule 1: the graph is the hub).

``run()`` and ``learn()`` lower the composition to an op graph
(:func:`mdfx.composition.lower.lower`) once per structure and keep it, with each
backend's compiled form, until a node, projection, function or size changes.
The graph's params *are* the projections' matrices and the mechanisms' biases
(the same numpy arrays, never copied per call), so training updates them in
place. MDF objects are built only by :meth:`to_mdf` / :func:`mdfx.save`; the
tests prove that the MDF round trip is exact, so what runs is what is saved.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mdfx import limits
from mdfx.composition import modes
from mdfx.composition.enums import ExecutionMode, Loss, NodeRole
from mdfx.composition.learning_pathway import (
    BackPropagation,
    LearningMechanism,
    ObjectiveMechanism,
    Pathway,
    TargetMechanism,
    learning_components,
)
from mdfx.composition.mechanisms import TransferMechanism
from mdfx.composition.parameters import Parameters, attribute
from mdfx.composition.projections import MappingProjection, port_index
from mdfx.errors import CompositionError, DataError, GraphError, UnsupportedError
from mdfx.schema import validate
from mdfx.schema.graph import Graph, TrainingSpec
from mdfx.schema.mechanisms import MechanismSpec, ProjectionSpec, topological


class Composition:
    """A feed-forward network of TransferMechanisms and MappingProjections.

    Nodes may also be nested compositions (e.g. an AutodiffComposition inside a
    plain Composition, as in PsyNeuLink's nested-execution example); nested
    compositions cannot be joined to other nodes by projections yet.
    """

    _autodiff = False
    #: PsyNeuLink's default learning rate of a Composition's learning pathways
    default_learning_rate = 0.05

    def __init__(self, pathways: object = None, name: str | None = None, nodes: object = None,
                 learning_rate: object = None, synch_node_variables_with_torch: object = None,
                 optimizer_type: str = "sgd") -> None:
        if not self._autodiff and str(optimizer_type).lower() != "sgd":
            # a Composition's learning pathways step their weights by plain gradient descent
            raise UnsupportedError(f"{name!r}: optimizer_type={optimizer_type!r}; a Composition's learning "
                                   "pathways learn by SGD (use an AutodiffComposition for another optimizer)")
        if synch_node_variables_with_torch not in (None, "run"):
            raise UnsupportedError(f"{name!r}: synch_node_variables_with_torch="
                                   f"{synch_node_variables_with_torch!r}; mdfx updates node values once, at the "
                                   "end of each learn() (None or pnl.RUN)")
        self.name = name if name is not None else type(self).__name__
        #: this composition's execution context: projections keep one matrix per context
        #: (see MappingProjection._enter), as PsyNeuLink keeps parameter values per composition
        self._context_id = next(_CONTEXT_IDS)
        self._nodes: list[TransferMechanism | Composition] = []
        self._projections: list[MappingProjection] = []
        self.results: list[list[np.ndarray]] = []
        #: (structure key, Graph) of the last lowering; see _graph()
        self._lowering: tuple[tuple, Graph] | None = None
        self._io_memo: tuple[Graph, IO] | None = None
        #: the learning pathways' TARGET, objective and LearningMechanism nodes (not executed)
        self._learning_nodes: list[Any] = []
        #: compositions given as pathway items: their nodes and projections are flattened into
        #: this one (so one network learns); ``nodes`` shows the composition in their place
        self._flattened: list[Composition] = []
        self.pathways: list[Pathway] = []
        self.learning_results: list[list[np.ndarray]] = []
        #: mean loss of each minibatch, across learn() calls (PsyNeuLink's ``losses``)
        self.losses: list[float] = []
        self.learning_rate = learning_rate  # validated by the setter (number, bool, None or dict)
        #: PsyNeuLink's interface mechanisms, kept only for their names and report preference
        self.input_CIM = InterfaceMechanism(f"{self.name} Input_CIM")
        self.output_CIM = InterfaceMechanism(f"{self.name} Output_CIM")
        self.parameters = Parameters(self, learning_rate=attribute(self, "learning_rate"),
                                     results=attribute(self, "results", writable=False),
                                     learning_results=attribute(self, "learning_results", writable=False))
        if nodes is not None:
            self.add_nodes(nodes if isinstance(nodes, list | tuple) else [nodes])  # type: ignore[list-item]
        for pathway in [pathways] if _is_learning_spec(pathways) else _as_pathways(pathways):
            if _is_learning_spec(pathway):
                # PsyNeuLink's (pathway, BackPropagation): a learning pathway
                self.add_backpropagation_learning_pathway(list(pathway[0]), learning_function=pathway[1])
            else:
                self.add_linear_processing_pathway(pathway)

    @property
    def learning_rate(self) -> object:
        """The composition's learning rate: a number, ``None`` (the default), ``False`` (no
        learning unless a projection says so), or PsyNeuLink's dict ``{DEFAULT_LEARNING_RATE: x,
        projection or its name: rate}``."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: object) -> None:
        from mdfx.composition.learning_rates import check_rate

        self._learning_rate = check_rate(value, f"{self.name!r}: learning_rate")

    # --- building -----------------------------------------------------------------

    @property
    def nodes(self) -> NodeList:
        """Every node: mechanisms and nested compositions, then the learning pathways' nodes.

        ``comp.nodes["name"]`` finds one by name (KeyError if none)."""
        shown: list[Any] = []
        for node in self._nodes:
            owner = next((c for c in reversed(self._flattened) if c._contains(node)), node)
            if not any(n is owner for n in shown):
                shown.append(owner)
        return NodeList([*shown, *self._learning_nodes])

    def _contains(self, node: Any) -> bool:
        return any(n is node for n in self._nodes)

    def _owner_chain(self, projection: Any) -> list[Composition]:
        """The flattened compositions ``projection`` came from, innermost first (empty if its own)."""
        for comp in reversed(self._flattened):  # a directly nested one before those nested in it
            if any(p is projection for p in comp._projections):
                return [*comp._owner_chain(projection), comp]
        return []

    @property
    def projections(self) -> ProjectionList:
        """The projections; ``comp.projections["name"]`` finds one by name (KeyError if none).

        Those of compositions nested in a pathway stay theirs (as PsyNeuLink lists them)."""
        return ProjectionList(p for p in self._projections if not self._owner_chain(p))

    @property
    def default_execution_id(self) -> str:
        """PsyNeuLink's default execution context: the composition's name (mdfx has one context)."""
        return self.name

    @property
    def learning_components(self) -> list[Any]:
        """The learning pathways' TARGET, objective and LearningMechanism nodes, in PsyNeuLink's order."""
        return list(self._learning_nodes)

    @property
    def output_values(self) -> list[np.ndarray]:
        """The OUTPUT nodes' values after the last trial run."""
        return [np.asarray(n.value)[0] for n in self.get_nodes_by_role(NodeRole.OUTPUT)
                if isinstance(n, TransferMechanism)]

    def add_node(self, node: TransferMechanism | Composition, required_roles: object = None
                 ) -> TransferMechanism | Composition:
        """Add a mechanism (or a nested composition); adding the same node twice is a no-op.

        ``required_roles`` is refused: a node's roles follow from the graph in mdfx."""
        if required_roles is not None:
            raise UnsupportedError(f"{self.name!r}.add_node({getattr(node, 'name', node)!r}, required_roles="
                                   f"{required_roles!r}): mdfx derives roles from the graph; none can be required")
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
        return [self.add_node(n, required_roles) for n in nodes]

    def add_projections(self, projections: Iterable[MappingProjection]) -> list[MappingProjection]:
        """Add each projection (its sender and receiver must be nodes already)."""
        return [self.add_projection(p) for p in projections]

    def add_projection(self, projection: MappingProjection | None = None,
                       sender: TransferMechanism | None = None, receiver: TransferMechanism | None = None
                       ) -> MappingProjection:
        """Add ``projection`` from ``sender`` to ``receiver``; checks the graph rules at once.

        Both ends must already be nodes of this composition, the matrix must have
        shape (sender size, receiver size), and the projection must not close a cycle.
        """
        if projection is None:
            projection = MappingProjection(sender=sender, receiver=receiver)
        # a port given as an end stands for its mechanism (mdfx mechanisms have one port each)
        if getattr(sender, "owner", None) is not None:  # an OutputPort: the one it leaves
            projection.sender_port = port_index(sender, "output_ports")
        projection.sender = getattr(sender, "owner", sender) or projection.sender
        if getattr(receiver, "owner", None) is not None:  # an InputPort: the one it reaches
            projection.receiver_port = port_index(receiver)
        projection.receiver = getattr(receiver, "owner", receiver) or projection.receiver
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
        want = (projection._size("sender"), projection._size("receiver"))
        if projection.matrix.shape != want:
            raise GraphError(
                f"projection {projection.name!r} from {s.name!r} (size {want[0]}) to {r.name!r} "
                f"(size {want[1]}) has a matrix of shape {projection.matrix.shape}; expected {want}"
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
            topological(specs, edges)  # raises GraphError naming the cycle
        self._projections.append(projection)
        index.add_projection(projection, name)
        self._index_key = (len(self._nodes), len(self._projections))
        if not any(p is projection for p in r.afferents):
            r.afferents.append(projection)
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

    def add_linear_processing_pathway(self, pathway: list, name: str | None = None) -> Pathway:
        """Add mechanisms in order, joining consecutive ones by a projection; returns the Pathway.

        Items between two mechanisms may be a MappingProjection or a matrix
        (array-like); otherwise PsyNeuLink's default matrix is used. The
        returned :class:`Pathway` lists the mechanisms and the projections made.
        """
        stray = [i for i in pathway if isinstance(i, ObjectiveMechanism)]
        if stray:
            # a LossMechanism is a sample-target pair, not a node (PsyNeuLink refuses it too)
            raise CompositionError(f"{self.name!r}: {', '.join(repr(i.name) for i in stray)} in a pathway: a "
                                   "LossMechanism is not a node; give it in AutodiffComposition's targets")
        # (node, NodeRole): a node with a role PsyNeuLink must give it; mdfx derives roles from
        # the graph, so the node is taken and the role checked once the pathway is made
        required = [i for i in pathway if isinstance(i, tuple) and len(i) == 2 and isinstance(i[1], NodeRole)]
        pathway = [i[0] if any(i is r for r in required) else i for i in pathway]
        # a set of nodes is a parallel stage: each joins the stages before and after it
        items = [sorted(i, key=lambda n: getattr(n, '_created', 0)) if isinstance(i, set | frozenset) else i for i in pathway]
        for item in items:
            for node in item if isinstance(item, list) else [item]:
                if isinstance(node, TransferMechanism):
                    self.add_node(node)
                elif isinstance(node, Composition):
                    self._flatten(node)
        prev: list = []
        pending: object = None
        made: list = []
        for item in items:
            stage = item if isinstance(item, list) else [item]
            if all(isinstance(n, TransferMechanism | Composition) for n in stage):
                made.extend(p for a in prev for b in stage for p in self._join(a, pending, b))
                made.extend(stage)
                prev, pending = stage, None
            else:
                pending = item
        for node, role in required:
            have = self.get_nodes_by_role(role)
            members = node._nodes if isinstance(node, Composition) else [node]
            if not any(m is h for m in members for h in have):
                raise CompositionError(f"{self.name!r}: pathway item ({node.name!r}, NodeRole.{role.name}): "
                                       f"{node.name!r} is not {role.name} in this composition's graph (mdfx "
                                       "derives roles from the projections)")
        result = Pathway(made, name=name)
        self.pathways.append(result)
        return result

    def _flatten(self, comp: Composition) -> None:
        """Take ``comp``'s nodes and projections into this network (a nested composition in a pathway)."""
        if any(c is comp for c in self._flattened):
            return
        if comp._learning_nodes and not comp._autodiff:
            raise CompositionError(f"{self.name!r}: nested composition {comp.name!r} has learning pathways; "
                                   "nest AutodiffCompositions or compositions without learning")
        for node in comp._nodes:
            if isinstance(node, Composition):
                raise CompositionError(f"{self.name!r}: {comp.name!r} holds {node.name!r} as a node with its own "
                                       "inputs; only compositions given as pathway items can be nested for learning")
            self.add_node(node)
        for proj in comp._projections:
            self.add_projection(proj)
        self._flattened.extend([*comp._flattened, comp])

    def _join(self, prev: Any, pending: object, item: Any) -> list[MappingProjection]:
        """Projections from ``prev`` to ``item`` (mechanisms or flattened compositions) for a pathway.

        A MappingProjection between them keeps the ends it names (e.g. a node inside a
        nested composition); otherwise each OUTPUT node of ``prev`` projects to each
        INPUT node of ``item`` with ``pending`` as the matrix (PsyNeuLink's default if None).
        """
        if isinstance(pending, MappingProjection):
            sender = pending.sender if pending.sender is not None else _single(prev, NodeRole.OUTPUT)
            receiver = pending.receiver if pending.receiver is not None else _single(item, NodeRole.INPUT)
            return [self.add_projection(pending, sender=sender, receiver=receiver)]
        senders = prev.get_nodes_by_role(NodeRole.OUTPUT) if isinstance(prev, Composition) else [prev]
        receivers = item.get_nodes_by_role(NodeRole.INPUT) if isinstance(item, Composition) else [item]
        receivers = [r for r in receivers if not isinstance(r, TargetMechanism)]
        made = []
        for s in senders:
            for r in receivers:
                # a projection this composition already has between them is kept (as PsyNeuLink,
                # a second pathway through the same two nodes shares it); else, with no matrix
                # given, one the user made between them
                candidates = self._projections if pending is not None else [
                    *self._projections, *getattr(s, "efferents", [])]
                existing = next((p for p in candidates if p.sender is s and p.receiver is r), None)
                if existing is None:
                    existing = MappingProjection(sender=s, receiver=r, matrix=pending)
                    # made by this composition: not for other compositions' pathways to find
                    s.efferents.remove(existing)
                made.append(self.add_projection(existing))
        return made

    def add_backpropagation_learning_pathway(self, pathway: list, learning_rate: object = None,
                                             loss_spec: Loss | str | None = None, name: str | None = None,
                                             learning_function: object = BackPropagation) -> Pathway:
        """Add ``pathway`` (as add_linear_processing_pathway) and make its projections learn.

        Adds PsyNeuLink's learning nodes: ``TARGET for <last node>`` (give targets as
        its inputs to learn()), an objective node and a LearningMechanism per
        projection; returns the Pathway with its ``learning_components``.
        ``learning_rate`` applies to this pathway's projections (a projection's own
        rate wins); ``loss_spec`` defaults to ``Loss.MSE``.
        """
        if learning_function is not BackPropagation:
            raise UnsupportedError(f"{self.name!r}: learning_function={learning_function!r}; mdfx learns by "
                                   "backpropagation only (pnl.BackPropagation)")
        from mdfx.composition.learning_rates import check_rate

        last = next((i for i in reversed(list(pathway)) if isinstance(i, TransferMechanism)), None)
        if last is not None and len(last.output_ports) > 1:
            raise CompositionError(f"{self.name!r}: the last node of a learning pathway, {last.name!r}, has "
                                   f"{len(last.output_ports)} OutputPorts; learning needs one value to compare with "
                                   "the target (give each port its own mechanism)")
        result = self.add_linear_processing_pathway(pathway, name=name)
        result.learning_rate = check_rate(learning_rate, f"pathway of {self.name!r}: learning_rate")
        result.loss_spec = loss_spec  # type: ignore[attr-defined]
        mechs = [i for i in result if isinstance(i, TransferMechanism)]
        projs = [i for i in result if isinstance(i, MappingProjection)]
        sample = mechs[-1]
        target = self._target_for(sample)
        objective = next((n for n in self._learning_nodes if isinstance(n, ObjectiveMechanism)
                          and n.sample is sample.output_port), None)
        if objective is None:
            from mdfx.composition.autodiff import as_loss

            loss = Loss.MSE if loss_spec is None else as_loss(loss_spec)
            objective = ObjectiveMechanism("Comparator", sample, target, "SUM" if loss is Loss.L0 else loss.name)
            self._learning_nodes.append(objective)
        lms = []
        for proj in reversed(projs):  # PsyNeuLink lists them from the output backwards
            lm = self._learning_mechanism(proj)
            if lm is None:
                rate = result.learning_rate if _is_number(result.learning_rate) else None
                lm = LearningMechanism(proj, rate)
                self._learning_nodes.append(lm)
            lms.append(lm)
        result.learning_components = learning_components(result, sample, target, objective,
                                                         list(reversed(projs)), lms)
        return result

    def add_linear_learning_pathway(self, pathway: list, learning_function: object = BackPropagation,
                                    learning_rate: object = None, loss_spec: Loss | str | None = None,
                                    name: str | None = None) -> Pathway:
        """PsyNeuLink's general form; mdfx supports ``learning_function=BackPropagation``."""
        return self.add_backpropagation_learning_pathway(pathway, learning_rate=learning_rate,
                                                         loss_spec=loss_spec, name=name,
                                                         learning_function=learning_function)

    def _target_for(self, sample: TransferMechanism) -> TargetMechanism:
        for node in self._learning_nodes:
            if isinstance(node, TargetMechanism) and node.sample is sample:
                return node
        target = TargetMechanism(sample)
        self._learning_nodes.append(target)
        return target

    def _learning_mechanism(self, proj: MappingProjection) -> LearningMechanism | None:
        return next((n for n in self._learning_nodes if isinstance(n, LearningMechanism)
                     and n.learned_projection is proj), None)

    def _analyze_graph(self, context: object = None) -> None:
        """PsyNeuLink's explicit graph analysis: mdfx checks the graph as it is built, so nothing is left."""

    def get_input_format(self) -> dict:
        """One trial of inputs: each INPUT node's (and TARGET node's) default value."""
        fmt: dict = {m: m.default_input().tolist() for m in self._mechanisms()
                     if not any(p.receiver is m for p in self._projections)}
        fmt.update({t: t.default_input().tolist() for t in self.target_input_mechanisms})
        return fmt

    @property
    def target_input_mechanisms(self) -> list[TargetMechanism]:
        """The TARGET nodes whose inputs are targets (one per OUTPUT node that learns)."""
        return [n for n in self._learning_nodes if isinstance(n, TargetMechanism)]

    # --- roles and the graph ----------------------------------------------------------

    def _mechanisms(self) -> list[TransferMechanism]:
        return [n for n in self._nodes if isinstance(n, TransferMechanism)]

    def get_nodes_by_role(self, role: NodeRole) -> list[Any]:
        receivers = {id(p.receiver) for p in self._projections}
        senders = {id(p.sender) for p in self._projections}
        targets = [n for n in self._learning_nodes if isinstance(n, TargetMechanism)]
        if role in (NodeRole.INPUT, NodeRole.ORIGIN):
            # as PsyNeuLink, the TARGET nodes are INPUT nodes too
            return [*(n for n in self._nodes if id(n) not in receivers), *targets]
        if role is NodeRole.LEARNING:
            return list(self._learning_nodes)
        if role is NodeRole.TARGET_INPUT:
            return targets
        if role is NodeRole.SAMPLE:
            return [t.sample for t in targets]
        if role is NodeRole.TARGET_INTERNAL:
            return self._internal_targets()
        if role is NodeRole.LEARNING_OBJECTIVE:
            return [n for n in self._learning_nodes if isinstance(n, ObjectiveMechanism)]
        if role in (NodeRole.OUTPUT, NodeRole.TERMINAL):
            # a node whose value is another's target is not an OUTPUT node (PsyNeuLink)
            internal = {id(n) for n in self._internal_targets()}
            return [n for n in self._nodes if id(n) not in senders and id(n) not in internal]
        if role is NodeRole.INTERNAL:
            return [n for n in self._nodes if id(n) in senders and id(n) in receivers]
        if role is NodeRole.SINGLETON:
            return [n for n in self._nodes if id(n) not in senders and id(n) not in receivers]
        return []  # control, learning and cycle roles do not occur in mdfx's networks

    def _internal_targets(self) -> list[Any]:
        """Nodes whose values are targets of other nodes (an AutodiffComposition's ``targets``)."""
        return []

    def _training_spec(self) -> TrainingSpec:
        return TrainingSpec()

    def _structure_key(self) -> tuple:
        """Everything a lowering depends on but the weight values (cheap: no arrays are read)."""
        return (
            tuple((id(n), n.name, getattr(n, "size", None), n.function.op_name,
                   tuple(n.function.params.items()), n.bias is not None and n.bias.shape, n.learnable_bias,
                   len(n.input_ports), n.combine, n.port_sizes)
                  if isinstance(n, TransferMechanism) else (id(n),) for n in self._nodes),
            tuple((id(p), p.name, id(p.sender), id(p.receiver), p.matrix.shape, p.learnable, p.receiver_port,
                   p.sender_port)
                  for p in self._projections),
        )

    def _graph(self) -> Graph:
        """The composition as an op graph (:func:`~mdfx.composition.lower.lower`), built once per
        structure; its params are the composition's arrays.

        When only arrays were replaced (``projection.matrix = ...``), the cached
        graph is re-pointed at the new arrays: nothing is rebuilt or copied.
        """
        self._enter_context()
        key = self._structure_key()
        if self._lowering is None or self._lowering[0] != key:
            from mdfx.composition.lower import lower

            self._lowering = (key, lower(self))
        graph = self._lowering[1]
        params = graph.params
        for p in self._projections:
            param = params[p.name]
            if param.value is not p.matrix:
                param.value = p.matrix
        for m in self._mechanisms():
            if m.bias is not None and params[f"{m.name}.bias"].value is not m.bias:
                params[f"{m.name}.bias"].value = m.bias
        return graph

    def _enter_context(self) -> None:
        """The projections' matrices become this composition's values (its execution context)."""
        for p in self._projections:
            p._enter(self._context_id)

    def _io(self) -> IO:
        """The names and sizes that inputs and targets must fit."""
        return self._io_of(self._graph())

    def _io_of(self, graph: Graph) -> IO:
        """``_io()`` of an already lowered ``graph``: run()/learn() lower once per call, not twice."""
        memo = self._io_memo
        if memo is None or memo[0] is not graph:
            memo = self._io_memo = (graph, IO.of(graph))
        return memo[1]

    def to_mdf(self) -> Any:
        """The composition as a ``modeci_mdf.mdf.Model`` (current weights)."""
        from mdfx.schema import writer

        for m in self._mechanisms():  # refused before lowering, which needs every port fed
            writer.refuse_ports(m.name, len(m.input_ports), m.combine)
        return writer.graph_to_mdf(self._graph())

    def to_onnx(self, dtype: str | None = None, opset: int = 17) -> Any:
        """The inference graph as an ``onnx.ModelProto`` with the current (trained) weights.

        ``dtype`` None: float32 for a composition, a file's own dtype for an imported graph.
        """
        from mdfx.converters.onnx_export import to_onnx

        return to_onnx(self._graph(), dtype=dtype, opset=opset)

    def _mechanism(self, name: str) -> TransferMechanism:
        for m in self._mechanisms():
            if m.name == name:
                return m
        raise GraphError(f"{self.name!r} has no mechanism {name!r}")

    # --- running --------------------------------------------------------------------

    def run(self, inputs: Mapping | None = None, num_trials: int | None = None,
            execution_mode: ExecutionMode = ExecutionMode.Python, context: object = None,
            clamp_input: str = "soft_clamp") -> np.ndarray:
        """Run every trial; return the last trial's output values (one row per OUTPUT node).

        Every trial's outputs are appended to ``results``. ``inputs`` maps each
        INPUT node to its trials, ``[[...], ...]`` (a single trial may be given flat);
        with no inputs, each INPUT node's default value is used (as PsyNeuLink).
        ``context`` is accepted for PsyNeuLink compatibility (mdfx has one context).
        ``clamp_input`` is one of PsyNeuLink's SOFT_CLAMP, HARD_CLAMP, PULSE_CLAMP,
        NO_CLAMP: they differ only for nodes that execute several times in a trial, and
        every node of an mdfx network executes once, taking the trial's input.
        """
        from mdfx.composition.keywords import HARD_CLAMP, NO_CLAMP, PULSE_CLAMP, SOFT_CLAMP

        if clamp_input not in (SOFT_CLAMP, HARD_CLAMP, PULSE_CLAMP, NO_CLAMP):
            raise ValueError(f"{self.name!r}.run(clamp_input={clamp_input!r}): expected one of "
                             f"{SOFT_CLAMP!r}, {HARD_CLAMP!r}, {PULSE_CLAMP!r}, {NO_CLAMP!r}")
        nested = [n for n in self._nodes if isinstance(n, Composition)]
        if nested:
            return self._run_nested(inputs or {}, num_trials, execution_mode)
        graph = self._graph()
        io = self._io_of(graph)
        arrays = parse_inputs(io, self._run_inputs(inputs), num_trials)
        outputs, values = modes.run(graph, arrays, execution_mode, getattr(self, "device", "cpu"))
        mechanisms = {m.name: m for m in self._mechanisms()}
        for name, value in values.items():
            if name in mechanisms:
                mechanisms[name].value = value[-1:].copy()
        trials = len(next(iter(outputs.values())))
        internal = {n.name for n in self._internal_targets()}
        shown = [name for name in io.outputs if name not in internal]
        for t in range(trials):
            # each trial's entry a 2-D array (an object array when sizes differ), as PsyNeuLink's
            self.results.append(pnl_value([_copy(outputs[name][t]) for name in shown]))
        return pnl_value(list(self.results[-1]))

    def _run_inputs(self, inputs: Any) -> Any:
        """run()'s inputs without those of TARGET nodes; none given: every INPUT node's default value."""
        if inputs is None:
            return {m.name: np.atleast_2d(m.default_input()) for m in self._mechanisms()
                    if not any(p.receiver is m for p in self._projections)}
        if callable(inputs) or (hasattr(inputs, "__next__") and not isinstance(inputs, Mapping)):
            raise UnsupportedError(f"{self.name!r}.run(): inputs given as a function or generator are not "
                                   "supported; give a dict {node: trials}")
        if isinstance(inputs, Mapping):
            if not any(isinstance(k, str | TargetMechanism) for k in inputs):
                return inputs  # no TARGET node among the keys (run() is called often: skip the lookup)
            names = {t.name for t in self.target_input_mechanisms}
            kept = {k: v for k, v in inputs.items() if not isinstance(k, TargetMechanism) and k not in names}
            # run() ignores the TARGET nodes' inputs, but as PsyNeuLink refuses them when their
            # number of trials differs from the other nodes'
            nodes = {n.name: n for n in [*self._mechanisms(), *self.target_input_mechanisms]}
            counts = {getattr(k, "name", k): _trial_count(v, getattr(nodes.get(getattr(k, "name", k)), "size", 0))
                      for k, v in inputs.items()}
            if len({c for c in counts.values() if c is not None}) > 1 and len(kept) < len(inputs):
                raise CompositionError(f"{self.name!r}.run(): the inputs have different numbers of trials "
                                       f"({counts}); give every node, TARGET nodes included, the same number")
            return kept
        return inputs

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
            last = last + list(node.results[-1])
        self.results.append(pnl_value(last))
        return pnl_value(last)

    def learn(self, inputs: Any = None, targets: Mapping | None = None, num_trials: int | None = None,
              epochs: int = 1, learning_rate: object = None,
              execution_mode: ExecutionMode = ExecutionMode.Python, **options: Any) -> Any:
        """Train the learning pathways (``add_backpropagation_learning_pathway``), or else the
        nested AutodiffCompositions, each on the dict given for it.

        Learning pathways train on AutodiffComposition's engine in every mode (SGD,
        the pathway's loss, minibatches of one trial by default, learning rate 0.05
        unless given); projections outside learning pathways stay fixed. Targets
        are the inputs of ``pathway.target`` (or ``targets={output node: trials}``).
        ``options`` are AutodiffComposition.learn()'s other arguments; an unknown one
        raises TypeError. For nested AutodiffCompositions:
        ``inputs={autodiff: {"inputs": ..., "targets": ..., "epochs": ...}}``, as in
        PsyNeuLink's nested-execution example.
        """
        from mdfx.composition.autodiff import AutodiffComposition

        if any(p.learning_components for p in self.pathways) and not any(
                isinstance(n, Composition) for n in self._nodes):
            engine = self._learning_engine()
            fixed = [p for p in self._projections if p.learnable and not any(
                any(i is p for i in pw) for pw in self.pathways if pw.learning_components)]
            for p in fixed:
                p.learnable = False
            # the rates the LearningMechanisms took when the pathways were made (as PsyNeuLink)
            rates = [(lm.learned_projection, lm.learned_projection.learning_rate) for lm in self._learning_nodes
                     if isinstance(lm, LearningMechanism)]
            for lm in self._learning_nodes:
                if isinstance(lm, LearningMechanism):
                    lm.learned_projection.learning_rate = lm.projection_rate
            before, losses_before = len(engine.results), len(engine.losses)
            try:
                value = engine.learn(inputs=inputs, targets=targets, num_trials=num_trials, epochs=epochs,
                                     learning_rate=learning_rate, execution_mode=execution_mode, **options)
            finally:
                for p in fixed:
                    p.learnable = True
                for p, rate in rates:
                    p.learning_rate = rate
            self.results.extend(engine.results[before:])
            self.losses.extend(engine.losses[losses_before:])
            self.learning_results = engine.learning_results
            return value
        result = None
        nested = [n for n in self._nodes if isinstance(n, AutodiffComposition)]
        if not nested:
            raise CompositionError(f"{self.name!r} has nothing to learn: add a learning pathway "
                                   "(add_backpropagation_learning_pathway) or use AutodiffComposition")
        for node in nested:
            given = _lookup(inputs or {}, node)
            if given is None:
                raise DataError(f"{self.name!r}.learn(): no inputs for {node.name!r}")
            result = node.learn(inputs=given, targets=targets, num_trials=num_trials, epochs=epochs,
                                learning_rate=learning_rate, execution_mode=execution_mode, **options)
        return result

    def _learning_engine(self) -> Any:
        """An AutodiffComposition over this composition's own nodes and projections (shared
        objects, so training updates them), kept while the structure stays the same."""
        from mdfx.composition.autodiff import AutodiffComposition, as_loss

        key = (tuple(map(id, self._nodes)), tuple(map(id, self._projections)))
        engine = getattr(self, "_engine", None)
        if engine is None or engine._engine_key != key:
            losses = {as_loss(p.loss_spec) for p in self.pathways
                      if p.learning_components and getattr(p, "loss_spec", None) is not None}
            if len(losses) > 1:
                raise UnsupportedError(f"{self.name!r}: learning pathways with different loss_spec "
                                       f"({', '.join(sorted(x.name for x in losses))}) cannot learn together")
            loss = losses.pop() if losses else Loss.MSE
            engine = AutodiffComposition(name=self.name, loss_spec=Loss.SSE if loss is Loss.L0 else loss)
            if loss is Loss.L0:
                # PsyNeuLink's Comparator passes target - sample back for L0: SSE's gradient
                # at half the learning rate (measured, tests/pnl_reference/facts.md)
                engine._rate_scale = 0.5
            engine._objective_loss = loss.value
            engine.default_learning_rate = self.default_learning_rate
            engine.add_nodes(self._mechanisms())
            for p in self._projections:
                engine.add_projection(p)
            engine._learning_nodes = self._learning_nodes
            engine.pathways = self.pathways
            engine._engine_key = key
            # it trains this composition's values (its context), not values of its own
            engine._context_id = self._context_id
            self._engine = engine
        engine.learning_rate = self.learning_rate
        return engine


_CONTEXT_IDS = itertools.count(1)


def _single(node: Any, role: NodeRole) -> Any:
    """A mechanism, or the one node of a composition with ``role``."""
    if not isinstance(node, Composition):
        return node
    found = [n for n in node.get_nodes_by_role(role) if not isinstance(n, TargetMechanism)]
    if len(found) != 1:
        raise CompositionError(f"a projection to or from nested composition {node.name!r} must name its "
                               f"{role.name} node (it has {', '.join(n.name for n in found)})")
    return found[0]


def _is_number(value: object) -> bool:
    return value is not None and not isinstance(value, bool)


class InterfaceMechanism:
    """PsyNeuLink's CompositionInterfaceMechanism (``input_CIM``, ``output_CIM``) as far as mdfx
    has one: a name and ``reportOutputPref`` (OFF by default, as PsyNeuLink's; mdfx reports
    nothing per trial, so no preference changes what it prints). Inputs and outputs pass
    straight through mdfx's graph; there is no mechanism to execute."""

    def __init__(self, name: str) -> None:
        from mdfx.composition.keywords import ReportOutput

        self.name = name
        self.reportOutputPref: object = ReportOutput.OFF

    def __repr__(self) -> str:
        return f"(CompositionInterfaceMechanism {self.name})"


class _NamedList(list):
    """A list also indexed by its items' names, as PsyNeuLink's lists of components."""

    what = "item"

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            for item in self:
                if item.name == key:
                    return item
            raise KeyError(f"{key!r} is not the name of a {self.what} ({self.what}s: "
                           f"{', '.join(repr(i.name) for i in self)})")
        if not isinstance(key, int | slice | np.integer):
            # PsyNeuLink's lists also take the component itself
            for item in self:
                if item is key:
                    return item
            raise KeyError(f"{key!r} is not a {self.what} of this list")
        return super().__getitem__(key)


class ProjectionList(_NamedList):
    """A composition's projections; ``projections["name"]`` finds one by name."""

    what = "projection"


class NodeList(_NamedList):
    """A composition's nodes; ``nodes["name"]`` finds one by name."""

    what = "node"


def pnl_value(outputs: list[np.ndarray]) -> np.ndarray:
    """One trial's outputs as PsyNeuLink returns them: a 2-D array (object array if sizes differ)."""
    if all(isinstance(o, np.ndarray) and o.dtype != object for o in outputs) and len({o.shape for o in outputs}) == 1:
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


def _node_stub(m: TransferMechanism) -> MechanismSpec:
    return MechanismSpec(m.name, m.size, "identity")


def _proj_stub(p: MappingProjection) -> ProjectionSpec:
    return ProjectionSpec(p.name, p.sender.name, p.receiver.name, np.empty((0, 0)))


def _is_learning_spec(spec: object) -> bool:
    """Whether ``spec`` is PsyNeuLink's ``(pathway, learning function)`` tuple (a learning
    function other than BackPropagation is then refused by add_backpropagation_learning_pathway)."""
    return (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], list | Pathway)
            and (isinstance(spec[1], type) or isinstance(spec[1], BackPropagation)))


def _as_pathways(pathways: object) -> list[list]:
    if pathways is None:
        return []
    items = list(pathways)  # type: ignore[call-overload]
    if any(_is_learning_spec(i) for i in items):
        return [i if _is_learning_spec(i) else list(i) if isinstance(i, list | tuple) else [i] for i in items]
    nodes = (TransferMechanism, Composition, MappingProjection, ObjectiveMechanism)
    if isinstance(pathways, Pathway) or not any(
            isinstance(i, list | tuple) and any(isinstance(j, nodes) for j in i) for i in items):
        return [items]
    # a list holding a list is a list of pathways (as PsyNeuLink); a lone node is a pathway of one
    return [list(i) if isinstance(i, list | tuple) else [i] for i in items]


@dataclass
class IO:
    """What data must fit: the INPUT and OUTPUT node names and every node's size."""

    name: str
    inputs: list[str]
    outputs: list[str]
    sizes: dict[str, int]
    #: feature shapes of tensors with several feature axes (others are (size,))
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, g: Graph) -> IO:
        """A graph's mechanisms by name (a composition's), else its inputs and outputs by tensor."""
        if g.mechanisms is not None:
            m = g.mechanisms
            return cls(g.name, list(m.inputs), list(m.outputs), {n.name: n.size for n in m.nodes})
        names = [*g.inputs, *g.outputs]
        return cls(g.name, list(g.inputs), list(g.outputs), {k: g.size(k) for k in names},
                   {k: g.features(k) for k in names if len(g.features(k)) > 1})


def parse_inputs(net: Graph | IO, inputs: Mapping, num_trials: int | None = None,
                 nodes: list[str] | None = None, what: str = "input") -> dict[str, np.ndarray]:
    """Validate ``{node or name: trials}`` into float64 arrays (trials, size), one per node.

    Errors name the node, the shape expected and the shape given.
    """
    if isinstance(net, Graph):
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
        # the shared check refuses complex, masked and string arrays a float cast would hide
        arr = np.array(validate.real_array(by_name[name], f"{what} for node {name!r}"), dtype=np.float64)
        feats = net.shapes.get(name, (size,))
        if arr.ndim == 1 + len(feats) and len(feats) > 1 and arr.shape[1:] == feats:
            arr = arr.reshape(len(arr), size)  # (trials, *features) of a multi-axis tensor, as rows
        if arr.ndim == 3 and arr.shape[1] == 1:
            arr = arr[:, 0, :]  # PsyNeuLink's per-input-port nesting: [[[...]], ...]
        if arr.ndim == 0 or (arr.ndim == 1 and size == 1):
            arr = arr.reshape(-1, 1)  # PsyNeuLink: a number per trial for a one-unit node
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != size:
            raise DataError(f"{what} for node {name!r} has shape {np.shape(by_name[name])}; "
                            f"expected (trials, {size})" + (f" or (trials, {', '.join(map(str, feats))})"
                                                            if len(feats) > 1 else ""))
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
        limits.check_elements(num_trials * sum(net.sizes[k] for k in arrays), f"{num_trials} trials of {what}s")
        n = len(next(iter(arrays.values())))
        reps = np.arange(num_trials) % n
        arrays = {name: a[reps] for name, a in arrays.items()}
    return arrays


def _trial_count(value: Any, size: int) -> int | None:
    """Trials in the input of a node of ``size`` units (a bare number, or one row of ``size``, is one)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.ndim == 0 or (arr.ndim == 1 and len(arr) == size != 1):
        return 1
    return len(arr)


def _copy(value: Any) -> Any:
    return value.copy() if hasattr(value, "copy") else value
