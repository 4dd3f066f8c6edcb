"""GraphComposition: an AutodiffComposition over an op graph brought from elsewhere.

ONNX files, torch modules and foreign MDF lower into a
:class:`~mdfx.schema.graph.Graph` that keeps the original parametrisation (each
bias, scale and normalisation constant as its own param, under its original
name and layout). :func:`mdfx.load` and :func:`mdfx.from_torch` return it
wrapped in this class, so it runs, learns and saves like any composition:

* its INPUT nodes are the graph's inputs and its OUTPUT nodes the graph's
  outputs, as mechanisms named after the tensors (use them, or their names, as
  keys of ``inputs`` and ``targets``);
* ``learn(targets=...)`` trains the outputs given targets (a classifier's
  probability output, say); outputs that take no gradient (ArgMax labels,
  ZipMap) cannot be targets;
* ``graph`` is the graph; ``graph.params[name].value`` the (trained) arrays.

Its structure is the graph's: nodes and projections cannot be added.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mdfx.composition.autodiff import AutodiffComposition
from mdfx.composition.composition import IO, Composition
from mdfx.composition.enums import Loss, NodeRole
from mdfx.composition.mechanisms import TransferMechanism
from mdfx.errors import DataError, GraphError
from mdfx.schema.graph import Graph


class GraphComposition(AutodiffComposition):
    """An imported op graph with the AutodiffComposition API (see the module docstring)."""

    def __init__(self, graph: Graph, learning_rate: float | None = None, optimizer_type: str | None = None,
                 loss_spec: Loss | str | None = None, weight_decay: float | None = None,
                 name: str | None = None) -> None:
        t = graph.training
        super().__init__(
            name=name or graph.name,
            learning_rate=learning_rate if learning_rate is not None else getattr(t, "learning_rate", None),
            optimizer_type=optimizer_type or getattr(t, "optimizer", "sgd"),
            loss_spec=loss_spec or getattr(t, "loss", Loss.MSE),
            weight_decay=weight_decay if weight_decay is not None else getattr(t, "weight_decay", 0.0),
        )
        self.graph = graph
        self._inputs = [TransferMechanism(size=graph.size(k), name=k) for k in graph.inputs]
        self._outputs = [TransferMechanism(size=graph.size(k), name=k) for k in graph.outputs
                         if k not in graph.inputs]
        for m in [*self._inputs, *self._outputs]:
            self._nodes.append(m)

    # --- structure is the graph's -----------------------------------------------------

    def add_node(self, node: Any, required_roles: object = None, **kwargs: Any) -> Any:
        if hasattr(self, "graph"):
            raise GraphError(f"{self.name!r} is a graph brought from another tool; its structure is fixed "
                             "(edit the model at its source, or build a Composition)")
        return super().add_node(node, required_roles, **kwargs)

    def add_projection(self, projection: Any = None, sender: Any = None, receiver: Any = None,
                       **kwargs: Any) -> Any:
        raise GraphError(f"{self.name!r} is a graph brought from another tool; its structure is fixed")

    def get_nodes_by_role(self, role: NodeRole) -> list[TransferMechanism | Composition]:
        if role in (NodeRole.INPUT, NodeRole.ORIGIN):
            return list(self._inputs)
        if role in (NodeRole.OUTPUT, NodeRole.TERMINAL):
            by_name = {m.name: m for m in [*self._inputs, *self._outputs]}
            return [by_name[k] for k in self.graph.outputs]
        return []

    def _graph(self) -> Graph:
        """The imported graph itself (its structure is fixed: nothing to lower)."""
        return self.graph

    def _trained_outputs(self, io: IO, targets: Mapping) -> list[str]:
        """The outputs that have targets; each must take a gradient."""
        if not isinstance(targets, Mapping):
            trained = [t for t in io.outputs if self.graph.differentiable(t)]
            if len(trained) != 1:
                raise DataError(f"targets must be a dict {{output: trials}}: {self.name!r} has outputs "
                                f"{', '.join(io.outputs)}")
            return trained
        names = [getattr(k, "name", k) for k in targets]
        for n in names:
            if n in io.outputs and not self.graph.differentiable(n):
                raise DataError(f"output {n!r} of {self.name!r} takes no gradient (it is computed by an op "
                                "such as ArgMax or ZipMap); give targets for a differentiable output, e.g. "
                                "the probabilities")
        return [n for n in io.outputs if n in names] or list(io.outputs)

    _pairs_targets = False

    def _shown_outputs(self, io: IO, trained: list[str]) -> list[str]:
        """An imported graph's results are its trained outputs."""
        return trained

    def _internal_pairs(self) -> list[tuple[Any, Any]]:
        return []

    def _internal_targets(self) -> list[Any]:
        return []

    def _training_spec(self) -> Any:
        return self.graph.training or super()._training_spec()

    # --- weights -------------------------------------------------------------------------

    def parameters_dict(self) -> dict[str, np.ndarray]:
        """Every param's current array by its original name (learnable and frozen)."""
        return {k: p.value for k, p in self.graph.params.items()}

    def save(self, path: Any = None, directory: str | None = None, filename: str | None = None,
             **kwargs: Any) -> Any:
        """Write the params as a torch state_dict under their original names, layouts and dtypes
        (a module imported with from_torch loads it strictly)."""
        from mdfx.composition.autodiff import _weights_path
        from mdfx.schema.state_dict import save_state_dict

        return save_state_dict(self.graph, _weights_path(self, path, directory, filename))

    def load(self, path: Any = None, directory: str | None = None, filename: str | None = None,
             **kwargs: Any) -> None:
        """Restore params from a state_dict (the original module's, or one :meth:`save` wrote), in place."""
        from mdfx.composition.autodiff import _weights_path
        from mdfx.schema.state_dict import load_state_dict

        load_state_dict(self.graph, _weights_path(self, path, directory, filename))

    def to_mdf(self) -> Any:
        """The graph as a ``modeci_mdf.mdf.Model``: one MDF node per op, params with their values."""
        from mdfx.schema import writer

        return writer.graph_to_mdf(self.trained_graph())

    def trained_graph(self) -> Graph:
        """The graph (sharing its arrays) with this composition's loss, optimizer and rates as its
        training settings, so a saved file keeps them."""
        from dataclasses import replace

        return replace(self.graph, training=AutodiffComposition._training_spec(self))

    def __repr__(self) -> str:
        return f"GraphComposition(name={self.name!r}, {len(self.graph.nodes)} ops, {len(self.graph.params)} params)"
