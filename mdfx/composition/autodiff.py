"""AutodiffComposition: a Composition that learns by backpropagation.

``learn()`` follows DESIGN rule 1: the composition lowers to its op graph
(:func:`mdfx.composition.lower.lower`, cached per structure), whose params are
the projections' own arrays; the chosen backend (numpy, torch or LLVM) trains
the graph in place, so ``run()``, ``to_mdf()`` and ``mdfx.save()`` all see the
trained weights.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mdfx import ops
from mdfx.composition import modes
from mdfx.composition.composition import IO, Composition, _is_number, parse_inputs, pnl_value
from mdfx.composition.enums import ExecutionMode, Loss, check_mode
from mdfx.composition.learn_checks import check_finite_losses
from mdfx.composition.learn_options import LearnOptions
from mdfx.composition.learning_pathway import ObjectiveMechanism, TargetMechanism
from mdfx.composition.targets import parse as parse_targets
from mdfx.errors import (
    AutodiffCompositionError,
    CompositionError,
    DataError,
    ParameterError,
    UnsupportedError,
)
from mdfx.runners.training import (
    EpochOutputs,
    LearnResult,
    LearnSpec,
    OptimizerState,
    minibatches,
)
from mdfx.schema import validate
from mdfx.schema.graph import Graph, TrainingSpec


class AutodiffComposition(Composition):
    """PsyNeuLink's AutodiffComposition: same constructor, learn(), run(), save(), load()."""

    _autodiff = True
    #: learn()'s targets are checked against the sample-target pairs (mdfx.composition.targets)
    _pairs_targets = True
    default_learning_rate = 0.001

    def __init__(self, pathways: object = None, learning_rate: object = None,
                 optimizer_type: str = "sgd", weight_decay: float = 0, loss_spec: object = Loss.MSE,
                 disable_learning: bool = False, refresh_losses: bool = False, disable_cuda: bool = True,
                 cuda_index: int | None = None, force_no_retain_graph: bool = False,
                 name: str | None = None, device: str | None = None, nodes: object = None,
                 synch_node_variables_with_torch: object = None, targets: object = None,
                 enable_learning: bool = True) -> None:
        super().__init__(pathways=pathways, name=name or "autodiff_composition", nodes=nodes,
                         learning_rate=learning_rate,
                         synch_node_variables_with_torch=synch_node_variables_with_torch)
        #: False: this composition's own projections (not those of compositions nested in it) do not learn
        self.enable_learning = bool(enable_learning)
        #: the sample-target pairs given as ``targets`` (mdfx.composition.targets); None: every
        #: OUTPUT node that a projection reaches learns on external targets
        self._target_pairs = parse_targets(self.name, targets)
        self.optimizer_type = ops.optimizer_op(optimizer_type).name
        self.weight_decay = float(weight_decay)
        self.loss_spec = as_loss(loss_spec)
        ops.loss_op(self.loss_spec.value)  # refuses a loss with no rule, at construction
        #: set on the engine of a Composition whose learning pathways use Loss.L0: PsyNeuLink's
        #: Comparator then passes the error itself back, SSE's gradient at half the rate (measured)
        self._rate_scale = 1.0
        #: the learning rates of the last learn() or _build_pytorch_representation() (PsyNeuLink's
        #: handle on its torch wrapper; mdfx builds its module per learn() and keeps none)
        self.pytorch_representation: Any = None
        #: the loss as a torch function of (output, target), set by _build_pytorch_representation()
        #: as PsyNeuLink sets it (None before); the same rule the PyTorch runner trains with
        self.loss_function: Any = None
        self.parameters.add(pytorch_representation=("pytorch_representation", False),
                            optimizer_type=("optimizer_type", False), loss_spec=("loss_spec", False))
        self.disable_learning = disable_learning
        self.refresh_losses = refresh_losses
        if device is None:
            device = "cpu" if disable_cuda else ("cuda" if cuda_index is None else f"cuda:{cuda_index}")
        self.device = device
        #: mean loss of each minibatch, across learn() calls (PsyNeuLink's ``losses``)
        self.losses: list[float] = []
        #: per minibatch, across learn() calls: its trials' outputs and targets (PsyNeuLink's names);
        #: built when first read (see _record_minibatches)
        self._torch_sample_values: list[np.ndarray] = []
        self._torch_targets: list[np.ndarray] = []
        self._pending_minibatches: list[tuple[Iterable[tuple[dict, np.ndarray]], dict, list[str], int]] = []
        self.learning_results: list[list[np.ndarray]] = []
        self.last_learn: LearnResult | None = None
        if targets is not None and self._projections and not any(p.learnable for p in self._projections):
            # PsyNeuLink 0.21 refuses targets for a composition of which nothing learns (measured)
            raise AutodiffCompositionError(f"{self.name!r}: targets were given, but no projection of it learns "
                                           "(every one is learnable=False), so no target can be used")
        #: Adam's moments and step count, kept across learn() calls as PsyNeuLink keeps its optimizer
        self.optimizer_state = OptimizerState()

    def _training_spec(self) -> TrainingSpec:
        return TrainingSpec(self.loss_spec.value, self.optimizer_type, self.default_rate(),
                            self.weight_decay, self.disable_learning)

    def _trained_outputs(self, io: IO, targets: Mapping) -> list[str]:
        """The samples trained on external targets (given to learn())."""
        from mdfx.composition.targets import external_samples

        return [s.name for s in external_samples(self)]

    def _shown_outputs(self, io: IO, trained: list[str]) -> list[str]:
        """The nodes whose values make ``results``: the OUTPUT nodes (not those given as targets)."""
        internal = {n.name for n in self._internal_targets()}
        return [n for n in io.outputs if n not in internal]

    def _internal_pairs(self) -> list[tuple[Any, Any]]:
        from mdfx.composition.targets import internal_pairs

        return internal_pairs(self)

    def _internal_targets(self) -> list[Any]:
        from mdfx.composition.targets import internal_target_nodes

        return internal_target_nodes(self)

    def _build_pytorch_representation(self, learning_rate: object = None, context: object = None) -> Any:
        """Resolve every projection's learning rate as learn() would with no learning_rate given;
        warns (UserWarning) when no projection learns, as PsyNeuLink 0.21. ``learning_rate`` (not None) replaces
        the composition's ``learning_rate`` first, as in PsyNeuLink: later learn() calls without
        a rate go back to it. ``context``: as learn()'s."""
        from mdfx.composition.learning_session import projection_rates
        from mdfx.composition.pytorch_representation import PytorchRepresentation
        from mdfx.converters.torch import loss_rule

        self.loss_function = loss_rule(self.loss_spec.value)
        if learning_rate is not None:
            self.learning_rate = learning_rate

        if not any(p.learnable for p in self._projections):
            # PsyNeuLink 0.21 warns here (learn() then refuses): nothing has a parameter to train
            warnings.warn(f"{self.name!r}: no projection learns (none, or every one learnable=False), so "
                          "there is nothing for PyTorch to train; learn() will refuse", UserWarning, stacklevel=2)
            for nested in self._flattened:
                if not nested._projections:
                    warnings.warn(f"{nested.name!r}, nested in {self.name!r}, has no projections, so none "
                                  "of its parameters can learn", UserWarning, stacklevel=2)
            if self.pytorch_representation is None:
                self.pytorch_representation = PytorchRepresentation(self, {}, [])
            return self.pytorch_representation
        # PsyNeuLink makes the TARGET and LOSS nodes here (they show in ``nodes`` from now on)
        self.target_input_mechanisms  # noqa: B018
        rates, frozen = projection_rates(self, None)
        if self.pytorch_representation is None:
            self.pytorch_representation = PytorchRepresentation(self, rates, frozen)
        else:
            self.pytorch_representation.update(rates, frozen)
        return self.pytorch_representation

    @property
    def target_input_mechanisms(self) -> list[Any]:
        """The TARGET nodes of the samples with external targets (made when first needed, as
        PsyNeuLink makes them)."""
        from mdfx.composition.targets import resolve

        return _unique(lm.target.owner for lm in resolve(self) if isinstance(lm.target.owner, TargetMechanism))

    @property
    def targets(self) -> list[Any] | None:
        """The sample-target pairs given to the constructor: (sample, target) tuples and
        LossMechanisms, in order; None when none were given."""
        return None if self._target_pairs is None else list(self._target_pairs)

    @property
    def loss_mechanisms(self) -> list[Any]:
        """One LossMechanism (``LOSS for <sample>``) per sample-target pair, in the order given."""
        from mdfx.composition.targets import resolve

        return resolve(self)

    @property
    def target_mechanisms(self) -> list[Any]:
        """The nodes whose values are targets (TARGET nodes and internal targets), in the pairs' order."""
        return _unique(lm.target.owner for lm in self.loss_mechanisms)

    @property
    def target_internal_mechanisms(self) -> list[Any]:
        """The nodes given as internal targets (their values are the targets of their samples)."""
        from mdfx.composition.targets import internal_pairs

        return _unique(t for _, t in internal_pairs(self))

    @property
    def sample_mechanisms(self) -> list[Any]:
        """The nodes trained towards a target, in the order of the pairs."""
        return _unique(lm.sample.owner for lm in self.loss_mechanisms)

    @property
    def _samples_and_targets(self) -> Any:
        """PsyNeuLink's record of the pairs: ``sample_mechs``, ``target_mechs`` and ``loss_mechs``."""
        from types import SimpleNamespace

        return SimpleNamespace(sample_mechs=self.sample_mechanisms, target_mechs=self.target_mechanisms,
                               loss_mechs=self.loss_mechanisms)

    def _get_targets_dict(self) -> dict[Any, Any]:
        """Each target node and the OutputPort its value is read from."""
        return {t: t.output_port for t in self.target_mechanisms}

    def _get_target_mechs(self, scope: object = None, execution_mode: object = None) -> list[Any]:
        """PsyNeuLink's helper: TARGET nodes (``scope=pnl.INPUT``), internal targets
        (``pnl.INTERNAL``) or both (None). ``execution_mode`` is accepted (every mode agrees)."""
        from mdfx.composition.keywords import INPUT, INTERNAL

        if scope is None:
            return self.target_mechanisms
        if scope in (INPUT, "INPUT"):
            return self.target_input_mechanisms
        if scope == INTERNAL:
            return self.target_internal_mechanisms
        raise ValueError(f"{self.name!r}._get_target_mechs(scope={scope!r}): expected pnl.INPUT, pnl.INTERNAL or None")

    def infer_backpropagation_learning_pathways(self, execution_mode: ExecutionMode = ExecutionMode.PyTorch
                                                ) -> list[Any]:
        """One learning Pathway per sample: the mechanisms it depends on, in order, and the
        projections between them; makes the TARGET nodes. ``execution_mode`` is accepted for
        PsyNeuLink compatibility (every mode learns the same network)."""
        from mdfx.composition.learning_pathway import Pathway

        self._refuse_stray_losses(CompositionError if execution_mode is ExecutionMode.Python
                                  else AutodiffCompositionError)
        pathways = []
        for loss in self.loss_mechanisms:
            upstream = {id(loss.sample.owner)}
            for p in reversed(self._projections_in_order()):
                if id(p.receiver) in upstream:
                    upstream.add(id(p.sender))
            items = [n for n in self._nodes if id(n) in upstream]
            projs = [p for p in self._projections if id(p.receiver) in upstream]
            pathway = Pathway([*items, *projs])
            pathway.learning_components = {"TARGET_MECHANISM": loss.target.owner}
            pathways.append(pathway)
        return pathways

    def _projections_in_order(self) -> list[Any]:
        order = {id(n): i for i, n in enumerate(self._net_order())}
        return sorted(self._projections, key=lambda p: order.get(id(p.receiver), 0))

    def _net_order(self) -> list[Any]:
        """Mechanisms in execution (topological) order."""
        names = [n.name for n in self._graph().mechanisms.nodes]
        return [self._mechanism(n) for n in names]

    def get_optimizer_param_value(self, name: str) -> Any:
        """The optimizer's ``learning_rate`` (the composition's default rate, False when it is
        False) or ``weight_decay``."""
        from mdfx.composition.learning_rates import split

        rate = False if split(self.learning_rate)[0] is False else self.default_rate()
        values = {"learning_rate": rate, "lr": rate, "weight_decay": self.weight_decay}
        if name not in values:
            raise KeyError(f"{name!r} is not an optimizer parameter of {self.name!r} ({', '.join(values)})")
        return values[name]

    def set_weights(self, projection: Any, weights: object, context: object = None) -> None:
        """Give ``projection`` (of this composition or one nested in it) the matrix ``weights``,
        of shape (sender size, receiver size); ``context`` is accepted for PsyNeuLink
        compatibility (an assigned matrix is every composition's, see MappingProjection)."""
        if not any(p is projection for p in self._projections):
            raise CompositionError(f"{self.name!r}.set_weights(): {getattr(projection, 'name', projection)!r} "
                                   f"is not a projection of {self.name!r} or of a composition nested in it")
        value = np.asarray(weights, dtype=np.float64)
        shape = (projection.sender.size, projection.receiver.size)
        if value.shape != shape:
            raise DataError(f"{self.name!r}.set_weights(): weights for {projection.name!r} have shape "
                            f"{value.shape}; its matrix has shape {shape} (sender size, receiver size)")
        projection.matrix = value

    def clear_losses(self, context: object = None) -> None:
        """Forget the recorded minibatch losses (PsyNeuLink's clear_losses)."""
        self.losses.clear()

    def default_rate(self) -> float:
        """The composition's default learning rate as a number (its own, else PsyNeuLink's 0.001)."""
        from mdfx.composition.learning_rates import split

        rate, _ = split(self.learning_rate)
        return float(rate) if _is_number(rate) else self.default_learning_rate

    # --- learning -------------------------------------------------------------------

    def learn(self, inputs: Mapping | None = None, targets: Mapping | None = None,
              num_trials: int | None = None, epochs: int = 1, learning_rate: object = None,
              minibatch_size: int | str = 1, randomize_minibatch: bool = False, patience: int | None = None,
              min_delta: float = 0, call_before_minibatch: Callable | None = None,
              call_after_minibatch: Callable | None = None,
              execution_mode: ExecutionMode = ExecutionMode.PyTorch, report_progress: object = None,
              seed: int | None = None, dtype: str = "float64", randomize_minibatches: bool | None = None,
              context: object = None, synch_results_with_torch: object = None,
              batched_results: bool = False, results: str = "all", optimizations_per_minibatch: int = 1,
              execute_in_additional_optimizations: Mapping | None = None,
              synch_projection_matrices_with_torch: object = None, on_nonfinite: str = "raise") -> np.ndarray:
        """Train on ``inputs``/``targets``; return the output of the last trial trained (as PsyNeuLink).

        Besides :meth:`_learn_plain`'s arguments: targets may also be given in
        ``inputs`` as the inputs of the TARGET nodes (``pathway.target``,
        ``target_input_mechanisms``); ``learning_rate`` may be PsyNeuLink's dict
        ``{DEFAULT_LEARNING_RATE: x, projection: rate}``, and each projection's rate
        follows :mod:`mdfx.composition.learning_rates` (``False``/``0`` freezes it for
        this call). ``minibatch_size=TRAINING_SET`` makes every trial one minibatch.
        ``results="all"`` (PsyNeuLink's behaviour) appends every trial of
        every epoch to ``results``; ``results="last_epoch"`` keeps only the last
        epoch's (bounded memory). ``context`` is accepted for PsyNeuLink
        compatibility: mdfx has one execution context. ``synch_results_with_torch``
        may be None or ``"run"`` (mdfx always synchronises results at the end of the
        call); so may ``synch_projection_matrices_with_torch`` (the trained matrices are written
        back into the projections once, at the end). ``batched_results=True`` appends one entry per minibatch to ``results``
        (its trials' outputs stacked), as PsyNeuLink. ``optimizations_per_minibatch=k``
        steps the optimizer k times on each minibatch (of one trial: ``minibatch_size`` and
        ``k`` cannot both exceed 1), each step's outputs going to ``results``;
        ``execute_in_additional_optimizations`` ({node: None, ALL or steps}) is checked and
        changes no number: mdfx computes every node in every step.
        ``on_nonfinite`` says what a loss that became NaN or infinite does: ``"raise"``
        (mdfx's default) raises :class:`~mdfx.errors.DataError` naming the epoch and
        minibatch, with the weights and optimizer state rolled back to those before the
        call; ``"keep"`` (PsyNeuLink's behaviour) keeps the NaN weights and losses.
        """
        from mdfx.composition.learn_options import LearnOptions
        from mdfx.composition.learning_session import learn
        from mdfx.composition.targets import resolved_once

        options = LearnOptions.of(locals())  # every argument above, once
        check_mode(execution_mode, f"{self.name!r}.learn()")
        self._refuse_stray_losses(AutodiffCompositionError)
        plain = [c for c in self._flattened if not isinstance(c, AutodiffComposition)]
        if plain:  # PsyNeuLink 0.21 refuses this (AutodiffCompositionError, measured in its suite)
            raise AutodiffCompositionError(f"{self.name!r}.learn(): the nested composition(s) "
                                           f"{', '.join(repr(c.name) for c in plain)} are not AutodiffCompositions; "
                                           "only nested AutodiffCompositions learn")
        with resolved_once(self):
            return learn(self, options)

    def _learn_plain(self, options: LearnOptions) -> np.ndarray:
        """Train on ``inputs``/``targets``; return the output of the last trial trained (as PsyNeuLink).

        ``inputs`` is ``{input node: trials}`` with ``targets={output node: trials}``, or
        PsyNeuLink's dict form ``{"inputs": ..., "targets": ..., "epochs": ...}``.
        Shuffled orders (``randomize_minibatch``, or PsyNeuLink 0.21's spelling
        ``randomize_minibatches``) come from numpy's global RNG as in PsyNeuLink, or
        from ``seed`` (mdfx) when given. ``dtype`` ("float64" or "float32") picks the
        precision of the torch and LLVM backends. The outputs of the last epoch's
        trials (computed before each minibatch's update) are appended to ``results`` (every
        epoch's with ``results="all"``). ``options.learning_rate`` is the call's float rate here
        (the session resolved PsyNeuLink's forms), ``options.param_learning_rates`` the others.
        """
        o = options
        inputs, targets, num_trials, epochs = o.inputs, o.targets, o.num_trials, o.epochs
        learning_rate, minibatch_size, randomize_minibatch = o.learning_rate, o.minibatch_size, o.randomize_minibatch
        patience, min_delta, seed, dtype = o.patience, o.min_delta, o.seed, o.dtype
        call_before_minibatch, call_after_minibatch = o.call_before_minibatch, o.call_after_minibatch
        execution_mode, report_progress = o.execution_mode, o.report_progress
        randomize_minibatches, param_learning_rates = o.randomize_minibatches, o.param_learning_rates
        keep_all_epochs, optimizations_per_minibatch = o.results == "all", o.optimizations_per_minibatch
        batched_results = bool(o.batched_results)
        if randomize_minibatches is not None:
            randomize_minibatch = randomize_minibatches
        if inputs is not None and not isinstance(inputs, Mapping):
            raise DataError(f"{self.name!r}.learn(): inputs must be a dict {{input node: trials}} or "
                            f"{{'inputs': ..., 'targets': ...}}, got {type(inputs).__name__}")
        inputs = dict(inputs or {})
        if "inputs" in inputs:
            if not isinstance(inputs["inputs"], Mapping):
                raise DataError(f"{self.name!r}.learn(): inputs['inputs'] must be a dict {{input node: trials}}, "
                                f"got {type(inputs['inputs']).__name__}")
            targets = inputs.get("targets", targets)
            epochs = inputs.get("epochs", epochs)
            inputs = dict(inputs["inputs"])
        # internal targets: sample -> the node whose value is its target (lowered as graph tensors)
        internal = {s.name: t.name for s, t in self._internal_pairs()}
        if targets is None and not internal:
            raise DataError(f"{self.name!r}.learn(): no targets given (targets={{output node: trials}})")
        graph = self._graph()
        io = self._io_of(graph)
        trained = self._trained_outputs(io, targets if targets is not None else {})
        shown = self._shown_outputs(io, trained)
        x = parse_inputs(io, inputs, num_trials)
        t = parse_inputs(io, targets, num_trials, nodes=trained, what="target") if trained else {}
        nx = len(next(iter(x.values())))
        nt = len(next(iter(t.values()))) if t else nx
        if nx != nt and 1 in (nx, nt):
            # PsyNeuLink 0.21 (measured): one trial of inputs or of targets serves every trial
            x = {k: np.repeat(v, nt, axis=0) for k, v in x.items()} if nx == 1 else x
            t = {k: np.repeat(v, nx, axis=0) for k, v in t.items()} if nt == 1 else t
        trials = len(next(iter(x.values())))
        if t and trials != len(next(iter(t.values()))):
            raise DataError(f"{trials} input trials but {len(next(iter(t.values())))} target trials")
        if validate.whole(minibatch_size, "minibatch_size", 1) > trials:  # PsyNeuLink's message
            raise DataError(f"minibatch_size ({minibatch_size}) cannot be greater than the number of "
                            f"trials ({trials})")
        repeats = validate.whole(optimizations_per_minibatch, "optimizations_per_minibatch", 1)
        if repeats > 1 and minibatch_size > 1:
            raise CompositionError(f"{self.name!r}.learn(): optimizations_per_minibatch={repeats} and "
                                   f"minibatch_size={minibatch_size}; one of them must be 1")
        # The one shared check (mdfx.schema.validate): integer ranges in Python ints, the
        # trial-order table within mdfx.limits, a finite non-negative learning rate and decay.
        validate.learn_options(trials=trials * repeats, epochs=epochs, minibatch_size=minibatch_size,
                               learning_rate=self.learning_rate if learning_rate is None else learning_rate,
                               weight_decay=self.weight_decay, patience=patience, min_delta=min_delta)
        if repeats > 1:
            # every trial k times in a row; LearnSpec.orders keeps the copies together
            x = {k: np.repeat(v, repeats, axis=0) for k, v in x.items()}
            t = {k: np.repeat(v, repeats, axis=0) for k, v in t.items()}
            trials *= repeats
        if self.disable_learning:
            _, values = modes.run(graph, x, ExecutionMode.Python)  # every node's value: shown may be any
            self.results.extend(pnl_value([values[n][i].copy() for n in shown]) for i in range(trials))
            return pnl_value(list(self.results[-1]))
        if self.optimizer_state.optimizer != self.optimizer_type:
            # A different optimizer starts from scratch, as a new torch optimizer would.
            self.optimizer_state = OptimizerState(optimizer=self.optimizer_type)
        spec = LearnSpec(
            inputs=x, targets=t, epochs=int(epochs), minibatch_size=int(minibatch_size),
            randomize_minibatch=bool(randomize_minibatch), seed=seed,
            learning_rate=self.default_rate() if learning_rate is None else float(learning_rate),
            loss=self.loss_spec.value, optimizer=self.optimizer_type, weight_decay=self.weight_decay,
            patience=patience, min_delta=float(min_delta),
            call_before_minibatch=call_before_minibatch, dtype=dtype, optimizer_state=self.optimizer_state,
            param_learning_rates=dict(param_learning_rates or {}), keep_epoch_outputs=keep_all_epochs,
            optimizations_per_minibatch=repeats,
            target_tensors=internal,
            # the OUTPUT nodes that do not learn (for results), the internal targets (for the losses' values)
            # (a Composition's learning pathways: every mechanism, whose value PsyNeuLink keeps)
            recorded=[n for n in dict.fromkeys([*shown, *internal.values(), *self._recorded_nodes()])
                      if n not in trained and n not in internal],
        )
        if self._rate_scale != 1.0:
            spec.learning_rate *= self._rate_scale
            spec.param_learning_rates = {k: v * self._rate_scale for k, v in spec.param_learning_rates.items()}
        if call_after_minibatch is not None:
            spec.on_minibatch = _after_minibatch_hook(call_after_minibatch, -(-trials // minibatch_size))
        mode = execution_mode
        logging = graph.mechanisms is not None and self._logging_hooks(graph, spec)
        if logging and mode is not ExecutionMode.Python:
            # Logged values are read between minibatches, which only the numpy
            # backend exposes; it gives the same numbers (tested to 1e-10).
            mode = ExecutionMode.Python
        bar = _progress(report_progress, spec.epochs, self.name)
        if bar is not None:
            spec.on_epoch = lambda epoch, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.6g}"))
        # A callback that raises, a diverging run or Ctrl-C mid-learn() leaves every mode in
        # the same state: the weights and the optimizer state of before the call. A call of
        # one minibatch without callbacks updates all or nothing, so it skips the copy (which
        # would cost as much as the step on a large net).
        guarded = (spec.call_before_minibatch or spec.on_minibatch or spec.on_epoch or spec.on_values
                   or spec.epochs * -(-trials // spec.minibatch_size) > 1)
        weights = {k: v.copy() for k, v in graph.learnable().items()} if guarded else {}
        optimizer_state = copy.deepcopy(self.optimizer_state) if guarded else None
        try:
            result = modes.train(graph, spec, mode, self.device)
            if options.on_nonfinite == "raise":
                check_finite_losses(self.name, result.losses, -(-trials // spec.minibatch_size), bool(guarded))
        except BaseException:
            if guarded:
                for k, v in graph.learnable().items():
                    v[...] = weights[k]
                self.optimizer_state = optimizer_state
            raise
        finally:
            if bar is not None:
                bar.close()
        self.last_learn = result
        if self._pairs_targets:
            from mdfx.composition.targets import record_loss_values

            record_loss_values(self, spec, result)
        if self._pathway_objectives():
            from mdfx.composition.targets import record_objective_values

            record_objective_values(self, spec, result)
        self.losses.extend(result.losses)
        orders = spec.orders()
        order = orders[result.epochs_run - 1]

        def rows(outputs: list[dict[str, np.ndarray]], order: np.ndarray) -> list[Any]:
            # one row per trial, epoch after epoch, each in its epoch's order: views into one
            # fresh array per node, gathered in one call (not copied trial by trial, nor per epoch)
            if not shown:  # every OUTPUT node is another's target: empty rows, one per trial
                return [[] for _ in range(np.size(order))]
            which = np.arange(len(outputs))[:, None]
            per_node = [_every_epoch(outputs, n)[which, order].reshape(-1, *outputs[0][n].shape[1:])
                        for n in shown]
            if len({a.shape for a in per_node}) == 1:
                # each trial's entry a 2-D array, as PsyNeuLink's: views into one (trials, nodes, units) array
                return list(np.stack(per_node, axis=1))
            return [pnl_value(list(r)) for r in zip(*per_node, strict=True)]

        final = rows([result.last_outputs], orders[result.epochs_run - 1:result.epochs_run])
        # PsyNeuLink keeps every epoch's trials
        earlier = result.epoch_outputs[:-1]
        epochs = _EpochOrders(earlier, orders, result.last_outputs, order)
        self._record_minibatches(epochs, t, trained, spec.minibatch_size)
        # PsyNeuLink 0.21 (measured): batched, one (trials, outputs, units) entry per minibatch
        if batched_results:
            batches = [_stack([[outputs[n][i] for n in shown] for i in chunk])
                       for outputs, order_ in epochs for chunk in minibatches(order_, spec.minibatch_size)]
            self.results.extend(batches)
            self.learning_results = batches[len(batches) - (len(final) // repeats) // spec.minibatch_size:]
            return batches[-1]
        if earlier:
            self.results.extend(rows(earlier, orders[:len(earlier)]))
        self.results.extend(final)
        # PsyNeuLink 0.21 (measured): one entry per full minibatch of distinct trials, the
        # last results (with k optimizations per trial, the last steps')
        n = (len(final) // repeats) // spec.minibatch_size
        self.learning_results = final[len(final) - n:]
        return pnl_value(list(final[-1]))

    def _record_minibatches(self, epochs: Iterable[tuple[dict, np.ndarray]], targets: dict, trained: list[str],
                            size: int) -> None:
        """Keep what ``torch_sample_values`` / ``torch_targets`` are made of. They are built when
        read: one array per minibatch costs more than a whole small learn() (XOR, 500 epochs:
        2000 arrays, ~14 ms against ~1 ms), and few scripts read them."""
        self._pending_minibatches.append((epochs, targets, trained, size))

    def _flush_minibatches(self) -> None:
        for epochs, targets, trained, size in self._pending_minibatches:
            for outputs, order in epochs:
                for chunk in minibatches(order, size):
                    self._torch_sample_values.append(_stack([[outputs[n][i] for n in trained] for i in chunk], (1,)))
                    self._torch_targets.append(_stack([[targets[n][i] for n in trained] for i in chunk], (1,)))
        self._pending_minibatches.clear()

    @property
    def torch_sample_values(self) -> list[np.ndarray]:
        """Per minibatch, across learn() calls, its trials' outputs: (trials, 1, outputs, units)."""
        self._flush_minibatches()
        return self._torch_sample_values

    @torch_sample_values.setter
    def torch_sample_values(self, value: list[np.ndarray]) -> None:
        self._flush_minibatches()
        self._torch_sample_values = list(value)

    @property
    def torch_targets(self) -> list[np.ndarray]:
        """Per minibatch, across learn() calls, its trials' targets: (trials, 1, outputs, units)."""
        self._flush_minibatches()
        return self._torch_targets

    @torch_targets.setter
    def torch_targets(self, value: list[np.ndarray]) -> None:
        self._flush_minibatches()
        self._torch_targets = list(value)

    @property
    def torch_losses(self) -> list[list[float]]:
        """PsyNeuLink 0.21's name for the per-minibatch losses (each wrapped in a list)."""
        return [[loss] for loss in self.losses]

    def _logging_hooks(self, graph: Graph, spec: LearnSpec) -> bool:
        """Wire ``log.set_log_conditions('matrix'|'value')`` to per-minibatch records."""
        projs = [p for p in self._projections if "matrix" in p.log.logged]
        mechs = [m for m in self._mechanisms() if "value" in m.log.logged]
        if not projs and not mechs:
            return False

        tensors = graph.mechanisms.tensors
        context = self.default_execution_id
        # PsyNeuLink's log (nparray_dictionary) holds the matrix each minibatch used, before its update
        used = {p.name: np.array(graph.params[p.name].value, copy=True) for p in projs}

        def record(values: dict[str, np.ndarray]) -> None:
            for p in projs:
                p.log.record("matrix", graph.params[p.name].value)
                matrix = used[p.name]
                p.log.record_in(context, {"func_matrix": matrix, "matrix": matrix, "mod_matrix": matrix})
                used[p.name] = np.array(graph.params[p.name].value, copy=True)
            for m in mechs:
                value = values[tensors[m.name]]
                m.log.record("value", value)
                # one (1, 1, size) value per trial of the minibatch, as PsyNeuLink
                rows = np.asarray(value).reshape(len(value), 1, 1, -1)
                m.log.record_in(context, {m.output_ports[0].name: rows, "value": rows})

        spec.on_values = record
        return True

    def _pathway_objectives(self) -> list[ObjectiveMechanism]:
        """The objective nodes of the learning pathways (add_backpropagation_learning_pathway)."""
        return [p.learning_objective for p in self.pathways if getattr(p, "learning_components", None)]

    def _recorded_nodes(self) -> list[str]:
        """Nodes whose values learn() returns beside the outputs: every mechanism for the engine
        of a Composition's learning pathways (it sets their values after learn())."""
        if not self._pathway_objectives():
            return []
        return [m.name for m in self._mechanisms() if not isinstance(m, TargetMechanism)]

    # --- weights to and from torch tensors ---------------------------------------------

    def copy_torch_param_to_projection_matrix(self, projection: object, torch_param: object,
                                              torch_module: object = None, torch_slice: object = None,
                                              validate: bool = True, context: object = None) -> np.ndarray:
        """Set ``projection``'s matrix (the projection or its name) to a torch weight, transposed.

        ``torch_param`` is a torch Parameter or Tensor, or the state_dict name or parameter
        index of ``torch_module``; ``torch_slice`` takes rows of it. Returns the new matrix.
        The arguments and shapes are always checked (``validate`` is accepted for PsyNeuLink
        compatibility), ``context`` is ignored: mdfx has one execution context.
        """
        from mdfx.composition.torch_exchange import torch_to_matrix

        return torch_to_matrix(self, projection, torch_param, torch_module, torch_slice)

    def copy_projection_matrix_to_torch_param(self, projection: object, torch_param: object,
                                              torch_module: object = None, torch_slice: object = None,
                                              validate: bool = True, context: object = None) -> Any:
        """Write ``projection``'s matrix, transposed, into a torch tensor in place (the tensor
        given as for :meth:`copy_torch_param_to_projection_matrix`); returns it, detached."""
        from mdfx.composition.torch_exchange import matrix_to_torch

        return matrix_to_torch(self, projection, torch_param, torch_module, torch_slice)

    # --- weights as a torch state_dict (PsyNeuLink's save/load) ---------------------

    def save(self, path: str | Path | None = None, directory: str | None = None,
             filename: str | None = None) -> Path:
        """Write every projection's matrix as a torch state_dict keyed by projection name."""
        from mdfx.schema.state_dict import save_state_dict

        return save_state_dict(self._graph(), _weights_path(self, path, directory, filename))

    def load(self, path: str | Path | None = None, directory: str | None = None,
             filename: str | None = None) -> None:
        """Restore matrices saved by :meth:`save` (``torch.load(weights_only=True)``)."""
        from mdfx.schema.state_dict import load_state_dict

        # the graph's params are the projections' arrays: loading into it loads into them
        load_state_dict(self._graph(), _weights_path(self, path, directory, filename))


def _every_epoch(outputs: Sequence[dict[str, np.ndarray]], name: str) -> np.ndarray:
    """Tensor ``name``'s outputs of every epoch, (epochs, trials, *features): the backend's own
    array when it kept one (LLVMRun), else stacked from the per-epoch dicts."""
    if isinstance(outputs, EpochOutputs):
        return outputs.stacked(name)
    return np.stack([o[name] for o in outputs])


class _EpochOrders:
    """(outputs, trial order) of each epoch run, paired when iterated, not per learn() call:
    most scripts never read what is built from them (torch_sample_values)."""

    def __init__(self, earlier: Sequence[dict[str, np.ndarray]], orders: np.ndarray,
                 last: dict[str, np.ndarray], order: np.ndarray) -> None:
        self.earlier, self.orders, self.last, self.order = earlier, orders, last, order

    def __iter__(self) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        yield from zip(self.earlier, self.orders[:len(self.earlier)], strict=True)
        yield self.last, self.order


def _stack(vectors: list[list[np.ndarray]], middle: tuple[int, ...] = ()) -> np.ndarray:
    """Per trial, per output, a vector: one array (trials, *middle, outputs, units), or, when the
    outputs differ in size, an object array (trials, *middle, outputs) of the vectors."""
    if len({np.shape(v) for row in vectors for v in row}) == 1:
        arr = np.array(vectors)
        return arr.reshape(arr.shape[0], *middle, *arr.shape[1:])
    out = np.empty((len(vectors), len(vectors[0])), dtype=object)
    for i, row in enumerate(vectors):
        for j, v in enumerate(row):
            out[i, j] = v
    return out.reshape(len(vectors), *middle, len(vectors[0]))


def as_loss(loss_spec: object) -> Loss:
    """A Loss member from a member, its name, or a torch.nn loss instance (``torch.nn.MSELoss()``)."""
    if isinstance(loss_spec, Loss):
        return loss_spec
    if isinstance(loss_spec, str):
        if loss_spec.upper() not in Loss.__members__:
            raise ParameterError(f"loss_spec {loss_spec!r} is not a Loss member ({', '.join(Loss.__members__)})")
        return Loss[loss_spec.upper()]
    cls = type(loss_spec).__name__
    by_torch = {"MSELoss": Loss.MSE, "L1Loss": Loss.L1, "CrossEntropyLoss": Loss.CROSS_ENTROPY,
                "BCELoss": Loss.BINARY_CROSS_ENTROPY, "KLDivLoss": Loss.KL_DIV, "NLLLoss": Loss.NLL,
                "PoissonNLLLoss": Loss.POISSON_NLL, "SoftMarginLoss": Loss.SOFT_MARGIN}
    if cls in by_torch and type(loss_spec).__module__.startswith("torch.nn"):
        reduction = getattr(loss_spec, "reduction", "mean")
        if cls == "MSELoss" and reduction == "sum":
            return Loss.SSE
        if cls == "SoftMarginLoss" and reduction == "sum":
            return Loss.SOFT_MARGIN_SUM
        want = {Loss.MSE: "mean", Loss.L1: "sum", Loss.CROSS_ENTROPY: "mean", Loss.BINARY_CROSS_ENTROPY: "mean",
                Loss.KL_DIV: "sum", Loss.NLL: "sum", Loss.POISSON_NLL: "sum",
                Loss.SOFT_MARGIN: "mean"}[by_torch[cls]]
        if reduction == want:
            return by_torch[cls]
        raise UnsupportedError(f"loss_spec {loss_spec!r}: reduction={reduction!r}; mdfx's {by_torch[cls].name} "
                               f"uses reduction={want!r}")
    raise UnsupportedError(f"loss_spec {loss_spec!r} is not a Loss member, a Loss name or a torch.nn loss "
                           f"mdfx knows ({', '.join(by_torch)})")


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
    if filename is None:
        from mdfx.files import safe_filename

        # the composition's name may come from a file: it must not pick the folder
        filename = f"{safe_filename(comp.name)}_matrix_wts.pnl"
    return Path(directory or ".") / filename


def _progress(report_progress: object, epochs: int, name: str) -> Any:
    """A tqdm bar over epochs when progress is asked for (ReportProgress.ON, True or 'on')."""
    if not report_progress or str(report_progress).upper().endswith("OFF"):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=epochs, desc=f"learn {name}", unit="epoch", file=sys.stderr)


def _unique(items: Any) -> list[Any]:
    """``items`` without repeats (by identity), in order."""
    out: list[Any] = []
    for item in items:
        if not any(item is o for o in out):
            out.append(item)
    return out
