"""Run an ONNX model in onnxruntime on a batch of trials.

Inputs and outputs are dicts of ``(trials, size)`` arrays. Models written by
:mod:`mdfx.converters.onnx_export` record which mechanism each graph input and
output belongs to; with that record the arrays are keyed by mechanism names
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

from mdfx.errors import DataError, SchemaError, UnsupportedError
from mdfx.schema import validate

#: Kept equal to the keys in :mod:`mdfx.converters.onnx_export` (checked by a test);
#: repeated here so running a model needs onnxruntime only, not the onnx package.
INPUT_NAMES_KEY = "mdfx.inputs"
OUTPUT_NAMES_KEY = "mdfx.outputs"

_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                "tensor(int32)": np.int32}


@dataclass(frozen=True)
class _Port:
    onnx_name: str
    name: str  #: the mechanism name, or the ONNX name when the model has no record
    dtype: type[np.floating] | None  #: None: an output that is not a float tensor
    width: int | str | None  #: the last dimension: an int, a symbolic name, or unknown
    features: tuple[int | str | None, ...] = ()  #: every dimension after the batch


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
        self.outputs = [_port(arg, out_names, output=True) for arg in session.get_outputs()]

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch: ``inputs[name]`` of shape (trials, size) -> outputs by name."""
        feed = self._feed(inputs)
        results = self.session.run([p.onnx_name for p in self.outputs], feed)
        return {p.name: _output(r) for p, r in zip(self.outputs, results, strict=True)}

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
            array = validate.real_array(inputs[key], f"input {p.name!r}")  # the shared check (DESIGN rule 6)
            feats = p.features
            if array.ndim == 2 and len(feats) > 1 and all(isinstance(d, int) for d in feats) \
                    and array.shape[1] == int(np.prod(feats)):
                array = array.reshape((array.shape[0], *feats))  # (trials, size) of a (batch, d1, d2...) input
            if array.ndim != 1 + len(feats) or array.ndim < 2:
                raise DataError(f"input {p.name!r} has shape {array.shape}; expected (trials, "
                                f"{', '.join(map(str, feats))}) (reshape a single trial with .reshape(1, -1))")
            if any(isinstance(d, int) and d != a for d, a in zip(feats, array.shape[1:], strict=True)):
                raise DataError(f"input {p.name!r} has width {array.shape[1]} (shape {array.shape}); "
                                f"the ONNX model expects (trials, {', '.join(map(str, feats))})")
            feed[p.onnx_name] = validate.finite_array(array, f"input {p.name!r}", p.dtype)
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


def _port(arg: Any, names: Mapping[str, str], output: bool = False) -> _Port:
    dtype = _NUMPY_TYPES.get(arg.type)
    if dtype is None and not output:  # outputs may be labels (int64, strings) or ZipMap's dicts
        raise SchemaError(f"ONNX input {arg.name!r} has type {arg.type}; "
                          f"mdfx feeds models with {', '.join(_NUMPY_TYPES)} inputs only")
    width = arg.shape[-1] if arg.shape else None
    return _Port(arg.name, names.get(arg.name, arg.name), dtype, width, tuple(arg.shape[1:]) if arg.shape else ())


def _output(value: Any) -> Any:
    """An output as an array; ZipMap's list of dicts as an object array of dicts (as the reference)."""
    if isinstance(value, list):
        out = np.empty(len(value), dtype=object)
        out[:] = value
        return out
    return value


# --- a graph's export, one session per structure ---------------------------------------

#: (structure key, dtype) -> (session, graph input -> ONNX name, param -> ONNX name, output -> ONNX name)
_SESSIONS: dict[tuple, tuple[Any, dict[str, str], dict[str, str], dict[str, str]]] = {}
_MAX_SESSIONS = 16


def run_graph(graph: Any, inputs: Mapping[str, np.ndarray], dtype: str = "float64") -> dict[str, np.ndarray]:
    """Run a :class:`~mdfx.schema.graph.Graph`'s ONNX export in onnxruntime; outputs keyed by
    :meth:`~mdfx.schema.graph.Graph.output_names`.

    The session is built once per graph structure and dtype; the params are fed
    at each call as overridable initializers, so the current (trained) weights run
    without rebuilding anything. Inputs ``(trials, *features)`` keyed by graph input.
    """
    import onnxruntime as ort

    validate.run_inputs(graph, inputs, allow_empty=True)  # the shared check every runner makes first
    key = (graph.structure_key(), dtype)
    entry = _SESSIONS.get(key)
    if entry is None:
        from mdfx.converters.onnx_export import export_for_session

        proto, names = export_for_session(graph, dtype)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(proto.SerializeToString(), sess_options=options,
                                           providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            missing = _missing_kernel(e)
            if missing:
                raise UnsupportedError(f"onnxruntime has no {dtype} kernel for {missing}, so the export of "
                                       f"{graph.name!r} cannot run there at {dtype}; run it in Python, "
                                       "PyTorch or LLVMRun mode (or load a float32 file)") from None
            raise SchemaError(f"onnxruntime cannot run the export of {graph.name!r}: {e}") from e
        if len(_SESSIONS) >= _MAX_SESSIONS:
            _SESSIONS.pop(next(iter(_SESSIONS)))
        entry = _SESSIONS[key] = (session, *names)
    session, in_names, param_names, out_names = entry
    np_dtype = np.float64 if dtype == "float64" else np.float32
    feed: dict[str, np.ndarray] = {}
    for t, name in in_names.items():
        if t not in inputs:
            raise DataError(f"no input given for {t!r} of {graph.name!r} (inputs: {', '.join(in_names)})")
        int_dtype = getattr(graph, "input_dtypes", {}).get(t)  # token indices go in as integers
        x = np.ascontiguousarray(inputs[t], dtype=int_dtype or np_dtype)
        feed[name] = x.reshape((x.shape[0], *graph.inputs[t]))
    for k, name in param_names.items():
        feed[name] = np.ascontiguousarray(graph.params[k].value, dtype=np_dtype)
    results = session.run(list(out_names.values()), feed)
    return graph.named_outputs({t: _output(r) for t, r in zip(out_names, results, strict=True)})


def _missing_kernel(exc: BaseException) -> str | None:
    """``Erf (node '/act/Erf')`` when onnxruntime refused a session for lack of a kernel, else None."""
    import re

    m = re.search(r"NOT_IMPLEMENTED : Could not find an implementation for (\w+)\(\d+\) node with name '([^']*)'",
                  str(exc))
    return None if m is None else f"{m.group(1)} (node {m.group(2)!r})"
