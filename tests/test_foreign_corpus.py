"""Issue 9's acceptance corpus: ONNX files written by torch.onnx (both exporters), skl2onnx and
Keras 3 (torch backend), generated here, each loaded by mdfx and checked against onnxruntime on
the original file and against the training of the original model.

Default run: one file per torch model (legacy exporter, opset 17, dynamic batch, float64 and
float32), every legacy variant of ``mlp_relu``, seven dynamo files, the sklearn and Keras set:
136 files, about 45 s on an idle 2-core machine (the dynamo exporter takes 1-5 s a file).
``MDFX_FULL_CORPUS=1`` runs the full matrix, 1320 files, without the known-failure marks:
more than an hour, mostly the dynamo exporter. ``bench/foreign_corpus.py`` prints the same
checks as one table. The decisions behind the checks are in ``tests/foreign/__init__.py``.

What fails today is listed once, in ``tests/foreign/known_failures.py``.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from foreign import checks, known_failures  # noqa: E402
from foreign.export import (  # noqa: E402
    Case,
    CorpusFile,
    build,
    build_stats,
    default_cases,
    full_cases,
    is_trained,
)

FULL = os.environ.get("MDFX_FULL_CORPUS") == "1"
CASES = full_cases() if FULL else default_cases()


def cases_for(check: str, keep: Callable[[Case], bool] = lambda case: True) -> list:
    """pytest params for ``check``: readable ids, the known-failure mark where one is listed."""
    params = []
    for case in CASES:
        if not keep(case):
            continue
        reason = None if FULL else known_failures.reason(case.id, check)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("foreign_corpus")


def corpus_summary() -> str | None:
    """A line for the end of the run (tests/conftest.py prints it): files written, and how long."""
    files, seconds = build_stats()
    if not files:
        return None
    scope = ("full matrix" if FULL else
             f"default subset; MDFX_FULL_CORPUS=1 runs all {len(full_cases())} files, over an hour")
    return f"foreign corpus ({scope}): {files} files written in {seconds:.0f} s"


def corpus_file(case: Case, corpus_dir: Path) -> CorpusFile:
    return build(case, corpus_dir)


def judged(check: Callable[..., object], *args: object) -> None:
    """Run a check; a file that cannot be judged on this point is a skip that says why.

    A failure is re-raised with its message and innermost frames only: pytest formatting
    the full traceback of each of several hundred known failures (through torch and mdfx)
    would triple the run's time. ``MDFX_CORPUS_TRACEBACKS=1`` gives the full ones.
    """
    __tracebackhide__ = True
    try:
        check(*args)
    except checks.NotApplicable as exc:
        pytest.skip(str(exc))
    except Exception as exc:
        if os.environ.get("MDFX_CORPUS_TRACEBACKS") == "1":
            raise
        if isinstance(exc, AssertionError):  # a check's own message: both sides, what differs
            raise AssertionError(str(exc)) from None
        where = "".join(traceback.format_tb(exc.__traceback__)[-3:])
        raise AssertionError(f"{type(exc).__name__}: {exc}\n--- innermost frames ---\n{where}") from None


def float64(case: Case) -> bool:
    return case.variant.dtype == "f64"


@pytest.mark.parametrize("case", cases_for("load"))
def test_load(case: Case, corpus_dir: Path) -> None:
    judged(checks.check_load, corpus_file(case, corpus_dir))


@pytest.mark.parametrize("case", cases_for("run"))
def test_run_equals_onnxruntime(case: Case, corpus_dir: Path) -> None:
    judged(checks.check_run, corpus_file(case, corpus_dir))


@pytest.mark.parametrize("case", cases_for("train-Python", is_trained))
def test_train_python(case: Case, corpus_dir: Path) -> None:
    judged(checks.check_train, corpus_file(case, corpus_dir), "Python")


@pytest.mark.parametrize("case", cases_for("train-PyTorch", is_trained))
def test_train_pytorch(case: Case, corpus_dir: Path) -> None:
    judged(checks.check_train, corpus_file(case, corpus_dir), "PyTorch")


@pytest.mark.parametrize("case", cases_for("train-LLVMRun", is_trained))
def test_train_llvm(case: Case, corpus_dir: Path) -> None:
    judged(checks.check_train, corpus_file(case, corpus_dir), "LLVMRun")


@pytest.mark.parametrize("case", cases_for("export"))
def test_export_back(case: Case, corpus_dir: Path, tmp_path: Path) -> None:
    judged(checks.check_export, corpus_file(case, corpus_dir), tmp_path)


@pytest.mark.parametrize("case", cases_for("state_dict", lambda case: case.family == "torch"))
def test_state_dict_loads_into_original(case: Case, corpus_dir: Path) -> None:
    judged(checks.check_state_dict, corpus_file(case, corpus_dir))


# --- the harness itself: it must be able to fail ------------------------------------------------


def test_harness_detects_a_wrong_number(corpus_dir: Path) -> None:
    """The torch reference against itself passes; a reference trained with another learning
    rate (what a folded scale does to training) is caught."""
    cf = corpus_file(Case("scale_input", default_cases()[0].variant), corpus_dir)
    x, t = checks.inputs_for(cf), checks.targets_for(cf, checks.inputs_for(cf))
    same = checks.torch_train(cf.reference(), cf, x, t, 8)
    assert checks.torch_train(cf.reference(), cf, x, t, 8) == same
    import dataclasses

    other = checks.torch_train(cf.reference(), dataclasses.replace(cf, lr=cf.lr * 1.01), x, t, 8)
    with pytest.raises(AssertionError, match="per-minibatch losses"):
        checks.assert_close(other, same, checks.TRAIN_RTOL, checks.TRAIN_ATOL, what="per-minibatch losses")


def test_parameter_names_fail_clearly(corpus_dir: Path) -> None:
    cf = corpus_file(Case("mlp_tanh", default_cases()[0].variant), corpus_dir)
    ref = cf.reference().double()
    got = {f"renamed/{k}": v.detach().numpy() for k, v in ref.state_dict().items()}
    with pytest.raises(AssertionError, match=r"mdfx's parameters have no '0.weight' \(the file's initializer"):
        checks.compare_params(cf, got, ref, cf.id)


def test_known_failures_name_real_cases_and_checks() -> None:
    ids = {case.id for case in default_cases()}
    for case_id, entry in known_failures.KNOWN_FAILURES.items():
        assert case_id in ids, f"known_failures lists {case_id!r}, which is not a default case"
        bad = set(entry) - {*checks.CHECKS, "*"}
        assert not bad, f"known_failures[{case_id!r}] names unknown checks {bad}; checks are {checks.CHECKS}"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if float64(c)])
def test_file_computes_its_reference(case: Case, corpus_dir: Path) -> None:
    """The harness's premise: onnxruntime on each float64 file gives the training reference's
    forward (so a training difference is mdfx's, not the file's)."""
    cf = corpus_file(case, corpus_dir)
    if cf.limitation or cf.ort_limitation:
        pytest.skip(cf.limitation or cf.ort_limitation)
    import torch

    x = checks.inputs_for(cf)
    want = checks.ort_outputs(cf.path, x, cf.fixed_batch)
    with torch.no_grad():
        got = checks.forward(cf.reference(), cf, x)
    for name in cf.ref_outputs:
        checks.assert_close(got[name], want[name], 1e-10, 1e-12, what=f"{cf.id}: {name!r}, reference vs onnxruntime")


def test_export_and_state_dict_checks_can_pass(corpus_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """No mdfx passes these two checks yet: an mdfx.save that writes back the original file and
    the original module's state_dict must, so the checks ask for something achievable."""
    import shutil

    import torch
    from foreign.export import Variant

    import mdfx

    exported = corpus_file(Case("mlp_relu", default_cases()[0].variant), corpus_dir)
    weights = corpus_file(Case("batchnorm_eval", Variant("legacy", 17, "dyn", "f32")), corpus_dir)

    def faithful_save(comp: object, path: Path) -> Path:
        if Path(path).suffix == ".onnx":
            shutil.copy(exported.path, path)
        else:  # without num_batches_tracked, which no ONNX file holds
            state = {k: v for k, v in weights.reference().state_dict().items() if v.is_floating_point()}
            torch.save(state, path)
        return Path(path)

    monkeypatch.setattr(mdfx, "save", faithful_save)
    monkeypatch.setattr(mdfx, "load", lambda path: object())  # batchnorm_eval does not load today
    checks.check_export(exported, tmp_path)
    checks.check_state_dict(weights)
