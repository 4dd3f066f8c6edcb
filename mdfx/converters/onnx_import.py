"""Import an ONNX model as an op :class:`~mdfx.schema.graph.Graph`, faithfully.

Each ONNX node becomes the graph op of the same name (:data:`mdfx.ops.GRAPH_OPS`),
keeping the original parametrisation, so that training the graph is training the
original model (DESIGN rule 2):

* **Params.** Every initializer that an op reads as a tensor becomes a
  :class:`~mdfx.schema.graph.Param` under its original name, in its original
  layout (a Gemm ``transB=1`` weight stays ``(out, in)``), as float64 values, with
  ``dtype`` the file's. Constant nodes become frozen params. Nothing is folded into
  a trainable tensor: two biased branches stay two biases, ``(x - mean) / std``
  keeps its frozen constants, ``x / 4`` and ``l1(x) * 2`` keep their scales.
* **Which params learn.** An initializer is *learnable* when it is a float
  tensor read as an operand of a computing op (a weight, bias or scale) and its
  name is not one an exporter generates. torch's exporters name parameters by
  module path (``l1.weight``, ``bn.bias``) and give constants generated names
  (``onnx::Mul_12``, ``/Constant_output_0``, ``_val_3``, ``scalar_tensor_default``,
  ``clone`` for a tensor built in ``forward``...). In a file written by skl2onnx only
  ``coefficient``, ``intercepts``, ``coefficient1``... learn (its ``unity``,
  ``shape_tensor``, ``classes`` are constants).
  Constant nodes, folded constants, BatchNormalization's mean and variance and
  torch buffers named ``running_mean`` / ``running_var`` / ``num_batches_tracked``
  are always frozen. A buffer the module registered under a name of its own (say
  ``self.register_buffer("mean", ...)``) cannot be told from a parameter in the
  file: pass ``learnable=`` to say exactly which initializers learn, as a list of
  names or as ``callable(name, array) -> bool`` (see :func:`load_onnx`).
  torch's exporters store parameters with equal values once: the legacy exporter
  names the others ``ln.weight = Identity(bn.weight)``, and each name becomes its
  own param again; the dynamo exporter shares one initializer, which then trains
  as one tensor (initialise the module's parameters differently to avoid it).
* **Constant inputs become attributes.** Reshape's shape, Slice's
  starts/ends/axes/steps, Clip's bounds, Pow's exponent, Squeeze/Unsqueeze axes,
  Reduce axes (inputs from opset 18, ReduceSum from 13), Dropout's ratio: the
  importer reads them from constants. Split becomes one Slice per output.
* **Shape sub-graphs** (Shape, Gather, Concat, Unsqueeze, Slice, Cast, Range,
  ConstantOfShape... as dynamic-batch exports compute ``x.view(x.size(0), -1)``)
  are evaluated at import with the batch as a symbol; a Reshape target with the
  batch on axis 0 gets ``0`` there. A fixed-batch export's Reshape whose axis 0
  is the literal batch size of the graph input is normalised the same way.
* **Folding.** An op whose inputs are all frozen constants is computed once at
  import (never through a learnable param), up to :data:`MAX_FOLDED` elements. A
  constant shaped by the batch (``torch.zeros(x.size(0), n)``, ``c.expand(x.size(0), n)``)
  keeps 1 there and broadcasts.
* **Spelled with graph ops**, computing exactly the same: ``Min``/``Max`` of a tensor and
  a constant scalar (the dynamo exporter's ``clamp``) as Clip, Expand of a computed
  tensor as ``x + zeros(shape)``, HardSwish as ``x * HardSigmoid(x)``, Mish as
  ``x * tanh(softplus(x))``, ReduceL2 as ``sqrt(ReduceSum(x * x))``, PRelu as LeakyRelu (a
  frozen scalar slope) or ``relu(x) - slope * relu(-x)`` (a slope that trains, torch's ``nn.PReLU``).
* **Refused**, with one error that names every unsupported op type and its nodes:
  what the IR cannot represent (convolutions, recurrence, control flow, ops that
  move the batch axis) and ops it does not have.
* **Names.** Graph inputs and outputs, initializers and node names (torch's
  ``/l1/Gemm``) are kept. A file written by mdfx's own export carries the names
  of its composition (``mdfx.inputs``, ``mdfx.outputs``, ``mdfx.layers``
  metadata); the import restores the input and output names and keeps the layer
  map in ``graph.layers``; its list of learnable initializers (``mdfx.learnable``)
  replaces the naming rule.

Default-domain opsets 9-21 and ``ai.onnx.ml`` (ArrayFeatureExtractor, ZipMap: the
tails of skl2onnx classifiers; Cast to int or string becomes ``CastLabel``).
``onnx`` is imported when a model is loaded, not when this module is.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mdfx import limits, ops
from mdfx.converters import onnx_checks as checks
from mdfx.errors import GraphError, SchemaError, UnsupportedError, one_line
from mdfx.ops import BATCH
from mdfx.schema import validate
from mdfx.schema.graph import Graph, Node, Param

#: Default-domain opsets the import reads.
OPSETS = range(9, 22)
#: ONNX element types of float tensors, and their numpy names.
FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}
#: ONNX element types of integer graph inputs (token indices), and their numpy names.
INT_TYPES = {7: "int64", 6: "int32"}
#: Keys of ``metadata_props`` where mdfx's ONNX export keeps the composition's names.
INPUT_NAMES_KEY, OUTPUT_NAMES_KEY, LAYER_NAMES_KEY = "mdfx.inputs", "mdfx.outputs", "mdfx.layers"
#: ``metadata_props`` key of mdfx's export: a JSON list of the initializers that learn.
LEARNABLE_KEY = "mdfx.learnable"

#: ``learnable=`` of :func:`load_onnx`: None (the rule of the module docstring), the
#: names that learn, or ``callable(name, array) -> bool`` asked for every float initializer.
Learnable = None | Iterable[str] | Callable[[str, np.ndarray], bool]


#: The largest tensor the import computes from constants, unless mdfx.limits says otherwise.
MAX_FOLDED = 10**7


def _max_folded() -> int:
    return min(MAX_FOLDED, limits.current().max_tensor_elements)

#: Names that torch's and other exporters generate for constants and buffers (never learnable).
_GENERATED = re.compile(
    r"^(onnx::|/|_?val_\d|_?v_?\d+$|scalar_tensor|_tensor_constant|lifted_tensor|c_lifted|_?const(ant)?(_|\d|$)"
    r"|Constant|initializer|_param_constant|clone(_\d+)?$|_to_copy)"
    r"|(running_mean|running_var|num_batches_tracked)$|_output_\d+$",
    re.IGNORECASE,
)

#: skl2onnx's names for an MLP's parameters (its other initializers are constants).
#: torch's names of module buffers a state_dict holds (frozen, but not the exporter's constants)
_BUFFER_NAME = re.compile(r"(running_mean|running_var|num_batches_tracked)$")
#: torch's names of module parameters (``fc1.weight``, ``encoder.0.bias``)
_PARAM_NAME = re.compile(r"(^|\.)(weight|bias)$")
_SKL2ONNX_PARAM = re.compile(r"^(coefficient|intercepts?)\d*$")

#: Input positions that an op reads as constants (folded into attributes), per ONNX op.
_ATTRIBUTE_INPUTS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,), "Slice": (1, 2, 3, 4), "Clip": (1, 2), "Pow": (1,), "Squeeze": (1,), "Unsqueeze": (1,),
    "ReduceSum": (1,), "ReduceMean": (1,), "ReduceMax": (1,), "Split": (1,), "Dropout": (1, 2),
    "Expand": (1,), "ConstantOfShape": (0,), "Range": (0, 1, 2), "Gather": (1,), "Tile": (1,),
    "Pad": (1, 2, 3),
}

#: Ops that only compute shapes or constants here (evaluated at import; never on a batched tensor).
_CONSTANT_ONLY = ("Shape", "Size", "ConstantOfShape", "Range", "Equal", "Where", "Expand", "Tile", "Less",
                  "Greater", "Not", "Min", "Max", "Floor", "Ceil", "Mod", "Trilu", "And", "Or", "LessOrEqual",
                  "GreaterOrEqual")
#: Recurrent ops (mdfx.recurrence), imported as the graph's batch-first op.
_RECURRENT = ("LSTM", "GRU", "RNN")
#: Binary elementwise ops (numpy broadcasting).
_BINARY = ("Add", "Sub", "Mul", "Div")
#: Elementwise ops that follow a batch moved off axis 0 unchanged.
_MOVED_ELEMENTWISE = ("Relu", "Tanh", "Sigmoid", "LeakyRelu", "Elu", "Selu", "Gelu", "Softplus", "Identity",
                      "Dropout", "Exp", "Abs", "Neg", "Erf", "HardSigmoid")


@dataclass
class OnnxNode:
    """One ONNX node as an import rule sees it: the file's own attributes only (defaults are
    filled once, from the op table, when the rule emits a graph op)."""

    name: str
    op: str  #: the op type (``"Softmax"``); ``ai.onnx.ml.`` ops keep their bare type (``"ZipMap"``)
    ins: list[str]
    outs: list[str]
    attrs: dict[str, Any]

    @property
    def out(self) -> str:
        return self.outs[0]


#: ``rule(importer, node)``: emits the graph ops for one ONNX node (or records a constant).
ImportRule = Callable[["_Importer", OnnxNode], None]

#: Import rule per ONNX op type (``"ai.onnx.ml.ZipMap"`` for the ml domain), per the first opset
#: it reads: ``{op: {since: rule}}``. A file of opset N uses the rule of the largest since <= N.
IMPORT_RULES: dict[str, dict[int, ImportRule]] = {}

#: Rules that see the node before constant folding (they handle constant inputs themselves).
_BEFORE_FOLDING: set[str] = set()


def import_rule(*op_types: str, since: int = 1, domain: str = "",
                before_folding: bool = False) -> Callable[[ImportRule], ImportRule]:
    """Register the import of ONNX ``op_types`` from opset ``since`` on (as onnx2torch's
    ``add_converter``); a second rule for the same op and opset is refused."""
    def register(rule: ImportRule) -> ImportRule:
        for op in op_types:
            key = f"{domain}.{op}" if domain else op
            versions = IMPORT_RULES.setdefault(key, {})
            if since in versions:
                raise ValueError(f"ONNX import rule for {key} since opset {since} registered twice "
                                 f"({versions[since].__name__} and {rule.__name__})")
            versions[since] = rule
            if before_folding:
                _BEFORE_FOLDING.add(key)
        return rule

    return register


def find_import_rule(key: str, opset: int) -> ImportRule | None:
    """The rule that imports ONNX op ``key`` at ``opset`` (None: the op is not imported there)."""
    versions = [v for v in IMPORT_RULES.get(key, {}) if v <= opset]
    return IMPORT_RULES[key][max(versions)] if versions else None


#: Ops the graph IR cannot represent, and why (named in the refusal).
_NOT_REPRESENTABLE = {
    "Loop": "control flow",
    "Scan": "control flow", "If": "control flow", "Resize": "resampling", "Upsample": "resampling",
    "LpPool": "pooling", "GlobalLpPool": "pooling", "MaxUnpool": "pooling", "MaxRoiPool": "pooling",
    "DepthToSpace": "moves features between axes", "SpaceToDepth": "moves features between axes",
}

#: The batch size in a shape computed at import (any value no real shape has).
_SYM = -(1 << 40)


def load_onnx(model: str | os.PathLike[str] | Any, learnable: Learnable = None) -> Graph:
    """Read an ONNX file (or ``onnx.ModelProto``) into a :class:`Graph` (see the module docstring).

    ``learnable``: None applies the documented rule; a list of initializer names
    makes exactly those learnable; ``callable(name, float64 array) -> bool`` is
    asked for every float initializer an op reads. BatchNormalization statistics
    stay frozen whatever it says.

    Raises :class:`~mdfx.errors.UnsupportedError` naming every unsupported op
    type with its nodes (and listing the supported ones), or the node of an
    unsupported pattern; :class:`~mdfx.errors.SchemaError` for an unreadable file.
    """
    from mdfx.errors import reading

    proto, where = _load(model)
    # fail closed: a malformed graph is one error naming the file; overflow while folding
    # constants is no warning (a non-finite weight that results is refused below)
    with reading(where, "ONNX model"), np.errstate(all="ignore"):
        graph = _Importer(proto, where, learnable).run()
        for name, p in graph.params.items():
            validate.weights(p.value, f"{where}: param {name!r}")
    return graph


def read_model(path: str | os.PathLike[str]) -> Any:
    """An ONNX file as an ``onnx.ModelProto`` (an mdfx error naming the file if it is not one)."""
    return _load(path)[0]


def initializers(model: Any, where: str = "ONNX model") -> dict[str, np.ndarray]:
    """The graph's initializers as arrays in their own dtypes, checked before and after decoding:
    unique names, declared sizes within :mod:`mdfx.limits`, no complex numbers, finite floats.
    (Strings and integers stay: skl2onnx keeps class labels and shapes in initializers.)"""
    from onnx import numpy_helper

    out: dict[str, np.ndarray] = {}
    budget = limits.Budget(where)
    for t in model.graph.initializer:
        label = f"{where}: initializer {t.name!r}"
        if t.name in out:
            raise SchemaError(f"{where}: two initializers are named {t.name!r}; ONNX names each tensor once")
        if t.data_type in _COMPLEX:
            raise SchemaError(f"{label} has ONNX element type {t.data_type} ({_COMPLEX[t.data_type]}); mdfx "
                              "weights are real numbers")
        budget.take(tuple(t.dims), label)  # before decoding: dims are declared, not yet allocated
        try:
            array = numpy_helper.to_array(t)
        except (ValueError, TypeError) as exc:  # raw bytes that do not fill the declared dims and type
            raise SchemaError(f"{label}: its data does not match its declared shape {tuple(t.dims)} and element "
                              f"type {t.data_type} ({one_line(exc, 120)})") from None
        if array.dtype.kind == "f":
            validate.weights(array, label)  # finite
        out[t.name] = array
    return out


#: ONNX element types that are not real numbers (strings are labels, allowed where ops read labels).
_COMPLEX = {14: "complex64", 15: "complex128"}


def _check_ssa(graph: Any, where: str) -> None:
    """Each tensor is written once (ONNX's single assignment; onnxruntime refuses the rest)."""
    for kind, values in (("input", graph.input), ("output", graph.output)):
        names = [v.name for v in values]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SchemaError(f"{where}: graph {kind} {twice[0]!r} is listed {names.count(twice[0])} times; ONNX "
                              f"names each graph {kind} once")
    written: dict[str, str] = {v.name: "a graph input" for v in graph.input}
    for t in graph.initializer:
        written.setdefault(t.name, "an initializer")
    for i, node in enumerate(graph.node):
        own = f"node {node.name or i!r} ({node.op_type})"
        label = f"{where}: {own}"
        for out in node.output:
            if not out:
                continue
            if out in node.input:
                raise SchemaError(f"{label} writes {out!r}, which is also its own input; ONNX graphs "
                                  "assign each tensor once")
            if out in written:
                raise SchemaError(f"{label} writes {out!r}, which is already {written[out]}; ONNX graphs "
                                  "assign each tensor once")
            written[out] = f"written by {own}"


def is_generated_name(name: str) -> bool:
    """True for names exporters give constants and buffers (``onnx::Mul_12``, ``/Constant_output_0``...)."""
    return bool(_GENERATED.search(name))


def _load(model: str | os.PathLike[str] | Any) -> tuple[Any, str]:
    import onnx

    if not isinstance(model, str | os.PathLike):
        return model, f"ONNX model {model.graph.name!r}"
    path = Path(model)
    if not path.is_file():
        raise SchemaError(f"{path}: no such file")
    limits.check_file_size(path.stat().st_size, path)
    try:
        return onnx.load(str(path)), str(path)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise SchemaError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None


class _Importer:
    """One pass over the ONNX nodes (which ONNX keeps in topological order)."""

    def __init__(self, model: Any, where: str, learnable: Learnable) -> None:
        from onnx import numpy_helper

        self.model, self.where, self.g = model, where, model.graph
        self.opset = self._check_opset()
        self.to_array = numpy_helper.to_array
        limits.check_count(len(self.g.node), f"{where}: ONNX graph {self.g.name!r}: ops")
        _check_ssa(self.g, where)
        #: values known at import: initializers, Constant outputs, folded results, shapes
        self.consts: dict[str, np.ndarray] = initializers(model, where)
        self.const_dtype = {t.name: _dtype_name(self.consts[t.name]) for t in self.g.initializer}
        self.initializers = set(self.consts)
        self.params: dict[str, Param] = {}
        self.nodes: list[Node] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.renames = _mdfx_names(model, INPUT_NAMES_KEY) | _mdfx_names(model, OUTPUT_NAMES_KEY)
        self.input_dtypes: dict[str, str] = {}  # integer graph inputs
        #: ONNX tensors whose batch is not on axis 0: tensor -> (graph tensor, perm) with the ONNX
        #: tensor = transpose(graph tensor, perm); see follow_moved
        self.moved: dict[str, tuple[str, list[int]]] = {}
        self.scopes: dict[str, dict[str, str]] = {}  # a recurrent node's metadata_props (the module it was)
        self._check_ops()
        self.aliases = self._untie()
        self.learnable = self._learnable(learnable)
        self.inputs = self._inputs()
        self.batch_size = self._fixed_batch()

    # --- checks -----------------------------------------------------------------------

    def _check_opset(self) -> int:
        versions = {o.domain or "ai.onnx": o.version for o in self.model.opset_import}
        version = versions.get("ai.onnx")
        if version is None or version not in OPSETS:
            raise UnsupportedError(f"{self.where} uses default-domain opset {version}; mdfx imports opsets "
                                   f"{OPSETS.start}-{OPSETS.stop - 1} (re-export it, e.g. "
                                   "torch.onnx.export(..., opset_version=17))")
        return version

    def _check_ops(self) -> None:
        """One error naming every op type the import cannot take, with its nodes."""
        bad: dict[str, list[str]] = {}
        for i, node in enumerate(self.g.node):
            domain = node.domain or "ai.onnx"
            ok = domain in ("ai.onnx", "ai.onnx.ml") and find_import_rule(_rule_key(node), self.opset) is not None
            if not ok:
                key = node.op_type if domain == "ai.onnx" else f"{domain}.{node.op_type}"
                bad.setdefault(key, []).append(_node_name(node, i))
        if bad:
            parts = []
            for op, names in bad.items():
                why = _NOT_REPRESENTABLE.get(op)
                shown = ", ".join(map(repr, names[:5])) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                parts.append(f"{op}{f' ({why})' if why else ''} at node{'s' if len(names) > 1 else ''} {shown}")
            raise UnsupportedError(
                f"{self.where}: unsupported ops: {'; '.join(parts)}. mdfx's graph IR runs feed-forward "
                "networks whose batch stays on axis 0 (no recurrence, resampling or control flow). "
                f"Supported ONNX ops: {', '.join(SUPPORTED)}; ai.onnx.ml: {', '.join(SUPPORTED_ML)}")

    def _inputs(self) -> dict[str, tuple[int, ...]]:
        inputs: dict[str, tuple[int, ...]] = {}
        for value in self.g.input:
            if value.name in self.initializers:  # IR < 4 lists initializers as inputs too
                continue
            t = value.type.tensor_type
            if t.elem_type in INT_TYPES:
                self.input_dtypes[value.name] = INT_TYPES[t.elem_type]
            elif t.elem_type not in FLOAT_TYPES:
                raise UnsupportedError(f"{self.where}: graph input {value.name!r} has ONNX element type "
                                       f"{t.elem_type}; mdfx imports float inputs ({', '.join(FLOAT_TYPES.values())}) "
                                       f"and integer ones ({', '.join(INT_TYPES.values())}: indices)")
            dims = list(t.shape.dim)
            if not dims:
                raise UnsupportedError(f"{self.where}: graph input {value.name!r} has no batch axis; mdfx imports "
                                       "inputs shaped (batch, features...)")
            sizes = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
            if any(s is None or s < 1 for s in sizes):
                raise UnsupportedError(f"{self.where}: graph input {value.name!r} has a symbolic feature dimension "
                                       f"{[d.dim_param or d.dim_value for d in dims]}; only the batch (axis 0) may vary")
            inputs[value.name] = tuple(int(s) for s in sizes)  # type: ignore[arg-type]
            self.shapes[value.name] = (BATCH, *inputs[value.name])
        if not inputs:
            raise UnsupportedError(f"{self.where}: the graph has no inputs; mdfx imports networks that compute "
                                   "outputs from inputs")
        return inputs

    def _fixed_batch(self) -> int | None:
        """The batch size when every graph input fixes the same one (a fixed-batch export)."""
        sizes = set()
        for value in self.g.input:
            if value.name in self.inputs:
                d = value.type.tensor_type.shape.dim[0]
                sizes.add(d.dim_value if d.HasField("dim_value") else None)
        return sizes.pop() if len(sizes) == 1 and None not in sizes else None

    def _untie(self) -> set[str]:
        """Identity nodes that give an initializer a second name: each name its own param.

        torch's legacy exporter stores equal parameters once and names the others by
        ``ln.weight = Identity(bn.weight)``; in the module they are separate
        parameters, so they train separately here too (each starts from the value).
        """
        aliases = set()
        for node in self.g.node:
            if node.op_type == "Identity" and node.input[0] in self.initializers and node.output[0]:
                out = node.output[0]
                self.consts[out] = self.consts[node.input[0]].copy()
                self.const_dtype[out] = self.const_dtype[node.input[0]]
                self.initializers.add(out)
                aliases.add(out)
        return aliases

    def _learnable(self, rule: Learnable) -> set[str]:
        """Names of the initializers that train (the module docstring's rule, or the user's)."""
        operands: set[str] = set()
        stats: set[str] = set()
        weights: set[str] = set()  # read as a layer's weight or bias: MatMul/Gemm B and C, norm scale/bias
        readers: dict[str, set[str]] = {}
        # a weight read through a transpose or reshape (MatMul(x, Transpose(w))) is still the weight
        source: dict[str, str] = {t: t for t in self.initializers}
        for node in self.g.node:
            if node.op_type in ("Transpose", "Reshape", "Identity", "Cast", "Squeeze", "Unsqueeze") \
                    and node.input and node.input[0] in source and node.output:
                source[node.output[0]] = source[node.input[0]]
        producer: dict[str, str] = {}  # tensor -> the op that computes it, looking through Cast/Identity
        for node in self.g.node:
            if node.op_type in ("MatMul", "Gemm", "Conv", "ConvTranspose"):
                weights.update(source[t] for t in node.input[1:] if t in source and t not in self.initializers)
            if node.op_type in _RECURRENT:  # W, R, B and LSTM's peepholes P
                weights.update(t for i, t in enumerate(node.input) if i in (1, 2, 3, 7) and t in self.initializers)
            if node.op_type == "Gather" and len(node.input) > 1 and node.input[0] in self.initializers \
                    and node.input[1] not in self.initializers:
                weights.add(node.input[0])  # a table looked up by the inputs: an embedding's weight
            for out in node.output:
                passthrough = node.op_type in ("Cast", "Identity") and node.input and node.input[0] in producer
                producer[out] = producer[node.input[0]] if passthrough else node.op_type
        for node in self.g.node:
            # a bias: added to a MatMul's result (Linear without Gemm, Keras' Dense)
            if node.op_type == "Add" and len(node.input) == 2:
                a, b = node.input
                for const, other in ((a, b), (b, a)):
                    if const in self.initializers and producer.get(other) in ("MatMul", "Gemm"):
                        weights.add(const)
            skip = _ATTRIBUTE_INPUTS.get(node.op_type, ())
            for i, t in enumerate(node.input):
                if t in self.initializers and i not in skip and node.op_type not in _CONSTANT_ONLY:
                    (stats if node.op_type == "BatchNormalization" and i >= 3 else operands).add(t)
                    readers.setdefault(t, set()).add(node.op_type)
                    if (node.op_type in ("MatMul", "Gemm", "Conv", "ConvTranspose") and i >= 1) or (
                            node.op_type in ("LayerNormalization", "BatchNormalization", "PRelu") and 1 <= i <= 2):
                        weights.add(t)
        floats = {k for k in self.initializers if self.consts[k].dtype.kind == "f"}
        # a tensor read both as statistics and as an operand gets a frozen copy for the statistics
        candidates = operands & floats
        if rule is None:
            recorded = _mdfx_list(self.model, LEARNABLE_KEY)
            if recorded is not None:  # mdfx's own export says which params learn
                return set(recorded) & candidates
            if self.model.producer_name == "skl2onnx":  # its own constants: unity, shape_tensor...
                return {k for k in candidates if _SKL2ONNX_PARAM.match(k)}
            return self._by_names(candidates, weights, readers)
        if callable(rule):
            return {k for k in candidates if rule(k, self.consts[k].astype(np.float64))}
        names = {str(n) for n in rule}  # type: ignore[union-attr]
        unknown = sorted(names - floats)
        if unknown:
            raise GraphError(f"{self.where}: learnable names {unknown} are not float initializers of the file; "
                             f"it has {', '.join(sorted(floats)) or 'none'}")
        return names

    def _by_names(self, candidates: set[str], weights: set[str], readers: dict[str, set[str]]) -> set[str]:
        """The default rule for torch's and other exporters' files (see the module docstring).

        A layer's weight or bias (read by MatMul/Gemm as B or C, or as a norm's scale or
        bias) learns, whatever its name: the legacy exporter names a bias-free Linear's
        weight ``onnx::MatMul_12``. Any other tensor learns when its name is torch's name of
        a parameter (``<module>.weight`` / ``.bias``) and frozen when it is exporter-made;
        a tensor with another name (``mean``, ``std``, ``alpha``) is ambiguous (a registered
        buffer and a bare ``nn.Parameter`` look alike in the file): it stays frozen, with a
        warning naming it, so the choice is never silent.
        """
        learn = set()
        ambiguous = []
        for k in sorted(candidates):
            if k in weights or (not is_generated_name(k) and _PARAM_NAME.search(k)):
                learn.add(k)
            elif not is_generated_name(k):
                ambiguous.append(f"{k!r} (read by {', '.join(sorted(readers.get(k, ())))})")
        if ambiguous:
            warnings.warn(f"{self.where}: {', '.join(ambiguous)} kept as frozen constants: nothing in the file "
                          "says whether they train (a registered buffer and an nn.Parameter look alike); "
                          "pass mdfx.load(path, learnable=[...]) to train them", stacklevel=4)
        return learn

    # --- the walk ------------------------------------------------------------------------

    def run(self) -> Graph:
        for i, node in enumerate(self.g.node):
            self.node(node, _node_name(node, i))
        outputs = [v.name for v in self.g.output]
        for t in outputs:
            if t in self.moved:
                raise UnsupportedError(f"{self.where}: graph output {t!r} has the batch on axis "
                                       f"{self._shape(t).index(BATCH)} (a Transpose moved it); mdfx's outputs keep "
                                       "the batch on axis 0 (transpose it back in the model)")
            if t in self.consts:
                raise UnsupportedError(f"{self.where}: graph output {t!r} does not depend on the inputs; mdfx "
                                       "runs networks whose outputs are computed per sample")
        elem = {v.name: v.type.tensor_type.elem_type for v in self.g.input}
        float_inputs = [k for k in self.inputs if k not in self.input_dtypes]
        # the graph's dtype: its first float input's, else (token inputs only) its first float param's
        dtype = FLOAT_TYPES[elem[float_inputs[0]]] if float_inputs else next(
            (p.dtype for p in self.params.values() if p.dtype in ("float64", "float32", "float16")), "float32")
        facts: dict[str, Any] = {"source": "onnx"}
        layers = _mdfx_names(self.model, LAYER_NAMES_KEY)
        if layers:
            facts["layers"] = layers
        # a ZipMap output (dicts) takes no gradient: its probability tensor becomes an output too,
        # so the classifier trains through it (exports leave it out again)
        extra = [n.inputs[0] for n in self.nodes if n.op == "ai.onnx.ml.ZipMap" and n.output in outputs
                 and n.inputs[0] not in outputs]
        if extra:
            facts["extra_outputs"] = extra
            outputs = outputs + extra
        # a state_dict holds the module's parameters and buffers, not the exporter's constants
        # (only the file's initializers: a constant folded at import, named after the node that made it,
        # is no module state)
        facts["state_dict_keys"] = {k: k for k, p in self.params.items() if k in self.initializers
                                    and (p.learnable or _BUFFER_NAME.search(k) or not is_generated_name(k))}
        recurrent = self._torch_recurrent()
        if recurrent:
            facts["torch_recurrent"] = recurrent
            for entry in recurrent:
                for k in (entry["W"], entry["R"], entry["B"]):
                    facts["state_dict_keys"].pop(k, None)
        inputs, params, nodes = dict(self.inputs), list(self.params.values()), self.nodes
        input_dtypes = dict(self.input_dtypes)
        if self.renames:
            inputs, nodes, outputs = _rename(inputs, nodes, outputs, self.renames, set(self.params))
            input_dtypes = {self.renames.get(k, k) if self.renames.get(k, k) in inputs else k: v
                            for k, v in input_dtypes.items()}
        return Graph.build(self.g.name or "onnx_model", inputs, params, nodes, outputs,
                           dtype="float64" if dtype == "float64" else ("float16" if dtype == "float16" else "float32"),
                           input_dtypes=input_dtypes, **facts)

    def node(self, node: Any, name: str) -> None:
        """The steps every node takes (checks, constant folding), then its op's import rule."""
        op, ins = node.op_type, list(node.input)
        attrs = {a.name: _attribute(a, self.to_array) for a in node.attribute}
        outs = list(node.output)
        key = _rule_key(node)
        rule = find_import_rule(key, self.opset)
        assert rule is not None  # _check_ops refused the file otherwise
        if op == "Identity" and outs[0] in self.aliases:
            return  # a second name of an initializer: its own param (see _untie)
        self.check(op, name, ins, outs, attrs)  # before any rule (Split's runs before folding)
        if op in ("Dropout", "BatchNormalization", "LayerNormalization", "MaxPool"):
            for extra in outs[1:]:
                if extra and self._used(extra):
                    raise UnsupportedError(f"node {name!r} ({op}): its output {extra!r} (training statistics, "
                                           "mask or indices) is used; mdfx computes the first output only")
            outs = outs[:1]
        if op in _RECURRENT:  # the module it was (the dynamo exporter's name scopes), for state_dict keys
            self.scopes[name] = {p.key: p.value for p in node.metadata_props}
        if any(t in self.moved for t in ins):
            # a batch a Transpose moved off axis 0: the graph keeps the batch-first tensor, and the op's
            # axes are rewritten (or it is refused) before any rule sees the ONNX-order tensor
            self.follow_moved(op, ins, outs, attrs, name)
            return
        if key in _BEFORE_FOLDING:
            rule(self, OnnxNode(name, op, ins, outs, attrs))
            return
        if len([o for o in outs if o]) > 1:
            raise UnsupportedError(f"node {name!r} ({op}): {len(outs)} outputs; mdfx imports ops with one output")
        out = outs[0]
        if op == "Div" and len(ins) > 1 and ins[1] in self.consts:
            divisor = np.asarray(self.consts[ins[1]])
            numeric = divisor.dtype.kind in "fiub"
            if numeric and (np.any(divisor == 0) or np.isnan(divisor.astype(np.float64)).any()):
                # x / 0 is inf: no silent inf weights or outputs (learnable divisors included)
                raise UnsupportedError(f"{self.where}: node {name!r} (Div): the constant divisor {ins[1]!r} holds "
                                       "zero or NaN; dividing by it gives inf/NaN outputs")
        constant = all(not t or t in self.consts for t in ins)
        if constant and (op == "Shape" or not any(t in self.learnable for t in ins)):
            self.consts[out] = self.fold(op, ins, attrs, name)
            return
        rule(self, OnnxNode(name, op, ins, outs, attrs))

    def constant_only(self, n: OnnxNode) -> None:
        """Refuse a shape/constant op whose input depends on the inputs or on a learnable param."""
        live = [t for t in n.ins if t and (t not in self.consts or t in self.learnable)]
        raise UnsupportedError(f"node {n.name!r} ({n.op}) computes on a tensor that depends on the inputs or on a "
                               f"learnable param ({', '.join(live)}); mdfx evaluates {n.op} only on constants "
                               "and shapes (the graph IR has no such op)")

    def check(self, op: str, name: str, ins: list[str], outs: list[str], attrs: dict[str, Any]) -> None:
        """What onnxruntime refuses is refused here, naming the node (never wrapped or taken modulo)."""
        checks.attributes(name, op, attrs)
        known = bool(ins) and (ins[0] in self.consts or ins[0] in self.shapes)
        shape = self._shape(ins[0]) if known else None
        const = {i: np.asarray(self.consts[t]) for i, t in enumerate(ins) if t and t in self.consts}
        if op == "Gather" and shape is not None:
            checks.gather(name, shape, const.get(1), int(attrs.get("axis", 0)), ops.BATCH)
        elif op == "Slice" and shape is not None:
            if len(ins) > 1:
                if not all(i in const for i in range(1, len(ins)) if ins[i]):
                    return  # computed bounds: the translation refuses them
                for i, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
                    if i in const:
                        checks.int_tensor(name, op, what, const[i])
                starts, ends = const[1].reshape(-1).tolist(), const[2].reshape(-1).tolist()
                axes = const[3].reshape(-1).tolist() if 3 in const else None
                steps = const[4].reshape(-1).tolist() if 4 in const else None
            else:
                starts, ends, axes, steps = attrs.get("starts", []), attrs.get("ends", []), attrs.get("axes"), None
            checks.slice_(name, shape, starts, ends, axes, steps)
        elif op == "Split" and shape is not None:
            a = checks.axis(name, op, int(attrs.get("axis", 0)), len(shape))
            sizes = const[1].reshape(-1).tolist() if 1 in const else attrs.get("split")
            if 1 in const:
                checks.int_tensor(name, op, "split sizes", const[1])
            if sizes and shape[a] != ops.BATCH:
                checks.split(name, shape[a], sizes, len(outs))
        elif op == "Reshape":
            target = const[1].reshape(-1) if 1 in const else attrs.get("shape")
            if target is not None:
                checks.rank(name, op, len(target))
        elif op == "BatchNormalization" and 4 in const:
            var, eps = const[4].astype(np.float64), float(attrs.get("epsilon", 1e-5))
            if np.any(var < 0) or np.any(var + eps <= 0):
                raise UnsupportedError(f"node {name!r} (BatchNormalization): its running variance {ins[4]!r} holds "
                                       f"{float(var.min())} (with epsilon {eps}); a variance is >= 0 and "
                                       "variance + epsilon > 0, else the outputs are NaN or infinite")

    def _used(self, tensor: str) -> bool:
        return any(tensor in n.input for n in self.g.node) or any(tensor == v.name for v in self.g.output)

    # --- constants and params ----------------------------------------------------------

    def tensor(self, t: str, name: str, op: str) -> str:
        """``t`` as a tensor the graph can read: a param for a constant (made on first use)."""
        if not t or t not in self.consts:
            return t
        if t not in self.params:
            value = np.asarray(self.consts[t])
            if value.dtype.kind == "i" and _SYM in value:
                raise UnsupportedError(f"node {name!r} ({op}) reads {t!r}, a value computed from the batch size; "
                                       "mdfx computes per sample")
            learn = t in self.learnable
            if value.dtype.kind == "f" or (value.dtype.kind in "iub" and op != "ai.onnx.ml.ArrayFeatureExtractor"):
                arr = np.array(value, dtype=np.float64, order="C")
            else:
                arr = np.array(value)  # class labels (int64 or strings) that a lookup returns as they are
            self.params[t] = Param(t, arr, learn, self.const_dtype.get(t, _dtype_name(value)))
            self.shapes[t] = arr.shape
        return t

    def frozen(self, t: str) -> str:
        """``t`` for a slot that never trains (BatchNormalization statistics): a frozen copy if ``t`` learns."""
        if t not in self.learnable:
            return t
        copy = f"{t}:frozen"
        if copy not in self.consts:
            self.consts[copy], self.const_dtype[copy] = self.consts[t].copy(), self.const_dtype[t]
        return copy

    def fold(self, op: str, ins: list[str], attrs: dict[str, Any], name: str) -> np.ndarray:
        """``op`` over constants, computed now (never through a learnable param)."""
        xs = [self.consts[t] if t else None for t in ins]
        # before computing: a tiny file can declare a huge product of two small constants
        limits.check_fold(op, [np.shape(x) for x in xs if x is not None], f"{self.where}: node {name!r}", attrs)
        size = _valued_fold_size(op, xs)
        if size is not None:  # ops whose result size is given by a constant's values (a shape, a range)
            limits.check_elements(size, f"{self.where}: node {name!r} ({op}): folding its constant inputs")
        try:
            value = _evaluate(op, xs, attrs, self.opset)
        except UnsupportedError:
            raise
        except Exception as exc:  # numpy's complaint about a malformed constant sub-graph
            raise UnsupportedError(f"node {name!r} ({op}): cannot compute it from its constant inputs "
                                   f"({type(exc).__name__}: {exc})") from None
        value = np.asarray(value)
        if value.size > _max_folded():
            raise UnsupportedError(f"node {name!r} ({op}): computing it from constants gives {value.size} elements, "
                                   f"more than the limit of {_max_folded()}; mdfx refuses to fold tensors that large")
        return value

    def shape_of(self, t: str, attrs: dict[str, Any]) -> np.ndarray:
        shape = [(_SYM if d == BATCH else d) for d in self._shape(t)]
        start, end = attrs.get("start", 0), attrs.get("end")
        return np.array(shape[start:end], dtype=np.int64)

    def _shape(self, t: str) -> tuple[int, ...]:
        if t in self.consts:
            return tuple(np.shape(self.consts[t]))
        return self.shapes[t]

    def ints(self, t: str, name: str, what: str, batch_ok: bool = False) -> list[int] | None:
        """A constant int input (an attribute in the graph IR), or None when omitted."""
        if not t:
            return None
        if t not in self.consts:
            raise UnsupportedError(f"node {name!r}: its {what} ({t!r}) is computed from the inputs; mdfx needs "
                                   "it constant")
        values = [int(v) for v in np.asarray(self.consts[t]).reshape(-1)]
        if not batch_ok and _SYM in values:
            raise UnsupportedError(f"node {name!r}: its {what} depends on the batch size")
        return values

    def scalar(self, t: str, name: str, what: str) -> float | None:
        if not t:
            return None
        if t not in self.consts:
            raise UnsupportedError(f"node {name!r}: its {what} ({t!r}) is computed from the inputs; mdfx needs "
                                   "it constant")
        value = np.asarray(self.consts[t])
        if value.size != 1:
            raise UnsupportedError(f"node {name!r}: its {what} has shape {value.shape}; mdfx takes a scalar")
        return float(value.reshape(-1)[0])

    # --- ops -----------------------------------------------------------------------------

    def emit(self, name: str, op: str, inputs: list[str], output: str, attrs: dict[str, Any]) -> None:
        """Add a graph node and infer its shape now (later translations read shapes)."""
        gop = ops.graph_op(op)
        tensors = [self.tensor(t, name, op) for t in inputs]
        where = f"node {name!r} ({op}): "
        filled = gop.fill(attrs, where)
        try:
            shape = gop.infer([self.shapes[t] if t else None for t in tensors], **filled)
        except ops.ShapeError as exc:
            shapes = ", ".join(f"{t}: {ops._fmt(self.shapes[t])}" for t in tensors if t)
            raise UnsupportedError(f"{where}{exc}; input shapes: {shapes}") from None
        # before anything runs: a tiny file can declare a huge product of two small params
        # (an (N,1)+(1,N) Add), which run() would allocate even when nothing reads it
        batched = bool(shape) and shape[0] == BATCH
        limits.check_elements(shape[1:] if batched else shape, f"{self.where}: {where}output {output!r}"
                              + (" per sample" if batched else ""))
        if op == "Reshape" and shape and shape[0] == BATCH:
            # the resolved target: the batch as 0 (copied from the input), every other size spelled out
            filled["shape"], filled["allowzero"] = [0, *shape[1:]], 0
        self.shapes[output] = tuple(int(d) for d in shape)
        self.nodes.append(Node(name, op, tensors, output, filled))

    # --- a batch moved off axis 0 (time-major recurrent layers) ----------------------------

    def _move(self, out: str, graph_tensor: str, perm: list[int]) -> None:
        """Record ONNX tensor ``out`` = transpose(graph tensor, perm), its batch off axis 0."""
        self.moved[out] = (graph_tensor, perm)
        gshape = self.shapes[graph_tensor]
        self.shapes[out] = tuple(gshape[p] for p in perm)

    def _settle(self, name: str, out: str, graph_tensor: str, perm: list[int]) -> None:
        """``out`` = transpose(graph tensor, perm): a graph tensor when the batch is back on axis 0."""
        if perm == sorted(perm):
            producer = next((n for n in reversed(self.nodes) if n.output == graph_tensor), None)
            readers = any(graph_tensor in n.inputs for n in self.nodes) or \
                sum(src == graph_tensor for src, _ in self.moved.values()) > 1
            if producer is not None and not readers:  # the op writes ``out`` itself: no copy
                producer.output = out
                self.shapes[out] = self.shapes[graph_tensor]
                return
            self.emit(name, "Identity", [graph_tensor], out, {})
        elif perm[0] == 0:
            self.emit(name, "Transpose", [graph_tensor], out, {"perm": perm})
        else:
            self._move(out, graph_tensor, perm)

    def follow_moved(self, op: str, ins: list[str], outs: list[str], attrs: dict[str, Any], name: str) -> None:
        """An op reading a tensor whose batch a Transpose moved off axis 0 (the legacy exporter's
        time-major ``(T, batch, ...)`` around LSTM/GRU/RNN): the graph keeps the batch-first tensor
        and rewrites the op's axes; ops it cannot follow are refused by name."""
        x, out = ins[0], outs[0]
        src, perm = self.moved.get(x, (x, None))
        others = [t for t in ins[1:] if t in self.moved]
        if op in _RECURRENT and not others:
            self.recurrent(op, ins, outs, attrs, name)
            return
        if op == "Concat" and all(self.moved.get(t, ("", None))[1] == perm for t in ins):
            axis = int(attrs["axis"]) % len(perm)
            joined = f"{out}:batch_first"
            self.emit(name, "Concat", [self.moved[t][0] for t in ins], joined, {"axis": perm[axis]})
            self._move(out, joined, perm)
            return
        if op in _BINARY and len(ins) == 2 and self.broadcast_moved(op, ins, out, name):
            return
        if op == "MatMul" and not others and perm is not None and perm[-1] == len(perm) - 1 \
                and BATCH not in self._shape(ins[1]) and len(self._shape(ins[1])) == 2:
            done = f"{out}:batch_first"  # x @ W over the last axis: the same product of the graph tensor
            self.emit(name, "MatMul", [src, ins[1]], done, {})
            self._move(out, done, perm)
            return
        if others or perm is None:
            pass
        elif op == "Slice" and len(ins) >= 3:
            starts, ends = self.ints(ins[1], name, "starts"), self.ints(ins[2], name, "ends")
            axes = self.ints(ins[3], name, "axes") if len(ins) > 3 and ins[3] else list(range(len(starts)))
            steps = self.ints(ins[4], name, "steps") if len(ins) > 4 and ins[4] else None
            gaxes = [perm[a % len(perm)] for a in axes]
            if 0 not in gaxes:  # never the batch
                done = f"{out}:batch_first"
                self.emit(name, "Slice", [src], done, {"starts": starts, "ends": ends, "axes": gaxes, "steps": steps})
                self._move(out, done, perm)
                return
        elif op == "Reshape" and len(ins) > 1 and self.reshape_moved(name, src, perm, x, ins[1], out):
            return
        elif op == "Transpose":
            q = [int(p) for p in attrs.get("perm", range(len(perm) - 1, -1, -1))]
            self._settle(name, out, src, [perm[i] for i in q])
            return
        elif op == "Shape":
            self.consts[out] = self.shape_of(x, attrs)
            return
        elif op == "Squeeze":
            axes = self.ints(ins[1], name, "axes") if len(ins) > 1 else attrs.get("axes")
            axes = [a % len(perm) for a in axes] if axes is not None else \
                [i for i, d in enumerate(self._shape(x)) if d == 1]
            gaxes = sorted(perm[a] for a in axes)
            squeezed = f"{out}:batch_first"
            self.emit(name, "Squeeze", [src], squeezed, {"axes": gaxes})
            kept = [perm[i] for i in range(len(perm)) if i not in axes]
            self._settle(f"{name}:order", out, squeezed, [sorted(kept).index(g) for g in kept])
            return
        elif op == "Gather" and ins[1] in self.consts and np.ndim(self.consts[ins[1]]) == 0:
            axis = int(attrs.get("axis", 0)) % len(perm)
            picked = f"{out}:batch_first"
            self.gather(name, [src, ins[1]], picked, {"axis": perm[axis]})
            kept = [perm[i] for i in range(len(perm)) if i != axis]
            self._settle(f"{name}:order", out, picked, [sorted(kept).index(g) for g in kept])
            return
        elif op in _MOVED_ELEMENTWISE:
            done = f"{out}:batch_first"
            elementwise = find_import_rule(op, self.opset)
            assert elementwise is not None  # every op of _MOVED_ELEMENTWISE has a rule at every opset
            elementwise(self, OnnxNode(name, op, [src], [done], attrs))
            self._settle(f"{name}:order", out, done, perm)
            return
        axis = self._shape(x).index(BATCH) if BATCH in self._shape(x) else "?"
        raise UnsupportedError(f"node {name!r} ({op}) reads {x!r}, whose batch a Transpose moved to axis {axis}; "
                               "mdfx follows a moved batch through Transpose, Squeeze, Gather of one index, "
                               f"elementwise ops and {', '.join(_RECURRENT)} (layout 0) only")

    def broadcast_moved(self, op: str, ins: list[str], out: str, name: str) -> bool:
        """A binary elementwise op whose result has the batch off axis 0 (an operand moved by a
        Transpose, or broadcasting ``(1, 1, H) + (batch, H)`` as the dynamo exporter's unrolled RNNs
        write it): each operand is brought to the graph order of the result's axes (the batch first,
        then the others in order) by Unsqueeze and Transpose, the op runs there, and the result is a
        moved tensor. False when the result keeps the batch on axis 0 and nothing is moved."""
        shapes = [tuple(self._shape(t)) for t in ins]
        n = max(len(sh) for sh in shapes)
        padded = [(1,) * (n - len(sh)) + sh for sh in shapes]
        result = []
        for dims in zip(*padded, strict=True):
            d = {v for v in dims if v != 1}
            if len(d) > 1:
                return False  # not broadcastable: the ordinary path reports it
            result.append(d.pop() if d else 1)
        if BATCH not in result:
            return False
        k = result.index(BATCH)
        if k == 0 and not any(t in self.moved for t in ins):
            return False
        order = [k] + [i for i in range(n) if i != k]  # graph axis j holds the result's ONNX axis order[j]
        operands = [self._to_order(t, sh, n, k, order, f"{name}:operand{i}") for i, (t, sh) in
                    enumerate(zip(ins, shapes, strict=True))]
        done = f"{out}:batch_first"
        self.emit(name, op, operands, done, {})
        self._settle(f"{name}:order", out, done, [order.index(i) for i in range(n)])
        return True

    def _to_order(self, t: str, shape: tuple, n: int, k: int, order: list[int], name: str) -> str:
        """ONNX tensor ``t`` (padded to rank ``n`` with leading 1s) as transpose(padded, order) in the graph."""
        pad = n - len(shape)
        if t in self.moved:
            src, perm = self.moved[t]
            if shape.index(BATCH) + pad != k:
                raise UnsupportedError(f"node {name!r}: operand {t!r} has its batch on another axis than the result")
            rank = len(perm)
            if pad:
                src = self._emit_tmp(name, "Unsqueeze", [src], {"axes": list(range(rank, rank + pad))})
            q = [rank + order[j] if order[j] < pad else perm[order[j] - pad] for j in range(n)]
            return src if q == sorted(q) else self._emit_tmp(name, "Transpose", [src], {"perm": q})
        if BATCH in shape:
            if shape.index(BATCH) + pad != k:
                raise UnsupportedError(f"node {name!r}: operand {t!r} has its batch on another axis than the result")
            return self._emit_tmp(name, "Unsqueeze", [t], {"axes": list(range(1, k + 1))}) if k else t
        if t in self.consts and t not in self.learnable:
            arranged = f"{t}:{name}"
            self.consts[arranged] = np.ascontiguousarray(np.transpose(np.reshape(self.consts[t], (1,) * pad + shape),
                                                                      order))
            self.const_dtype[arranged] = self.const_dtype.get(t, _dtype_name(np.asarray(self.consts[t])))
            return arranged
        x = self._emit_tmp(name, "Unsqueeze", [t], {"axes": list(range(pad))}) if pad else t
        return x if order == sorted(order) else self._emit_tmp(name, "Transpose", [x], {"perm": order})

    def _emit_tmp(self, name: str, op: str, ins: list[str], attrs: dict[str, Any]) -> str:
        out = f"{name}:{op.lower()}"
        while out in self.shapes:
            out += "_"
        self.emit(out, op, ins, out, attrs)
        return out

    def reshape_moved(self, name: str, src: str, perm: list[int], x: str, target_t: str, out: str) -> bool:
        """Reshape of a moved tensor that keeps its axes up to the batch and regroups the axes after it,
        when those are the graph tensor's last axes in order (time-major (T, batch, D, H) -> (T, batch,
        D * H) between bidirectional layers): the same Reshape of the graph tensor."""
        shape = self._shape(x)
        k = shape.index(BATCH)
        target = self.ints(target_t, name, "target shape", batch_ok=True)
        if target is None or len(target) <= k:
            return False
        resolved = [shape[i] if v == 0 and i < len(shape) else (BATCH if v == _SYM else v) for i, v in enumerate(target)]
        if list(resolved[:k + 1]) != list(shape[:k + 1]) and not (resolved[k] == -1 and resolved[:k] == list(shape[:k])):
            return False
        tail = perm[k + 1:]
        gshape = self.shapes[src]
        if tail != list(range(len(gshape) - len(tail), len(gshape))):
            return False
        head = len(gshape) - len(tail)  # the graph tensor's axes kept as they are
        reshaped = f"{out}:batch_first"
        self.emit(name, "Reshape", [src], reshaped, {"shape": [0, *gshape[1:head], *resolved[k + 1:]]})
        self._move(out, reshaped, [*perm[:k + 1], *range(head, head + len(resolved) - k - 1)])
        return True

    def _torch_recurrent(self) -> list[dict[str, Any]]:
        """torch's exporter writes layer k of module ``a.b`` as node ``/a/b/LSTM_k`` with generated weight
        names: recorded so that :func:`mdfx.io.state_dict` writes the module's own keys
        (``a.b.weight_ih_l0``...) in torch's gate order."""
        if self.model.producer_name != "pytorch":
            return []
        out = []
        layers: dict[str, int] = {}
        for n in self.nodes:
            if n.op not in _RECURRENT or len(n.inputs) < 4 or not n.inputs[3]:
                continue
            if not all(t in self.params and is_generated_name(t) for t in n.inputs[1:4]):
                continue
            m = re.match(r"^/(?P<path>.+)/(?P<op>LSTM|GRU|RNN)(?:_(?P<k>\d+))?$", n.name)  # the legacy exporter
            scopes = self.scopes.get(n.name, {}).get("pkg.torch.onnx.name_scopes")  # the dynamo exporter
            if m is not None and m["op"] == n.op:
                path, layer = m["path"].replace("/", "."), int(m["k"] or 0)
            elif scopes:
                try:
                    names = [str(v) for v in json.loads(scopes.replace("'", '"'))]
                except ValueError:
                    continue
                path = ".".join(v for v in names[1:-1] if v)
                layer = layers.get(path, 0)
                layers[path] = layer + 1
            else:
                continue
            out.append({"module": path, "layer": layer, "op": n.op, "W": n.inputs[1], "R": n.inputs[2],
                        "B": n.inputs[3]})
        return out

    def recurrent(self, op: str, ins: list[str], outs: list[str], attrs: dict[str, Any], name: str) -> None:
        """ONNX LSTM / GRU / RNN as the graph's batch-first op (see mdfx.recurrence): a layout-0 X
        must be a time-major Transpose of a batch-first tensor; Y and Y_h come back moved the same
        way; constant initial states are transposed; Y_c and dynamic sequence_lens are refused."""
        ins = ins + [""] * (8 - len(ins))
        outs = outs + [""] * (3 - len(outs))
        layout = int(attrs.get("layout", 0))
        where = f"{self.where}: node {name!r} ({op})"
        if op == "LSTM" and outs[2] and self._used(outs[2]):
            raise UnsupportedError(f"{where}: its cell-state output Y_c ({outs[2]!r}) is used; mdfx's {op} gives "
                                   "Y (and Y_h, a slice of it); use the hidden state")
        x = ins[0]
        if layout == 0:
            src, perm = self.moved.get(x, (None, None))
            if src is None or perm != [1, 0, 2]:
                raise UnsupportedError(f"{where}: layout 0 reads X as (T, batch, input); mdfx takes it when X is a "
                                       "Transpose(perm=[1, 0, 2]) of a batch-first tensor (as torch's exporter "
                                       "writes batch_first=True), or layout=1")
            x = src
        T = self.shapes[x][1]
        seq = ins[4]
        if seq:
            if seq not in self.consts:
                raise UnsupportedError(f"{where}: sequence_lens ({seq!r}) is computed from the inputs; mdfx runs "
                                       "every sequence to its full length (dynamic sequence lengths are not "
                                       "supported)")
            if np.any(np.asarray(self.consts[seq]) != T):
                raise UnsupportedError(f"{where}: sequence_lens {np.asarray(self.consts[seq]).tolist()} is not the "
                                       f"full length {T} for every sample; dynamic sequence lengths are not supported")
        states = []
        for i, t in enumerate((ins[5], ins[6]) if op == "LSTM" else (ins[5],)):
            if not t:
                states.append("")
            elif t in self.consts and t not in self.learnable:
                value = np.asarray(self.consts[t])
                fixed = f"{t}:batch_first"
                self.consts[fixed] = np.ascontiguousarray(np.transpose(value, (1, 0, 2)) if layout == 0 else value)
                self.const_dtype[fixed] = self.const_dtype.get(t, _dtype_name(value))
                states.append(fixed)
            elif layout == 0 and self.moved.get(t, ("", None))[1] == [1, 0, 2]:
                states.append(self.moved[t][0])
            elif layout == 0 and t not in self.moved and len(self._shape(t)) == 3 and BATCH not in self._shape(t) \
                    and self._shape(t)[1] == 1:
                # (D, 1, H) computed from params (a learnable state Expanded to the batch, as mdfx's export
                # writes it): one state for every sample, the graph op's (1, D, H)
                states.append(self._emit_tmp(f"{name}:state{i}", "Transpose", [t], {"perm": [1, 0, 2]}))
            elif layout == 1 and t not in self.moved:
                states.append(t)
            else:
                raise UnsupportedError(f"{where}: initial state {('initial_h', 'initial_c')[i]} ({t!r}) is neither a "
                                       "constant nor a tensor with the batch where the layout says")
        keep = ("hidden_size", "direction", "activations", "activation_alpha", "activation_beta", "clip",
                "linear_before_reset", "input_forget")
        graph_attrs = {k: v for k, v in attrs.items() if k in keep and k in ops.graph_op(op).attrs}
        graph_attrs.setdefault("hidden_size", self.consts[ins[2]].shape[-1] if ins[2] in self.consts else 0)
        y = outs[0] if layout == 1 and outs[0] else f"{outs[0] or name}:batch_first"
        inputs = [x, ins[1], ins[2], ins[3], *states] + ([ins[7]] if op == "LSTM" and ins[7] else [])
        self.emit(name, op, inputs, y, graph_attrs)
        if outs[0] and layout == 0:
            self._move(outs[0], y, [1, 2, 0, 3])  # (T, D, batch, H) from (batch, T, D, H)
        if outs[1] and self._used(outs[1]):
            self.last_state(name, y, outs[1], layout, str(graph_attrs.get("direction", "forward")), T)

    def last_state(self, name: str, y: str, out: str, layout: int, direction: str, T: int) -> None:
        """Y_h: each direction's last step of Y (T - 1 forward, 0 reverse), (batch, D, H)."""
        picks = []
        dirs = 2 if direction == "bidirectional" else 1
        for d in range(dirs):
            t = 0 if direction == "reverse" or d == 1 else T - 1
            piece = f"{out}:dir{d}"
            self.emit(f"{name}:Y_h{d}", "Slice", [y], piece, {"starts": [t, d], "ends": [t + 1, d + 1],
                                                              "axes": [1, 2], "steps": None})
            picks.append(piece)
        joined = picks[0]
        if dirs > 1:
            joined = f"{out}:dirs"
            self.emit(f"{name}:Y_h", "Concat", picks, joined, {"axis": 2})
        batch_first = out if layout == 1 else f"{out}:batch_first"
        self.emit(f"{name}:Y_h_squeeze", "Squeeze", [joined], batch_first, {"axes": [1]})
        if layout == 0:
            self._move(out, batch_first, [1, 0, 2])

    def reshape(self, name: str, ins: list[str], out: str, attrs: dict[str, Any]) -> None:
        target = self.ints(ins[1], name, "target shape", batch_ok=True) if len(ins) > 1 else attrs["shape"]
        x = self._shape(ins[0])
        batched = bool(x) and x[0] == BATCH
        if _SYM in target[1:]:
            raise UnsupportedError(f"node {name!r} (Reshape): the batch size lands on axis "
                                   f"{target[1:].index(_SYM) + 1}; mdfx keeps the batch on axis 0")
        if target and target[0] == _SYM:
            target[0], attrs["allowzero"] = 0, 0
        elif batched and target and self.batch_size is not None and target[0] == self.batch_size:
            # a fixed-batch export writes its batch size literally (the dynamo exporter with
            # allowzero=1): the batch is copied from the input, whatever its size
            target[0], attrs["allowzero"] = 0, 0
        given = {"allowzero": int(attrs["allowzero"])} if "allowzero" in attrs else {}  # else the table's
        self.emit(name, "Reshape", ins[:1], out, {"shape": target, **given})

    def gather(self, name: str, ins: list[str], out: str, attrs: dict[str, Any]) -> None:
        """Gather from a table (an embedding lookup by integer inputs): the Gather op; of constant
        indices along a feature axis: Slice (and Squeeze for a scalar index)."""
        x = self._shape(ins[0])
        if ins[1] not in self.consts:
            self.emit(name, "Gather", ins, out, {"axis": int(attrs.get("axis", 0))})
            return
        axis = int(attrs.get("axis", 0)) % len(x)
        idx = self.ints(ins[1], name, "indices")
        scalar = np.ndim(self.consts[ins[1]]) == 0
        assert idx is not None
        idx = [i % x[axis] for i in idx]
        if x[0] == BATCH and axis == 0:
            raise UnsupportedError(f"node {name!r} (Gather) picks samples of the batch (axis 0); mdfx keeps "
                                   "the batch whole")
        if np.ndim(self.consts[ins[1]]) > 1 or idx != list(range(idx[0], idx[0] + len(idx))):
            self.emit(name, "Gather", ins, out, {"axis": axis})  # any other constant pick
            return
        sliced = out if not scalar else f"{out}:slice"
        self.emit(name, "Slice", ins[:1], sliced, {"starts": [idx[0]], "ends": [idx[-1] + 1], "axes": [axis],
                                                  "steps": None})
        if scalar:
            self.emit(f"{name}:squeeze", "Squeeze", [sliced], out, {"axes": [axis]})

    def expand(self, name: str, ins: list[str], out: str) -> None:
        """Expand of a computed tensor: ``x + zeros(shape)``, the same values and gradient."""
        target = self.ints(ins[1], name, "shape", batch_ok=True)
        assert target is not None
        shape = [1 if d == _SYM else d for d in target]
        zeros = f"{out}:zeros"
        self.consts[zeros] = np.zeros(shape)
        self.emit(name, "Add", [ins[0], zeros], out, {})

    def split(self, name: str, ins: list[str], outs: list[str], attrs: dict[str, Any]) -> None:
        """Split becomes one Slice per (used) output."""
        x = self._shape(ins[0])
        axis = int(attrs.get("axis", 0)) % len(x)
        sizes = self.ints(ins[1], name, "split") if len(ins) > 1 and ins[1] else attrs.get("split")
        if not sizes:
            n = int(attrs.get("num_outputs", len(outs)))
            if x[axis] == BATCH:
                raise UnsupportedError(f"node {name!r} (Split) splits the batch axis; mdfx keeps it whole")
            chunk = -(-x[axis] // n)
            sizes = [min(chunk, x[axis] - i * chunk) for i in range(n)]
        if all(t in self.consts for t in ins[:1]):
            parts = np.split(self.consts[ins[0]], np.cumsum(sizes)[:-1], axis=axis)
            self.consts.update({o: p for o, p in zip(outs, parts, strict=False) if o})
            return
        start = 0
        for i, (o, size) in enumerate(zip(outs, sizes, strict=False)):
            if o:
                self.emit(name if i == 0 else f"{name}:{i}", "Slice", ins[:1], o,
                          {"starts": [start], "ends": [start + int(size)], "axes": [axis], "steps": None})
            start += int(size)


# --- helpers ---------------------------------------------------------------------------


def _node_name(node: Any, i: int) -> str:
    return node.name or (node.output[0] if node.output else f"{node.op_type}_{i}")


def _type_name(elem_type: int) -> str:
    """ONNX's name of a TensorProto element type (``INT4``), or its number."""
    try:
        import onnx

        return onnx.TensorProto.DataType.Name(elem_type)
    except (ImportError, ValueError):
        return str(elem_type)


def _dtype_name(value: np.ndarray) -> str:
    return "str" if value.dtype.kind in "OSU" else str(value.dtype)


def _clamp(values: Sequence[int] | None) -> list[int] | None:
    """Slice bounds as Python ints (exporters write INT64_MAX for "to the end": Python slices take it)."""
    return None if values is None else [int(v) for v in values]


def _attribute(attr: Any, to_array: Callable[[Any], np.ndarray]) -> Any:
    """An attribute value as Python / numpy (tensors -> arrays, bytes -> str)."""
    from onnx import helper

    value = helper.get_attribute_value(attr)
    if hasattr(value, "dims") and hasattr(value, "data_type"):
        if value.data_type in _COMPLEX:
            raise SchemaError(f"tensor attribute {value.name!r} has ONNX element type {value.data_type} "
                              f"({_COMPLEX[value.data_type]}); mdfx reads real numbers")
        limits.check_elements(tuple(value.dims), f"tensor attribute {value.name!r}")
        array = to_array(value)
        if array.dtype.kind == "f":
            validate.weights(array, f"tensor attribute {value.name!r}")  # finite
        return array
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value


def _constant(attrs: dict[str, Any], name: str) -> np.ndarray:
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64), ("value_string", object),
                       ("value_strings", object)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise UnsupportedError(f"node {name!r} (Constant): no value attribute mdfx reads ({', '.join(attrs)})")


def _valued_fold_size(op: str, xs: list[np.ndarray | None]) -> int | None:
    """Elements ``op`` over constants ``xs`` would produce when a constant's VALUES set the size
    (ConstantOfShape, Expand, Tile, Range), computed without allocating; None for other ops."""
    try:
        if op in ("ConstantOfShape", "Expand", "Tile") and len(xs) > (0 if op == "ConstantOfShape" else 1):
            given = [1 if int(v) == _SYM else int(v) for v in np.ravel(xs[0 if op == "ConstantOfShape" else 1])]
            if op == "ConstantOfShape":
                return limits.elements(max(d, 0) for d in given)
            if op == "Tile":
                return limits.elements(max(d, 0) for d in given) * int(np.size(xs[0]))
            shape = np.shape(xs[0])
            rank = max(len(shape), len(given))
            padded = [1] * (rank - len(shape)) + list(shape), [1] * (rank - len(given)) + given
            return limits.elements(max(a, b) if 1 in (a, b) else a for a, b in zip(*padded, strict=True))
        if op == "Range" and len(xs) == 3 and all(x is not None and np.size(x) == 1 for x in xs):
            start, end, step = (float(np.ravel(x)[0]) for x in xs)
            if step == 0 or not all(np.isfinite((start, end, step))):
                return None  # numpy refuses it without allocating
            return max(int(np.ceil((end - start) / step)), 0)
    except (TypeError, ValueError, OverflowError):
        return None  # malformed: _evaluate reports it
    return None


def _evaluate(op: str, xs: list[np.ndarray | None], attrs: dict[str, Any], opset: int) -> np.ndarray:
    """An op over constants, in numpy: shape arithmetic exactly, float ops with the reference rules."""
    x = xs[0]
    if op == "Identity" or op == "Dropout":
        return x
    if op == "CastLike":  # the dynamo exporter's cast of a constant to another tensor's type
        return np.asarray(x).astype(np.asarray(xs[1]).dtype)
    if op == "Cast":
        to = int(attrs["to"])
        np_types = {1: np.float32, 10: np.float16, 11: np.float64, **ops.CAST_LABEL_TYPES}
        if to not in np_types:  # bfloat16, 4-bit, float8: numpy cannot round, wrap or saturate like them
            raise UnsupportedError(f"Cast of a constant to={to} ({_type_name(to)}) is not supported; mdfx folds "
                                   "casts to float16/32/64 and integer, bool and string types")
        return np.asarray(x).astype(np_types[to])
    if op == "Shape":
        return np.array(np.shape(x)[attrs.get("start", 0):attrs.get("end")], dtype=np.int64)
    if op == "Size":
        return np.array(np.size(x), dtype=np.int64)
    if op == "ConstantOfShape":  # a batch-sized constant (torch.zeros(x.size(0), n)) broadcasts from 1
        value = attrs.get("value", np.zeros(1, np.float32))
        shape = [1 if int(v) == _SYM else int(v) for v in x]
        return np.full(shape, np.asarray(value).reshape(-1)[0], dtype=np.asarray(value).dtype)
    if op == "Range":
        return np.arange(xs[0], xs[1], xs[2])
    if op == "Gather":
        return np.take(x, np.asarray(xs[1]).astype(np.int64), axis=int(attrs.get("axis", 0)))
    if op == "Unsqueeze":
        axes = attrs.get("axes") if len(xs) < 2 or xs[1] is None else [int(a) for a in np.asarray(xs[1]).ravel()]
        rank = np.ndim(x) + len(axes)
        return np.expand_dims(x, tuple(sorted(a % rank for a in axes)))
    if op == "Squeeze":
        axes = attrs.get("axes") if len(xs) < 2 or xs[1] is None else [int(a) for a in np.asarray(xs[1]).ravel()]
        return np.squeeze(x, None if axes is None else tuple(axes))
    if op == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in xs if v is not None], axis=int(attrs["axis"]))
    if op == "Slice":
        if len(xs) > 1:
            starts, ends = list(np.ravel(xs[1])), list(np.ravel(xs[2]))
            axes = list(np.ravel(xs[3])) if len(xs) > 3 and xs[3] is not None else list(range(len(starts)))
            steps = list(np.ravel(xs[4])) if len(xs) > 4 and xs[4] is not None else [1] * len(starts)
        else:
            starts, ends = attrs["starts"], attrs["ends"]
            axes, steps = attrs.get("axes", list(range(len(starts)))), [1] * len(starts)
        index = [slice(None)] * np.ndim(x)
        for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
            index[int(a)] = slice(int(s), int(e), int(st))
        return np.asarray(x)[tuple(index)]
    if op == "Reshape":
        shape = [int(v) for v in (xs[1] if len(xs) > 1 else attrs["shape"])]
        shape = [np.shape(x)[i] if v == 0 and not attrs.get("allowzero") else v for i, v in enumerate(shape)]
        return np.reshape(x, shape)
    if op == "Expand":  # as ConstantOfShape: the batch axis stays 1 and broadcasts
        shape = [1 if int(v) == _SYM else int(v) for v in xs[1]]
        return np.broadcast_to(x, np.broadcast_shapes(np.shape(x), tuple(shape))).copy()
    if op == "Tile":
        return np.tile(x, [int(v) for v in xs[1]])
    if op == "Equal":
        return np.equal(xs[0], xs[1])
    if op == "Less":
        return np.less(xs[0], xs[1])
    if op == "Greater":
        return np.greater(xs[0], xs[1])
    if op == "Not":
        return np.logical_not(x)
    if op in ("And", "Or"):
        return (np.logical_and if op == "And" else np.logical_or)(xs[0], xs[1])
    if op in ("LessOrEqual", "GreaterOrEqual"):
        return (np.less_equal if op == "LessOrEqual" else np.greater_equal)(xs[0], xs[1])
    if op == "Mod":
        _no_batch(op, xs)
        a, b = np.asarray(xs[0]), np.asarray(xs[1])
        if a.dtype.kind in "iu" and np.any(b == 0):
            raise UnsupportedError("Mod of integers by zero")
        # fmod=0 (integers): the sign of the divisor, as Python's %; fmod=1: C's fmod, the dividend's sign
        return np.fmod(a, b) if attrs.get("fmod", 0) else np.mod(a, b)
    if op == "Trilu":  # a causal mask: torch.triu / tril of a constant
        k = int(np.ravel(xs[1])[0]) if len(xs) > 1 and xs[1] is not None else 0
        return np.triu(x, k) if attrs.get("upper", 1) else np.tril(x, k)
    if op == "Where":
        return np.where(xs[0], xs[1], xs[2])
    if op in ("Min", "Max"):
        fn = np.minimum if op == "Min" else np.maximum
        out = xs[0]
        for v in xs[1:]:
            out = fn(out, v)
        return out
    if op in ("Floor", "Ceil"):
        return np.floor(x) if op == "Floor" else np.ceil(x)
    ints = all(v is None or np.asarray(v).dtype.kind in "iub" for v in xs)
    if ints and op in ("Add", "Sub", "Mul", "Div", "Neg", "Abs"):
        a = np.asarray(xs[0])
        if _SYM in np.asarray(xs[0]).ravel().tolist() + (np.asarray(xs[1]).ravel().tolist() if len(xs) > 1 else []):
            raise UnsupportedError(f"{op} of a shape holding the batch size: mdfx keeps the batch symbolic")
        if op == "Neg":
            return -a
        if op == "Abs":
            return np.abs(a)
        b = np.asarray(xs[1])
        if op == "Div":
            return (np.trunc(a / b)).astype(np.result_type(a, b))  # ONNX integer division truncates
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](a, b)
    # float ops: the reference rules, in float64, on the given dtype's values
    floats = [None if v is None else np.asarray(v, dtype=np.float64) for v in xs]
    graph_op = {"Pow": "Pow", "Clip": "Clip"}.get(op, op)
    if op == "Pow":
        return np.power(floats[0], floats[1])
    if op == "Clip":
        bounds = ops.graph_op("Clip").fill({k: v for k, v in attrs.items() if k in ("min", "max")})
        lo = floats[1] if len(floats) > 1 and floats[1] is not None else bounds["min"]
        hi = floats[2] if len(floats) > 2 and floats[2] is not None else bounds["max"]
        return np.clip(floats[0], lo, hi)
    if op in ("ReduceSum", "ReduceMean", "ReduceMax"):
        axes = [int(a) for a in np.ravel(xs[1])] if len(xs) > 1 and xs[1] is not None else attrs.get("axes")
        gop = ops.graph_op(op)  # keepdims' default comes from the op table
        return gop.forward([floats[0]], **gop.fill({**{k: v for k, v in attrs.items() if k == "keepdims"},
                                                    "axes": axes}))
    if graph_op not in ops.GRAPH_OPS:
        raise UnsupportedError(f"{op} of constants is not computed at import")
    gop = ops.graph_op(graph_op)
    given = {k: v for k, v in attrs.items() if k in gop.attrs}
    if op in ("Softmax", "LogSoftmax") and opset < 13:
        given.setdefault("axis", 1)  # opsets < 13 default to axis 1 (the op table holds opset 13's -1)
    return gop.forward([f for f in floats if f is not None], **gop.fill(given))


def _no_batch(op: str, xs: list[np.ndarray | None]) -> None:
    """Integer arithmetic on a shape that holds the batch size is refused: it stays a symbol."""
    for v in xs:
        if v is not None and np.asarray(v).dtype.kind in "iu" and _SYM in np.asarray(v).ravel().tolist():
            raise UnsupportedError(f"{op} of a shape holding the batch size: mdfx keeps the batch symbolic")


def _mdfx_names(model: Any, key: str) -> dict[str, str]:
    """A ``{onnx name: mdfx name}`` map that mdfx's own export recorded under ``key``."""
    for prop in model.metadata_props:
        if prop.key == key:
            try:
                return {str(k): str(v) for k, v in json.loads(prop.value).items()}
            except (ValueError, AttributeError):
                return {}  # someone else's metadata under our key: names stay ONNX's
    return {}


def _mdfx_list(model: Any, key: str) -> list[str] | None:
    """A JSON list of names that mdfx's own export recorded under ``key`` (None without one)."""
    for prop in model.metadata_props:
        if prop.key == key:
            try:
                value = json.loads(prop.value)
            except ValueError:
                return None
            return [str(v) for v in value] if isinstance(value, list) else None
    return None


def _rename(inputs: dict[str, tuple[int, ...]], nodes: list[Node], outputs: list[str], renames: dict[str, str],
            taken: set[str]) -> tuple[dict[str, tuple[int, ...]], list[Node], list[str]]:
    """Graph inputs and outputs under the names mdfx's export recorded (a round trip keeps them)."""
    used = taken | {n.output for n in nodes} | set(inputs)
    safe = {k: v for k, v in renames.items() if k != v and v not in used and (k in inputs or k in outputs)}
    if len(set(safe.values())) != len(safe):
        return inputs, nodes, outputs
    new_inputs = {safe.get(k, k): v for k, v in inputs.items()}
    for n in nodes:
        n.inputs = [safe.get(t, t) for t in n.inputs]
        n.output = safe.get(n.output, n.output)
    return new_inputs, nodes, [safe.get(t, t) for t in outputs]


def _rule_key(node: Any) -> str:
    """The registry key of an ONNX node: its op type, prefixed by a domain other than the default."""
    domain = node.domain or "ai.onnx"
    return node.op_type if domain == "ai.onnx" else f"{domain}.{node.op_type}"


def _given(n: OnnxNode, op: str | None = None) -> dict[str, Any]:
    """The node's attributes that graph op ``op`` (default: the node's own op) has; the op table
    fills the rest (attributes the IR does not model, such as LayerNormalization's stash_type, go)."""
    known = ops.graph_op(op or n.op).attrs
    return {k: v for k, v in n.attrs.items() if k in known}


# --- import rules, one per ONNX op (and opset where the op changed) ---------------------------------


@import_rule("Neg", "MatMul", "Gemm", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Exp",
             "Log", "Sqrt", "Abs", "Reciprocal", "Erf", "Gelu", "Softplus", "Elu", "Selu", "HardSigmoid",
             "Identity", "LayerNormalization", "Concat", "Flatten", "ArgMax")
def _direct(imp: _Importer, n: OnnxNode) -> None:
    """The graph op of the same name, with the file's attributes."""
    imp.emit(n.name, n.op, n.ins, n.out, _given(n))


@import_rule(*_BINARY)
def _binary(imp: _Importer, n: OnnxNode) -> None:
    """Numpy broadcasting; a result whose batch lands off axis 0 (``(1, 1, H) + (batch, H)``, as the
    dynamo exporter's unrolled RNNs write it) is computed batch-first and recorded as moved."""
    if len(n.ins) == 2 and imp.broadcast_moved(n.op, n.ins, n.out, n.name):
        return
    _direct(imp, n)


@import_rule("Transpose")
def _transpose(imp: _Importer, n: OnnxNode) -> None:
    """A perm that moves the batch off axis 0 (time-major recurrent layers) is followed, not
    computed: the output is recorded as a moved view of the batch-first tensor (see follow_moved)."""
    x = imp._shape(n.ins[0])
    perm = [int(p) for p in n.attrs.get("perm", range(len(x) - 1, -1, -1))]
    if x and x[0] == BATCH and perm[0] != 0:
        imp._move(n.out, n.ins[0], perm)
        return
    imp.emit(n.name, "Transpose", n.ins, n.out, {"perm": perm})


@import_rule(*_RECURRENT, before_folding=True)
def _recurrent(imp: _Importer, n: OnnxNode) -> None:
    """LSTM / GRU / RNN as the graph's batch-first op (several outputs: before the one-output check)."""
    imp.recurrent(n.op, n.ins, n.outs, n.attrs, n.name)


@import_rule("Constant", before_folding=True)
def _constant_rule(imp: _Importer, n: OnnxNode) -> None:
    imp.consts[n.out] = _constant(n.attrs, n.name)


@import_rule("Softmax", "LogSoftmax")
def _softmax_legacy(imp: _Importer, n: OnnxNode) -> None:
    """Opsets < 13: the default axis is 1 (the table holds opset 13's -1), and the op flattens the
    axes after it, which only equals the IR's op when the axis is the last one."""
    shape = imp._shape(n.ins[0])
    axis = n.attrs.get("axis", 1)
    if len(shape) > (axis % len(shape)) + 1:
        raise UnsupportedError(f"node {n.name!r} ({n.op}, opset {imp.opset}): axis {axis} of a rank "
                               f"{len(shape)} tensor flattens the trailing axes (opset < 13 "
                               "semantics); re-export at opset 13 or later")
    imp.emit(n.name, n.op, n.ins, n.out, {"axis": axis})


@import_rule("Softmax", "LogSoftmax", since=13)
def _softmax(imp: _Importer, n: OnnxNode) -> None:
    imp.emit(n.name, n.op, n.ins, n.out, _given(n))


@import_rule("Cast")
def _cast(imp: _Importer, n: OnnxNode) -> None:
    # a cast to int or string feeds a label lookup: it runs, and takes no gradient
    to = int(n.attrs["to"])
    if to not in FLOAT_TYPES and to not in ops.CAST_LABEL_TYPES:
        # 4-bit, 2-bit and float8/float4 targets wrap or saturate by ONNX's rules: an int64 stand-in
        # would return -9 where INT4 holds no -9
        raise UnsupportedError(
            f"node {n.name!r} (Cast): to={to} ({_type_name(to)}) is not supported; mdfx casts to float types "
            f"and to {', '.join(_type_name(t) for t in ops.CAST_LABEL_TYPES)} (a cast to a 4-bit, 2-bit or "
            "float8/float4 type would have to wrap or saturate as ONNX specifies, which mdfx does not "
            "implement); cast to a supported type in the model")
    imp.emit(n.name, "Cast" if to in FLOAT_TYPES else "CastLabel", n.ins, n.out, _given(n, "Cast"))


@import_rule("Clip")
def _clip(imp: _Importer, n: OnnxNode) -> None:
    """Bounds as attributes (opsets < 11) or constant inputs (11 on); an absent bound stays open."""
    given = _given(n)
    for i, bound in ((1, "min"), (2, "max")):
        if len(n.ins) > i and n.ins[i]:
            given[bound] = imp.scalar(n.ins[i], n.name, bound)
    imp.emit(n.name, "Clip", n.ins[:1], n.out, {k: float(v) for k, v in given.items()})


@import_rule("Pow")
def _pow(imp: _Importer, n: OnnxNode) -> None:
    imp.emit(n.name, "Pow", n.ins[:1], n.out, {"exponent": imp.scalar(n.ins[1], n.name, "exponent")})


@import_rule("Reshape")
def _reshape(imp: _Importer, n: OnnxNode) -> None:
    imp.reshape(n.name, n.ins, n.out, n.attrs)


@import_rule("Squeeze", "Unsqueeze")
def _squeeze(imp: _Importer, n: OnnxNode) -> None:
    """Axes as an attribute (opsets < 13) or a constant input; Squeeze without axes drops every 1."""
    axes = imp.ints(n.ins[1], n.name, "axes") if len(n.ins) > 1 else n.attrs.get("axes")
    if axes is None and n.op == "Squeeze":
        axes = [i for i, d in enumerate(imp._shape(n.ins[0])) if d == 1]
    imp.emit(n.name, n.op, n.ins[:1], n.out, {"axes": list(axes or [])})


@import_rule("Slice")
def _slice(imp: _Importer, n: OnnxNode) -> None:
    """Bounds as attributes (opset 9) or constant inputs (10 on), axes made non-negative."""
    if len(n.ins) > 1:
        starts, ends = imp.ints(n.ins[1], n.name, "starts"), imp.ints(n.ins[2], n.name, "ends")
        axes = imp.ints(n.ins[3], n.name, "axes") if len(n.ins) > 3 else None
        steps = imp.ints(n.ins[4], n.name, "steps") if len(n.ins) > 4 else None
    else:
        starts, ends, axes, steps = n.attrs["starts"], n.attrs["ends"], n.attrs.get("axes"), None
    rank = len(imp._shape(n.ins[0]))
    axes = list(axes) if axes is not None else list(range(len(starts or [])))
    imp.emit(n.name, "Slice", n.ins[:1], n.out, {"starts": _clamp(starts), "ends": _clamp(ends),
                                                 "axes": [a % rank for a in axes], "steps": steps})


def _reduce(imp: _Importer, n: OnnxNode, axes: list[int] | None) -> None:
    if not axes and n.attrs.get("noop_with_empty_axes", 0):
        imp.emit(n.name, "Identity", n.ins[:1], n.out, {})
        return
    imp.emit(n.name, n.op, n.ins[:1], n.out, {**_given(n), "axes": list(axes) if axes else None})


@import_rule("ReduceSum", "ReduceMean", "ReduceMax")
def _reduce_axes_attribute(imp: _Importer, n: OnnxNode) -> None:
    """Axes as an attribute: ReduceSum before opset 13, ReduceMean/ReduceMax before 18."""
    _reduce(imp, n, n.attrs.get("axes"))


@import_rule("ReduceSum", since=13)
@import_rule("ReduceMean", "ReduceMax", since=18)
def _reduce_axes_input(imp: _Importer, n: OnnxNode) -> None:
    """Axes as an optional constant input."""
    _reduce(imp, n, imp.ints(n.ins[1], n.name, "axes") if len(n.ins) > 1 else None)


@import_rule("Dropout")
def _dropout(imp: _Importer, n: OnnxNode) -> None:
    """The ratio is an attribute (opsets < 12) or a constant input; Dropout is identity either way."""
    given = _given(n)
    if len(n.ins) > 1 and n.ins[1]:
        given["ratio"] = imp.scalar(n.ins[1], n.name, "ratio")
    ratio = float(given.get("ratio", 0.5))
    if len(n.ins) > 2 and n.ins[2] and _training_mode(imp, n.ins[2], n.name) and ratio != 0:
        # training_mode=True draws a random mask and scales by 1 / (1 - ratio): not the identity
        raise UnsupportedError(
            f"node {n.name!r} (Dropout): training_mode=True with ratio {ratio:g} drops random elements and "
            "scales the rest by 1/(1-ratio); mdfx runs Dropout as at inference (the identity). Export the "
            "model in eval() mode (training_mode absent or False)")
    imp.emit(n.name, "Dropout", n.ins[:1], n.out, {k: float(v) for k, v in given.items()})


def _training_mode(imp: _Importer, t: str, name: str) -> bool:
    """Dropout's ``training_mode`` input: a constant (a computed one is refused: unknown until run)."""
    if t not in imp.consts or t in imp.learnable:
        raise UnsupportedError(f"node {name!r} (Dropout): training_mode {t!r} is computed at run time; mdfx "
                               "runs Dropout as at inference only (give training_mode as a constant False)")
    return bool(np.asarray(imp.consts[t]).reshape(-1)[0]) if np.size(imp.consts[t]) else False


@import_rule("Gather")
def _gather(imp: _Importer, n: OnnxNode) -> None:
    imp.gather(n.name, n.ins, n.out, n.attrs)


@import_rule("BatchNormalization")
def _batch_norm(imp: _Importer, n: OnnxNode) -> None:
    """training_mode=1 (a module exported in train()): learn() uses batch statistics and updates the
    running ones, as torch trains it; run() uses the running statistics."""
    stats = [imp.frozen(t) for t in n.ins[3:5]]
    given = _given(n)
    # ONNX float attributes are float32: 0.9 arrives as 0.8999999761...; the shortest decimal that rounds
    # to the same float32 is what the exporter was given (torch's 1 - 0.1, eps 1e-5)
    given.update({k: float(str(np.float32(given[k]))) for k in ("epsilon", "momentum") if k in given})
    imp.emit(n.name, n.op, [*n.ins[:3], *stats], n.out, given)


@import_rule("Split", before_folding=True)
def _split(imp: _Importer, n: OnnxNode) -> None:
    imp.split(n.name, n.ins, n.outs, n.attrs)


@import_rule("Min", "Max")
def _min_max(imp: _Importer, n: OnnxNode) -> None:
    """min(x, c) / max(x, c) with a constant scalar: torch.clamp as the dynamo exporter writes it."""
    if len(n.ins) == 2 and sum(t in imp.consts for t in n.ins) == 1:
        x, c = (n.ins[0], n.ins[1]) if n.ins[1] in imp.consts else (n.ins[1], n.ins[0])
        if np.size(imp.consts[c]) == 1:
            bound = imp.scalar(c, n.name, "bound")
            imp.emit(n.name, "Clip", [x], n.out, {"max": bound} if n.op == "Min" else {"min": bound})
            return
    imp.constant_only(n)


@import_rule("Expand")
def _expand(imp: _Importer, n: OnnxNode) -> None:
    if n.ins[0] not in imp.consts or n.ins[0] in imp.learnable:
        imp.expand(n.name, n.ins, n.out)
        return
    imp.constant_only(n)


@import_rule("Shape")
def _shape(imp: _Importer, n: OnnxNode) -> None:
    imp.consts[n.out] = imp.shape_of(n.ins[0], n.attrs)


@import_rule("Size")
def _size(imp: _Importer, n: OnnxNode) -> None:
    shape = imp._shape(n.ins[0])
    if shape and shape[0] == BATCH:
        raise UnsupportedError(f"node {n.name!r} (Size) of batched {n.ins[0]!r}: the element count "
                               "depends on the batch")
    imp.constant_only(n)


@import_rule("ConstantOfShape", "Range", "Equal", "Where", "Tile", "Less", "Greater", "Not", "Floor", "Ceil",
             "Mod", "Trilu", "And", "Or", "LessOrEqual", "GreaterOrEqual")
def _constant_only(imp: _Importer, n: OnnxNode) -> None:
    """Computed at import when its inputs are constants (folded before the rule runs); refused otherwise."""
    imp.constant_only(n)


# --- ops the graph IR spells as a few of its own, computing exactly the same -----------------------


@import_rule("HardSwish")
def _hard_swish(imp: _Importer, n: OnnxNode) -> None:
    """x * max(0, min(1, x / 6 + 1 / 2))"""
    x, name, out = n.ins[0], n.name, n.out
    imp.emit(f"{name}:gate", "HardSigmoid", [x], f"{out}:gate", {"alpha": 1.0 / 6.0, "beta": 0.5})
    imp.emit(name, "Mul", [x, f"{out}:gate"], out, {})


@import_rule("Mish")
def _mish(imp: _Importer, n: OnnxNode) -> None:
    """x * tanh(softplus(x))"""
    x, name, out = n.ins[0], n.name, n.out
    imp.emit(f"{name}:softplus", "Softplus", [x], f"{out}:softplus", {})
    imp.emit(f"{name}:tanh", "Tanh", [f"{out}:softplus"], f"{out}:tanh", {})
    imp.emit(name, "Mul", [x, f"{out}:tanh"], out, {})


@import_rule("PRelu")
def _prelu(imp: _Importer, n: OnnxNode) -> None:
    """LeakyRelu for a frozen scalar slope; relu(x) - slope * relu(-x) for one that may train (nn.PReLU)."""
    x, slope, name, out = n.ins[0], n.ins[1], n.name, n.out
    if slope in imp.consts and slope not in imp.learnable and np.size(imp.consts[slope]) == 1:
        imp.emit(name, "LeakyRelu", [x], out, {"alpha": float(np.ravel(imp.consts[slope])[0])})
        return
    imp.emit(f"{name}:neg", "Neg", [x], f"{out}:neg", {})
    imp.emit(f"{name}:pos", "Relu", [x], f"{out}:pos", {})
    imp.emit(f"{name}:negpart", "Relu", [f"{out}:neg"], f"{out}:negpart", {})
    imp.emit(f"{name}:scaled", "Mul", [slope, f"{out}:negpart"], f"{out}:scaled", {})
    imp.emit(name, "Sub", [f"{out}:pos", f"{out}:scaled"], out, {})


@import_rule("ReduceL2")
def _reduce_l2(imp: _Importer, n: OnnxNode) -> None:
    """sqrt(ReduceSum(x * x)); axes as an attribute or (opset 18) a constant input."""
    x, name, out = n.ins[0], n.name, n.out
    axes = imp.ints(n.ins[1], name, "axes") if len(n.ins) > 1 and n.ins[1] else n.attrs.get("axes")
    keep = {k: v for k, v in n.attrs.items() if k == "keepdims"}
    imp.emit(f"{name}:square", "Mul", [x, x], f"{out}:square", {})
    imp.emit(f"{name}:sum", "ReduceSum", [f"{out}:square"], f"{out}:sum", {"axes": list(axes) if axes else None, **keep})
    imp.emit(name, "Sqrt", [f"{out}:sum"], out, {})


# --- spatial ops ---------------------------------------------------------------------------------


def _decoded(attrs: dict[str, Any]) -> dict[str, Any]:
    """ONNX attribute values as the graph op takes them (auto_pad as a str, int lists as lists)."""
    out = dict(attrs)
    if isinstance(out.get("auto_pad"), bytes):
        out["auto_pad"] = out["auto_pad"].decode()
    return {k: list(v) if isinstance(v, tuple | list) else v for k, v in out.items()}


def _warn_folded(imp: _Importer, n: OnnxNode, node: Any) -> None:
    """Warn once per file when a Conv's weights look like an eval-mode BatchNorm folded into them."""
    meta = {p.key: p.value for p in node.metadata_props} if node is not None else {}
    folded = "BatchNorm" in meta.get("pkg.onnxscript.rewriter.rule_name", "") or \
        "batch_norm" in meta.get("namespace", "").lower() or \
        (len(n.ins) > 1 and n.ins[1] in imp.initializers and n.ins[1].startswith("onnx::Conv"))
    if folded and not getattr(imp, "_warned_folded", False):
        imp._warned_folded = True
        warnings.warn(f"{imp.where}: Conv node {n.name!r} looks like an eval-mode BatchNorm folded into its weights "
                      "by the exporter: it runs like the original, but training it does not equal training the "
                      "module (BatchNorm's scale, shift and statistics are gone). Re-export with "
                      "torch.onnx.export(..., dynamo=False, do_constant_folding=False) or (dynamo=True, "
                      "optimize=False) to keep BatchNormalization", stacklevel=7)


@import_rule("Conv", "ConvTranspose")
def _conv(imp: _Importer, n: OnnxNode) -> None:
    """Every attribute as ONNX's; the op table's shape rule refuses bad ones naming the node."""
    node = next((nd for nd in imp.g.node if (nd.name or "") == n.name and nd.op_type == n.op), None)
    _warn_folded(imp, n, node)
    keep = ops.graph_op(n.op).attrs
    imp.emit(n.name, n.op, n.ins, n.out, {k: v for k, v in _decoded(n.attrs).items() if k in keep})


@import_rule("MaxPool", "AveragePool")
def _pool(imp: _Importer, n: OnnxNode) -> None:
    keep = ops.graph_op(n.op).attrs
    imp.emit(n.name, n.op, n.ins[:1], n.out, {k: v for k, v in _decoded(n.attrs).items() if k in keep})


@import_rule("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(imp: _Importer, n: OnnxNode) -> None:
    """The mean / max over every spatial axis, kept as size 1."""
    rank = len(imp._shape(n.ins[0]))
    if rank < 3:
        raise UnsupportedError(f"node {n.name!r} ({n.op}) takes (batch, channels, *spatial); "
                               f"{n.ins[0]!r} has shape {ops._fmt(imp._shape(n.ins[0]))}")
    op = "ReduceMean" if n.op == "GlobalAveragePool" else "ReduceMax"
    imp.emit(n.name, op, n.ins[:1], n.out, {"axes": list(range(2, rank)), "keepdims": 1})


@import_rule("Pad")
def _pad_attributes(imp: _Importer, n: OnnxNode) -> None:
    """Opsets < 11: pads and value are attributes."""
    _pad(imp, n, list(n.attrs.get("pads", [])), float(n.attrs.get("value", 0.0)), None)


@import_rule("Pad", since=11)
def _pad_inputs(imp: _Importer, n: OnnxNode) -> None:
    """pads, constant_value and (opset 18) axes are constant inputs."""
    pads = imp.ints(n.ins[1], n.name, "pads")
    value = imp.scalar(n.ins[2], n.name, "constant_value") if len(n.ins) > 2 and n.ins[2] else 0.0
    axes = imp.ints(n.ins[3], n.name, "axes") if len(n.ins) > 3 and n.ins[3] else None
    _pad(imp, n, pads or [], float(value or 0.0), axes)


def _pad(imp: _Importer, n: OnnxNode, pads: list[int], value: float, axes: list[int] | None) -> None:
    mode = n.attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode != "constant":
        raise UnsupportedError(f"node {n.name!r} (Pad): mode {mode!r}; mdfx pads with a constant")
    rank = len(imp._shape(n.ins[0]))
    if axes is not None:  # pads for the listed axes only
        full = [0] * (2 * rank)
        for i, a in enumerate(axes):
            full[a % rank], full[rank + a % rank] = pads[i], pads[len(axes) + i]
        pads = full
    imp.emit(n.name, "Pad", n.ins[:1], n.out, {"pads": pads, "mode": "constant", "value": value})


@import_rule("CastLike")
def _cast_like(imp: _Importer, n: OnnxNode) -> None:
    """The dynamo exporter's cast to another tensor's type: a float cast changes nothing here."""
    target = n.ins[1]
    like = ("float" if np.asarray(imp.consts[target]).dtype.kind == "f" else "") if target in imp.consts \
        else ("float" if target in imp.shapes else "")
    if not like.startswith("float"):
        raise UnsupportedError(f"node {n.name!r} (CastLike) casts a computed tensor to a non-float type; mdfx "
                               "computes in one float dtype")
    imp.emit(n.name, "Cast", n.ins[:1], n.out, {"to": 11})


# --- ai.onnx.ml: the tails of skl2onnx classifiers ------------------------------------------------


@import_rule("ArrayFeatureExtractor", domain="ai.onnx.ml", before_folding=True)
def _array_feature_extractor(imp: _Importer, n: OnnxNode) -> None:
    imp.emit(n.name, "ai.onnx.ml.ArrayFeatureExtractor", n.ins, n.out, {})


@import_rule("ZipMap", domain="ai.onnx.ml", before_folding=True)
def _zipmap(imp: _Importer, n: OnnxNode) -> None:
    labels = {k: list(v) for k, v in n.attrs.items() if k in ("classlabels_int64s", "classlabels_strings")}
    imp.emit(n.name, "ai.onnx.ml.ZipMap", n.ins, n.out, labels)


#: Every ONNX op type (default domain) the import reads, at some opset.
SUPPORTED: tuple[str, ...] = tuple(sorted(k for k in IMPORT_RULES if not k.startswith("ai.onnx.ml.")))
SUPPORTED_ML: tuple[str, ...] = tuple(sorted(k.removeprefix("ai.onnx.ml.") for k in IMPORT_RULES
                                             if k.startswith("ai.onnx.ml.")))
