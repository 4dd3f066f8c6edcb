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
print(json.dumps(out, indent=1, default=str))
