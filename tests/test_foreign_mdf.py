"""Foreign MDF: every corpus file is loaded and run to the numbers of the tool that wrote it
(modeci-mdf's engine on the same file), and trained, or refused with an error naming the construct.

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
from mdfx.errors import MdfxError, SchemaError, UnsupportedError
from mdfx.runners import reference
from mdfx.runners.training import LearnSpec, train_reference
from mdfx.schema import reader
from mdfx.schema.dialects import modeci, pnl_v01
from mdfx.schema.net import Net

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")

IDIOMS = ["mlp_3_4_2_pure_mdf.json", "mlp_3_4_2_pure_mdf.yaml", "mlp_3_4_2_onnx_ops.json", "mlp_3_4_2_onnx_ops.yaml"]
#: The idioms' network, from the files' own parameters (x @ W layout).
W1 = np.array([[0.1257, -0.1321, 0.6404, 0.1049], [-0.5357, 0.3616, 1.304, 0.9471], [-0.7037, -1.2654, -0.6233, 0.0413]])
B1 = np.array([-2.325, -0.2188, -1.2459, -0.7323])
W2 = np.array([[-0.5443, -0.3163], [0.4116, 1.0425], [-0.1285, 1.3665], [-0.6652, 0.3515]])
B2 = np.array([0.9035, 0.094])


def load(rel: str) -> tuple[dict, Net]:
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


def assert_trains(net: Net, x: np.ndarray, t: np.ndarray, loss: str = "MSE", lr: float = 0.5) -> None:
    """A few learn() steps in Python mode change every learnable array and lower the loss."""
    before = {p.name: p.matrix.copy() for p in net.projections if p.learnable}
    spec = LearnSpec(inputs={net.inputs[0]: x}, targets={net.outputs[0]: t}, epochs=5,
                     minibatch_size=len(x), learning_rate=lr, loss=loss)
    result = train_reference(net, spec)
    assert before, "nothing to train"
    for name, w in before.items():
        assert not np.array_equal(w, net.projection(name).matrix), f"{name} did not change"
    assert result.losses[-1] < result.losses[0], result.losses


def rng_batch(n: int, features: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, features))


# --- the three-idiom MLP ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", IDIOMS)
def test_idioms_load_and_reproduce_their_numbers(name: str) -> None:
    data, net = load(f"mdf-idioms/{name}")
    assert [(n.op, n.size, n.bias is not None) for n in net.nodes] == [
        ("identity", 3, False), ("logistic", 4, True), ("identity", 2, True)]
    x = rng_batch(5, 3)
    got = reference.run(net, {net.inputs[0]: x})[net.outputs[0]]
    by_hand = (1 / (1 + np.exp(-(x @ W1 + B1)))) @ W2 + B2
    np.testing.assert_allclose(got, by_hand, rtol=1e-12, err_msg="against the file's parameters")
    first = next(iter(data.values()))["graphs"]["mlp_graph"]["nodes"]
    entry, exit_ = ("input_layer", "output_layer") if "pure" in name else ("Gemm_1", "Gemm_3")
    out_port = next(iter(first[exit_]["output_ports"]))
    want = engine(data, {(entry, "input"): x}, exit_, out_port)
    # the onnx:: idiom runs in onnxruntime in float32
    np.testing.assert_allclose(got, want, rtol=1e-6 if "onnx" in name else 1e-12, err_msg="against modeci-mdf")
    assert_trains(net, x, np.random.default_rng(1).uniform(size=(5, 2)))


def test_idiom_names() -> None:
    _, pure = load("mdf-idioms/mlp_3_4_2_pure_mdf.json")
    assert [n.name for n in pure.nodes] == ["input_layer", "hidden_layer", "output_layer"]
    assert [p.name for p in pure.projections] == ["hidden_layer.weight", "output_layer.weight"]
    _, onnx_ops = load("mdf-idioms/mlp_3_4_2_onnx_ops.json")
    assert [n.name for n in onnx_ops.nodes] == ["input", "Gemm_1", "Gemm_3"]


# --- files other tools wrote ----------------------------------------------------------------------------


def test_keras_iris_matches_modeci_mdf_and_trains() -> None:
    data, net = load("modeci-examples-large/TensorFlow_Keras_IRIS_keras_to_MDF.json")
    assert [(n.name, n.op, n.size) for n in net.nodes] == [
        ("Input", "identity", 4), ("First_layer", "relu", 32), ("Second_layer", "relu", 64),
        ("Third_layer", "relu", 64), ("Fourth_layer", "softmax", 3)]
    x = modeci.default_inputs(data)["Input"]  # the 30 samples the file carries
    assert x.shape == (30, 4)
    got = reference.run(net, {"Input": x})["Fourth_layer"]
    want = engine(data, {}, "Fourth_layer", "Fourth_layer_out")
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)  # its Softmax runs in onnxruntime, float32
    targets = np.eye(3)[np.arange(30) % 3]
    assert_trains(net, x, targets, loss="CROSS_ENTROPY", lr=0.1)


def test_keras_iris_through_mdfx_load_learns() -> None:
    comp = mdfx.load(CORPUS / "modeci-examples-large" / "TensorFlow_Keras_IRIS_keras_to_MDF.json")
    assert isinstance(comp, mdfx.AutodiffComposition)
    data = reader.read_file(CORPUS / "modeci-examples-large" / "TensorFlow_Keras_IRIS_keras_to_MDF.json")
    x = modeci.default_inputs(data)["Input"]
    before = [p.matrix.copy() for p in comp.projections]
    comp.learn(inputs={"Input": x}, targets={"Fourth_layer": np.eye(3)[np.arange(30) % 3]}, epochs=2,
               minibatch_size=10, learning_rate=0.1, execution_mode=mdfx.ExecutionMode.Python)
    assert all(not np.array_equal(b, p.matrix) for b, p in zip(before, comp.projections, strict=True))


def test_pytorch_mlp_pure_mdf_matches_modeci_mdf_and_trains() -> None:
    data, net = load("modeci-examples-large/PyTorch_mlp_pure_mdf.json")
    assert [(n.op, n.size) for n in net.nodes] == [("identity", 196), ("relu", 128), ("relu", 128), ("identity", 10)]
    x = np.random.default_rng(0).uniform(size=(3, 196))  # the file's own input is all zeros
    mdf = copy.deepcopy(data)
    mdf["mlp_pure_mdf"]["graphs"]["mlp_pure_mdf"]["nodes"]["mlp_input_layer"]["parameters"]["input"]["value"] = x.tolist()
    got = reference.run(net, {"input": x})["mlp_output_layer"]
    np.testing.assert_allclose(got, engine(mdf, {}, "mlp_output_layer", "out_port"), rtol=1e-12, atol=1e-12)
    assert_trains(net, x, np.eye(10)[[1, 4, 7]], lr=0.05)


@pytest.mark.parametrize(("rel", "entry", "outputs"), [
    ("modeci-examples/ONNX_ab.json", ("/A/Add", "input"), {"/B/Mul": "_4"}),
    ("modeci-examples/ONNX_abcd.json", ("/A/Mul", "input"), {"/C/Add": "c", "/D/Add": "d"}),
])
def test_onnx_to_mdf_output_matches_modeci_mdf(rel: str, entry: tuple[str, str], outputs: dict[str, str]) -> None:
    """onnx_to_mdf's x+1 then *5, and the a*x+b chain: Mul and Add by constants fold into layers."""
    data, net = load(rel)
    x = rng_batch(2, net.node(net.inputs[0]).size)
    got = reference.run(net, {net.inputs[0]: x})
    for node, port in outputs.items():
        np.testing.assert_allclose(got[node], engine(data, {entry: x}, node, port), rtol=1e-6)


@pytest.mark.parametrize("name", ["MDF_Simple.json", "MDF_Translated_Simple.json"])
def test_mdf_simple_matches_modeci_mdf(name: str) -> None:
    """Stateless example (format 0.4 and 0.3): its input is the input_node's parameter."""
    data, net = load(f"modeci-examples/{name}")
    x = modeci.default_inputs(data)["input_node"]
    got = reference.run(net, {"input_node": x})["processing_node"]
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
    assert [(n.name, n.op) for n in net.nodes] == [("A", "linear"), ("B", "logistic"), ("C", "exponential")]
    assert (net.inputs, net.outputs, net.autodiff) == (["A"], ["B", "C"], False)
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
    assert [p.name for p in net.projections] == list(graph["edges"])
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
    """Each expression, as a Net, against mdfx.expr evaluating the same text over the same arrays."""
    net = reader.from_mdf(expression_model(value))
    x = rng_batch(4, 3)
    from mdfx import expr

    want = expr.evaluate(value, {"x": x, "W": W, "b": BIAS})
    np.testing.assert_allclose(reference.run(net, {"source": x})["layer"], want, rtol=1e-12, atol=1e-15)
    assert sum(p.learnable for p in net.projections) == 1, "one weight matrix, however often it is used"


@pytest.mark.parametrize(("value", "extra", "message"), [
    ("count", {"count": {"value": "count + 1"}}, r"node 'layer': 'count' is computed from itself \(a stateful"),
    ("sin(x @ W)", {}, r"node 'layer' output port 'out': 'sin\(x @ W\)' is not supported in a network"),
    ("(x @ W) * (x @ W)", {}, r"\(Mul\): both operands are computed tensors"),
    ("W @ x", {}, r"\(MatMul\): the constant is the left operand"),
])
def test_expression_refusals_name_the_construct(value: str, extra: dict, message: str) -> None:
    with pytest.raises(UnsupportedError, match=message):
        reader.from_mdf(expression_model(value, **extra))


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
        (UnsupportedError, r"edge into 'middle_node' port 'input_port1' \(Mul\): constant of shape \(2, 2\) "
                           r"does not broadcast as one value per feature"),
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
    # CNNs
    "modeci-examples-large/PyTorch_PyTorch_MDF_resnet.json": (UnsupportedError, r"uses onnx::Conv; convolutions"),
    "modeci-examples-large/PyTorch_PyTorch_MDF_simple_convolution.json":
        (UnsupportedError, r"node 'Conv_5': .* uses onnx::Conv; convolutions"),
    "modeci-examples-large/PyTorch_PyTorch_MDF_vgg16.json": (UnsupportedError, r"uses onnx::Conv; convolutions"),
    "modeci-examples-large/PyTorch_inception.json": (UnsupportedError, r"uses onnx::Conv; convolutions"),
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
    ("modeci-examples-large/PyTorch_PyTorch_MDF_simple_convolution.json", "onnx::Conv"),
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
