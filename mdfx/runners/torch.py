"""ExecutionMode.PyTorch: train and run a :class:`~mdfx.schema.graph.Graph` with torch.

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

Performance (DESIGN "Performance design"): the module is built once per graph
structure and cached (:func:`~mdfx.converters.torch.cached_module`); in float64
on the CPU its tensors are the graph's own arrays, so nothing is copied per call
and training updates the user's arrays in place. All data lives on the device as tensors; an epoch's minibatches are views
(``split``) of the data, gathered once per epoch in that epoch's trial order;
losses stay on the device until the end (one transfer per epoch with
``patience``, a ``.item()`` per minibatch only when ``on_minibatch`` asks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mdfx import ops
from mdfx.converters.torch import GraphModule, cached_module, loss_rule
from mdfx.errors import DataError
from mdfx.runners.training import (
    LearnResult,
    LearnSpec,
    OptimizerState,
    batch_norm_statistics,
    by_tensor,
    count_batch_norm_steps,
    drive,
    learning_rate_of,
)
from mdfx.schema import validate
from mdfx.schema.graph import Graph

Update = Callable[[Sequence[Tensor]], None]


def make_update(optimizer: str, params: Sequence[Tensor], lr: float | Sequence[float], weight_decay: float = 0.0,
                state: OptimizerState | None = None, names: Sequence[str] = ()) -> Update:
    """An in-place optimizer step ``update(grads)`` for ``params``, as torch.optim computes it.

    ``optimizer`` is a key of :data:`mdfx.ops.OPTIMIZERS` (``"sgd"``, ``"adam"``,
    with torch's default hyper-parameters); ``lr`` one rate, or one per param;
    ``weight_decay`` is added to the gradient (L2), as torch.optim's ``weight_decay``
    does. With ``state`` (and the params' ``names``), Adam starts from the carried
    moments and step count; call ``update.save()`` after training to write them back.
    """
    op = ops.optimizer_op(optimizer)
    # updates write through detached aliases: same storage, no autograd bookkeeping, no no_grad()
    data = [p.detach() for p in params]
    if not data:
        return lambda grads: None

    def decayed(grads: Sequence[Tensor]) -> Sequence[Tensor]:
        return torch._foreach_add(grads, data, alpha=weight_decay) if weight_decay else grads

    rates = [float(lr)] * len(data) if isinstance(lr, int | float) else [float(r) for r in lr]
    uniform = len(set(rates)) == 1
    if op.name == "sgd":
        if uniform:
            def sgd(grads: Sequence[Tensor]) -> None:
                torch._foreach_add_(data, decayed(grads), alpha=-rates[0])
            return sgd

        def sgd_rates(grads: Sequence[Tensor]) -> None:
            for d, g, r in zip(data, decayed(grads), rates, strict=True):
                d.add_(g, alpha=-r)
        return sgd_rates

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
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, bias_correction2_sqrt)
        torch._foreach_add_(denom, eps)
        if uniform:
            torch._foreach_addcdiv_(data, exp_avg, denom, value=-rates[0] / (1 - beta1**step))
        else:
            for d, m, v, r in zip(data, exp_avg, denom, rates, strict=True):
                d.addcdiv_(m, v, value=-r / (1 - beta1**step))

    def save() -> None:
        if state is None:
            return
        state.step = step
        for n, m, v in zip(names, exp_avg, exp_avg_sq, strict=True):
            state.slots[n] = {"m": m.detach().cpu().double().numpy().copy(),
                              "v": v.detach().cpu().double().numpy().copy()}

    adam.save = save  # type: ignore[attr-defined]
    return adam


def _tensors(arrays: Mapping[str, np.ndarray], graph: Graph, names: Sequence[str], what: str,
             dtype: torch.dtype, device: torch.device) -> dict[str, Tensor]:
    """``arrays[name]`` for each tensor name as a (trials, *features) tensor; errors name the tensor."""
    out = {}
    for name in names:
        if name not in arrays:
            raise DataError(f"no {what} given for {name!r} (given: {', '.join(arrays) or 'none'})")
        a = np.asarray(arrays[name], dtype=np.float64)
        feats = graph.features(name)
        size = math.prod(feats)
        if a.ndim < 2 or len(a) == 0 or math.prod(a.shape[1:]) != size:
            raise DataError(f"{what} for {name!r} has shape {a.shape}; expected (trials, {size})")
        out[name] = torch.as_tensor(a.reshape((len(a), *feats)), dtype=dtype, device=device)
    return out


def _batches(data: Mapping[str, Tensor], index: Tensor | None, size: int) -> list[dict[str, Tensor]]:
    """One epoch's minibatches: ``[{name: (b, n) view}]``; ``index`` None keeps the given order."""
    names = list(data)
    parts = [(data[n] if index is None else data[n].index_select(0, index)).split(size) for n in names]
    return [dict(zip(names, views, strict=True)) for views in zip(*parts, strict=True)]


def _target_batches(data: Mapping[str, Tensor], index: Tensor | None, size: int, count: int
                    ) -> list[dict[str, Tensor]]:
    """As :func:`_batches`; ``count`` empty dicts when every target is internal."""
    return _batches(data, index, size) if data else [{} for _ in range(count)]


def _in_trial_order(batches: list[Tensor], order: np.ndarray) -> np.ndarray:
    """An epoch's minibatch outputs, taken in ``order``, as float64 rows in trial order."""
    values = torch.cat(batches).cpu().numpy()
    out = np.empty(values.shape)
    out[order] = values
    return out


def train(graph: Graph, spec: LearnSpec, device: str = "cpu") -> LearnResult:
    """ExecutionMode.PyTorch: the whole learn() loop of ``spec`` on ``device``; trains the graph in place.

    ``spec`` is keyed by the graph's tensor names (or its mechanisms' names:
    outputs come back keyed as given). In float64 on the CPU the module trains the graph's
    own arrays; otherwise they receive the trained values when training ends
    (callbacks during training then see the initial ones). The result holds copies.
    """
    validate.learn_spec(graph, spec)
    spec, back = by_tensor(graph, spec)
    module = cached_module(graph, spec.dtype, device)
    dtype, dev = module.dtype, module.device
    loss_fn = loss_rule(spec.loss)
    names = list(graph.learnable())
    params = [module.tensor(name) for name in names]
    update = make_update(spec.optimizer, params, [learning_rate_of(spec, n) for n in names], spec.weight_decay,
                         spec.optimizer_state, names)
    inputs = _tensors(spec.inputs, graph, list(graph.inputs), "inputs", dtype, dev)
    trained = spec.trained()
    outputs = spec.reported()  # the trained tensors, then those only reported
    internal = spec.target_tensors
    computed = [*outputs, *(t for t in internal.values() if t not in outputs)]
    targets = _tensors(spec.targets, graph, list(spec.targets), "targets", dtype, dev)
    orders = spec.orders()
    epochs, mb = len(orders), spec.minibatch_size
    shuffled = spec.randomize_minibatch
    index = torch.as_tensor(orders, device=dev) if shuffled else None
    in_batches: list[dict[str, Tensor]] = []
    tgt_batches: list[dict[str, Tensor]] = []
    if not shuffled:  # the same minibatches every epoch
        in_batches = _batches(inputs, None, mb)
        tgt_batches = _target_batches(targets, None, mb, len(in_batches))

    # backward() leaves each gradient in a tensor of its own that the step reads and drops, as
    # zero_grad(set_to_none=True) does: no zeroing and no accumulating pass over the weights per
    # step (buffers zeroed after each step made minibatch 1 on 784-1024-1024-10 1.5x the hand
    # loop). A param no trained output depends on steps with zeros, as in the reference.
    zeros: dict[int, Tensor] = {}

    def gradients() -> list[Tensor]:
        return [p.grad if p.grad is not None else zeros.setdefault(i, torch.zeros_like(p))
                for i, p in enumerate(params)]

    for p in params:
        p.grad = None
    # What a step keeps goes into buffers made once per learn(): the epoch's losses, its trials'
    # outputs. A small tensor kept per step (a 0-d loss, a (1, n) output) lands in the holes the
    # freed gradients leave and fragments glibc's heap (measured: up to +1.8 GB RSS at minibatch 1,
    # 2048 trials of 784-256-128-10; with none kept, +220 MB, the same as minibatch 128).
    ntrials = len(orders[0]) if epochs else 0
    epoch_losses_buf = torch.empty(-(-ntrials // mb), dtype=dtype, device=dev)
    outputs_buf = {name: torch.empty((ntrials, *graph.features(name)), dtype=dtype, device=dev) for name in outputs}
    forward = module.forward  # skips nn.Module.__call__'s hook dispatch; the module has no hooks
    losses: list[float] = []
    kept: dict[str, np.ndarray] = {}  # the outputs of the last epoch that kept them, in trial order
    every: list[dict[str, np.ndarray]] = []
    flat = {name: len(graph.features(name)) != 1 for name in outputs}
    statistics = batch_norm_statistics(graph)
    # training-mode BatchNorm: batch statistics, running ones updated (eval() again below, and the
    # cached module always runs inference in eval())
    module.train(bool(statistics))
    per_epoch = -(-ntrials // mb)
    # the last step's outputs and loss stay alive until the weights are copied out, as the loop
    # body's locals did: freed earlier, glibc may hand the memory back to the OS at each call
    held: list[Any] = []

    def steps(k0: int, k1: int) -> None:  # the kernel the one schedule (training.drive) calls
        nonlocal in_batches, tgt_batches, kept
        for k in range(k0, k1):
            epoch, b = divmod(k, per_epoch)
            if b == 0 and shuffled:
                in_batches = _batches(inputs, index[epoch], mb)
                tgt_batches = _target_batches(targets, index[epoch], mb, len(in_batches))
            # outputs are kept only where they may end up in last_outputs
            keep_outputs = spec.patience is not None or epoch == epochs - 1 or spec.keep_epoch_outputs
            step(epoch, b, in_batches[b], tgt_batches[b], keep_outputs)
            if b == per_epoch - 1:  # the epoch's bookkeeping, once its last step has run
                if keep_outputs:
                    kept = {back.get(name, name): _in_trial_order([outputs_buf[name]], orders[epoch])
                            for name in outputs}
                if spec.keep_epoch_outputs:
                    every.append(kept)
                losses.extend(epoch_losses_buf.tolist())  # the buffer is reused: read once per epoch

    def loss_of(k: int) -> float:
        # a finished epoch's losses are in ``losses``; the running one's in its buffer
        return losses[k] if k < len(losses) else float(epoch_losses_buf[k % per_epoch].item())

    def step(epoch: int, b: int, x: dict[str, Tensor], t: dict[str, Tensor], keep_outputs: bool) -> None:
        """One minibatch: forward, loss, backward, update; its loss into the epoch's buffer."""
        y = forward(x, computed)
        loss = None
        for name in trained:
            # an internal target is a constant of the loss, as in PsyNeuLink
            yo, to = y[name], t[name] if name in t else y[internal[name]].detach()
            if flat[name]:  # losses see (B, features) rows, as the reference's
                yo, to = yo.reshape(len(yo), -1), to.reshape(len(to), -1)
            loss = loss_fn(yo, to) if loss is None else loss + loss_fn(yo, to)
        if params:
            if loss.requires_grad:  # else no trained output depends on a param: zero steps
                loss.backward()
            update(gradients())
            for p in params:
                p.grad = None
        epoch_losses_buf[b] = loss.detach()
        held[:] = (y, loss)
        if keep_outputs:  # rows b*mb... of the epoch's trial order
            for name in outputs:
                outputs_buf[name][b * mb:b * mb + len(y[name])] = y[name].detach()

    epochs_run = drive(spec, per_epoch, steps, loss_of)
    module.eval()
    getattr(update, "save", lambda: None)()
    for p in params:  # the cached module keeps no gradient buffers between calls
        p.grad = None
    module.copy_into(None, [*names, *statistics])
    count_batch_norm_steps(graph, len(losses))
    last = kept
    params_out = {name: array.copy() for name, array in graph.learnable().items()}
    held.clear()
    return LearnResult(params_out, losses, epochs_run, last, every)


def run(graph: Graph, inputs: Mapping[str, np.ndarray], device: str = "cpu", dtype: str = "float64",
        module: GraphModule | None = None) -> dict[str, np.ndarray]:
    """Inference: the graph's outputs (keyed by :meth:`Graph.output_names`), float64 arrays.

    ``inputs[name]`` is (trials, *features) for each graph input. The module is
    cached per structure; pass one built by :func:`~mdfx.converters.torch.to_module`
    to use it instead.
    """
    validate.run_inputs(graph, inputs, allow_empty=True)
    module = module or cached_module(graph, dtype, device)
    x = _tensors(inputs, graph, list(graph.inputs), "inputs", module.dtype, module.device)
    with torch.no_grad():
        y = module(x)
    return graph.named_outputs({name: v.cpu().numpy().astype(np.float64) if isinstance(v, Tensor) else v
                                for name, v in y.items()})


def run_all(graph: Graph, inputs: Mapping[str, np.ndarray], tensors: Sequence[str], device: str = "cpu",
            dtype: str = "float64") -> dict[str, Any]:
    """The values of ``tensors`` (any of the graph's: node values, not only outputs), as numpy."""
    module = cached_module(graph, dtype, device)
    x = _tensors(inputs, graph, list(graph.inputs), "inputs", module.dtype, module.device)
    with torch.no_grad():
        y = module(x, outputs=tuple(tensors))
    return {name: v.cpu().numpy().astype(np.float64) if isinstance(v, Tensor) else v for name, v in y.items()}


def validation_runner(graph: Graph, dtype: str) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """The :mod:`mdfx.runners.compare` factory: build the module once, return ``run(inputs)``."""
    from mdfx.converters.torch import to_module

    module = to_module(graph, dtype)
    return lambda inputs: run(graph, inputs, module=module)
