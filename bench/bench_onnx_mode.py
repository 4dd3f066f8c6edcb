"""Per-call cost of ``run(execution_mode=ExecutionMode.ONNX)`` on 784-256-128-10 (one trial).

Run from the repository root::

    .venv/bin/python -m bench.bench_onnx_mode [--calls N] [--rounds R]

Columns, all in ms per call, the best of ``rounds`` interleaved rounds:

* ``run() ONNX mode``: the composition's run(), which reuses one onnxruntime
  session per graph structure and feeds it the current weights;
* ``session, fed weights``: that session's own run() alone (the floor of this design);
* ``session, baked weights``: a session of the same export with the weights as
  initializers (what a session rebuilt after every weight change would cost per call);
* ``export + session per call``: what ONNX mode did before the graph (an export and a
  new session at every call).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import mdfx as pnl


def mlp(seed: int = 0) -> tuple[pnl.AutodiffComposition, dict]:
    rng = np.random.default_rng(seed)
    sizes = [784, 256, 128, 10]
    mechs = [pnl.TransferMechanism(size=s, function=pnl.Logistic if i else pnl.Linear, name=f"l{i}")
             for i, s in enumerate(sizes)]
    path: list = []
    for i, m in enumerate(mechs):
        path.append(m)
        if i < len(mechs) - 1:
            path.append(rng.uniform(-0.1, 0.1, (sizes[i], sizes[i + 1])))
    comp = pnl.AutodiffComposition(name="mlp")
    comp.add_linear_processing_pathway(path)
    return comp, {mechs[0]: rng.uniform(size=(1, 784))}


def per_call(fn: Callable[[], object], calls: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import onnxruntime as rt

    from mdfx.converters.onnx_export import export_for_session, to_onnx

    comp, x = mlp()
    graph = comp._graph()
    arrays = {"l0": next(iter(x.values()))}
    fed, (ins, params, outs) = export_for_session(graph, "float64")
    quiet = rt.SessionOptions()
    quiet.log_severity_level = 3  # the fed weights are overridable initializers on purpose
    s_fed = rt.InferenceSession(fed.SerializeToString(), sess_options=quiet, providers=["CPUExecutionProvider"])
    feed = {ins["l0"]: arrays["l0"], **{params[k]: graph.params[k].value for k in params}}
    baked = to_onnx(graph, dtype="float64")
    s_baked = rt.InferenceSession(baked.SerializeToString(), providers=["CPUExecutionProvider"])
    in_name = s_baked.get_inputs()[0].name

    def rebuild() -> object:
        s = rt.InferenceSession(to_onnx(graph, dtype="float64").SerializeToString(),
                                providers=["CPUExecutionProvider"])
        return s.run(None, {in_name: arrays["l0"]})

    cases: dict[str, tuple[Callable[[], object], int]] = {
        "run() ONNX mode": (lambda: comp.run(inputs=x, execution_mode=pnl.ExecutionMode.ONNX), args.calls),
        "session, fed weights": (lambda: s_fed.run(list(outs.values()), feed), args.calls),
        "session, baked weights": (lambda: s_baked.run(None, {in_name: arrays["l0"]}), args.calls),
        "export + session per call": (rebuild, max(args.calls // 10, 3)),
    }
    best = {k: float("inf") for k in cases}
    for _ in range(args.rounds):
        for k, (fn, calls) in cases.items():
            best[k] = min(best[k], per_call(fn, calls))
    width = max(map(len, cases))
    print(f"{'784-256-128-10, one trial, float64':<{width}}  ms/call")
    for k, v in best.items():
        print(f"{k:<{width}}  {v:.3f}")


if __name__ == "__main__":
    main()
