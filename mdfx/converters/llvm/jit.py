"""LLVM IR -> machine code with MCJIT, and the in-memory cache of compiled kernels.

Compilation has three timed stages, recorded in :data:`last_compile_stats`:
``ir_s`` (build the llvmlite IR and parse/verify it), ``opt_s`` (the new pass
manager's pipeline, see :data:`TUNING`) and ``codegen_s`` (MCJIT: machine code, relocation).
No fast-math flags are set anywhere: they would reorder float operations and
break agreement with the numpy reference.

Kernels are cached by the network's structure key plus every option that
changes the generated code; the engine (which owns the machine code) lives as
long as its cache entry.
"""

from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import llvmlite.binding as llvm

from mdfx.converters.llvm import codegen
from mdfx.converters.llvm.codegen import Signature
from mdfx.schema.net import Net

#: Stages of the last compilation (seconds) and whether it was a cache hit.
last_compile_stats: dict[str, Any] = {}
#: Number of kernels compiled by this process (tests check that a cache hit compiles nothing).
compile_count = 0

_CACHE: dict[tuple, Kernel] = {}
_LOCK = threading.Lock()
_INITIALISED = False


@dataclass
class Kernel:
    """A compiled kernel: the C-callable function, its argument layout, and what keeps it alive."""

    cfunc: Any  #: ctypes function
    #: argument layout, named after the net it was built for; any net of the same
    #: structure key binds its arrays by position (codegen.signature(net) gives its names)
    signature: Signature
    stats: dict[str, float]
    engine: llvm.ExecutionEngine = field(repr=False)
    target_machine: llvm.TargetMachine = field(repr=False)
    ir_text: str = field(repr=False, default="")


def learn_kernel(net: Net, dtype: str, loss: str, optimizer: str, minibatch: int, weight_decay: bool) -> Kernel:
    """The compiled ``learn`` kernel (see :mod:`.codegen`), from the cache when built before."""
    key = ("learn", net.structure_key(), dtype, loss, optimizer, minibatch, weight_decay)
    return _cached(key, lambda: codegen.build_learn(net, dtype, loss, optimizer, minibatch, weight_decay),
                   "learn", [ctypes.c_int64] * 3 + [ctypes.c_double] * 2 + [ctypes.c_int64])


def infer_kernel(net: Net, dtype: str) -> Kernel:
    """The compiled ``infer`` kernel, from the cache when built before."""
    key = ("infer", net.structure_key(), dtype)
    return _cached(key, lambda: codegen.build_infer(net, dtype), "infer", [ctypes.c_int64])


def clear_cache() -> None:
    """Drop every compiled kernel (their machine code is freed with the engines)."""
    with _LOCK:
        _CACHE.clear()


def _cached(key: tuple, build, name: str, scalar_types: list) -> Kernel:
    global compile_count
    with _LOCK:
        kernel = _CACHE.get(key)
        if kernel is None:
            kernel = _compile(build, name, scalar_types)
            _CACHE[key] = kernel
            compile_count += 1
            last_compile_stats.clear()
            last_compile_stats.update(kernel.stats, cached=False)
        else:
            last_compile_stats.clear()
            last_compile_stats.update(kernel.stats, cached=True)
        return kernel


def _target_machine() -> llvm.TargetMachine:
    """A fresh host TargetMachine. MCJIT takes ownership of the one it gets, so never share one."""
    global _INITIALISED
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


#: Pipeline tuning (llvmlite's PipelineTuningOptions for the new pass manager). The O2
#: pipeline, by measurement (bench/bench_llvm.py): O3's extra unrolling made the semantic
#: net 1.7x slower and compiles take longer, and O2 matched or beat O3 everywhere else.
TUNING: dict[str, Any] = {"speed_level": 2}

#: Extra x86 subtarget features. Once a short inner loop is fully unrolled, the vectoriser
#: can turn the row loop around it into AVX-512 gathers and scatters over a weight column,
#: several times slower than the scalar code; these tell its cost model not to.
X86_FEATURES = ",+prefer-no-gather,+prefer-no-scatter"


def _tuning() -> llvm.PipelineTuningOptions:
    pto = llvm.create_pipeline_tuning_options(speed_level=TUNING["speed_level"])
    for name, value in TUNING.items():
        if name != "speed_level":
            setattr(pto, name, value)
    return pto


def _compile(build, name: str, scalar_types: list) -> Kernel:
    t0 = time.perf_counter()
    module, sig = build()
    text = str(module)
    engine, tm, times = compile_ir(text)
    address = engine.get_function_address(name)
    n_ptrs = len(module.get_global(name).args) - len(scalar_types)
    cfunc = ctypes.CFUNCTYPE(ctypes.c_int32, *([ctypes.c_void_p] * n_ptrs), *scalar_types)(address)
    total = time.perf_counter() - t0
    stats = {"ir_s": total - times["opt_s"] - times["codegen_s"], **times, "total_s": total}
    return Kernel(cfunc, sig, stats, engine, tm, text)


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
