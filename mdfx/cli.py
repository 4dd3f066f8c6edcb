"""``mdfx`` command line: info | run | train | export | validate | convert | sweep.

Data files (``--inputs``, ``--data``) are JSON or ``.npz``:

* JSON: ``{"inputs": {node: [[...], ...]}, "targets": {node: [[...], ...]}}``, or a
  flat ``{node: [[...], ...]}`` where INPUT nodes' entries are inputs and OUTPUT
  nodes' entries are targets;
* ``.npz``: one array per node name (flat, as above), or keys ``inputs/<node>``
  and ``targets/<node>``.

Each array has one row per trial. User errors print one line and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mdfx.errors import DataError, MdfxError, one_line
from mdfx.files import MDF_SUFFIXES, STATE_DICT_SUFFIXES, read_data

MODES = {"python": "Python", "torch": "PyTorch", "llvm": "LLVMRun", "onnx": "ONNX"}

#: The optional dependency groups of ``pip install mdfx[...]``, by the module a command missed.
EXTRAS = {"torch": "torch", "llvmlite": "llvm", "onnx": "onnx", "onnxruntime": "onnx", "dask": "sweep",
          "distributed": "sweep", "pandas": "sweep", "tqdm": "progress"}


def mode_arg(allowed: Sequence[str]) -> Any:
    """An argparse type: a mode in the CLI's spelling (``torch``) or the API's (``PyTorch``), any case."""
    def parse(text: str) -> str:
        for cli_name, api_name in MODES.items():
            if cli_name in allowed and text.lower() in (cli_name, api_name.lower()):
                return cli_name
        spelled = ", ".join(f"{m} ({MODES[m]})" for m in allowed)
        raise argparse.ArgumentTypeError(f"unknown mode {text!r}; choose from {spelled}")

    parse.__name__ = "mode"
    return parse


def missing_package(exc: ModuleNotFoundError) -> str:
    """One line naming the extra to install for a missing optional package."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra:
        return (f"this needs {top}, which is not installed: pip install 'mdfx[{extra}]' "
                "(or 'mdfx[torch,llvm,onnx,sweep]' for every backend)")
    return f"this needs the Python package {top!r}, which is not installed: pip install {top}"


def check_data_keys(path: str | Path, net: Any, inputs: dict, targets: dict, need_targets: bool) -> None:
    """What the command needs is in the data file, else one error listing the keys found and the keys
    expected; keys that name no node are ignored with a warning naming them (never read)."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                raw = [n[:-4] if n.endswith(".npy") else n for n in archive.namelist()]
        except (zipfile.BadZipFile, OSError):
            raw = [*inputs, *targets]  # read_data reported a broken file already
        keys = [k.split("/", 1)[1] if k.startswith(("inputs/", "targets/")) else k for k in raw]
    else:
        raw = keys = list(dict.fromkeys([*inputs, *targets]))
    names = set(_names(net)) | set(getattr(net, "sizes", {}))  # any node of a composition
    expected = (f"inputs for {', '.join(map(repr, net.inputs))}"
                + (f" and targets for {', '.join(map(repr, net.outputs))}" if need_targets else "")
                + " (keys '<node>', or 'inputs/<node>' and 'targets/<node>')")
    unknown = [r for r, k in zip(raw, keys, strict=True) if k not in names]
    if unknown:  # ignored (and never read), but said: a misnamed key is the usual cause of "no targets"
        import warnings

        warnings.warn(f"{path}: key(s) {', '.join(map(repr, unknown))} name no node of {net.name!r} and are "
                      f"ignored; expected {expected}", stacklevel=2)
    missing = [n for n in net.inputs if n not in keys]
    if need_targets and not any(o in keys for o in net.outputs):
        missing += [f"targets for {o!r}" for o in net.outputs]
    if missing:
        raise DataError(f"{path}: no {', '.join(repr(m) if not m.startswith('targets') else m for m in missing)}; "
                        f"found {', '.join(map(repr, raw)) or 'no keys'}, expected {expected}")


def _split(net: Any, inputs: dict, targets: dict) -> tuple[dict, dict]:
    """Keep INPUT nodes' entries as inputs and OUTPUT nodes' as targets (flat files hold both)."""
    x = {k: v for k, v in inputs.items() if k in net.inputs or k not in net.outputs}
    t = {k: v for k, v in targets.items() if k in net.outputs or k not in net.inputs}
    return x, t


def cmd_show(args: argparse.Namespace) -> int:
    from mdfx.composition.show_graph import draw_graph
    from mdfx.io import load

    suffixes = (".png", ".pdf", ".svg", ".gv")
    check_destinations([("-o", args.out, suffixes)])
    comp = load(args.model)
    graph = comp._graph()
    fmt = Path(args.out).suffix.lower()[1:]
    if fmt == "gv":
        from mdfx.io import atomic_write

        source = draw_graph(graph, "source")
        atomic_write(args.out, lambda tmp: tmp.write_text(source))
        _print(f"wrote {args.out}")
        return 0
    written = draw_graph(graph, fmt, args.out)
    _print(f"wrote {written}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from mdfx.io import read_model
    from mdfx.schema.graph import TrainingSpec

    if _is_onnx(args.model):
        from mdfx.converters.onnx_import import load_onnx

        _print(str(load_onnx(args.model)))  # the op graph prints itself (names escaped)
        return 0
    graph = read_model(args.model)
    net = graph.mechanisms
    if net is None:  # an op graph (foreign MDF, a torch import): its ops and params
        _print(f"model {graph.name!r} (GraphComposition)\n{graph}")
        return 0
    lines = [f"model {graph.name!r} ({'AutodiffComposition' if net.autodiff else 'Composition'})", "nodes:"]
    for n in net.nodes:
        roles = [r for r, names in (("INPUT", net.inputs), ("OUTPUT", net.outputs)) if n.name in names]
        params = ", ".join(f"{shown_name(k)}={v:g}" for k, v in n.params.items())
        bias = f", bias[{n.size}]" if n.bias is not None else ""
        lines.append(f"  {shown_name(n.name)}: size {n.size}, {shown_name(n.function)}({params}){bias}  {' '.join(roles)}")
    lines.append("projections:")
    for p in net.projections:
        matrix = graph.params[p.name]
        flag = "" if matrix.learnable else "  (fixed)"
        lines.append(f"  {shown_name(p.name)}: {shown_name(p.sender)} -> {shown_name(p.receiver)}, "
                     f"matrix {matrix.shape[0]}x{matrix.shape[1]}{flag}")
    t = graph.training or TrainingSpec()
    lines.append(f"training: loss {t.loss}, optimizer {t.optimizer}, learning_rate {t.learning_rate:g}, "
                 f"weight_decay {t.weight_decay:g}")
    _print("\n".join(lines))
    return 0


def _is_onnx(path: str) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def _comp(model: str, weights: str | None = None) -> Any:
    from mdfx.io import as_composition

    if _is_onnx(model):
        from mdfx.io import load

        comp = load(model)  # a GraphComposition over the file's op graph
        if weights:
            comp.load(weights)  # a state_dict under the file's initializer names
        return comp
    return as_composition(load_with_weights(model, weights))


def cmd_run(args: argparse.Namespace) -> int:
    from mdfx.composition.enums import ExecutionMode

    check_destinations([("--out", args.out, (".json", ".npz"))])
    comp = _comp(args.model, args.weights)
    net = comp._io()
    inputs = None  # without --inputs: the inputs the file holds (or each input's default value)
    if args.inputs:
        inputs, _ = read_data(args.inputs, _names(net))
        check_data_keys(args.inputs, net, inputs, {}, need_targets=False)
        inputs, _ = _split(net, inputs, {})
    comp.run(inputs=inputs, execution_mode=ExecutionMode[MODES[args.mode]])
    outputs = {name: np.array([trial[i] for trial in comp.results]) for i, name in enumerate(net.outputs)}
    _write_outputs(outputs, args.out)
    return 0


def _write_outputs(outputs: dict[str, np.ndarray], out: str | None) -> None:
    if out is None:
        _print(_json({k: v.tolist() for k, v in outputs.items()}, "the outputs", indent=1))
        return
    from mdfx.io import atomic_write

    if out.endswith(".npz"):
        from mdfx.files import write_npz

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # names as member names, never as np.savez keywords
                write_npz(f, outputs)

        atomic_write(out, write)
    else:
        text = _json({k: v.tolist() for k, v in outputs.items()}, "the outputs")
        atomic_write(out, lambda tmp: tmp.write_text(text))
    _print(f"wrote {out}")


def cmd_train(args: argparse.Namespace) -> int:
    from mdfx.composition.enums import ExecutionMode, Loss
    from mdfx.io import save

    check_destinations([("--out", args.out, (*MDF_SUFFIXES, ".onnx")),
                        ("--state-dict", args.state_dict, STATE_DICT_SUFFIXES),
                        ("--plot", args.plot, (".png",))])
    comp = _comp(args.model, args.weights)
    if not hasattr(comp, "learn"):
        raise MdfxError(f"{args.model}: not an AutodiffComposition; nothing to train")
    if args.optimizer:
        from mdfx import ops

        comp.optimizer_type = ops.optimizer_op(args.optimizer).name
    if args.loss:
        try:
            comp.loss_spec = Loss[args.loss.upper()]
        except KeyError:
            raise MdfxError(f"unknown loss {args.loss!r}; choose from {', '.join(m.name for m in Loss)}") from None
    net = comp._io()
    given = read_data(args.data, _names(net))
    check_data_keys(args.data, net, *given, need_targets=True)
    inputs, targets = _split(net, *given)
    # numpy's overflow warnings would interleave with the one error line: a diverged
    # run is reported below, with the epoch and minibatch where it happened.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        comp.learn(inputs=inputs, targets=targets, epochs=args.epochs, learning_rate=args.lr,
                   minibatch_size=args.minibatch_size, randomize_minibatch=args.randomize, seed=args.seed,
                   execution_mode=ExecutionMode[MODES[args.mode]], report_progress=not args.quiet,
                   on_nonfinite="keep")  # checked below, with the CLI's wording (--lr)
    losses = comp.losses
    epochs = comp.last_learn.epochs_run if comp.last_learn else 1
    _check_finite_losses(losses, epochs)
    means = epoch_means(losses, epochs)
    per_epoch = len(losses) // max(len(means), 1)
    _print(f"trained {len(means)} epoch(s) of {per_epoch} minibatch(es); mean loss per epoch "
           f"{means[0]:.6g} (first) -> {means[-1]:.6g} (last)")
    if args.out:
        _print(f"wrote {save(comp, args.out)}")
    if args.state_dict:
        _print(f"wrote {save(comp, args.state_dict)}")
    if args.plot:
        _print(f"wrote {plot_losses(losses, args.plot, title=net.name, epochs=epochs)}")
    return 0


def epoch_means(losses: Sequence[float], epochs: int) -> list[float]:
    """The mean minibatch loss of each epoch (a run stopped early by patience has fewer epochs)."""
    losses = list(losses)
    if not losses:
        return [float("nan")]
    per_epoch = max(len(losses) // max(epochs, 1), 1)
    return [float(np.mean(losses[i:i + per_epoch])) for i in range(0, per_epoch * (len(losses) // per_epoch),
                                                                     per_epoch)]


def _check_finite_losses(losses: Sequence[float], epochs: int) -> None:
    """A diverged run (loss NaN or inf) is an error naming where it diverged; nothing is written."""
    bad = next((i for i, loss in enumerate(losses) if not np.isfinite(loss)), None)
    if bad is None:
        return
    per_epoch = max(len(losses) // max(epochs, 1), 1)
    raise MdfxError(f"training diverged: the loss became {losses[bad]!r} at epoch {bad // per_epoch} "
                    f"minibatch {bad % per_epoch} (minibatch {bad} overall); nothing was written. "
                    "Lower the learning rate (--lr) or check the data")


def plot_losses(losses: Sequence[float], path: str | Path, title: str = "", epochs: int = 1) -> Path:
    """A PNG of the mean loss per epoch, over each minibatch's loss drawn faint (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from mdfx.io import atomic_write

    # names from a file are plain text: "$...$" in a model's name is not mathtext to render (or fail on)
    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        means = epoch_means(losses, epochs)
        per_epoch = max(len(losses) // max(len(means), 1), 1)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        # minibatch k of epoch e sits at e + (k + 0.5) / per_epoch: the raw points spread over their epoch
        x = 1 + (np.arange(len(losses)) + 0.5) / per_epoch - 0.5
        ax.plot(x, losses, ".", markersize=2, alpha=0.2, color="tab:gray", label="minibatch loss")
        ax.plot(np.arange(1, len(means) + 1), means, "-o" if len(means) <= 50 else "-", color="tab:blue",
                markersize=3, label="mean per epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_yscale("log" if min(losses) > 0 else "linear")
        ax.legend(fontsize="small", loc="best")
        ax.set_title(f"training loss {title}".strip())
        fig.tight_layout()
        try:
            return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
        finally:
            plt.close(fig)


def cmd_export(args: argparse.Namespace) -> int:
    from mdfx.io import read_model, save, to_graph

    if not (args.onnx or args.state_dict or args.mdf):
        raise MdfxError("nothing to export: give --onnx FILE, --state-dict FILE and/or --mdf FILE")
    check_destinations([("--onnx", args.onnx, (".onnx",)), ("--state-dict", args.state_dict, STATE_DICT_SUFFIXES),
                        ("--mdf", args.mdf, MDF_SUFFIXES)])
    net = to_graph(_comp(args.model)) if _is_onnx(args.model) else read_model(args.model)
    if args.onnx:
        from mdfx.converters.onnx_export import to_onnx

        to_onnx(net, dtype=args.dtype, opset=args.opset)  # refuses bad options before any file is written
    if args.onnx:
        _print(f"wrote {save(net, args.onnx, dtype=args.dtype, opset=args.opset)}")
    if args.state_dict:
        _print(f"wrote {save(net, args.state_dict)}")
    if args.mdf:
        _print(f"wrote {save(net, args.mdf)}")
    return 0


def load_with_weights(model: str, weights: str | None) -> Any:
    """A model file as a Graph; ``weights`` (.pt state_dict or .onnx) fills or replaces its weights."""
    from mdfx.io import load_state_dict, read_model
    from mdfx.schema.dialects.modeci import MissingWeightsError

    try:
        net = read_model(model)
    except MissingWeightsError:
        if not weights:
            raise
        from mdfx.converters.torch_import import from_mdf_with_weights

        return from_mdf_with_weights(model, weights)
    if weights:
        load_state_dict(net, weights)
    return net


def cmd_convert(args: argparse.Namespace) -> int:
    from mdfx.io import save

    check_destinations([("OUT", args.output, (*MDF_SUFFIXES, ".onnx", *STATE_DICT_SUFFIXES))])
    model = _comp(args.input, args.weights) if _is_onnx(args.input) else load_with_weights(args.input, args.weights)
    _print(f"wrote {save(model, args.output)}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from mdfx.runners import compare

    check_destinations([("--json", args.json, (".json",))])
    graph, original = compare.model_graph(args.model)
    inputs = None
    if args.inputs:
        inputs, _ = _split(graph, *read_data(args.inputs, _names(graph)))
    dtypes = [args.dtype] if args.dtype else ["float64", "float32"]
    rows = compare.validate(graph, inputs=inputs, trials=args.trials, dtype=dtypes, seed=args.seed,
                            original=original)
    _print(compare.format_table(rows))
    if args.json:
        from mdfx.io import atomic_write

        atomic_write(args.json, lambda tmp: tmp.write_text(compare.rows_to_json(rows)))
        _print(f"wrote {args.json}")
    return 0 if all(r.ok for r in rows) else 1


EXAMPLES = """\
examples:
  mdfx info model.onnx
  mdfx run xor.json --inputs data.json --mode llvm
  mdfx train xor.json --data data.npz --epochs 50 --lr 0.5 --out trained.json --plot loss.png
  mdfx validate trained.json --trials 64
  mdfx convert model.onnx model.json          # or model.pt (a torch state_dict)
  mdfx export model.onnx --mdf m.json --state-dict m.pt
  mdfx sweep xor.json --data data.json --grid grid.yaml --out sweep_out --plot curves.png --best

Every option and its default: mdfx COMMAND --help. Modes may be spelled as on the command line
(python, torch, llvm, onnx) or as in the API (Python, PyTorch, LLVMRun, ONNX). docs/cli.md has more.
"""

_MODEL_HELP = ".json/.yaml MDF (mdfx's, PsyNeuLink's, modeci-mdf's) or .onnx"
_WEIGHTS_HELP = "a .pt state_dict (or .onnx file) whose weights replace the model's"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written, and each option's default shown (where the text does not say it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    # the package's version: mdfx/__init__ has run (it is this module's package), and importing it
    # here would be an upward import
    version = getattr(sys.modules.get("mdfx"), "__version__", "unknown")
    parser = argparse.ArgumentParser(prog="mdfx", description=__doc__.split("\n")[0].replace("``", ""), epilog=EXAMPLES,
                                     formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"mdfx {version}")
    parser.add_argument("--no-warnings", action="store_true",
                        help="hide warnings (e.g. an ONNX import's note on ambiguous initializers)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, formatter_class=_Formatter)

    p = command("info", "print a model's nodes, shapes, functions, projections and roles")
    p.add_argument("model", help=_MODEL_HELP)
    p.set_defaults(func=cmd_info)

    p = command("show", "draw a model's op graph with Graphviz (ops, shapes, learnable vs frozen)")
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("-o", "--out", required=True, help="the picture: .png, .pdf or .svg (or .gv for dot source)")
    p.set_defaults(func=cmd_show)

    p = command("run", "run a model on inputs and print or write its outputs")
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("--inputs", help=".json or .npz keyed by input node name (default: the sample inputs the "
                   "file holds, else each input node's default value)")
    p.add_argument("--out", help="write the outputs to .json or .npz instead of printing them")
    p.add_argument("--mode", type=mode_arg(list(MODES)), default="python", metavar="MODE",
                   help="python | torch | llvm | onnx (or Python | PyTorch | LLVMRun | ONNX)")
    p.add_argument("--weights", help=_WEIGHTS_HELP)
    p.set_defaults(func=cmd_run)

    p = command("train", "train a model (MDF or ONNX) on a data file")
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("--data", required=True, help=".json or .npz: inputs and targets by node name")
    p.add_argument("--epochs", type=int, default=1, help="passes over the data")
    p.add_argument("--mode", type=mode_arg(["torch", "python", "llvm"]), default="torch", metavar="MODE",
                   help="torch | python | llvm (or PyTorch | Python | LLVMRun)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's own)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], help="default: the model's own")
    p.add_argument("--loss", help="a Loss member, e.g. MSE, SSE, CROSS_ENTROPY (default: the model's own)")
    p.add_argument("--minibatch-size", type=int, default=1, help="trials per weight update")
    p.add_argument("--randomize", action="store_true", help="shuffle the trials each epoch")
    p.add_argument("--seed", type=int, default=None, help="seed of the shuffle (with --randomize)")
    p.add_argument("--out", help="write the trained model (.json, .yaml or .onnx)")
    p.add_argument("--state-dict", help="write the trained weights as a torch state_dict (.pt)")
    p.add_argument("--plot", help="write the loss curve (mean per epoch over each minibatch's) as a PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--weights", help=_WEIGHTS_HELP)
    p.set_defaults(func=cmd_train)

    p = command("export", "write a model as ONNX, a torch state_dict and/or MDF")
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("--onnx", help="write ONNX here (.onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset of --onnx (13-21)")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="dtype of --onnx (default: an ONNX file's own; float32 for other models)")
    p.add_argument("--state-dict", help="write the weights as a torch state_dict here (.pt)")
    p.add_argument("--mdf", help="write MDF here (.json or .yaml)")
    p.set_defaults(func=cmd_export)

    p = command("convert", "convert a model between formats, by suffix (.json/.yaml/.onnx/.pt)")
    p.add_argument("input", help=_MODEL_HELP)
    p.add_argument("output", help=".json/.yaml MDF, .onnx, or .pt (the weights as a torch state_dict)")
    p.add_argument("--weights", help="a .pt state_dict (or, for MDF written without weights, an .onnx "
                   "file) to load into the model first")
    p.set_defaults(func=cmd_convert)

    p = command("validate", "run every runner against the numpy reference and print one table")
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("--inputs", help=".json or .npz keyed by input node name (default: random inputs)")
    p.add_argument("--trials", type=int, default=8, help="random trials (without --inputs)")
    p.add_argument("--dtype", choices=["float32", "float64"], help="default: both")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--json", help="also write the table as JSON")
    p.set_defaults(func=cmd_validate)

    p = command("sweep", "train many copies: a grid of learn() options x seeds x data sets, on Dask")
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("--data", required=True, nargs="+", help=".json/.npz data files; several: one fit per file")
    p.add_argument("--grid", required=True, help="YAML/JSON: {option: [values], seeds: N or [...], init: scheme}")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786 "
                   "(default: a LocalCluster)")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: one per core; 0: in-process)")
    p.add_argument("--out", default="sweep_out",
                   help="folder for results.csv, curves.npz, runs/ and weights/ (resumable)")
    p.add_argument("--plot", help="write the learning curves (mean ± sd over seeds) as a PNG")
    p.add_argument("--best", action="store_true", help="print the best configuration")
    p.add_argument("--replicas", choices=["auto", "on", "off"], default="auto",
                   help="train runs that differ only in seed and learning rate together")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)
    return parser


def cmd_sweep(args: argparse.Namespace) -> int:
    from mdfx.sweep import best, plot_curves, read_grid, sweep

    # before any run: the plot's suffix and folder (a failure after the sweep would leave it half done)
    check_destinations([("--plot", args.plot, (".png",))])
    grid, seeds, init = read_grid(args.grid)
    data = args.data if len(args.data) > 1 else args.data[0]
    df = sweep(args.model, data, grid, seeds, init=init, out=args.out, scheduler=args.scheduler,
               workers=args.workers, replicas={"auto": "auto", "on": True, "off": False}[args.replicas],
               progress=not args.quiet)
    counts = df["status"].value_counts().to_dict()
    _print(f"{len(df)} runs ({len(df.attrs['ran'])} trained now, {len(df.attrs['skipped'])} already done): "
           + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    _print(f"wrote {Path(args.out) / 'results.csv'} (one row per run) and {Path(args.out) / 'curves.npz'} "
           "(the loss curves, by run id)")
    if args.plot:
        _print(f"wrote {plot_curves(df, args.plot, title=Path(args.model).stem)}")
    failed = df[df["status"] == "error"]
    if args.best and not (len(failed) and (df["status"] != "ok").all()):
        b = best(df)
        config = ", ".join(f"{k}={shown_name(v)}" for k, v in b["config"].items())
        _print(f"best: {config or 'the only configuration'}: final loss {b['mean_final_loss']:.6g} "
               f"± {b['std_final_loss']:.2g} over {b['runs']} run(s)")
        _print("  options: " + ", ".join(f"{k}={shown_name(v)}" for k, v in b["options"].items()))
    if len(failed):
        # the results are written (a rerun resumes them); the exit status says the sweep is not whole
        first = failed.iloc[0]
        raise MdfxError(f"sweep: {len(failed)} of {len(df)} runs failed (status 'error' in "
                        f"{Path(args.out) / 'results.csv'}); the first, {first['run_id']}: {first['error']}")
    return 0


def check_destinations(outputs: Sequence[tuple[str, str | None, Sequence[str]]]) -> None:
    """Before anything is computed or written: each output's suffix fits its option, its
    directory exists and is writable, it is not a directory, and no two outputs are one file.

    ``outputs`` is ``(option, path or None, allowed suffixes)``; a command that writes
    several files thus fails before writing the first.
    """
    seen: dict[Path, str] = {}
    for option, path, suffixes in outputs:
        if path is None:
            continue
        p = Path(path)
        if p.suffix.lower() not in suffixes:
            raise MdfxError(f"{option} {path}: the file name must end in {' or '.join(suffixes)} "
                            f"(got {p.suffix or 'no suffix'!r})")
        parent = p.parent
        if not parent.is_dir():
            raise MdfxError(f"{option} {path}: directory {str(parent)!r} does not exist")
        if not os.access(parent, os.W_OK):
            raise MdfxError(f"{option} {path}: directory {str(parent)!r} is not writable")
        if p.is_dir():
            raise MdfxError(f"{option} {path}: is a directory")
        key = p.resolve()
        if key in seen:
            raise MdfxError(f"{option} {path}: {seen[key]} writes the same file")
        seen[key] = option


def _names(net: Any) -> list[str]:
    """The names a data file may hold: a network's mechanisms, or a graph's (or IO's) inputs and outputs."""
    if getattr(net, "mechanisms", None) is not None:
        return [n.name for n in net.mechanisms.nodes]
    return [*net.inputs, *net.outputs]


def _json(value: Any, what: str, indent: int | None = None) -> str:
    try:
        return json.dumps(value, indent=indent, allow_nan=False)
    except ValueError:
        raise MdfxError(f"{what} contain NaN or infinite values, which JSON cannot hold; "
                        "write them to a .npz file instead") from None


#: Control characters (and other invisible format characters) shown escaped, so a
#: name from a file cannot move the cursor, recolour or retitle the user's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def escape_controls(text: str, keep_newlines: bool = True) -> str:
    """``text`` with control characters written as ``\\xNN`` / ``\\uNNNN`` escapes."""
    def esc(m: re.Match[str]) -> str:
        c = m.group()
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"

    text = _CONTROL.sub(esc, text)
    return text if keep_newlines else text.replace("\n", "\\n")


def shown_name(name: object) -> str:
    """A name from a file as printed on one line: control characters and newlines escaped, so a
    name cannot fake lines of the output or reach the terminal as an escape sequence."""
    return escape_controls(str(name), keep_newlines=False)


def _print(text: str) -> None:
    if sys.stdout is not None:  # stdout closed (>&-): the command still runs, silently
        print(escape_controls(text), flush=True)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      line: str | None = None) -> str:
    """``mdfx: warning: <text>`` (no source line, no file and line number of mdfx's code)."""
    return f"mdfx: warning: {escape_controls(one_line(str(message), 2000), keep_newlines=False)}\n"


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    args = build_parser().parse_args(argv)
    shown = warnings.formatwarning
    warnings.formatwarning = _one_line_warning  # type: ignore[assignment]
    try:
        if getattr(args, "no_warnings", False):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return args.func(args)
        return args.func(args)
    except ModuleNotFoundError as exc:
        return _error(MdfxError(missing_package(exc)))
    except BrokenPipeError:
        # `mdfx info x | head`: the reader left; stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        print("mdfx: interrupted", file=sys.stderr)
        return 130
    except MdfxError as exc:
        return _error(exc)
    except (OSError, ValueError, OverflowError, MemoryError) as exc:
        # Bad paths and bad values given on the command line are user errors too.
        return _error(exc)
    finally:
        warnings.formatwarning = shown


def _error(exc: BaseException) -> int:
    text = str(exc) if isinstance(exc, MdfxError) else f"{type(exc).__name__}: {exc}"
    try:
        print(f"mdfx: error: {escape_controls(one_line(text, 2000), keep_newlines=False)}", file=sys.stderr)
    except (BrokenPipeError, OSError):
        pass
    return 1


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def entry() -> None:
    """The console script: exit with main()'s status, quietly on a closed pipe."""
    status = main()
    try:
        if sys.stdout is not None:  # None when started with stdout closed (>&-)
            sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(status)


if __name__ == "__main__":
    entry()
