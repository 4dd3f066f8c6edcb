"""AutodiffComposition: a Composition that learns by backpropagation.

``learn()`` follows DESIGN rule 1: Composition -> MDF -> ``Net`` -> the chosen
backend (numpy, torch or LLVM), then the trained weights are written back
into the projections, so ``run()``, ``to_mdf()`` and ``mdfx.save()`` all see them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mdfx import ops
from mdfx.composition.composition import IO, Composition, parse_inputs, pnl_value
from mdfx.composition.enums import ExecutionMode, Loss
from mdfx.errors import DataError, MdfxError
from mdfx.runners.training import LearnResult, LearnSpec, OptimizerState
from mdfx.schema.net import Net, TrainingSpec


class AutodiffComposition(Composition):
    """PsyNeuLink's AutodiffComposition: same constructor, learn(), run(), save(), load()."""

    _autodiff = True

    def __init__(self, pathways: object = None, learning_rate: float | None = None,
                 optimizer_type: str = "sgd", weight_decay: float = 0, loss_spec: Loss | str = Loss.MSE,
                 disable_learning: bool = False, refresh_losses: bool = False, disable_cuda: bool = True,
                 cuda_index: int | None = None, force_no_retain_graph: bool = False,
                 name: str | None = None, device: str | None = None, **kwargs: Any) -> None:
        super().__init__(pathways=pathways, name=name or "autodiff_composition")
        self.learning_rate = 0.001 if learning_rate is None else float(learning_rate)
        self.optimizer_type = ops.optimizer_op(optimizer_type).name
        self.weight_decay = float(weight_decay)
        self.loss_spec = loss_spec if isinstance(loss_spec, Loss) else Loss[str(loss_spec).upper()]
        ops.loss_op(self.loss_spec.value)  # refuses a loss with no rule, at construction
        self.disable_learning = disable_learning
        self.refresh_losses = refresh_losses
        if device is None:
            device = "cpu" if disable_cuda else ("cuda" if cuda_index is None else f"cuda:{cuda_index}")
        self.device = device
        #: mean loss of each minibatch, across learn() calls (PsyNeuLink's ``losses``)
        self.losses: list[float] = []
        self.learning_results: list[list[np.ndarray]] = []
        self.last_learn: LearnResult | None = None
        #: Adam's moments and step count, kept across learn() calls as PsyNeuLink keeps its optimizer
        self.optimizer_state = OptimizerState()

    def _training_spec(self) -> TrainingSpec:
        return TrainingSpec(self.loss_spec.value, self.optimizer_type, self.learning_rate,
                            self.weight_decay, self.disable_learning)

    def _trained_outputs(self, io: IO, targets: Mapping) -> list[str]:
        """The outputs the loss is summed over: every OUTPUT node (PsyNeuLink's rule)."""
        return list(io.outputs)

    # --- learning -------------------------------------------------------------------

    def learn(self, inputs: Mapping | None = None, targets: Mapping | None = None,
              num_trials: int | None = None, epochs: int = 1, learning_rate: float | None = None,
              minibatch_size: int = 1, randomize_minibatch: bool = False, patience: int | None = None,
              min_delta: float = 0, call_before_minibatch: Callable | None = None,
              call_after_minibatch: Callable | None = None,
              execution_mode: ExecutionMode = ExecutionMode.PyTorch, report_progress: object = None,
              seed: int | None = None, dtype: str = "float64", randomize_minibatches: bool | None = None,
              **kwargs: Any) -> np.ndarray:
        """Train on ``inputs``/``targets``; return the output of the last trial trained (as PsyNeuLink).

        ``inputs`` is ``{input node: trials}`` with ``targets={output node: trials}``, or
        PsyNeuLink's dict form ``{"inputs": ..., "targets": ..., "epochs": ...}``.
        Shuffled orders (``randomize_minibatch``, or PsyNeuLink 0.21's spelling
        ``randomize_minibatches``) come from numpy's global RNG as in PsyNeuLink, or
        from ``seed`` (mdfx) when given. ``dtype`` ("float64" or "float32") picks the
        precision of the torch and LLVM backends. The outputs of the last epoch's
        trials (computed before each minibatch's update) are appended to ``results``.
        """
        if randomize_minibatches is not None:
            randomize_minibatch = randomize_minibatches
        inputs = dict(inputs or {})
        if "inputs" in inputs:
            targets = inputs.get("targets", targets)
            epochs = inputs.get("epochs", epochs)
            inputs = dict(inputs["inputs"])
        if targets is None:
            raise DataError(f"{self.name!r}.learn(): no targets given (targets={{output node: trials}})")
        net, graph = self._lowered()
        io = self._io()
        trained = self._trained_outputs(io, targets)
        x = parse_inputs(io, inputs, num_trials)
        t = parse_inputs(io, targets, num_trials, nodes=trained, what="target")
        if len(next(iter(x.values()))) != len(next(iter(t.values()))):
            raise DataError(f"{len(next(iter(x.values())))} input trials but "
                            f"{len(next(iter(t.values())))} target trials")
        for name, value in (("epochs", epochs), ("minibatch_size", minibatch_size)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise DataError(f"{name} must be a positive integer, got {value!r}")
        trials = len(next(iter(t.values())))
        if minibatch_size > trials:
            raise DataError(f"minibatch_size ({minibatch_size}) cannot be greater than the number of "
                            f"trials ({trials})")
        if self.disable_learning:
            outputs, _ = _forward(graph, x, io.outputs)
            self.results.extend([outputs[n][i].copy() for n in io.outputs] for i in range(trials))
            return pnl_value(self.results[-1])
        if self.optimizer_state.optimizer != self.optimizer_type:
            # A different optimizer starts from scratch, as a new torch optimizer would.
            self.optimizer_state = OptimizerState(optimizer=self.optimizer_type)
        spec = LearnSpec(
            inputs=x, targets=t, epochs=int(epochs), minibatch_size=int(minibatch_size),
            randomize_minibatch=bool(randomize_minibatch), seed=seed,
            learning_rate=self.learning_rate if learning_rate is None else float(learning_rate),
            loss=self.loss_spec.value, optimizer=self.optimizer_type, weight_decay=self.weight_decay,
            patience=patience, min_delta=float(min_delta),
            call_before_minibatch=call_before_minibatch, dtype=dtype, optimizer_state=self.optimizer_state,
        )
        if call_after_minibatch is not None:
            spec.on_minibatch = _after_minibatch_hook(call_after_minibatch, -(-trials // minibatch_size))
        mode = execution_mode
        logging = net is not None and self._logging_hooks(net, spec)
        if logging and mode is not ExecutionMode.Python:
            # Logged values are read between minibatches, which only the numpy
            # backend exposes; it gives the same numbers (tested to 1e-10).
            mode = ExecutionMode.Python
        bar = _progress(report_progress, spec.epochs, self.name)
        if bar is not None:
            spec.on_epoch = lambda epoch, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.6g}"))
        try:
            result = _train(net, self._graph(), spec, mode, self.device)
        finally:
            if bar is not None:
                bar.close()
        if net is not None:
            self._write_back(net)
        self.last_learn = result
        self.losses.extend(result.losses)
        order = spec.orders()[result.epochs_run - 1]
        final = [[result.last_outputs[n][i].copy() for n in trained] for i in order]
        self.results.extend(final)
        self.learning_results = final
        return pnl_value(final[-1])

    @property
    def torch_losses(self) -> list[list[float]]:
        """PsyNeuLink 0.21's name for the per-minibatch losses (each wrapped in a list)."""
        return [[loss] for loss in self.losses]

    def _logging_hooks(self, net: Net, spec: LearnSpec) -> bool:
        """Wire ``log.set_log_conditions('matrix'|'value')`` to per-minibatch records."""
        projs = [p for p in self._projections if "matrix" in p.log.logged]
        mechs = [m for m in self._mechanisms() if "value" in m.log.logged]
        if not projs and not mechs:
            return False

        tensors = self._graph().meta["node_tensors"]

        def record(values: dict[str, np.ndarray]) -> None:
            for p in projs:
                p.log.record("matrix", net.projection(p.name).matrix)
            for m in mechs:
                m.log.record("value", values[tensors[m.name]])

        spec.on_values = record
        return True

    def _write_back(self, net: Net) -> None:
        """Trained arrays into the projections and mechanisms, in place (a no-op when shared)."""
        for p in self._projections:
            trained = net.projection(p.name).matrix
            if trained is not p.matrix:
                p.matrix[...] = trained
        for m in self._mechanisms():
            node = net.node(m.name)
            if node.bias is not None and node.bias is not m.bias:
                if m.bias is None:
                    m.bias = node.bias.copy()
                else:
                    m.bias[...] = node.bias

    # --- weights as a torch state_dict (PsyNeuLink's save/load) ---------------------

    def save(self, path: str | Path | None = None, directory: str | None = None,
             filename: str | None = None, **kwargs: Any) -> Path:
        """Write every projection's matrix as a torch state_dict keyed by projection name."""
        from mdfx.io import save_state_dict

        return save_state_dict(self._net(), _weights_path(self, path, directory, filename))

    def load(self, path: str | Path | None = None, directory: str | None = None,
             filename: str | None = None, **kwargs: Any) -> None:
        """Restore matrices saved by :meth:`save` (``torch.load(weights_only=True)``)."""
        from mdfx.io import load_state_dict

        net = self._net()
        load_state_dict(net, _weights_path(self, path, directory, filename))
        self._write_back(net)


def _after_minibatch_hook(callback: Callable, num_minibatches: int) -> Callable[[int, int, float], None]:
    """Call ``callback`` as PsyNeuLink does: with keywords, or with none if it takes none."""
    def hook(epoch: int, minibatch: int, loss: float) -> None:
        try:
            callback(epoch=epoch, minibatch=minibatch, num_minibatches=num_minibatches, context=None)
        except TypeError:
            callback()

    return hook


def _weights_path(comp: AutodiffComposition, path: str | Path | None, directory: str | None,
                  filename: str | None) -> Path:
    if path is not None:
        return Path(path)
    return Path(directory or ".") / (filename or f"{comp.name}_matrix_wts.pnl")


def _forward(graph: Any, x: dict[str, np.ndarray], outputs: list[str]
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The reference's outputs (by OUTPUT node) and every node's values."""
    from mdfx.runners import reference

    env = reference.forward(graph, x)
    tensors = graph.meta.get("node_tensors") or {t: t for t in [*graph.inputs, *graph.outputs]}
    values = {node: env[tensor] for node, tensor in tensors.items()}
    return {n: values[n] for n in outputs}, values


def _train(net: Net | None, graph: Any, spec: LearnSpec, mode: ExecutionMode, device: str) -> LearnResult:
    """One backend's training; ``spec`` is keyed by node names, the graph runners by tensor names."""
    if mode is ExecutionMode.Python:
        from mdfx.runners.training import train_reference

        tensors = graph.meta.get("node_tensors") or {}
        if all(tensors.get(k, k) == k for k in spec.targets):
            return train_reference(graph, spec)
        back = {tensors[k]: k for k in spec.targets}
        result = train_reference(graph, replace(spec, targets={tensors[k]: v for k, v in spec.targets.items()}))
        result.last_outputs = {back[k]: v for k, v in result.last_outputs.items()}
        return result
    if mode is ExecutionMode.LLVMRun:
        from mdfx.runners import llvm

        tensors = graph.meta.get("node_tensors") or {}
        back = {tensors.get(k, k): k for k in spec.targets}
        # the same trial orders object: learn() reads spec.orders() after training
        result = llvm.train(graph, replace(spec, targets={tensors.get(k, k): v for k, v in spec.targets.items()},
                                           _orders=spec.orders()))
        result.last_outputs = {back[k]: v for k, v in result.last_outputs.items()}
        return result
    if net is None:
        raise MdfxError(f"learn() of {graph.name!r} in {mode.name} mode: not available yet for graphs brought "
                        "from other tools; use ExecutionMode.Python")
    if mode is ExecutionMode.PyTorch:
        from mdfx.runners import torch as torch_runner

        return torch_runner.train(net, spec, device=device)
    raise MdfxError(f"learn() does not support execution_mode {mode!r}; "
                    "use ExecutionMode.Python, PyTorch or LLVMRun")


def _progress(report_progress: object, epochs: int, name: str) -> Any:
    """A tqdm bar over epochs when progress is asked for (ReportProgress.ON, True or 'on')."""
    if not report_progress or str(report_progress).upper().endswith("OFF"):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=epochs, desc=f"learn {name}", unit="epoch", file=sys.stderr)
