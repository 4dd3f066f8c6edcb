"""The reference runner: plain numpy, float64, written to be read (DESIGN rule 4).

Every other runner is tested against this one. One small function per op
lives in :mod:`mdfx.ops`; this module registers them as its rules and walks a
:class:`~mdfx.schema.net.Net` forward (and backward, for Python-mode learning).

Arrays are batched: a node's values have shape ``(trials, size)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mdfx import ops
from mdfx.schema.net import Net

#: This backend's rule per transfer op: forward and vector-Jacobian product.
TRANSFER = {name: (op.forward, op.vjp) for name, op in ops.TRANSFER.items()}


@dataclass
class Trace:
    """What a forward pass leaves for the backward pass: net inputs and values per node."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]


def forward(net: Net, inputs: Mapping[str, np.ndarray]) -> Trace:
    """Run every node in topological order; ``inputs[name]`` has shape (trials, size)."""
    x: dict[str, np.ndarray] = {}
    y: dict[str, np.ndarray] = {}
    for node in net.nodes:
        if node.name in net.inputs:
            net_input = np.asarray(inputs[node.name], dtype=np.float64)
        else:
            net_input = sum(y[p.sender] @ p.matrix for p in net.incoming(node.name))
        if node.bias is not None:
            net_input = net_input + node.bias
        fwd, _ = TRANSFER[node.op]
        x[node.name] = net_input
        y[node.name] = fwd(net_input, **node.params)
    return Trace(x, y)


def run(net: Net, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of the OUTPUT nodes, by name, each (trials, size)."""
    trace = forward(net, inputs)
    return {name: trace.y[name] for name in net.outputs}


def backward(net: Net, trace: Trace, grad_outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Backpropagation: d(loss)/d(parameter) for every learnable matrix and bias.

    ``grad_outputs[name]`` is d(loss)/d(value) of an OUTPUT node, shape (trials, size).
    Returns gradients keyed by projection name, and by ``"<node>.bias"`` for biases.
    """
    grad_y = {name: np.array(g, dtype=np.float64) for name, g in grad_outputs.items()}
    grads: dict[str, np.ndarray] = {}
    for node in reversed(net.nodes):
        g = grad_y.get(node.name)
        if g is None:
            continue
        _, vjp = TRANSFER[node.op]
        grad_x = vjp(trace.x[node.name], trace.y[node.name], g, **node.params)
        if node.bias is not None and node.bias_learnable:
            grads[f"{node.name}.bias"] = grad_x.sum(axis=0)
        for p in net.incoming(node.name):
            if p.learnable:
                grads[p.name] = trace.y[p.sender].T @ grad_x
            upstream = grad_x @ p.matrix.T
            grad_y[p.sender] = grad_y[p.sender] + upstream if p.sender in grad_y else upstream
    return grads
