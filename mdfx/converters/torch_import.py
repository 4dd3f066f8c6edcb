"""Import a torch module as an op :class:`~mdfx.schema.graph.Graph` that keeps its parametrisation.

:func:`from_torch` traces the module with ``torch.fx`` and writes one graph op
(or a few) per traced call:

* params are the module's own tensors under their ``state_dict`` keys
  (``"fc1.weight"``), in their layout (a ``Linear`` weight stays ``(out, in)``
  and is read by ``Gemm(transB=1)``) and dtype; ``nn.Parameter`` s that require
  grad are learnable, buffers (BatchNorm's running statistics, a registered
  ``mean``) and Python constants are frozen;
* tensors and nodes keep the source's names: a module's node is its path
  (``"encoder.0"``), every tensor the fx node's name (``"relu_1"``); graph
  inputs are ``forward``'s arguments, outputs ``"output"`` (``"output_<i>"``);
* state the graph does not compute with (BatchNorm's ``num_batches_tracked``,
  unused params) is kept in ``graph.extra_state``, and
  ``graph.state_dict_keys`` lists every key, so that
  :func:`mdfx.io.state_dict` writes a state_dict the original module loads
  strictly.

Dropout is identity and BatchNorm uses its running statistics (the module in
``eval()`` mode). Anything else (convolutions, recurrent layers, data-dependent
control flow) is refused with one error naming each module or function and its
place in the module.

:func:`from_mdf_with_weights` reads MDF that modeci-mdf's ``pytorch_to_mdf``
wrote without its weights, taking them from a state_dict or an ONNX file.

``torch`` is imported when a module is converted, not when this module is.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mdfx.errors import SchemaError, UnsupportedError
from mdfx.schema.graph import FLOAT_DTYPES, Graph, Node, Param

SUPPORTED_FUNCTIONS = ("relu, leaky_relu, sigmoid, tanh, elu, selu, softplus, gelu, silu, hardsigmoid, "
                       "softmax, log_softmax, dropout, linear, matmul, cat, split, chunk, indexing with "
                       "slices, reshape, view, flatten, unsqueeze, squeeze, transpose, permute, "
                       "+ - * / with constants and tensors, pow by a constant, exp, log, sqrt, abs, erf, "
                       "reciprocal, clamp, sum, mean, amax over feature dims, conv1d, conv2d, max_pool1d/2d, "
                       "avg_pool1d/2d, adaptive_avg_pool1d/2d, pad (constant)")
#: torch's SELU constants in double precision (ONNX's defaults are them rounded to float32)
_SELU = {"alpha": 1.6732632423543772848170429916717, "gamma": 1.0507009873554804934193349852946}

#: Import rule per ``torch.nn`` module class name: ``rule(tracer, fx node, module, x)`` with ``x``
#: the module's input tensor. Registered with :func:`module_rule`.
MODULE_RULES: dict[str, ModuleRule] = {}
#: Import rule per torch function, keyed by its dotted path (``"torch.nn.functional.relu"``,
#: ``"operator.add"``), and per tensor method name (``"view"``): ``rule(tracer, fx node, args)``.
#: The paths are resolved to the functions on first use, so importing this module imports no torch.
FUNCTION_RULES: dict[str, Rule] = {}
METHOD_RULES: dict[str, Rule] = {}


def _register(table: dict[str, Any], keys: tuple[str, ...], rule: Any, what: str) -> None:
    for key in keys:
        if key in table:
            raise ValueError(f"torch import rule for {what} {key!r} registered twice")
        table[key] = rule


def module_rule(*kinds: str) -> Callable[[ModuleRule], ModuleRule]:
    """Register the import of the ``torch.nn`` modules named ``kinds``; duplicates are refused."""
    def register(rule: ModuleRule) -> ModuleRule:
        _register(MODULE_RULES, kinds, rule, "module")
        return rule

    return register


def function_rule(*paths: str, methods: tuple[str, ...] = ()) -> Callable[[Rule], Rule]:
    """Register the import of the torch functions at ``paths`` and the tensor ``methods``."""
    def register(rule: Rule) -> Rule:
        _register(FUNCTION_RULES, paths, rule, "function")
        _register(METHOD_RULES, methods, rule, "method")
        return rule

    return register



class _Batch:
    """The batch size in a traced shape computation (``x.size(0)``)."""

    def __repr__(self) -> str:
        return "batch"


BATCH_SIZE = _Batch()


def from_torch(module: Any, example_input: Any, input_names: list[str] | None = None,
               output_names: list[str] | None = None) -> Graph:
    """Trace ``module`` (an ``nn.Sequential`` or any torch.fx-traceable module) into a Graph.

    ``example_input`` is a tensor (or a tuple, one per ``forward`` argument)
    shaped ``(batch, features, ...)``; it only fixes the feature shapes (the
    module is run once on it, on a copy in ``eval()`` mode, to learn them).
    See the module docstring for names, params and what is supported.
    """
    import torch
    import torch.fx

    examples = tuple(example_input) if isinstance(example_input, tuple | list) else (example_input,)
    try:
        traced = torch.fx.symbolic_trace(module)
    except Exception as exc:  # fx raises TraceError, TypeError, ... for data-dependent code
        raise UnsupportedError(f"{type(module).__name__} cannot be traced with torch.fx "
                               f"({type(exc).__name__}: {exc}); mdfx imports modules whose forward is "
                               "a fixed sequence of layers and tensor functions") from None
    return _Tracer(module, traced, examples, input_names, output_names).graph(type(module).__name__)


class _Tracer:
    """fx graph -> Graph, one rule per kind of fx node."""

    def __init__(self, module: Any, traced: Any, examples: tuple, input_names: list[str] | None,
                 output_names: list[str] | None) -> None:
        self.module = module
        self.traced = traced
        self.examples = examples
        self.input_names = input_names
        self.output_names = output_names
        self.nodes: list[Node] = []
        self.params: dict[str, Param] = {}
        self.inputs: dict[str, tuple[int, ...]] = {}
        self.input_dtypes: dict[str, str] = {}  # integer inputs (token indices)
        self.tensor: dict[str, str] = {}  # fx node -> graph tensor
        self.values: dict[str, Any] = {}  # fx node -> a non-tensor value (size, shape, pieces of a split)
        self.batched: set[str] = set()  # fx nodes whose value has the batch on axis 0
        self.batched_tensors: set[str] = set()  # the same, as graph tensors
        self.unsupported: list[str] = []
        self.node_names: set[str] = set()
        self.state = module.state_dict(keep_vars=True)
        self.key_of: dict[int, str] = {}
        for key, t in self.state.items():
            self.key_of.setdefault(id(t), key)  # a tied tensor is one param, named by its first key
        self.dtype = _dtype_name(next((t.dtype for t in self.state.values() if t.is_floating_point()), None))
        self.shapes = self._example_shapes()

    # - example shapes -

    def _example_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each fx node's shape on the example input (a copy of the module in eval() mode runs it)."""
        import torch
        from torch.fx.passes.shape_prop import ShapeProp

        placeholders = [n for n in self.traced.graph.nodes if n.op == "placeholder"]
        if len(self.examples) != len(placeholders):
            raise SchemaError(f"forward takes {len(placeholders)} argument(s) "
                              f"({', '.join(str(n.target) for n in placeholders)}) but example_input has "
                              f"{len(self.examples)} tensor(s); pass one per argument")
        floating = getattr(torch, self.dtype)
        examples = []
        for n, x in zip(placeholders, self.examples, strict=True):
            if not hasattr(x, "shape") or len(x.shape) < 2:
                raise SchemaError(f"example input for {str(n.target)!r} has shape {tuple(getattr(x, 'shape', ()))}; "
                                  "expected (batch, features, ...)")
            examples.append(x.to(floating) if x.is_floating_point() else x)
        probe = copy.deepcopy(self.traced).eval()  # BatchNorm in train() mode would update its statistics
        try:
            with torch.no_grad():
                ShapeProp(probe).propagate(*examples)
        except Exception as exc:  # the module's own error on the example (a shape mismatch, ...)
            raise SchemaError(f"{type(self.module).__name__} fails on the example input "
                              f"({type(exc).__name__}: {exc})") from None
        shapes: dict[str, tuple[int, ...]] = {}
        for node in probe.graph.nodes:
            meta = node.meta.get("tensor_meta")
            if hasattr(meta, "shape"):
                shapes[node.name] = tuple(int(d) for d in meta.shape)
        return shapes

    # - the walk -

    def graph(self, name: str) -> Graph:
        outputs: list[str] = []
        placeholders = 0
        refused: set[str] = set()
        for node in self.traced.graph.nodes:
            if any(n.name in refused for n in node.all_input_nodes):
                refused.add(node.name)  # downstream of a refused node: its shapes are unknown, but a
                if node.op == "call_module":  # module of an unsupported kind is named all the same
                    kind = type(self.traced.get_submodule(node.target)).__name__
                    if kind not in SUPPORTED_MODULES:
                        self.unsupported.append(f"module {node.target!r} ({kind})")
                continue
            try:
                if node.op == "placeholder":
                    self._input(node, placeholders)
                    placeholders += 1
                elif node.op == "get_attr":
                    self._get_attr(node)
                elif node.op == "call_module":
                    self._module(node)
                elif node.op in ("call_function", "call_method"):
                    self._function(node)
                elif node.op == "output":
                    outputs = self._outputs(node.args[0])
            except _Refused as exc:
                self.unsupported.append(str(exc))
                refused.add(node.name)
        if self.unsupported:
            raise UnsupportedError(
                f"{name} uses what mdfx cannot import: {'; '.join(self.unsupported)}. mdfx imports modules "
                f"built from nn.{', nn.'.join(SUPPORTED_MODULES)} and the torch functions {SUPPORTED_FUNCTIONS}"
            )
        used = {t for n in self.nodes for t in n.inputs}
        order = {k: i for i, k in enumerate(self.state)}  # state_dict order first, then constants
        params = sorted((p for k, p in self.params.items() if k in used), key=lambda p: order.get(p.name, len(order)))
        keys: dict[str, str] = {}
        extra: dict[str, np.ndarray] = {}
        for key, t in self.state.items():
            canonical = self.key_of[id(t)]
            if canonical in self.params and canonical in used:
                keys[key] = canonical
            else:
                keys[key] = ""
                extra[key] = t.detach().cpu().numpy().copy()
        return Graph.build(name, self.inputs, params, self.nodes, outputs, dtype=self.dtype, source="torch",
                           state_dict_keys=keys, extra_state=extra, input_dtypes=self.input_dtypes)

    def _input(self, node: Any, i: int) -> None:
        # fx renames an argument that shadows a builtin ("input" -> "input_1"); keep forward's name.
        tensor = self.input_names[i] if self.input_names else str(node.target)
        self.inputs[tensor] = self.shapes[node.name][1:]
        example = self.examples[i]
        if not example.is_floating_point():
            if str(example.dtype) not in ("torch.int64", "torch.int32"):
                raise _Refused(f"input {tensor!r} of dtype {example.dtype} (mdfx takes float inputs, and int64 "
                               "or int32 indices)")
            self.input_dtypes[tensor] = str(example.dtype).removeprefix("torch.")
        self.tensor[node.name] = tensor
        self.batched.add(node.name)
        self.batched_tensors.add(tensor)

    def _outputs(self, result: Any) -> list[str]:
        items = list(result) if isinstance(result, tuple | list) else [result]
        outs: list[str] = []
        for i, item in enumerate(items):
            name = (self.output_names[i] if self.output_names and i < len(self.output_names)
                    else "output" if len(items) == 1 else f"output_{i}")
            if not hasattr(item, "name") or item.name not in self.tensor:
                self.unsupported.append(f"output {i} ({type(item).__name__}; forward must return tensors)")
                continue
            outs.append(self._rename(self.tensor[item.name], name, outs))
        return outs

    def _rename(self, tensor: str, name: str, taken: list[str]) -> str:
        """Call graph output ``tensor`` ``name``: its producer writes it, or an Identity copies it."""
        producer = next((n for n in self.nodes if n.output == tensor), None)
        if producer is None or tensor in taken or tensor == name:
            if tensor == name:
                return name
            self.nodes.append(Node(name, "Identity", [tensor], name))
            return name
        producer.output = name
        for n in self.nodes:
            n.inputs = [name if t == tensor else t for t in n.inputs]
        for k, v in self.tensor.items():
            if v == tensor:
                self.tensor[k] = name
        return name

    # - values -

    def _get_attr(self, node: Any) -> None:
        value = _attr(self.traced, node.target)
        if not hasattr(value, "detach"):
            self.values[node.name] = value
            return
        self.tensor[node.name] = self._param(value, str(node.target))

    def _param(self, value: Any, name: str) -> str:
        """A module tensor as a param under its state_dict key (a tensor outside the state_dict: its path)."""
        import torch

        key = self.key_of.get(id(value), name)
        if key not in self.params:
            if not value.is_floating_point():
                raise _Refused(f"tensor {name!r} of dtype {value.dtype} used in a computation (mdfx computes "
                               "in floats)")
            learnable = isinstance(value, torch.nn.Parameter) and value.requires_grad and key in self.state
            array = np.array(value.detach().cpu().to(torch.float64).numpy(), dtype=np.float64, copy=True)
            self.params[key] = Param(key, array, learnable, _dtype_name(value.dtype))
        return key

    def _const(self, node: Any, value: float | np.ndarray, i: int) -> str:
        name = f"{node.name}.const{i}"
        self.params[name] = Param(name, np.asarray(value, dtype=np.float64).copy(), False, self.dtype)
        return name

    def _arg(self, node: Any, value: Any, i: int) -> str:
        """An fx argument as a tensor name: a traced tensor, or a Python number as a frozen constant."""
        if hasattr(value, "name") and value.name in self.tensor:
            return self.tensor[value.name]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self._const(node, float(value), i)
        if hasattr(value, "name") and isinstance(self.values.get(value.name), int):
            return self._const(node, float(self.values[value.name]), i)
        held = self.values.get(getattr(value, "name", None)) if hasattr(value, "name") else None
        if isinstance(held, tuple) and held and held[0] == "rnn_c":
            raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) reads the cell state c_n of "
                           f"an {held[1]} (mdfx's recurrent layers give the output and the hidden states h_n)")
        raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) with argument "
                       f"{_describe(value)}")

    def _value(self, node: Any, value: Any) -> Any:
        """A non-tensor argument with traced sizes resolved (``x.size(0)`` is :data:`BATCH_SIZE`)."""
        if hasattr(value, "name"):
            if value.name in self.values:
                return self.values[value.name]
            raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) takes the tensor "
                           f"{value.name!r} where mdfx needs a constant")
        if isinstance(value, tuple | list):
            return type(value)(self._value(node, v) for v in value)
        return value

    def _shape(self, fx_node: Any) -> tuple[Any, ...]:
        shape = self.shapes.get(fx_node.name)
        if shape is None:
            raise _Refused(f"node {fx_node.name!r}: no shape known")
        return (BATCH_SIZE, *shape[1:]) if fx_node.name in self.batched else shape

    def _emit(self, node: Any, op: str, inputs: list[str], attrs: dict | None = None, step: str = "") -> str:
        """One graph op for fx ``node``; ``step`` names an intermediate op of a rule that needs several."""
        base = str(node.target) if node.op == "call_module" else node.name
        if base in self.node_names:
            base = node.name
        name = f"{base}:{step}" if step else base
        while name in self.node_names:
            name = f"{name}_"
        self.node_names.add(name)
        out = f"{node.name}:{step}" if step else node.name
        self.nodes.append(Node(name, op, inputs, out, attrs or {}))
        if any(t in self.batched_tensors for t in inputs):
            self.batched_tensors.add(out)
            if not step:
                self.batched.add(node.name)
        if not step:
            self.tensor[node.name] = out
        return out

    # - modules -

    def _module(self, node: Any) -> None:
        mod = self.traced.get_submodule(node.target)
        kind = type(mod).__name__
        rule = MODULE_RULES.get(kind)
        if rule is None:
            raise _Refused(f"module {node.target!r} ({kind})")
        rule(self, node, mod, self._arg(node, node.args[0], 0) if node.args else "")

    def _embedding(self, node: Any, x: str, mod: Any) -> None:
        # these change what the lookup or its gradient computes; the graph's Gather has neither
        for attr, default in (("padding_idx", None), ("max_norm", None), ("scale_grad_by_freq", False),
                              ("sparse", False)):
            if getattr(mod, attr) != default:
                raise _Refused(f"module {node.target!r} (Embedding with {attr}={getattr(mod, attr)!r}: mdfx's "
                               "Gather is the plain lookup, its gradient scattered into every row read)")
        self._emit(node, "Gather", [self._param(mod.weight, f"{node.target}.weight"), x], {"axis": 0})

    def _recurrent(self, node: Any, x: str, mod: Any, kind: str) -> None:
        """nn.LSTM / nn.GRU / nn.RNN as one ONNX-defined op per layer (mdfx.recurrence).

        The params stay the module's (``weight_ih_l0`` ... in torch's gate order); the op's
        W, R and B are Slices and Concats of them (torch's i f g o as ONNX's i o f c, r z n as
        z r h), so gradients land in the module's own tensors. ``output`` is the last layer's
        (batch, T, directions * hidden); ``h_n[i]`` picks a layer's last step (see _getitem).
        """
        path = str(node.target)
        if len(node.args) > 1 or node.kwargs:
            raise _Refused(f"module {path!r} ({kind} called with an initial state: mdfx starts from zeros)")
        if not mod.batch_first:
            raise _Refused(f"module {path!r} ({kind} with batch_first=False: mdfx keeps the batch on axis 0 of the "
                           "input; build the module with batch_first=True)")
        if getattr(mod, "proj_size", 0):
            raise _Refused(f"module {path!r} (LSTM with proj_size={mod.proj_size})")
        order = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}[kind]  # torch's gate blocks in ONNX's order
        H, D = int(mod.hidden_size), 2 if mod.bidirectional else 1
        attrs: dict[str, Any] = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
        if kind == "GRU":
            attrs["linear_before_reset"] = 1  # torch's GRU applies the reset gate after R's product
        if kind == "RNN":
            attrs["activations"] = [{"tanh": "Tanh", "relu": "Relu"}[mod.nonlinearity]] * D
        seq = x
        layers = []
        for layer in range(int(mod.num_layers)):
            def stacked(what: str, layer: int = layer) -> str:
                parts = []
                for d in range(D):
                    key = f"{what}_l{layer}{'_reverse' if d else ''}"
                    w = self._param(getattr(mod, key), f"{path}.{key}")
                    blocks = [self._emit(node, "Slice", [w], {"starts": [b * H], "ends": [(b + 1) * H], "axes": [0],
                                                             "steps": None}, step=f"{key}:gate{b}") for b in order]
                    joined = blocks[0] if len(blocks) == 1 else self._emit(node, "Concat", blocks, {"axis": 0},
                                                                           step=f"{key}:onnx")
                    parts.append(self._emit(node, "Unsqueeze", [joined], {"axes": [0]}, step=f"{key}:dir"))
                return parts[0] if D == 1 else self._emit(node, "Concat", parts, {"axis": 0}, step=f"{what}_l{layer}")
            inputs = [seq, stacked("weight_ih"), stacked("weight_hh")]
            if mod.bias:
                ih, hh = stacked("bias_ih"), stacked("bias_hh")
                inputs.append(self._emit(node, "Concat", [ih, hh], {"axis": 1}, step=f"bias_l{layer}"))
            y = self._emit(node, kind, inputs, attrs, step=f"layer{layer}")
            T = self._shape(node.args[0])[1]
            seq = self._emit(node, "Reshape", [y], {"shape": [0, T, D * H]}, step=f"layer{layer}:out")
            layers.append(y)
        self.values[node.name] = ("rnn", kind, seq, layers, D, H, T)

    def _softplus(self, node: Any, x: str, beta: float, threshold: float) -> None:
        # torch returns x where beta * x > threshold (20 by default), where log(1 + exp(x)) - x < 2e-9
        if beta == 1.0:
            self._emit(node, "Softplus", [x])
            return
        scaled = self._emit(node, "Mul", [x, self._const(node, beta, 1)], step="beta_x")
        soft = self._emit(node, "Softplus", [scaled], step="softplus")
        self._emit(node, "Div", [soft, self._const(node, beta, 2)])

    def _silu(self, node: Any, x: str) -> None:
        gate = self._emit(node, "Sigmoid", [x], step="sigmoid")
        self._emit(node, "Mul", [x, gate])

    def _softmax(self, node: Any, x: str, dim: Any, log: bool) -> None:
        if dim is None:  # torch's implicit dim (deprecated): 0 for ranks 0, 1 and 3, else 1
            dim = 0 if len(self.shapes[node.args[0].name]) in (0, 1, 3) else 1
        self._emit(node, "LogSoftmax" if log else "Softmax", [x], {"axis": int(dim)})

    def _flatten(self, node: Any, x: str, start: int, end: int) -> None:
        shape = self._shape(node.args[0])
        rank = len(shape)
        start, end = start % rank, end % rank
        if start == 1 and end == rank - 1:
            self._emit(node, "Flatten", [x], {"axis": 1})
            return
        if start == 0 and node.args[0].name in self.batched:
            raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) with start_dim=0 "
                           "(it would merge the batch into the features; mdfx keeps the batch on axis 0)")
        merged = math.prod(shape[start:end + 1]) if start > 0 or node.args[0].name not in self.batched else 0
        target = [*shape[:start], merged, *shape[end + 1:]]
        self._emit(node, "Reshape", [x], {"shape": [0 if d is BATCH_SIZE else int(d) for d in target]})

    def _layer_norm(self, node: Any, x: str, normalized: tuple[int, ...], weight: Any, bias: Any, eps: float,
                    path: str) -> None:
        inputs = [x, self._param(weight, f"{path}.weight") if weight is not None else "",
                  self._param(bias, f"{path}.bias") if bias is not None else ""]
        self._emit(node, "LayerNormalization", inputs, {"axis": -len(normalized), "epsilon": eps})

    def _batch_norm(self, node: Any, x: str, mod: Any) -> None:
        kind = type(mod).__name__
        if mod.running_mean is None:
            raise _Refused(f"module {node.target!r} ({kind} with track_running_stats=False: it normalises "
                           "with each batch's statistics even in eval(), so run() would mix the samples of a batch)")
        if mod.training and mod.momentum is None:
            raise _Refused(f"module {node.target!r} ({kind} in train() with momentum=None: a cumulative average "
                           "of the statistics; give a momentum)")
        n = int(mod.num_features)
        scale = self._param(mod.weight, f"{node.target}.weight") if mod.weight is not None else \
            self._const(node, np.ones(n), 1)
        shift = self._param(mod.bias, f"{node.target}.bias") if mod.bias is not None else \
            self._const(node, np.zeros(n), 2)
        self._emit(node, "BatchNormalization",
                   [x, scale, shift, self._param(mod.running_mean, f"{node.target}.running_mean"),
                    self._param(mod.running_var, f"{node.target}.running_var")],
                   {"epsilon": float(mod.eps), "momentum": 1.0 - float(mod.momentum or 0.1),
                    # a module in train() trains as torch trains it: batch statistics, running ones updated
                    "training_mode": int(bool(mod.training))})

    # - functions and methods -

    def _function(self, node: Any) -> None:
        functions, methods = _resolved_rules(), METHOD_RULES
        if node.op == "call_method":
            rule = methods.get(node.target)
        else:
            try:
                rule = functions.get(node.target)
            except TypeError:  # an unhashable callable
                rule = None
        if rule is None:
            raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r})")
        rule(self, node, _Args(node))


# --- spatial modules: one small rule each (ONNX's attributes) ------------------------------------------


def _tuple(v: Any, n: int) -> list[int]:
    return [int(i) for i in v] if isinstance(v, tuple | list) else [int(v)] * n


def _torch_pads(padding: Any, n: int, node: Any) -> list[int] | None:
    """torch's symmetric ``padding`` as ONNX pads (begin..., end...); None for 'same' / 'valid'."""
    if isinstance(padding, str):
        return None
    p = _tuple(padding, n)
    return p + p


def _conv_module(t: _Tracer, node: Any, x: str, mod: Any) -> None:
    n = mod.weight.dim() - 2
    if mod.padding_mode != "zeros":
        raise _Refused(f"module {node.target!r} ({type(mod).__name__} with padding_mode={mod.padding_mode!r}; "
                       "mdfx pads with zeros)")
    attrs: dict[str, Any] = {"strides": _tuple(mod.stride, n), "dilations": _tuple(mod.dilation, n),
                             "group": int(mod.groups), "kernel_shape": list(mod.kernel_size)}
    pads = _torch_pads(mod.padding, n, node)
    if pads is None:
        attrs["auto_pad"] = "VALID" if mod.padding == "valid" else "SAME_UPPER"
    else:
        attrs["pads"] = pads
    inputs = [x, t._param(mod.weight, f"{node.target}.weight")]
    if mod.bias is not None:
        inputs.append(t._param(mod.bias, f"{node.target}.bias"))
    if type(mod).__name__.startswith("ConvTranspose"):
        attrs["output_padding"] = _tuple(mod.output_padding, n)
        t._emit(node, "ConvTranspose", inputs, attrs)
    else:
        t._emit(node, "Conv", inputs, attrs)


def _pool_module(t: _Tracer, node: Any, x: str, mod: Any) -> None:
    kind = type(mod).__name__
    n = int(kind[-2])
    k = _tuple(mod.kernel_size, n)
    attrs: dict[str, Any] = {"kernel_shape": k, "strides": _tuple(mod.stride if mod.stride is not None else k, n),
                             "pads": _torch_pads(mod.padding, n, node), "ceil_mode": int(bool(mod.ceil_mode))}
    if kind.startswith("MaxPool"):
        if mod.return_indices:
            raise _Refused(f"module {node.target!r} ({kind} with return_indices=True)")
        t._emit(node, "MaxPool", [x], {**attrs, "dilations": _tuple(mod.dilation, n)})
        return
    if getattr(mod, "divisor_override", None):
        raise _Refused(f"module {node.target!r} ({kind} with divisor_override)")
    t._emit(node, "AveragePool", [x], {**attrs, "count_include_pad": int(bool(mod.count_include_pad))})


def _adaptive_avg(t: _Tracer, node: Any, x: str, size: Any, n: int) -> None:
    """Adaptive average pooling to 1 (a mean over the spatial axes) or to a size dividing the input
    (an AveragePool with kernel = stride = input / output); other sizes are refused."""
    spatial = t._shape(node.args[0])[2:]
    out = [spatial[i] if s is None else int(s) for i, s in enumerate(_tuple(size, n) if not isinstance(size, tuple)
                                                                     else size)]
    if all(o == 1 for o in out):
        t._emit(node, "ReduceMean", [x], {"axes": list(range(2, 2 + n)), "keepdims": 1})
        return
    if any(o < 1 or s % o for s, o in zip(spatial, out, strict=True)):
        raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}): adaptive pooling of "
                       f"{list(spatial)} to {out}, which does not divide it (windows of unequal sizes)")
    k = [s // o for s, o in zip(spatial, out, strict=True)]
    t._emit(node, "AveragePool", [x], {"kernel_shape": k, "strides": k})


def _adaptive_module(t: _Tracer, node: Any, x: str, mod: Any) -> None:
    _adaptive_avg(t, node, x, mod.output_size, int(type(mod).__name__[-2]))


def _pad_module(t: _Tracer, node: Any, x: str, mod: Any) -> None:
    _pad_emit(t, node, x, list(mod.padding), float(getattr(mod, "value", 0.0)))


def _pad_emit(t: _Tracer, node: Any, x: str, flat: list[int], value: float) -> None:
    """torch's pad list (last axis first, (begin, end) pairs) as ONNX pads."""
    rank = len(t._shape(node.args[0]))
    begin, end = [0] * rank, [0] * rank
    for i in range(len(flat) // 2):
        begin[rank - 1 - i], end[rank - 1 - i] = int(flat[2 * i]), int(flat[2 * i + 1])
    t._emit(node, "Pad", [x], {"pads": begin + end, "mode": "constant", "value": value})


_SPATIAL_MODULES: dict[str, Callable[[_Tracer, Any, str, Any], None]] = {
    "Conv1d": _conv_module, "Conv2d": _conv_module, "ConvTranspose2d": _conv_module,
    "MaxPool1d": _pool_module, "MaxPool2d": _pool_module, "AvgPool1d": _pool_module, "AvgPool2d": _pool_module,
    "AdaptiveAvgPool1d": _adaptive_module, "AdaptiveAvgPool2d": _adaptive_module,
    "ZeroPad2d": _pad_module, "ConstantPad1d": _pad_module, "ConstantPad2d": _pad_module,
}


def _conv_fn(t: _Tracer, node: Any, a: _Args) -> None:
    w = a.get(1, "weight")
    b = a.get(2, "bias", None)
    n = len(t._shape(node.args[0])) - 2
    padding = a.get(4, "padding", 0)
    attrs: dict[str, Any] = {"strides": _tuple(a.get(3, "stride", 1), n), "dilations": _tuple(a.get(5, "dilation", 1), n),
                             "group": int(a.get(6, "groups", 1))}
    pads = _torch_pads(padding, n, node)
    if pads is None:
        attrs["auto_pad"] = "VALID" if padding == "valid" else "SAME_UPPER"
    else:
        attrs["pads"] = pads
    inputs = [t._arg(node, a.get(0, "input"), 0), t._arg(node, w, 1)]
    if b is not None:
        inputs.append(t._arg(node, b, 2))
    t._emit(node, "Conv", inputs, attrs)


def _pool_window(t: _Tracer, node: Any, a: _Args) -> dict[str, Any]:
    """kernel_shape, strides (torch's default: the kernel) and pads of F.max_pool* / F.avg_pool*."""
    n = len(t._shape(node.args[0])) - 2
    k = _tuple(a.get(1, "kernel_size"), n)
    stride = a.get(2, "stride", None)
    return {"kernel_shape": k, "strides": _tuple(stride, n) if stride else k,
            "pads": _torch_pads(a.get(3, "padding", 0), n, node)}


def _max_pool_fn(t: _Tracer, node: Any, a: _Args) -> None:
    if a.get(6, "return_indices", False):
        raise _Refused(f"function max_pool (node {node.name!r}) with return_indices=True")
    n = len(t._shape(node.args[0])) - 2
    t._emit(node, "MaxPool", [t._arg(node, a.get(0, "input"), 0)],
            {**_pool_window(t, node, a), "dilations": _tuple(a.get(4, "dilation", 1), n),
             "ceil_mode": int(bool(a.get(5, "ceil_mode", False)))})


def _avg_pool_fn(t: _Tracer, node: Any, a: _Args) -> None:
    if a.get(6, "divisor_override", None):
        raise _Refused(f"function avg_pool (node {node.name!r}) with divisor_override")
    t._emit(node, "AveragePool", [t._arg(node, a.get(0, "input"), 0)],
            {**_pool_window(t, node, a), "ceil_mode": int(bool(a.get(4, "ceil_mode", False))),
             "count_include_pad": int(bool(a.get(5, "count_include_pad", True)))})


def _adaptive_fn(n: int) -> Rule:
    def rule(t: _Tracer, node: Any, a: _Args) -> None:
        _adaptive_avg(t, node, t._arg(node, a.get(0, "input"), 0), a.get(1, "output_size"), n)

    return rule


def _pad_fn(t: _Tracer, node: Any, a: _Args) -> None:
    mode = a.get(2, "mode", "constant")
    if mode != "constant":
        raise _Refused(f"function pad (node {node.name!r}) with mode={mode!r}; mdfx pads with a constant")
    value = a.get(3, "value", None)
    _pad_emit(t, node, t._arg(node, a.get(0, "input"), 0), list(a.get(1, "pad")), float(value or 0.0))


class _Refused(Exception):
    """One unsupported construct; the tracer lists them all in one error."""


class _Args:
    """Positional-or-keyword access to an fx call's arguments."""

    def __init__(self, node: Any) -> None:
        self.args, self.kwargs = node.args, node.kwargs

    def get(self, i: int, key: str, default: Any = None) -> Any:
        return self.args[i] if i < len(self.args) else self.kwargs.get(key, default)

    def rest(self, i: int, key: str) -> list[Any]:
        """``f(x, *dims)`` or ``f(x, dims)`` or ``f(x, key=dims)`` as a list."""
        if len(self.args) > i + 1:
            return list(self.args[i:])
        v = self.get(i, key)
        return list(v) if isinstance(v, tuple | list) else [v]


Rule = Callable[[_Tracer, Any, _Args], None]
ModuleRule = Callable[[_Tracer, Any, Any, str], None]


def _passed(attr: str, i: int, key: str, conv: Callable[[Any], Any] = float) -> Callable[[_Args], dict]:
    """``{attr: value}`` when the call passes argument ``i`` / ``key``, else nothing: torch's default
    for it is the op table's, which fills it (defaults come from the table, once)."""
    def attrs(a: _Args) -> dict:
        missing = object()
        value = a.get(i, key, missing)
        return {} if value is missing else {attr: conv(value)}

    return attrs


def _unary(op: str, attrs: Callable[[_Args], dict] | None = None) -> Rule:
    def rule(t: _Tracer, node: Any, a: _Args) -> None:
        t._emit(node, op, [t._arg(node, a.get(0, "input"), 0)], attrs(a) if attrs else None)

    return rule


def _binary(op: str) -> Rule:
    def rule(t: _Tracer, node: Any, a: _Args) -> None:
        if a.kwargs.get("alpha", 1) != 1:
            raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) with alpha="
                           f"{a.kwargs['alpha']!r}")
        t._emit(node, op, [t._arg(node, a.get(0, "input"), 0), t._arg(node, a.get(1, "other"), 1)])

    return rule


def _pow(t: _Tracer, node: Any, a: _Args) -> None:
    exponent = a.get(1, "exponent")
    if hasattr(exponent, "name") or not isinstance(exponent, int | float):
        raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) with a computed exponent "
                       "(mdfx takes pow by a constant)")
    base = a.get(0, "input")
    if not hasattr(base, "name"):
        raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) of a constant base")
    t._emit(node, "Pow", [t._arg(node, base, 0)], {"exponent": float(exponent)})


def _softplus_fn(t: _Tracer, node: Any, a: _Args) -> None:
    t._softplus(node, t._arg(node, a.get(0, "input"), 0), float(a.get(1, "beta", 1.0)),
                float(a.get(2, "threshold", 20.0)))


def _silu_fn(t: _Tracer, node: Any, a: _Args) -> None:
    t._silu(node, t._arg(node, a.get(0, "input"), 0))


def _softmax_rule(log: bool) -> Rule:
    def rule(t: _Tracer, node: Any, a: _Args) -> None:
        t._softmax(node, t._arg(node, a.get(0, "input"), 0), a.get(1, "dim"), log)

    return rule


def _flatten_fn(t: _Tracer, node: Any, a: _Args) -> None:
    t._flatten(node, t._arg(node, a.get(0, "input"), 0), int(a.get(1, "start_dim", 0)), int(a.get(2, "end_dim", -1)))


def _linear_fn(t: _Tracer, node: Any, a: _Args) -> None:
    bias = a.get(2, "bias")
    inputs = [t._arg(node, a.get(0, "input"), 0), t._arg(node, a.get(1, "weight"), 1)]
    if bias is not None:
        inputs.append(t._arg(node, bias, 2))
    if len(t._shape(a.get(0, "input"))) == 2:
        t._emit(node, "Gemm", inputs, {"transB": 1})
    else:
        _linear_nd(t, node, inputs)


def _linear_nd(t: _Tracer, node: Any, inputs: list[str]) -> None:
    """x @ W.T (+ b) for x of rank > 2: a Transpose of the (param) weight, MatMul, Add."""
    wt = t._emit(node, "Transpose", [inputs[1]], {"perm": [1, 0]}, step="weight_t")
    if len(inputs) == 2:
        t._emit(node, "MatMul", [inputs[0], wt])
        return
    y = t._emit(node, "MatMul", [inputs[0], wt], step="matmul")
    t._emit(node, "Add", [y, inputs[2]])


def _layer_norm_fn(t: _Tracer, node: Any, a: _Args) -> None:
    shape = a.get(1, "normalized_shape")
    weight, bias = a.get(2, "weight"), a.get(3, "bias")
    inputs = [t._arg(node, a.get(0, "input"), 0), "" if weight is None else t._arg(node, weight, 2),
              "" if bias is None else t._arg(node, bias, 3)]
    t._emit(node, "LayerNormalization", inputs, {"axis": -len(t._value(node, shape)),
                                                 **_passed("epsilon", 4, "eps")(a)})


def _cat(t: _Tracer, node: Any, a: _Args) -> None:
    tensors = a.get(0, "tensors")
    t._emit(node, "Concat", [t._arg(node, x, i) for i, x in enumerate(tensors)], {"axis": int(a.get(1, "dim", 0))})


def _split(t: _Tracer, node: Any, a: _Args) -> None:
    """split/chunk make no op: their pieces are Slices, written when getitem picks one."""
    x = a.get(0, "tensor" if node.op == "call_function" else "self")
    size = t._shape(x)
    dim = int(a.get(2, "dim", 0))
    n = size[dim]
    if n is BATCH_SIZE:
        raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) over the batch axis")
    if node.target in ("chunk",) or getattr(node.target, "__name__", "") == "chunk":
        chunks = int(a.get(1, "chunks"))
        step = -(-n // chunks)
        sizes = [min(step, n - s) for s in range(0, n, step)]
    else:
        given = t._value(node, a.get(1, "split_size_or_sections" if node.op == "call_function" else "split_size"))
        sizes = list(given) if isinstance(given, list | tuple) else [min(int(given), n - s)
                                                                    for s in range(0, n, int(given))]
    starts = np.cumsum([0, *sizes[:-1]])
    t.values[node.name] = ("pieces", t._arg(node, x, 0), dim,
                           [(int(s), int(s) + int(k)) for s, k in zip(starts, sizes, strict=True)])


def _getitem(t: _Tracer, node: Any, a: _Args) -> None:
    source, index = node.args
    held = t.values.get(getattr(source, "name", None), None) if hasattr(source, "name") else None
    if isinstance(held, tuple) and held and held[0] == "pieces":
        _, x, dim, pieces = held
        start, end = pieces[int(index)]
        t._emit(node, "Slice", [x], {"starts": [start], "ends": [end], "axes": [dim], "steps": [1]})
        return
    if isinstance(held, tuple) and held and held[0] in ("rnn", "rnn_states", "rnn_h"):
        _rnn_item(t, node, held, index)
        return
    if held is not None:  # x.shape[i], x.size()[i]
        t.values[node.name] = held[index]
        return
    x = t._arg(node, source, 0)
    _index(t, node, x, t._shape(source), index if isinstance(index, tuple) else (index,))


def _rnn_item(t: _Tracer, node: Any, held: tuple, index: Any) -> None:
    """``output, h_n = rnn(x)`` (an LSTM's ``h_n, c_n = state``) and ``h_n[i]``: the output as is;
    h_n's entry ``i`` (layer i // D, direction i % D) is that layer's output at its last step."""
    kind, seq, layers, D, H, T = held[1:7]
    what = held[0]
    if what == "rnn" and index == 0:
        t.tensor[node.name] = seq
        t.batched.add(node.name)
        return
    if what == "rnn" and index == 1:
        t.values[node.name] = ("rnn_states" if kind == "LSTM" else "rnn_h", *held[1:])
        return
    if what == "rnn_states" and index in (0, 1):
        # c_n is refused where it is read (an unused one, from unpacking, is fine)
        t.values[node.name] = ("rnn_h", *held[1:]) if index == 0 else ("rnn_c", kind)
        return
    if what == "rnn_h" and isinstance(index, int) and -len(layers) * D <= index < len(layers) * D:
        i = index % (len(layers) * D)
        y, d = layers[i // D], i % D
        step = T - 1 if d == 0 else 0
        last = t._emit(node, "Slice", [y], {"starts": [step, d], "ends": [step + 1, d + 1], "axes": [1, 2],
                                           "steps": None}, step="last_step")
        t._emit(node, "Reshape", [last], {"shape": [0, H]})
        return
    part = f"index {index!r}"
    raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) takes {part} of a {kind}'s result "
                   "(mdfx takes output, h_n and h_n[i])")


def _index(t: _Tracer, node: Any, x: str, shape: tuple, index: tuple) -> None:
    """``x[..., a:b, i]``: one Slice over the sliced axes, then Squeeze of the integer-indexed ones."""
    if sum(i is Ellipsis for i in index) > 1 or any(i is None or hasattr(i, "name") for i in index):
        raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) with index {index!r} "
                       "(mdfx takes slices, integers and one ...)")
    if Ellipsis in index:
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (len(shape) - len(index) + 1) + index[k + 1:]
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for axis, i in enumerate(index):
        if isinstance(i, slice) and i == slice(None):
            continue
        if shape[axis] is BATCH_SIZE:
            raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) indexes the batch axis "
                           f"with {i!r} (mdfx keeps every sample of a batch)")
        if isinstance(i, int):
            n = shape[axis]
            start = i % n
            starts.append(start), ends.append(start + 1), axes.append(axis), steps.append(1), squeeze.append(axis)
        elif isinstance(i, slice):
            s, e, st = i.indices(shape[axis])
            if st < 0:
                raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) with a negative step")
            starts.append(s), ends.append(e), axes.append(axis), steps.append(st)
        else:
            raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) with index {i!r}")
    if not axes:
        t._emit(node, "Identity", [x])
        return
    attrs = {"starts": starts, "ends": ends, "axes": axes, "steps": steps}
    if not squeeze:
        t._emit(node, "Slice", [x], attrs)
        return
    sliced = t._emit(node, "Slice", [x], attrs, step="slice")
    t._emit(node, "Squeeze", [sliced], {"axes": squeeze})


def _reshape(t: _Tracer, node: Any, a: _Args) -> None:
    x = a.get(0, "input" if node.op == "call_function" else "self")
    dims = t._value(node, a.rest(1, "shape"))
    if len(dims) == 1 and isinstance(dims[0], list | tuple):
        dims = list(dims[0])
    target = []
    for axis, d in enumerate(dims):
        if d is BATCH_SIZE:
            if axis != 0:
                raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) moves the batch "
                               f"size to axis {axis}")
            target.append(0)
        elif isinstance(d, int):
            target.append(d)
        else:
            raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) with size {d!r}")
    if x.name in t.batched and target and target[0] not in (0, -1):
        raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) to {dims}: axis 0 is a fixed "
                       "size; write x.size(0) or -1 there so the batch stays free")
    t._emit(node, "Reshape", [t._arg(node, x, 0)], {"shape": target})


def _squeeze(t: _Tracer, node: Any, a: _Args) -> None:
    x = a.get(0, "input" if node.op == "call_function" else "self")
    dim = a.get(1, "dim")
    shape = t._shape(x)
    if dim is None:  # every size-1 axis but the batch
        axes = [i for i, d in enumerate(shape) if d == 1 and i > 0 or (i == 0 and d == 1 and x.name not in t.batched)]
    else:
        axes = [int(d) for d in (dim if isinstance(dim, tuple | list) else [dim])]
        axes = [d for d in axes if shape[d] == 1]  # torch leaves an axis of another size alone
    if not axes:
        t._emit(node, "Identity", [t._arg(node, x, 0)])
        return
    t._emit(node, "Squeeze", [t._arg(node, x, 0)], {"axes": axes})


def _unsqueeze(t: _Tracer, node: Any, a: _Args) -> None:
    x = a.get(0, "input" if node.op == "call_function" else "self")
    t._emit(node, "Unsqueeze", [t._arg(node, x, 0)], {"axes": [int(a.get(1, "dim"))]})


def _transpose(t: _Tracer, node: Any, a: _Args) -> None:
    x = a.get(0, "input" if node.op == "call_function" else "self")
    rank = len(t._shape(x))
    d0, d1 = int(a.get(1, "dim0")) % rank, int(a.get(2, "dim1")) % rank
    perm = list(range(rank))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    t._emit(node, "Transpose", [t._arg(node, x, 0)], {"perm": perm})


def _permute(t: _Tracer, node: Any, a: _Args) -> None:
    x = a.get(0, "input" if node.op == "call_function" else "self")
    rank = len(t._shape(x))
    dims = t._value(node, a.rest(1, "dims"))
    t._emit(node, "Transpose", [t._arg(node, x, 0)], {"perm": [int(d) % rank for d in dims]})


def _t(t: _Tracer, node: Any, a: _Args) -> None:
    x = a.get(0, "input" if node.op == "call_function" else "self")
    t._emit(node, "Transpose", [t._arg(node, x, 0)], {"perm": list(range(len(t._shape(x))))[::-1]})


def _reduce(op: str) -> Rule:
    def rule(t: _Tracer, node: Any, a: _Args) -> None:
        x = a.get(0, "input" if node.op == "call_function" else "self")
        dim = a.get(1, "dim")
        if dim is None:
            rank = len(t._shape(x))
            axes = list(range(rank))
        else:
            axes = [int(d) for d in (dim if isinstance(dim, tuple | list) else [dim])]
        if a.kwargs.get("dtype") is not None:
            raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) with dtype=")
        t._emit(node, op, [t._arg(node, x, 0)], {"axes": axes, "keepdims": int(bool(a.get(2, "keepdim", False)))})

    return rule


def _clamp(t: _Tracer, node: Any, a: _Args) -> None:
    lo, hi = a.get(1, "min"), a.get(2, "max")
    if hasattr(lo, "name") or hasattr(hi, "name"):
        raise _Refused(f"{_what(node)} {_target_name(node)!r} (node {node.name!r}) with tensor bounds")
    t._emit(node, "Clip", [t._arg(node, a.get(0, "input"), 0)],
            {"min": -math.inf if lo is None else float(lo), "max": math.inf if hi is None else float(hi)})


def _size(t: _Tracer, node: Any, a: _Args) -> None:
    x = a.get(0, "self")
    shape = t._shape(x)
    dim = a.get(1, "dim")
    t.values[node.name] = tuple(shape) if dim is None else shape[int(dim)]


def _getattr(t: _Tracer, node: Any, a: _Args) -> None:
    x, attr = node.args
    if attr != "shape" or not hasattr(x, "name"):
        raise _Refused(f"attribute {attr!r} of node {getattr(x, 'name', x)!r} (node {node.name!r})")
    t.values[node.name] = tuple(t._shape(x))


def _dropout_fn(t: _Tracer, node: Any, a: _Args) -> None:
    t._emit(node, "Dropout", [t._arg(node, a.get(0, "input"), 0)], _passed("ratio", 1, "p")(a))


def _contiguous(t: _Tracer, node: Any, a: _Args) -> None:
    t._emit(node, "Identity", [t._arg(node, a.get(0, "self"), 0)])


# --- the registrations: modules (in the order the refusal lists them), then functions and methods ---


@module_rule("Linear")
def _linear_module(t: _Tracer, node: Any, mod: Any, x: str) -> None:
    bias = [] if mod.bias is None else [t._param(mod.bias, f"{node.target}.bias")]
    inputs = [x, t._param(mod.weight, f"{node.target}.weight"), *bias]
    if len(t._shape(node.args[0])) == 2:
        t._emit(node, "Gemm", inputs, {"transB": 1})
    else:
        _linear_nd(t, node, inputs)


def _unary_module(op: str, attrs: Callable[[Any], dict] | None = None) -> ModuleRule:
    def rule(t: _Tracer, node: Any, mod: Any, x: str) -> None:
        t._emit(node, op, [x], attrs(mod) if attrs else None)

    return rule


module_rule("ReLU")(_unary_module("Relu"))
module_rule("LeakyReLU")(_unary_module("LeakyRelu", lambda m: {"alpha": float(m.negative_slope)}))
module_rule("Sigmoid")(_unary_module("Sigmoid"))
module_rule("Tanh")(_unary_module("Tanh"))
module_rule("ELU")(_unary_module("Elu", lambda m: {"alpha": float(m.alpha)}))
module_rule("SELU")(_unary_module("Selu", lambda m: dict(_SELU)))
module_rule("Softplus")(lambda t, node, mod, x: t._softplus(node, x, float(mod.beta), float(mod.threshold)))
module_rule("GELU")(_unary_module("Gelu", lambda m: {"approximate": str(m.approximate)}))
module_rule("SiLU")(lambda t, node, mod, x: t._silu(node, x))
# nn.Hardsigmoid is relu6(x + 3) / 6: ONNX's HardSigmoid with torch's constants (not ONNX's 0.2, 0.5)
module_rule("Hardsigmoid")(_unary_module("HardSigmoid", lambda m: {"alpha": 1.0 / 6.0, "beta": 0.5}))
module_rule("Softmax")(lambda t, node, mod, x: t._softmax(node, x, mod.dim, False))
module_rule("LogSoftmax")(lambda t, node, mod, x: t._softmax(node, x, mod.dim, True))
module_rule("Dropout")(_unary_module("Dropout", lambda m: {"ratio": float(m.p)}))
module_rule("Identity")(_unary_module("Identity"))
module_rule("Flatten")(lambda t, node, mod, x: t._flatten(node, x, mod.start_dim, mod.end_dim))
module_rule("LayerNorm")(lambda t, node, mod, x: t._layer_norm(node, x, tuple(mod.normalized_shape), mod.weight,
                                                             mod.bias, float(mod.eps), str(node.target)))
module_rule("BatchNorm1d")(lambda t, node, mod, x: t._batch_norm(node, x, mod))
module_rule("BatchNorm2d")(lambda t, node, mod, x: t._batch_norm(node, x, mod))
for _kind, _spatial_rule in _SPATIAL_MODULES.items():
    module_rule(_kind)(lambda t, node, mod, x, _r=_spatial_rule: _r(t, node, x, mod))
module_rule("Embedding")(lambda t, node, mod, x: t._embedding(node, x, mod))
for _kind in ("LSTM", "GRU", "RNN"):
    module_rule(_kind)(lambda t, node, mod, x, _k=_kind: t._recurrent(node, x, mod, _k))

_F = "torch.nn.functional."
for _op, _paths, _methods in [
    ("Relu", ("torch.relu", _F + "relu"), ("relu",)),
    ("Sigmoid", ("torch.sigmoid", _F + "sigmoid"), ("sigmoid",)),
    ("Tanh", ("torch.tanh", _F + "tanh"), ("tanh",)),
    ("Exp", ("torch.exp",), ("exp",)),
    ("Log", ("torch.log",), ("log",)),
    ("Sqrt", ("torch.sqrt",), ("sqrt",)),
    ("Abs", ("torch.abs", "operator.abs"), ("abs",)),
    ("Neg", ("torch.neg", "operator.neg"), ("neg",)),
    ("Erf", ("torch.erf",), ("erf",)),
    ("Reciprocal", ("torch.reciprocal",), ("reciprocal",)),
    ("Identity", ("operator.pos",), ()),
]:
    function_rule(*_paths, methods=_methods)(_unary(_op))
for _op, _paths, _methods in [
    ("Add", ("operator.add", "torch.add"), ("add",)),
    ("Sub", ("operator.sub", "torch.sub"), ("sub",)),
    ("Mul", ("operator.mul", "torch.mul"), ("mul",)),
    ("Div", ("operator.truediv", "torch.div"), ("div",)),
    ("MatMul", ("operator.matmul", "torch.matmul", "torch.mm"), ("matmul",)),
]:
    function_rule(*_paths, methods=_methods)(_binary(_op))
function_rule(_F + "leaky_relu")(_unary("LeakyRelu", _passed("alpha", 1, "negative_slope")))
function_rule(_F + "elu")(_unary("Elu", _passed("alpha", 1, "alpha")))
function_rule("torch.selu", _F + "selu")(_unary("Selu", lambda a: dict(_SELU)))
function_rule(_F + "gelu")(_unary("Gelu", _passed("approximate", 1, "approximate", str)))
function_rule(_F + "hardsigmoid")(_unary("HardSigmoid", lambda a: {"alpha": 1.0 / 6.0, "beta": 0.5}))
function_rule(_F + "softplus")(_softplus_fn)
function_rule(_F + "silu")(_silu_fn)
function_rule(_F + "softmax", "torch.softmax", methods=("softmax",))(_softmax_rule(False))
function_rule(_F + "log_softmax", "torch.log_softmax", methods=("log_softmax",))(_softmax_rule(True))
function_rule("torch.flatten", methods=("flatten",))(_flatten_fn)
function_rule(_F + "linear")(_linear_fn)
function_rule(_F + "layer_norm")(_layer_norm_fn)
function_rule(_F + "dropout")(_dropout_fn)
function_rule("torch.cat", "torch.concat")(_cat)
function_rule("torch.split", "torch.chunk", methods=("split", "chunk"))(_split)
function_rule("operator.getitem")(_getitem)
function_rule("torch.reshape", methods=("reshape", "view"))(_reshape)
function_rule("torch.squeeze", methods=("squeeze",))(_squeeze)
function_rule("torch.unsqueeze", methods=("unsqueeze",))(_unsqueeze)
function_rule("torch.transpose", methods=("transpose",))(_transpose)
function_rule("torch.permute", methods=("permute",))(_permute)
function_rule("torch.t", methods=("t",))(_t)
function_rule("torch.pow", "operator.pow", methods=("pow",))(_pow)
function_rule("torch.clamp", "torch.clip", methods=("clamp", "clip"))(_clamp)
function_rule("torch.sum", methods=("sum",))(_reduce("ReduceSum"))
function_rule("torch.mean", methods=("mean",))(_reduce("ReduceMean"))
function_rule("torch.amax", methods=("amax",))(_reduce("ReduceMax"))
function_rule("builtins.getattr")(_getattr)
function_rule(methods=("size",))(_size)
function_rule(methods=("contiguous",))(_contiguous)
function_rule(_F + "conv1d", _F + "conv2d")(_conv_fn)
function_rule(_F + "max_pool1d", _F + "max_pool2d")(_max_pool_fn)
function_rule(_F + "avg_pool1d", _F + "avg_pool2d")(_avg_pool_fn)
function_rule(_F + "adaptive_avg_pool1d")(_adaptive_fn(1))
function_rule(_F + "adaptive_avg_pool2d")(_adaptive_fn(2))
function_rule(_F + "pad")(_pad_fn)

#: The torch.nn modules the import reads (their rules' keys, in registration order).
SUPPORTED_MODULES: tuple[str, ...] = tuple(MODULE_RULES)


@lru_cache(maxsize=1)
def _resolved_rules() -> dict[Any, Rule]:
    """:data:`FUNCTION_RULES` keyed by the functions themselves, resolved on first use."""
    import importlib

    out: dict[Any, Rule] = {}
    for path, rule in FUNCTION_RULES.items():
        module, _, name = path.rpartition(".")
        fn = getattr(importlib.import_module(module), name)
        if out.get(fn, rule) is not rule:  # two paths to one function (torch.sigmoid, F.sigmoid)
            raise ValueError(f"torch import rules disagree on {path!r}")
        out[fn] = rule
    return out


def _what(node: Any) -> str:
    return {"call_module": "module", "call_function": "function", "call_method": "method"}.get(node.op, node.op)


def _target_name(node: Any) -> str:
    target = node.target
    if isinstance(target, str):
        return target
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    return f"{module}.{name}" if module and module not in ("_operator", "operator", "builtins") else name


def _describe(value: Any) -> str:
    return f"node {value.name!r}" if hasattr(value, "name") else repr(value)


def _attr(module: Any, target: str) -> Any:
    for part in target.split("."):
        module = getattr(module, part)
    return module


def _dtype_name(dtype: Any) -> str:
    """torch.float32 -> "float32"; float64 where the module has no float tensors."""
    name = str(dtype).removeprefix("torch.") if dtype is not None else "float64"
    return name if name in FLOAT_DTYPES else "float64"


# --- MDF written by pytorch_to_mdf, with weights from elsewhere -------------------------


def from_mdf_with_weights(mdf: str | os.PathLike[str] | Mapping[str, Any],
                          weights: str | os.PathLike[str] | Mapping[str, Any]) -> Graph:
    """Read MDF whose weights are missing (modeci-mdf's ``pytorch_to_mdf`` output), adding ``weights``.

    ``weights`` is a state_dict (a mapping of names to tensors or arrays), a
    ``.pt`` / ``.pth`` file of one (loaded with ``torch.load(weights_only=True)``)
    or the ``.onnx`` file the model was exported to (its initializers). Names
    match the MDF's weight ports with ``.`` read as ``_`` (``fc1.weight`` ->
    ``fc1_weight``); the graph's params keep the weights' own names and layouts.
    """
    from mdfx.errors import reading
    from mdfx.schema import reader
    from mdfx.schema.dialects import modeci

    source = str(mdf) if isinstance(mdf, str | os.PathLike) else "MDF model"
    data = reader.as_dict(mdf)
    # "torch-init": drawn as torch initialises the layers (modeci.initial_weights; numpy's numbers)
    given = modeci.initial_weights(data) if isinstance(weights, str) and weights == "torch-init" \
        else _weights(weights)
    with reading(f"{source} with weights {weights if isinstance(weights, str | os.PathLike) else ''}".strip()):
        graph = modeci.read_with_weights(data, given)
        reader._graph_values(graph, source)
    return graph


def _weights(source: str | os.PathLike[str] | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    path = Path(source)
    if not path.is_file():
        raise SchemaError(f"{path}: no such file")
    if path.suffix.lower() == ".onnx":
        from mdfx.converters.onnx_import import initializers, read_model

        return initializers(read_model(path), str(path))
    from mdfx.files import read_state_dict

    return read_state_dict(path)
