"""Fuzzing the loaders and runners: the only exceptions allowed are mdfx's own.

hypothesis generates MDF documents (valid ones of each dialect: mdfx's own, PsyNeuLink's,
pure MDF, ``onnx::`` functions and expressions; and the same mutated: values replaced by
other types, huge, NaN or negative numbers, keys deleted, lists cut or wrapped), ONNX graphs
(random wiring of supported and unsupported ops with random initializer shapes, and their
bytes mutated), and data files (.json / .npz with odd shapes, dtypes and values). Each is
fed to the loader, and whatever loads is run (numpy, torch, LLVM) and trained for an epoch.
An exception other than :class:`~mdfx.errors.MdfxError` fails the test; hypothesis reports
each distinct one.

The limits are lowered while fuzzing (small tensors), which keeps each example fast and
fuzzes the limit checks too. CI runs ``FUZZ_EXAMPLES`` examples per test (deterministic);
``MDFX_FUZZ_FULL=1`` runs 3000 with fresh randomness.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import CORPUS, ROOT, xor_composition

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mdfx  # noqa: E402
import mdfx.limits  # noqa: E402
from mdfx.errors import MdfxError  # noqa: E402

FULL = os.environ.get("MDFX_FUZZ_FULL") == "1"
FUZZ_EXAMPLES = 3000 if FULL else 40

FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=not FULL, database=None,
                suppress_health_check=list(HealthCheck), print_blob=True)

#: Small limits while fuzzing: a mutated size of 10**7 is refused instead of run.
SMALL = dict(max_tensor_elements=2**14, max_total_elements=2**16, max_nodes=400,
             max_expression_length=2000, max_expression_depth=60, max_order_elements=2**14)


# --- seeds: one valid document of each dialect ---------------------------------------------


def _pure_chain(n: int = 3) -> dict:
    nodes = {"input_layer": {"input_ports": {"input": {"shape": [2], "type": "float64"}},
                             "output_ports": {"out_port": {"value": "input", "shape": [2]}}}}
    edges, prev = {}, "input_layer"
    for i in range(n):
        nodes[f"l{i}"] = {"input_ports": {"in_port": {"shape": [2]}},
                          "parameters": {"weight": {"value": [[0.5, 0.1], [0.2, 0.3]]},
                                         "bias": {"value": [0.1, -0.1]},
                                         "mul": {"function": "MatMul", "args": {"A": "in_port", "B": "weight"}},
                                         "sum": {"value": "mul + bias"},
                                         "act": {"function": "tanh", "args": {"variable0": "sum"}}},
                          "output_ports": {"out_port": {"value": "act", "shape": [2]}}}
        edges[f"e{i}"] = {"sender": prev, "receiver": f"l{i}", "sender_port": "out_port", "receiver_port": "in_port"}
        prev = f"l{i}"
    return {"chain": {"format": "ModECI MDF v0.4", "graphs": {"g": {"nodes": nodes, "edges": edges}}}}


def _seeds() -> list[dict]:
    comp, _, _ = xor_composition()
    seeds = [comp.to_mdf().to_dict(), _pure_chain()]
    for path in sorted((ROOT / "tests" / "pnl_reference" / "mdf").glob("*.json"))[:4]:
        seeds.append(json.loads(path.read_text()))
    if CORPUS.exists():  # the foreign corpus, when ../shared is there
        for pattern in ("mdf-idioms/*.json", "psyneulink/*.json", "modeci-examples/*.json"):
            for path in sorted(CORPUS.glob(pattern)):
                seeds.append(json.loads(path.read_text()))
    return seeds


SEEDS = _seeds()


# --- mutations ----------------------------------------------------------------------------

ODD_TEXT = ["", "1.5", "nan", "\x1b[2J", "../../x", "/abs/p", "onnx::Add", "onnx::Conv", "MatMul", "linear",
            "x @ W", "exp(", "__import__('os')", "A" * 300, "input", "weight", "(1, 3)", "float64"]
ODD_NUMBERS = [0, -1, 1, 2, 2.7, -0.0, 1e308, -1e308, 2**31, 2**63 - 1, 2**64, 10**30,
               float("nan"), float("inf"), float("-inf"), 3e8, True, False]

leaves = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6)
          | st.sampled_from(ODD_TEXT) | st.sampled_from(ODD_NUMBERS))
json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=10)


def _places(doc: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) of ``doc``, walked without recursion."""
    stack = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            yield node, key
            if isinstance(value, dict | list):
                stack.append(value)


@st.composite
def mdf_documents(draw: st.DrawFn) -> dict:
    doc = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        places = list(_places(doc))
        if not places:
            break
        parent, key = draw(st.sampled_from(places))
        value = parent[key]
        action = draw(st.sampled_from(["replace", "odd", "delete", "wrap", "unwrap", "cut", "grow", "rename"]))
        if action == "replace":
            parent[key] = draw(json_values)
        elif action == "odd":
            parent[key] = draw(st.sampled_from(ODD_NUMBERS + ODD_TEXT))
        elif action == "delete":
            del parent[key]
        elif action == "wrap":
            parent[key] = [value]
        elif action == "unwrap" and isinstance(value, list | dict) and value:
            parent[key] = next(iter(value.values())) if isinstance(value, dict) else value[0]
        elif action == "cut" and isinstance(value, list) and value:
            parent[key] = value[:draw(st.integers(0, len(value) - 1))]
        elif action == "grow" and isinstance(value, list):
            parent[key] = value + copy.deepcopy(value[:1]) * draw(st.integers(1, 3))
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(ODD_TEXT))] = parent.pop(key)
    return doc


# --- feeding -----------------------------------------------------------------------------


def exercise(comp: Any, draw: st.DrawFn) -> None:
    """Run a loaded model and train it for an epoch; only MdfxError may come out."""
    rng = np.random.default_rng(0)  # through the public API: a Composition or an imported op graph alike
    x = {n: rng.uniform(-1, 1, (3, n.size)) for n in comp.get_nodes_by_role(mdfx.NodeRole.INPUT)}
    t = {n: rng.uniform(0, 1, (3, n.size)) for n in comp.get_nodes_by_role(mdfx.NodeRole.OUTPUT)}
    modes = [mdfx.ExecutionMode.Python]
    if draw(st.integers(0, 9)) == 0:  # the compiled backends are slower: one example in ten
        modes += [mdfx.ExecutionMode.PyTorch, mdfx.ExecutionMode.LLVMRun]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # overflow in a wild model is its numbers, not a crash
        for mode in modes:
            try:
                comp.run(inputs=x, execution_mode=mode)
            except MdfxError:
                pass
            if hasattr(comp, "learn"):
                try:
                    comp.learn(inputs=x, targets=t, epochs=1, minibatch_size=2, execution_mode=mode)
                except MdfxError:
                    pass


def feed_file(path: Path, draw: st.DrawFn) -> None:
    try:
        comp = mdfx.load(path)
    except MdfxError:
        return
    exercise(comp, draw)


@FUZZ
@given(doc=mdf_documents(), how=st.sampled_from(["dict", "json", "yaml"]), data=st.data())
def test_mdf_documents_raise_only_mdfx_errors(doc: dict, how: str, data: st.DataObject) -> None:
    from mdfx.io import as_composition
    from mdfx.schema import reader

    with mdfx.limits.set(**SMALL), tempfile.TemporaryDirectory() as tmp:
        if how == "dict":
            try:
                model = reader.from_mdf(doc)  # a graph (with mechanisms, or an op graph), as mdfx.load reads it
                comp = as_composition(model)
            except MdfxError:
                return
            exercise(comp, data.draw)
            return
        path = Path(tmp) / f"m.{how}"
        if how == "json":
            path.write_text(json.dumps(doc))  # NaN/Infinity tokens included, as a hostile file has them
        else:
            import yaml

            path.write_text(yaml.safe_dump(doc))
        feed_file(path, data.draw)


# --- ONNX graphs -------------------------------------------------------------------------

ONNX_OPS = ["MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Neg", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
            "Exp", "Softmax", "Identity", "Flatten", "Reshape", "Cast", "Transpose", "Constant", "Conv",
            "Unknown"]


@st.composite
def onnx_models(draw: st.DrawFn) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    width = draw(st.integers(1, 4))
    tensors = ["x"]
    nodes, inits = [], []
    for i in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(ONNX_OPS))
        out = draw(st.sampled_from([f"t{i}", f"t{i}", "x", tensors[-1]]))  # sometimes breaks SSA
        ins = [draw(st.sampled_from(tensors))]
        if op in ("MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Reshape"):
            shape = draw(st.lists(st.integers(0, 5), min_size=0, max_size=3))
            name = f"w{i}"
            kind = draw(st.sampled_from(["float", "float", "nan", "int", "complex"]))
            value = np.ones(shape) * draw(st.floats(-3, 3))
            if kind == "nan":
                value = value * np.nan
            elif kind == "int":
                value = value.astype(np.int64)
            elif kind == "complex":
                value = value * (1 + 1j)
            inits.append(numpy_helper.from_array(value, name))
            ins.append(draw(st.sampled_from([name, name, tensors[-1]])))
        attrs: dict[str, Any] = {}
        if draw(st.booleans()):
            attrs[draw(st.sampled_from(["alpha", "axis", "transB", "to", "perm"]))] = draw(
                st.sampled_from([0, 1, -1, 2, 0.5, [1, 0]]))
        if op == "Constant":
            ins = []
            attrs = {"value": numpy_helper.from_array(np.ones(draw(st.lists(st.integers(0, 4), max_size=2))))}
        nodes.append(helper.make_node(op, ins, [out], name=f"n{i}", **attrs))
        tensors.append(out)
    outputs = [draw(st.sampled_from(tensors))]
    graph = helper.make_graph(
        nodes, "fuzz", [helper.make_tensor_value_info("x", draw(st.sampled_from([TensorProto.DOUBLE,
                                                                                 TensorProto.FLOAT,
                                                                                 TensorProto.INT64])),
                                                      ["N", width])],
        [helper.make_tensor_value_info(o, TensorProto.DOUBLE, None) for o in outputs], inits)
    opset = draw(st.sampled_from([8, 13, 17, 21]))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    raw = bytearray(model.SerializeToString())
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 3]))):  # byte-level mutations
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            raw[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del raw[at:]
        else:
            raw[at:at] = bytes(draw(st.lists(st.integers(0, 255), max_size=8)))
    return bytes(raw)


@FUZZ
@given(blob=onnx_models(), data=st.data())
def test_onnx_graphs_raise_only_mdfx_errors(blob: bytes, data: st.DataObject) -> None:
    with mdfx.limits.set(**SMALL), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        path.write_bytes(blob)
        feed_file(path, data.draw)


# --- data files --------------------------------------------------------------------------

arrays = st.one_of(
    st.builds(lambda s, v: np.full(s, v), st.lists(st.integers(0, 5), max_size=3),
              st.sampled_from([0.0, 1.0, np.nan, np.inf, 1e308, -1])),
    st.builds(lambda s: np.ones(s, dtype=np.int64), st.lists(st.integers(0, 5), max_size=3)),
    st.builds(lambda s: np.ones(s, dtype=np.complex128), st.lists(st.integers(0, 5), max_size=3)),
    st.builds(lambda s: np.full(s, "1.5"), st.lists(st.integers(0, 5), max_size=3)),
    st.builds(lambda s: np.ones(s, dtype=bool), st.lists(st.integers(0, 5), max_size=3)),
)


@FUZZ
@given(kind=st.sampled_from(["npz", "json", "garbage"]), values=st.dictionaries(
    st.sampled_from(["xor_in", "xor_out", "inputs/xor_in", "targets/xor_out", "other", "inputs", "targets"]),
    arrays, max_size=4), extra=json_values, data=st.data())
def test_data_files_raise_only_mdfx_errors(kind: str, values: dict, extra: Any, data: st.DataObject) -> None:
    from mdfx.cli import main

    with mdfx.limits.set(**SMALL), tempfile.TemporaryDirectory() as tmp:
        comp, _, _ = xor_composition()
        model = mdfx.save(comp, Path(tmp) / "xor.json")
        path = Path(tmp) / f"d.{'npz' if kind == 'npz' else 'json'}"
        if kind == "npz":
            with open(path, "wb") as f:
                np.savez(f, **{k.replace("/", "_") if k in ("inputs", "targets") else k: v
                               for k, v in values.items()})
        elif kind == "json":
            doc = {k: v.tolist() for k, v in values.items()}
            doc[data.draw(st.sampled_from(["xor_in", "inputs", "x"]))] = extra
            path.write_text(json.dumps(doc, default=str))  # complex values as text
        else:
            path.write_bytes(bytes(data.draw(st.lists(st.integers(0, 255), max_size=64))))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for command in (["run", str(model), "--inputs", str(path)],
                            ["train", str(model), "--data", str(path), "--mode", "python", "--quiet"]):
                try:
                    assert main(command) in (0, 1)
                except SystemExit:  # argparse: not reached with these arguments
                    raise AssertionError(f"argparse exited on {command}") from None
