"""The gemm kernels of :mod:`mdfx.converters.llvm.gemm` against each other, numpy, and the FMA peak.

Run from the repository root::

    .venv/bin/python -m bench.bench_gemm            # every shape, float64 and float32
    .venv/bin/python -m bench.bench_gemm --quick

Each product is timed inside compiled code: a generated function runs the emitted
gemm ``reps`` times in a loop (beta=1, alpha tiny, so values stay bounded), so a
product of a few hundred nanoseconds is not swamped by the ctypes call. numpy's
``np.matmul(a, b, out=c)`` is timed from Python (its per-call cost included, as a
numpy program would pay it). The shapes are the products of training the bench
networks: forward ``X @ W`` (NN), backward ``dY @ W.T`` (NT), gradient ``X.T @ dY``
(TN), at minibatch 1, 32 and 128. The "loops"/"blas" columns choose
:data:`mdfx.converters.llvm.gemm.BLAS_MIN_MACS`, the "auto" crossover.

The FMA peak (:func:`fma_peak`) is a generated kernel of independent vector FMAs
(16 accumulators of the widest vector the host has, so neither latency nor a
dependency chain limits it): the most multiply-adds one core can do per second.
"""

from __future__ import annotations

import argparse
import ctypes
import time

import numpy as np
from llvmlite import ir

from mdfx.converters.llvm import gemm as G

I64 = ir.IntType(64)


def fma_peak(dtype: str = "float64", seconds: float = 0.001, rounds: int = 200) -> float:
    """FLOP/s of one core doing nothing but independent vector FMAs (best of ``rounds`` bursts)."""
    import llvmlite.binding as llvm

    fty = G.FLOAT_TYPES[dtype]
    G.target_machine()  # initialises LLVM
    features = llvm.get_host_cpu_features()
    bits = 512 if features.get("avx512f") else 256 if features.get("avx") else 128
    width = bits // (64 if dtype == "float64" else 32)
    vty = ir.VectorType(fty, width)
    accs_n = 16
    module = ir.Module(name="fma_peak")
    fn = ir.Function(module, ir.FunctionType(fty, [I64]), "peak")
    suffix = "f64" if dtype == "float64" else "f32"
    fma = ir.Function(module, ir.FunctionType(vty, [vty, vty, vty]), f"llvm.fma.v{width}{suffix}")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    x = ir.Constant(vty, [1.0000001] * width)
    y = ir.Constant(vty, [0.9999999] * width)
    entry = b.block
    head = b.append_basic_block("head")
    body = b.append_basic_block("body")
    done = b.append_basic_block("done")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64)
    i.add_incoming(ir.Constant(I64, 0), entry)
    accs = []
    for a in range(accs_n):
        p = b.phi(vty)
        p.add_incoming(ir.Constant(vty, [float(a) * 1e-3] * width), entry)
        accs.append(p)
    b.cbranch(b.icmp_signed("<", i, fn.args[0]), body, done)
    b.position_at_end(body)
    new = [b.call(fma, [acc, x, y]) for acc in accs]
    for p, v in zip(accs, new, strict=True):
        p.add_incoming(v, body)
    i.add_incoming(b.add(i, ir.Constant(I64, 1)), body)
    b.branch(head)
    b.position_at_end(done)
    total = accs[0]
    for acc in accs[1:]:
        total = b.fadd(total, acc)
    b.ret(b.extract_element(total, ir.Constant(ir.IntType(32), 0)))
    engine, tm = G.compile_ir(str(module))
    ct = ctypes.c_double if dtype == "float64" else ctypes.c_float
    f = ctypes.CFUNCTYPE(ct, ctypes.c_int64)(engine.get_function_address("peak"))
    # Short bursts, best of many: on a shared machine a long run is preempted, and the
    # best burst is what the core can do when it has the core.
    n = max(int(seconds * 5e8 / (accs_n * width)), 1000)
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        f(n)
        best = min(best, time.perf_counter() - t)
    return n * accs_n * width * 2 / best


def _looped(dtype: str, trans_a: bool, trans_b: bool, path: str, m: int, n: int, k: int):
    """A compiled ``f(reps, a, b, c)`` running the emitted gemm (static sizes) reps times."""
    fty = G.FLOAT_TYPES[dtype]
    ptr = fty.as_pointer()
    module = ir.Module(name="gemm_bench")
    # the product in a function of its own that is never inlined: otherwise LLVM keeps a
    # small C in registers across repetitions, which no real kernel does
    one = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, ptr]), "one")
    one.attributes.add("noinline")
    a, bm, c = one.args
    for arg in (a, bm, c):
        arg.add_attribute("noalias")
    b = ir.IRBuilder(one.append_basic_block("entry"))
    G.emit_gemm(b, dtype, trans_a, trans_b, m, n, k, 1e-9, a, m if trans_a else k, bm,
                k if trans_b else n, 1.0, c, n, path=path)
    b.ret_void()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64, ptr, ptr, ptr]), "run")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    with G._loop(b, fn.args[0], "rep"):
        b.call(one, list(fn.args[1:]))
    b.ret_void()
    engine, tm = G.compile_ir(str(module))
    f = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(
        engine.get_function_address("run"))
    f._keep = (engine, tm)  # type: ignore[attr-defined]
    return f


def _best(call, reps: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        call(reps)
        best = min(best, time.perf_counter() - t)
    return best / reps


def time_product(dtype: str, trans_a: bool, trans_b: bool, m: int, n: int, k: int,
                 paths: tuple[str, ...] = ("loops", "blas")) -> dict[str, float]:
    """Seconds per product for each path and numpy."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = np.zeros((m, n), dtype)
    macs = m * n * k
    reps = max(int(2e7 / max(macs, 1) / (1 + 100 / max(macs, 1))), 5)
    out: dict[str, float] = {}
    for path in paths:
        f = _looped(dtype, trans_a, trans_b, path, m, n, k)
        f(1, a.ctypes.data, b.ctypes.data, c.ctypes.data)
        out[path] = _best(lambda r, f=f: f(r, a.ctypes.data, b.ctypes.data, c.ctypes.data), reps)
    opa, opb = (a.T if trans_a else a), (b.T if trans_b else b)

    def numpy_loop(r: int) -> None:
        for _ in range(r):
            np.matmul(opa, opb, out=c)
    out["numpy"] = _best(numpy_loop, max(reps // 10, 3))
    return out


def shapes(quick: bool) -> list[tuple[str, bool, bool, int, int, int]]:
    """(label, trans_a, trans_b, m, n, k) of the bench networks' products."""
    layers = [(2, 10), (10, 1), (64, 100), (100, 10), (784, 256), (256, 128), (128, 10), (1024, 1024)]
    batches = (1, 32) if quick else (1, 32, 128)
    if quick:
        layers = [(2, 10), (64, 100), (784, 256), (256, 128)]
    out = []
    for fan_in, fan_out in layers:
        for bsz in batches:
            out.append((f"fwd {bsz}x{fan_in}@{fan_in}x{fan_out}", False, False, bsz, fan_out, fan_in))
            out.append((f"bwd {bsz}x{fan_out}@({fan_in}x{fan_out}).T", False, True, bsz, fan_in, fan_out))
            out.append((f"grad ({bsz}x{fan_in}).T@{bsz}x{fan_out}", True, False, fan_in, fan_out, bsz))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dtype", choices=["float64", "float32", "both"], default="both")
    parser.add_argument("--threads", type=int, default=1, help="OpenBLAS threads for the BLAS path (default 1)")
    args = parser.parse_args(argv)
    if G.blas_available():
        G.set_threads(args.threads)
    dtypes = ["float64", "float32"] if args.dtype == "both" else [args.dtype]
    print(f"BLAS: {G.find_blas()}; threads {G.get_threads()}; BLAS_MIN_MACS {G.BLAS_MIN_MACS}")
    for dtype in dtypes:
        peak = fma_peak(dtype)
        print(f"\n{dtype}: FMA peak {peak / 1e9:.1f} GFLOP/s (one core)\n")
        print("| product | MACs | loops µs | blas µs | numpy µs | loops GF/s | blas GF/s | best |")
        print("|---|---|---|---|---|---|---|---|")
        for label, ta, tb, m, n, k in shapes(args.quick):
            t = time_product(dtype, ta, tb, m, n, k)
            macs = m * n * k
            best = min(("loops", "blas"), key=lambda p: t[p])
            print(f"| {label} | {macs} | {t['loops'] * 1e6:.3f} | {t['blas'] * 1e6:.3f} | {t['numpy'] * 1e6:.3f} | "
                  f"{2 * macs / t['loops'] / 1e9:.1f} | {2 * macs / t['blas'] / 1e9:.1f} | {best} |", flush=True)


if __name__ == "__main__":
    main()
