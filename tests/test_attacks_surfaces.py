"""Hostile inputs on the surfaces added after the first attack catalogue (tests/test_attacks.py):
ONNX attributes, indices and axes; learning rates; learn()'s arguments; sweeps; names; limits.

Each test builds its input at test time and asserts the one mdfx error (class and text) the
attack must get, or the safe result. The ops added later (Conv, pools, LSTM, Gather on the
batch...) belong here too: hostile attributes, shapes and sizes, one case each.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import xor_composition

import mdfx
import mdfx.limits
from mdfx.errors import (
    CompositionError,
    DataError,
    LimitError,
    MdfxError,
    ParameterError,
    SchemaError,
    UnsupportedError,
)

# --- ONNX files that onnxruntime refuses: refused at import, naming the node ------------------


def _onnx(tmp: Path, nodes: list, inits: list, outputs: tuple[str, ...] = ("y",), width: int = 4,
          inputs: tuple[str, ...] = ("x",)) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "attack", [helper.make_tensor_value_info(i, TensorProto.DOUBLE, ["N", width])
                                                for i in inputs],
                              [helper.make_tensor_value_info(o, TensorProto.DOUBLE, None) for o in outputs], inits)
    path = tmp / "attack.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _t(name: str, value: object, dtype: object = None) -> object:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _n(op: str, ins: list[str], outs: list[str], name: str, **attrs: object) -> object:
    from onnx import helper

    return helper.make_node(op, ins, outs, name=name, **attrs)


I64 = np.int64
NAN, INF = float("nan"), float("inf")
BN_STATS = [_t("sc", np.ones(4)), _t("b", np.zeros(4)), _t("m", np.zeros(4))]

#: name -> (nodes, initializers, message the refusal must match)
ONNX_CASES = {
    "gather_index_out_of_range": (lambda: ([_n("Gather", ["x", "i"], ["y"], "g", axis=1)], [_t("i", [5], I64)]),
                                  r"node 'g' \(Gather\): index 5 is out of range for axis 1 of size 4"),
    "gather_axis_9": (lambda: ([_n("Gather", ["x", "i"], ["y"], "g", axis=9)], [_t("i", [1], I64)]),
                      r"node 'g' \(Gather\): axis 9 is out of range for its rank-2 data"),
    "gather_float_indices": (lambda: ([_n("Gather", ["x", "i"], ["y"], "g", axis=1)], [_t("i", [1.7])]),
                             r"node 'g' \(Gather\): its indices have dtype float64"),
    "gather_rank0_initializer": (lambda: ([_n("Gather", ["c.weight", "i"], ["t"], "g"), _n("Add", ["x", "t"], ["y"], "a")],
                                          [_t("c.weight", 3.0), _t("i", 0, I64)]),
                                 r"node 'g' \(Gather\): its data is a scalar \(rank 0\)"),
    "slice_axis_7": (lambda: ([_n("Slice", ["x", "s", "e", "a"], ["y"], "s")],
                              [_t("s", [0], I64), _t("e", [2], I64), _t("a", [7], I64)]),
                     r"node 's' \(Slice\): axes value 7 is out of range for its rank-2 data"),
    "slice_starts_ends_mismatch": (lambda: ([_n("Slice", ["x", "s", "e", "a"], ["y"], "s")],
                                            [_t("s", [0, 1], I64), _t("e", [2], I64), _t("a", [1], I64)]),
                                   r"node 's' \(Slice\): starts has 2, ends has 1, axes has 1 values"),
    "slice_duplicate_axes": (lambda: ([_n("Slice", ["x", "s", "e", "a"], ["y"], "s")],
                                      [_t("s", [0, 1], I64), _t("e", [2, 3], I64), _t("a", [1, -1], I64)]),
                             r"node 's' \(Slice\): axes \[1, -1\] name axis 1 twice"),
    "slice_rank0_initializer": (lambda: ([_n("Slice", ["c.weight", "s", "e"], ["t"], "s"),
                                          _n("Add", ["x", "t"], ["y"], "a")],
                                         [_t("c.weight", 3.0), _t("s", [0], I64), _t("e", [1], I64)]),
                                r"node 's' \(Slice\): its data is a scalar \(rank 0\)"),
    "split_negative_size": (lambda: ([_n("Split", ["x", "sp"], ["y", "z"], "sp", axis=1)], [_t("sp", [-2, 6], I64)]),
                            r"node 'sp' \(Split\): sizes \[-2, 6\] hold a negative size"),
    "split_sizes_do_not_add_up": (lambda: ([_n("Split", ["x", "sp"], ["y", "z"], "sp", axis=1)],
                                           [_t("sp", [1, 2], I64)]),
                                  r"node 'sp' \(Split\): sizes \[1, 2\] add up to 3, not the axis size 4"),
    "gelu_approximate_bogus": (lambda: ([_n("Gelu", ["x"], ["y"], "ge", approximate="bogus")], []),
                               r"node 'ge' \(Gelu\): attribute approximate='bogus' is not one of 'none', 'tanh'"),
    "leakyrelu_alpha_nan": (lambda: ([_n("LeakyRelu", ["x"], ["y"], "lr", alpha=NAN)], []),
                            r"node 'lr' \(LeakyRelu\): attribute alpha=nan is not a finite number"),
    "elu_alpha_inf": (lambda: ([_n("Elu", ["x"], ["y"], "el", alpha=INF)], []),
                      r"node 'el' \(Elu\): attribute alpha=inf is not a finite number"),
    "selu_gamma_nan": (lambda: ([_n("Selu", ["x"], ["y"], "se", gamma=NAN)], []),
                       r"node 'se' \(Selu\): attribute gamma=nan is not a finite number"),
    "gemm_alpha_nan": (lambda: ([_n("Gemm", ["x", "w"], ["y"], "gm", alpha=NAN)], [_t("w", np.ones((4, 2)))]),
                       r"node 'gm' \(Gemm\): attribute alpha=nan"),
    "gemm_beta_inf": (lambda: ([_n("Gemm", ["x", "w", "c"], ["y"], "gm", beta=-INF)],
                               [_t("w", np.ones((4, 2))), _t("c", np.ones(2))]),
                      r"node 'gm' \(Gemm\): attribute beta=-inf"),
    "layernorm_epsilon_negative": (lambda: ([_n("LayerNormalization", ["x", "sc", "b"], ["y"], "ln", epsilon=-1.0)],
                                            [_t("sc", np.ones(4)), _t("b", np.zeros(4))]),
                                   r"node 'ln' \(LayerNormalization\): attribute epsilon=-1.0 is negative"),
    "batchnorm_epsilon_nan": (lambda: ([_n("BatchNormalization", ["x", "sc", "b", "m", "v"], ["y"], "bn",
                                          epsilon=NAN)], [*BN_STATS, _t("v", np.ones(4))]),
                              r"node 'bn' \(BatchNormalization\): attribute epsilon=nan"),
    "batchnorm_running_var_negative": (lambda: ([_n("BatchNormalization", ["x", "sc", "b", "m", "v"], ["y"], "bn")],
                                                [*BN_STATS, _t("v", [1.0, -0.5, 1.0, 1.0])]),
                                       r"node 'bn' \(BatchNormalization\): its running variance 'v' holds -0.5"),
    "reshape_rank_101": (lambda: ([_n("Reshape", ["x", "s"], ["y"], "r")], [_t("s", [0, 4] + [1] * 99, I64)]),
                         r"node 'r' \(Reshape\): a result of rank 101; .* up to 64"),
}


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_onnx_refused_at_import_naming_the_node(case: str, tmp_path: Path) -> None:
    make, message = ONNX_CASES[case]
    nodes, inits = make()
    path = _onnx(tmp_path, nodes, inits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "kept frozen" notice of a non-torch initializer name
        with pytest.raises(UnsupportedError, match=message) as info:
            comp = mdfx.load(path)
            out = comp.run(inputs={comp.get_nodes_by_role(mdfx.NodeRole.INPUT)[0]: np.ones((2, 4))})
            print(f"{case}: loaded and ran, giving {np.asarray(out).tolist()}")
    print(f"{case}: {info.value}")


def test_onnx_valid_gather_slice_split_still_import(tmp_path: Path) -> None:
    # the checks refuse only what ONNX refuses: negative indices and axes stay valid
    nodes = [_n("Gather", ["x", "i"], ["g"], "g", axis=-1), _n("Slice", ["x", "s", "e", "a"], ["sl"], "sl"),
             _n("Split", ["x", "sp"], ["p", "q"], "sp", axis=1), _n("Concat", ["g", "sl", "p", "q"], ["y"], "c", axis=1)]
    inits = [_t("i", [-1], I64), _t("s", [-3], I64), _t("e", [2**62], I64), _t("a", [-1], I64), _t("sp", [1, 3], I64)]
    comp = mdfx.load(_onnx(tmp_path, nodes, inits))
    x = np.arange(8.0).reshape(2, 4)
    got = np.ravel(comp.run(inputs={comp.get_nodes_by_role(mdfx.NodeRole.INPUT)[0]: x}))  # the last trial's
    want = np.concatenate([x[:, [-1]], x[:, -3:], x[:, :1], x[:, 1:]], axis=1)[-1]
    np.testing.assert_array_equal(got, want, err_msg=f"got {got.tolist()}, want {want.tolist()}")


@pytest.mark.parametrize("kind", ["input", "output"])
def test_onnx_duplicate_graph_input_or_output_names_refused(kind: str, tmp_path: Path) -> None:
    nodes = [_n("Add", ["x", "x"], ["y"], "a")]
    path = _onnx(tmp_path, nodes, [], outputs=("y", "y") if kind == "output" else ("y",),
                 inputs=("x", "x") if kind == "input" else ("x",))
    with pytest.raises(SchemaError, match=f"graph {kind} '{'x' if kind == 'input' else 'y'}' is listed 2 times"):
        mdfx.load(path)


# --- learning rates -----------------------------------------------------------------------

MODES = [mdfx.ExecutionMode.Python, mdfx.ExecutionMode.PyTorch, mdfx.ExecutionMode.LLVMRun]


def _learn(comp: mdfx.AutodiffComposition, x: dict, t: dict, mode: mdfx.ExecutionMode, **kw: object) -> None:
    comp.learn(inputs=x, targets=t, epochs=2, execution_mode=mode, **kw)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
@pytest.mark.parametrize(("key", "rate", "message"), [
    ("projection", NAN, r"learning_rate\['in_to_hid'\] must be a finite number, got nan"),
    ("projection", INF, r"learning_rate\['in_to_hid'\] must be a finite number, got inf"),
    ("name", -0.5, r"learning_rate\['in_to_hid'\] must not be negative, got -0.5"),
    ("name", NAN, r"learning_rate\['in_to_hid'\] must be a finite number, got nan"),
    ("default", NAN, r"learning_rate\['default_learning_rate'\] must be a finite number, got nan"),
    ("default", -1.0, r"learning_rate\['default_learning_rate'\] must not be negative"),
])
def test_learning_rate_dict_entries_must_be_finite_and_non_negative(key: str, rate: float, message: str,
                                                                   mode: mdfx.ExecutionMode) -> None:
    comp, x, t = xor_composition()
    p = comp.projections[0]
    spec = {p if key == "projection" else p.name if key == "name" else mdfx.DEFAULT_LEARNING_RATE: rate}
    before = p.matrix.copy()
    with pytest.raises(ParameterError, match=message):
        _learn(comp, x, t, mode, learning_rate=spec)
    np.testing.assert_array_equal(p.matrix, before, err_msg="weights changed by a refused learn()")
    with pytest.raises(ParameterError, match=message.replace(r"'xor'\.learn\(\): ", "")):
        comp.learning_rate = spec  # the composition's own dict: the same check


def test_learning_rate_nested_dict_refused() -> None:
    comp, x, t = xor_composition()
    with pytest.raises(CompositionError, match=r"learning_rate\['in_to_hid'\] is a dict inside a learning_rate dict"):
        comp.learn(inputs=x, targets=t, learning_rate={comp.projections[0]: {mdfx.DEFAULT_LEARNING_RATE: 0.1}},
                   execution_mode=mdfx.ExecutionMode.Python)


@pytest.mark.parametrize("rate", [NAN, INF, -1.0])
def test_mapping_projection_learning_rate_must_be_finite(rate: float) -> None:
    a, b = mdfx.TransferMechanism(size=2, name="a"), mdfx.TransferMechanism(size=1, name="b")
    with pytest.raises(ParameterError, match=rf"projection 'p': learning_rate must be a finite number >= 0, "
                                             rf"got {rate!r}"):
        mdfx.MappingProjection(matrix=np.ones((2, 1)), sender=a, receiver=b, name="p", learning_rate=rate)


# --- learn() diverging, arguments, inputs -------------------------------------------------------


def _linear(rate: float = 1e3) -> tuple:
    a, b = mdfx.TransferMechanism(size=2, name="a"), mdfx.TransferMechanism(size=1, name="b")
    p = mdfx.MappingProjection(matrix=np.ones((2, 1)), sender=a, receiver=b, name="p")
    comp = mdfx.AutodiffComposition(learning_rate=rate, name="lin")
    comp.add_linear_processing_pathway([a, p, b])
    return comp, p, {a: [[1.0, 2.0], [3.0, 4.0]]}, {b: [[1.0], [2.0]]}


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_learn_that_diverges_raises_naming_the_epoch(mode: mdfx.ExecutionMode) -> None:
    comp, p, x, t = _linear()
    with np.errstate(all="ignore"), pytest.raises(
            DataError, match=r"'lin'\.learn\(\): training diverged: the loss became inf at epoch 18 minibatch 0 "
                             r"\(minibatch 36 overall\); the weights are those of before the call"):
        comp.learn(inputs=x, targets=t, epochs=200, execution_mode=mode)
    np.testing.assert_array_equal(p.matrix, np.ones((2, 1)), err_msg="weights not rolled back")
    assert comp.losses == [], f"losses recorded from a refused run: {comp.losses[:3]}"
    with np.errstate(all="ignore"):  # PsyNeuLink's behaviour on request
        comp.learn(inputs=x, targets=t, epochs=200, execution_mode=mode, on_nonfinite="keep")
    assert np.isnan(p.matrix).all(), f"on_nonfinite='keep' did not keep the diverged weights: {p.matrix.tolist()}"


@pytest.mark.parametrize(("options", "message"), [
    ({"seed": -1}, r"seed must be in 0\.\.4294967295 \(numpy's 32-bit seeds\), got -1"),
    ({"seed": 2**32}, r"seed must be in 0\.\.4294967295 .*got 4294967296"),
    ({"seed": NAN}, r"seed must be an integer in 0\.\.4294967295 or None, got float NaN"),
    ({"seed": "7"}, r"seed must be an integer .* got str '7'"),
    ({"results": "bogus"}, r"results='bogus'; expected one of all, last_epoch"),
    ({"dtype": "float16"}, r"dtype='float16'; learn\(\) computes in float64 or float32"),
    ({"dtype": "float128"}, r"dtype='float128'"),
    ({"dtype": np.float32}, r"dtype=<class 'numpy.float32'>.*give the name as a string"),
    ({"on_nonfinite": "ignore"}, r"on_nonfinite='ignore'; expected one of raise, keep"),
])
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_learn_arguments_refused_in_every_mode(options: dict, message: str, mode: mdfx.ExecutionMode) -> None:
    comp, x, t = xor_composition()
    with pytest.raises(ParameterError, match=message) as info:
        comp.learn(inputs=x, targets=t, randomize_minibatch=True, execution_mode=mode, **options)
    assert isinstance(info.value, ValueError), "the refusal is also a ValueError (what numpy raised before)"


def _inputs_case(case: str, comp: mdfx.AutodiffComposition, x: dict) -> object:
    node = comp.nodes[0]
    if case == "10**400":
        return {node: [[10**400, 0]] * 4}
    if case == "requires_grad":
        import torch

        return {node: torch.zeros(4, 2, requires_grad=True)}
    if case == "lambda_none":
        return lambda k: None
    if case == "node_and_name":
        return {node: x[node], node.name: [[9.0, 9.0]] * 4}
    raise AssertionError(case)


@pytest.mark.parametrize(("case", "message"), [
    ("10**400", r"input for node 'xor_in' holds 10000000000000000000\.\.\. \(401 digits\), beyond float64's range"),
    ("requires_grad", r"inputs for 'xor_in' is a torch tensor that requires grad; pass tensor\.detach\(\)"),
    ("lambda_none", r"the inputs function returned NoneType for trial 0; it must return a dict"),
    ("node_and_name", r"input for node 'xor_in' is given twice \(as the node and as its name"),
])
def test_learn_inputs_refused(case: str, message: str) -> None:
    comp, x, t = xor_composition()
    with pytest.raises(DataError, match=message):
        comp.learn(inputs=_inputs_case(case, comp, x), targets=t, execution_mode=mdfx.ExecutionMode.Python)


@pytest.mark.parametrize("mode", MODES[:2], ids=lambda m: m.name)
def test_callback_assigning_a_wrong_shape_matrix_is_refused(mode: mdfx.ExecutionMode) -> None:
    comp, x, t = xor_composition()
    p = comp.projections[0]
    before = p.matrix.copy()
    with pytest.raises(ParameterError, match=r"projection 'in_to_hid': the new matrix has shape \(3, 3\), the "
                                             r"projection's is \(2, 10\)"):
        comp.learn(inputs=x, targets=t, epochs=2, execution_mode=mode,
                   call_after_minibatch=lambda: setattr(p, "matrix", np.ones((3, 3))))
    np.testing.assert_array_equal(p.matrix, before, err_msg="weights not rolled back after the refusal")


def test_boolean_matrix_refused() -> None:
    a, b = mdfx.TransferMechanism(size=2, name="a"), mdfx.TransferMechanism(size=1, name="b")
    with pytest.raises(ParameterError, match=r"projection 'p': the matrix holds booleans; give numbers"):
        mdfx.MappingProjection(matrix=np.ones((2, 1), bool), sender=a, receiver=b, name="p")


def test_endless_generator_is_refused_at_the_limit() -> None:
    comp, x, t = xor_composition()

    def endless() -> object:
        while True:
            yield {"inputs": x, "targets": t}

    with mdfx.limits.set(max_generator_dicts=5), pytest.raises(
            LimitError, match=r"dicts from the inputs generator \(an endless generator\? give a finite one\): "
                                   r"6 is over the limit of 5; raise it with .*MDFX_MAX_GENERATOR_DICTS"):
        comp.learn(inputs=endless(), execution_mode=mdfx.ExecutionMode.Python)
    assert len(comp.results) == 5 * 4, f"trained {len(comp.results)} trials before the refusal, want 20"


def test_endless_inputs_function_is_refused_at_the_limit() -> None:
    comp, x, t = xor_composition()
    node, out = comp.nodes[0], comp.nodes[-1]
    with mdfx.limits.set(max_input_calls=100), pytest.raises(
            LimitError, match=r"calls of the inputs function .*: 101 is over the limit of 100"):
        comp.learn(inputs=lambda k: {"inputs": {node: [0, 1]}, "targets": {out: [1]}},
                   execution_mode=mdfx.ExecutionMode.Python)



# --- sweeps and the command line ------------------------------------------------------------

XOR_DATA = {"inputs": {"xor_in": [[0, 0], [0, 1], [1, 0], [1, 1]]}, "targets": {"xor_out": [[0], [1], [1], [0]]}}


def _files(tmp: Path, grid: str = "learning_rate: [0.5]\nepochs: 2\n", comp: object = None) -> tuple[str, str]:
    import json

    model = mdfx.save(comp or xor_composition()[0], tmp / "xor.json")
    (tmp / "grid.yaml").write_text(grid)
    (tmp / "d.json").write_text(json.dumps(XOR_DATA))
    return str(model), str(tmp / "grid.yaml")


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from mdfx.cli import main

    rc = main(list(args))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_sweep_dataset_names_are_unique_from_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import pandas as pd

    model, grid = _files(tmp_path)
    for rel in ("d2.json", "a/d.json", "b/d.json"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text(json.dumps(XOR_DATA))
    rc, out, err = _main(capsys, "sweep", model, "--data", str(tmp_path / "d2.json"), str(tmp_path / "a/d.json"),
                         str(tmp_path / "b/d.json"), "--grid", grid, "--workers", "0", "--out",
                         str(tmp_path / "out"), "--quiet")
    assert rc == 0 and "3 runs (3 trained now, 0 already done): 3 ok" in out, out + err
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert sorted(table["dataset"]) == ["a/d", "b/d", "d2"], table["dataset"].tolist()
    assert len(list((tmp_path / "out" / "runs").glob("*.json"))) == 3
    rc, out, err = _main(capsys, "sweep", model, "--data", str(tmp_path / "d2.json"), str(tmp_path / "d2.json"),
                         "--grid", grid, "--workers", "0", "--out", str(tmp_path / "out2"), "--quiet")
    assert rc == 1 and "d2.json is given twice; both would be data set 'd2', and their runs would overwrite" in err, err


def test_sweep_with_failed_runs_exits_non_zero_saying_how_many(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    model, grid = _files(tmp_path, "learning_rate: [0.5, 1.0]\nminibatch_size: 10\nepochs: 2\n")
    rc, out, err = _main(capsys, "sweep", model, "--data", str(tmp_path / "d.json"), "--grid", grid,
                         "--workers", "0", "--out", str(tmp_path / "out"), "--quiet", "--best")
    assert rc == 1, out + err
    assert "2 runs (2 trained now, 0 already done): 2 error" in out, out
    assert err.startswith("mdfx: error: sweep: 2 of 2 runs failed (status 'error' in ") and err.count("\n") == 1, err
    assert "minibatch_size (10) cannot be greater than the number of trials (4)" in err, err
    assert (tmp_path / "out" / "results.csv").is_file(), "the results of a failed sweep are still written"


@pytest.mark.parametrize(("plot", "message"), [
    ("p.txt", r"--plot .*p\.txt: the file name must end in \.png \(got '\.txt'\)"),
    ("nodir/p.png", r"--plot .*nodir/p\.png: directory .*nodir' does not exist"),
])
def test_sweep_plot_path_checked_before_any_run(plot: str, message: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import re

    model, grid = _files(tmp_path)
    rc, out, err = _main(capsys, "sweep", model, "--data", str(tmp_path / "d.json"), "--grid", grid,
                         "--workers", "0", "--out", str(tmp_path / "out"), "--quiet", "--plot", str(tmp_path / plot))
    assert rc == 1 and re.search(message, err), err
    assert not (tmp_path / "out").exists(), "a refused sweep wrote its results"


def test_train_plot_renders_a_dollar_name_as_plain_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    comp, _, _ = xor_composition()
    comp.name = "$\\foo{$"
    model, _ = _files(tmp_path, comp=comp)
    plot, out_file = tmp_path / "p.png", tmp_path / "trained.json"
    rc, out, err = _main(capsys, "train", model, "--data", str(tmp_path / "d.json"), "--epochs", "2", "--quiet",
                         "--out", str(out_file), "--plot", str(plot))
    assert rc == 0, err
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out_file.is_file(), out


def _named_net(out_name: str, projection: str) -> mdfx.AutodiffComposition:
    a = mdfx.TransferMechanism(size=2, name="xor_in")
    b = mdfx.TransferMechanism(size=1, name=out_name, function=mdfx.Logistic)
    p = mdfx.MappingProjection(matrix=np.full((2, 1), 0.3), sender=a, receiver=b, name=projection)
    comp = mdfx.AutodiffComposition(learning_rate=0.5, name="named")
    comp.add_linear_processing_pathway([a, p, b])
    return comp


@pytest.mark.parametrize(("name", "projection"), [("allow_pickle", "file"), ("file", "allow_pickle")])
def test_npz_outputs_and_sweep_weights_keep_names_that_are_savez_keywords(name: str, projection: str, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    comp = _named_net(name, projection)
    model = mdfx.save(comp, tmp_path / "m.json")
    (tmp_path / "x.json").write_text(json.dumps({"xor_in": [[0, 1], [1, 1]]}))
    rc, out, err = _main(capsys, "run", str(model), "--inputs", str(tmp_path / "x.json"), "--out",
                         str(tmp_path / "o.npz"))
    assert rc == 0, err
    with np.load(tmp_path / "o.npz") as f:
        assert list(f.keys()) == [name], list(f.keys())
        assert f[name].shape == (2, 1), f[name]
    data = {"inputs": {"xor_in": [[0, 1], [1, 1]]}, "targets": {name: [[1], [0]]}}
    df = mdfx.sweep(comp, data, {"epochs": [1]}, workers=0, out=tmp_path / "sw", progress=False)
    assert (df["status"] == "ok").all(), df[["status", "error"]]
    with np.load(tmp_path / "sw" / df["weights_file"].iloc[0]) as f:
        assert projection in f.keys() and f[projection].shape == (2, 1), list(f.keys())


def test_info_escapes_newlines_in_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    comp = _named_net("out\nprojections:\n  fake", "p\x1b[2J")
    model = mdfx.save(comp, tmp_path / "m.json")
    rc, out, err = _main(capsys, "info", str(model))
    assert rc == 0, err
    assert "fake" not in [line.strip() for line in out.splitlines()], out
    assert "out\\nprojections:\\n  fake" in out and "p\\x1b[2J" in out and "\x1b" not in out, out


def test_sweep_best_escapes_dataset_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    model, grid = _files(tmp_path)
    evil = tmp_path / "\x1b]0;owned\x07x.json"
    evil.write_text(json.dumps(XOR_DATA))
    rc, out, err = _main(capsys, "sweep", model, "--data", str(evil), str(tmp_path / "d.json"), "--grid", grid,
                         "--workers", "0", "--out", str(tmp_path / "out"), "--quiet", "--best")
    assert rc == 0, err
    assert "\x1b" not in out and "\x07" not in out, repr(out)
    assert "best: dataset=" in out, out


# --- memory and time bounds -----------------------------------------------------------------


def test_sweep_grid_runs_counted_before_expanding(tmp_path: Path) -> None:
    keys = ["learning_rate", "weight_decay", "min_delta", "epochs", "minibatch_size"]
    grid = {k: [(i + 1) if k in ("epochs", "minibatch_size") else 0.1 * (i + 1) for i in range(100)] for k in keys}
    comp, x, t = xor_composition()
    with pytest.raises(LimitError, match=r"sweep: data sets x grid values x seeds = 1 x 100 x 100 x 100 x 100 x "
                                         r"100 x 1 runs: 10000000000 is over the limit of 100000"):
        mdfx.sweep(comp, {"inputs": x, "targets": t}, grid, workers=0, progress=False)
    with pytest.raises(LimitError, match=r"sweep: seeds \(runs per configuration\): 1000000000 is over the limit"):
        mdfx.sweep(comp, {"inputs": x, "targets": t}, {"epochs": [1]}, seeds=10**9, workers=0, progress=False)


def test_grid_nested_very_deep_is_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, grid = _files(tmp_path, "learning_rate: " + "[" * 100_000 + "]" * 100_000 + "\n")
    rc, out, err = _main(capsys, "sweep", model, "--data", str(tmp_path / "d.json"), "--grid", grid,
                         "--workers", "0", "--out", str(tmp_path / "out"), "--quiet")
    assert rc == 1 and "grid.yaml: not valid YAML/JSON: nested too deeply to parse" in err, err


@pytest.mark.parametrize(("address", "message"), [
    ("ucx://127.0.0.1:8786", r"scheme ucx:// is not supported here \(only tcp://\)"),
    ("tls://127.0.0.1:8786", r"scheme tls:// is not supported here"),
    ("tcp://127.0.0.1:99999", r"expected tcp://host:port with a port in 1\.\.65535"),
])
def test_scheduler_address_refused_in_one_line(address: str, message: str) -> None:
    from mdfx.sweep import connect

    with pytest.raises(MdfxError, match=message):
        connect(address)


def test_scheduler_that_stays_silent_times_out() -> None:
    import socket
    import threading
    import time

    from mdfx.sweep import connect

    server = socket.socket()
    server.bind(("127.0.0.1", 0))  # loopback only
    server.listen(4)
    accepted: list = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    start = time.monotonic()
    try:
        with mdfx.limits.set(scheduler_timeout_s=2), pytest.raises(
                MdfxError, match=r"no Dask scheduler answered within 2 s \(the port is open but silent"):
            connect(f"tcp://127.0.0.1:{server.getsockname()[1]}")
    finally:
        server.close()
    took = time.monotonic() - start
    assert took < 10, f"the refusal took {took:.1f} s"


# --- .pt files ----------------------------------------------------------------------------------


def test_pt_storage_sizes_checked_before_reading(tmp_path: Path) -> None:
    import torch

    from mdfx.io import read_state_dict

    path = tmp_path / "big.pt"
    torch.save({"w": torch.zeros(64, 64, dtype=torch.float64)}, path)  # a 32 KiB storage member
    with mdfx.limits.set(max_tensor_elements=1024, max_total_elements=4096), pytest.raises(
            LimitError, match=r"big\.pt: archive member '.*data/0' declares 32768 bytes, over the limit of 8192"):
        read_state_dict(path)
    assert read_state_dict(path)["w"].shape == (64, 64)  # within the default limits it reads


@pytest.mark.parametrize(("kind", "message"), [
    ("sparse", r"'w' is a torch\.sparse_coo tensor; weights are dense tensors"),
    ("meta", r"'w' is a meta tensor \(a shape without values\)"),
])
def test_pt_sparse_or_meta_tensor_is_one_error(kind: str, message: str, tmp_path: Path) -> None:
    import torch

    from mdfx.io import read_state_dict

    value = torch.eye(2).to_sparse() if kind == "sparse" else torch.empty(2, 2, device="meta")
    path = tmp_path / f"{kind}.pt"
    torch.save({"w": value}, path)
    with pytest.raises(SchemaError, match=message):
        read_state_dict(path)


@pytest.mark.parametrize("mode", ["Python", "PyTorch", "LLVMRun"])
def test_learn_with_huge_epochs_and_early_stop_allocates_only_what_runs(mode: str) -> None:
    """learn(epochs=2**26, patience=1) that stops after 2 epochs: the order table (2**28 slots, 2 GiB)
    is drawn lazily, so the peak stays near the baseline (it was 6.1 GB in every mode)."""
    import subprocess
    import sys

    from helpers import ROOT

    code = ("import resource, mdfx, sys; sys.path.insert(0, 'tests'); from helpers import xor_composition\n"
            "comp, x, t = xor_composition()\n"
            f"comp.learn(inputs=x, targets=t, epochs=2**26, patience=1, min_delta=1.0, "
            f"execution_mode=mdfx.ExecutionMode.{mode})\n"
            "print(comp.last_learn.epochs_run, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    epochs_run, peak_mib = map(int, proc.stdout.split())
    assert epochs_run == 2, proc.stdout
    assert peak_mib < 1024, f"{mode}: peak RSS {peak_mib} MiB for a 2-epoch run"


# --- names, roles, export -----------------------------------------------------------------------


def test_node_named_empty_is_one_error() -> None:
    a, b = mdfx.TransferMechanism(size=2, name=""), mdfx.TransferMechanism(size=1, name="b")
    comp = mdfx.AutodiffComposition(name="c")
    comp.add_linear_processing_pathway([a, b])
    with pytest.raises(mdfx.errors.GraphError, match=r"graph 'c': an input is named '' \(the empty name\)"):
        comp.learn(inputs={a: [[1.0, 2.0]]}, targets={b: [[1.0]]}, execution_mode=mdfx.ExecutionMode.Python)


def _roles_file(tmp: Path, key: str, names: list[str]) -> Path:
    import json

    comp, _, _ = xor_composition()
    doc = json.loads(mdfx.save(comp, tmp / "xor.json").read_text())
    meta = next(iter(next(iter(doc.values()))["graphs"].values()))["metadata"]
    next(iter(m for m in meta.values() if isinstance(m, dict) and key in m))[key] = names
    (tmp / "roles.json").write_text(json.dumps(doc))
    return tmp / "roles.json"


@pytest.mark.parametrize(("key", "names", "message"), [
    ("inputs", ["xor_in", "xor_in"], r"metadata 'inputs' lists node 'xor_in' 2 times"),
    ("inputs", ["xor_hid"], r"metadata 'inputs' lists 'xor_hid', which receives a projection"),
    ("outputs", ["xor_out", "nope"], r"metadata 'outputs' lists 'nope', which is not a node"),
])
def test_roles_in_a_file_checked(key: str, names: list[str], message: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    import re

    path = _roles_file(tmp_path, key, names)
    rc, out, err = _main(capsys, "info", str(path))
    assert rc == 1 and re.search(message, err), err


def test_export_onnx_to_mdf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    comp, x, _ = xor_composition()
    onnx_file = mdfx.save(comp, tmp_path / "xor.onnx")
    rc, out, err = _main(capsys, "export", str(onnx_file), "--mdf", str(tmp_path / "x.json"))
    assert rc == 0, err
    back = mdfx.load(tmp_path / "x.json")
    got = np.ravel(back.run(inputs={back.get_nodes_by_role(mdfx.NodeRole.INPUT)[0]: np.array([[0.0, 1.0]])}))
    want = np.ravel(comp.run(inputs={comp.nodes[0]: [[0.0, 1.0]]}))
    np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"{got} vs {want}")  # float32 export


# --- readers check the fields they read -------------------------------------------------------


def _xor_doc() -> dict:
    comp, _, _ = xor_composition()
    return comp.to_mdf().to_dict()


def _graph_of(doc: dict) -> dict:
    return next(iter(next(iter(doc.values()))["graphs"].values()))


def _first(d: dict) -> dict:
    return next(iter(d.values()))


@pytest.mark.parametrize(("change", "message"), [
    (lambda g: g.update(nodes=[1, 2]), r"graph 'nodes' must be a mapping, but holds a list"),
    (lambda g: _first(g["nodes"]).update(parameters=[0]), r"node '.*': 'parameters' must be a mapping, but holds a list"),
    (lambda g: _first(g["edges"]).update(sender=[1]), r"edge '.*': 'sender' must be a node or port name, but holds a list"),
    (lambda g: _first(g["nodes"]).update(metadata="x"), r"node '.*': metadata must be a mapping, but holds a str"),
    (lambda g: _first(_first(g["nodes"])["metadata"]).update(name=5), r"field 'name' must be a node name, but holds a int"),
    (lambda g: _first(_first(g["nodes"])["metadata"]).pop("size"), r"field 'size' is missing"),
    (lambda g: _first(_first(g["edges"])["metadata"]).update(matrix=None), r"field 'matrix' must be a parameter name"),
])
def test_reader_names_the_field_and_what_it_holds(change: object, message: str) -> None:
    from mdfx.schema import reader

    doc = _xor_doc()
    change(_graph_of(doc))  # type: ignore[operator]
    with pytest.raises(SchemaError, match=message) as info:
        reader.from_mdf(doc)
    assert "malformed" not in str(info.value), f"a wrapped internal exception: {info.value}"


def test_llvm_refuses_a_graph_too_wide_to_compile_in_bounded_time() -> None:
    out = mdfx.TransferMechanism(size=1, name="out")
    comp = mdfx.AutodiffComposition(name="wide")
    ins = [mdfx.TransferMechanism(size=1, name=f"i{i}") for i in range(6)]
    for a in ins:
        comp.add_node(a)
    comp.add_node(out)
    for a in ins:
        comp.add_projection(mdfx.MappingProjection(matrix=[[0.5]], sender=a, receiver=out), a, out)
    with mdfx.limits.set(max_llvm_inputs=5), pytest.raises(
            LimitError, match=r"LLVMRun: the inputs of graph 'wide' .*: 6 is over the limit of 5; .*MDFX_MAX_LLVM_INPUTS"):
        comp.run(inputs={a: [[1.0]] for a in ins}, execution_mode=mdfx.ExecutionMode.LLVMRun)
    got = np.ravel(comp.run(inputs={a: [[1.0]] for a in ins}, execution_mode=mdfx.ExecutionMode.PyTorch))
    np.testing.assert_allclose(got, [3.0], err_msg=f"PyTorch mode runs it: {got}")


def test_onnx_reshape_copying_a_missing_axis_and_cast_without_to_are_refused(tmp_path: Path) -> None:
    path = _onnx(tmp_path, [_n("Reshape", ["x", "s"], ["y"], "r")], [_t("s", [0, 2, 0], I64)])
    with pytest.raises(UnsupportedError, match=r"node 'r' \(Reshape\): Reshape of \(batch, 4\) to \[0, 2, 0\]: 0 at "
                                               r"position 2 copies an axis the rank-2 input does not have"):
        mdfx.load(path)
    path = _onnx(tmp_path, [_n("Cast", ["x"], ["y"], "c")], [])
    with pytest.raises(UnsupportedError, match=r"node 'c' \(Cast\): attribute 'to' is missing"):
        mdfx.load(path)


def test_onnx_initializer_whose_bytes_do_not_fill_its_shape_is_named(tmp_path: Path) -> None:
    init = _t("w", np.ones((4, 2)))
    init.raw_data = init.raw_data[:10]  # cut: 10 bytes for 8 float64s
    path = _onnx(tmp_path, [_n("MatMul", ["x", "w"], ["y"], "m")], [init])
    with pytest.raises(SchemaError, match=r"initializer 'w': its data does not match its declared shape \(4, 2\) "
                                          r"and element type 11") as info:
        mdfx.load(path)
    assert "malformed" not in str(info.value), str(info.value)
