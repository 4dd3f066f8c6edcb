"""Saving and loading by file suffix, always atomically (DESIGN rule 7).

``.json`` / ``.yaml`` / ``.yml``: ModECI MDF (our dialect on write; any supported
dialect on read). ``.onnx``: ONNX (export; import with the Import converters).
``.pt`` / ``.pth``: a torch state_dict of the weights, keyed by projection name
(and ``"<node>.bias"`` for biases), loaded with ``torch.load(weights_only=True)``.
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


def to_net(obj: Any) -> Net:
    """A Composition, a Net, an MDF model/dict, or a path -> Net."""
    from mdfx.composition.composition import Composition

    if isinstance(obj, Net):
        return obj
    if isinstance(obj, Composition):
        return obj._net()
    if isinstance(obj, str | Path):
        return load_net(obj)
    from mdfx.schema import reader

    return reader.from_mdf(obj)


def save(obj: Any, path: str | Path, **options: Any) -> Path:
    """Write a composition (or Net) to ``path``; the suffix picks the format."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":  # through the op graph: compositions, imported graphs and Nets alike
        from mdfx.converters.onnx_export import save_onnx

        return save_onnx(obj, path, **options)
    net = to_net(obj)
    if suffix in MDF_SUFFIXES:
        return save_mdf(net, path)
    if suffix in STATE_DICT_SUFFIXES:
        return save_state_dict(net, path)
    raise MdfxError(f"{path}: unknown suffix {suffix!r}; use .json, .yaml, .onnx or .pt")


def save_mdf(net: Net, path: str | Path) -> Path:
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


def load_net(path: str | Path) -> Net:
    """Read any supported file into a Net."""
    suffix = Path(path).suffix.lower()
    if suffix in MDF_SUFFIXES:
        from mdfx.schema import reader

        return reader.from_mdf(reader.read_file(path))
    if suffix == ".onnx":
        raise SchemaError(f"{path}: an ONNX file is an op graph, not a PsyNeuLink-shaped network; load it "
                          "with mdfx.load(path)")
    raise SchemaError(f"{path}: cannot load a model from {suffix!r} files; use .json, .yaml or .onnx "
                      "(a .pt state_dict holds weights only: load it into a model with "
                      "composition.load(path=...))")


def load(path: str | Path, learnable: Any = None) -> Any:
    """Read a model file into an AutodiffComposition (or a Composition, if so written).

    An ONNX file becomes a :class:`~mdfx.composition.graph_model.GraphComposition`
    over its op graph; ``learnable`` (ONNX only) says which initializers train:
    None (the rule in :mod:`mdfx.converters.onnx_import`), a list of names, or
    ``callable(name, array) -> bool``.
    """
    if Path(path).suffix.lower() == ".onnx":
        return load_graph(path, learnable)
    if learnable is not None:
        raise MdfxError(f"{path}: learnable= applies to ONNX files; MDF files say which weights learn")
    from mdfx.composition.build import composition_from_net

    return composition_from_net(load_net(path))


def load_graph(path: str | Path, learnable: Any = None) -> Any:
    """An ONNX file as a GraphComposition (see :func:`load`)."""
    try:
        from mdfx.converters.onnx_import import load_onnx
    except ImportError as exc:
        raise MdfxError(f"{path}: ONNX import is not available ({exc})") from None
    from mdfx.composition.graph_model import GraphComposition

    return GraphComposition(load_onnx(path, learnable=learnable))


def state_dict(net: Net) -> dict[str, Any]:
    """The learnable-or-not weights as torch tensors keyed by projection name and "<node>.bias"."""
    import torch

    out = {p.name: torch.from_numpy(p.matrix.copy()) for p in net.projections}
    out.update({f"{n.name}.bias": torch.from_numpy(n.bias.copy()) for n in net.nodes if n.bias is not None})
    return out


def save_state_dict(net: Net, path: str | Path) -> Path:
    import torch

    sd = state_dict(net)
    return atomic_write(path, lambda tmp: torch.save(sd, tmp))


def load_state_dict(net: Net, path: str | Path) -> None:
    """Load weights into ``net`` in place; names and shapes must match exactly."""
    import torch

    path = Path(path)
    if not path.exists():
        raise MdfxError(f"{path}: no such file")
    try:
        sd = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises several types for a bad or unsafe file
        raise MdfxError(f"{path}: not a loadable state_dict ({type(exc).__name__}: {exc})") from None
    targets: dict[str, np.ndarray] = {p.name: p.matrix for p in net.projections}
    targets.update({f"{n.name}.bias": n.bias for n in net.nodes if n.bias is not None})
    missing = sorted(set(targets) - set(sd))
    extra = sorted(set(sd) - set(targets))
    if missing or extra:
        raise MdfxError(f"{path}: state_dict does not fit {net.name!r}: missing {missing or 'none'}, "
                        f"unexpected {extra or 'none'}")
    for name, arr in targets.items():
        value = sd[name].detach().cpu().numpy()
        if value.shape != arr.shape:
            raise MdfxError(f"{path}: {name!r} has shape {tuple(value.shape)} in the file but "
                            f"{arr.shape} in {net.name!r}")
        arr[...] = value.astype(np.float64)
