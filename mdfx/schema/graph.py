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

Beside them a graph keeps a few typed facts (see :class:`Graph`'s fields): the
PsyNeuLink-style grouping of its tensors into mechanisms and projections
(:class:`Mechanisms`, for networks built with the Composition API or read from
PsyNeuLink's MDF; :mod:`mdfx.schema.mechanisms` builds those graphs), the training settings a file
carried, and what a torch state_dict of it holds.

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
from functools import cached_property
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


#: how a mechanism's InputPorts combine into its net input (PsyNeuLink's LinearCombination operations)
COMBINE = ("sum", "product", "concat")


@dataclass(frozen=True)
class Mechanism:
    """A TransferMechanism of a PsyNeuLink-style network: which of the graph's tensors and params are its.

    Its value is ``function(net input, **params)``; an INPUT mechanism's net input is the
    graph input named after it, any other's the sum of its incoming projections
    (``sender value @ matrix``), plus its bias. ``ports`` InputPorts ``combine`` as a sum
    or product of ``size`` units each, or side by side ("concat", ``port_sizes`` summing
    to ``size``; the elementwise function maps each, one OutputPort per InputPort).
    """

    name: str
    size: int
    function: str  #: a transfer op's key (:attr:`mdfx.ops.GraphOp.transfer_key`)
    params: Mapping[str, float]  #: the function's parameters, all filled
    value: str  #: the tensor holding its value (its name; ``"<name>:value"`` for a computing INPUT)
    bias: str | None = None  #: the param of its bias, when it has one
    ports: int = 1
    combine: str = "sum"
    port_sizes: tuple[int, ...] = ()

    def port_size(self, port: int) -> int:
        return self.port_sizes[port] if self.combine == "concat" else self.size

    def port_offset(self, port: int) -> int:
        """Where OutputPort ``port``'s units start in the mechanism's value."""
        return sum(self.port_sizes[:port]) if self.combine == "concat" else 0


@dataclass(frozen=True)
class Projection:
    """A MappingProjection: ``value[receiver] += value[sender] @ matrix``; its matrix is the param
    named after it, ``(sender port size, receiver port size)``."""

    name: str
    sender: str
    receiver: str
    receiver_port: int = 0  #: the receiver's InputPort it reaches
    sender_port: int = 0  #: the sender's OutputPort it leaves (of a "concat" mechanism; else 0)


@dataclass(frozen=True)
class Mechanisms:
    """The grouping of a graph's ops into mechanisms and projections (PsyNeuLink's view of it).

    The MDF writer writes one MDF node per mechanism from it (PsyNeuLink's layout), the
    ONNX export names layers by it, and compositions key data by mechanism name through it.
    """

    nodes: tuple[Mechanism, ...]  #: topological order
    projections: tuple[Projection, ...]
    inputs: tuple[str, ...]  #: INPUT mechanisms, each reading the graph input named after it
    outputs: tuple[str, ...]  #: OUTPUT mechanisms
    autodiff: bool = True  #: an AutodiffComposition (False: a plain Composition)

    def node(self, name: str) -> Mechanism:
        for n in self.nodes:
            if n.name == name:
                return n
        raise GraphError(f"the network has no mechanism {name!r}")

    def incoming(self, name: str) -> list[Projection]:
        return [p for p in self.projections if p.receiver == name]

    def value_of(self, name: str) -> str:
        """The tensor of mechanism ``name`` (``name`` itself when it is no mechanism)."""
        return self.tensors.get(name, name)

    @cached_property
    def tensors(self) -> dict[str, str]:
        """Every mechanism's value tensor, by name (computed once: run() reads it every call)."""
        return {n.name: n.value for n in self.nodes}


@dataclass
class TrainingSpec:
    """An AutodiffComposition's training settings, as a file keeps them."""

    loss: str = "MSE"
    optimizer: str = "sgd"
    learning_rate: float = 0.001
    weight_decay: float = 0.0
    disable_learning: bool = False


@dataclass
class Graph:
    """A validated op graph; make one with :meth:`build`."""

    name: str
    inputs: dict[str, Shape]  #: graph input -> feature shape (the batch axis is implicit)
    params: dict[str, Param]
    nodes: list[Node]  #: topological order
    outputs: list[str]
    dtype: str = "float64"  #: the source's float dtype (exports default to it)
    #: static shape of every tensor, BATCH on axis 0 for batched ones (filled by build)
    shapes: dict[str, Shape] = field(default_factory=dict)
    #: the mechanisms and projections the ops compute, for a PsyNeuLink-style network (built with
    #: the Composition API, or read from PsyNeuLink's MDF); None for a graph from elsewhere
    mechanisms: Mechanisms | None = None
    #: the training settings the source carried (loss, optimizer, rates); None: the defaults
    training: TrainingSpec | None = None
    #: what a torch state_dict of the graph holds: state_dict key -> param name, or "" for a key
    #: kept in :attr:`extra_state`; None: every param under its own name
    state_dict_keys: dict[str, str] | None = None
    #: state the graph does not compute with, kept for the state_dict (BatchNorm's counter)
    extra_state: dict[str, np.ndarray] = field(default_factory=dict)
    #: ONNX node name -> layer (mechanism) name, as an mdfx ONNX export recorded them
    layers: dict[str, str] = field(default_factory=dict)
    #: outputs the import added (ZipMap's probabilities, so a classifier trains); files leave them out
    extra_outputs: tuple[str, ...] = ()
    #: where the graph came from: "composition", "onnx", "torch", "mdf" or "" (for messages)
    source: str = ""
    #: sample inputs the source file holds (a pure-MDF input node's values), by graph input,
    #: ``(trials, *features)``: what ``run()`` without inputs runs on
    default_inputs: dict[str, np.ndarray] = field(default_factory=dict)
    #: graph input -> its integer dtype ("int64", "int32"); inputs not listed are floats.
    #: Backends carry integer values in their float buffers (exact below 2**53, 2**24 in
    #: float32); the data boundary checks they are whole numbers in range for each lookup.
    input_dtypes: dict[str, str] = field(default_factory=dict)
    #: tensors holding integers (integer inputs, integer constants, and what shape ops make of them)
    int_tensors: frozenset[str] = field(default_factory=frozenset)
    #: integer graph input -> [(Gather node, axis size)]: the ranges its values must lie in
    index_bounds: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    #: torch exporters' recurrent layers: [{module, layer, op, W, R, B}], so the state_dict writes the
    #: module's own keys (weight_ih_l0, ... in torch's gate order) for the ONNX op's weights
    torch_recurrent: list[dict[str, Any]] = field(default_factory=list)
    _key: tuple | None = field(default=None, repr=False, compare=False)

    # --- building ---------------------------------------------------------------------

    @classmethod
    def build(cls, name: str, inputs: Mapping[str, Iterable[int]], params: Iterable[Param],
              nodes: Iterable[Node], outputs: Iterable[str], dtype: str = "float64", input_dtypes: Mapping[str, str] | None = None,
              **facts: Any) -> Graph:
        """Check and order everything; see the module docstring. Raises GraphError / UnsupportedError.

        ``facts`` are the typed fields beside the ops (``mechanisms``, ``training``,
        ``state_dict_keys``, ``extra_state``, ``layers``, ``extra_outputs``, ``source``,
        ``default_inputs``, ``torch_recurrent``). ``input_dtypes`` names the integer inputs
        (``{"tokens": "int64"}``); the others are floats.
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
        nodes = list(nodes)
        # "" means "no tensor" in a node's inputs (an omitted optional input): no tensor may have it
        unnamed = next((what for what, names in (("an input", ins), ("a param", [p.name for p in plist]),
                                                 ("a node's output", [n.output for n in nodes]))
                        if "" in names), None)
        if unnamed is not None:
            raise GraphError(f"graph {name!r}: {unnamed} is named '' (the empty name); give every node, input "
                             "and param a non-empty name")
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
        unknown = set(facts) - _FACTS
        if unknown:
            raise TypeError(f"Graph.build() got unknown fields {', '.join(sorted(unknown))}; "
                            f"a graph has {', '.join(sorted(_FACTS))}")
        if "extra_outputs" in facts:
            facts["extra_outputs"] = tuple(facts["extra_outputs"])
        g = cls(name, ins, pmap, _toposort(name, list(nodes), set(ins) | set(pmap)), list(outputs), dtype,
                input_dtypes=int_ins, **facts)
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
                       inputs=dict(self.inputs), outputs=list(self.outputs), shapes=dict(self.shapes),
                       training=None if self.training is None else replace(self.training),
                       state_dict_keys=None if self.state_dict_keys is None else dict(self.state_dict_keys),
                       extra_state={k: np.array(v, copy=True) for k, v in self.extra_state.items()},
                       layers=dict(self.layers), input_dtypes=dict(self.input_dtypes),
                       index_bounds={k: list(v) for k, v in self.index_bounds.items()},
                       torch_recurrent=[dict(e) for e in self.torch_recurrent])

    def tensor_of(self, name: str) -> str:
        """The tensor holding the value of ``name``: a mechanism's value tensor, else ``name`` itself."""
        return self.mechanisms.value_of(name) if self.mechanisms is not None else name

    def output_names(self) -> list[str]:
        """What callers key outputs by: the OUTPUT mechanisms' names, or the graph's output tensors."""
        return list(self.mechanisms.outputs) if self.mechanisms is not None else list(self.outputs)

    def named_outputs(self, env: Mapping[str, Any]) -> dict[str, Any]:
        """The outputs of a run's tensor values ``env``, keyed by :meth:`output_names` (every
        runner's ``run`` returns this)."""
        if self.mechanisms is None:
            return {t: env[t] for t in self.outputs}
        return {n: env[self.mechanisms.value_of(n)] for n in self.mechanisms.outputs}

    def input_names(self) -> list[str]:
        """What callers key inputs by: the INPUT mechanisms (each the graph input named after it)."""
        return list(self.mechanisms.inputs) if self.mechanisms is not None else list(self.inputs)

    def __str__(self) -> str:
        ins = ", ".join(f"{k}: {ops._fmt((BATCH, *v))}" + (f" {self.input_dtypes[k]}" if k in self.input_dtypes else "")
                        for k, v in self.inputs.items())
        lines = [f"graph {self.name} ({ins}) -> ({', '.join(self.outputs)})"]
        for k, p in self.params.items():
            lines.append(f"  param %{k}: {ops._fmt(p.shape)} {p.dtype}{'' if p.learnable else ' frozen'}")
        lines.extend(f"  {n}" for n in self.nodes)
        return "\n".join(lines)


#: the typed fields :meth:`Graph.build` takes beside the ops
_FACTS = {"mechanisms", "training", "state_dict_keys", "extra_state", "layers", "extra_outputs", "source",
          "default_inputs", "torch_recurrent"}


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
