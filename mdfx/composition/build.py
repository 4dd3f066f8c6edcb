"""Graph with mechanisms -> Composition: what :func:`mdfx.load` returns, ready to run or train."""

from __future__ import annotations

from mdfx.composition.autodiff import AutodiffComposition
from mdfx.composition.composition import Composition
from mdfx.composition.enums import Loss
from mdfx.composition.functions import from_op
from mdfx.composition.mechanisms import TransferMechanism
from mdfx.composition.projections import MappingProjection
from mdfx.errors import GraphError, SchemaError
from mdfx.schema.graph import Graph, TrainingSpec


def composition_from_graph(graph: Graph) -> Composition:
    """Mechanisms and projections with the graph's names, functions, weights and training settings.

    ``graph`` must carry its mechanisms (:attr:`Graph.mechanisms`: PsyNeuLink-style MDF, or a
    composition's graph); an op graph from elsewhere is a GraphComposition instead.
    """
    net = graph.mechanisms
    if net is None:
        raise GraphError(f"graph {graph.name!r} has no mechanisms (an op graph from another tool); "
                         "wrap it in GraphComposition(graph)")
    if net.autodiff:
        t = graph.training or TrainingSpec()
        if str(t.loss).upper() not in Loss.__members__:  # a graph built by hand or a dialect that let it through
            raise SchemaError(f"model {graph.name!r}: loss {t.loss!r} is not a Loss member "
                              f"({', '.join(Loss.__members__)})")
        comp: Composition = AutodiffComposition(
            name=graph.name, learning_rate=t.learning_rate, optimizer_type=t.optimizer,
            weight_decay=t.weight_decay, loss_spec=Loss[str(t.loss).upper()], disable_learning=t.disable_learning,
        )
    else:
        comp = Composition(name=graph.name)
    mechs = {}
    for node in net.nodes:
        bias = graph.params[node.bias] if node.bias is not None else None
        mechs[node.name] = TransferMechanism(
            size=node.size, function=from_op(node.function, dict(node.params)), name=node.name,
            bias=None if bias is None else bias.value, learnable_bias=True if bias is None else bias.learnable)
    # Keep the graph's input-first order so roles and result order survive the trip.
    for node in net.nodes:
        comp.add_node(mechs[node.name])
    for p in net.projections:
        param = graph.params[p.name]
        comp.add_projection(MappingProjection(sender=mechs[p.sender], receiver=mechs[p.receiver],
                                              matrix=param.value.copy(), name=p.name, learnable=param.learnable))
    return comp
