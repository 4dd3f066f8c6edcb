"""The one parser (DESIGN rule 2): MDF in any supported dialect -> a ``Graph``.

PsyNeuLink's dialects (0.21 and 0.9) and compositions mdfx wrote give a graph
with its mechanisms (:attr:`~mdfx.schema.graph.Graph.mechanisms`; it becomes a
composition of mechanisms); everything else (pure MDF, ``onnx::`` ops, Keras, pytorch_to_mdf,
op graphs mdfx wrote) gives an op :class:`~mdfx.schema.graph.Graph` that keeps
the file's parametrisation (it becomes a GraphComposition).

Reads a ``modeci_mdf.mdf.Model``, a dict in modeci-mdf's ``to_dict()`` shape, or
a ``.json``/``.yaml`` file. Each dialect is one module in
:mod:`mdfx.schema.dialects`; the first whose ``detect`` accepts the graph reads it.
Features outside feed-forward networks are refused with an error naming the
feature and the node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mdfx import limits
from mdfx.errors import LimitError, MdfxError, SchemaError, UnsupportedError, one_line, reading
from mdfx.schema import validate
from mdfx.schema.dialects import mdfx as mdfx_dialect
from mdfx.schema.dialects import modeci, pnl_v01, psyneulink
from mdfx.schema.graph import Graph

#: Dialects in the order they are tried.
DIALECTS: list[Any] = [mdfx_dialect, psyneulink, pnl_v01, modeci]


def register_dialect(module: Any, first: bool = False) -> None:
    """Add a dialect module (``detect``, ``read``); used by the import converters."""
    if module not in DIALECTS:
        DIALECTS.insert(0 if first else len(DIALECTS), module)


def read_file(path: str | Path) -> dict[str, Any]:
    """A JSON or YAML MDF file as a plain dict (no code from the file is run).

    Refused before they are expanded: files over ``max_file_bytes``, YAML with more
    alias uses than ``max_yaml_aliases`` or more nodes after expansion than
    ``max_yaml_nodes`` (the billion-laughs bomb), nesting too deep for the parser.
    """
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"{path}: no such file")
    limits.check_file_size(path.stat().st_size, path)
    kind = "YAML" if path.suffix.lower() in (".yaml", ".yml") else "JSON"
    try:
        text = path.read_text(encoding="utf-8")
        data = _load_yaml(text, path) if kind == "YAML" else json.loads(text)
    except MdfxError:
        raise
    except RecursionError:
        raise SchemaError(f"{path}: not valid {kind}: nested too deeply to parse") from None
    except Exception as exc:  # json's ValueError, yaml's YAMLError, a bad encoding
        raise SchemaError(f"{path}: not valid {kind}: {one_line(exc)}") from None
    if not isinstance(data, dict) or len(data) != 1 or not isinstance(next(iter(data.values())), dict):
        raise SchemaError(f"{path}: an MDF file holds one model: {{model_id: {{...}}}}")
    return data


def _load_yaml(text: str, path: Path) -> Any:
    """``yaml.safe_load`` with alias and expansion limits checked before anything is built."""
    import yaml

    lim = limits.current()

    class Loader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                Loader.aliases += 1
                if Loader.aliases > lim.max_yaml_aliases:
                    raise LimitError(f"{path}: more than {lim.max_yaml_aliases} YAML alias uses; "
                                     "raise it with mdfx.limits.set(max_yaml_aliases=...)")
            return super().compose_node(parent, index)

    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_nodes(node, lim.max_yaml_nodes)
        if expanded > lim.max_yaml_nodes:
            raise LimitError(f"{path}: the YAML expands to more than {lim.max_yaml_nodes} values through "
                             "its aliases; raise it with mdfx.limits.set(max_yaml_nodes=...)")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_nodes(root: Any, cap: int) -> int:
    """How many values the YAML node graph expands to, counting each alias use in full.

    Shared (aliased) nodes are counted once per use via memoised totals, without
    building anything; a node that contains itself expands without bound.
    """
    total: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    visiting: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in total:
            continue
        children = _children(node)
        if done:
            visiting.discard(key)
            total[key] = min(cap + 1, 1 + sum(total[id(c)] for c in children))
            continue
        if key in visiting:
            return cap + 1  # a recursive alias
        visiting.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in total)
    return total[id(root)]


def _children(node: Any) -> list[Any]:
    value = node.value
    if isinstance(value, list):
        return [x for item in value for x in (item if isinstance(item, tuple) else (item,))]
    return []


def as_dict(model: Any) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    if isinstance(model, str | Path):
        return read_file(model)
    if hasattr(model, "to_dict"):
        return model.to_dict()
    raise SchemaError(f"cannot read {type(model).__name__} as MDF")


def from_mdf(model: Any) -> Graph:
    """Any supported MDF (object, dict or path) -> a validated ``Graph`` (see above).

    Fails closed: whatever is malformed raises a :class:`~mdfx.errors.SchemaError`
    naming the file (or model) and the node or field; NaN/inf weights and
    parameters, fractional sizes and sizes over :mod:`mdfx.limits` are refused.
    """
    source = str(model) if isinstance(model, str | Path) else None
    data = as_dict(model)
    if source is None:
        source = f"MDF model {one_line(next(iter(data), '?'), 80)!r}" if isinstance(data, dict) and data \
            else "MDF model"
    # Overflow while a dialect folds constants is not a warning to show: a non-finite
    # weight or parameter that results is refused by the value checks below, naming it.
    with reading(source), np.errstate(all="ignore"):
        graph = _from_dict(data)
        if graph.mechanisms is not None:
            validate.network_values(graph, source)
        else:
            _graph_values(graph, source)
    return graph


def _graph_values(g: Graph, source: str) -> None:
    """A loaded op graph's params finite and its sizes within :mod:`mdfx.limits` (the graph
    builder checked its structure and shapes)."""
    budget = limits.Budget(source)
    limits.check_count(len(g.nodes) + len(g.params), f"{source}: ops and params")
    for name, shape in g.inputs.items():
        budget.take(shape, f"input {name!r}")
    for name, p in g.params.items():
        budget.take(p.shape, f"param {name!r}")
        validate.weights(p.value, f"{source}: param {name!r}")
    for node in g.nodes:  # x / 0 is inf: no silent inf outputs (the ONNX import refuses it too)
        divisor = g.params.get(node.inputs[1]) if node.op == "Div" and len(node.inputs) > 1 else None
        if divisor is not None and divisor.value.dtype.kind == "f" and np.any(divisor.value == 0):
            raise UnsupportedError(f"{source}: node {node.name!r} (Div): the constant divisor {divisor.name!r} "
                                   "holds zero or NaN; dividing by it gives inf/NaN outputs")


def _from_dict(data: Any) -> Graph:
    if not isinstance(data, dict) or len(data) != 1 or not isinstance(next(iter(data.values())), dict):
        raise SchemaError("an MDF model is one {model_id: {...}} mapping")
    model_id, body = next(iter(data.items()))
    graphs = body.get("graphs") or {}
    if not isinstance(graphs, dict):
        raise SchemaError(f"model {model_id!r}: 'graphs' is a {type(graphs).__name__}, not a mapping")
    if len(graphs) != 1:
        raise UnsupportedError(f"model {model_id!r} has {len(graphs)} graphs; mdfx reads models with one graph")
    graph = next(iter(graphs.values()))
    if not isinstance(graph, dict):
        raise SchemaError(f"model {model_id!r}: its graph is a {type(graph).__name__}, not a mapping")
    limits.check_count(len(graph.get("nodes") or {}) + len(graph.get("edges") or {}),
                       f"model {model_id!r}: nodes and edges")
    for dialect in DIALECTS:
        if dialect.detect(data, graph):
            return dialect.read(data, graph)
    check_feed_forward(graph)
    raise UnsupportedError(
        f"model {model_id!r}: not a dialect mdfx reads (tried: "
        f"{', '.join(d.__name__.rsplit('.', 1)[-1] for d in DIALECTS)})"
    )


def check_feed_forward(graph: dict[str, Any]) -> None:
    """Refuse constructs outside feed-forward networks, naming the feature and the node."""
    if graph.get("conditions"):
        raise UnsupportedError("graph has scheduler conditions; mdfx supports feed-forward networks only")
    for node_id, node in (graph.get("nodes") or {}).items():
        for pid, param in (node.get("parameters") or {}).items():
            if not isinstance(param, dict):
                continue
            if param.get("time_derivative") is not None:
                raise UnsupportedError(f"node {node_id!r}: parameter {pid!r} has a time derivative "
                                       "(a stateful, time-stepped node); mdfx supports feed-forward networks only")
            if param.get("default_initial_value") is not None:
                raise UnsupportedError(f"node {node_id!r}: parameter {pid!r} is stateful "
                                       "(default_initial_value); mdfx supports feed-forward networks only")
            if param.get("conditions"):
                raise UnsupportedError(f"node {node_id!r}: parameter {pid!r} has conditions; "
                                       "mdfx supports feed-forward networks only")
        for fid, fn in {**(node.get("functions") or {}), **(node.get("parameters") or {})}.items():
            name = fn.get("function") if isinstance(fn, dict) else None
            if isinstance(name, dict):
                name = next(iter(name), None)
            if isinstance(name, str) and any(name.endswith(k) for k in ("::Loop", "::If", "::Scan")):
                raise UnsupportedError(f"node {node_id!r}: {fid!r} uses {name}; control flow is not supported "
                                       "(mdfx runs feed-forward networks)")
