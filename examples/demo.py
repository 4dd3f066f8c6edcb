"""The end-to-end demo (`bash run.sh demo`): one network through every part of mdfx.

1. build XOR 2-10-1 with PsyNeuLink's API (``import mdfx as pnl``);
2. save it as MDF (JSON and YAML) and read it back, exactly;
3. train it from the same weights with numpy (Python), PyTorch and LLVM;
4. export the trained weights as a torch state_dict and as ONNX;
5. check inference in every runner against the numpy reference, one table;
6. import the ONNX file back and keep training it.

Files go to ./out/demo (or the folder given as the first argument).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import mdfx as pnl
from mdfx.runners import compare

sys.path.insert(0, str(Path(__file__).resolve().parent))
from xor import build  # noqa: E402 - the example next to this file


def step(title: str) -> None:
    print(f"\n== {title} ==")


def main(outdir: Path) -> int:
    outdir.mkdir(parents=True, exist_ok=True)

    step("1. build XOR 2-10-1 (logistic) with the PsyNeuLink API")
    xor, inputs, targets = build(seed=0)
    for node in xor.nodes:
        print(f"  {node.name}: size {node.size}, {node.function!r}")

    step("2. MDF round trip (JSON and YAML)")
    for suffix in (".json", ".yaml"):
        path = pnl.save(xor, outdir / f"xor_untrained{suffix}")
        back = pnl.load(path)
        exact = all(a.matrix.tobytes() == b.matrix.tobytes() for a, b in zip(xor.projections, back.projections, strict=True))
        print(f"  wrote {path}; read back bit-exact: {exact}")
        if not exact:
            return 1

    step("3. train 500 epochs from the same weights in each mode")
    trained = {}
    for mode in (pnl.ExecutionMode.Python, pnl.ExecutionMode.PyTorch, pnl.ExecutionMode.LLVMRun):
        comp, x, t = build(seed=0)
        start = time.perf_counter()
        try:
            comp.learn(inputs=x, targets=t, epochs=500, execution_mode=mode)
        except (ImportError, pnl.MdfxError) as exc:
            print(f"  {mode.name:8s} skipped: {exc}")
            continue
        seconds = time.perf_counter() - start
        trained[mode.name] = comp
        print(f"  {mode.name:8s} loss {comp.losses[0]:.4f} -> {comp.losses[-1]:.4f} in {seconds:.2f} s")
    ref = trained["Python"].projections[0].matrix
    for name, comp in trained.items():
        diff = np.max(np.abs(comp.projections[0].matrix - ref) / np.maximum(np.abs(ref), 1e-300))
        print(f"  {name:8s} max rel diff of trained weights vs Python mode: {diff:.1e}")
    xor = trained["PyTorch"]
    xor.run(inputs=inputs)
    print("  XOR outputs:", np.round([r[0][0] for r in xor.results[-4:]], 3))

    step("4. export trained weights")
    for name in ("xor_trained.pt", "xor_trained.onnx", "xor_trained.json"):
        print(f"  wrote {pnl.save(xor, outdir / name)}")

    step("5. every runner against the numpy reference")
    rows = compare.validate(xor._graph(), trials=16, seed=0)
    print(compare.format_table(rows))
    if not all(r.ok for r in rows):
        print("a runner disagrees with the reference")
        return 1

    step("6. import the ONNX file and keep training it")
    imported = pnl.load(outdir / "xor_trained.onnx")  # an op graph with the file's names and layouts
    print("  " + str(imported.graph).replace("\n", "\n  "))
    print(f"  learnable params: {', '.join(imported.graph.learnable())}")
    # The ONNX graph's input and output are named after the original nodes.
    x = {"xor_in": next(iter(inputs.values()))}
    t = {"xor_out": next(iter(targets.values()))}
    imported.learning_rate = 0.5
    imported.learn(inputs=x, targets=t, epochs=200)
    print(f"  loss {imported.losses[0]:.5f} -> {imported.losses[-1]:.5f}")
    print(f"  wrote {pnl.save(imported, outdir / 'xor_retrained.onnx')}")
    print("\ndemo finished")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out") / "demo"))
