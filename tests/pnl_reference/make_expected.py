"""Generate tests/pnl_reference/expected.json (and mdf/*.json) by running PsyNeuLink 0.21.

Run with the separate PsyNeuLink virtualenv (see README.md in this folder):

    /work/pnlvenv/bin/python tests/pnl_reference/make_expected.py

Every case is described by a plain-data spec (nodes, projections with fixed initial
matrices, composition settings, learn() arguments).  The spec is written into the
JSON together with what PsyNeuLink produced, so the mdfx side can rebuild the exact
same network without PsyNeuLink.

Conventions of the recorded values (see facts.md for the reasoning):
  * matrices are sender_size x receiver_size (row = sender unit), output = input @ W
  * run_before / run_after: "return" is what Composition.run() returned (the output of
    the LAST trial, one entry per output node) and "results" are the entries that
    run() appended to comp.results (one entry per trial, each a list with one array
    per output node).
  * learn: "return" is what learn() returned, "results" the entries learn() appended to
    comp.results (one per trial: the forward output computed with the weights BEFORE
    that minibatch's update), "torch_losses" one float per optimizer step
    (= per minibatch), "losses" is comp.losses (PsyNeuLink 0.21 never fills it).
"""
import json
import os
import sys
import time
import traceback
import warnings

# PNL's MDF export iterates over sets; fix the hash seed so mdf/*.json is byte-stable.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

warnings.filterwarnings("ignore")
import psyneulink as pnl  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MDF_DIR = os.path.join(HERE, "mdf")
PT = pnl.ExecutionMode.PyTorch


# ----------------------------------------------------------------------------- helpers
def jsonable(x):
    """Convert numpy / torch / nested containers to plain python (floats keep full precision)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            return [jsonable(v) for v in x]
        return jsonable(x.tolist())
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (np.floating, float)):
        return float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    return x


def flat_floats(x):
    return [float(v) for v in np.asarray(x, dtype=float).ravel()]


def rand_matrix(seed, shape, scale=1.0):
    return np.random.RandomState(seed).uniform(-1.0, 1.0, shape) * scale


def err_str(e):
    return f"{type(e).__name__}: {e}"


# data used by many cases (4 trials)
X4 = [[0.5, -1.0], [1.0, 2.0], [-0.3, 0.7], [0.9, 0.1]]
T4 = [[0.2, 0.8], [0.9, 0.1], [0.6, 0.4], [0.3, 0.5]]
P4 = [[0.2, 0.8], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]        # rows are distributions
ONEHOT4 = [[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
COUNT4 = [[1.0, 2.0], [0.0, 3.0], [2.0, 1.0], [1.0, 0.0]]
XOR_X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_T = [[0.0], [1.0], [1.0], [0.0]]


def fn(name, **params):
    return {"name": name, "params": params}


def node(name, size, function=None):
    return {"name": name, "size": size, "function": function or fn("Linear")}


def proj(name, sender, receiver, matrix, learnable=True):
    m = None if matrix is None else np.asarray(matrix, dtype=float).tolist()
    return {"name": name, "sender": sender, "receiver": receiver, "matrix": m, "learnable": learnable}


def chain(case, sizes, functions, seed, scale=1.0):
    """nodes + projections for a feed-forward chain in -> h1 -> ... -> out."""
    names = [f"{case}_in"] + [f"{case}_h{i}" for i in range(1, len(sizes) - 1)] + [f"{case}_out"]
    nodes = [node(n, s, f) for n, s, f in zip(names, sizes, functions, strict=True)]
    projs = []
    for i in range(len(sizes) - 1):
        projs.append(proj(f"{case}_p{i + 1}", names[i], names[i + 1],
                          rand_matrix(seed + i, (sizes[i], sizes[i + 1]), scale)))
    return {"nodes": nodes, "projections": projs, "input_nodes": [names[0]], "output_nodes": [names[-1]]}


def comp_settings(loss="MSE", opt="sgd", lr=0.1, wd=0.0):
    return {"loss_spec": loss, "optimizer_type": opt, "learning_rate": lr, "weight_decay": wd}


# ----------------------------------------------------------------------------- building
def make_function(spec):
    return getattr(pnl, spec["name"])(**spec["params"])


def build(case_name, net, settings):
    mechs = {}
    for n in net["nodes"]:
        mechs[n["name"]] = pnl.TransferMechanism(name=n["name"], input_shapes=n["size"],
                                                 function=make_function(n["function"]))
    projs = {}
    for p in net["projections"]:
        kw = dict(name=p["name"], sender=mechs[p["sender"]], receiver=mechs[p["receiver"]])
        if p["matrix"] is not None:
            kw["matrix"] = np.array(p["matrix"], dtype=float)
        if not p["learnable"]:
            kw["learnable"] = False
        projs[p["name"]] = pnl.MappingProjection(**kw)
    ckw = dict(name=case_name)
    for k in ("optimizer_type", "learning_rate", "weight_decay"):
        if settings.get(k) is not None:
            ckw[k] = settings[k]
    if settings.get("loss_spec") is not None:
        ckw["loss_spec"] = getattr(pnl.Loss, settings["loss_spec"])
    comp = pnl.AutodiffComposition(**ckw)
    for n in net["nodes"]:
        comp.add_node(mechs[n["name"]])
    for p in net["projections"]:
        comp.add_projection(projs[p["name"]], sender=mechs[p["sender"]], receiver=mechs[p["receiver"]])
    return comp, mechs, projs


def by_node(mechs, d):
    return {mechs[k]: np.array(v, dtype=float) for k, v in d.items()}


def learn_kwargs(mechs, la, execution_mode=PT):
    kw = dict(inputs=by_node(mechs, la["inputs"]), targets=by_node(mechs, la["targets"]),
              epochs=la.get("epochs", 1), execution_mode=execution_mode)
    for k in ("minibatch_size", "learning_rate", "num_trials", "randomize_minibatches"):
        if la.get(k) is not None:
            kw[k] = la[k]
    return kw


def torch_losses(comp):
    try:
        tl = comp.torch_losses
    except Exception:
        return None
    return None if tl is None else [float(np.asarray(v, dtype=float).sum()) for v in tl]


def do_run(comp, mechs, inputs):
    n0 = len(comp.results)
    ret = comp.run(inputs=by_node(mechs, inputs))
    return {"return": jsonable(ret), "results": jsonable(list(comp.results[n0:]))}


def do_learn(comp, mechs, projs, la, execution_mode=PT):
    out = {}
    if la.get("np_seed") is not None:
        np.random.seed(la["np_seed"])
    n0 = len(comp.results)
    try:
        ret = comp.learn(**learn_kwargs(mechs, la, execution_mode))
    except Exception as e:  # record PNL errors
        out["error"] = err_str(e)
        out["traceback_tail"] = traceback.format_exc().strip().splitlines()[-3:]
        return out
    out["return"] = jsonable(ret)
    out["results"] = jsonable(list(comp.results[n0:]))
    out["learning_results"] = jsonable(list(comp.learning_results))
    out["trained_matrices"] = {k: jsonable(p.parameters.matrix.get(comp)) for k, p in projs.items()}
    out["losses"] = jsonable(list(comp.losses))
    out["torch_losses"] = torch_losses(comp)
    return out


def mdf_roundtrip_run(mdf_json, inputs, input_names):
    """Let PsyNeuLink read its own MDF back (generate_script_from_mdf) and run it."""
    script = pnl.generate_script_from_mdf(mdf_json)
    ns = {}
    exec(script, ns)
    comps = [v for v in ns.values() if isinstance(v, pnl.Composition)]
    comp = comps[0]
    ins = {}
    for nm in input_names:
        mech = [m for m in comp.nodes if m.name == nm or m.name.rsplit("-", 1)[0] == nm][0]
        ins[mech] = np.array(inputs[nm], dtype=float)
    n0 = len(comp.results)
    ret = comp.run(inputs=ins)
    return {"return": jsonable(ret), "results": jsonable(list(comp.results[n0:]))}


def run_case(spec):
    name = spec["name"]
    net, settings, la = spec["network"], spec["composition"], spec["learn"]
    rec = {k: spec[k] for k in spec if k not in ("export_mdf", "llvm")}
    rec["network"] = json.loads(json.dumps(net))
    t0 = time.time()
    comp, mechs, projs = build(name, net, settings)
    # record actual initial matrices (fills in the ones left to PNL's default)
    for p in rec["network"]["projections"]:
        init = np.asarray(projs[p["name"]].parameters.matrix.get(), dtype=float)
        if p["matrix"] is None:
            p["matrix_spec"] = "pnl_default"
        p["matrix"] = jsonable(init)
    res = {}
    if spec.get("export_mdf"):
        mdf_json = pnl.get_mdf_serialized(comp, fmt="json")
        with open(os.path.join(MDF_DIR, f"{name}.json"), "w") as f:
            f.write(mdf_json)
        rec["mdf_file"] = f"mdf/{name}.json"
        try:
            res["mdf_roundtrip_run"] = mdf_roundtrip_run(mdf_json, la["inputs"], net["input_nodes"])
        except Exception as e:
            res["mdf_roundtrip_run"] = {"error": err_str(e)}
    run_inputs = spec.get("run_inputs", la["inputs"])
    try:
        res["run_before"] = do_run(comp, mechs, run_inputs)
    except Exception as e:
        res["run_before"] = {"error": err_str(e)}
    res["learn"] = do_learn(comp, mechs, projs, la)
    if "error" in res["learn"]:
        rec["error"] = res["learn"]["error"]
    else:
        for i, extra in enumerate(spec.get("extra_learn_calls", [])):
            res[f"learn_extra_{i}"] = do_learn(comp, mechs, projs, extra)
        try:
            res["run_after"] = do_run(comp, mechs, run_inputs)
        except Exception as e:
            # e.g. BCE / KL_DIV: after learn() the LOSS node stays in the Composition and run()
            # executes it in Python mode, where that loss is unsupported.  Rebuild a fresh
            # Composition with the trained matrices and run that instead.
            res["run_after"] = {"error": err_str(e)}
            last = [k for k in res if k.startswith("learn")][-1]
            net2 = json.loads(json.dumps(net))
            for p in net2["projections"]:
                p["matrix"] = res[last]["trained_matrices"][p["name"]]
                p["name"] = p["name"] + "_rb"
            for nd in net2["nodes"]:
                nd["name"] = nd["name"] + "_rb"
            for p in net2["projections"]:
                p["sender"] += "_rb"
                p["receiver"] += "_rb"
            c3, m3, _ = build(name + "_rebuilt", net2, settings)
            res["run_after"]["rebuilt_with_trained_matrices"] = do_run(
                c3, m3, {k + "_rb": v for k, v in run_inputs.items()})
    if spec.get("llvm"):
        c2, m2, p2 = build(name + "_llvm", net, settings)
        res["llvm_learn"] = do_learn(c2, m2, p2, la, execution_mode=pnl.ExecutionMode.LLVMRun)
    rec["results"] = res
    rec["_seconds"] = round(time.time() - t0, 3)
    # convenience top-level copies
    if "error" not in res["learn"]:
        rec["trained_matrices"] = res["learn"]["trained_matrices"]
        rec["losses"] = res["learn"]["losses"]
        rec["torch_losses"] = res["learn"]["torch_losses"]
    rec["run_before"] = res.get("run_before")
    rec["run_after"] = res.get("run_after")
    return rec


# ----------------------------------------------------------------------------- cases
def cases():
    C = []

    def add(name, desc, net, settings, learn, **extra):
        d = {"name": name, "description": desc, "network": net, "composition": settings, "learn": learn}
        d.update(extra)
        C.append(d)

    def L(ins, tg, epochs=3, mb=1, **kw):  # noqa: N802
        return dict(inputs=ins, targets=tg, epochs=epochs, minibatch_size=mb, **kw)

    # --- seed example: 3 -> 2 Linear, default matrix (ones), default learning rate (0.001)
    n = "seed_default"
    net = {"nodes": [node(f"{n}_in", 3), node(f"{n}_out", 2)],
           "projections": [proj(f"{n}_p1", f"{n}_in", f"{n}_out", None)],
           "input_nodes": [f"{n}_in"], "output_nodes": [f"{n}_out"]}
    add(n, "Seed example 3->2 Linear, PNL default matrix (3x2 ones) and default learning_rate 0.001, MSE, sgd",
        net, {"loss_spec": None, "optimizer_type": None, "learning_rate": None, "weight_decay": None},
        dict(inputs={f"{n}_in": [[1.0, 2.0, 3.0]]}, targets={f"{n}_out": [[4.0, 5.0]]}, epochs=2),
        effective_composition=comp_settings("MSE", "sgd", 0.001, 0.0), export_mdf=True)
    n = "seed_fixed"
    net = {"nodes": [node(f"{n}_in", 3), node(f"{n}_out", 2)],
           "projections": [proj(f"{n}_p1", f"{n}_in", f"{n}_out", rand_matrix(7, (3, 2), 0.5))],
           "input_nodes": [f"{n}_in"], "output_nodes": [f"{n}_out"]}
    add(n, "Seed example 3->2 Linear with fixed random matrix, lr 0.01",
        net, comp_settings("MSE", "sgd", 0.01),
        dict(inputs={f"{n}_in": [[1.0, 2.0, 3.0]]}, targets={f"{n}_out": [[4.0, 5.0]]}, epochs=2))

    # --- transfer functions (2 -> 3 -> 2)
    lin = fn("Linear")
    fcases = [
        ("fn_linear", [lin, fn("Linear", slope=1.5, intercept=0.2), fn("Linear", slope=0.8, intercept=-0.1, scale=1.2, offset=0.05)],
         "MSE", T4, "Linear with slope/intercept (+scale/offset on output)"),
        ("fn_logistic", [lin, fn("Logistic", gain=2.0, bias=0.3, offset=0.1, scale=1.2), fn("Logistic", gain=1.5, bias=-0.2, offset=0.05)],
         "MSE", T4, "Logistic with non-default gain/bias/offset/scale (x_0=0: PyTorch and Python agree)"),
        ("fn_logistic_x0", [lin, fn("Logistic", gain=2.0, bias=0.3, x_0=0.4), lin],
         "MSE", T4, "Logistic with x_0!=0: PyTorch forward IGNORES x_0, Python run() uses it"),
        ("fn_relu", [lin, fn("ReLU", bias=0.05, leak=0.1), fn("ReLU", leak=0.2)],
         "MSE", T4, "ReLU with leak (gain=1: PyTorch and Python agree)"),
        ("fn_relu_gain", [lin, fn("ReLU", gain=2.0, bias=0.1, leak=0.1), lin],
         "MSE", T4, "ReLU gain!=1 with leak: PyTorch uses gain*max(x-b,0)+leak*min(x-b,0), Python leak*gain on negative side"),
        ("fn_tanh", [lin, fn("Tanh"), fn("Tanh")],
         "MSE", T4, "Tanh default params (PyTorch and Python agree)"),
        ("fn_tanh_params", [lin, fn("Tanh", gain=1.5, bias=0.2, offset=0.1, scale=1.2, x_0=0.1), lin],
         "MSE", T4, "Tanh with params: PyTorch forward computes tanh(gain*x) only (bias/offset cancel, scale/x_0 unused)"),
        ("fn_softmax_ce", [lin, fn("Logistic"), fn("SoftMax")],
         "CROSS_ENTROPY", ONEHOT4, "SoftMax output with CROSS_ENTROPY: PNL 0.21 loss is identically 0 (class dim of size 1) -> no learning"),
        ("fn_softmax_mse", [lin, fn("Logistic"), fn("SoftMax", gain=2.0)],
         "MSE", P4, "SoftMax(gain=2) output trained with MSE"),
        ("fn_softmax_hidden", [lin, fn("SoftMax", gain=1.5), lin],
         "MSE", T4, "SoftMax as hidden layer"),
        ("fn_exponential", [lin, fn("Exponential", rate=0.5, bias=0.1, scale=1.2, offset=-0.3), lin],
         "MSE", T4, "Exponential: Python run works, PyTorch learn fails in PNL 0.21"),
        ("fn_identity", [lin, fn("Identity"), fn("Identity")],
         "MSE", T4, "Identity hidden and output"),
        ("fn_input_logistic", [fn("Logistic", gain=1.5), lin, lin],
         "MSE", T4, "INPUT node with Logistic function: the input node's function IS applied (Python and PyTorch)"),
    ]
    for i, (n, fns, loss, tgt, desc) in enumerate(fcases):
        net = chain(n, [2, 3, 2], fns, seed=10 + 3 * i, scale=1.0)
        add(n, desc, net, comp_settings(loss, "sgd", 0.1),
            L({f"{n}_in": X4}, {f"{n}_out": tgt}, epochs=3, mb=1), export_mdf=True)

    # --- losses (2 -> 3 Logistic -> 2 X)
    lcases = [
        ("loss_mse", "MSE", lin, T4), ("loss_sse", "SSE", lin, T4), ("loss_l1", "L1", lin, T4),
        ("loss_bce", "BINARY_CROSS_ENTROPY", fn("Logistic"), T4),
        ("loss_kl_div", "KL_DIV", fn("SoftMax"), P4),
        ("loss_poisson_nll", "POISSON_NLL", lin, COUNT4),
        ("loss_cross_entropy", "CROSS_ENTROPY", fn("SoftMax"), ONEHOT4),
        ("loss_cross_entropy_linear", "CROSS_ENTROPY", lin, ONEHOT4),
        ("loss_nll", "NLL", fn("SoftMax"), ONEHOT4),
        ("loss_l0", "L0", lin, T4),
    ]
    for i, (n, loss, ofn, tgt) in enumerate(lcases):
        net = chain(n, [2, 3, 2], [lin, fn("Logistic"), ofn], seed=100 + 3 * i)
        add(n, f"Loss.{loss}, minibatch_size=2", net, comp_settings(loss, "sgd", 0.1),
            L({f"{n}_in": X4}, {f"{n}_out": tgt}, epochs=3, mb=2))

    # --- optimizers / weight decay
    for i, (n, opt, lr, wd) in enumerate([("opt_sgd_wd", "sgd", 0.1, 0.05), ("opt_adam", "adam", 0.05, 0.0),
                                          ("opt_adam_wd", "adam", 0.05, 0.05)]):
        net = chain(n, [2, 3, 2], [lin, fn("Logistic"), lin], seed=200 + 3 * i)
        add(n, f"optimizer {opt}, lr {lr}, weight_decay {wd}", net, comp_settings("MSE", opt, lr, wd),
            L({f"{n}_in": X4}, {f"{n}_out": T4}, epochs=3, mb=2 if opt == "adam" else 1))

    # --- minibatches (4 trials)
    for i, mb in enumerate([1, 2, 3, 4]):
        n = f"mb{mb}"
        net = chain(n, [2, 3, 2], [lin, fn("Logistic"), lin], seed=300 + 3 * i)
        add(n, f"minibatch_size={mb} with 4 trials" + (" (trailing partial minibatch of 1)" if mb == 3 else ""),
            net, comp_settings("MSE", "sgd", 0.2), L({f"{n}_in": X4}, {f"{n}_out": T4}, epochs=3, mb=mb))
    n = "mb3_sse"
    net = chain(n, [2, 3, 2], [lin, fn("Logistic"), lin], seed=320)
    add(n, "minibatch_size=3 with 4 trials, SSE (sum over batch elements)", net, comp_settings("SSE", "sgd", 0.05),
        L({f"{n}_in": X4}, {f"{n}_out": T4}, epochs=3, mb=3))

    # --- randomized minibatches (np.random global RNG, seeded right before learn())
    for i, mb in enumerate([1, 2]):
        n = f"randomize_mb{mb}"
        net = chain(n, [2, 3, 2], [lin, fn("Logistic"), lin], seed=400 + 3 * i)
        seed = 1234
        perms = []
        rs = np.random.RandomState(seed)
        for _ in range(3):
            idx = list(range(4))
            rs.shuffle(idx)
            perms.append(idx)
        add(n, "randomize_minibatches=True; order = np.random.shuffle(list(range(num_trials))) per epoch on the "
               "GLOBAL numpy RNG, seeded with np.random.seed(np_seed) immediately before learn()",
            net, comp_settings("MSE", "sgd", 0.2),
            L({f"{n}_in": X4}, {f"{n}_out": T4}, epochs=3, mb=mb, randomize_minibatches=True, np_seed=seed),
            expected_permutations=perms)

    # --- converging inputs + skip connection
    n = "converge"
    net = {"nodes": [node(f"{n}_inA", 2), node(f"{n}_inB", 1), node(f"{n}_hid", 3, fn("Logistic")), node(f"{n}_out", 2)],
           "projections": [proj(f"{n}_pA", f"{n}_inA", f"{n}_hid", rand_matrix(500, (2, 3))),
                           proj(f"{n}_pB", f"{n}_inB", f"{n}_hid", rand_matrix(501, (1, 3))),
                           proj(f"{n}_pO", f"{n}_hid", f"{n}_out", rand_matrix(502, (3, 2)))],
           "input_nodes": [f"{n}_inA", f"{n}_inB"], "output_nodes": [f"{n}_out"]}
    add(n, "two INPUT nodes converging on one hidden layer (afferents summed)", net, comp_settings("MSE", "sgd", 0.2),
        L({f"{n}_inA": X4, f"{n}_inB": [[0.3], [-0.7], [1.0], [0.2]]}, {f"{n}_out": T4}, epochs=3, mb=2),
        export_mdf=True)
    n = "skip"
    net = {"nodes": [node(f"{n}_in", 2), node(f"{n}_hid", 3, fn("Logistic")), node(f"{n}_out", 2)],
           "projections": [proj(f"{n}_p1", f"{n}_in", f"{n}_hid", rand_matrix(510, (2, 3))),
                           proj(f"{n}_p2", f"{n}_hid", f"{n}_out", rand_matrix(511, (3, 2))),
                           proj(f"{n}_pskip", f"{n}_in", f"{n}_out", rand_matrix(512, (2, 2)))],
           "input_nodes": [f"{n}_in"], "output_nodes": [f"{n}_out"]}
    add(n, "skip connection in->out in addition to in->hid->out", net, comp_settings("MSE", "sgd", 0.2),
        L({f"{n}_in": X4}, {f"{n}_out": T4}, epochs=3, mb=1), export_mdf=True)

    # --- two output nodes (loss = sum over LOSS nodes)
    n = "two_outputs"
    net = {"nodes": [node(f"{n}_in", 2), node(f"{n}_hid", 3, fn("Logistic")), node(f"{n}_outA", 1), node(f"{n}_outB", 2, fn("Logistic"))],
           "projections": [proj(f"{n}_p1", f"{n}_in", f"{n}_hid", rand_matrix(520, (2, 3))),
                           proj(f"{n}_pA", f"{n}_hid", f"{n}_outA", rand_matrix(521, (3, 1))),
                           proj(f"{n}_pB", f"{n}_hid", f"{n}_outB", rand_matrix(522, (3, 2)))],
           "input_nodes": [f"{n}_in"], "output_nodes": [f"{n}_outA", f"{n}_outB"]}
    add(n, "two OUTPUT nodes of different size; minibatch loss = sum of per-output MSE losses", net,
        comp_settings("MSE", "sgd", 0.2),
        L({f"{n}_in": X4}, {f"{n}_outA": [[1.0], [0.0], [0.5], [0.2]], f"{n}_outB": T4}, epochs=2, mb=2))

    # --- learnable=False
    n = "not_learnable"
    net = chain(n, [2, 3, 2], [lin, fn("Logistic"), lin], seed=530)
    net["projections"][0]["learnable"] = False
    add(n, "first projection learnable=False (stays fixed)", net, comp_settings("MSE", "sgd", 0.2),
        L({f"{n}_in": X4}, {f"{n}_out": T4}, epochs=3, mb=1))

    # --- learn() options: learning_rate override, num_trials, 2nd learn call (Adam state persists)
    n = "learn_options"
    net = chain(n, [2, 3, 2], [lin, fn("Logistic"), lin], seed=540)
    add(n, "learn(learning_rate=0.3, num_trials=6 cycling the 4 stimuli) then a 2nd learn() call with ctor lr; "
           "adam state carries over between learn() calls",
        net, comp_settings("MSE", "adam", 0.05),
        dict(inputs={f"{n}_in": X4}, targets={f"{n}_out": T4}, epochs=2, minibatch_size=1, learning_rate=0.3, num_trials=6),
        extra_learn_calls=[dict(inputs={f"{n}_in": X4}, targets={f"{n}_out": T4}, epochs=1, minibatch_size=2)])

    # --- XOR 2-10-1 logistic
    n = "xor"
    net = chain(n, [2, 10, 1], [lin, fn("Logistic"), fn("Logistic")], seed=600)
    add(n, "XOR 2-10-1 logistic, lr 0.5, MSE, sgd, 10 epochs; also LLVMRun", net, comp_settings("MSE", "sgd", 0.5),
        L({f"{n}_in": XOR_X}, {f"{n}_out": XOR_T}, epochs=10, mb=1), llvm=True)
    n = "deep"
    net = chain(n, [3, 4, 4, 2], [lin, fn("ReLU", leak=0.1), fn("Tanh"), fn("Logistic")], seed=610, scale=0.8)
    add(n, "3-4-4-2 ReLU(leak)/Tanh/Logistic, adam", net, comp_settings("MSE", "adam", 0.02),
        L({f"{n}_in": [[0.1, 0.5, -0.2], [1.0, -1.0, 0.3], [0.0, 0.2, 0.9]]},
          {f"{n}_out": [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]}, epochs=4, mb=2))
    return C


def main():
    os.makedirs(MDF_DIR, exist_ok=True)
    t0 = time.time()
    out = {"generator": "tests/pnl_reference/make_expected.py",
           "psyneulink_version": pnl.__version__, "torch_version": torch.__version__,
           "numpy_version": np.__version__,
           "conventions": {
               "matrix": "sender_size x receiver_size; receiver input = sum over afferents of sender_value @ matrix",
               "run.return": "output of the last trial: list with one array per OUTPUT node",
               "run.results": "entries appended to comp.results: per trial, list of per-OUTPUT-node arrays",
               "learn.results": "per trial forward outputs computed with the weights before that minibatch's update",
               "torch_losses": "one value per optimizer step (minibatch): the loss tensor that was backpropagated",
               "losses": "comp.losses; never filled by PsyNeuLink 0.21 (always [])",
           },
           "cases": []}
    only = set(sys.argv[1:])
    for spec in cases():
        if only and spec["name"] not in only:
            continue
        rec = run_case(spec)
        flag = rec.get("error", "ok")
        print(f"{spec['name']:28s} {rec.pop('_seconds'):6.2f}s  {flag[:90]}", flush=True)
        out["cases"].append(rec)
    # sanity: no NaN/inf outside recorded errors
    txt = json.dumps(jsonable(out), indent=1, allow_nan=True)
    if "NaN" in txt or "Infinity" in txt:
        print("WARNING: NaN/Infinity present in expected.json", flush=True)
    fname = "expected_partial.json" if only else "expected.json"   # never clobber the full file
    with open(os.path.join(HERE, fname), "w") as f:
        f.write(txt)
    print(f"wrote {fname} with {len(out['cases'])} cases in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
