"""The benchmark networks, as Nets with fixed, seeded initial weights and data.

Every yardstick (mdfx's modes, the hand-written torch / numpy / C loops,
PsyNeuLink) trains the same :class:`BenchCase`: ``case.net()`` gives a fresh
copy of the initial network, ``case.spec()`` the learn() plan (SGD, MSE, no
shuffling), ``case.trials`` the number of trials it runs.

* ``xor``: 2-10-1 logistic, the 4 XOR trials x 500 epochs, minibatch 1;
* ``digits``: 64-100-10 logistic on sklearn's ``load_digits`` (pixels / 16,
  one-hot targets; random data of the same shape without sklearn),
  the first 500 samples x 3 epochs, minibatch 1 and 32;
* ``semantic``: Rumelhart's semantic net -- item (8) -> representation (8);
  representation and relation (4) -> hidden (15) -> attributes (36), logistic;
  random 0/1 data, 32 trials x 50 epochs, minibatch 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mdfx import ops
from mdfx.runners.training import LearnSpec
from mdfx.schema.graph import Graph
from mdfx.schema.mechanisms import MechanismSpec, ProjectionSpec
from mdfx.schema.mechanisms import build as build_network


@dataclass
class BenchCase:
    """One benchmark: a network, its data and the learn() settings."""

    name: str
    initial: Graph  #: never trained; :meth:`net` hands out copies
    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    epochs: int
    minibatch_size: int
    learning_rate: float

    def net(self) -> Graph:
        """A fresh copy of the initial network."""
        return self.initial.copy()

    def spec(self) -> LearnSpec:
        return LearnSpec(self.inputs, self.targets, epochs=self.epochs, minibatch_size=self.minibatch_size,
                         learning_rate=self.learning_rate, loss="MSE", optimizer="sgd")

    @property
    def trials(self) -> int:
        """Trials trained in all: samples x epochs."""
        return len(next(iter(self.inputs.values()))) * self.epochs


def _node(name: str, size: int, op: str) -> MechanismSpec:
    return MechanismSpec(name, size, op, ops.fill_params(ops.transfer_op(op), {}))


def _net(name: str, layers: list[tuple[str, int, str]], edges: list[tuple[str, str]], seed: int) -> Graph:
    """Nodes (name, size, op) and projections "sender -> receiver" with uniform(-0.5, 0.5) weights."""
    rng = np.random.default_rng(seed)
    nodes = [_node(*layer) for layer in layers]
    size = {n.name: n.size for n in nodes}
    projections = [ProjectionSpec(f"{s}->{r}", s, r, rng.uniform(-0.5, 0.5, (size[s], size[r])))
                   for s, r in edges]
    return build_network(name, nodes, projections)


def xor(epochs: int = 500) -> BenchCase:
    net = _net("xor", [("input", 2, "linear"), ("hidden", 10, "logistic"), ("output", 1, "logistic")],
               [("input", "hidden"), ("hidden", "output")], seed=0)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    t = np.array([[0], [1], [1], [0]], dtype=np.float64)
    return BenchCase("xor", net, {"input": x}, {"output": t}, epochs, 1, 0.5)


def digits_data(samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(samples, 64) pixels in [0, 1] and (samples, 10) one-hot labels."""
    try:
        from sklearn.datasets import load_digits

        d = load_digits()
        x, labels = d.data[:samples] / 16.0, d.target[:samples]
    except ImportError:  # same shapes and ranges, so the timing is still meaningful
        rng = np.random.default_rng(1)
        x, labels = rng.uniform(0, 1, (samples, 64)), rng.integers(0, 10, samples)
    return x.astype(np.float64), np.eye(10)[labels]


def digits(minibatch_size: int, samples: int = 500, epochs: int = 3) -> BenchCase:
    net = _net("digits", [("pixels", 64, "linear"), ("hidden", 100, "logistic"), ("digit", 10, "logistic")],
               [("pixels", "hidden"), ("hidden", "digit")], seed=1)
    x, t = digits_data(samples)
    return BenchCase(f"digits mb{minibatch_size}", net, {"pixels": x}, {"digit": t}, epochs,
                     minibatch_size, 0.1)


def semantic(trials: int = 32, epochs: int = 50) -> BenchCase:
    net = _net("semantic",
               [("item", 8, "linear"), ("relation", 4, "linear"), ("representation", 8, "logistic"),
                ("hidden", 15, "logistic"), ("attributes", 36, "logistic")],
               [("item", "representation"), ("representation", "hidden"), ("relation", "hidden"),
                ("hidden", "attributes")], seed=2)
    rng = np.random.default_rng(3)
    data = {"item": rng.integers(0, 2, (trials, 8)), "relation": rng.integers(0, 2, (trials, 4))}
    targets = {"attributes": rng.integers(0, 2, (trials, 36)).astype(np.float64)}
    return BenchCase("semantic", net, {k: v.astype(np.float64) for k, v in data.items()}, targets,
                     epochs, 1, 0.1)


def cases(quick: bool = False) -> list[BenchCase]:
    """Every benchmark; ``quick`` trims epochs and samples for a smoke run."""
    if quick:
        return [xor(epochs=50), digits(1, samples=100, epochs=1), digits(32, samples=320, epochs=1),
                semantic(epochs=5)]
    return [xor(), digits(1), digits(32), semantic()]
