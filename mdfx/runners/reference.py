"""The reference runner: plain numpy, float64, written to be read (DESIGN rule 4).

Every other runner is tested against this one. It walks a
:class:`~mdfx.schema.graph.Graph` forward with each op's numpy rule from the op
table (:data:`mdfx.ops.GRAPH_OPS`), and backward with each op's vector-Jacobian
product, for Python-mode learning.

Batched tensors have the batch on axis 0: an input of feature shape ``(n,)`` is
given as ``(trials, n)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mdfx import ops
from mdfx.errors import DataError
from mdfx.schema.graph import Graph

#: This backend's rule per graph op: (forward, vjp); vjp None takes no gradient.
RULES = {name: (op.forward, op.vjp) for name, op in ops.GRAPH_OPS.items()}


def forward(g: Graph, inputs: Mapping[str, np.ndarray], training: bool = False) -> dict[str, np.ndarray]:
    """Every tensor's value: inputs ``(trials, *features)``, params, then each node in order.

    ``training`` (a learn() step): a BatchNormalization with ``training_mode=1`` normalises with the
    batch's statistics and updates its running mean and variance in place, as torch's BatchNorm in
    train(); without it (run()), every BatchNormalization uses its running statistics (eval()).
    """
    env: dict[str, np.ndarray] = {}
    for name, feats in g.inputs.items():
        if name not in inputs:
            raise DataError(f"no input given for {name!r} of {g.name!r} (inputs: {', '.join(g.inputs)})")
        x = np.asarray(inputs[name], dtype=np.float64)
        env[name] = x.reshape((x.shape[0], *feats)) if x.ndim == 2 and len(feats) != 1 else x
    for k, p in g.params.items():
        env[k] = p.value
    for node in g.nodes:
        fwd = RULES[node.op][0]
        xs = [env[t] if t else None for t in node.inputs]
        attrs = node.attrs
        if node.op == "BatchNormalization" and attrs["training_mode"]:
            if training:
                # torch updates after normalising with the batch statistics: the same values
                ops.update_running_statistics(xs[0], g.params[node.inputs[3]].value, g.params[node.inputs[4]].value,
                                              float(attrs["momentum"]))
            else:
                attrs = {**attrs, "training_mode": 0}
        env[node.output] = fwd(xs, **attrs)
    return env


def run(g: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The graph's outputs, keyed by :meth:`Graph.output_names` (a mechanism's name, or the tensor)."""
    from mdfx.schema import validate

    validate.run_inputs(g, inputs, allow_empty=True)  # the shared check every runner makes first
    return g.named_outputs(forward(g, inputs))


def backward(g: Graph, env: Mapping[str, np.ndarray], grad_outputs: Mapping[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
    """Backpropagation: d(loss)/d(param) for every learnable param (zeros where none flows).

    ``env`` is :func:`forward`'s result; ``grad_outputs[tensor]`` is d(loss)/d(tensor).
    """
    grads: dict[str, np.ndarray] = {t: np.asarray(v, dtype=np.float64) for t, v in grad_outputs.items()}
    needed = _needs_grad(g)
    for node in reversed(g.nodes):
        gy = grads.pop(node.output, None)
        vjp = RULES[node.op][1]
        if gy is None or vjp is None or node.output not in needed:
            continue
        gxs = vjp([env[t] if t else None for t in node.inputs], env[node.output], gy, **node.attrs)
        for t, gx in zip(node.inputs, gxs, strict=False):
            if gx is None or not t or t not in needed:
                continue
            grads[t] = grads[t] + gx if t in grads else gx
    return {k: np.asarray(grads[k]) if k in grads else np.zeros_like(v) for k, v in g.learnable().items()}


def _needs_grad(g: Graph) -> set[str]:
    """Learnable params and every tensor computed from one: where gradients are worth computing."""
    needed = {k for k, p in g.params.items() if p.learnable}
    for node in g.nodes:
        if any(t in needed for t in node.inputs):
            needed.add(node.output)
    return needed
