"""XOR, 2-10-1 logistic: build, train in every mode, save, reload, export.

Run: .venv/bin/python examples/xor.py [outdir]
"""

import sys
from pathlib import Path

import numpy as np

import mdfx as pnl


def build(seed: int = 0) -> tuple[pnl.AutodiffComposition, dict, dict]:
    rng = np.random.default_rng(seed)
    xor_in = pnl.TransferMechanism(input_shapes=2, function=pnl.Linear, name="xor_in")
    xor_hid = pnl.TransferMechanism(input_shapes=10, function=pnl.Logistic, name="xor_hid")
    xor_out = pnl.TransferMechanism(input_shapes=1, function=pnl.Logistic, name="xor_out")
    in_to_hid = pnl.MappingProjection(matrix=rng.uniform(-1, 1, (2, 10)), sender=xor_in, receiver=xor_hid,
                                      name="in_to_hid")
    hid_to_out = pnl.MappingProjection(matrix=rng.uniform(-1, 1, (10, 1)), sender=xor_hid, receiver=xor_out,
                                       name="hid_to_out")
    xor = pnl.AutodiffComposition(learning_rate=0.5, name="xor")
    xor.add_linear_processing_pathway([xor_in, in_to_hid, xor_hid, hid_to_out, xor_out])
    inputs = {xor_in: [[0, 0], [0, 1], [1, 0], [1, 1]]}
    targets = {xor_out: [[0], [1], [1], [0]]}
    return xor, inputs, targets


def main(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    xor, inputs, targets = build()
    xor.learn(inputs=inputs, targets=targets, epochs=1000, execution_mode=pnl.ExecutionMode.PyTorch)
    xor.run(inputs=inputs)
    print("XOR after 1000 epochs:", np.round([r[0][0] for r in xor.results[-4:]], 3))
    print("final loss:", xor.losses[-1])
    print("wrote", pnl.save(xor, outdir / "xor_trained.json"))
    print("wrote", pnl.save(xor, outdir / "xor_trained.onnx"))
    print("wrote", pnl.save(xor, outdir / "xor_trained.pt"))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out"))
