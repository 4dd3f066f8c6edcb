"""Count the attack catalogue's outcomes: clear error / ok / traceback / accepted silently / ...

    .venv/bin/python tests/attack_outcomes.py                    # this checkout
    .venv/bin/python tests/attack_outcomes.py --code /path/to/old/checkout

Each attack of ``tests/test_attacks.py`` runs in its own subprocess (a native crash or a
hang cannot take the count with it) against the mdfx found at ``--code``, and is put in
one class:

* ``clear error``: the mdfx error the catalogue expects, with its message;
* ``other error``: an mdfx error (or a one-line CLI error) with another message: refused,
  but not for the reason the attack is about;
* ``ok``: an attack that must succeed safely did;
* ``traceback``: a Python exception that is not an mdfx error (or the CLI printed one);
* ``accepted silently``: an attack that must be refused was not;
* ``memory bomb``: a capped run ran out of memory instead of being refused;
* ``unsafe result``: an attack that must succeed safely ended in a failed check;
* ``crash`` (killed by a signal) and ``hang`` (over the time limit).

Against an older mdfx the catalogue's newer names (``mdfx.limits``, ``LimitError``) are
stubbed so every attack still runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent

ONE = r"""
import json, re, sys, tempfile, types, contextlib
from pathlib import Path
import mdfx, mdfx.errors
try:
    import mdfx.limits
except ImportError:  # an mdfx from before the limits: stub what the catalogue imports
    stub = types.ModuleType("mdfx.limits")
    stub.set = lambda **kw: contextlib.nullcontext()
    stub.current = lambda: None
    sys.modules["mdfx.limits"] = stub
    mdfx.limits = stub
if not hasattr(mdfx.errors, "LimitError"):
    mdfx.errors.LimitError = type("LimitError", (mdfx.errors.MdfxError,), {})
sys.path.insert(0, TESTS)
import test_attacks as t
attack = t.ATTACKS[INDEX]
def out(kind, detail=""):
    print("OUTCOME " + json.dumps([kind, str(detail)[:300]]), flush=True)
with tempfile.TemporaryDirectory() as tmp:
    try:
        attack.run(Path(tmp))
    except BaseException as exc:
        text = str(exc)
        if isinstance(exc, mdfx.errors.MdfxError) or isinstance(exc, t.CliError):
            # the intended refusal, or an error for another reason (a refusal that is not
            # the attack's, e.g. a CLI failing on a later, unrelated step)
            out("clear error" if re.search(attack.message, text) else "other error", text)
        elif isinstance(exc, t.Bomb):
            name = text.split(":")[0]
            mdfx_errors = {c.__name__ for c in vars(mdfx.errors).values()
                           if isinstance(c, type) and issubclass(c, mdfx.errors.MdfxError)}
            out("memory bomb" if name == "MemoryError" else
                ("clear error" if re.search(attack.message, text) else "other error") if name in mdfx_errors
                else "traceback", text)
        elif isinstance(exc, AssertionError) and "printed a traceback" in text:
            out("traceback", text.splitlines()[-1] if text else "")
        elif isinstance(exc, AssertionError) and "exited 0 (accepted)" in text:
            out("accepted silently", text)
        elif isinstance(exc, AssertionError) and "died" in text:
            out("crash", text)
        elif isinstance(exc, AssertionError):
            out("unsafe result" if attack.error is None else "accepted silently", text)
        else:
            out("traceback", type(exc).__name__ + ": " + text)
    else:
        out("ok" if attack.error is None else "accepted silently")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", default=str(HERE.parent), help="the mdfx checkout to attack")
    parser.add_argument("--timeout", type=int, default=240)
    parser.add_argument("--json", help="also write the outcome of every attack here")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import test_attacks

    env = dict(os.environ, PYTHONPATH=f"{args.code}{os.pathsep}{HERE}", MDFX_ATTACK_CODE=args.code)
    rows = []
    for i, attack in enumerate(test_attacks.ATTACKS):
        code = ONE.replace("TESTS", repr(str(HERE))).replace("INDEX", str(i))
        try:
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                  timeout=args.timeout, cwd=args.code)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("OUTCOME ")), None)
            if line is None:
                kind = "crash" if proc.returncode < 0 else "traceback"
                detail = f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:] }"
            else:
                kind, detail = json.loads(line[len("OUTCOME "):])
        except subprocess.TimeoutExpired:
            kind, detail = "hang", f"over {args.timeout} s"
        rows.append({"attack": attack.name, "kind": attack.kind, "outcome": kind, "detail": detail})
        print(f"{kind:18s} {attack.name}", flush=True)
    counts = Counter(r["outcome"] for r in rows)
    print(f"\n{len(rows)} attacks: " + ", ".join(f"{n} {k}" for k, n in counts.most_common()))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
