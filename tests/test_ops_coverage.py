"""Every op of the op table has a rule in every backend's table (DESIGN rule 3).

To add a backend, append one line to TABLES.
"""

from __future__ import annotations

import importlib

import pytest

from mdfx import ops

#: Every backend's rule tables: (kind of op, module, table attribute, optional library it
#: needs or None; skipped when absent). To add a backend or a table, add one line.
TABLES: list[tuple[str, str, str, str | None]] = [
    ("graph", "mdfx.runners.reference", "RULES", None),
    ("graph_grad", "mdfx.converters.torch", "GRAPH_RULES", "torch"),
    ("transfer", "mdfx.schema.writer", "TRANSFER_RULES", None),
    ("transfer", "mdfx.converters.onnx_export", "TRANSFER_RULES", "onnx"),
    ("graph", "mdfx.converters.onnx_export", "EXPORT_RULES", "onnx"),
    ("transfer", "mdfx.converters.torch", "TRANSFER_RULES", "torch"),
    ("graph", "mdfx.converters.llvm.graph_rules", "GRAPH_RULES", "llvmlite"),
    ("loss", "mdfx.converters.torch", "LOSS_RULES", "torch"),
    ("loss", "mdfx.converters.llvm.rules", "LOSS_RULES", "llvmlite"),
    ("optimizer", "mdfx.converters.llvm.rules", "OPTIMIZER_RULES", "llvmlite"),
]

#: What each kind of table must cover: the op table's entries.
OPS = {"transfer": ops.TRANSFER, "loss": ops.LOSSES, "optimizer": ops.OPTIMIZERS, "graph": ops.GRAPH_OPS,
       # ops that take a gradient: compiled backends run the others with the reference's numpy rule
       "graph_grad": {k: op for k, op in ops.GRAPH_OPS.items() if op.vjp is not None}}


@pytest.mark.parametrize(("kind", "module", "table", "needs"), TABLES, ids=[f"{t[1]}.{t[2]}" for t in TABLES])
def test_every_op_has_a_rule(kind: str, module: str, table: str, needs: str | None) -> None:
    if needs is not None:
        pytest.importorskip(needs)
    rules = getattr(importlib.import_module(module), table)
    missing = sorted(set(OPS[kind]) - set(rules))
    extra = sorted(set(rules) - set(OPS[kind]))
    assert not missing, f"{module}.{table} has no rule for {kind} op(s) {', '.join(missing)}"
    assert not extra, f"{module}.{table} has rules for {kind} op(s) not in mdfx.ops: {', '.join(extra)}"
