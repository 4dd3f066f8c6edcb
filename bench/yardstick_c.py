"""The C yardstick: the same training written in C, built with ``gcc -O3`` at bench time.

For a :class:`~mdfx.schema.graph.Graph` of Linear/Logistic mechanisms trained with SGD
and MSE, :func:`c_source` writes the C a careful programmer would write for
that one network (each node's function and derivative printed from the op
table's expressions, so it computes what ``mdfx.ops`` defines): sizes as constants, one loop nest per layer over contiguous
row-major arrays, the same loop structure as the LLVM kernel (trial by trial;
with minibatch 1 each weight is updated right after its last use, otherwise
gradients are summed over the minibatch and applied after it). It is built as
a shared library and called once through ctypes for the whole learn().

Flags: ``-O3 -march=native`` (the LLVM kernel is compiled for the host CPU
too) and ``-ffp-contract=off`` (no fused multiply-adds: the LLVM kernel and
numpy round every product, so all three give the same numbers).

``c_train(net, spec) -> (LearnResult, seconds)``: trains ``net`` in place,
``seconds`` is the time inside the C function.
"""

from __future__ import annotations

import ast
import ctypes
import hashlib
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from mdfx import expr, ops
from mdfx.runners.training import LearnResult, LearnSpec, learnable_params
from mdfx.schema.graph import Graph

CFLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-shared", "-fPIC"]
BUILD_DIR = Path(tempfile.gettempdir()) / "mdfx-yardstick-c"
_LIBS: dict[str, ctypes.CDLL] = {}


def _c_expr(text: str, env: dict[str, str]) -> str:
    """An op-table expression as C, fully parenthesised so C evaluates it in Python's order."""
    def emit(node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return repr(float(node.value))
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return f"(-{emit(node.operand)})"
        if isinstance(node, ast.BinOp) and type(node.op) in _C_OPS:
            return f"({emit(node.left)} {_C_OPS[type(node.op)]} {emit(node.right)})"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and getattr(node.right, "value", None) == 2:
            return f"({emit(node.left)} * {emit(node.left)})"
        if isinstance(node, ast.Call) and node.func.id in ("exp", "tanh"):
            return f"{node.func.id}({emit(node.args[0])})"
        raise NotImplementedError(f"the C yardstick cannot write {ast.unparse(node)!r}")

    return emit(expr.parse(text))


_C_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def _transfer(op: str, params: dict[str, float], x: str) -> str:
    """y = f(x) in C, from the op table's expression (so C computes what mdfx.ops defines)."""
    env = {k: repr(float(v)) for k, v in ops.fill_params(ops.transfer_op(op), params).items()}
    return _c_expr(ops.transfer_op(op).expr, {**env, "x": x})


def _derivative(op: str, params: dict[str, float], x: str, y: str) -> str:
    env = {k: repr(float(v)) for k, v in ops.fill_params(ops.transfer_op(op), params).items()}
    return _c_expr(ops.transfer_op(op).dexpr, {**env, "x": x, "y": y})


def c_source(graph: Graph, minibatch: int) -> str:
    """The C of a learn() of ``graph``'s mechanisms (SGD, MSE, minibatch ``minibatch``)."""
    net = graph.mechanisms
    size = {n.name: n.size for n in net.nodes}
    learn = learnable_params(graph)
    args = [f"double *restrict {_v(p.name)}" for p in net.projections]
    args += [f"double *restrict b_{_v(n.name)}" for n in net.nodes if n.bias is not None]
    args += [f"const double *restrict in_{_v(n)}" for n in net.inputs]
    args += [f"const double *restrict tg_{_v(n)}" for n in net.outputs]
    args += ["const int64_t *restrict order", "double *restrict losses"]
    args += [f"double *restrict last_{_v(n)}" for n in net.outputs]
    args += ["int64_t T", "int64_t k0", "int64_t k1", "double lr"]
    out = ["#include <math.h>", "#include <stdint.h>", "", f"void learn({', '.join(args)})", "{"]
    for n in net.nodes:
        out.append(f"    double x_{_v(n.name)}[{n.size}], y_{_v(n.name)}[{n.size}], "
                   f"dy_{_v(n.name)}[{n.size}], dx_{_v(n.name)}[{n.size}];")
    if minibatch > 1:
        for name, w in learn.items():
            out.append(f"    static double g_{_v(name)}[{w.size}];")
    out += [f"    const int64_t B = {minibatch}, nb = (T + B - 1) / B;",
            "    for (int64_t k = k0; k < k1; k++) {",
            "        const int64_t e = k / nb, base = (k - e * nb) * B;",
            "        const int64_t nrows = T - base < B ? T - base : B;",
            "        const int64_t *ord = order + e * T + base;",
            "        double loss = 0.0;"]
    if minibatch > 1:
        for name, w in learn.items():
            out.append(f"        for (int i = 0; i < {w.size}; i++) g_{_v(name)}[i] = 0.0;")
    out += ["        for (int64_t r = 0; r < nrows; r++) {", "            const int64_t t = ord[r];"]
    body: list[str] = []
    for n in net.nodes:  # forward
        v = _v(n.name)
        if n.name in net.inputs:
            body.append(f"for (int j = 0; j < {n.size}; j++) x_{v}[j] = in_{v}[t * {n.size} + j];")
        else:
            body.append(f"for (int j = 0; j < {n.size}; j++) x_{v}[j] = 0.0;")
            for p in net.incoming(n.name):
                s = _v(p.sender)
                body += [f"for (int i = 0; i < {size[p.sender]}; i++) {{",
                         f"    const double a = y_{s}[i];",
                         f"    for (int j = 0; j < {n.size}; j++) x_{v}[j] += a * {_v(p.name)}[i * {n.size} + j];",
                         "}"]
        if n.bias is not None:
            body.append(f"for (int j = 0; j < {n.size}; j++) x_{v}[j] += b_{v}[j];")
        body.append(f"for (int j = 0; j < {n.size}; j++) y_{v}[j] = {_transfer(n.function, n.params, f'x_{v}[j]')};")
    for name in net.outputs:  # MSE: mean over the minibatch's elements
        v, n = _v(name), size[name]
        body += [f"for (int j = 0; j < {n}; j++) {{",
                 f"    const double d = y_{v}[j] - tg_{v}[t * {n} + j];",
                 "    loss += d * d;",
                 f"    dy_{v}[j] = 2.0 * d / (double)(nrows * {n});",
                 f"    last_{v}[t * {n} + j] = y_{v}[j];",
                 "}"]
    written: set[str] = set()  # dy rows holding a value: the first receiver stores, later ones add
    for n in reversed(net.nodes):  # backward
        incoming = net.incoming(n.name)
        if not incoming and n.bias is None:
            continue
        v = _v(n.name)
        body.append(f"for (int j = 0; j < {n.size}; j++) "
                    f"dx_{v}[j] = dy_{v}[j] * {_derivative(n.function, n.params, f'x_{v}[j]', f'y_{v}[j]')};")
        if n.bias is not None and graph.params[n.bias].learnable:
            body.append(_update(f"b_{v}", f"{n.name}.bias", "j", f"dx_{v}[j]", n.size, minibatch))
        for p in incoming:
            s, w, ns = _v(p.sender), _v(p.name), size[p.sender]
            if net.incoming(p.sender) or net.node(p.sender).bias is not None:
                body += [f"for (int i = 0; i < {ns}; i++) {{",
                         "    double acc = 0.0;",
                         f"    for (int j = 0; j < {n.size}; j++) acc += dx_{v}[j] * {w}[i * {n.size} + j];",
                         f"    dy_{s}[i] = {'dy_' + s + '[i] + ' if p.sender in written else ''}acc;",
                         "}"]
                written.add(p.sender)
            if graph.params[p.name].learnable:
                body += [f"for (int i = 0; i < {ns}; i++) {{",
                         f"    const double a = y_{s}[i];",
                         "    " + _update(w, p.name, f"i * {n.size} + j", f"a * dx_{v}[j]", n.size, minibatch),
                         "}"]
    out += ["            " + line for line in body]
    out.append("        }")
    if minibatch > 1:
        for name, w in learn.items():
            target = f"b_{_v(name.removesuffix('.bias'))}" if name.endswith(".bias") else _v(name)
            out.append(f"        for (int i = 0; i < {w.size}; i++) {target}[i] -= lr * g_{_v(name)}[i];")
    n_out = sum(size[o] for o in net.outputs)
    if len(net.outputs) > 1:
        raise NotImplementedError("the C yardstick sums the MSE of one OUTPUT node")
    out += [f"        losses[k] = loss / (double)(nrows * {n_out});", "    }", "}", ""]
    return "\n".join(out)


def _update(array: str, name: str, index: str, grad: str, count: int, minibatch: int) -> str:
    """SGD on one element right away (minibatch 1), else add to the minibatch's gradient sum."""
    if minibatch == 1:
        return f"for (int j = 0; j < {count}; j++) {array}[{index}] -= lr * ({grad});"
    return f"for (int j = 0; j < {count}; j++) g_{_v(name)}[{index}] += {grad};"


def _v(name: str) -> str:
    """A C identifier for a node or projection name."""
    return "v_" + "".join(c if c.isalnum() else "_" for c in name)


def build(source: str) -> ctypes.CDLL:
    """Compile C source with gcc into a shared library (cached by the source's hash)."""
    digest = hashlib.sha256((source + " ".join(CFLAGS)).encode()).hexdigest()[:16]
    if digest in _LIBS:
        return _LIBS[digest]
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    c_path, so_path = BUILD_DIR / f"learn_{digest}.c", BUILD_DIR / f"learn_{digest}.so"
    c_path.write_text(source)
    subprocess.run(["gcc", *CFLAGS, str(c_path), "-o", str(so_path), "-lm"], check=True)
    _LIBS[digest] = ctypes.CDLL(str(so_path))
    return _LIBS[digest]


def c_train(graph: Graph, spec: LearnSpec) -> tuple[LearnResult, float]:
    """Train ``graph`` in place with the C yardstick; return the result and the seconds inside C."""
    if spec.loss.upper() != "MSE" or spec.optimizer.lower() != "sgd" or spec.weight_decay:
        raise NotImplementedError("the C yardstick is SGD + MSE without weight decay")
    lib = build(c_source(graph, spec.minibatch_size))
    net = graph.mechanisms
    ntrials, epochs = spec.num_trials, spec.epochs
    per_epoch = -(-ntrials // spec.minibatch_size)
    arrays = [graph.params[p.name].value for p in net.projections]
    arrays += [graph.params[n.bias].value for n in net.nodes if n.bias is not None]
    for a in arrays:
        assert a.dtype == np.float64 and a.flags.c_contiguous
    inputs = [np.ascontiguousarray(spec.inputs[n], dtype=np.float64) for n in net.inputs]
    targets = [np.ascontiguousarray(spec.targets[n], dtype=np.float64) for n in net.outputs]
    order = np.ascontiguousarray(spec.orders(), dtype=np.int64)
    losses = np.zeros(epochs * per_epoch)
    last = [np.zeros((ntrials, net.node(n).size)) for n in net.outputs]
    pointers = [a.ctypes.data_as(ctypes.c_void_p) for a in [*arrays, *inputs, *targets, order, losses, *last]]
    lib.learn.restype = None
    lib.learn.argtypes = [ctypes.c_void_p] * len(pointers) + [ctypes.c_int64] * 3 + [ctypes.c_double]
    start = time.perf_counter()
    lib.learn(*pointers, ntrials, 0, epochs * per_epoch, spec.learning_rate)
    seconds = time.perf_counter() - start
    params = {k: v.copy() for k, v in learnable_params(graph).items()}
    return LearnResult(params, losses.tolist(), epochs, dict(zip(net.outputs, last, strict=True))), seconds


def train(net: Graph, spec: LearnSpec) -> LearnResult:
    """The pluggable form ``bench.bench_train`` calls: :func:`c_train` without the timing."""
    return c_train(net, spec)[0]
