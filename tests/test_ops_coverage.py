"""Every op of the op table has a rule in every backend's table (DESIGN rule 3).

To add a backend, append one line to BACKENDS: the module, the name of its
transfer-rule table, and the optional library it needs (skipped when absent).
"""

from __future__ import annotations

import importlib

import pytest

from mdfx import ops

#: (module, table attribute, optional third-party library it needs or None)
BACKENDS: list[tuple[str, str, str | None]] = [
    ("mdfx.runners.reference", "TRANSFER", None),
    ("mdfx.schema.writer", "TRANSFER_RULES", None),
    ("mdfx.converters.onnx_export", "TRANSFER_RULES", "onnx"),
    ("mdfx.converters.torch", "TRANSFER_RULES", "torch"),
    ("mdfx.converters.llvm.rules", "TRANSFER_RULES", "llvmlite"),
]


@pytest.mark.parametrize(("module", "table", "needs"), BACKENDS, ids=[b[0] for b in BACKENDS])
def test_every_transfer_op_has_a_rule(module: str, table: str, needs: str | None) -> None:
    if needs is not None:
        pytest.importorskip(needs)
    rules = getattr(importlib.import_module(module), table)
    missing = sorted(set(ops.TRANSFER) - set(rules))
    extra = sorted(set(rules) - set(ops.TRANSFER))
    assert not missing, f"{module}.{table} has no rule for transfer op(s) {', '.join(missing)}"
    assert not extra, f"{module}.{table} has rules for op(s) not in mdfx.ops.TRANSFER: {', '.join(extra)}"


#: Loss tables, like BACKENDS: (module, table attribute, optional library or None)
LOSS_BACKENDS: list[tuple[str, str, str | None]] = [
    ("mdfx.converters.llvm.rules", "LOSS_RULES", "llvmlite"),
    ("mdfx.converters.torch", "LOSS_RULES", "torch"),
]

#: Optimizer tables, like BACKENDS.
OPTIMIZER_BACKENDS: list[tuple[str, str, str | None]] = [
    ("mdfx.converters.llvm.rules", "OPTIMIZER_RULES", "llvmlite"),
]


@pytest.mark.parametrize(("module", "table", "needs"), LOSS_BACKENDS, ids=[b[0] for b in LOSS_BACKENDS])
def test_every_loss_has_a_rule(module: str, table: str, needs: str | None) -> None:
    if needs is not None:
        pytest.importorskip(needs)
    rules = getattr(importlib.import_module(module), table)
    missing = sorted(set(ops.LOSSES) - set(rules))
    assert not missing, f"{module}.{table} has no rule for loss(es) {', '.join(missing)}"


@pytest.mark.parametrize(("module", "table", "needs"), OPTIMIZER_BACKENDS, ids=[b[0] for b in OPTIMIZER_BACKENDS])
def test_every_optimizer_has_a_rule(module: str, table: str, needs: str | None) -> None:
    if needs is not None:
        pytest.importorskip(needs)
    rules = getattr(importlib.import_module(module), table)
    missing = sorted(set(ops.OPTIMIZERS) - set(rules))
    assert not missing, f"{module}.{table} has no rule for optimizer(s) {', '.join(missing)}"
