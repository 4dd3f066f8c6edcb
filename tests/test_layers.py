"""The package's layers (DESIGN.md): an import only goes down.

    cli → io / sweep → composition → runners → converters → schema → ops / expr → files / limits / errors

Every module of ``mdfx`` is parsed (``ast``, imports inside functions and under
``TYPE_CHECKING`` included: a lazy import is still a dependency) and each import
of another ``mdfx`` module is checked against the table; the failure lists every
upward import as ``module:line imports target (layer -> layer)``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mdfx"

#: top to bottom; a module may import its own layer and those below it
LAYERS: list[tuple[str, ...]] = [
    ("mdfx", "mdfx.__main__"),  # the public names and ``python -m mdfx``: above everything
    ("mdfx.cli",),
    ("mdfx.io", "mdfx.sweep"),
    ("mdfx.composition",),
    ("mdfx.runners",),
    ("mdfx.converters",),
    ("mdfx.schema",),
    ("mdfx.ops", "mdfx.ops_spatial", "mdfx.recurrence", "mdfx.expr"),
    ("mdfx.files", "mdfx.limits", "mdfx.errors"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of the longest prefix naming ``module``'s layer."""
    best, index = -1, None
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, index = len(name), i
    if index is None:
        raise AssertionError(f"module {module!r} is in no layer of tests/test_layers.py: add it to LAYERS")
    return index


def imports(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, module) of every mdfx module ``path`` (or ``source``, as if it were that file)
    imports, at any depth of the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    text = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mdfx"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "mdfx":
                continue
            for alias in node.names:  # ``from mdfx import ops`` imports the module mdfx.ops
                sub = f"{base}.{alias.name}"
                found.append((node.lineno, sub if _is_module(sub) else base))
    return found


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel.with_suffix(".py")).is_file() or (PACKAGE.parent / rel / "__init__.py").is_file()


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        mine = layer_of(me)
        for line, target in imports(path):
            theirs = layer_of(target)
            if theirs < mine:
                bad.append(f"{me}:{line} imports {target} ({'/'.join(LAYERS[mine])} -> "
                           f"{'/'.join(LAYERS[theirs])}, a higher layer)")
    return bad


def test_no_module_imports_a_higher_layer() -> None:
    bad = upward_imports()
    assert not bad, "upward imports:\n  " + "\n  ".join(bad)


def test_every_module_has_a_layer() -> None:
    modules = [module_name(p) for p in PACKAGE.rglob("*.py")]
    assert len(modules) > 50, modules  # the walk found the package
    for m in modules:
        layer_of(m)


@pytest.mark.parametrize(("source", "flagged"), [
    ("from mdfx.composition.composition import Composition\n", True),
    ("def f():\n    from mdfx.io import save\n", True),  # a lazy import is a dependency too
    ("from mdfx import io\n", True),
    ("from mdfx import ops, limits\nfrom mdfx.schema.graph import Graph\n", False),
    ("from ..cli import main\n", True),  # relative, from mdfx/runners/x.py
])
def test_the_check_flags_upward_imports(source: str, flagged: bool) -> None:
    """The checker itself: a runners module importing upwards is named, one importing down is not."""
    fake = PACKAGE / "runners" / "_layers_probe.py"  # never written: its source is given
    found = [t for _, t in imports(fake, source)]
    bad = [t for t in found if layer_of(t) < layer_of("mdfx.runners._layers_probe")]
    assert bool(bad) == flagged, (source, found, bad)
