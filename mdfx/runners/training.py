"""What every training backend shares: the learn() plan and its result.

``AutodiffComposition.learn()`` validates the user's data into a
:class:`LearnSpec`; a backend's ``train(net, spec) -> LearnResult`` runs the
whole loop. The trial order of every epoch comes from :func:`trial_orders`, so
shuffled runs are identical across backends; minibatches are consecutive
chunks of that order (the last one may be shorter), and early stopping is
decided by :class:`EarlyStopper` on each epoch's mean minibatch loss.

The Python backend (:func:`train_reference`, numpy) is the readable spec of a
training step: forward the minibatch, sum each output's loss, backpropagate,
one optimizer step per learnable array.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mdfx import ops
from mdfx.runners import reference
from mdfx.schema.graph import Graph


@dataclass
class OptimizerState:
    """Optimizer state that outlives one learn() call, as PsyNeuLink's optimizer does.

    ``step`` counts optimizer steps so far; ``slots[param name]`` holds Adam's
    moments ``{"m": ..., "v": ...}`` (float64). Backends start from it and leave
    it updated, so a second learn() continues Adam where the first stopped.
    """

    step: int = 0
    slots: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    optimizer: str = ""  #: the optimizer the state belongs to


@dataclass
class LearnSpec:
    """A validated learn() call. Arrays are float64, shape (trials, *features).

    ``inputs`` and ``targets`` are keyed by graph tensor names: the graph's inputs,
    and the tensors trained on external targets. ``target_tensors`` trains more
    tensors on internal targets: each on the value, in the same minibatch, of another
    tensor of the graph. The loss is summed over :meth:`trained`.
    """

    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    epochs: int = 1
    minibatch_size: int = 1
    randomize_minibatch: bool = False
    seed: int | None = None
    learning_rate: float = 0.001
    loss: str = "MSE"
    optimizer: str = "sgd"
    weight_decay: float = 0.0
    patience: int | None = None
    min_delta: float = 0.0
    call_before_minibatch: Callable[[], object] | None = None
    call_after_minibatch: Callable[[], object] | None = None
    #: called after each minibatch with (epoch, minibatch index, loss)
    on_minibatch: Callable[[int, int, float], None] | None = None
    #: called after each epoch with (epoch, mean minibatch loss of the epoch): progress bars
    on_epoch: Callable[[int, float], None] | None = None
    #: Python mode only: called after each minibatch with every node's values (logging)
    on_values: Callable[[dict[str, np.ndarray]], None] | None = None
    #: dtype the backend computes in ("float64" or "float32")
    dtype: str = "float64"
    #: carried across learn() calls; None starts a fresh optimizer
    optimizer_state: OptimizerState | None = None
    #: learning rate of a learnable parameter by name (projection name, "<node>.bias"); a name
    #: absent here trains at ``learning_rate``. Frozen parameters are not learnable in the graph.
    param_learning_rates: dict[str, float] = field(default_factory=dict)
    #: also return every epoch's outputs (LearnResult.epoch_outputs), not only the last epoch's
    keep_epoch_outputs: bool = False
    #: steps taken on each trial (minibatches of one): ``inputs``/``targets`` hold every trial
    #: this many times in a row, and :meth:`orders` keeps the copies together, in order
    optimizations_per_minibatch: int = 1
    #: trained tensor -> the tensor whose value is its target (PsyNeuLink's internal targets,
    #: ``targets={sample: other node}``). The target side is a constant of the loss: no
    #: gradient flows into it from this term (measured: PsyNeuLink leaves its weights alone)
    target_tensors: dict[str, str] = field(default_factory=dict)
    #: tensors whose values are returned beside the trained ones (OUTPUT nodes that do not learn)
    recorded: list[str] = field(default_factory=list)

    def trained(self) -> list[str]:
        """The tensors the loss is summed over: external targets first, then internal ones."""
        return [*self.targets, *(k for k in self.target_tensors if k not in self.targets)]

    def reported(self) -> list[str]:
        """The tensors whose per-trial values come back in LearnResult.last_outputs."""
        trained = self.trained()
        return [*trained, *(k for k in self.recorded if k not in trained)]

    def rate(self, name: str) -> float:
        """The learning rate of parameter ``name``."""
        return float(self.param_learning_rates.get(name, self.learning_rate))

    _orders: np.ndarray | None = field(default=None, repr=False)

    @property
    def num_trials(self) -> int:
        data = self.inputs or self.targets
        return len(next(iter(data.values())))

    def orders(self) -> np.ndarray:
        """The trial order of every epoch, drawn once (shuffling consumes the RNG)."""
        if self._orders is None:
            k = self.optimizations_per_minibatch
            if not self.randomize_minibatch:
                # every epoch in trial order: one row, viewed once per epoch (a read-only view that
                # takes no memory per epoch: learn(epochs=2**26, patience=1) allocates one row)
                self._orders = np.broadcast_to(np.arange(self.num_trials, dtype=np.int64),
                                               (int(self.epochs), self.num_trials))
                return self._orders
            # shuffled as the distinct trials (the RNG draws as for them), then each trial's copies
            orders = trial_orders(self.num_trials // k, self.epochs, self.randomize_minibatch, self.seed)
            self._orders = orders if k == 1 else \
                (orders[..., None] * k + np.arange(k)).reshape(orders.shape[0], orders.shape[1] * k)
        return self._orders


@dataclass
class LearnResult:
    """Trained parameters by name (the graph's param names) and the loss history."""

    params: dict[str, np.ndarray]
    losses: list[float]  #: one per minibatch, in order
    epochs_run: int
    #: the trained outputs for every trial of the last epoch run, in trial order (trials, *features)
    last_outputs: dict[str, np.ndarray] = field(default_factory=dict)
    #: with LearnSpec.keep_epoch_outputs: each epoch's outputs, as last_outputs (the last one included)
    epoch_outputs: Sequence[dict[str, np.ndarray]] = field(default_factory=list)


class EpochOutputs(Sequence[dict[str, np.ndarray]]):
    """Every epoch's outputs as one ``(epochs, trials, *features)`` array per tensor.

    Reads as a list of per-epoch dicts (``[e][name]`` is a view), but makes no dict until
    one is read: XOR's 500 epochs as 500 dicts cost more than its whole training kernel.
    :meth:`stacked` gives a tensor's array itself, for callers that gather every epoch.
    """

    def __init__(self, blocked: dict[str, np.ndarray], epochs: int) -> None:
        self.blocked = {k: v[:epochs] for k, v in blocked.items()}
        self.epochs = epochs

    def __len__(self) -> int:
        return self.epochs

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            parts = {k: v[index] for k, v in self.blocked.items()}
            return EpochOutputs(parts, len(range(*index.indices(self.epochs))))
        if not -self.epochs <= index < self.epochs:
            raise IndexError(f"epoch {index} of {self.epochs}")
        return {k: v[index] for k, v in self.blocked.items()}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return (self[e] for e in range(self.epochs))

    def stacked(self, name: str) -> np.ndarray:
        """Tensor ``name``'s outputs of every epoch: (epochs, trials, *features)."""
        return self.blocked[name]

    def renamed(self, back: dict[str, str]) -> EpochOutputs:
        return EpochOutputs({back.get(k, k): v for k, v in self.blocked.items()}, self.epochs)


def trial_orders(num_trials: int, epochs: int, randomize: bool, seed: int | None) -> np.ndarray:
    """(epochs, num_trials) int64: the trial order of each epoch.

    As PsyNeuLink 0.21 does, a shuffled epoch is ``np.random.shuffle`` of
    ``range(num_trials)`` on numpy's *global* legacy RNG, so ``np.random.seed(s)``
    before learn() reproduces PsyNeuLink's orders exactly; ``seed`` (mdfx) uses a
    private ``RandomState(seed)`` instead and leaves the global RNG alone.
    """
    orders = np.tile(np.arange(num_trials, dtype=np.int64), (epochs, 1))
    if randomize:
        rng = np.random if seed is None else np.random.RandomState(seed)
        for row in orders:
            rng.shuffle(row)
    return orders


def minibatches(order: np.ndarray, size: int) -> list[np.ndarray]:
    """Consecutive chunks of ``order``; the last is shorter when size does not divide it."""
    return [order[i:i + size] for i in range(0, len(order), size)]


class EarlyStopper:
    """Stop when ``patience`` consecutive epochs fail to lower the best loss by more than ``min_delta``."""

    def __init__(self, patience: int | None, min_delta: float) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best = np.inf
        self.bad = 0

    def step(self, epoch_loss: float) -> bool:
        """Record one epoch; True when training should stop."""
        if self.patience is None:
            return False
        if epoch_loss < self.best - self.min_delta:
            self.best = epoch_loss
            self.bad = 0
        else:
            self.bad += 1
        return self.bad >= self.patience


def drive(spec: LearnSpec, per_epoch: int, steps: Callable[[int, int], None], loss: Callable[[int], float]) -> int:
    """The one training schedule every backend runs: epochs of ``per_epoch`` minibatches, the
    callbacks, early stopping. Returns the number of epochs run.

    A backend supplies only its kernel: ``steps(k0, k1)`` trains minibatch steps ``k0 <= k < k1``
    (step ``k`` is minibatch ``k % per_epoch`` of epoch ``k // per_epoch``, in
    ``spec.orders()``), doing an epoch's own bookkeeping when its last step has run; and
    ``loss(k)``, the loss of a step that has run. Steps go to the kernel in the largest runs
    the schedule allows: all of them at once when nothing is called back and no patience is
    set (a whole-loop kernel runs the whole learn()), an epoch at a time when ``on_epoch`` or
    ``patience`` reads each epoch's mean loss, one at a time around the minibatch callbacks
    (``call_before_minibatch``, ``on_minibatch(epoch, minibatch, loss)``, ``call_after_minibatch``).
    """
    epochs = spec.epochs
    before, after, on_minibatch = spec.call_before_minibatch, spec.call_after_minibatch, spec.on_minibatch
    callbacks = before or after or on_minibatch
    if not callbacks and spec.patience is None and spec.on_epoch is None:
        steps(0, epochs * per_epoch)
        return epochs
    stopper = EarlyStopper(spec.patience, spec.min_delta)
    for epoch in range(epochs):
        first = epoch * per_epoch
        if callbacks:
            for b in range(per_epoch):
                if before:
                    before()
                steps(first + b, first + b + 1)
                if on_minibatch:
                    on_minibatch(epoch, b, loss(first + b))
                if after:
                    after()
        else:
            steps(first, first + per_epoch)
        if spec.on_epoch is None and spec.patience is None:
            continue  # nobody reads the epoch's loss
        epoch_loss = float(np.mean([loss(k) for k in range(first, first + per_epoch)]))
        if spec.on_epoch:
            spec.on_epoch(epoch, epoch_loss)
        if stopper.step(epoch_loss):
            return epoch + 1
    return epochs


def learnable_params(g: Graph) -> dict[str, np.ndarray]:
    """The arrays training updates, by name, in the graph's param order (a composition's: projections,
    then biases)."""
    return g.learnable()


def by_tensor(g: Graph, spec: LearnSpec) -> tuple[LearnSpec, dict[str, str]]:
    """``spec`` with its inputs and targets keyed by ``g``'s tensor names, and the way back.

    A composition's data is keyed by node names; a mechanism's value is the tensor
    named after it except for an INPUT node that computes something
    (:attr:`Graph.mechanisms`). Graphs from elsewhere are keyed by tensor already.
    """
    spec.orders()  # drawn once, before the copy, so both see the same shuffles
    tensors = g.mechanisms.tensors if g.mechanisms is not None else {}
    named = [*spec.targets, *spec.target_tensors, *spec.target_tensors.values(), *spec.recorded]
    # inputs need no keying: a graph input is named after its INPUT node
    if all(tensors.get(k, k) == k or k in g.outputs for k in named):
        return spec, {}
    targets = {tensors.get(k, k): v for k, v in spec.targets.items()}
    internal = {tensors.get(k, k): tensors.get(v, v) for k, v in spec.target_tensors.items()}
    recorded = [tensors.get(k, k) for k in spec.recorded]
    back = {tensors.get(k, k): k for k in [*spec.targets, *spec.target_tensors, *spec.recorded]}
    return replace(spec, targets=targets, target_tensors=internal, recorded=recorded), back


def rekey(result: LearnResult, back: dict[str, str]) -> LearnResult:
    """``result`` with its outputs keyed back as :func:`by_tensor` says (node names), in place."""
    if back:
        result.last_outputs = {back.get(k, k): v for k, v in result.last_outputs.items()}
        epochs = result.epoch_outputs
        result.epoch_outputs = epochs.renamed(back) if isinstance(epochs, EpochOutputs) else \
            [{back.get(k, k): v for k, v in e.items()} for e in epochs]
    return result


def learning_rate_of(spec: LearnSpec, name: str) -> float:
    """The learning rate of one param: its own, or the call's."""
    return spec.param_learning_rates.get(name, spec.learning_rate)


def batch_loss(spec: LearnSpec, outputs: dict[str, np.ndarray], idx: np.ndarray
               ) -> tuple[float, dict[str, np.ndarray]]:
    """Loss of one minibatch (summed over the trained tensors) and d(loss)/d(trained tensor).

    ``outputs`` holds the minibatch's values of the trained tensors and of the internal
    targets; an internal target enters as a constant (no gradient is returned for it).
    """
    loss_op = ops.loss_op(spec.loss)
    total = 0.0
    grads = {}
    for name in spec.trained():
        y = outputs[name]
        t = spec.targets[name][idx] if name in spec.targets else outputs[spec.target_tensors[name]]
        y2 = y.reshape(len(y), -1)
        total += loss_op.forward(y2, t.reshape(len(t), -1))
        grads[name] = loss_op.grad(y2, t.reshape(len(t), -1)).reshape(y.shape)
    return total, grads


def train_reference(g: Graph | Any, spec: LearnSpec) -> LearnResult:
    """ExecutionMode.Python: the whole learn() loop in numpy, float64. Trains ``g``'s params in place."""
    from mdfx.schema import validate

    validate.learn_spec(g, spec)
    optimizer = ops.optimizer_op(spec.optimizer)
    params = learnable_params(g)
    carried = spec.optimizer_state if spec.optimizer_state is not None else OptimizerState()
    state = {name: carried.slots.setdefault(name, {}) for name in params}
    rates = {name: learning_rate_of(spec, name) for name in params}
    losses: list[float] = []
    reported = spec.reported()
    orders = spec.orders()
    # each epoch's minibatches made when it starts (not for every epoch up front: a learn() of
    # 2**26 epochs that early stopping ends after 2 makes 2 epochs' lists)
    per_epoch = -(-len(orders[0]) // spec.minibatch_size) if len(orders) else 0
    current: list[Any] = [-1, []]

    def batch(epoch: int, b: int) -> np.ndarray:
        if current[0] != epoch:
            current[:] = [epoch, minibatches(orders[epoch], spec.minibatch_size)]
        return current[1][b]
    last: dict[str, np.ndarray] = {}
    every: list[dict[str, np.ndarray]] = []
    # The last step's gradients and values stay alive until the result's copies are made: freed
    # first, that much memory at the heap's top goes back to the OS (glibc trims it) and each
    # call faults it in again (measured: one-trial learn() of 784-256-128-10, 11 ms vs 1.3 ms).
    held: list[Any] = []

    def steps(k0: int, k1: int) -> None:
        nonlocal last
        for k in range(k0, k1):
            epoch, b = divmod(k, per_epoch)
            idx = batch(epoch, b)
            if b == 0:  # a new epoch's outputs, in trial order
                last = {name: np.zeros_like(spec.targets[name]) if name in spec.targets
                        else np.zeros((len(orders[epoch]), *g.features(name))) for name in reported}
            env = reference.forward(g, {name: x[idx] for name, x in spec.inputs.items()}, training=True)
            outputs = {name: env[name] for name in [*reported, *spec.target_tensors.values()]}
            loss, grad_out = batch_loss(spec, outputs, idx)
            grads = reference.backward(g, env, grad_out)
            held[:] = (grads, env)
            carried.step += 1
            for name, w in params.items():
                optimizer.step(w, grads[name], state[name], rates[name], spec.weight_decay, carried.step,
                               **optimizer.hyper)
            if spec.on_values:
                spec.on_values(env)
            for name in reported:
                last[name][idx] = outputs[name].reshape(last[name][idx].shape)
            losses.append(loss)
            if b == per_epoch - 1 and spec.keep_epoch_outputs:
                every.append(last)

    epochs_run = drive(spec, per_epoch, steps, losses.__getitem__)
    count_batch_norm_steps(g, len(losses))
    result = LearnResult({k: v.copy() for k, v in params.items()}, losses, epochs_run, last, every)
    held.clear()
    return result


def batch_norm_statistics(g: Graph) -> list[str]:
    """The running means and variances that training updates (BatchNormalization with training_mode=1)."""
    return [t for n in g.nodes if n.op == "BatchNormalization" and n.attrs["training_mode"] for t in n.inputs[3:5]]


def count_batch_norm_steps(g: Graph, steps: int) -> None:
    """Add ``steps`` to each training BatchNorm's ``num_batches_tracked`` kept beside the graph (torch's
    counter, so the state_dict equals the module's after the same training)."""
    extra = g.extra_state
    for t in batch_norm_statistics(g)[::2]:
        key = t.removesuffix("running_mean") + "num_batches_tracked"
        if t.endswith("running_mean") and key in extra:
            extra[key] = extra[key] + steps
