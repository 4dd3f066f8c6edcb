"""Parity with PsyNeuLink 0.21: the numbers in tests/pnl_reference/expected.json.

expected.json was produced by running PsyNeuLink (tests/pnl_reference/make_expected.py;
PsyNeuLink is not needed to run these tests). Each case is rebuilt here with
``import mdfx as pnl`` and must reproduce PsyNeuLink's run() outputs and the
matrices its PyTorch-mode learn() trained, in every learning mode of mdfx.
Cases where PsyNeuLink 0.21 itself is broken are listed in KNOWN_PNL_BUGS with
the reason; mdfx computes those correctly instead (see the README).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import CORPUS, assert_close

import mdfx as pnl

HERE = Path(__file__).resolve().parent / "pnl_reference"
EXPECTED = json.loads((HERE / "expected.json").read_text())
CASES = {c["name"]: c for c in EXPECTED["cases"]}

#: PsyNeuLink 0.21 bugs (measured; see facts.md): mdfx does not reproduce these numbers.
KNOWN_PNL_BUGS = {
    "fn_logistic_x0": "PsyNeuLink's PyTorch forward ignores Logistic's x_0, its run() does not",
    "fn_tanh_params": "PsyNeuLink's PyTorch forward ignores Tanh's scale, x_0 and bias/offset",
    "fn_relu_gain": "PsyNeuLink's PyTorch forward does not multiply ReLU's leak by gain",
    "fn_exponential": "PsyNeuLink's PyTorch mode raises TypeError for Exponential",
    "fn_softmax_ce": "PsyNeuLink's CROSS_ENTROPY is identically 0 (class dim of size 1): nothing learns",
    "loss_cross_entropy": "PsyNeuLink's CROSS_ENTROPY is identically 0 (class dim of size 1): nothing learns",
    "loss_cross_entropy_linear": "PsyNeuLink's CROSS_ENTROPY is identically 0 (class dim of size 1)",
    "loss_nll": "PsyNeuLink's NLL raises a target-shape RuntimeError",
}
#: The relative tolerance of parity; PsyNeuLink and mdfx should agree to ~1e-12.
RTOL = 1e-9
ATOL = 1e-12


def modes() -> list[pnl.ExecutionMode]:
    out = [pnl.ExecutionMode.PyTorch, pnl.ExecutionMode.Python]
    try:
        import mdfx.runners.llvm  # noqa: F401

        out.append(pnl.ExecutionMode.LLVMRun)
    except ImportError:
        pass
    return out


def build(case: dict[str, Any]) -> tuple[pnl.AutodiffComposition, dict[str, Any]]:
    """The case's network, written as a PsyNeuLink user would with ``import mdfx as pnl``."""
    net = case["network"]
    mechs = {}
    for node in net["nodes"]:
        fn_class = getattr(pnl, node["function"]["name"])
        mechs[node["name"]] = pnl.TransferMechanism(
            input_shapes=node["size"], function=fn_class(**node["function"]["params"]), name=node["name"])
    settings = {k: v for k, v in case["composition"].items() if v is not None}
    if "loss_spec" in settings:
        settings["loss_spec"] = getattr(pnl.Loss, settings["loss_spec"])
    comp = pnl.AutodiffComposition(name=case["name"], **settings)
    for name in net["nodes"]:
        comp.add_node(mechs[name["name"]])
    for p in net["projections"]:
        matrix = None if p.get("matrix_spec") == "pnl_default" else np.array(p["matrix"])
        comp.add_projection(pnl.MappingProjection(matrix=matrix, name=p["name"], learnable=p["learnable"]),
                            mechs[p["sender"]], mechs[p["receiver"]])
    return comp, mechs


def by_node(mechs: dict, data: dict[str, Any]) -> dict:
    return {mechs[name]: value for name, value in data.items()}


def check_run(comp: pnl.AutodiffComposition, expected: dict, what: str) -> None:
    got = comp.results[-len(expected["results"]):]
    for t, (g, e) in enumerate(zip(got, expected["results"], strict=True)):
        for k, (gi, ei) in enumerate(zip(g, e, strict=True)):
            assert_close(gi, ei, rtol=RTOL, atol=ATOL, what=f"{what}: trial {t}, output {k}")


def learn(comp: pnl.AutodiffComposition, mechs: dict, args: dict, mode: pnl.ExecutionMode) -> Any:
    kwargs = {k: v for k, v in args.items() if k not in ("inputs", "targets", "np_seed")}
    if "np_seed" in args:
        np.random.seed(args["np_seed"])  # PsyNeuLink shuffles with numpy's global RNG
    return comp.learn(inputs=by_node(mechs, args["inputs"]), targets=by_node(mechs, args["targets"]),
                      execution_mode=mode, **kwargs)


PARITY = [name for name, c in CASES.items() if "run_after" in c["results"] and name not in KNOWN_PNL_BUGS]


@pytest.mark.parametrize("mode", modes(), ids=lambda m: m.name)
@pytest.mark.parametrize("name", PARITY)
def test_learn_matches_psyneulink(name: str, mode: pnl.ExecutionMode) -> None:
    case = CASES[name]
    comp, mechs = build(case)
    res = case["results"]
    comp.run(inputs=by_node(mechs, case["learn"]["inputs"]))
    check_run(comp, res["run_before"], "run() before learning")
    returned = learn(comp, mechs, case["learn"], mode)
    expected = res["learn"]
    for p in comp.projections:
        assert_close(p.parameters.matrix.get(comp), expected["trained_matrices"][p.name], rtol=RTOL, atol=ATOL,
                     what=f"{name} [{mode.name}]: trained {p.name}")
    assert_close(comp.losses, np.ravel(expected["torch_losses"]), rtol=RTOL, atol=ATOL,
                 what=f"{name} [{mode.name}]: loss of each minibatch (PsyNeuLink's torch_losses)")
    if len(expected["return"]) == 1 or len({len(r) for r in expected["return"]}) == 1:
        assert_close(np.array(returned, dtype=float), expected["return"], rtol=RTOL, atol=ATOL,
                     what=f"{name}: learn() returns the last trial's outputs")
    for i, extra in enumerate(case.get("extra_learn_calls", [])):
        learn(comp, mechs, extra, mode)
        for p in comp.projections:
            assert_close(p.matrix, res[f"learn_extra_{i}"]["trained_matrices"][p.name], rtol=RTOL, atol=ATOL,
                         what=f"{name} [{mode.name}]: learn() call {i + 2}, {p.name}")
    comp.run(inputs=by_node(mechs, case["learn"]["inputs"]))
    after = res["run_after"]
    check_run(comp, after.get("rebuilt_with_trained_matrices", after), "run() after learning")


@pytest.mark.parametrize("name", [n for n in CASES if "mdf_roundtrip_run" in CASES[n]["results"]])
def test_psyneulink_mdf_export_loads_and_runs_like_psyneulink(name: str) -> None:
    """PsyNeuLink's own MDF file of the case, read by our psyneulink dialect, runs as PsyNeuLink runs it."""
    path = HERE / "mdf" / f"{name}.json"
    if not path.exists():
        pytest.skip(f"no MDF export stored for {name}")
    case = CASES[name]
    comp = pnl.load(path)
    assert [n.name for n in comp.nodes] == [n["name"] for n in case["network"]["nodes"]]
    inputs = {n: case["learn"]["inputs"][n.name] for n in comp.get_nodes_by_role(pnl.NodeRole.INPUT)}
    comp.run(inputs=inputs)
    check_run(comp, case["results"]["run_before"], f"{name}: run() of PsyNeuLink's MDF")


def test_l0_is_refused_like_psyneulink() -> None:
    with pytest.raises(pnl.UnsupportedError) as err:
        build(CASES["loss_l0"])
    assert str(err.value).startswith("Loss.L0 is not supported for learning"), str(err.value)


@pytest.mark.parametrize("name", sorted(KNOWN_PNL_BUGS))
def test_known_psyneulink_bugs_are_trained_correctly_instead(name: str) -> None:
    """Where PsyNeuLink is broken, mdfx's torch training equals its own numpy spec (and learns)."""
    case = CASES[name]
    results = {}
    for mode in (pnl.ExecutionMode.PyTorch, pnl.ExecutionMode.Python):
        comp, mechs = build(case)
        learn(comp, mechs, case["learn"], mode)
        results[mode] = comp
    torch_comp, ref_comp = results[pnl.ExecutionMode.PyTorch], results[pnl.ExecutionMode.Python]
    for p, q in zip(torch_comp.projections, ref_comp.projections, strict=True):
        assert_close(p.matrix, q.matrix, rtol=1e-10, atol=1e-13, what=f"{name}: {p.name} torch vs numpy")
    initial = {p["name"]: np.array(p["matrix"]) for p in case["network"]["projections"]}
    moved = [not np.allclose(p.matrix, initial[p.name]) for p in torch_comp.projections]
    assert any(moved), f"{name}: nothing was learned"


CORPUS_EXPECTED = json.loads((HERE / "corpus_expected.json").read_text())["cases"]


@pytest.mark.skipif(not (CORPUS / "psyneulink").exists(), reason="../shared/corpus not present")
@pytest.mark.parametrize("mode", modes(), ids=lambda m: m.name)
@pytest.mark.parametrize("case", CORPUS_EXPECTED, ids=lambda c: c["file"])
def test_psyneulink_corpus_files_run_and_train_as_in_psyneulink(case: dict, mode: pnl.ExecutionMode) -> None:
    """The MDF files PsyNeuLink 0.21 wrote (../shared/corpus/psyneulink): numbers from PsyNeuLink itself."""
    comp = pnl.load(CORPUS / "psyneulink" / case["file"])
    inp = comp.get_nodes_by_role(pnl.NodeRole.INPUT)[0]
    out = comp.get_nodes_by_role(pnl.NodeRole.OUTPUT)[0]
    comp.run(inputs={inp: case["inputs"]})
    check_run(comp, {"results": case["run_results"]}, f"{case['file']}: run()")
    comp.learn(inputs={inp: case["inputs"]}, targets={out: case["targets"]}, epochs=case["epochs"],
               execution_mode=mode)
    for p in comp.projections:
        assert_close(p.matrix, case["trained_matrices"][p.name], rtol=RTOL, atol=ATOL,
                     what=f"{case['file']} [{mode.name}]: trained {p.name}")
