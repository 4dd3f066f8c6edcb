"""Run an ONNX model in onnxruntime on a batch of trials.

Inputs and outputs are dicts of ``(trials, size)`` arrays. Models written by
:mod:`mdfx.converters.onnx_export` record which Net node each graph input and
output belongs to; with that record the arrays are keyed by Net node names
(graph names are accepted for inputs too), otherwise by the graph's names.

onnxruntime is imported inside the functions (DESIGN rule 5).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mdfx.errors import DataError, SchemaError

#: Kept equal to the keys in :mod:`mdfx.converters.onnx_export` (checked by a test);
#: repeated here so running a model needs onnxruntime only, not the onnx package.
INPUT_NAMES_KEY = "mdfx.inputs"
OUTPUT_NAMES_KEY = "mdfx.outputs"

_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


@dataclass(frozen=True)
class _Port:
    onnx_name: str
    name: str  #: the Net node name, or the ONNX name when the model has no record
    dtype: type[np.floating]
    width: int | str | None  #: the last dimension: an int, a symbolic name, or unknown


class OrtModel:
    """An onnxruntime session plus the names and dtypes of its inputs and outputs.

    Build it once with :func:`prepare` and call it on many batches: creating
    the session is the slow part.
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        meta = session.get_modelmeta().custom_metadata_map
        in_names = json.loads(meta.get(INPUT_NAMES_KEY, "{}"))
        out_names = json.loads(meta.get(OUTPUT_NAMES_KEY, "{}"))
        self.inputs = [_port(arg, in_names) for arg in session.get_inputs()]
        self.outputs = [_port(arg, out_names) for arg in session.get_outputs()]

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch: ``inputs[name]`` of shape (trials, size) -> outputs by name."""
        feed = self._feed(inputs)
        results = self.session.run([p.onnx_name for p in self.outputs], feed)
        return {p.name: r for p, r in zip(self.outputs, results, strict=True)}

    def _feed(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        known = {p.name for p in self.inputs} | {p.onnx_name for p in self.inputs}
        unknown = sorted(set(inputs) - known)
        if unknown:
            raise DataError(f"the ONNX model has no input {', '.join(map(repr, unknown))}; "
                            f"its inputs are {', '.join(p.name for p in self.inputs)}")
        feed: dict[str, np.ndarray] = {}
        for p in self.inputs:
            key = p.name if p.name in inputs else p.onnx_name
            if key not in inputs:
                raise DataError(f"missing input {p.name!r} for the ONNX model; "
                                f"it needs {', '.join(q.name for q in self.inputs)}")
            array = np.asarray(inputs[key])
            if array.ndim != 2:
                raise DataError(f"input {p.name!r} has shape {array.shape}; expected (trials, "
                                f"{p.width}) (reshape a single trial with .reshape(1, -1))")
            if isinstance(p.width, int) and array.shape[1] != p.width:
                raise DataError(f"input {p.name!r} has width {array.shape[1]} (shape {array.shape}); "
                                f"the ONNX model expects (trials, {p.width})")
            feed[p.onnx_name] = np.ascontiguousarray(array, dtype=p.dtype)
        return feed


def prepare(model_or_path: Any, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> OrtModel:
    """Create an onnxruntime session for an ``onnx.ModelProto``, serialized bytes or a file path."""
    import onnxruntime as ort

    if isinstance(model_or_path, (str, os.PathLike)):
        path = Path(model_or_path)
        if not path.is_file():
            raise SchemaError(f"no ONNX file at {str(path)!r}")
        source: Any = str(path)
        what = repr(str(path))
    elif isinstance(model_or_path, bytes):
        source, what = model_or_path, "the ONNX model bytes"
    else:
        # Duck-typed so that onnx need not be imported here.
        source, what = model_or_path.SerializeToString(), "the ONNX model"
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: keep validation output readable
    try:
        session = ort.InferenceSession(source, sess_options=options, providers=list(providers))
    except Exception as e:  # onnxruntime raises its own exception types for bad models
        raise SchemaError(f"onnxruntime cannot load {what}: {e}") from e
    return OrtModel(session)


def run(model_or_path: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``inputs`` (each (trials, size)) through the model in onnxruntime; outputs by name.

    Inputs are cast to the model's input dtype. A missing, unknown or
    wrongly shaped input raises :class:`~mdfx.errors.DataError` naming it.
    """
    return prepare(model_or_path)(inputs)


def _port(arg: Any, names: Mapping[str, str]) -> _Port:
    dtype = _NUMPY_TYPES.get(arg.type)
    if dtype is None:
        raise SchemaError(f"ONNX input/output {arg.name!r} has type {arg.type}; "
                          f"mdfx runs models with {', '.join(_NUMPY_TYPES)} only")
    width = arg.shape[-1] if arg.shape else None
    return _Port(arg.name, names.get(arg.name, arg.name), dtype, width)
