"""MDF as modeci-mdf's tools and examples write it: the "pure MDF" and ``onnx::`` idioms.

Covers what is not mdfx's own dialect nor PsyNeuLink's:

* "pure MDF": weights as node Parameters, computed by the standard functions
  ``MatMul``, ``linear``, ``logistic``, ``exponential``, ``tanh``, ``Relu``
  or by expressions (``"(x @ wgts) + bias"``, ``"linear*(linear>0)"``), as
  hand-written MLPs and modeci-mdf's ``keras_to_MDF`` write them;
* ``onnx::`` ops, one per node, as ``onnx_to_mdf`` and ``pytorch_to_mdf``
  write them (ONNX attributes are the node's other parameters).

Each function and expression becomes ops of an op :class:`~mdfx.schema.graph.Graph`
that keeps the file's parametrisation: every node Parameter holding an array
(a weight, a bias) is a learnable param named ``"<node>.<parameter>"`` in its
layout; numbers (scalar Parameters, literals in expressions, edge weights) are
frozen constants; nothing is folded. ONNX inputs that the graph IR keeps as
attributes (Reshape's shape, Slice's bounds, Clip's bounds, Pow's exponent,
axes) are read from the constants that feed them. Expressions are parsed by
:mod:`mdfx.expr`; nothing from the file is ever executed.

Graph inputs are input ports that no edge feeds and, in a node without input
ports, the Parameter holding its data (the file's sample input, see
:func:`default_inputs`). Graph outputs are the output ports of nodes without
outgoing edges, named after their node. Edge weights multiply, as in
modeci-mdf's engine.

``pytorch_to_mdf`` leaves the weights out (they are unconnected input ports);
:func:`read` then says so, and :func:`read_with_weights` takes them from a
state_dict-like mapping, keeping their own names, layouts and dtypes.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mdfx import expr, ops
from mdfx.errors import SchemaError, UnsupportedError, one_line
from mdfx.schema import validate
from mdfx.schema.dialects.pnl_v01 import scheduling_conditions
from mdfx.schema.graph import Graph, Node, Param


class MissingWeightsError(SchemaError):
    """The file names weights it does not hold (``pytorch_to_mdf`` output); give them with ``weights``."""


#: modeci-mdf standard function -> the name of its main argument.
STANDARD = {"MatMul": "A", "Relu": "A", "linear": "variable0", "logistic": "variable0",
            "exponential": "variable0", "tanh": "variable0"}
_ONNX = "onnx::"

#: ONNX input names per op read from ``onnx::`` functions (ONNX's spelling, which the MDF args use).
INPUT_NAMES: dict[str, tuple[str, ...]] = {
    "Constant": (), "MatMul": ("A", "B"), "Gemm": ("A", "B", "C"),
    "Add": ("A", "B"), "Sub": ("A", "B"), "Mul": ("A", "B"), "Div": ("A", "B"), "Neg": ("X",),
    "Cast": ("input",), "Flatten": ("input",), "Reshape": ("data", "shape"), "Transpose": ("data",),
    "Relu": ("X",), "LeakyRelu": ("X",), "Sigmoid": ("X",), "Tanh": ("input",), "Exp": ("input",),
    "Log": ("input",), "Sqrt": ("X",), "Abs": ("X",), "Reciprocal": ("X",), "Erf": ("input",),
    "Gelu": ("X",), "Softplus": ("X",), "Elu": ("X",), "Selu": ("X",), "HardSigmoid": ("X",),
    "Softmax": ("input",), "LogSoftmax": ("input",), "Identity": ("input",),
    "Clip": ("input", "min", "max"), "Pow": ("X", "Y"), "Dropout": ("data", "ratio", "training_mode"),
    "Concat": ("inputs",), "Slice": ("data", "starts", "ends", "axes", "steps"),
    "Squeeze": ("data", "axes"), "Unsqueeze": ("data", "axes"),
    "ReduceSum": ("data", "axes"), "ReduceMean": ("data", "axes"), "ReduceMax": ("data", "axes"),
    "LayerNormalization": ("X", "Scale", "B"),
    "BatchNormalization": ("X", "scale", "B", "input_mean", "input_var"), "ArgMax": ("data",),
    "Conv": ("X", "W", "B"), "ConvTranspose": ("X", "W", "B"), "MaxPool": ("X",), "AveragePool": ("X",),
    "GlobalAveragePool": ("X",), "GlobalMaxPool": ("X",), "Pad": ("data", "pads", "constant_value", "axes"),
    "PRelu": ("X", "slope"),
    # shape arithmetic (x.view(x.size(0), -1), F.pad's computed pads): evaluated at read time
    "Shape": ("data",), "Gather": ("data", "indices"), "ConstantOfShape": ("input",),
    # the graph's recurrent ops are ONNX's with layout=1 and full-length sequences (sequence_lens, ONNX's
    # fifth input, is refused by name in _Reader.onnx rather than listed here)
    "LSTM": ("X", "W", "R", "B", "initial_h", "initial_c", "P"), "GRU": ("X", "W", "R", "B", "initial_h"),
    "RNN": ("X", "W", "R", "B", "initial_h"),
}
#: ops computed at read time when every input is a frozen constant (a shape, or a constant from one)
_FOLDABLE = {"Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Reshape", "Transpose",
             "ConstantOfShape", "Add", "Sub", "Mul", "Div", "Identity"}
#: the batch size in a shape computed at read time (a value no real shape has; exact in float64)
_BATCH_SYMBOL = -float(1 << 40)
#: ONNX inputs that the graph IR holds as attributes (constants folded at read time): input -> attribute
ATTRIBUTE_INPUTS: dict[str, dict[str, str]] = {
    "Reshape": {"shape": "shape"}, "Slice": {k: k for k in ("starts", "ends", "axes", "steps")},
    "Clip": {"min": "min", "max": "max"}, "Pow": {"Y": "exponent"}, "Dropout": {"ratio": "ratio"},
    "Squeeze": {"axes": "axes"}, "Unsqueeze": {"axes": "axes"}, "ReduceSum": {"axes": "axes"},
    "ReduceMean": {"axes": "axes"}, "ReduceMax": {"axes": "axes"},
    "Pad": {"pads": "pads", "constant_value": "value", "axes": "axes"},
}
_SCALAR_ATTRS = {"min", "max", "exponent", "ratio", "value"}
#: ONNX TensorProto element types that are floats (Cast to these changes nothing here).
_FLOAT_TYPES = {1, 10, 11, 16}


def detect(model: dict[str, Any], graph: dict[str, Any]) -> bool:
    """Any MDF 0.2-0.4 that neither mdfx nor PsyNeuLink wrote (their dialects read those)."""
    body = next(iter(model.values()))
    app = str(body.get("generating_application", "")).lower()
    nodes = graph.get("nodes") or {}
    return (
        "mdfx" not in (graph.get("metadata") or {})
        and "psyneulink" not in app
        and not str(body.get("format", "")).startswith("ModECI MDF v0.1")
        and not any(str(n).endswith("_dummy_node") for n in nodes)  # PsyNeuLink's projection nodes
    )


def read(model: dict[str, Any], graph: dict[str, Any]) -> Graph:
    """The graph; refuses non-feed-forward constructs and missing weights, naming them."""
    return _Reader(model, graph, None).build()


def read_with_weights(model: dict[str, Any], weights: Mapping[str, Any]) -> Graph:
    """Like :func:`read`, taking weights that the file lacks from ``weights``.

    Keys are matched to the weight ports after turning every non-word
    character into ``_`` (``"fc1.weight"`` -> port ``fc1_weight``), as
    ``pytorch_to_mdf`` names them; the params keep the keys as names. Values are
    arrays (or torch tensors), kept in their layout and dtype.
    """
    graph = _one_graph(model)
    arrays = {_key(k): (str(k), _array(v)) for k, v in weights.items()}
    return _Reader(model, graph, arrays).build()


def initial_weights(model: dict[str, Any], seed: int = 0) -> dict[str, np.ndarray]:
    """Weights for every weight port a ``pytorch_to_mdf`` file leaves unconnected, drawn as torch
    initialises its layers (its default bounds, numpy's generator: the same distribution, not torch's
    numbers): a weight of shape ``(out, in, *k)`` and the bias of its node uniform in
    ``±1 / sqrt(in * prod(k))`` (Conv, Linear); BatchNorm scale 1, shift 0, mean 0, variance 1;
    PReLU slope 0.25. Keys are the port names."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for node in (_one_graph(model).get("nodes") or {}).values():
        ports = node.get("input_ports") or {}
        roles: dict[str, str] = {}
        for spec in _functions(node).values():
            name, args = _function(spec)
            for k, v in args.items():
                if isinstance(v, str) and v in ports and name and name.startswith(_ONNX):
                    roles[v] = f"{name[len(_ONNX):]}.{k}"
        fan_in = 1
        for port, role in sorted(roles.items(), key=lambda kv: kv[1].endswith((".B", ".C"))):
            shape = ports[port].get("shape")
            if port not in _weight_ports(node) or not isinstance(shape, list):
                continue
            op, arg = role.split(".")
            if op == "BatchNormalization":
                out[port] = np.ones(shape) if arg in ("scale", "input_var") else np.zeros(shape)
            elif op == "PRelu":
                out[port] = np.full(shape, 0.25)
            else:
                if arg in ("W", "B") and arg == "W" or (op in ("Gemm", "MatMul") and arg == "B"):
                    fan_in = math.prod(shape[1:]) if op != "MatMul" else shape[0]
                    if op == "ConvTranspose":
                        fan_in = shape[1] * math.prod(shape[2:])
                bound = 1.0 / math.sqrt(max(fan_in, 1))
                out[port] = rng.uniform(-bound, bound, shape)
    return out


def default_inputs(model: dict[str, Any]) -> dict[str, np.ndarray]:
    """The sample inputs a pure-MDF file keeps as Parameters, by graph input name, (trials, features)."""
    reader = _Reader(model, _one_graph(model), None)
    reader.find_inputs()
    return {reader.input_names[t]: v for t, v in reader.defaults.items()}


# --- the reader ----------------------------------------------------------------------


@dataclass
class _Reader:
    model: dict[str, Any]
    graph: dict[str, Any]
    weights: dict[str, tuple[str, np.ndarray]] | None
    ops: list[Node] = field(default_factory=list)
    params: dict[str, Param] = field(default_factory=dict)
    inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)  # tensor -> feature shape
    input_names: dict[str, str] = field(default_factory=dict)  # tensor -> graph input name
    defaults: dict[str, np.ndarray] = field(default_factory=dict)  # tensor -> sample input
    data_params: dict[tuple[str, str], str] = field(default_factory=dict)  # (node, param) -> tensor
    feeds: dict[tuple[str, str], tuple[str, str, Any]] = field(default_factory=dict)
    memo: dict[tuple[str, str], str] = field(default_factory=dict)
    busy: set[tuple[str, str]] = field(default_factory=set)
    computed: dict[tuple[str, ...], str] = field(default_factory=dict)
    weight_ports: dict[str, str] = field(default_factory=dict)  # port tensor -> param name
    known_shapes: dict[str, tuple[int, ...] | None] = field(default_factory=dict)  # op output -> shape
    counter: int = 0

    def __post_init__(self) -> None:
        self.nodes: dict[str, dict] = self.graph.get("nodes") or {}
        self.model_id = next(iter(self.model))

    # - checks -

    def check(self) -> None:
        """Refuse what is not a feed-forward network, naming the construct and the node."""
        from mdfx.schema.reader import check_feed_forward

        for node_id, node in self.nodes.items():
            if "nodes" in node:
                raise UnsupportedError(f"node {node_id!r} holds a subgraph (an ONNX Loop or If body, as "
                                       "onnx_to_mdf writes control flow); control flow is not supported")
        senders: dict[str, set[str]] = {}
        for edge_id, edge in (self.graph.get("edges") or {}).items():
            if not isinstance(edge, dict):
                raise SchemaError(f"edge {edge_id!r} must be a mapping, but holds a {type(edge).__name__}")
            senders.setdefault(edge.get("receiver"), set()).add(edge.get("sender"))
        nontrivial = scheduling_conditions(self.graph.get("conditions"), senders)
        if nontrivial:
            raise UnsupportedError(f"graph has scheduler conditions: {'; '.join(nontrivial)}; mdfx runs each "
                                   "node once per trial, after its senders (feed-forward networks only)")
        check_feed_forward({k: v for k, v in self.graph.items() if k != "conditions"})
        bad: dict[str, list[str]] = {}
        for node_id, node in self.nodes.items():
            for fid, spec in _functions(node).items():
                name, _ = _function(spec, f"node {node_id!r} function {fid!r}")
                if name is None:
                    continue
                known = name in STANDARD or (name.startswith(_ONNX) and name[len(_ONNX):] in INPUT_NAMES)
                if not known:
                    bad.setdefault(name, []).append(f"node {node_id!r}")
        if bad:
            listed = "; ".join(f"{name} ({', '.join(where)})" for name, where in sorted(bad.items()))
            onnx_ops = ", ".join(_ONNX + t for t in sorted(INPUT_NAMES))
            raise UnsupportedError(f"unsupported MDF function{'s' if len(bad) > 1 else ''}: {listed}. mdfx "
                                   f"imports networks built from {', '.join(STANDARD)}, {onnx_ops} and "
                                   "arithmetic expressions")

    # - inputs, weights and edges -

    def find_inputs(self) -> None:
        edges = self.graph.get("edges") or {}
        for edge_id, edge in edges.items():
            for end in ("sender", "receiver"):
                if edge.get(end) not in self.nodes:
                    raise SchemaError(f"edge {edge_id!r}: {end} {edge.get(end)!r} is not a node of the graph")
            for end in ("sender_port", "receiver_port"):
                validate.field(edge, end, f"edge {edge_id!r}", str, "port name")
            key = (edge["receiver"], edge["receiver_port"])
            if key in self.feeds:
                raise UnsupportedError(f"node {key[0]!r} input port {key[1]!r} receives several edges; "
                                       "modeci-mdf's engine keeps only the last one, so mdfx refuses it")
            self.feeds[key] = (edge["sender"], edge["sender_port"], (edge.get("parameters") or {}).get("weight", 1))
        missing: list[str] = []
        for node_id, node in self.nodes.items():
            ports = node.get("input_ports") or {}
            weight_ports = _weight_ports(node)
            free = [p for p in ports if (node_id, p) not in self.feeds]
            for port_id in free:
                tensor = f"{node_id}.{port_id}"
                if port_id in weight_ports:
                    given = None if self.weights is None else self.weights.get(_key(port_id))
                    shape = ports[port_id].get("shape")
                    if given is None:
                        missing.append(f"{port_id} {_shape_text(ports[port_id])} of node {node_id!r}")
                    elif shape is not None and tuple(given[1].shape) != tuple(shape):
                        raise SchemaError(f"weight {port_id!r} of node {node_id!r} has shape "
                                          f"{tuple(given[1].shape)}; the MDF port expects {tuple(shape)}")
                    else:
                        name, value = given
                        if name not in self.params:
                            self.params[name] = Param(name, np.array(value, dtype=np.float64), True,
                                                      _dtype(value))
                        self.weight_ports[tensor] = name
                    continue
                self.inputs[tensor] = _features(ports[port_id].get("shape"), f"node {node_id!r} input port {port_id!r}")
                # A node that only passes its port on names the input; otherwise the port does.
                passes = [o.get("value") for o in (node.get("output_ports") or {}).values()] == [port_id]
                self.input_names[tensor] = node_id if passes and len(free) == 1 else port_id
            if not ports:
                self._data_input(node_id, node)
        if missing:
            hint = ("Load it with mdfx.from_mdf_with_weights(path, weights), weights being the model's "
                    "state_dict (or a .pt / .pth file of it) or the .onnx file it was exported to")
            if self.weights is not None:
                hint = "the weights given lack them (keys are matched with '.' read as '_')"
            raise MissingWeightsError(f"model {self.model_id!r}: the weights are not in the file; "
                              f"{len(missing)} weight input port{'s' if len(missing) > 1 else ''} "
                              f"({', '.join(missing[:6])}{', ...' if len(missing) > 6 else ''}) "
                              f"{'are' if len(missing) > 1 else 'is'} left unconnected, as modeci-mdf's "
                              f"pytorch_to_mdf writes them. {hint}")

    def _data_input(self, node_id: str, node: dict) -> None:
        """A node without input ports: the Parameter its output is computed from is the input."""
        outs = node.get("output_ports") or {}
        if not outs:
            return
        port = next(iter(outs.values()))
        if not isinstance(port, dict):
            raise SchemaError(f"node {node_id!r}: its output port must be a mapping, but holds a {type(port).__name__}")
        first = port.get("value")
        fn = _functions(node).get(first)
        if fn is not None and str(_function(fn)[0] or "").startswith(_ONNX):
            return  # an onnx:: op of constants (Shape of a constant pads list), not sample data
        name = _main_name(node, first)
        params = node.get("parameters") or {}
        if name is None or name not in params:
            return
        value = params[name].get("value")
        if not _numeric(value):
            return
        data = np.asarray(value, dtype=np.float64)
        data = data.reshape(1, 1) if data.ndim == 0 else data.reshape(1, -1) if data.ndim == 1 \
            else data.reshape(len(data), -1)
        tensor = f"{node_id}.{name}"
        self.inputs[tensor] = (data.shape[1],)
        # "Input" (a node that only holds the data) names the input; otherwise the Parameter does.
        self.input_names[tensor] = node_id if first == name else name
        self.defaults[tensor] = data
        self.data_params[(node_id, name)] = tensor

    # - the walk -

    def build(self) -> Graph:
        self.check()
        self.find_inputs()
        self._resolve_in_order()
        has_out = {e["sender"] for e in (self.graph.get("edges") or {}).values()}
        outputs: list[str] = []
        names: dict[str, str] = {}
        # Sinks' output ports are the graph outputs; edges pull in what they need from the others.
        for node_id in [n for n in self.nodes if n not in has_out]:
            ports = self.nodes[node_id].get("output_ports") or {}
            for port_id in ports:
                tensor = self.output(node_id, port_id)
                outputs.append(tensor)
                names.setdefault(tensor, node_id if len(ports) == 1 else f"{node_id}.{port_id}")
        if not outputs:
            raise UnsupportedError(f"model {self.model_id!r} has no outputs (no node that no edge reads has an "
                                   "output port); mdfx imports networks that compute outputs from inputs")
        if not self.inputs:
            raise UnsupportedError(f"model {self.model_id!r} has no inputs (no unconnected input port and no "
                                   "data Parameter); mdfx imports networks that compute outputs from inputs")
        # every other node's output ports name their tensors too (hidden tensors keep the file's names)
        for (node_id, key), tensor in self.memo.items():
            if key.startswith("output port ") and tensor not in names:
                ports = self.nodes[node_id].get("output_ports") or {}
                names[tensor] = node_id if len(ports) == 1 else f"{node_id}.{key[len('output port '):]}"
        return self._graph(outputs, names)

    def _resolve_in_order(self) -> None:
        """Translate the output ports that edges read, senders first (Kahn's order).

        The walk is recursive and demand-driven (an output pulls in its senders), so a
        long chain would nest one call stack per layer; resolving in topological order
        first leaves every recursive pull one layer deep. A cycle is left to the walk,
        which names it.
        """
        edges = list((self.graph.get("edges") or {}).values())
        read: dict[str, list[str]] = {}
        succ: dict[str, list[str]] = {}
        indeg = dict.fromkeys(self.nodes, 0)
        for e in edges:
            read.setdefault(e["sender"], []).append(e["sender_port"])
            succ.setdefault(e["sender"], []).append(e["receiver"])
            indeg[e["receiver"]] += 1
        ready = [n for n, d in indeg.items() if d == 0]
        while ready:
            node_id = ready.pop()
            for port_id in dict.fromkeys(read.get(node_id, [])):
                if port_id in (self.nodes[node_id].get("output_ports") or {}):
                    self.output(node_id, port_id)
            for r in succ.get(node_id, []):
                indeg[r] -= 1
                if indeg[r] == 0:
                    ready.append(r)

    def _graph(self, outputs: list[str], names: dict[str, str]) -> Graph:
        rename = dict(self.input_names)
        taken = set(self.params) | set(rename.values())
        for tensor, name in names.items():
            if tensor in rename or tensor in self.params:
                continue
            if name not in taken:
                rename[tensor] = name
                taken.add(name)
        nodes = []
        for n in self.ops:
            out = rename.get(n.output, n.output)
            nodes.append(Node(out, n.op, [rename.get(t, t) for t in n.inputs], out, n.attrs))
        used = {t for n in nodes for t in n.inputs}
        params = [p for k, p in self.params.items() if k in used]
        inputs = {rename[t]: shape for t, shape in self.inputs.items()}
        outs = [rename.get(t, t) for t in outputs]
        # the sample inputs the file keeps as Parameters: what run() without inputs runs on
        defaults = {rename[t]: v for t, v in self.defaults.items() if t in rename}
        return Graph.build(self.model_id, inputs, params, nodes, outs, source="mdf", default_inputs=defaults)

    def output(self, node_id: str, port_id: str) -> str:
        """The tensor at an output port, translated once however many edges read it."""
        key = (node_id, f"output port {port_id}")
        if key not in self.memo:
            ports = self.nodes[node_id].get("output_ports") or {}
            if port_id not in ports:
                raise SchemaError(f"node {node_id!r} has no output port {port_id!r} (it has "
                                  f"{', '.join(map(repr, ports)) or 'none'})")
            port = ports[port_id]
            self.memo[key] = self.value(node_id, port.get("value"), f"node {node_id!r} output port {port_id!r}")
        return self.memo[key]

    def port(self, node_id: str, port_id: str) -> str:
        """The tensor at an input port: an edge's value (times its weight), an input or a weight."""
        tensor = f"{node_id}.{port_id}"
        if tensor in self.inputs:
            return tensor
        if tensor in self.weight_ports:
            return self.weight_ports[tensor]
        sender, sender_port, weight = self.feeds[(node_id, port_id)]
        value = self.output(sender, sender_port)
        if _numeric(weight) and np.size(weight) == 1 and float(np.ravel(weight)[0]) == 1.0:
            return value
        w = self.const(validate.real_array(weight, f"edge into {node_id!r} port {port_id!r}: weight",
                                           SchemaError).astype(np.float64), f"{node_id}.{port_id}.weight")
        return self.emit("Mul", [value, w], node_id, f"edge into {node_id!r} port {port_id!r}")

    def name(self, node_id: str, name: str, env: Mapping[str, str]) -> str:
        """The tensor a name in node ``node_id`` stands for (memoised; a self-reference is state)."""
        if name in env:
            return env[name]
        key = (node_id, name)
        if key in self.memo:
            return self.memo[key]
        if key in self.busy:
            raise UnsupportedError(f"node {node_id!r}: {name!r} is computed from itself (a stateful "
                                   "parameter); mdfx supports feed-forward networks only")
        node = self.nodes[node_id]
        self.busy.add(key)
        try:
            if name in (node.get("input_ports") or {}):
                tensor = self.port(node_id, name)
            elif key in self.data_params:
                tensor = self.data_params[key]
            elif name in _functions(node):
                tensor = self.function(node_id, name, _functions(node)[name])
            elif name in (node.get("parameters") or {}):
                value = node["parameters"][name].get("value")
                where = f"node {node_id!r} parameter {name!r}"
                if _numeric(value):  # a node Parameter: an array is a weight or bias, a number a constant
                    array = np.asarray(value, dtype=np.float64)
                    tensor = self.const(array, f"{node_id}.{name}", learnable=array.ndim >= 1)
                else:
                    tensor = self.value(node_id, value, where)
            else:
                raise SchemaError(f"node {node_id!r}: {name!r} is not an input port, parameter or function "
                                  "of the node")
        finally:
            self.busy.discard(key)
        self.memo[key] = tensor
        return tensor

    def value(self, node_id: str, value: Any, where: str, env: Mapping[str, str] | None = None,
              label: str | None = None) -> str:
        """A number, list or expression as a tensor."""
        if _numeric(value):
            return self.const(np.asarray(value, dtype=np.float64), label or f"{node_id}.const")
        if not isinstance(value, str):
            raise SchemaError(f"{where}: value {value!r} is neither a number, an array nor an expression")
        if value in (env or {}) or value in _local_names(self.nodes[node_id]):
            return self.name(node_id, value, env or {})  # ids such as "/A/Add" are names, not expressions
        return _Expression(self, node_id, env or {}, where).tensor(expr.parse(value))

    def function(self, node_id: str, fid: str, spec: dict) -> str:
        name, args = _function(spec)
        where = f"node {node_id!r} function {fid!r}"
        if name is None:  # {"value": "A + B", "args": {...}}: args bind names in the expression
            env = {k: self.value(node_id, v, where) for k, v in args.items()}
            return self.value(node_id, spec.get("value"), where, env)

        def arg(key: str, default: Any = None) -> str:
            if key not in args and default is None:
                raise SchemaError(f"{where}: {name} needs the argument {key!r}")
            return self.value(node_id, args.get(key, default), where, label=f"{node_id}.{key}")

        def number(key: str, default: float) -> float:
            return _scalar(self, node_id, args.get(key, default), f"{where} argument {key!r}")

        def scalar_or_tensor(key: str, default: float) -> float | str:
            value = args.get(key, default)
            params = self.nodes[node_id].get("parameters") or {}
            raw = params[value].get("value") if isinstance(value, str) and value in params else value
            if _numeric(raw) and np.size(raw) == 1 and np.ndim(raw) == 0:
                return float(raw)
            return arg(key)

        if name.startswith(_ONNX):
            return self.onnx(node_id, name[len(_ONNX):], args, where)
        if name == "MatMul":
            return self.emit("MatMul", [arg("A"), arg("B")], node_id, where)
        if name == "Relu":
            return self.emit("Relu", [arg("A")], node_id, where)
        if name == "linear":  # slope * x + intercept: numbers as pnl.Linear, arrays as their own params
            x, slope, intercept = arg("variable0"), scalar_or_tensor("slope", 1.0), scalar_or_tensor("intercept", 0.0)
            if isinstance(slope, str):
                x = self.emit("Mul", [x, slope], node_id, where)
                slope = 1.0
            if isinstance(intercept, str):
                x = x if slope == 1.0 else self.emit("pnl.Linear", [x], node_id, where, {"slope": slope})
                return self.emit("Add", [x, intercept], node_id, where)
            if slope == 1.0 and intercept == 0.0:
                return x
            return self.emit("pnl.Linear", [x], node_id, where, {"slope": slope, "intercept": intercept})
        if name == "logistic":
            # modeci-mdf: 1 / (1 + exp(-gain * (x + bias) + offset)); a bias array adds to x as its own param
            bias = scalar_or_tensor("bias", 0.0)
            x = arg("variable0")
            if isinstance(bias, str):
                x = self.emit("Add", [x, bias], node_id, where)
                bias = 0.0
            gain, offset = number("gain", 1.0), number("offset", 0.0)
            if offset and not gain:
                raise UnsupportedError(f"{where}: logistic with gain 0 and offset {offset} is a constant")
            attrs = {"gain": gain, "bias": bias, "x_0": offset / gain if offset else 0.0}
            return self.emit("pnl.Logistic", [x], node_id, where, attrs)
        if name == "exponential":
            params = {k: number(k, d) for k, d in (("rate", 1.0), ("bias", 0.0), ("scale", 1.0), ("offset", 0.0))}
            return self.emit("pnl.Exponential", [arg("variable0")], node_id, where, params)
        if name == "tanh":
            return self.emit("pnl.Tanh", [arg("variable0")], node_id, where, {"scale": number("scale", 1.0)})
        raise UnsupportedError(f"{where}: function {name!r} is not supported")  # pragma: no cover - checked

    def onnx(self, node_id: str, op_type: str, args: dict, where: str) -> str:
        node = self.nodes[node_id]
        params = node.get("parameters") or {}
        names = INPUT_NAMES[op_type]
        attrs: dict[str, Any] = {}
        used = {v for v in args.values() if isinstance(v, str)}
        # The node's other plain Parameters are the op's ONNX attributes (onnx_to_mdf writes them so).
        for pid, p in params.items():
            if pid not in used and "value" in p and _numeric(p["value"]):
                attrs[pid] = p["value"]
        for k, v in args.items():  # attributes given as args
            if k not in names and _numeric(v):
                attrs[k] = v
        if op_type == "Constant":
            flag = params.get("value", {}).get("value") if isinstance(params.get("value"), dict) else None
            if isinstance(flag, bool):  # Dropout's training_mode, as pytorch_to_mdf writes it
                return self.const(np.asarray(float(flag)), f"{node_id}.value")
            for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
                if key in attrs:
                    return self.const(np.asarray(attrs[key], dtype=np.float64), f"{node_id}.{key}")
            raise UnsupportedError(f"{where} (Constant): only numeric value / value_float(s) / value_int(s) "
                                   "constants are supported")
        if op_type in ("LSTM", "GRU", "RNN") and (int(attrs.get("layout", 0)) != 1 or "sequence_lens" in args):
            # the graph op is batch-first over full-length sequences: a time-major X or per-sample
            # lengths would compute something else
            raise UnsupportedError(f"{where} ({op_type}): layout {int(attrs.get('layout', 0))}"
                                   f"{' with sequence_lens' if 'sequence_lens' in args else ''}; mdfx reads MDF "
                                   f"{op_type} nodes with layout=1 (batch first) and no sequence_lens; import the "
                                   "model's ONNX file with mdfx.load instead")
        if op_type == "Concat":
            listed = []
            for k, v in args.items():
                if not k.startswith("inputs"):
                    continue
                if isinstance(v, str) and v.startswith("["):  # pytorch_to_mdf: "['_13', '_15']"
                    parsed = ast.literal_eval(v)
                    if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
                        raise SchemaError(f"{where}: Concat inputs {v!r:.60} are not a list of names")
                    listed.extend(parsed)
                else:
                    listed.append(v)
            inputs = [self.value(node_id, v, where) for v in listed]
        else:
            inputs = []
            for n in names:
                if n not in args:
                    inputs.append("")
                    continue
                target = ATTRIBUTE_INPUTS.get(op_type, {}).get(n)
                if target is not None:
                    attrs[target] = self.folded(node_id, args[n], f"{where} input {n!r}", target)
                elif n != "training_mode":
                    inputs.append(self.value(node_id, args[n], where, label=f"{node_id}.{n}"))
        while inputs and not inputs[-1]:
            inputs.pop()
        if op_type == "Shape":
            return self.shape_of(node_id, args, where)
        if op_type in _FOLDABLE and inputs and all(self.is_constant(t) for t in inputs):
            return self.fold(node_id, op_type, inputs, attrs, where)
        self.mark_weights(op_type, inputs)
        if op_type in ("GlobalAveragePool", "GlobalMaxPool"):  # the mean / max over the spatial axes
            rank = len(self.port_shape(node_id, args.get("X"), where))
            return self.emit("ReduceMean" if op_type == "GlobalAveragePool" else "ReduceMax", inputs, node_id, where,
                             {"axes": list(range(2, rank)), "keepdims": 1})
        if op_type == "Pad":
            return self.pad(node_id, inputs, attrs, where)
        if op_type == "PRelu":  # relu(x) - slope * relu(-x): the slope trains, as torch's nn.PReLU
            pos = self.emit("Relu", inputs[:1], node_id, where)
            neg = self.emit("Relu", [self.emit("Neg", inputs[:1], node_id, where)], node_id, where)
            return self.emit("Sub", [pos, self.emit("Mul", [neg, inputs[1]], node_id, where)], node_id, where)
        if op_type == "Reshape" and "shape" in attrs:
            shape = attrs["shape"]
            if any(int(d) == int(_BATCH_SYMBOL) for d in shape[1:]):
                raise UnsupportedError(f"{where} (Reshape): the batch size lands off axis 0; mdfx keeps the "
                                       "batch on axis 0")
            attrs["shape"] = [0 if i == 0 and int(d) == int(_BATCH_SYMBOL) else int(d) for i, d in enumerate(shape)]
        if op_type == "Cast":
            to = int(attrs.get("to", 1))
            return self.emit("Cast" if to in _FLOAT_TYPES else "CastLabel", inputs, node_id, where, {"to": to})
        op = ops.graph_op(op_type)
        kept = {k: _attr_value(v) for k, v in attrs.items() if k in op.attrs}
        return self.emit(op_type, inputs, node_id, where, kept)

    def infer(self, op_type: str, inputs: list[str], attrs: dict) -> tuple[int, ...] | None:
        """The static shape of an op's output as far as known now (Shape of a computed tensor reads it);
        None when an input's is unknown or the rule complains (Graph.build reports that later)."""
        shapes = []
        for t in inputs:
            shape = self.shape_known(t) if t else None
            if t and shape is None:
                return None
            shapes.append(shape)
        try:
            op = ops.graph_op(op_type)
            return tuple(op.infer(shapes, **op.fill(attrs)))
        except Exception:  # noqa: BLE001 - any complaint is reported by Graph.build with the node's name
            return None

    def shape_known(self, t: str) -> tuple[int, ...] | None:
        if t in self.params:
            return tuple(self.params[t].value.shape)
        if t in self.inputs:
            return (ops.BATCH, *self.inputs[t])
        return self.known_shapes.get(t)

    def is_constant(self, t: str) -> bool:
        """A frozen constant, or a small integer list kept as a node Parameter (an index or a shape, which
        a file's array Parameters look like): what shape arithmetic folds. Weights never are."""
        if t not in self.params or t in self.weight_ports.values():
            return False
        v = self.params[t].value
        return not self.params[t].learnable or (v.size <= 64 and bool(np.all(v == np.round(v))))

    def port_shape(self, node_id: str, port: Any, where: str) -> list[int]:
        """The shape the file declares for an input port (``pytorch_to_mdf`` writes the traced one)."""
        shape = ((self.nodes[node_id].get("input_ports") or {}).get(port) or {}).get("shape") \
            if isinstance(port, str) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            raise UnsupportedError(f"{where}: input port {port!r} declares no shape; mdfx computes Shape from "
                                   "the declared shape of its input")
        return shape

    def shape_of(self, node_id: str, args: dict, where: str) -> str:
        """onnx::Shape of a batched tensor: its declared shape, the batch (axis 0) as a symbol."""
        data = args.get("data")
        if isinstance(data, str) and data not in (self.nodes[node_id].get("input_ports") or {}):
            tensor = self.value(node_id, data, where)  # a constant's shape
            if tensor in self.params:  # its shape is static, whether it trains or not
                return self.const(np.asarray(self.params[tensor].value.shape, dtype=np.float64), f"{node_id}.shape")
        known = self.shape_known(self.port(node_id, data)) if isinstance(data, str) and data in (
            self.nodes[node_id].get("input_ports") or {}) else None
        if known is not None and known and known[0] == ops.BATCH:
            shape = [_BATCH_SYMBOL, *map(float, known[1:])]
            return self.const(np.asarray(shape), f"{node_id}.shape")
        shape = [float(d) for d in self.port_shape(node_id, data, where)]
        shape[0] = _BATCH_SYMBOL
        return self.const(np.asarray(shape), f"{node_id}.shape")

    def fold(self, node_id: str, op_type: str, inputs: list[str], attrs: dict, where: str) -> str:
        """An op over frozen constants (shape arithmetic), computed now; a batch symbol may only move."""
        xs = [self.params[t].value for t in inputs]
        moves = op_type in ("Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Reshape", "Transpose",
                            "Identity")
        if not moves and any(np.any(x == _BATCH_SYMBOL) for x in xs):
            raise UnsupportedError(f"{where} ({op_type}) computes with the batch size; mdfx computes per sample")
        if op_type == "Gather":
            axis = int(attrs.get("axis", 0))
            value = np.take(xs[0], xs[1].astype(np.int64), axis=axis)
        elif op_type == "ConstantOfShape":
            fill = np.asarray(attrs.get("value", 0.0), dtype=np.float64).ravel()
            value = np.full([int(d) for d in xs[0].ravel()], fill[0] if fill.size else 0.0)
        elif op_type == "Cast":
            value = xs[0].copy()
        else:
            op = ops.graph_op(op_type)
            filled = op.fill({k: _attr_value(v) for k, v in attrs.items() if k in op.attrs}, where)
            if op_type == "Reshape":
                filled["shape"] = [int(d) for d in filled["shape"]]
            value = np.asarray(op.forward(xs, **filled), dtype=np.float64)
        limits_ok = value.size <= 10**6
        if not limits_ok:
            raise UnsupportedError(f"{where} ({op_type}): folding gives {value.size} elements; mdfx folds shapes")
        return self.const(value, f"{node_id}.folded")

    def pad(self, node_id: str, inputs: list[str], attrs: dict, where: str) -> str:
        """onnx::Pad (constant mode); pads for the listed axes only when ``axes`` is given."""
        mode = attrs.get("mode", "constant")
        if str(mode) != "constant":
            raise UnsupportedError(f"{where} (Pad): mode {mode!r}; mdfx pads with a constant")
        pads = [int(p) for p in attrs.get("pads", [])]
        axes = attrs.get("axes")
        if axes is not None:
            rank = len(pads) // 2 if not axes else None
            raise UnsupportedError(f"{where} (Pad) with axes {axes} (rank {rank}) is not taken; give pads for "
                                   "every axis")
        return self.emit("Pad", inputs[:1], node_id, where, {"pads": pads, "mode": "constant",
                                                            "value": float(attrs.get("value", 0.0))})

    def mark_weights(self, op_type: str, inputs: list[str]) -> None:
        """An onnx:: op's constant inputs: weights and biases learn, other constants stay frozen.

        ONNX does not say which initializers train; as exporters write layers, the
        weight and bias of Gemm / MatMul, the affine params of the normalisations, and
        a constant added to a MatMul's result (a bias) do; a scale ``* 5`` or a shift
        ``+ 1`` elsewhere does not.
        """
        producer = {n.output: n.op for n in self.ops}
        if op_type == "BatchNormalization":  # running statistics never train, weight ports included
            for t in inputs[3:5]:
                if t in self.params:
                    self.params[t].learnable = False
        for i, t in enumerate(inputs):
            if t not in self.params or t in self.weight_ports.values():
                continue
            other = inputs[1 - i] if op_type == "Add" and len(inputs) == 2 else ""
            self.params[t].learnable = (
                (op_type in ("Gemm", "MatMul", "Conv", "ConvTranspose", "PRelu") and i >= 1)
                or (op_type in ("LayerNormalization", "BatchNormalization") and i in (1, 2))
                or producer.get(other) in ("MatMul", "Gemm")
            )

    def folded(self, node_id: str, value: Any, where: str, attr: str) -> Any:
        """A constant input the graph IR keeps as an attribute (Reshape's shape, Slice's starts, ...)."""
        if not _numeric(value):
            tensor = self.value(node_id, value, where)
            if tensor not in self.params:
                raise UnsupportedError(f"{where} is a computed tensor; mdfx needs a constant there")
            value = self.params[tensor].value
        array = np.asarray(value)
        if attr in _SCALAR_ATTRS:
            if array.size != 1:
                raise UnsupportedError(f"{where} has shape {array.shape}; mdfx needs one number there")
            return float(array.ravel()[0])
        return [int(v) for v in array.ravel()]

    def emit(self, op_type: str, inputs: list[str], node_id: str, where: str,
             attrs: dict | None = None) -> str:
        # The same op on the same tensors is computed once ("x @ W" written twice shares W).
        key = (op_type, *inputs) if not attrs else None
        if key in self.computed:
            return self.computed[key]
        self.counter += 1
        out = f"{node_id}#{self.counter}"
        self.ops.append(Node(out, op_type, inputs, out, attrs or {}))
        self.known_shapes[out] = self.infer(op_type, inputs, attrs or {})
        if key:
            self.computed[key] = out
        return out

    def const(self, value: np.ndarray, label: str, learnable: bool = False) -> str:
        name = label
        while name in self.params or name in self.inputs:
            self.counter += 1
            name = f"{label}#{self.counter}"
        self.params[name] = Param(name, np.array(value, dtype=np.float64), learnable)
        return name


class _Expression:
    """An mdfx.expr tree as ops: arithmetic, ``@``, exp, tanh and the ReLU idioms."""

    _BINOPS = {ast.Add: "Add", ast.Sub: "Sub", ast.Mult: "Mul", ast.Div: "Div", ast.MatMult: "MatMul"}
    _CALLS = {"exp": "Exp", "tanh": "Tanh"}

    def __init__(self, reader: _Reader, node_id: str, env: Mapping[str, str], where: str) -> None:
        self.r, self.node_id, self.env, self.where = reader, node_id, env, where

    def tensor(self, node: ast.expr) -> str:
        r = self.r
        if isinstance(node, ast.Constant):
            return r.const(np.asarray(float(node.value)), f"{self.node_id}.const")
        if isinstance(node, ast.Name):
            return r.name(self.node_id, node.id, self.env)
        if isinstance(node, ast.UnaryOp):
            x = self.tensor(node.operand)
            return r.emit("Neg", [x], self.node_id, self.where) if isinstance(node.op, ast.USub) else x
        relu = _relu_operand(node)
        if relu is not None:
            return r.emit("Relu", [self.tensor(relu)], self.node_id, self.where)
        if isinstance(node, ast.BinOp) and type(node.op) in self._BINOPS:
            a, b = self.tensor(node.left), self.tensor(node.right)
            return r.emit(self._BINOPS[type(node.op)], [a, b], self.node_id, self.where)
        if isinstance(node, ast.Call) and node.func.id in self._CALLS and len(node.args) == 1:
            return r.emit(self._CALLS[node.func.id], [self.tensor(node.args[0])], self.node_id, self.where)
        raise UnsupportedError(f"{self.where}: {ast.unparse(node)!r} is not supported in a network; mdfx "
                               "imports + - * / @, exp, tanh and ReLU (x*(x>0), maximum(x, 0))")


def _relu_operand(node: ast.expr) -> ast.expr | None:
    """``x * (x > 0)``, ``(x > 0) * x`` or ``maximum(x, 0)``: the x; else None."""
    if isinstance(node, ast.Call) and node.func.id == "maximum" and len(node.args) == 2:
        a, b = node.args
        if _is_zero(b):
            return a
        if _is_zero(a):
            return b
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for x, gate in ((node.left, node.right), (node.right, node.left)):
            if (isinstance(gate, ast.Compare) and isinstance(gate.ops[0], ast.Gt)
                    and _is_zero(gate.comparators[0]) and ast.dump(gate.left) == ast.dump(x)):
                return x
    return None


def _is_zero(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value == 0


# --- small helpers -----------------------------------------------------------------------


def _one_graph(model: dict[str, Any]) -> dict[str, Any]:
    graphs = next(iter(model.values())).get("graphs") or {}
    if len(graphs) != 1:
        raise UnsupportedError(f"model {next(iter(model))!r} has {len(graphs)} graphs; mdfx reads models "
                               "with one graph")
    return next(iter(graphs.values()))


def _functions(node: dict) -> dict[str, dict]:
    """Functions and function-valued Parameters (MDF 0.4 puts them in either place)."""
    out = {fid: f for fid, f in (node.get("functions") or {}).items()}
    out.update({pid: p for pid, p in (node.get("parameters") or {}).items() if "function" in p})
    return out


def _weight_ports(node: dict) -> set[str]:
    """Ports used as B / C of an ``onnx::Gemm`` or ``onnx::MatMul``: weights, as pytorch_to_mdf writes them."""
    ports = set(node.get("input_ports") or {})
    # a port named as pytorch_to_mdf names a state_dict key (fc1.weight -> fc1_weight), whatever reads it
    out = {p for p in ports if re.search(r"(^|_)(weight|bias)$", p)}
    for spec in _functions(node).values():
        name, args = _function(spec)
        if name in (_ONNX + "Gemm", _ONNX + "MatMul"):
            out.update(v for k, v in args.items() if k in ("B", "C") and isinstance(v, str) and v in ports)
        if name in (_ONNX + "Conv", _ONNX + "ConvTranspose", _ONNX + "PRelu", _ONNX + "BatchNormalization"):
            out.update(v for k, v in args.items() if k in ("W", "B", "slope", "scale", "input_mean", "input_var")
                       and isinstance(v, str) and v in ports)
    return out


def _local_names(node: dict) -> set[str]:
    return {*(node.get("input_ports") or {}), *(node.get("parameters") or {}), *(node.get("functions") or {})}


def _function(spec: dict, where: str = "a function") -> tuple[str | None, dict[str, Any]]:
    """(function name, args) for MDF 0.4 ``{"function": f, "args": {...}}`` and 0.3 ``{"function": {f: {...}}}``."""
    if not isinstance(spec, dict):
        raise SchemaError(f"{where} must be a mapping, but holds a {type(spec).__name__}")
    fn = spec.get("function")
    if isinstance(fn, dict):
        if len(fn) != 1:
            raise SchemaError(f"{where}: MDF 0.3 writes a function as one {{name: {{args}}}} entry; "
                              f"{one_line(fn, 80)} has {len(fn)}")
        name, args = next(iter(fn.items()))
        return str(name), _args(args, where)
    return (None if fn is None else str(fn)), _args(spec.get("args"), where)


def _args(args: Any, where: str) -> dict[str, Any]:
    """A function's arguments: a mapping of names (None: none)."""
    if args is None:
        return {}
    if not isinstance(args, Mapping) or not all(isinstance(k, str) for k in args):
        raise SchemaError(f"{where}: its 'args' must be a mapping of argument names, but holds a "
                          f"{type(args).__name__} ({one_line(repr(args), 40)})")
    return dict(args)


def _main_name(node: dict, value: Any) -> str | None:
    """Follow a value to the name it is mainly computed from (a function's first argument, an
    expression's leftmost name) until a Parameter that holds data; None if there is none."""
    seen: set[str] = set()
    while isinstance(value, str) and value not in seen:
        name = value if value in _local_names(node) else _leftmost(expr.parse(value))
        if name is None:
            return None
        seen.add(value)
        spec = _functions(node).get(name)
        if spec is None:
            param = (node.get("parameters") or {}).get(name)
            if param is None or _numeric(param.get("value")):
                return name
            value = param.get("value")
            continue
        fname, args = _function(spec)
        main = STANDARD.get(fname or "") or (INPUT_NAMES.get((fname or "")[len(_ONNX):], ("",)) or ("",))[0]
        value = args.get(main) if fname else spec.get("value")
    return None


def _leftmost(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.BinOp):
        return _leftmost(node.left)
    if isinstance(node, ast.UnaryOp):
        return _leftmost(node.operand)
    if isinstance(node, ast.Call) and node.args:
        return _leftmost(node.args[0])
    if isinstance(node, ast.Compare):
        return _leftmost(node.left)
    return None


def _numeric(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return False
    try:
        return np.asarray(value).dtype.kind in "iuf"
    except (ValueError, TypeError):
        return False


def _scalar(reader: _Reader, node_id: str, value: Any, where: str) -> float:
    """A transfer-function parameter: a number, or the name of a numeric Parameter."""
    params = reader.nodes[node_id].get("parameters") or {}
    if isinstance(value, str) and value in params:
        value = params[value].get("value")
    if _numeric(value) and np.size(value) == 1:
        return float(np.ravel(value)[0])
    raise UnsupportedError(f"{where} is {value!r}; mdfx needs a single number there")


def _features(shape: Any, where: str) -> tuple[int, ...]:
    """The feature shape: ``[3]`` -> (3,); ``[batch, 3]`` -> (3,); ``[batch, 3, 2, 2]`` -> (3, 2, 2)."""
    if shape is None:
        raise SchemaError(f"{where} has no shape; mdfx needs it to size the input")
    if not isinstance(shape, list | tuple):
        raise SchemaError(f"{where}: shape {shape!r:.40} is not a list of sizes")
    dims = [validate.node_size(d, where) for d in shape]
    if len(dims) <= 1:
        return (dims[0],) if dims else (1,)
    validate.node_size(math.prod(dims[1:]), where)
    return tuple(dims[1:])


def _shape_text(port: dict) -> str:
    shape = port.get("shape")
    return "" if shape is None else "(" + "x".join(str(d) for d in shape) + ")"


def _key(name: str) -> str:
    return re.sub(r"\W", "_", str(name))


def _dtype(value: np.ndarray) -> str:
    """A weight's source dtype as the graph records it (float64 for anything but float32/16)."""
    name = str(value.dtype)
    return name if name in ("float32", "float16") else "float64"


def _attr_value(value: Any) -> Any:
    """An ONNX attribute from a JSON value: an int stays an int, a float a float, a list a list."""
    if isinstance(value, list | tuple):
        return [_attr_value(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _array(value: Any) -> np.ndarray:
    """As numpy, dtype kept: the graph casts (and copies) each weight once."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    return np.asarray(value)
