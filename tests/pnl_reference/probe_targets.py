"""Internal targets in PsyNeuLink 0.21 (PyTorch mode): the numbers tests/test_pnl_targets.py asserts.

Run in a PsyNeuLink 0.21 environment (not part of the suite):
    /tmp/pnlvenv/bin/python tests/pnl_reference/probe_targets.py
"""

import warnings

import numpy as np
import psyneulink as pnl

warnings.simplefilter("ignore")
PM, MP = pnl.ProcessingMechanism, pnl.MappingProjection
TORCH = pnl.ExecutionMode.PyTorch


def names(nodes: list) -> list[str]:
    return [n.name for n in nodes]


# 1. sample S, internal target T (Logistic, a learnable projection into it); 2 epochs
for mb in [1, 2]:
    x, s = PM(name="X", input_shapes=2), PM(name="S", input_shapes=2)
    t = PM(name="T", input_shapes=2, function=pnl.Logistic())
    ws = MP(sender=x, receiver=s, matrix=np.array([[1.0, 0.5], [0.2, 0.3]]))
    wt = MP(sender=x, receiver=t, matrix=np.array([[0.4, 0.1], [0.7, 0.9]]))
    c = pnl.AutodiffComposition(pathways=[[x, ws, s], [x, wt, t]], targets=[(s, t)], learning_rate=0.1)
    r = c.learn(inputs={x: [[1.0, 2.0], [0.5, -1.0]]}, epochs=2, minibatch_size=mb, execution_mode=TORCH)
    print("case1 minibatch", mb, "result", r.tolist(), "ws", ws.parameters.matrix.get(c).tolist(),
          "wt", wt.parameters.matrix.get(c).tolist(), "losses", [v[0] for v in c.torch_losses],
          "OUTPUT", names(c.get_nodes_by_role(pnl.NodeRole.OUTPUT)), "results", len(c.results))

# 2. an INTERNAL sample B (A -> B -> C) with an internal target T2; C on an external TARGET
a, b, cc, tt = PM(name="A2"), PM(name="B2"), PM(name="C2"), PM(name="T2")
c = pnl.AutodiffComposition(pathways=[[a, b, cc], tt], targets={b: tt, cc: pnl.TARGET}, learning_rate=0.5)
r = c.learn(inputs={a: [[1.0], [2.0]], tt: [[3.0], [-1.0]]}, targets={cc: [[2.0], [0.5]]}, execution_mode=TORCH)
print("case2 result", r.tolist(), [p.parameters.matrix.get(c).tolist() for p in c.projections
                                   if p.name.startswith("MappingProjection from") and "LOSS" not in p.name
                                   and "TARGET" not in p.name],
      "losses", [v[0] for v in c.torch_losses], "OUTPUT", names(c.get_nodes_by_role(pnl.NodeRole.OUTPUT)),
      "results", [[v.tolist() for v in row] for row in c.results])
print("case2 loss/target/sample", names(c.loss_mechanisms), names(c.target_mechanisms), names(c.sample_mechanisms))

# 3. one trial of targets for two trials of inputs (default targets)
a, b = pnl.TransferMechanism(name="A3"), pnl.TransferMechanism(name="B3")
c = pnl.AutodiffComposition([a, b])
r = c.learn(inputs={a: [[1], [2]]}, targets={b: [[0.5]]}, epochs=3, execution_mode=TORCH)
print("case3 result", r.tolist(), "losses", [v[0] for v in c.torch_losses])

# 4. each LossMechanism's value: its pair's loss on the last minibatch (3 trials, minibatch 2, 2 epochs)
n = {k: PM(name=k + "4") for k in ["a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4"]}
c = pnl.AutodiffComposition(pathways=[[n[f"a{i}"], n[f"b{i}"]] for i in range(1, 5)], learning_rate=0.1,
                            targets={n["b1"]: n["a2"], n["b2"].output_port: n["a4"], n["b3"]: n["a4"],
                                     n["b4"]: pnl.TARGET})
c.learn(inputs={n["a1"]: [[1], [2], [3]], n["a2"]: [[2], [1], [0]], n["a3"]: [[3], [3], [3]], n["a4"]: [[4], [1], [2]]},
        targets={n["b4"]: [[9], [1], [5]]}, minibatch_size=2, epochs=2, execution_mode=TORCH)
print("case4 values", [m.parameters.value.get(c).tolist() for m in c.loss_mechanisms],
      "losses", [v[0] for v in c.torch_losses])

# 5. Adam, minibatch 2, 3 epochs: an internal Logistic sample B (A -> B -> C) with target T, C on TARGET
a, b = PM(name="A5", input_shapes=2), PM(name="B5", input_shapes=3, function=pnl.Logistic())
cc, tt = PM(name="C5", input_shapes=2), PM(name="T5", input_shapes=3)
w1 = MP(sender=a, receiver=b, matrix=np.arange(6.0).reshape(2, 3) / 10)
w2 = MP(sender=b, receiver=cc, matrix=np.arange(6.0).reshape(3, 2) / 7)
c = pnl.AutodiffComposition(pathways=[[a, w1, b, w2, cc], tt], targets={b: tt, cc: pnl.TARGET}, learning_rate=0.3,
                            optimizer_type="adam")
c.learn(inputs={a: [[1.0, 0], [2.0, 1], [0, 1]], tt: [[3.0, 0, 1], [-1.0, 1, 1], [0, 0, 0]]},
        targets={cc: [[2.0, 1], [0.5, 0], [1, 1]]}, minibatch_size=2, epochs=3, execution_mode=TORCH)
print("case5 w1", w1.parameters.matrix.get(c).tolist(), "w2", w2.parameters.matrix.get(c).tolist(),
      "losses", [v[0] for v in c.torch_losses])
