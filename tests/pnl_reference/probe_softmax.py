"""PsyNeuLink 0.21's SoftMax ``output`` and ``per_item`` choices on direct calls: the numbers
tests/test_pnl_softmax.py asserts. Not part of the suite:

    /tmp/pnlvenv/bin/python tests/pnl_reference/probe_softmax.py
"""

import warnings

import numpy as np

warnings.simplefilter("ignore")
import psyneulink as pnl  # noqa: E402
import psyneulink.core.globals.keywords as kw  # noqa: E402

x = np.array([0.5, -1.0, 2.0, 2.0, 0.1])
for ot in [kw.ALL, pnl.ARG_MAX, pnl.ARG_MAX_INDICATOR, kw.MAX_VAL, kw.MAX_INDICATOR]:
    f = pnl.SoftMax(default_variable=x, gain=1.5, output=ot, per_item=False)
    print(ot, np.round(np.asarray(f.function(variable=x)), 8).tolist())
x2 = np.array([[0.5, -1.0, 2.0], [3.0, 1.0, 0.0]])
for pi in (True, False):
    for ot in [kw.ALL, pnl.ARG_MAX_INDICATOR, kw.MAX_VAL]:
        f = pnl.SoftMax(default_variable=x2, gain=1.0, output=ot, per_item=pi)
        print("2d", pi, ot, np.round(np.asarray(f.function(variable=x2)), 6).tolist())
