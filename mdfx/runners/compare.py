"""Cross-runner validation: every runner's outputs against the reference, in one table.

Runners are found through :data:`RUNNERS`, a registry of *factories*:
``factory(graph, dtype)`` does the slow, untimed setup (export, compile, build a
session) and returns ``run(inputs) -> outputs``, which is timed. ``graph`` is the
model's :class:`~mdfx.schema.graph.Graph`; inputs and outputs are dicts of
``(trials, *features)`` arrays keyed by its input and output tensor names.

Validating an ONNX file adds a row for onnxruntime on the **original file**
beside the row for mdfx's re-export, so a difference between the file and what
mdfx made of it shows. Outputs that are not float tensors (labels, ZipMap's
dicts) are compared as numbers (a dict row as its values in label order).

A registry entry is a callable or a ``"module:function"`` string imported on
first use, so backends with heavy dependencies (torch, llvmlite) register
without being imported. A factory whose module or library is not installed
(``ImportError``), or that does not support a dtype (``NotImplementedError``),
shows as a skipped row with the reason.

Tolerances live in :data:`TOLERANCES`, once.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mdfx import limits
from mdfx.errors import DataError, MdfxError
from mdfx.runners import reference
from mdfx.schema import validate as checks
from mdfx.schema.graph import Graph

Inputs = Mapping[str, np.ndarray]
Outputs = Mapping[str, np.ndarray]
RunFn = Callable[[Inputs], Outputs]
Factory = Callable[[Graph, str], RunFn]

#: Per dtype, how close a runner must be to the float64 reference (np.allclose's rule:
#: ``|out - ref| <= atol + rtol * |ref|``). The one place tolerances are set.
TOLERANCES: dict[str, dict[str, float]] = {
    "float64": dict(rtol=1e-10, atol=1e-12),
    "float32": dict(rtol=1e-5, atol=1e-6),
}

DTYPES = tuple(TOLERANCES)

#: Runner name -> factory, or ``"module:function"`` naming one. The conventional
#: factory name in a runner module is ``validation_runner(graph, dtype)``.
RUNNERS: dict[str, Factory | str] = {}


def register_runner(name: str, factory: Factory | str, *, replace: bool = False) -> None:
    """Add a runner to :func:`validate`: ``factory(graph, dtype) -> run(inputs) -> outputs``.

    ``factory`` may be a ``"module:function"`` string, imported when first used.
    Registering a name twice is an error unless ``replace=True``.
    """
    if name in RUNNERS and not replace:
        raise ValueError(f"runner {name!r} is already registered; pass replace=True to override it")
    if name == "reference":
        raise ValueError("'reference' is the numpy reference every runner is compared with")
    RUNNERS[name] = factory


@dataclass
class Runner:
    """One runner at one dtype: a ready ``fn``, or the reason it is skipped / failed to set up."""

    name: str
    dtype: str
    fn: RunFn | None = None
    skip: str | None = None  #: why it cannot run here (not installed, dtype unsupported)
    error: str | None = None  #: why its setup failed
    setup_s: float = 0.0


@dataclass
class Result:
    """What running a :class:`Runner` on one batch gave."""

    runner: Runner
    outputs: dict[str, np.ndarray] | None
    seconds: float
    trials: int
    error: str | None = None


@dataclass
class Row:
    """One line of the table."""

    runner: str
    dtype: str
    status: str  #: REF, PASS, FAIL, SKIP or ERROR
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    rtol: float | None = None
    atol: float | None = None
    ms_per_trial: float | None = None
    setup_ms: float | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        """True unless the runner ran and disagreed or broke (a skip is not a failure)."""
        return self.status in ("REF", "PASS", "SKIP")


# --- building and running runners -------------------------------------------------


def make_runner(name: str, factory: Factory | str, graph: Graph, dtype: str) -> Runner:
    """Resolve ``factory`` and set it up for ``graph`` at ``dtype``, timing the setup."""
    start = time.perf_counter()
    try:
        fn = _resolve(factory)(graph, dtype)
    except ImportError as e:
        return Runner(name, dtype, skip=f"unavailable: {e}")
    except NotImplementedError as e:
        return Runner(name, dtype, skip=str(e) or f"does not support {dtype}")
    except Exception as e:  # a broken runner is a row in the table, not a crash of the table
        return Runner(name, dtype, error=f"setup failed: {type(e).__name__}: {e}")
    return Runner(name, dtype, fn=fn, setup_s=time.perf_counter() - start)


def execute(runner: Runner, inputs: Inputs) -> Result:
    """Run a ready runner on one batch and time it; errors are recorded, not raised."""
    trials = _trials(inputs)
    if runner.fn is None:
        return Result(runner, None, 0.0, trials, runner.error)
    start = time.perf_counter()
    try:
        outputs = runner.fn(inputs)
    except ImportError as e:  # a factory that imports its library lazily, at run time
        runner.skip = f"unavailable: {e}"
        return Result(runner, None, 0.0, trials)
    except Exception as e:
        return Result(runner, None, 0.0, trials, f"{type(e).__name__}: {e}")
    seconds = time.perf_counter() - start
    return Result(runner, {k: _numeric(v) for k, v in outputs.items()}, seconds, trials)


def _resolve(factory: Factory | str) -> Factory:
    if callable(factory):
        return factory
    module_name, _, attr = factory.partition(":")
    module = importlib.import_module(module_name)
    fn = getattr(module, attr, None)
    if fn is None:
        # Reported as "unavailable": the backend exists but has not wired its hook yet.
        raise ImportError(f"{module_name} has no {attr}")
    return fn


def _numeric(value: object) -> np.ndarray:
    """An output as numbers: ZipMap's dicts as rows of their values, labels as they are."""
    a = np.asarray(value)
    if a.dtype == object and a.size and isinstance(a.flat[0], dict):
        return np.array([list(d.values()) for d in a.ravel()], dtype=np.float64)
    return a


def _trials(inputs: Inputs) -> int:
    return int(np.shape(next(iter(inputs.values())))[0]) if inputs else 0


# --- comparing --------------------------------------------------------------------


def compare(reference_outputs: Outputs, results: Sequence[Result], float32_outputs: Sequence[str] = ()) -> list[Row]:
    """One :class:`Row` per result: max abs/rel difference, tolerance, PASS/FAIL, time per trial.

    Each output is checked for presence, then shape, then closeness with the
    tolerance of the runner's dtype (float32's for ``float32_outputs``, which
    are float32 whatever the model's dtype: ZipMap's); the note names the worst element.
    """
    return [_row(reference_outputs, r, set(float32_outputs)) for r in results]


def _row(ref: Outputs, result: Result, float32_outputs: set[str] | None = None) -> Row:
    runner = result.runner
    tol = TOLERANCES.get(runner.dtype)
    row = Row(runner.name, runner.dtype, "PASS", setup_ms=runner.setup_s * 1e3 if runner.fn else None)
    if runner.skip:
        row.status, row.note = "SKIP", runner.skip
        return row
    if result.error or result.outputs is None:
        row.status, row.note = "ERROR", result.error or "no outputs"
        return row
    if tol is None:
        row.status, row.note = "ERROR", f"no tolerance for dtype {runner.dtype!r}; known: {', '.join(TOLERANCES)}"
        return row
    row.rtol, row.atol = tol["rtol"], tol["atol"]
    row.ms_per_trial = result.seconds / max(result.trials, 1) * 1e3
    problems: list[str] = []
    worst_abs = worst_rel = 0.0
    for name, expected in ref.items():
        got = result.outputs.get(name)
        if got is None:
            problems.append(f"missing output {name!r} (has {', '.join(result.outputs) or 'none'})")
            continue
        expected = np.asarray(_numeric(expected), dtype=np.float64)
        if got.shape != expected.shape:
            problems.append(f"output {name!r} has shape {got.shape}, reference {expected.shape}")
            continue
        t = TOLERANCES["float32"] if name in (float32_outputs or ()) else tol
        diff = np.abs(got.astype(np.float64) - expected)
        rel = diff / np.where(expected != 0, np.abs(expected), np.inf)
        bad = ~(diff <= t["atol"] + t["rtol"] * np.abs(expected))  # NaN counts as bad
        worst_abs = max(worst_abs, _nanmax(diff))
        worst_rel = max(worst_rel, _nanmax(rel))
        if bad.any():
            idx = np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(diff, nan=np.inf), -1)), diff.shape)
            problems.append(
                f"{int(bad.sum())}/{bad.size} values of {name!r} outside tolerance; worst "
                f"{name}[{', '.join(map(str, idx))}] = {float(got[idx])!r} vs reference {float(expected[idx])!r}"
            )
    row.max_abs_diff, row.max_rel_diff = worst_abs, worst_rel
    if problems:
        row.status, row.note = "FAIL", "; ".join(problems)
    return row


def _nanmax(a: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    return math.nan if np.isnan(a).any() else float(a.max())


# --- the whole validation -----------------------------------------------------------


def random_inputs(graph: Graph, trials: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded uniform inputs in [-1, 1], shape (trials, *features), for each graph input in order."""
    trials = checks.whole(trials, "trials", 1)
    for name, feats in graph.inputs.items():  # refused before allocating: a file may declare a huge size
        limits.check_elements((trials, *feats), f"random inputs for input {name!r}")
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-1.0, 1.0, size=(trials, *feats)) for name, feats in graph.inputs.items()}


def model_graph(model: Graph | str | os.PathLike[str]) -> tuple[Graph, str | None]:
    """The graph of a Graph or a model file; and the path of an ONNX file given (its original)."""
    if isinstance(model, Graph):
        return model, None
    if isinstance(model, str | os.PathLike):
        if Path(model).suffix.lower() == ".onnx":
            from mdfx.converters.onnx_import import load_onnx

            return load_onnx(model), str(model)
        from mdfx.schema.reader import from_mdf

        return from_mdf(model), None
    raise TypeError(f"validate() takes a Graph or a model file's path, got {type(model).__name__} "
                    "(a composition: mdfx.validate(composition), which passes its graph)")


def validate(model: Graph | str | os.PathLike[str], inputs: Inputs | None = None, trials: int = 10,
             dtype: str | Sequence[str] = DTYPES, seed: int = 0,
             runners: Sequence[str] | None = None, original: str | None = None) -> list[Row]:
    """Run the numpy reference and every registered runner at each dtype; compare.

    ``model`` is a Graph or a model file's path. ``inputs`` (graph
    input name -> (trials, *features)) defaults to :func:`random_inputs` with
    ``trials`` and ``seed``. ``dtype`` is one dtype or several (default both).
    ``runners`` restricts the registry to some names. ``original``: the ONNX file
    the graph came from (set for you when ``model`` is a path), run in onnxruntime
    as the ``onnxruntime (original)`` row. The first row is the reference
    (float64) with its time per trial.
    """
    graph, path = model_graph(model)
    original = original or path
    dtypes = (dtype,) if isinstance(dtype, str) else tuple(dtype)
    for d in dtypes:
        if d not in TOLERANCES:
            raise DataError(f"dtype {d!r} is not supported; use {', '.join(TOLERANCES)}")
    if inputs is None:
        inputs = random_inputs(graph, trials, seed)
    inputs = _check_inputs(graph, inputs)
    n = _trials(inputs)

    start = time.perf_counter()
    ref = reference.run(graph, inputs)
    for extra in graph.extra_outputs:  # the import's addition (ZipMap's input): not in files
        ref.pop(extra, None)
    ref_row = Row("reference", "float64", "REF", 0.0, 0.0,
                  ms_per_trial=(time.perf_counter() - start) / max(n, 1) * 1e3, note="numpy")

    names = list(RUNNERS) if runners is None else list(runners)
    unknown = [r for r in names if r not in RUNNERS]
    if unknown:
        raise MdfxError(f"unknown runner {', '.join(map(repr, unknown))}; registered: {', '.join(RUNNERS)}")
    results = [execute(make_runner(name, RUNNERS[name], graph, d), inputs)
               for name in names for d in dtypes]
    if original is not None and (runners is None or "onnxruntime" in names):
        results += [execute(make_runner(ORIGINAL, _original_factory(original), graph, d), inputs)
                    for d in dtypes]
    zipmaps = [n.output for n in graph.nodes if n.op == "ai.onnx.ml.ZipMap"]
    return [ref_row, *compare(ref, results, zipmaps)]


def _check_inputs(graph: Graph, inputs: Inputs) -> dict[str, np.ndarray]:
    missing = [n for n in graph.inputs if n not in inputs]
    unknown = [n for n in inputs if n not in graph.inputs]
    if missing or unknown:
        raise DataError(f"inputs must be given for exactly the graph inputs {', '.join(graph.inputs)}; "
                        f"missing: {', '.join(missing) or 'none'}, unknown: {', '.join(unknown) or 'none'}")
    checked: dict[str, np.ndarray] = {}
    for name, feats in graph.inputs.items():
        size = int(np.prod(feats))
        array = np.asarray(inputs[name]) if not isinstance(inputs[name], np.ma.MaskedArray) else inputs[name]
        if isinstance(array, np.ndarray) and array.ndim > 2 and array.shape[1:] == tuple(feats):
            array = array.reshape(len(array), size)
        # the shared check: real, finite, (trials >= 1, size); NaN inputs would PASS every runner
        checked[name] = checks.trials_array(array, f"input {name!r}", size).reshape((-1, *feats))
    if len({a.shape[0] for a in checked.values()}) > 1:
        shapes = {k: a.shape for k, a in checked.items()}
        raise DataError(f"inputs have different numbers of trials: {shapes}")
    return checked


# --- output -------------------------------------------------------------------------

_COLUMNS = ("runner", "dtype", "status", "max abs diff", "max rel diff", "rtol / atol",
            "ms/trial", "setup ms", "note")


def format_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table, one line per runner and dtype."""
    cells = [list(_COLUMNS)]
    for r in rows:
        tol = f"{r.rtol:g} / {r.atol:g}" if r.rtol is not None and r.atol is not None else "-"
        cells.append([r.runner, r.dtype, r.status, _num(r.max_abs_diff), _num(r.max_rel_diff), tol,
                      _num(r.ms_per_trial, "{:.4g}"), _num(r.setup_ms, "{:.4g}"), r.note])
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + "  " + line[-1]
             for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def rows_to_json(rows: Sequence[Row], indent: int | None = 2) -> str:
    """The rows as a JSON list of objects (non-finite numbers become strings)."""
    def clean(v: object) -> object:
        return str(v) if isinstance(v, float) and not math.isfinite(v) else v

    return json.dumps([{k: clean(v) for k, v in asdict(r).items()} for r in rows], indent=indent)


def _num(v: float | None, fmt: str = "{:.3g}") -> str:
    return "-" if v is None else fmt.format(v)


# --- the runners this package provides or knows by convention ---------------------

#: The row of onnxruntime running the ONNX file that was validated, as it is.
ORIGINAL = "onnxruntime (original)"


def _ort_fn(proto_or_path: object, graph: Graph, dtype: str | None) -> RunFn:
    """onnxruntime on a model whose inputs and outputs are the graph's, in order."""
    from mdfx.errors import SchemaError
    from mdfx.runners.ort import prepare

    try:
        model = prepare(proto_or_path)
    except SchemaError as e:
        if "NOT_IMPLEMENTED" in str(e):  # e.g. onnxruntime has no float64 Erf: a gap of the runtime
            raise NotImplementedError(f"onnxruntime lacks a kernel: {str(e).split('NOT_IMPLEMENTED : ')[-1]}") from None
        raise
    outputs = [n for n in graph.output_names() if graph.tensor_of(n) not in set(graph.extra_outputs)]
    if len(model.outputs) != len(outputs) or len(model.inputs) != len(graph.inputs):
        raise MdfxError(f"the ONNX model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                        f"the graph has {len(graph.inputs)} and {len(outputs)}")

    from mdfx.runners.ort import _output

    fixed = model.session.get_inputs()[0].shape[0]  # a fixed-batch export takes batches of that size
    fixed = fixed if isinstance(fixed, int) and fixed > 0 else None

    def run_batch(inputs: Inputs) -> list:
        feed = {}
        for port, t in zip(model.inputs, graph.inputs, strict=True):
            x = np.asarray(inputs[t])
            feed[port.onnx_name] = np.ascontiguousarray(x, dtype=port.dtype or dtype)
        return model.session.run([p.onnx_name for p in model.outputs], feed)

    def run(inputs: Inputs) -> Outputs:
        n = _trials(inputs)
        if fixed is None or n == fixed:
            results = [_output(r) for r in run_batch(inputs)]
        else:
            if n % fixed:
                raise DataError(f"the ONNX file takes batches of exactly {fixed}; give a multiple of {fixed} trials")
            parts = [[_output(r) for r in run_batch({k: np.asarray(v)[i:i + fixed] for k, v in inputs.items()})]
                     for i in range(0, n, fixed)]
            results = [np.concatenate([p[j] for p in parts]) for j in range(len(outputs))]
        return dict(zip(outputs, results, strict=True))

    return run


def _onnxruntime(graph: Graph, dtype: str) -> RunFn:
    """Export with :func:`~mdfx.converters.onnx_export.to_onnx` and run in onnxruntime."""
    from mdfx.converters.onnx_export import to_onnx

    return _ort_fn(to_onnx(graph, dtype=dtype), graph, dtype)


def _original_factory(path: str) -> Factory:
    """onnxruntime on the ONNX file itself, at the file's own dtype."""
    def factory(graph: Graph, dtype: str) -> RunFn:
        own = graph.dtype if graph.dtype in TOLERANCES else "float32"
        if dtype != own:
            raise NotImplementedError(f"the original file computes in {own}")
        return _ort_fn(path, graph, dtype)

    return factory


class _ModuleRunner:
    """A backend through its module's ``run(model, inputs, dtype=...)`` (or its ``validation_runner``).

    One trial runs at setup. A backend module that cannot take the graph (its code
    reads attributes a Graph lacks) shows as SKIP with the reason.
    """

    def __init__(self, module: str, factory_name: str | None = None) -> None:
        self.module, self.factory_name = module, factory_name

    def __call__(self, graph: Graph, dtype: str) -> RunFn:
        mod = importlib.import_module(self.module)
        try:
            if self.factory_name is None:
                def fn(inputs: Inputs) -> Outputs:
                    return mod.run(graph, inputs, dtype=dtype)
            else:
                fn = getattr(mod, self.factory_name)(graph, dtype)
            fn(random_inputs(graph, 1, 0))
        except (TypeError, AttributeError, KeyError) as e:
            raise NotImplementedError(f"{self.module} does not take an op graph yet ({type(e).__name__}: {e})"
                                      ) from None
        return fn


register_runner("onnxruntime", _onnxruntime)
register_runner("torch", _ModuleRunner("mdfx.runners.torch"))
register_runner("llvm", _ModuleRunner("mdfx.runners.llvm"))
register_runner("mdf_engine", _ModuleRunner("mdfx.runners.mdf_engine", "validation_runner"))
