"""The attack catalogue of issue 12, one test per attack: what an attacker or a careless user
tries, and the one clear mdfx error (or the safe result) each must get.

Every entry of :data:`ATTACKS` is ``Attack(name, kind, run, error, message)``: ``run(tmp)``
performs the attack in the temp folder ``tmp``; ``error`` is the mdfx error class it must
raise (``None``: it must succeed, ``run`` asserting the safe outcome itself) and ``message``
a regex its text must match. Attacks through the command line run ``python -m mdfx`` in a
subprocess and raise :class:`CliError` with its stderr when it exits 1 with one
``mdfx: error:`` line and no traceback (anything else fails the test). Memory bombs run in a
subprocess whose address space is capped (``RLIMIT_AS``), so a bomb that is not refused
before allocating fails with MemoryError instead of taking the machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, assert_close, xor_composition

import mdfx
import mdfx.limits
from mdfx.errors import DataError, GraphError, LimitError, MdfxError, ParameterError, SchemaError

#: Address-space cap of the memory-bomb subprocesses: the loaders need well under it,
#: the bombs ask for 4 GiB to TiBs.
MEMORY_CAP = 3 * 2**30


class CliError(Exception):
    """``mdfx`` exited 1 with one clean ``mdfx: error:`` line (the text is that line)."""


class Bomb(Exception):
    """A capped subprocess ended in the error it printed (its class name, then its text)."""


@dataclass
class Attack:
    name: str
    kind: str  #: the issue's heading: crash, bomb, traceback, silent, hang, write, cli, own
    run: Callable[[Path], None]
    error: type[BaseException] | None
    message: str = ""


# --- helpers ---------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    # MDFX_ATTACK_CODE: another checkout to attack (tests/attack_outcomes.py --code)
    code = os.environ.get("MDFX_ATTACK_CODE", str(ROOT))
    env = dict(os.environ, PYTHONPATH=code, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("MDFX_FUZZ_FULL", None)
    return env


def cli(tmp: Path, *args: str, cap: int | None = None, fsize: int | None = None,
        stdout: int | None = subprocess.PIPE) -> tuple[int, str, str]:
    """Run ``python -m mdfx args`` in ``tmp``; never a traceback, whatever the outcome."""
    def limit() -> None:
        import resource

        if cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        if fsize:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write over the cap fails (EFBIG)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    proc = subprocess.run([sys.executable, "-m", "mdfx", *args], cwd=tmp, capture_output=stdout is not None,
                          stdout=None if stdout is not None else stdout, text=True, env=_env(),
                          preexec_fn=limit, timeout=300)
    err = proc.stderr or ""
    assert "Traceback" not in err, f"mdfx {' '.join(args)} printed a traceback:\n{err}"
    assert proc.returncode in (0, 1), f"mdfx {' '.join(args)} exited {proc.returncode}:\n{err}"
    return proc.returncode, proc.stdout or "", err


def cli_fails(tmp: Path, *args: str, **kw: int) -> None:
    """The attack must end in exit 1 with one ``mdfx: error:`` line: raise CliError with it."""
    rc, out, err = cli(tmp, *args, **kw)
    if rc == 1:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mdfx: error: "), f"not one error line:\n{err}"
        raise CliError(lines[0])
    raise AssertionError(f"mdfx {' '.join(args)} exited 0 (accepted):\n{out[-2000:]}\n{err[-2000:]}")


def capped(code: str, cap: int = MEMORY_CAP) -> None:
    """Run ``code`` (with ``tmp`` bound to the temp folder) in a subprocess capped at ``cap`` bytes
    of address space; raise :class:`Bomb` with the exception it ended in."""
    script = textwrap.dedent("""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
        try:
        {body}
        except BaseException as exc:
            print("RAISED", type(exc).__name__, str(exc).replace("\\n", " "))
            sys.exit(0)
        print("RAISED nothing")
    """).format(cap=cap, body=textwrap.indent(textwrap.dedent(code), "    "))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(), timeout=300)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RAISED")), None)
    assert line is not None, f"the capped run died (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    _, kind, *text = line.split(" ", 2)
    if kind != "nothing":
        raise Bomb(f"{kind}: {text[0] if text else ''}")


def xor_file(tmp: Path, suffix: str = ".json") -> Path:
    comp, _, _ = xor_composition()
    return mdfx.save(comp, tmp / f"xor{suffix}")


def xor_data(tmp: Path) -> Path:
    path = tmp / "data.json"
    path.write_text(json.dumps({"inputs": {"xor_in": [[0, 0], [0, 1], [1, 0], [1, 1]]},
                                "targets": {"xor_out": [[0], [1], [1], [0]]}}))
    return path


def edited(tmp: Path, change: Callable[[dict], None], name: str = "edited.json") -> Path:
    """The xor model's MDF JSON with ``change(model_dict)`` applied."""
    data = json.loads(xor_file(tmp).read_text())
    change(data)
    path = tmp / name
    path.write_text(json.dumps(data))
    return path


def _graph(d: dict) -> dict:
    return d["xor"]["graphs"]["xor"]


def _meta(d: dict, node: str) -> dict:
    return _graph(d)["nodes"][node]["metadata"]["mdfx"]


def llvm_net() -> tuple:
    from mdfx.runners.training import LearnSpec

    comp, x, t = xor_composition()
    net = comp._graph()
    return net, LearnSpec({"xor_in": np.array(x[comp.nodes[0]], float)},
                          {"xor_out": np.array(t[comp.nodes[-1]], float)})


def onnx_graph(tmp: Path, nodes: list, initializers: list, name: str = "attack.onnx",
               outputs: tuple[str, ...] = ("y",)) -> Path:
    """A small ONNX file: input x (batch, 2), the given nodes and initializers."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "attack", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 2])],
                              [helper.make_tensor_value_info(o, TensorProto.DOUBLE, ["N", 2]) for o in outputs],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp / name
    onnx.save(model, str(path))
    return path


def _w(name: str, value: np.ndarray) -> object:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value), name)


def _mm(a: str, b: str, out: str, name: str = "") -> object:
    from onnx import helper

    return helper.make_node("MatMul", [a, b], [out], name=name or out)


# --- the attacks ----------------------------------------------------------------------------


def _train_with(module: str, size: int) -> object:
    import importlib

    net, spec = llvm_net()
    spec.minibatch_size = size
    spec.epochs = 3
    fn = importlib.import_module(module)
    return (fn.train_reference if module.endswith("training") else fn.train)(net, spec)


def runner_minibatch(module: str, size: int = 2**63 - 1) -> Callable[[Path], None]:
    """A runner given a minibatch near 2**63 (once SIGFPE / SIGSEGV in the LLVM kernel) trains one
    minibatch of everything, exactly as the reference with a minibatch of all 4 trials (issue 10);
    2**63 itself is refused by the shared validator (raised here for the test to check)."""
    def run(tmp: Path) -> None:
        got = _train_with(module, size)
        want = _train_with("mdfx.runners.training", 4)
        assert_close(got.losses, want.losses, rtol=1e-9, what=f"{module} losses, minibatch_size {size}")
        assert sorted(got.params) == sorted(want.params), (sorted(got.params), sorted(want.params))
        for name, value in want.params.items():
            assert_close(got.params[name], value, rtol=1e-9, atol=1e-12, what=f"{module} trained {name}")
        _train_with(module, 2**63)
    return run


def fold_bomb(op: str, constants: bool = False) -> Callable[[Path], None]:
    """(N,1) op (1,N) of two small tensors that nothing reads: 2**32 float64 = 32 GiB from a 1 MB file.
    As initializers they are learnable params and the op stays in the graph (run() would compute it);
    as Constant nodes the importer folds it."""
    def run(tmp: Path) -> None:
        from onnx import helper

        n = 2**16
        a, b = np.ones((n, 1)), np.ones((1, n))
        nodes = [_mm("x", "w", "y"), helper.make_node(op, ["a", "b"], ["big"], name="big")]
        inits = [_w("w", np.eye(2))]
        if constants:
            nodes[:0] = [helper.make_node("Constant", [], [k], value=_w(k, v)) for k, v in (("a", a), ("b", b))]
        else:
            inits += [_w("a", a), _w("b", b)]
        capped(f"import mdfx; mdfx.load({str(onnx_graph(tmp, nodes, inits))!r})")
    return run


def valued_fold_bomb(op: str) -> Callable[[Path], None]:
    """A constant whose VALUES give the size of a folded result: a 2-element shape [N, N] or a range."""
    def run(tmp: Path) -> None:
        from onnx import helper

        n = 2**16

        def const(name: str, value: np.ndarray) -> object:
            return helper.make_node("Constant", [], [name], value=_w(name, value))

        shape = np.array([n, n], dtype=np.int64)
        feeds = {"ConstantOfShape": [const("s", shape)],
                 "Expand": [const("o", np.ones(1)), const("s", shape)],
                 "Tile": [const("o", np.ones((1, 1))), const("s", shape)],
                 "Range": [const("a", np.array(0, np.int64)), const("b", np.array(n * n, np.int64)),
                           const("c", np.array(1, np.int64))]}[op]
        nodes = [*feeds, helper.make_node(op, [f.output[0] for f in feeds], ["big"], name="big"), _mm("x", "w", "y")]
        capped(f"import mdfx; mdfx.load({str(onnx_graph(tmp, nodes, [_w('w', np.eye(2))]))!r})")
    return run


def mdf_graph_div_zero(tmp: Path) -> None:
    """An op graph mdfx wrote as MDF, its Div divisor edited to hold a zero."""
    from onnx import helper

    path = onnx_graph(tmp, [_mm("x", "w", "h"), helper.make_node("Div", ["h", "z"], ["y"], name="div")],
                      [_w("w", np.eye(2)), _w("z", np.array([1.0, 2.0]))])
    data = json.loads(mdfx.save(mdfx.load(path), tmp / "div.json").read_text())
    hits = 0
    for node in next(iter(next(iter(data.values()))["graphs"].values()))["nodes"].values():
        for param in (node.get("parameters") or {}).values():
            if param.get("metadata", {}).get("mdfx", {}).get("name") == "z":
                param["value"], hits = [1.0, 0.0], hits + 1
    assert hits == 1, hits
    (tmp / "div.json").write_text(json.dumps(data))
    mdfx.load(tmp / "div.json")


def _mdf03(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """A pure MDF 0.3 document (linear then logistic), changed by ``change(nodes)``, loaded."""
    def run(tmp: Path) -> None:
        nodes = {"input_node": {"parameters": {"level": {"value": 0.5}},
                                "output_ports": {"out_port": {"value": "level"}}},
                 "proc": {"input_ports": {"in1": {}}, "parameters": {"gain": {"value": 3}},
                          "output_ports": {"out": {"value": "logistic_1"}},
                          "functions": {"linear_1": {"function": {"linear": {"variable0": "in1", "slope": 0.5,
                                                                             "intercept": 0}}},
                                        "logistic_1": {"function": {"logistic": {"variable0": "linear_1",
                                                                                 "gain": "gain", "bias": 0,
                                                                                 "offset": 0}}}}}}
        change(nodes)
        edges = {"e": {"sender": "input_node", "receiver": "proc", "sender_port": "out_port",
                       "receiver_port": "in1"}}
        path = tmp / "m03.json"
        path.write_text(json.dumps({"m03": {"format": "ModECI MDF v0.3",
                                            "graphs": {"g": {"nodes": nodes, "edges": edges}}}}))
        mdfx.load(path)
    return run


def untrainable_output(tmp: Path) -> None:
    """Training an output that no learnable param reaches: every mode takes zero-gradient steps
    (PyTorch once raised torch's RuntimeError from autograd)."""
    from onnx import helper

    path = onnx_graph(tmp, [helper.make_node("Neg", ["x"], ["y"], name="neg"),
                            helper.make_node("Add", ["x", "w"], ["other"], name="add")], [_w("w", np.array(0.5))])
    losses = {}
    for mode in (mdfx.ExecutionMode.Python, mdfx.ExecutionMode.PyTorch, mdfx.ExecutionMode.LLVMRun):
        comp = mdfx.load(path, learnable=["w"])  # 'w' alone says nothing of learning: say it
        x, y = comp.get_nodes_by_role(mdfx.NodeRole.INPUT)[0], comp.get_nodes_by_role(mdfx.NodeRole.OUTPUT)[0]
        comp.learn(inputs={x: np.ones((3, 2))}, targets={y: np.zeros((3, 2))}, epochs=2, minibatch_size=2,
                   execution_mode=mode)
        losses[mode] = comp.losses
        assert comp.graph.params["w"].value == 0.5, comp.graph.params["w"].value
    assert_close(losses[mdfx.ExecutionMode.Python], [1.0] * 4, rtol=1e-12, what="Python losses")
    for mode, got in losses.items():
        assert_close(got, losses[mdfx.ExecutionMode.Python], rtol=1e-12, what=f"{mode} losses")


def pnl_loss_spec(tmp: Path) -> None:
    """A PsyNeuLink MDF file whose AutodiffComposition names no Loss (its loss_spec edited to 0)."""
    data = json.loads((ROOT / "tests" / "pnl_reference" / "mdf" / "fn_exponential.json").read_text())
    meta = next(iter(next(iter(data.values()))["graphs"].values()))["metadata"]
    assert "loss_spec" in meta, sorted(meta)
    meta["loss_spec"] = 0
    (tmp / "pnl.json").write_text(json.dumps(data))
    mdfx.load(tmp / "pnl.json")


def yaml_bomb(tmp: Path) -> None:
    levels = ["a0: &a0 [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]"]
    for i in range(1, 9):  # 10**9 values through 80 aliases
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    comp, _, _ = xor_composition()
    text = mdfx.save(comp, tmp / "xor.yaml").read_text()
    bomb = "\n".join("    " + line for line in levels)
    text = text.replace("xor:\n", "xor:\n  bombs:\n" + bomb.replace("    ", "    ", 1) + "\n", 1)
    path = tmp / "bomb.yaml"
    path.write_text(text)
    capped(f"import mdfx; mdfx.load({str(path)!r})")


def one_node_file(tmp: Path, size: object) -> Path:
    node = mdfx.TransferMechanism(input_shapes=2, name="only")
    comp = mdfx.Composition(name="one")
    comp.add_node(node)
    path = mdfx.save(comp, tmp / "one.json")
    data = json.loads(path.read_text())
    data["one"]["graphs"]["one"]["nodes"]["only"]["metadata"]["mdfx"]["size"] = size
    path.write_text(json.dumps(data))
    return path


def validate_huge_size(size: int) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        path = one_node_file(tmp, size)
        capped(f"import mdfx; mdfx.validate({str(path)!r}, trials=8)")
    return run


def npz_bomb(used: bool) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        model = xor_file(tmp)
        data = tmp / "bomb.npz"
        big = np.zeros(2**20)  # 8 MiB inflated from ~8 KiB; the limit below is 2**16 elements
        arrays = {"xor_in": np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float), "xor_out": np.zeros((4, 1))}
        arrays["unused" if not used else "xor_in"] = big if not used else np.zeros((2**19, 2))
        np.savez_compressed(data, **arrays)
        from mdfx.cli import main, read_data

        with mdfx.limits.set(max_total_elements=2**16, max_tensor_elements=2**16):
            if used:
                read_data(data, ["xor_in", "xor_out"])
            else:
                assert main(["train", str(model), "--data", str(data), "--mode", "python", "--quiet"]) == 0
    return run


def cli_epochs(tmp: Path) -> None:
    cli_fails(tmp, "train", str(xor_file(tmp)), "--data", str(xor_data(tmp)), "--epochs", "3000000000",
              "--mode", "python", "--quiet", cap=MEMORY_CAP)


def long_expression(tmp: Path) -> None:
    from mdfx import expr

    expr.evaluate(" + ".join(["x"] * 1000), {"x": 1.0})


def pure_mdf_chain(tmp: Path) -> None:
    nodes = {"input_layer": {"input_ports": {"input": {"shape": [2], "type": "float64"}},
                             "output_ports": {"out_port": {"value": "input", "shape": [2]}}}}
    edges, prev = {}, "input_layer"
    for i in range(500):
        nodes[f"layer_{i}"] = {
            "input_ports": {"in_port": {"shape": [2]}},
            "parameters": {"weight": {"value": [[0.5, 0.1], [0.2, 0.3]]},
                           "mul": {"function": "MatMul", "args": {"A": "in_port", "B": "weight"}},
                           "act": {"function": "tanh", "args": {"variable0": "mul"}}},
            "output_ports": {"out_port": {"value": "act", "shape": [2]}}}
        edges[f"e{i}"] = {"sender": prev, "receiver": f"layer_{i}", "sender_port": "out_port",
                          "receiver_port": "in_port"}
        prev = f"layer_{i}"
    path = tmp / "chain.json"
    path.write_text(json.dumps({"chain": {"format": "ModECI MDF v0.4", "graphs": {"g": {"nodes": nodes,
                                                                                     "edges": edges}}}}))
    comp = mdfx.load(path)
    # a pure-MDF file loads as an op graph: a MatMul and a tanh per layer, one weight each
    graph = comp.graph
    assert [n.op for n in graph.nodes] == ["MatMul", "pnl.Tanh"] * 500, [n.op for n in graph.nodes][:6]
    assert len(graph.params) == 500, len(graph.params)
    x = np.array([[1.0, 2.0]])
    for _ in range(500):
        x = np.tanh(x @ np.array([[0.5, 0.1], [0.2, 0.3]]))
    got = comp.run(inputs={comp.nodes[0]: [[1.0, 2.0]]})
    np.testing.assert_allclose(np.ravel(got), np.ravel(x), rtol=1e-12, atol=1e-300)


def pt_file(tmp: Path, value: object) -> None:
    import torch

    comp, _, _ = xor_composition()
    path = tmp / "w.pt"
    torch.save({"in_to_hid": value, "hid_to_out": torch.zeros(10, 1)}, path)
    comp.load(path=path)


def corrupt_npz(tmp: Path) -> None:
    (tmp / "bad.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    cli_fails(tmp, "run", str(xor_file(tmp)), "--inputs", "bad.npz")


def role_names_missing(tmp: Path) -> None:
    mdfx.load(edited(tmp, lambda d: _graph(d)["metadata"]["mdfx"].update(outputs=["nowhere"])))


def run_zero_trials(tmp: Path) -> None:
    comp, x, _ = xor_composition()
    comp.run(inputs={comp.nodes[0]: np.zeros((0, 2))})


def full_disk_pt(tmp: Path) -> None:
    a = mdfx.TransferMechanism(input_shapes=100, name="a")
    b = mdfx.TransferMechanism(input_shapes=100, name="b")
    comp = mdfx.AutodiffComposition(name="wide")
    comp.add_linear_processing_pathway([a, np.ones((100, 100)), b])
    mdfx.save(comp, tmp / "wide.json")
    try:
        cli_fails(tmp, "export", "wide.json", "--state-dict", "w.pt", fsize=20_000)  # the .pt needs 80 KB
    finally:
        left = sorted(p.name for p in tmp.iterdir() if p.name not in ("wide.json",))
        assert left == [], f"a failed write left {left}"


def weight_value(value: object) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        def change(d: dict) -> None:
            _graph(d)["nodes"]["xor_hid"]["parameters"]["in_to_hid"]["value"][0][3] = value
        mdfx.load(edited(tmp, change))
    return run


def param_value(value: object) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        mdfx.load(edited(tmp, lambda d: _meta(d, "xor_hid")["params"].update(gain=value)))
    return run


def nan_json_file(tmp: Path) -> None:
    # json.dumps writes NaN as a bare token, which json.loads reads back: the file as an attacker writes it
    path = edited(tmp, lambda d: _meta(d, "xor_out")["params"].update(bias=float("inf")))
    cli_fails(tmp, "info", str(path))


def cli_train(*extra: str, linear: bool = False) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        model = mdfx.save(xor_composition(function=mdfx.Linear)[0], tmp / "lin.json") if linear else xor_file(tmp)
        cli_fails(tmp, "train", str(model), "--data", str(xor_data(tmp)), "--mode", "python",
                  "--quiet", "--out", "t.json", *extra)
        assert not (tmp / "t.json").exists(), "a refused train wrote its output"
    return run


def learn_with(**options: object) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        comp, x, t = xor_composition()
        comp.learn(inputs=x, targets=t, execution_mode=mdfx.ExecutionMode.Python, **options)
    return run


def learn_inputs(make: Callable[[], object]) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        comp, _, t = xor_composition()
        comp.learn(inputs={comp.nodes[0]: make()}, targets=t, execution_mode=mdfx.ExecutionMode.Python)
    return run


def complex_onnx(tmp: Path) -> None:
    path = onnx_graph(tmp, [_mm("x", "w", "y")], [_w("w", np.eye(2) + 1j * np.eye(2))])
    mdfx.load(path)


def size_27(tmp: Path) -> None:
    mdfx.load(edited(tmp, lambda d: _meta(d, "xor_in").update(size=2.7)))


def ssa(case: str) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        from onnx import helper

        if case == "own input":
            nodes = [_mm("x", "w", "h"), helper.make_node("Relu", ["h"], ["h"], name="loop"),
                     helper.make_node("Identity", ["h"], ["y"])]
        else:
            nodes = [_mm("x", "w", "y", "first"), _mm("x", "w", "y", "second")]
        inits = [_w("w", np.eye(2))] + ([_w("w", 2 * np.eye(2))] if case == "duplicate initializer" else [])
        if case == "duplicate initializer":
            nodes = [_mm("x", "w", "y")]
        mdfx.load(onnx_graph(tmp, nodes, inits))
    return run


def validate_nan_inputs(tmp: Path) -> None:
    data = tmp / "in.json"
    data.write_text('{"xor_in": [[0, NaN], [1, 1]]}')
    cli_fails(tmp, "validate", str(xor_file(tmp)), "--inputs", str(data))


def validate_zero_trials(tmp: Path) -> None:
    cli_fails(tmp, "validate", str(xor_file(tmp)), "--trials", "0")


def export_suffix(tmp: Path) -> None:
    try:
        cli_fails(tmp, "export", str(xor_file(tmp)), "--mdf", "x.onnx")
    finally:
        assert not (tmp / "x.onnx").exists()


def escape_names(tmp: Path) -> None:
    def change(d: dict) -> None:
        _graph(d)["metadata"]["mdfx"]["name"] = "evil\x1b]0;pwned\x07\x1b[2J"
        _meta(d, "xor_hid")["name"] = "hid\x1b[31mRED"
        for edge in _graph(d)["edges"].values():
            if edge["receiver"] == "xor_hid":
                edge["metadata"]["mdfx"]["name"] = "p\rq"
    rc, out, err = cli(tmp, "info", str(edited(tmp, change)))
    assert rc == 0, err
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out, repr(out)
    assert "hid\\x1b[31mRED" in out, out


def save_named(name: str) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        comp, _, _ = xor_composition()
        comp.name = name
        work = tmp / "work" / "deep"
        work.mkdir(parents=True)
        cwd = os.getcwd()
        os.chdir(work)
        try:
            written = comp.save()
        finally:
            os.chdir(cwd)
        assert written.parent == Path("."), written
        assert (work / written.name).is_file(), list(work.iterdir())
        assert sorted(p.name for p in tmp.rglob("*") if p.is_file()) == [written.name]
    return run


def stale_temps(tmp: Path) -> None:
    comp, _, _ = xor_composition()
    target = tmp / "m.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a pid that no longer runs
    for i in range(3):
        (tmp / f".m.json.mdfx-tmp.{dead}.{i:08x}").write_text("half a file")
    (tmp / f".m.json.mdfx-tmp.{os.getppid()}.00000000").write_text("a live writer's temp")
    mdfx.save(comp, target)
    left = sorted(p.name for p in tmp.iterdir())
    assert left == [f".m.json.mdfx-tmp.{os.getppid()}.00000000", "m.json"], left


def missing_second_output(tmp: Path) -> None:
    try:
        cli_fails(tmp, "train", str(xor_file(tmp)), "--data", str(xor_data(tmp)), "--mode", "python", "--quiet",
                  "--out", "a.json", "--state-dict", "/missing/dir/b.pt")
    finally:
        assert not (tmp / "a.json").exists(), "the first output was written before the second was checked"


def umask_mode(tmp: Path) -> None:
    old = os.umask(0o027)
    try:
        path = xor_file(tmp)
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o640, oct(path.stat().st_mode)


def concurrent_writers(tmp: Path) -> None:
    target = tmp / "m.json"
    comps = [xor_composition(seed)[0] for seed in range(4)]
    texts = set()
    for c in comps:
        texts.add(mdfx.save(c, tmp / "probe.json").read_text())
    errors: list[BaseException] = []

    def write(c: object) -> None:
        try:
            for _ in range(10):
                mdfx.save(c, target)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(c,)) for c in comps]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert target.read_text() in texts, "the file is not one writer's complete output"
    assert sorted(p.name for p in tmp.iterdir()) == ["m.json", "probe.json"]


def kill_during_save(tmp: Path) -> None:
    """kill -9 a process that saves in a loop: the file is always the old or the new complete one."""
    big = mdfx.TransferMechanism(input_shapes=300, name="a")
    out = mdfx.TransferMechanism(input_shapes=300, name="b")
    comp = mdfx.AutodiffComposition(name="big")
    comp.add_linear_processing_pathway([big, np.ones((300, 300)), out])
    target = mdfx.save(comp, tmp / "m.json")
    good = target.read_text()
    code = (f"import mdfx; c = mdfx.load({str(target)!r}); print('ready', flush=True)\n"
            f"while True: mdfx.save(c, {str(target)!r})")
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=_env())
        assert proc.stdout.readline().strip() == "ready"
        threading.Event().wait(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert target.read_text() == good
    mdfx.save(comp, target)  # the next write clears the killed writers' temps
    assert sorted(p.name for p in tmp.iterdir()) == ["m.json"], sorted(p.name for p in tmp.iterdir())


def piped_head(tmp: Path) -> None:
    model = xor_file(tmp)
    code = (f"{sys.executable} -m mdfx info {model} | head -c 10 >/dev/null; "
            f"{sys.executable} -m mdfx validate {model} --trials 2 | head -n 1 >/dev/null")
    proc = subprocess.run(["bash", "-c", code], capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.stderr == "", proc.stderr


def closed_stdout(tmp: Path) -> None:
    proc = subprocess.run(["bash", "-c", f"{sys.executable} -m mdfx info {xor_file(tmp)} >&-"],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr


def deep_json(tmp: Path) -> None:
    path = tmp / "deep.json"
    path.write_text('{"m": ' + "[" * 100_000 + "]" * 100_000 + "}")
    mdfx.load(path)


def recursive_yaml(tmp: Path) -> None:
    path = tmp / "rec.yaml"
    path.write_text("m: &m\n  graphs: {g: {nodes: {a: *m}}}\n")
    mdfx.load(path)


def onnx_huge_initializer(tmp: Path) -> None:
    from onnx import TensorProto

    fake = TensorProto(name="w", data_type=TensorProto.DOUBLE, dims=[2**40, 2], raw_data=b"")  # 16 TiB declared
    capped(f"import mdfx; mdfx.load({str(onnx_graph(tmp, [_mm('x', 'w', 'y')], [fake]))!r})")


def garbage_file(suffix: str, content: bytes) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        path = tmp / f"garbage{suffix}"
        path.write_bytes(content)
        mdfx.load(path)
    return run


def mdf_shape(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        mdfx.load(edited(tmp, change))
    return run


def env_limit(tmp: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mdfx", "info", str(xor_file(tmp))], capture_output=True,
                          text=True, env={**_env(), "MDFX_MAX_TENSOR_ELEMENTS": "5"})
    assert proc.returncode == 1 and "over the limit of 5 elements" in proc.stderr, proc.stderr
    raise CliError(proc.stderr.strip())


def limits_context(tmp: Path) -> None:
    path = xor_file(tmp)
    before = mdfx.limits.current()
    try:
        with mdfx.limits.set(max_nodes=2):
            mdfx.load(path)
    finally:
        assert mdfx.limits.current() == before


def long_text_expression(tmp: Path) -> None:
    from mdfx import expr

    expr.parse("x" * 20_000)


def npz_object_member(tmp: Path) -> None:
    model = xor_file(tmp)
    data = tmp / "obj.npz"
    np.savez(data, xor_in=np.array([[0, 0]], dtype=object))
    cli_fails(tmp, "run", str(model), "--inputs", str(data))


def onnx_external_escape(tmp: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    (tmp / "secret.bin").write_bytes(np.arange(4, dtype=np.float64).tobytes())
    weight = TensorProto(name="w", data_type=TensorProto.DOUBLE, dims=[2, 2],
                         data_location=TensorProto.EXTERNAL)
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../secret.bin"
    graph = helper.make_graph([_mm("x", "w", "y")], "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE,
                                                                                        ["N", 2])],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 2])], [weight])
    (tmp / "sub").mkdir()
    path = tmp / "sub" / "m.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    assert onnx.__version__
    mdfx.load(path)


def onnx_external_writes(tmp: Path) -> None:
    """A model too big for one protobuf goes to <name>.<random>.data + the .onnx, each write
    replacing both as a pair; earlier data files are removed (threshold lowered to test it)."""
    from mdfx.converters import onnx_export

    comp, x, _ = xor_composition()
    before = onnx_export.EXTERNAL_DATA_BYTES
    onnx_export.EXTERNAL_DATA_BYTES = 0
    try:
        for _ in range(3):
            mdfx.save(comp, tmp / "m.onnx", dtype="float64")
    finally:
        onnx_export.EXTERNAL_DATA_BYTES = before
    files = sorted(p.name for p in tmp.iterdir())
    assert len(files) == 2 and files[0] == "m.onnx" and re.fullmatch(r"m\.onnx\.[0-9a-f]{8}\.data", files[1]), files
    loaded = mdfx.load(tmp / "m.onnx")
    assert sorted(loaded.graph.params) == sorted(p.name for p in comp.projections), sorted(loaded.graph.params)
    for p in comp.projections:
        np.testing.assert_array_equal(loaded.graph.params[p.name].value, p.matrix)


#: the shared validator's refusal of minibatch_size 2**63 at the runner API
_MB_REFUSED = r"^minibatch_size must be an integer >= 1 and <= 9223372036854775807, got 9223372036854775808$"

ATTACKS: list[Attack] = [
    # native crash
    Attack("llvm.train minibatch_size 2**63-1 (was SIGFPE)", "crash", runner_minibatch("mdfx.runners.llvm"),
           DataError, _MB_REFUSED),
    Attack("llvm.train minibatch_size 2**63-3 (was SIGSEGV)", "crash",
           runner_minibatch("mdfx.runners.llvm", 2**63 - 3), DataError, _MB_REFUSED),
    Attack("torch runner minibatch_size 2**63-1", "crash", runner_minibatch("mdfx.runners.torch"), DataError,
           _MB_REFUSED),
    Attack("train_reference minibatch_size 2**63-1", "crash", runner_minibatch("mdfx.runners.training"),
           DataError, _MB_REFUSED),
    # memory bombs (capped subprocesses)
    Attack("ONNX constant folding Add (N,1)+(1,N)", "bomb", fold_bomb("Add", constants=True), Bomb,
           r"^LimitError: .*attack.onnx: node 'big' \(Add\): folding its constant operands "
           r"\[\(65536, 1\), \(1, 65536\)\]: shape \(65536, 65536\) \(4294967296 elements\) is over the limit"),
    Attack("ONNX constant folding MatMul (N,1)@(1,N)", "bomb", fold_bomb("MatMul", constants=True), Bomb,
           r"^LimitError: .*attack.onnx: node 'big' \(MatMul\): folding .* is over the limit of 134217728 elements"),
    Attack("ONNX unused Add (N,1)+(1,N) of two learnable initializers", "bomb", fold_bomb("Add"), Bomb,
           r"^LimitError: .*attack.onnx: node 'big' \(Add\): (output 'big'|folding its constant operands "
           r"\[\(65536, 1\), \(1, 65536\)\]): shape \(65536, 65536\) "
           r"\(4294967296 elements\) is over the limit of 134217728 elements"),
    Attack("ONNX unused MatMul (N,1)@(1,N) of two learnable initializers", "bomb", fold_bomb("MatMul"), Bomb,
           r"^LimitError: .*attack.onnx: node 'big' \(MatMul\): (output 'big'|folding its constant operands "
           r"\[\(65536, 1\), \(1, 65536\)\]): shape \(65536, 65536\) "
           r"\(4294967296 elements\) is over the limit"),
    *[Attack(f"ONNX {op} folded from constants to 2**32 elements", "own", valued_fold_bomb(op), Bomb,
             rf"^LimitError: .*attack.onnx: node 'big' \({op}\): folding its constant inputs: 4294967296 elements "
             r"is over the limit of 134217728") for op in ("ConstantOfShape", "Expand", "Tile", "Range")],
    Attack("YAML billion laughs (10**9 values from 80 aliases)", "bomb", yaml_bomb, Bomb,
           r"^LimitError: .*bomb.yaml: the YAML expands to more than 16777216 values"),
    Attack("validate on a 1 KB file declaring node size 3e8", "bomb", validate_huge_size(300_000_000), Bomb,
           r"^LimitError: .*node 'only'.*size: 300000000 elements is over the limit"),
    Attack("validate on node size 1e8 (loads; 8 random trials would be 6 GiB)", "bomb",
           validate_huge_size(100_000_000), Bomb,
           r"^LimitError: random inputs for input 'only': shape \(8, 100000000\) \(800000000 elements\) is over the limit"),
    Attack(".npz with an unused member over the limits is never inflated", "bomb", npz_bomb(False), None),
    Attack(".npz member over the limits is refused before reading", "bomb", npz_bomb(True), LimitError,
           r"bomb.npz: member 'xor_in' \(\d+ bytes inflated\): \d+ elements is over the limit of 65536"),
    Attack("train --epochs 3000000000 (an 89 GiB order table)", "bomb", cli_epochs, CliError,
           r"^mdfx: error: learn\(\): epochs x trials = 3000000000 x 4 = 12000000000 trial slots is over"),
    # tracebacks
    Attack("1000-term expression (was RecursionError)", "traceback", long_expression, LimitError,
           r"expression 'x \+ x .*\(3997 characters\) is nested 1000 levels deep; the limit is 100"),
    Attack("valid 500-layer pure-MDF chain loads and runs", "traceback", pure_mdf_chain, None),
    Attack(".pt holding a non-tensor value", "traceback", lambda tmp: pt_file(tmp, [1.0, 2.0]), SchemaError,
           r"w.pt: 'in_to_hid' is a list, not a tensor"),
    Attack("corrupt .npz (BadZipFile)", "traceback", corrupt_npz, CliError,
           r"^mdfx: error: bad.npz: not a readable .npz \(BadZipFile: File is not a zip file\)"),
    Attack("role metadata naming a missing node", "traceback", role_names_missing, MdfxError,
           r"edited.json: .*'nowhere'"),
    Attack("run() with 0 trials", "traceback", run_zero_trials, DataError,
           r"^input for node 'xor_in' has 0 trials; give at least one row$"),
    Attack("full disk while saving .pt", "traceback", full_disk_pt, CliError,
           r"^mdfx: error: .*(File too large|No space|EFBIG|errno 27)"),
    # wrong results accepted silently
    Attack("NaN weight in a model file", "silent", weight_value(float("nan")), SchemaError,
           r"edited.json: edge 'in_to_hid' matrix holds NaN or infinite values at \(0, 3\)"),
    Attack("inf weight in a model file", "silent", weight_value(float("inf")), SchemaError,
           r"matrix holds NaN or infinite values"),
    Attack("NaN function parameter in a model file", "silent", param_value(float("nan")), SchemaError,
           r"edited.json: node 'xor_hid' parameter 'gain' is nan; parameters must be finite"),
    Attack("inf function parameter through the CLI", "silent", nan_json_file, CliError,
           r"^mdfx: error: .*node 'xor_out' parameter 'bias' is inf"),
    Attack("train --lr nan (wrote NaN tokens into JSON)", "silent", cli_train("--lr", "nan"), CliError,
           r"^mdfx: error: learning_rate must be finite, got nan$"),
    Attack("train --lr -0.5", "silent", cli_train("--lr", "-0.5"), CliError,
           r"^mdfx: error: 'xor'.learn\(\): learning_rate must not be negative, got -0.5$"),
    Attack("training that overflows to NaN", "silent", cli_train("--lr", "1e100", "--epochs", "5", linear=True),
           CliError, r"^mdfx: error: training diverged: the loss became (nan|inf) at epoch \d+ minibatch \d+"),
    Attack("learn() with a negative learning rate", "silent", learn_with(learning_rate=-1.0),
           ParameterError, r"^'xor'.learn\(\): learning_rate must not be negative, got -1.0$"),
    Attack("learn() with a NaN learning rate", "silent", learn_with(learning_rate=float("nan")), DataError,
           r"^learning_rate must be finite, got nan$"),
    Attack("complex weights in a .pt", "silent",
           lambda tmp: pt_file(tmp, __import__("torch").ones(2, 10, dtype=__import__("torch").complex128)),
           SchemaError, r"w.pt: 'in_to_hid' holds complex numbers \(torch.complex128\)"),
    Attack("complex weights in an ONNX file", "silent", complex_onnx, SchemaError,
           r"attack.onnx: initializer 'w' has ONNX element type 15 \(complex128\)"),
    Attack("complex inputs to learn()", "silent", learn_inputs(lambda: np.ones((4, 2)) * (1 + 1j)), DataError,
           r"input for node 'xor_in' holds complex numbers"),
    Attack("numeric strings as inputs", "silent", learn_inputs(lambda: [["0", "1"]] * 4), DataError,
           r"input for node 'xor_in' is not numeric: it holds strings"),
    Attack("masked array as inputs", "silent", learn_inputs(lambda: np.ma.masked_array(np.ones((4, 2)),
                                                                                       mask=[[0, 1]] * 4)),
           DataError, r"input for node 'xor_in' is a masked array"),
    Attack("node size 2.7 (was truncated to 2)", "silent", size_27, SchemaError,
           r"edited.json: node 'xor_in': size 2.7 is not a whole number"),
    Attack("ONNX op writing its own input", "silent", ssa("own input"), SchemaError,
           r"attack.onnx: node 'loop' \(Relu\) writes 'h', which is also its own input"),
    Attack("ONNX: two ops writing one tensor", "silent", ssa("two writers"), SchemaError,
           r"node 'second' \(MatMul\) writes 'y', which is already written by node 'first' \(MatMul\)"),
    Attack("ONNX duplicate initializers", "silent", ssa("duplicate initializer"), SchemaError,
           r"attack.onnx: two initializers are named 'w'"),
    Attack("validate with NaN inputs (reported PASS)", "silent", validate_nan_inputs, CliError,
           r"^mdfx: error: input 'xor_in' contains NaN or infinite values, first at row 0, column 1"),
    Attack("validate --trials 0 (reported PASS)", "silent", validate_zero_trials, CliError,
           r"^mdfx: error: trials must be an integer >= 1, got 0$"),
    Attack("export --mdf x.onnx (wrote JSON into .onnx)", "silent", export_suffix, CliError,
           r"^mdfx: error: --mdf x.onnx: the file name must end in .json or .yaml or .yml"),
    Attack("info prints terminal escape sequences from names", "silent", escape_names, None),
    # growth
    Attack("5000-layer add_linear_processing_pathway (was > 13 min)", "hang",
           lambda tmp: mdfx.AutodiffComposition().add_linear_processing_pathway(
               [mdfx.TransferMechanism(input_shapes=1, name=f"m{i}") for i in range(5000)]), None),
    # writes
    Attack("comp.save() of a model named ../../x", "write", save_named("../../x"), None),
    Attack("comp.save() of a model named /abs/p", "write", save_named("/abs/p"), None),
    Attack("stale temp files of killed writers are removed", "write", stale_temps, None),
    Attack("train --out a --state-dict /missing/b (wrote a, then failed)", "write", missing_second_output,
           CliError, r"^mdfx: error: --state-dict /missing/dir/b.pt: directory '/missing/dir' does not exist"),
    Attack("file mode follows the umask", "write", umask_mode, None),
    Attack("ONNX external data written as a pair, old data removed", "write", onnx_external_writes, None),
    Attack("concurrent writers to one path", "write", concurrent_writers, None),
    Attack("kill -9 during saves", "write", kill_during_save, None),
    # CLI
    Attack("info | head (closed pipe)", "cli", piped_head, None),
    Attack("info >&- (closed stdout)", "cli", closed_stdout, None),
    # our own
    Attack("JSON nested 100000 deep", "own", deep_json, SchemaError, r"deep.json: not valid JSON: nested too deeply"),
    Attack("YAML alias that contains itself", "own", recursive_yaml, LimitError,
           r"rec.yaml: the YAML expands to more than \d+ values through its aliases"),
    Attack("ONNX initializer declaring 2**41 elements", "own", onnx_huge_initializer, Bomb,
           r"^LimitError: .*initializer 'w': shape \(1099511627776, 2\)"),
    Attack("ONNX external data pointing outside the model's folder", "own", onnx_external_escape, SchemaError,
           r"m.onnx: not a readable ONNX model .*'../secret.bin' points outside the directory"),
    Attack("ONNX Div by a zero constant (found by the fuzz)", "own",
           lambda tmp: mdfx.load(onnx_graph(tmp, [_mm("x", "w", "h"), __import__("onnx").helper.make_node(
               "Div", ["h", "z"], ["y"], name="div")], [_w("w", np.eye(2)), _w("z", np.array([1.0, 0.0]))])),
           mdfx.UnsupportedError, r"attack.onnx: node 'div' \(Div\): the constant divisor 'z' holds zero or NaN"),
    Attack("MDF op graph: Div by a zero param", "own", mdf_graph_div_zero, mdfx.UnsupportedError,
           r"div.json: node 'div' \(Div\): the constant divisor 'z' holds zero or NaN"),
    Attack("MDF 0.3 function given as an empty mapping (found by the fuzz)", "own",
           _mdf03(lambda n: n["proc"]["functions"]["logistic_1"].update(function={})), SchemaError,
           r"m03.json: node 'proc' function 'logistic_1': MDF 0.3 writes a function as one \{name: \{args\}\} "
           r"entry; \{\} has 0"),
    Attack("MDF graph with no output port (found by the fuzz)", "own",
           _mdf03(lambda n: n["proc"].pop("output_ports")), mdfx.UnsupportedError,
           r"m03.json: model 'm03' has no outputs"),
    Attack("MDF parameter [] making a 0-wide output (found by the fuzz)", "own",
           _mdf03(lambda n: n["proc"]["functions"]["linear_1"]["function"]["linear"].update(intercept=[])),
           GraphError, r"m03.json: graph 'm03': output 'proc' has no features \(shape \(batch, 0\)\)"),
    Attack("PsyNeuLink MDF with loss_spec 0 (found by the fuzz)", "own", pnl_loss_spec, mdfx.UnsupportedError,
           r"pnl.json: graph metadata loss_spec 0: not a PsyNeuLink Loss; mdfx reads Loss.MSE, "),
    Attack("training an output no learnable param reaches (found by the fuzz)", "own", untrainable_output, None),
    Attack("binary garbage as .json", "own", garbage_file(".json", b"\xff\xfe\x00garbage"), SchemaError,
           r"garbage.json: not valid JSON"),
    Attack("binary garbage as .yaml", "own", garbage_file(".yaml", b"\x00\x01: [\x02"), SchemaError,
           r"garbage.yaml: not valid YAML"),
    Attack("binary garbage as .onnx", "own", garbage_file(".onnx", b"\x08\x07garbage\xff" * 10), SchemaError,
           r"garbage.onnx: not a readable ONNX model"),
    Attack("graphs given as a list", "own", mdf_shape(lambda d: d["xor"].update(graphs=[1, 2])), SchemaError,
           r"edited.json: model 'xor': 'graphs' is a list, not a mapping"),
    Attack("nodes given as a string", "own", mdf_shape(lambda d: _graph(d).update(nodes="abc")), SchemaError,
           r"edited.json: "),
    Attack("node size '3' as text", "own", mdf_shape(lambda d: _meta(d, "xor_in").update(size="3")), SchemaError,
           r"edited.json: node 'xor_in': size '3' is not a number"),
    Attack("weights as numeric strings", "own", weight_value("0.5"), SchemaError,
           r"edited.json: edge 'in_to_hid' matrix is not numeric"),
    Attack("learn() epochs=2**62", "own", learn_with(epochs=2**62), LimitError,
           r"epochs x trials = 4611686018427387904 x 4 = .* is over the limit of 268435456"),
    Attack("learn() epochs=True", "own", learn_with(epochs=True), DataError, r"^epochs must be an integer >= 1"),
    Attack("learn() weight_decay=nan", "own",
           lambda tmp: (lambda c: (setattr(c[0], "weight_decay", float("nan")),
                                   c[0].learn(inputs=c[1], targets=c[2])))(xor_composition()),
           MdfxError, r"weight_decay (must be finite, got|is) nan"),
    Attack("learn() num_trials=10**12", "own", learn_with(num_trials=10**12), LimitError,
           r"1000000000000 trials of inputs: 2000000000000 elements is over the limit"),
    Attack("train --minibatch-size 0", "own", cli_train("--minibatch-size", "0"), CliError,
           r"^mdfx: error: minibatch_size must be an integer >= 1"),
    Attack("expression of 20000 characters", "own", long_text_expression, LimitError,
           r"is longer than 10000 characters"),
    Attack("limit lowered by environment variable", "own", env_limit, CliError,
           r"^mdfx: error: .*xor.json: .*over the limit of 5 elements per tensor"),
    Attack("limits.set() as a context manager", "own", limits_context, LimitError,
           r"xor.json: model 'xor': nodes and edges: 5 is over the limit of 2"),
    Attack(".npz member of Python objects", "own", npz_object_member, CliError,
           r"^mdfx: error: .*obj.npz: (member 'xor_in' holds Python objects|not a readable .npz)"),
    Attack("a 2-node cycle through add_projection", "own",
           lambda tmp: (lambda a, b, c: (c.add_linear_processing_pathway([a, b]),
                                         c.add_projection(mdfx.MappingProjection(sender=b, receiver=a))))(
               mdfx.TransferMechanism(name="a"), mdfx.TransferMechanism(name="b"), mdfx.Composition()),
           GraphError, r"the network has a cycle through 'a', 'b'"),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack(attack: Attack, tmp_path: Path) -> None:
    if attack.error is None:
        attack.run(tmp_path)
        return
    with pytest.raises(attack.error) as err:
        attack.run(tmp_path)
    text = str(err.value)
    assert re.search(attack.message, text), f"message\n  {text}\ndoes not match\n  {attack.message}"
    assert "\n" not in text.strip(), f"not one line: {text!r}"


def test_catalogue_covers_every_finding_kind() -> None:
    kinds = {a.kind for a in ATTACKS}
    assert kinds == {"crash", "bomb", "traceback", "silent", "hang", "write", "cli", "own"}, kinds
    assert len(ATTACKS) >= 60, len(ATTACKS)
