"""Independent re-derivation of expected.json with plain torch + numpy (no PsyNeuLink).

It implements the behaviour described in facts.md and checks that it reproduces every
recorded PsyNeuLink number; it is the executable form of those facts.

    /work/pnlvenv/bin/python tests/pnl_reference/verify_expected.py      (any python with torch works)
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
D = torch.float64


def P(spec, k, default):
    return float(spec["params"].get(k, default))


# ---- forward used during learn() in PyTorch mode ----------------------------------------
def torch_fn(spec):
    n = spec["name"]
    if n == "Linear":
        sl, ic, sc, of = P(spec, "slope", 1), P(spec, "intercept", 0), P(spec, "scale", 1), P(spec, "offset", 0)
        return lambda x: sc * (x * sl + ic) + of
    if n == "Logistic":  # x_0 is NOT used
        g, b, sc, of = P(spec, "gain", 1), P(spec, "bias", 0), P(spec, "scale", 1), P(spec, "offset", 0)
        return lambda x: sc / (1 + torch.exp(-g * (x + b))) + of
    if n == "Tanh":  # bias/offset cancel, scale and x_0 unused
        g = P(spec, "gain", 1)
        return lambda x: torch.tanh(g * x)
    if n == "ReLU":  # leak not multiplied by gain; scale/offset unused
        g, b, lk = P(spec, "gain", 1), P(spec, "bias", 0), P(spec, "leak", 0)
        return lambda x: g * torch.clamp(x - b, min=0) + lk * torch.clamp(x - b, max=0)
    if n == "SoftMax":
        g = P(spec, "gain", 1)
        return lambda x: torch.softmax(g * x, dim=-1)
    if n == "Identity":
        return lambda x: x
    raise NotImplementedError(n)


# ---- forward used by run() (Python mode) ---------------------------------------------------
def py_fn(spec):
    n = spec["name"]
    if n == "Logistic":
        g, b, x0, sc, of = (P(spec, "gain", 1), P(spec, "bias", 0), P(spec, "x_0", 0),
                            P(spec, "scale", 1), P(spec, "offset", 0))
        return lambda x: sc * (1.0 / (1 + np.exp(-g * (x + b - x0)))) + of
    if n == "Tanh":
        g, b, x0, sc, of = (P(spec, "gain", 1), P(spec, "bias", 0), P(spec, "x_0", 0),
                            P(spec, "scale", 1), P(spec, "offset", 0))
        return lambda x: sc * np.tanh(g * (x + b - x0) + of)
    if n == "ReLU":
        g, b, lk, sc, of = (P(spec, "gain", 1), P(spec, "bias", 0), P(spec, "leak", 0),
                            P(spec, "scale", 1), P(spec, "offset", 0))
        return lambda x: sc * np.maximum(g * (x - b), lk * g * (x - b)) + of
    if n == "Exponential":
        r, b, sc, of = P(spec, "rate", 1), P(spec, "bias", 0), P(spec, "scale", 1), P(spec, "offset", 0)
        return lambda x: sc * np.exp(r * x + b) + of
    if n == "SoftMax":
        g = P(spec, "gain", 1)

        def sm(x):
            e = np.exp(g * x - np.max(g * x, axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        return sm
    f = torch_fn(spec)
    return lambda x: f(torch.tensor(x, dtype=D)).numpy()


def loss_fn(name):
    nn = torch.nn
    return {
        "MSE": nn.MSELoss(reduction="mean"),
        "SSE": nn.MSELoss(reduction="sum"),
        "L1": nn.L1Loss(reduction="sum"),
        "BINARY_CROSS_ENTROPY": nn.BCELoss(),
        "KL_DIV": nn.KLDivLoss(reduction="sum"),
        "POISSON_NLL": nn.PoissonNLLLoss(reduction="sum"),
        # PNL hands the loss (batch, 1, n) tensors: class dim has size 1 -> loss is always 0
        "CROSS_ENTROPY": lambda y, t: nn.CrossEntropyLoss()(y[:, None, :], t[:, None, :]),
    }[name]


def forward(net, fns, W, inputs):
    vals = {}
    incoming = {}
    for p in net["projections"]:
        incoming.setdefault(p["receiver"], []).append(p)
    for nd in net["nodes"]:
        nm = nd["name"]
        if nm in inputs:
            x = inputs[nm]
        else:
            x = sum(vals[p["sender"]] @ W[p["name"]] for p in incoming[nm])
        vals[nm] = fns[nm](x)
    return vals


def simulate(case):
    net = case["network"]
    settings = dict(case["composition"])
    for k, v in case.get("effective_composition", {}).items():
        if settings.get(k) is None:
            settings[k] = v
    tf = {nd["name"]: torch_fn(nd["function"]) for nd in net["nodes"]}
    pf = {nd["name"]: py_fn(nd["function"]) for nd in net["nodes"]}
    W = {p["name"]: torch.tensor(p["matrix"], dtype=D, requires_grad=p["learnable"]) for p in net["projections"]}
    params = [W[p["name"]] for p in net["projections"] if p["learnable"]]
    opt_cls = torch.optim.SGD if settings["optimizer_type"] == "sgd" else torch.optim.Adam
    opt = opt_cls(params, lr=settings["learning_rate"], weight_decay=settings["weight_decay"])
    lf = loss_fn(settings["loss_spec"])
    out = {"torch_losses": [], "learn_results": []}

    def learn(la):
        ins = {k: np.array(v, dtype=float) for k, v in la["inputs"].items()}
        tgs = {k: np.array(v, dtype=float) for k, v in la["targets"].items()}
        n_stim = len(next(iter(ins.values())))
        n = la.get("num_trials") or n_stim
        mb = la.get("minibatch_size") or 1
        for g in opt.param_groups:
            g["lr"] = la.get("learning_rate") or settings["learning_rate"]
        if la.get("np_seed") is not None:
            np.random.seed(la["np_seed"])
        for _ in range(la.get("epochs", 1)):
            order = list(range(n))
            if la.get("randomize_minibatches"):
                np.random.shuffle(order)
            for i in range(0, n, mb):
                idx = [j % n_stim for j in order[i:i + mb]]
                xb = {k: torch.tensor(v[idx], dtype=D) for k, v in ins.items()}
                vals = forward(net, tf, W, xb)
                loss = sum(lf(vals[o], torch.tensor(tgs[o][idx], dtype=D)) for o in net["output_nodes"])
                out["torch_losses"].append(float(loss.detach()))
                for b in range(len(idx)):
                    out["learn_results"].append([vals[o][b].detach().numpy() for o in net["output_nodes"]])
                opt.zero_grad()
                loss.backward()
                opt.step()

    learn(case["learn"])
    for extra in case.get("extra_learn_calls", []):
        learn(extra)
    Wn = {k: v.detach().numpy() for k, v in W.items()}
    ins = {k: np.array(v, dtype=float) for k, v in case["learn"]["inputs"].items()}
    vals = forward(net, pf, Wn, ins)
    out["run_after"] = [[vals[o][b] for o in net["output_nodes"]] for b in range(len(next(iter(ins.values()))))]
    out["trained"] = Wn
    return out


def maxdiff(a, b):
    return max(float(np.max(np.abs(np.asarray(x, dtype=float) - np.asarray(y, dtype=float)))) for x, y in zip(a, b, strict=True))


def main():
    data = json.load(open(os.path.join(HERE, "expected.json")))
    bad = 0
    for case in data["cases"]:
        name = case["name"]
        if "error" in case:
            print(f"{name:28s} PNL error recorded: {case['error'][:70]}")
            continue
        sim = simulate(case)
        res = case["results"]
        learned = dict(res["learn"]["trained_matrices"])
        for i in range(len(case.get("extra_learn_calls", []))):
            learned = res[f"learn_extra_{i}"]["trained_matrices"]
        dw = max(float(np.max(np.abs(np.array(learned[k]) - sim["trained"][k]))) for k in learned)
        all_losses = list(res["learn"]["torch_losses"])
        for i in range(len(case.get("extra_learn_calls", []))):
            all_losses = res[f"learn_extra_{i}"]["torch_losses"]   # torch_losses accumulates across calls
        dl = float(np.max(np.abs(np.array(all_losses) - np.array(sim["torch_losses"]))))
        pnl_lr = list(res["learn"]["results"])
        for i in range(len(case.get("extra_learn_calls", []))):
            pnl_lr += res[f"learn_extra_{i}"]["results"]
        dr = max(maxdiff(a, b) for a, b in zip(pnl_lr, sim["learn_results"], strict=True))
        ra = res["run_after"]
        if "error" in ra:  # run() after learn() failed in PNL; use the rebuilt composition's run
            ra = ra["rebuilt_with_trained_matrices"]
        da = max(maxdiff(a, b) for a, b in zip(ra["results"], sim["run_after"], strict=True))
        ok = max(dw, dl, dr, da) < 1e-9
        bad += not ok
        print(f"{name:28s} {'OK ' if ok else 'BAD'} dW={dw:.1e} dLoss={dl:.1e} dLearnRes={dr:.1e} dRunAfter={da:.1e}")
    print("all cases reproduced" if not bad else f"{bad} case(s) NOT reproduced")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
