"""Graph → torch: a :class:`~mdfx.schema.graph.Graph` as a trainable ``torch.nn.Module``.

:func:`to_module` builds a :class:`NetModule` whose forward pass is the
reference runner's (``mdfx.runners.reference``), written with torch ops so
autograd gives the backward pass:

* an INPUT node takes its external input: ``x = u (+ bias)``;
* any other node sums its incoming projections: ``x = sum_p value[p.sender] @ W_p (+ bias)``,
  with ``W_p`` of shape (sender size, receiver size), as in MDF;
* ``value[node] = GRAPH_RULES[node.op]([x], **node.params)``.

Parameter names (the state_dict format)
---------------------------------------
``module.state_dict()`` is keyed by the network's own names: a projection's
matrix under the projection name (``"MappingProjection from A to B"`` as is),
a node's bias under ``"<node>.bias"`` -- the names :class:`~mdfx.runners.training.LearnResult`
uses. Values are tensors of the module's dtype, matrices shaped (sender, receiver).
``load_state_dict`` takes the same keys, so a state dict saved with
``torch.save(module.state_dict(), path)`` loads into a fresh module with
``module.load_state_dict(torch.load(path, weights_only=True))``.

Torch forbids ``.`` in parameter attribute names, so the tensors are registered
under sanitized attribute names (``module.names`` maps each real name to its
attribute); those show up only in ``named_parameters()``. Learnable arrays are
``nn.Parameter`` s, in the order of :func:`mdfx.runners.training.learnable_params`
(projections, then biases); frozen ones (``learnable=False``,
``bias_learnable=False``) are buffers, saved in the state dict all the same.

Importing this module imports torch; ``import mdfx`` does not (DESIGN rule 5).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdfx import ops
from mdfx import ops_spatial as spatial
from mdfx.errors import MdfxError, UnsupportedError
from mdfx.schema.graph import Graph

DTYPES: Mapping[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32}


# --- PsyNeuLink's transfer functions (the pnl.* graph ops), PsyNeuLink's parameterisation --------


def _affine(x: Tensor, a: float, b: float) -> Tensor:
    """``a * x + b``, skipping a multiply by 1 and an add of 0: defaults cost no kernels."""
    if a != 1.0:
        x = x * a
    if b != 0.0:
        x = x + b
    return x


def _linear(x: Tensor, slope: float, intercept: float, scale: float, offset: float) -> Tensor:
    return _affine(_affine(x, slope, intercept), scale, offset)


def _logistic(x: Tensor, gain: float, bias: float, x_0: float, offset: float, scale: float) -> Tensor:
    # scale / (1 + exp(-gain*(x + bias - x_0))) + offset == scale * sigmoid(gain*(x + bias - x_0)) + offset;
    # torch.sigmoid is one kernel and its autograd rule is y*(1-y), the reference's derivative.
    z = _affine(_affine(x, 1.0, bias - x_0), gain, 0.0)
    return _affine(torch.sigmoid(z), scale, offset)


def _relu(x: Tensor, gain: float, bias: float, leak: float) -> Tensor:
    z = _affine(x, 1.0, -bias)
    # leaky_relu's gradient is taken as `leak` at z == 0, like the reference (`z > 0` is strict)
    y = torch.relu(z) if leak == 0.0 else F.leaky_relu(z, leak)
    return _affine(y, gain, 0.0)


def _tanh(x: Tensor, gain: float, bias: float, x_0: float, offset: float, scale: float) -> Tensor:
    z = _affine(_affine(x, 1.0, bias - x_0), gain, offset)
    return _affine(torch.tanh(z), scale, 0.0)


def _exponential(x: Tensor, rate: float, bias: float, scale: float, offset: float) -> Tensor:
    return _affine(torch.exp(_affine(x, rate, bias)), scale, offset)


def _identity(x: Tensor) -> Tensor:
    return x


def _softmax(x: Tensor, gain: float) -> Tensor:
    return torch.softmax(_affine(x, gain, 0.0), dim=-1)


def _normalize(x: Tensor, eps: float, per_item: float) -> Tensor:
    return x / torch.clamp(torch.linalg.vector_norm(x, ord=2, dim=-1, keepdim=True), min=eps)


# --- loss rules: one per ops.LOSSES entry, the same reduction as its numpy LossOp ------------


def _cross_entropy(y: Tensor, t: Tensor) -> Tensor:
    return F.cross_entropy(y, t)  # probability targets (t has y's shape): mean over the batch


def _kl_div(y: Tensor, t: Tensor) -> Tensor:
    # F.kl_div(y, t, reduction="sum"), PsyNeuLink's reduction, without its per-call warning path
    return (torch.xlogy(t, t) - t * y).sum()


def _nll(y: Tensor, t: Tensor) -> Tensor:
    return -(t * y).sum()  # F.nll_loss(y, t.argmax(-1), reduction="sum") for one-hot targets


def _poisson_nll(y: Tensor, t: Tensor) -> Tensor:
    return (torch.exp(y) - t * y).sum()  # F.poisson_nll_loss(log_input=True, full=False, reduction="sum")


#: This backend's rule per loss: ``fn(y, t) -> 0-d tensor`` over a (B, n) minibatch.
LOSS_RULES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "MSE": F.mse_loss,
    "SSE": lambda y, t: F.mse_loss(y, t, reduction="sum"),
    "L1": lambda y, t: F.l1_loss(y, t, reduction="sum"),
    "CROSS_ENTROPY": _cross_entropy,
    "BINARY_CROSS_ENTROPY": F.binary_cross_entropy,
    "KL_DIV": _kl_div,
    "NLL": _nll,
    "POISSON_NLL": _poisson_nll,
    "SOFT_MARGIN": F.soft_margin_loss,
    "SOFT_MARGIN_SUM": lambda y, t: F.soft_margin_loss(y, t, reduction="sum"),
}


def loss_rule(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The torch rule for a loss of :data:`mdfx.ops.LOSSES`; the error names what is missing."""
    key = ops.loss_op(name).name
    if key not in LOSS_RULES:
        raise MdfxError(f"the torch backend has no rule for loss {key}; it has {', '.join(LOSS_RULES)}")
    return LOSS_RULES[key]


# --- dtype and device --------------------------------------------------------------------


def resolve_dtype(dtype: str) -> torch.dtype:
    """``"float64"`` or ``"float32"`` as a torch dtype."""
    if dtype not in DTYPES:
        raise MdfxError(f"unsupported dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a torch device, checked to exist on this machine."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise MdfxError(f"unknown torch device {device!r} ({e}); use 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise MdfxError(f"unsupported torch device {device!r}; use 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise MdfxError(
            f"torch device {device!r} was requested but CUDA is not available here "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use device='cpu'"
        )
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise MdfxError(f"torch device {device!r} was requested but this machine has {count} CUDA device(s)")
    return dev


# --- graph op rules: one per op of ops.GRAPH_OPS that takes a gradient ------------------------


def _gemm(xs: list[Tensor | None], alpha: float, beta: float, transA: int, transB: int) -> Tensor:
    a, b = xs[0], xs[1]
    c = xs[2] if len(xs) > 2 else None
    a = a.t() if transA else a
    b = b.t() if transB else b
    if c is not None and alpha == 1.0 and beta == 1.0 and c.dim() <= 2:
        return torch.addmm(c, a, b)  # one kernel, as torch's own nn.Linear
    y = a @ b
    if alpha != 1.0:
        y = y * alpha
    return y if c is None else y + (c if beta == 1.0 else beta * c)


def _slice(x: Tensor, starts: list[int], ends: list[int], axes: list[int] | None, steps: list[int] | None
           ) -> Tensor:
    index = [slice(None)] * x.dim()
    for i, ax in enumerate(axes if axes is not None else range(len(starts))):
        step = int(steps[i]) if steps else 1
        a = int(ax) % x.dim()
        picked = range(*slice(int(starts[i]), int(ends[i]), step).indices(x.shape[a]))
        if step < 0:  # torch slices forwards only: a reversed pick is an index_select
            x = x.index_select(a, torch.as_tensor(list(picked), dtype=torch.long, device=x.device))
            continue
        index[a] = slice(picked.start, picked.stop, step)
    return x[tuple(index)]


def _reshape(x: Tensor, shape: list[int], allowzero: int) -> Tensor:
    return x.reshape([x.shape[i] if int(v) == 0 and not allowzero else int(v) for i, v in enumerate(shape)])


def _unsqueeze(x: Tensor, axes: list[int]) -> Tensor:
    rank = x.dim() + len(axes)
    for a in sorted(int(a) % rank for a in axes):
        x = x.unsqueeze(a)
    return x


def _dims(x: Tensor, axes: list[int] | None) -> tuple[int, ...]:
    return tuple(range(x.dim())) if axes is None else tuple(int(a) % x.dim() for a in axes)


def _layer_norm(xs: list[Tensor | None], axis: int, epsilon: float) -> Tensor:
    x = xs[0]
    scale = xs[1] if len(xs) > 1 else None
    bias = xs[2] if len(xs) > 2 else None
    norm = tuple(x.shape[axis % x.dim():])
    if (scale is None or tuple(scale.shape) == norm) and (bias is None or tuple(bias.shape) == norm):
        return F.layer_norm(x, norm, scale, bias, epsilon)
    dims = tuple(range(axis % x.dim(), x.dim()))
    mu = x.mean(dim=dims, keepdim=True)
    y = (x - mu) / torch.sqrt(((x - mu) ** 2).mean(dim=dims, keepdim=True) + epsilon)
    y = y if scale is None else y * scale
    return y if bias is None else y + bias


def _gather(xs: list[Tensor], axis: int) -> Tensor:
    """ONNX Gather; indices come as floats (checked whole and in range at the data boundary)."""
    data, idx = xs[0], xs[1]
    ax = axis % data.dim()
    n = data.shape[ax]
    i = idx.long() if isinstance(idx, Tensor) else torch.as_tensor(np.asarray(idx), dtype=torch.long,
                                                                     device=data.device)
    i = torch.where(i < 0, i + n, i)
    picked = torch.index_select(data, ax, i.reshape(-1))  # autograd scatters into the table
    return picked.reshape(*data.shape[:ax], *i.shape, *data.shape[ax + 1:])


#: ONNX recurrent activations in torch: fn(x, alpha, beta)
_RNN_ACTS: dict[str, Callable[[Tensor, float, float], Tensor]] = {
    "Sigmoid": lambda x, a, b: torch.sigmoid(x), "Tanh": lambda x, a, b: torch.tanh(x),
    "Relu": lambda x, a, b: torch.relu(x), "LeakyRelu": lambda x, a, b: F.leaky_relu(x, a),
    "HardSigmoid": lambda x, a, b: torch.clamp(a * x + b, 0.0, 1.0), "Affine": lambda x, a, b: a * x + b,
    "ScaledTanh": lambda x, a, b: a * torch.tanh(b * x), "Elu": lambda x, a, b: F.elu(x, a),
    "Softsign": lambda x, a, b: x / (1.0 + x.abs()),
    "Softplus": lambda x, a, b: torch.logaddexp(x, torch.zeros((), dtype=x.dtype, device=x.device)),
}


#: ONNX's gate blocks in torch's order (torch LSTM i f g o from ONNX i o f c, GRU r z n from z r h)
_TORCH_GATES = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}


def _fused_recurrent(op: str, X: Tensor, W: Tensor, R: Tensor, B: Tensor | None, h0: Tensor | None,
                     c0: Tensor | None, P: Tensor | None, acts: list, a: dict[str, Any]) -> Tensor | None:
    """torch's own LSTM / GRU / RNN kernel where it computes exactly ONNX's op (default activations,
    no clip, no peepholes, GRU with linear_before_reset=1): the weights gathered into torch's gate
    order (autograd carries the gradients back), the same numbers to rounding; None otherwise."""
    names = [[k.name for k in d] for d in acts]
    defaults = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}
    if a["clip"] is not None or P is not None or (op == "GRU" and not a["linear_before_reset"]):
        return None
    if op == "RNN":
        if any(n != names[0] for n in names) or names[0][0] not in ("Tanh", "Relu"):
            return None
        fn = torch.rnn_tanh if names[0][0] == "Tanh" else torch.rnn_relu
    elif any(n != defaults[op] for n in names):
        return None
    else:
        fn = torch.lstm if op == "LSTM" else torch.gru
    D, G = W.shape[0], W.shape[1]
    H = G // len(_TORCH_GATES[op])
    index = torch.cat([torch.arange(b * H, (b + 1) * H, device=X.device) for b in _TORCH_GATES[op]])
    params: list[Tensor] = []
    for d in range(D):
        params += [W[d].index_select(0, index), R[d].index_select(0, index)]
        if B is not None:
            params += [B[d][:G].index_select(0, index), B[d][G:].index_select(0, index)]
    batch = X.shape[0]

    def state(s: Tensor | None) -> Tensor:
        if s is None:
            return X.new_zeros((D, batch, H))
        return s.expand(batch, D, H).transpose(0, 1).contiguous()

    hx: Any = (state(h0), state(c0)) if op == "LSTM" else state(h0)
    reverse = a["direction"] == "reverse"
    x = X.flip(1) if reverse else X  # torch runs forward (or both ways); reverse is forward over flipped time
    out = fn(x, hx, params, B is not None, 1, 0.0, False, D == 2, True)[0]
    y = out.reshape(batch, X.shape[1], D, H)
    return y.flip(1) if reverse else y


def _recurrent(op: str) -> Callable[..., Tensor]:
    """LSTM / GRU / RNN as mdfx.recurrence computes them, op for op; autograd is the BPTT."""
    from mdfx import recurrence

    def rule(xs: list[Tensor | None], **a: Any) -> Tensor:
        X, W, R, B, h0, c0, P = (list(xs) + [None] * 7)[:7]
        if op != "LSTM":
            c0 = P = None
        acts = recurrence.activations(op, a["direction"], a["activations"], a["activation_alpha"],
                                      a["activation_beta"])
        fused = _fused_recurrent(op, X, W, R, B, h0, c0, P, acts, a)
        if fused is not None:
            return fused
        clip = a["clip"]

        def act(k: recurrence.Act, x: Tensor) -> Tensor:
            return _RNN_ACTS[k.name](x, k.alpha, k.beta)

        def clipped(x: Tensor) -> Tensor:
            return x if clip is None else torch.clamp(x, -clip, clip)

        batch, T = X.shape[0], X.shape[1]
        H = int(a["hidden_size"])
        G = W.shape[1]
        outs = []
        for d in range(W.shape[0]):
            f = acts[d]
            b = B[d] if B is not None else torch.zeros(2 * G, dtype=X.dtype, device=X.device)
            zeros = X.new_zeros((batch, H))
            h = h0[:, d].expand(batch, H) if h0 is not None else zeros
            c = (c0[:, d].expand(batch, H) if c0 is not None else zeros) if op == "LSTM" else None
            xw = X @ W[d].T + b[:G]  # the input projections of every step: one product
            ys: list[Tensor] = [zeros] * T
            order = range(T - 1, -1, -1) if a["direction"] == "reverse" or d == 1 else range(T)
            for t in order:
                if op == "LSTM":
                    g = xw[:, t] + h @ R[d].T + b[G:]
                    pi, po, pf = ((P[d][:H], P[d][H:2 * H], P[d][2 * H:]) if P is not None else (None,) * 3)
                    ai, ao, af, ac = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
                    if pi is not None:
                        ai, af = ai + pi * c, af + pf * c
                    i, fg, cc = act(f[0], clipped(ai)), act(f[0], clipped(af)), act(f[1], clipped(ac))
                    c = fg * c + i * cc
                    o = act(f[0], clipped(ao + po * c if po is not None else ao))
                    h = o * act(f[2], c)
                elif op == "GRU":
                    rb = b[G:]
                    hz = h @ R[d][:2 * H].T + rb[:2 * H]
                    z = act(f[0], clipped(xw[:, t, :H] + hz[:, :H]))
                    r = act(f[0], clipped(xw[:, t, H:2 * H] + hz[:, H:]))
                    if a["linear_before_reset"]:
                        ah = xw[:, t, 2 * H:] + r * (h @ R[d][2 * H:].T + rb[2 * H:])
                    else:
                        ah = xw[:, t, 2 * H:] + (r * h) @ R[d][2 * H:].T + rb[2 * H:]
                    hh = act(f[1], clipped(ah))
                    h = (1.0 - z) * hh + z * h
                else:
                    h = act(f[0], clipped(xw[:, t] + h @ R[d].T + b[G:]))
                ys[t] = h
            outs.append(torch.stack(ys, dim=1))
        return torch.stack(outs, dim=2)

    return rule


def _unary(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    return lambda xs, **a: fn(xs[0], **a)


# --- spatial ops: the geometry is resolved once by mdfx.ops_spatial, torch computes -----------------


def _pool_pads_fit(g: Any, what: str) -> None:
    """torch's pools pad at most half their (dilated) window; wider pads are refused by name, not crashed on."""
    for pad, k, d in zip((*g.begin, *g.end), (*g.kernel, *g.kernel), (*g.dilations, *g.dilations), strict=True):
        if pad > (d * (k - 1) + 1) // 2:
            raise UnsupportedError(f"{what} pads {list(g.begin)} / {list(g.end)} exceed half its window "
                                   f"{list(g.kernel)}, which torch's pools refuse; run this graph in "
                                   "ExecutionMode.Python or ExecutionMode.LLVMRun")


def _torch_pads(g: Any) -> tuple[list[int], list[int] | None]:
    """(symmetric padding for F.conv*/F.*pool*, or F.pad's list when begin and end differ)."""
    if g.begin == g.end:
        return list(g.begin), None
    flat: list[int] = []
    for b, e in zip(reversed(g.begin), reversed(g.end), strict=True):  # F.pad: last axis first
        flat += [b, e]
    return [0] * len(g.begin), flat


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONVT = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_MAXPOOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVGPOOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _conv(xs: list[Tensor | None], **a: Any) -> Tensor:
    x, w = xs[0], xs[1]
    b = xs[2] if len(xs) > 2 else None
    g = spatial._conv_geometry(tuple(x.shape), tuple(w.shape), a)
    padding, explicit = _torch_pads(g)
    if explicit is not None:
        x = F.pad(x, explicit)
    return _CONV[x.dim() - 2](x, w, b, list(g.strides), padding, list(g.dilations), int(a["group"]))


def _conv_transpose(xs: list[Tensor | None], **a: Any) -> Tensor:
    x, w = xs[0], xs[1]
    b = xs[2] if len(xs) > 2 else None
    g, full = spatial._convt_geometry(tuple(x.shape), tuple(w.shape), a)
    n = x.dim() - 2
    out_pad = [f - (s * (i - 1) + d * (k - 1) + 1) for f, s, i, d, k in zip(full, g.strides, g.out, g.dilations,
                                                                          g.kernel, strict=True)]
    if g.begin == g.end:
        return _CONVT[n](x, w, b, list(g.strides), list(g.begin), out_pad, int(a["group"]), list(g.dilations))
    y = _CONVT[n](x, w, b, list(g.strides), 0, out_pad, int(a["group"]), list(g.dilations))
    return y[(slice(None), slice(None), *(slice(bg, f - e) for bg, f, e in zip(g.begin, full, g.end, strict=True)))]


def _max_pool(xs: list[Tensor | None], **a: Any) -> Tensor:
    x = xs[0]
    g = spatial._pool_geometry(tuple(x.shape), a, "MaxPool")
    _pool_pads_fit(g, "MaxPool")
    padding, explicit = _torch_pads(g)
    if explicit is not None:
        x = F.pad(x, explicit, value=-math.inf)
    return _MAXPOOL[x.dim() - 2](x, list(g.kernel), list(g.strides), padding, list(g.dilations),
                                 bool(a["ceil_mode"]))


def _average_pool(xs: list[Tensor | None], **a: Any) -> Tensor:
    x = xs[0]
    g = spatial._pool_geometry(tuple(x.shape), a, "AveragePool")
    _pool_pads_fit(g, "AveragePool")
    padding, explicit = _torch_pads(g)
    if explicit is None:
        return _AVGPOOL[x.dim() - 2](x, list(g.kernel), list(g.strides), padding, bool(a["ceil_mode"]),
                                     bool(a["count_include_pad"]))
    # asymmetric pads: the reference's rule (sum of the windows over the counted positions)
    xp = F.pad(x, explicit)
    count = torch.from_numpy(spatial._avg_parts(np.empty(tuple(x.shape)), a)[1]).to(x)
    summed = _AVGPOOL[x.dim() - 2](xp, list(g.kernel), list(g.strides), 0, bool(a["ceil_mode"]), True,
                                   divisor_override=1) if x.dim() == 4 else None
    if summed is None:
        raise MdfxError("the torch backend takes asymmetric AveragePool pads on 2-D inputs only")
    return summed / count


def _pad(xs: list[Tensor | None], pads: list[int], mode: str, value: float) -> Tensor:
    n = xs[0].dim()
    flat: list[int] = []
    for i in reversed(range(n)):
        flat += [int(pads[i]), int(pads[n + i])]
    return F.pad(xs[0], flat, value=float(value))


#: This backend's rule per graph op: ``fn(inputs, **attrs) -> tensor`` (ops that take no gradient
#: run with the numpy reference rule; tests/test_ops_coverage checks the keys).
GRAPH_RULES: dict[str, Callable[..., Tensor]] = {
    "Add": lambda xs: xs[0] + xs[1],
    "Sub": lambda xs: xs[0] - xs[1],
    "Mul": lambda xs: xs[0] * xs[1],
    "Div": lambda xs: xs[0] / xs[1],
    "Identity": lambda xs: xs[0],
    "Neg": _unary(torch.neg),
    "Relu": _unary(torch.relu),
    "LeakyRelu": lambda xs, alpha: F.leaky_relu(xs[0], alpha),
    "Sigmoid": _unary(torch.sigmoid),
    "Tanh": _unary(torch.tanh),
    "Exp": _unary(torch.exp),
    "Log": _unary(torch.log),
    "Sqrt": _unary(torch.sqrt),
    "Abs": _unary(torch.abs),
    "Reciprocal": _unary(torch.reciprocal),
    "Erf": _unary(torch.erf),
    "Gelu": lambda xs, approximate: F.gelu(xs[0], approximate=approximate),
    # log(1 + e^x) exactly, as ONNX's Softplus and the reference (F.softplus turns linear above 20)
    "Softplus": lambda xs: torch.logaddexp(xs[0], torch.zeros((), dtype=xs[0].dtype, device=xs[0].device)),
    "Elu": lambda xs, alpha: F.elu(xs[0], alpha),
    "Selu": lambda xs, alpha, gamma: gamma * F.elu(xs[0], alpha),
    "HardSigmoid": lambda xs, alpha, beta: torch.clamp(alpha * xs[0] + beta, 0.0, 1.0),
    "Clip": lambda xs, min, max: torch.clamp(xs[0], min, max),
    "Pow": lambda xs, exponent: torch.pow(xs[0], exponent),
    "Cast": lambda xs, to: xs[0],
    "Dropout": lambda xs, ratio: xs[0],
    "Softmax": lambda xs, axis: torch.softmax(xs[0], dim=axis),
    "LogSoftmax": lambda xs, axis: torch.log_softmax(xs[0], dim=axis),
    "MatMul": lambda xs: torch.matmul(xs[0], xs[1]),
    "Gemm": _gemm,
    "Gather": _gather,
    **{op: _recurrent(op) for op in ("LSTM", "GRU", "RNN")},
    "Concat": lambda xs, axis: torch.cat(xs, dim=axis),
    "Slice": lambda xs, **a: _slice(xs[0], **a),
    "Reshape": lambda xs, shape, allowzero: _reshape(xs[0], shape, allowzero),
    "Flatten": lambda xs, axis: xs[0].reshape(int(np.prod(xs[0].shape[:axis])), -1),
    "Squeeze": lambda xs, axes: xs[0].squeeze(_dims(xs[0], axes)),
    "Unsqueeze": lambda xs, axes: _unsqueeze(xs[0], axes),
    "Transpose": lambda xs, perm: xs[0].permute(list(range(xs[0].dim()))[::-1] if perm is None else perm),
    "ReduceSum": lambda xs, axes, keepdims: torch.sum(xs[0], dim=_dims(xs[0], axes), keepdim=bool(keepdims)),
    "ReduceMean": lambda xs, axes, keepdims: torch.mean(xs[0], dim=_dims(xs[0], axes), keepdim=bool(keepdims)),
    "ReduceMax": lambda xs, axes, keepdims: torch.amax(xs[0], dim=_dims(xs[0], axes), keepdim=bool(keepdims)),
    "LayerNormalization": _layer_norm,
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _max_pool,
    "AveragePool": _average_pool,
    "Pad": _pad,
    "BatchNormalization": lambda xs, epsilon, momentum, training_mode: F.batch_norm(
        xs[0], xs[3], xs[4], xs[1], xs[2], training=False, eps=epsilon),
    "pnl.Linear": _unary(_linear),
    "pnl.Logistic": _unary(_logistic),
    "pnl.ReLU": _unary(_relu),
    "pnl.Tanh": _unary(_tanh),
    "pnl.Exponential": _unary(_exponential),
    "pnl.Identity": _unary(_identity),
    "pnl.SoftMax": _unary(_softmax),
    "pnl.Normalize": _unary(_normalize),
}

#: ops that take no gradient: run with the reference's numpy rule on the computed values
HOST_OPS = frozenset(k for k, op in ops.GRAPH_OPS.items() if op.vjp is None)


# --- the module ----------------------------------------------------------------------------

#: One step of the forward plan: node output, rule, input tensor names, attrs
_Step = tuple[str, Callable[..., Any], tuple[str, ...], dict[str, Any]]


class GraphModule(nn.Module):
    """A :class:`~mdfx.schema.graph.Graph` as a ``torch.nn.Module``; build it with :func:`to_module`.

    ``forward(inputs)`` takes ``{graph input: tensor (B, *features)}`` and returns the
    graph's outputs (or the tensors named in ``outputs``). Learnable params are
    ``nn.Parameter`` s, frozen ones buffers, in the graph's param order; the state
    dict is keyed by the params' own names.

    With ``share=True`` (float64 on the CPU), every tensor *is* its numpy array
    (``torch.from_numpy``): training updates the graph's arrays in place and
    nothing is copied, per call or at the end. Otherwise the arrays are copied in
    (:meth:`load_arrays`) and written back (:meth:`copy_into`).
    """

    def __init__(self, graph: Graph, dtype: torch.dtype, device: torch.device, share: bool = False) -> None:
        super().__init__()
        self.graph_name = graph.name
        self.input_names: tuple[str, ...] = tuple(graph.inputs)
        self.output_names: tuple[str, ...] = tuple(graph.outputs)
        #: each mechanism's value tensor, by name (a composition's graph; empty for others)
        self.mechanism_values: dict[str, str] = (dict(graph.mechanisms.tensors) if graph.mechanisms is not None
                                                 else {})
        self.shared = share and dtype == torch.float64 and device.type == "cpu" and all(
            _is_shareable(p.value) for p in graph.params.values() if p.value.dtype.kind == "f")
        #: real name (the param's) -> attribute name of its tensor
        self.names: dict[str, str] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._labels: dict[str, np.ndarray] = {}
        self._empty = torch.empty(0, dtype=dtype, device=device)  # dtype and device of a graph without params
        for p in graph.params.values():
            self._register(p.name, p.value, p.learnable, dtype, device)
        self._plan: list[_Step] = []
        for node in graph.nodes:
            host = node.op in HOST_OPS
            if not host and node.op not in GRAPH_RULES:
                raise MdfxError(f"node {node.name!r}: the torch backend has no rule for op {node.op!r}; it has "
                                f"{', '.join(sorted(GRAPH_RULES))}")
            rule = _host_rule(node.op) if host else GRAPH_RULES[node.op]
            if node.op == "BatchNormalization" and node.attrs["training_mode"]:
                rule = self._batch_norm
            self._plan.append((node.output, rule, tuple(node.inputs), dict(node.attrs)))
        self._plans: dict[tuple[str, ...], list[_Step]] = {}
        self._tensors: dict[str, Tensor] | None = None

    def _batch_norm(self, xs: list[Tensor], epsilon: float, momentum: float, training_mode: int) -> Tensor:
        """A training-mode BatchNormalization: torch's own in train() (batch statistics, the running ones
        updated in place with ``1 - momentum``, torch's momentum), its running statistics in eval()."""
        return F.batch_norm(xs[0], xs[3], xs[4], xs[1], xs[2], training=self.training, momentum=1.0 - momentum,
                            eps=epsilon)

    def _apply(self, fn: Any, recurse: bool = True) -> GraphModule:
        self._tensors = None
        return super()._apply(fn, recurse)

    def _register(self, name: str, array: np.ndarray, learnable: bool,
                  dtype: torch.dtype, device: torch.device) -> None:
        attr = base = "w_" + re.sub(r"\W", "_", name)
        k = 1
        while attr in self.names.values():
            k += 1
            attr = f"{base}_{k}"
        if array.dtype.kind != "f":  # a label table (skl2onnx's classes): read by host ops only
            self._labels[name] = array
            return
        self.names[name] = attr
        self._arrays[name] = array
        if self.shared:
            tensor = torch.from_numpy(_shareable(array))
        else:
            tensor = torch.tensor(array, dtype=dtype, device=device)
        if learnable:
            self.register_parameter(attr, nn.Parameter(tensor))
        else:
            self.register_buffer(attr, tensor)

    def tensor(self, name: str) -> Tensor:
        """The parameter or buffer of a param name."""
        attr = self.names[name]
        t = self._parameters.get(attr)
        return self._buffers[attr] if t is None else t

    def bind(self, graph: Graph) -> None:
        """Point the module at ``graph``'s current arrays (same structure): zero-copy when shared."""
        for name, p in graph.params.items():
            if name in self._labels:
                self._labels[name] = p.value
                continue
            if self._arrays.get(name) is p.value:
                continue
            self._arrays[name] = p.value
            self._tensors = None
            t = self.tensor(name)
            if self.shared:
                t.data = torch.from_numpy(_shareable(p.value))
            else:
                with torch.no_grad():
                    t.copy_(torch.as_tensor(p.value))

    def load_arrays(self) -> None:
        """Copy the bound arrays into the module's tensors (the copying case: float32 or a GPU)."""
        if self.shared:
            return
        with torch.no_grad():
            for name, array in self._arrays.items():
                self.tensor(name).copy_(torch.as_tensor(array))

    def _plan_for(self, outputs: tuple[str, ...]) -> list[_Step]:
        """Only the steps ``outputs`` depend on (a classifier's label tail is skipped in training)."""
        plan = self._plans.get(outputs)
        if plan is None:
            needed = set(outputs)
            keep = []
            for step in reversed(self._plan):
                if step[0] in needed:
                    keep.append(step)
                    needed.update(t for t in step[2] if t)
            plan = self._plans[outputs] = keep[::-1]
        return plan

    def forward(self, inputs: Mapping[str, Tensor], outputs: Iterable[str] | None = None,
                all_nodes: bool = False) -> dict[str, Any]:
        """The graph's outputs (or ``outputs``; or every composition node's value, with ``all_nodes``)."""
        if self._tensors is None:  # dropped by .to() / bind(), which replace tensors
            t = self._parameters | self._buffers
            self._tensors = {k: t[a] for k, a in self.names.items()}
        env: dict[str, Any] = dict(self._tensors)
        env.update(self._labels)
        env.update(inputs)
        wanted = tuple(self.output_names if outputs is None else outputs)
        if all_nodes:
            wanted = tuple(self.mechanism_values.values()) or tuple(self.output_names)
        for out, rule, ins, attrs in self._plan_for(wanted):
            xs = [env[t] if t else None for t in ins]
            env[out] = rule(xs, **attrs)
        if all_nodes and self.mechanism_values:
            return {node: env[t] for node, t in self.mechanism_values.items()}
        return {name: env[name] for name in wanted}

    def copy_into(self, model: Any = None, names: Iterable[str] | None = None) -> None:
        """Write the module's tensors into the bound arrays, in place, as float64 (no-op when shared).

        ``names`` limits the copy (training writes back only what it trained, so a
        float32 run leaves frozen arrays untouched). ``model`` (a Graph whose
        arrays differ from the bound ones) receives the values instead.
        """
        arrays = self._arrays if model is None else _arrays_of(model)
        for name in self.names if names is None else names:
            if self.shared and arrays[name] is self._arrays[name]:
                continue
            arrays[name][...] = self.tensor(name).detach().cpu().numpy()

    # state_dict keyed by the real names (see the module docstring)

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        for name in self.names:
            t = self.tensor(name)
            destination[prefix + name] = t if keep_vars else t.detach()

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list[str], unexpected_keys: list[str],
                              error_msgs: list[str]) -> None:
        for name in self.names:
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            value, target = state_dict[key], self.tensor(name)
            if not isinstance(value, Tensor) or value.shape != target.shape:
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                error_msgs.append(f"{key!r}: expected a tensor of shape {tuple(target.shape)}, got {shape}")
                continue
            with torch.no_grad():
                target.copy_(value)
        if strict:
            unexpected_keys.extend(k for k in state_dict if k.startswith(prefix) and k[len(prefix):] not in self.names)

    @property
    def dtype(self) -> torch.dtype:
        return next(chain(self._parameters.values(), self._buffers.values()), self._empty).dtype

    @property
    def device(self) -> torch.device:
        return next(chain(self._parameters.values(), self._buffers.values()), self._empty).device

    def extra_repr(self) -> str:
        return f"graph={self.graph_name!r}, inputs={list(self.input_names)}, outputs={list(self.output_names)}"


#: PsyNeuLink-era name of the module class
NetModule = GraphModule


def _is_shareable(array: np.ndarray) -> bool:
    return bool(array.flags.c_contiguous and array.flags.writeable and array.dtype == np.float64)


def _shareable(array: np.ndarray) -> np.ndarray:
    if not _is_shareable(array):
        raise MdfxError("a shared torch tensor needs a writeable, C-contiguous float64 array")
    return array


def _host_rule(op: str) -> Callable[..., Any]:
    """An op that takes no gradient, run with the reference's numpy rule on detached values."""
    forward = ops.graph_op(op).forward

    def rule(xs: list[Any], **attrs: Any) -> Any:
        arrays = [x.detach().cpu().numpy() if isinstance(x, Tensor) else x for x in xs]
        return forward(arrays, **attrs)

    return rule


def _arrays_of(graph: Graph) -> dict[str, np.ndarray]:
    return {k: p.value for k, p in graph.params.items()}


def to_module(graph: Graph, dtype: str = "float64", device: str = "cpu", share: bool = False) -> GraphModule:
    """Build a trainable :class:`GraphModule` from a Graph.

    ``dtype`` is ``"float64"`` (default, as PsyNeuLink) or ``"float32"``; ``device``
    is ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. A CUDA device on a machine without
    CUDA raises :class:`~mdfx.errors.MdfxError` naming the device. With ``share``
    (float64 on the CPU) the module's tensors are the graph's arrays; otherwise copies.
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"to_module() takes a Graph, got {type(graph).__name__}")
    return GraphModule(graph, resolve_dtype(dtype), resolve_device(device), share)


#: compiled modules by (structure, dtype, device), most recently used last
_CACHE: OrderedDict[tuple, GraphModule] = OrderedDict()
#: how many modules the cache keeps (each holds its graph's tensors when not sharing)
CACHE_SIZE = 16


def cached_module(graph: Graph, dtype: str = "float64", device: str = "cpu") -> GraphModule:
    """The module for ``graph``'s structure, built once and re-pointed at the graph's arrays.

    Float64 on the CPU shares the arrays (nothing copied); float32 or a GPU copies
    the current values in at each call.
    """
    key = (graph.structure_key(), dtype, str(device))
    module = _CACHE.get(key)
    if module is None:
        module = to_module(graph, dtype, device, share=True)
        _CACHE[key] = module
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
        try:
            module.bind(graph)
        except MdfxError:  # an array that cannot be shared (a Fortran-ordered or float32 one): copy
            module = _CACHE[key] = to_module(graph, dtype, device, share=False)
    module.load_arrays()
    return module
