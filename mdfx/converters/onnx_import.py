"""Import an ONNX model (a feed-forward MLP) as a trainable :class:`~mdfx.schema.net.Net`.

Supported: MatMul, Gemm (alpha, beta, transB, bias C; transA=0), Add / Sub /
Mul / Div / Neg with constants (biases, scales), Relu, LeakyRelu, Sigmoid,
Tanh, Softmax (over the features), Exp, Identity, Flatten / Reshape / Cast that
keep ``(batch, features)``, Constant, Transpose of constants, initializers.
Default-domain opsets 9-21, float32 / float64 / float16 models, any batch size.
Weights are read with ``onnx.numpy_helper.to_array`` and kept as float64.

The graph is restated as an :class:`~mdfx.schema.opgraph.OpGraph` and lowered
by :func:`mdfx.schema.opgraph.lower`: each Gemm / MatMul (+ Add bias)
(+ activation) becomes a projection into a new node whose op is the
activation (identity without one); the INPUT node is named after the graph
input, OUTPUT nodes after the graph outputs.

``onnx`` is imported when a model is loaded, not when this module is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mdfx import limits
from mdfx.errors import SchemaError, UnsupportedError
from mdfx.schema import validate
from mdfx.schema.net import Net
from mdfx.schema.opgraph import Op, OpGraph, check_supported, lower

#: Default-domain opsets the import reads.
OPSETS = range(9, 22)
#: ONNX element types of model inputs: FLOAT, FLOAT16, DOUBLE.
_FLOAT_INPUTS = {1: "float32", 10: "float16", 11: "float64"}
#: Keys of ``metadata_props`` where mdfx's ONNX export keeps the Net's own names:
#: of the graph's inputs and outputs, and of each layer by the op that opens it.
_NAME_KEYS = ("mdfx.inputs", "mdfx.outputs")
_LAYER_KEY = "mdfx.layers"


def load_onnx(model: str | os.PathLike[str] | Any) -> Net:
    """Read an ONNX file (or ``onnx.ModelProto``) into a Net whose weights are all trainable.

    Raises :class:`~mdfx.errors.UnsupportedError` naming every unsupported op
    type with its nodes (and listing the supported ones), or the node and
    attribute of an unsupported pattern (``Gemm`` with ``transA=1``, a product
    of two computed tensors, a Softmax over the batch, ...).
    """
    from mdfx.errors import reading

    source = str(model) if isinstance(model, str | os.PathLike) else "ONNX model"
    # fail closed: a malformed graph is one error naming the file; overflow while folding
    # constants is no warning: a non-finite weight that results is refused by net_values
    with reading(source, "ONNX model"), np.errstate(all="ignore"):
        net = lower(to_opgraph(_load(model)))
        validate.net_values(net, source)
    return net


def read_model(path: str | os.PathLike[str]) -> Any:
    """An ONNX file as an ``onnx.ModelProto`` (an mdfx error naming the file if it is not one)."""
    return _load(path)


def initializers(model: Any, source: str = "") -> dict[str, np.ndarray]:
    """The graph's initializers as arrays, checked before and after decoding: unique names,
    declared sizes within :mod:`mdfx.limits`, real and finite values."""
    from onnx import numpy_helper

    out: dict[str, np.ndarray] = {}
    budget = limits.Budget(source or "ONNX model")
    at = f"{source}: " if source else ""
    for t in model.graph.initializer:
        where = f"initializer {t.name!r}"
        if t.name in out:
            raise SchemaError(f"{at}two initializers are named {t.name!r}; ONNX names each tensor once")
        if t.data_type in _NON_REAL:
            raise SchemaError(f"{at}{where} has ONNX element type {t.data_type} "
                              f"({_NON_REAL[t.data_type]}); mdfx weights are real numbers")
        budget.take(tuple(t.dims), where)  # before decoding: dims are declared, not yet allocated
        out[t.name] = validate.weights(numpy_helper.to_array(t), f"{at}{where}")
    return out


#: ONNX element types that are not real numbers: STRING, COMPLEX64, COMPLEX128.
_NON_REAL = {8: "string", 14: "complex64", 15: "complex128"}


def _check_ssa(graph: Any) -> None:
    """Each tensor is written once (ONNX's single assignment; onnxruntime refuses the rest)."""
    written: dict[str, str] = {v.name: "a graph input" for v in graph.input}
    for t in graph.initializer:
        written.setdefault(t.name, "an initializer")
    for i, node in enumerate(graph.node):
        label = f"node {node.name or i!r} ({node.op_type})"
        for out in node.output:
            if not out:
                continue
            if out in node.input:
                raise SchemaError(f"{label} writes {out!r}, which is also its own input; ONNX graphs "
                                  "assign each tensor once")
            if out in written:
                raise SchemaError(f"{label} writes {out!r}, which is already {written[out]}; ONNX graphs "
                                  "assign each tensor once")
            written[out] = f"written by {label}"


def to_opgraph(model: Any) -> OpGraph:
    """An ``onnx.ModelProto`` restated as an OpGraph (checks opset, dtypes and op types)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    _check_opset(model)
    limits.check_count(len(graph.node), f"ONNX graph {graph.name!r}: ops")
    constants = initializers(model)
    _check_ssa(graph)
    ops = []
    for i, node in enumerate(graph.node):
        name = node.name or (node.output[0] if node.output else f"{node.op_type}_{i}")
        if node.domain not in ("", "ai.onnx"):
            ops.append(Op(f"{node.domain}.{node.op_type}", list(node.input), "", name))
            continue
        used_outputs = [o for o in node.output[1:] if o]
        if used_outputs:
            raise UnsupportedError(f"node {name!r} ({node.op_type}): extra outputs {used_outputs} are not "
                                   "supported; mdfx imports ops with one output")
        attrs = {a.name: _attribute(helper.get_attribute_value(a), numpy_helper) for a in node.attribute}
        ops.append(Op(node.op_type, list(node.input), node.output[0] if node.output else "", name, attrs))
    check_supported(ops)
    names = _mdfx_names(model, _NAME_KEYS)
    inputs = {}
    for value in graph.input:
        if value.name in constants:  # IR < 4 lists initializers as inputs too
            continue
        inputs[value.name] = _features(value)
    if not inputs:
        raise UnsupportedError(f"ONNX graph {graph.name!r} has no inputs; mdfx imports networks that "
                               "compute outputs from inputs")
    return OpGraph(
        name=graph.name or "onnx_model",
        inputs=inputs,
        outputs=[v.name for v in graph.output],
        constants=constants,
        ops=ops,
        node_names=names,
        layer_names=_mdfx_names(model, (_LAYER_KEY,)),
    )


def _load(model: str | os.PathLike[str] | Any) -> Any:
    import onnx

    if not isinstance(model, str | os.PathLike):
        return model
    path = Path(model)
    if not path.is_file():
        raise SchemaError(f"{path}: no such file")
    limits.check_file_size(path.stat().st_size, path)
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf raises its own DecodeError
        raise SchemaError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None


def _check_opset(model: Any) -> None:
    versions = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    version = versions.get("ai.onnx")
    if version is None or version not in OPSETS:
        raise UnsupportedError(f"ONNX model uses default-domain opset {version}; mdfx imports opsets "
                               f"{OPSETS.start}-{OPSETS.stop - 1} (re-export it, e.g. "
                               "torch.onnx.export(..., opset_version=17))")


def _attribute(value: Any, numpy_helper: Any) -> Any:
    """Attribute values as Python / numpy (tensors -> arrays, bytes -> str)."""
    if hasattr(value, "dims") and hasattr(value, "data_type"):
        if value.data_type in _NON_REAL:
            raise SchemaError(f"tensor attribute {value.name!r} has ONNX element type {value.data_type} "
                              f"({_NON_REAL[value.data_type]}); mdfx reads real numbers")
        limits.check_elements(tuple(value.dims), f"tensor attribute {value.name!r}")
        array = validate.real_array(numpy_helper.to_array(value), f"tensor attribute {value.name!r}")
        validate.weights(array, f"tensor attribute {value.name!r}")  # finite
        return array
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_attribute(v, numpy_helper) for v in value]
    return value


def _features(value: Any) -> int:
    """Features per sample of a graph input ``(batch, d1, d2, ...)``: d1 * d2 * ..."""
    t = value.type.tensor_type
    if t.elem_type not in _FLOAT_INPUTS:
        raise UnsupportedError(f"graph input {value.name!r} has ONNX element type {t.elem_type}; mdfx "
                               f"imports float inputs ({', '.join(_FLOAT_INPUTS.values())})")
    dims = list(t.shape.dim)
    if len(dims) < 2:
        raise UnsupportedError(f"graph input {value.name!r} has rank {len(dims)}; mdfx imports inputs "
                               "shaped (batch, features, ...)")
    sizes = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
    if any(s is None for s in sizes):
        raise UnsupportedError(f"graph input {value.name!r} has a symbolic feature dimension "
                               f"{[d.dim_param or d.dim_value for d in dims]}; only the batch (axis 0) may vary")
    return int(np.prod(sizes))


def _mdfx_names(model: Any, keys: tuple[str, ...]) -> dict[str, str]:
    """The Net names that mdfx's own export recorded under ``keys``, so a round trip keeps them."""
    names: dict[str, str] = {}
    for prop in model.metadata_props:
        if prop.key in keys:
            try:
                names.update({str(k): str(v) for k, v in json.loads(prop.value).items()})
            except (ValueError, AttributeError):
                continue  # someone else's metadata under our key: ignore, names stay ONNX's
    return names
