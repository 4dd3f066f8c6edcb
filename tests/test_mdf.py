"""MDF: exact round trips, modeci-mdf's engine agreeing with the reference, corpus files, safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from graph_cases import CASES as GRAPH_CASES
from helpers import CORPUS, assert_close, check_roundtrip, tol, xor_composition

import mdfx as pnl
from mdfx import expr
from mdfx.errors import GraphError, SchemaError, UnsupportedError
from mdfx.runners import mdf_engine, reference
from mdfx.schema import reader
from mdfx.schema.graph import Graph, Node, Param

FUNCTIONS = [
    pnl.Linear(slope=1.5, intercept=-0.25),
    pnl.Logistic(),
    pnl.Logistic(gain=2.0, bias=0.3, x_0=0.2, offset=0.1, scale=1.5),
    pnl.ReLU(gain=1.5, bias=0.1, leak=0.05),
    pnl.Tanh(gain=0.7, bias=-0.2, x_0=0.1, offset=0.05, scale=1.2),
    pnl.SoftMax(gain=1.7),
    pnl.Exponential(rate=0.5, bias=0.1, scale=0.8, offset=-0.3),
    pnl.Identity(),
]


def make_net(function: object, bias: bool = False) -> pnl.AutodiffComposition:
    """3 + 2 inputs converging on a hidden layer with ``function``, a skip, and an output."""
    rng = np.random.default_rng(7)
    a = pnl.TransferMechanism(size=3, name="in a")
    b = pnl.TransferMechanism(size=2, function=pnl.Logistic(gain=0.5), name="in_b")
    h = pnl.TransferMechanism(size=4, function=function, name="hidden",
                              bias=rng.normal(size=4) if bias else None)
    o = pnl.TransferMechanism(size=2, function=pnl.Linear, name="out")
    comp = pnl.AutodiffComposition(name="net", learning_rate=0.1, optimizer_type="adam",
                                   weight_decay=0.01, loss_spec=pnl.Loss.L1)
    comp.add_nodes([a, b, h, o])
    for name, s, r in (("a to h", a, h), ("b_h", b, h), ("h_o", h, o), ("skip", a, o)):
        comp.add_projection(pnl.MappingProjection(matrix=rng.normal(size=(s.size, r.size)), name=name,
                                                  learnable=name != "skip"), s, r)
    return comp


def inputs_for(comp: pnl.AutodiffComposition, trials: int = 5) -> dict:
    rng = np.random.default_rng(3)
    return {n.name: rng.uniform(-1, 1, (trials, n.size)) for n in comp.get_nodes_by_role(pnl.NodeRole.INPUT)}


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: repr(f))
def test_round_trip_is_exact(tmp_path: Path, suffix: str, function: object) -> None:
    comp = make_net(function, bias=True)
    path = pnl.save(comp, tmp_path / f"net{suffix}")
    back = pnl.load(path)
    assert type(back) is pnl.AutodiffComposition
    assert [n.name for n in back.nodes] == [n.name for n in comp.nodes]
    assert [p.name for p in back.projections] == [p.name for p in comp.projections]
    for n0, n1 in zip(comp.nodes, back.nodes, strict=True):
        assert n1.function == n0.function, f"{n0.name}: {n1.function!r} != {n0.function!r}"
        assert (n0.bias is None and n1.bias is None) or n0.bias.tobytes() == n1.bias.tobytes()
    for p0, p1 in zip(comp.projections, back.projections, strict=True):
        assert p1.matrix.tobytes() == p0.matrix.tobytes(), f"{p0.name}: matrix not bit-exact"
        assert p1.learnable == p0.learnable
    assert (back.learning_rate, back.optimizer_type, back.weight_decay, back.loss_spec) == \
        (0.1, "adam", 0.01, pnl.Loss.L1), "training settings survive the trip"


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: repr(f))
def test_modeci_engine_agrees_with_reference(function: object) -> None:
    comp = make_net(function, bias=True)
    graph = comp._graph()
    x = inputs_for(comp, trials=3)
    ours = reference.run(graph, x)
    theirs = mdf_engine.run_graph(graph, x)
    for name in graph.outputs:
        # modeci-mdf's engine evaluates its expressions in its own order (and numpy's float printing)
        assert_close(theirs[name], ours[name], **tol("float64", rtol=1e-9, atol=1e-12),
                     what=f"modeci engine vs reference, {name}")


def test_saved_file_is_standard_mdf_that_modeci_loads(tmp_path: Path) -> None:
    from modeci_mdf.utils import load_mdf

    comp = make_net(pnl.Logistic(gain=2.0))
    path = pnl.save(comp, tmp_path / "net.json")
    model = load_mdf(str(path))
    graph = model.graphs[0]
    assert [n.id for n in graph.nodes] == ["in_a", "in_b", "hidden", "out"]
    assert {e.id for e in graph.edges} == {"a_to_h", "b_h", "h_o", "skip"}
    hidden = next(n for n in graph.nodes if n.id == "hidden")
    assert {f.id: f.function for f in hidden.functions}["value"] == "logistic"


def test_atomic_save_leaves_nothing_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    comp = make_net(pnl.Linear())
    target = tmp_path / "net.json"

    def boom(*args: object, **kwargs: object) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(json, "dumps", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        pnl.save(comp, target)
    assert list(tmp_path.iterdir()) == [], "no partial or temp file is left behind"


# --- corpus files written by other tools -------------------------------------------

MDF_EXAMPLES = sorted(p for p in (CORPUS / "modeci-examples").glob("MDF_*.json")
                      if p.name not in ("MDF_Simple.json", "MDF_Translated_Simple.json"))

#: What mdfx does with the core modeci-mdf examples that are not feed-forward networks:
#: each is refused, naming the construct. (MDF_Simple and MDF_Translated_Simple load;
#: tests/test_foreign_mdf.py checks their numbers.)
EXPECTED_REFUSALS = {
    "MDF_ABCD.json": "unsupported MDF function: sin",
    "MDF_Arrays.json": "(2, 2) do not broadcast",
    "MDF_FN.mdf.json": "time derivative",
    "MDF_NewtonCoolingModel.json": "time derivative",
    "MDF_ParametersFunctions.json": "time derivative",
    "MDF_RNN_RNNs.json": "time derivative",
    "MDF_States.json": "time derivative",
    "MDF_SwitchedRLC_Circuit.json": "has conditions",
    "MDF_abc_conditions.json": "graph has scheduler conditions",
}


@pytest.mark.skipif(not MDF_EXAMPLES, reason="../shared/corpus not present")
@pytest.mark.parametrize("path", MDF_EXAMPLES, ids=lambda p: p.name)
def test_core_mdf_examples_load_or_are_refused_by_name(path: Path) -> None:
    expected = EXPECTED_REFUSALS[path.name]
    with pytest.raises((SchemaError, UnsupportedError, GraphError)) as err:
        reader.from_mdf(path)
    assert expected in str(err.value), f"{path.name}: {err.value}"


@pytest.mark.skipif(not (CORPUS / "hostile").exists(), reason="../shared/corpus not present")
def test_hostile_expression_never_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = CORPUS / "hostile" / "hostile_expr.json"
    for attempt in (lambda: pnl.load(path), lambda: reader.from_mdf(path)):
        try:
            attempt()
        except pnl.MdfxError:
            pass
        assert not (tmp_path / "PWNED_by_mdf_file.txt").exists()
    assert not Path("PWNED_by_mdf_file.txt").exists()
    assert os.listdir(tmp_path) == []


def test_expression_grammar_refuses_code() -> None:
    assert expr.evaluate("2 * x + exp(y) ** 2", {"x": 1.0, "y": 0.0}) == 3.0
    assert expr.names("gain * (x + bias) - exp(x_0)") == {"gain", "x", "bias", "x_0"}
    refused = {
        "__import__('os').system('touch PWNED')": "call of \"__import__('os').system\" is not allowed",
        "x.__class__": "Attribute is not allowed",
        "[1, 2][0]": "Subscript is not allowed",
        "'text'": "only numeric constants are allowed",
        "lambda: 1": "Lambda is not allowed",
        "open('f')": "call of 'open' is not allowed",
    }
    for text, message in refused.items():
        with pytest.raises(SchemaError) as err:
            expr.parse(text)
        assert message.replace('"', "'") in str(err.value).replace('"', "'"), f"{text}: {err.value}"


@pytest.mark.skipif(not (CORPUS / "mdf-idioms").exists(), reason="../shared/corpus not present")
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_pnl_style_idiom_matches_modeci_engine_and_trains(suffix: str) -> None:
    """modeci-mdf's "PsyNeuLink style" MLP (dummy MatMul nodes, vector biases, no metadata)."""
    from modeci_mdf.utils import load_mdf

    path = CORPUS / "mdf-idioms" / f"mlp_3_4_2_pnl_style{suffix}"
    comp = pnl.load(path)
    graph = comp._graph()
    assert [(n.name, n.function, n.bias is not None) for n in graph.mechanisms.nodes] == [
        ("input", "linear", False), ("hidden", "logistic", True), ("output", "linear", True)]
    x = np.random.default_rng(0).normal(size=(4, 3))
    ours = reference.run(graph, {"input": x})["output"]
    theirs = mdf_engine.run(load_mdf(str(path)), {"input": x}, {"input": "input_InputPort_0"},
                            {"output": "output_OutputPort_0"})["output"]
    # the engine runs onnx::MatMul through onnxruntime in float32
    assert_close(ours, theirs, **tol("float32", rtol=1e-6, atol=0.0), what="pnl-style idiom vs modeci-mdf's engine")
    t = np.random.default_rng(1).uniform(size=(4, 2))
    comp.learn(inputs={"input": x}, targets={"output": t}, epochs=20, learning_rate=0.1,
               execution_mode=pnl.ExecutionMode.Python)
    assert comp.losses[-1] < comp.losses[0], comp.losses


# --- op graphs (models brought from elsewhere): MDF is their faithful serialization -----------------


def many_ops_graph() -> Graph:
    """A graph using most op kinds and attribute types: strings, lists, infinities, omitted inputs,
    variadic inputs, pnl ops with parameters, float32 and frozen params, a label output."""
    rng = np.random.default_rng(11)

    def param(name: str, shape: tuple, learnable: bool = True, dtype: str = "float64") -> Param:
        value = rng.normal(size=shape)
        return Param(name, value.astype(np.float32).astype(np.float64) if dtype == "float32" else value,
                     learnable, dtype)

    params = [param("enc.weight", (5, 3), dtype="float32"), param("enc.bias", (5,), dtype="float32"),
              param("ln.weight", (5,)), param("scale", (), learnable=False), param("w2", (8, 4)),
              param("norm.mean", (4,), learnable=False), Param("norm.var", rng.uniform(0.5, 2, 4), False),
              param("norm.weight", (4,)), param("norm.bias", (4,))]
    nodes = [
        Node("enc", "Gemm", ["x", "enc.weight", "enc.bias"], "h", {"transB": 1}),
        Node("gelu", "Gelu", ["h"], "g", {"approximate": "tanh"}),
        Node("ln", "LayerNormalization", ["g", "ln.weight"], "n", {"epsilon": 1e-3}),
        Node("clip", "Clip", ["n"], "c", {"min": -np.inf, "max": 0.75}),
        Node("half", "Slice", ["c"], "s", {"starts": [1], "ends": [4], "axes": [1], "steps": [1]}),
        Node("mul", "Mul", ["s", "scale"], "m"),
        Node("cat", "Concat", ["m", "c"], "cc", {"axis": -1}),
        Node("dense", "MatMul", ["cc", "w2"], "d"),
        Node("bn", "BatchNormalization", ["d", "norm.weight", "norm.bias", "norm.mean", "norm.var"], "b"),
        Node("act", "pnl.Logistic", ["b"], "y", {"gain": 1.5, "x_0": 0.25}),
        Node("soft", "pnl.SoftMax", ["b"], "p", {"gain": 0.5}),
        Node("label", "ArgMax", ["p"], "k", {"axis": 1}),
    ]
    return Graph.build("many ops", {"x": (3,)}, params, nodes, ["y", "p", "k"], dtype="float32",
                       source="test", extra_state={"bn.num_batches_tracked": np.array(3)})


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_graph_round_trip_is_identical(tmp_path: Path, suffix: str) -> None:
    from mdfx.composition.graph_model import GraphComposition

    g = many_ops_graph()
    path = pnl.save(GraphComposition(g), tmp_path / f"g{suffix}")
    back = pnl.load(path)
    assert isinstance(back, GraphComposition)
    b = back.graph
    assert (b.name, b.inputs, b.outputs, b.dtype, b.shapes) == (g.name, g.inputs, g.outputs, g.dtype, g.shapes)
    assert [(n.name, n.op, n.inputs, n.output, n.attrs) for n in b.nodes] == \
        [(n.name, n.op, n.inputs, n.output, n.attrs) for n in g.nodes]
    assert [(k, p.learnable, p.dtype) for k, p in b.params.items()] == [(k, p.learnable, p.dtype) for k, p in g.params.items()]
    for k, p in g.params.items():
        assert b.params[k].value.tobytes() == p.value.tobytes(), f"{k}: not bit-exact"
    assert b.extra_state["bn.num_batches_tracked"].dtype == np.int64, b.extra_state
    assert b.source == "test", b.source
    x = np.random.default_rng(0).normal(size=(6, 3))
    ra, rb = reference.run(g, {"x": x}), reference.run(b, {"x": x})
    for k in g.outputs:
        assert ra[k].tobytes() == rb[k].tobytes(), k


def test_graph_composition_keeps_its_training_settings(tmp_path: Path) -> None:
    from mdfx.composition.graph_model import GraphComposition

    comp = GraphComposition(many_ops_graph(), learning_rate=0.3, optimizer_type="adam", loss_spec=pnl.Loss.L1,
                            weight_decay=0.01)
    back = pnl.load(pnl.save(comp, tmp_path / "g.json"))
    assert (back.learning_rate, back.optimizer_type, back.loss_spec, back.weight_decay) == \
        (0.3, "adam", pnl.Loss.L1, 0.01)


def test_graph_file_is_mdf_with_onnx_functions() -> None:
    from mdfx.schema import writer

    data = writer.to_mdf(many_ops_graph()).to_dict()
    nodes = next(iter(next(iter(data.values()))["graphs"].values()))["nodes"]
    enc = nodes["enc"]
    assert enc["functions"]["value"] == {"function": "onnx::Gemm", "args": {
        "A": "in0", "B": "enc_weight", "C": "enc_bias", "alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1}}
    assert enc["parameters"]["enc_weight"]["metadata"]["mdfx"] == {"name": "enc.weight", "learnable": True,
                                                                   "dtype": "float32"}
    assert np.array(enc["parameters"]["enc_weight"]["value"]).shape == (5, 3), "the source's layout"
    assert [f.get("function") for f in nodes["act"]["functions"].values()] == ["logistic", None], \
        "pnl ops through the standard functions (x_0 as PsyNeuLink applies it)"


def test_torch_graph_runs_in_modeci_engine() -> None:
    """modeci-mdf's own engine runs the file mdfx writes for an imported module (onnx:: ops in onnxruntime)."""
    torch = pytest.importorskip("torch")
    import contextlib
    import io

    ee = pytest.importorskip("modeci_mdf.execution_engine")
    from modeci_mdf.mdf import Model

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2),
                                 torch.nn.Softmax(-1)).double()
    data = pnl.from_torch(module, torch.zeros(1, 3, dtype=torch.float64)).to_mdf().to_dict()
    x = np.random.default_rng(0).normal(size=(5, 3))
    with contextlib.redirect_stdout(io.StringIO()):
        graph = ee.EvaluableGraph(Model.from_dict(data).graphs[0], verbose=False)
        graph.enodes["input"].evaluable_inputs["input"].set_input_value(x)
        graph.evaluate()
    got = graph.enodes["_3"].evaluable_outputs["output"].curr_value
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    # float32 onnxruntime on small values: tighter than TOL["float32"]'s bounds, as measured
    assert_close(got, want, **tol("float32", rtol=1e-6, atol=1e-7), what="modeci-mdf engine (float32 onnxruntime) vs torch")


#: Ops onnxruntime's CPU provider has no float64 kernel for: their ONNX leg runs in float32.
_ORT_FLOAT32_ONLY = {"Elu", "Erf", "Gelu", "HardSigmoid", "Selu", "Softplus", "Conv", "ConvTranspose", "MaxPool",
                     "AveragePool", "LSTM", "GRU", "RNN"}


@pytest.mark.parametrize("case", sorted(GRAPH_CASES))
def test_check_roundtrip_of_every_graph_case(tmp_path: Path, case: str) -> None:
    """Each op's case graph: MDF and back bit for bit, ONNX in onnxruntime and back (helpers.check_roundtrip)."""
    pytest.importorskip("onnxruntime")
    g, x = GRAPH_CASES[case]()
    op = case.split("/")[0].split("+")[0]
    check_roundtrip(g, tmp_path, x, dtype="float32" if op in _ORT_FLOAT32_ONLY else "float64")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_check_roundtrip_of_a_composition(tmp_path: Path, suffix: str) -> None:
    pytest.importorskip("onnxruntime")
    comp, _, _ = xor_composition()
    back = check_roundtrip(comp, tmp_path, suffix=suffix, dtype="float32")
    assert type(back) is pnl.AutodiffComposition


@pytest.mark.parametrize(("op", "attrs"), [("Tanh", {}), ("Exp", {}), ("Log", {}), ("Identity", {}), ("Erf", {}),
                                           ("Clip", {"min": -0.2, "max": 0.5}), ("Cast", {"to": 1})])
def test_onnx_functions_carry_onnx_input_names_so_modeci_engine_runs_them(op: str, attrs: dict) -> None:
    """The writer's ``onnx::<Op>`` args are the op table's input names, which are ONNX's (``input`` for
    Tanh, Exp, Log...): modeci-mdf's engine calls its onnx functions by them."""
    import contextlib
    import io

    ee = pytest.importorskip("modeci_mdf.execution_engine")
    from mdfx.schema import writer

    g = Graph.build("one_op", {"x": (3,)}, [], [Node("op", op, ["x"], "y", attrs)], ["y"])
    model = writer.graph_to_mdf(g)
    args = model.graphs[0].nodes[1].functions[0].args
    assert "input" in args and "X" not in args, args
    x = np.array([[0.1, 0.2, 0.9], [0.4, 0.7, 1.3]])
    with contextlib.redirect_stdout(io.StringIO()):
        engine = ee.EvaluableGraph(model.graphs[0], verbose=False)
        engine.enodes["x"].evaluable_inputs["input"].set_input_value(x)
        engine.evaluate()
    got = engine.enodes["op"].evaluable_outputs["output"].curr_value
    # the engine runs onnx:: functions in float32 onnxruntime
    assert_close(got, reference.run(g, {"x": x})["y"], kind="float32", what=f"modeci-mdf engine running onnx::{op}")
