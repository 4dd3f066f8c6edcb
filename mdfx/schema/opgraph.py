"""ONNX-style op lists -> ``Net``: the one lowering behind every import path.

Each importer (ONNX files, torch modules through ONNX, foreign MDF written with
``onnx::`` ops, standard functions or expressions) first restates its model as
an :class:`OpGraph`: graph inputs with their feature sizes, constants, and ops
in ONNX's vocabulary (MatMul, Gemm, Add, Relu, ...). :func:`lower` turns that
into a :class:`~mdfx.schema.net.Net`:

* a graph input becomes an INPUT node (op identity) named after the input;
* MatMul / Gemm with a constant weight open a *pending net input*: projections
  into a node that does not exist yet, plus a bias. Add of a constant adds to
  the bias, Mul / Div by a constant scales it, Add of two tensors sums them;
* an activation closes it: a new node whose op is the activation. A pending
  net input that reaches a graph output, or feeds several ops, becomes a node
  with op identity. A graph output's node is named after the output;
* Identity, Cast, Flatten and Reshape that keep ``(batch, features)`` change
  nothing; ops whose inputs are all constants are folded.

Every tensor is ``(batch, features)``; anything else is refused with an error
that names the op. The result is exact for the forward pass. Training matches
the original parametrisation for MatMul / Gemm (alpha = beta = 1) + bias +
activation layers; a scale by a constant is folded into the weights.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mdfx import limits, ops
from mdfx.errors import UnsupportedError
from mdfx.schema.net import Net, NodeSpec, ProjectionSpec

#: An activation given directly as an mdfx transfer op (used by MDF readers):
#: ``attrs = {"op": <ops.TRANSFER key>, "params": {...}}``.
TRANSFER = "Transfer"

#: ONNX activation -> (mdfx transfer op, ONNX attribute -> op parameter).
ACTIVATIONS: dict[str, tuple[str, dict[str, str]]] = {
    "Relu": ("relu", {}),
    "LeakyRelu": ("relu", {"alpha": "leak"}),
    "Sigmoid": ("logistic", {}),
    "Tanh": ("tanh", {}),
    "Exp": ("exponential", {}),
    "Softmax": ("softmax", {}),
    "Identity": ("identity", {}),
}
#: ONNX attribute defaults that differ from the mdfx op's (LeakyRelu's alpha).
_ONNX_DEFAULTS = {("LeakyRelu", "alpha"): 0.01}

_ELEMENT_OPS = ("Add", "Sub", "Mul", "Div", "Neg")
_SHAPE_OPS = ("Cast", "Flatten", "Reshape", "Transpose")

#: The ONNX op types an OpGraph may hold, as listed in error messages.
SUPPORTED: tuple[str, ...] = tuple(sorted(
    {"Constant", "MatMul", "Gemm", *_ELEMENT_OPS, *_SHAPE_OPS, *ACTIVATIONS}
))

#: ONNX input names of the supported ops, in order (MDF ``onnx::`` functions name their args).
INPUT_NAMES: dict[str, tuple[str, ...]] = {
    "Constant": (), "MatMul": ("A", "B"), "Gemm": ("A", "B", "C"),
    "Add": ("A", "B"), "Sub": ("A", "B"), "Mul": ("A", "B"), "Div": ("A", "B"), "Neg": ("X",),
    "Cast": ("input",), "Flatten": ("input",), "Reshape": ("data", "shape"), "Transpose": ("data",),
    "Relu": ("X",), "LeakyRelu": ("X",), "Sigmoid": ("X",), "Tanh": ("input",), "Exp": ("input",),
    "Softmax": ("input",), "Identity": ("input",),
}

#: Largest node an elementwise op may follow (its fixed identity projection is size x size floats).
_MAX_IDENTITY = 4096

#: ONNX TensorProto element types that are floats (Cast to these is a no-op here).
_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


@dataclass
class Op:
    """One op: ``output = type(*inputs, **attrs)``. An omitted optional input is ``""``."""

    type: str
    inputs: list[str]
    output: str
    name: str  #: names the Net node this op creates, if it creates one
    attrs: dict[str, Any] = field(default_factory=dict)
    where: str = ""  #: how error messages name it (default: ``node <name>``)

    def label(self) -> str:
        return self.where or f"node {self.name!r}"


@dataclass
class OpGraph:
    """A model restated as ops over ``(batch, features)`` tensors, ready for :func:`lower`."""

    name: str
    inputs: dict[str, int]  #: graph input tensor -> features per sample
    outputs: list[str]  #: graph output tensors
    constants: dict[str, np.ndarray]
    ops: list[Op]
    #: Net node name per graph input / output tensor (default: the tensor name)
    node_names: dict[str, str] = field(default_factory=dict)
    #: Net node name per op that opens a layer (default: the op's name)
    layer_names: dict[str, str] = field(default_factory=dict)


def check_supported(ops_: list[Op], what: str = "ONNX") -> None:
    """Refuse every op type outside :data:`SUPPORTED`, listing each with the nodes that use it."""
    bad: dict[str, list[str]] = {}
    for op in ops_:
        if op.type not in SUPPORTED and op.type != TRANSFER:
            bad.setdefault(op.type, []).append(op.label())
    if bad:
        listed = "; ".join(f"{t} ({', '.join(where)})" for t, where in sorted(bad.items()))
        raise UnsupportedError(
            f"unsupported {what} op{'s' if len(bad) > 1 else ''}: {listed}. mdfx imports feed-forward "
            f"networks built from: {', '.join(SUPPORTED)}"
        )


# --- the lowering -----------------------------------------------------------------


@dataclass
class _Term:
    """``value[sender] @ matrix``, one future projection."""

    sender: str
    matrix: np.ndarray
    learnable: bool
    name: str


@dataclass
class _Pre:
    """A pending net input: ``sum(terms) + bias`` into a node not created yet."""

    terms: list[_Term]
    bias: np.ndarray | None
    size: int
    name: str | None = None  #: the op that opened it (a MatMul / Gemm layer) names the node


@dataclass
class _Out:
    """The value of an existing node."""

    node: str


_State = np.ndarray | _Pre | _Out


def lower(g: OpGraph) -> Net:
    """Turn ``g`` into a validated Net (see the module docstring for the rules)."""
    check_supported(g.ops)
    return _Lowering(g).run()


class _Lowering:
    def __init__(self, g: OpGraph) -> None:
        self.g = g
        self.nodes: dict[str, NodeSpec] = {}
        self.projections: list[ProjectionSpec] = []
        self.state: dict[str, _State] = {k: np.asarray(v) for k, v in g.constants.items()}
        self.uses: Counter[str] = Counter(t for op in g.ops for t in op.inputs if t)
        self.input_nodes: list[str] = []
        for tensor, size in g.inputs.items():
            node = self._node(g.node_names.get(tensor, tensor), int(size), "identity")
            self.input_nodes.append(node)
            self.state[tensor] = _Out(node)

    # - names and nodes -

    def _unique(self, name: str, taken: set[str]) -> str:
        candidate, i = name, 1
        while candidate in taken:
            candidate = f"{name}_{i}"
            i += 1
        return candidate

    def _node(self, name: str, size: int, op: str, params: dict[str, float] | None = None,
              bias: np.ndarray | None = None) -> str:
        name = self._unique(name, set(self.nodes))
        spec = ops.transfer_op(op)
        self.nodes[name] = NodeSpec(name, size, op, ops.fill_params(spec, params or {}), bias)
        return name

    def _close(self, pre: _Pre, name: str, op: str = "identity", params: dict[str, float] | None = None) -> str:
        """Create the node that ``pre`` flows into, with its projections."""
        bias = None if pre.bias is None else np.array(pre.bias, dtype=np.float64)
        opener = pre.name or name
        node = self._node(self.g.layer_names.get(opener, opener), pre.size, op, params, bias)
        taken = {p.name for p in self.projections}
        used = {id(p.matrix) for p in self.projections}
        for t in pre.terms:
            pname = self._unique(t.name, taken)
            taken.add(pname)
            # Term matrices are fresh arrays (see _weight); a tied weight used twice gets a
            # copy, so that training updates each projection on its own.
            matrix = t.matrix.copy() if id(t.matrix) in used else t.matrix
            used.add(id(matrix))
            self.projections.append(ProjectionSpec(pname, t.sender, node, matrix, t.learnable))
        return node

    def _settle(self, state: _State, name: str) -> _State:
        """A pending net input as a node (op identity); anything else unchanged."""
        if isinstance(state, _Pre):
            trivial = self._trivial(state)
            return _Out(trivial) if trivial else _Out(self._close(state, name))
        return state

    @staticmethod
    def _trivial(pre: _Pre) -> str | None:
        """The sender when ``pre`` is just one node's value passed through unchanged."""
        if pre.bias is None and len(pre.terms) == 1:
            m = pre.terms[0].matrix
            is_eye = m.shape == (pre.size, pre.size) and np.count_nonzero(m) == pre.size and np.all(m.diagonal() == 1)
            if not pre.terms[0].learnable and is_eye:
                return pre.terms[0].sender
        return None

    def _pre(self, state: _State, op: Op) -> _Pre:
        if isinstance(state, _Pre):
            return state
        if isinstance(state, _Out):
            # An elementwise op on a node's value: a fixed identity projection into a new node.
            size = self.nodes[state.node].size
            if size > _MAX_IDENTITY:
                raise UnsupportedError(f"{op.label()} ({op.type}) on {state.node!r} would need a fixed "
                                       f"{size}x{size} identity projection; mdfx imports elementwise ops on "
                                       f"layers of at most {_MAX_IDENTITY} units")
            return _Pre([_Term(state.node, np.eye(size), False, f"{state.node}->identity")], None, size)
        raise UnsupportedError(f"{op.label()} ({op.type}): expected a tensor computed from the inputs, "
                               "got a constant")

    def _size(self, state: _State) -> int:
        return state.size if isinstance(state, _Pre) else self.nodes[state.node].size

    # - the walk -

    def run(self) -> Net:
        producer = {op.output: op.name for op in self.g.ops}
        for op in _topological(self.g):
            args = [self._read(t, op) for t in op.inputs]
            # A pending net input read by several ops (or also a graph output) becomes a
            # node first, so each reader shares one set of weights.
            for i, (tensor, state) in enumerate(zip(op.inputs, args, strict=True)):
                shared = self.uses[tensor] > 0 or tensor in self.g.outputs or op.inputs.count(tensor) > 1
                if isinstance(state, _Pre) and shared:
                    name = self.g.node_names.get(tensor) or producer.get(tensor, tensor)
                    self.state[tensor] = args[i] = self._settle(state, name)
            self.state[op.output] = self._apply(op, args)
        outputs = []
        rename: dict[str, str] = {}
        for tensor in self.g.outputs:
            state = self._read(tensor, None, count=False)
            if isinstance(state, np.ndarray):
                raise UnsupportedError(f"graph output {tensor!r} is a constant; mdfx imports networks "
                                       "whose outputs depend on their inputs")
            wanted = self.g.node_names.get(tensor, tensor)
            node = self._settle(state, wanted).node
            if node not in self.input_nodes and node not in rename and node not in outputs:
                rename[node] = wanted
            if node not in outputs:
                outputs.append(node)
        return self._build(outputs, rename)

    def _read(self, tensor: str, op: Op | None, count: bool = True) -> _State | None:
        if not tensor:
            return None
        if tensor not in self.state:
            who = f"{op.label()} ({op.type}) reads" if op else "graph output"
            raise UnsupportedError(f"{who} {tensor!r}, which is neither a graph input, a constant "
                                   "nor computed by an earlier op")
        if count:
            self.uses[tensor] -= 1
        return self.state[tensor]

    def _build(self, outputs: list[str], rename: dict[str, str]) -> Net:
        # Output nodes take their graph output names; an inner node that had one moves aside.
        final: dict[str, str] = {}
        taken = set(self.input_nodes)
        for node, wanted in rename.items():
            final[node] = self._unique(wanted, taken)
            taken.add(final[node])
        for node in self.nodes:
            if node not in final and node not in self.input_nodes:
                final[node] = self._unique(node, taken | (set(self.nodes) - {node}))
                taken.add(final[node])

        def n(name: str) -> str:
            return final.get(name, name)

        nodes = []
        for spec in self.nodes.values():
            spec.name = n(spec.name)
            nodes.append(spec)
        for p in self.projections:
            p.sender, p.receiver = n(p.sender), n(p.receiver)
        return Net.build(self.g.name, nodes, self.projections,
                         inputs=[n(x) for x in self.input_nodes], outputs=[n(x) for x in outputs])

    def _apply(self, op: Op, args: list[_State | None]) -> _State:
        given = [a for a in args if a is not None]
        if op.type == "Constant":
            return _constant(op)
        if op.type in ACTIVATIONS or op.type == TRANSFER:
            return self._activation(op, args[0])
        if given and all(isinstance(a, np.ndarray) for a in given):
            return _fold(op, args)
        rule = _RULES.get(op.type)
        if rule is None:  # pragma: no cover - check_supported ran first
            raise UnsupportedError(f"{op.label()}: op {op.type} is not supported")
        return rule(self, op, args)

    # - rules -

    def _activation(self, op: Op, x: _State | None) -> _State:
        name, params = _transfer(op)
        if name == "identity" and not params:
            return x
        if isinstance(x, np.ndarray):
            spec = ops.TRANSFER[name]
            with np.errstate(all="ignore"):  # a non-finite result used as a weight is refused at load
                return np.asarray(spec.forward(x.astype(np.float64), **ops.fill_params(spec, params)))
        return _Out(self._close(self._pre(x, op), op.name, name, params))

    def _matmul(self, op: Op, args: list[_State | None]) -> _State:
        x, w = args[0], args[1]
        if not isinstance(w, np.ndarray):
            if isinstance(x, np.ndarray):
                raise UnsupportedError(f"{op.label()} (MatMul): the constant is the left operand; mdfx "
                                       "imports x @ W with the batch along the first axis of x")
            raise UnsupportedError(f"{op.label()} (MatMul): both operands are computed tensors; mdfx "
                                   "imports products with a constant weight matrix only")
        return self._project(op, x, _weight(w), op.inputs[1])

    def _gemm(self, op: Op, args: list[_State | None]) -> _State:
        a = op.attrs
        if int(a.get("transA", 0)):
            raise UnsupportedError(f"{op.label()} (Gemm): transA=1 is not supported; mdfx imports "
                                   "Gemm with the batch along the first axis of A (transA=0)")
        x, w, c = (args + [None])[:3]
        if not isinstance(w, np.ndarray):
            raise UnsupportedError(f"{op.label()} (Gemm): B is a computed tensor; mdfx imports Gemm "
                                   "with a constant weight B")
        w = _weight(w.T if int(a.get("transB", 0)) else w)
        alpha = float(a.get("alpha", 1.0))
        if alpha != 1.0:
            w *= alpha
        pre = self._project(op, x, w, op.inputs[1])
        if c is None:
            return pre
        if not isinstance(c, np.ndarray):
            raise UnsupportedError(f"{op.label()} (Gemm): C is a computed tensor; mdfx imports Gemm "
                                   "with a constant bias C")
        return self._add_bias(op, pre, float(a.get("beta", 1.0)) * c.astype(np.float64))

    def _project(self, op: Op, x: _State, w: np.ndarray, wname: str) -> _Pre:
        size = self._size(x)
        if w.ndim != 2 or w.shape[0] != size:
            raise UnsupportedError(f"{op.label()} ({op.type}): weight of shape {w.shape} does not fit an "
                                   f"input of {size} features; expected ({size}, n)")
        if isinstance(x, _Pre):
            only = x.terms[0] if len(x.terms) == 1 else None
            if x.bias is None and only is not None and not only.learnable:
                # A fixed map (a constant scale) followed by W: one weight matrix.
                return _Pre([_Term(only.sender, only.matrix @ w, True, wname)], None, w.shape[1], op.name)
            x = self._settle(x, op.name)
        return _Pre([_Term(x.node, w, True, wname)], None, w.shape[1], op.name)

    def _add_bias(self, op: Op, x: _State, c: np.ndarray) -> _Pre:
        pre = self._pre(x, op)
        c = _per_feature(op, c, pre.size)
        if pre.bias is None and not c.any():
            return pre  # adding zeros: keep the node bias-free
        bias = c if pre.bias is None else pre.bias + c
        return _Pre(pre.terms, bias, pre.size, pre.name)

    def _scale(self, op: Op, x: _State, c: np.ndarray) -> _Pre:
        pre = self._pre(x, op)
        c = _per_feature(op, c, pre.size)
        # (sum x_i @ M_i + b) * c == sum x_i @ (M_i * c) + b * c, c scaling the columns
        terms = [_Term(t.sender, t.matrix * c, t.learnable, t.name) for t in pre.terms]
        return _Pre(terms, None if pre.bias is None else pre.bias * c, pre.size, pre.name)

    def _add(self, op: Op, args: list[_State | None]) -> _State:
        a, b = args[0], args[1]
        if isinstance(b, np.ndarray):
            return self._add_bias(op, a, b.astype(np.float64))
        if isinstance(a, np.ndarray):
            return self._add_bias(op, b, a.astype(np.float64))
        pa, pb = self._pre(a, op), self._pre(b, op)
        if pa.size != pb.size:
            raise UnsupportedError(f"{op.label()} (Add): operands have {pa.size} and {pb.size} features")
        bias = pa.bias if pb.bias is None else pb.bias if pa.bias is None else pa.bias + pb.bias
        return _Pre(_merge(pa.terms + pb.terms), bias, pa.size, pa.name or pb.name)

    def _sub(self, op: Op, args: list[_State | None]) -> _State:
        a, b = args[0], args[1]
        negated = np.asarray(-b) if isinstance(b, np.ndarray) else self._scale(op, b, np.array(-1.0))
        return self._add(op, [a, negated])

    def _mul(self, op: Op, args: list[_State | None]) -> _State:
        a, b = args[0], args[1]
        if isinstance(a, np.ndarray):
            a, b = b, a
        if not isinstance(b, np.ndarray):
            raise UnsupportedError(f"{op.label()} (Mul): both operands are computed tensors; mdfx "
                                   "imports products with a constant only")
        return self._scale(op, a, b.astype(np.float64))

    def _div(self, op: Op, args: list[_State | None]) -> _State:
        if not isinstance(args[1], np.ndarray):
            raise UnsupportedError(f"{op.label()} (Div): the divisor is a computed tensor; mdfx imports "
                                   "division by a constant only")
        divisor = args[1].astype(np.float64)
        if not np.all(divisor != 0):  # NaN counts too
            raise UnsupportedError(f"{op.label()} (Div): the constant divisor holds zero or NaN")
        return self._scale(op, args[0], 1.0 / divisor)

    def _neg(self, op: Op, args: list[_State | None]) -> _State:
        return self._scale(op, args[0], np.array(-1.0))

    def _cast(self, op: Op, args: list[_State | None]) -> _State:
        to = int(op.attrs.get("to", 1))
        if to not in _FLOAT_TYPES:
            raise UnsupportedError(f"{op.label()} (Cast): cast to ONNX type {to} is not supported; "
                                   "mdfx networks compute in floats")
        return args[0]

    def _flatten(self, op: Op, args: list[_State | None]) -> _State:
        axis = int(op.attrs.get("axis", 1))
        if axis != 1:
            raise UnsupportedError(f"{op.label()} (Flatten): axis={axis} is not supported; mdfx keeps the "
                                   "batch along axis 0 and features flattened (axis=1)")
        return args[0]

    def _reshape(self, op: Op, args: list[_State | None]) -> _State:
        x, shape = args[0], args[1]
        size = self._size(x)
        target = [int(v) for v in np.asarray(shape).ravel()] if isinstance(shape, np.ndarray) else None
        # [-1, n], [0, n], [batch, n], [0, -1]: the batch stays on axis 0, n features each.
        if target is None or len(target) != 2 or target[1] not in (size, -1) or (target[1] == -1 and target[0] == -1):
            raise UnsupportedError(f"{op.label()} (Reshape): target shape {target} is not supported; mdfx "
                                   f"imports reshapes that keep (batch, {size}) tensors as they are")
        return x

    def _transpose(self, op: Op, args: list[_State | None]) -> _State:
        raise UnsupportedError(f"{op.label()} (Transpose): transposing a computed tensor would move the "
                               "batch axis; mdfx imports Transpose of constants (weights) only")


_RULES: dict[str, Callable[[_Lowering, Op, list[_State | None]], _State]] = {
    "MatMul": _Lowering._matmul,
    "Gemm": _Lowering._gemm,
    "Add": _Lowering._add,
    "Sub": _Lowering._sub,
    "Mul": _Lowering._mul,
    "Div": _Lowering._div,
    "Neg": _Lowering._neg,
    "Cast": _Lowering._cast,
    "Flatten": _Lowering._flatten,
    "Reshape": _Lowering._reshape,
    "Transpose": _Lowering._transpose,
}


def _weight(w: np.ndarray) -> np.ndarray:
    """A weight as a fresh C-ordered float64 array: one pass for the cast, the transpose and the copy
    (weights of a large MLP are hundreds of MB)."""
    return np.array(w, dtype=np.float64, order="C")


def _merge(terms: list[_Term]) -> list[_Term]:
    """Sum fixed maps from the same sender into one (x + x, x - x ...); learnable terms stay apart."""
    out: list[_Term] = []
    fixed: dict[str, _Term] = {}
    for t in terms:
        if not t.learnable and t.sender in fixed:
            fixed[t.sender].matrix = fixed[t.sender].matrix + t.matrix
            continue
        t = _Term(t.sender, t.matrix, t.learnable, t.name)
        if not t.learnable:
            fixed[t.sender] = t
        out.append(t)
    return out


def _per_feature(op: Op, c: np.ndarray, size: int) -> np.ndarray:
    """A constant that broadcasts over each sample: a scalar or one value per feature."""
    c = np.asarray(c, dtype=np.float64)
    if c.size == 1:
        return np.full(size, float(c.ravel()[0]))
    if c.shape in ((size,), (1, size)):
        return c.reshape(size).copy()
    raise UnsupportedError(f"{op.label()} ({op.type}): constant of shape {c.shape} does not broadcast "
                           f"as one value per feature over (batch, {size}) tensors")


def _transfer(op: Op) -> tuple[str, dict[str, float]]:
    """The mdfx transfer op and parameters of an activation op."""
    if op.type == TRANSFER:
        return op.attrs["op"], dict(op.attrs.get("params", {}))
    name, attr_map = ACTIVATIONS[op.type]
    if op.type == "Softmax":
        axis = int(op.attrs.get("axis", -1))
        if axis not in (-1, 1):
            raise UnsupportedError(f"{op.label()} (Softmax): axis={axis} is not supported; mdfx's SoftMax "
                                   "runs over the features (axis -1 or 1 of a (batch, features) tensor)")
    params = {}
    for attr, param in attr_map.items():
        params[param] = float(op.attrs.get(attr, _ONNX_DEFAULTS.get((op.type, attr), 0.0)))
    return name, params


def _constant(op: Op) -> np.ndarray:
    a = op.attrs
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in a:
            return np.asarray(a[key])
    raise UnsupportedError(f"{op.label()} (Constant): only numeric value / value_float(s) / "
                           "value_int(s) constants are supported")


def _onnx_reshape(x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    target = [x.shape[i] if int(v) == 0 else int(v) for i, v in enumerate(np.asarray(shape).ravel())]
    return x.reshape(target)


#: numpy for ops whose inputs are all constants (weights prepared by the exporter).
_FOLDS: dict[str, Callable[..., np.ndarray]] = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Neg": np.negative,
    "MatMul": np.matmul, "Cast": lambda x: x.astype(np.float64), "Flatten": lambda x: x.reshape(len(x), -1),
    "Reshape": _onnx_reshape,
}


def _fold(op: Op, args: list[Any]) -> np.ndarray:
    limits.check_fold(op.type, [np.shape(a) for a in args if a is not None], op.label(), op.attrs)
    with np.errstate(all="ignore"):  # a non-finite result used as a weight is refused at load
        return _fold_values(op, args)


def _fold_values(op: Op, args: list[Any]) -> np.ndarray:
    if op.type == "Transpose":
        perm = op.attrs.get("perm")
        return np.transpose(args[0], None if perm is None else [int(p) for p in perm])
    if op.type == "Gemm":
        a, b, c = (args + [None])[:3]
        a = a.T if int(op.attrs.get("transA", 0)) else a
        b = b.T if int(op.attrs.get("transB", 0)) else b
        out = float(op.attrs.get("alpha", 1.0)) * (a @ b)
        return out if c is None else out + float(op.attrs.get("beta", 1.0)) * c
    fold = _FOLDS.get(op.type)
    if fold is None:
        raise UnsupportedError(f"{op.label()} ({op.type}): cannot fold this op over constants")
    return np.asarray(fold(*[a for a in args if a is not None]))


def _topological(g: OpGraph) -> list[Op]:
    """The ops in dependency order (ONNX lists them so; MDF need not)."""
    known = set(g.inputs) | set(g.constants)
    producers = {op.output: op for op in g.ops}
    order: list[Op] = []
    state: dict[int, int] = {}  # id(op) -> 1 visiting, 2 done

    def visit(op: Op) -> None:
        mark = state.get(id(op))
        if mark == 2:
            return
        if mark == 1:
            raise UnsupportedError(f"{op.label()} ({op.type}) depends on its own output: a cycle; "
                                   "mdfx supports feed-forward networks only")
        state[id(op)] = 1
        for t in op.inputs:
            if t and t not in known and t in producers:
                visit(producers[t])
        state[id(op)] = 2
        order.append(op)

    for op in g.ops:
        visit(op)
    return order
