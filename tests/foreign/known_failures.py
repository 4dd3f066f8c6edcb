"""What the default CI subset of the foreign corpus fails today: the one list to shrink.

``KNOWN_FAILURES[case id][check]`` is the reason a check fails on that file (``"*"``: every
check). The tests mark each listed (case, check) ``xfail(strict=True)``, so a check that
starts to pass fails the run until its line is deleted here: the list cannot go stale.
It applies to the default subset only; ``MDFX_FULL_CORPUS=1`` reports the raw truth.
``python -m bench.foreign_corpus --subset default --known-failures`` prints the current list.
"""

from __future__ import annotations

# Measured on main with the op-graph IR (python -m bench.foreign_corpus --subset default --known-failures).
KNOWN_FAILURES: dict[str, dict[str, str]] = {
    'sk_regressor_relu_2targets-skl2onnx-op17-dyn-f64': {
        '*': "UnsupportedError: /tmp/corpus_default4/sk_regressor_relu_2targets-skl2onnx-op17-dyn-f64.onnx: node 'Reshape' (Reshape): Reshape of (batch, 2) to [-1, ",
    },
    'sk_regressor_relu_2targets-skl2onnx-op17-dyn-f32': {
        '*': "UnsupportedError: /tmp/corpus_default4/sk_regressor_relu_2targets-skl2onnx-op17-dyn-f32.onnx: node 'Reshape' (Reshape): Reshape of (batch, 2) to [-1, ",
    },
}



def reason(case_id: str, check: str) -> str | None:
    entry = KNOWN_FAILURES.get(case_id, {})
    return entry.get(check, entry.get("*"))
