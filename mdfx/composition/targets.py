"""The sample-target pairs an AutodiffComposition learns on (PsyNeuLink's ``targets`` argument).

Each SAMPLE node (a mechanism, or its OutputPort) is trained towards a target:

* external (``pnl.TARGET``, or no ``targets`` given): a ``TARGET for <sample>`` INPUT
  node whose inputs, given to learn(), are the targets;
* internal (another node or its OutputPort): that node's value on the same trial is
  the target. The loss treats it as a constant, so no gradient flows into the target's
  side (measured: PsyNeuLink leaves the weights that feed it alone), and the node is
  no longer an OUTPUT node (its value is not in ``results``).

``targets`` may be a dict ``{sample: target}``, or a list or set of such dicts,
``(sample, target)`` tuples and :class:`LossMechanism` objects. A pair stands as a
LossMechanism (``LOSS for <sample>``). learn() lowers the pairs into the one training
engine: an external target is data (``LearnSpec.targets``), an internal one names the
target node's tensor of the graph (``LearnSpec.target_tensors``), in every mode.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from mdfx.composition.keywords import TARGET
from mdfx.composition.learning_pathway import ObjectiveMechanism, TargetMechanism
from mdfx.composition.mechanisms import OutputPort, TransferMechanism, _Log
from mdfx.composition.projections import MappingProjection
from mdfx.errors import AutodiffCompositionError, CompositionError, ParameterError

if TYPE_CHECKING:
    from mdfx.composition.autodiff import AutodiffComposition

_count = itertools.count()



class LossMechanism(ObjectiveMechanism):
    """A sample-target pair, given in AutodiffComposition's ``targets`` (PsyNeuLink's LossMechanism).

    ``sample`` and ``target`` are mechanisms or their OutputPorts; both are kept as
    OutputPorts. It is not a node of its own: listing it in ``pathways`` is refused.
    """

    def __init__(self, sample: Any = None, target: Any = None, name: str | None = None) -> None:
        where = f"LossMechanism {name!r}" if name else "LossMechanism"
        self.name = name if name is not None else f"LossMechanism-{next(_count)}"
        self.sample = _port(sample, f"{where}: sample")
        self.target = _port(target, f"{where}: target")
        self.log = _Log()

    def __repr__(self) -> str:
        return f"(LossMechanism {self.name})"


def _port(spec: Any, where: str) -> OutputPort:
    if isinstance(spec, TransferMechanism):
        return spec.output_port
    if isinstance(spec, OutputPort):
        return spec
    raise ParameterError(f"{where} must be a mechanism or its OutputPort, got {spec!r}")


def _owner(spec: Any) -> Any:
    return spec.owner if isinstance(spec, OutputPort) else spec


def parse(name: str, targets: object) -> list[Any] | None:
    """The pairs of a constructor's ``targets`` (None: not given); malformed forms raise ParameterError."""
    if targets is None or (isinstance(targets, Mapping | list | set) and not targets):
        return None  # as PsyNeuLink: an empty spec is no spec
    if isinstance(targets, Mapping):
        entries: list[Any] = [targets]
    elif isinstance(targets, tuple) and len(targets) == 2 and isinstance(targets[0], TransferMechanism | OutputPort):
        entries = [targets]
    elif isinstance(targets, list | tuple | set | frozenset):
        entries = list(targets)
    else:
        raise ParameterError(f"{name!r}: targets={targets!r}; give a dict {{sample: target}}, or a list or set of "
                             "such dicts, (sample, target) tuples and LossMechanisms")
    pairs: list[Any] = []
    for entry in entries:
        if isinstance(entry, Mapping):
            items = list(entry.items())
        elif isinstance(entry, LossMechanism):
            pairs.append(entry)
            continue
        elif isinstance(entry, tuple) and len(entry) == 2:
            items = [entry]
        else:
            raise ParameterError(f"{name!r}: targets entry {entry!r} is not a dict, a (sample, target) tuple or a "
                                 "LossMechanism")
        for sample, target in items:
            if not isinstance(sample, TransferMechanism | OutputPort):
                raise ParameterError(f"{name!r}: targets: the sample {sample!r} must be a mechanism or its "
                                     "OutputPort")
            if isinstance(target, LossMechanism):
                raise ParameterError(f"{name!r}: targets: the target of {sample!r} is the LossMechanism "
                                     f"{target.name!r}; give a LossMechanism as an entry of its own, not as a target")
            if not (isinstance(target, TransferMechanism | OutputPort) or (isinstance(target, str)
                                                                         and target == TARGET)):
                raise ParameterError(f"{name!r}: targets: the target of {getattr(sample, 'name', sample)!r} must be "
                                     f"a mechanism, its OutputPort or pnl.TARGET, got {target!r}")
            pairs.append((sample, target))
    return pairs


def internal_target_nodes(comp: AutodiffComposition) -> list[Any]:
    """The mechanisms whose values are internal targets, as given (no check: used by the roles)."""
    found: list[Any] = []
    for pair in comp._target_pairs or []:
        target = _owner(pair.target if isinstance(pair, LossMechanism) else pair[1])
        if isinstance(target, TransferMechanism) and not any(t is target for t in found):
            found.append(target)
    return found


#: ``comp._resolve_memo`` inside :func:`resolved_once` before resolve() has run
_PENDING: list = []


@contextmanager
def resolved_once(comp: AutodiffComposition) -> Iterator[None]:
    """Within one learn() call, :func:`resolve` runs once: the roles, the TARGET nodes and
    the loss values each ask for it (six times a call), and the structure does not change
    within a call. Outside learn() every call resolves afresh."""
    if getattr(comp, "_resolve_memo", None) is not None:  # a learn() inside learn() (generator inputs)
        yield
        return
    comp._resolve_memo = _PENDING  # type: ignore[attr-defined]
    try:
        yield
    finally:
        comp._resolve_memo = None  # type: ignore[attr-defined]


def resolve(comp: AutodiffComposition) -> list[ObjectiveMechanism]:
    """The composition's LossMechanisms, one per sample, in the order given.

    Makes the TARGET nodes of external targets (and drops those made for samples no
    longer trained); refuses a pair naming a node outside the composition, two targets
    for one sample and, for explicit ``targets``, a sample no learnable projection
    reaches or a learnable projection that reaches no sample nor target.
    """
    memo = getattr(comp, "_resolve_memo", None)
    if memo is not None and memo is not _PENDING:
        return list(memo)
    losses = _resolve(comp)
    if memo is _PENDING:
        comp._resolve_memo = list(losses)  # type: ignore[attr-defined]
    return losses


def _resolve(comp: AutodiffComposition) -> list[ObjectiveMechanism]:
    explicit = comp._target_pairs is not None
    pairs: list[Any] = comp._target_pairs if explicit else [(s, TARGET) for s in _default_samples(comp)]
    mechanisms = comp._mechanisms()
    losses: list[ObjectiveMechanism] = []
    chosen: dict[int, Any] = {}
    used_targets: list[Any] = []
    for pair in pairs:
        given = pair if isinstance(pair, LossMechanism) else None
        sample_spec, target_spec = (pair.sample, pair.target) if given is not None else pair
        sample = _owner(sample_spec)
        external = isinstance(target_spec, str)
        for node in [sample] if external else [sample, _owner(target_spec)]:
            if not any(m is node for m in mechanisms):
                raise CompositionError(f"{comp.name!r}: targets names {getattr(node, 'name', node)!r}, which is not a "
                                       f"node of {comp.name!r} (nor of a composition nested in it)")
        if explicit and not _learnable_upstream(comp, sample):
            raise AutodiffCompositionError(
                f"{comp.name!r}: targets gives a target for {sample.name!r}, but no learnable projection leads to "
                f"{sample.name!r}, so nothing would learn from it")
        if external:
            made = not any(isinstance(n, TargetMechanism) and n.sample is sample for n in comp._learning_nodes)
            target = comp._target_for(sample)
            if made:  # ours to drop when the sample stops learning; a learning pathway's stays
                target.auto = True  # type: ignore[attr-defined]
        else:
            target = _owner(target_spec)
        if id(sample) in chosen:
            if chosen[id(sample)] is target:
                continue
            raise CompositionError(f"{comp.name!r}: targets gives two targets for {sample.name!r}: "
                                   f"{chosen[id(sample)].name!r} and {target.name!r}; give one")
        chosen[id(sample)] = target
        if external:
            used_targets.append(target)
        losses.append(given or _objective(comp, sample, target))
    if explicit:
        _check_orphans(comp, list(chosen.values()), [_owner(lm.sample) for lm in losses])
    keep = [*losses, *used_targets]
    comp._learning_nodes[:] = [n for n in comp._learning_nodes if not getattr(n, "auto", False)
                               or any(n is k for k in keep)]
    for n in losses:
        if not any(n is k for k in comp._learning_nodes):
            n.auto = True  # type: ignore[attr-defined]
            comp._learning_nodes.append(n)
    return losses


def _default_samples(comp: AutodiffComposition) -> list[Any]:
    """No ``targets``: the last nodes of the learning pathways (a Composition's learning;
    one that another learning pathway goes on from learns through it, as in PsyNeuLink),
    else every OUTPUT mechanism that a projection reaches."""
    from mdfx.composition.enums import NodeRole

    receivers = {id(p.receiver) for p in comp._projections}
    pathway_targets = [n for n in comp._learning_nodes
                       if isinstance(n, TargetMechanism) and not getattr(n, "auto", False)]
    if pathway_targets:
        onward = {id(p.sender) for pw in comp.pathways if pw.learning_components
                  for p in pw if isinstance(p, MappingProjection)}
        return [t.sample for t in pathway_targets if id(t.sample) not in onward]
    found: list[Any] = []
    for n in comp.get_nodes_by_role(NodeRole.OUTPUT):
        if isinstance(n, TransferMechanism) and id(n) in receivers and not any(n is s for s in found):
            found.append(n)
    return found


def _objective(comp: AutodiffComposition, sample: Any, target: Any) -> ObjectiveMechanism:
    for n in comp._learning_nodes:
        if isinstance(n, ObjectiveMechanism) and n.sample is sample.output_port and n.target is target.output_port:
            return n
    return ObjectiveMechanism(f"LOSS for {sample.name}", sample, target)


def _upstream(comp: AutodiffComposition, node: Any) -> list[Any]:
    """The projections ``node`` depends on (transitively)."""
    seen, stack, found = {id(node)}, [node], []
    while stack:
        n = stack.pop()
        for p in comp._projections:
            if p.receiver is n:
                found.append(p)
                if id(p.sender) not in seen:
                    seen.add(id(p.sender))
                    stack.append(p.sender)
    return found


def _learnable_upstream(comp: AutodiffComposition, node: Any) -> bool:
    return any(p.learnable for p in _upstream(comp, node))


def _check_orphans(comp: AutodiffComposition, targets: list[Any], samples: list[Any]) -> None:
    """Every learnable projection must lead to a sample or a target (else it could not learn)."""
    reached = {id(p) for n in [*samples, *targets] for p in _upstream(comp, n)}
    orphans = [p for p in comp._projections if p.learnable and id(p) not in reached]
    if orphans:
        raise AutodiffCompositionError(
            f"{comp.name!r}: the learnable projection(s) {', '.join(repr(p.name) for p in orphans)} lead to no "
            "sample of targets (nor to a target node), so they could not learn; add a target for the node they "
            "lead to, or make them learnable=False")


def learn_targets(comp: AutodiffComposition, given: Mapping) -> dict:
    """learn()'s ``targets`` checked against the pairs: ``{sample: trials}``.

    A key is a sample with an external target, its OutputPort or name, or its TARGET
    node (which PsyNeuLink accepts with a warning). Anything else raises
    CompositionError naming the key and why (AutodiffCompositionError for a sample
    whose target is internal); two different values for one sample too.
    """
    import warnings

    losses = resolve(comp)
    external: dict[int, Any] = {}
    internal: dict[int, Any] = {}
    target_nodes: dict[int, Any] = {}
    for lm in losses:
        sample, target = _owner(lm.sample), _owner(lm.target)
        if isinstance(target, TargetMechanism):
            external[id(sample)] = sample
            target_nodes[id(target)] = sample
        else:
            internal[id(sample)] = target
    names = {m.name: m for m in comp._mechanisms()}
    names.update({n.name: n for n in comp._learning_nodes if isinstance(n, TargetMechanism)})
    out: dict[int, tuple[Any, Any, Any]] = {}
    via_target_nodes = []
    for key, value in given.items():
        node = names.get(key) if isinstance(key, str) else _owner(key)
        label = getattr(key, "name", key)
        if isinstance(node, TransferMechanism) and not any(node is m for m in names.values()):
            # a copy of the composition (a sweep's worker) is keyed by the original's nodes: by name
            node = names.get(node.name, node)
        if not isinstance(node, TransferMechanism):
            raise CompositionError(f"{comp.name!r}.learn(): targets key {label!r} is not a mechanism (or its "
                                   f"OutputPort) of {comp.name!r}")
        if id(node) in target_nodes:
            via_target_nodes.append(node.name)
            node = target_nodes[id(node)]
        elif not any(m is node for m in comp._mechanisms()):
            raise CompositionError(f"{comp.name!r}.learn(): targets key {label!r} is not a node of {comp.name!r}")
        if _is_component(value):
            raise CompositionError(f"{comp.name!r}.learn(): the targets for {label!r} must be numbers (trials of "
                                   f"target values), got {getattr(value, 'name', value)!r}")
        if id(node) in internal:
            raise AutodiffCompositionError(
                f"{comp.name!r}.learn(): targets gives values for {node.name!r}, whose target is the node "
                f"{internal[id(node)].name!r} (the constructor's targets); give it none in learn()")
        if id(node) not in external:
            raise CompositionError(
                f"{comp.name!r}.learn(): targets key {label!r}: {node.name!r} is not a sample with an external "
                f"target (those are: {', '.join(repr(s.name) for s in external.values()) or 'none'})")
        if id(node) in out and not same_values(out[id(node)][2], value):
            raise CompositionError(f"{comp.name!r}.learn(): targets gives different values for {node.name!r} "
                                   f"(keys {out[id(node)][0]!r} and {label!r})")
        out[id(node)] = (label, node, value)
    if via_target_nodes:
        warnings.warn(f"{comp.name!r}.learn(): targets is keyed by TARGET nodes ({', '.join(via_target_nodes)}); "
                      "keying it by their samples, or giving the TARGET nodes' values in inputs, says the same",
                      UserWarning, stacklevel=5)
    return {node: value for _, node, value in out.values()}


def external_samples(comp: AutodiffComposition) -> list[Any]:
    """The samples whose targets are data (TARGET nodes), in the pairs' order."""
    return [_owner(lm.sample) for lm in resolve(comp) if isinstance(_owner(lm.target), TargetMechanism)]


def internal_pairs(comp: AutodiffComposition) -> list[tuple[Any, Any]]:
    """(sample, target node) of every internal target, in the pairs' order."""
    return [(_owner(lm.sample), _owner(lm.target)) for lm in resolve(comp)
            if not isinstance(_owner(lm.target), TargetMechanism)]


def _is_component(value: object) -> bool:
    return not isinstance(value, np.ndarray | list | tuple | int | float | np.number)


def same_values(a: object, b: object) -> bool:
    """Whether two target specs hold the same numbers (``0.0`` and ``[[0.0]]`` do)."""
    try:
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return False
    return x.size == y.size and bool(np.array_equal(x.ravel(), y.ravel()))


def record_loss_values(comp: AutodiffComposition, spec: Any, result: Any) -> None:
    """Set each LossMechanism's ``value``: its pair's loss on the last minibatch trained.

    Computed from the values the engine returned (the samples' and targets' rows of that
    minibatch, before its update), with the loss the engine used.
    """
    from mdfx import ops
    from mdfx.runners.training import minibatches

    if not result.epochs_run or not result.last_outputs:
        return
    idx = minibatches(spec.orders()[result.epochs_run - 1], spec.minibatch_size)[-1]
    loss = ops.loss_op(spec.loss)
    for lm in resolve(comp):
        sample, target = _owner(lm.sample).name, _owner(lm.target)
        y = result.last_outputs.get(sample)
        t = spec.targets.get(sample) if isinstance(target, TargetMechanism) else result.last_outputs.get(target.name)
        if y is None or t is None:
            continue
        rows = np.asarray(y)[idx].reshape(len(idx), -1)
        lm.value = np.asarray(loss.forward(rows, np.asarray(t)[idx].reshape(len(idx), -1)))


def record_objective_values(comp: AutodiffComposition, spec: Any, result: Any) -> None:
    """Set each learning pathway's objective node's values (and its sample's) from the last trial.

    As PsyNeuLink's Comparator: ``OUTCOME`` (and ``value``) is target - sample, the loss
    port is that trial's loss (measured: SSE sum, MSE mean of the squared errors; for
    Loss.L0 the sum of target - sample).
    """
    from mdfx import ops
    from mdfx.runners.training import minibatches

    if not result.epochs_run or not result.last_outputs:
        return
    last = minibatches(spec.orders()[result.epochs_run - 1], spec.minibatch_size)[-1][-1]
    # as PsyNeuLink's, the nodes the engine reports keep their value of the last trial
    for mech in comp._mechanisms():
        if mech.name in result.last_outputs:
            mech.value = np.asarray(result.last_outputs[mech.name], dtype=float)[last].reshape(1, -1).copy()
    for node in comp._pathway_objectives():
        name = _owner(node.sample).name
        y, t = result.last_outputs.get(name), spec.targets.get(name)
        if y is None or t is None:
            continue
        y, t = np.asarray(y, dtype=float)[last].ravel(), np.asarray(t, dtype=float)[last].ravel()
        node.error = t - y
        node.value = node.error[None, :]
        loss = str(getattr(comp, "_objective_loss", spec.loss)).upper()
        if loss == "SSE":
            node.loss = np.array([np.sum(node.error ** 2)])
        elif loss == "MSE":
            node.loss = np.array([np.mean(node.error ** 2)])
        elif loss in ("L0", "SUM"):
            node.loss = np.array([np.sum(node.error)])
        else:  # the engine's own loss of that trial
            node.loss = np.atleast_1d(np.asarray(ops.loss_op(loss).forward(y[None, :], t[None, :]), dtype=float))
