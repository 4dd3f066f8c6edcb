"""PsyNeuLink's own numbers for the MDF files it wrote in ../shared/corpus/psyneulink/.

Run with an interpreter that has psyneulink 0.21 (see README.md here):

    /work/pnlvenv/bin/python tests/pnl_reference/make_corpus_expected.py

PsyNeuLink reads each file back (``generate_script_from_mdf``), runs it on seeded
inputs and trains it for a few epochs in PyTorch mode; the inputs, run() results,
targets and trained matrices go to ``corpus_expected.json``, which
``tests/test_pnl_parity.py`` checks mdfx against.
"""

import json
import re
import warnings
from pathlib import Path

import numpy as np
import psyneulink as pnl

warnings.simplefilter("ignore")
HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[2] / "shared" / "corpus" / "psyneulink"
FILES = ["seed_untrained_pnl_edges.json", "xor_untrained_pnl_edges.json"]


def load(path: Path) -> pnl.Composition:
    namespace: dict = {}
    exec(pnl.generate_script_from_mdf(path.read_text()), namespace)  # our own trusted corpus file
    return [v for v in namespace.values() if isinstance(v, pnl.Composition)][-1]


def case(name: str) -> dict:
    rng = np.random.default_rng(0)
    comp = load(CORPUS / name)
    inp = comp.get_nodes_by_role(pnl.NodeRole.INPUT)[0]
    out = comp.get_nodes_by_role(pnl.NodeRole.OUTPUT)[0]
    x = rng.uniform(-1, 1, (4, inp.defaults.variable.shape[-1]))
    t = rng.uniform(0, 1, (4, out.defaults.variable.shape[-1]))
    comp.run(inputs={inp: x})
    run = [[np.asarray(o).tolist() for o in r] for r in comp.results]
    learner = load(CORPUS / name)  # a fresh copy: run() state does not touch learning
    li, lo = (learner.get_nodes_by_role(r)[0] for r in (pnl.NodeRole.INPUT, pnl.NodeRole.OUTPUT))
    learner.learn(inputs={li: x}, targets={lo: t}, epochs=5, execution_mode=pnl.ExecutionMode.PyTorch)
    # PsyNeuLink renames the second copy's projections "<name>-1": use the file's names
    trained = {re.sub(r"-\d+$", "", p.name): np.asarray(p.parameters.matrix.get(learner)).tolist()
               for p in learner.projections if "dummy" not in p.name and p.sender.owner in learner.nodes
               and p.receiver.owner in learner.nodes and "TARGET" not in p.sender.owner.name
               and "LOSS" not in p.receiver.owner.name}
    return {"file": name, "inputs": x.tolist(), "run_results": run, "targets": t.tolist(), "epochs": 5,
            "trained_matrices": trained}


if __name__ == "__main__":
    out = {"generator": "tests/pnl_reference/make_corpus_expected.py", "psyneulink_version": pnl.__version__,
           "cases": [case(name) for name in FILES]}
    (HERE / "corpus_expected.json").write_text(json.dumps(out, indent=1))
    print("wrote", HERE / "corpus_expected.json")
