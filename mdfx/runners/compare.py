"""Cross-runner validation: every runner's outputs against the reference, in one table.

Runners are found through :data:`RUNNERS`, a registry of *factories*:
``factory(net, dtype)`` does the slow, untimed setup (export, compile, build a
session) and returns ``run(inputs) -> outputs``, which is timed. Inputs and
outputs are dicts of ``(trials, size)`` arrays keyed by Net node names.

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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from mdfx import limits
from mdfx.errors import DataError, MdfxError
from mdfx.runners import reference
from mdfx.schema import validate as checks
from mdfx.schema.net import Net

Inputs = Mapping[str, np.ndarray]
Outputs = Mapping[str, np.ndarray]
RunFn = Callable[[Inputs], Outputs]
Factory = Callable[[Net, str], RunFn]

#: Per dtype, how close a runner must be to the float64 reference (np.allclose's rule:
#: ``|out - ref| <= atol + rtol * |ref|``). The one place tolerances are set.
TOLERANCES: dict[str, dict[str, float]] = {
    "float64": dict(rtol=1e-10, atol=1e-12),
    "float32": dict(rtol=1e-5, atol=1e-6),
}

DTYPES = tuple(TOLERANCES)

#: Runner name -> factory, or ``"module:function"`` naming one. The conventional
#: factory name in a runner module is ``validation_runner(net, dtype)``.
RUNNERS: dict[str, Factory | str] = {}


def register_runner(name: str, factory: Factory | str, *, replace: bool = False) -> None:
    """Add a runner to :func:`validate`: ``factory(net, dtype) -> run(inputs) -> outputs``.

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


def make_runner(name: str, factory: Factory | str, net: Net, dtype: str) -> Runner:
    """Resolve ``factory`` and set it up for ``net`` at ``dtype``, timing the setup."""
    start = time.perf_counter()
    try:
        fn = _resolve(factory)(net, dtype)
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
    return Result(runner, {k: np.asarray(v) for k, v in outputs.items()}, seconds, trials)


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


def _trials(inputs: Inputs) -> int:
    return int(np.shape(next(iter(inputs.values())))[0]) if inputs else 0


# --- comparing --------------------------------------------------------------------


def compare(reference_outputs: Outputs, results: Sequence[Result]) -> list[Row]:
    """One :class:`Row` per result: max abs/rel difference, tolerance, PASS/FAIL, time per trial.

    Each output is checked for presence, then shape, then closeness with the
    tolerance of the runner's dtype; the note names the worst element.
    """
    return [_row(reference_outputs, r) for r in results]


def _row(ref: Outputs, result: Result) -> Row:
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
        expected = np.asarray(expected, dtype=np.float64)
        if got.shape != expected.shape:
            problems.append(f"output {name!r} has shape {got.shape}, reference {expected.shape}")
            continue
        diff = np.abs(got.astype(np.float64) - expected)
        rel = diff / np.where(expected != 0, np.abs(expected), np.inf)
        bad = ~(diff <= tol["atol"] + tol["rtol"] * np.abs(expected))  # NaN counts as bad
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


def random_inputs(net: Net, trials: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded uniform inputs in [-1, 1], shape (trials, size), for each INPUT node in order."""
    trials = checks.whole(trials, "trials", 1)
    for name in net.inputs:  # refused before allocating: a file may declare a huge size
        limits.check_elements((trials, net.node(name).size), f"random inputs for node {name!r}")
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-1.0, 1.0, size=(trials, net.node(name).size)) for name in net.inputs}


def validate(net: Net, inputs: Inputs | None = None, trials: int = 10,
             dtype: str | Sequence[str] = DTYPES, seed: int = 0,
             runners: Sequence[str] | None = None) -> list[Row]:
    """Run the numpy reference and every registered runner at each dtype; compare.

    ``inputs`` (Net input name -> (trials, size)) defaults to
    :func:`random_inputs` with ``trials`` and ``seed``. ``dtype`` is one dtype
    or several (default both). ``runners`` restricts the registry to some
    names. The first row is the reference (float64) with its time per trial.
    """
    dtypes = (dtype,) if isinstance(dtype, str) else tuple(dtype)
    for d in dtypes:
        if d not in TOLERANCES:
            raise DataError(f"dtype {d!r} is not supported; use {', '.join(TOLERANCES)}")
    if inputs is None:
        inputs = random_inputs(net, trials, seed)
    inputs = _check_inputs(net, inputs)
    n = _trials(inputs)

    start = time.perf_counter()
    ref = reference.run(net, inputs)
    ref_row = Row("reference", "float64", "REF", 0.0, 0.0,
                  ms_per_trial=(time.perf_counter() - start) / max(n, 1) * 1e3, note="numpy")

    names = list(RUNNERS) if runners is None else list(runners)
    unknown = [r for r in names if r not in RUNNERS]
    if unknown:
        raise MdfxError(f"unknown runner {', '.join(map(repr, unknown))}; registered: {', '.join(RUNNERS)}")
    results = [execute(make_runner(name, RUNNERS[name], net, d), inputs)
               for name in names for d in dtypes]
    return [ref_row, *compare(ref, results)]


def _check_inputs(net: Net, inputs: Inputs) -> dict[str, np.ndarray]:
    missing = [n for n in net.inputs if n not in inputs]
    unknown = [n for n in inputs if n not in net.inputs]
    if missing or unknown:
        raise DataError(f"inputs must be given for exactly the INPUT nodes {', '.join(net.inputs)}; "
                        f"missing: {', '.join(missing) or 'none'}, unknown: {', '.join(unknown) or 'none'}")
    checked: dict[str, np.ndarray] = {}
    for name in net.inputs:
        # the shared check: real, finite, (trials >= 1, size); NaN inputs would PASS every runner
        checked[name] = checks.trials_array(inputs[name], f"input {name!r}", net.node(name).size)
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


def _onnxruntime(net: Net, dtype: str) -> RunFn:
    """Export with :func:`~mdfx.converters.onnx_export.to_onnx` and run in onnxruntime."""
    from mdfx.converters.onnx_export import to_onnx
    from mdfx.runners.ort import prepare

    return prepare(to_onnx(net, dtype=dtype))


register_runner("onnxruntime", _onnxruntime)
# Other backends define ``validation_runner(net, dtype)`` in their runner module.
register_runner("torch", "mdfx.runners.torch:validation_runner")
register_runner("llvm", "mdfx.runners.llvm:validation_runner")
register_runner("mdf_engine", "mdfx.runners.mdf_engine:validation_runner")
