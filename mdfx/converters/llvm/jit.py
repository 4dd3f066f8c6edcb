"""LLVM IR -> machine code with MCJIT, and the in-memory, LRU-bounded cache of compiled kernels.

Compilation has three timed stages, recorded in :data:`last_compile_stats`:
``ir_s`` (build the llvmlite IR and parse/verify it), ``opt_s`` (the new pass
manager's pipeline, see :data:`TUNING`) and ``codegen_s`` (MCJIT: machine code, relocation).
No fast-math flags are set anywhere: they would reorder float operations and
break agreement with the numpy reference.

Kernels are cached by the graph's :meth:`~mdfx.schema.graph.Graph.structure_key`
(never the param values: a NaN weight cannot defeat the key) plus every option that
changes the generated code. The cache keeps the :data:`CACHE_SIZE` most recently used
kernels (``MDFX_LLVM_CACHE``, default 32; about 1 MB of machine code and engine each);
the engine that owns a kernel's machine code lives as long as its entry, and a runner
holding a kernel keeps it alive past its eviction.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import llvmlite.binding as llvm
from llvmlite import ir

from mdfx.converters.llvm import graphgen
from mdfx.converters.llvm.graphgen import Signature
from mdfx.errors import DataError
from mdfx.schema.graph import Graph

#: Stages of the last compilation (seconds) and whether it was a cache hit.
last_compile_stats: dict[str, Any] = {}
#: Number of kernels compiled by this process (tests check that a cache hit compiles nothing).
compile_count = 0


def _cache_size() -> int:
    text = os.environ.get("MDFX_LLVM_CACHE", "32")
    try:
        value = int(text)
    except ValueError:
        raise DataError(f"MDFX_LLVM_CACHE must be a whole number of kernels >= 1, got {text!r}") from None
    if value < 1:
        raise DataError(f"MDFX_LLVM_CACHE must be a whole number of kernels >= 1, got {text!r}")
    return value


#: Most kernels kept (least recently used dropped first); ``MDFX_LLVM_CACHE`` sets it at import.
CACHE_SIZE = _cache_size()

_CACHE: OrderedDict[tuple, Kernel] = OrderedDict()
_LOCK = threading.Lock()


@dataclass
class Kernel:
    """A compiled kernel: the C-callable function, its table layout, and what keeps it alive."""

    cfunc: Any  #: ctypes function: (pointer table, scalars...) -> int32 status
    signature: Signature
    stats: dict[str, float]
    engine: llvm.ExecutionEngine = field(repr=False)
    target_machine: llvm.TargetMachine = field(repr=False)
    ir_text: str = field(repr=False, default="")
    #: machine addresses of the functions the signature's programs call, by name
    addresses: dict[str, int] = field(default_factory=dict)


def learn_kernel(graph: Graph, targets: list[str], dtype: str, loss: str, optimizer: str, single: bool,
                 weight_decay: bool, sources: tuple[str | None, ...] = (), recorded: tuple[str, ...] = ()
                 ) -> Kernel:
    """The compiled ``learn`` kernel (see :mod:`.graphgen`), from the cache when built before."""
    key = ("learn", graph.structure_key(), tuple(targets), dtype, loss, optimizer, single, weight_decay,
           tuple(sources), tuple(recorded))
    return _cached(key, lambda: graphgen.build_learn(graph, targets, dtype, loss, optimizer, single, weight_decay,
                                                     tuple(sources), tuple(recorded)),
                   "learn", [ctypes.c_int64] * 8 + [ctypes.c_double, ctypes.c_int64])


def infer_kernel(graph: Graph, outputs: list[str], dtype: str) -> Kernel:
    """The compiled ``infer`` kernel, from the cache when built before."""
    key = ("infer", graph.structure_key(), tuple(outputs), dtype)
    return _cached(key, lambda: graphgen.build_infer(graph, outputs, dtype), "infer", [ctypes.c_int64] * 3)


def cache_len() -> int:
    return len(_CACHE)


def clear_cache() -> None:
    """Drop every compiled kernel (their machine code is freed with the engines)."""
    with _LOCK:
        _CACHE.clear()


def _cached(key: tuple, build: Callable[[], tuple[ir.Module, Signature]], name: str, scalar_types: list) -> Kernel:
    global compile_count
    with _LOCK:
        kernel = _CACHE.get(key)
        if kernel is None:
            kernel = _compile(build, name, scalar_types)
            _CACHE[key] = kernel
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
            compile_count += 1
            last_compile_stats.clear()
            last_compile_stats.update(kernel.stats, cached=False)
        else:
            _CACHE.move_to_end(key)
            last_compile_stats.clear()
            last_compile_stats.update(kernel.stats, cached=True)
        return kernel

def _target_machine() -> llvm.TargetMachine:
    """A fresh host TargetMachine. MCJIT takes ownership of the one it gets, so never share one."""
    from mdfx.converters.llvm.gemm import target_machine

    return target_machine()


#: Pipeline tuning (llvmlite's PipelineTuningOptions for the new pass manager). The O2
#: pipeline, by measurement (bench/bench_llvm.py): O3's extra unrolling made the semantic
#: net 1.7x slower and compiles take longer, and O2 matched or beat O3 everywhere else.
TUNING: dict[str, Any] = {"speed_level": 2}


def _tuning() -> llvm.PipelineTuningOptions:
    pto = llvm.create_pipeline_tuning_options(speed_level=TUNING["speed_level"])
    for name, value in TUNING.items():
        if name != "speed_level":
            setattr(pto, name, value)
    return pto


def _compile(build: Callable[[], tuple[ir.Module, Signature]], name: str, scalar_types: list) -> Kernel:
    t0 = time.perf_counter()
    module, sig = build()
    text = str(module)
    engine, tm, times = compile_ir(text)
    address = engine.get_function_address(name)
    cfunc = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, *scalar_types)(address)
    addresses = {fn: engine.get_function_address(fn) for prog in sig.programs.values() for fn, _ in prog}
    total = time.perf_counter() - t0
    stats = {"ir_s": total - times["opt_s"] - times["codegen_s"], **times, "total_s": total}
    return Kernel(cfunc, sig, stats, engine, tm, text, addresses)


def compile_ir(text: str) -> tuple[llvm.ExecutionEngine, llvm.TargetMachine, dict[str, float]]:
    """Parse, verify, optimise (:data:`TUNING`) and JIT-compile IR text for the host.

    Returns the engine (look functions up with ``get_function_address``), the
    TargetMachine it owns (keep both alive as long as the code is used) and the
    seconds spent optimising (``opt_s``) and generating machine code (``codegen_s``).
    """
    mod = llvm.parse_assembly(text)
    mod.triple = llvm.get_process_triple()
    mod.verify()
    t1 = time.perf_counter()
    tm_opt = _target_machine()
    mod.data_layout = str(tm_opt.target_data)
    builder = llvm.create_pass_builder(tm_opt, _tuning())
    builder.getModulePassManager().run(mod, builder)
    t2 = time.perf_counter()
    tm = _target_machine()
    engine = llvm.create_mcjit_compiler(mod, tm)
    engine.finalize_object()
    t3 = time.perf_counter()
    return engine, tm, {"opt_s": t2 - t1, "codegen_s": t3 - t2}
