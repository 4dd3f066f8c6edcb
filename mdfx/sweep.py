"""Many trainings at once: sweeps over learn() options, weight-init seeds and data sets, on Dask.

``mdfx.sweep(model, data, grid={...}, seeds=[...])`` trains one copy of ``model``
per point of the cartesian product *datasets x grid x seeds* and returns one
pandas DataFrame row per run (``mdfx sweep`` on the command line is the same).

* **Grid keys** are learn() options: ``learning_rate``, ``optimizer``, ``loss``,
  ``weight_decay``, ``epochs``, ``minibatch_size``, ``randomize_minibatch``,
  ``execution_mode``, ``dtype``, ``patience``, ``min_delta``; each a list of values
  (a single value is a one-element list). Options not in the grid take learn()'s
  defaults and the model's own settings, except ``execution_mode``, which
  defaults to LLVMRun (the fastest). A bad grid is refused before anything
  starts, with a :class:`~mdfx.errors.GridError` naming the key.
* **Seeds** re-draw the initial weights of every learnable projection (fixed
  projections and biases keep the model's values) from
  ``numpy.random.default_rng(seed)``, projection by projection in the
  composition's order (see :func:`init_weights` for the schemes); the seed also
  seeds the shuffled trial order when ``randomize_minibatch`` is on. Without
  ``seeds`` each configuration trains once, from the model's own weights.
* **Data** is ``{"inputs": {node: trials}, "targets": {node: trials}}``, an
  ``(inputs, targets)`` pair, or a ``.json``/``.npz`` data file as ``mdfx train``
  reads it; a *list* of these fits one copy per data set (column ``dataset``).

Each run records its options, final loss (last epoch's mean minibatch loss),
per-epoch loss curve, wall time, status (``ok``, ``diverged`` when a loss or a
weight is NaN/inf, ``error`` with the message) and trained weights. With
``out=DIR`` every run's record (``runs/<run>.json``) and weights
(``weights/<run>.npz``) are written atomically as soon as the run is back, named
by the run's options; ``results.csv`` (and ``results.parquet`` when pyarrow is
installed) holds the table. Restarted with the same ``out``, a sweep skips the
runs already done.

**Execution.** ``client=`` (a ``dask.distributed.Client``) or ``scheduler=``
(``"tcp://host:port"``) runs on an existing Dask cluster; otherwise mdfx starts
a ``LocalCluster`` with one single-threaded worker process per core
(``workers=``) and stops it at the end; ``workers=0`` trains in this process.
The model and each data set are scattered to the workers once. A worker keeps
its compiled LLVM kernels across runs (the LLVM runner caches them per process
by structure), so it compiles once per structure and option set; the
``compiled`` column counts the kernels a run compiled. Tasks lost with a
worker are retried on another.

**Batched replicas** (:mod:`mdfx.runners.replicas`): runs that differ only in
seed and learning rate train together in one vectorised numpy loop.
``replicas="auto"`` (default) uses them where the benchmark found them faster
(see :func:`_replicas_pay`), ``True`` wherever supported, ``False`` never.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import itertools
import json
import math
import os
import pickle
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mdfx.errors import DataError, GraphError, GridError, MdfxError

# --- the grid -----------------------------------------------------------------------------------------


def _number(key: str, value: object, minimum: float | None = None, strict: bool = False) -> float:
    if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not math.isfinite(value):
        raise GridError(f"grid: {key!r} values must be finite numbers, got {value!r} ({type(value).__name__})")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise GridError(f"grid: {key!r} values must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return float(value)


def _count(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise GridError(f"grid: {key!r} values must be positive integers, got {value!r} ({type(value).__name__})")
    return int(value)


def _choice(key: str, value: object, lookup: Callable[[str], str], choices: Iterable[str]) -> str:
    name = getattr(value, "name", value)
    if not isinstance(name, str):
        raise GridError(f"grid: {key!r} values must be names ({', '.join(choices)}), got {value!r} "
                        f"({type(value).__name__})")
    try:
        return lookup(name)
    except (KeyError, MdfxError):
        raise GridError(f"grid: {key!r} has no value {name!r}; choose from {', '.join(choices)}") from None


def _mode(name: str) -> str:
    from mdfx.composition.enums import ExecutionMode

    aliases = {"python": "Python", "torch": "PyTorch", "pytorch": "PyTorch", "llvm": "LLVMRun",
               "llvmrun": "LLVMRun"}
    mode = ExecutionMode[aliases.get(name.lower(), name)]
    if mode.value not in ("Python", "PyTorch", "LLVMRun"):
        raise KeyError(name)
    return mode.value


def _loss(name: str) -> str:
    from mdfx import ops

    return ops.loss_op(name).name


def _optimizer(name: str) -> str:
    from mdfx import ops

    return ops.optimizer_op(name).name


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise GridError(f"grid: {key!r} values must be true or false, got {value!r} ({type(value).__name__})")
    return bool(value)


def _dtype(key: str, value: object) -> str:
    return _choice(key, value, lambda s: {"float64": "float64", "float32": "float32"}[s], ["float64", "float32"])


#: Every option a grid may sweep: its normaliser (raises GridError naming the key).
OPTIONS: dict[str, Callable[[str, object], object]] = {
    "learning_rate": lambda k, v: _number(k, v, 0.0, strict=True),
    "optimizer": lambda k, v: _choice(k, v, _optimizer, ["sgd", "adam"]),
    "loss": lambda k, v: _choice(k, v, _loss, ["MSE", "SSE", "L1", "CROSS_ENTROPY", "BINARY_CROSS_ENTROPY",
                                               "KL_DIV", "NLL", "POISSON_NLL"]),
    "weight_decay": lambda k, v: _number(k, v, 0.0),
    "epochs": _count,
    "minibatch_size": _count,
    "randomize_minibatch": _flag,
    "execution_mode": lambda k, v: _choice(k, v, _mode, ["Python", "PyTorch", "LLVMRun"]),
    "dtype": _dtype,
    "patience": lambda k, v: None if v is None else _count(k, v),
    "min_delta": lambda k, v: _number(k, v, 0.0),
}
#: Spellings accepted for an option (PsyNeuLink's constructor names).
ALIASES = {"optimizer_type": "optimizer", "loss_spec": "loss", "lr": "learning_rate",
           "randomize_minibatches": "randomize_minibatch", "mode": "execution_mode"}
#: Weight-init schemes of :func:`init_weights`.
INITS = ("uniform", "normal", "pnl_random", "model")


def check_grid(grid: Mapping[str, Any] | None) -> dict[str, list]:
    """The grid with every value normalised; a :class:`GridError` naming the key otherwise."""
    if grid is None:
        return {}
    if not isinstance(grid, Mapping):
        raise GridError(f"grid must be a mapping of learn() options to lists of values, got {type(grid).__name__}")
    out: dict[str, list] = {}
    for raw_key, values in grid.items():
        key = ALIASES.get(raw_key, raw_key)
        if key not in OPTIONS:
            raise GridError(f"grid: unknown option {raw_key!r}; options are {', '.join(OPTIONS)}")
        if key in out:
            raise GridError(f"grid: option {key!r} is given twice ({raw_key!r} is an alias)")
        if not isinstance(values, list | tuple | np.ndarray):
            values = [values]
        if len(values) == 0:
            raise GridError(f"grid: {raw_key!r} is an empty list; give at least one value")
        normal = [OPTIONS[key](raw_key, v) for v in values]
        dupes = sorted({str(v) for v in normal if normal.count(v) > 1})
        if dupes:
            raise GridError(f"grid: {raw_key!r} lists {', '.join(dupes)} more than once")
        out[key] = normal
    return out


def check_seeds(seeds: int | Sequence[int] | None) -> list[int | None]:
    """``None`` (the model's weights), ``N`` (seeds 0..N-1) or a list of distinct integers >= 0."""
    if seeds is None:
        return [None]
    if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool):
        if seeds < 1:
            raise GridError(f"seeds: give a positive number of seeds or a list, got {seeds!r}")
        return list(range(int(seeds)))
    if isinstance(seeds, str) or not isinstance(seeds, Sequence | np.ndarray):
        raise GridError(f"seeds must be a number or a list of integers, got {seeds!r} ({type(seeds).__name__})")
    if len(seeds) == 0:
        raise GridError("seeds is an empty list; give at least one seed (or leave seeds out)")
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0:
            raise GridError(f"seeds must be integers >= 0, got {s!r} ({type(s).__name__})")
        out.append(int(s))
    if len(set(out)) != len(out):
        raise GridError(f"seeds lists a seed more than once: {out}")
    return out


# --- weights --------------------------------------------------------------------------------------------


def init_weights(comp: Any, seed: int | None, scheme: str = "uniform") -> None:
    """Re-draw ``comp``'s learnable projection matrices from ``numpy.random.default_rng(seed)``.

    Projections are drawn one after another in ``comp.projections`` order, each
    with the shape (sender size, receiver size); ``fan_in`` is the sender's size.

    * ``"uniform"``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch.nn.Linear's default;
    * ``"normal"``: N(0, 1/fan_in), LeCun's normal;
    * ``"pnl_random"``: U[0, 1), PsyNeuLink's ``RANDOM_CONNECTIVITY_MATRIX``;
    * ``"model"``: keep the model's weights (the seed then only orders shuffled trials).

    ``seed=None`` keeps the model's weights too. Fixed projections and biases are never changed.
    """
    if scheme not in INITS:
        raise GridError(f"init: unknown scheme {scheme!r}; choose from {', '.join(INITS)}")
    if seed is None or scheme == "model":
        return
    rng = np.random.default_rng(seed)
    for p in comp.projections:
        if not p.learnable:
            continue
        shape = p.matrix.shape
        if scheme == "uniform":
            bound = 1.0 / math.sqrt(shape[0])
            p.matrix = rng.uniform(-bound, bound, shape)
        elif scheme == "normal":
            p.matrix = rng.normal(0.0, 1.0 / math.sqrt(shape[0]), shape)
        else:
            p.matrix = rng.random(shape)


def weights_of(comp: Any) -> dict[str, np.ndarray]:
    """Every weight by name: projection matrices, and ``"<node>.bias"`` for biases."""
    out = {p.name: np.array(p.matrix, dtype=np.float64) for p in comp.projections}
    out.update({f"{m.name}.bias": np.array(m.bias, dtype=np.float64) for m in comp.nodes
                if getattr(m, "bias", None) is not None})
    return out


def _set_weights(comp: Any, weights: Mapping[str, np.ndarray]) -> None:
    for p in comp.projections:
        p.matrix = weights[p.name]
    for m in comp.nodes:
        if getattr(m, "bias", None) is not None and f"{m.name}.bias" in weights:
            m.bias = np.array(weights[f"{m.name}.bias"], dtype=np.float64)


# --- data -----------------------------------------------------------------------------------------------

Dataset = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


def _datasets(comp: Any, data: Any) -> dict[str, Dataset]:
    """``{name: (inputs, targets)}``, float64 arrays keyed by node name, checked against ``comp``."""
    from mdfx.composition.enums import NodeRole

    items = list(data) if isinstance(data, list) else [data]
    if not items:
        raise DataError("data: an empty list of data sets; give at least one")
    ins = {n.name: n.size for n in comp.get_nodes_by_role(NodeRole.INPUT)}
    outs = {n.name: n.size for n in comp.get_nodes_by_role(NodeRole.OUTPUT)}
    out: dict[str, Dataset] = {}
    for i, item in enumerate(items):
        name = Path(item).stem if isinstance(item, str | Path) else (f"data{i}" if len(items) > 1 else "data")
        if name in out:
            name = f"{name}{i}"
        x, t = _read_one(item)
        out[name] = (_arrays(x, ins, "input", name), _arrays(t, outs, "target", name))
        counts = {len(a) for a in [*out[name][0].values(), *out[name][1].values()]}
        if len(counts) != 1:
            raise DataError(f"data set {name!r}: inputs and targets have different numbers of trials {sorted(counts)}")
    return out


def _read_one(item: Any) -> tuple[Mapping, Mapping]:
    if isinstance(item, str | Path):
        from mdfx.files import read_data

        return read_data(item)
    if isinstance(item, tuple) and len(item) == 2:
        return item
    if isinstance(item, Mapping) and "inputs" in item:
        return item["inputs"], item.get("targets") or {}
    raise DataError("data must be {'inputs': ..., 'targets': ...}, an (inputs, targets) pair, a .json/.npz "
                    f"file or a list of these; got {type(item).__name__}")


def _arrays(given: Mapping, sizes: dict[str, int], role: str, dataset: str) -> dict[str, np.ndarray]:
    by_name = {getattr(k, "name", k): v for k, v in given.items()}
    out = {}
    for name, size in sizes.items():
        if name not in by_name:
            raise DataError(f"data set {dataset!r}: no {role} for node {name!r} "
                            f"(given: {', '.join(map(str, by_name)) or 'nothing'})")
        try:
            arr = np.array(by_name[name], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"data set {dataset!r}: {role} for node {name!r} is not numeric: {exc}") from None
        if arr.ndim == 1:
            arr = arr[:, None] if size == 1 else arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != size:
            raise DataError(f"data set {dataset!r}: {role} for node {name!r} has shape {arr.shape}; "
                            f"expected (trials, {size})")
        out[name] = np.ascontiguousarray(arr)
    return out


# --- runs -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One training: a data set, a seed and every learn() option."""

    run_id: str
    dataset: str
    seed: int | None
    options: tuple[tuple[str, Any], ...]  #: every OPTIONS key, in OPTIONS order

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.options)


def _defaults(comp: Any) -> dict[str, Any]:
    rate = comp.default_rate() if hasattr(comp, "default_rate") else comp.learning_rate
    return {"learning_rate": float(rate), "optimizer": comp.optimizer_type,
            "loss": comp.loss_spec.value, "weight_decay": float(comp.weight_decay), "epochs": 1,
            "minibatch_size": 1, "randomize_minibatch": False, "execution_mode": "LLVMRun",
            "dtype": "float64", "patience": None, "min_delta": 0.0}


_UNSAFE = re.compile(r"[^A-Za-z0-9.=,+-]+")


def run_name(varying: Mapping[str, Any], dataset: str | None, seed: int | None, digest: str) -> str:
    """A file name from the run's options: ``key=value`` pairs, sanitised, plus a hash that keeps it unique.

    Only ``[A-Za-z0-9.=,+-]`` survive (anything else becomes ``_``), so no name
    can climb out of the output folder or hide as a dot-file.
    """
    parts = [f"{k}={v}" for k, v in varying.items()]
    if dataset is not None:
        parts.insert(0, f"data={dataset}")
    if seed is not None:
        parts.append(f"seed={seed}")
    slug = re.sub(r"_+", "_", re.sub(r"\.{2,}", "_", _UNSAFE.sub("_", ",".join(parts))))
    slug = slug.strip("._")[:100] or "run"
    return f"{slug}-{digest[:10]}"


def plan_runs(comp: Any, datasets: Mapping[str, Dataset], grid: Mapping[str, list], seeds: list[int | None],
              init: str) -> list[Run]:
    """Every run of the sweep: datasets x grid (in the grid's key order) x seeds."""
    defaults = _defaults(comp)
    model_hash = _fingerprint(weights_of(comp), repr(comp.to_mdf().to_dict()))
    keys = list(grid)
    runs = []
    for dataset, (x, t) in datasets.items():
        data_hash = _fingerprint({**x, **{f"t/{k}": v for k, v in t.items()}})
        for combo in itertools.product(*(grid[k] for k in keys)):
            chosen = dict(zip(keys, combo, strict=True))
            options = {k: chosen.get(k, defaults[k]) for k in OPTIONS}
            for seed in seeds:
                ident = json.dumps([model_hash, data_hash, init, seed, options], sort_keys=True, default=str)
                digest = hashlib.sha256(ident.encode()).hexdigest()
                varying = {k: v for k, v in chosen.items() if len(grid[k]) > 1}
                name = run_name(varying, dataset if len(datasets) > 1 else None, seed, digest)
                runs.append(Run(name, dataset, seed, tuple(options.items())))
    return runs


def _fingerprint(arrays: Mapping[str, np.ndarray], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype=np.float64)
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def train_run(template: Any, data: Dataset, run: Run, init: str) -> dict[str, Any]:
    """Train a fresh copy of ``template`` as ``run`` says, with learn(); the run's record.

    This is exactly what a user would write for one run (and what the tests do alone):
    copy the model, :func:`init_weights`, set optimizer/loss/weight decay, ``learn()``.
    ``template`` may also be the composition pickled (a copy is then one ``pickle.loads``,
    several times faster than ``copy.deepcopy``).
    """
    from mdfx.composition.enums import ExecutionMode, Loss

    o = run.opts
    start = time.perf_counter()
    comp = pickle.loads(template) if isinstance(template, bytes) else copy.deepcopy(template)
    init_weights(comp, run.seed, init)
    comp.optimizer_type = o["optimizer"]
    comp.loss_spec = Loss[o["loss"]]
    comp.weight_decay = o["weight_decay"]
    x, t = data
    compiled_before = _compile_count()
    record = _record(run)
    try:
        # A diverging run overflows; that is a result to record, not a warning to raise.
        with np.errstate(all="ignore"):
            comp.learn(inputs=x, targets=t, epochs=o["epochs"], learning_rate=o["learning_rate"],
                       minibatch_size=o["minibatch_size"], randomize_minibatch=o["randomize_minibatch"],
                       seed=_shuffle_seed(run), patience=o["patience"], min_delta=o["min_delta"],
                       execution_mode=ExecutionMode[o["execution_mode"]], dtype=o["dtype"])
    except Exception as exc:  # one failing run must not stop the sweep: record it
        record.update(status="error", error=f"{type(exc).__name__}: {exc}", wall_s=time.perf_counter() - start)
        return record
    per_epoch = -(-len(next(iter(t.values()))) // o["minibatch_size"])
    _finish(record, comp.losses, per_epoch, weights_of(comp))
    record.update(wall_s=time.perf_counter() - start, compiled=_compile_count() - compiled_before)
    return record


def _replica_graph(template: Any) -> Any:
    """The template's graph, the replicas' input; UnsupportedError when the template is not an
    AutodiffComposition of TransferMechanisms and MappingProjections (nested compositions, learning
    pathways' nodes)."""
    from mdfx.composition.mechanisms import TransferMechanism
    from mdfx.composition.projections import MappingProjection
    from mdfx.errors import UnsupportedError

    if not hasattr(template, "learn") or not hasattr(template, "projections"):
        raise UnsupportedError(f"{template!r} is not an AutodiffComposition")
    odd = [getattr(m, "name", repr(m)) for m in template.nodes if not isinstance(m, TransferMechanism)]
    if odd:
        raise UnsupportedError(f"{template.name!r} has nodes that are not TransferMechanisms ({', '.join(odd)})")
    for p in template.projections:
        if not isinstance(p, MappingProjection):
            raise UnsupportedError(f"{template.name!r}: projection {p!r} is not a MappingProjection")
    return template._graph()


def _replicas_unsupported(template: Any, opts: Mapping[str, Any]) -> str | None:
    """Why these runs of ``template`` cannot train as replicas (None: they can)."""
    from mdfx.errors import UnsupportedError
    from mdfx.runners import replicas

    try:
        graph = _replica_graph(template)
    except (UnsupportedError, GraphError) as exc:
        return str(exc)
    return replicas.unsupported(graph, opts, getattr(template, "optimizer_state", None))


def train_replicas(template: Any, data: Dataset, runs: Sequence[Run], init: str) -> list[dict[str, Any]]:
    """Train ``runs`` (same options but seed and learning rate) as batched replicas; their records."""
    from mdfx.runners import replicas
    from mdfx.runners.training import trial_orders

    start = time.perf_counter()
    o = runs[0].opts
    x, t = data
    trials = len(next(iter(t.values())))
    weights = []
    for run in runs:
        comp = copy.deepcopy(template)
        init_weights(comp, run.seed, init)
        weights.append(weights_of(comp))
    orders = np.stack([trial_orders(trials, o["epochs"], o["randomize_minibatch"], _shuffle_seed(run))
                       for run in runs])
    with np.errstate(all="ignore"):
        results = replicas.train(_replica_graph(template), weights, [r.opts["learning_rate"] for r in runs], x, t, orders,
                                 o["minibatch_size"], o["loss"], o["optimizer"], o["weight_decay"])
    wall = (time.perf_counter() - start) / len(runs)
    per_epoch = -(-trials // o["minibatch_size"])
    records = []
    for run, w0, res in zip(runs, weights, results, strict=True):
        record = _record(run)
        _finish(record, res.losses, per_epoch, {**w0, **res.params})
        record.update(wall_s=wall, batched=len(runs))
        records.append(record)
    return records


def _shuffle_seed(run: Run) -> int:
    return 0 if run.seed is None else run.seed


def _compile_count() -> int:
    import sys

    jit = sys.modules.get("mdfx.converters.llvm.jit")  # never import llvmlite just to count
    return int(getattr(jit, "compile_count", 0))


def _record(run: Run) -> dict[str, Any]:
    return {"run_id": run.run_id, "dataset": run.dataset, "seed": run.seed, **run.opts, "status": "ok",
            "final_loss": float("nan"), "epochs_run": 0, "curve": [], "wall_s": 0.0, "batched": 0,
            "compiled": 0, "worker": f"{socket.gethostname()}:{os.getpid()}", "error": ""}


def _finish(record: dict[str, Any], losses: Sequence[float], per_epoch: int, weights: dict[str, np.ndarray]
            ) -> None:
    """Status, per-epoch curve (each epoch's mean minibatch loss, as early stopping sees it) and weights."""
    array = np.asarray(losses, dtype=np.float64)
    epochs = len(array) // per_epoch
    curve = array[:epochs * per_epoch].reshape(epochs, per_epoch).mean(axis=1).tolist()
    finite = bool(np.isfinite(array).all()) and all(np.isfinite(w).all() for w in weights.values())
    record.update(status="ok" if finite else "diverged", final_loss=curve[-1] if curve else float("nan"),
                  epochs_run=epochs, curve=curve, weights=weights)


def _task(template: Any, data: Dataset, runs: Sequence[Run], init: str, batched: bool) -> list[dict[str, Any]]:
    """One unit of work on a worker: a group of replicas, or runs one by one."""
    blob = pickle.dumps(template)  # each run starts from pickle.loads(blob), a fresh copy
    if batched and len(runs) > 1:
        try:
            return train_replicas(template, data, runs, init)
        except Exception as exc:  # fall back to the runs one by one, which record their own errors
            fallback = [train_run(blob, data, run, init) for run in runs]
            for record in fallback:
                record["error"] = record["error"] or f"replicas fell back: {type(exc).__name__}: {exc}"
            return fallback
    return [train_run(blob, data, run, init) for run in runs]


# --- grouping runs into tasks ---------------------------------------------------------------------------


def _replicas_pay(opts: Mapping[str, Any], group: int) -> bool:
    """Whether batched replicas beat training the runs one by one (bench/bench_sweep.py measures it).

    Python and PyTorch modes pay per-minibatch Python overhead for every run,
    which replicas share (XOR: 4-35x fewer seconds per run); the compiled LLVM
    loop has no such overhead and beat the numpy replicas at every replica count
    measured, so LLVMRun runs train one by one.
    """
    return group >= 2 and opts["execution_mode"] != "LLVMRun"


def _tasks(template: Any, runs: list[Run], replicas: bool | str, workers: int) -> list[tuple[list[Run], bool]]:
    """Runs grouped into tasks: (runs, as replicas?).

    Replica groups are split so every worker gets a share. Runs trained one by one
    go several to a task (about four tasks per worker, at most 16 runs each): a
    Dask task costs a few milliseconds of scheduling, as much as a small run.
    """

    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        key = (run.dataset, tuple((k, v) for k, v in run.options if k != "learning_rate"))
        groups.setdefault(key, []).append(run)
    tasks: list[tuple[list[Run], bool]] = []
    single: dict[str, list[Run]] = {}
    for group in groups.values():
        opts = group[0].opts
        why = None if replicas is False else _replicas_unsupported(template, opts)
        if replicas is True and why is not None and len(group) > 1:
            raise MdfxError(f"replicas=True, but these runs cannot train as replicas: {why}")
        use = replicas is not False and why is None and len(group) > 1 and \
            (replicas is True or _replicas_pay(opts, len(group)))
        if not use:
            single.setdefault(group[0].dataset, []).extend(group)
            continue
        pieces = max(1, min(workers, len(group) // 2))
        size = -(-len(group) // pieces)
        tasks += [(group[i:i + size], True) for i in range(0, len(group), size)]
    for one_by_one in single.values():
        size = max(1, min(16, len(one_by_one) // (4 * workers)))
        tasks += [(one_by_one[i:i + size], False) for i in range(0, len(one_by_one), size)]
    return tasks


# --- results on disk ------------------------------------------------------------------------------------


class _Store:
    """``out/runs/<run>.json`` and ``out/weights/<run>.npz``, each written atomically."""

    def __init__(self, out: str | Path | None) -> None:
        self.out = None if out is None else Path(out)
        if self.out is not None:
            for sub in ("runs", "weights"):
                (self.out / sub).mkdir(parents=True, exist_ok=True)

    def done(self, run: Run) -> dict[str, Any] | None:
        """The stored record of a completed run (ok or diverged), else None."""
        if self.out is None:
            return None
        path = self.out / "runs" / f"{run.run_id}.json"
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if record.get("status") not in ("ok", "diverged"):
            return None  # errors are retried
        if not (self.out / record.get("weights_file", "")).is_file():
            return None
        return record

    def save(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write the weights, then the record (so a record on disk always has its weights)."""
        if self.out is None:
            return record
        from mdfx.io import atomic_write

        weights = record.pop("weights", None)
        if weights is not None:
            rel = f"weights/{record['run_id']}.npz"

            def write_npz(tmp: Path) -> None:
                with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a path
                    np.savez(f, **weights)

            atomic_write(self.out / rel, write_npz)
            record["weights_file"] = rel
        text = json.dumps(record, default=_json_default)
        atomic_write(self.out / "runs" / f"{record['run_id']}.json", lambda tmp: tmp.write_text(text))
        return record

    def table(self, df: Any) -> None:
        if self.out is None:
            return
        from mdfx.io import atomic_write

        flat = df.copy()
        flat["curve"] = [json.dumps(c) for c in flat["curve"]]
        atomic_write(self.out / "results.csv", lambda tmp: flat.to_csv(tmp, index=False))
        try:
            import pyarrow  # noqa: F401  (optional: Parquet only when it is installed)
        except ImportError:
            return
        atomic_write(self.out / "results.parquet", lambda tmp: df.to_parquet(tmp, index=False))


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to a run record")


# --- the sweep ------------------------------------------------------------------------------------------


@dataclass
class _Progress:
    bar: Any = None
    done: int = 0
    callbacks: list[Callable[[dict], None]] = field(default_factory=list)

    def update(self, record: dict) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            if math.isfinite(record.get("final_loss", float("nan"))):
                self.bar.set_postfix(loss=f"{record['final_loss']:.4g}")
        for cb in self.callbacks:
            cb(record)


def sweep(model: Any, data: Any, grid: Mapping[str, Any] | None = None, seeds: int | Sequence[int] | None = None,
          *, init: str = "uniform", out: str | Path | None = None, client: Any = None,
          scheduler: str | None = None, workers: int | None = None, replicas: bool | str = "auto",
          progress: bool = True, on_result: Callable[[dict], None] | None = None, retries: int = 2) -> Any:
    """Train ``model`` once per point of datasets x ``grid`` x ``seeds``; a pandas DataFrame, one row per run.

    ``model``: a composition or a model file (``mdfx.load``). ``data``: see the module
    docstring. ``grid``: ``{learn() option: [values]}``. ``seeds``: a count or a list.
    ``init``: the weight-init scheme of :func:`init_weights`. ``out``: a folder for the
    run records, weights files and ``results.csv`` (resumed when it holds runs of this
    sweep); without it, each row's ``weights`` holds the trained arrays. ``client`` /
    ``scheduler``: an existing Dask cluster; else a LocalCluster of ``workers``
    processes (default: one per core), ``workers=0`` in-process. ``replicas``:
    "auto", True or False. ``on_result(record)`` is called in this process as each
    run comes back. ``df.attrs["ran"]`` / ``["skipped"]`` list the run ids trained now
    and found done.
    """
    import pandas as pd

    grid = check_grid(grid)
    seed_list = check_seeds(seeds)
    if init not in INITS:
        raise GridError(f"init: unknown scheme {init!r}; choose from {', '.join(INITS)}")
    if replicas not in (True, False, "auto"):
        raise GridError(f"replicas must be True, False or 'auto', got {replicas!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise GridError(f"workers must be an integer >= 0, got {workers!r}")
    template = _template(model)
    datasets = _datasets(template, data)
    runs = plan_runs(template, datasets, grid, seed_list, init)
    store = _Store(out)
    records: dict[str, dict] = {}
    for run in runs:
        found = store.done(run)
        if found is not None:
            records[run.run_id] = found
    todo = [r for r in runs if r.run_id not in records]
    prog = _Progress(callbacks=[on_result] if on_result else [])
    if progress and todo:
        try:
            from tqdm import tqdm

            prog.bar = tqdm(total=len(todo), desc="sweep", unit="run")
        except ImportError:
            pass

    def collect(record: dict) -> None:
        records[record["run_id"]] = store.save(record)
        prog.update(record)

    try:
        if todo:
            if workers == 0 and client is None and scheduler is None:
                for chunk, batched in _tasks(template, todo, replicas, 1):
                    for record in _task(template, datasets[chunk[0].dataset], chunk, init, batched):
                        collect(record)
            else:
                _run_dask(template, datasets, todo, init, replicas, client, scheduler, workers, retries, collect)
    finally:
        if prog.bar is not None:
            prog.bar.close()
    rows = [records[r.run_id] for r in runs if r.run_id in records]
    df = pd.DataFrame(rows)
    if "weights_file" not in df.columns and out is not None:
        df["weights_file"] = None
    df.attrs["ran"] = [r.run_id for r in todo]
    ran = set(df.attrs["ran"])
    df.attrs["skipped"] = [r.run_id for r in runs if r.run_id in records and r.run_id not in ran]
    store.table(df)
    return df


def _template(model: Any) -> Any:
    if isinstance(model, str | Path):
        from mdfx.io import load

        model = load(model)
    if not hasattr(model, "learn") or not hasattr(model, "learning_rate"):
        raise MdfxError(f"sweep: {getattr(model, 'name', model)!r} is not an AutodiffComposition; nothing to train")
    return copy.deepcopy(model)


def local_cluster(n_workers: int) -> Any:
    """The LocalCluster a sweep starts: ``n_workers`` single-threaded worker processes.

    Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in its workers, which turns off
    glibc's adaptive mmap threshold: every numpy temporary over 64 KiB is then a fresh
    mmap and page faults, and batched replicas of the digits net ran 4x slower
    (measured). These workers keep the allocator's defaults; BLAS stays single-threaded.
    """
    import logging

    import dask
    from dask.distributed import LocalCluster

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                            silence_logs=logging.ERROR)


def _run_dask(template: Any, datasets: Mapping[str, Dataset], todo: list[Run], init: str,
              replicas: bool | str, client: Any, scheduler: str | None, workers: int | None, retries: int,
              collect: Callable[[dict], None]) -> None:
    import uuid

    from dask.distributed import Client, as_completed

    cluster = own_client = None
    if client is None:
        if scheduler:
            client = own_client = Client(scheduler)
        else:
            cluster = local_cluster(workers or os.cpu_count() or 1)
            client = own_client = Client(cluster)
    try:
        n_workers = max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
        # Scattered once: every task refers to these futures instead of carrying the arrays.
        names = list(datasets)
        futures_in = client.scatter([template, *(datasets[n] for n in names)], broadcast=True, hash=False)
        model_f, data_f = futures_in[0], dict(zip(names, futures_in[1:], strict=True))
        token = uuid.uuid4().hex[:8]
        futures = {}
        for i, (chunk, batched) in enumerate(_tasks(template, todo, replicas, n_workers)):
            fut = client.submit(_task, model_f, data_f[chunk[0].dataset], chunk, init, batched, pure=False,
                                retries=retries, key=f"mdfx-sweep-{token}-{i}")
            futures[fut.key] = (fut, chunk)
        for fut in as_completed([f for f, _ in futures.values()]):
            chunk = futures[fut.key][1]
            try:
                records = fut.result()
            except Exception as exc:  # e.g. KilledWorker after too many worker deaths: record, go on
                records = []
                for run in chunk:
                    record = _record(run)
                    record.update(status="error", error=f"{type(exc).__name__}: {exc}", worker="")
                    records.append(record)
            for record in records:
                collect(record)
            fut.release()
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()


# --- what users look at ---------------------------------------------------------------------------------


def _config_columns(df: Any) -> list[str]:
    """Columns that define a configuration (everything that varies but the seed)."""
    cols = ["dataset", *OPTIONS]
    return [c for c in cols if c in df.columns and df[c].astype(str).nunique() > 1]


def best(df: Any) -> dict[str, Any]:
    """The configuration with the lowest mean final loss over its seeds (finished runs only)."""
    ok = df[df["status"] == "ok"]
    if ok.empty:
        raise MdfxError("sweep: no run finished without diverging; there is no best configuration")
    cols = _config_columns(df) or ["dataset"]
    table = ok.assign(**{c: ok[c].astype(str) for c in cols}).groupby(cols, dropna=False)["final_loss"]
    stats = table.agg(["mean", "std", "count"]).sort_values("mean")
    key = stats.index[0] if len(cols) > 1 else (stats.index[0],)
    first = ok[np.logical_and.reduce([ok[c].astype(str) == k for c, k in zip(cols, key, strict=True)])].iloc[0]
    options = {k: _plain(first[k]) for k in OPTIONS if k in first}
    return {"config": {c: _plain(first[c]) for c in cols}, "options": options, "dataset": first["dataset"],
            "mean_final_loss": float(stats["mean"].iloc[0]),
            "std_final_loss": float(stats["std"].iloc[0]) if stats["count"].iloc[0] > 1 else 0.0,
            "runs": int(stats["count"].iloc[0])}


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def plot_curves(df: Any, path: str | Path, title: str = "") -> Path:
    """Learning curves per configuration: mean over seeds, shaded ± one standard deviation (a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mdfx.io import atomic_write

    cols = _config_columns(df)
    ok = df[df["status"] == "ok"]
    groups = ok.groupby([ok[c].astype(str) for c in cols]) if cols else [("all", ok)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    positive = True
    for key, group in groups:
        n = min(len(c) for c in group["curve"])
        curves = np.array([c[:n] for c in group["curve"]], dtype=np.float64)
        if curves.size == 0:
            continue
        mean, spread = curves.mean(axis=0), curves.std(axis=0)
        positive &= bool(np.all(mean - spread > 0))
        epochs = np.arange(1, n + 1)
        label = ", ".join(f"{c}={k}" for c, k in zip(cols, key if isinstance(key, tuple) else (key,),
                                                        strict=True)) if cols else "all runs"
        ax.plot(epochs, mean, label=f"{label} (n={len(curves)})")
        ax.fill_between(epochs, mean - spread, mean + spread, alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean ± sd over seeds)")
    if positive:
        ax.set_yscale("log")
    ax.set_title(title or "sweep")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)


# --- command line ---------------------------------------------------------------------------------------


def read_grid(path: str | Path) -> tuple[dict[str, Any], Any, str]:
    """A grid file (YAML or JSON): ``{option: [values], ..., seeds: N | [..], init: scheme}``."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise GridError(f"{path}: no such grid file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise GridError(f"{path}: not valid YAML/JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise GridError(f"{path}: a grid file is a mapping of learn() options to lists of values")
    seeds = raw.pop("seeds", None)
    init = raw.pop("init", "uniform")
    return raw, seeds, init


def add_parser(sub: Any) -> None:
    """The ``mdfx sweep`` subcommand (called by :func:`mdfx.cli.build_parser`)."""
    p = sub.add_parser("sweep", help="train many copies: a grid of learn() options x seeds x data sets, on Dask")
    p.add_argument("model")
    p.add_argument("--data", required=True, nargs="+", help=".json/.npz data files; several: one fit per file")
    p.add_argument("--grid", required=True, help="YAML/JSON: {option: [values], seeds: N or [...], init: scheme}")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: one per core; 0: in-process)")
    p.add_argument("--out", default="sweep_out", help="folder for results.csv, runs/ and weights/ (resumable)")
    p.add_argument("--plot", help="write the learning curves (mean ± sd over seeds) as a PNG")
    p.add_argument("--best", action="store_true", help="print the best configuration")
    p.add_argument("--replicas", choices=["auto", "on", "off"], default="auto", help="batched replicas")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    grid, seeds, init = read_grid(args.grid)
    data = args.data if len(args.data) > 1 else args.data[0]
    df = sweep(args.model, data, grid, seeds, init=init, out=args.out, scheduler=args.scheduler,
               workers=args.workers, replicas={"auto": "auto", "on": True, "off": False}[args.replicas],
               progress=not args.quiet)
    counts = df["status"].value_counts().to_dict()
    print(f"{len(df)} runs ({len(df.attrs['ran'])} trained now, {len(df.attrs['skipped'])} already done): "
          + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    print(f"wrote {Path(args.out) / 'results.csv'}")
    if args.plot:
        print(f"wrote {plot_curves(df, args.plot, title=Path(args.model).stem)}")
    if args.best:
        b = best(df)
        config = ", ".join(f"{k}={v}" for k, v in b["config"].items())
        print(f"best: {config or 'the only configuration'}: final loss {b['mean_final_loss']:.6g} "
              f"± {b['std_final_loss']:.2g} over {b['runs']} run(s)")
        print("  options: " + ", ".join(f"{k}={v}" for k, v in b["options"].items()))
    return 0
