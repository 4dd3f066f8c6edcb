"""mdfx.sweep on a real Dask LocalCluster of 2 worker processes: every run equals learn() alone."""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, assert_close, xor_composition

import mdfx as pnl
from mdfx.cli import main
from mdfx.sweep import best, init_weights, local_cluster, read_curves, run_name

distributed = pytest.importorskip("dask.distributed")

XOR_GRID = {"learning_rate": [0.1, 0.5, 2.0], "optimizer": ["sgd", "adam"], "epochs": [100]}


@pytest.fixture(scope="module")
def client():
    cluster = local_cluster(2)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def xor():
    comp, x, t = xor_composition()
    return comp, {"inputs": x, "targets": t}


def drawn(comp: pnl.AutodiffComposition, seed: int) -> None:
    """The documented "uniform" init, written out: U(+-1/sqrt(fan_in)) from default_rng(seed), in order."""
    rng = np.random.default_rng(seed)
    for p in comp.projections:
        bound = 1 / math.sqrt(p.matrix.shape[0])
        p.matrix = rng.uniform(-bound, bound, p.matrix.shape)


def learn_alone(comp: pnl.AutodiffComposition, data: dict, row: object) -> pnl.AutodiffComposition:
    """The run of ``row`` done by hand in this process, with learn()."""
    comp = copy.deepcopy(comp)
    drawn(comp, int(row.seed))
    comp.optimizer_type = row.optimizer
    comp.learn(inputs=data["inputs"], targets=data["targets"], epochs=int(row.epochs),
               learning_rate=float(row.learning_rate), execution_mode=pnl.ExecutionMode[row.execution_mode])
    return comp


def check_equals_alone(df: object, comp: pnl.AutodiffComposition, data: dict, out: Path | None = None) -> None:
    for row in df.itertuples():
        alone = learn_alone(comp, data, row)
        weights = row.weights if out is None else dict(np.load(out / row.weights_file))
        for p in alone.projections:
            assert_close(weights[p.name], p.matrix, rtol=0, atol=1e-12, what=f"{row.run_id} {p.name}")
        curve = np.mean(np.reshape(alone.losses, (int(row.epochs), -1)), axis=1)
        assert_close(row.curve, curve, rtol=0, atol=1e-12, what=f"{row.run_id} loss curve")
        assert_close(row.final_loss, curve[-1], rtol=0, atol=1e-12, what=f"{row.run_id} final loss")


def test_xor_sweep_3x2x4_as_replicas_equals_learn_alone(client, xor) -> None:
    comp, data = xor
    df = pnl.sweep(comp, data, {**XOR_GRID, "execution_mode": ["Python"]}, seeds=4, client=client,
                   progress=False)
    assert len(df) == 24, df
    assert sorted(df["status"].unique()) == ["ok"], df["status"].tolist()
    # Python mode: runs differing in seed and learning rate trained as batched replicas
    assert (df["batched"] >= 2).all(), df["batched"].tolist()
    check_equals_alone(df, comp, data)


def test_xor_sweep_3x2x4_llvm_compiles_once_per_worker(client, xor) -> None:
    comp, data = xor
    df = pnl.sweep(comp, data, {**XOR_GRID, "execution_mode": ["LLVMRun"]}, seeds=4, client=client,
                   progress=False)
    assert len(df) == 24 and (df["status"] == "ok").all(), df[["run_id", "status", "error"]]
    assert (df["batched"] == 0).all(), "LLVMRun runs train one by one under replicas='auto'"
    check_equals_alone(df, comp, data)
    # Two kernels exist (SGD, Adam); each worker process compiles each at most once.
    per_worker = df.groupby("worker")["compiled"].sum().to_dict()
    assert all(n <= 2 for n in per_worker.values()), per_worker
    assert df.groupby("worker").size().sum() == 24 and sum(per_worker.values()) <= 4, per_worker


def test_resumed_sweep_trains_only_missing_runs(client, xor, tmp_path: Path) -> None:
    comp, data = xor
    grid = {"learning_rate": [0.1, 0.5], "epochs": [20], "execution_mode": ["LLVMRun"]}
    first = pnl.sweep(comp, data, grid, seeds=2, out=tmp_path, workers=0, progress=False)
    assert len(first.attrs["ran"]) == 4 and first.attrs["skipped"] == [], first.attrs
    removed = first["run_id"][1]
    (tmp_path / "runs" / f"{removed}.json").unlink()  # as if the sweep had stopped before it
    kept = {r: (tmp_path / "runs" / f"{r}.json").read_text() for r in first["run_id"] if r != removed}
    grid["learning_rate"].append(1.0)
    second = pnl.sweep(comp, data, grid, seeds=2, out=tmp_path, client=client, progress=False)
    new = set(second["run_id"]) - set(first["run_id"])
    assert sorted(second.attrs["ran"]) == sorted({removed} | new) and len(new) == 2, second.attrs
    assert sorted(second.attrs["skipped"]) == sorted(kept), second.attrs
    for run_id, text in kept.items():
        assert (tmp_path / "runs" / f"{run_id}.json").read_text() == text, f"{run_id} was rewritten"
    table = __import__("pandas").read_csv(tmp_path / "results.csv")
    assert sorted(table["run_id"]) == sorted(second["run_id"]) and len(table) == 6, table
    for row in second.itertuples():
        with np.load(tmp_path / row.weights_file) as z:
            again = learn_alone(comp, data, row)
            for p in again.projections:
                assert_close(z[p.name], p.matrix, rtol=0, atol=1e-12, what=f"{row.run_id} {p.name} on disk")
    assert not list(tmp_path.rglob(".*.tmp")), "temporary files left behind"


def test_worker_killed_mid_sweep_loses_no_run(client, xor, tmp_path: Path) -> None:
    comp, data = xor
    pids = client.run(os.getpid)
    killed: list[int] = []

    def kill_one_worker(record: dict) -> None:
        if not killed:
            victim = max(pids.values())
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    grid = {"learning_rate": [0.1, 0.3, 0.5, 0.7], "epochs": [150], "execution_mode": ["Python"]}
    df = pnl.sweep(comp, data, grid, seeds=4, client=client, out=tmp_path, replicas=False, progress=False,
                   on_result=kill_one_worker)
    assert killed, "the callback never ran"
    assert len(df) == 16 and (df["status"] == "ok").all(), df[["run_id", "status", "error"]]
    assert len(list((tmp_path / "runs").glob("*.json"))) == 16
    # every run's result is right, whichever worker finished it
    check_equals_alone(df, comp, data, out=tmp_path)
    client.wait_for_workers(2, timeout=60)
    assert str(killed[0]) not in set(client.run(os.getpid).values()), "the killed worker is still there"


def test_diverging_configuration_is_recorded_and_the_sweep_goes_on(client) -> None:
    comp, x, t = xor_composition(function=pnl.Linear)
    data = {"inputs": x, "targets": t}
    grid = {"learning_rate": [0.05, 50.0], "loss": ["SSE"], "epochs": [60],
            "execution_mode": ["Python", "LLVMRun"]}
    df = pnl.sweep(comp, data, grid, seeds=2, client=client, progress=False)
    diverged = df[df["learning_rate"] == 50.0]
    assert (diverged["status"] == "diverged").all(), diverged[["run_id", "status", "final_loss"]]
    assert not np.isfinite(diverged["final_loss"]).any(), diverged["final_loss"].tolist()
    fine = df[df["learning_rate"] == 0.05]
    assert (fine["status"] == "ok").all() and np.isfinite(fine["final_loss"]).all(), fine
    assert best(df)["options"]["learning_rate"] == 0.05


class _Untouchable:
    """A client that fails the test if the sweep uses it: bad grids must be refused before."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the sweep started (client.{name}) despite a bad grid")


@pytest.mark.parametrize(("grid", "seeds", "message"), [
    ({"lerning_rate": [0.1]}, None, "grid: unknown option 'lerning_rate'; options are learning_rate, optimizer"),
    ({"learning_rate": []}, None, "grid: 'learning_rate' is an empty list; give at least one value"),
    ({"epochs": ["ten"]}, None, "grid: 'epochs' values must be positive integers, got 'ten' (str)"),
    ({"epochs": [2.5]}, None, "grid: 'epochs' values must be positive integers, got 2.5 (float)"),
    ({"learning_rate": ["fast"]}, None, "grid: 'learning_rate' values must be finite numbers, got 'fast' (str)"),
    ({"learning_rate": [0.0]}, None, "grid: 'learning_rate' values must be > 0, got 0.0"),
    ({"optimizer": ["sgdd"]}, None, "grid: 'optimizer' has no value 'sgdd'; choose from sgd, adam"),
    ({"execution_mode": ["ONNX"]}, None, "grid: 'execution_mode' has no value 'ONNX'"),
    ({"randomize_minibatch": ["yes"]}, None, "grid: 'randomize_minibatch' values must be true or false, got 'yes'"),
    ({"learning_rate": [0.1, 0.1]}, None, "grid: 'learning_rate' lists 0.1 more than once"),
    ([0.1], None, "grid must be a mapping of learn() options to lists of values, got list"),
    ({}, [], "seeds is an empty list"),
    ({}, ["a"], "seeds must be integers >= 0, got 'a' (str)"),
    ({}, 0, "seeds: give a positive number of seeds or a list, got 0"),
])
def test_bad_grid_is_refused_before_anything_starts(xor, tmp_path: Path, grid, seeds, message: str) -> None:
    comp, data = xor
    with pytest.raises(pnl.GridError) as err:
        pnl.sweep(comp, data, grid, seeds=seeds, client=_Untouchable(), out=tmp_path / "out", progress=False)
    assert message in str(err.value), f"\nexpected: {message}\nactual:   {err.value}"
    assert not (tmp_path / "out").exists(), "a refused sweep wrote files"


def test_replicas_equal_learn_with_biases_converging_projections_and_shuffling() -> None:
    """Batched replicas against each run's own learn(), on a net with every supported feature."""
    rng = np.random.default_rng(5)
    a = pnl.TransferMechanism(size=3, name="a", bias=[0.1, -0.2, 0.3])
    b = pnl.TransferMechanism(size=2, name="b")
    h = pnl.TransferMechanism(size=4, function=pnl.Tanh(gain=0.7), name="h", bias=np.zeros(4))
    o = pnl.TransferMechanism(size=3, function=pnl.Logistic, name="o")
    comp = pnl.AutodiffComposition(name="conv")
    comp.add_nodes([a, b, h, o])
    comp.add_projection(pnl.MappingProjection(a, h, rng.normal(size=(3, 4)), name="ah"))
    comp.add_projection(pnl.MappingProjection(b, h, rng.normal(size=(2, 4)), name="bh", learnable=False))
    comp.add_projection(pnl.MappingProjection(h, o, rng.normal(size=(4, 3)), name="ho"))
    comp.add_projection(pnl.MappingProjection(a, o, rng.normal(size=(3, 3)), name="ao"))
    data = {"inputs": {a: rng.uniform(size=(7, 3)), b: rng.uniform(size=(7, 2))},
            "targets": {o: rng.uniform(size=(7, 3))}}
    for loss, optimizer in [("MSE", "adam"), ("L1", "sgd"), ("CROSS_ENTROPY", "sgd")]:
        grid = {"learning_rate": [0.05, 0.2], "loss": [loss], "optimizer": [optimizer], "minibatch_size": [3],
                "randomize_minibatch": [True], "weight_decay": [0.01], "epochs": [6], "execution_mode": ["Python"]}
        df = pnl.sweep(comp, data, grid, seeds=[3, 4], init="normal", workers=0, replicas=True, progress=False)
        assert (df["batched"] == 4).all(), df["batched"].tolist()
        for row in df.itertuples():
            alone = copy.deepcopy(comp)
            init_weights(alone, row.seed, "normal")
            alone.optimizer_type, alone.loss_spec, alone.weight_decay = optimizer, pnl.Loss[loss], 0.01
            alone.learn(inputs=data["inputs"], targets=data["targets"], epochs=6, learning_rate=row.learning_rate,
                        minibatch_size=3, randomize_minibatch=True, seed=row.seed,
                        execution_mode=pnl.ExecutionMode.Python)
            assert_close(row.weights["bh"], comp.projections[1].matrix, rtol=0, what="fixed projection")
            for name in ("ah", "ho", "ao"):
                got = row.weights[name]
                assert_close(got, alone.projections[[p.name for p in alone.projections].index(name)].matrix,
                             rtol=0, atol=1e-12, what=f"{loss} {row.run_id} {name}")
            assert_close(row.weights["a.bias"], alone.nodes[0].bias, rtol=0, atol=1e-12, what="a.bias")
            assert_close(row.weights["h.bias"], alone.nodes[2].bias, rtol=0, atol=1e-12, what="h.bias")
            assert_close(row.curve, np.mean(np.reshape(alone.losses, (6, -1)), axis=1), rtol=0, atol=1e-12,
                         what=f"{loss} {row.run_id} curve")


def test_unsupported_options_fall_back_to_runs_one_by_one(xor) -> None:
    comp, data = xor
    grid = {"learning_rate": [0.1, 0.5], "dtype": ["float32"], "epochs": [5], "execution_mode": ["Python"]}
    df = pnl.sweep(comp, data, grid, seeds=2, workers=0, progress=False)
    assert (df["batched"] == 0).all() and (df["status"] == "ok").all(), df[["batched", "status", "error"]]
    with pytest.raises(pnl.MdfxError, match="cannot train as replicas: replicas compute in float64 only"):
        pnl.sweep(comp, data, grid, seeds=2, workers=0, replicas=True, progress=False)


def test_run_names_are_options_and_never_leave_the_folder() -> None:
    name = run_name({"learning_rate": 0.5, "optimizer": "adam"}, "../../etc/pass wd", 3, "0123456789abcdef")
    assert name == "data=_etc_pass_wd,learning_rate=0.5,optimizer=adam,seed=3-0123456789", name
    assert run_name({}, "..", None, "ff" * 8) == "data=-ffffffffff"
    assert not run_name({}, None, None, "ab" * 8).startswith(".")


def test_cli_sweep_per_dataset_fits_on_a_scheduler_with_plot_and_best(client, xor, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    comp, _ = xor
    model = pnl.save(comp, tmp_path / "xor.json")
    (tmp_path / "a.json").write_text(json.dumps({"inputs": {"xor_in": [[0, 0], [0, 1], [1, 0], [1, 1]]},
                                                 "targets": {"xor_out": [[0], [1], [1], [0]]}}))
    np.savez(tmp_path / "b.npz", xor_in=np.array([[0, 0], [0, 1], [1, 0], [1, 1]]),
             xor_out=np.array([[0], [0], [0], [1]]))  # AND
    (tmp_path / "grid.yaml").write_text("learning_rate: [0.5, 2.0]\nepochs: 50\nseeds: 2\n")
    out, plot = tmp_path / "out", tmp_path / "curves.png"
    rc = main(["sweep", str(model), "--data", str(tmp_path / "a.json"), str(tmp_path / "b.npz"), "--grid",
               str(tmp_path / "grid.yaml"), "--scheduler", client.scheduler.address, "--out", str(out),
               "--plot", str(plot), "--best", "--quiet"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "8 runs (8 trained now, 0 already done): 8 ok" in text, text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = __import__("pandas").read_csv(out / "results.csv")
    assert sorted(table["dataset"].unique()) == ["a", "b"] and len(table) == 8, table
    assert "curve" not in table.columns, table.columns  # one row per run, scalars only
    curves = read_curves(out)
    b = best(table.assign(curve=[curves[r].tolist() for r in table["run_id"]]))
    assert f"best: dataset={b['config']['dataset']}, learning_rate={b['config']['learning_rate']}" in text, text
    assert len(list((out / "weights").glob("*.npz"))) == 8


def test_embedded_local_cluster_is_started_and_stopped(xor) -> None:
    comp, data = xor
    df = pnl.sweep(comp, data, {"learning_rate": [0.5], "epochs": [10]}, seeds=4, workers=2, progress=False)
    assert len(df) == 4 and (df["status"] == "ok").all(), df
    assert all(w.split(":")[1] != str(os.getpid()) for w in df["worker"]), df["worker"].tolist()


def test_import_mdfx_stays_light() -> None:
    code = ("import sys, mdfx; mdfx.sweep; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed', 'pandas', 'torch'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_cli_refuses_a_bad_grid_file_in_one_line(xor, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    comp, _ = xor
    model = pnl.save(comp, tmp_path / "xor.json")
    data = tmp_path / "d.json"
    data.write_text(json.dumps({"xor_in": [[0, 0], [1, 1]], "xor_out": [[0], [0]]}))
    (tmp_path / "grid.yaml").write_text("learning_rate: [0.5]\nminibatch_size: []\n")
    rc = main(["sweep", str(model), "--data", str(data), "--grid", str(tmp_path / "grid.yaml"),
               "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and err == "mdfx: error: grid: 'minibatch_size' is an empty list; give at least one value\n", err
    assert not (tmp_path / "out").exists()


def test_results_csv_is_one_scalar_row_per_run_and_curves_lie_beside_it(xor, tmp_path, monkeypatch) -> None:
    """Before: results.csv embedded every loss curve as JSON in a cell (a 40,000-epoch sweep made a 38.7 MB
    CSV that Python's csv module refused: field larger than field limit); the plot had a linear axis over
    losses spanning decades, fractional epoch ticks and a legend over the lines."""
    import csv

    from matplotlib.figure import Figure

    comp, data = xor
    df = pnl.sweep(comp, data, {"learning_rate": [0.5, 5.0], "epochs": [300]}, seeds=2, out=tmp_path, workers=0,
                   progress=False)
    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and "curve" not in rows[0], rows[0].keys()
    longest = max(len(v) for r in rows for v in r.values())
    assert longest < 200, f"a cell of {longest} characters: the table should hold scalars only"
    curves = read_curves(tmp_path)
    assert sorted(curves) == sorted(df["run_id"]), sorted(curves)
    for row in df.itertuples():
        np.testing.assert_array_equal(curves[row.run_id], np.asarray(row.curve), err_msg=row.run_id)
        assert len(curves[row.run_id]) == 300

    seen: dict = {}
    original = Figure.savefig

    def spy(fig, *args, **kwargs):
        ax = fig.axes[0]
        fig.canvas.draw()
        seen.update(yscale=ax.get_yscale(), ticks=list(ax.get_xticks()),
                    legend_x0=ax.get_legend().get_window_extent().x0, axes_x1=ax.get_window_extent().x1)
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    from mdfx.sweep import plot_curves

    plot_curves(df, tmp_path / "curves.png")
    spans = max(c[0] for c in df["curve"]) / min(c[-1] for c in df["curve"])
    assert spans >= 10, f"the test needs losses spanning a decade (got {spans:.3g}x)"
    assert seen["yscale"] == "log", seen
    assert all(float(t).is_integer() for t in seen["ticks"]), seen["ticks"]
    assert seen["legend_x0"] >= seen["axes_x1"], f"the legend overlaps the axes: {seen}"
