"""A catalogue of small torch modules covering every pattern issue 9 names.

Each :class:`Entry` builds its module with a fixed seed, so every call gives the same
weights; sizes are tiny so that exporting, loading and training take milliseconds.
Modules are built in float32 (as a user's would be) and converted with ``.to(dtype)``.
Every graph input is ``(batch, features...)`` and every output ``(batch, features)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - torch's own spelling


@dataclass(frozen=True)
class Entry:
    """One model of the corpus."""

    name: str
    build: Callable[[], nn.Module]  #: constructs the module (seeded, float32, eval mode)
    inputs: dict[str, tuple[int, ...]]  #: graph input name -> per-trial shape (batch excluded)
    outputs: tuple[str, ...] = ("y",)  #: graph output names, in the module's return order
    trained: tuple[str, ...] = ("y",)  #: outputs that get targets in training
    lr: float = 0.05  #: SGD learning rate: small enough that 3 epochs do not diverge
    pattern: str = ""  #: what the model exercises, for reports
    #: the training reference, when the exported file cannot say what the module computes
    #: (ONNX attributes are float32: see FLOAT32_CONSTANTS); None: ``build`` itself
    reference: Callable[[], nn.Module] | None = None


def seeded(make: Callable[[], nn.Module], seed: int = 0) -> Callable[[], nn.Module]:
    """A constructor that seeds torch's RNG first, and returns the module in eval mode."""
    def build() -> nn.Module:
        torch.manual_seed(seed)
        return make().eval()

    return build


# ONNX stores float attributes (LeakyRelu's and Elu's alpha, LayerNormalization's and
# BatchNormalization's epsilon) as float32: the catalogue picks values float32 holds exactly,
# so a float64 file computes what its module computes.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.25),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "elu": lambda: nn.ELU(0.5),
    "selu": nn.SELU,
    "softplus": nn.Softplus,
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "silu": nn.SiLU,
    "hardsigmoid": nn.Hardsigmoid,
}


EPS = 2.0 ** -17  #: a norm epsilon float32 holds exactly


def f32(value: float) -> float:
    return float(np.float32(value))


class SeluF32(nn.Module):
    """SELU with the float32 constants an ONNX Selu node carries (the spec's defaults are
    those float32 values; torch's are float64): the training reference for ``mlp_selu``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha, gamma = f32(1.6732632423543772848170429916717), f32(1.0507009873554804934193349852946)
        return gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))


class HardsigmoidF32(nn.Module):
    """Hardsigmoid as ONNX's HardSigmoid computes it, with alpha = float32(1/6)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x * f32(1 / 6) + 0.5, 0, 1)


#: activations whose constants an ONNX file holds only to float32: the reference uses those
FLOAT32_CONSTANTS: dict[str, Callable[[], nn.Module]] = {"selu": SeluF32, "hardsigmoid": HardsigmoidF32}


def mlp(act: str, bias: bool = True, layer: Callable[[], nn.Module] | None = None) -> Callable[[], nn.Module]:
    return seeded(lambda: nn.Sequential(nn.Linear(4, 5, bias=bias), (layer or ACTIVATIONS[act])(),
                                        nn.Linear(5, 3, bias=bias)))


# --- modules with a forward of their own ---------------------------------------------------


class TwoInputSum(nn.Module):
    """``la(a) + lb(b)``: two biased branches from two inputs, summed."""

    def __init__(self) -> None:
        super().__init__()
        self.la, self.lb = nn.Linear(3, 4), nn.Linear(2, 4)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.la(a) + self.lb(b))


class Branches(nn.Module):
    """``l2(h) + l3(x)`` or ``l2(h) - l3(x)``: a biased skip branch summed or subtracted."""

    def __init__(self, subtract: bool) -> None:
        super().__init__()
        self.subtract = subtract
        self.l1, self.l2, self.l3 = nn.Linear(4, 5), nn.Linear(5, 3), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.l1(x))
        return self.l2(h) - self.l3(x) if self.subtract else self.l2(h) + self.l3(x)


class InputNorm(nn.Module):
    """``(x - mean) / std`` with constant buffers, then an MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, -1.0, 2.0, 0.0]))
        self.register_buffer("std", torch.tensor([2.0, 0.5, 1.5, 1.0]))
        self.l1, self.l2 = nn.Linear(4, 5), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.relu(self.l1((x - self.mean) / self.std)))


class Scaled(nn.Module):
    """A constant scale: ``l1(x / 4)``, ``l2(relu(l1(x) * 2))`` or ``l2(...) * 10``."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where
        self.l1, self.l2 = nn.Linear(4, 5), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.where == "input":
            x = x / 4
        h = self.l1(x)
        if self.where == "hidden":
            h = h * 2
        y = self.l2(torch.relu(h))
        return y * 10 if self.where == "output" else y


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(4, 5), nn.Linear(5, 5), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.l1(x))
        return self.l3(h + torch.tanh(self.l2(h)))


class Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.la, self.lb, self.l2 = nn.Linear(4, 3), nn.Linear(4, 2), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.cat([torch.relu(self.la(x)), torch.tanh(self.lb(x))], dim=1))


class SplitHalves(nn.Module):
    """``torch.split`` on the feature axis."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(4, 6), nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(self.l1(x), [3, 3], dim=1)
        return self.l2(torch.relu(a) + torch.tanh(b))


class SliceFeatures(nn.Module):
    """Basic slicing ``h[:, 1:4]`` and ``h[:, :2]`` on the feature axis."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(4, 6), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.l1(x))
        return self.l2(torch.cat([h[:, 1:4], h[:, :2]], dim=1))


class TwoOutputs(nn.Module):
    """A shared trunk and two heads; which heads are trained is the entry's choice."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk, self.h1, self.h2 = nn.Linear(4, 5), nn.Linear(5, 3), nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.trunk(x))
        return self.h1(h), torch.sigmoid(self.h2(h))


class TwoInTwoOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.la, self.lb, self.head = nn.Linear(3, 4), nn.Linear(2, 4), nn.Linear(4, 2)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.la(a)) + torch.relu(self.lb(b))
        return self.head(h), h


class Normed(nn.Module):
    """LayerNorm, or BatchNorm1d in eval mode with non-trivial running statistics."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(4, 5), nn.Linear(5, 3)
        if kind == "layer":
            self.norm: nn.Module = nn.LayerNorm(5, eps=EPS)
            with torch.no_grad():  # away from the identity (1, 0) init, so errors show
                self.norm.weight.uniform_(0.5, 1.5)
                self.norm.bias.uniform_(-0.5, 0.5)
        else:
            self.norm = nn.BatchNorm1d(5, eps=EPS)
            with torch.no_grad():
                self.norm.running_mean.uniform_(-0.5, 0.5)
                self.norm.running_var.uniform_(0.5, 2.0)
                self.norm.weight.uniform_(0.5, 1.5)
                self.norm.bias.uniform_(-0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.relu(self.norm(self.l1(x))))


class Reshapes(nn.Module):
    """Reshape, flatten, unsqueeze and squeeze that keep the batch axis."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.l1 = nn.Linear(6 if kind == "flatten" else 4, 6)
        self.l2 = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "flatten":  # x is (batch, 2, 3)
            return self.l2(torch.relu(self.l1(torch.flatten(x, 1))))
        h = self.l1(x)
        if self.kind == "reshape":
            h = torch.tanh(h.reshape(-1, 2, 3)).reshape(-1, 6)
        elif self.kind == "unsqueeze":
            h = torch.sigmoid(h.unsqueeze(1)).squeeze(1)
        return self.l2(h)


class ReshapeColumn(nn.Module):
    """A feature sum reshaped to ``[-1, 1]`` (the batch-keeping Reshape issue 9 names)."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.l1(x)).sum(dim=1).reshape(-1, 1)


class Gated(nn.Module):
    """Tensor x tensor: ``l1(x) * sigmoid(l2(x))`` or ``l1(x) / (softplus(l2(x)) + 1)``."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op
        self.l1, self.l2, self.l3 = nn.Linear(4, 5), nn.Linear(4, 5), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.l1(x), self.l2(x)
        h = a * torch.sigmoid(b) if self.op == "mul" else a / (F.softplus(b) + 1)
        return self.l3(h)


UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # each keeps its argument in the op's domain and its value moderate
    "exp": lambda h: torch.exp(torch.tanh(h)),
    "log": lambda h: torch.log(torch.sigmoid(h)),
    "sqrt": lambda h: torch.sqrt(torch.sigmoid(h)),
    "abs": torch.abs,
    "pow2": lambda h: h ** 2,
    "pow3": lambda h: torch.tanh(h) ** 3,
    "neg": lambda h: -torch.tanh(h),
    "clamp": lambda h: torch.clamp(h, -0.5, 0.5),
    "clamp_min": lambda h: torch.clamp(h, min=-0.25),
    "reduce_sum": lambda h: h - h.sum(dim=1, keepdim=True) / 4,
    "reduce_mean": lambda h: torch.tanh(h) - h.mean(dim=1, keepdim=True),
    "reduce_max": lambda h: h - h.max(dim=1, keepdim=True).values,
}


class Unary(nn.Module):
    def __init__(self, fn: str) -> None:
        super().__init__()
        self.fn = fn
        self.l1, self.l2 = nn.Linear(4, 5), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(UNARY[self.fn](self.l1(x)))


class RawWeights(nn.Module):
    """Parameters used directly: ``x @ W.T + b``, ``x @ V``, ``addmm`` with alpha and beta,
    ``F.linear``."""

    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.W = nn.Parameter(torch.randn(5, 4) * 0.4)  # (out, in): used transposed
        self.b = nn.Parameter(torch.randn(5) * 0.1)
        self.V = nn.Parameter(torch.randn(5, 3) * 0.4)  # (in, out): used as is
        self.c = nn.Parameter(torch.randn(3) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.form == "matmul_t":
            h = torch.tanh(x @ self.W.T + self.b)
            return h @ self.V + self.c
        if self.form == "addmm":
            h = torch.relu(torch.addmm(self.b, x, self.W.t(), beta=0.5, alpha=2.0))
            return torch.addmm(self.c, h, self.V)
        h = torch.sigmoid(F.linear(x, self.W, self.b))
        return F.linear(h, self.V.T, self.c)


X4 = {"x": (4,)}
AB = {"a": (3,), "b": (2,)}


def _entries() -> list[Entry]:
    out = [Entry(f"mlp_{act}", mlp(act), X4, pattern=f"Linear-{act}-Linear",
                 reference=mlp(act, layer=FLOAT32_CONSTANTS[act]) if act in FLOAT32_CONSTANTS else None)
           for act in ACTIVATIONS]
    out += [
        Entry("mlp_nobias", mlp("relu", bias=False), X4, pattern="Linear(bias=False)"),
        Entry("mlp_softmax", seeded(lambda: nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3),
                                                          nn.Softmax(dim=-1))), X4,
              lr=0.5, pattern="Softmax output"),
        Entry("mlp_log_softmax", seeded(lambda: nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3),
                                                              nn.LogSoftmax(dim=1))), X4,
              pattern="LogSoftmax output"),
        Entry("mlp_deep", seeded(lambda: nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5),
                                                       nn.Tanh(), nn.Linear(5, 3))), X4,
              pattern="nn.Sequential, three layers"),
        Entry("two_input_sum", seeded(TwoInputSum), AB, pattern="la(a) + lb(b)"),
        Entry("branch_sum", seeded(lambda: Branches(subtract=False)), X4, pattern="l2(h) + l3(x)"),
        Entry("branch_sub", seeded(lambda: Branches(subtract=True)), X4, pattern="l2(h) - l3(x)"),
        Entry("input_norm", seeded(InputNorm), X4, pattern="(x - mean) / std, constant buffers"),
        Entry("scale_input", seeded(lambda: Scaled("input")), X4, pattern="l1(x / 4)"),
        Entry("scale_hidden", seeded(lambda: Scaled("hidden")), X4, pattern="l1(x) * 2"),
        Entry("scale_output", seeded(lambda: Scaled("output")), X4, lr=0.002, pattern="out * 10"),
        Entry("residual", seeded(Residual), X4, pattern="h + f(h)"),
        Entry("concat", seeded(Concat), X4, pattern="torch.cat on the feature axis"),
        Entry("split", seeded(SplitHalves), X4, pattern="torch.split on the feature axis"),
        Entry("slice", seeded(SliceFeatures), X4, pattern="h[:, 1:4], h[:, :2]"),
        Entry("two_outputs", seeded(TwoOutputs), X4, outputs=("y1", "y2"), trained=("y1", "y2"),
              pattern="two heads, both trained"),
        Entry("two_outputs_one_trained", seeded(TwoOutputs), X4, outputs=("y1", "y2"), trained=("y1",),
              pattern="two heads, one trained"),
        Entry("two_in_two_out", seeded(TwoInTwoOut), AB, outputs=("y", "h"), trained=("y", "h"),
              pattern="two inputs, an output that also feeds another"),
        Entry("layernorm", seeded(lambda: Normed("layer")), X4, pattern="LayerNorm"),
        Entry("batchnorm_eval", seeded(lambda: Normed("batch")), X4, pattern="BatchNorm1d, eval mode"),
        Entry("dropout_eval", seeded(lambda: nn.Sequential(nn.Linear(4, 5), nn.Dropout(0.3), nn.ReLU(),
                                                           nn.Linear(5, 3))), X4, pattern="Dropout, eval mode"),
        Entry("flatten", seeded(lambda: Reshapes("flatten")), {"x": (2, 3)}, pattern="Flatten of (batch, 2, 3)"),
        Entry("reshape", seeded(lambda: Reshapes("reshape")), X4, pattern="reshape(-1, 2, 3) and back"),
        Entry("unsqueeze_squeeze", seeded(lambda: Reshapes("unsqueeze")), X4, pattern="unsqueeze(1) / squeeze(1)"),
        Entry("reshape_column", seeded(ReshapeColumn), X4, pattern="sum over features, reshape(-1, 1)"),
        Entry("mul_tensor", seeded(lambda: Gated("mul")), X4, pattern="l1(x) * sigmoid(l2(x))"),
        Entry("div_tensor", seeded(lambda: Gated("div")), X4, pattern="l1(x) / (softplus(l2(x)) + 1)"),
    ]
    out += [Entry(f"unary_{fn}", seeded(lambda fn=fn: Unary(fn)), X4, pattern=fn) for fn in UNARY]
    out += [
        Entry("weight_transpose", seeded(lambda: RawWeights("matmul_t")), X4, pattern="x @ W.T + b, h @ V + c"),
        Entry("gemm_alpha_beta", seeded(lambda: RawWeights("addmm")), X4, pattern="addmm(beta=0.5, alpha=2)"),
        Entry("functional_linear", seeded(lambda: RawWeights("linear")), X4, pattern="F.linear(x, W, b)"),
    ]
    return out


ENTRIES: dict[str, Entry] = {e.name: e for e in _entries()}
