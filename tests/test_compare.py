"""The comparison table: reference vs runners, tolerances, skips, failures, output formats."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_nets import inputs_for, multi_net

from mdfx.errors import DataError
from mdfx.runners import compare
from mdfx.runners.compare import Result, Row, Runner, format_table, rows_to_json, validate


@pytest.fixture
def registry(monkeypatch) -> dict:
    """A private copy of the registry, restored after the test."""
    fresh = dict(compare.RUNNERS)
    monkeypatch.setattr(compare, "RUNNERS", fresh)
    return fresh


def by_key(rows: list[Row]) -> dict[tuple[str, str], Row]:
    return {(r.runner, r.dtype): r for r in rows}


def test_tolerances_live_in_one_place() -> None:
    assert compare.TOLERANCES == {
        "float64": {"rtol": 1e-10, "atol": 1e-12},
        "float32": {"rtol": 1e-5, "atol": 1e-6},
    }


def test_onnxruntime_passes_at_both_dtypes() -> None:
    rows = validate(multi_net(), trials=8, runners=["onnxruntime"])
    table = format_table(rows)
    assert [(r.runner, r.dtype, r.status) for r in rows] == [
        ("reference", "float64", "REF"),
        ("onnxruntime", "float64", "PASS"),
        ("onnxruntime", "float32", "PASS"),
    ], table
    f64 = by_key(rows)["onnxruntime", "float64"]
    assert f64.max_abs_diff is not None and f64.max_abs_diff < 1e-12, table
    assert (f64.rtol, f64.atol) == (1e-10, 1e-12)
    assert f64.ms_per_trial is not None and f64.ms_per_trial >= 0 and f64.setup_ms is not None


def test_corrupted_runner_is_flagged_as_fail(registry) -> None:
    def corrupt(net: Graph, dtype: str):
        from mdfx.runners import reference

        return lambda inputs: {k: v + 1e-3 for k, v in reference.run(net, inputs).items()}

    compare.register_runner("corrupt", corrupt)
    rows = validate(multi_net(), trials=4, dtype="float64", runners=["onnxruntime", "corrupt"])
    table = format_table(rows)
    bad = by_key(rows)["corrupt", "float64"]
    assert bad.status == "FAIL", table
    assert not bad.ok and by_key(rows)["onnxruntime", "float64"].ok
    assert bad.max_abs_diff == pytest.approx(1e-3, rel=1e-6), table
    assert bad.note.startswith("12/12 values of 'o1' outside tolerance; worst o1[0, 0] = "), bad.note
    assert "; 8/8 values of 'o2' outside tolerance; worst o2[" in bad.note, bad.note
    line = next(x for x in table.splitlines() if x.startswith("corrupt"))
    assert "FAIL" in line and "0.001" in line and "outside tolerance" in line, table


def test_missing_backend_is_a_skipped_row(registry) -> None:
    compare.register_runner("ghost", "mdfx.runners.no_such_backend:validation_runner")
    compare.register_runner("unwired", "mdfx.runners.reference:validation_runner")
    rows = by_key(validate(multi_net(), trials=2, dtype="float64", runners=["ghost", "unwired"]))
    ghost, unwired = rows["ghost", "float64"], rows["unwired", "float64"]
    assert ghost.status == "SKIP" and "No module named 'mdfx.runners.no_such_backend'" in ghost.note, ghost
    assert unwired.status == "SKIP" and "mdfx.runners.reference has no validation_runner" in unwired.note
    assert ghost.ok, "a skip is not a failure"


def test_library_imported_at_run_time_is_a_skip(registry) -> None:
    def lazy(net: Graph, dtype: str):
        def run(inputs):
            import not_a_real_library  # noqa: F401

        return run

    compare.register_runner("lazy", lazy)
    (row,) = validate(multi_net(), trials=2, dtype="float32", runners=["lazy"])[1:]
    assert row.status == "SKIP" and "not_a_real_library" in row.note, row


def test_unsupported_dtype_is_a_skip_and_a_crash_is_an_error(registry) -> None:
    def only64(net: Graph, dtype: str):
        if dtype != "float64":
            raise NotImplementedError("computes in float64 only")
        return lambda inputs: {"o1": np.zeros((2, 3)), "o2": np.zeros((2, 2))}

    def broken(net: Graph, dtype: str):
        raise RuntimeError("boom")

    compare.register_runner("only64", only64)
    compare.register_runner("broken", broken)
    rows = by_key(validate(multi_net(), trials=2, runners=["only64", "broken"]))
    assert rows["only64", "float32"].status == "SKIP"
    assert rows["only64", "float32"].note == "computes in float64 only"
    assert rows["only64", "float64"].status == "FAIL", "zeros are not the reference"
    assert rows["broken", "float64"].status == "ERROR"
    assert rows["broken", "float64"].note == "setup failed: RuntimeError: boom"


def _result(outputs: dict[str, np.ndarray], dtype: str = "float64") -> Result:
    return Result(Runner("r", dtype, fn=lambda i: outputs), outputs, 0.01, 2)


def test_compare_checks_presence_shape_then_values() -> None:
    ref = {"y": np.array([[1.0, 2.0], [3.0, 4.0]])}
    (missing,) = compare.compare(ref, [_result({"z": ref["y"]})])
    assert missing.status == "FAIL" and "missing output 'y' (has z)" in missing.note, missing
    (shape,) = compare.compare(ref, [_result({"y": ref["y"].T[:1]})])
    assert shape.status == "FAIL" and "output 'y' has shape (1, 2), reference (2, 2)" in shape.note
    nan = ref["y"].copy()
    nan[1, 0] = np.nan
    (row,) = compare.compare(ref, [_result({"y": nan})])
    assert row.status == "FAIL" and "1/4 values of 'y' outside tolerance; worst y[1, 0] = nan vs reference 3.0" in row.note, row
    near = ref["y"] * (1 + 5e-6)
    (f32,) = compare.compare(ref, [_result({"y": near.astype(np.float32)}, "float32")])
    (f64,) = compare.compare(ref, [_result({"y": near}, "float64")])
    assert f32.status == "PASS" and f64.status == "FAIL", (f32, f64)
    assert f64.max_rel_diff == pytest.approx(5e-6, rel=1e-6)
    assert f64.ms_per_trial == pytest.approx(5.0)


def test_random_inputs_are_seeded_uniform() -> None:
    net = multi_net()
    x = compare.random_inputs(net, trials=50, seed=3)
    assert {k: v.shape for k, v in x.items()} == {"a": (50, 2), "b": (50, 3)}
    assert all(v.min() >= -1 and v.max() <= 1 for v in x.values())
    y = compare.random_inputs(net, trials=50, seed=3)
    for k in x:
        np.testing.assert_array_equal(x[k], y[k], err_msg=f"seeded inputs differ for {k}")


def test_given_inputs_are_checked() -> None:
    with pytest.raises(DataError, match="missing: b, unknown: c"):
        validate(multi_net(), inputs={"a": np.zeros((2, 2)), "c": np.zeros((2, 1))}, runners=[])
    with pytest.raises(DataError, match=r"input 'b' has shape \(2, 4\); expected \(trials, 3\)"):
        validate(multi_net(), inputs={"a": np.zeros((2, 2)), "b": np.zeros((2, 4))}, runners=[])
    rows = validate(multi_net(), inputs=inputs_for(multi_net()), dtype="float64", runners=["onnxruntime"])
    assert rows[1].status == "PASS", format_table(rows)


def test_registry_refuses_duplicates(registry) -> None:
    with pytest.raises(ValueError, match="runner 'onnxruntime' is already registered"):
        compare.register_runner("onnxruntime", lambda net, dtype: None)
    compare.register_runner("onnxruntime", "x:y", replace=True)
    assert registry["onnxruntime"] == "x:y"


def test_json_round_trips_rows() -> None:
    rows = [Row("r", "float32", "FAIL", float("nan"), 1.0, 1e-5, 1e-6, 0.5, 2.0, "worst ...")]
    data = json.loads(rows_to_json(rows))
    assert data == [{"runner": "r", "dtype": "float32", "status": "FAIL", "max_abs_diff": "nan",
                     "max_rel_diff": 1.0, "rtol": 1e-5, "atol": 1e-6, "ms_per_trial": 0.5,
                     "setup_ms": 2.0, "note": "worst ..."}]


def test_table_lines_up() -> None:
    rows = [Row("reference", "float64", "REF", 0.0, 0.0, ms_per_trial=0.01, note="numpy"),
            Row("torch", "float32", "SKIP", note="unavailable: No module named 'torch'")]
    lines = format_table(rows).splitlines()
    assert lines[0].split()[:3] == ["runner", "dtype", "status"]
    assert lines[2].startswith("torch") and lines[2].endswith("unavailable: No module named 'torch'")
    assert lines[0].index("status") == lines[1].index("REF") == lines[2].index("SKIP"), "\n".join(lines)


# --- ONNX files: the original file beside the re-export -----------------------------------------

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mdfx.schema.graph import Graph, Node, Param  # noqa: E402


def _onnx_file(path, dtype: int = TensorProto.DOUBLE, scale: float = 2.0, batch: int | str = "n") -> str:
    np_dtype = np.float64 if dtype == TensorProto.DOUBLE else np.float32
    w = np.arange(6, dtype=np_dtype).reshape(3, 2) / 7
    nodes = [helper.make_node("Gemm", ["x", "l.weight", "l.bias"], ["h"], name="/l/Gemm"),
             helper.make_node("Mul", ["h", "onnx::Mul_3"], ["m"], name="/Mul"),
             helper.make_node("Tanh", ["m"], ["y"], name="/Tanh")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", dtype, [batch, 3])],
                              [helper.make_tensor_value_info("y", dtype, [batch, 2])],
                              [numpy_helper.from_array(w, "l.weight"),
                               numpy_helper.from_array(np.array([0.1, -0.2], np_dtype), "l.bias"),
                               numpy_helper.from_array(np.array(scale, np_dtype), "onnx::Mul_3")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (path / "m.onnx").write_bytes(model.SerializeToString())
    return str(path / "m.onnx")


@pytest.mark.parametrize(("elem", "own", "other"), [(TensorProto.DOUBLE, "float64", "float32"),
                                                    (TensorProto.FLOAT, "float32", "float64")])
def test_an_onnx_file_gets_a_row_for_the_original(tmp_path, elem: int, own: str, other: str) -> None:
    rows = by_key(validate(_onnx_file(tmp_path, elem), trials=5, runners=["onnxruntime"]))
    assert rows[(compare.ORIGINAL, own)].status == "PASS", format_table(list(rows.values()))
    assert rows[(compare.ORIGINAL, other)].status == "SKIP"
    assert rows[(compare.ORIGINAL, other)].note == f"the original file computes in {own}"
    assert rows[("onnxruntime", "float64")].status == rows[("onnxruntime", "float32")].status == "PASS"


def test_the_original_row_catches_a_difference(tmp_path, registry) -> None:
    """A graph that differs from its file (here: another scale) fails the original's row only."""
    from mdfx.converters.onnx_import import load_onnx

    path = _onnx_file(tmp_path)
    graph = load_onnx(path)
    graph.params["onnx::Mul_3"].value[...] = 3.0
    rows = by_key(validate(graph, trials=4, dtype="float64", runners=["onnxruntime"], original=path))
    assert rows[("onnxruntime", "float64")].status == "PASS"
    bad = rows[(compare.ORIGINAL, "float64")]
    assert bad.status == "FAIL" and "values of 'y' outside tolerance" in bad.note, bad.note


def test_backends_that_take_no_graph_show_skip(registry) -> None:
    """A module whose run() reads attributes a Graph lacks shows SKIP with the reason, not an error."""
    import sys
    import types

    fake = types.ModuleType("mdfx_fake_backend")
    fake.run = lambda net, inputs, dtype="float64": {n: inputs[n] for n in net.inputs_by_node}
    sys.modules["mdfx_fake_backend"] = fake
    try:
        compare.register_runner("fake", compare._ModuleRunner("mdfx_fake_backend"))
        g = Graph.build("g", {"x": (2,)}, [Param("b", np.ones(2))], [Node("add", "Add", ["x", "b"], "y")], ["y"])
        rows = by_key(validate(g, trials=2, dtype="float64", runners=["fake"]))
    finally:
        del sys.modules["mdfx_fake_backend"]
    row = rows[("fake", "float64")]
    assert row.status == "SKIP" and "does not take an op graph yet (AttributeError" in row.note, row.note


def test_zipmap_outputs_compare_as_numbers() -> None:
    out = np.empty(2, dtype=object)
    out[:] = [{0: 0.25, 1: 0.75}, {0: 0.5, 1: 0.5}]
    np.testing.assert_array_equal(compare._numeric(out), [[0.25, 0.75], [0.5, 0.5]])


def test_a_fixed_batch_original_runs_in_batches_of_its_size(tmp_path) -> None:
    path = _onnx_file(tmp_path, batch=2)
    rows = by_key(validate(path, trials=6, dtype="float64", runners=["onnxruntime"]))
    assert rows[(compare.ORIGINAL, "float64")].status == "PASS", rows[(compare.ORIGINAL, "float64")].note
    odd = by_key(validate(path, trials=3, dtype="float64", runners=["onnxruntime"]))[(compare.ORIGINAL, "float64")]
    assert odd.status == "ERROR" and "takes batches of exactly 2; give a multiple of 2 trials" in odd.note, odd.note
