"""Batched replicas: R copies of one network trained side by side in one vectorised loop.

A sweep over seeds (initial weights) and learning rates trains the same
network many times on the same data. Here every weight gets a leading replica
axis -- a projection's matrix is ``(R, sender, receiver)``, a minibatch's values
``(R, B, size)`` -- so one ``np.matmul`` per projection trains all replicas at
once, and numpy's per-call overhead is paid once per minibatch instead of once
per replica.

The arithmetic is the Python-mode learn() (:func:`mdfx.runners.training.train_reference`)
with that extra axis: the same op-table forward and VJP per node, the same loss,
the same optimizer step (``ops.OPTIMIZERS``, whose update broadcasts a per-replica
learning rate), the same trial orders. Each replica equals its own learn() to
rounding (tested to 1e-12 against every execution mode).

What it supports, read from the network's :class:`~mdfx.schema.graph.Graph`
(its :attr:`~mdfx.schema.graph.Graph.mechanisms`, already in topological
order, and its params): mechanisms with one InputPort joined by projections
(converging projections, skip connections, several inputs and outputs, biases);
every transfer function of the op table; every loss (MSE and SSE vectorised,
the others per replica); SGD and Adam with weight decay; minibatches;
shuffling (each replica its own order). Replicas differ in their weights and
learning rate only. :func:`unsupported` says why a graph or an option set is
refused (float32, early stopping, an op graph without mechanisms, several
InputPorts, an optimizer state carried from an earlier learn()); the sweep then
trains those runs one by one with learn().
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mdfx import ops
from mdfx.errors import UnsupportedError
from mdfx.runners.training import LearnSpec, drive
from mdfx.schema.graph import Graph


@dataclass
class _Node:
    name: str
    size: int
    op: ops.GraphOp
    params: dict[str, float]
    bias: bool
    bias_learnable: bool
    incoming: list[_Proj] = field(default_factory=list)


@dataclass
class _Proj:
    name: str
    sender: str
    receiver: str
    learnable: bool


@dataclass
class Structure:
    """The network as the replica loop walks it: nodes in topological order, roles."""

    nodes: list[_Node]
    projections: list[_Proj]
    inputs: list[str]
    outputs: list[str]

    def param_names(self) -> list[str]:
        """Every weight (projection matrices, then node biases), learnable or not."""
        return [p.name for p in self.projections] + [f"{n.name}.bias" for n in self.nodes if n.bias]

    def learnable(self) -> list[str]:
        return ([p.name for p in self.projections if p.learnable]
                + [f"{n.name}.bias" for n in self.nodes if n.bias and n.bias_learnable])


def structure(graph: Graph) -> Structure:
    """Read a graph's mechanisms; :class:`UnsupportedError` says what does not fit."""
    net = graph.mechanisms
    if net is None:
        raise UnsupportedError(f"graph {graph.name!r} is an op graph from another tool (no mechanisms); "
                               "replicas train networks of mechanisms and projections")
    wide = [n.name for n in net.nodes if n.ports != 1]
    if wide:
        raise UnsupportedError(f"{graph.name!r} has mechanisms with several InputPorts ({', '.join(wide)})")
    nodes = {}
    for m in net.nodes:
        bias = graph.params[m.bias] if m.bias is not None else None
        nodes[m.name] = _Node(m.name, m.size, ops.transfer_op(m.function), dict(m.params), bias is not None,
                              bias is None or bias.learnable)
    projs = []
    for p in net.projections:
        proj = _Proj(p.name, p.sender, p.receiver, graph.params[p.name].learnable)
        nodes[proj.receiver].incoming.append(proj)
        projs.append(proj)
    return Structure(list(nodes.values()), projs, list(net.inputs), list(net.outputs))


def unsupported(graph: Graph, options: Mapping[str, Any], optimizer_state: Any = None) -> str | None:
    """Why these learn() options on ``graph`` cannot train as replicas; None when they can.

    ``optimizer_state``: the model's (Adam's moments carried from an earlier learn()).
    """
    try:
        structure(graph)
    except UnsupportedError as exc:
        return str(exc)
    if options.get("dtype", "float64") != "float64":
        return "replicas compute in float64 only"
    if options.get("patience") is not None:
        return "early stopping (patience) stops each run at its own epoch"
    if optimizer_state is not None and (optimizer_state.step or optimizer_state.slots):
        return "the model carries optimizer state from an earlier learn()"
    try:
        ops.optimizer_op(str(options.get("optimizer", "sgd")))
        ops.loss_op(str(options.get("loss", "MSE")))
    except UnsupportedError as exc:
        return str(exc)
    return None


@dataclass
class ReplicaResult:
    """One replica's trained weights (by name, as learn() leaves them) and its minibatch losses."""

    params: dict[str, np.ndarray]
    losses: list[float]


def train(graph: Graph, weights: Sequence[Mapping[str, np.ndarray]], learning_rates: Sequence[float],
          inputs: Mapping[str, np.ndarray], targets: Mapping[str, np.ndarray], orders: np.ndarray,
          minibatch_size: int, loss: str, optimizer: str, weight_decay: float = 0.0) -> list[ReplicaResult]:
    """Train R replicas of ``graph``'s structure at once.

    ``weights[r]`` holds replica r's initial weights by name (every name of
    :meth:`Structure.param_names`); ``learning_rates[r]`` its learning rate;
    ``orders`` is (R, epochs, trials): replica r's trial order per epoch.
    ``inputs``/``targets`` are (trials, size) float64 arrays by node name.
    ``graph`` is read, never changed.
    """
    net = structure(graph)
    n_rep = len(weights)
    if n_rep == 0 or len(learning_rates) != n_rep or orders.ndim != 3 or orders.shape[0] != n_rep:
        raise ValueError(f"replicas.train: {n_rep} weight sets, {len(learning_rates)} learning rates and "
                         f"orders of shape {orders.shape}; expected one of each per replica")
    w = {name: np.stack([np.asarray(ws[name], dtype=np.float64) for ws in weights]) for name in net.param_names()}
    learnable = net.learnable()
    opt = ops.optimizer_op(optimizer)
    loss_op = ops.loss_op(loss)
    lrs = np.asarray(learning_rates, dtype=np.float64)
    state: dict[str, dict] = {name: {} for name in learnable}
    x_all = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    t_all = {k: np.asarray(v, dtype=np.float64) for k, v in targets.items()}
    _, epochs, trials = orders.shape
    # All replicas in the same order (no shuffling): one (1, B, n) slice broadcasts over them.
    shared = bool(np.all(orders == orders[:1]))
    losses = np.zeros((n_rep, 0)).tolist()
    per_epoch = -(-trials // minibatch_size)

    def steps(k0: int, k1: int) -> None:  # the kernel of the one schedule (training.drive)
        for k in range(k0, k1):
            epoch, b = divmod(k, per_epoch)
            start = b * minibatch_size
            idx = orders[:1, epoch, start:start + minibatch_size] if shared else \
                orders[:, epoch, start:start + minibatch_size]
            x_in = {key: v[idx] for key, v in x_all.items()}
            t_in = {key: v[idx] for key, v in t_all.items()}
            xs, ys = _forward(net, w, x_in)
            total, grad_out = _loss(net, loss_op, ys, t_in)
            grads = _backward(net, w, xs, ys, grad_out)
            for name in learnable:
                lr = lrs.reshape((n_rep,) + (1,) * (w[name].ndim - 1))
                opt.step(w[name], grads[name], state[name], lr, weight_decay, k + 1, **opt.hyper)
            for r in range(n_rep):
                losses[r].append(float(total[r]))

    # replicas take no callbacks and no patience (unsupported() refuses it): one run of every step
    drive(LearnSpec(x_all, t_all, epochs=epochs, minibatch_size=minibatch_size), per_epoch, steps,
          lambda k: float(np.mean([run[k] for run in losses])))
    return [ReplicaResult({name: w[name][r].copy() for name in learnable}, losses[r]) for r in range(n_rep)]


def _forward(net: Structure, w: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Net inputs (before the transfer function) and values per node, each (R or 1, B, size)."""
    xs: dict[str, np.ndarray] = {}
    ys: dict[str, np.ndarray] = {}
    for node in net.nodes:
        if node.name in net.inputs:
            x = inputs[node.name]
        else:
            x = sum(ys[p.sender] @ w[p.name] for p in node.incoming)
        if node.bias:
            x = x + w[f"{node.name}.bias"][:, None, :]
        xs[node.name] = x
        ys[node.name] = node.op.forward([x], **node.params)
    return xs, ys


def _loss(net: Structure, loss_op: ops.LossOp, ys: dict[str, np.ndarray], targets: dict[str, np.ndarray]
          ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each replica's minibatch loss (summed over OUTPUT nodes, as the reference) and d(loss)/d(output)."""
    total: np.ndarray | float = 0.0
    grads = {}
    for name in net.outputs:
        y, t = ys[name], targets[name]
        if t.shape[0] != y.shape[0]:
            t = np.broadcast_to(t, y.shape)
        if loss_op.name == "MSE":
            value, grad = np.mean((y - t) ** 2, axis=(1, 2)), 2.0 * (y - t) / float(y[0].size)
        elif loss_op.name == "SSE":
            value, grad = np.sum((y - t) ** 2, axis=(1, 2)), 2.0 * (y - t)
        else:  # the op table's own loss, replica by replica
            value = np.array([loss_op.forward(y[r], t[r]) for r in range(len(y))])
            grad = np.stack([loss_op.grad(y[r], t[r]) for r in range(len(y))])
        total = total + value
        grads[name] = grad
    return np.asarray(total), grads


def _backward(net: Structure, w: dict[str, np.ndarray], xs: dict[str, np.ndarray], ys: dict[str, np.ndarray],
              grad_outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Gradients of every learnable weight, (R, ...) each; the reference's backward with a replica axis."""
    grad_y = dict(grad_outputs)
    grads: dict[str, np.ndarray] = {}
    needs_grad = _needs_grad(net)
    for node in reversed(net.nodes):
        g = grad_y.get(node.name)
        if g is None:
            continue
        (grad_x,) = node.op.vjp([xs[node.name]], ys[node.name], g, **node.params)
        if node.bias and node.bias_learnable:
            grads[f"{node.name}.bias"] = grad_x.sum(axis=1)
        for p in node.incoming:
            if p.learnable:
                grads[p.name] = np.swapaxes(ys[p.sender], 1, 2) @ grad_x
            if p.sender in needs_grad:
                upstream = grad_x @ np.swapaxes(w[p.name], 1, 2)
                grad_y[p.sender] = grad_y[p.sender] + upstream if p.sender in grad_y else upstream
    return grads


def _needs_grad(net: Structure) -> set[str]:
    """Nodes whose value's gradient reaches a learnable weight (others need no upstream product)."""
    needs: set[str] = set()
    for node in net.nodes:  # topological: a node's senders are decided before it
        if (node.bias and node.bias_learnable) or any(p.learnable or p.sender in needs for p in node.incoming):
            needs.add(node.name)
    return needs
