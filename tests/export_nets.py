"""Small Nets for the ONNX export, onnxruntime and comparison tests, built directly from specs."""

from __future__ import annotations

import numpy as np

from mdfx import ops
from mdfx.schema.graph import Graph
from mdfx.schema.mechanisms import MechanismSpec, ProjectionSpec
from mdfx.schema.mechanisms import build as build_network

#: Per transfer op, non-default parameters (chosen so every parameter changes the output).
NON_DEFAULT: dict[str, dict[str, float]] = {
    "linear": {"slope": 1.5, "intercept": -0.3, "scale": 0.8, "offset": 0.05},
    "logistic": {"gain": 2.0, "bias": 0.1, "x_0": 0.3, "offset": 0.5, "scale": 1.5},
    "relu": {"gain": 1.5, "bias": 0.1, "leak": 0.1},
    "tanh": {"gain": 0.7, "bias": -0.2, "x_0": 0.1, "offset": 0.3, "scale": 2.0},
    "exponential": {"rate": 0.5, "bias": 0.1, "scale": 1.2, "offset": -0.4},
    "identity": {},
    "softmax": {"gain": 3.0},
}

#: (op, params) cases: every op at its defaults and with NON_DEFAULT params, plus a
#: leaky ReLU whose leak is exact in float32 (exported as LeakyRelu, not PRelu).
OP_CASES = [(op.transfer_key, {}) for op in ops.transfer_ops()] + list(NON_DEFAULT.items()) + [
    ("relu", {"leak": 0.25, "gain": 2.0}),
]


def node(name: str, size: int, op: str = "identity", params: dict[str, float] | None = None,
         bias: np.ndarray | None = None) -> MechanismSpec:
    return MechanismSpec(name, size, op, ops.fill_params(ops.transfer_op(op), params or {}), bias)


def proj(rng: np.random.Generator, sender: MechanismSpec, receiver: MechanismSpec) -> ProjectionSpec:
    matrix = rng.uniform(-1.0, 1.0, size=(sender.size, receiver.size))
    return ProjectionSpec(f"{sender.name}_to_{receiver.name}", sender.name, receiver.name, matrix)


def op_net(op: str, params: dict[str, float], seed: int = 0) -> Graph:
    """in (3) -> hidden (4, the op, with a bias) -> out (2, the op): the op on the path twice."""
    rng = np.random.default_rng(seed)
    a = node("in", 3)
    h = node("hidden", 4, op, params, bias=rng.uniform(-0.5, 0.5, 4))
    o = node("out", 2, op, params)
    return build_network(f"{op}_net", [a, h, o], [proj(rng, a, h), proj(rng, h, o)])


def multi_net(seed: int = 0) -> Graph:
    """Two inputs converging on a hidden layer, two outputs, a skip projection, biases."""
    rng = np.random.default_rng(seed)
    a = node("a", 2)
    b = node("b", 3, "linear", {"slope": 0.5})
    h = node("h", 4, "logistic", NON_DEFAULT["logistic"], bias=rng.uniform(-1, 1, 4))
    o1 = node("o1", 3, "softmax", {"gain": 2.0})
    o2 = node("o2", 2, "tanh", bias=rng.uniform(-1, 1, 2))
    return build_network("multi", [a, b, h, o1, o2],
                     [proj(rng, a, h), proj(rng, b, h), proj(rng, h, o1), proj(rng, h, o2), proj(rng, a, o2)])


def inputs_for(net: Graph, trials: int = 5, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-1.0, 1.0, (trials, net.size(name))) for name in net.inputs}
