"""The checks issue 9 asks of every corpus file, one function each.

Each check raises AssertionError (printing both sides) when mdfx falls short, or
:class:`NotApplicable` when the file cannot be judged on that point (the exporter wrote
no file, a float32 file is not trained, an sklearn original has no state_dict). The test
module and ``bench/foreign_corpus.py`` call the same functions.

mdfx is reached through its public API only: ``mdfx.load``, ``comp.run``/``results``,
``comp.learn``/``losses``, ``mdfx.save`` (``.onnx`` and ``.pt``). The two places that read
mdfx's values by name are :func:`mdfx_outputs` (output node names) and
:func:`mdfx_params` (the state_dict ``mdfx.save(comp, "w.pt")`` writes, keyed by the
file's initializer names, which issue 9 says mdfx keeps).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from helpers import assert_close
from torch.nn import functional as F  # noqa: N812

import mdfx
from foreign.export import CorpusFile

#: run() against onnxruntime on the original file, by the file's dtype (issue 9's bounds)
RUN_TOL = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-6)}
#: trained parameters, losses and outputs against the original trained in torch (float64)
TRAIN_RTOL, TRAIN_ATOL = 1e-9, 1e-12
TRIALS = 16
EPOCHS = 3
MINIBATCHES = (1, 8)
MODES = ("Python", "PyTorch", "LLVMRun")
CHECKS = ("load", "run", *(f"train-{m}" for m in MODES), "export", "state_dict")


class NotApplicable(Exception):  # noqa: N818 - it is an outcome, not an error
    """The file cannot be judged on this point; the message says why."""


# --- data ------------------------------------------------------------------------------------------


def inputs_for(cf: CorpusFile) -> dict[str, np.ndarray]:
    """TRIALS seeded rows per input, float32-representable so every file sees the same values."""
    rng = np.random.default_rng(cf.seed)
    return {name: rng.normal(size=(TRIALS, *shape)).astype(np.float32).astype(np.float64)
            for name, shape in cf.inputs.items()}


def targets_for(cf: CorpusFile, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The reference's initial outputs plus noise: a loss of a sane size for every pattern."""
    rng = np.random.default_rng(cf.seed + 1)
    with torch.no_grad():
        y = forward(cf.reference().double(), cf, x)
    return {name: y[name] + 0.3 * rng.normal(size=y[name].shape) for name in cf.trained}


def forward(module: torch.nn.Module, cf: CorpusFile, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = module(*(torch.from_numpy(x[n]) for n in cf.inputs))
    out = out if isinstance(out, tuple) else (out,)
    return {name: t.detach().numpy() for name, t in zip(cf.ref_outputs, out, strict=True)}


def minibatches(cf: CorpusFile) -> tuple[int, ...]:
    # A file that declares a batch of FIXED_BATCH rows is fed that many at a time;
    # minibatches of 8 are covered by the dynamic-batch files.
    return (cf.fixed_batch,) if cf.fixed_batch else MINIBATCHES


# --- reading both sides ------------------------------------------------------------------------------


def as_rows(value: object, n: int) -> np.ndarray:
    """An output as (trials, features) float64; skl2onnx's ZipMap list of dicts by class order."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        value = [[row[k] for k in sorted(row)] for row in value]
    return np.asarray(value, dtype=np.float64).reshape(n, -1)


def ort_outputs(path: Path, x: dict[str, np.ndarray], fixed_batch: int | None) -> dict[str, np.ndarray]:
    """Every output of the file by onnxruntime, fed in the file's input dtype."""
    import onnxruntime

    sess = onnxruntime.InferenceSession(str(path))
    kinds = {i.name: np.float64 if i.type == "tensor(double)" else np.float32 for i in sess.get_inputs()}
    names = [o.name for o in sess.get_outputs()]
    step = fixed_batch or TRIALS
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for start in range(0, TRIALS, step):
        feed = {n: x[n][start:start + step].astype(kinds[n]) for n in kinds}
        for name, value in zip(names, sess.run(None, feed), strict=True):
            parts[name].append(as_rows(value, min(step, TRIALS - start)))
    return {n: np.concatenate(p) for n, p in parts.items()}


def mdfx_outputs(comp: object, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """comp.run() on every trial; each output by its OUTPUT node's name."""
    comp.run(inputs=x)  # type: ignore[attr-defined]
    rows = comp.results[-TRIALS:]  # type: ignore[attr-defined]
    names = [n.name for n in comp.get_nodes_by_role(mdfx.NodeRole.OUTPUT)]  # type: ignore[attr-defined]
    if len(names) != len(rows[0]):
        raise AssertionError(f"mdfx gives {len(rows[0])} outputs per trial but its OUTPUT nodes are {names}")
    def row(value: object) -> np.ndarray:  # a ZipMap output is one {class: probability} dict per trial
        return np.array([value[k] for k in sorted(value)]) if isinstance(value, dict) else np.ravel(value)

    return {name: np.stack([row(r[i]) for r in rows]).astype(np.float64) for i, name in enumerate(names)}


def mdfx_params(comp: object) -> dict[str, np.ndarray]:
    """mdfx's parameters by the names of the state_dict ``mdfx.save(comp, "w.pt")`` writes.

    The state_dict keeps each tensor's original dtype, so a float32 file trained in float64
    (Keras's) would lose its trained weights' low bits there: the values come from mdfx's own
    float64 arrays, and the saved tensors are checked to be those arrays in the file's dtype."""
    with tempfile.TemporaryDirectory() as tmp:
        path = mdfx.save(comp, Path(tmp) / "w.pt")
        state = torch.load(path, weights_only=True)
    saved = {k: v.detach().cpu().numpy() for k, v in state.items()}
    own = comp.parameters_dict() if hasattr(comp, "parameters_dict") else {}
    got = {}
    for key, value in saved.items():
        exact = own.get(key)
        if exact is None:
            got[key] = value.astype(np.float64)
            continue
        as_saved = np.asarray(exact).astype(value.dtype).reshape(value.shape)
        if not np.array_equal(as_saved, value):
            raise AssertionError(f"{key!r}: the saved state_dict tensor is not mdfx's trained array in "
                                 f"{value.dtype}: saved {value.ravel()[:4]}, trained {as_saved.ravel()[:4]}")
        got[key] = np.asarray(exact, dtype=np.float64).reshape(value.shape)
    return got


def pick(got: dict[str, np.ndarray], names: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    missing = [n for n in names if n not in got]
    if missing:
        raise AssertionError(f"{what}: mdfx has no output named {missing}; its outputs are {sorted(got)}")
    return {n: got[n] for n in names}


# --- the checks --------------------------------------------------------------------------------------


def check_load(cf: CorpusFile) -> object:
    if cf.limitation:
        raise NotApplicable(f"exporter limitation: {cf.limitation}")
    return mdfx.load(cf.path)


def check_run(cf: CorpusFile) -> None:
    """run() equals onnxruntime on the original file, on every output."""
    comp = check_load(cf)
    if cf.ort_limitation:
        raise NotApplicable(f"{cf.ort_limitation} (the float32 file is checked)")
    x = inputs_for(cf)
    got = pick(mdfx_outputs(comp, x), cf.outputs, cf.id)
    want = ort_outputs(cf.path, x, cf.fixed_batch)
    rtol, atol = RUN_TOL[cf.dtype]
    for name in cf.outputs:
        assert_close(got[name].reshape(want[name].shape) if got[name].size == want[name].size else got[name],
                     want[name], rtol, atol, what=f"{cf.id}: output {name!r}, mdfx run() vs onnxruntime")


def torch_train(module: torch.nn.Module, cf: CorpusFile, x: dict[str, np.ndarray],
                t: dict[str, np.ndarray], mb: int) -> list[float]:
    """The original's training: SGD, MSE (mean) summed over the trained outputs, trials in order.

    The module stays in eval mode: Dropout is the identity and BatchNorm uses its frozen
    statistics, as in the exported inference graph.
    """
    opt = torch.optim.SGD(module.parameters(), lr=cf.lr)
    xs = [torch.from_numpy(x[n]) for n in cf.inputs]
    ts = {n: torch.from_numpy(v) for n, v in t.items()}
    losses = []
    for _ in range(EPOCHS):
        for i in range(0, TRIALS, mb):
            opt.zero_grad()
            out = module(*(v[i:i + mb] for v in xs))
            out = dict(zip(cf.ref_outputs, out if isinstance(out, tuple) else (out,), strict=True))
            loss = sum(F.mse_loss(out[n], ts[n][i:i + mb]) for n in cf.trained)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    if not np.all(np.isfinite(losses)):
        raise AssertionError(f"{cf.id}: the reference training diverged (lr {cf.lr}): {losses}")
    return losses


def trained_pair(cf: CorpusFile, mode: str, mb: int) -> tuple[object, torch.nn.Module, list[float]]:
    """(mdfx composition trained in ``mode``, reference module trained in torch, its losses)."""
    if not cf.trained_in_float64:
        raise NotApplicable("training is checked on the float64 files (issue 9: float64, <= 1e-9)")
    comp = check_load(cf)
    ref = cf.reference().double()
    trainable = {k for k, p in ref.named_parameters() if p.requires_grad}
    folded = sorted(trainable - set(cf.param_map))
    if folded:
        raise NotApplicable(f"exporter limitation: parameters {folded} are not initializers of the file "
                            f"({cf.renamed})")
    x = inputs_for(cf)
    t = targets_for(cf, x)
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    want = torch_train(ref, cf, x, t, mb)
    if all(torch.equal(before[k], v) for k, v in ref.state_dict().items()):
        raise AssertionError(f"{cf.id}: the reference training changed no parameter")
    comp.learn(inputs=x, targets=t, epochs=EPOCHS, minibatch_size=mb,  # type: ignore[attr-defined]
               learning_rate=cf.lr, execution_mode=getattr(mdfx.ExecutionMode, mode))
    return comp, ref, want


def check_train(cf: CorpusFile, mode: str) -> None:
    """Training in ``mode`` equals training the original in torch: losses, outputs, parameters."""
    for mb in minibatches(cf):
        what = f"{cf.id}, {mode}, minibatch {mb}"
        comp, ref, want = trained_pair(cf, mode, mb)
        assert_close(comp.losses, want, TRAIN_RTOL, TRAIN_ATOL,  # type: ignore[attr-defined]
                     what=f"{what}: per-minibatch losses, mdfx vs the original trained in torch")
        x = inputs_for(cf)
        got = pick(mdfx_outputs(comp, x), cf.ref_outputs, what)
        with torch.no_grad():
            expected = forward(ref, cf, x)
        for name in cf.ref_outputs:
            assert_close(got[name], expected[name], TRAIN_RTOL, TRAIN_ATOL,
                         what=f"{what}: output {name!r} after training")
        compare_params(cf, mdfx_params(comp), ref, what)


def compare_params(cf: CorpusFile, got: dict[str, np.ndarray], ref: torch.nn.Module, what: str) -> None:
    """Every parameter and constant of the file, by its initializer name, against the reference."""
    state = ref.state_dict()
    for key, (init, transposed) in cf.param_map.items():
        want = state[key].detach().numpy()
        want = want.T if transposed else want
        if init not in got:
            raise AssertionError(f"{what}: mdfx's parameters have no {init!r} (the file's initializer for "
                                 f"the original's {key!r}); mdfx has {sorted(got)}")
        if got[init].shape != want.shape:
            raise AssertionError(f"{what}: mdfx holds {init!r} as {got[init].shape}; the file holds "
                                 f"{want.shape} (layout not kept)")
        assert_close(got[init], want, TRAIN_RTOL, TRAIN_ATOL, what=f"{what}: parameter {init!r} ({key})")


def check_export(cf: CorpusFile, workdir: Path) -> None:
    """mdfx.save(comp, .onnx) runs in onnxruntime like the original, keeping names, dtype, initializers."""
    comp = check_load(cf)
    if cf.ort_limitation:
        raise NotApplicable(f"{cf.ort_limitation} (the float32 file is checked)")
    back = mdfx.save(comp, Path(workdir) / f"{cf.id}.back.onnx")
    orig, new = onnx.load(str(cf.path)), onnx.load(str(back))
    for part in ("input", "output"):
        want_names = [v.name for v in getattr(orig.graph, part)]
        got_names = [v.name for v in getattr(new.graph, part)]
        if got_names != want_names:
            raise AssertionError(f"{cf.id}: exported graph {part}s are {got_names}; the original's {want_names}")
    dtypes = {v.name: v.type.tensor_type.elem_type for v in orig.graph.input}
    got_dtypes = {v.name: v.type.tensor_type.elem_type for v in new.graph.input}
    if got_dtypes != dtypes:
        raise AssertionError(f"{cf.id}: exported input element types {got_dtypes}; the original's {dtypes} "
                             "(onnx.TensorProto: 1 float, 11 double)")
    x = inputs_for(cf)
    want, got = ort_outputs(cf.path, x, cf.fixed_batch), ort_outputs(back, x, cf.fixed_batch)
    rtol, atol = RUN_TOL[cf.dtype]
    for name in cf.outputs:
        assert_close(got[name], want[name], rtol, atol, what=f"{cf.id}: output {name!r}, export vs original")
    shapes = {i.name: tuple(i.dims) for i in new.graph.initializer}
    for key, (init, _) in cf.param_map.items():
        want_shape = tuple(next(i.dims for i in orig.graph.initializer if i.name == init))
        if shapes.get(init) != want_shape:
            raise AssertionError(f"{cf.id}: exported initializer {init!r} ({key}) is "
                                 f"{shapes.get(init, 'missing')}; the original's is {want_shape}")


def check_state_dict(cf: CorpusFile, mode: str = "Python") -> None:
    """mdfx.save(comp, "w.pt") loads into the original module and gives the trained module.

    float64 files are trained first (``mode``, the largest minibatch); a float32 file's
    state_dict must give back the original weights.
    """
    if not cf.torch_original:
        raise NotApplicable("the original is not a torch module")
    if cf.limitation:
        raise NotApplicable(f"exporter limitation: {cf.limitation}")
    if cf.renamed:
        raise NotApplicable(f"exporter limitation: the file does not name {sorted(cf.renamed)} "
                            f"(written as {cf.renamed})")
    if cf.dtype == "float64":
        comp, ref, _ = trained_pair(cf, mode, minibatches(cf)[-1])
    else:
        comp, ref = check_load(cf), cf.reference()
    with tempfile.TemporaryDirectory() as tmp:
        path = mdfx.save(comp, Path(tmp) / "w.pt")
        state = torch.load(path, weights_only=True)
    fresh = cf.reference()
    try:
        result = fresh.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that do not fit
        raise AssertionError(f"{cf.id}: the original module refuses mdfx's state_dict: {exc}") from None
    # BatchNorm's num_batches_tracked is not in an inference graph: the only key allowed missing
    allowed = {k for k, v in fresh.state_dict().items() if not v.is_floating_point()}
    missing = sorted(set(result.missing_keys) - allowed)
    if missing or result.unexpected_keys:
        raise AssertionError(f"{cf.id}: mdfx's state_dict does not fit the original module: missing {missing}, "
                             f"unexpected {sorted(result.unexpected_keys)}")
    want = ref.state_dict()
    rtol, atol = (TRAIN_RTOL, TRAIN_ATOL) if cf.dtype == "float64" else (0.0, 0.0)
    for key, value in fresh.state_dict().items():
        if value.is_floating_point():
            assert_close(value.numpy(), want[key].detach().numpy(), rtol, atol,
                         what=f"{cf.id}: {key!r} of the module loaded from mdfx's state_dict")
