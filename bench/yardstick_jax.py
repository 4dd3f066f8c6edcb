"""JAX as a yardstick: the whole training loop compiled, under ``jit`` with ``lax.scan``.

The same networks, initial weights, data, minibatches and SGD/MSE step as the size
bench's hand torch loop (:mod:`bench.bench_size`): a projection is ``x @ W``
(``W`` as ``(sender, receiver)``), a logistic node ``1 / (1 + exp(-net))``, the loss
torch's mean-reduced MSE over each minibatch, one SGD step per minibatch, trials in
order. Every epoch's full minibatches run in one ``lax.scan`` and the epochs in an outer
one, so one compiled call does all of training; a last, shorter minibatch (when the
minibatch does not divide the trials) is a second compiled step inside the epoch body.

JAX is a bench-only dependency (``pip install "jax[cpu]"``); :func:`available` says
whether it is installed, and the size bench leaves its column out with a note when not.
Computation is float64 (``jax_enable_x64``) or float32 as asked. The compile is outside
the timer (a warm-up call on the same shapes), as the other columns' build is.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def available() -> str | None:
    """None when JAX imports, else the reason the column is skipped."""
    try:
        import jax  # noqa: F401
    except ImportError as exc:  # the bench runs without it; say why the column is missing
        return f"JAX column skipped: {exc} (pip install 'jax[cpu]')"
    return None


def _trainer(case: Any, mb: int, dtype: str) -> tuple[Any, list[np.ndarray], list]:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    names = [p for p, _, _ in case.edges]
    incoming = {n: case.incoming(n) for n, _, _ in case.nodes}
    kinds = {n: op for n, _, op in case.nodes}
    inputs = list(case.inputs)
    out = case.nodes[-1][0]

    def forward(ws: list, xs: list) -> Any:
        values = dict(zip(inputs, xs, strict=True))
        w = dict(zip(names, ws, strict=True))
        for n, _, _ in case.nodes:
            if n in values:
                continue
            net = sum(values[s] @ w[p] for p, s in incoming[n])
            values[n] = jax.nn.sigmoid(net) if kinds[n] == "logistic" else net
        return values[out]

    def loss(ws: list, xs: list, t: Any) -> Any:
        return jnp.mean((forward(ws, xs) - t) ** 2)

    grad = jax.grad(loss)
    lr = jnp.asarray(case.learning_rate, dtype)

    def step(ws: list, batch: tuple) -> tuple[list, None]:
        xs, t = batch
        return [w - lr * g for w, g in zip(ws, grad(ws, xs, t), strict=True)], None

    n = len(case.targets[out])
    full = n // mb
    xs = [jnp.asarray(case.inputs[k].astype(dtype)) for k in inputs]
    t = jnp.asarray(case.targets[out].astype(dtype))
    batched = ([x[:full * mb].reshape(full, mb, *x.shape[1:]) for x in xs],
               t[:full * mb].reshape(full, mb, *t.shape[1:]))
    tail = ([x[full * mb:] for x in xs], t[full * mb:]) if full * mb < n else None

    def epoch(ws: list, _: Any) -> tuple[list, None]:
        ws, _ = jax.lax.scan(step, ws, batched)
        if tail is not None:
            ws, _ = step(ws, tail)
        return ws, None

    @jax.jit
    def train(ws: list) -> list:
        ws, _ = jax.lax.scan(epoch, ws, None, length=case.epochs)
        return ws

    return train, [case.weights[p].astype(dtype) for p in names], names


#: compiled trainers by (case, minibatch, dtype): the bench calls a column many times per row
_TRAINERS: dict[tuple[int, int, str], tuple[Any, list[np.ndarray], list]] = {}


def single_thread() -> None:
    """Ask XLA's CPU backend for one intra-op thread (before jax is first imported)."""
    import os

    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()


def jax_train(case: Any, mb: int, dtype: str) -> tuple[dict[str, np.ndarray], float]:
    """Train the case in JAX; (trained matrices by projection name, seconds of the compiled call)."""
    import jax

    key = (id(case), mb, dtype)
    if key not in _TRAINERS:
        _TRAINERS[key] = _trainer(case, mb, dtype)
        train, w0, _ = _TRAINERS[key]
        jax.block_until_ready(train([np.array(w) for w in w0]))  # compile and warm up, untimed
    train, w0, names = _TRAINERS[key]
    start = time.perf_counter()
    trained = jax.block_until_ready(train([np.array(w) for w in w0]))
    seconds = time.perf_counter() - start
    return {p: np.asarray(w, dtype=np.float64) for p, w in zip(names, trained, strict=True)}, seconds
