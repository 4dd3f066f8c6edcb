"""Training benchmark: mdfx's modes against hand-written yardsticks, in one table.

Run from the repository root::

    .venv/bin/python -m bench.bench_train            # full run
    .venv/bin/python -m bench.bench_train --quick    # a smoke run, seconds

Each mode trains a fresh copy of a :mod:`bench.networks` case from the same
initial weights, timed from the initial graph to the trained weights (building
the module or model and moving the data are included, for every mode alike):

* ``mdfx torch``: :func:`mdfx.runners.torch.train`, float64 on the CPU;
* ``hand torch``: the idiomatic loop -- ``nn.Linear(bias=False)`` layers,
  ``optim.SGD``, ``nn.MSELoss``, ``zero_grad / backward / step``, minibatches as
  views of the data tensors, ``loss.item()`` per minibatch -- the 1.00x column;
* ``hand numpy``: the same forward, backward and SGD step written out in numpy;
* ``mdfx python``: :func:`mdfx.runners.training.train_reference` (the spec);
* ``mdfx llvm`` / ``C -O3``: pluggable -- included when ``mdfx.runners.llvm``
  and ``bench.yardstick_c`` import and provide ``train(net, spec)`` (returning a
  LearnResult, or None after training ``net`` in place);
* ``PsyNeuLink torch``: AutodiffComposition.learn(ExecutionMode.PyTorch), in a
  subprocess with another interpreter (``--pnl-python``, default
  /work/pnlvenv/bin/python), skipped when that does not import psyneulink.

In-process modes are measured interleaved: each round runs every mode once
per case; the table shows the median round. PsyNeuLink runs in its own
process (after a warm-up learn()), with fewer rounds: it is a hundred
times slower; its learn() is timed from a built composition. Before timing, every mode's trained weights
are checked against the hand-written torch loop's, so all modes do the same work.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.networks import BenchCase, cases
from mdfx.runners import torch as torch_runner
from mdfx.runners.training import train_reference

Params = dict[str, np.ndarray]  # trained matrices by projection name
Mode = Callable[[BenchCase], Params]

#: How close every mode's trained weights must be to the hand-written torch loop's.
WEIGHT_TOL = dict(rtol=1e-8, atol=1e-10)


# --- the hand-written yardsticks ------------------------------------------------------------


class Semantic(nn.Module):
    """The semantic net, as one would write it by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.item_rep = nn.Linear(8, 8, bias=False)
        self.rep_hidden = nn.Linear(8, 15, bias=False)
        self.rel_hidden = nn.Linear(4, 15, bias=False)
        self.hidden_attr = nn.Linear(15, 36, bias=False)

    def forward(self, item: torch.Tensor, relation: torch.Tensor) -> torch.Tensor:
        rep = torch.sigmoid(self.item_rep(item))
        hidden = torch.sigmoid(self.rep_hidden(rep) + self.rel_hidden(relation))
        return torch.sigmoid(self.hidden_attr(hidden))


def _linears(case: BenchCase) -> tuple[nn.Module, dict[str, nn.Linear]]:
    """The hand-written model of a case and its layers by projection name."""
    net = case.initial
    if net.name == "semantic":
        model = Semantic()
        layers = {"item->representation": model.item_rep, "representation->hidden": model.rep_hidden,
                  "relation->hidden": model.rel_hidden, "hidden->attributes": model.hidden_attr}
    else:  # input -> hidden -> output, logistic
        (p1, m1), (p2, m2) = [(p.name, net.params[p.name].value) for p in net.mechanisms.projections]
        first, second = nn.Linear(*m1.shape, bias=False), nn.Linear(*m2.shape, bias=False)
        model = nn.Sequential(first, nn.Sigmoid(), second, nn.Sigmoid())
        layers = {p1: first, p2: second}
    model = model.double()
    with torch.no_grad():
        for name, layer in layers.items():
            layer.weight.copy_(torch.from_numpy(net.params[name].value.T))
    return model, layers


def sgd_loop(model: nn.Module, xs: list[torch.Tensor], target: torch.Tensor, minibatch_size: int,
             learning_rate: float, epochs: int) -> list[float]:
    """The idiomatic torch training loop every bench times as "hand torch": SGD, MSE, minibatches
    in order, each step's loss read back. Returns the losses."""
    batches = list(zip(*(x.split(minibatch_size) for x in xs), target.split(minibatch_size), strict=True))
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    loss_fn = nn.MSELoss()
    losses = []
    for _ in range(epochs):
        for *x, t in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(*x), t)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def hand_torch(case: BenchCase) -> Params:
    model, layers = _linears(case)
    xs = [torch.from_numpy(case.inputs[name]) for name in case.initial.inputs]
    target = torch.from_numpy(case.targets[case.initial.outputs[0]])
    sgd_loop(model, xs, target, case.minibatch_size, case.learning_rate, case.epochs)
    return {name: layer.weight.detach().numpy().T.copy() for name, layer in layers.items()}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def hand_numpy(case: BenchCase) -> Params:
    net, lr, mb = case.initial, case.learning_rate, case.minibatch_size
    w = {p.name: net.params[p.name].value.copy() for p in net.mechanisms.projections}
    n = len(next(iter(case.inputs.values())))
    target = case.targets[net.outputs[0]]
    losses = []
    for _ in range(case.epochs):
        for i in range(0, n, mb):
            t = target[i:i + mb]
            if net.name == "semantic":
                item, rel = case.inputs["item"][i:i + mb], case.inputs["relation"][i:i + mb]
                rep = _sigmoid(item @ w["item->representation"])
                hid = _sigmoid(rep @ w["representation->hidden"] + rel @ w["relation->hidden"])
                y = _sigmoid(hid @ w["hidden->attributes"])
                d_y = 2.0 * (y - t) / y.size * y * (1.0 - y)
                d_hid = d_y @ w["hidden->attributes"].T * hid * (1.0 - hid)
                d_rep = d_hid @ w["representation->hidden"].T * rep * (1.0 - rep)
                grads = {"hidden->attributes": hid.T @ d_y, "representation->hidden": rep.T @ d_hid,
                         "relation->hidden": rel.T @ d_hid, "item->representation": item.T @ d_rep}
            else:
                (n1, w1), (n2, w2) = w.items()
                x = case.inputs[net.inputs[0]][i:i + mb]
                h = _sigmoid(x @ w1)
                y = _sigmoid(h @ w2)
                d_y = 2.0 * (y - t) / y.size * y * (1.0 - y)
                d_h = d_y @ w2.T * h * (1.0 - h)
                grads = {n2: h.T @ d_y, n1: x.T @ d_h}
            losses.append(float(np.mean((y - t) ** 2)))
            for name, g in grads.items():
                w[name] -= lr * g
    return w


# --- mdfx's modes and the pluggable ones ----------------------------------------------------


def mdfx_torch(case: BenchCase) -> Params:
    return torch_runner.train(case.net(), case.spec()).params


def mdfx_python(case: BenchCase) -> Params:
    return train_reference(case.net(), case.spec()).params


def _pluggable(module_name: str) -> Mode | None:
    """``train(net, spec)`` of an optional module as a Mode, or None when it is not there."""
    try:
        train = importlib.import_module(module_name).train
    except (ImportError, AttributeError):
        return None

    def mode(case: BenchCase) -> Params:
        net = case.net()
        result = train(net, case.spec())
        params = getattr(result, "params", None)
        return params if params is not None else {p.name: net.params[p.name].value for p in net.mechanisms.projections}
    return mode


def modes() -> dict[str, Mode]:
    found: dict[str, Mode] = {"hand torch": hand_torch, "mdfx torch": mdfx_torch}
    for label, module in (("mdfx llvm", "mdfx.runners.llvm"), ("C -O3", "bench.yardstick_c")):
        mode = _pluggable(module)
        if mode is not None:
            found[label] = mode
    found.update({"hand numpy": hand_numpy, "mdfx python": mdfx_python})
    return found


# --- PsyNeuLink, in its own interpreter -----------------------------------------------------

PNL_SCRIPT = r"""
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
import psyneulink as pnl

job = json.load(open(sys.argv[1]))
data = np.load(sys.argv[2])
FUNCTIONS = {"linear": pnl.Linear, "logistic": pnl.Logistic}

def build():
    mechs = {n: pnl.TransferMechanism(name=n, input_shapes=size, function=FUNCTIONS[op]())
             for n, size, op in job["nodes"]}
    comp = pnl.AutodiffComposition(learning_rate=job["lr"], optimizer_type="sgd", loss_spec=pnl.Loss.MSE)
    comp.add_nodes(list(mechs.values()))
    projs = {}
    for name, s, r in job["edges"]:
        p = pnl.MappingProjection(name=name, matrix=data["w:" + name].copy(), sender=mechs[s], receiver=mechs[r])
        comp.add_projection(p, sender=mechs[s], receiver=mechs[r])
        projs[name] = p
    return comp, mechs, projs

MODE = getattr(pnl.ExecutionMode, job["mode"])

def learn(epochs, built=None):
    comp, mechs, projs = built or build()
    inputs = {mechs[n]: data["x:" + n] for n in job["inputs"]}
    targets = {mechs[n]: data["t:" + n] for n in job["outputs"]}
    start = time.perf_counter()
    comp.learn(inputs={"inputs": inputs, "targets": targets, "epochs": epochs},
               minibatch_size=job["mb"], execution_mode=MODE)
    seconds = time.perf_counter() - start
    return seconds, {n: np.asarray(p.parameters.matrix.get(comp)).tolist() for n, p in projs.items()}

# LLVMRun compiles per composition: time learn() on a composition already compiled
# (its weights then start from the warm-up's, so they are not compared).
built = build() if job["mode"] == "LLVMRun" else None
first, _ = learn(1, built)  # warm-up: first-use costs of psyneulink and torch, or compilation
times, weights = [], None
for _ in range(job["rounds"]):
    seconds, weights = learn(job["epochs"], built)
    times.append(seconds)
print(json.dumps({"seconds": float(np.median(times)), "weights": weights, "first": first}))
"""


def pnl_python(path: str) -> str | None:
    """The interpreter to run PsyNeuLink with, or None when it cannot import psyneulink."""
    if not Path(path).exists():
        return None
    probe = subprocess.run([path, "-c", "import psyneulink"], capture_output=True, timeout=300)
    return path if probe.returncode == 0 else None


def pnl_train(python: str, case: BenchCase, rounds: int, mode: str = "PyTorch") -> tuple[float, Params]:
    """Median seconds of PsyNeuLink's learn() of the case in ``mode``, and its trained weights."""
    net = case.initial
    job = {"nodes": [(n.name, n.size, n.function) for n in net.mechanisms.nodes],
           "edges": [(p.name, p.sender, p.receiver) for p in net.mechanisms.projections],
           "inputs": list(net.mechanisms.inputs), "outputs": list(net.mechanisms.outputs), "lr": case.learning_rate,
           "mb": case.minibatch_size, "epochs": case.epochs, "rounds": rounds, "mode": mode}
    arrays = {f"w:{p.name}": net.params[p.name].value for p in net.mechanisms.projections}
    arrays.update({f"x:{k}": v for k, v in case.inputs.items()})
    arrays.update({f"t:{k}": v for k, v in case.targets.items()})
    with tempfile.TemporaryDirectory() as tmp:
        job_path, data_path = os.path.join(tmp, "job.json"), os.path.join(tmp, "data.npz")
        Path(job_path).write_text(json.dumps(job))
        np.savez(data_path, **arrays)
        done = subprocess.run([python, "-c", PNL_SCRIPT, job_path, data_path], capture_output=True,
                              text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"PsyNeuLink run failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out["seconds"], {k: np.array(v) for k, v in out["weights"].items()}


# --- measuring and the table ----------------------------------------------------------------


def check_weights(label: str, case: BenchCase, got: Params, want: Params, tol: dict[str, float]) -> None:
    for name, w in want.items():
        np.testing.assert_allclose(np.asarray(got[name]).reshape(w.shape), w, **tol,
                                   err_msg=f"{case.name}: {label} trained {name!r} unlike the hand torch loop")


def measure(all_cases: list[BenchCase], found: dict[str, Mode], rounds: int) -> dict[tuple[str, str], float]:
    """Median seconds per (case, mode), the modes interleaved round by round."""
    times: dict[tuple[str, str], list[float]] = {(c.name, m): [] for c in all_cases for m in found}
    for _ in range(rounds):
        for case in all_cases:
            for label, mode in found.items():
                start = time.perf_counter()
                mode(case)
                times[case.name, label].append(time.perf_counter() - start)
    return {key: float(np.median(v)) for key, v in times.items()}


def table(rows: list[tuple[str, int, str, float, float]]) -> str:
    head = ("network", "minibatch", "mode", "µs/trial", "× hand torch")
    lines = [f"{head[0]:<12} {head[1]:>9}  {head[2]:<18} {head[3]:>10} {head[4]:>13}"]
    lines.append("-" * len(lines[0]))
    for net, mb, mode, us, ratio in rows:
        lines.append(f"{net:<12} {mb:>9}  {mode:<18} {us:>10.3g} {ratio:>12.3g}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and rounds: a smoke run")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (median taken)")
    parser.add_argument("--pnl-python", default="/work/pnlvenv/bin/python",
                        help="an interpreter with psyneulink; PsyNeuLink is skipped if it is absent")
    parser.add_argument("--no-pnl", action="store_true", help="skip PsyNeuLink")
    parser.add_argument("--no-pnl-llvm", action="store_true", help="skip PsyNeuLink's LLVMRun (slow to compile)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: these layers are too small to gain from more, "
                             "and a busy machine makes extra threads noisy)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 7)
    torch.set_num_threads(args.threads)
    all_cases = cases(quick=args.quick)
    found = modes()

    for case in all_cases:  # the same work for every mode (and a warm-up)
        want = hand_torch(case)
        for label, mode in found.items():
            check_weights(label, case, mode(case), want, WEIGHT_TOL)
    seconds = measure(all_cases, found, rounds)
    pnl = None if args.no_pnl else pnl_python(args.pnl_python)
    notes: list[str] = []
    for case in all_cases if pnl else []:
        sec, weights = pnl_train(pnl, case, rounds=1 if args.quick else 3)
        seconds[case.name, "PsyNeuLink torch"] = sec
        try:
            check_weights("PsyNeuLink", case, weights, hand_torch(case), WEIGHT_TOL)
        except AssertionError as e:  # reported, not fatal: PsyNeuLink is the target to match, not ours
            notes.append(f"note: {str(e).strip().splitlines()[0]}")
        if not args.no_pnl_llvm:
            try:
                seconds[case.name, "PsyNeuLink LLVMRun"], _ = pnl_train(pnl, case, rounds=1 if args.quick else 3,
                                                                        mode="LLVMRun")
            except RuntimeError as e:  # PsyNeuLink's compiler fails on some networks: report, go on
                notes.append(f"note: PsyNeuLink LLVMRun failed on {case.name}: "
                             f"{str(e).strip().splitlines()[-1]}")

    rows = []
    for case in all_cases:
        base = seconds[case.name, "hand torch"]
        labels = [m for m in [*found, "PsyNeuLink torch", "PsyNeuLink LLVMRun"] if (case.name, m) in seconds]
        for label in labels:
            s = seconds[case.name, label]
            rows.append((case.name.split()[0], case.minibatch_size, label, s / case.trials * 1e6, s / base))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}, "
          f"python {sys.version.split()[0]}; median of {rounds} interleaved rounds"
          + ("" if pnl else "; PsyNeuLink: not available (skipped)"))
    print(table(rows))
    print("\n".join(notes))


if __name__ == "__main__":
    main()
