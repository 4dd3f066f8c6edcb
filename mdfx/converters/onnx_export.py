"""Export an op :class:`~mdfx.schema.graph.Graph` to ONNX, built directly with ``onnx.helper``.

Every graph op becomes the ONNX op of the same name, so the file is the graph:

* graph inputs, outputs, initializers and nodes keep the graph's names (a model
  imported from ONNX comes back with its own names: ``l1.weight``,
  ``/l1/Gemm``); names that are not plain (spaces, say) are written as C
  identifiers, and ``metadata_props`` maps each graph input and output back;
* params are initializers in their layout (a Gemm ``transB=1`` weight stays
  ``(out, in)``), with their current (trained) values, in the export dtype;
* attributes that an opset takes as constant inputs (Reshape's shape, Slice's
  bounds, Clip's bounds, Pow's exponent, Squeeze/Unsqueeze and Reduce axes,
  Dropout's ratio) are re-emitted as initializers; LayerNormalization below
  opset 17 and Gelu below opset 20 are written as the primitives they compute;
* PsyNeuLink's transfer functions (``pnl.*``) are lowered to primitives by the
  steps registered with ``_rule`` in :data:`EXPORT_RULES`; ``ai.onnx.ml`` ops import the ``ai.onnx.ml`` opset.

A composition built with the Composition API exports through its graph (the
lowering :func:`~mdfx.composition.lower.lower`, which keeps its mechanisms): inputs and outputs are named
after its INPUT and OUTPUT mechanisms and ``mdfx.layers`` names each hidden
layer by its first ONNX node, so an import restores the names.

``dtype``: a graph brought from a file exports in its own dtype (a float64 file
stays float64); a composition exports float32 (DESIGN); either on request.
``onnx`` is imported here at module level; ``import mdfx`` does not import this
module (DESIGN rule 5).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mdfx import ops
from mdfx.errors import MdfxError, UnsupportedError, one_line
from mdfx.files import TMP_MARK, atomic_write, fsync, safe_filename
from mdfx.schema.graph import Graph, Node

#: The opsets the export is tested with (Softmax's per-axis semantics need 13).
OPSETS = range(13, 22)
DEFAULT_OPSET = 17
#: The ai.onnx.ml opset written when the graph has ArrayFeatureExtractor / ZipMap.
ML_OPSET = 1

DTYPES: dict[str, tuple[int, type[np.floating]]] = {
    "float32": (TensorProto.FLOAT, np.float32),
    "float64": (TensorProto.DOUBLE, np.float64),
    "float16": (TensorProto.FLOAT16, np.float16),
}

#: ``metadata_props`` keys holding JSON maps ``{onnx name: mdfx name}`` of graph
#: inputs and outputs, so a runner and an import speak in the composition's names.
INPUT_NAMES_KEY = "mdfx.inputs"
OUTPUT_NAMES_KEY = "mdfx.outputs"
#: ``{name of the first ONNX node of a layer: layer (mechanism) name}``, for hidden layers.
LAYER_NAMES_KEY = "mdfx.layers"
#: A JSON list of the initializers that learn, so an import knows without guessing from names.
LEARNABLE_KEY = "mdfx.learnable"


class ExportError(MdfxError):
    """A graph or an export option that the ONNX export cannot handle."""


# --- lowering rules: one per transfer op ----------------------------------------


@dataclass(frozen=True)
class Step:
    """One ONNX op applied to the running value ``x``.

    ``param`` names the op parameter that supplies a second operand (a scalar
    initializer holding ``value``); unary steps leave both empty. ``args`` spells the
    inputs out instead, for a step that needs the transfer's input again: ``"x0"`` is
    the op's input, ``"x"`` the running value, ``"axes"`` an int64 initializer of ``axes``.
    """

    op: str
    param: str | None = None
    value: float | None = None
    attrs: dict[str, object] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    axes: tuple[int, ...] = ()


# --- names ------------------------------------------------------------------------

#: Names written as they are: anything printable without spaces (torch's "0.weight", "onnx::Mul_12").
_PLAIN = re.compile(r"^[!-~]+$")


def onnx_name(name: str) -> str:
    """``name`` as a C identifier (the ONNX IR's rule for names), unchanged when it is one."""
    if name.isidentifier() and name.isascii():
        return name
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return clean if clean and not clean[0].isdigit() else f"n_{clean}"


class _Names:
    """Hands out unique tensor names: the graph's own where plain, then ``base_1``, ``base_2``..."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def fresh(self, base: str, keep: bool = False) -> str:
        base = base if keep and _PLAIN.match(base) else onnx_name(base)
        name, i = base, 0
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name


# --- the export -------------------------------------------------------------------


def to_onnx(model: Graph | str | os.PathLike[str], dtype: str | None = None, opset: int = DEFAULT_OPSET,
            params_as_inputs: bool = False) -> onnx.ModelProto:
    """An ONNX model computing ``model``'s forward pass with its current weights.

    ``model`` is a :class:`Graph` or the path of a model file (read with
    :func:`mdfx.schema.reader.from_mdf`, or imported if ONNX); a composition
    exports through ``composition.to_onnx()`` or :func:`mdfx.save`. ``dtype`` is ``"float32"``, ``"float64"`` or ``"float16"``; None keeps a
    file's graph in its own dtype and writes a composition as float32. ``opset``
    is the default-domain opset, 13 to 21. Inputs and outputs have a dynamic
    ``batch`` dimension. ``params_as_inputs`` also lists every float param as a
    graph input (an overridable initializer), so one onnxruntime session can be
    fed new weights. The model passes ``onnx.checker.check_model(full_check=True)``.
    """
    graph = _graph_of(model)
    composition = graph.mechanisms is not None
    if dtype is None:
        dtype = "float32" if composition or graph.dtype not in DTYPES else graph.dtype
    _check_options(dtype, opset)
    return _Export(graph, dtype, opset, composition, params_as_inputs).model()


def export_for_session(graph: Graph, dtype: str, opset: int = DEFAULT_OPSET
                       ) -> tuple[onnx.ModelProto, tuple[dict[str, str], dict[str, str], dict[str, str]]]:
    """The export that :func:`mdfx.runners.ort.run_graph` runs: float params as overridable inputs.

    Returns the model and the ONNX names of the graph inputs, the float params and
    the outputs, each keyed by the graph's tensor name.
    """
    _check_options(dtype, opset)
    # with the outputs the import added (a ZipMap classifier's probabilities), which run() returns
    export = _Export(graph, dtype, opset, graph.mechanisms is not None, True, extra_outputs=True)
    proto = export.model()
    indices = _index_params(graph)
    params = {k: export.tensor[k] for k, p in graph.params.items() if p.value.dtype.kind == "f" and k not in indices}
    return proto, ({t: export.tensor[t] for t in graph.inputs}, params, dict(export.outputs))


def _index_params(g: Graph) -> set[str]:
    """Constant Gather indices: integers in the file (ONNX Gather reads int32/int64 only)."""
    return {n.inputs[1] for n in g.nodes if n.op == "Gather" and n.inputs[1] in g.params}


def save_onnx(model: Graph | str | os.PathLike[str], path: str | os.PathLike[str], dtype: str | None = None,
              opset: int = DEFAULT_OPSET) -> Path:
    """Export ``model`` (see :func:`to_onnx`) and write it to ``path`` atomically.

    The model is written to a temporary file in the same directory and renamed
    over ``path``, so a failure leaves neither a partial file nor the temp file.
    """
    proto = to_onnx(model, dtype=dtype, opset=opset)
    target = Path(path)
    if proto.ByteSize() > EXTERNAL_DATA_BYTES:
        return _save_with_external_data(proto, target)
    atomic_write(target, lambda tmp: onnx.save_model(proto, str(tmp)))
    return target


#: Models larger than this keep their weights in an external data file beside the
#: ``.onnx`` (protobuf cannot hold 2 GiB in one message).
EXTERNAL_DATA_BYTES = 2**31 - 2**26


def _save_with_external_data(model: onnx.ModelProto, target: Path) -> Path:
    """Write the weights to ``<name>.<random>.data``, then the model that points at it.

    Each write has its own data file (renamed into place complete and fsynced) and the
    model file is replaced atomically last, so ``kill -9`` at any moment leaves a model
    whose data file is complete; data files of earlier writes that the model no longer
    names are removed afterwards.
    """
    from onnx.external_data_helper import (
        convert_model_to_external_data,
        write_external_data_tensors,
    )

    stem = safe_filename(target.name)
    data_name = f"{stem}.{secrets.token_hex(4)}.data"
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location=data_name, size_threshold=0)
    if not target.parent.is_dir():
        raise MdfxError(f"cannot write {str(target)!r}: directory {str(target.parent)!r} does not exist")
    # onnx appends the tensors to <folder>/<location>: a private folder, renamed out of when complete
    scratch = target.parent / f".{target.name}{TMP_MARK}{os.getpid()}.{secrets.token_hex(4)}.d"
    scratch.mkdir()
    try:
        write_external_data_tensors(model, str(scratch))
        fsync(scratch / data_name)
        os.replace(scratch / data_name, target.parent / data_name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    atomic_write(target, lambda tmp: onnx.save_model(model, str(tmp)))
    for old in target.parent.glob(f"{stem}.*.data"):
        if old.name != data_name and re.fullmatch(re.escape(stem) + r"\.[0-9a-f]{8}\.data", old.name):
            old.unlink(missing_ok=True)
    return target


def _graph_of(model: Graph | str | os.PathLike[str]) -> Graph:
    """A Graph as is; a path read (ONNX imported, MDF parsed); anything else refused by name."""
    if isinstance(model, Graph):
        return model
    if isinstance(model, str | os.PathLike):
        if Path(model).suffix.lower() == ".onnx":
            from mdfx.converters.onnx_import import load_onnx

            return load_onnx(model)
        from mdfx.schema.reader import from_mdf

        return from_mdf(model)
    raise TypeError(f"the ONNX export takes a Graph or a model file's path, got {type(model).__name__} "
                    "(a composition: composition.to_onnx() or mdfx.save(composition, 'x.onnx'))")


def _check_options(dtype: str, opset: int) -> None:
    if dtype not in DTYPES:
        raise ExportError(f"ONNX export dtype {dtype!r} is not supported; use one of {', '.join(DTYPES)}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise ExportError(
            f"ONNX opset {opset!r} is not supported; mdfx exports opsets "
            f"{OPSETS.start} to {OPSETS.stop - 1} (default {DEFAULT_OPSET})"
        )


#: ONNX element type of an ai.onnx.ml lookup's labels, by numpy kind.
_LABEL_TYPES = {"i": TensorProto.INT64, "U": TensorProto.STRING, "O": TensorProto.STRING, "S": TensorProto.STRING}


class _Export:
    """One graph at one dtype and opset: names, initializers, nodes, then the model."""

    def __init__(self, g: Graph, dtype: str, opset: int, composition: bool, params_as_inputs: bool,
                 extra_outputs: bool = False) -> None:
        self.g, self.dtype, self.opset, self.composition = g, dtype, opset, composition
        self.elem, self.np_dtype = DTYPES[dtype]
        self.params_as_inputs = params_as_inputs
        self.names = _Names()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.types: dict[str, int] = {}  # ONNX element type of tensors that are not the export dtype
        self.ml = False
        # graph inputs and outputs first, so they keep their names
        self.tensor: dict[str, str] = {t: self.names.fresh(t, keep=not composition) for t in g.inputs}
        self.outputs: dict[str, str] = {}
        extra = set(g.extra_outputs)
        # a composition's outputs are named after their mechanisms (not the tensors "<node>:value")
        owner = {v: k for k, v in g.mechanisms.tensors.items()} if composition else {}
        for t in g.outputs:
            if t in extra and not extra_outputs:
                continue  # a file keeps the original's outputs (the import added this one to train it)
            base = owner.get(t, t)
            if t in self.tensor or t in self.outputs or base in self.names.used:
                # an input that is an output too (or an output given twice) needs a name of its own
                self.outputs[t] = self.names.fresh(f"{base}_output")
            else:
                self.outputs[t] = self.tensor[t] = self.names.fresh(base, keep=not composition)
        for k in g.params:
            self.tensor[k] = self.names.fresh(k, keep=True)

    def name(self, t: str) -> str:
        if t not in self.tensor:
            self.tensor[t] = self.names.fresh(t, keep=True)
        return self.tensor[t]

    def const(self, base: str, value: Any, dtype: Any = None) -> str:
        name = self.names.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype or self.np_dtype), name))
        return name

    def ints(self, base: str, values: Any) -> str:
        return self.const(base, np.asarray(values, dtype=np.int64).reshape(-1), np.int64)

    def emit(self, op: str, inputs: list[str], output: str, name: str, domain: str = "", **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, domain=domain or None,
                                           **{k: v for k, v in attrs.items() if v is not None}))
        return output

    def temp(self, base: str) -> str:
        return self.names.fresh(base)

    # --- the walk ------------------------------------------------------------------------

    def model(self) -> onnx.ModelProto:
        g = self.g
        indices = _index_params(g)
        for k, p in g.params.items():
            value = p.value if p.value.dtype.kind != "f" else p.value.astype(self.np_dtype)
            if p.value.dtype.kind in "iu" or k in indices:
                value = p.value.astype(np.int64)
            self.initializers.append(numpy_helper.from_array(np.asarray(value), self.tensor[k]))
            if p.value.dtype.kind != "f" or k in indices:
                self.types[k] = _LABEL_TYPES.get(p.value.dtype.kind, TensorProto.INT64)
        for node in g.nodes:
            self.node(node)
        for t, out in self.outputs.items():
            if self.tensor[t] != out:
                self.emit("Identity", [self.tensor[t]], out, out)
        inputs = [helper.make_tensor_value_info(self.tensor[t], _INT_TYPES.get(g.input_dtypes.get(t), self.elem),
                                                ["batch", *shape]) for t, shape in g.inputs.items()]
        if self.params_as_inputs:
            inputs += [helper.make_tensor_value_info(self.tensor[k], self.elem, list(p.shape))
                       for k, p in g.params.items() if p.value.dtype.kind == "f" and k not in indices]
        outputs = [self._value_info(t, out) for t, out in self.outputs.items()]
        graph = helper.make_graph(self.nodes, g.name, inputs, outputs, initializer=self.initializers)
        opset_ids = [helper.make_opsetid("", self.opset)]
        if self.ml:
            opset_ids.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
        proto = helper.make_model(graph, opset_imports=opset_ids, producer_name="mdfx",
                                  doc_string=f"mdfx export of {g.name!r} ({self.dtype})",
                                  # the oldest IR version that carries these opsets, so older runtimes load it
                                  ir_version=helper.find_min_ir_version_for(opset_ids))
        helper.set_model_props(proto, self._names_meta())
        try:
            onnx.checker.check_model(proto, full_check=True)
        except onnx.shape_inference.InferenceError as exc:
            # ONNX's own shape rule disagrees with the graph's (e.g. a ceil_mode pool's last window
            # starting in the padding, which newer ONNX drops): refused, never written
            raise UnsupportedError(f"graph {g.name!r}: ONNX's shape inference disagrees with mdfx's shapes, so "
                                   f"the export would not be a faithful file: {one_line(str(exc), 300)}") from None
        return proto

    def _value_info(self, t: str, out: str) -> onnx.ValueInfoProto:
        shape = ["batch", *self.g.shapes[t][1:]]
        node = next((n for n in self.g.nodes if n.output == t), None)
        if node is not None and node.op == "ai.onnx.ml.ZipMap":
            key = TensorProto.INT64 if node.attrs.get("classlabels_int64s") is not None else TensorProto.STRING
            value = helper.make_map_type_proto(key, helper.make_tensor_type_proto(TensorProto.FLOAT, []))
            return helper.make_value_info(out, helper.make_sequence_type_proto(value))
        return helper.make_tensor_value_info(out, self.types.get(t, self.elem), shape)

    def _names_meta(self) -> dict[str, str]:
        g = self.g
        tensors = g.mechanisms.tensors if g.mechanisms is not None else {}
        by_tensor = {v: k for k, v in tensors.items()}
        ins = {self.tensor[t]: by_tensor.get(t, t) for t in g.inputs}
        outs = {out: by_tensor.get(t, t) for t, out in self.outputs.items()}
        if self.composition:
            layers = {}
            hidden = [k for k in tensors if k not in g.inputs]
            for mech in hidden:
                first = next((n for n in g.nodes if n.name == mech or n.name.startswith(f"{mech}/")), None)
                if first is not None:
                    layers[first.name] = mech
        else:
            layers = dict(g.layers)
        props = {LAYER_NAMES_KEY: json.dumps(layers)} if layers or self.composition else {}
        props[LEARNABLE_KEY] = json.dumps([self.tensor[k] for k, p in g.params.items() if p.learnable])
        if self.composition or any(k != v for k, v in {**ins, **outs}.items()):
            props.update({INPUT_NAMES_KEY: json.dumps(ins), OUTPUT_NAMES_KEY: json.dumps(outs)})
        return props

    def node(self, node: Node) -> None:
        rule = EXPORT_RULES.get(node.op)
        if rule is None:
            raise ExportError(f"node {node.name!r}: no ONNX rule for op {node.op!r}; rules exist for "
                              f"{', '.join(sorted(EXPORT_RULES))}")
        xs = [self.name(t) if t else "" for t in node.inputs]
        rule(self, node, xs, self.name(node.output))


# --- rules: one per graph op ------------------------------------------------------

ExportRule = Callable[[_Export, Node, list[str], str], None]
#: This backend's rule per graph op: ``rule(export, node, input names, output name)``.
EXPORT_RULES: dict[str, ExportRule] = {}


def _export_rule(*names: str) -> Callable[[ExportRule], ExportRule]:
    def register(fn: ExportRule) -> ExportRule:
        for name in names:
            if name in EXPORT_RULES:
                raise ValueError(f"ONNX export rule for {name!r} registered twice")
            ops.graph_op(name)  # refuse a rule for an op the table does not know
            EXPORT_RULES[name] = fn
        return fn

    return register


#: ONNX element types of integer graph inputs
_INT_TYPES = {"int64": TensorProto.INT64, "int32": TensorProto.INT32}

#: Ops written as the ONNX op of the same name with the same attributes.
_SAME = ("Gather", "Add", "Sub", "Mul", "Div", "Neg", "MatMul", "Gemm", "Relu", "Sigmoid", "Tanh", "Exp",
         "Log", "Sqrt", "Abs", "Reciprocal", "Erf", "Softplus", "Elu", "Selu", "HardSigmoid", "Identity",
         "Softmax", "LogSoftmax", "Concat", "Flatten", "Transpose", "ConvTranspose")


@_export_rule(*_SAME)
def _same(e: _Export, node: Node, xs: list[str], out: str) -> None:
    e.emit(node.op, xs, out, node.name, **node.attrs)


@_export_rule("Conv", "MaxPool", "AveragePool")
def _sliding(e: _Export, node: Node, xs: list[str], out: str) -> None:
    """auto_pad written as the explicit pads it stands for (onnxruntime refuses SAME with dilations)."""
    from mdfx import ops_spatial

    attrs = dict(node.attrs)
    if attrs.get("auto_pad", "NOTSET") != "NOTSET":
        x = e.g.shapes[node.inputs[0]]
        kernel = e.g.shapes[node.inputs[1]][2:] if node.op == "Conv" else attrs["kernel_shape"]
        geo = ops_spatial.geometry(x[2:], kernel, attrs["strides"], attrs["pads"], attrs["dilations"],
                                   attrs["auto_pad"], int(attrs.get("ceil_mode", 0)), pooling=node.op != "Conv")
        attrs["pads"], attrs["auto_pad"] = [*geo.begin, *geo.end], "NOTSET"
    e.emit(node.op, xs, out, node.name, **attrs)


@_export_rule("BatchNormalization")
def _batch_norm(e: _Export, node: Node, xs: list[str], out: str) -> None:
    # the inference form (running statistics), what run() computes; training_mode=1 would make a
    # runtime normalise each call with the batch's statistics
    e.emit("BatchNormalization", xs, out, node.name, epsilon=node.attrs["epsilon"], momentum=node.attrs["momentum"])


@_export_rule("Pad")
def _pad(e: _Export, node: Node, xs: list[str], out: str) -> None:
    pads = e.ints(f"{out}_pads", node.attrs["pads"])
    e.emit("Pad", [*xs, pads, e.const(f"{out}_value", node.attrs["value"])], out, node.name, mode="constant")


@_export_rule("LeakyRelu")
def _leaky_relu(e: _Export, node: Node, xs: list[str], out: str) -> None:
    alpha = float(node.attrs["alpha"])
    if e.dtype != "float32" and float(np.float32(alpha)) != alpha:
        # the float32 attribute would round alpha; PRelu takes the slope as a tensor of the dtype
        e.emit("PRelu", [*xs, e.const(f"{out}_alpha", alpha)], out, node.name)
    else:
        e.emit("LeakyRelu", xs, out, node.name, alpha=alpha)


@_export_rule("ArgMax")
def _argmax(e: _Export, node: Node, xs: list[str], out: str) -> None:
    e.types[node.output] = TensorProto.INT64
    e.emit(node.op, xs, out, node.name, **node.attrs)


@_export_rule("Cast")
def _cast(e: _Export, node: Node, xs: list[str], out: str) -> None:
    # the graph computes in one float dtype: a float Cast keeps the export's dtype
    e.emit("Cast", xs, out, node.name, to=e.elem)


@_export_rule("CastLabel")
def _cast_label(e: _Export, node: Node, xs: list[str], out: str) -> None:
    e.types[node.output] = int(node.attrs["to"])
    e.emit("Cast", xs, out, node.name, to=int(node.attrs["to"]))


@_export_rule("Dropout")
def _dropout(e: _Export, node: Node, xs: list[str], out: str) -> None:
    ratio = e.const(f"{out}_ratio", node.attrs["ratio"])
    e.emit("Dropout", [*xs, ratio], out, node.name)


@_export_rule("Clip")
def _clip(e: _Export, node: Node, xs: list[str], out: str) -> None:
    lo, hi = node.attrs["min"], node.attrs["max"]
    bounds = [e.const(f"{out}_min", lo) if np.isfinite(lo) else "", e.const(f"{out}_max", hi) if np.isfinite(hi) else ""]
    while bounds and not bounds[-1]:
        bounds.pop()
    e.emit("Clip", [*xs, *bounds], out, node.name)


@_export_rule("Pow")
def _pow(e: _Export, node: Node, xs: list[str], out: str) -> None:
    e.emit("Pow", [*xs, e.const(f"{out}_exponent", node.attrs["exponent"])], out, node.name)


@_export_rule("Reshape")
def _reshape(e: _Export, node: Node, xs: list[str], out: str) -> None:
    shape = list(node.attrs["shape"])
    if shape and shape[0] == 0 and not node.attrs["allowzero"] and all(d > 0 for d in shape[1:]):
        # the batch as -1 (what is left): the same here, and right also where a runtime shapes a
        # tensor differently (onnxruntime's ArrayFeatureExtractor returns (1, n) for a lookup)
        shape[0] = -1
    e.emit("Reshape", [*xs, e.ints(f"{out}_shape", shape)], out, node.name,
           allowzero=node.attrs["allowzero"] or None)


@_export_rule("Slice")
def _slice(e: _Export, node: Node, xs: list[str], out: str) -> None:
    a = node.attrs
    extra = [e.ints(f"{out}_starts", a["starts"]), e.ints(f"{out}_ends", a["ends"])]
    if a["axes"] is not None or a["steps"] is not None:
        extra.append(e.ints(f"{out}_axes", a["axes"] if a["axes"] is not None else range(len(a["starts"]))))
    if a["steps"] is not None:
        extra.append(e.ints(f"{out}_steps", a["steps"]))
    e.emit("Slice", [*xs, *extra], out, node.name)


@_export_rule("LSTM", "GRU", "RNN")
def _recurrent(e: _Export, node: Node, xs: list[str], out: str) -> None:
    """The graph's batch-first op as ONNX's layout 0 (onnxruntime runs no other): X and the
    initial states transposed to time / directions first, Y transposed back to (batch, T, D, H).
    A state shaped (1, D, H) (one for every sample) is expanded to the batch."""
    a = node.attrs
    x = xs[0]
    tx = e.emit("Transpose", [x], e.temp(f"{out}_time_major"), f"{node.name}/to_time_major", perm=[1, 0, 2])
    ins = [tx, xs[1], xs[2], xs[3] if len(xs) > 3 else "", ""]
    states = xs[4:6] if node.op == "LSTM" else xs[4:5]
    for i, t in enumerate(states):
        if not t:
            ins.append("")
            continue
        moved = e.emit("Transpose", [t], e.temp(f"{out}_state{i}"), f"{node.name}/state{i}", perm=[1, 0, 2])
        if e.g.shapes[node.inputs[4 + i]][0] == 1:  # one state for every sample: expanded to the batch
            shape = e.emit("Shape", [x], e.temp(f"{out}_xshape"), f"{node.name}/shape{i}")
            batch = e.emit("Slice", [shape, e.ints(f"{out}_zero", [0]), e.ints(f"{out}_one", [1])],
                           e.temp(f"{out}_batch"), f"{node.name}/batch{i}")
            d, h = e.g.shapes[node.inputs[4 + i]][1:]
            target = e.emit("Concat", [e.ints(f"{out}_d", [d]), batch, e.ints(f"{out}_h", [h])],
                            e.temp(f"{out}_state_shape"), f"{node.name}/state_shape{i}", axis=0)
            moved = e.emit("Expand", [moved, target], e.temp(f"{out}_state{i}_b"), f"{node.name}/expand{i}")
        ins.append(moved)
    if node.op == "LSTM" and len(xs) > 6 and xs[6]:
        ins.append(xs[6])
    while ins and not ins[-1]:
        ins.pop()
    attrs = {"hidden_size": int(a["hidden_size"]), "direction": a["direction"], "clip": a["clip"],
             "activations": a["activations"], "activation_alpha": a["activation_alpha"],
             "activation_beta": a["activation_beta"]}
    if node.op == "GRU":
        attrs["linear_before_reset"] = int(a["linear_before_reset"])
    y = e.emit(node.op, ins, e.temp(f"{out}_time_major_y"), node.name, **attrs)
    e.emit("Transpose", [y], out, f"{node.name}/to_batch_major", perm=[2, 0, 1, 3])


@_export_rule("Squeeze", "Unsqueeze")
def _squeeze(e: _Export, node: Node, xs: list[str], out: str) -> None:
    e.emit(node.op, [*xs, e.ints(f"{out}_axes", node.attrs["axes"])], out, node.name)


@_export_rule("ReduceSum", "ReduceMean", "ReduceMax")
def _reduce(e: _Export, node: Node, xs: list[str], out: str) -> None:
    axes, keepdims = node.attrs["axes"], node.attrs["keepdims"]
    if e.opset >= (13 if node.op == "ReduceSum" else 18):
        extra = [e.ints(f"{out}_axes", axes)] if axes is not None else []
        e.emit(node.op, [*xs, *extra], out, node.name, keepdims=keepdims)
    else:
        e.emit(node.op, xs, out, node.name, keepdims=keepdims, axes=None if axes is None else list(axes))


@_export_rule("LayerNormalization")
def _layer_norm(e: _Export, node: Node, xs: list[str], out: str) -> None:
    axis, eps = node.attrs["axis"], node.attrs["epsilon"]
    if e.opset >= 17:
        e.emit("LayerNormalization", xs, out, node.name, axis=axis, epsilon=eps)
        return
    # the primitives it computes: (x - mean) / sqrt(var + eps) * scale + bias
    rank = len(e.g.shapes[node.inputs[0]])
    axes = list(range(axis % rank, rank))
    x = xs[0]
    mean = e.emit("ReduceMean", [x], e.temp(f"{out}_mean"), f"{node.name}/mean", axes=axes, keepdims=1)
    d = e.emit("Sub", [x, mean], e.temp(f"{out}_centred"), f"{node.name}/centre")
    sq = e.emit("Mul", [d, d], e.temp(f"{out}_sq"), f"{node.name}/square")
    var = e.emit("ReduceMean", [sq], e.temp(f"{out}_var"), f"{node.name}/var", axes=axes, keepdims=1)
    veps = e.emit("Add", [var, e.const(f"{out}_epsilon", eps)], e.temp(f"{out}_var_eps"), f"{node.name}/eps")
    std = e.emit("Sqrt", [veps], e.temp(f"{out}_std"), f"{node.name}/sqrt")
    rest = [t for t in xs[1:] if t]
    y = e.emit("Div", [d, std], out if not rest else e.temp(f"{out}_normed"), f"{node.name}/div")
    if len(xs) > 1 and xs[1]:
        y = e.emit("Mul", [y, xs[1]], out if len(xs) < 3 or not xs[2] else e.temp(f"{out}_scaled"),
                   f"{node.name}/scale")
    if len(xs) > 2 and xs[2]:
        e.emit("Add", [y, xs[2]], out, f"{node.name}/bias")


@_export_rule("Gelu")
def _gelu(e: _Export, node: Node, xs: list[str], out: str) -> None:
    approximate = node.attrs["approximate"]
    if e.opset >= 20:
        e.emit("Gelu", xs, out, node.name, approximate=approximate)
        return
    x = xs[0]
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = e.emit("Mul", [x, e.emit("Mul", [x, x], e.temp(f"{out}_x2"), f"{node.name}/x2")], e.temp(f"{out}_x3"),
                    f"{node.name}/x3")
        inner = e.emit("Add", [x, e.emit("Mul", [x3, e.const(f"{out}_c", 0.044715)], e.temp(f"{out}_cx3"),
                                         f"{node.name}/cx3")], e.temp(f"{out}_inner"), f"{node.name}/inner")
        scaled = e.emit("Mul", [inner, e.const(f"{out}_k", np.sqrt(2.0 / np.pi))], e.temp(f"{out}_scaled"),
                        f"{node.name}/k")
        core = e.emit("Tanh", [scaled], e.temp(f"{out}_tanh"), f"{node.name}/tanh")
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        scaled = e.emit("Div", [x, e.const(f"{out}_sqrt2", np.sqrt(2.0))], e.temp(f"{out}_scaled"), f"{node.name}/div")
        core = e.emit("Erf", [scaled], e.temp(f"{out}_erf"), f"{node.name}/erf")
    one = e.emit("Add", [core, e.const(f"{out}_one", 1.0)], e.temp(f"{out}_one_plus"), f"{node.name}/add")
    half = e.emit("Mul", [x, e.const(f"{out}_half", 0.5)], e.temp(f"{out}_half_x"), f"{node.name}/half")
    e.emit("Mul", [half, one], out, f"{node.name}/mul")


@_export_rule("ai.onnx.ml.ArrayFeatureExtractor")
def _array_feature_extractor(e: _Export, node: Node, xs: list[str], out: str) -> None:
    e.ml = True
    table = node.inputs[0]
    if table in e.types:
        e.types[node.output] = e.types[table]
    e.emit("ArrayFeatureExtractor", xs, out, node.name, domain="ai.onnx.ml")


@_export_rule("ai.onnx.ml.ZipMap")
def _zipmap(e: _Export, node: Node, xs: list[str], out: str) -> None:
    e.ml = True
    x = xs[0]
    if e.elem != TensorProto.FLOAT:  # ZipMap reads float32 only
        x = e.emit("Cast", [x], e.temp(f"{out}_float"), f"{node.name}/cast", to=TensorProto.FLOAT)
    labels = {k: v for k, v in node.attrs.items() if v is not None}
    e.emit("ZipMap", [x], out, node.name, domain="ai.onnx.ml", **labels)


# --- PsyNeuLink's transfer functions (pnl.*): chains of ONNX ops ------------------------------


def _steps_rule(name: str, steps_of: Steps) -> ExportRule:
    op = ops.graph_op(name)

    def rule(e: _Export, node: Node, xs: list[str], out: str) -> None:
        steps = [s for s in steps_of(ops.fill_params(op, node.attrs), e.dtype) if s is not None] or [Step("Identity")]
        x0 = x = xs[0]
        for i, step in enumerate(steps):
            inputs = [x]
            if step.args:
                inputs = [x0 if a == "x0" else x if a == "x" else e.ints(f"{node.name}_axes", step.axes)
                          for a in step.args]
            if step.param is not None:
                inputs.append(e.const(f"{node.name}_{step.param}", step.value))
            target = out if i == len(steps) - 1 else e.temp(f"{node.name}_{step.op}")
            x = e.emit(step.op, inputs, target, node.name if i == len(steps) - 1 else target, **step.attrs)

    return rule


#: A PsyNeuLink transfer function's export: ``steps(params, dtype) -> steps``, the ONNX ops it is
#: written as, one after the other; a ``None`` step is a no-op (a parameter at its neutral value).
Steps = Callable[[dict[str, float], str], list[Step | None]]


def _rule(name: str) -> Callable[[Steps], Steps]:
    """Register the export of transfer function ``name`` (``pnl.*``) as a chain of ONNX steps."""
    def register(steps: Steps) -> Steps:
        _export_rule(name)(_steps_rule(name, steps))
        return steps

    return register


def _binary(op: str, neutral: float) -> Callable[[dict[str, float], str], Step | None]:
    def step(p: dict[str, float], name: str) -> Step | None:
        # Skipping only exact neutral values keeps the numbers identical:
        # x * 1 == x and x + 0 == x in IEEE arithmetic.
        return None if p[name] == neutral else Step(op, name, p[name])

    return step


_add, _sub, _mul = _binary("Add", 0.0), _binary("Sub", 0.0), _binary("Mul", 1.0)


@_rule("pnl.Linear")
def _linear(p: dict[str, float], dtype: str) -> list[Step | None]:
    return [_mul(p, "slope"), _add(p, "intercept"), _mul(p, "scale"), _add(p, "offset")]


@_rule("pnl.Logistic")
def _logistic(p: dict[str, float], dtype: str) -> list[Step | None]:
    # scale / (1 + exp(-gain*(x + bias - x_0))) + offset == scale * Sigmoid(gain*(x + bias - x_0)) + offset
    return [_add(p, "bias"), _sub(p, "x_0"), _mul(p, "gain"),
            Step("Sigmoid"), _mul(p, "scale"), _add(p, "offset")]


@_rule("pnl.ReLU")
def _relu(p: dict[str, float], dtype: str) -> list[Step | None]:
    leak = p["leak"]
    if leak == 0.0:
        act = Step("Relu")
    elif dtype == "float32" or float(np.float32(leak)) == leak:
        act = Step("LeakyRelu", attrs={"alpha": leak})
    else:
        # LeakyRelu's alpha is a float32 attribute; a float64 model would round
        # the leak. PRelu takes the slope as a tensor of the model's dtype.
        act = Step("PRelu", "leak", leak)
    # where(z > 0, gain*z, leak*gain*z) with z = x - bias
    return [_sub(p, "bias"), act, _mul(p, "gain")]


@_rule("pnl.Tanh")
def _tanh(p: dict[str, float], dtype: str) -> list[Step | None]:
    return [_add(p, "bias"), _sub(p, "x_0"), _mul(p, "gain"), _add(p, "offset"),
            Step("Tanh"), _mul(p, "scale")]


@_rule("pnl.Exponential")
def _exponential(p: dict[str, float], dtype: str) -> list[Step | None]:
    return [_mul(p, "rate"), _add(p, "bias"), Step("Exp"), _mul(p, "scale"), _add(p, "offset")]


@_rule("pnl.Identity")
def _identity(p: dict[str, float], dtype: str) -> list[Step | None]:
    return []  # an output node still gets an Identity, to carry the output's name


@_rule("pnl.SoftMax")
def _softmax(p: dict[str, float], dtype: str) -> list[Step | None]:
    return [_mul(p, "gain"), Step("Softmax", attrs={"axis": -1})]


@_rule("pnl.Normalize")
def _normalize(p: dict[str, float], dtype: str) -> list[Step | None]:
    # x / max(sqrt(sum(x * x, last axis)), eps); ReduceSum takes its axes as an input from opset 13
    return [Step("Mul", args=("x", "x")), Step("ReduceSum", args=("x", "axes"), axes=(-1,), attrs={"keepdims": 1}),
            Step("Sqrt"), Step("Max", "eps", p["eps"]), Step("Div", args=("x0", "x"))]
