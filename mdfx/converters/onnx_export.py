"""Export a :class:`~mdfx.schema.net.Net` to ONNX, built directly with ``onnx.helper``.

The graph mirrors the reference forward pass (:mod:`mdfx.runners.reference`)
step by step, so onnxruntime reproduces its numbers:

* one graph input per INPUT node and one graph output per OUTPUT node, named
  after the nodes, each of shape ``("batch", size)``;
* a ``MatMul`` per projection, ``Add`` to sum converging projections (in the
  reference's order) and to add a node's bias;
* the node's transfer op, lowered by its rule in :data:`TRANSFER_RULES`.

Weights are initializers holding the Net's current values, cast to the
requested dtype. ``onnx`` is imported here at module level; ``import mdfx``
does not import this module (DESIGN rule 5).
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

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mdfx import ops
from mdfx.errors import MdfxError
from mdfx.io import _TMP_MARK, _fsync, atomic_write, safe_filename
from mdfx.schema.net import Net

#: The opsets the export is tested with (Softmax's per-axis semantics need 13).
OPSETS = range(13, 22)
DEFAULT_OPSET = 17

DTYPES: dict[str, tuple[int, type[np.floating]]] = {
    "float32": (TensorProto.FLOAT, np.float32),
    "float64": (TensorProto.DOUBLE, np.float64),
}

#: ``metadata_props`` keys holding JSON maps ``{onnx name: Net node name}``, so a
#: runner can speak in Net names even where a name had to be sanitized.
INPUT_NAMES_KEY = "mdfx.inputs"
OUTPUT_NAMES_KEY = "mdfx.outputs"
#: ``{name of the first ONNX node of a layer: Net node name}``, for hidden layers.
LAYER_NAMES_KEY = "mdfx.layers"


class ExportError(MdfxError):
    """A Net or an export option that the ONNX export cannot handle."""


# --- lowering rules: one per transfer op ----------------------------------------


@dataclass(frozen=True)
class Step:
    """One ONNX op applied to the running value ``x``.

    ``param`` names the op parameter that supplies a second operand (a scalar
    initializer holding ``value``); unary steps leave both empty.
    """

    op: str
    param: str | None = None
    value: float | None = None
    attrs: dict[str, object] = field(default_factory=dict)


Rule = Callable[[dict[str, float], str], list[Step | None]]

#: This backend's rule per transfer op: ``rule(params, dtype) -> steps``; a
#: ``None`` step is a no-op (a parameter at its neutral value) and is dropped.
TRANSFER_RULES: dict[str, Rule] = {}


def _rule(name: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        if name in TRANSFER_RULES:
            raise ValueError(f"ONNX rule for {name!r} registered twice")
        ops.transfer_op(name)  # refuse a rule for an op the table does not know
        TRANSFER_RULES[name] = fn
        return fn

    return register


def _binary(op: str, neutral: float) -> Callable[[dict[str, float], str], Step | None]:
    def step(p: dict[str, float], name: str) -> Step | None:
        # Skipping only exact neutral values keeps the numbers identical:
        # x * 1 == x and x + 0 == x in IEEE arithmetic.
        return None if p[name] == neutral else Step(op, name, p[name])

    return step


_add, _sub, _mul = _binary("Add", 0.0), _binary("Sub", 0.0), _binary("Mul", 1.0)


@_rule("linear")
def _linear(p: dict[str, float], dtype: str) -> list[Step | None]:
    return [_mul(p, "slope"), _add(p, "intercept"), _mul(p, "scale"), _add(p, "offset")]


@_rule("logistic")
def _logistic(p: dict[str, float], dtype: str) -> list[Step | None]:
    # scale / (1 + exp(-gain*(x + bias - x_0))) + offset == scale * Sigmoid(gain*(x + bias - x_0)) + offset
    return [_add(p, "bias"), _sub(p, "x_0"), _mul(p, "gain"),
            Step("Sigmoid"), _mul(p, "scale"), _add(p, "offset")]


@_rule("relu")
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


@_rule("tanh")
def _tanh(p: dict[str, float], dtype: str) -> list[Step | None]:
    return [_add(p, "bias"), _sub(p, "x_0"), _mul(p, "gain"), _add(p, "offset"),
            Step("Tanh"), _mul(p, "scale")]


@_rule("exponential")
def _exponential(p: dict[str, float], dtype: str) -> list[Step | None]:
    return [_mul(p, "rate"), _add(p, "bias"), Step("Exp"), _mul(p, "scale"), _add(p, "offset")]


@_rule("identity")
def _identity(p: dict[str, float], dtype: str) -> list[Step | None]:
    return []  # an output node still gets an Identity, to carry the output's name


@_rule("softmax")
def _softmax(p: dict[str, float], dtype: str) -> list[Step | None]:
    return [_mul(p, "gain"), Step("Softmax", attrs={"axis": -1})]


# --- names ------------------------------------------------------------------------


def onnx_name(name: str) -> str:
    """``name`` as a C identifier (the ONNX IR's rule for names), unchanged when it is one."""
    if name.isidentifier() and name.isascii():
        return name
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return clean if clean and not clean[0].isdigit() else f"n_{clean}"


class _Names:
    """Hands out unique tensor names: ``base``, then ``base_1``, ``base_2``..."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def fresh(self, base: str) -> str:
        base = onnx_name(base)
        name, i = base, 0
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name


class _Builder:
    """Collects nodes and initializers of one graph in one dtype."""

    def __init__(self, dtype: str) -> None:
        self.np_dtype = DTYPES[dtype][1]
        self.names = _Names()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, base: str, value: np.ndarray | float) -> str:
        name = self.names.fresh(base)
        array = np.asarray(value, dtype=self.np_dtype)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], base: str, output: str | None = None,
             attrs: dict[str, object] | None = None) -> str:
        out = output or self.names.fresh(f"{base}_{op}")
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **(attrs or {})))
        return out


# --- the export -------------------------------------------------------------------


def to_onnx(net: Net, dtype: str = "float32", opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Build an ONNX model computing ``net``'s forward pass with its current weights.

    ``dtype`` is ``"float32"`` (default) or ``"float64"``; ``opset`` is the
    default-domain opset, 13 to 21. Inputs and outputs are named after the
    INPUT and OUTPUT nodes (sanitized to C identifiers where needed; the map
    is kept in the model's ``metadata_props``) and have a dynamic ``batch``
    dimension. The model passes ``onnx.checker.check_model(full_check=True)``.
    """
    _check_options(dtype, opset)
    elem_type = DTYPES[dtype][0]
    b = _Builder(dtype)

    # Reserve the graph's input and output names first so they stay exactly the
    # node names; a node that is both gets "<name>_output" for its output.
    input_names = {name: b.names.fresh(name) for name in net.inputs}
    output_names = {name: b.names.fresh(f"{name}_output" if name in input_names else name)
                    for name in net.outputs}

    values: dict[str, str] = {}  # node name -> tensor holding its value
    layers: dict[str, str] = {}  # first ONNX node of a hidden layer -> its Net node name
    for node in net.nodes:
        first = len(b.nodes)
        x = _net_input(b, net, node.name, input_names, values)
        if node.name not in input_names and len(b.nodes) > first:
            layers[b.nodes[first].name] = node.name
        if node.bias is not None:
            x = b.node("Add", [x, b.const(f"{node.name}_bias", node.bias)], node.name)
        steps = _steps(node.name, node.op, node.params, dtype)
        out = output_names.get(node.name)
        if not steps and out is None:
            values[node.name] = x  # identity on an inner node: no op needed
            continue
        if out is None:
            out = b.names.fresh(f"{node.name}_value" if node.name in input_names else node.name)
        values[node.name] = _emit(b, node.name, steps or [Step("Identity")], x, out)

    graph = helper.make_graph(
        b.nodes,
        onnx_name(net.name),
        [_value_info(input_names[n], elem_type, net.node(n).size) for n in net.inputs],
        [_value_info(output_names[n], elem_type, net.node(n).size) for n in net.outputs],
        initializer=b.initializers,
    )
    opset_ids = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph,
        opset_imports=opset_ids,
        producer_name="mdfx",
        doc_string=f"mdfx export of {net.name!r} ({dtype})",
        # The oldest IR version that carries this opset, so older runtimes load it.
        ir_version=helper.find_min_ir_version_for(opset_ids),
    )
    helper.set_model_props(model, {
        INPUT_NAMES_KEY: json.dumps({input_names[n]: n for n in net.inputs}),
        OUTPUT_NAMES_KEY: json.dumps({output_names[n]: n for n in net.outputs}),
        LAYER_NAMES_KEY: json.dumps(layers),
    })
    onnx.checker.check_model(model, full_check=True)
    return model


def save_onnx(net: Net, path: str | os.PathLike[str], dtype: str = "float32",
              opset: int = DEFAULT_OPSET) -> Path:
    """Export ``net`` (see :func:`to_onnx`) and write it to ``path`` atomically.

    The model is written to a temporary file in the same directory and renamed
    over ``path``, so a failure leaves neither a partial file nor the temp file.
    """
    model = to_onnx(net, dtype=dtype, opset=opset)
    target = Path(path)
    if model.ByteSize() > EXTERNAL_DATA_BYTES:
        return _save_with_external_data(model, target)
    atomic_write(target, lambda tmp: onnx.save_model(model, str(tmp)))
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
    scratch = target.parent / f".{target.name}{_TMP_MARK}{os.getpid()}.{secrets.token_hex(4)}.d"
    scratch.mkdir()
    try:
        write_external_data_tensors(model, str(scratch))
        _fsync(scratch / data_name)
        os.replace(scratch / data_name, target.parent / data_name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    atomic_write(target, lambda tmp: onnx.save_model(model, str(tmp)))
    for old in target.parent.glob(f"{stem}.*.data"):
        if old.name != data_name and re.fullmatch(re.escape(stem) + r"\.[0-9a-f]{8}\.data", old.name):
            old.unlink(missing_ok=True)
    return target


def _check_options(dtype: str, opset: int) -> None:
    if dtype not in DTYPES:
        raise ExportError(f"ONNX export dtype {dtype!r} is not supported; use one of {', '.join(DTYPES)}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise ExportError(
            f"ONNX opset {opset!r} is not supported; mdfx exports opsets "
            f"{OPSETS.start} to {OPSETS.stop - 1} (default {DEFAULT_OPSET})"
        )


def _net_input(b: _Builder, net: Net, name: str, input_names: dict[str, str],
               values: dict[str, str]) -> str:
    """The tensor of a node's net input, before its bias: as the reference computes it."""
    if name in input_names:
        return input_names[name]
    incoming = net.incoming(name)
    if not incoming:
        raise ExportError(
            f"node {name!r} of {net.name!r} has no incoming projection and is not an INPUT node "
            f"(inputs: {', '.join(net.inputs)}); add it to the inputs or connect it"
        )
    terms = [b.node("MatMul", [values[p.sender], b.const(p.name, p.matrix)], name) for p in incoming]
    total = terms[0]
    for term in terms[1:]:  # left to right, as Python's sum() in the reference
        total = b.node("Add", [total, term], name)
    return total


def _steps(name: str, op: str, params: dict[str, float], dtype: str) -> list[Step]:
    """The op's lowering, without the no-op steps."""
    rule = TRANSFER_RULES.get(op)
    if rule is None:
        raise ExportError(f"node {name!r}: no ONNX rule for transfer op {op!r}; "
                          f"rules exist for {', '.join(TRANSFER_RULES)}")
    filled = ops.fill_params(ops.transfer_op(op), params)
    return [s for s in rule(filled, dtype) if s is not None]


def _emit(b: _Builder, name: str, steps: list[Step], x: str, out: str) -> str:
    """Apply ``steps`` to ``x``; the last one writes the tensor ``out``."""
    for i, step in enumerate(steps):
        inputs = [x]
        if step.param is not None:
            inputs.append(b.const(f"{name}_{step.param}", step.value))
        x = b.node(step.op, inputs, name, output=out if i == len(steps) - 1 else None,
                   attrs=step.attrs)
    return x


def _value_info(name: str, elem_type: int, size: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, ["batch", size])
