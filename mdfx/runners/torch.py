"""ExecutionMode.PyTorch: train and run a :class:`~mdfx.schema.net.Net` with torch.

:func:`train` has exactly the semantics of :func:`mdfx.runners.training.train_reference`
(the spec): the same trial orders, consecutive minibatches with a shorter last
one, loss = the sum over OUTPUT nodes of the spec's loss, one optimizer step
per minibatch, early stopping on each epoch's mean minibatch loss, the same
callbacks. Only the arithmetic moves to torch: autograd for the backward pass,
and SGD / Adam written as the same tensor ops ``torch.optim`` runs (its
single-tensor path), so the result equals ``torch.optim.SGD`` / ``Adam``.

Why not ``torch.optim`` itself: its first use imports ``torch._dynamo`` (about
a second), and its per-step bookkeeping costs more than the update on small
networks. ``tests/test_torch_backend.py`` checks the update against
``torch.optim`` to 1e-12.

Performance (DESIGN "Performance design"): the module is built once per call;
all data lives on the device as tensors; an epoch's minibatches are views
(``split``) of the data, gathered once per epoch in that epoch's trial order;
losses stay on the device until the end (one transfer per epoch with
``patience``, a ``.item()`` per minibatch only when ``on_minibatch`` asks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from mdfx import ops
from mdfx.converters.torch import NetModule, loss_rule, to_module
from mdfx.errors import DataError
from mdfx.runners.training import (
    EarlyStopper,
    LearnResult,
    LearnSpec,
    OptimizerState,
    learnable_params,
)
from mdfx.schema.net import Net

Update = Callable[[Sequence[Tensor]], None]


def make_update(optimizer: str, params: Sequence[Tensor], lr: float, weight_decay: float = 0.0,
                state: OptimizerState | None = None, names: Sequence[str] = ()) -> Update:
    """An in-place optimizer step ``update(grads)`` for ``params``, as torch.optim computes it.

    ``optimizer`` is a key of :data:`mdfx.ops.OPTIMIZERS` (``"sgd"``, ``"adam"``,
    with torch's default hyper-parameters); ``weight_decay`` is added to the
    gradient (L2), as torch.optim's ``weight_decay`` does. With ``state`` (and the
    params' ``names``), Adam starts from the carried moments and step count; call
    ``update.save()`` after training to write them back.
    """
    op = ops.optimizer_op(optimizer)
    # updates write through detached aliases: same storage, no autograd bookkeeping, no no_grad()
    data = [p.detach() for p in params]
    if not data:
        return lambda grads: None

    def decayed(grads: Sequence[Tensor]) -> Sequence[Tensor]:
        return torch._foreach_add(grads, data, alpha=weight_decay) if weight_decay else grads

    if op.name == "sgd":
        def sgd(grads: Sequence[Tensor]) -> None:
            torch._foreach_add_(data, decayed(grads), alpha=-lr)
        return sgd

    beta1, beta2, eps = op.hyper["beta1"], op.hyper["beta2"], op.hyper["eps"]
    slots = [state.slots.get(n, {}) for n in names] if state is not None else [{} for _ in data]
    exp_avg = [torch.as_tensor(s["m"], dtype=d.dtype, device=d.device).clone() if "m" in s
               else torch.zeros_like(d) for s, d in zip(slots, data, strict=True)]
    exp_avg_sq = [torch.as_tensor(s["v"], dtype=d.dtype, device=d.device).clone() if "v" in s
                  else torch.zeros_like(d) for s, d in zip(slots, data, strict=True)]
    step = state.step if state is not None else 0

    def adam(grads: Sequence[Tensor]) -> None:
        # torch.optim.adam._single_tensor_adam, op for op
        nonlocal step
        step += 1
        grads = decayed(grads)
        torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - beta2)
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, bias_correction2_sqrt)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(data, exp_avg, denom, value=-step_size)

    def save() -> None:
        if state is None:
            return
        state.step = step
        for n, m, v in zip(names, exp_avg, exp_avg_sq, strict=True):
            state.slots[n] = {"m": m.detach().cpu().double().numpy().copy(),
                              "v": v.detach().cpu().double().numpy().copy()}

    adam.save = save  # type: ignore[attr-defined]
    return adam


def _grouped_update(spec: LearnSpec, params: Sequence[Tensor], names: Sequence[str]) -> Update:
    """One update over every parameter; parameters with their own learning rate
    (``spec.param_learning_rates``) are stepped in a group per rate."""
    groups: dict[float, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(spec.rate(name), []).append(i)
    if len(groups) <= 1:
        lr = next(iter(groups), spec.learning_rate)
        return make_update(spec.optimizer, params, lr, spec.weight_decay, spec.optimizer_state, names)
    parts = [(idx, make_update(spec.optimizer, [params[i] for i in idx], lr, spec.weight_decay,
                               spec.optimizer_state, [names[i] for i in idx])) for lr, idx in groups.items()]

    def update(grads: Sequence[Tensor]) -> None:
        for idx, part in parts:
            part([grads[i] for i in idx])

    def save() -> None:
        for _, part in parts:
            getattr(part, "save", lambda: None)()

    update.save = save  # type: ignore[attr-defined]
    return update


def _tensors(arrays: Mapping[str, np.ndarray], net: Net, names: Sequence[str], what: str,
             dtype: torch.dtype, device: torch.device) -> dict[str, Tensor]:
    """``arrays[name]`` for each node name as a (trials, size) tensor; errors name the node."""
    out = {}
    for name in names:
        if name not in arrays:
            raise DataError(f"no {what} given for node {name!r} (given: {', '.join(arrays) or 'none'})")
        a = np.asarray(arrays[name], dtype=np.float64)
        size = net.node(name).size
        if a.ndim != 2 or a.shape[1] != size:
            raise DataError(f"{what} for node {name!r} has shape {a.shape}; expected (trials, {size})")
        out[name] = torch.as_tensor(a, dtype=dtype, device=device)
    return out


def _batches(data: Mapping[str, Tensor], index: Tensor | None, size: int) -> list[dict[str, Tensor]]:
    """One epoch's minibatches: ``[{name: (b, n) view}]``; ``index`` None keeps the given order."""
    names = list(data)
    parts = [(data[n] if index is None else data[n].index_select(0, index)).split(size) for n in names]
    return [dict(zip(names, views, strict=True)) for views in zip(*parts, strict=True)]


def _in_trial_order(batches: list[Tensor], order: np.ndarray) -> np.ndarray:
    """An epoch's minibatch outputs, taken in ``order``, as float64 rows in trial order."""
    values = torch.cat(batches).cpu().numpy()
    out = np.empty(values.shape)
    out[order] = values
    return out


def train(net: Net, spec: LearnSpec, device: str = "cpu") -> LearnResult:
    """ExecutionMode.PyTorch: the whole learn() loop of ``spec`` on ``device``; trains ``net`` in place.

    The learnable arrays of ``net`` receive the trained values when training
    ends (callbacks during training see the initial ones); the result holds
    copies, keyed as :func:`~mdfx.runners.training.learnable_params`.
    """
    module = to_module(net, spec.dtype, device)
    dtype, dev = module.dtype, module.device
    loss_fn = loss_rule(spec.loss)
    names = list(learnable_params(net))
    params = [module.tensor(name) for name in names]
    update = _grouped_update(spec, params, names)
    inputs = _tensors(spec.inputs, net, net.inputs, "inputs", dtype, dev)
    targets = _tensors(spec.targets, net, net.outputs, "targets", dtype, dev)
    outputs = list(net.outputs)
    orders = spec.orders()
    epochs, mb = len(orders), spec.minibatch_size
    shuffled = spec.randomize_minibatch
    index = torch.as_tensor(orders, device=dev) if shuffled else None
    in_batches: list[dict[str, Tensor]] = []
    tgt_batches: list[dict[str, Tensor]] = []
    if not shuffled:  # the same minibatches every epoch
        in_batches, tgt_batches = _batches(inputs, None, mb), _batches(targets, None, mb)

    forward = module.forward  # skips nn.Module.__call__'s hook dispatch; the module has no hooks
    before, after, on_mb = spec.call_before_minibatch, spec.call_after_minibatch, spec.on_minibatch
    stopper = EarlyStopper(spec.patience, spec.min_delta)
    losses: list[float] = []
    pending: list[Tensor] = []  # losses still on the device: read once per epoch at most, not per minibatch
    epoch_outputs: list[dict[str, Tensor]] = []
    last_order = np.arange(0)
    every: list[dict[str, np.ndarray]] = []
    epochs_run = 0
    for epoch in range(epochs):
        if shuffled:
            in_batches, tgt_batches = _batches(inputs, index[epoch], mb), _batches(targets, index[epoch], mb)
        # outputs are kept only where they may end up in last_outputs
        keep_outputs = spec.patience is not None or epoch == epochs - 1 or spec.keep_epoch_outputs
        epoch_outputs = []
        for b, (x, t) in enumerate(zip(in_batches, tgt_batches, strict=True)):
            if before:
                before()
            y = forward(x)
            loss = loss_fn(y[outputs[0]], t[outputs[0]])
            for name in outputs[1:]:
                loss = loss + loss_fn(y[name], t[name])
            if params:
                update(torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True))
            loss = loss.detach()
            pending.append(loss)
            if on_mb:
                on_mb(epoch, b, loss.item())
            if keep_outputs:
                epoch_outputs.append({name: y[name].detach() for name in outputs})
            if after:
                after()
        epochs_run = epoch + 1
        last_order = orders[epoch]
        if spec.keep_epoch_outputs:
            every.append({name: _in_trial_order([o[name] for o in epoch_outputs], last_order) for name in outputs})
        if spec.patience is not None or spec.on_epoch is not None:
            epoch_losses = torch.stack(pending).tolist()
            losses.extend(epoch_losses)
            pending = []
            if spec.on_epoch is not None:
                spec.on_epoch(epoch, float(np.mean(epoch_losses)))
            if stopper.step(float(np.mean(epoch_losses))):
                break
    if pending:
        losses.extend(torch.stack(pending).tolist())
    getattr(update, "save", lambda: None)()
    module.copy_into(net, names)
    last = {name: _in_trial_order([o[name] for o in epoch_outputs], last_order)
            for name in outputs} if epoch_outputs else {}
    params_out = {name: array.copy() for name, array in learnable_params(net).items()}
    return LearnResult(params_out, losses, epochs_run, last, every)


def run(net: Net, inputs: Mapping[str, np.ndarray], device: str = "cpu", dtype: str = "float64",
        module: NetModule | None = None) -> dict[str, np.ndarray]:
    """Inference: OUTPUT node values by name, each (trials, size) float64.

    ``inputs[name]`` is (trials, size) for each INPUT node. Pass a ``module``
    built by :func:`~mdfx.converters.torch.to_module` to reuse it across calls.
    """
    module = module or to_module(net, dtype, device)
    x = _tensors(inputs, net, net.inputs, "inputs", module.dtype, module.device)
    with torch.no_grad():
        y = module(x)
    return {name: v.cpu().numpy().astype(np.float64) for name, v in y.items()}


def validation_runner(net: Net, dtype: str) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """The :mod:`mdfx.runners.compare` factory: build the module once, return ``run(inputs)``."""
    module = to_module(net, dtype)
    return lambda inputs: run(net, inputs, module=module)
