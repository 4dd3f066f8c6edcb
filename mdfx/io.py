"""``mdfx.load`` / ``mdfx.save``: the façade above composition, by file suffix, always atomically.

``.json`` / ``.yaml`` / ``.yml``: ModECI MDF (our dialect on write; any supported
dialect on read). ``.onnx``: ONNX (export; import with the Import converters).
``.pt`` / ``.pth``: a torch state_dict of the weights, loaded with
``torch.load(weights_only=True)``. A composition built with mechanisms writes its
projections by name (and ``"<node>.bias"`` for biases); a graph brought from
elsewhere (a :class:`~mdfx.composition.graph_model.GraphComposition`) writes its
params under their original names, layouts and dtypes, plus the state it keeps
aside (BatchNorm's ``num_batches_tracked``), so the original torch module loads
the file with ``load_state_dict(..., strict=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mdfx.errors import MdfxError, SchemaError
from mdfx.files import (  # noqa: F401 - the file utilities' public names, as the façade has had them
    MDF_SUFFIXES,
    STATE_DICT_SUFFIXES,
    atomic_write,
    read_data,
    read_state_dict,
    safe_filename,
)
from mdfx.schema.graph import Graph
from mdfx.schema.state_dict import load_state_dict, save_state_dict, state_dict  # noqa: F401 - the façade's names


def to_graph(obj: Any) -> Graph:
    """A Composition, a Graph, an MDF model/dict, or a path -> its Graph (a composition's shares
    its arrays; an imported graph's carries the composition's current training settings)."""
    from mdfx.composition.composition import Composition
    from mdfx.composition.graph_model import GraphComposition

    if isinstance(obj, Graph):
        return obj
    if isinstance(obj, GraphComposition):
        return obj.trained_graph()
    if isinstance(obj, Composition):
        return obj._graph()
    if isinstance(obj, str | Path):
        return read_model(obj)
    from mdfx.schema import reader

    return reader.from_mdf(obj)


def save(obj: Any, path: str | Path, **options: Any) -> Path:
    """Write a composition (or Graph) to ``path``; the suffix picks the format."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":  # through the op graph: compositions and imported graphs alike
        from mdfx.converters.onnx_export import save_onnx

        return save_onnx(to_graph(obj), path, **options)
    model = to_graph(obj)
    if suffix in MDF_SUFFIXES:
        return save_mdf(model, path)
    if suffix in STATE_DICT_SUFFIXES:
        return save_state_dict(model, path)
    raise MdfxError(f"{path}: unknown suffix {suffix!r}; use .json, .yaml, .onnx or .pt")


def save_mdf(graph: Graph, path: str | Path) -> Path:
    """Write ``graph`` as MDF (:func:`~mdfx.schema.writer.graph_to_mdf`), JSON or YAML by suffix."""
    from mdfx.schema import writer

    model = writer.graph_to_mdf(graph)
    data = model.to_dict()
    yaml_out = Path(path).suffix.lower() in (".yaml", ".yml")

    def write(tmp: Path) -> None:
        if yaml_out:
            import yaml

            tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        else:
            tmp.write_text(json.dumps(data, indent=2))

    return atomic_write(path, write)


def read_model(path: str | Path) -> Graph:
    """Read an MDF file as a Graph (with its mechanisms, for PsyNeuLink-style MDF); a malformed
    file raises an mdfx error naming it."""
    suffix = Path(path).suffix.lower()
    if suffix in MDF_SUFFIXES:
        from mdfx.schema import reader

        return reader.from_mdf(path)
    if suffix == ".onnx":
        raise SchemaError(f"{path}: an ONNX file is an op graph, not a PsyNeuLink-shaped network; load it "
                          "with mdfx.load(path)")
    raise SchemaError(f"{path}: cannot load a model from {suffix!r} files; use .json, .yaml or .onnx "
                      "(a .pt state_dict holds weights only: load it into a model with "
                      "composition.load(path=...))")


def load(path: str | Path, learnable: Any = None) -> Any:
    """Read a model file into an AutodiffComposition (or a Composition, if so written); a model
    that is an op graph (ONNX, foreign MDF, a graph mdfx wrote) into a GraphComposition.

    ``learnable`` (ONNX only) says which initializers train: None (the rule in
    :mod:`mdfx.converters.onnx_import`), a list of names, or ``callable(name, array) -> bool``.
    """
    if Path(path).suffix.lower() == ".onnx":
        return load_graph(path, learnable)
    if learnable is not None:
        raise MdfxError(f"{path}: learnable= applies to ONNX files; MDF files say which weights learn")
    return as_composition(read_model(path))


def as_composition(graph: Graph) -> Any:
    """A read graph as what :func:`load` returns: mechanisms and projections for a graph with
    mechanisms (a Composition or AutodiffComposition), else a GraphComposition over it."""
    if graph.mechanisms is None:
        from mdfx.composition.graph_model import GraphComposition

        return GraphComposition(graph)
    from mdfx.composition.build import composition_from_graph

    return composition_from_graph(graph)


def load_graph(path: str | Path, learnable: Any = None) -> Any:
    """An ONNX file as a GraphComposition (see :func:`load`)."""
    try:
        from mdfx.converters.onnx_import import load_onnx
    except ImportError as exc:
        raise MdfxError(f"{path}: ONNX import is not available ({exc})") from None
    from mdfx.composition.graph_model import GraphComposition

    return GraphComposition(load_onnx(path, learnable=learnable))

