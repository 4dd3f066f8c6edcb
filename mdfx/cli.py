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

from mdfx.errors import MdfxError, one_line
from mdfx.files import MDF_SUFFIXES, STATE_DICT_SUFFIXES, read_data

MODES = {"python": "Python", "torch": "PyTorch", "llvm": "LLVMRun", "onnx": "ONNX"}


def _split(net: Any, inputs: dict, targets: dict) -> tuple[dict, dict]:
    """Keep INPUT nodes' entries as inputs and OUTPUT nodes' as targets (flat files hold both)."""
    x = {k: v for k, v in inputs.items() if k in net.inputs or k not in net.outputs}
    t = {k: v for k, v in targets.items() if k in net.outputs or k not in net.inputs}
    return x, t


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
        params = ", ".join(f"{k}={v:g}" for k, v in n.params.items())
        bias = f", bias[{n.size}]" if n.bias is not None else ""
        lines.append(f"  {n.name}: size {n.size}, {n.function}({params}){bias}  {' '.join(roles)}")
    lines.append("projections:")
    for p in net.projections:
        matrix = graph.params[p.name]
        flag = "" if matrix.learnable else "  (fixed)"
        lines.append(f"  {p.name}: {p.sender} -> {p.receiver}, matrix {matrix.shape[0]}x{matrix.shape[1]}{flag}")
    t = graph.training or TrainingSpec()
    lines.append(f"training: loss {t.loss}, optimizer {t.optimizer}, learning_rate {t.learning_rate:g}, "
                 f"weight_decay {t.weight_decay:g}")
    _print("\n".join(lines))
    return 0


def _is_onnx(path: str) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def _comp(model: str, weights: str | None = None) -> Any:
    from mdfx.io import as_composition

    if _is_onnx(model) and not weights:
        from mdfx.io import load

        return load(model)  # a GraphComposition over the file's op graph
    return as_composition(load_with_weights(model, weights))


def cmd_run(args: argparse.Namespace) -> int:
    from mdfx.composition.enums import ExecutionMode

    check_destinations([("--out", args.out, (".json", ".npz"))])
    comp = _comp(args.model, args.weights)
    net = comp._io()
    inputs, _ = read_data(args.inputs, _names(net))
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
        def write_npz(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a path
                np.savez(f, **outputs)

        atomic_write(out, write_npz)
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
    inputs, targets = _split(net, *read_data(args.data, _names(net)))
    # numpy's overflow warnings would interleave with the one error line: a diverged
    # run is reported below, with the epoch and minibatch where it happened.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        comp.learn(inputs=inputs, targets=targets, epochs=args.epochs, learning_rate=args.lr,
                   minibatch_size=args.minibatch_size, randomize_minibatch=args.randomize, seed=args.seed,
                   execution_mode=ExecutionMode[MODES[args.mode]], report_progress=not args.quiet)
    losses = comp.losses
    _check_finite_losses(losses, comp.last_learn.epochs_run if comp.last_learn else 1)
    _print(f"trained {len(losses)} minibatches; loss {losses[0]:.6g} -> {losses[-1]:.6g}")
    if args.out:
        _print(f"wrote {save(comp, args.out)}")
    if args.state_dict:
        _print(f"wrote {save(comp, args.state_dict)}")
    if args.plot:
        _print(f"wrote {plot_losses(losses, args.plot, title=net.name)}")
    return 0


def _check_finite_losses(losses: Sequence[float], epochs: int) -> None:
    """A diverged run (loss NaN or inf) is an error naming where it diverged; nothing is written."""
    bad = next((i for i, loss in enumerate(losses) if not np.isfinite(loss)), None)
    if bad is None:
        return
    per_epoch = max(len(losses) // max(epochs, 1), 1)
    raise MdfxError(f"training diverged: the loss became {losses[bad]!r} at epoch {bad // per_epoch} "
                    f"minibatch {bad % per_epoch} (minibatch {bad} overall); nothing was written. "
                    "Lower the learning rate (--lr) or check the data")


def plot_losses(losses: Sequence[float], path: str | Path, title: str = "") -> Path:
    """A PNG of the loss per minibatch (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mdfx.io import atomic_write

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(losses) + 1), losses)
    ax.set_xlabel("minibatch")
    ax.set_ylabel("loss")
    ax.set_yscale("log" if min(losses) > 0 else "linear")
    ax.set_title(f"training loss {title}".strip())
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)


def cmd_export(args: argparse.Namespace) -> int:
    from mdfx.io import read_model, save, save_mdf, to_graph

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
        _print(f"wrote {save_mdf(net, args.mdf)}")
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
    _print(f"wrote {save(load_with_weights(args.input, args.weights), args.output)}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mdfx", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="nodes, shapes, functions, projections, roles")
    p.add_argument("model")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("run", help="run a model on inputs")
    p.add_argument("model")
    p.add_argument("--inputs", required=True, help=".json or .npz keyed by input node name")
    p.add_argument("--out", help="write outputs to .json or .npz instead of printing")
    p.add_argument("--mode", choices=sorted(MODES), default="python")
    p.add_argument("--weights", help="a .pt state_dict or .onnx file with the model's weights")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("train", help="train a model (MDF or ONNX) on a data file")
    p.add_argument("model")
    p.add_argument("--data", required=True, help=".json or .npz: inputs and targets by node name")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--mode", choices=["torch", "python", "llvm"], default="torch")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's)")
    p.add_argument("--optimizer", choices=["sgd", "adam"])
    p.add_argument("--loss", help="a Loss member, e.g. MSE, CROSS_ENTROPY")
    p.add_argument("--minibatch-size", type=int, default=1)
    p.add_argument("--randomize", action="store_true", help="shuffle trials each epoch")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", help="write the trained model (.json, .yaml or .onnx)")
    p.add_argument("--state-dict", help="write the trained weights as a torch state_dict (.pt)")
    p.add_argument("--plot", help="write the loss curve as a PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--weights", help="a .pt state_dict or .onnx file with the model's weights")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="write ONNX, state_dict and/or MDF")
    p.add_argument("model")
    p.add_argument("--onnx")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="default: an ONNX file's own dtype; float32 for other models")
    p.add_argument("--state-dict")
    p.add_argument("--mdf")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("convert", help="convert between formats by suffix (.json/.yaml/.onnx/.pt)")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--weights", help="a .pt state_dict (or, for MDF written without weights, an .onnx "
                   "file) to load into the model first")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("validate", help="every runner against the numpy reference, one table")
    p.add_argument("model")
    p.add_argument("--inputs")
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--dtype", choices=["float32", "float64"], help="default: both")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the table as JSON")
    p.set_defaults(func=cmd_validate)

    from mdfx.sweep import add_parser as add_sweep_parser  # `mdfx sweep` lives beside its code

    add_sweep_parser(sub)
    return parser


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


def _print(text: str) -> None:
    if sys.stdout is not None:  # stdout closed (>&-): the command still runs, silently
        print(escape_controls(text), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
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
