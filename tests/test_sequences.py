"""Sequence models: integer inputs, embeddings (and, as they land, recurrent layers and attention).

A corpus generated at test time: each torch module of :data:`CASES` goes in through the
legacy exporter (opsets 14, 17, 18), the dynamo exporter (opset 18; asked for 17 it writes
18) and ``mdfx.from_torch``, in float64 and float32. For each file:

* ``run()`` equals onnxruntime on the original file (1e-10 in float64, 1e-5 in float32);
* training in Python, PyTorch and LLVMRun equals the same SGD of the original module
  (float64, 1e-9), with every parameter of the module learnable and trained (counted);
* the export back runs in onnxruntime and equals run();
* the trained state_dict loads into the original module (strictly), and the MDF round
  trip keeps the integer inputs.

A representative subset runs by default; ``MDFX_FULL_SEQ=1`` runs every combination.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from helpers import assert_close  # noqa: E402

import mdfx  # noqa: E402
import mdfx.io  # noqa: E402
from mdfx.composition.graph_model import GraphComposition  # noqa: E402
from mdfx.converters import onnx_import  # noqa: E402
from mdfx.converters.onnx_export import to_onnx  # noqa: E402
from mdfx.errors import DataError, GraphError, LimitError, UnsupportedError  # noqa: E402
from mdfx.runners import ort, reference  # noqa: E402
from mdfx.schema.graph import Graph, Node, Param  # noqa: E402

nn = torch.nn
F = torch.nn.functional
FULL = os.environ.get("MDFX_FULL_SEQ") == "1"
DYNAMO = importlib.util.find_spec("onnxscript") is not None
HAS_LLVM = importlib.util.find_spec("llvmlite") is not None
RUN_TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6)}
MODES = ["Python", "PyTorch", "LLVMRun"]


# --- the modules ---------------------------------------------------------------------------------


class EmbedMean(nn.Module):
    """nn.Embedding -> mean over the tokens -> Linear: a bag-of-words classifier."""

    def __init__(self, vocab: int = 11, dim: int = 5, out: int = 3) -> None:
        super().__init__()
        self.emb, self.lin = nn.Embedding(vocab, dim), nn.Linear(dim, out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.lin(self.emb(tokens).mean(dim=1))


class EmbedFlat(nn.Module):
    """Two embeddings of the same tokens, summed, flattened, a tanh Linear: a table read twice."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.lin = nn.Embedding(7, 4), nn.Embedding(7, 4), nn.Linear(4 * 6, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin((self.a(tokens) + self.b(tokens)).flatten(1)))


class Recurrent(nn.Module):
    """nn.LSTM / nn.GRU / nn.RNN (batch_first) and a Linear on the last step: of the output (its first
    step too, where a reverse direction ends), or h_n[-1] (+ h_n[-2]): every parameter takes a gradient."""

    def __init__(self, kind: str, layers: int = 1, bidirectional: bool = False, last: str = "output",
                 **kwargs: object) -> None:
        super().__init__()
        self.kind, self.last = kind, last
        self.rnn = getattr(nn, kind)(3, 4, num_layers=layers, batch_first=True, bidirectional=bidirectional,
                                     **kwargs)
        width = 4 * (2 if bidirectional and last == "output" else 1)
        self.lin = nn.Linear(width, 2)
        self.two_states = layers * (2 if bidirectional else 1) > 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "LSTM":
            y, (h, c) = self.rnn(x)
        else:
            y, h = self.rnn(x)
        if self.last == "output":
            return self.lin(y[:, -1] + y[:, 0])
        return self.lin(h[-1] + h[-2] if self.two_states else h[-1])


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], nn.Module]
    features: tuple[int, ...]  #: feature shape of the input
    out: int
    vocab: int = 0  #: > 0: the input is int64 token indices below vocab

    def data(self, n: int, seed: int = 1) -> np.ndarray:
        rng = np.random.default_rng(seed)
        if self.vocab:
            return rng.integers(0, self.vocab, size=(n, *self.features))
        return rng.normal(size=(n, *self.features))

    def torch_input(self, x: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        t = torch.from_numpy(x)
        return t if self.vocab else t.to(dtype)


def _rnn(kind: str, name: str, **kwargs: object) -> Case:
    return Case(name, lambda: Recurrent(kind, **kwargs), (5, 3), 2)


CASES = {c.name: c for c in [
    Case("EmbedMean", EmbedMean, (7,), 3, vocab=11), Case("EmbedFlat", EmbedFlat, (6,), 2, vocab=7),
    _rnn("LSTM", "LSTM2", layers=2), _rnn("LSTM", "LSTM_bi_h", bidirectional=True, last="h"),
    _rnn("GRU", "GRU2_bi", layers=2, bidirectional=True), _rnn("GRU", "GRU_h", last="h"),
    _rnn("RNN", "RNN2_relu", layers=2, nonlinearity="relu"), _rnn("RNN", "RNN_bi", bidirectional=True),
]}
#: ops onnxruntime runs in float32 only: their float64 files are checked against torch instead
NO_ORT_FLOAT64 = ("LSTM", "GRU", "RNN")


def seeded(case: Case, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(0)
    return case.make().to(dtype).eval()


# --- the corpus: exported at test time, once per file ----------------------------------------------

#: (exporter, opset): "legacy" is torch.onnx.export(dynamo=False), "dynamo" dynamo=True
SOURCES = [("legacy", 14), ("legacy", 17), ("legacy", 18), ("dynamo", 18), ("torch", 0)]
DEFAULT = {("legacy", 17), ("dynamo", 18), ("torch", 0)}
_FILES: dict[tuple, Path] = {}


def export(case: Case, path: Path, exporter: str, opset: int, dtype: torch.dtype) -> Path:
    model = seeded(case, dtype)
    x = case.torch_input(case.data(2), dtype)
    kwargs: dict = dict(opset_version=opset, input_names=["x"], output_names=["y"])
    if exporter == "dynamo":
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
    else:
        kwargs["dynamic_axes"] = {"x": {0: "batch"}, "y": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=exporter == "dynamo", **kwargs)
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., tuple[mdfx.AutodiffComposition, Path | None]]:
    """The case as a composition (and its file): imported from an export, or from_torch."""
    def get(case: Case, exporter: str, opset: int, dtype: str = "float64"):
        if exporter == "torch":
            return mdfx.from_torch(seeded(case, getattr(torch, dtype)), case.torch_input(case.data(2)),
                                   input_names=["x"], output_names=["y"]), None
        if exporter == "dynamo" and not DYNAMO:
            pytest.skip("the dynamo exporter needs onnxscript")
        key = (case.name, exporter, opset, dtype)
        if key not in _FILES:
            path = tmp_path_factory.mktemp("seq") / f"{case.name}_{exporter}{opset}_{dtype}.onnx"
            _FILES[key] = export(case, path, exporter, opset, getattr(torch, dtype))
        return mdfx.load(_FILES[key]), _FILES[key]

    return get


def _matrix(dtypes: tuple[str, ...]) -> list:
    out = []
    for case in CASES:
        for exporter, opset in SOURCES:
            for dtype in dtypes:
                default = (exporter, opset) in DEFAULT and (dtype == "float64" or case in ("EmbedMean", "LSTM2"))
                marks = () if FULL or default else pytest.mark.skip(reason="MDFX_FULL_SEQ=1 runs it")
                out.append(pytest.param(case, exporter, opset, dtype, marks=marks,
                                        id=f"{case}-{exporter}{opset or ''}-{dtype}"))
    return out


# --- run() against onnxruntime, the export back, MDF --------------------------------------------------


@pytest.mark.parametrize(("case", "exporter", "opset", "dtype"), _matrix(("float64", "float32")))
def test_run_matches_onnxruntime(source: Callable, case: str, exporter: str, opset: int, dtype: str) -> None:
    c = CASES[case]
    comp, path = source(c, exporter, opset, dtype)
    g: Graph = comp.graph
    assert g.input_dtypes == ({"x": "int64"} if c.vocab else {}), g.input_dtypes
    x = c.data(5, seed=3)
    got = reference.run(g, {"x": x})["y"]
    ort_ok = dtype == "float32" or not any(n.op in NO_ORT_FLOAT64 for n in g.nodes)
    module_out = seeded(c, getattr(torch, dtype))(c.torch_input(x, getattr(torch, dtype))).detach().numpy()
    if path is not None and ort_ok:
        want, against = ort.run(path, {"x": x})["y"], "onnxruntime on the original file"
    else:  # from_torch, or a float64 recurrent file (onnxruntime has no float64 LSTM/GRU/RNN kernel)
        want, against = module_out, "the original module"
    assert_close(got, want, **RUN_TOL[dtype], what=f"{case} {exporter}{opset} {dtype}: run() vs {against}")
    # the export back runs in onnxruntime (float32 for recurrent graphs, as above)
    back_dtype = dtype if ort_ok else "float32"
    back = to_onnx(g, dtype=back_dtype)
    if c.vocab:
        assert back.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert_close(ort.run(back, {"x": x})["y"], got, **RUN_TOL[back_dtype], what="export back in onnxruntime")
    again = _mdf_round_trip(g)  # MDF keeps everything, integer inputs included
    assert again.input_dtypes == g.input_dtypes
    assert_close(reference.run(again, {"x": x})["y"], got, rtol=0, atol=0, what="MDF round trip")


def _mdf_round_trip(g: Graph) -> Graph:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.json"
        mdfx.save(GraphComposition(g), path)
        return mdfx.load(path).graph


# --- training equals the original module's, in every mode -------------------------------------------


def torch_sgd(model: nn.Module, x: np.ndarray, t: np.ndarray, epochs: int, mb: int, lr: float) -> list[float]:
    """learn()'s loop written in torch: SGD on MSE (mean), consecutive minibatches."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    losses = []
    for _ in range(epochs):
        for i in range(0, len(t), mb):
            opt.zero_grad()
            loss = F.mse_loss(model(xt[i:i + mb]), tt[i:i + mb])
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses


def _train_matrix() -> list:
    out = []
    for case in CASES:
        for exporter, opset in SOURCES:
            for mode in MODES:
                default = (exporter, opset) in DEFAULT and (case in ("EmbedMean", "LSTM2") or (
                    mode == "LLVMRun" and case in ("RNN_bi", "GRU_h")))
                marks = [] if FULL or default else [pytest.mark.skip(reason="MDFX_FULL_SEQ=1 runs it")]
                if mode == "LLVMRun" and not HAS_LLVM:
                    marks.append(pytest.mark.skip(reason="needs llvmlite"))
                out.append(pytest.param(case, exporter, opset, mode, marks=marks,
                                        id=f"{case}-{exporter}{opset or ''}-{mode}"))
    return out


@pytest.mark.parametrize(("case", "exporter", "opset", "mode"), _train_matrix())
def test_training_matches_torch(source: Callable, case: str, exporter: str, opset: int, mode: str) -> None:
    c = CASES[case]
    comp, _ = source(c, exporter, opset)
    g: Graph = comp.graph
    module = seeded(c)
    names = {k for k, _ in module.named_parameters()}
    x, t = c.data(8, seed=4), np.random.default_rng(5).normal(size=(8, c.out))
    if mode == "LLVMRun" and any(n.op == "GRU" for n in g.nodes):
        node = next(n for n in g.nodes if n.op == "GRU")
        with pytest.raises(UnsupportedError, match=rf"node '{node.name}' \(GRU\): the LLVM backend does not "
                                                   "compile GRU"):
            comp.learn(inputs={"x": x}, targets={"y": t}, execution_mode=mdfx.ExecutionMode.LLVMRun)
        return
    # every parameter of the module is a learnable param of the graph (through the state_dict's keys)
    before = mdfx.io.state_dict(g)
    unnamed = set()
    if exporter == "dynamo" and not any(n.op in NO_ORT_FLOAT64 for n in g.nodes) and not c.vocab:
        # the dynamo exporter unrolls nn.RNN and folds each weight's transpose into a constant it names
        # val_<n>: the file holds the values (they train, counted below) but not the module's names
        unnamed = {k for k in names if ".weight_" in k}
        assert unnamed and not unnamed & set(before), sorted(before)
    assert names - unnamed <= set(before), f"the graph's state_dict has {sorted(before)}; the module {sorted(names)}"
    learnable = sum(p.value.size for p in g.params.values() if p.learnable)
    assert learnable == sum(v.numel() for v in module.parameters()), \
        f"{learnable} learnable numbers; the module has {sum(v.numel() for v in module.parameters())}"
    comp.learn(inputs={"x": x}, targets={"y": t}, epochs=2, minibatch_size=3, learning_rate=0.5,
               execution_mode=getattr(mdfx.ExecutionMode, mode))
    want = torch_sgd(module.train(False), x, t, epochs=2, mb=3, lr=0.5)
    assert_close(comp.losses, want, rtol=1e-9, atol=1e-12, what=f"{mode}: per-minibatch losses")
    after = mdfx.io.state_dict(g)
    trained = 0
    for k, v in module.named_parameters():
        if k in unnamed:
            continue
        assert_close(after[k].numpy(), v.detach().numpy(), rtol=1e-9, atol=1e-12, what=f"{mode}: trained {k}")
        trained += not torch.equal(after[k], before[k])
    assert trained == len(names - unnamed), f"{trained} of {len(names - unnamed)} parameters changed in training"
    if unnamed:  # the outputs after training still equal the module's: the unnamed weights trained alike
        assert_close(reference.run(g, {"x": x})["y"], module(c.torch_input(x)).detach().numpy(), rtol=1e-9,
                     atol=1e-12, what="outputs after training")
        return
    # the trained state_dict loads into the original module, strictly, and computes the same
    fresh = seeded(c)
    fresh.load_state_dict(after, strict=True)
    assert_close(fresh(c.torch_input(x)).detach().numpy(), reference.run(g, {"x": x})["y"], rtol=1e-12,
                 atol=1e-14, what="the state_dict loaded into the module")


# --- what is refused, by name ------------------------------------------------------------------------


def _table_graph(indices_dtype: str | None = "int64", axis: int = 0, const: np.ndarray | None = None) -> Graph:
    params = [Param("table", np.arange(12.0).reshape(4, 3))]
    idx = "tokens"
    if const is not None:
        params.append(Param("idx", np.asarray(const, dtype=np.float64), False, "int64"))
        idx = "idx"
    nodes = [Node("lookup", "Gather", ["table", idx], "rows", {"axis": axis})]
    if const is not None:
        nodes.append(Node("use", "MatMul", ["x", "rows"], "y"))
        return Graph.build("t", {"x": (len(const),)}, params, nodes, ["y"])
    nodes.append(Node("sum", "ReduceSum", ["rows"], "y", {"axes": [1], "keepdims": 0}))
    return Graph.build("t", {"tokens": (2,)}, params, nodes, ["y"],
                       input_dtypes={"tokens": indices_dtype} if indices_dtype else None)


def test_indices_are_checked_at_the_data_boundary() -> None:
    g = _table_graph()
    assert_close(reference.run(g, {"tokens": np.array([[0, -1]])})["y"], [[0 + 9, 1 + 10, 2 + 11]], rtol=0,
                 what="a negative index counts from the end")
    with pytest.raises(DataError, match=r"'tokens'.*indices 0\.\.4; node 'lookup' \(Gather\) reads a table of 4 "
                                        r"rows \(valid: -4\.\.3\)"):
        reference.run(g, {"tokens": np.array([[0, 4]])})
    with pytest.raises(DataError, match=r"'tokens'.*int64 \(indices\), but holds 1\.5"):
        reference.run(g, {"tokens": np.array([[0, 1.5]])})
    spec_err = r"indices -5\.\.0; node 'lookup'"
    with pytest.raises(DataError, match=spec_err):
        comp = GraphComposition(g)
        comp.learn(inputs={"tokens": np.array([[-5, 0]])}, targets={"y": np.zeros((1, 3))})


def test_float_indices_constant_range_and_axis_are_refused_naming_the_node() -> None:
    with pytest.raises(GraphError, match=r"node 'lookup' \(Gather\): its indices 'tokens' are floats"):
        _table_graph(indices_dtype=None)
    with pytest.raises(GraphError, match=r"node 'lookup' \(Gather\): constant indices 'idx' hold 0\.\.7, out of "
                                         r"range for axis 0 of 'table' \(size 4"):
        _table_graph(const=np.array([0, 7]))
    with pytest.raises(GraphError, match=r"node 'lookup' \(Gather\).*axis 2 is out of range for rank 2"):
        _table_graph(axis=2)
    with pytest.raises(GraphError, match=r"input_dtypes names 'nope'"):
        Graph.build("t", {"x": (2,)}, [], [Node("i", "Identity", ["x"], "y")], ["y"], input_dtypes={"nope": "int64"})


def test_embedding_options_that_change_the_gradient_are_refused() -> None:
    class Padded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(5, 2, padding_idx=0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.emb(x).sum(1)

    with pytest.raises(UnsupportedError, match=r"module 'emb' \(Embedding with padding_idx=0"):
        mdfx.from_torch(Padded(), torch.zeros(2, 3, dtype=torch.long))


def test_gather_vjp_scatters_into_the_table() -> None:
    """The numpy rule against torch's autograd of index_select, on axes 0 and 1, repeated indices."""
    from mdfx import ops

    rng = np.random.default_rng(0)
    for axis in (0, 1):
        data = rng.normal(size=(4, 5, 3))
        idx = np.array([[1, 1], [-1, 0]])
        g = rng.normal(size=np.take(data, idx % data.shape[axis], axis=axis).shape)
        td = torch.from_numpy(data).requires_grad_()
        ti = torch.from_numpy(idx % data.shape[axis])
        y = torch.index_select(td, axis, ti.reshape(-1)).reshape(g.shape)
        (y * torch.from_numpy(g)).sum().backward()
        op = ops.graph_op("Gather")
        assert_close(op.forward([data, idx.astype(float)], axis=axis), y.detach().numpy(), rtol=0, what="forward")
        assert_close(op.vjp([data, idx.astype(float)], None, g, axis=axis)[0], td.grad.numpy(), rtol=1e-14,
                     what=f"VJP on axis {axis}")


# --- shape arithmetic folded at import -----------------------------------------------------------------


def _shape_arithmetic_model(opset: int, huge: bool = False) -> onnx.ModelProto:
    """What exporters write around attention: Shape, Gather, Div, Mod, Concat, Range, Equal, Where,
    ConstantOfShape, Trilu, Expand, Unsqueeze, all on constants and shapes, feeding a Reshape."""
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: object, dtype: object = np.int64) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)

    n = helper.make_node
    nodes = [
        n("Shape", ["x"], ["s"]), n("Gather", ["s", "i2"], ["d"], axis=0), n("Gather", ["s", "i0"], ["b"], axis=0),
        n("Div", ["d", "two"], ["h"]), n("Mod", ["d", "four"], ["m"]),
        n("Unsqueeze", ["b", "ax0"], ["b1"]), n("Unsqueeze", ["h", "ax0"], ["h1"]), n("Unsqueeze", ["m", "ax0"], ["m1"]),
        n("Concat", ["b1", "two1", "h1", "m1"], ["target"], axis=0), n("Reshape", ["x", "target"], ["y"]),
        n("Range", ["zero", "m", "one"], ["r"]), n("Cast", ["r"], ["rf"], to=TensorProto.DOUBLE),
        n("Equal", ["r", "zero"], ["mask"]), n("Where", ["mask", "f1", "f2"], ["w"]),
        n("Concat", ["h1", "m1"], ["hm"], axis=0), n("ConstantOfShape", ["hm"], ["c"],
                                                     value=numpy_helper.from_array(np.array([0.5]))),
        n("Trilu", ["c"], ["tri"], upper=0), n("Expand", ["rf", "hm"], ["rfe"]),
        n("Add", ["y", "tri"], ["y1"]), n("Mul", ["y1", "w"], ["y2"]), n("Add", ["y2", "rfe"], ["out"]),
    ]
    inits = [const("i2", 2), const("i0", 0), const("two", 2), const("four", 4), const("ax0", [0]),
             const("two1", [2]), const("zero", 0), const("one", 1), const("f1", 1.0, np.float64),
             const("f2", 2.0, np.float64)]
    if huge:  # a ConstantOfShape whose shape a tiny file sets past mdfx.limits
        nodes = [n("ConstantOfShape", ["big"], ["c"]), n("Add", ["x", "c"], ["out"])]
        inits = [const("big", [1 << 20, 1 << 20])]
    graph = helper.make_graph(nodes, "shapes", [helper.make_tensor_value_info("x", TensorProto.DOUBLE,
                                                                             ["batch", 2, 6])],
                              [helper.make_tensor_value_info("out", TensorProto.DOUBLE, None)], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("opset", [14, 17, 18])
def test_shape_arithmetic_is_folded_at_import(opset: int) -> None:
    model = _shape_arithmetic_model(opset)
    g = onnx_import.load_onnx(model)
    assert {n.op for n in g.nodes} <= {"Reshape", "Add", "Mul"}, f"not folded: {[str(n) for n in g.nodes]}"
    x = np.random.default_rng(0).normal(size=(3, 2, 6))
    assert_close(reference.run(g, {"x": x})["out"], ort.run(model, {"x": x})["out"], rtol=1e-12, what="folded")


def test_folding_stays_within_the_limits() -> None:
    with pytest.raises(LimitError, match=r"node 'c' \(ConstantOfShape\): folding its constant inputs: "
                                         r"1099511627776 elements is over the limit"):
        onnx_import.load_onnx(_shape_arithmetic_model(17, huge=True))


# --- recurrent refusals: one error naming the op and the node ------------------------------------------


def _lstm_model(seq_lens: object = None, use_c: bool = False, control: str | None = None) -> onnx.ModelProto:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(1, 8, 3)), "W"),
             numpy_helper.from_array(rng.normal(size=(1, 8, 2)), "R")]
    ins = ["xt", "W", "R", "", ""]
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch", 4, 3])]
    if isinstance(seq_lens, str):  # a graph input: lengths per sample
        graph_inputs.append(helper.make_tensor_value_info(seq_lens, TensorProto.INT32, ["batch"]))
        ins[4] = seq_lens
    elif seq_lens is not None:
        inits.append(numpy_helper.from_array(np.asarray(seq_lens, dtype=np.int32), "lens"))
        ins[4] = "lens"
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ins, ["y", "y_h", "y_c"], name="the_lstm", hidden_size=2),
             helper.make_node("Transpose", ["y_c" if use_c else "y_h"], ["out"], perm=[1, 0, 2])]
    if control:
        body = helper.make_graph([helper.make_node("Identity", ["s"], ["s_out"])], "body",
                                 [helper.make_tensor_value_info("s", TensorProto.DOUBLE, None)],
                                 [helper.make_tensor_value_info("s_out", TensorProto.DOUBLE, None)])
        nodes.append(helper.make_node(control, ["out"], ["loop_out"], name="the_scan", body=body, num_scan_inputs=1))
    graph = helper.make_graph(nodes, "lstm", graph_inputs,
                              [helper.make_tensor_value_info("loop_out" if control else "out", TensorProto.DOUBLE,
                                                             None)], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_recurrent_refusals_name_the_op_and_the_node() -> None:
    g = onnx_import.load_onnx(_lstm_model(seq_lens=[4, 4, 4]))  # constant and full: runs
    assert [n.op for n in g.nodes][0] == "LSTM"
    with pytest.raises(UnsupportedError, match=r"node 'the_lstm' \(LSTM\): sequence_lens \('lens_in'\) is computed "
                                               r"from the inputs; .*dynamic sequence lengths are not supported"):
        onnx_import.load_onnx(_lstm_model(seq_lens="lens_in"))
    with pytest.raises(UnsupportedError, match=r"node 'the_lstm' \(LSTM\): sequence_lens \[4, 2, 4\] is not the full "
                                               r"length 4"):
        onnx_import.load_onnx(_lstm_model(seq_lens=[4, 2, 4]))
    with pytest.raises(UnsupportedError, match=r"node 'the_lstm' \(LSTM\): its cell-state output Y_c \('y_c'\) is used"):
        onnx_import.load_onnx(_lstm_model(use_c=True))
    for control in ("Scan", "Loop", "If"):
        with pytest.raises(UnsupportedError, match=rf"unsupported ops: {control} \(control flow\) at node 'the_scan'"):
            onnx_import.load_onnx(_lstm_model(control=control))


def test_modeci_rnn_example_is_refused_by_its_stateful_part() -> None:
    path = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "modeci-examples" / "MDF_RNN_RNNs.json"
    if not path.is_file():
        pytest.skip("needs ../shared/corpus")
    with pytest.raises(UnsupportedError, match=r"node 'input_node': parameter 't' has a time derivative \(a "
                                               r"stateful, time-stepped node\)"):
        mdfx.load(path)


def test_an_output_with_the_batch_moved_is_refused() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0, 2]),
                               helper.make_node("Relu", ["y"], ["out"])], "moved",
                              [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch", 4, 3])],
                              [helper.make_tensor_value_info("out", TensorProto.DOUBLE, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedError, match=r"graph output 'out' has the batch on axis 1 \(a Transpose moved it\)"):
        onnx_import.load_onnx(model)
