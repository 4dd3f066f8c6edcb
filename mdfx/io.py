"""Saving and loading by file suffix, always atomically (DESIGN rule 7).

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
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mdfx.errors import MdfxError, SchemaError
from mdfx.schema.graph import Graph
from mdfx.schema.net import Net

MDF_SUFFIXES = (".json", ".yaml", ".yml")
STATE_DICT_SUFFIXES = (".pt", ".pth", ".pnl")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``path``, then rename it into place.

    A failure leaves neither a partial ``path`` nor the temp file, and an existing
    ``path`` untouched. The directory must exist (the error names it).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise MdfxError(f"cannot write {str(path)!r}: directory {str(path.parent)!r} does not exist")
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    # os.open with mode 0o666 (not tempfile.mkstemp's 0o600), so the file gets the
    # user's umask like any other file they write.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def to_net(obj: Any) -> Net | Graph:
    """A Composition, a Net, a Graph, an MDF model/dict, or a path -> its Net (a Graph where the
    model is an op graph: a GraphComposition, or foreign MDF / ONNX / torch)."""
    from mdfx.composition.composition import Composition

    if isinstance(obj, Net | Graph):
        return obj
    graph = getattr(obj, "graph", None)
    if isinstance(graph, Graph):  # a GraphComposition: its graph, with its current training settings
        return with_training(graph, obj)
    if isinstance(obj, Composition):
        return obj._net()
    if isinstance(obj, str | Path):
        return load_net(obj)
    from mdfx.schema import reader

    return reader.from_mdf(obj)


def with_training(graph: Graph, comp: Any) -> Graph:
    """``graph`` (sharing its arrays) with ``comp``'s loss, optimizer and rates in its meta, so a
    saved file keeps them."""
    from dataclasses import replace

    from mdfx.composition.autodiff import AutodiffComposition

    return replace(graph, meta={**graph.meta, "training": AutodiffComposition._training_spec(comp)})


def save(obj: Any, path: str | Path, **options: Any) -> Path:
    """Write a composition (or Net, or Graph) to ``path``; the suffix picks the format."""
    suffix = Path(path).suffix.lower()
    model = to_net(obj)
    if suffix in MDF_SUFFIXES:
        return save_mdf(model, path)
    if suffix == ".onnx":
        from mdfx.converters.onnx_export import save_onnx

        return save_onnx(model, path, **options)
    if suffix in STATE_DICT_SUFFIXES:
        return save_state_dict(model, path)
    raise MdfxError(f"{path}: unknown suffix {suffix!r}; use .json, .yaml, .onnx or .pt")


def save_mdf(net: Net | Graph, path: str | Path) -> Path:
    from mdfx.schema import writer

    model = writer.to_mdf(net)
    data = model.to_dict()
    yaml_out = Path(path).suffix.lower() in (".yaml", ".yml")

    def write(tmp: Path) -> None:
        if yaml_out:
            import yaml

            tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        else:
            tmp.write_text(json.dumps(data, indent=2))

    return atomic_write(path, write)


def load_net(path: str | Path) -> Net | Graph:
    """Read any supported file: a Net (PsyNeuLink-style MDF) or a Graph (everything else)."""
    suffix = Path(path).suffix.lower()
    if suffix in MDF_SUFFIXES:
        from mdfx.schema import reader

        return reader.from_mdf(reader.read_file(path))
    if suffix == ".onnx":
        try:
            from mdfx.converters.onnx_import import load_onnx
        except ImportError as exc:
            raise MdfxError(f"{path}: ONNX import is not available ({exc})") from None
        return load_onnx(path)
    raise SchemaError(f"{path}: cannot load a model from {suffix!r} files; use .json, .yaml or .onnx "
                      "(a .pt state_dict holds weights only: load it into a model with "
                      "composition.load(path=...))")


def load(path: str | Path) -> Any:
    """Read a model file into an AutodiffComposition (or a Composition, if so written); a model
    that is an op graph (foreign MDF, ONNX, a graph mdfx wrote) into a GraphComposition."""
    model = load_net(path)
    if isinstance(model, Graph):
        from mdfx.composition.graph_model import GraphComposition

        return GraphComposition(model)
    from mdfx.composition.build import composition_from_net

    return composition_from_net(model)


# --- torch state_dicts --------------------------------------------------------------------


def state_dict(model: Net | Graph) -> dict[str, Any]:
    """The weights as torch tensors.

    A Net: keyed by projection name and ``"<node>.bias"`` (float64). A Graph: every
    param under its own name, in its source dtype; a graph imported from torch
    writes exactly the module's state_dict keys (``meta["state_dict_keys"]``, tied
    tensors under each of their names) with the state it keeps aside
    (``meta["extra_state"]``).
    """
    import torch

    if isinstance(model, Graph):
        arrays = _state_arrays(model)
        return {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays.items()}
    out = {p.name: torch.from_numpy(p.matrix.copy()) for p in model.projections}
    out.update({f"{n.name}.bias": torch.from_numpy(n.bias.copy()) for n in model.nodes if n.bias is not None})
    return out


def _state_arrays(g: Graph) -> dict[str, np.ndarray]:
    """A graph's state_dict as numpy arrays in their source dtypes (see :func:`state_dict`)."""
    keys: dict[str, str] = g.meta.get("state_dict_keys") or {k: k for k in g.params}
    extra: dict[str, Any] = g.meta.get("extra_state") or {}
    out: dict[str, np.ndarray] = {}
    for key, pname in keys.items():
        if pname:
            p = g.params[pname]
            out[key] = p.value.astype(p.dtype)
        else:
            out[key] = np.asarray(extra[key])
    return out


def save_state_dict(model: Net | Graph, path: str | Path) -> Path:
    import torch

    sd = state_dict(model)
    return atomic_write(path, lambda tmp: torch.save(sd, tmp))


def load_state_dict(model: Net | Graph, path: str | Path) -> None:
    """Load weights into ``model`` in place; names and shapes must match exactly."""
    import torch

    path = Path(path)
    if not path.exists():
        raise MdfxError(f"{path}: no such file")
    try:
        sd = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises several types for a bad or unsafe file
        raise MdfxError(f"{path}: not a loadable state_dict ({type(exc).__name__}: {exc})") from None
    if not isinstance(sd, dict):
        raise MdfxError(f"{path}: holds a {type(sd).__name__}, not a state_dict")
    if isinstance(model, Graph):
        _load_graph_state(model, sd, str(path))
        return
    targets: dict[str, np.ndarray] = {p.name: p.matrix for p in model.projections}
    targets.update({f"{n.name}.bias": n.bias for n in model.nodes if n.bias is not None})
    _fit(targets, sd, model.name, str(path))
    for name, arr in targets.items():
        arr[...] = sd[name].detach().cpu().numpy().astype(np.float64)


def _fit(targets: dict[str, np.ndarray], sd: dict[str, Any], name: str, where: str) -> None:
    missing = sorted(set(targets) - set(sd))
    extra = sorted(set(sd) - set(targets))
    if missing or extra:
        raise MdfxError(f"{where}: state_dict does not fit {name!r}: missing {missing or 'none'}, "
                        f"unexpected {extra or 'none'}")
    for key, arr in targets.items():
        shape = tuple(sd[key].shape)
        if shape != arr.shape:
            raise MdfxError(f"{where}: {key!r} has shape {shape} in the file but {arr.shape} in {name!r}")


def _load_graph_state(g: Graph, sd: dict[str, Any], where: str) -> None:
    """A state_dict into a graph's param arrays, in place (the arrays stay the user's)."""
    keys: dict[str, str] = g.meta.get("state_dict_keys") or {k: k for k in g.params}
    extra: dict[str, Any] = g.meta.get("extra_state") or {}
    targets = {k: (g.params[p].value if p else np.asarray(extra[k])) for k, p in keys.items()}
    _fit(targets, sd, g.name, where)
    for key, pname in keys.items():
        value = np.asarray(sd[key].detach().cpu().numpy() if hasattr(sd[key], "detach") else sd[key])
        if pname:
            g.params[pname].value[...] = value.astype(np.float64)
        else:  # kept in the dtype the graph has for it (an int64 counter stays int64)
            extra[key] = value.astype(np.asarray(extra[key]).dtype)
