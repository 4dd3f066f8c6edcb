"""The yardstick bench's goal table reads its numbers right (no timing here: synthetic runs)."""

from __future__ import annotations

from bench.yardsticks import BIG, child_env, goals


def _row(net: str, mb: int, dtype: str, **us: float) -> dict:
    return {"net": net, "mb": mb, "dtype": dtype, "us_per_trial": dict(us), "repeats": [dict(us)],
            "peak_us": 10.0}


def _run(rows: list[dict]) -> dict:
    return {"rows": rows, "peak": {"float64": 50e9, "float32": 100e9}}


def _status(table: list[tuple[str, str, str]], start: str) -> list[tuple[str, str]]:
    return [(s, n) for g, s, n in table if g.startswith(start)]


def test_goals_read_each_setting() -> None:
    one = _run([_row(BIG, 128, "float64", **{"mdfx LLVMRun": 12.0, "JAX": 13.0, "mdfx PyTorch": 20.0}),
                _row("xor", 1, "float64", **{"mdfx LLVMRun": 0.5, "JAX": 0.25, "mdfx PyTorch": 60.0})])
    two = _run([_row(BIG, 128, "float64", **{"mdfx LLVMRun": 6.0, "JAX": 7.0, "mdfx PyTorch": 15.0})])
    table = goals({("unset", 1): one, ("unset", 2): two})
    jax = _status(table, "LLVMRun ≤ JAX on every row (unset")
    assert jax == [("not met", "1 of 2 rows; above JAX: xor mb1 float64 2.00×")], table
    peak = _status(table, "LLVMRun ≥80% of the peak, 784-1024-1024-10 mb≥128 (unset")
    assert peak == [("met", "mb128 float64 83% of 50.0 GFLOP/s")], table  # 10 / 12 µs
    llvm2 = _status(table, "2 threads ≥1.7× one thread, mdfx LLVMRun, 784-1024-1024-10 mb128 (unset)")
    torch2 = _status(table, "2 threads ≥1.7× one thread, mdfx PyTorch, 784-1024-1024-10 mb128 (unset)")
    assert llvm2 == [("met", "float64 2.00×")] and torch2 == [("not met", "float64 1.33×")], table
    assert all(s == "not measured" for g, s, _ in table if "(override" in g), table


def test_child_env_sets_or_removes_the_override_only_for_the_child(monkeypatch) -> None:
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Zen")
    assert "OPENBLAS_CORETYPE" not in child_env("unset", 1)
    over = child_env("override", 2)
    assert over["OPENBLAS_CORETYPE"] == "Zen", over  # the machine's own value wins where it has one
    assert over["OPENBLAS_NUM_THREADS"] == "2" and over["OMP_NUM_THREADS"] == "2", over
