"""LSTM, GRU and RNN as ONNX defines them: numpy forward and backpropagation through time.

The spec of the graph ops ``LSTM``, ``GRU`` and ``RNN`` (:mod:`mdfx.ops` registers them),
written to be read: one function per cell for a step forward, one for the step backward,
and one time loop over the directions that every cell shares.

Layouts are the graph's, batch first (ONNX ``layout=1``): ``X`` is ``(batch, T, input)``,
the output ``Y`` is ``(batch, T, directions, hidden)``, ``initial_h``/``initial_c`` are
``(batch or 1, directions, hidden)``. Weights are ONNX's: ``W`` ``(directions, gates *
hidden, input)``, ``R`` ``(directions, gates * hidden, hidden)``, ``B`` ``(directions, 2 *
gates * hidden)`` (``W``'s bias then ``R``'s), gates in ONNX's order (LSTM ``i o f c``,
GRU ``z r h``); LSTM's peepholes ``P`` are ``(directions, 3 * hidden)`` (``i o f``).
``direction`` is ``forward``, ``reverse`` or ``bidirectional``; ``clip`` bounds every
gate's pre-activation (the gradient is 1 inside the bound, 0 outside, as ``torch.clamp``);
``activations`` name the functions per direction (LSTM ``f g h``, GRU ``f g``, RNN ``f``)
with ``activation_alpha``/``activation_beta`` taken in order by those that have them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray

#: activation -> (forward(x, alpha, beta), derivative(x, y, alpha, beta), default alpha, default beta);
#: None defaults: the function takes no alpha/beta
ACTIVATIONS: dict[str, tuple[Callable[..., Array], Callable[..., Array], float | None, float | None]] = {
    "Sigmoid": (lambda x, a, b: 1.0 / (1.0 + np.exp(-x)), lambda x, y, a, b: y * (1.0 - y), None, None),
    "Tanh": (lambda x, a, b: np.tanh(x), lambda x, y, a, b: 1.0 - y * y, None, None),
    "Relu": (lambda x, a, b: np.maximum(x, 0.0), lambda x, y, a, b: (x > 0).astype(x.dtype), None, None),
    "LeakyRelu": (lambda x, a, b: np.where(x > 0, x, a * x), lambda x, y, a, b: np.where(x > 0, 1.0, a), 0.01, None),
    "HardSigmoid": (lambda x, a, b: np.clip(a * x + b, 0.0, 1.0),
                    lambda x, y, a, b: np.where((a * x + b > 0) & (a * x + b < 1), a, 0.0), 0.2, 0.5),
    "Affine": (lambda x, a, b: a * x + b, lambda x, y, a, b: np.full_like(x, a), 1.0, 0.0),
    "ScaledTanh": (lambda x, a, b: a * np.tanh(b * x), lambda x, y, a, b: a * b * (1.0 - np.tanh(b * x) ** 2),
                   1.0, 1.0),
    "Elu": (lambda x, a, b: np.where(x > 0, x, a * (np.exp(np.minimum(x, 0.0)) - 1.0)),
            lambda x, y, a, b: np.where(x > 0, 1.0, y + a), 1.0, None),
    "Softsign": (lambda x, a, b: x / (1.0 + np.abs(x)), lambda x, y, a, b: 1.0 / (1.0 + np.abs(x)) ** 2, None, None),
    "Softplus": (lambda x, a, b: np.logaddexp(0.0, x), lambda x, y, a, b: 1.0 / (1.0 + np.exp(-x)), None, None),
}


@dataclass(frozen=True)
class Act:
    """One activation with its alpha and beta."""

    name: str
    alpha: float
    beta: float

    def __call__(self, x: Array) -> Array:
        return ACTIVATIONS[self.name][0](x, self.alpha, self.beta)

    def grad(self, x: Array, y: Array) -> Array:
        return ACTIVATIONS[self.name][1](x, y, self.alpha, self.beta)


#: per op: gates, activations per direction and their defaults, state tensors (h, and c for LSTM)
CELLS = {"LSTM": (4, ("Sigmoid", "Tanh", "Tanh"), 2), "GRU": (3, ("Sigmoid", "Tanh"), 1),
         "RNN": (1, ("Tanh",), 1)}
DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}


def activations(op: str, direction: str, names: list[str] | None, alpha: list[float] | None,
                beta: list[float] | None) -> list[list[Act]]:
    """The activations of each direction, alpha and beta consumed in order; ValueError names a bad one."""
    per_dir = CELLS[op][1]
    ndir = DIRECTIONS[direction]
    given = list(names) if names else list(per_dir) * ndir
    if len(given) != len(per_dir) * ndir:
        raise ValueError(f"{op} with direction={direction} takes {len(per_dir) * ndir} activations, got {given}")
    alphas, betas = list(alpha or []), list(beta or [])
    out: list[list[Act]] = []
    for d in range(ndir):
        acts = []
        for name in given[d * len(per_dir):(d + 1) * len(per_dir)]:
            key = next((k for k in ACTIVATIONS if k.lower() == str(name).lower()), None)
            if key is None:
                raise ValueError(f"{op} activation {name!r} is not one mdfx computes; it has {', '.join(ACTIVATIONS)}")
            _, _, da, db = ACTIVATIONS[key]
            a = (alphas.pop(0) if alphas else da) if da is not None else 0.0
            b = (betas.pop(0) if betas else db) if db is not None else 0.0
            acts.append(Act(key, float(a), float(b)))
        out.append(acts)
    return out


def _clip(a: Array, clip: float | None) -> tuple[Array, Array | None]:
    if clip is None:
        return a, None
    return np.clip(a, -clip, clip), (np.abs(a) <= clip).astype(a.dtype)


def _masked(g: Array, mask: Array | None) -> Array:
    return g if mask is None else g * mask


# --- one step of each cell: forward keeps what its backward needs -----------------------------------


def lstm_step(x: Array, h: Array, c: Array, w: dict[str, Array], acts: list[Act], clip: float | None
              ) -> tuple[Array, Array, dict[str, Any]]:
    f, g, hact = acts
    H = h.shape[-1]
    a = x @ w["W"].T + h @ w["R"].T + w["b"]  # (batch, 4H): i, o, f, c
    ai, ao, af, ac = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    pi, po, pf = w["P"][:H], w["P"][H:2 * H], w["P"][2 * H:]
    ai, mi = _clip(ai + pi * c, clip)
    af, mf = _clip(af + pf * c, clip)
    ac, mc = _clip(ac, clip)
    i, fg, cc = f(ai), f(af), g(ac)
    cn = fg * c + i * cc
    ao, mo = _clip(ao + po * cn, clip)
    o = f(ao)
    hc = hact(cn)
    return o * hc, cn, dict(x=x, h=h, c=c, ai=ai, af=af, ac=ac, ao=ao, i=i, fg=fg, cc=cc, cn=cn, o=o, hc=hc,
                            masks=(mi, mf, mc, mo))


def lstm_step_back(dh: Array, dc: Array, k: dict[str, Any], w: dict[str, Array], dw: dict[str, Array],
                   acts: list[Act]) -> tuple[Array, Array, Array]:
    """Gradients of one step: adds into ``dw``; returns d(x), d(h before), d(c before)."""
    f, g, hact = acts
    H = dh.shape[-1]
    mi, mf, mc, mo = k["masks"]
    pi, po, pf = w["P"][:H], w["P"][H:2 * H], w["P"][2 * H:]
    do = dh * k["hc"]
    dcn = dc + dh * k["o"] * hact.grad(k["cn"], k["hc"])
    dao = _masked(do * f.grad(k["ao"], k["o"]), mo)
    dcn = dcn + dao * po
    dai = _masked(dcn * k["cc"] * f.grad(k["ai"], k["i"]), mi)
    daf = _masked(dcn * k["c"] * f.grad(k["af"], k["fg"]), mf)
    dac = _masked(dcn * k["i"] * g.grad(k["ac"], k["cc"]), mc)
    dc_prev = dcn * k["fg"] + dai * pi + daf * pf
    dw["P"] += np.concatenate([(dai * k["c"]).sum(0), (dao * k["cn"]).sum(0), (daf * k["c"]).sum(0)])
    da = np.concatenate([dai, dao, daf, dac], axis=1)
    return _linear_back(da, k, w, dw) + (dc_prev,)


def gru_step(x: Array, h: Array, c: None, w: dict[str, Array], acts: list[Act], clip: float | None,
             linear_before_reset: int = 0) -> tuple[Array, None, dict[str, Any]]:
    f, g = acts
    H = h.shape[-1]
    wb, rb = w["b_w"], w["b_r"]
    ax = x @ w["W"].T + wb  # (batch, 3H): z, r, h
    ahz = h @ w["R"][:2 * H].T + rb[:2 * H]
    az, mz = _clip(ax[:, :H] + ahz[:, :H], clip)
    ar, mr = _clip(ax[:, H:2 * H] + ahz[:, H:], clip)
    z, r = f(az), f(ar)
    rh_w = w["R"][2 * H:]
    if linear_before_reset:
        hr = h @ rh_w.T + rb[2 * H:]
        ah, mh = _clip(ax[:, 2 * H:] + r * hr, clip)
    else:
        hr = r * h
        ah, mh = _clip(ax[:, 2 * H:] + hr @ rh_w.T + rb[2 * H:], clip)
    hh = g(ah)
    return (1.0 - z) * hh + z * h, None, dict(x=x, h=h, az=az, ar=ar, ah=ah, z=z, r=r, hr=hr, hh=hh,
                                              masks=(mz, mr, mh), lbr=linear_before_reset)


def gru_step_back(dh: Array, dc: None, k: dict[str, Any], w: dict[str, Array], dw: dict[str, Array],
                  acts: list[Act]) -> tuple[Array, Array, None]:
    f, g = acts
    H = dh.shape[-1]
    mz, mr, mh = k["masks"]
    h, z, r, hh, hr = k["h"], k["z"], k["r"], k["hh"], k["hr"]
    rh_w = w["R"][2 * H:]
    dhh = dh * (1.0 - z)
    dz = dh * (h - hh)
    dh_prev = dh * z
    dah = _masked(dhh * g.grad(k["ah"], hh), mh)
    if k["lbr"]:
        dr = dah * hr
        dhr = dah * r  # the gradient of h @ Rh^T + Rbh
        dw["R"][2 * H:] += dhr.T @ h
        dw["b_r"][2 * H:] += dhr.sum(0)
        dh_prev = dh_prev + dhr @ rh_w
    else:
        drh = dah @ rh_w  # the gradient of r * h
        dw["R"][2 * H:] += dah.T @ hr
        dw["b_r"][2 * H:] += dah.sum(0)
        dr = drh * h
        dh_prev = dh_prev + drh * r
    daz = _masked(dz * f.grad(k["az"], z), mz)
    dar = _masked(dr * f.grad(k["ar"], r), mr)
    dazr = np.concatenate([daz, dar], axis=1)
    dw["R"][:2 * H] += dazr.T @ h
    dw["b_r"][:2 * H] += dazr.sum(0)
    dh_prev = dh_prev + dazr @ w["R"][:2 * H]
    da = np.concatenate([daz, dar, dah], axis=1)
    dw["W"] += da.T @ k["x"]
    dw["b_w"] += da.sum(0)
    return da @ w["W"], dh_prev, None


def rnn_step(x: Array, h: Array, c: None, w: dict[str, Array], acts: list[Act], clip: float | None
             ) -> tuple[Array, None, dict[str, Any]]:
    a, mask = _clip(x @ w["W"].T + h @ w["R"].T + w["b"], clip)
    y = acts[0](a)
    return y, None, dict(x=x, h=h, a=a, y=y, mask=mask)


def rnn_step_back(dh: Array, dc: None, k: dict[str, Any], w: dict[str, Array], dw: dict[str, Array],
                  acts: list[Act]) -> tuple[Array, Array, None]:
    da = _masked(dh * acts[0].grad(k["a"], k["y"]), k["mask"])
    return _linear_back(da, k, w, dw) + (None,)


def _linear_back(da: Array, k: dict[str, Any], w: dict[str, Array], dw: dict[str, Array]) -> tuple[Array, Array]:
    """The gradients of ``x @ W^T + h @ R^T + b``: adds into dW, dR, db; returns d(x), d(h)."""
    dw["W"] += da.T @ k["x"]
    dw["R"] += da.T @ k["h"]
    dw["b"] += da.sum(0)
    return da @ w["W"], da @ w["R"]


STEPS = {"LSTM": (lstm_step, lstm_step_back), "GRU": (gru_step, gru_step_back), "RNN": (rnn_step, rnn_step_back)}


# --- the time loop ---------------------------------------------------------------------------------


def _direction_weights(op: str, d: int, W: Array, R: Array, B: Array | None, P: Array | None) -> dict[str, Array]:
    gates_h = W.shape[1]
    b = np.zeros(2 * gates_h) if B is None else B[d]
    w = {"W": W[d], "R": R[d]}
    if op == "GRU":  # the reset gate reads R's bias apart from W's
        w.update(b_w=b[:gates_h], b_r=b[gates_h:])
    else:
        w["b"] = b[:gates_h] + b[gates_h:]
    if op == "LSTM":
        w["P"] = np.zeros(3 * (gates_h // 4)) if P is None else P[d]
    return w


def _inputs(op: str, xs: list[Array | None]) -> tuple[Array, Array, Array, Array | None, Array | None,
                                                       Array | None, Array | None]:
    padded = list(xs) + [None] * (7 - len(xs))
    X, W, R, B, h0, c0, P = padded[:7]
    if op != "LSTM":
        c0 = P = None
    return X, W, R, B, h0, c0, P


def forward(op: str, xs: list[Array | None], attrs: dict[str, Any], keep: bool = False
            ) -> Array | tuple[Array, list]:
    """``Y`` of shape (batch, T, directions, hidden); with ``keep``, also every step's saved values."""
    X, W, R, B, h0, c0, P = _inputs(op, xs)
    step = STEPS[op][0]
    acts = activations(op, attrs["direction"], attrs["activations"], attrs["activation_alpha"],
                       attrs["activation_beta"])
    clip = attrs["clip"]
    extra = {"linear_before_reset": int(attrs["linear_before_reset"])} if op == "GRU" else {}
    batch, T, _ = X.shape
    ndir, H = W.shape[0], int(attrs["hidden_size"])
    Y = np.zeros((batch, T, ndir, H))
    saved: list = []
    for d in range(ndir):
        w = _direction_weights(op, d, W, R, B, P)
        h = np.broadcast_to(h0[:, d], (batch, H)).copy() if h0 is not None else np.zeros((batch, H))
        c = (np.broadcast_to(c0[:, d], (batch, H)).copy() if c0 is not None else np.zeros((batch, H))) \
            if op == "LSTM" else None
        reverse = attrs["direction"] == "reverse" or d == 1
        steps = []
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            h, c, k = step(X[:, t], h, c, w, acts[d], clip, **extra)
            Y[:, t, d] = h
            steps.append((t, k))
        saved.append((w, steps))
    return (Y, saved) if keep else Y


def vjp(op: str, xs: list[Array | None], y: Array, g: Array, attrs: dict[str, Any]) -> list[Array | None]:
    """Backpropagation through time: the gradient of every input, from d(loss)/dY ``g``."""
    X, W, R, B, h0, c0, P = _inputs(op, xs)
    back = STEPS[op][1]
    acts = activations(op, attrs["direction"], attrs["activations"], attrs["activation_alpha"],
                       attrs["activation_beta"])
    _, saved = forward(op, xs, attrs, keep=True)
    batch, T, _ = X.shape
    ndir, H = W.shape[0], int(attrs["hidden_size"])
    dX, dW, dR = np.zeros_like(X), np.zeros_like(W), np.zeros_like(R)
    dB = np.zeros((ndir, 2 * W.shape[1]))
    dP = np.zeros((ndir, 3 * H))
    dh0, dc0 = np.zeros((batch, ndir, H)), np.zeros((batch, ndir, H))
    for d, (w, steps) in enumerate(saved):
        dw = {k: np.zeros_like(v) for k, v in w.items()}
        dh = np.zeros((batch, H))
        dc = np.zeros((batch, H)) if op == "LSTM" else None
        for t, k in reversed(steps):  # the last step taken first
            dx, dh, dc = back(dh + g[:, t, d], dc, k, w, dw, acts[d])
            dX[:, t] += dx
        dW[d], dR[d] = dw["W"], dw["R"]
        if op == "GRU":
            dB[d] = np.concatenate([dw["b_w"], dw["b_r"]])
        else:
            dB[d] = np.concatenate([dw["b"], dw["b"]])  # W's and R's bias add: the same gradient
        if op == "LSTM":
            dP[d] = dw["P"]
            dc0[:, d] = dc
        dh0[:, d] = dh
    out: list[Array | None] = [dX, dW, dR]
    if len(xs) > 3:
        out.append(None if B is None else dB)
    if len(xs) > 4:
        out.append(None if h0 is None else _sum_to(dh0, h0.shape))
    if op == "LSTM" and len(xs) > 5:
        out.append(None if c0 is None else _sum_to(dc0, c0.shape))
    if op == "LSTM" and len(xs) > 6:
        out.append(None if P is None else dP)
    return out


def _sum_to(g: Array, shape: tuple[int, ...]) -> Array:
    """An initial state's gradient summed over the batch where the state broadcasts (shape (1, D, H))."""
    return g.sum(axis=0, keepdims=True) if shape[0] == 1 and g.shape[0] != 1 else g
