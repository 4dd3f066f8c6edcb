"""learn() surface beyond parity: modes agree, early stopping, callbacks, logging, progress, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import assert_close, xor_composition

import mdfx as pnl


def trained(mode: pnl.ExecutionMode, **kwargs: object) -> pnl.AutodiffComposition:
    comp, x, t = xor_composition()
    comp.learn(inputs=x, targets=t, execution_mode=mode, **kwargs)
    return comp


def test_torch_and_python_modes_agree_to_1e_10() -> None:
    options = {"epochs": 20, "minibatch_size": 3, "randomize_minibatch": True, "seed": 5}
    a, b = trained(pnl.ExecutionMode.PyTorch, **options), trained(pnl.ExecutionMode.Python, **options)
    for p, q in zip(a.projections, b.projections, strict=True):
        assert_close(p.matrix, q.matrix, rtol=1e-10, what=p.name)
    assert_close(a.losses, b.losses, rtol=1e-10, what="losses")


def test_seeded_shuffles_are_reproducible_and_differ_from_unshuffled() -> None:
    a = trained(pnl.ExecutionMode.Python, epochs=5, randomize_minibatch=True, seed=3)
    b = trained(pnl.ExecutionMode.Python, epochs=5, randomize_minibatch=True, seed=3)
    c = trained(pnl.ExecutionMode.Python, epochs=5)
    assert a.losses == b.losses
    assert a.losses != c.losses


def test_patience_stops_early() -> None:
    # min_delta larger than any improvement: every epoch after the first is "bad".
    comp = trained(pnl.ExecutionMode.PyTorch, epochs=50, patience=3, min_delta=10.0)
    assert comp.last_learn is not None and comp.last_learn.epochs_run == 4, comp.last_learn.epochs_run
    assert len(comp.losses) == 4 * 4


def test_learning_rate_override_applies_to_one_call() -> None:
    a = trained(pnl.ExecutionMode.Python, epochs=2, learning_rate=0.01)
    b, x, t = xor_composition()
    b.learning_rate = 0.01
    b.learn(inputs=x, targets=t, epochs=2, execution_mode=pnl.ExecutionMode.Python)
    assert_close(a.projections[0].matrix, b.projections[0].matrix, rtol=0)
    assert a.learning_rate == 0.5, "the constructor's rate is kept"


def test_callbacks_get_called_per_minibatch() -> None:
    before: list[int] = []
    after: list[tuple[int, int, int]] = []
    trained(pnl.ExecutionMode.PyTorch, epochs=3, minibatch_size=2,
            call_before_minibatch=lambda: before.append(1),
            call_after_minibatch=lambda epoch, minibatch, num_minibatches, context: after.append(
                (epoch, minibatch, num_minibatches)))
    assert len(before) == 6
    assert after == [(e, b, 2) for e in range(3) for b in range(2)]
    calls: list[int] = []
    trained(pnl.ExecutionMode.Python, epochs=1, call_after_minibatch=lambda: calls.append(1))
    assert len(calls) == 4, "a callback that takes no arguments is called without them"


def test_logging_matrix_and_value_per_minibatch() -> None:
    comp, x, t = xor_composition()
    w1 = comp.projections[0]
    hidden = comp.nodes[1]
    w1.log.set_log_conditions("matrix")
    hidden.log.set_log_conditions("value")
    comp.learn(inputs=x, targets=t, epochs=2, minibatch_size=2)
    logged = w1.log.nparray_dict()["matrix"]
    assert logged.shape == (4, 2, 10), logged.shape
    assert_close(logged[-1], w1.matrix, rtol=0, what="the last logged matrix is the trained one")
    assert hidden.log.nparray_dict()["value"].shape == (4, 2, 10)


def test_progress_bar_reports_epochs_and_loss(capsys: pytest.CaptureFixture[str]) -> None:
    trained(pnl.ExecutionMode.PyTorch, epochs=3, report_progress=pnl.ReportProgress.ON)
    err = capsys.readouterr().err
    assert "learn xor" in err and "3/3" in err and "loss=" in err, err


def test_trained_weights_reach_run_to_mdf_and_save(tmp_path: Path) -> None:
    comp, x, t = xor_composition()
    initial = comp.projections[0].matrix.copy()
    comp.learn(inputs=x, targets=t, epochs=3)
    trained_w = comp.projections[0].matrix
    assert not np.array_equal(initial, trained_w)
    back = pnl.load(pnl.save(comp, tmp_path / "xor.json"))
    assert back.projections[0].matrix.tobytes() == trained_w.tobytes()
    mdf = comp.to_mdf()
    hidden = next(n for n in mdf.graphs[0].nodes if n.id == "xor_hid")
    assert_close(next(p.value for p in hidden.parameters if p.id == "in_to_hid"), trained_w, rtol=0)


def test_state_dict_save_load_round_trip_and_errors(tmp_path: Path) -> None:
    import torch

    comp = trained(pnl.ExecutionMode.PyTorch, epochs=3)
    path = comp.save(path=tmp_path / "w.pt")
    sd = torch.load(path, weights_only=True)
    assert sorted(sd) == ["hid_to_out", "in_to_hid"]
    fresh, _, _ = xor_composition(seed=1)
    fresh.load(path=path)
    for p, q in zip(fresh.projections, comp.projections, strict=True):
        assert p.matrix.tobytes() == q.matrix.tobytes()
    torch.save({"in_to_hid": torch.zeros(3, 10), "hid_to_out": torch.zeros(10, 1)}, tmp_path / "bad.pt")
    with pytest.raises(pnl.MdfxError) as err:
        fresh.load(path=tmp_path / "bad.pt")
    assert "'in_to_hid' has shape (3, 10) in the file but (2, 10) in 'xor'" in str(err.value), str(err.value)
    torch.save({"other": torch.zeros(2, 10)}, tmp_path / "names.pt")
    with pytest.raises(pnl.MdfxError) as err:
        fresh.load(path=tmp_path / "names.pt")
    assert "missing ['hid_to_out', 'in_to_hid'], unexpected ['other']" in str(err.value), str(err.value)


def test_bad_targets_are_refused_with_the_node_named() -> None:
    comp, x, t = xor_composition()
    out = comp.nodes[-1]
    with pytest.raises(pnl.DataError) as err:
        comp.learn(inputs=x, targets={out: [[0], [1], [np.nan], [0]]})
    assert str(err.value) == "target for node 'xor_out' contains NaN or infinite values"
    with pytest.raises(pnl.DataError) as err:
        comp.learn(inputs=x, targets={out: [[0, 1]] * 4})
    assert str(err.value) == "target for node 'xor_out' has shape (4, 2); expected (trials, 1)"
    with pytest.raises(pnl.DataError) as err:
        comp.learn(inputs=x)
    assert str(err.value) == "'xor'.learn(): no targets given (targets={output node: trials} or the inputs of its TARGET nodes)"
    with pytest.raises(pnl.DataError) as err:
        comp.learn(inputs=x, targets=t, minibatch_size=5)
    assert str(err.value) == "minibatch_size (5) cannot be greater than the number of trials (4)"


def test_disable_learning_leaves_weights() -> None:
    comp, x, t = xor_composition()
    comp.disable_learning = True
    before = comp.projections[0].matrix.copy()
    comp.learn(inputs=x, targets=t, epochs=3)
    assert np.array_equal(before, comp.projections[0].matrix)


def test_state_dict_file_loads_into_the_torch_module(tmp_path: Path) -> None:
    import torch

    from mdfx.converters.torch import to_module

    comp = trained(pnl.ExecutionMode.Python, epochs=2)
    path = pnl.save(comp, tmp_path / "w.pt")
    module = to_module(comp._graph())
    module.load_state_dict(torch.load(path, weights_only=True))
    assert_close(module.tensor("in_to_hid").detach().numpy(), comp.projections[0].matrix, rtol=0)


def test_onnx_export_carries_the_trained_weights() -> None:
    from mdfx.runners import ort

    comp, x, t = xor_composition()
    before = ort.run(comp.to_onnx(dtype="float64"), {"xor_in": np.array(x[comp.nodes[0]], float)})["xor_out"]
    comp.learn(inputs=x, targets=t, epochs=50)
    after = ort.run(comp.to_onnx(dtype="float64"), {"xor_in": np.array(x[comp.nodes[0]], float)})["xor_out"]
    assert not np.allclose(before, after), "the export after learn() differs from the one before"
    comp.run(inputs=x)
    assert_close(after[:, 0], [r[0][0] for r in comp.results[-4:]], rtol=1e-12, what="ONNX vs run()")
    onnx_mode = comp.run(inputs=x, execution_mode=pnl.ExecutionMode.ONNX)
    llvm_mode = comp.run(inputs=x, execution_mode=pnl.ExecutionMode.LLVMRun)
    assert_close(onnx_mode, after[-1:], rtol=1e-12, what="run(ExecutionMode.ONNX)")
    assert_close(llvm_mode, after[-1:], rtol=1e-12, what="run(ExecutionMode.LLVMRun)")


def test_validate_api_on_a_composition_and_a_file(tmp_path: Path) -> None:
    comp, x, _ = xor_composition()
    rows = pnl.validate(comp, inputs=x)
    assert rows[0].runner == "reference" and all(r.ok for r in rows), [(r.runner, r.status) for r in rows]
    ran = {r.runner for r in rows if r.status == "PASS"}
    assert {"onnxruntime", "torch", "llvm", "mdf_engine"} <= ran, ran
    rows = pnl.validate(pnl.save(comp, tmp_path / "xor.onnx"), trials=3, dtype="float32")
    assert all(r.ok for r in rows), [(r.runner, r.status, r.note) for r in rows]


@pytest.mark.parametrize("mode", [pnl.ExecutionMode.Python, pnl.ExecutionMode.PyTorch, pnl.ExecutionMode.LLVMRun])
def test_a_callback_that_raises_rolls_back_weights_and_adam_state_in_every_mode(mode):
    comp, x, t = xor_composition(seed=3)
    comp.optimizer_type = "adam"
    comp.learn(inputs=x, targets=t, epochs=2, execution_mode=pnl.ExecutionMode.Python)
    before = [p.matrix.copy() for p in comp.projections]
    slots = {k: {m: v.copy() for m, v in s.items()} for k, s in comp.optimizer_state.slots.items()}
    step = comp.optimizer_state.step
    kept = len(comp.results), len(comp.losses)
    calls = []

    def boom(**kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        comp.learn(inputs=x, targets=t, epochs=5, call_after_minibatch=boom, execution_mode=mode)
    for p, w in zip(comp.projections, before, strict=True):
        np.testing.assert_array_equal(p.matrix, w, err_msg=f"{p.name} after the aborted learn() in {mode}")
    assert comp.optimizer_state.step == step, (comp.optimizer_state.step, step)
    assert (len(comp.results), len(comp.losses)) == kept, ("results, losses", kept)
    for k, s in slots.items():
        for m, v in s.items():
            np.testing.assert_array_equal(comp.optimizer_state.slots[k][m], v, err_msg=f"Adam {m} of {k}")


def test_compositions_pickle_and_train_the_same_after():
    import pickle

    comp, x, t = xor_composition(seed=4)
    twin = pickle.loads(pickle.dumps(comp))
    comp.learn(inputs=x, targets=t, epochs=3, execution_mode=pnl.ExecutionMode.Python)
    twin.learn(inputs={twin.nodes[0]: x[next(iter(x))]}, targets={twin.nodes[2]: t[next(iter(t))]}, epochs=3,
               execution_mode=pnl.ExecutionMode.Python)
    for a, b in zip(comp.projections, twin.projections, strict=True):
        np.testing.assert_array_equal(a.matrix, b.matrix, err_msg=a.name)


@pytest.mark.parametrize("given", ["array", "list"])
def test_an_input_node_given_nothing_gets_its_default_on_every_trial(given: str) -> None:
    # the trial count comes from the other node's inputs: an array's first axis, a list's length
    def comp_of() -> tuple[pnl.AutodiffComposition, pnl.TransferMechanism, pnl.TransferMechanism,
                           pnl.TransferMechanism]:
        a = pnl.TransferMechanism(input_shapes=2, name="a")
        c = pnl.TransferMechanism(input_shapes=1, name="c", default_variable=[[0.5]])
        out = pnl.TransferMechanism(input_shapes=1, function=pnl.Logistic, name="out")
        comp = pnl.AutodiffComposition(learning_rate=0.5, name="two_inputs")
        comp.add_nodes([a, c, out])
        comp.add_projection(pnl.MappingProjection(matrix=np.array([[0.1], [-0.2]]), sender=a, receiver=out),
                            sender=a, receiver=out)
        comp.add_projection(pnl.MappingProjection(matrix=np.array([[0.3]]), sender=c, receiver=out),
                            sender=c, receiver=out)
        return comp, a, c, out

    x = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    t = np.array([[1.0], [0.0], [1.0]])
    comp, a, c, out = comp_of()
    comp.learn(inputs={a: x if given == "array" else x.tolist()}, targets={out: t}, epochs=2,
               execution_mode=pnl.ExecutionMode.Python)
    want, a2, c2, out2 = comp_of()
    want.learn(inputs={a2: x, c2: np.full((3, 1), 0.5)}, targets={out2: t}, epochs=2,
               execution_mode=pnl.ExecutionMode.Python)
    assert len(comp.results) == 6, len(comp.results)
    for p, q in zip(comp.projections, want.projections, strict=True):
        assert_close(p.matrix, q.matrix, rtol=0, what=p.name)
