"""The compiled gemm (mdfx.converters.llvm.gemm) against numpy: every path, both dtypes, odd sizes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("llvmlite")

from llvmlite import ir  # noqa: E402

from mdfx.converters.llvm import gemm as G  # noqa: E402
from mdfx.errors import MdfxError  # noqa: E402
from tests.helpers import assert_close  # noqa: E402

TOL = {"float64": 1e-12, "float32": 2e-5}
PATHS = ["loops", "blas", "auto"]
# (m, n, k): not multiples of any vector width, a minibatch of one, an outer product (k=1),
# one output (n=1), more rows than a typical minibatch, and sizes on both sides of the
# "auto" crossover
SIZES = [(1, 1, 1), (1, 10, 2), (1, 37, 19), (7, 13, 29), (33, 17, 5), (5, 9, 1), (19, 1, 23),
         (300, 31, 17), (64, 65, 66)]


def _operands(dtype: str, ta: bool, tb: bool, m: int, n: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    return a, b, c


def _expected(a, b, c, alpha, beta, ta, tb):
    op_a = (a.T if ta else a).astype(np.float64)
    op_b = (b.T if tb else b).astype(np.float64)
    return alpha * (op_a @ op_b) + (0.0 if beta == 0 else beta * c.astype(np.float64))


def _scale(want: np.ndarray) -> float:
    return max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("path", PATHS)
def test_runtime_sizes_match_numpy(dtype: str, ta: bool, tb: bool, path: str) -> None:
    for (m, n, k), (alpha, beta) in itertools.product(SIZES, [(1.0, 0.0), (-0.37, 1.0), (0.7, 0.3)]):
        a, b, c = _operands(dtype, ta, tb, m, n, k)
        want = _expected(a, b, c, alpha, beta, ta, tb)
        got = G.gemm(a, b, c.copy(), alpha, beta, ta, tb, path)
        assert got.dtype == np.dtype(dtype)
        assert_close(got / _scale(want), want / _scale(want), rtol=0, atol=TOL[dtype],
                     what=f"{dtype} ta={ta} tb={tb} {path} m,n,k={m, n, k} alpha={alpha} beta={beta}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False)])
@pytest.mark.parametrize("m,n,k", [(1, 10, 2), (4, 10, 1), (7, 13, 29), (128, 100, 64), (1, 256, 784)])
def test_static_sizes_match_numpy(dtype: str, ta: bool, tb: bool, m: int, n: int, k: int) -> None:
    """Sizes baked in as constants (as the compiler emits them); "auto" chooses at compile time."""
    f = G.compile_gemm(dtype, ta, tb, path="auto", m=m, n=n, k=k)
    assert ("inttoptr" in f.ir_text) == (G.blas_available() and G._wants_blas(m, n, k)), \
        f"auto chose {'BLAS' if 'inttoptr' in f.ir_text else 'loops'} for m,n,k={m, n, k}"
    a, b, c = _operands(dtype, ta, tb, m, n, k, seed=1)
    want = _expected(a, b, c, 0.5, 1.0, ta, tb)
    lda, ldb = a.shape[1], b.shape[1]
    f(0, 0, 0, 0.5, a.ctypes.data, lda, b.ctypes.data, ldb, 1.0, c.ctypes.data, n)  # m, n, k ignored
    assert_close(c / _scale(want), want / _scale(want), rtol=0, atol=TOL[dtype], what=f"static {m, n, k}")


@pytest.mark.parametrize("path", PATHS)
def test_beta_zero_does_not_read_c(path: str) -> None:
    """beta == 0 overwrites C (NaN there does not leak), as BLAS: a Python 0.0 and a run-time 0."""
    for ta, tb in itertools.product([False, True], repeat=2):
        for m, n, k in [(1, 5, 3), (40, 30, 20)]:
            a, b, _ = _operands("float64", ta, tb, m, n, k)
            c = np.full((m, n), np.nan)
            got = G.gemm(a, b, c, 2.0, 0.0, ta, tb, path)
            assert_close(got, _expected(a, b, c, 2.0, 0.0, ta, tb), rtol=1e-12, what=f"{path} {ta} {tb}")


def test_leading_dimensions_and_views() -> None:
    """Row strides larger than the rows (views into wider arrays) are honoured; other memory is untouched."""
    rng = np.random.default_rng(5)
    for path, (ta, tb) in itertools.product(PATHS, itertools.product([False, True], repeat=2)):
        m, n, k = 9, 11, 40
        big_a = rng.standard_normal((50, 60))
        big_b = rng.standard_normal((50, 60))
        big_c = rng.standard_normal((20, 30))
        a = big_a[:k, :m] if ta else big_a[:m, :k]
        b = big_b[:n, :k] if tb else big_b[:k, :n]
        before = big_c.copy()
        c = big_c[2:2 + m, 3:3 + n]
        want = _expected(a, b, c, 1.5, -1.0, ta, tb)
        G.gemm(a, b, c, 1.5, -1.0, ta, tb, path)
        assert_close(c, want, rtol=1e-12, atol=1e-12, what=f"view {path} ta={ta} tb={tb}")
        mask = np.ones_like(big_c, dtype=bool)
        mask[2:2 + m, 3:3 + n] = False
        assert np.array_equal(big_c[mask], before[mask]), f"{path}: wrote outside C's view"


def test_empty_products() -> None:
    """m, n or k of 0: C = beta * C (k = 0) or nothing to do, on every path, without a BLAS complaint."""
    for path in PATHS:
        for m, n, k in [(0, 5, 3), (4, 0, 3), (4, 5, 0)]:
            a, b, c = _operands("float64", False, False, m, n, k)
            got = G.gemm(a, b, c.copy(), 1.0, 0.5, path=path)
            assert_close(got, 0.5 * c, rtol=1e-15, what=f"{path} {m, n, k}")


def test_runtime_dispatch_in_one_function_takes_both_paths() -> None:
    """With m known only at run time, one compiled function serves a minibatch of 1 and of 128."""
    f = G.compile_gemm("float64", False, False, path="auto", n=100, k=64)
    for m in (1, 2, 31, 128):
        a, b, c = _operands("float64", False, False, m, 100, 64, seed=m)
        want = _expected(a, b, c, 1.0, 1.0, False, False)
        f(m, 0, 0, 1.0, a.ctypes.data, 64, b.ctypes.data, 100, 1.0, c.ctypes.data, 100)
        assert_close(c, want, rtol=1e-12, atol=1e-12, what=f"m={m}")


def test_emitter_refuses_wrong_arguments() -> None:
    module = ir.Module()
    f64p = ir.DoubleType().as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [f64p, f64p, f64p]), "f")
    builder = ir.IRBuilder(fn.append_basic_block())
    a, b, c = fn.args
    with pytest.raises(MdfxError, match=r"a must be a float\* for dtype float32, got double\*"):
        G.emit_gemm(builder, "float32", False, False, 2, 2, 2, 1.0, a, 2, b, 2, 0.0, c, 2)
    with pytest.raises(MdfxError, match=r"dtype must be one of float64, float32, got 'int8'"):
        G.emit_gemm(builder, "int8", False, False, 2, 2, 2, 1.0, a, 2, b, 2, 0.0, c, 2)
    with pytest.raises(MdfxError, match=r"path must be 'auto', 'loops' or 'blas', got 'fast'"):
        G.emit_gemm(builder, "float64", False, False, 2, 2, 2, 1.0, a, 2, b, 2, 0.0, c, 2, path="fast")
    with pytest.raises(MdfxError, match=r"shapes do not match: op\(a\) \(3, 4\), op\(b\) \(5, 2\)"):
        G.gemm(np.zeros((3, 4)), np.zeros((5, 2)), np.zeros((3, 2)))


def test_threads_setting_round_trips() -> None:
    if not G.blas_available() or G.find_blas().set_threads is None:
        pytest.skip("no OpenBLAS with a thread setting in this process")
    before = G.get_threads()
    try:
        G.set_threads(1)
        assert G.get_threads() == 1
    finally:
        G.set_threads(before)
    with pytest.raises(MdfxError, match="at least 1, got 0"):
        G.set_threads(0)
