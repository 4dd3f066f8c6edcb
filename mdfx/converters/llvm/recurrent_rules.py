"""The LLVM backend's rules for the recurrent ops (LSTM, RNN), one sample at a time.

The time loop is compiled into the node's function: per step, every gate's pre-activation
is a dot product of a weight row with the step's input and with the previous hidden state
(``W x_t + R h + b``), then the cell's elementwise update, as :mod:`mdfx.recurrence`
computes it. The backward function runs the forward again into a per-sample scratch (the
gates of every step), then backpropagates through time, adding into dW, dR, dB, dP, the
initial states and X. What it does not compile (GRU, clip, activations other than
Sigmoid / Tanh / Relu, more than :data:`MAX_SAVED` saved values per sample) is refused with
an error naming the node and the op.
"""

from __future__ import annotations

from llvmlite import ir

from mdfx import recurrence
from mdfx.converters.llvm.emit import Emitter

#: the most per-sample values (gates of every step) a backward keeps on the stack
MAX_SAVED = 1 << 17

_ACT = {"Sigmoid": ("1 / (1 + exp(-x))", "y * (1 - y)"), "Tanh": ("tanh(x)", "1 - y * y"),
        "Relu": ("where(x > 0, x, 0 * x)", "where(x > 0, 1 + 0 * x, 0 * x)")}


class RecurrentRule:
    """LSTM and RNN (ONNX's, batch first): see the module docstring."""

    def __init__(self, op: str) -> None:
        self.op = op

    # --- the plan -------------------------------------------------------------------

    def _plan(self, c) -> dict:
        a = c.attrs
        if self.op not in ("LSTM", "RNN"):
            raise c.refuse(f"does not compile {self.op} (it runs in ExecutionMode.PyTorch and Python)")
        if a["clip"] is not None:
            raise c.refuse("does not compile a clipped recurrent layer (clip); use ExecutionMode.PyTorch")
        acts = recurrence.activations(self.op, a["direction"], a["activations"], a["activation_alpha"],
                                      a["activation_beta"])
        for d in acts:
            for k in d:
                if k.name not in _ACT:
                    raise c.refuse(f"compiles the activations {', '.join(_ACT)} only (got {k.name})")
        T, NI = c.xshapes[0]
        H = int(a["hidden_size"])
        D, G = c.xshapes[1][0], c.xshapes[1][1] // H
        saved = D * T * (2 * G + 3) * H
        if saved > MAX_SAVED:
            raise c.refuse(f"keeps {saved} values per sample for backpropagation through time; at most {MAX_SAVED}")

        def inp(i: int):
            return c.xs[i] if i < len(c.xs) else None

        h0, c0 = inp(4), inp(5) if self.op == "LSTM" else None
        return dict(T=T, I=NI, D=D, G=G, H=H, acts=acts, X=c.xs[0], W=c.xs[1], R=c.xs[2], B=inp(3), h0=h0, c0=c0,
                    P=inp(6) if self.op == "LSTM" else None)

    @staticmethod
    def _act(e: Emitter, name: str, x: ir.Value) -> ir.Value:
        return e.expr(_ACT[name][0], {"x": x})

    @staticmethod
    def _dact(e: Emitter, name: str, x: ir.Value, y: ir.Value) -> ir.Value:
        return e.expr(_ACT[name][1], {"x": x, "y": y})

    # --- forward, keeping what backward reads ---------------------------------------------

    def _forward(self, c, p: dict, saves: list[dict] | None) -> None:
        """Y for every direction; with ``saves`` (one dict of scratch pointers per direction), every step's
        pre-activations, gates, previous hidden (and cell) state, indexed by time."""
        e, b = c.e, c.e.b
        T, NI, D, G, H = p["T"], p["I"], p["D"], p["G"], p["H"]
        GH = G * H
        for d in range(D):
            acts = p["acts"][d]
            reverse = c.attrs["direction"] == "reverse" or d == 1
            h, cell = e.scratch(H, f"h{d}", False), e.scratch(H, f"c{d}", False)
            pre = e.scratch(GH, f"pre{d}", False)
            with e.loop(H, "k") as k:
                e.store(e.load(p["h0"], b.add(e.i64(d * H), k)) if p["h0"] is not None else e.const(0.0), h, k)
                e.store(e.load(p["c0"], b.add(e.i64(d * H), k)) if p["c0"] is not None else e.const(0.0), cell, k)
            with e.loop(T, "s") as s:
                t = b.sub(e.i64(T - 1), s) if reverse else s
                xt = e.at(p["X"], b.mul(t, e.i64(NI)))
                sv = None if saves is None else saves[d]
                if sv is not None:  # the state this step starts from
                    with e.loop(H, "k") as k:
                        at = b.add(b.mul(t, e.i64(H)), k)
                        e.store(e.load(h, k), sv["h_prev"], at)
                        e.store(e.load(cell, k), sv["c_prev"], at)
                with e.loop(GH, "j") as j:
                    row = b.add(e.i64(d * GH), j)
                    v = b.fadd(e.dot(e.at(p["W"], b.mul(row, e.i64(NI))), xt, NI),
                               e.dot(e.at(p["R"], b.mul(row, e.i64(H))), h, H))
                    if p["B"] is not None:
                        bias = b.fadd(e.load(p["B"], b.add(e.i64(d * 2 * GH), j)),
                                      e.load(p["B"], b.add(e.i64(d * 2 * GH + GH), j)))
                        v = b.fadd(v, bias)
                    e.store(v, pre, j)
                with e.loop(H, "k") as k:
                    out = self._cell(e, p, acts, d, pre, cell, k, sv, t)
                    e.store(out, h, k)
                    e.store(out, c.y, b.add(b.mul(t, e.i64(D * H)), b.add(e.i64(d * H), k)))

    def _cell(self, e: Emitter, p: dict, acts: list, d: int, pre: ir.Value, cell: ir.Value, k: ir.Value,
              sv: dict | None, t: ir.Value) -> ir.Value:
        """One unit's update; returns its new hidden value (and updates ``cell``)."""
        b = e.b
        H, G = p["H"], p["G"]

        def save(name: str, slot: int, v: ir.Value) -> None:
            if sv is not None:
                e.store(v, sv[name], b.add(b.mul(t, e.i64(G * H)), b.add(e.i64(slot * H), k)))

        if self.op == "RNN":
            a = e.load(pre, k)
            y = self._act(e, acts[0].name, a)
            save("pre", 0, a)
            save("post", 0, y)
            return y
        f, g, hact = (k_.name for k_ in acts)
        P = p["P"]

        def peep(slot: int) -> ir.Value:
            return e.load(P, b.add(e.i64(d * 3 * H + slot * H), k)) if P is not None else e.const(0.0)

        cp = e.load(cell, k)
        ai = b.fadd(e.load(pre, k), b.fmul(peep(0), cp))
        af = b.fadd(e.load(pre, b.add(e.i64(2 * H), k)), b.fmul(peep(2), cp))
        ac = e.load(pre, b.add(e.i64(3 * H), k))
        i, fg, cc = self._act(e, f, ai), self._act(e, f, af), self._act(e, g, ac)
        cn = b.fadd(b.fmul(fg, cp), b.fmul(i, cc))
        ao = b.fadd(e.load(pre, b.add(e.i64(H), k)), b.fmul(peep(1), cn))
        o = self._act(e, f, ao)
        for slot, (a, y) in enumerate(((ai, i), (ao, o), (af, fg), (ac, cc))):
            save("pre", slot, a)
            save("post", slot, y)
        e.store(cn, cell, k)
        return b.fmul(o, self._act(e, hact, cn))

    def forward(self, c) -> None:
        self._forward(c, self._plan(c), None)

    # --- backpropagation through time ----------------------------------------------------

    def backward(self, c) -> None:
        e, b = c.e, c.e.b
        p = self._plan(c)
        T, NI, D, G, H = p["T"], p["I"], p["D"], p["G"], p["H"]
        GH = G * H
        saves = [{"pre": e.scratch(T * GH, f"spre{d}", False), "post": e.scratch(T * GH, f"spost{d}", False),
                  "h_prev": e.scratch(T * H, f"sh{d}", False), "c_prev": e.scratch(T * H, f"sc{d}", False)}
                 for d in range(D)]
        y_scratch = e.scratch(T * D * H, "y", False)
        keep_y = c.y
        c.y = y_scratch  # the forward again (the output buffer is left as the forward wrote it)
        self._forward(c, p, saves)
        c.y = keep_y

        def grad(i: int):
            return c.dxs[i] if i < len(c.dxs) else None

        dX, dW, dR, dB = grad(0), grad(1), grad(2), grad(3)
        dh0, dc0, dP = grad(4), grad(5) if self.op == "LSTM" else None, grad(6) if self.op == "LSTM" else None
        for d in range(D):
            f = [k_.name for k_ in p["acts"][d]]
            reverse = c.attrs["direction"] == "reverse" or d == 1
            sv = saves[d]
            dh, dc = e.scratch(H, f"dh{d}", False), e.scratch(H, f"dc{d}", False)
            da, dhp = e.scratch(GH, f"da{d}", False), e.scratch(H, f"dhp{d}", False)
            with e.loop(H, "k") as k:
                e.store(e.const(0.0), dh, k)
                e.store(e.const(0.0), dc, k)
            with e.loop(T, "s2") as s2:
                s = b.sub(e.i64(T - 1), s2)  # the last step processed first
                t = b.sub(e.i64(T - 1), s) if reverse else s
                xt = e.at(p["X"], b.mul(t, e.i64(NI)))
                hprev = e.at(sv["h_prev"], b.mul(t, e.i64(H)))
                with e.loop(H, "k") as k:
                    gy = e.load(c.dy, b.add(b.mul(t, e.i64(D * H)), b.add(e.i64(d * H), k)))
                    e.store(b.fadd(e.load(dh, k), gy), dh, k)
                    self._cell_back(e, p, f, d, sv, t, k, dh, dc, da, dP)
                with e.loop(GH, "j") as j:
                    g = e.load(da, j)
                    row = b.add(e.i64(d * GH), j)
                    if dB is not None:
                        for half in (0, GH):
                            at = b.add(e.i64(d * 2 * GH + half), j)
                            e.store(b.fadd(e.load(dB, at), g), dB, at)
                    if dW is not None:
                        with e.loop(NI, "q") as q:
                            at = b.add(b.mul(row, e.i64(NI)), q)
                            e.store(b.fadd(e.load(dW, at), b.fmul(g, e.load(xt, q))), dW, at)
                    if dR is not None:
                        with e.loop(H, "q") as q:
                            at = b.add(b.mul(row, e.i64(H)), q)
                            e.store(b.fadd(e.load(dR, at), b.fmul(g, e.load(hprev, q))), dR, at)
                if dX is not None:
                    with e.loop(NI, "q") as q:
                        acc = e.var(e.const(0.0), "dx")
                        with e.loop(GH, "j") as j:
                            w = e.load(p["W"], b.add(b.mul(b.add(e.i64(d * GH), j), e.i64(NI)), q))
                            e.add_to(acc, b.fmul(e.load(da, j), w))
                        at = b.add(b.mul(t, e.i64(NI)), q)
                        e.store(b.fadd(e.load(dX, at), b.load(acc)), dX, at)
                with e.loop(H, "q") as q:  # d(previous hidden) = R^T da
                    acc = e.var(e.const(0.0), "dh")
                    with e.loop(GH, "j") as j:
                        r = e.load(p["R"], b.add(b.mul(b.add(e.i64(d * GH), j), e.i64(H)), q))
                        e.add_to(acc, b.fmul(e.load(da, j), r))
                    e.store(b.load(acc), dhp, q)
                with e.loop(H, "q") as q:
                    e.store(e.load(dhp, q), dh, q)
            with e.loop(H, "k") as k:
                at = b.add(e.i64(d * H), k)
                if dh0 is not None:
                    e.store(b.fadd(e.load(dh0, at), e.load(dh, k)), dh0, at)
                if dc0 is not None:
                    e.store(b.fadd(e.load(dc0, at), e.load(dc, k)), dc0, at)

    def _cell_back(self, e: Emitter, p: dict, f: list[str], d: int, sv: dict, t: ir.Value, k: ir.Value,
                   dh: ir.Value, dc: ir.Value, da: ir.Value, dP: ir.Value | None) -> None:
        """One unit's step backward: its gates' pre-activation gradients into ``da``; ``dc`` becomes
        d(previous cell) (LSTM)."""
        b = e.b
        H, G = p["H"], p["G"]

        def saved(name: str, slot: int) -> ir.Value:
            return e.load(sv[name], b.add(b.mul(t, e.i64(G * H)), b.add(e.i64(slot * H), k)))

        g_h = e.load(dh, k)
        if self.op == "RNN":
            e.store(b.fmul(g_h, self._dact(e, f[0], saved("pre", 0), saved("post", 0))), da, k)
            return
        P = p["P"]

        def peep(slot: int) -> ir.Value:
            return e.load(P, b.add(e.i64(d * 3 * H + slot * H), k)) if P is not None else e.const(0.0)

        ai, ao, af, ac = (saved("pre", s) for s in range(4))
        i, o, fg, cc = (saved("post", s) for s in range(4))
        cp = e.load(sv["c_prev"], b.add(b.mul(t, e.i64(H)), k))
        cn = b.fadd(b.fmul(fg, cp), b.fmul(i, cc))
        hc = self._act(e, f[2], cn)
        do = b.fmul(g_h, hc)
        dcn = b.fadd(e.load(dc, k), b.fmul(b.fmul(g_h, o), self._dact(e, f[2], cn, hc)))
        dao = b.fmul(do, self._dact(e, f[0], ao, o))
        dcn = b.fadd(dcn, b.fmul(dao, peep(1)))
        dai = b.fmul(b.fmul(dcn, cc), self._dact(e, f[0], ai, i))
        daf = b.fmul(b.fmul(dcn, cp), self._dact(e, f[0], af, fg))
        dac = b.fmul(b.fmul(dcn, i), self._dact(e, f[1], ac, cc))
        e.store(b.fadd(b.fadd(b.fmul(dcn, fg), b.fmul(dai, peep(0))), b.fmul(daf, peep(2))), dc, k)
        for slot, v in enumerate((dai, dao, daf, dac)):
            e.store(v, da, b.add(e.i64(slot * H), k))
        if dP is not None:
            for slot, v in enumerate((b.fmul(dai, cp), b.fmul(dao, cn), b.fmul(daf, cp))):
                at = b.add(e.i64(d * 3 * H + slot * H), k)
                e.store(b.fadd(e.load(dP, at), v), dP, at)
