"""The ``mdfx`` command line, end to end on small files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import CORPUS, xor_composition

import mdfx as pnl
from mdfx.cli import main


@pytest.fixture
def xor_file(tmp_path: Path) -> Path:
    comp, _, _ = xor_composition()
    return pnl.save(comp, tmp_path / "xor.json")


def write_data(path: Path) -> Path:
    path.write_text(json.dumps({"inputs": {"xor_in": [[0, 0], [0, 1], [1, 0], [1, 1]]},
                                "targets": {"xor_out": [[0], [1], [1], [0]]}}))
    return path


def test_info_lists_nodes_roles_and_projections(xor_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(xor_file)]) == 0
    out = capsys.readouterr().out
    assert "xor_in: size 2, linear(slope=1, intercept=0, scale=1, offset=0)  INPUT" in out, out
    assert "xor_out: size 1, logistic(gain=1, bias=0, x_0=0, offset=0, scale=1)  OUTPUT" in out, out
    assert "in_to_hid: xor_in -> xor_hid, matrix 2x10" in out, out


def test_run_writes_outputs(xor_file: Path, tmp_path: Path) -> None:
    data = write_data(tmp_path / "data.json")
    out = tmp_path / "out.json"
    assert main(["run", str(xor_file), "--inputs", str(data), "--out", str(out)]) == 0
    got = json.loads(out.read_text())["xor_out"]
    comp, x, _ = xor_composition()
    comp.run(inputs=x)
    np.testing.assert_allclose(got, [r[0] for r in comp.results], rtol=1e-14)


def test_train_end_to_end_writes_model_weights_and_plot(xor_file: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.npz"
    np.savez(data, xor_in=np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), xor_out=np.array([[0], [1], [1], [0]]))
    trained, weights, plot = tmp_path / "t.onnx", tmp_path / "w.pt", tmp_path / "loss.png"
    rc = main(["train", str(xor_file), "--data", str(data), "--epochs", "30", "--lr", "0.5", "--quiet",
               "--optimizer", "adam", "--out", str(trained), "--state-dict", str(weights), "--plot", str(plot)])
    assert rc == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    comp, x, t = xor_composition()
    comp.optimizer_type = "adam"
    comp.learn(inputs=x, targets=t, epochs=30, learning_rate=0.5)
    from mdfx.runners import ort

    got = ort.run(str(trained), {"xor_in": np.array([[0.0, 1.0]])})["xor_out"]
    np.testing.assert_allclose(got, comp.run(inputs=x[comp.nodes[0]][1:2]), rtol=1e-5)
    back, _, _ = xor_composition(seed=9)
    back.load(path=weights)
    np.testing.assert_allclose(back.projections[0].matrix, comp.projections[0].matrix, rtol=1e-12)


def test_export_and_convert(xor_file: Path, tmp_path: Path) -> None:
    onnx_path, yaml_path, pt = tmp_path / "x.onnx", tmp_path / "x.yaml", tmp_path / "x.pt"
    assert main(["export", str(xor_file), "--onnx", str(onnx_path), "--opset", "13", "--dtype", "float64",
                 "--state-dict", str(pt), "--mdf", str(yaml_path)]) == 0
    import onnx

    model = onnx.load(str(onnx_path))
    assert model.opset_import[0].version == 13
    assert main(["convert", str(yaml_path), str(tmp_path / "back.json")]) == 0
    back = pnl.load(tmp_path / "back.json")
    assert back.projections[0].matrix.tobytes() == pnl.load(xor_file).projections[0].matrix.tobytes()


def test_validate_prints_table_and_json(xor_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "v.json"
    assert main(["validate", str(xor_file), "--trials", "3", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime  float32  PASS" in out, out
    rows = json.loads(report.read_text())
    assert {r["runner"] for r in rows} >= {"reference", "onnxruntime", "torch", "mdf_engine"}


@pytest.mark.parametrize(("argv", "message"), [
    (["info", "missing.json"], "mdfx: error: missing.json: no such file\n"),
    (["run", "MODEL", "--inputs", "nope.npz"], "mdfx: error: nope.npz: no such file\n"),
    (["run", "MODEL", "--inputs", "DATA_BAD"], "mdfx: error: input for node 'xor_in' has shape (1, 3); "
                                               "expected (trials, 2)\n"),
    (["run", "MODEL", "--inputs", "DATA_MISSING"], "mdfx: error: DATA_MISSING: no 'xor_in'; found 'other', expected "
                                                   "inputs for 'xor_in' (keys '<node>', or 'inputs/<node>' and "
                                                   "'targets/<node>')\n"),
    (["train", "MODEL", "--data", "DATA_NAN", "--quiet"], "mdfx: error: target for node 'xor_out' contains "
                                                          "NaN or infinite values\n"),
])
def test_user_errors_are_one_line(argv: list[str], message: str, xor_file: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"xor_in": [[1, 2, 3]]}))
    (tmp_path / "missing.json").write_text(json.dumps({"other": [[1, 2]]}))
    (tmp_path / "nan.json").write_text('{"xor_in": [[0, 0]], "xor_out": [[NaN]]}')
    subs = {"MODEL": str(xor_file), "DATA_BAD": str(tmp_path / "bad.json"),
            "DATA_MISSING": str(tmp_path / "missing.json"), "DATA_NAN": str(tmp_path / "nan.json")}
    assert main([subs.get(a, a) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err == message.replace("DATA_MISSING", subs["DATA_MISSING"])


@pytest.mark.skipif(not (CORPUS / "modeci-examples").exists(), reason="../shared/corpus not present")
def test_unsupported_model_is_one_line_without_traceback() -> None:
    path = CORPUS / "modeci-examples" / "MDF_States.json"
    proc = subprocess.run([sys.executable, "-m", "mdfx", "info", str(path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == (f"mdfx: error: {path}: node 'sine_node': parameter 'level' has a time derivative "
                           "(a stateful, time-stepped node); mdfx supports feed-forward networks only\n")
    assert "Traceback" not in proc.stderr


def test_train_takes_an_onnx_file_and_writes_mdf(xor_file: Path, tmp_path: Path) -> None:
    onnx_path, data, out = tmp_path / "x.onnx", write_data(tmp_path / "d.json"), tmp_path / "trained.json"
    assert main(["export", str(xor_file), "--onnx", str(onnx_path), "--dtype", "float64"]) == 0
    assert main(["train", str(onnx_path), "--data", str(data), "--epochs", "5", "--lr", "0.5",
                 "--mode", "llvm", "--quiet", "--out", str(out)]) == 0
    trained = pnl.load(out)  # an ONNX file is an op graph: it trains and saves as one
    comp, x, t = xor_composition()
    comp.learn(inputs=x, targets=t, epochs=5, learning_rate=0.5)
    first = comp.projections[0]
    np.testing.assert_allclose(trained.graph.params[first.name].value, first.matrix, rtol=1e-9,
                               err_msg=f"{first.name}: the CLI-trained ONNX file against learn() on the composition")


@pytest.mark.parametrize("script", ["seed_example.py", "xor.py"])
def test_examples_run(script: str, tmp_path: Path) -> None:
    from helpers import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("nested learn:" in proc.stdout) if script == "seed_example.py" else (tmp_path / "xor_trained.onnx").exists()


def test_info_of_an_onnx_file_escapes_control_characters_in_names(tmp_path: Path, capsys) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w\x1b[31m"], ["y"], name="evil\x1b[2J")], "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 2])],
        [numpy_helper.from_array(np.eye(2), "w\x1b[31m")])
    path = tmp_path / "evil.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out, repr(out)
    assert "%y = MatMul(%x, %w\\x1b[31m)  # evil\\x1b[2J" in out, out
