"""The loader fuzz as a measurement: N generated MDF documents and N ONNX graphs, counted.

    python bench/bench_fuzz.py                 # 3000 + 3000 examples (fresh randomness)
    python bench/bench_fuzz.py -n 200 --seed 1 # fewer, reproducible

It drives tests/test_fuzz.py's own generators and feeding code (the same examples the
test draws, loaded, run and trained for an epoch) and counts per example, instead of
stopping at the first failure:

* **tracebacks**: an exception other than mdfx's own escaped (a bug; the test fails on it);
* **wrapped internal exceptions**: an mdfx error whose text wraps a Python error a reader
  tripped on (``malformed model (AttributeError: ...)``, made by ``mdfx.errors.reading``):
  readable, but each distinct raise site is a reader that did not check a field;
* peak RSS of the process.

Each distinct site (file:line of the innermost mdfx frame) is listed with its count.
Exit status 1 when any traceback or wrapped exception was seen.
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def _site(exc: BaseException) -> str:
    """The innermost frame of ``exc``'s traceback inside mdfx (else the innermost one)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/mdfx/" in f.filename] or frames
    if not ours:
        return type(exc).__name__
    f = ours[-1]
    return f"{type(exc).__name__} at {Path(f.filename).relative_to(ROOT) if ROOT in Path(f.filename).parents else f.filename}:{f.lineno} ({f.name})"


class Counts:
    def __init__(self) -> None:
        self.examples = 0
        self.tracebacks: collections.Counter[str] = collections.Counter()
        self.wrapped: collections.Counter[str] = collections.Counter()
        self.wrapped_examples = 0


def _watch_wrapping(counts: Counts, current: dict[str, bool]) -> None:
    """Count what ``mdfx.errors.reading`` wraps: it quotes the internal error through ``one_line``
    (the module global, looked up at call time; other modules hold their own reference)."""
    import mdfx.errors as errors

    plain = errors.one_line

    def one_line(text: object, limit: int = 300) -> str:
        if isinstance(text, errors._MALFORMED) and sys._getframe(1).f_code.co_name == "reading":
            counts.wrapped[_site(text)] += 1
            current["wrapped"] = True
        return plain(text, limit)

    errors.one_line = one_line


def run(kind: str, n: int, seed: int | None, counts: Counts) -> None:
    import test_fuzz as tf
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    current = {"wrapped": False}
    _watch_wrapping(counts, current)
    config = settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))

    def one(call: Any) -> None:
        counts.examples += 1
        current["wrapped"] = False
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - counted: that is the measurement
            counts.tracebacks[_site(exc)] += 1
        counts.wrapped_examples += current["wrapped"]

    if kind == "mdf":
        inner = tf.test_mdf_documents_raise_only_mdfx_errors.hypothesis.inner_test

        @config
        @given(doc=tf.mdf_documents(), how=st.sampled_from(["dict", "json", "yaml"]), data=st.data())
        def drive(doc: dict, how: str, data: Any) -> None:
            one(lambda: inner(doc=doc, how=how, data=data))
    else:
        inner = tf.test_onnx_graphs_raise_only_mdfx_errors.hypothesis.inner_test

        @config
        @given(blob=tf.onnx_models(), data=st.data())
        def drive(blob: bytes, data: Any) -> None:
            one(lambda: inner(blob=blob, data=data))

    if seed is not None:
        drive = hseed(seed)(drive)
    drive()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=3000, help="examples per kind (default 3000)")
    p.add_argument("--seed", type=int, help="hypothesis seed (default: fresh randomness)")
    p.add_argument("--kinds", nargs="+", default=["onnx", "mdf"], choices=["onnx", "mdf"])
    args = p.parse_args(argv)
    import warnings

    warnings.simplefilter("ignore")  # a wild model's overflow is its numbers, not a finding
    total = 0
    for kind in args.kinds:
        counts = Counts()
        start = time.perf_counter()
        run(kind, args.n, args.seed, counts)
        took = time.perf_counter() - start
        total += sum(counts.tracebacks.values()) + counts.wrapped_examples
        print(f"{kind}: {counts.examples} examples in {took:.0f} s: {sum(counts.tracebacks.values())} tracebacks "
              f"({len(counts.tracebacks)} sites), {counts.wrapped_examples} with a wrapped internal exception "
              f"({len(counts.wrapped)} sites)")
        for label, table in (("traceback", counts.tracebacks), ("wrapped", counts.wrapped)):
            for site, count in table.most_common():
                print(f"  {label} {count:5d}  {site}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
