"""The op graph: the one in-memory form of a model (DESIGN rule 1, "the graph is the hub").

A :class:`Graph` has four kinds of things, as a torch.fx graph or an ONNX
``GraphProto`` does:

* **inputs**: named tensors shaped ``(batch, features...)``; the graph keeps the
  feature shape, the batch may be any size;
* **params**: named arrays, each kept under its original name and in its
  original layout (a torch ``Linear`` weight stays ``(out, in)``), either
  learnable or a frozen constant (normalisation statistics, a scale ``/ 4``);
* **nodes**: ops of :data:`mdfx.ops.GRAPH_OPS`, in topological order, each
  reading tensors (inputs, params or earlier nodes' outputs) and writing one;
* **outputs**: named tensors.

:meth:`Graph.build` checks everything once: op names and arity, attributes
(defaults filled from the op table), that every tensor read exists, and the
static shape of every tensor. Errors name the node, the op, the shapes expected
and the shapes given. Nothing is folded into a trainable tensor: importers keep
each bias, scale and constant as its own param, so training the graph is
training the original model.

The graph prints itself as text (``print(graph)``)::

    graph xor (x: (batch, 2)) -> (out)
      %h = MatMul(%x, %w1)
      %out = pnl.Logistic(%h) {gain=1.0, ...}

Every backend walks ``graph.nodes`` with its own rule per op; the numpy
reference (:mod:`mdfx.runners.reference`) is the spec.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mdfx import limits, ops
from mdfx.errors import GraphError, UnsupportedError
from mdfx.ops import BATCH, Shape

#: Float dtypes a graph's params and inputs may have in their source.
FLOAT_DTYPES = ("float64", "float32", "float16")
#: Integer dtypes a graph input may have (token indices): such inputs take no gradient.
INT_DTYPES = ("int64", "int32")
#: Ops that carry integer values through unchanged (an index tensor reshaped, sliced, moved)
_INT_PASS = ("Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Slice", "Concat", "Gather")


@dataclass
class Param:
    """A named array: learnable, or a frozen constant.

    ``value`` is what every backend reads and training updates in place; it is
    float64 (mdfx computes in float64 unless asked otherwise) and keeps the
    source's layout. ``dtype`` is the source's dtype, which exports write back.
    """

    name: str
    value: np.ndarray
    learnable: bool = True
    dtype: str = "float64"

    @property
    def shape(self) -> Shape:
        return tuple(self.value.shape)


@dataclass
class Node:
    """``output = op(*inputs, **attrs)``; an omitted optional input is ``""``."""

    name: str
    op: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        args = ", ".join(f"%{t}" if t else "_" for t in self.inputs)
        attrs = ", ".join(f"{k}={_short(v)}" for k, v in self.attrs.items())
        return f"%{self.output} = {self.op}({args})" + (f" {{{attrs}}}" if attrs else "") + \
            (f"  # {self.name}" if self.name != self.output else "")


@dataclass
class Graph:
    """A validated op graph; make one with :meth:`build`."""

    name: str
    inputs: dict[str, Shape]  #: graph input -> feature shape (the batch axis is implicit)
    params: dict[str, Param]
    nodes: list[Node]  #: topological order
    outputs: list[str]
    dtype: str = "float64"  #: the source's float dtype (exports default to it)
    #: free-form facts kept beside the graph: training settings, names, where it came from
    meta: dict[str, Any] = field(default_factory=dict)
    #: static shape of every tensor, BATCH on axis 0 for batched ones (filled by build)
    shapes: dict[str, Shape] = field(default_factory=dict)
    #: graph input -> its integer dtype ("int64", "int32"); inputs not listed are floats.
    #: Backends carry integer values in their float buffers (exact below 2**53, 2**24 in
    #: float32); the data boundary checks they are whole numbers in range for each lookup.
    input_dtypes: dict[str, str] = field(default_factory=dict)
    #: tensors holding integers (integer inputs, integer constants, and what shape ops make of them)
    int_tensors: frozenset[str] = field(default_factory=frozenset)
    #: integer graph input -> [(Gather node, axis size)]: the ranges its values must lie in
    index_bounds: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    _key: tuple | None = field(default=None, repr=False, compare=False)

    # --- building ---------------------------------------------------------------------

    @classmethod
    def build(cls, name: str, inputs: Mapping[str, Iterable[int]], params: Iterable[Param],
              nodes: Iterable[Node], outputs: Iterable[str], dtype: str = "float64",
              meta: Mapping[str, Any] | None = None, input_dtypes: Mapping[str, str] | None = None) -> Graph:
        """Check and order everything; see the module docstring. Raises GraphError / UnsupportedError.

        ``input_dtypes`` names the integer inputs (``{"tokens": "int64"}``); the others are floats.
        """
        ins = {str(k): tuple(int(d) for d in v) for k, v in inputs.items()}
        int_ins = {str(k): str(v) for k, v in (input_dtypes or {}).items() if str(v) not in FLOAT_DTYPES}
        for k, v in int_ins.items():
            if k not in ins:
                raise GraphError(f"graph {name!r}: input_dtypes names {k!r}, which is not a graph input "
                                 f"({', '.join(ins)})")
            if v not in INT_DTYPES:
                raise GraphError(f"graph {name!r}: input {k!r} has dtype {v!r}; inputs are float "
                                 f"({', '.join(FLOAT_DTYPES)}) or integer ({', '.join(INT_DTYPES)})")
        plist = list(params)
        pmap: dict[str, Param] = {}
        for p in plist:
            if p.name in pmap or p.name in ins:
                raise GraphError(f"graph {name!r}: two tensors are named {p.name!r}")
            # a frozen table of labels (int64 or strings) is allowed: skl2onnx's classes, read by a
            # lookup that takes no gradient; everything a gradient flows through is float
            if not isinstance(p.value, np.ndarray) or (p.value.dtype.kind != "f" and p.learnable):
                raise GraphError(f"graph {name!r}: param {p.name!r} is not a float array "
                                 f"({type(p.value).__name__} {getattr(p.value, 'dtype', '')})")
            pmap[p.name] = p
        for k, shape in ins.items():
            if any(d < 1 for d in shape):
                raise GraphError(f"graph {name!r}: input {k!r} has feature shape {shape}; sizes must be >= 1")
        if dtype not in FLOAT_DTYPES:
            raise GraphError(f"graph {name!r}: dtype {dtype!r} is not one of {', '.join(FLOAT_DTYPES)}")
        g = cls(name, ins, pmap, _toposort(name, list(nodes), set(ins) | set(pmap)), list(outputs), dtype,
                dict(meta or {}), input_dtypes=int_ins)
        g._infer()
        g._integers()
        return g

    def _infer(self) -> None:
        shapes: dict[str, Shape] = {k: (BATCH, *v) for k, v in self.inputs.items()}
        shapes.update({k: p.shape for k, p in self.params.items()})
        for node in self.nodes:
            op = ops.graph_op(node.op) if node.op in ops.GRAPH_OPS else None
            if op is None:
                raise UnsupportedError(f"node {node.name!r}: op {node.op!r} is not in the graph IR; it has "
                                       f"{', '.join(sorted(ops.GRAPH_OPS))}")
            where = f"node {node.name!r} ({node.op}): "
            variadic = op.inputs and op.inputs[0].endswith("...")
            given = [t for t in node.inputs]
            while given and not given[-1]:
                given.pop()
            if not variadic and not op.min_inputs <= len(given) <= len(op.inputs):
                raise GraphError(f"{where}takes {op.min_inputs}-{len(op.inputs)} inputs "
                                 f"({', '.join(op.inputs)}), got {len(given)}")
            if variadic and not given:
                raise GraphError(f"{where}needs at least one input")
            node.inputs = given
            node.attrs = op.fill(node.attrs, where)
            in_shapes: list[Shape | None] = []
            for t in node.inputs:
                if not t:
                    in_shapes.append(None)
                    continue
                if t not in shapes:
                    raise GraphError(f"{where}reads {t!r}, which is neither a graph input, a param nor the "
                                     "output of an earlier node")
                in_shapes.append(shapes[t])
            if node.output in shapes:
                raise GraphError(f"{where}writes {node.output!r}, which already exists (each tensor is "
                                 "written once)")
            try:
                out = op.infer(in_shapes, **node.attrs)
            except ops.ShapeError as exc:
                raise GraphError(f"{where}{exc}; input shapes: "
                                 f"{', '.join(f'{t}: {ops._fmt(s)}' for t, s in zip(node.inputs, in_shapes, strict=True))}"
                                 ) from None
            # every importer builds here: a declared shape over the limit is refused before run()
            # allocates it (per sample for a batched tensor)
            batched = bool(out) and out[0] == BATCH
            limits.check_elements(out[1:] if batched else out, f"graph {self.name!r}: {where}output "
                                  f"{node.output!r}" + (" per sample" if batched else ""))
            if node.op == "Reshape" and out and out[0] == BATCH:
                # the batch stays, whatever the source wrote (0 copies it: allowzero off)
                node.attrs["shape"], node.attrs["allowzero"] = [0, *out[1:]], 0
            shapes[node.output] = tuple(int(d) for d in out)
        if not self.outputs:
            raise GraphError(f"graph {self.name!r} has no outputs; mdfx runs networks that compute outputs")
        for t in self.outputs:
            if t not in shapes:
                raise GraphError(f"graph {self.name!r}: output {t!r} is not computed by any node")
            if not shapes[t] or shapes[t][0] != BATCH:
                raise GraphError(f"graph {self.name!r}: output {t!r} does not depend on the inputs (shape "
                                 f"{ops._fmt(shapes[t])}); mdfx runs networks whose outputs are computed per sample")
            if 0 in shapes[t][1:]:
                raise GraphError(f"graph {self.name!r}: output {t!r} has no features (shape {ops._fmt(shapes[t])}); "
                                 "each sample's output needs at least one value")
        self.shapes = shapes

    def _integers(self) -> None:
        """Which tensors hold integers; Gather's indices must be one of them, constant ones in range."""
        ints = set(self.input_dtypes) | {k for k, p in self.params.items()
                                         if p.dtype.startswith(("int", "uint")) or p.value.dtype.kind in "iu"}
        origin: dict[str, str] = {k: k for k in self.input_dtypes}  # an index tensor -> the input it comes from
        bounds: dict[str, list[tuple[str, int]]] = {}
        for node in self.nodes:
            where = f"node {node.name!r} ({node.op}): "
            if node.op == "Gather":
                data, idx = node.inputs
                if idx not in ints:
                    raise GraphError(f"{where}its indices {idx!r} are floats; Gather reads integer indices (an "
                                     "int64/int32 graph input or an integer constant)")
                n = self.shapes[data][int(node.attrs["axis"]) % len(self.shapes[data])]
                if idx in self.params:
                    values = self.params[idx].value
                    if values.size and (values.min() < -n or values.max() >= n):
                        raise GraphError(f"{where}constant indices {idx!r} hold {int(values.min())}.."
                                         f"{int(values.max())}, out of range for axis {node.attrs['axis']} of "
                                         f"{data!r} (size {n}; valid: {-n}..{n - 1})")
                elif idx in origin:
                    bounds.setdefault(origin[idx], []).append((node.name, int(n)))
                else:
                    raise GraphError(f"{where}its indices {idx!r} are computed; mdfx checks indices at the data "
                                     "boundary, so they must come from an integer graph input or a constant")
            if node.op in _INT_PASS and node.inputs and all(t in ints for t in node.inputs[:1 if node.op != "Concat"
                                                                                     else None]):
                if node.op != "Gather" or node.inputs[0] in ints:
                    ints.add(node.output)
                    if node.inputs[0] in origin and node.op != "Concat":
                        origin[node.output] = origin[node.inputs[0]]
        self.int_tensors = frozenset(ints)
        self.index_bounds = bounds

    # --- reading ------------------------------------------------------------------------

    def features(self, tensor: str) -> Shape:
        """The feature shape (without the batch) of a batched tensor."""
        return self.shapes[tensor][1:]

    def size(self, tensor: str) -> int:
        """Features per sample of a batched tensor."""
        return math.prod(self.features(tensor))  # math.prod: np.prod costs ~5 µs a call

    def learnable(self) -> dict[str, np.ndarray]:
        """The arrays training updates, by name, in the graph's param order."""
        return {k: p.value for k, p in self.params.items() if p.learnable}

    def differentiable(self, tensor: str) -> bool:
        """True when a loss on ``tensor`` has a gradient path (no ArgMax / ZipMap on the way)."""
        producer = {n.output: n for n in self.nodes}
        node = producer.get(tensor)
        return node is None or ops.graph_op(node.op).vjp is not None

    def structure_key(self) -> tuple:
        """What a compiled form depends on: everything but the param values.

        Computed once: a built graph's structure does not change (backends key their
        caches by it at every call).
        """
        if self._key is None:
            self._key = self._structure_key()
        return self._key

    def _structure_key(self) -> tuple:
        return (
            tuple(self.inputs.items()), tuple(self.input_dtypes.items()),
            tuple((k, p.shape, p.learnable) for k, p in self.params.items()),
            tuple((n.op, tuple(n.inputs), n.output, _short(n.attrs, 10**9)) for n in self.nodes),
            tuple(self.outputs),
        )

    def copy(self) -> Graph:
        """A copy whose param arrays are new (training one leaves the other untouched)."""
        return replace(self, params={k: replace(p, value=p.value.copy()) for k, p in self.params.items()},
                       nodes=[replace(n, inputs=list(n.inputs), attrs=dict(n.attrs)) for n in self.nodes],
                       inputs=dict(self.inputs), outputs=list(self.outputs), meta=dict(self.meta),
                       shapes=dict(self.shapes), input_dtypes=dict(self.input_dtypes),
                       index_bounds={k: list(v) for k, v in self.index_bounds.items()})

    def __str__(self) -> str:
        ins = ", ".join(f"{k}: {ops._fmt((BATCH, *v))}" + (f" {self.input_dtypes[k]}" if k in self.input_dtypes else "")
                        for k, v in self.inputs.items())
        lines = [f"graph {self.name} ({ins}) -> ({', '.join(self.outputs)})"]
        for k, p in self.params.items():
            lines.append(f"  param %{k}: {ops._fmt(p.shape)} {p.dtype}{'' if p.learnable else ' frozen'}")
        lines.extend(f"  {n}" for n in self.nodes)
        return "\n".join(lines)


def _short(v: Any, limit: int = 60) -> str:
    text = repr(v.tolist() if isinstance(v, np.ndarray) else v)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _toposort(name: str, nodes: list[Node], known: set[str]) -> list[Node]:
    """Nodes in dependency order, stable in the given order; a cycle is an error naming it."""
    producer: dict[str, Node] = {}
    for n in nodes:
        if n.output in producer:
            raise GraphError(f"graph {name!r}: nodes {producer[n.output].name!r} and {n.name!r} both write "
                             f"{n.output!r}")
        if n.output in known:
            raise GraphError(f"graph {name!r}: node {n.name!r} writes {n.output!r}, which is an input or a param")
        if n.output in n.inputs:
            raise GraphError(f"graph {name!r}: node {n.name!r} ({n.op}) reads its own output {n.output!r}")
        producer[n.output] = n
    order: list[Node] = []
    state: dict[int, int] = {}
    for root in nodes:
        if state.get(id(root)) == 2:
            continue
        stack: list[tuple[Node, int]] = [(root, 0)]  # iterative: deep graphs must not hit the recursion limit
        state[id(root)] = 1
        while stack:
            node, i = stack[-1]
            deps = [t for t in node.inputs if t and t not in known and t in producer]
            if i < len(deps):
                stack[-1] = (node, i + 1)
                dep = producer[deps[i]]
                mark = state.get(id(dep))
                if mark == 1:
                    raise GraphError(f"graph {name!r}: node {dep.name!r} ({dep.op}) depends on its own output "
                                     "(a cycle); mdfx runs feed-forward graphs only")
                if mark is None:
                    state[id(dep)] = 1
                    stack.append((dep, 0))
                continue
            stack.pop()
            state[id(node)] = 2
            order.append(node)
    return order


# --- the Composition API's networks as graphs ------------------------------------------


#: pnl.Linear's defaults: the identity, which needs no op
_LINEAR_IDENTITY = {"slope": 1.0, "intercept": 0.0, "scale": 1.0, "offset": 0.0}


def from_net(net: Any) -> Graph:
    """A PsyNeuLink-shaped :class:`~mdfx.schema.net.Net` as a graph, one op per term.

    A mechanism is its incoming projections, each ``MatMul(sender value, matrix)``,
    summed with ``Add``, plus its bias (``Add``, when it has one), then its transfer
    op ``pnl.<Function>`` with its parameters. An INPUT mechanism reads the graph
    input named after it. Params are the projection matrices (under the projection
    names, ``(sender, receiver)`` as MDF keeps them) and ``"<node>.bias"``, the
    very arrays of the Net (no copies).

    Tensors: a mechanism's value is the tensor named after it, except an INPUT
    mechanism that computes something (a bias or a non-identity function), whose
    value is ``"<node>:value"`` (its name is the graph input's).
    ``meta["node_tensors"]`` maps every mechanism to its value tensor.
    """
    params: list[Param] = []
    nodes: list[Node] = []
    value: dict[str, str] = {}
    sent: dict[tuple[str, int], str] = {}  #: (node, OutputPort) -> the tensor its projections read
    inputs: dict[str, Shape] = {}
    for spec in net.nodes:
        n = spec.name
        if spec.combine == "concat" and n in net.outputs:
            raise GraphError(f"OUTPUT node {n!r} of {net.name!r} has {spec.ports} OutputPorts; mdfx trains and "
                             "reports one value per OUTPUT node (make each port its own mechanism)")
        if n in net.inputs:
            if spec.ports > 1:
                raise GraphError(f"INPUT node {n!r} of {net.name!r} has {spec.ports} InputPorts; mdfx takes "
                                 "one external input per INPUT node")
            inputs[n] = (spec.size,)
            x = n
        elif spec.ports == 1:
            if not net.incoming(n):
                raise GraphError(f"node {n!r} of {net.name!r} is not an INPUT node and has no incoming "
                                 "projection: nothing computes its value")
            x = _summed(n, net.incoming(n), sent, params, nodes, f"{n}:net_input")
        else:
            # each InputPort sums its own projections; the ports combine elementwise
            port_values = []
            for port in range(spec.ports):
                incoming = [p for p in net.incoming(n) if p.receiver_port == port]
                if not incoming:
                    raise GraphError(f"InputPort {port} of node {n!r} in {net.name!r} has no incoming projection: "
                                     "nothing computes its value")
                port_values.append(_summed(f"{n}:port{port}", incoming, sent, params, nodes, f"{n}:port{port}"))
            x = port_values[0]
            if spec.combine == "concat":  # side by side; the elementwise op maps each port's units
                x = f"{n}:net_input"
                nodes.append(Node(f"{n}/concat", "Concat", port_values, x, {"axis": 1}))
            else:
                op = {"sum": "Add", "product": "Mul"}[spec.combine]
                for i, t in enumerate(port_values[1:], 1):
                    out = f"{n}:{spec.combine}{i}" if i < len(port_values) - 1 else f"{n}:net_input"
                    nodes.append(Node(f"{n}/{spec.combine}{i}", op, [x, t], out))
                    x = out
        identity = spec.op == "identity" or (spec.op == "linear" and spec.params == _LINEAR_IDENTITY)
        if spec.bias is not None:
            bname = f"{n}.bias"
            params.append(Param(bname, spec.bias, spec.bias_learnable))
            out = n if identity and n not in net.inputs else f"{n}:biased"
            nodes.append(Node(f"{n}/bias", "Add", [x, bname], out))
            x = out
        if identity:
            if n not in net.inputs and x != n:
                nodes[-1].output = x = n  # the last term, or the bias, writes the value itself
        else:
            out = f"{n}:value" if n in net.inputs else n
            nodes.append(Node(n, ops.PNL_GRAPH_OP[spec.op], [x], out, dict(spec.params)))
            x = out
        value[n] = x
        if spec.combine != "concat":
            sent[(n, 0)] = x
            continue
        for port in range(spec.ports):  # each OutputPort: its units of the value
            start = spec.port_offset(port)
            sent[(n, port)] = f"{n}:port{port}_value"
            nodes.append(Node(f"{n}/port{port}_value", "Slice", [x], sent[(n, port)],
                              {"starts": [start], "ends": [start + spec.port_sizes[port]], "axes": [1]}))
    outputs = [value[n] for n in net.outputs]
    biases = {f"{n.name}.bias" for n in net.nodes}
    params.sort(key=lambda p: p.name in biases)  # projections, then biases: the Net's (and state_dict's) order
    return Graph.build(net.name, inputs, params, nodes, outputs,
                       meta={"node_tensors": value, "training": net.training, "autodiff": net.autodiff,
                             "source": "composition"})


def _summed(n: str, incoming: list, sent: dict[tuple[str, int], str], params: list[Param], nodes: list[Node],
            out: str) -> str:
    """``sum_p value[p.sender's port] @ p.matrix`` as MatMul and Add nodes named after ``n``; its tensor."""
    terms = []
    for p in incoming:
        params.append(Param(p.name, p.matrix, p.learnable))
        term = f"{n}:{p.name}" if len(incoming) > 1 else out
        nodes.append(Node(f"{n}/{p.name}", "MatMul", [sent[(p.sender, p.sender_port)], p.name], term))
        terms.append(term)
    x = terms[0]
    for i, t in enumerate(terms[1:], 1):
        total = f"{n}:sum{i}" if i < len(terms) - 1 else out
        nodes.append(Node(f"{n}/sum{i}", "Add", [x, t], total))
        x = total
    return x


def as_graph(model: Any) -> Graph:
    """``model`` as a Graph: a Graph as is, a Net through :func:`from_net` (sharing its arrays)."""
    if isinstance(model, Graph):
        return model
    from mdfx.schema.net import Net

    if isinstance(model, Net):
        return from_net(model)
    raise TypeError(f"expected a Graph or a Net, got {type(model).__name__}")
