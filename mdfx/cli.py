"""``mdfx`` command line: info | run | train | export | validate | convert.

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
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mdfx.errors import DataError, MdfxError

MODES = {"python": "Python", "torch": "PyTorch", "llvm": "LLVMRun", "onnx": "ONNX"}


def read_data(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, targets) by node name; flat files are split later by node role."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            flat = {k: z[k] for k in z.files}
    elif path.suffix.lower() == ".json":
        try:
            flat = json.loads(path.read_text())
        except ValueError as exc:
            raise DataError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(flat, dict):
            raise DataError(f"{path}: expected a JSON object keyed by node name")
    else:
        raise DataError(f"{path}: data files are .json or .npz")
    if "inputs" in flat and isinstance(flat["inputs"], dict):
        return dict(flat["inputs"]), dict(flat.get("targets") or {})
    inputs = {k.split("/", 1)[1]: v for k, v in flat.items() if k.startswith("inputs/")}
    targets = {k.split("/", 1)[1]: v for k, v in flat.items() if k.startswith("targets/")}
    rest = {k: v for k, v in flat.items() if "/" not in k}
    return {**rest, **inputs}, {**rest, **targets}


def _split(net: Any, inputs: dict, targets: dict) -> tuple[dict, dict]:
    """Keep INPUT nodes' entries as inputs and OUTPUT nodes' as targets (flat files hold both)."""
    x = {k: v for k, v in inputs.items() if k in net.inputs or k not in net.outputs}
    t = {k: v for k, v in targets.items() if k in net.outputs or k not in net.inputs}
    return x, t


def cmd_info(args: argparse.Namespace) -> int:
    from mdfx.io import load_net

    net = load_net(args.model)
    if not hasattr(net, "projections"):  # an op graph (foreign MDF, a torch import): its ops and params
        print(f"model {net.name!r} (GraphComposition)")
        print(net)
        return 0
    print(f"model {net.name!r} ({'AutodiffComposition' if net.autodiff else 'Composition'})")
    print("nodes:")
    for n in net.nodes:
        roles = [r for r, names in (("INPUT", net.inputs), ("OUTPUT", net.outputs)) if n.name in names]
        params = ", ".join(f"{k}={v:g}" for k, v in n.params.items())
        bias = f", bias[{n.size}]" if n.bias is not None else ""
        print(f"  {n.name}: size {n.size}, {n.op}({params}){bias}  {' '.join(roles)}")
    print("projections:")
    for p in net.projections:
        flag = "" if p.learnable else "  (fixed)"
        print(f"  {p.name}: {p.sender} -> {p.receiver}, matrix {p.matrix.shape[0]}x{p.matrix.shape[1]}{flag}")
    t = net.training
    print(f"training: loss {t.loss}, optimizer {t.optimizer}, learning_rate {t.learning_rate:g}, "
          f"weight_decay {t.weight_decay:g}")
    return 0


def _comp(model: str, weights: str | None = None) -> Any:
    from mdfx.composition.build import composition_from_net
    from mdfx.composition.graph_model import GraphComposition
    from mdfx.schema.graph import Graph

    loaded = load_with_weights(model, weights)
    return GraphComposition(loaded) if isinstance(loaded, Graph) else composition_from_net(loaded)


def cmd_run(args: argparse.Namespace) -> int:
    from mdfx.composition.enums import ExecutionMode

    comp = _comp(args.model, args.weights)
    net = comp._io()
    inputs, _ = read_data(args.inputs)
    inputs, _ = _split(net, inputs, {})
    comp.run(inputs=inputs, execution_mode=ExecutionMode[MODES[args.mode]])
    outputs = {name: np.array([trial[i] for trial in comp.results]) for i, name in enumerate(net.outputs)}
    _write_outputs(outputs, args.out)
    return 0


def _write_outputs(outputs: dict[str, np.ndarray], out: str | None) -> None:
    if out is None:
        print(json.dumps({k: v.tolist() for k, v in outputs.items()}, indent=1))
        return
    from mdfx.io import atomic_write

    if out.endswith(".npz"):
        def write_npz(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a path
                np.savez(f, **outputs)

        atomic_write(out, write_npz)
    else:
        atomic_write(out, lambda tmp: tmp.write_text(json.dumps({k: v.tolist() for k, v in outputs.items()})))
    print(f"wrote {out}")


def cmd_train(args: argparse.Namespace) -> int:
    from mdfx.composition.enums import ExecutionMode, Loss
    from mdfx.io import save

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
    inputs, targets = _split(net, *read_data(args.data))
    comp.learn(inputs=inputs, targets=targets, epochs=args.epochs, learning_rate=args.lr,
               minibatch_size=args.minibatch_size, randomize_minibatch=args.randomize, seed=args.seed,
               execution_mode=ExecutionMode[MODES[args.mode]], report_progress=not args.quiet)
    losses = comp.losses
    print(f"trained {len(losses)} minibatches; loss {losses[0]:.6g} -> {losses[-1]:.6g}")
    if args.out:
        print(f"wrote {save(comp, args.out)}")
    if args.state_dict:
        print(f"wrote {save(comp, args.state_dict)}")
    if args.plot:
        print(f"wrote {plot_losses(losses, args.plot, title=net.name)}")
    return 0


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
    from mdfx.io import load_net, save, save_mdf

    if not (args.onnx or args.state_dict or args.mdf):
        raise MdfxError("nothing to export: give --onnx FILE, --state-dict FILE and/or --mdf FILE")
    net = load_net(args.model)
    if args.onnx:
        print(f"wrote {save(net, args.onnx, dtype=args.dtype, opset=args.opset)}")
    if args.state_dict:
        print(f"wrote {save(net, args.state_dict)}")
    if args.mdf:
        print(f"wrote {save_mdf(net, args.mdf)}")
    return 0


def load_with_weights(model: str, weights: str | None) -> Any:
    """A model file as a Net; ``weights`` (.pt state_dict or .onnx) fills or replaces its weights."""
    from mdfx.io import load_net, load_state_dict
    from mdfx.schema.dialects.modeci import MissingWeightsError

    try:
        net = load_net(model)
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

    print(f"wrote {save(load_with_weights(args.input, args.weights), args.output)}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from mdfx.io import load_net
    from mdfx.runners import compare

    net = load_net(args.model)
    inputs = None
    if args.inputs:
        inputs, _ = _split(net, *read_data(args.inputs))
    dtypes = [args.dtype] if args.dtype else ["float64", "float32"]
    rows = compare.validate(net, inputs=inputs, trials=args.trials, dtype=dtypes, seed=args.seed)
    print(compare.format_table(rows))
    if args.json:
        from mdfx.io import atomic_write

        atomic_write(args.json, lambda tmp: tmp.write_text(compare.rows_to_json(rows)))
        print(f"wrote {args.json}")
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
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MdfxError as exc:
        print(f"mdfx: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        # Bad paths and bad values given on the command line are user errors too.
        print(f"mdfx: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
