"""One learn() call of a Composition or AutodiffComposition, around the training engine.

What PsyNeuLink's learn() accepts on top of the engine's arguments is handled
here: targets given as the inputs of TARGET nodes (or keyed by an output
port), per-projection learning rates and freezing
(:mod:`mdfx.composition.learning_rates`), and the results bookkeeping. The
training itself is ``AutodiffComposition._learn_plain`` (numpy, torch or LLVM).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mdfx.composition.enums import ExecutionMode
from mdfx.composition.learning_pathway import TargetMechanism
from mdfx.composition.learning_rates import resolve, split
from mdfx.errors import CompositionError, DataError, UnsupportedError

if TYPE_CHECKING:
    from mdfx.composition.autodiff import AutodiffComposition
    from mdfx.composition.composition import Composition

RESULTS_MODES = ("all", "last_epoch")


def learn(comp: AutodiffComposition, inputs: Any, targets: Mapping | None, num_trials: int | None, epochs: int,
          learning_rate: object, minibatch_size: int, randomize_minibatch: bool, patience: int | None,
          min_delta: float, call_before_minibatch: Callable | None, call_after_minibatch: Callable | None,
          execution_mode: ExecutionMode, report_progress: object, seed: int | None, dtype: str,
          randomize_minibatches: bool | None, context: object, synch_results_with_torch: object,
          batched_results: bool, results: str) -> np.ndarray:
    if batched_results:
        raise UnsupportedError(f"{comp.name!r}.learn(batched_results=True): mdfx appends one result per trial; "
                               "batched results are not supported")
    if synch_results_with_torch not in (None, "run"):
        raise UnsupportedError(f"{comp.name!r}.learn(synch_results_with_torch={synch_results_with_torch!r}): "
                               "mdfx synchronises results once, at the end of learn() (None or 'run')")
    if results not in RESULTS_MODES:
        raise ValueError(f"{comp.name!r}.learn(results={results!r}): expected one of {RESULTS_MODES}")
    from mdfx.composition.learning_rates import check_rate

    check_rate(learning_rate, f"{comp.name!r}.learn(): learning_rate")
    if callable(inputs) or _is_generator(inputs):
        raise UnsupportedError(f"{comp.name!r}.learn(): inputs given as a function or generator are not "
                               "supported; give a dict {node: trials}")
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
    x, t = split_targets(comp, inputs, targets)
    rates, frozen = projection_rates(comp, learning_rate)
    learn_default, _ = split(learning_rate)
    global_lr = float(learn_default) if _number(learn_default) else comp.default_rate()
    saved = [(p, p.learnable) for p in frozen]
    for p in frozen:
        p.learnable = False
    before = len(comp.results)
    try:
        value = comp._learn_plain(
            inputs=x, targets=t, num_trials=num_trials, epochs=epochs, learning_rate=global_lr,
            minibatch_size=minibatch_size, randomize_minibatch=randomize_minibatch, patience=patience,
            min_delta=min_delta, call_before_minibatch=call_before_minibatch,
            call_after_minibatch=call_after_minibatch, execution_mode=execution_mode,
            report_progress=report_progress, seed=seed, dtype=dtype, randomize_minibatches=randomize_minibatches,
            param_learning_rates={n: r for n, r in rates.items() if r != global_lr},
            keep_all_epochs=results == "all")
    finally:
        for p, flag in saved:
            p.learnable = flag
    del before
    return value


def _number(value: object) -> bool:
    return value is not None and not isinstance(value, bool)


def _is_generator(value: object) -> bool:
    return hasattr(value, "__next__") and not isinstance(value, Mapping)


def split_targets(comp: Composition, inputs: Mapping, targets: Mapping | None) -> tuple[dict, dict]:
    """Inputs for the network's INPUT nodes, and targets by sample node.

    A key that is a TARGET node (object or name) gives targets for its sample;
    an output port stands for its mechanism.
    """
    tnodes = {id(n): n for n in comp._learning_nodes if isinstance(n, TargetMechanism)}
    tnames = {n.name: n for n in tnodes.values()}
    x: dict[Any, Any] = {}
    t: dict[Any, Any] = {}
    for key, value in inputs.items():
        node = tnodes.get(id(key)) or tnames.get(key) if isinstance(key, str | TargetMechanism) else None
        if node is not None:
            t[node.sample] = value
        else:
            x[getattr(key, "owner", key)] = value
    for key, value in (targets or {}).items():
        node = getattr(key, "owner", key)
        node = getattr(tnodes.get(id(node)), "sample", node)
        if any(k is node for k in t):
            raise DataError(f"{comp.name!r}.learn(): targets for {getattr(node, 'name', node)!r} given twice "
                            "(in inputs, for its TARGET node, and in targets)")
        t[node] = value
    if not t:
        raise DataError(f"{comp.name!r}.learn(): no targets given (targets={{output node: trials}} or the "
                        "inputs of its TARGET nodes)")
    return x, t


def projection_rates(comp: AutodiffComposition, learning_rate: object) -> tuple[dict[str, float], list]:
    """Each learnable projection's rate for this learn(), and the projections frozen for it."""
    rates: dict[str, float] = {}
    frozen = []
    for p in comp._projections:
        if not p.learnable:
            continue
        rate = resolve(p, comp.default_learning_rate, comp.learning_rate, pathway_rate(comp, p), learning_rate,
                       comp._learning_mechanism(p))
        if rate is False:
            frozen.append(p)
        else:
            rates[p.name] = float(rate)
    imported = getattr(comp, "graph", None)  # a GraphComposition: its params, not projections, learn
    if imported is not None and imported.learnable():
        return rates, frozen
    if not rates and not any(m.bias is not None and m.learnable_bias for m in comp._mechanisms()):
        raise CompositionError(
            f"There are no learnable Projections in '{comp.name}' nor any nested under it; this may be because "
            "the learning_rates for all of the Projections and/or 'enable_learning' Parameters for the "
            "Composition(s) are all set to 'False'. The learning_rate for at least one Projection must be a "
            f"non-False value within a Composition with 'enable_learning' set to 'True' in order to execute "
            f"the learn() method for {comp.name}.")
    return rates, frozen


def pathway_rate(comp: Composition, projection: Any) -> object:
    """The rate of the (last) learning pathway that contains ``projection``, or None."""
    rate: object = None
    for pathway in comp.pathways:
        if any(i is projection for i in pathway) and pathway.learning_rate is not None:
            rate = pathway.learning_rate
    return rate
