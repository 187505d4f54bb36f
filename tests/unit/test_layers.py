"""Imports inside installer/ only point down the layers (docs/architecture.md).

Each module belongs to the unit with the longest matching prefix in LAYERS; a module may
import its own unit and the units of lower layers, never a unit of its own layer or above.
Imports inside functions and under TYPE_CHECKING count too: they are dependencies all
the same. The walk reads the source with `ast`; nothing is imported.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "installer"

#: bottom to top; units of one layer may not import each other
LAYERS: list[list[str]] = [
    ["installer", "installer.errors", "installer.resources", "installer.sqltext"],
    ["installer.transport"],
    ["installer.desired", "installer.sqlx"],
    ["installer.host.sections"],
    ["installer.host.facts", "installer.host.applogin"],
    ["installer.host.distros"],
    ["installer.host"],
    ["installer.steps"],
    ["installer.fleet"],
    ["installer.verify"],
    ["installer.commands"],
    ["installer.cli"],
    ["installer.__main__"],
]

#: the base layer's modules are one unit: they may import each other
BASE = set(LAYERS[0])

#: imports the layers would allow but the design does not: verify reads the host and
#: computes what it should be as apply does (host/, desired/), never through apply's steps
FORBIDDEN: dict[str, set[str]] = {"installer.verify": {"installer.steps"}}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> tuple[int, str]:
    """(layer index, unit) of `module`: the longest unit that is it or a parent of it."""
    best: tuple[int, str] | None = None
    for index, units in enumerate(LAYERS):
        for unit in units:
            if (module == unit or module.startswith(unit + ".")) and (
                    best is None or len(unit) > len(best[1])):
                best = (index, unit)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    if best[1] == "installer" and module != "installer":
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return best


def imports_of(path: Path, module: str, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, imported module) for every `installer...` import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:  # `from installer.x import y`: y may be a module
                candidate = f"{base}.{alias.name}"
                found.append((node.lineno, candidate if _is_module(candidate, root) else base))
    return [(line, m) for line, m in found if m == "installer" or m.startswith("installer.")]


def _is_module(dotted: str, root: Path) -> bool:
    rel = Path(*dotted.split("."))
    return ((root.parent / rel).with_suffix(".py").is_file()
            or (root.parent / rel / "__init__.py").is_file())


def violations(root: Path = PACKAGE) -> list[str]:
    bad: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        layer, unit = unit_of(module)
        for line, imported in imports_of(path, module, root):
            their_layer, their_unit = unit_of(imported)
            if their_unit in FORBIDDEN.get(unit, set()):
                bad.append(f"{path.relative_to(root.parent)}:{line}: {module} imports "
                           f"{imported} ({unit} never imports {their_unit})")
                continue
            if their_unit == unit or {unit, their_unit} <= BASE:
                continue
            if their_layer >= layer:
                where = "the same layer" if their_layer == layer else "a higher layer"
                bad.append(f"{path.relative_to(root.parent)}:{line}: {module} imports "
                           f"{imported} ({their_unit}, {where})")
    return bad


def test_every_module_is_in_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        unit_of(module_name(path))


def test_imports_point_down() -> None:
    assert violations() == []


@pytest.mark.parametrize(("module", "source", "imported"), [
    # the two upward imports the layout once had
    ("installer.host.state", "from installer.steps.base import Step\n", "installer.steps.base"),
    ("installer.verify.plugin", "from installer.commands.targets import add_target_options\n",
     "installer.commands.targets"),
    # verify reaching apply's steps (as it once did for the settings)
    ("installer.verify.observe", "from installer.steps.server import ConfigureSettings\n",
     "installer.steps.server"),
    # a sibling of the same layer
    ("installer.desired.config", "from installer.sqlx import rules\n", "installer.sqlx.rules"),
])
def test_an_upward_import_is_caught(tmp_path: Path, module: str, source: str,
                                    imported: str) -> None:
    """The walk over a copy of the package with one bad import added finds exactly it."""
    copy = tmp_path / "installer"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / Path(*module.split(".")[1:]).with_suffix(".py")
    target.write_text(target.read_text(encoding="utf-8") + source, encoding="utf-8")
    found = violations(copy)
    assert len(found) == 1 and module in found[0] and imported in found[0], found
