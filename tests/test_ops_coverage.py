"""Every op of the op table has a rule in every backend's, importer's and exporter's table
(DESIGN rule 3); each test names what is missing.

To add a backend or a table, add one line to TABLES.
"""

from __future__ import annotations

import importlib

import pytest

from mdfx import ops

#: Every rule table keyed by graph op: (kind of op, module, table attribute, optional library it
#: needs or None; skipped when absent). To add a backend or a table, add one line.
TABLES: list[tuple[str, str, str, str | None]] = [
    ("graph", "mdfx.runners.reference", "RULES", None),
    ("graph_grad", "mdfx.converters.torch", "GRAPH_RULES", "torch"),
    ("graph", "mdfx.schema.writer", "RULES", None),
    ("graph", "mdfx.converters.onnx_export", "EXPORT_RULES", "onnx"),
    ("graph", "mdfx.converters.llvm.graph_rules", "GRAPH_RULES", "llvmlite"),
    ("loss", "mdfx.converters.torch", "LOSS_RULES", "torch"),
    ("loss", "mdfx.converters.llvm.rules", "LOSS_RULES", "llvmlite"),
    ("optimizer", "mdfx.converters.llvm.rules", "OPTIMIZER_RULES", "llvmlite"),
]

#: What each kind of table must cover: the op table's entries.
OPS = {"loss": ops.LOSSES, "optimizer": ops.OPTIMIZERS, "graph": ops.GRAPH_OPS,
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


def test_every_transfer_function_has_its_names_and_defaults() -> None:
    """A pnl.* op carries its PsyNeuLink, MDF-metadata and ONNX names, and float defaults."""
    bad = [f"{op.name}: pnl_name={op.pnl_name!r} onnx_op={op.onnx_op!r} attrs={dict(op.attrs)}"
           for op in ops.transfer_ops()
           if op.name != f"pnl.{op.pnl_name}" or op.onnx_op is None
           or not all(isinstance(v, float) for v in op.attrs.values())]
    assert not bad, "transfer functions missing a name or a float default:\n" + "\n".join(bad)
    keys = [op.transfer_key for op in ops.transfer_ops()]
    assert keys == ["linear", "logistic", "relu", "tanh", "exponential", "identity", "softmax", "normalize"], keys


def test_every_onnx_op_has_an_import_rule() -> None:
    """Every graph op that an ONNX file can hold (all but PsyNeuLink's pnl.*) is imported by a rule."""
    from mdfx.converters.onnx_import import IMPORT_RULES

    wanted = {op.onnx_op or op.name: op.name for op in ops.GRAPH_OPS.values() if op.pnl_name is None}
    missing = sorted(f"{onnx} (graph op {name})" for onnx, name in wanted.items() if onnx not in IMPORT_RULES)
    assert not missing, f"mdfx.converters.onnx_import.IMPORT_RULES has no rule for ONNX op(s) {', '.join(missing)}"
    every_opset = [k for k, versions in IMPORT_RULES.items() if min(versions) > 9 and k in wanted]
    assert not every_opset, f"ONNX ops without a rule for the oldest opset read (9): {every_opset}"


def test_import_rules_refuse_a_duplicate() -> None:
    from mdfx.converters import onnx_import, torch_import

    with pytest.raises(ValueError) as err:
        onnx_import.import_rule("Softmax", since=13)(lambda imp, n: None)
    assert str(err.value).startswith("ONNX import rule for Softmax since opset 13 registered twice"), str(err.value)
    with pytest.raises(ValueError) as err:
        torch_import.module_rule("Linear")(lambda t, node, mod, x: None)
    assert str(err.value) == "torch import rule for module 'Linear' registered twice", str(err.value)
    with pytest.raises(ValueError) as err:
        torch_import.function_rule(methods=("view",))(lambda t, node, a: None)
    assert str(err.value) == "torch import rule for method 'view' registered twice", str(err.value)


def test_an_import_rule_is_chosen_by_opset() -> None:
    from mdfx.converters.onnx_import import IMPORT_RULES, find_import_rule

    versions = IMPORT_RULES["ReduceMean"]
    assert sorted(versions) == [1, 18], sorted(versions)
    assert find_import_rule("ReduceMean", 17) is versions[1]
    assert find_import_rule("ReduceMean", 18) is versions[18]
    assert find_import_rule("Softmax", 12) is IMPORT_RULES["Softmax"][1]
    assert find_import_rule("Softmax", 13) is IMPORT_RULES["Softmax"][13]
    assert find_import_rule("Resize", 17) is None


#: Graph ops no torch module or function imports to, and why.
TORCH_IMPORT_EXEMPT = {
    "ArgMax": "integer outputs: from_torch imports modules that compute floats",
    "Cast": "a module computes in one float dtype",
    "CastLabel": "labels: skl2onnx's tails, not torch's",
    "ai.onnx.ml.ArrayFeatureExtractor": "skl2onnx's tails, not torch's",
    "ai.onnx.ml.ZipMap": "skl2onnx's tails, not torch's",
}


def test_every_graph_op_is_imported_from_torch() -> None:
    """Every graph op but the exempt ones and pnl.* comes out of some module of test_torch_import,
    test_cnn or test_sequences (whose forward each of them is checked against)."""
    pytest.importorskip("torch")
    import test_torch_import as cases

    import mdfx

    seen = {n.op for kind in cases.KINDS for n in mdfx.from_torch(*cases.make(kind)).graph.nodes}
    import test_cnn as cnn  # the convolutional modules (their forward and training checked there)
    import torch

    for name, (_, shape) in cnn.MODULES.items():
        seen |= {n.op for n in mdfx.from_torch(cnn.module(name), torch.zeros(2, *shape, dtype=torch.float64))
                 .graph.nodes}
    import test_sequences as seq  # the embedding and recurrent modules (forward and training checked there)

    for case in seq.CASES.values():
        seen |= {n.op for n in mdfx.from_torch(seq.seeded(case), case.torch_input(case.data(2))).graph.nodes}
    wanted = {k for k, op in ops.GRAPH_OPS.items() if op.pnl_name is None} - set(TORCH_IMPORT_EXEMPT)
    missing = sorted(wanted - seen)
    assert not missing, (f"no module of tests/test_torch_import.py KINDS, test_cnn or test_sequences imports to graph op(s) {', '.join(missing)}: "
                         "add a torch import rule (mdfx/converters/torch_import.py) and a module using it")
    stale = sorted(set(TORCH_IMPORT_EXEMPT) & seen)
    assert not stale, f"exempt ops that torch import now produces (drop them from TORCH_IMPORT_EXEMPT): {stale}"


def test_modeci_mdf_reader_knows_every_onnx_op_by_its_onnx_input_names() -> None:
    """``onnx::`` MDF (modeci-mdf's onnx_to_mdf / pytorch_to_mdf) reads every ONNX-named graph op, and the
    op table spells each input as ONNX does (the writer's ``onnx::`` args and this reader agree)."""
    from mdfx.schema.dialects.modeci import INPUT_NAMES

    wanted = {op.onnx_op or k: op for k, op in ops.GRAPH_OPS.items()
              if op.pnl_name is None and not k.startswith("ai.onnx.ml.")}
    missing = sorted(k for k in wanted if k not in INPUT_NAMES)
    assert not missing, f"mdfx.schema.dialects.modeci.INPUT_NAMES has no entry for ONNX op(s) {', '.join(missing)}"
    differ = []
    for k, op in wanted.items():
        names = tuple(n.rstrip("?").removesuffix("...") for n in op.inputs)
        if INPUT_NAMES[k][:len(names)] != names:
            differ.append(f"{op.name}: op table {names}, ONNX {INPUT_NAMES[k]}")
    assert not differ, "input names that are not ONNX's:\n" + "\n".join(differ)
