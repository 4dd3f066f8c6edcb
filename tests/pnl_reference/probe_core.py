"""PsyNeuLink 0.21's behaviour in cases that tests/test_pnl_core.py checks (warnings, refusals,
return values). Not part of the suite:

    /tmp/pnlvenv/bin/python tests/pnl_reference/probe_core.py
"""

import json
import warnings

import numpy as np
import psyneulink as pnl

out: dict[str, object] = {}


def caught(fn):
    """(warning classes, error class or None, return value) of fn()."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            value = fn()
            err = None
        except Exception as e:  # noqa: BLE001  (the class is the measurement)
            value, err = None, type(e).__name__
    kinds = sorted({x.category.__name__ for x in w if issubclass(x.category, UserWarning)
                    and "torch" not in str(x.message).lower()})
    return kinds, err, value


# 1. a plain Composition with no learning pathway: learn() warns, runs, returns the last output
a, b = pnl.ProcessingMechanism(name="A"), pnl.ProcessingMechanism(name="B")
c = pnl.Composition(name="C", pathways=[[a, pnl.MappingProjection(a, b, matrix=[[2.0]]), b]])
k, e, v = caught(lambda: c.learn(inputs={a: [[1.0], [3.0]]}))
out["plain_learn"] = {"warnings": k, "error": e, "return": None if v is None else np.asarray(v).tolist(),
                      "results": [np.asarray(r).tolist() for r in c.results]}
k, e, _ = caught(lambda: c.show_graph(show_learning=True, output_fmt="source"))
out["plain_show_learning"] = {"warnings": k, "error": e}

# 2. a nested AutodiffComposition with no projections
inner = pnl.AutodiffComposition([pnl.ProcessingMechanism(name="S")], name="INNER")
outer = pnl.AutodiffComposition([inner], name="OUTER")
k, e, _ = caught(lambda: outer._build_pytorch_representation())
out["solo_nested_build"] = {"warnings": k, "error": e}
k, e, _ = caught(lambda: outer._build_pytorch_representation())
out["solo_nested_build_again"] = {"warnings": k, "error": e}

# 3. _build_pytorch_representation twice on a learnable one
x, y = pnl.ProcessingMechanism(name="X", input_shapes=2), pnl.ProcessingMechanism(name="Y")
ac = pnl.AutodiffComposition([[x, y]], name="AC")
k1, e1, _ = caught(lambda: ac._build_pytorch_representation())
k2, e2, _ = caught(lambda: ac._build_pytorch_representation())
out["build_twice"] = {"first": [k1, e1], "second": [k2, e2]}

# 4. ComparatorMechanism
k, e, v = caught(lambda: pnl.ComparatorMechanism(name="CMP", sample=x, target=y))
out["comparator"] = {"warnings": k, "error": e}
cm = pnl.ComparatorMechanism(name="CMP2", default_variable=[[0.0, 0.0], [0.0, 0.0]])
out["comparator_execute"] = np.asarray(cm.execute([[1.0, 2.0], [0.5, 3.0]])).tolist()
out["comparator_ports"] = [p.name for p in cm.input_ports] + [p.name for p in cm.output_ports]
# 5. learning through nested plain Compositions
i, h, o = (pnl.ProcessingMechanism(name=n, input_shapes=2) for n in ("I", "H", "O"))
k, e, _ = caught(lambda: pnl.Composition(([i, pnl.Composition(name="N", nodes=[h]), o], pnl.BackPropagation)))
out["learning_pathway_through_nested"] = {"warnings": k, "error": e}
i, h, o = (pnl.ProcessingMechanism(name=n, input_shapes=2) for n in ("I2", "H2", "O2"))
ac = pnl.AutodiffComposition([i, pnl.Composition(name="N2", nodes=[h]), o], name="AC2")
k, e, _ = caught(lambda: ac.learn(inputs={i: [[0, 0]]}, execution_mode=pnl.ExecutionMode.PyTorch))
out["autodiff_learn_with_nested_plain"] = {"warnings": k, "error": e}
print(json.dumps(out, indent=1, default=str))
