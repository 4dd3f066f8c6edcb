"""Import a torch module (an MLP) as a trainable :class:`~mdfx.schema.net.Net`.

:func:`from_torch` traces the module with ``torch.fx`` and restates the trace
as an :class:`~mdfx.schema.opgraph.OpGraph`: ``nn.Linear`` is a Gemm whose
weight is ``weight.T`` (torch keeps it as (out, in)), so each Linear
(+ activation) becomes a projection into a node named after the Linear, and
projection names are the state_dict keys (``"fc1.weight"``).

:func:`from_mdf_with_weights` reads MDF that modeci-mdf's ``pytorch_to_mdf``
wrote without its weights, taking them from a state_dict or an ONNX file.

``torch`` is imported when a module is converted, not when this module is.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mdfx.errors import SchemaError, UnsupportedError
from mdfx.schema.net import Net
from mdfx.schema.opgraph import Op, OpGraph, lower

SUPPORTED_MODULES = ("Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Identity", "Flatten")
_ACTIVATIONS = {"ReLU": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Identity": "Identity"}


def from_torch(module: Any, example_input: Any, input_names: list[str] | None = None,
               output_names: list[str] | None = None) -> Net:
    """Trace ``module`` (an ``nn.Sequential`` or any torch.fx-traceable module) into a Net.

    ``example_input`` is a tensor (or a tuple, one per ``forward`` argument)
    shaped ``(batch, features, ...)``; it only fixes the feature sizes. Modules:
    ``nn.Linear`` (with or without bias), ``ReLU``, ``LeakyReLU``, ``Sigmoid``,
    ``Tanh``, ``Softmax(dim=-1)``, ``Identity``, ``Flatten``; the matching
    functions (``torch.relu``, ``F.softmax``, ...) and ``+ - * /`` with
    constants. INPUT nodes are named after ``forward``'s arguments (or
    ``input_names``), OUTPUT nodes ``"output"`` (``"output_<i>"`` for several
    outputs, or ``output_names``). Weights are copied as float64 and trainable.

    Anything else is refused with an :class:`~mdfx.errors.UnsupportedError`
    naming each unsupported module or function with its place in the module.
    """
    import torch
    import torch.fx

    examples = tuple(example_input) if isinstance(example_input, tuple | list) else (example_input,)
    try:
        traced = torch.fx.symbolic_trace(module)
    except Exception as exc:  # fx raises TraceError, TypeError, ... for data-dependent code
        raise UnsupportedError(f"{type(module).__name__} cannot be traced with torch.fx "
                               f"({type(exc).__name__}: {exc}); mdfx imports modules whose forward is "
                               "a fixed sequence of layers") from None
    return lower(_Tracer(traced, examples, input_names, output_names).opgraph(type(module).__name__))


class _Tracer:
    """fx graph -> OpGraph, one rule per kind of fx node."""

    def __init__(self, traced: Any, examples: tuple, input_names: list[str] | None,
                 output_names: list[str] | None) -> None:
        self.traced = traced
        self.examples = examples
        self.input_names = input_names
        self.output_names = output_names
        self.ops: list[Op] = []
        self.constants: dict[str, np.ndarray] = {}
        self.inputs: dict[str, int] = {}
        self.names: dict[str, str] = {}
        self.unsupported: list[str] = []

    def opgraph(self, name: str) -> OpGraph:
        outputs: list[str] = []
        placeholders = 0
        for node in self.traced.graph.nodes:
            if node.op == "placeholder":
                self._input(node, placeholders)
                placeholders += 1
            elif node.op == "get_attr":
                self.constants[node.name] = _numpy(_attr(self.traced, node.target))
            elif node.op == "call_module":
                self._module(node)
            elif node.op in ("call_function", "call_method"):
                self._function(node)
            elif node.op == "output":
                outputs = self._outputs(node.args[0])
        if self.unsupported:
            raise UnsupportedError(
                f"{name} uses what mdfx cannot import: {'; '.join(self.unsupported)}. mdfx imports modules "
                f"built from nn.{', nn.'.join(SUPPORTED_MODULES)} and the matching torch functions "
                "(relu, sigmoid, tanh, softmax, leaky_relu, flatten, linear, exp, + - * / with constants)"
            )
        return OpGraph(name, self.inputs, outputs, self.constants, self.ops, self.names)

    def _input(self, node: Any, i: int) -> None:
        if i >= len(self.examples):
            raise SchemaError(f"forward takes argument {node.name!r} but example_input has "
                              f"{len(self.examples)} tensor(s); pass one per argument")
        shape = tuple(self.examples[i].shape)
        if len(shape) < 2:
            raise SchemaError(f"example input for {node.name!r} has shape {shape}; expected (batch, features)")
        self.inputs[node.name] = int(np.prod(shape[1:]))
        # fx renames an argument that shadows a builtin ("input" -> "input_1"); keep forward's name.
        self.names[node.name] = self.input_names[i] if self.input_names else str(node.target)

    def _outputs(self, result: Any) -> list[str]:
        nodes = list(result) if isinstance(result, tuple | list) else [result]
        outs = []
        for i, n in enumerate(nodes):
            if not hasattr(n, "name"):
                self.unsupported.append(f"output {i} ({type(n).__name__}; forward must return tensors)")
                continue
            outs.append(n.name)
            default = "output" if len(nodes) == 1 else f"output_{i}"
            self.names[n.name] = self.output_names[i] if self.output_names else default
        return outs

    def _arg(self, node: Any, value: Any, i: int) -> str:
        """An fx argument as a tensor name: a traced value, or a Python number as a constant."""
        if hasattr(value, "name"):
            return value.name
        if isinstance(value, int | float) and not isinstance(value, bool):
            name = f"{node.name}.const{i}"
            self.constants[name] = np.asarray(float(value))
            return name
        self.unsupported.append(f"{node.name} ({_what(node)}) with argument {value!r}")
        return ""

    def _emit(self, node: Any, op_type: str, inputs: list[str], attrs: dict | None = None,
              name: str | None = None) -> None:
        self.ops.append(Op(op_type, inputs, node.name, name or str(node.target), attrs or {},
                           f"{_what(node)} {str(node.target)!r}"))

    def _module(self, node: Any) -> None:
        mod = self.traced.get_submodule(node.target)
        kind = type(mod).__name__
        x = self._arg(node, node.args[0], 0) if node.args else ""
        if kind == "Linear":
            weight = f"{node.target}.weight"
            self.constants[weight] = _numpy(mod.weight)
            bias = ""
            if mod.bias is not None:
                bias = f"{node.target}.bias"
                self.constants[bias] = _numpy(mod.bias)
            self._emit(node, "Gemm", [x, weight, bias], {"transB": 1})
        elif kind in _ACTIVATIONS:
            self._emit(node, _ACTIVATIONS[kind], [x])
        elif kind == "LeakyReLU":
            self._emit(node, "LeakyRelu", [x], {"alpha": float(mod.negative_slope)})
        elif kind == "Softmax":
            self._softmax(node, x, mod.dim)
        elif kind == "Flatten":
            self._flatten(node, x, mod.start_dim, mod.end_dim)
        else:
            self.unsupported.append(f"module {node.target!r} ({kind})")

    def _function(self, node: Any) -> None:
        functions, methods = _rules()
        rule = (functions if node.op == "call_function" else methods).get(node.target)
        if rule is None:
            self.unsupported.append(f"{_what(node)} {_target_name(node.target)!r} (node {node.name!r})")
            return
        rule(self, node, _Args(node))

    def _softmax(self, node: Any, x: str, dim: Any) -> None:
        if dim not in (-1, 1):
            self.unsupported.append(f"{node.name} ({_what(node)}) with dim={dim} (mdfx's SoftMax runs over the "
                                    "features: dim=-1)")
            return
        self._emit(node, "Softmax", [x], {"axis": -1})

    def _flatten(self, node: Any, x: str, start: int, end: int) -> None:
        if start != 1 or end != -1:
            self.unsupported.append(f"{node.name} ({_what(node)}) with start_dim={start}, end_dim={end} "
                                    "(mdfx flattens everything but the batch: start_dim=1, end_dim=-1)")
            return
        self._emit(node, "Flatten", [x], {"axis": 1})


class _Args:
    """Positional-or-keyword access to an fx call's arguments."""

    def __init__(self, node: Any) -> None:
        self.args, self.kwargs = node.args, node.kwargs

    def get(self, i: int, key: str, default: Any = None) -> Any:
        return self.args[i] if i < len(self.args) else self.kwargs.get(key, default)


def _unary(op_type: str) -> Callable[[_Tracer, Any, _Args], None]:
    return lambda t, node, a: t._emit(node, op_type, [t._arg(node, a.get(0, "input"), 0)])


def _binary(op_type: str) -> Callable[[_Tracer, Any, _Args], None]:
    return lambda t, node, a: t._emit(node, op_type, [t._arg(node, a.get(0, "input"), 0),
                                                      t._arg(node, a.get(1, "other"), 1)])


def _leaky(t: _Tracer, node: Any, a: _Args) -> None:
    t._emit(node, "LeakyRelu", [t._arg(node, a.get(0, "input"), 0)], {"alpha": float(a.get(1, "negative_slope", 0.01))})


def _softmax_fn(t: _Tracer, node: Any, a: _Args) -> None:
    t._softmax(node, t._arg(node, a.get(0, "input"), 0), a.get(1, "dim"))


def _flatten_fn(t: _Tracer, node: Any, a: _Args) -> None:
    t._flatten(node, t._arg(node, a.get(0, "input"), 0), a.get(1, "start_dim", 0), a.get(2, "end_dim", -1))


def _linear_fn(t: _Tracer, node: Any, a: _Args) -> None:
    bias = a.get(2, "bias")
    inputs = [t._arg(node, a.get(0, "input"), 0), t._arg(node, a.get(1, "weight"), 1),
              "" if bias is None else t._arg(node, bias, 2)]
    t._emit(node, "Gemm", inputs, {"transB": 1}, name=node.name)


@lru_cache(maxsize=1)
def _rules() -> tuple[dict[Any, Callable], dict[str, Callable]]:
    """(function rules, method rules), built on first use: importing this module does not import torch."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - torch's own spelling

    unary = {"Relu": (torch.relu, F.relu), "Sigmoid": (torch.sigmoid, F.sigmoid),
             "Tanh": (torch.tanh, F.tanh), "Exp": (torch.exp,), "Neg": (torch.neg, operator.neg)}
    binary = {"Add": (operator.add, torch.add), "Sub": (operator.sub, torch.sub),
              "Mul": (operator.mul, torch.mul), "Div": (operator.truediv, torch.div),
              "MatMul": (operator.matmul, torch.matmul, torch.mm)}
    functions: dict[Any, Callable] = {fn: _unary(op) for op, fns in unary.items() for fn in fns}
    functions.update({fn: _binary(op) for op, fns in binary.items() for fn in fns})
    functions.update({F.leaky_relu: _leaky, F.softmax: _softmax_fn, torch.softmax: _softmax_fn,
                      torch.flatten: _flatten_fn, F.linear: _linear_fn})
    methods = {"relu": _unary("Relu"), "sigmoid": _unary("Sigmoid"), "tanh": _unary("Tanh"),
               "exp": _unary("Exp"), "neg": _unary("Neg"), "add": _binary("Add"), "sub": _binary("Sub"),
               "mul": _binary("Mul"), "div": _binary("Div"), "matmul": _binary("MatMul"),
               "softmax": lambda t, node, a: t._softmax(node, t._arg(node, a.get(0, "self"), 0), a.get(1, "dim")),
               "flatten": lambda t, node, a: t._flatten(node, t._arg(node, a.get(0, "self"), 0),
                                                        a.get(1, "start_dim", 0), a.get(2, "end_dim", -1))}
    return functions, methods


def _what(node: Any) -> str:
    return {"call_module": "module", "call_function": "function", "call_method": "method"}.get(node.op, node.op)


def _target_name(target: Any) -> str:
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    return f"{module}.{name}" if module and module not in ("_operator", "operator") else name


def _attr(module: Any, target: str) -> Any:
    for part in target.split("."):
        module = getattr(module, part)
    return module


def _numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


# --- MDF written by pytorch_to_mdf, with weights from elsewhere -------------------------


def from_mdf_with_weights(mdf: str | os.PathLike[str] | Mapping[str, Any],
                          weights: str | os.PathLike[str] | Mapping[str, Any]) -> Net:
    """Read MDF whose weights are missing (modeci-mdf's ``pytorch_to_mdf`` output), adding ``weights``.

    ``weights`` is a state_dict (a mapping of names to tensors or arrays), a
    ``.pt`` / ``.pth`` file of one (loaded with ``torch.load(weights_only=True)``)
    or the ``.onnx`` file the model was exported to (its initializers). Names
    match the MDF's weight ports with ``.`` read as ``_`` (``fc1.weight`` ->
    ``fc1_weight``).
    """
    from mdfx.errors import reading
    from mdfx.schema import reader, validate
    from mdfx.schema.dialects import modeci

    source = str(mdf) if isinstance(mdf, str | os.PathLike) else "MDF model"
    data = reader.as_dict(mdf)
    given = _weights(weights)
    with reading(f"{source} with weights {weights if isinstance(weights, str | os.PathLike) else ''}".strip()):
        net = modeci.read_with_weights(data, given)
        validate.net_values(net, source)
    return net


def _weights(source: str | os.PathLike[str] | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    path = Path(source)
    if not path.is_file():
        raise SchemaError(f"{path}: no such file")
    if path.suffix.lower() == ".onnx":
        from mdfx.converters.onnx_import import initializers, read_model

        return initializers(read_model(path), str(path))
    from mdfx.io import read_state_dict

    return read_state_dict(path)
