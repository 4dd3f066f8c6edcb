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
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mdfx import limits
from mdfx.errors import MdfxError, SchemaError, one_line
from mdfx.schema.graph import Graph
from mdfx.schema.net import Net

MDF_SUFFIXES = (".json", ".yaml", ".yml")
STATE_DICT_SUFFIXES = (".pt", ".pth", ".pnl")


#: Temp files are ``.<name>.mdfx-tmp.<pid>.<random>``: the next write to ``<name>``
#: finds those of writers that no longer run (killed mid-write) and removes them.
_TMP_MARK = ".mdfx-tmp."


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``path``, then rename it into place, durably.

    * a failure (or ``kill -9``) leaves either the old complete ``path`` or the new
      complete one, never a partial file;
    * the file, then its directory, are fsynced, so the rename survives a power cut;
    * each writer has its own temp file and ``os.replace`` is atomic, so concurrent
      writers to one path never interleave (the last rename wins);
    * temp files left by killed writers of the same path are removed first;
    * the file mode follows the umask (``0o666 & ~umask``), like any file the user writes.

    The directory must exist (the error names it).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise MdfxError(f"cannot write {str(path)!r}: directory {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise MdfxError(f"cannot write {str(path)!r}: it is a directory")
    _remove_stale_temps(path)
    tmp = path.parent / f".{path.name}{_TMP_MARK}{os.getpid()}.{secrets.token_hex(4)}"
    # os.open with mode 0o666 (not tempfile.mkstemp's 0o600), so the file gets the
    # user's umask like any other file they write.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform without directory handles: the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temps(path: Path) -> None:
    """Remove ``path``'s temp files whose writer process is gone (a ``kill -9`` mid-save)."""
    prefix = f".{path.name}{_TMP_MARK}"
    try:
        entries = [e for e in os.scandir(path.parent) if e.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        pid_text = entry.name[len(prefix):].split(".", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            try:
                if entry.is_dir(follow_symlinks=False):  # an ONNX external-data scratch folder
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass  # another writer removed it first


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # our own: a concurrent write from another thread
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists but is another user's (or an odd name): leave it alone
    return True


def safe_filename(name: str, default: str = "model") -> str:
    """A model's name as a file name that stays in its folder: no separators, no ``..``,
    no leading dot, no control characters (a file named ``../../x`` or ``/abs/p``)."""
    cleaned = re.sub(r"[^\w.\-]", "_", str(name)).lstrip(".")
    return cleaned or default


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
    if suffix == ".onnx":  # through the op graph: compositions, imported graphs and Nets alike
        from mdfx.converters.onnx_export import save_onnx

        return save_onnx(obj, path, **options)
    model = to_net(obj)
    if suffix in MDF_SUFFIXES:
        return save_mdf(model, path)
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
    """Read any supported file: a Net (PsyNeuLink-style MDF) or a Graph (everything else); a malformed
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
    model = load_net(path)
    if isinstance(model, Graph):
        from mdfx.composition.graph_model import GraphComposition

        return GraphComposition(model)
    from mdfx.composition.build import composition_from_net

    return composition_from_net(model)


def load_graph(path: str | Path, learnable: Any = None) -> Any:
    """An ONNX file as a GraphComposition (see :func:`load`)."""
    try:
        from mdfx.converters.onnx_import import load_onnx
    except ImportError as exc:
        raise MdfxError(f"{path}: ONNX import is not available ({exc})") from None
    from mdfx.composition.graph_model import GraphComposition

    return GraphComposition(load_onnx(path, learnable=learnable))


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
    for entry in g.meta.get("torch_recurrent") or ():
        out.update(_torch_rnn_state(g, entry))
    return out


#: torch's gate blocks of each recurrent op in ONNX's order (LSTM i f g o -> i o f c, GRU r z n -> z r h)
_TORCH_GATES = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}


def _torch_rnn_state(g: Graph, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    """An ONNX LSTM/GRU/RNN layer's W, R, B as the torch module's weight_ih_l<k>, ... (see the importer)."""
    order = _TORCH_GATES[entry["op"]]
    W, R, B = (g.params[entry[k]] for k in ("W", "R", "B"))
    gates = len(order)
    hidden = W.value.shape[1] // gates

    def torch_order(a: np.ndarray) -> np.ndarray:
        blocks = np.split(a, gates, axis=0)
        return np.concatenate([blocks[order.index(b)] for b in range(gates)], axis=0)

    out = {}
    for d in range(W.value.shape[0]):
        suffix = f"_l{entry['layer']}" + ("_reverse" if d else "")
        base = f"{entry['module']}."
        out[f"{base}weight_ih{suffix}"] = torch_order(W.value[d]).astype(W.dtype)
        out[f"{base}weight_hh{suffix}"] = torch_order(R.value[d]).astype(R.dtype)
        out[f"{base}bias_ih{suffix}"] = torch_order(B.value[d][:gates * hidden]).astype(B.dtype)
        out[f"{base}bias_hh{suffix}"] = torch_order(B.value[d][gates * hidden:]).astype(B.dtype)
    return out


def save_state_dict(model: Net | Graph, path: str | Path) -> Path:
    import io

    import torch

    # Serialised in memory first: torch's own file writer reports a full disk as a bare
    # RuntimeError; a plain write raises the OSError (ENOSPC / EFBIG) that names the problem.
    buffer = io.BytesIO()
    torch.save(state_dict(model), buffer)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def load_state_dict(model: Net | Graph, path: str | Path) -> None:
    """Load weights into ``model`` in place; names and shapes must match exactly."""
    path = Path(path)
    if not path.is_file():
        raise MdfxError(f"{path}: no such file")
    sd = read_state_dict(path)
    if isinstance(model, Graph):
        _load_graph_state(model, sd, str(path))
        return
    targets: dict[str, np.ndarray] = {p.name: p.matrix for p in model.projections}
    targets.update({f"{n.name}.bias": n.bias for n in model.nodes if n.bias is not None})
    _fit(targets, sd, model.name, str(path))
    for name, arr in targets.items():
        arr[...] = sd[name]


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
        value = np.asarray(sd[key])
        if pname:
            g.params[pname].value[...] = value.astype(np.float64)
        else:  # kept in the dtype the graph has for it (an int64 counter stays int64)
            extra[key] = value.astype(np.asarray(extra[key]).dtype)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A ``.pt`` state_dict as float64 arrays by name, checked: ``torch.load(weights_only=True)``
    (no pickled code runs), a mapping of names to real, finite tensors within :mod:`mdfx.limits`."""
    import torch

    from mdfx.schema import validate

    path = Path(path)
    limits.check_file_size(path.stat().st_size, path)
    try:
        sd = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises several types for a bad or unsafe file
        raise SchemaError(f"{path}: not a loadable state_dict ({type(exc).__name__}: {one_line(exc)})") from None
    if not isinstance(sd, dict):
        raise SchemaError(f"{path}: holds a {type(sd).__name__}, not a state_dict (a dict of tensors)")
    out: dict[str, np.ndarray] = {}
    budget = limits.Budget(str(path))
    for name, value in sd.items():
        if not isinstance(name, str):
            raise SchemaError(f"{path}: state_dict key {name!r:.60} is not a string")
        if not isinstance(value, torch.Tensor):
            raise SchemaError(f"{path}: {name!r} is a {type(value).__name__}, not a tensor")
        if value.is_complex():
            raise SchemaError(f"{path}: {name!r} holds complex numbers ({value.dtype}); weights are real")
        if not (value.is_floating_point() or value.dtype in (torch.int8, torch.int16, torch.int32,
                                                              torch.int64, torch.uint8, torch.bool)):
            raise SchemaError(f"{path}: {name!r} has dtype {value.dtype}; weights are real numbers")
        budget.take(tuple(value.shape), repr(name))
        out[name] = validate.weights(value.detach().cpu().double().numpy(), f"{path}: {name!r}")
    return out
