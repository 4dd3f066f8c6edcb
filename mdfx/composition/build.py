"""Net -> Composition: what :func:`mdfx.load` returns, ready to run or train."""

from __future__ import annotations

from mdfx.composition.autodiff import AutodiffComposition
from mdfx.composition.composition import Composition
from mdfx.composition.enums import Loss
from mdfx.composition.functions import from_op
from mdfx.composition.mechanisms import TransferMechanism
from mdfx.composition.projections import MappingProjection
from mdfx.errors import SchemaError
from mdfx.schema.net import Net


def composition_from_net(net: Net) -> Composition:
    """Mechanisms and projections with the Net's names, functions, weights and training settings."""
    if net.autodiff:
        t = net.training
        if str(t.loss).upper() not in Loss.__members__:  # a Net built by hand or a dialect that let it through
            raise SchemaError(f"model {net.name!r}: loss {t.loss!r} is not a Loss member "
                              f"({', '.join(Loss.__members__)})")
        comp: Composition = AutodiffComposition(
            name=net.name, learning_rate=t.learning_rate, optimizer_type=t.optimizer,
            weight_decay=t.weight_decay, loss_spec=Loss[str(t.loss).upper()], disable_learning=t.disable_learning,
        )
    else:
        comp = Composition(name=net.name)
    mechs = {}
    for node in net.nodes:
        mech = TransferMechanism(size=node.size, function=from_op(node.op, node.params), name=node.name,
                                 bias=node.bias, learnable_bias=node.bias_learnable)
        mechs[node.name] = mech
    # Keep the Net's input-first order so roles and result order survive the trip.
    for node in net.nodes:
        comp.add_node(mechs[node.name])
    for p in net.projections:
        comp.add_projection(MappingProjection(sender=mechs[p.sender], receiver=mechs[p.receiver],
                                              matrix=p.matrix.copy(), name=p.name, learnable=p.learnable))
    return comp
