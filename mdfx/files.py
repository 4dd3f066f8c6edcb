"""Leaf file utilities: atomic writes, safe names, reading state dicts and data files.

Everything here sits at the bottom of the layers (DESIGN: cli → io / sweep →
composition → runners → converters → schema → ops / expr → files / limits /
errors): it imports only :mod:`mdfx.limits` and :mod:`mdfx.errors` (and torch,
lazily, for state dicts), so any layer may write or read files through it.

* :func:`atomic_write`: temp file + fsync + rename (DESIGN rule 7);
* :func:`safe_filename`: a model's name as a file name that stays in its folder;
* :func:`read_state_dict`: a ``.pt`` file with ``torch.load(weights_only=True)``, checked;
* :func:`read_data`: a ``.json`` / ``.npz`` data file of inputs and targets, checked.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np

from mdfx import limits
from mdfx.errors import DataError, MdfxError, SchemaError, one_line

MDF_SUFFIXES = (".json", ".yaml", ".yml")
STATE_DICT_SUFFIXES = (".pt", ".pth", ".pnl")


#: Temp files are ``.<name>.mdfx-tmp.<pid>.<random>``: the next write to ``<name>``
#: finds those of writers that no longer run (killed mid-write) and removes them.
TMP_MARK = ".mdfx-tmp."


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
    tmp = path.parent / f".{path.name}{TMP_MARK}{os.getpid()}.{secrets.token_hex(4)}"
    # os.open with mode 0o666 (not tempfile.mkstemp's 0o600), so the file gets the
    # user's umask like any other file they write.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def fsync(path: Path) -> None:
    """Flush ``path``'s data to disk."""
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
    prefix = f".{path.name}{TMP_MARK}"
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


def finite(array: np.ndarray, where: str) -> np.ndarray:
    """``array`` (real numbers) as float64, refused with :class:`SchemaError` if it holds NaN or inf."""
    limits.check_elements(array.shape, where)
    out = np.asarray(array, dtype=np.float64)
    if not np.isfinite(out).all():
        bad = np.argwhere(~np.isfinite(out))
        at = f" at {tuple(int(i) for i in bad[0])}" if out.ndim else ""
        raise SchemaError(f"{where} holds NaN or infinite values{at}; a model cannot train from them")
    return out


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A ``.pt`` state_dict as float64 arrays by name, checked: ``torch.load(weights_only=True)``
    (no pickled code runs), a mapping of names to real, finite tensors within :mod:`mdfx.limits`."""
    import torch

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
        out[name] = finite(value.detach().cpu().double().numpy(), f"{path}: {name!r}")
    return out


# --- data files of inputs and targets -----------------------------------------------


def read_data(path: str | Path, nodes: Collection[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, targets) by node name; flat files are split later by node role.

    ``nodes``: the model's node names; a ``.npz`` then has only their members read
    (a large unused member is never inflated), each member's size checked against
    :mod:`mdfx.limits` before it is read.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    limits.check_file_size(path.stat().st_size, path)
    if path.suffix.lower() == ".npz":
        flat = _read_npz(path, nodes)
    elif path.suffix.lower() == ".json":
        try:
            flat = json.loads(path.read_text(encoding="utf-8"))
        except RecursionError:
            raise DataError(f"{path}: not valid JSON: nested too deeply") from None
        except (ValueError, UnicodeError) as exc:
            raise DataError(f"{path}: not valid JSON: {one_line(exc)}") from None
        if not isinstance(flat, dict):
            raise DataError(f"{path}: expected a JSON object keyed by node name")
    else:
        raise DataError(f"{path}: data files are .json or .npz")
    if "inputs" in flat and not isinstance(flat["inputs"], dict):
        raise DataError(f"{path}: 'inputs' must be an object keyed by node name")
    if "inputs" in flat:
        targets = flat.get("targets") or {}
        if not isinstance(targets, dict):
            raise DataError(f"{path}: 'targets' must be an object keyed by node name")
        return dict(flat["inputs"]), dict(targets)
    inputs = {k.split("/", 1)[1]: v for k, v in flat.items() if k.startswith("inputs/")}
    targets = {k.split("/", 1)[1]: v for k, v in flat.items() if k.startswith("targets/")}
    rest = {k: v for k, v in flat.items() if "/" not in k}
    return {**rest, **inputs}, {**rest, **targets}


def _read_npz(path: Path, nodes: Collection[str] | None) -> dict[str, np.ndarray]:
    """The wanted members of a ``.npz``, each checked (declared and inflated size) before reading."""
    import zipfile

    wanted = None if nodes is None else {k for n in nodes for k in (n, f"inputs/{n}", f"targets/{n}")}
    budget = limits.Budget(str(path))
    flat: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if wanted is not None and key not in wanted:
                    continue  # never inflated
                # the member's inflated size, from the zip directory, before inflating it
                budget.take(info.file_size // 8 + 1, f"member {key!r} ({info.file_size} bytes inflated)")
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(member)
                    limits.check_elements(shape, f"{path}: member {key!r}")
                    if dtype.hasobject:
                        raise DataError(f"{path}: member {key!r} holds Python objects; mdfx reads numbers only")
                with archive.open(info) as member:
                    flat[key] = np.lib.format.read_array(member, allow_pickle=False)
    except MdfxError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise DataError(f"{path}: not a readable .npz ({type(exc).__name__}: {one_line(exc)})") from None
    return flat
