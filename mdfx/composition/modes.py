"""The one mode dispatcher: an ExecutionMode -> the backend that runs or trains the graph.

``run()`` and ``learn()`` of every composition come here with the lowered graph.
:data:`BACKENDS` says, per mode, which runner module infers and which trains;
each backend module is imported when its mode is first used (torch, llvmlite and
onnxruntime stay unloaded until then).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from mdfx.composition.enums import ExecutionMode
from mdfx.errors import MdfxError
from mdfx.runners.training import LearnResult, LearnSpec, by_tensor, rekey
from mdfx.schema.graph import Graph


@dataclass(frozen=True)
class Backend:
    """Where a mode's work is done: ``module:function`` names, imported on first use (None: the
    mode does not do it)."""

    infer: str | None  #: ``(graph, arrays, device) -> (outputs, values)``, see :func:`run`
    train: str | None  #: ``(graph, spec, device) -> LearnResult``


#: ExecutionMode -> its backend
BACKENDS: dict[ExecutionMode, Backend] = {
    ExecutionMode.Python: Backend("mdfx.composition.modes:_infer_reference", "mdfx.composition.modes:_train_reference"),
    ExecutionMode.PyTorch: Backend("mdfx.composition.modes:_infer_torch", "mdfx.composition.modes:_train_torch"),
    ExecutionMode.LLVMRun: Backend("mdfx.composition.modes:_infer_llvm", "mdfx.composition.modes:_train_llvm"),
    ExecutionMode.ONNX: Backend("mdfx.composition.modes:_infer_onnx", None),
}


def run(graph: Graph, arrays: dict[str, np.ndarray], mode: ExecutionMode,
        device: str = "cpu") -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Outputs by OUTPUT node (a mechanism's name, or an output tensor of a graph from elsewhere),
    and every node's values where the backend gives them (the outputs otherwise)."""
    backend = BACKENDS.get(mode)
    if backend is None or backend.infer is None:
        raise ValueError(f"unsupported execution_mode {mode!r}")
    return _resolve(backend.infer)(graph, arrays, device)


def train(graph: Graph, spec: LearnSpec, mode: ExecutionMode, device: str = "cpu") -> LearnResult:
    """One backend's training; ``spec`` is keyed by node names, the graph runners by tensor names."""
    backend = BACKENDS.get(mode)
    if backend is None or backend.train is None:
        trains = ", ".join(f"ExecutionMode.{m.name}" for m, b in BACKENDS.items() if b.train)
        raise MdfxError(f"learn() does not support execution_mode {mode!r}; use {trains}")
    keyed, back = by_tensor(graph, spec)
    return rekey(_resolve(backend.train)(graph, keyed, device), back)


def _resolve(name: str) -> Any:
    fn = _RESOLVED.get(name)
    if fn is None:
        module, _, attr = name.partition(":")
        fn = _RESOLVED[name] = getattr(importlib.import_module(module), attr)
    return fn


#: the backend functions found so far, by ``module:function`` (run() and learn() are called often)
_RESOLVED: dict[str, Any] = {}


def _values(graph: Graph) -> dict[str, str]:
    """Every composition node's value tensor (a graph from elsewhere: its inputs and outputs)."""
    if graph.mechanisms is not None:
        return graph.mechanisms.tensors
    return {t: t for t in [*graph.inputs, *graph.outputs]}


def _infer_reference(graph: Graph, arrays: dict[str, np.ndarray], device: str) -> tuple[dict, dict]:
    from mdfx.runners import reference

    env = reference.forward(graph, arrays)
    values = {node: env[tensor] for node, tensor in _values(graph).items()}
    return {n: values[n] for n in graph.output_names()}, values


def _infer_torch(graph: Graph, arrays: dict[str, np.ndarray], device: str) -> tuple[dict, dict]:
    from mdfx.runners import torch as torch_runner

    tensors = _values(graph)
    env = torch_runner.run_all(graph, arrays, list(tensors.values()), device=device)
    values = {node: env[tensor] for node, tensor in tensors.items()}
    return {n: values[n] for n in graph.output_names()}, values


def _infer_llvm(graph: Graph, arrays: dict[str, np.ndarray], device: str) -> tuple[dict, dict]:
    from mdfx.runners import llvm

    out = llvm.run(graph, arrays, _checked=True)  # the composition's parse_inputs made the shared check
    return out, dict(out)


def _infer_onnx(graph: Graph, arrays: dict[str, np.ndarray], device: str) -> tuple[dict, dict]:
    from mdfx.runners import ort

    # float64 so ONNX mode gives the reference's numbers (export float32 with mdfx.save); one
    # session per structure, fed the current weights; an INPUT node's input is the graph input
    out = ort.run_graph(graph, arrays, dtype="float64")
    return out, dict(out)


def _train_reference(graph: Graph, spec: LearnSpec, device: str) -> LearnResult:
    from mdfx.runners.training import train_reference

    return train_reference(graph, spec)


def _train_torch(graph: Graph, spec: LearnSpec, device: str) -> LearnResult:
    from mdfx.runners import torch as torch_runner

    return torch_runner.train(graph, spec, device=device)


def _train_llvm(graph: Graph, spec: LearnSpec, device: str) -> LearnResult:
    from mdfx.runners import llvm

    return llvm.train(graph, spec)
