"""Matrix products for compiled code: ``C = alpha * op(A) @ op(B) + beta * C``, emitted into LLVM IR.

The emitter (stable signature)::

    emit_gemm(builder, dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
              *, path="auto") -> None

* ``builder``: an ``llvmlite.ir.IRBuilder`` positioned inside a function; the code is
  emitted at its position and the builder is left at the end of it (new basic blocks
  are appended to the builder's function; no allocas, no globals but declarations).
* ``dtype``: ``"float64"`` or ``"float32"``; ``a``, ``b``, ``c`` are pointers to that
  float type (``double*`` / ``float*``), row-major, with leading dimensions (row
  strides, in elements) ``lda``, ``ldb``, ``ldc``.
* ``op(A)`` is ``A`` (shape (m, k)) or, with ``trans_a``, ``A.T`` (A stored as (k, m));
  ``op(B)`` is ``B`` (k, n) or, with ``trans_b``, ``B.T`` (B stored as (n, k)); C is (m, n).
* ``m``, ``n``, ``k``, ``lda``, ``ldb``, ``ldc``: a Python int (a compile-time constant)
  or an ``i64`` IR value (known at run time; typically ``m``, the minibatch's rows).
* ``alpha``, ``beta``: a Python float or an IR value of the float type. With ``beta == 0``
  (a Python 0.0 or a run-time 0) C is written without its old value counting, as BLAS
  does (NaN in C does not leak).
* ``path``: ``"auto"`` (default: BLAS for products of at least :data:`BLAS_MIN_MACS`
  multiply-adds with m >= 2 and k >= 2, the loops otherwise; decided at compile time
  when m, n, k are constants, else by a run-time test), ``"loops"`` (always the
  generated loops) or ``"blas"`` (always BLAS when there is one, else loops).

The BLAS address is a constant of this process: machine code holding it must not be
cached across processes. ``bench/gemm_mlp.py`` is a complete example: a logistic MLP's
SGD loop, every product an ``emit_gemm``, checked against a torch loop.

Typical uses in a training kernel (row-major activations X (B, in), weight W (in, out)):
forward ``Y = X @ W`` (NN), backward ``dX = dY @ W.T`` (NT), the SGD step fused into
the weight gradient ``W = -lr * X.T @ dY + W`` (TN, alpha=-lr, beta=1).

The two paths, chosen by measurement (``bench/bench_gemm.py``):

* **loops**: generated loops that LLVM vectorises for the host CPU. Row by row of C;
  for ``op(B) = B`` an axpy form (C's row += a * B's row: contiguous, no reduction),
  for ``op(B) = B.T`` a dot-product form whose reduction carries the ``reassoc`` and
  ``contract`` flags (only those adds and multiplies), so LLVM splits it into vector
  partial sums with FMAs, as BLAS does: results differ from a left-to-right sum by
  rounding only. No call, no set-up: this is what keeps XOR-sized networks at C speed.
* **BLAS**: a call to the optimised ``cblas_dgemm``/``cblas_sgemm`` of the OpenBLAS that
  numpy already has loaded (its ``scipy_cblas_?gemm64_`` symbols: row-major CBLAS with
  64-bit integers), through its address as a constant: no import beyond numpy, no
  copy. When no such library is found (another numpy build), ``"auto"``/``"blas"`` emit
  the loops (:func:`blas_available` says which).

Threads: BLAS calls run on OpenBLAS's own thread pool, the one numpy uses. Its size is
``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``) when the process starts, all cores
otherwise; change it at run time with :func:`set_threads` (or
``threadpoolctl.threadpool_limits(n, user_api="blas")``, which reaches the same pool).
OpenBLAS itself runs small products on one thread. The loops are single-threaded.
Single-thread numbers are the yardstick. On the shared 2-core machine the benchmarks
ran on, 2 threads made every column 5-40x slower at a load average of 5-8; at 1.3 they
made LLVMRun's training 1.3-1.7x faster on the large MLPs (README, "Training at size";
``bench/bench_size.py --threads 2``, ``bench/bench_gemm.py --threads 2``).

The pure-function API, for tests and benchmarks::

    f = compile_gemm("float64", trans_a=False, trans_b=True, path="auto")
    f(m, n, k, alpha, a_ptr, lda, b_ptr, ldb, beta, c_ptr, ldc)   # a ctypes function
    gemm(a, b, c, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, path="auto")  # numpy arrays

``compile_gemm(..., m=None, n=None, k=None)`` bakes in any dimension given as an int
(the f's argument of that name is then ignored), so tests can exercise the
static-size code the compiler emits.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from llvmlite import ir

from mdfx.converters.llvm.emit import loop
from mdfx.errors import MdfxError

I32 = ir.IntType(32)
I64 = ir.IntType(64)
FLOAT_TYPES: dict[str, ir.Type] = {"float64": ir.DoubleType(), "float32": ir.FloatType()}

#: "auto" calls BLAS for products of at least this many multiply-adds (m * n * k) whose m
#: and k are both at least 2; everything else runs the generated loops. Measured with
#: ``bench/bench_gemm.py`` (float64 and float32, one thread): below ~2000 multiply-adds the
#: call's set-up costs more than the loops' work; a matrix-vector product (m == 1: a
#: minibatch of one) or an outer product (k == 1: its weight gradient) streams the matrix
#: once either way, and OpenBLAS's gemm is 1.1-4x slower than the loops on them
#: (e.g. 1x1024 @ 1024x1024: loops 140 µs, BLAS 488 µs; 1x784 @ 784x256: 18.5 / 28 µs).
BLAS_MIN_MACS = 2048

#: Flags on the reduction's fadd/fmul only: lets LLVM vectorise the sum and fuse the
#: multiply-add (the rounding of a BLAS), while NaN/inf keep their IEEE meaning.
_REDUCE_FLAGS = ("reassoc", "contract")

# CBLAS enum values (cblas.h)
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

Dim = int | ir.Value
Scalar = float | ir.Value


# --- BLAS -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blas:
    """An optimised BLAS in this process: its library path and the gemm entry points."""

    path: str
    dgemm: int  #: address of cblas_dgemm (row-major CBLAS, 64-bit ints)
    sgemm: int
    set_threads: Any = field(default=None, repr=False)  #: ctypes function (int) or None
    get_threads: Any = field(default=None, repr=False)

    def address(self, dtype: str) -> int:
        return self.dgemm if dtype == "float64" else self.sgemm


#: (cblas dgemm, cblas sgemm, set threads, get threads) symbol names, 64-bit integer interface
_SYMBOLS = [
    ("scipy_cblas_dgemm64_", "scipy_cblas_sgemm64_", "scipy_openblas_set_num_threads64_",
     "scipy_openblas_get_num_threads64_"),
    ("cblas_dgemm64_", "cblas_sgemm64_", "openblas_set_num_threads64_", "openblas_get_num_threads64_"),
]


def _loaded_libraries() -> list[str]:
    """Paths of the shared libraries mapped into this process whose name says BLAS (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6}
    except OSError:
        return []
    return sorted(p for p in paths if re.search(r"openblas|blas", os.path.basename(p), re.I))


@functools.cache
def find_blas() -> Blas | None:
    """numpy's own OpenBLAS (64-bit integer CBLAS), or None when this numpy has none we can call."""
    import numpy  # noqa: F401  (loads its BLAS)

    for path in _loaded_libraries():
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same handle, nothing new is mapped
        except OSError:
            continue
        for dname, sname, setn, getn in _SYMBOLS:
            try:
                d, s = getattr(lib, dname), getattr(lib, sname)
            except AttributeError:
                continue
            setter, getter = getattr(lib, setn, None), getattr(lib, getn, None)
            if setter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
            if getter is not None:
                getter.argtypes, getter.restype = [], ctypes.c_int
            return Blas(path, ctypes.cast(d, ctypes.c_void_p).value, ctypes.cast(s, ctypes.c_void_p).value,
                        setter, getter)
    return None


def blas_available() -> bool:
    """Whether "auto"/"blas" can call an optimised BLAS in this process."""
    return find_blas() is not None


def set_threads(n: int) -> None:
    """Threads for BLAS calls from compiled code (numpy's OpenBLAS pool: numpy's products too)."""
    blas = find_blas()
    if blas is None or blas.set_threads is None:
        raise MdfxError(f"set_threads({n}): no OpenBLAS with a thread setting is loaded in this process")
    if n < 1:
        raise MdfxError(f"set_threads: the thread count must be at least 1, got {n}")
    blas.set_threads(int(n))


def get_threads() -> int:
    """Threads BLAS calls use now (1 when there is no BLAS: the loops are single-threaded)."""
    blas = find_blas()
    return 1 if blas is None or blas.get_threads is None else int(blas.get_threads())


# --- IR helpers ---------------------------------------------------------------------------------


def _i64(v: Dim) -> ir.Value:
    return ir.Constant(I64, int(v)) if isinstance(v, int) else v


def _float(fty: ir.Type, v: Scalar) -> ir.Value:
    return ir.Constant(fty, float(v)) if isinstance(v, (int, float)) else v


def _mul(b: ir.IRBuilder, x: Dim, y: Dim) -> Dim:
    if isinstance(x, int) and isinstance(y, int):
        return x * y
    if isinstance(x, int) and x == 1:
        return y
    if isinstance(y, int) and y == 1:
        return x
    return b.mul(_i64(x), _i64(y), flags=["nsw"])


def _add(b: ir.IRBuilder, x: Dim, y: Dim) -> Dim:
    if isinstance(x, int) and isinstance(y, int):
        return x + y
    if isinstance(y, int) and y == 0:
        return x
    if isinstance(x, int) and x == 0:
        return y
    return b.add(_i64(x), _i64(y), flags=["nsw"])


def _elem(b: ir.IRBuilder, ptr: ir.Value, row: Dim, ld: Dim, col: Dim) -> ir.Value:
    """``&ptr[row * ld + col]``."""
    return b.gep(ptr, [_i64(_add(b, _mul(b, row, ld), col))], inbounds=True)


def _is_zero(v: Scalar) -> bool:
    return isinstance(v, (int, float)) and float(v) == 0.0


def _is_one(v: Scalar) -> bool:
    return isinstance(v, (int, float)) and float(v) == 1.0


# --- the loops ----------------------------------------------------------------------------------


def _emit_loops(b: ir.IRBuilder, fty: ir.Type, trans_a: bool, trans_b: bool, m: Dim, n: Dim, k: Dim,
                alpha: Scalar, a: ir.Value, lda: Dim, bm: ir.Value, ldb: Dim, beta: Scalar,
                c: ir.Value, ldc: Dim) -> None:
    zero = ir.Constant(fty, 0.0)
    alpha_v, beta_v = _float(fty, alpha), _float(fty, beta)

    def scaled(old: ir.Value) -> ir.Value:
        """beta * old; a run-time beta of 0 gives 0 without reading old's value (BLAS: NaN does not leak)."""
        if isinstance(beta, (int, float)):
            return b.fmul(beta_v, old)
        return b.select(b.fcmp_ordered("==", beta_v, zero), zero, b.fmul(beta_v, old))

    def a_at(i: ir.Value, kk: ir.Value) -> ir.Value:
        return b.load(_elem(b, a, kk, lda, i) if trans_a else _elem(b, a, i, lda, kk))

    with loop(b, m, "gemm.i") as i:
        if not trans_b:
            # axpy form: C[i, :] = beta * C[i, :]; C[i, :] += (alpha * op(A)[i, kk]) * B[kk, :]
            if not _is_one(beta):
                with loop(b, n, "gemm.j0") as j:
                    p = _elem(b, c, i, ldc, j)
                    b.store(zero if _is_zero(beta) else scaled(b.load(p)), p)
            with loop(b, k, "gemm.k") as kk:
                av = a_at(i, kk)
                if not _is_one(alpha):
                    av = b.fmul(alpha_v, av)
                with loop(b, n, "gemm.j") as j:
                    p = _elem(b, c, i, ldc, j)
                    prod = b.fmul(av, b.load(_elem(b, bm, kk, ldb, j)), flags=_REDUCE_FLAGS)
                    b.store(b.fadd(b.load(p), prod, flags=_REDUCE_FLAGS), p)
        else:
            # dot form: C[i, j] = alpha * sum_kk op(A)[i, kk] * B[j, kk] + beta * C[i, j]
            with loop(b, n, "gemm.j") as j:
                before = b.block
                head = b.append_basic_block("gemm.dot.head")
                body = b.append_basic_block("gemm.dot.body")
                done = b.append_basic_block("gemm.dot.end")
                b.branch(head)
                b.position_at_end(head)
                kk = b.phi(I64, name="gemm.kk")
                acc = b.phi(fty, name="gemm.acc")
                kk.add_incoming(ir.Constant(I64, 0), before)
                acc.add_incoming(zero, before)
                b.cbranch(b.icmp_signed("<", kk, _i64(k)), body, done)
                b.position_at_end(body)
                prod = b.fmul(a_at(i, kk), b.load(_elem(b, bm, j, ldb, kk)), flags=_REDUCE_FLAGS)
                nxt = b.fadd(acc, prod, flags=_REDUCE_FLAGS)
                kk.add_incoming(b.add(kk, ir.Constant(I64, 1), flags=["nuw", "nsw"]), b.block)
                acc.add_incoming(nxt, b.block)
                b.branch(head)
                b.position_at_end(done)
                value = acc if _is_one(alpha) else b.fmul(alpha_v, acc)
                p = _elem(b, c, i, ldc, j)
                if not _is_zero(beta):
                    old = b.load(p)
                    value = b.fadd(value, old if _is_one(beta) else scaled(old))
                b.store(value, p)


# --- the BLAS call --------------------------------------------------------------------------------


def _emit_blas(b: ir.IRBuilder, fty: ir.Type, address: int, trans_a: bool, trans_b: bool, m: Dim, n: Dim,
               k: Dim, alpha: Scalar, a: ir.Value, lda: Dim, bm: ir.Value, ldb: Dim, beta: Scalar,
               c: ir.Value, ldc: Dim) -> None:
    ptr = fty.as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [I32, I32, I32, I64, I64, I64, fty, ptr, I64, ptr, I64, fty, ptr, I64])
    fn = b.inttoptr(ir.Constant(I64, address), fnty.as_pointer(), name="cblas_gemm")

    def ld(value: Dim, cols: Dim) -> ir.Value:
        # CBLAS refuses (and prints) a leading dimension below max(1, columns), even for an
        # empty product; the caller's ld is right whenever anything is read, so raise it.
        if isinstance(value, int) and isinstance(cols, int):
            return ir.Constant(I64, max(value, cols, 1))
        v, cl = _i64(value), _i64(cols)
        v = b.select(b.icmp_signed("<", v, cl), cl, v)
        return b.select(b.icmp_signed("<", v, ir.Constant(I64, 1)), ir.Constant(I64, 1), v)

    def enum(value: int) -> ir.Value:
        return ir.Constant(I32, value)

    b.call(fn, [enum(_ROW_MAJOR), enum(_TRANS if trans_a else _NO_TRANS), enum(_TRANS if trans_b else _NO_TRANS),
                _i64(m), _i64(n), _i64(k), _float(fty, alpha), a, ld(lda, m if trans_a else k),
                bm, ld(ldb, k if trans_b else n), _float(fty, beta), c, ld(ldc, n)])


# --- the emitter ------------------------------------------------------------------------------------


def _wants_blas(m: int, n: int, k: int) -> bool:
    """The "auto" rule for known sizes (the emitted run-time test is the same)."""
    return m >= 2 and k >= 2 and m * n * k >= BLAS_MIN_MACS


def emit_gemm(builder: ir.IRBuilder, dtype: str, trans_a: bool, trans_b: bool, m: Dim, n: Dim, k: Dim,
              alpha: Scalar, a: ir.Value, lda: Dim, b: ir.Value, ldb: Dim, beta: Scalar, c: ir.Value,
              ldc: Dim, *, path: str = "auto") -> None:
    """Emit ``C = alpha * op(A) @ op(B) + beta * C`` at the builder's position (see the module docstring)."""
    if dtype not in FLOAT_TYPES:
        raise MdfxError(f"emit_gemm: dtype must be one of {', '.join(FLOAT_TYPES)}, got {dtype!r}")
    if path not in ("auto", "loops", "blas"):
        raise MdfxError(f"emit_gemm: path must be 'auto', 'loops' or 'blas', got {path!r}")
    fty = FLOAT_TYPES[dtype]
    for label, ptr in (("a", a), ("b", b), ("c", c)):
        if ptr.type != fty.as_pointer():
            raise MdfxError(f"emit_gemm: {label} must be a {fty}* for dtype {dtype}, got {ptr.type}")
    args = (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    blas = find_blas() if path != "loops" else None
    if blas is None:
        _emit_loops(builder, fty, *args)
        return
    if path == "blas":
        _emit_blas(builder, fty, blas.address(dtype), *args)
        return
    if all(isinstance(d, int) for d in (m, n, k)):  # sizes known: choose now
        if _wants_blas(m, n, k):
            _emit_blas(builder, fty, blas.address(dtype), *args)
        else:
            _emit_loops(builder, fty, *args)
        return
    two = ir.Constant(I64, 2)
    big = builder.icmp_signed(">=", _i64(_mul(builder, _mul(builder, m, n), k)), ir.Constant(I64, BLAS_MIN_MACS))
    big = builder.and_(big, builder.and_(builder.icmp_signed(">=", _i64(m), two),
                                         builder.icmp_signed(">=", _i64(k), two)))
    with builder.if_else(big, likely=None) as (then, otherwise):
        with then:
            _emit_blas(builder, fty, blas.address(dtype), *args)
        with otherwise:
            _emit_loops(builder, fty, *args)


# --- the pure-function API --------------------------------------------------------------------------

_LOCK = threading.Lock()
_INITIALISED = False

#: Extra x86 features for the host TargetMachine (the LLVM backend's jit uses the same):
#: once the loop over a short row is unrolled, the vectoriser turns the row loop around
#: it into AVX-512 gathers and scatters (e.g. an outer product 100x1 @ 1x10: 1.8 µs with
#: them, far less without); these tell its cost model not to.
X86_FEATURES = ",+prefer-no-gather,+prefer-no-scatter"


def target_machine() -> Any:
    """A fresh TargetMachine for the host CPU with all its features (MCJIT owns the one it gets)."""
    global _INITIALISED
    import llvmlite.binding as llvm

    with _LOCK:
        if not _INITIALISED:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _INITIALISED = True
    triple = llvm.get_process_triple()
    features = llvm.get_host_cpu_features().flatten()
    if triple.startswith("x86_64") and "+avx512f" in features:
        features += X86_FEATURES
    return llvm.Target.from_triple(triple).create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=features, opt=3, codemodel="jitdefault", jit=True)


@dataclass
class CompiledGemm:
    """A compiled gemm function and what keeps its machine code alive."""

    cfunc: Any  #: f(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) -> None (ctypes)
    dtype: str
    trans_a: bool
    trans_b: bool
    ir_text: str = field(repr=False)
    engine: Any = field(repr=False)
    tm: Any = field(repr=False)

    def __call__(self, *args: Any) -> None:
        self.cfunc(*args)


def compile_ir(text: str) -> tuple[Any, Any]:
    """Parse, verify, optimise (O3) and JIT-compile IR text for the host: (engine, target machine)."""
    import llvmlite.binding as llvm

    mod = llvm.parse_assembly(text)
    mod.triple = llvm.get_process_triple()
    mod.verify()
    tm_opt = target_machine()
    mod.data_layout = str(tm_opt.target_data)
    pb = llvm.create_pass_builder(tm_opt, llvm.create_pipeline_tuning_options(speed_level=3))
    pb.getModulePassManager().run(mod, pb)
    tm = target_machine()
    engine = llvm.create_mcjit_compiler(mod, tm)
    engine.finalize_object()
    return engine, tm


@functools.cache
def compile_gemm(dtype: str, trans_a: bool, trans_b: bool, *, path: str = "auto", m: int | None = None,
                 n: int | None = None, k: int | None = None) -> CompiledGemm:
    """``f(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)``: emit_gemm compiled on its own.

    Pointers are ints or ctypes pointers; alpha/beta are run-time values. ``m``/``n``/``k``
    given here are compile-time constants (the call's own are then ignored).
    """
    fty = FLOAT_TYPES[dtype]
    ptr = fty.as_pointer()
    module = ir.Module(name=f"mdfx.gemm.{dtype}")
    fnty = ir.FunctionType(ir.VoidType(), [I64, I64, I64, fty, ptr, I64, ptr, I64, fty, ptr, I64])
    func = ir.Function(module, fnty, "gemm")
    rm, rn, rk, alpha, a, lda, b, ldb, beta, c, ldc = func.args
    for arg in (a, b, c):
        arg.add_attribute("noalias")
    builder = ir.IRBuilder(func.append_basic_block("entry"))
    emit_gemm(builder, dtype, trans_a, trans_b, rm if m is None else m, rn if n is None else n,
              rk if k is None else k, alpha, a, lda, b, ldb, beta, c, ldc, path=path)
    builder.ret_void()
    text = str(module)
    engine, tm = compile_ir(text)
    ct = ctypes.c_double if dtype == "float64" else ctypes.c_float
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ct, ctypes.c_void_p,
                             ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ct, ctypes.c_void_p, ctypes.c_int64)
    return CompiledGemm(proto(engine.get_function_address("gemm")), dtype, trans_a, trans_b, text, engine, tm)


def gemm(a: Any, b: Any, c: Any, alpha: float = 1.0, beta: float = 0.0, trans_a: bool = False,
         trans_b: bool = False, path: str = "auto") -> Any:
    """``c[...] = alpha * op(a) @ op(b) + beta * c`` on numpy arrays through :func:`compile_gemm`; returns c.

    Arrays must be 2-D, of one float dtype, with unit stride along their rows (views
    with a row stride, e.g. ``x[:, :5]``, are fine: the stride is the leading dimension).
    """
    import numpy as np

    dtype = str(c.dtype)
    arrays = {"a": a, "b": b, "c": c}
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray) or arr.ndim != 2 or str(arr.dtype) != dtype:
            raise MdfxError(f"gemm: {name} must be a 2-D numpy array of c's dtype {dtype}, got "
                            f"{getattr(arr, 'shape', None)} {getattr(arr, 'dtype', type(arr).__name__)}")
        if arr.size and arr.shape[1] > 1 and arr.strides[1] != arr.itemsize:
            raise MdfxError(f"gemm: {name}'s rows must be contiguous (strides {arr.strides})")
    m, k = a.shape[::-1] if trans_a else a.shape
    kb, n = b.shape[::-1] if trans_b else b.shape
    if kb != k or c.shape != (m, n):
        raise MdfxError(f"gemm: shapes do not match: op(a) {(m, k)}, op(b) {(kb, n)}, c {c.shape}")
    if not c.flags.writeable:
        raise MdfxError("gemm: c is read-only")

    def ld(arr: Any) -> int:
        return max(arr.strides[0] // arr.itemsize, 1)

    f = compile_gemm(dtype, bool(trans_a), bool(trans_b), path=path)
    f(m, n, k, alpha, a.ctypes.data, ld(a), b.ctypes.data, ld(b), beta, c.ctypes.data, ld(c))
    return c
