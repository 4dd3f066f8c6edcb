"""The README is a front page and its links, like the manual's, point at files that exist.

The manual itself (docs/) is built by `mkdocs build --strict` in the test command, which
fails on a broken link inside docs/; the README lies outside docs/, so it is checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _relative_links(text: str) -> list[str]:
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+://", t)]


def test_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the front page keeps to 200 (move detail to docs/)"


def test_readme_links_resolve() -> None:
    links = _relative_links((ROOT / "README.md").read_text(encoding="utf-8"))
    assert links, "the README links the manual; no relative link was found"
    missing = [t for t in links if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_every_doc_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    absent = [p for p in pages if p not in nav]
    assert not absent, f"docs pages missing from mkdocs.yml's nav: {absent} (nav: {nav!r})"


def test_graph_path_example_agrees_across_backends() -> None:
    """examples/graph_path.py is the one-page tour; every diff it prints must be at rounding level."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    pytest.importorskip("llvmlite")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "graph_path.py")], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    diffs = [float(line.rsplit(":", 1)[1]) for line in proc.stdout.splitlines() if "max |diff|" in line]
    assert len(diffs) == 4, proc.stdout
    assert max(diffs) < 1e-12, proc.stdout
    assert "FAIL" not in proc.stdout, proc.stdout
