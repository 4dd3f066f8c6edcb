"""PsyNeuLink 0.21's Normalize transfer function: defaults, direct calls and learning through it,
the numbers tests/test_pnl_normalize.py asserts. Not part of the suite:

    /tmp/pnlvenv/bin/python tests/pnl_reference/probe_normalize.py
"""

import json
import warnings

import numpy as np

warnings.simplefilter("ignore")
import psyneulink as pnl  # noqa: E402

f = pnl.Normalize()
out: dict[str, object] = {"defaults": {"eps": float(f.parameters.eps.get()), "per_item": bool(f.parameters.per_item.get())}}
calls = {}
for name, x, eps, per_item in [("vec", [3.0, 4.0], 1e-12, True), ("zero", [0.0, 0.0], 1e-3, True),
                               ("clamped", [3e-4, 4e-4], 1e-3, True),
                               ("rows", [[3.0, 4.0], [3e-4, 4e-4]], 1e-3, True),
                               ("global", [[3.0, 4.0], [3e-4, 4e-4]], 1e-3, False)]:
    g = pnl.Normalize(default_variable=x, eps=eps, per_item=per_item)
    calls[name] = {"x": x, "eps": eps, "per_item": per_item, "y": np.asarray(g(np.array(x))).tolist()}
out["calls"] = calls

learn = {}
for per_item in (True, False):
    for mb in (1, 2):
        for mode in ("Python", "PyTorch", "LLVMRun"):
            a = pnl.TransferMechanism(input_shapes=2, function=pnl.Normalize(eps=1e-3, per_item=per_item), name="A")
            p = pnl.MappingProjection(matrix=np.array([[1.0, 0.5], [-0.5, 1.0]]), name="W")
            b = pnl.TransferMechanism(input_shapes=2, function=pnl.Logistic(), name="B")
            c = pnl.AutodiffComposition(pathways=[[a, p, b]], learning_rate=0.5)
            x = np.array([[3.0, 4.0], [3e-4, 4e-4], [-1.0, 2.0]])
            t = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
            try:
                c.learn(inputs={a: x}, targets={b: t}, epochs=2, minibatch_size=mb,
                        execution_mode=getattr(pnl.ExecutionMode, mode))
                r = c.run(inputs={a: x})
                learn[f"{per_item}-{mb}-{mode}"] = {"W": p.parameters.matrix.get(c).tolist(),
                                                    "run": np.asarray(r).tolist()}
            except Exception as e:  # noqa: BLE001  (what PsyNeuLink refuses is a measurement too)
                learn[f"{per_item}-{mb}-{mode}"] = {"error": type(e).__name__}
out["learn"] = learn
print(json.dumps(out, indent=1))
