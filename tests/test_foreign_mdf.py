"""Foreign MDF: every corpus file is loaded and run to the numbers of the tool that wrote it
(modeci-mdf's engine on the same file), and trained, or refused with an error naming the construct.
Files other tools wrote become op graphs that keep their parametrisation (each weight and bias its own
param, constants frozen); PsyNeuLink's become Nets of mechanisms.

Decisions per file are the tables LOADED / REFUSED below; the hostile file never runs code.
"""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

import numpy as np
import pytest

import mdfx
from mdfx.errors import GraphError, MdfxError, SchemaError, UnsupportedError
from mdfx.runners import reference
from mdfx.runners.training import LearnSpec, train_reference
from mdfx.schema import reader
from mdfx.schema.dialects import modeci, pnl_v01
from mdfx.schema.graph import Graph

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")

IDIOMS = ["mlp_3_4_2_pure_mdf.json", "mlp_3_4_2_pure_mdf.yaml", "mlp_3_4_2_onnx_ops.json", "mlp_3_4_2_onnx_ops.yaml"]
#: The idioms' network, from the files' own parameters (x @ W layout).
W1 = np.array([[0.1257, -0.1321, 0.6404, 0.1049], [-0.5357, 0.3616, 1.304, 0.9471], [-0.7037, -1.2654, -0.6233, 0.0413]])
B1 = np.array([-2.325, -0.2188, -1.2459, -0.7323])
W2 = np.array([[-0.5443, -0.3163], [0.4116, 1.0425], [-0.1285, 1.3665], [-0.6652, 0.3515]])
B2 = np.array([0.9035, 0.094])


def load(rel: str) -> tuple[dict, Graph]:
    data = reader.read_file(CORPUS / rel)
    return data, reader.from_mdf(data)


def engine(data: dict, feeds: dict[tuple[str, str], np.ndarray], node: str, port: str) -> np.ndarray:
    """modeci-mdf's EvaluableGraph on the file (the whole batch at once): the writer's numbers."""
    ee = pytest.importorskip("modeci_mdf.execution_engine")
    from modeci_mdf.mdf import Model

    with contextlib.redirect_stdout(io.StringIO()):  # the engine prints as it goes
        graph = ee.EvaluableGraph(Model.from_dict(copy.deepcopy(data)).graphs[0], verbose=False)
        for (n, p), value in feeds.items():
            graph.enodes[n].evaluable_inputs[p].set_input_value(value)
        graph.evaluate()
    return np.asarray(graph.enodes[node].evaluable_outputs[port].curr_value, dtype=np.float64)


def assert_trains(g: Graph, x: np.ndarray, t: np.ndarray, loss: str = "MSE", lr: float = 0.5) -> None:
    """A few learn() steps in Python mode change every learnable array, leave the frozen ones, and lower the loss."""
    before = {k: p.value.copy() for k, p in g.params.items()}
    spec = LearnSpec(inputs={next(iter(g.inputs)): x}, targets={g.outputs[0]: t}, epochs=5,
                     minibatch_size=len(x), learning_rate=lr, loss=loss)
    result = train_reference(g, spec)
    assert any(p.learnable for p in g.params.values()), "nothing to train"
    for name, w in before.items():
        changed = not np.array_equal(w, g.params[name].value)
        assert changed == g.params[name].learnable, f"{name}: learnable {g.params[name].learnable}, changed {changed}"
    assert result.losses[-1] < result.losses[0], result.losses


def rng_batch(n: int, features: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, features))


# --- the three-idiom MLP ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", IDIOMS)
def test_idioms_load_and_reproduce_their_numbers(name: str) -> None:
    data, g = load(f"mdf-idioms/{name}")
    assert [(p.shape, p.learnable) for p in g.params.values()] == (
        [((3, 4), True), ((4,), True), ((4, 2), True), ((2,), True)] if "pure" in name
        else [((4, 3), True), ((4,), True), ((2, 4), True), ((2,), True)])  # onnx:: keeps Gemm's (out, in)
    x = rng_batch(5, 3)
    got = reference.run(g, {next(iter(g.inputs)): x})[g.outputs[0]]
    by_hand = (1 / (1 + np.exp(-(x @ W1 + B1)))) @ W2 + B2
    np.testing.assert_allclose(got, by_hand, rtol=1e-12, err_msg="against the file's parameters")
    first = next(iter(data.values()))["graphs"]["mlp_graph"]["nodes"]
    entry, exit_ = ("input_layer", "output_layer") if "pure" in name else ("Gemm_1", "Gemm_3")
    out_port = next(iter(first[exit_]["output_ports"]))
    want = engine(data, {(entry, "input"): x}, exit_, out_port)
    # the onnx:: idiom runs in onnxruntime in float32
    np.testing.assert_allclose(got, want, rtol=1e-6 if "onnx" in name else 1e-12, err_msg="against modeci-mdf")
    assert_trains(g, x, np.random.default_rng(1).uniform(size=(5, 2)))


def test_idiom_names() -> None:
    _, pure = load("mdf-idioms/mlp_3_4_2_pure_mdf.json")
    assert (list(pure.inputs), pure.outputs) == (["input_layer"], ["output_layer"])
    assert list(pure.params) == ["hidden_layer.weight", "hidden_layer.bias", "output_layer.weight", "output_layer.bias"]
    assert [(n.op, n.output) for n in pure.nodes] == [
        ("MatMul", "hidden_layer#1"), ("Add", "hidden_layer#2"), ("pnl.Logistic", "hidden_layer"),
        ("MatMul", "output_layer#4"), ("Add", "output_layer")]
    _, onnx_ops = load("mdf-idioms/mlp_3_4_2_onnx_ops.json")
    assert [(n.op, n.output) for n in onnx_ops.nodes] == [("Gemm", "Gemm_1"), ("Sigmoid", "Sigmoid_2"),
                                                          ("Gemm", "Gemm_3")]


# --- files other tools wrote ----------------------------------------------------------------------------


def test_keras_iris_matches_modeci_mdf_and_trains() -> None:
    data, g = load("modeci-examples-large/TensorFlow_Keras_IRIS_keras_to_MDF.json")
    assert [(n.output, n.op) for n in g.nodes if "#" not in n.output] == [
        ("First_layer", "Relu"), ("Second_layer", "Relu"), ("Third_layer", "Relu"), ("Fourth_layer", "Softmax")]
    assert [(k, p.shape) for k, p in g.params.items()][:2] == [("First_layer.wgts", (4, 32)), ("First_layer.bias", (32,))]
    x = modeci.default_inputs(data)["Input"]  # the 30 samples the file carries
    assert x.shape == (30, 4)
    got = reference.run(g, {"Input": x})["Fourth_layer"]
    want = engine(data, {}, "Fourth_layer", "Fourth_layer_out")
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)  # its Softmax runs in onnxruntime, float32
    targets = np.eye(3)[np.arange(30) % 3]
    assert_trains(g, x, targets, loss="CROSS_ENTROPY", lr=0.1)


def test_keras_iris_through_mdfx_load_learns() -> None:
    comp = mdfx.load(CORPUS / "modeci-examples-large" / "TensorFlow_Keras_IRIS_keras_to_MDF.json")
    assert isinstance(comp, mdfx.AutodiffComposition) and type(comp).__name__ == "GraphComposition"
    data = reader.read_file(CORPUS / "modeci-examples-large" / "TensorFlow_Keras_IRIS_keras_to_MDF.json")
    x = modeci.default_inputs(data)["Input"]
    before = {k: v.copy() for k, v in comp.parameters_dict().items()}
    comp.learn(inputs={"Input": x}, targets={"Fourth_layer": np.eye(3)[np.arange(30) % 3]}, epochs=2,
               minibatch_size=10, learning_rate=0.1, execution_mode=mdfx.ExecutionMode.Python)
    assert all(not np.array_equal(b, comp.parameters_dict()[k]) for k, b in before.items())


def test_pytorch_mlp_pure_mdf_matches_modeci_mdf_and_trains() -> None:
    data, g = load("modeci-examples-large/PyTorch_mlp_pure_mdf.json")
    assert [n.op for n in g.nodes] == ["MatMul", "Add", "Relu", "MatMul", "Add", "Relu", "MatMul", "Add"]
    assert [p.shape for p in g.params.values()] == [(196, 128), (128,), (128, 128), (128,), (128, 10), (10,)]
    x = np.random.default_rng(0).uniform(size=(3, 196))  # the file's own input is all zeros
    mdf = copy.deepcopy(data)
    mdf["mlp_pure_mdf"]["graphs"]["mlp_pure_mdf"]["nodes"]["mlp_input_layer"]["parameters"]["input"]["value"] = x.tolist()
    got = reference.run(g, {"input": x})["mlp_output_layer"]
    np.testing.assert_allclose(got, engine(mdf, {}, "mlp_output_layer", "out_port"), rtol=1e-12, atol=1e-12)
    assert_trains(g, x, np.eye(10)[[1, 4, 7]], lr=0.05)


@pytest.mark.parametrize(("rel", "entry", "outputs"), [
    ("modeci-examples/ONNX_ab.json", ("/A/Add", "input"), {"/B/Mul": "_4"}),
    ("modeci-examples/ONNX_abcd.json", ("/A/Mul", "input"), {"/C/Add": "c", "/D/Add": "d"}),
])
def test_onnx_to_mdf_output_matches_modeci_mdf(rel: str, entry: tuple[str, str], outputs: dict[str, str]) -> None:
    """onnx_to_mdf's x+1 then *5, and the a*x+b chain: each constant a frozen param, nothing folded."""
    data, g = load(rel)
    assert not any(p.learnable for p in g.params.values())
    assert [n.op for n in g.nodes][:2] == (["Add", "Mul"] if "ab.json" in rel else ["Mul", "Add"])
    x = rng_batch(2, g.size(next(iter(g.inputs))))
    got = reference.run(g, {next(iter(g.inputs)): x})
    for node, port in outputs.items():
        np.testing.assert_allclose(got[node], engine(data, {entry: x}, node, port), rtol=1e-6)


@pytest.mark.parametrize("name", ["MDF_Simple.json", "MDF_Translated_Simple.json"])
def test_mdf_simple_matches_modeci_mdf(name: str) -> None:
    """Stateless example (format 0.4 and 0.3): its input is the input_node's parameter."""
    data, g = load(f"modeci-examples/{name}")
    x = modeci.default_inputs(data)["input_node"]
    got = reference.run(g, {"input_node": x})["processing_node"]
    want = engine(reader.read_file(CORPUS / "modeci-examples" / "MDF_Simple.json"), {}, "processing_node", "output_1")
    np.testing.assert_allclose(got.ravel(), np.ravel(want), rtol=1e-12)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-3 * (0.5 * 0.55 * 0.5)))[None, None], rtol=1e-12)


# --- PsyNeuLink 0.9 (format v0.1) -------------------------------------------------------------------


def test_pnl_v01_feed_forward_part_loads() -> None:
    """PNL_model_ABCD without its IntegratorMechanism D: A (Linear 2x+2) -> B (Logistic), C (Exponential)."""
    data = reader.read_file(CORPUS / "modeci-examples" / "PNL_model_ABCD.json")
    graph = data["ABCD"]["graphs"]["ABCD"]
    del graph["nodes"]["D"]
    del graph["conditions"]["node_specific"]["D"]
    graph["edges"] = {k: e for k, e in graph["edges"].items() if e["receiver"] != "D"}
    net = reader.from_mdf(data)
    m = net.mechanisms
    assert [(n.name, n.function) for n in m.nodes] == [("A", "linear"), ("B", "logistic"), ("C", "exponential")]
    assert (m.inputs, m.outputs, m.autodiff) == (("A",), ("B", "C"), False)
    x = np.array([[-1.0], [0.0], [0.5]])
    out = reference.run(net, {"A": x})
    np.testing.assert_allclose(out["B"], 1 / (1 + np.exp(-(2 * x + 2))), rtol=1e-12)
    np.testing.assert_allclose(out["C"], np.exp(2 * x + 2), rtol=1e-12)


def test_pnl_v01_default_conditions_are_accepted() -> None:
    data = reader.read_file(CORPUS / "modeci-examples" / "PNL_SimpleLinear-conditional.json")
    graph = data["comp"]["graphs"]["comp"]
    graph["conditions"]["node_specific"] = {"A": {"type": "Always", "args": {}},
                                            "B": {"type": "EveryNCalls", "args": {"dependency": "A", "n": 1}}}
    net = reader.from_mdf(data)
    assert [p.name for p in net.mechanisms.projections] == list(graph["edges"])
    np.testing.assert_allclose(reference.run(net, {"A": np.array([[3.0]])})["C"], [[3.0]])


# --- hand-written pure MDF: expression idioms ---------------------------------------------------------------

W = np.array([[0.5, -1.0], [0.25, 0.75], [-0.5, 0.1]])
BIAS = np.array([0.1, -0.2])


def expression_model(value: str, **extra: dict) -> dict:
    """x (3) -> a node computing ``value`` from its port x and Parameters W (3x2), b (2)."""
    layer = {"input_ports": {"x": {"shape": [3]}},
             "parameters": {"W": {"value": W.tolist()}, "b": {"value": BIAS.tolist()}, **extra},
             "output_ports": {"out": {"value": value}}}
    source = {"input_ports": {"x": {"shape": [3]}}, "output_ports": {"out": {"value": "x"}}}
    graph = {"nodes": {"source": source, "layer": layer},
             "edges": {"e": {"sender": "source", "sender_port": "out", "receiver": "layer", "receiver_port": "x"}}}
    return {"m": {"format": "ModECI MDF v0.4", "graphs": {"g": graph}}}


@pytest.mark.parametrize("value", [
    "(x @ W) + b", "maximum(x @ W + b, 0)", "(x @ W + b) * ((x @ W + b) > 0)", "tanh(x @ W) * 2 - b",
    "exp(-(x @ W) / 2)", "0.5 * (x @ W) - (x @ W) * 0.25 + b",
])
def test_expressions_mean_what_the_grammar_says(value: str) -> None:
    """Each expression, as a graph, against mdfx.expr evaluating the same text over the same arrays."""
    g = reader.from_mdf(expression_model(value))
    x = rng_batch(4, 3)
    from mdfx import expr

    want = expr.evaluate(value, {"x": x, "W": W, "b": BIAS})
    np.testing.assert_allclose(reference.run(g, {"source": x})["layer"], want, rtol=1e-12, atol=1e-15)
    assert g.params["layer.W"].learnable, "one weight matrix, however often it is used"
    assert sum(n.inputs.count("layer.W") for n in g.nodes) == 1, "x @ W is computed once"
    assert all(not p.learnable for k, p in g.params.items() if k not in ("layer.W", "layer.b"))


@pytest.mark.parametrize(("value", "extra", "message"), [
    ("count", {"count": {"value": "count + 1"}}, r"node 'layer': 'count' is computed from itself \(a stateful"),
    ("sin(x @ W)", {}, r"node 'layer' output port 'out': 'sin\(x @ W\)' is not supported in a network"),
    ("W @ x", {}, r"node 'layer' \(MatMul\): MatMul of \(3, 2\) and \(batch, 3\): inner dimensions 2 and"),
])
def test_expression_refusals_name_the_construct(value: str, extra: dict, message: str) -> None:
    with pytest.raises((UnsupportedError, GraphError), match=message):
        reader.from_mdf(expression_model(value, **extra))


def test_tensor_times_tensor_now_loads() -> None:
    """(x @ W) * (x @ W): a product of two computed tensors is an op like any other (no folding needed)."""
    g = reader.from_mdf(expression_model("(x @ W) * (x @ W)"))
    x = rng_batch(3, 3)
    np.testing.assert_allclose(reference.run(g, {"source": x})["layer"], (x @ W) ** 2, rtol=1e-12)


def test_port_fed_by_two_edges_is_refused() -> None:
    data = expression_model("x")
    graph = data["m"]["graphs"]["g"]
    graph["edges"]["e2"] = dict(graph["edges"]["e"])
    graph["edges"]["e2"]["sender"] = "layer"  # any second edge into the same port
    with pytest.raises(UnsupportedError, match=r"node 'layer' input port 'x' receives several edges"):
        reader.from_mdf(data)


# --- refusals: one line per file, the construct named ----------------------------------------------------

REFUSED = {
    # PsyNeuLink 0.9: stateful mechanisms and scheduling that is not one pass per trial
    "modeci-examples/PNL_SimpleFN.json":
        (UnsupportedError, r"node 'fn' is stateful: IntegratorMechanism with FitzHughNagumoIntegrator_Function_0"),
    "modeci-examples/PNL_model_ABCD.json":
        (UnsupportedError, r"node 'D' is stateful: IntegratorMechanism with SimpleIntegrator_Function_0"),
    "modeci-examples/PNL_SimpleLinear-conditional.json":
        (UnsupportedError, r"scheduler conditions that change what runs when: A: AtNCalls\(dependency=A, n=0.*"
                           r"C: EveryNCalls\(dependency=B, n=5\)"),
    # modeci-mdf's core examples
    "modeci-examples/MDF_ABCD.json": (UnsupportedError, r"unsupported MDF function: sin \(node 'D'\)"),
    "modeci-examples/MDF_Arrays.json":
        (GraphError, r"node 'middle_node#1' \(Mul\): shapes \(batch, 2\) and \(2, 2\) do not broadcast"),
    "modeci-examples/MDF_FN.mdf.json": (UnsupportedError, r"node 'FNpop_0': parameter 'V' has a time derivative"),
    "modeci-examples/MDF_NewtonCoolingModel.json":
        (UnsupportedError, r"node 'cool_node': parameter 'T_curr' has a time derivative"),
    "modeci-examples/MDF_ParametersFunctions.json": (UnsupportedError, r"'param_time_deriv' has a time derivative"),
    "modeci-examples/MDF_RNN_RNNs.json": (UnsupportedError, r"node 'input_node': parameter 't' has a time derivative"),
    "modeci-examples/MDF_States.json": (UnsupportedError, r"parameter 'level' has a time derivative"),
    "modeci-examples/MDF_SwitchedRLC_Circuit.json": (UnsupportedError, r"node 'V': parameter 'Vs' has conditions"),
    "modeci-examples/MDF_abc_conditions.json":
        (UnsupportedError, r"graph has scheduler conditions: B: EveryNCalls\(dependencies=A, n=2\)"),
    # onnx_to_mdf / pytorch_to_mdf output
    "modeci-examples/ONNX_abc.json": (UnsupportedError, r"node 'Loop_6': .* uses onnx::Loop"),
    "modeci-examples/ONNX_abc_basic-mdf.json":
        (UnsupportedError, r"unsupported MDF functions: onnx::Cos \(node '/C/Cos'\); onnx::Sin \(node '/A/Sin', node '/B/Sin'\)"),
    "modeci-examples/PyTorch_ddm.json":
        (UnsupportedError, r"node 'LoopSubgraphLoop_11_12' holds a subgraph \(an ONNX Loop"),
    "modeci-examples/PyTorch_simple_pytorch_to_mdf.json":
        (SchemaError, r"the weights are not in the file; 8 weight input ports .*mdfx.from_mdf_with_weights"),
    # CNNs: pytorch_to_mdf leaves their weights out (tests/test_modeci_cnn.py loads them with weights)
    "modeci-examples-large/PyTorch_PyTorch_MDF_resnet.json":
        (SchemaError, r"the weights are not in the file; \d+ weight input ports \(input4 \(64x3x7x7\)"),
    "modeci-examples-large/PyTorch_PyTorch_MDF_simple_convolution.json":
        (SchemaError, r"the weights are not in the file; 4 weight input ports \(conv1_weight \(8x1x3x3\) of node "
                      r"'Conv_5'"),
    "modeci-examples-large/PyTorch_PyTorch_MDF_vgg16.json": (SchemaError, r"the weights are not in the file"),
    "modeci-examples-large/PyTorch_inception.json": (SchemaError, r"the weights are not in the file"),
}


@pytest.mark.parametrize("rel", sorted(REFUSED))
def test_refused_with_the_construct_named(rel: str) -> None:
    error, message = REFUSED[rel]
    with pytest.raises(error, match=message):
        reader.from_mdf(CORPUS / rel)


@pytest.mark.parametrize(("rel", "message"), [
    ("modeci-examples/MDF_FN.mdf.json", "time derivative"),
    ("modeci-examples/MDF_abc_conditions.json", "scheduler conditions"),
    ("modeci-examples/MDF_SwitchedRLC_Circuit.json", "parameter 'Vs' has conditions"),
    ("modeci-examples/ONNX_abc.json", "onnx::Loop; control flow"),
])
def test_check_feed_forward_names_the_construct(rel: str, message: str) -> None:
    graph = next(iter(next(iter(reader.read_file(CORPUS / rel).values()))["graphs"].values()))
    with pytest.raises(UnsupportedError, match=message):
        reader.check_feed_forward(graph)


def test_dialect_detection_leaves_other_dialects_alone() -> None:
    def detects(dialect: object, rel: str) -> bool:
        data = reader.read_file(CORPUS / rel)
        return dialect.detect(data, next(iter(next(iter(data.values()))["graphs"].values())))

    for rel in ["mdf-idioms/mlp_3_4_2_pnl_style.json", "psyneulink/seed_untrained_pnl_edges.json",
                "psyneulink/xor_untrained_pnl_edges.json", "modeci-examples/PNL_model_ABCD.json"]:
        assert not detects(modeci, rel), rel
    assert [detects(pnl_v01, f"modeci-examples/{f}") for f in ("PNL_SimpleFN.json", "MDF_Simple.json")] == [True, False]
    assert not detects(pnl_v01, "psyneulink/seed_untrained_pnl_edges.json")


def test_hostile_file_never_runs_its_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = CORPUS / "hostile" / "hostile_expr.json"
    for attempt in (lambda: reader.from_mdf(path), lambda: mdfx.load(path), lambda: modeci.default_inputs(
            reader.read_file(path))):
        with pytest.raises(MdfxError) as info:
            attempt()
        assert not (tmp_path / "PWNED_by_mdf_file.txt").exists()
    assert "BoolOp is not allowed" in str(info.value)
    assert not (tmp_path / "PWNED_by_mdf_file.txt").exists()
