"""The machine's measured GEMM peak: the yardstick every "share of peak" figure divides by.

Two measurements, and the peak is the larger:

* ``fma``: :func:`bench.bench_gemm.fma_peak`, a generated kernel doing nothing but
  independent vector FMAs (16 accumulators);
* ``blas``: the best of numpy's ``a @ b`` at n = 1024 and 2048 (dgemm / sgemm of the
  BLAS numpy links, at its current thread count), with the kernel it ran reported
  through threadpoolctl (OpenBLAS picks a kernel per CPU, or the one
  ``OPENBLAS_CORETYPE`` forces).

A generated FMA loop can fall short of what the core does (LLVM may split 512-bit
vectors into two 256-bit halves on some CPUs), and a BLAS kernel forced to an older
architecture falls short the other way, so neither alone is the peak: the best of
both is the floor of what the hardware does, which is what a share must be taken of.

    .venv/bin/python -m bench.peak          # both, one thread, float64 and float32
"""

from __future__ import annotations

import time

import numpy as np


def blas_kernel() -> str:
    """Which BLAS numpy calls, its kernel (architecture) and threads, e.g. ``openblas 0.3.31 SkylakeX x1``."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown BLAS (threadpoolctl not installed)"
    # numpy's own BLAS first: torch may bring another OpenBLAS into the process
    infos = sorted((i for i in threadpool_info() if i.get("user_api") == "blas"),
                   key=lambda i: "numpy" not in str(i.get("filepath", "")))
    for info in infos:
        if info:
            return (f"{info.get('internal_api')} {info.get('version')} {info.get('architecture', '?')} "
                    f"x{info.get('num_threads')}")
    return "no BLAS found by threadpoolctl"


def blas_peak(dtype: str = "float64", sizes: tuple[int, ...] = (1024, 2048), rounds: int = 5) -> float:
    """Best FLOP/s of ``a @ b`` over the sizes (best of ``rounds`` each, after a warm-up)."""
    rng = np.random.default_rng(0)
    best = 0.0
    for n in sizes:
        a = rng.random((n, n)).astype(dtype)
        b = rng.random((n, n)).astype(dtype)
        a @ b
        for _ in range(rounds):
            start = time.perf_counter()
            a @ b
            best = max(best, 2.0 * n**3 / (time.perf_counter() - start))
    return best


def measured_peak(dtype: str = "float64", threads: int = 1) -> tuple[float, dict[str, float]]:
    """(peak FLOP/s, each measurement by name): the larger of the FMA kernel (× threads) and BLAS."""
    from bench.bench_gemm import fma_peak

    found = {"fma": fma_peak(dtype) * threads, "blas": blas_peak(dtype)}
    return max(found.values()), found


def main() -> None:
    print(f"BLAS: {blas_kernel()}")
    for dtype in ("float64", "float32"):
        peak, found = measured_peak(dtype)
        print(f"{dtype}: peak {peak / 1e9:.1f} GFLOP/s (" +
              ", ".join(f"{k} {v / 1e9:.1f}" for k, v in found.items()) + ")")


if __name__ == "__main__":
    main()
