"""A whole-minibatch training kernel built from :func:`mdfx.converters.llvm.gemm.emit_gemm`.

A feasibility check for issue 10, not a backend: the smallest compiled SGD loop for a
logistic MLP with MSE (the networks of :mod:`bench.bench_size`) where every product is
an emitted gemm -- forward ``A_l = sigmoid(A_{l-1} @ W_l)`` (NN), backward
``D_{l-1} = (D_l @ W_l.T) * A_{l-1} (1 - A_{l-1})`` (NT), and the SGD step fused into the
weight gradient ``W_l = -lr * A_{l-1}.T @ D_l + W_l`` (TN, beta=1), minibatch after
minibatch in one call. It is timed against the hand torch loop on the same data and
weights (checked equal first), interleaved, best of rounds::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.gemm_mlp
    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.gemm_mlp --sizes 784 1024 1024 10 --trials 256
"""

from __future__ import annotations

import argparse
import ctypes
import time

import numpy as np
import torch
from llvmlite import ir

from bench.bench_size import hand_torch, mlp
from mdfx.converters.llvm import gemm as G

I64 = ir.IntType(64)


def build(sizes: list[int], mb: int, dtype: str, path: str = "auto"):
    """``train(x, t, w_1..w_L, scratch, ntrials, lr)``: one epoch of SGD, minibatch ``mb``."""
    fty = G.FLOAT_TYPES[dtype]
    ptr = fty.as_pointer()
    layers = len(sizes) - 1
    module = ir.Module(name="gemm_mlp")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr] * (3 + layers) + [I64, fty]), "train")
    for arg in fn.args[:3 + layers]:
        arg.add_attribute("noalias")
    x, t, *ws = fn.args[:2 + layers]
    scratch, ntrials, lr = fn.args[2 + layers:]
    exp = ir.Function(module, ir.FunctionType(fty, [fty]), "llvm.exp." + ("f64" if dtype == "float64" else "f32"))
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    one, zero = ir.Constant(fty, 1.0), ir.Constant(fty, 0.0)
    # scratch: activations A_1..A_L then deltas D_1..D_L, each (mb, n_l)
    offsets, at = [], 0
    for n in sizes[1:] * 2:
        offsets.append(at)
        at += mb * n
    acts = [b.gep(scratch, [ir.Constant(I64, o)]) for o in offsets[:layers]]
    deltas = [b.gep(scratch, [ir.Constant(I64, o)]) for o in offsets[layers:]]
    nb = b.sdiv(b.add(ntrials, ir.Constant(I64, mb - 1)), ir.Constant(I64, mb))
    with G._loop(b, nb, "mb") as k:
        start = b.mul(k, ir.Constant(I64, mb))
        left = b.sub(ntrials, start)
        m = b.select(b.icmp_signed("<", left, ir.Constant(I64, mb)), left, ir.Constant(I64, mb))
        prev = [b.gep(x, [b.mul(start, ir.Constant(I64, sizes[0]))])] + acts
        for layer in range(layers):
            n_in, n_out = sizes[layer], sizes[layer + 1]
            G.emit_gemm(b, dtype, False, False, m, n_out, n_in, 1.0, prev[layer], n_in, ws[layer], n_out,
                        0.0, acts[layer], n_out, path=path)
            with G._loop(b, b.mul(m, ir.Constant(I64, n_out)), "sig") as i:
                p = b.gep(acts[layer], [i])
                b.store(b.fdiv(one, b.fadd(one, b.call(exp, [b.fneg(b.load(p))]))), p)
        n_out = sizes[-1]
        count = b.mul(m, ir.Constant(I64, n_out))
        scale = b.fdiv(ir.Constant(fty, 2.0), b.sitofp(count, fty))
        tgt = b.gep(t, [b.mul(start, ir.Constant(I64, n_out))])
        with G._loop(b, count, "loss") as i:
            y = b.load(b.gep(acts[-1], [i]))
            d = b.fmul(b.fmul(scale, b.fsub(y, b.load(b.gep(tgt, [i])))), b.fmul(y, b.fsub(one, y)))
            b.store(d, b.gep(deltas[-1], [i]))
        for layer in reversed(range(layers)):
            n_in, n_out = sizes[layer], sizes[layer + 1]
            if layer > 0:  # propagate with the weights before their update
                G.emit_gemm(b, dtype, False, True, m, n_in, n_out, 1.0, deltas[layer], n_out, ws[layer], n_out,
                            0.0, deltas[layer - 1], n_in, path=path)
                with G._loop(b, b.mul(m, ir.Constant(I64, n_in)), "dsig") as i:
                    y = b.load(b.gep(acts[layer - 1], [i]))
                    p = b.gep(deltas[layer - 1], [i])
                    b.store(b.fmul(b.load(p), b.fmul(y, b.fsub(one, y))), p)
            G.emit_gemm(b, dtype, True, False, n_in, n_out, m, b.fneg(lr), prev[layer], n_in, deltas[layer], n_out,
                        1.0, ws[layer], n_out, path=path)
    b.ret_void()
    del zero
    engine, tm = G.compile_ir(str(module))
    ct = ctypes.c_double if dtype == "float64" else ctypes.c_float
    f = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * (3 + layers)), ctypes.c_int64, ct)(
        engine.get_function_address("train"))
    f._keep = (engine, tm)  # type: ignore[attr-defined]
    return f, at


def gemm_train(case, sizes: list[int], mb: int, dtype: str, kernel) -> tuple[dict, float]:
    f, scratch_len = kernel
    ws = {p: np.ascontiguousarray(w, dtype=dtype) for p, w in case.weights.items()}
    x = np.ascontiguousarray(case.inputs["input"], dtype=dtype)
    t = np.ascontiguousarray(case.targets["output"], dtype=dtype)
    scratch = np.empty(scratch_len, dtype)
    start = time.perf_counter()
    f(x.ctypes.data, t.ctypes.data, *[w.ctypes.data for w in ws.values()], scratch.ctypes.data, len(x),
      case.learning_rate)
    return {p: w.astype(np.float64) for p, w in ws.items()}, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[784, 256, 128, 10])
    parser.add_argument("--trials", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--minibatch", type=int, nargs="*", default=[1, 32, 128])
    parser.add_argument("--dtype", nargs="*", default=["float64", "float32"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    G.set_threads(args.threads)
    case = mlp(args.sizes, args.trials)
    print(f"{case.name}, {args.trials} trials, {args.threads} thread(s); µs per trial, best of {args.rounds} "
          "interleaved rounds\n")
    print("| mb | dtype | hand torch | gemm kernel | × hand torch |")
    print("|---|---|---|---|---|")
    for dtype in args.dtype:
        for mb in args.minibatch:
            kernel = build(args.sizes, mb, dtype)
            want = hand_torch(case, mb, dtype)
            got, _ = gemm_train(case, args.sizes, mb, dtype, kernel)
            for p, w in want.items():
                tol = dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=0, atol=2e-3 * np.abs(w).max())
                np.testing.assert_allclose(got[p], w, **tol, err_msg=f"mb{mb} {dtype}: {p} unlike hand torch")
            th, tg = [], []
            for _ in range(args.rounds):
                s = time.perf_counter()
                hand_torch(case, mb, dtype)
                th.append(time.perf_counter() - s)
                tg.append(gemm_train(case, args.sizes, mb, dtype, kernel)[1])
            h, g = min(th) / args.trials * 1e6, min(tg) / args.trials * 1e6
            print(f"| {mb} | {dtype} | {h:.3g} | {g:.3g} | {g / h:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
