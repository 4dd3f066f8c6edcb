"""Run an MDF model in modeci-mdf's own execution engine, one trial at a time.

This is a validation runner: it shows that the MDF we write means, to the
reference implementation of MDF, what our runners compute. It loops over
trials in Python and is slow; never use it for training.

:func:`run` takes a ``modeci_mdf.mdf.Model`` plus the ports to feed and read, so it
does not depend on how the MDF writer names things:
``input_nodes = {mdf_node_id: input_port_id}``,
``output_nodes = {mdf_node_id: output_port_id}``. :func:`run_graph` writes a
:class:`~mdfx.schema.graph.Graph` with :func:`~mdfx.schema.writer.to_mdf` and runs
that, outputs by the graph's tensor names; :func:`validation_runner` is the
``mdf_engine`` row of ``mdfx validate``.

Dtypes: modeci-mdf evaluates its standard functions (what a composition's
mechanisms are written as) in float64, but its ``onnx::`` functions through
onnxruntime after casting every float64 array to float32. A graph with any
``onnx::`` op therefore runs as the float32 row only, and the float64 row says why.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mdfx.errors import DataError, SchemaError, UnsupportedError
from mdfx.schema import validate
from mdfx.schema.graph import Graph


def run(model: Any, inputs: Mapping[str, np.ndarray], input_nodes: Mapping[str, str],
        output_nodes: Mapping[str, str], graph: str | None = None, batched: bool = False,
        shapes: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """Evaluate ``model`` once per trial with modeci-mdf's ``EvaluableGraph``.

    ``inputs[node_id]`` has shape (trials, size) and is fed to the input port
    ``input_nodes[node_id]``; the result maps each ``output_nodes`` id to the
    stacked values of its output port, shape (trials, size), float64.
    ``graph`` picks a graph by id (default: the model's first graph).
    ``batched``: each trial is fed as a batch of one, ``(1, *features)``, and the
    batch axis is dropped from each output (an op graph's ops keep the batch axis).
    ``shapes[node_id]``: the feature shape each trial's row is fed as (default: the row).
    """
    from modeci_mdf.execution_engine import EvaluableGraph

    mdf_graph = _graph(model, graph)
    inputs = {k: validate.trials_array(v, f"input for MDF node {k!r}", allow_empty=True) for k, v in inputs.items()}
    trials = _check_inputs(inputs, input_nodes)
    # The engine prints progress to stdout; keep validation output readable.
    with contextlib.redirect_stdout(io.StringIO()):
        engine = EvaluableGraph(mdf_graph, verbose=False)
    shapes = shapes or {}
    feeds = [(_port(engine, node_id, port_id, "evaluable_inputs"),
              np.asarray(inputs[node_id], float).reshape(trials, *shapes.get(node_id, (-1,))))
             for node_id, port_id in input_nodes.items()]
    reads = {node_id: _port(engine, node_id, port_id, "evaluable_outputs")
             for node_id, port_id in output_nodes.items()}
    results: dict[str, list[np.ndarray]] = {node_id: [] for node_id in output_nodes}
    for t in range(trials):
        for port, values in feeds:
            port.set_input_value(values[t:t + 1] if batched else values[t])
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                engine.evaluate()
            except Exception as e:  # the engine's own failure: a gap of modeci-mdf, not a wrong number
                raise EngineError(f"modeci-mdf's engine could not evaluate MDF node {_failing_node(e)!r}: "
                                  f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                                  ) from None
        for node_id, port in reads.items():
            value = np.asarray(port.curr_value, dtype=np.float64)
            results[node_id].append(value[0] if batched and value.ndim else np.atleast_1d(value))
    return {node_id: np.stack(values) if values else np.empty((0, 0))
            for node_id, values in results.items()}


class EngineError(UnsupportedError, NotImplementedError):
    """modeci-mdf's engine raised while evaluating a model: an mdfx error, and a NotImplementedError
    so that ``mdfx validate`` shows the engine row as skipped with this reason."""


def _failing_node(exc: BaseException) -> str:
    """The id of the engine node whose evaluation raised ``exc`` ("?" if the traceback shows none)."""
    node = "?"
    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if type(owner).__name__ == "EvaluableNode":
            node = str(getattr(owner.node, "id", node))
        tb = tb.tb_next
    return node


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


def run_graph(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Write ``graph`` with :func:`~mdfx.schema.writer.graph_to_mdf` and run it in modeci-mdf's
    engine; ``inputs`` are keyed by graph input, the result by :meth:`Graph.output_names`."""
    from mdfx.schema.writer import graph_ids, graph_to_mdf, mdf_ids

    model = graph_to_mdf(graph)
    if graph.mechanisms is not None:  # one MDF node per mechanism (PsyNeuLink's layout), fed per trial
        net = graph.mechanisms
        ids = mdf_ids([n.name for n in net.nodes])
        out = run(model, {ids[k]: v for k, v in inputs.items()}, {ids[k]: "input" for k in net.inputs},
                  {ids[k]: "output" for k in net.outputs})
        return {k: out[ids[k]] for k in net.outputs}
    refuse_unwritable(graph)
    in_ids, node_ids = graph_ids(graph)
    producer = {n.output: node_id for n, node_id in zip(graph.nodes, node_ids, strict=True)}
    flat = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    out = run(model, {in_ids[k]: v.reshape(len(v), -1) if k in in_ids else v for k, v in flat.items()},
              {in_ids[k]: "input" for k in graph.inputs}, {producer[t]: "output" for t in graph.outputs},
              batched=True, shapes={in_ids[k]: graph.inputs[k] for k in graph.inputs})
    return {t: out[producer[t]] for t in graph.outputs}


def engine_dtype(graph: Graph) -> str:
    """The dtype modeci-mdf's engine computes ``graph`` in (see the module docstring)."""
    standard = graph.mechanisms is not None or all(n.op.startswith("pnl.") for n in graph.nodes)
    return "float64" if standard else "float32"


def refuse_unwritable(graph: Graph) -> None:
    """NotImplementedError naming the first op whose MDF function the engine cannot evaluate as the
    graph means it: an attribute that is not a number (a list, a string) is not written as an
    ``onnx::`` function argument, so the engine would compute something else."""
    for n in graph.nodes:
        if n.op.startswith("pnl."):
            continue
        if "." in n.op:
            raise NotImplementedError(f"node {n.name!r}: op {n.op} is not an onnx:: function modeci-mdf's "
                                      "engine evaluates")
        lists = [k for k, v in n.attrs.items()
                 if v is not None and not (isinstance(v, int | float) and not isinstance(v, bool))]
        if lists:
            raise NotImplementedError(f"node {n.name!r} ({n.op}): attribute {', '.join(lists)} is not a number, "
                                      "which mdfx does not write as an onnx:: function argument for modeci-mdf's "
                                      "engine")


def validation_runner(graph: Graph, dtype: str) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """The ``mdf_engine`` row of ``mdfx validate``: the graph's MDF in modeci-mdf's engine, at the
    one dtype the engine computes it in (NotImplementedError, a skipped row, at the other)."""
    own = engine_dtype(graph)
    if dtype != own:
        raise NotImplementedError(f"modeci-mdf's engine computes this graph in {own} only"
                                  + (" (its onnx:: functions cast float64 to float32)" if own == "float32" else ""))
    if graph.mechanisms is None:
        refuse_unwritable(graph)
    return lambda inputs: run_graph(graph, inputs)
