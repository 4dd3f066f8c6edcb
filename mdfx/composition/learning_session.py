"""One learn() call of a Composition or AutodiffComposition, around the training engine.

What PsyNeuLink's learn() accepts on top of the engine's arguments is handled
here: targets given as the inputs of TARGET nodes (or keyed by an output
port), per-projection learning rates and freezing
(:mod:`mdfx.composition.learning_rates`), and the results bookkeeping. The
training itself is ``AutodiffComposition._learn_plain`` (numpy, torch or LLVM).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from mdfx.composition.enums import ExecutionMode, NodeRole
from mdfx.composition.keywords import TRAINING_SET
from mdfx.composition.learn_options import LearnOptions
from mdfx.composition.learning_pathway import TargetMechanism
from mdfx.composition.learning_rates import check_keys, check_rate, resolve, split
from mdfx.composition.pytorch_representation import PytorchRepresentation
from mdfx.errors import CompositionError, DataError, UnsupportedError

if TYPE_CHECKING:
    from mdfx.composition.autodiff import AutodiffComposition
    from mdfx.composition.composition import Composition

RESULTS_MODES = ("all", "last_epoch")


def learn(comp: AutodiffComposition, options: LearnOptions) -> np.ndarray:
    """AutodiffComposition.learn() (see its docstring): PsyNeuLink's argument forms, then the engine.

    ``options`` is this call's: the resolved inputs, targets and rates are written into it.

    ``context`` names PsyNeuLink's execution context; mdfx has one, so any value means it.
    """
    o = options
    inputs, targets, num_trials, epochs, learning_rate = o.inputs, o.targets, o.num_trials, o.epochs, o.learning_rate
    minibatch_size, execution_mode, results = o.minibatch_size, o.execution_mode, o.results
    synch_results_with_torch = o.synch_results_with_torch
    synch_projection_matrices_with_torch = o.synch_projection_matrices_with_torch
    execute_in_additional_optimizations = o.execute_in_additional_optimizations
    # PsyNeuLink 0.21 gives the same results for 'run', 'minibatch' and 'trial' (measured; its
    # 'epoch' raises): mdfx fills results at the end of learn() for all three
    if synch_results_with_torch not in (None, "run", "minibatch", "trial"):
        raise UnsupportedError(f"{comp.name!r}.learn(synch_results_with_torch={synch_results_with_torch!r}): "
                               "expected None, 'run', 'minibatch' or 'trial'")
    # the matrices a callback reads are the current ones (PsyNeuLink's 'minibatch'); the
    # projections hold the trained ones after learn() either way
    if synch_projection_matrices_with_torch not in (None, "run", "minibatch"):
        raise UnsupportedError(f"{comp.name!r}.learn(synch_projection_matrices_with_torch="
                               f"{synch_projection_matrices_with_torch!r}): expected None, 'run' or 'minibatch'")
    if results not in RESULTS_MODES:
        raise ValueError(f"{comp.name!r}.learn(results={results!r}): expected one of {RESULTS_MODES}")
    check_rate(learning_rate, f"{comp.name!r}.learn(): learning_rate", CompositionError)
    check_additional_optimizations(comp, execute_in_additional_optimizations)
    if inspect.isgeneratorfunction(inputs):
        inputs = inputs()
    if _is_generator(inputs):
        # PsyNeuLink trains each dict a generator yields in turn, as a learn() of its own with
        # its own "epochs"; the first dict's trial count (or num_trials) holds for every dict,
        # a shorter one cycling and a longer one cut (measured, facts.md)
        value = None
        for chunk in inputs:
            if not isinstance(chunk, Mapping):
                raise DataError(f"{comp.name!r}.learn(): the inputs generator yielded a "
                                f"{type(chunk).__name__}, not a dict")
            before = len(comp.results)
            value = learn(comp, replace(o, inputs=dict(chunk), num_trials=num_trials,
                                        epochs=chunk.get("epochs", epochs)))
            if num_trials is None:
                run = comp.last_learn
                num_trials = len(next(iter(run.last_outputs.values()))) if run is not None \
                    else len(comp.results) - before
        if value is None:
            raise DataError(f"{comp.name!r}.learn(): the inputs generator gave no trials")
        return value
    if callable(inputs):
        inputs, num_trials = expand_inputs(comp, inputs, num_trials)
    if inputs is not None and not isinstance(inputs, Mapping):
        raise DataError(f"{comp.name!r}.learn(): inputs must be a dict {{node: trials}}, got {type(inputs).__name__}")
    inputs = dict(inputs or {})
    if "inputs" in inputs:  # PsyNeuLink's {"inputs": ..., "targets": ..., "epochs": ...}
        targets = inputs.get("targets", targets)
        epochs = inputs.get("epochs", epochs)
        if not isinstance(inputs["inputs"], Mapping):
            raise DataError(f"{comp.name!r}.learn(): inputs['inputs'] must be a dict {{node: trials}}, got "
                            f"{type(inputs['inputs']).__name__}")
        inputs = dict(inputs["inputs"])
    if targets is not None and not isinstance(targets, Mapping):
        raise DataError(f"{comp.name!r}.learn(): targets must be a dict {{output node: trials}}, got "
                        f"{type(targets).__name__}")
    comp.target_input_mechanisms  # noqa: B018  (makes the TARGET nodes learn() inputs may name)
    x, t = split_targets(comp, inputs, targets)
    fill_default_inputs(comp, x)
    if isinstance(minibatch_size, str) and minibatch_size == TRAINING_SET:
        # PsyNeuLink's keyword: the whole training set is one minibatch
        minibatch_size = num_trials or max(len(np.atleast_2d(np.asarray(v, dtype=float))) for v in t.values())
    rates, frozen = projection_rates(comp, learning_rate)
    learn_default, _ = split(learning_rate)
    global_lr = float(learn_default) if _number(learn_default) else comp.default_rate()
    if comp.pytorch_representation is None:
        if execution_mode is not ExecutionMode.Python:  # PsyNeuLink builds none to learn in Python mode
            comp.pytorch_representation = PytorchRepresentation(comp, rates, frozen)
    else:
        comp.pytorch_representation.update(rates, frozen)
    saved = [(p, p.learnable) for p in frozen]
    for p in frozen:
        p.learnable = False
    try:
        # the session owns ``options`` (learn() made it for this call): the resolved values go in
        # place, not into a copy (dataclasses.replace of 24 fields costs microseconds a call)
        o.inputs, o.targets, o.num_trials, o.epochs, o.minibatch_size = x, t, num_trials, epochs, minibatch_size
        o.learning_rate = global_lr
        o.param_learning_rates = {n: r for n, r in rates.items() if r != global_lr}
        value = comp._learn_plain(o)
    finally:
        for p, flag in saved:
            p.learnable = flag
    return value


def check_additional_optimizations(comp: Composition, spec: Mapping | None) -> None:
    """``execute_in_additional_optimizations``: {node of comp: None, ALL or the steps (ints)}.

    PsyNeuLink uses it to choose which nodes' Python values are refreshed in the extra
    optimization steps; mdfx computes every node in every step, so it changes no number."""
    from mdfx.composition.keywords import ALL

    if spec is None:
        return
    if not isinstance(spec, Mapping):
        raise DataError(f"{comp.name!r}.learn(): execute_in_additional_optimizations must be a dict "
                        f"{{node: None, ALL or steps}}, got {type(spec).__name__}")
    for node, when in spec.items():
        if not any(n is node or n.name == node for n in comp._mechanisms()):
            raise DataError(f"{comp.name!r}.learn(): execute_in_additional_optimizations names "
                            f"{getattr(node, 'name', node)!r}, which is not a node of {comp.name!r}")
        ok = when is None or (isinstance(when, str) and when == ALL) or (
            isinstance(when, range | list | tuple | set)
            and all(isinstance(i, int) and not isinstance(i, bool) for i in when))
        if not ok:
            raise DataError(f"{comp.name!r}.learn(): execute_in_additional_optimizations["
                            f"{getattr(node, 'name', node)!r}] = {when!r}; expected None, ALL or optimization steps")


def expand_inputs(comp: Composition, inputs: Any, num_trials: int | None) -> tuple[dict, int | None]:
    """Inputs given as a function, as one dict of stacked trials.

    The function is called with the trial number, 0, 1, ... (``num_trials`` times, or until
    it raises IndexError); each call gives one trial, a dict ``{node: value}`` or
    ``{"inputs": ..., "targets": ...}``. Returns the dict and the ``num_trials`` left to apply.
    """
    chunks: list[dict] = []
    trial = 0
    while num_trials is None or trial < num_trials:
        try:
            chunks.append(dict(inputs(trial)))
        except IndexError:
            if num_trials is not None:
                raise
            break
        trial += 1
    num_trials = None
    if not chunks:
        raise DataError(f"{comp.name!r}.learn(): the inputs function gave no trials")
    merged: dict[str, dict] = {"inputs": {}, "targets": {}}
    for chunk in chunks:
        parts = {"inputs": chunk.get("inputs", {}), "targets": chunk.get("targets", {})} \
            if "inputs" in chunk else {"inputs": chunk, "targets": {}}
        for part, values in parts.items():
            for node, value in values.items():
                # one call of the function is one trial
                rows = np.asarray(value, dtype=np.float64).reshape(1, -1)
                merged[part].setdefault(node, []).extend(rows)
    return {"inputs": merged["inputs"], "targets": merged["targets"]}, num_trials


def _number(value: object) -> bool:
    return value is not None and not isinstance(value, bool)


def _is_generator(value: object) -> bool:
    return hasattr(value, "__next__") and not isinstance(value, Mapping)


def split_targets(comp: Composition, inputs: Mapping, targets: Mapping | None) -> tuple[dict, dict]:
    """Inputs for the network's INPUT nodes, and targets by sample node.

    A key of ``inputs`` that is a TARGET node (object or name) gives targets for its
    sample. ``targets`` is checked against the composition's sample-target pairs
    (:func:`mdfx.composition.targets.learn_targets`); every sample with an external
    target must get targets, in one of the two places (both: they must agree).
    """
    from mdfx.composition.targets import external_samples, learn_targets, same_values

    pairs = getattr(comp, "_pairs_targets", False)
    tnodes = {id(n): n for n in comp._learning_nodes if isinstance(n, TargetMechanism)}
    tnames = {n.name: n for n in tnodes.values()}
    x: dict[Any, Any] = {}
    t: dict[Any, Any] = {}
    for key, value in inputs.items():
        node = tnodes.get(id(key)) or tnames.get(key) if isinstance(key, str | TargetMechanism) else None
        if node is not None:
            t[node.sample] = value
        else:
            x[_input_node(comp, getattr(key, "owner", key))] = value
    if pairs:
        given = learn_targets(comp, targets or {})
    else:
        given = {}
        for key, value in (targets or {}).items():
            node = getattr(key, "owner", key)
            given[getattr(tnodes.get(id(node)), "sample", node)] = value
    twice = []
    for node, value in given.items():
        before = next((v for k, v in t.items() if k is node), None)
        if before is not None:
            # PsyNeuLink accepts the same targets twice (with a warning) and refuses different ones
            if not same_values(before, value):
                raise CompositionError(f"{comp.name!r}.learn(): different targets for {getattr(node, 'name', node)!r} "
                                       "in inputs (for its TARGET node) and in targets")
            twice.append(repr(getattr(node, "name", node)))
            continue
        t[node] = value
    if twice:
        warnings.warn(f"{comp.name!r}.learn(): targets for {', '.join(twice)} are given both in inputs (for their "
                      "TARGET nodes) and in targets; one is enough", UserWarning, stacklevel=3)
    if pairs and (t or targets is not None or comp._internal_pairs()):
        missing = [s.name for s in external_samples(comp) if not any(k is s for k in t)]
        if missing:
            raise CompositionError(f"{comp.name!r}.learn(): no targets for {', '.join(map(repr, missing))}; give "
                                   "them in targets ({sample: trials}) or as the inputs of their TARGET nodes")
    elif not t and not (pairs and comp._internal_pairs()):
        raise DataError(f"{comp.name!r}.learn(): no targets given (targets={{output node: trials}} or the "
                        "inputs of its TARGET nodes)")
    return x, t


def _input_node(comp: Composition, key: Any) -> Any:
    """The node an inputs key stands for: a composition nested in ``comp`` stands for its one
    INPUT node (PsyNeuLink feeds a nested composition's inputs to its INPUT nodes)."""
    if not any(key is c for c in comp._flattened):
        return key
    inputs = comp.get_nodes_by_role(NodeRole.INPUT)
    mine = [n for n in key._nodes if any(n is i for i in inputs)]
    if len(mine) != 1:
        raise DataError(f"{comp.name!r}.learn(): inputs given for nested composition {key.name!r}, which has "
                        f"{len(mine)} INPUT nodes in {comp.name!r} ({', '.join(n.name for n in mine)}); "
                        "give inputs for each of them by node")
    return mine[0]


def fill_default_inputs(comp: Composition, x: dict) -> None:
    """INPUT nodes given no inputs get their default value on every trial (as PsyNeuLink)."""
    if not x:
        return
    given = {getattr(k, "name", k) for k in x}
    trials = max(_trial_count(v) for v in x.values())
    for node in comp.get_nodes_by_role(NodeRole.INPUT):
        if isinstance(node, TargetMechanism) or node.name in given or not hasattr(node, "default_input"):
            continue
        x[node] = np.repeat(node.default_input(), trials, axis=0)


def _trial_count(value: object) -> int:
    """Trials in one node's inputs; an array's first axis is read without converting it
    (a (trials, features) array made into objects cost ~60 µs per trial of 784 floats)."""
    if isinstance(value, np.ndarray):
        return value.shape[0] if value.ndim else 1
    return len(np.atleast_1d(np.asarray(value, dtype=object)))


def projection_rates(comp: AutodiffComposition, learning_rate: object) -> tuple[dict[str, float], list]:
    """Each learnable projection's rate for this learn(), and the projections frozen for it."""
    check_keys(learning_rate, comp._projections, f"{comp.name!r}.learn(): learning_rate")
    for c in [comp, *comp._flattened]:
        # as PsyNeuLink, a nested composition's dict may name any projection of the one learning
        check_keys(c.learning_rate, comp._projections, f"{c.name!r}: learning_rate")
    rates: dict[str, float] = {}
    frozen = []
    for p in comp._projections:
        if not p.learnable:
            continue
        chain = [*comp._owner_chain(p), comp]
        levels = [(c.learning_rate, pathway_rate(c, p)) for c in chain]
        rate = resolve(p, comp.default_learning_rate, levels, learning_rate, comp._learning_mechanism(p))
        if not getattr(chain[0], "enable_learning", True):
            rate = False  # the composition that owns it has learning disabled
        if rate is False:
            frozen.append(p)
        else:
            rates[p.name] = float(rate)
    imported = getattr(comp, "graph", None)  # a GraphComposition: its params, not projections, learn
    if imported is not None and imported.learnable():
        return rates, frozen
    if not rates and not any(m.bias is not None and m.learnable_bias for m in comp._mechanisms()):
        # our own words (PsyNeuLink's text is not copied): what is frozen and how to unfreeze it
        raise CompositionError(
            f"{comp.name!r}.learn(): nothing would learn: every projection of {comp.name!r} (and of the "
            "compositions nested in it) is frozen, by learning_rate=False/0, enable_learning=False or "
            "learnable=False; give at least one projection a learning rate")
    return rates, frozen


def pathway_rate(comp: Composition, projection: Any) -> object:
    """The rate of the (last) learning pathway that contains ``projection``, or None."""
    rate: object = None
    for pathway in comp.pathways:
        if any(i is projection for i in pathway) and pathway.learning_rate is not None:
            rate = pathway.learning_rate
    return rate
