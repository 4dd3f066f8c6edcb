"""A graph's weights as a torch state_dict, and back: the one state_dict path.

A composition's graph writes its projections by name and ``"<node>.bias"``
(float64); a graph imported from torch writes exactly the module's keys
(:attr:`~mdfx.schema.graph.Graph.state_dict_keys`, tied tensors under each of
their names) with the state it keeps aside (:attr:`~mdfx.schema.graph.Graph.extra_state`),
so the original module loads the file with ``load_state_dict(..., strict=True)``.
Reading a file is :func:`mdfx.files.read_state_dict` (``torch.load(weights_only=True)``,
checked); writing is atomic (:func:`mdfx.files.atomic_write`). torch is imported
when a state_dict is made, not with this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mdfx.errors import MdfxError
from mdfx.files import atomic_write, read_state_dict
from mdfx.schema.graph import Graph


def state_dict(graph: Graph) -> dict[str, Any]:
    """The weights as torch tensors: every param under its own name, in its source dtype.

    A composition's graph: its projections by name and ``"<node>.bias"`` (float64).
    A graph imported from torch writes exactly the module's state_dict keys
    (:attr:`Graph.state_dict_keys`, tied tensors under each of their names) with the
    state it keeps aside (:attr:`Graph.extra_state`).
    """
    import torch

    return {k: torch.from_numpy(np.array(v, copy=True)) for k, v in _state_arrays(graph).items()}


def _state_arrays(g: Graph) -> dict[str, np.ndarray]:
    """A graph's state_dict as numpy arrays in their source dtypes (see :func:`state_dict`)."""
    keys = g.state_dict_keys if g.state_dict_keys is not None else {k: k for k in g.params}
    out: dict[str, np.ndarray] = {}
    for key, pname in keys.items():
        if pname:
            p = g.params[pname]
            out[key] = p.value.astype(p.dtype)
        else:
            out[key] = np.asarray(g.extra_state[key])
    for entry in g.torch_recurrent:
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


def save_state_dict(graph: Graph, path: str | Path) -> Path:
    import io

    import torch

    # Serialised in memory first: torch's own file writer reports a full disk as a bare
    # RuntimeError; a plain write raises the OSError (ENOSPC / EFBIG) that names the problem.
    buffer = io.BytesIO()
    torch.save(state_dict(graph), buffer)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def load_state_dict(g: Graph, path: str | Path) -> None:
    """Load weights into ``g``'s param arrays in place (the arrays stay the user's); names and
    shapes must match exactly."""
    path = Path(path)
    if not path.is_file():
        raise MdfxError(f"{path}: no such file")
    sd = read_state_dict(path)
    where = str(path)
    keys = g.state_dict_keys if g.state_dict_keys is not None else {k: k for k in g.params}
    targets = {k: (g.params[p].value if p else np.asarray(g.extra_state[k])) for k, p in keys.items()}
    missing = sorted(set(targets) - set(sd))
    extra = sorted(set(sd) - set(targets))
    if missing or extra:
        raise MdfxError(f"{where}: state_dict does not fit {g.name!r}: missing {missing or 'none'}, "
                        f"unexpected {extra or 'none'}")
    for key, arr in targets.items():
        shape = tuple(sd[key].shape)
        if shape != arr.shape:
            raise MdfxError(f"{where}: {key!r} has shape {shape} in the file but {arr.shape} in {g.name!r}")
    for key, pname in keys.items():
        value = np.asarray(sd[key])
        if pname:
            g.params[pname].value[...] = value.astype(np.float64)
        else:  # kept in the dtype the graph has for it (an int64 counter stays int64)
            g.extra_state[key] = value.astype(np.asarray(g.extra_state[key]).dtype)
