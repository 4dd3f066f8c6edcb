"""Training at size: every way to train the same network, against the machine's measured GEMM peak.

Run from the repository root (a few minutes; ``--quick``: about a minute)::

    .venv/bin/python -m bench.bench_size            # the table of the README's "Training at size"
    .venv/bin/python -m bench.bench_size --quick      # a smoke run: with few trials, learn()'s
                                                      # per-call cost dominates the small nets
    .venv/bin/python -m bench.bench_size --threads 2 --nets 784-256-128-10

Networks (logistic MLPs trained with SGD and MSE, uniform(-0.5, 0.5) weights,
random inputs in [0, 1) and one-hot targets, seeded):
``784-256-128-10`` (1024 trials; 256 with --quick), ``784-1024-1024-10`` (256; 64), and the small nets
of :mod:`bench.networks` (xor, digits, semantic, with their own data); each at minibatch
1, 32 and 128 (a minibatch larger than the data is refused by learn(), as in
PsyNeuLink: "n/a"), in float64 and float32.

Columns, each µs per trial (one pass over the trials, one epoch for the large nets)
with the share of the measured peak it reaches (FLOPs per trial: forward + backward
= 6 x weights, the 2 x multiply-add of each weight in the forward pass, the
backward pass and the weight gradient):

* ``hand torch``: the idiomatic loop (``nn.Linear(bias=False)`` + ``nn.Sigmoid``,
  ``optim.SGD``, ``nn.MSELoss``, ``zero_grad / backward / step``, ``loss.item()`` per
  minibatch), ``torch.set_num_threads(threads)``: the 1.00x column;
* ``JAX``: :mod:`bench.yardstick_jax`, the same loop under ``jit`` + ``lax.scan`` (the whole
  training one compiled call; left out with a note when jax is not installed);
* ``mdfx PyTorch`` / ``mdfx LLVMRun`` / ``mdfx Python``: ``AutodiffComposition.learn(...,
  execution_mode=...)`` on a freshly built composition (so whatever compiler is on main
  is measured; the build is outside the timer, learn()'s own per-call costs inside);
  Python mode computes in float64 whatever ``dtype`` says;
* ``hand numpy``: forward, backward and SGD step written out in numpy;
* ``C -O3``: :mod:`bench.yardstick_c` -- the same training in C (gcc -O3 -march=native
  -ffp-contract=off), trial by trial (matrix-vector loops; a minibatch sums gradients
  over its trials, then steps), float64 only; the time inside the C function (its
  Python set-up -- writing the source, hashing it, copying arrays -- is left out,
  so it is the compiled code's speed alone);
* ``peak``: the time the trial's FLOPs take at the measured GEMM peak
  (:func:`bench.peak.measured_peak`: the better of a generated FMA kernel, times
  ``threads``, and the BLAS's own dgemm/sgemm at large n).

The environment: the header names the BLAS kernel numpy runs (threadpoolctl) and the
``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` the run saw; :mod:`bench.yardsticks` runs this
bench with and without them, at one and two threads, and prints the goals.

Before timing, every column's trained weights are checked against the hand torch
loop's (float64: rtol 1e-9; float32: 2e-3 of the largest weight). Timings are the
best of ``--rounds`` interleaved rounds (each round runs every column once;
the best, since on a shared machine other work only ever slows a run down).
Threads: ``--threads`` sets torch's intra-op threads and the OpenBLAS pool numpy (and
compiled code calling BLAS) uses; the peak is scaled by it.

Memory: the peak RSS (``VmHWM``, i.e. ``ru_maxrss`` without what Linux carries over from
the parent through fork + exec) of a fresh process (numpy and mdfx imported, the
data made, the composition built) that trains 784-256-128-10 for one epoch in each mode,
against its RSS just before learn(): the difference is what training costs above the data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

import mdfx as pnl
from bench.bench_train import sgd_loop

Params = dict[str, np.ndarray]  # trained matrices by projection name, (sender, receiver)

MODES = ["hand torch", "JAX", "mdfx PyTorch", "mdfx LLVMRun", "mdfx Python", "hand numpy", "C -O3"]
EXECUTION = {"mdfx PyTorch": "PyTorch", "mdfx LLVMRun": "LLVMRun", "mdfx Python": "Python"}


@dataclass
class SizeCase:
    """A network (nodes in topological order, projections), its data and learning rate."""

    name: str
    nodes: list[tuple[str, int, str]]  #: (name, size, "linear" | "logistic")
    edges: list[tuple[str, str, str]]  #: (projection name, sender, receiver)
    weights: Params  #: initial matrices, (sender size, receiver size)
    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    learning_rate: float
    epochs: int = 1
    small: bool = False
    c_net: Callable | None = field(default=None, repr=False)  #: a fresh graph for the C yardstick

    @property
    def trials(self) -> int:
        return len(next(iter(self.inputs.values()))) * self.epochs

    @property
    def flops_per_trial(self) -> float:
        """The work one trial needs: per weight matrix 2 FLOPs per entry forward and 2 for
        its gradient, plus 2 to carry the gradient back to its sender, which a projection
        from an input node does not need (no runner here computes it: torch, JAX and the
        compiled loop all skip a gradient nothing reads). Counting it would overstate
        every share of the peak (by 1.4x on 784-256-128-10)."""
        inputs = {name for name, _, _ in self.nodes if not self.incoming(name)}
        return sum((4.0 if sender in inputs else 6.0) * self.weights[p].size for p, sender, _ in self.edges)

    def incoming(self, node: str) -> list[tuple[str, str]]:
        return [(p, s) for p, s, r in self.edges if r == node]


def mlp(sizes: list[int], trials: int, seed: int = 0) -> SizeCase:
    rng = np.random.default_rng(seed)
    names = ["input"] + [f"hidden{i}" for i in range(1, len(sizes) - 1)] + ["output"]
    nodes = [(n, s, "linear" if i == 0 else "logistic") for i, (n, s) in enumerate(zip(names, sizes, strict=True))]
    edges = [(f"{a}->{b}", a, b) for a, b in zip(names, names[1:], strict=False)]
    weights = {p: rng.uniform(-0.5, 0.5, (sizes[i], sizes[i + 1])) for i, (p, _, _) in enumerate(edges)}
    x = rng.uniform(0, 1, (trials, sizes[0]))
    t = np.eye(sizes[-1])[rng.integers(0, sizes[-1], trials)]
    return SizeCase("-".join(map(str, sizes)), nodes, edges, weights, {"input": x}, {"output": t}, 0.1)


def small_cases(quick: bool) -> list[SizeCase]:
    from bench import networks

    cases = [networks.xor(epochs=50 if quick else 500), networks.digits(1, samples=500, epochs=1 if quick else 3),
             networks.semantic(epochs=5 if quick else 50)]
    out = []
    for case in cases:
        net = case.initial
        out.append(SizeCase(
            net.name, [(n.name, n.size, n.function) for n in net.mechanisms.nodes],
            [(p.name, p.sender, p.receiver) for p in net.mechanisms.projections],
            {p.name: net.params[p.name].value.copy() for p in net.mechanisms.projections}, case.inputs, case.targets,
            case.learning_rate, case.epochs, small=True, c_net=case.net))
    return out


def all_cases(quick: bool, nets: list[str] | None) -> list[SizeCase]:
    cases = [mlp([784, 256, 128, 10], 256 if quick else 1024), mlp([784, 1024, 1024, 10], 64 if quick else 256),
             *small_cases(quick)]
    return [c for c in cases if not nets or c.name in nets]


# --- the hand-written loops ----------------------------------------------------------------------


class Dag(nn.Module):
    """The case's network as one writes it in torch: a Linear per projection, summed, then Sigmoid."""

    def __init__(self, case: SizeCase) -> None:
        super().__init__()
        self.case = case
        self.layers = nn.ModuleList(nn.Linear(*case.weights[p].shape, bias=False) for p, _, _ in case.edges)
        self.index = {p: i for i, (p, _, _) in enumerate(case.edges)}
        self.inputs = list(case.inputs)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        values = dict(zip(self.inputs, xs, strict=True))
        for name, _, op in self.case.nodes:
            if name in values:
                continue
            net = sum(self.layers[self.index[p]](values[s]) for p, s in self.case.incoming(name))
            values[name] = torch.sigmoid(net) if op == "logistic" else net
        return values[self.case.nodes[-1][0]]


def hand_torch(case: SizeCase, mb: int, dtype: str) -> Params:
    model = Dag(case).to(getattr(torch, dtype))
    with torch.no_grad():
        for p, _, _ in case.edges:
            model.layers[model.index[p]].weight.copy_(torch.from_numpy(case.weights[p].T))
    xs = [torch.from_numpy(case.inputs[n].astype(dtype)) for n in case.inputs]
    target = torch.from_numpy(case.targets[case.nodes[-1][0]].astype(dtype))
    sgd_loop(model, xs, target, mb, case.learning_rate, case.epochs)
    return {p: model.layers[model.index[p]].weight.detach().numpy().T.astype(np.float64) for p, _, _ in case.edges}


def hand_numpy(case: SizeCase, mb: int, dtype: str) -> Params:
    w = {p: m.astype(dtype) for p, m in case.weights.items()}
    xs = {n: v.astype(dtype) for n, v in case.inputs.items()}
    out = case.nodes[-1][0]
    target = case.targets[out].astype(dtype)
    lr = np.asarray(case.learning_rate, dtype)
    n = len(target)
    for _ in range(case.epochs):
        for i in range(0, n, mb):
            y = {k: v[i:i + mb] for k, v in xs.items()}
            for name, _, op in case.nodes:
                if name not in y:
                    net = sum(y[s] @ w[p] for p, s in case.incoming(name))
                    y[name] = 1.0 / (1.0 + np.exp(-net)) if op == "logistic" else net
            t = target[i:i + mb]
            delta = {out: 2.0 * (y[out] - t) / t.size}
            grads = {}
            for name, _, op in reversed(case.nodes):
                if name not in delta:
                    continue
                d = delta[name] * y[name] * (1.0 - y[name]) if op == "logistic" else delta[name]
                for p, s in case.incoming(name):
                    grads[p] = y[s].T @ d
                    if case.incoming(s):
                        back = d @ w[p].T
                        delta[s] = delta[s] + back if s in delta else back
            for p, g in grads.items():
                w[p] -= lr * g
    return {p: m.astype(np.float64) for p, m in w.items()}


# --- mdfx through its public API -----------------------------------------------------------------


def composition(case: SizeCase) -> tuple[pnl.AutodiffComposition, dict, dict, dict]:
    """A fresh AutodiffComposition of the case; its inputs and targets by node; projections by name."""
    fns = {"linear": pnl.Linear, "logistic": pnl.Logistic}
    mechs = {n: pnl.TransferMechanism(input_shapes=size, function=fns[op], name=n) for n, size, op in case.nodes}
    comp = pnl.AutodiffComposition(learning_rate=case.learning_rate, optimizer_type="sgd",
                                   loss_spec=pnl.Loss.MSE, name=case.name)
    comp.add_nodes(list(mechs.values()))
    projs = {}
    for p, s, r in case.edges:
        proj = pnl.MappingProjection(matrix=case.weights[p].copy(), sender=mechs[s], receiver=mechs[r], name=p)
        comp.add_projection(proj, sender=mechs[s], receiver=mechs[r])
        projs[p] = proj
    inputs = {mechs[n]: v for n, v in case.inputs.items()}
    targets = {mechs[n]: v for n, v in case.targets.items()}
    return comp, inputs, targets, projs


def mdfx_mode(mode: str) -> Callable[[SizeCase, int, str], tuple[Params, float]]:
    def run(case: SizeCase, mb: int, dtype: str) -> tuple[Params, float]:
        comp, inputs, targets, projs = composition(case)
        start = time.perf_counter()
        comp.learn(inputs=inputs, targets=targets, epochs=case.epochs, minibatch_size=mb,
                   execution_mode=getattr(pnl.ExecutionMode, mode), dtype=dtype)
        seconds = time.perf_counter() - start
        return {p: np.asarray(proj.matrix, dtype=np.float64).copy() for p, proj in projs.items()}, seconds
    return run


def c_yardstick(case: SizeCase, mb: int, dtype: str) -> tuple[Params, float] | None:
    """The C yardstick (float64 only), or None where it cannot run."""
    if dtype != "float64":
        return None
    try:
        from bench import yardstick_c
        from mdfx.runners.training import LearnSpec
    except ImportError:
        return None
    if case.c_net is not None:
        net = case.c_net()
    else:
        from bench.networks import _net

        net = _net(case.name, case.nodes, [(s, r) for _, s, r in case.edges], seed=0)
        for p, _, _ in case.edges:
            net.params[p].value[...] = case.weights[p]
    spec = LearnSpec(case.inputs, case.targets, epochs=case.epochs, minibatch_size=mb,
                     learning_rate=case.learning_rate, loss="MSE", optimizer="sgd")
    result, seconds = yardstick_c.c_train(net, spec)
    return dict(result.params), seconds


def timed(fn: Callable[[SizeCase, int, str], Params]) -> Callable[[SizeCase, int, str], tuple[Params, float]]:
    def run(case: SizeCase, mb: int, dtype: str) -> tuple[Params, float]:
        start = time.perf_counter()
        params = fn(case, mb, dtype)
        return params, time.perf_counter() - start
    return run


def jax_column(case: SizeCase, mb: int, dtype: str) -> tuple[Params, float] | None:
    """The JAX yardstick, or None when jax is not installed (the note says so once)."""
    from bench import yardstick_jax

    if yardstick_jax.available() is not None:
        return None
    return yardstick_jax.jax_train(case, mb, dtype)


RUNNERS: dict[str, Callable] = {
    "hand torch": timed(hand_torch),
    "JAX": jax_column,
    "mdfx PyTorch": mdfx_mode("PyTorch"),
    "mdfx LLVMRun": mdfx_mode("LLVMRun"),
    "mdfx Python": mdfx_mode("Python"),
    "hand numpy": timed(hand_numpy),
    "C -O3": c_yardstick,
}


# --- measuring ---------------------------------------------------------------------------------------


def check(case: SizeCase, mb: int, dtype: str, label: str, got: Params, want: Params) -> None:
    for p, w in want.items():
        if dtype == "float64":
            np.testing.assert_allclose(got[p], w, rtol=1e-9, atol=1e-12,
                                       err_msg=f"{case.name} mb{mb} {dtype}: {label} trained {p!r} unlike hand torch")
        else:
            np.testing.assert_allclose(got[p], w, rtol=0, atol=2e-3 * np.max(np.abs(w)),
                                       err_msg=f"{case.name} mb{mb} {dtype}: {label} trained {p!r} unlike hand torch")


def measure(case: SizeCase, mb: int, dtype: str, modes: list[str], rounds: int) -> dict[str, float]:
    """Best seconds per trial of each mode over the rounds (after a checked warm-up run of each).

    The best, not the median: on a shared machine a run is only ever slowed (preempted),
    so the fastest of interleaved rounds is the closest to what the code does. A mode
    whose run is short runs several times per round.
    """
    want, _ = RUNNERS["hand torch"](case, mb, dtype)
    active, reps = [], {}
    for label in modes:
        out = RUNNERS[label](case, mb, dtype)
        if out is None:
            continue
        check(case, mb, dtype, label, out[0], want)
        active.append(label)
        # a run of a few milliseconds is repeated within each round (up to ~50 ms of it), so
        # one preemption on a busy machine does not decide a fast mode's figure
        reps[label] = int(min(max(0.05 / max(out[1], 1e-6), 1), 25))
    times: dict[str, list[float]] = {m: [] for m in active}
    for _ in range(rounds):
        for label in active:
            times[label] += [RUNNERS[label](case, mb, dtype)[1] for _ in range(reps[label])]
    return {m: float(np.min(v)) / case.trials for m, v in times.items()}


MEMORY_SCRIPT = r"""
import resource, sys
import numpy as np
import mdfx as pnl

def status_mb(field):  # VmRSS: resident now; VmHWM: this process image's peak
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":")) / 1024

mode, dtype, mb, trials = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sizes = [784, 256, 128, 10]
rng = np.random.default_rng(0)
x = rng.uniform(0, 1, (trials, sizes[0]))
t = np.eye(sizes[-1])[rng.integers(0, sizes[-1], trials)]
mechs = [pnl.TransferMechanism(input_shapes=s, function=pnl.Linear if i == 0 else pnl.Logistic, name=f"n{i}")
         for i, s in enumerate(sizes)]
comp = pnl.AutodiffComposition(learning_rate=0.1, name="mem")
path = [mechs[0]]
for i in range(1, len(sizes)):
    path += [rng.uniform(-0.5, 0.5, (sizes[i - 1], sizes[i])), mechs[i]]
comp.add_linear_processing_pathway(path)
before = status_mb("VmRSS")
comp.learn(inputs={mechs[0]: x}, targets={mechs[-1]: t}, epochs=1, minibatch_size=mb,
           execution_mode=getattr(pnl.ExecutionMode, mode), dtype=dtype)
# ru_maxrss would do on its own, but Linux carries it over from the parent through
# fork + exec (the benchmark's own, larger, RSS); VmHWM starts afresh with the image
peak = min(status_mb("VmHWM"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(before, peak, (x.nbytes + t.nbytes) / 2**20)
"""


def memory(mode: str, dtype: str, mb: int, trials: int = 2048) -> tuple[float, float, float]:
    """(RSS MB just before learn(), peak RSS MB, data MB) of a fresh process training 784-256-128-10.

    The process imports only numpy and mdfx (whatever learn() imports, torch or
    llvmlite, counts against it), makes the data and the composition, then learns.
    """
    done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, mode, dtype, str(mb), str(trials)], capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"memory run failed ({mode}):\n{done.stderr[-2000:]}")
    before, after, data = map(float, done.stdout.split()[-3:])
    return before, after, data


def set_threads(n: int) -> None:
    """torch's intra-op threads and numpy's OpenBLAS pool (which compiled BLAS calls share)."""
    from mdfx.converters.llvm import gemm
    from mdfx.errors import MdfxError

    torch.set_num_threads(n)
    if n == 1:
        from bench import yardstick_jax

        yardstick_jax.single_thread()
    try:
        gemm.set_threads(n)
    except MdfxError as e:  # another BLAS: numpy keeps its own (set OPENBLAS/OMP_NUM_THREADS)
        print(f"note: {e}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials and rounds: about a minute")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds, best taken (default 3)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure each row this many times: cells are the medians, ratios the medians "
                             "of each repeat's ratios (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    parser.add_argument("--nets", nargs="*", default=None, help="only these networks (by name)")
    parser.add_argument("--minibatch", type=int, nargs="*", default=[1, 32, 128])
    parser.add_argument("--dtype", nargs="*", default=["float64", "float32"])
    parser.add_argument("--modes", nargs="*", default=MODES, help=f"columns to run (default: {MODES})")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--json", default=None, help="also write the measurements to this file")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    set_threads(args.threads)
    import os

    from bench import yardstick_jax
    from bench.peak import blas_kernel, measured_peak

    if "JAX" in args.modes and yardstick_jax.available():
        print(f"note: {yardstick_jax.available()}", file=sys.stderr)
    measured = {d: measured_peak(d, args.threads) for d in args.dtype}
    peak = {d: m[0] for d, m in measured.items()}
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    rows = []
    # (case, mb, dtype, median seconds per trial by mode, each repeat's: ratios are taken within a run)
    for case in all_cases(args.quick, args.nets):
        for dtype in args.dtype:
            for mb in args.minibatch:
                per_epoch = len(next(iter(case.inputs.values())))
                if mb > per_epoch:
                    rows.append((case, mb, dtype, None, []))
                    continue
                runs = []
                for _ in range(args.repeat):
                    runs.append(measure(case, mb, dtype, args.modes, rounds))
                    print(f"# {case.name} mb{mb} {dtype}: " + ", ".join(
                        f"{m} {s * 1e6:.3g}" for m, s in runs[-1].items()), file=sys.stderr, flush=True)
                rows.append((case, mb, dtype, {m: float(np.median([r[m] for r in runs])) for m in runs[0]}, runs))
    print(f"torch {torch.__version__}, numpy {np.__version__}, {args.threads} thread(s); BLAS {blas_kernel()}; "
          f"env {env}; peak " + ", ".join(
              f"{d} {p / 1e9:.1f} GFLOP/s (" + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in measured[d][1].items()) + ")"
              for d, p in peak.items()) +
          f"; best of {rounds} interleaved round(s), median of {args.repeat} repeat(s); "
          "µs per trial · share of the peak\n")
    print("| network | mb | dtype | " + " | ".join(args.modes) + " | peak |")
    print("|---|---|---|" + "---|" * (len(args.modes) + 1))
    for case, mb, dtype, res, _ in rows:
        ideal = case.flops_per_trial / peak[dtype]
        if res is None:
            cells = ["n/a"] * len(args.modes)
        else:
            cells = [f"{res[m] * 1e6:.3g} · {ideal / res[m]:.0%}" if m in res else "–" for m in args.modes]
        print(f"| {case.name} | {mb} | {dtype} | " + " | ".join(cells) + f" | {ideal * 1e6:.3g} |")
    print("\nRatios (× hand torch; LLVMRun also × JAX, × C -O3 and × Python):\n")
    print("| network | mb | dtype | JAX | mdfx PyTorch | mdfx LLVMRun | LLVMRun / JAX | LLVMRun / C | LLVMRun / Python |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case, mb, dtype, res, runs in rows:
        if res is None or "hand torch" not in res:
            continue

        def ratio(a: str, b: str, runs: list = runs) -> str:
            if a not in runs[0] or b not in runs[0]:
                return "–"
            return f"{np.median([r[a] / r[b] for r in runs]):.2f}×"
        print(f"| {case.name} | {mb} | {dtype} | {ratio('JAX', 'hand torch')} | {ratio('mdfx PyTorch', 'hand torch')} | "
              f"{ratio('mdfx LLVMRun', 'hand torch')} | {ratio('mdfx LLVMRun', 'JAX')} | {ratio('mdfx LLVMRun', 'C -O3')} | "
              f"{ratio('mdfx LLVMRun', 'mdfx Python')} |")
    mem = []
    if not args.no_memory:
        print("\nPeak RSS training 784-256-128-10 (2048 trials, one epoch) in a fresh process, MB:\n")
        print("| mode | dtype | mb | RSS before learn() | peak RSS | peak - before | data |")
        print("|---|---|---|---|---|---|---|")
        for mode in ("LLVMRun", "PyTorch", "Python"):
            for mb in (1, 128):
                before, after, data = memory(mode, "float64", mb)
                mem.append((mode, mb, before, after, data))
                print(f"| {mode} | float64 | {mb} | {before:.0f} | {after:.0f} | {after - before:.0f} | {data:.1f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"peak": peak, "peak_sources": {d: m[1] for d, m in measured.items()},
                       "blas": blas_kernel(), "env": env, "threads": args.threads, "rows": [
                {"net": c.name, "mb": mb, "dtype": d, "us_per_trial": None if r is None else
                 {m: s * 1e6 for m, s in r.items()}, "peak_us": c.flops_per_trial / peak[d] * 1e6,
                 "repeats": [{m: s * 1e6 for m, s in run.items()} for run in runs]}
                for c, mb, d, r, runs in rows], "memory": mem}, fh, indent=1)


if __name__ == "__main__":
    main()
