"""Run an MDF model in modeci-mdf's own execution engine, one trial at a time.

This is a validation runner: it shows that the MDF we write means, to the
reference implementation of MDF, what our runners compute. It loops over
trials in Python and is slow; never use it for training.

It takes a ``modeci_mdf.mdf.Model`` plus the ports to feed and read, so it does
not depend on how the MDF writer names things:
``input_nodes = {mdf_node_id: input_port_id}``,
``output_nodes = {mdf_node_id: output_port_id}``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mdfx.errors import DataError, SchemaError
from mdfx.schema import validate
from mdfx.schema.net import Net


def run(model: Any, inputs: Mapping[str, np.ndarray], input_nodes: Mapping[str, str],
        output_nodes: Mapping[str, str], graph: str | None = None) -> dict[str, np.ndarray]:
    """Evaluate ``model`` once per trial with modeci-mdf's ``EvaluableGraph``.

    ``inputs[node_id]`` has shape (trials, size) and is fed to the input port
    ``input_nodes[node_id]``; the result maps each ``output_nodes`` id to the
    stacked values of its output port, shape (trials, size), float64.
    ``graph`` picks a graph by id (default: the model's first graph).
    """
    from modeci_mdf.execution_engine import EvaluableGraph

    mdf_graph = _graph(model, graph)
    inputs = {k: validate.trials_array(v, f"input for MDF node {k!r}", allow_empty=True) for k, v in inputs.items()}
    trials = _check_inputs(inputs, input_nodes)
    # The engine prints progress to stdout; keep validation output readable.
    with contextlib.redirect_stdout(io.StringIO()):
        engine = EvaluableGraph(mdf_graph, verbose=False)
    feeds = [(_port(engine, node_id, port_id, "evaluable_inputs"), np.asarray(inputs[node_id], float))
             for node_id, port_id in input_nodes.items()]
    reads = {node_id: _port(engine, node_id, port_id, "evaluable_outputs")
             for node_id, port_id in output_nodes.items()}
    results: dict[str, list[np.ndarray]] = {node_id: [] for node_id in output_nodes}
    for t in range(trials):
        for port, values in feeds:
            port.set_input_value(values[t])
        with contextlib.redirect_stdout(io.StringIO()):
            engine.evaluate()
        for node_id, port in reads.items():
            results[node_id].append(np.atleast_1d(np.asarray(port.curr_value, dtype=np.float64)))
    return {node_id: np.stack(values) if values else np.empty((0, 0))
            for node_id, values in results.items()}


def _graph(model: Any, graph_id: str | None) -> Any:
    graphs = list(model.graphs)
    if not graphs:
        raise SchemaError(f"MDF model {model.id!r} has no graph")
    if graph_id is None:
        return graphs[0]
    for g in graphs:
        if g.id == graph_id:
            return g
    raise SchemaError(f"MDF model {model.id!r} has no graph {graph_id!r}; "
                      f"its graphs are {', '.join(g.id for g in graphs)}")


def _check_inputs(inputs: Mapping[str, np.ndarray], input_nodes: Mapping[str, str]) -> int:
    """The number of trials; every input node fed, every array (trials, size), trials equal."""
    missing = [n for n in input_nodes if n not in inputs]
    if missing:
        raise DataError(f"missing input for MDF node {', '.join(map(repr, missing))}; "
                        f"the input nodes are {', '.join(input_nodes)}")
    unknown = [n for n in inputs if n not in input_nodes]
    if unknown:
        raise DataError(f"{', '.join(map(repr, unknown))} is not an input node; "
                        f"the input nodes are {', '.join(input_nodes)}")
    counts = {}
    for node_id in input_nodes:
        shape = np.shape(inputs[node_id])
        if len(shape) != 2:
            raise DataError(f"input for MDF node {node_id!r} has shape {shape}; expected (trials, size)")
        counts[node_id] = shape[0]
    if len(set(counts.values())) > 1:
        raise DataError(f"inputs have different numbers of trials: {counts}")
    return next(iter(counts.values()), 1)


def _port(engine: Any, node_id: str, port_id: str, kind: str) -> Any:
    enode = engine.enodes.get(node_id)
    if enode is None:
        raise SchemaError(f"the MDF graph has no node {node_id!r}; "
                          f"its nodes are {', '.join(engine.enodes)}")
    ports = getattr(enode, kind)
    if port_id not in ports:
        what = "input" if kind == "evaluable_inputs" else "output"
        raise SchemaError(f"MDF node {node_id!r} has no {what} port {port_id!r}; "
                          f"its {what} ports are {', '.join(ports) or 'none'}")
    return ports[port_id]


def run_net(net: Net, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Write ``net`` as our MDF and run it in modeci-mdf's engine; outputs by node name."""
    from mdfx.schema.writer import mdf_ids, to_mdf

    ids = mdf_ids([n.name for n in net.nodes])
    out = run(to_mdf(net), {ids[k]: v for k, v in inputs.items()},
              {ids[k]: "input" for k in net.inputs}, {ids[k]: "output" for k in net.outputs})
    return {k: out[ids[k]] for k in net.outputs}


def validation_runner(net: Net, dtype: str) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """The ``mdf_engine`` row of ``mdfx validate``."""
    if dtype != "float64":
        raise NotImplementedError("modeci-mdf's engine computes in float64 only")
    return lambda inputs: run_net(net, inputs)
