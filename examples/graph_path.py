"""The internal path in one page: build an op graph, print it, run it in every backend, compare.

Read top to bottom. Every source (a Composition, an ONNX file, a torch module, MDF) ends up
as the Graph built below, and every backend walks it with its own rule per op:

    .venv/bin/python examples/graph_path.py
"""

import numpy as np

from mdfx.runners import compare, llvm, reference, torch
from mdfx.runners.training import LearnSpec, train_reference
from mdfx.schema.graph import Graph, Node, Param

# 1. A graph: two inputs per sample, a 2-4-1 MLP with a tanh hidden layer and a bias.
rng = np.random.default_rng(0)
graph = Graph.build(
    "mlp",
    inputs={"x": (2,)},  # feature shape; the batch axis is implicit
    params=[Param("w1", rng.uniform(-1, 1, (2, 4))), Param("b1", np.zeros(4)),
            Param("w2", rng.uniform(-1, 1, (4, 1)))],
    nodes=[Node("l1", "MatMul", ["x", "w1"], "h"),
           Node("l1_bias", "Add", ["h", "b1"], "hb"),
           Node("act", "Tanh", ["hb"], "a"),
           Node("l2", "MatMul", ["a", "w2"], "y")],
    outputs=["y"],
)

# 2. It prints itself: params with shapes and dtypes, then one line per op.
print(graph, end="\n\n")

# 3. The numpy reference is the spec; LLVM and torch must agree with it.
x = rng.uniform(-1, 1, (8, 2))
ref = reference.run(graph, {"x": x})["y"]
compiled = llvm.run(graph, {"x": x})["y"]
with_torch = torch.run(graph, {"x": x})["y"]
for name, out in (("llvm", compiled), ("torch", with_torch)):
    print(f"{name:6s} max |diff| from the reference: {np.max(np.abs(out - ref)):.2e}")

# 4. Training: one plan (LearnSpec), three backends, the same weights afterwards.
xor_x = np.array([[0.0, 0], [0, 1], [1, 0], [1, 1]])
xor_t = np.array([[0.0], [1], [1], [0]])
spec = LearnSpec(inputs={"x": xor_x}, targets={"y": xor_t}, epochs=200, learning_rate=0.1)
trained = {}
for name, train in (("python", train_reference), ("llvm", llvm.train), ("torch", torch.train)):
    g = graph.copy()  # each backend trains its own copy of the initial weights
    result = train(g, spec)
    trained[name] = g.params["w2"].value
    print(f"{name:6s} final loss {result.losses[-1]:.3e}")
for name in ("llvm", "torch"):
    print(f"{name:6s} trained w2 max |diff| from python's: {np.max(np.abs(trained[name] - trained['python'])):.2e}")

# 5. The table `mdfx validate` prints: every runner installed, against the reference.
print()
print(compare.format_table(compare.validate(graph, trials=16)))
