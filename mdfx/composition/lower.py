"""``lower(comp) -> Graph``: a Composition's mechanisms and projections as the op graph.

The graph is the one in-memory form every backend consumes (DESIGN rule 1). A
composition lowers straight from its objects: each TransferMechanism and
MappingProjection is described to :func:`mdfx.schema.mechanisms.build`, which
checks the network and writes its ops; the graph's params *are* the
projections' matrices and the mechanisms' biases (the same numpy arrays, never
copied), so training the graph trains the composition in place. The graph
keeps the grouping (:attr:`~mdfx.schema.graph.Graph.mechanisms`) and the
composition's training settings (:attr:`~mdfx.schema.graph.Graph.training`).

:meth:`Composition._graph` caches the result per structure and re-points the
cached params when only arrays were replaced (``projection.matrix = ...``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mdfx.errors import GraphError
from mdfx.schema.graph import Graph
from mdfx.schema.mechanisms import MechanismSpec, ProjectionSpec, build

if TYPE_CHECKING:
    from mdfx.composition.composition import Composition


def lower(comp: Composition) -> Graph:
    """The composition as a graph whose arrays are its projections' and mechanisms' own.

    Nested compositions are refused (they run through the outer composition's
    ``run()``/``learn()``); so is a composition without nodes.
    """
    from mdfx.composition.composition import Composition

    nested = [n for n in comp._nodes if isinstance(n, Composition)]
    if nested:
        raise GraphError(f"{comp.name!r} contains nested compositions "
                         f"({', '.join(n.name for n in nested)}); run or learn them through this "
                         "composition's run()/learn(), or save them on their own")
    if not comp._nodes:
        raise GraphError(f"{comp.name!r} has no nodes")
    mechanisms = [MechanismSpec(m.name, m.size, m.function.op_name, dict(m.function.params), m.bias,
                                m.learnable_bias, len(m.input_ports), m.combine,
                                m.port_sizes if m.combine == "concat" else ())
                  for m in comp._mechanisms()]
    # OutputPorts of a one-port mechanism all carry its value: the graph reads port 0
    projections = [ProjectionSpec(p.name, p.sender.name, p.receiver.name, p.matrix, p.learnable, p.receiver_port,
                                  p.sender_port if getattr(p.sender, "combine", "sum") == "concat" else 0)
                   for p in comp._projections]
    return build(comp.name, mechanisms, projections, comp._training_spec(), autodiff=comp._autodiff,
                 source="composition")
