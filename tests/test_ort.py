"""The onnxruntime runner: names, dtypes, files and the errors a user meets."""

from __future__ import annotations

import numpy as np
import pytest
from export_nets import inputs_for, multi_net, node, proj

from mdfx.converters import onnx_export
from mdfx.converters.onnx_export import save_onnx, to_onnx
from mdfx.errors import DataError, SchemaError
from mdfx.runners import ort, reference
from mdfx.runners.compare import TOLERANCES
from mdfx.schema.mechanisms import build as build_network


def test_metadata_keys_agree_with_the_exporter() -> None:
    assert (ort.INPUT_NAMES_KEY, ort.OUTPUT_NAMES_KEY) == (
        onnx_export.INPUT_NAMES_KEY, onnx_export.OUTPUT_NAMES_KEY)


def test_inputs_are_cast_to_the_model_dtype() -> None:
    net = multi_net()
    inputs = {k: v.astype(np.float64) for k, v in inputs_for(net).items()}
    got = ort.run(to_onnx(net, "float32"), inputs)
    want = reference.run(net, inputs)
    for name in want:
        assert got[name].dtype == np.float32, f"{name}: {got[name].dtype}"
        np.testing.assert_allclose(got[name], want[name], **TOLERANCES["float32"], err_msg=name)
    ints = {"a": np.ones((2, 2), dtype=np.int64), "b": np.zeros((2, 3), dtype=np.int32)}
    got64 = ort.run(to_onnx(net, "float64"), ints)
    np.testing.assert_allclose(got64["o1"], reference.run(net, ints)["o1"], **TOLERANCES["float64"])


def test_prepared_model_runs_many_batches() -> None:
    net = multi_net()
    model = ort.prepare(to_onnx(net, "float64"))
    assert [p.name for p in model.inputs] == ["a", "b"]
    assert [p.name for p in model.outputs] == ["o1", "o2"]
    for trials in (1, 7):
        inputs = inputs_for(net, trials=trials)
        got = model(inputs)
        assert got["o2"].shape == (trials, 2), got["o2"].shape
        np.testing.assert_allclose(got["o2"], reference.run(net, inputs)["o2"], **TOLERANCES["float64"])


def test_runs_a_file_and_bytes(tmp_path) -> None:
    net = multi_net()
    path = save_onnx(net, tmp_path / "m.onnx", "float64")
    want = reference.run(net, inputs_for(net))["o1"]
    for source in (path, str(path), path.read_bytes()):
        got = ort.run(source, inputs_for(net))["o1"]
        np.testing.assert_allclose(got, want, **TOLERANCES["float64"], err_msg=f"source {type(source)}")


def test_net_names_and_sanitized_names_both_work() -> None:
    rng = np.random.default_rng(0)
    a, o = node("in put", 2), node("out put", 3, "tanh")
    net = build_network("spaces", [a, o], [proj(rng, a, o)])
    model = to_onnx(net, "float64")
    x = np.array([[0.5, -0.5]])
    by_net_name = ort.run(model, {"in put": x})
    by_onnx_name = ort.run(model, {"in_put": x})
    assert list(by_net_name) == ["out put"], "outputs come back under the mechanisms' names"
    np.testing.assert_array_equal(by_net_name["out put"], by_onnx_name["out put"])


def test_missing_input_is_named() -> None:
    model = to_onnx(multi_net())
    with pytest.raises(DataError, match="missing input 'b' for the ONNX model; it needs a, b"):
        ort.run(model, {"a": np.zeros((1, 2))})


def test_unknown_input_is_named() -> None:
    model = to_onnx(multi_net())
    with pytest.raises(DataError, match="the ONNX model has no input 'c'; its inputs are a, b"):
        ort.run(model, {"a": np.zeros((1, 2)), "b": np.zeros((1, 3)), "c": np.zeros((1, 1))})


def test_wrong_width_is_named() -> None:
    model = to_onnx(multi_net())
    with pytest.raises(DataError, match=r"input 'b' has width 2 \(shape \(4, 2\)\); the ONNX model expects \(trials, 3\)"):
        ort.run(model, {"a": np.zeros((4, 2)), "b": np.zeros((4, 2))})


def test_one_dimensional_input_is_refused_with_a_hint() -> None:
    model = to_onnx(multi_net())
    with pytest.raises(DataError, match=r"input 'a' has shape \(2,\); expected \(trials, 2\).*reshape\(1, -1\)"):
        ort.run(model, {"a": np.zeros(2), "b": np.zeros((1, 3))})


def test_missing_and_broken_files_are_schema_errors(tmp_path) -> None:
    with pytest.raises(SchemaError, match="no ONNX file at .*absent.onnx"):
        ort.run(tmp_path / "absent.onnx", {})
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(SchemaError, match="onnxruntime cannot load .*bad.onnx"):
        ort.run(bad, {})


# --- a graph's export in one cached session --------------------------------------------------------


def test_run_graph_builds_one_session_and_reads_the_current_weights() -> None:
    from helpers import xor_composition

    import mdfx

    comp, x, t = xor_composition()
    graph = comp._graph()
    arrays = {"xor_in": np.asarray(x[comp.nodes[0]], dtype=float)}
    first = ort.run_graph(graph, arrays)["xor_out"]
    sessions = len(ort._SESSIONS)  # another test may have built this structure's session already
    from mdfx.runners import reference

    np.testing.assert_allclose(first, reference.run(graph, arrays)["xor_out"], rtol=1e-12, atol=1e-14)
    comp.learn(inputs=x, targets=t, epochs=3, execution_mode=mdfx.ExecutionMode.Python)
    got = comp.run(inputs=x, execution_mode=mdfx.ExecutionMode.ONNX)
    want = comp.run(inputs=x, execution_mode=mdfx.ExecutionMode.Python)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg="ONNX mode runs the trained weights")
    assert not np.allclose(ort.run_graph(graph, arrays)["xor_out"], first), "weights are read at each call"
    assert len(ort._SESSIONS) == sessions, "one session for the structure, whatever the weights"


def test_onnx_mode_runs_an_imported_graph(tmp_path) -> None:
    import mdfx
    from mdfx.composition.graph_model import GraphComposition
    from mdfx.schema.graph import Graph, Node, Param

    g = Graph.build("g", {"x": (3,)}, [Param("w", np.arange(6.0).reshape(3, 2) / 5), Param("c", np.array(0.5), False)],
                    [Node("mm", "MatMul", ["x", "w"], "h"), Node("mul", "Mul", ["h", "c"], "m"),
                     Node("sm", "Softmax", ["m"], "y", {"axis": -1})], ["y"])
    comp = GraphComposition(g)
    x = np.random.default_rng(0).normal(size=(4, 3))
    got = comp.run(inputs={"x": x}, execution_mode=mdfx.ExecutionMode.ONNX)
    want = comp.run(inputs={"x": x}, execution_mode=mdfx.ExecutionMode.Python)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("value", "message"), [
    (np.array([[1 + 2j, 0]]), r"input 'a' holds complex numbers"),
    (np.array([["1.5", "2"]]), r"input 'a' is not numeric: it holds strings"),
    (np.array([[np.nan, 0.0]]), r"input 'a' contains NaN or infinite values, first at row 0, column 0"),
    (np.array([[1e300, 0.0]]), r"input 'a' contains NaN or infinite values after conversion to float32"),
])
def test_the_shared_validator_guards_onnxruntime(value: np.ndarray, message: str) -> None:
    """The same refusals as every other runner (mdfx.schema.validate), for prepared models and
    for run_graph, so validate's onnxruntime row cannot silently drop or cast away data."""
    b = np.zeros((1, 3))
    with pytest.raises(DataError, match=message):
        ort.run(to_onnx(multi_net(), "float32"), {"a": value, "b": b})
    if "float32" not in message:
        from helpers import xor_composition

        graph = xor_composition()[0]._graph()
        with pytest.raises(DataError, match=message.replace("input 'a'", "input for node 'xor_in'")):
            ort.run_graph(graph, {"xor_in": value})
