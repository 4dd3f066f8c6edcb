"""SoftMax's ``output`` and ``per_item`` on direct calls and in its torch function, against
PsyNeuLink 0.21's values (tests/pnl_reference/probe_softmax.py, rounded there to 8 / 6 places)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

import mdfx as pnl

X = np.array([0.5, -1.0, 2.0, 2.0, 0.1])
ONE_D = {  # gain 1.5, per_item=False
    "all": [0.04847384, 0.00510911, 0.45990702, 0.45990702, 0.02660301],
    "arg_max": [0.0, 0.0, 0.45990702, 0.0, 0.0],
    "arg_max_indicator": [0.0, 0.0, 1.0, 0.0, 0.0],
    "MAX_VAL": [0.0, 0.0, 0.45990702, 0.45990702, 0.0],
    "MAX_INDICATOR": [0.0, 0.0, 1.0, 1.0, 0.0],
}
X2 = np.array([[0.5, -1.0, 2.0], [3.0, 1.0, 0.0]])
TWO_D = {  # gain 1.0
    (True, "all"): [[0.17529, 0.039113, 0.785597], [0.843795, 0.114195, 0.04201]],
    (True, "arg_max_indicator"): [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],
    (True, "MAX_VAL"): [[0.0, 0.0, 0.785597], [0.843795, 0.0, 0.0]],
    (False, "all"): [[0.049646, 0.011078, 0.222498], [0.604813, 0.081853, 0.030112]],
    (False, "arg_max_indicator"): [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]],
    (False, "MAX_VAL"): [[0.0, 0.0, 0.0], [0.604813, 0.0, 0.0]],
}


@pytest.mark.parametrize("output", list(ONE_D))
def test_output_choices_as_psyneulink(output: str) -> None:
    f = pnl.SoftMax(default_variable=X, gain=1.5, output=output, per_item=False)
    assert_close(f.function(variable=X), ONE_D[output], rtol=0, atol=5e-9, what=f"SoftMax(output={output!r})")
    torch = pytest.importorskip("torch")
    got = f._gen_pytorch_fct("cpu", context=pnl.Context())(torch.tensor(X, dtype=torch.float64)).numpy()
    assert_close(got, ONE_D[output], rtol=0, atol=5e-9, what=f"torch SoftMax(output={output!r})")


@pytest.mark.parametrize(("per_item", "output"), list(TWO_D))
def test_per_item_on_a_2d_variable(per_item: bool, output: str) -> None:
    f = pnl.SoftMax(default_variable=X2, output=output, per_item=per_item)
    assert_close(f(X2), TWO_D[(per_item, output)], rtol=0, atol=5e-7, what=f"per_item={per_item}, {output}")
    torch = pytest.importorskip("torch")
    got = f._gen_pytorch_fct("cpu")(torch.tensor(X2, dtype=torch.float64)).numpy()
    assert_close(got, TWO_D[(per_item, output)], rtol=0, atol=5e-7, what="torch")


def test_a_mechanism_refuses_a_picking_softmax_and_unknown_outputs() -> None:
    with pytest.raises(pnl.UnsupportedError, match="output='arg_max'"):
        pnl.TransferMechanism(input_shapes=3, function=pnl.SoftMax(output="arg_max"))
    with pytest.raises(pnl.UnsupportedError, match="'nonsense'"):
        pnl.SoftMax(output="nonsense")
    m = pnl.TransferMechanism(input_shapes=3, function=pnl.SoftMax(gain=2.0))
    assert_close(m.execute([[0.0, 1.0, 2.0]]), [np.exp([0, 2, 4]) / np.exp([0, 2, 4]).sum()], rtol=1e-12)
