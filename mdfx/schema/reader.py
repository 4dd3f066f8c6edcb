"""The one parser (DESIGN rule 2): MDF in any supported dialect -> ``Net`` or ``Graph``.

PsyNeuLink's dialects (0.21 and 0.9) and compositions mdfx wrote give a
PsyNeuLink-shaped :class:`~mdfx.schema.net.Net` (it becomes a composition of
mechanisms); everything else (pure MDF, ``onnx::`` ops, Keras, pytorch_to_mdf,
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

from mdfx.errors import SchemaError, UnsupportedError
from mdfx.schema.dialects import mdfx as mdfx_dialect
from mdfx.schema.dialects import modeci, pnl_v01, psyneulink
from mdfx.schema.graph import Graph
from mdfx.schema.net import Net

#: Dialects in the order they are tried.
DIALECTS: list[Any] = [mdfx_dialect, psyneulink, pnl_v01, modeci]


def register_dialect(module: Any, first: bool = False) -> None:
    """Add a dialect module (``detect``, ``read``); used by the import converters."""
    if module not in DIALECTS:
        DIALECTS.insert(0 if first else len(DIALECTS), module)


def read_file(path: str | Path) -> dict[str, Any]:
    """A JSON or YAML MDF file as a plain dict (no code from the file is run)."""
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path}: no such file")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (ValueError, Exception) as exc:  # yaml raises its own YAMLError
        raise SchemaError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}") from None
    if not isinstance(data, dict) or len(data) != 1 or not isinstance(next(iter(data.values())), dict):
        raise SchemaError(f"{path}: an MDF file holds one model: {{model_id: {{...}}}}")
    return data


def as_dict(model: Any) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    if isinstance(model, str | Path):
        return read_file(model)
    if hasattr(model, "to_dict"):
        return model.to_dict()
    raise SchemaError(f"cannot read {type(model).__name__} as MDF")


def from_mdf(model: Any) -> Net | Graph:
    """Any supported MDF (object, dict or path) -> a validated ``Net`` or ``Graph`` (see above)."""
    data = as_dict(model)
    model_id, body = next(iter(data.items()))
    graphs = body.get("graphs") or {}
    if len(graphs) != 1:
        raise UnsupportedError(f"model {model_id!r} has {len(graphs)} graphs; mdfx reads models with one graph")
    graph = next(iter(graphs.values()))
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
            if isinstance(name, str) and any(k in name for k in ("Conv", "Pool", "Loop", "If")):
                raise UnsupportedError(f"node {node_id!r}: {fid!r} uses {name}; convolutions, pooling "
                                       "and control flow are not supported")
