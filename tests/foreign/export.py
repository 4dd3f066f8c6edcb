"""Write the corpus: torch modules through both torch.onnx exporters, and sklearn MLPs through skl2onnx.

A :class:`Case` names one file before it exists (so pytest can parametrise over cases
without exporting at collection time); :func:`build` writes it and returns a
:class:`CorpusFile` with everything the checks need. An exporter that cannot write a
model records that as the file's ``limitation`` (an exporter's limit, not mdfx's).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from foreign.models import ENTRIES, Entry

EXPORTERS = ("legacy", "dynamo")
OPSETS = (17, 18, 21)
BATCHES = ("dyn", "fix")
DTYPES = ("f64", "f32")
#: a fixed-batch file is exported with one trial, as a user exporting one example would
FIXED_BATCH = 1
#: torch.export specialises sizes 0 and 1, so a dynamic batch is traced with 3 rows
TRACE_BATCH = 3
TORCH_DTYPES = {"f64": torch.float64, "f32": torch.float32}


@dataclass(frozen=True)
class Variant:
    exporter: str  #: "legacy" (TorchScript), "dynamo", or "skl2onnx"
    opset: int
    batch: str  #: "dyn" (batch axis symbolic) or "fix" (exported with FIXED_BATCH rows)
    dtype: str  #: "f64" or "f32"

    @property
    def id(self) -> str:
        return f"{self.exporter}-op{self.opset}-{self.batch}-{self.dtype}"


@dataclass(frozen=True)
class Case:
    """One corpus file to be: a source model and how it is written."""

    model: str  #: an ENTRIES name, or a SKLEARN name
    variant: Variant

    @property
    def id(self) -> str:
        return f"{self.model}-{self.variant.id}"

    @property
    def family(self) -> str:
        return "sklearn" if self.model in SKLEARN else "keras" if self.model in KERAS else "torch"


@dataclass
class CorpusFile:
    """A written corpus file and what the checks need to judge mdfx on it."""

    case: Case
    path: Path
    inputs: dict[str, tuple[int, ...]]  #: graph input name -> per-trial shape
    outputs: tuple[str, ...]  #: graph output names
    trained: tuple[str, ...]  #: outputs that get targets
    lr: float
    #: a fresh module with the file's initial weights, in the file's dtype; it returns the
    #: tensors named by ``ref_outputs`` (for sklearn: the re-implementation, probabilities only)
    reference: Callable[[], nn.Module]
    ref_outputs: tuple[str, ...]
    #: reference state_dict key -> (ONNX initializer name, whether stored transposed)
    param_map: dict[str, tuple[str, bool]] = field(default_factory=dict)
    #: reference keys the exporter wrote under a name of its own, or folded away
    renamed: dict[str, str] = field(default_factory=dict)
    #: the original is a torch module whose state_dict mdfx must be able to fill
    torch_original: bool = True
    limitation: str | None = None  #: why the exporter wrote no (usable) file
    #: why onnxruntime cannot run the original file (no float64 kernel for Elu, Erf, ...)
    ort_limitation: str | None = None
    seconds: float = 0.0

    @property
    def id(self) -> str:
        return self.case.id

    @property
    def dtype(self) -> str:
        return "float64" if self.case.variant.dtype == "f64" else "float32"

    @property
    def trained_in_float64(self) -> bool:
        """Training is checked on float64 files, and on Keras's float32 files (see KERAS)."""
        return self.dtype == "float64" or self.case.family == "keras"

    @property
    def fixed_batch(self) -> int | None:
        return FIXED_BATCH if self.case.variant.batch == "fix" else None

    @property
    def seed(self) -> int:
        return zlib.crc32(self.case.model.encode())


# --- which cases exist -------------------------------------------------------------------------

DEFAULT_TORCH = Variant("legacy", 17, "dyn", "f64")
#: swept over every legacy-exporter opset/batch/dtype in the default run (the rest: one variant)
DEFAULT_SWEEP_MODEL = "mlp_relu"
#: the dynamo exporter takes 1-5 s a file, so the default run writes only a few with it
DEFAULT_DYNAMO = [Variant("dynamo", 21, "dyn", "f64"), Variant("dynamo", 18, "fix", "f32")]
DEFAULT_DYNAMO_MODELS = ("branch_sum", "input_norm", "concat", "layernorm", "two_in_two_out")
DEFAULT_DYNAMO_VARIANT = Variant("dynamo", 18, "dyn", "f64")


def torch_variants() -> list[Variant]:
    return [Variant(e, o, b, d) for e, o, b, d in itertools.product(EXPORTERS, OPSETS, BATCHES, DTYPES)]


def sklearn_variants() -> list[Variant]:
    return [Variant("skl2onnx", o, "dyn", d) for o, d in itertools.product(OPSETS, DTYPES)]


def keras_variants() -> list[Variant]:
    return [Variant("keras", o, b, "f32") for o, b in itertools.product(OPSETS, BATCHES)]


def full_cases() -> list[Case]:
    cases = [Case(m, v) for m in ENTRIES for v in torch_variants()]
    cases += [Case(m, v) for m in KERAS for v in keras_variants()]
    return cases + [Case(m, v) for m in SKLEARN for v in sklearn_variants()]


def default_cases() -> list[Case]:
    """One variant per model, a float32 file per model, a full sweep of a few, the sklearn set."""
    cases = [Case(m, DEFAULT_TORCH) for m in ENTRIES]
    cases += [Case(m, Variant("legacy", 17, "dyn", "f32")) for m in ENTRIES]
    cases += [Case(DEFAULT_SWEEP_MODEL, v) for v in torch_variants()
              if v.exporter == "legacy" and Case(DEFAULT_SWEEP_MODEL, v) not in cases]
    cases += [Case(DEFAULT_SWEEP_MODEL, v) for v in DEFAULT_DYNAMO]
    cases += [Case(m, DEFAULT_DYNAMO_VARIANT) for m in DEFAULT_DYNAMO_MODELS]
    cases += [Case(m, Variant("skl2onnx", 17, "dyn", d)) for m in SKLEARN for d in DTYPES]
    cases += [Case(m, Variant("keras", 18, "dyn", "f32")) for m in KERAS]
    return cases


def is_trained(case: Case) -> bool:
    """Whether training is checked on this case (see CorpusFile.trained_in_float64)."""
    return case.variant.dtype == "f64" or case.family == "keras"


# --- building ------------------------------------------------------------------------------------

_BUILT: dict[tuple[str, str], CorpusFile] = {}


def build(case: Case, outdir: Path) -> CorpusFile:
    """Write ``case`` under ``outdir`` (once per process) and describe it."""
    key = (str(outdir), case.id)
    if key not in _BUILT:
        start = time.perf_counter()
        path = Path(outdir) / f"{case.id}.onnx"
        builders = {"sklearn": build_sklearn, "keras": build_keras, "torch": build_torch}
        cf = builders[case.family](case, path)
        cf.seconds = time.perf_counter() - start
        _BUILT[key] = cf
    return _BUILT[key]


def build_stats() -> tuple[int, float]:
    """How many files this process built, and the seconds it spent on them."""
    return len(_BUILT), sum(cf.seconds for cf in _BUILT.values())


def build_torch(case: Case, path: Path) -> CorpusFile:
    entry = ENTRIES[case.model]
    v = case.variant
    dtype = TORCH_DTYPES[v.dtype]
    module = entry.build().to(dtype)
    reference = entry.reference or entry.build
    cf = CorpusFile(case, path, entry.inputs, entry.outputs, entry.trained, entry.lr,
                    reference=lambda: reference().to(dtype), ref_outputs=entry.outputs)
    try:
        export_torch(module, entry, v, path)
        onnx.checker.check_model(str(path))
    except Exception as exc:  # noqa: BLE001 - whatever the exporter raises is its limitation
        cf.limitation = f"{v.exporter} exporter, opset {v.opset}: {type(exc).__name__}: {first_line(exc)}"
        return cf
    cf.ort_limitation = ort_refusal(path)
    cf.param_map, cf.renamed = map_parameters(module.state_dict(), onnx.load(str(path)))
    return cf


def ort_refusal(path: Path) -> str | None:
    """Why onnxruntime cannot open the file, or None."""
    import onnxruntime

    try:
        onnxruntime.InferenceSession(str(path))
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
        return f"onnxruntime: {first_line(exc)}"
    return None


def export_torch(module: nn.Module, entry: Entry, v: Variant, path: Path) -> None:
    rows = FIXED_BATCH if v.batch == "fix" else TRACE_BATCH
    gen = torch.Generator().manual_seed(0)
    args = tuple(torch.randn(rows, *shape, generator=gen, dtype=TORCH_DTYPES[v.dtype])
                 for shape in entry.inputs.values())
    names = {"input_names": list(entry.inputs), "output_names": list(entry.outputs)}
    kwargs: dict[str, object] = {}
    if v.batch == "dyn":
        if v.exporter == "dynamo":
            batch = torch.export.Dim("batch")
            kwargs["dynamic_shapes"] = tuple({0: batch} for _ in entry.inputs)
        else:
            kwargs["dynamic_axes"] = {n: {0: "batch"} for n in [*entry.inputs, *entry.outputs]}
    # the exporters print progress and deprecation notices: keep the test output readable
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=v.exporter == "dynamo", opset_version=v.opset,
                          verbose=False, **names, **kwargs)


def map_parameters(state: dict[str, torch.Tensor], model: onnx.ModelProto
                   ) -> tuple[dict[str, tuple[str, bool]], dict[str, str]]:
    """Which initializer holds each float entry of the module's state_dict.

    By name first (both exporters keep torch's names, ``l1.weight``); an entry the exporter
    renamed (constant folding of ``W.T``, for one) is found by its exact value, possibly
    transposed, and listed in the second dict with the name it got.
    """
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    found: dict[str, tuple[str, bool]] = {}
    renamed: dict[str, str] = {}
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            continue  # BatchNorm's num_batches_tracked: not part of the inference graph
        value = tensor.detach().cpu().numpy()
        if key in inits and inits[key].shape == value.shape:
            found[key] = (key, False)
            continue
        for name, arr in inits.items():
            if arr.shape == value.shape and np.array_equal(arr, value):
                found[key] = (name, False)
            elif value.ndim == 2 and arr.shape == value.T.shape and np.array_equal(arr, value.T):
                found[key] = (name, True)
            else:
                continue
            renamed[key] = name
            break
        else:
            renamed[key] = "(not an initializer: folded or inlined by the exporter)"
    return found, renamed


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


# --- sklearn -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkEntry:
    name: str
    kind: str  #: "classifier" or "regressor"
    activation: str  #: sklearn's hidden activation
    classes: int = 3  #: classifiers only
    zipmap: bool = True  #: skl2onnx's default ZipMap tail (a list of dicts) or a plain tensor
    targets: int = 1  #: regressors only
    lr: float = 0.1


SKLEARN: dict[str, SkEntry] = {e.name: e for e in [
    SkEntry("sk_classifier_tanh", "classifier", "tanh"),
    SkEntry("sk_classifier_relu_nozipmap", "classifier", "relu", zipmap=False),
    SkEntry("sk_binary_logistic_nozipmap", "classifier", "logistic", classes=2, zipmap=False),
    SkEntry("sk_regressor_logistic", "regressor", "logistic"),
    SkEntry("sk_regressor_relu_2targets", "regressor", "relu", targets=2),
]}
SK_FEATURES = 4


class SklearnMLP(nn.Module):
    """sklearn's MLP forward, written in torch from ``coefs_``/``intercepts_`` (the training reference).

    Returns the probabilities a skl2onnx classifier computes (``[1 - p, p]`` for two
    classes) or the regressor's prediction.
    """

    ACT: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "identity": lambda h: h, "relu": torch.relu, "tanh": torch.tanh, "logistic": torch.sigmoid,
        "softmax": lambda h: torch.softmax(h, dim=1),
    }

    def __init__(self, est: object, dtype: torch.dtype) -> None:
        super().__init__()
        coefs, intercepts = est.coefs_, est.intercepts_  # type: ignore[attr-defined]
        for i, (w, b) in enumerate(zip(coefs, intercepts, strict=True)):
            self.register_parameter(f"coefs_{i}", nn.Parameter(torch.tensor(w, dtype=dtype)))
            # (1, n) as skl2onnx stores it, so the initializer is found by its value
            self.register_parameter(f"intercepts_{i}", nn.Parameter(torch.tensor(b[None, :], dtype=dtype)))
        self.layers = len(coefs)
        self.hidden = est.activation  # type: ignore[attr-defined]
        self.out = est.out_activation_  # type: ignore[attr-defined]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i in range(self.layers):
            h = h @ getattr(self, f"coefs_{i}") + getattr(self, f"intercepts_{i}")
            h = self.ACT[self.hidden if i < self.layers - 1 else self.out](h)
        if self.out == "logistic":  # binary: skl2onnx's probabilities are [1 - p, p]
            h = torch.cat([1 - h, h], dim=1)
        return h


def fit_sklearn(entry: SkEntry) -> object:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(zlib.crc32(entry.name.encode()))
    x = rng.normal(size=(60, SK_FEATURES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few iterations: weights, not accuracy
        if entry.kind == "classifier":
            y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 0.5) * (entry.classes - 2)
            return MLPClassifier(hidden_layer_sizes=(5,), activation=entry.activation, max_iter=40,
                                 random_state=0).fit(x, y)
        y = np.tanh(x[:, :entry.targets])
        return MLPRegressor(hidden_layer_sizes=(5,), activation=entry.activation, max_iter=40,
                            random_state=0).fit(x, y.ravel() if entry.targets == 1 else y)


def build_sklearn(case: Case, path: Path) -> CorpusFile:
    entry = SKLEARN[case.model]
    v = case.variant
    est = fit_sklearn(entry)
    dtype = TORCH_DTYPES[v.dtype]
    if entry.kind == "classifier":
        outputs = ("output_label", "output_probability") if entry.zipmap else ("label", "probabilities")
        trained = outputs[1:]
    else:
        outputs = trained = ("variable",)
    cf = CorpusFile(case, path, {"x": (SK_FEATURES,)}, outputs, trained, entry.lr,
                    reference=lambda: SklearnMLP(est, dtype), ref_outputs=trained, torch_original=False)
    options = {id(est): {"zipmap": False}} if entry.kind == "classifier" and not entry.zipmap else None
    try:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

        tensor_type = DoubleTensorType if v.dtype == "f64" else FloatTensorType
        model = to_onnx(est, initial_types=[("x", tensor_type([None, SK_FEATURES]))], options=options,
                        target_opset={"": v.opset, "ai.onnx.ml": 1})
        path.write_bytes(model.SerializeToString())
    except Exception as exc:  # noqa: BLE001 - the converter's limitation
        cf.limitation = f"skl2onnx, opset {v.opset}, {v.dtype}: {type(exc).__name__}: {first_line(exc)}"
        return cf
    refusal = ort_refusal(path)
    if refusal:  # ZipMap takes float only: skl2onnx's float64 classifier with ZipMap is invalid
        cf.limitation = f"skl2onnx, opset {v.opset}, {v.dtype} wrote an invalid file: {refusal}"
        return cf
    cf.param_map, cf.renamed = map_parameters(cf.reference().state_dict(), model)
    return cf


# --- Keras 3 on the torch backend ----------------------------------------------------------------
#
# Keras 3 installs without TensorFlow, and on the torch backend ``model.export(format="onnx")``
# goes through torch.onnx (TorchScript for a dynamic batch, dynamo for a fixed one). Its
# initializers get the exporter's names (``onnx::MatMul_47``), so parameters are matched
# by value. With floatx float64 it still stores kernels as float32 behind Cast nodes, so
# the corpus writes Keras's float32 files and checks their training in float64 against
# a torch re-implementation holding the same (float32-valued) weights.


@dataclass(frozen=True)
class KerasEntry:
    name: str
    inputs: dict[str, tuple[int, ...]]
    lr: float = 0.05


KERAS: dict[str, KerasEntry] = {e.name: e for e in [
    KerasEntry("keras_mlp_relu", {"x": (4,)}),
    KerasEntry("keras_mlp_softmax", {"x": (4,)}, lr=0.5),
    KerasEntry("keras_two_input_add", {"a": (3,), "b": (2,)}),
]}


def keras_model(name: str) -> object:
    """The Keras model ``name``, seeded, with non-zero biases (equal zero biases would be
    merged into one initializer by the exporter)."""
    import random

    # keras seeds python's, numpy's and torch's global generators: give them back as they were
    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    try:
        return _keras_model(name)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])


def _keras_model(name: str) -> object:
    import os

    os.environ["KERAS_BACKEND"] = "torch"  # read at keras's first import
    import keras

    if keras.backend.backend() != "torch":
        raise RuntimeError(f"keras was imported with the {keras.backend.backend()} backend")
    keras.utils.set_random_seed(zlib.crc32(name.encode()) % 2**31)
    bias = keras.initializers.RandomNormal(stddev=0.3)

    def dense(units: int, activation: str | None, lname: str) -> object:
        return keras.layers.Dense(units, activation=activation, bias_initializer=bias, name=lname)

    if name == "keras_two_input_add":
        a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
        h = keras.layers.Add(name="add")([dense(4, None, "da")(a), dense(4, None, "db")(b)])
        out = dense(2, None, "out")(keras.layers.Activation("tanh", name="act")(h))
        return keras.Model([a, b], out)
    x = keras.Input((4,), name="x")
    hidden, final = ("relu", None) if name == "keras_mlp_relu" else ("tanh", "softmax")
    return keras.Model(x, dense(3, final, "d2")(dense(5, hidden, "d1")(x)))


class KerasReference(nn.Module):
    """The Keras models' forward in torch, from their weights: ``x @ kernel + bias`` per Dense."""

    def __init__(self, name: str, weights: dict[str, np.ndarray], dtype: torch.dtype) -> None:
        super().__init__()
        self.name = name
        for key, value in weights.items():  # "d1/kernel" -> parameter "d1_kernel"
            self.register_parameter(key.replace("/", "_"), nn.Parameter(torch.tensor(value, dtype=dtype)))

    def dense(self, layer: str, h: torch.Tensor) -> torch.Tensor:
        return h @ getattr(self, f"{layer}_kernel") + getattr(self, f"{layer}_bias")

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.name == "keras_two_input_add":
            return self.dense("out", torch.tanh(self.dense("da", xs[0]) + self.dense("db", xs[1])))
        if self.name == "keras_mlp_relu":
            return self.dense("d2", torch.relu(self.dense("d1", xs[0])))
        return torch.softmax(self.dense("d2", torch.tanh(self.dense("d1", xs[0]))), dim=1)


def build_keras(case: Case, path: Path) -> CorpusFile:
    entry = KERAS[case.model]
    v = case.variant
    cf = CorpusFile(case, path, entry.inputs, ("?",), ("?",), entry.lr, reference=lambda: nn.Identity(),
                    ref_outputs=("?",), torch_original=False)
    try:
        model = keras_model(case.model)
        rows = FIXED_BATCH if v.batch == "fix" else TRACE_BATCH
        gen = np.random.default_rng(0)
        sample = [gen.normal(size=(rows, *s)).astype(np.float32) for s in entry.inputs.values()]
        model(sample if len(sample) > 1 else sample[0])  # keras exports only a model that was called
        signature = None
        if v.batch == "fix":
            import keras

            specs = [keras.InputSpec(shape=(FIXED_BATCH, *s), dtype="float32", name=n)
                     for n, s in entry.inputs.items()]
            signature = [specs] if len(specs) > 1 else specs
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            model.export(str(path), format="onnx", verbose=False, opset_version=v.opset,
                         input_signature=signature)
        onnx.checker.check_model(str(path))
    except Exception as exc:  # noqa: BLE001 - keras's exporter's limitation
        cf.limitation = f"keras export, opset {v.opset}, {v.batch}: {type(exc).__name__}: {first_line(exc)}"
        return cf
    written = onnx.load(str(path))
    names = [i.name for i in written.graph.input]
    if names != list(entry.inputs):
        cf.limitation = f"keras wrote inputs {names}, not {list(entry.inputs)}"
        return cf
    cf.outputs = cf.trained = cf.ref_outputs = tuple(o.name for o in written.graph.output)
    weights = {w.path: w.value.detach().cpu().numpy().copy() for w in model.weights}
    cf.reference = lambda: KerasReference(case.model, weights, torch.float32)
    cf.ort_limitation = ort_refusal(path)
    cf.param_map, cf.renamed = map_parameters(cf.reference().state_dict(), written)
    return cf
