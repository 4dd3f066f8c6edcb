"""MDF → torch: a :class:`~mdfx.schema.net.Net` as a trainable ``torch.nn.Module``.

:func:`to_module` builds a :class:`NetModule` whose forward pass is the
reference runner's (``mdfx.runners.reference``), written with torch ops so
autograd gives the backward pass:

* an INPUT node takes its external input: ``x = u (+ bias)``;
* any other node sums its incoming projections: ``x = sum_p value[p.sender] @ W_p (+ bias)``,
  with ``W_p`` of shape (sender size, receiver size), as in MDF;
* ``value[node] = TRANSFER_RULES[node.op](x, **node.params)``.

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

import re
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdfx import ops
from mdfx.errors import MdfxError
from mdfx.schema.net import Net

DTYPES: Mapping[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32}


# --- transfer rules: one per op of ops.TRANSFER, PsyNeuLink's parameterisation ----------------


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


#: This backend's rule per transfer op: ``fn(x, **params) -> y`` (tests/test_ops_coverage checks the keys).
TRANSFER_RULES: dict[str, Callable[..., Tensor]] = {
    "linear": _linear,
    "logistic": _logistic,
    "relu": _relu,
    "tanh": _tanh,
    "exponential": _exponential,
    "identity": _identity,
    "softmax": _softmax,
}


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


# --- the module ----------------------------------------------------------------------------

#: One node of the forward plan: name, rule, params, bias key or None,
#: incoming (sender, weight key) pairs, or None for an INPUT node.
_Step = tuple[str, Callable[..., Tensor], dict[str, float], str | None, tuple[tuple[str, str], ...] | None]


class NetModule(nn.Module):
    """A :class:`~mdfx.schema.net.Net` as a ``torch.nn.Module``; build it with :func:`to_module`.

    ``forward(inputs)`` takes ``{input node: tensor (B, size)}`` and returns
    ``{output node: tensor (B, size)}``. See the module docstring for the
    state_dict keys.
    """

    def __init__(self, net: Net, dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        self.net_name = net.name
        self.input_names: tuple[str, ...] = tuple(net.inputs)
        self.output_names: tuple[str, ...] = tuple(net.outputs)
        #: real name (projection name or "<node>.bias") -> attribute name of its tensor
        self.names: dict[str, str] = {}
        self._empty = torch.empty(0, dtype=dtype, device=device)  # dtype and device of a net without weights
        for p in net.projections:
            self._register(p.name, p.matrix, p.learnable, dtype, device)
        for n in net.nodes:
            if n.bias is not None:
                self._register(f"{n.name}.bias", n.bias, n.bias_learnable, dtype, device)
        self._plan: list[_Step] = []
        for n in net.nodes:
            if n.op not in TRANSFER_RULES:
                raise MdfxError(f"node {n.name!r}: the torch backend has no rule for transfer op {n.op!r}; "
                                f"it has {', '.join(TRANSFER_RULES)}")
            incoming = None if n.name in net.inputs else tuple(
                (p.sender, self.names[p.name]) for p in net.incoming(n.name))
            if incoming == ():
                raise MdfxError(f"node {n.name!r} has no incoming projection and is not an input node "
                                f"(inputs: {', '.join(net.inputs)})")
            bias = self.names[f"{n.name}.bias"] if n.bias is not None else None
            self._plan.append((n.name, TRANSFER_RULES[n.op], dict(n.params), bias, incoming))

    def _register(self, name: str, array: np.ndarray, learnable: bool,
                  dtype: torch.dtype, device: torch.device) -> None:
        attr = base = "w_" + re.sub(r"\W", "_", name)
        k = 1
        while attr in self.names.values():
            k += 1
            attr = f"{base}_{k}"
        self.names[name] = attr
        tensor = torch.tensor(array, dtype=dtype, device=device)
        if learnable:
            self.register_parameter(attr, nn.Parameter(tensor))
        else:
            self.register_buffer(attr, tensor)

    def tensor(self, name: str) -> Tensor:
        """The parameter or buffer of a projection name or ``"<node>.bias"``."""
        attr = self.names[name]
        t = self._parameters.get(attr)
        return self._buffers[attr] if t is None else t

    def forward(self, inputs: Mapping[str, Tensor], all_nodes: bool = False) -> dict[str, Tensor]:
        """Values of the OUTPUT nodes (or of every node, with ``all_nodes``), each (B, size)."""
        # looked up per call rather than captured at build time: .to() replaces buffers
        t = self._parameters | self._buffers
        values: dict[str, Tensor] = {}
        for name, rule, params, bias, incoming in self._plan:
            if incoming is None:
                x = inputs[name] if bias is None else inputs[name] + t[bias]
            else:
                sender, w = incoming[0]
                x = values[sender] @ t[w] if bias is None else torch.addmm(t[bias], values[sender], t[w])
                for sender, w in incoming[1:]:
                    x = torch.addmm(x, values[sender], t[w])
            values[name] = rule(x, **params)
        return values if all_nodes else {name: values[name] for name in self.output_names}

    def copy_into(self, net: Net, names: Iterable[str] | None = None) -> None:
        """Write this module's weights into ``net``'s arrays, in place, as float64.

        ``names`` limits the copy to some projection / ``"<node>.bias"`` names
        (training writes back only what it trained, so a float32 run leaves
        frozen arrays untouched); by default every array is copied.
        """
        arrays = {p.name: p.matrix for p in net.projections}
        arrays.update({f"{n.name}.bias": n.bias for n in net.nodes if n.bias is not None})
        for name in self.names if names is None else names:
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
        return f"net={self.net_name!r}, inputs={list(self.input_names)}, outputs={list(self.output_names)}"


def to_module(net: Net, dtype: str = "float64", device: str = "cpu") -> NetModule:
    """Build a trainable :class:`NetModule` from ``net``; its arrays are copied, not shared.

    ``dtype`` is ``"float64"`` (default, as PsyNeuLink) or ``"float32"``; ``device``
    is ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. A CUDA device on a machine without
    CUDA raises :class:`~mdfx.errors.MdfxError` naming the device.
    """
    return NetModule(net, resolve_dtype(dtype), resolve_device(device))
