"""ONNX's backend node tests as mdfx's conformance suite: generating, preparing and checking them.

The onnx wheel ships no ``backend/test/data/node/`` files, but it ships the case
generators (``onnx.backend.test.case.node``): ``collect_testcases()`` builds every
node test in memory (model, inputs, expected outputs, tolerances). Each test is
brought into the form real exports have: inputs after the first become
initializers (weights, shapes and axes are constants in a file). A test written for
an opset above 21 (mdfx imports 9-21) runs relabelled as opset 21 when each of its
ops exists there (most later versions only add types); otherwise it is out of scope.

A test is *in scope* when every op it uses is one mdfx imports
(:data:`mdfx.converters.onnx_import.SUPPORTED`). Each in-scope test runs in every
execution mode and ends in one :class:`Outcome`: ``pass``, ``refused`` (an mdfx
error at load or run, naming the node), ``wrong`` (it ran and differs from ONNX's
expected outputs: a silent wrong number), or ``crash`` (an exception that is not an
mdfx error). ``python -m tests.onnx_node_cases`` prints the counts per mode.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

MODES = ("Python", "PyTorch", "LLVMRun", "ONNX")
#: The highest default-domain opset mdfx imports.
MAX_OPSET = 21
#: ``MDFX_FULL_NODE=1``: every data set of every test (else the first data set of each).
FULL = os.environ.get("MDFX_FULL_NODE") == "1"


@dataclass(frozen=True)
class Case:
    """One node test, prepared: the model with constants as initializers, its input and outputs."""

    name: str
    model: Any  #: onnx.ModelProto
    inputs: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    rtol: float
    atol: float
    ops: frozenset[str]


@dataclass(frozen=True)
class Outcome:
    status: str  #: pass, refused, wrong, crash
    detail: str = ""


@functools.lru_cache(maxsize=1)
def raw_cases() -> tuple[Any, ...]:
    """Every node test ONNX's generators make (about 10 s: they compute the expected outputs)."""
    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # the generators' own overflow warnings (pytest makes them errors)
        return tuple(c for c in node_cases.collect_testcases() if c.kind == "node")


def _array(value: Any) -> np.ndarray | None:
    from onnx import TensorProto, numpy_helper

    if isinstance(value, TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, np.ndarray | np.generic):
        return np.asarray(value)
    return None  # sequences, optionals, maps: not tensors


def _at_opset(model: Any) -> Any | None:
    """The model at an opset mdfx imports, or None: relabelled to 21 only when each op means the same there."""
    import onnx
    from onnx import defs

    default = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    version = default[0].version if default else None
    if version is None or version <= MAX_OPSET:
        return model
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            defs.get_schema(node.op_type, MAX_OPSET)
        except defs.SchemaError:
            return None  # the op does not exist at opset 21
    relabelled = onnx.ModelProto()
    relabelled.CopyFrom(model)
    for o in relabelled.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = MAX_OPSET
    return relabelled


def prepare(raw: Any, data_set: int = 0) -> Case | None:
    """The test with its inputs after the first as initializers; None when it cannot be put in that form."""
    import onnx
    from onnx import numpy_helper

    if data_set >= len(raw.data_sets):
        return None
    given, outputs = raw.data_sets[data_set]
    model = _at_opset(raw.model)
    if model is None or not given or len(given) != len(model.graph.input):
        return None
    arrays = [_array(v) for v in given]
    expected = [_array(v) for v in outputs]
    if any(a is None for a in arrays) or any(e is None for e in expected):
        return None
    if len(expected) != len(model.graph.output):
        return None
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for info, value in zip(list(g.input)[1:], arrays[1:], strict=True):
        g.initializer.append(numpy_helper.from_array(value, info.name))
    del g.input[1:]
    return Case(raw.name if data_set == 0 else f"{raw.name}[{data_set}]", m, {g.input[0].name: arrays[0]},
                {o.name: e for o, e in zip(g.output, expected, strict=True)}, float(raw.rtol), float(raw.atol),
                frozenset(n.op_type for n in g.node))


def in_scope(case: Case) -> bool:
    """Every op of the test is one mdfx imports."""
    from mdfx.converters.onnx_import import SUPPORTED

    return case.ops <= set(SUPPORTED)


def cases() -> Iterator[Case]:
    """The prepared in-scope tests (every data set under MDFX_FULL_NODE=1)."""
    for raw in raw_cases():
        for k in range(len(raw.data_sets) if FULL else 1):
            case = prepare(raw, k)
            if case is not None and in_scope(case):
                yield case


def load(case: Case) -> Any:
    """The test's model as a GraphComposition (an mdfx error where it is refused)."""
    from mdfx.composition.graph_model import GraphComposition
    from mdfx.converters.onnx_import import load_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the import's "ambiguous name stays frozen" notes
        return GraphComposition(load_onnx(case.model))


def run(comp: Any, case: Case, mode: str) -> dict[str, np.ndarray]:
    """The outputs of ``comp.run`` in ``mode``, by output name, every trial stacked (as ``mdfx run`` writes)."""
    from mdfx.composition.enums import ExecutionMode

    comp.results.clear()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        comp.run(inputs=dict(case.inputs), execution_mode=ExecutionMode[mode])
    names = list(comp.graph.outputs)
    return {name: np.array([trial[i] for trial in comp.results]) for i, name in enumerate(names)}


def check(case: Case, mode: str, comp: Any = None) -> Outcome:
    """Run one test in one mode and say how it ended (see the module docstring)."""
    from mdfx.errors import MdfxError

    try:
        comp = comp if comp is not None else load(case)
        got = run(comp, case, mode)
    except MdfxError as exc:
        return Outcome("refused", f"{type(exc).__name__}: {exc}"[:2000])
    except Exception as exc:  # noqa: BLE001 - every other exception is a crash to report
        return Outcome("crash", f"{type(exc).__name__}: {exc}"[:2000])
    return compare(case, got)


def compare(case: Case, got: dict[str, np.ndarray]) -> Outcome:
    """ONNX's own rule (``np.testing.assert_allclose`` with the test's rtol/atol; exact for non-floats)."""
    for name, want in case.expected.items():
        if name not in got:
            return Outcome("wrong", f"no output {name!r} (got {', '.join(got)})")
        have = np.asarray(got[name])
        if have.shape != want.shape:
            return Outcome("wrong", f"output {name!r} has shape {have.shape}, expected {want.shape}")
        if want.dtype.kind in "fc":
            a, b = have.astype(np.float64), want.astype(np.float64)
            close = np.isclose(a, b, rtol=case.rtol, atol=case.atol, equal_nan=True)
            if not close.all():
                i = np.unravel_index(np.argmin(close), close.shape)
                return Outcome("wrong", f"{int((~close).sum())}/{close.size} values of {name!r} differ; "
                                        f"at {tuple(map(int, i))}: {a[i]!r}, expected {b[i]!r}")
        elif not np.array_equal(have.astype(want.dtype) if want.dtype != object else have, want):
            return Outcome("wrong", f"output {name!r}: {have.ravel()[:6]}, expected {want.ravel()[:6]}")
    return Outcome("pass")


def measure() -> dict[str, dict[str, int]]:
    """Counts per mode: how many in-scope tests pass, are refused, give wrong numbers, crash."""
    counts = {m: {"in scope": 0, "loaded": 0, "pass": 0, "refused": 0, "wrong": 0, "crash": 0} for m in MODES}
    for case in cases():
        try:
            comp = load(case)
        except Exception as exc:  # noqa: BLE001
            comp, refused = None, exc
        for mode in MODES:
            counts[mode]["in scope"] += 1
            if comp is None:
                from mdfx.errors import MdfxError

                counts[mode]["refused" if isinstance(refused, MdfxError) else "crash"] += 1
                continue
            counts[mode]["loaded"] += 1
            counts[mode][check(case, mode, comp).status] += 1
    return counts


if __name__ == "__main__":  # python -m tests.onnx_node_cases
    total = len(raw_cases())
    for mode, c in measure().items():
        print(f"{mode:8} of {total}: " + ", ".join(f"{k} {v}" for k, v in c.items()))
