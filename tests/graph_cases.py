"""One small graph per op of the graph IR, for table-driven tests of every backend.

``CASES`` maps a case id to a builder returning ``(graph, inputs)``: a graph whose
learnable params feed the op (so its VJP is exercised for each differentiable
input) and seeded inputs. Every op of :data:`mdfx.ops.GRAPH_OPS` has at least one
case (``test_graph_ops.py`` checks that).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mdfx.schema.graph import Graph, Node, Param

B = 3  #: trials per case


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def unary(op: str, attrs: dict[str, Any] | None = None, n: int = 5, positive: bool = False,
          seed: int = 0) -> Callable[[], tuple[Graph, dict[str, np.ndarray]]]:
    """x -> (x * w + c) -> op: a learnable scale and shift before the op, so gradients reach params."""
    def build() -> tuple[Graph, dict[str, np.ndarray]]:
        r = _rng(seed)
        x = r.uniform(0.5, 2.0, (B, n)) if positive else r.normal(size=(B, n))
        w = r.uniform(0.5, 1.5, n)
        c = r.uniform(0.1, 0.3, n) if positive else r.normal(scale=0.3, size=n)
        g = Graph.build(op, {"x": (n,)}, [Param("w", w), Param("c", c)],
                        [Node("scale", "Mul", ["x", "w"], "xw"), Node("shift", "Add", ["xw", "c"], "z"),
                         Node("op", op, ["z"], "y", dict(attrs or {}))], ["y"])
        return g, {"x": x}
    return build


def binary(op: str, a_shape: tuple[int, ...], b_shape: tuple[int, ...], b_batched: bool = False,
           positive: bool = False, seed: int = 1) -> Callable[[], tuple[Graph, dict[str, np.ndarray]]]:
    """y = op(x * wa, b) where b is a learnable param of ``b_shape`` or a second batched input * wb."""
    def build() -> tuple[Graph, dict[str, np.ndarray]]:
        r = _rng(seed)
        lo = 0.5 if positive else -1.0
        x = r.uniform(lo, 2.0, (B, *a_shape))
        params = [Param("wa", r.uniform(0.5, 1.5, a_shape))]
        nodes = [Node("sa", "Mul", ["x", "wa"], "a")]
        inputs = {"x": x}
        if b_batched:
            inputs["u"] = r.uniform(lo, 2.0, (B, *b_shape))
            params.append(Param("wb", r.uniform(0.5, 1.5, b_shape)))
            nodes.append(Node("sb", "Mul", ["u", "wb"], "b"))
            ins = {"x": a_shape, "u": b_shape}
        else:
            params.append(Param("b", r.uniform(0.5, 1.5, b_shape)))
            ins = {"x": a_shape}
        nodes.append(Node("op", op, ["a", "b"], "y"))
        return Graph.build(op, ins, params, nodes, ["y"]), inputs
    return build


def graph(name: str, inputs: dict[str, tuple[int, ...]], params: dict[str, Any], nodes: list[Node],
          outputs: list[str], frozen: tuple[str, ...] = (), seed: int = 2
          ) -> Callable[[], tuple[Graph, dict[str, np.ndarray]]]:
    """A hand-written graph; params given as shapes are drawn from a seeded normal."""
    def build() -> tuple[Graph, dict[str, np.ndarray]]:
        r = _rng(seed)
        ps = [Param(k, np.asarray(v, dtype=np.float64) if not isinstance(v, tuple) else r.normal(size=v),
                    learnable=k not in frozen) for k, v in params.items()]
        g = Graph.build(name, inputs, ps, [Node(n.name, n.op, list(n.inputs), n.output, dict(n.attrs))
                                           for n in nodes], outputs)
        return g, {k: r.normal(size=(B, *v)) for k, v in inputs.items()}
    return build


def embedding(axis: int = 0, seed: int = 3) -> Callable[[], tuple[Graph, dict[str, np.ndarray]]]:
    """tokens (int64, repeated and negative) -> Gather from a learnable table -> a scale: the lookup's VJP."""
    def build() -> tuple[Graph, dict[str, np.ndarray]]:
        r = _rng(seed)
        tokens = np.array([[0, 3, 3], [-1, 1, 0], [2, 2, -4]])
        g = Graph.build("Gather", {"tokens": (3,)}, [Param("table", r.normal(size=(4, 5))),
                                                     Param("w", r.normal(size=5))],
                        [Node("lookup", "Gather", ["table", "tokens"], "rows", {"axis": 0}),
                         Node("scale", "Mul", ["rows", "w"], "y")], ["y"], input_dtypes={"tokens": "int64"})
        return g, {"tokens": tokens}
    return build


def gather_constant(seed: int = 4) -> Callable[[], tuple[Graph, dict[str, np.ndarray]]]:
    """x * w, then constant indices (not contiguous, repeated, negative) picked on a feature axis."""
    def build() -> tuple[Graph, dict[str, np.ndarray]]:
        r = _rng(seed)
        g = Graph.build("Gather", {"x": (3, 4)}, [Param("w", r.normal(size=(3, 4))),
                                                   Param("idx", np.array([[3.0, 0.0], [3.0, -3.0]]), False, "int64")],
                        [Node("scale", "Mul", ["x", "w"], "xw"),
                         Node("pick", "Gather", ["xw", "idx"], "y", {"axis": 2})], ["y"])
        return g, {"x": r.normal(size=(B, 3, 4))}
    return build


def recurrent(op: str, direction: str = "forward", states: bool = False, peepholes: bool = False,
              seed: int = 5, **attrs: Any) -> Callable[[], tuple[Graph, dict[str, np.ndarray]]]:
    """X (batch, T=3, 2) through an ONNX LSTM/GRU/RNN (hidden 3) with learnable W, R, B (and
    learnable initial states and peepholes): backpropagation through time into every one."""
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]

    def build() -> tuple[Graph, dict[str, np.ndarray]]:
        r = _rng(seed)
        d, h = (2 if direction == "bidirectional" else 1), 3
        params = [Param("W", r.normal(scale=0.7, size=(d, gates * h, 2))), Param("R", r.normal(scale=0.7, size=(d, gates * h, h))),
                  Param("B", r.normal(scale=0.3, size=(d, 2 * gates * h)))]
        ins = ["x", "W", "R", "B"]
        if states:
            params.append(Param("h0", r.normal(size=(1, d, h))))
            ins.append("h0")
            if op == "LSTM":
                params.append(Param("c0", r.normal(size=(1, d, h))))
                ins.append("c0")
        if peepholes:
            ins += [""] * (6 - len(ins))
            params.append(Param("P", r.normal(size=(d, 3 * h))))
            ins.append("P")
        g = Graph.build(op, {"x": (3, 2)}, params,
                        [Node("rnn", op, ins, "y", {"hidden_size": h, "direction": direction, **attrs})], ["y"])
        return g, {"x": r.normal(size=(B, 3, 2))}
    return build


#: recurrent cases (the LLVM backend compiles LSTM and RNN; refusals: LLVM_REFUSED, LLVM_REFUSED_CASES)
RECURRENT = {
    "LSTM/peepholes_states_clip": recurrent("LSTM", states=True, peepholes=True, clip=5.0),
    "LSTM/bidirectional": recurrent("LSTM", "bidirectional"),
    "LSTM/peepholes_states": recurrent("LSTM", "bidirectional", states=True, peepholes=True),
    # default activations, no clip: the torch backend runs torch's own kernel (reverse = flipped time)
    "LSTM/reverse_states": recurrent("LSTM", "reverse", states=True),
    "RNN/tanh_bidirectional_states": recurrent("RNN", "bidirectional", states=True),
    "GRU/reverse": recurrent("GRU", "reverse", states=True),
    "GRU/bidirectional_linear_before_reset": recurrent("GRU", "bidirectional", states=True, linear_before_reset=1),
    "RNN/relu": recurrent("RNN", states=True, activations=["Relu"]),
    "RNN/bidirectional_clip": recurrent("RNN", "bidirectional", clip=0.8),
}


CASES: dict[str, Callable[[], tuple[Graph, dict[str, np.ndarray]]]] = {
    **RECURRENT,
    "Gather/embedding": embedding(),
    "Gather/constant_indices": gather_constant(),
    "Add/bias": binary("Add", (4,), (4,)),
    "Add/scalar": binary("Add", (4,), ()),
    "Add/tensors": binary("Add", (4,), (4,), b_batched=True),
    "Sub/tensors": binary("Sub", (4,), (4,), b_batched=True),
    "Sub/bias": binary("Sub", (2, 3), (3,)),
    "Mul/tensors": binary("Mul", (4,), (4,), b_batched=True),
    "Mul/broadcast": binary("Mul", (2, 3), (2, 1)),
    "Div/tensors": binary("Div", (4,), (4,), b_batched=True, positive=True),
    "Div/scalar": binary("Div", (4,), (), positive=True),
    "Identity": unary("Identity"),
    "Neg": unary("Neg"),
    "Relu": unary("Relu"),
    "LeakyRelu": unary("LeakyRelu", {"alpha": 0.2}),
    "Sigmoid": unary("Sigmoid"),
    "Tanh": unary("Tanh"),
    "Exp": unary("Exp"),
    "Log": unary("Log", positive=True),
    "Sqrt": unary("Sqrt", positive=True),
    "Abs": unary("Abs"),
    "Reciprocal": unary("Reciprocal", positive=True),
    "Erf": unary("Erf"),
    "Gelu/none": unary("Gelu"),
    "Gelu/tanh": unary("Gelu", {"approximate": "tanh"}),
    "Softplus": unary("Softplus"),
    "Elu": unary("Elu", {"alpha": 0.7}),
    "Selu": unary("Selu"),
    "HardSigmoid": unary("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
    "Clip": unary("Clip", {"min": -0.5, "max": 0.6}),
    "Pow": unary("Pow", {"exponent": 3.0}),
    "Pow/fractional": unary("Pow", {"exponent": 1.5}, positive=True),
    "Cast": unary("Cast", {"to": 1}),
    "Dropout": unary("Dropout", {"ratio": 0.3}),
    "pnl.Linear": unary("pnl.Linear", {"slope": 1.5, "intercept": 0.2, "scale": 0.8, "offset": -0.1}),
    "pnl.Logistic": unary("pnl.Logistic", {"gain": 1.3, "bias": 0.1, "x_0": 0.2, "offset": 0.05, "scale": 0.9}),
    "pnl.ReLU": unary("pnl.ReLU", {"gain": 1.2, "bias": 0.1, "leak": 0.05}),
    "pnl.Tanh": unary("pnl.Tanh", {"gain": 0.8, "bias": 0.1, "x_0": 0.2, "offset": 0.1, "scale": 1.1}),
    "pnl.Exponential": unary("pnl.Exponential", {"rate": 0.7, "bias": 0.1, "scale": 1.2, "offset": 0.3}),
    "pnl.Identity": unary("pnl.Identity"),
    "pnl.SoftMax": unary("pnl.SoftMax", {"gain": 1.5}),
    "pnl.Normalize": unary("pnl.Normalize", {"eps": 1e-12, "per_item": 1.0}),
    # rows of norm about 1..3 around eps=2: some clamped (x / eps), some not
    "pnl.Normalize/clamped": unary("pnl.Normalize", {"eps": 2.0, "per_item": 1.0}),
    "Softmax": unary("Softmax", {"axis": -1}),
    "LogSoftmax": unary("LogSoftmax", {"axis": 1}),
    "MatMul": graph("MatMul", {"x": (4,)}, {"W": (4, 3)}, [Node("mm", "MatMul", ["x", "W"], "y")], ["y"]),
    "MatMul/3d": graph("MatMul3", {"x": (2, 4)}, {"W": (4, 3)}, [Node("mm", "MatMul", ["x", "W"], "y")], ["y"]),
    "Gemm/transB": graph("Gemm", {"x": (4,)}, {"W": (3, 4), "b": (3,)},
                         [Node("g", "Gemm", ["x", "W", "b"], "y", {"transB": 1, "alpha": 0.7, "beta": 1.3})], ["y"]),
    "Gemm/noC": graph("GemmNoC", {"x": (4,)}, {"W": (4, 3)}, [Node("g", "Gemm", ["x", "W"], "y")], ["y"]),
    "Gemm/transA-param": graph(
        "GemmTA", {"x": (3,)}, {"A": (4, 3), "W": (4, 2)},
        [Node("ta", "Gemm", ["A", "W"], "AtW", {"transA": 1}), Node("mm", "MatMul", ["x", "AtW"], "y")], ["y"]),
    "Concat": graph("Concat", {"x": (3,), "u": (2,)}, {"w": (5,)},
                    [Node("c", "Concat", ["x", "u"], "c", {"axis": 1}), Node("m", "Mul", ["c", "w"], "y")], ["y"]),
    "Slice": graph("Slice", {"x": (6,)}, {"w": (6,)},
                   [Node("m", "Mul", ["x", "w"], "xw"),
                    Node("s", "Slice", ["xw"], "y", {"starts": [1], "ends": [5], "axes": [1], "steps": [2]})], ["y"]),
    "Reshape": graph("Reshape", {"x": (6,)}, {"w": (6,)},
                     [Node("m", "Mul", ["x", "w"], "xw"),
                      Node("r", "Reshape", ["xw"], "r", {"shape": [-1, 2, 3]}),
                      Node("s", "ReduceSum", ["r"], "y", {"axes": [1], "keepdims": 0})], ["y"]),
    "Flatten": graph("Flatten", {"x": (2, 3)}, {"w": (2, 3)},
                     [Node("m", "Mul", ["x", "w"], "xw"), Node("f", "Flatten", ["xw"], "y", {"axis": 1})], ["y"]),
    "Squeeze+Unsqueeze": graph(
        "Sq", {"x": (3,)}, {"w": (3,)},
        [Node("m", "Mul", ["x", "w"], "xw"), Node("u", "Unsqueeze", ["xw"], "u", {"axes": [2]}),
         Node("s", "Squeeze", ["u"], "y", {"axes": [2]})], ["y"]),
    "Transpose": graph("Transpose", {"x": (2, 3)}, {"w": (2, 3)},
                       [Node("m", "Mul", ["x", "w"], "xw"), Node("t", "Transpose", ["xw"], "y", {"perm": [0, 2, 1]})],
                       ["y"]),
    "Transpose/param": graph("TransposeP", {"x": (4,)}, {"W": (3, 4)},
                             [Node("t", "Transpose", ["W"], "Wt"), Node("mm", "MatMul", ["x", "Wt"], "y")], ["y"]),
    "ReduceSum": graph("RSum", {"x": (4,)}, {"w": (4,)},
                       [Node("m", "Mul", ["x", "w"], "xw"), Node("r", "ReduceSum", ["xw"], "y", {"axes": [1]})], ["y"]),
    "ReduceMean": graph("RMean", {"x": (2, 3)}, {"w": (2, 3)},
                        [Node("m", "Mul", ["x", "w"], "xw"),
                         Node("r", "ReduceMean", ["xw"], "y", {"axes": [-1], "keepdims": 0})], ["y"]),
    "ReduceMax": graph("RMax", {"x": (5,)}, {"w": (5,)},
                       [Node("m", "Mul", ["x", "w"], "xw"), Node("r", "ReduceMax", ["xw"], "y", {"axes": [1]})], ["y"]),
    "LayerNormalization": graph("LN", {"x": (5,)}, {"w": (5,), "g": (5,), "b": (5,)},
                                [Node("m", "Mul", ["x", "w"], "xw"),
                                 Node("ln", "LayerNormalization", ["xw", "g", "b"], "y", {"epsilon": 1e-5})], ["y"]),
    "BatchNormalization": graph(
        "BN", {"x": (4,)}, {"w": (4,), "s": (4,), "b": (4,), "mean": [0.1, -0.2, 0.3, 0.0], "var": [1.5, 0.5, 2.0, 1.0]},
        [Node("m", "Mul", ["x", "w"], "xw"),
         Node("bn", "BatchNormalization", ["xw", "s", "b", "mean", "var"], "y", {"epsilon": 1e-5})], ["y"],
        frozen=("mean", "var")),
    # spatial ops: a learnable per-channel scale first, so the input's gradient is checked too
    "Conv/2d-asymmetric-pads": graph(
        "Conv2d", {"x": (2, 5, 5)}, {"s": (2, 1, 1), "w": (3, 2, 3, 3), "b": (3,)},
        [Node("m", "Mul", ["x", "s"], "xs"),
         Node("c", "Conv", ["xs", "w", "b"], "y", {"pads": [1, 0, 1, 1], "strides": [2, 1]})], ["y"]),
    "Conv/1d-grouped-dilated-same": graph(
        "Conv1d", {"x": (4, 7)}, {"s": (4, 1), "w": (4, 2, 3)},
        [Node("m", "Mul", ["x", "s"], "xs"),
         Node("c", "Conv", ["xs", "w"], "y", {"group": 2, "dilations": [2], "auto_pad": "SAME_UPPER"})], ["y"]),
    "Conv/depthwise-strided": graph(
        "Depthwise", {"x": (3, 5, 5)}, {"s": (3, 1, 1), "w": (3, 1, 3, 3), "b": (3,)},
        [Node("m", "Mul", ["x", "s"], "xs"),
         Node("c", "Conv", ["xs", "w", "b"], "y", {"group": 3, "strides": [2, 2], "pads": [1, 1, 1, 1]})], ["y"]),
    "ConvTranspose": graph(
        "ConvT", {"x": (2, 3, 3)}, {"s": (2, 1, 1), "w": (2, 3, 3, 3), "b": (3,)},
        [Node("m", "Mul", ["x", "s"], "xs"),
         Node("c", "ConvTranspose", ["xs", "w", "b"], "y",
              {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]})], ["y"]),
    "MaxPool/ceil-dilated": graph(
        "MaxPool", {"x": (2, 6, 5)}, {"s": (2, 1, 1)},
        [Node("m", "Mul", ["x", "s"], "xs"),
         Node("p", "MaxPool", ["xs"], "y", {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 0],
                                           "ceil_mode": 1, "dilations": [1, 2]})], ["y"]),
    "AveragePool/count-include-pad": graph(
        "AvgPool", {"x": (2, 6, 5)}, {"s": (2, 1, 1)},
        [Node("m", "Mul", ["x", "s"], "xs"),
         Node("p", "AveragePool", ["xs"], "y", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                               "count_include_pad": 1})], ["y"]),
    "AveragePool/ceil-excluding-pad": graph(
        "AvgPoolCeil", {"x": (2, 6, 5)}, {"s": (2, 1, 1)},
        [Node("m", "Mul", ["x", "s"], "xs"),
         Node("p", "AveragePool", ["xs"], "y", {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 0],
                                               "ceil_mode": 1})], ["y"]),
    "Pad": graph(
        "Pad", {"x": (2, 3, 4)}, {"s": (2, 1, 1)},
        [Node("m", "Mul", ["x", "s"], "xs"),
         Node("p", "Pad", ["xs"], "y", {"pads": [0, 0, 1, 2, 0, 1, 0, 3], "value": 0.5})], ["y"]),
}

#: ops the LLVM backend refuses by name (no kernel yet): tests expect the refusal, not a number
LLVM_REFUSED = frozenset({"ConvTranspose", "GRU"})
#: cases of ops the LLVM backend compiles, with an option it refuses by name (clip)
LLVM_REFUSED_CASES = frozenset({"LSTM/peepholes_states_clip", "RNN/bidirectional_clip"})

#: ops with no gradient: (id, builder, outputs to compare); they run but are not trained through
HOST_CASES: dict[str, Callable[[], tuple[Graph, dict[str, np.ndarray]]]] = {
    "ArgMax+labels": graph(
        "Classifier", {"x": (4,)}, {"W": (4, 3), "classes": [10.0, 20.0, 30.0]},
        [Node("mm", "MatMul", ["x", "W"], "logits"), Node("sm", "Softmax", ["logits"], "probabilities"),
         Node("am", "ArgMax", ["probabilities"], "index", {"axis": 1, "keepdims": 0}),
         Node("afe", "ai.onnx.ml.ArrayFeatureExtractor", ["classes", "index"], "label_f"),
         Node("cast", "CastLabel", ["label_f"], "label", {"to": 7}),
         Node("zm", "ai.onnx.ml.ZipMap", ["probabilities"], "zipped", {"classlabels_int64s": [10, 20, 30]})],
        ["label", "probabilities", "zipped"], frozen=("classes",)),
}
