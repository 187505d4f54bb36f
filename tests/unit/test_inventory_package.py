"""installer.fleet.inventory as a package: its public API and the direction of its imports."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import installer.fleet.inventory as inventory

PACKAGE = Path(inventory.__file__).parent

#: Each module may import only modules before it (the order of the package docstring).
LAYERS = ["values", "vault", "addresses", "ranges", "patterns", "output", "model", "data",
          "varsfiles", "extravars", "yamlinv", "ini"]

#: What the rest of the project imports from installer.fleet.inventory.
PUBLIC = {
    "INTERNAL_VARS",
    "Group",
    "Host",
    "Inventory",
    "InventoryError",
    "UntrustedStr",
    "jsonable",
    "load_inventory",
    "localhost_inventory",
    "parse_inventory",
}


def test_public_api() -> None:
    assert set(inventory.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(inventory, name) is not None


def test_every_module_is_layered() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(LAYERS)
    for name in LAYERS:
        module = importlib.import_module(f"installer.fleet.inventory.{name}")
        assert module.__doc__, f"{name} has no docstring"
        for exported in module.__all__:
            assert hasattr(module, exported), f"{name}.__all__ names a missing {exported}"


def test_imports_point_one_way() -> None:
    prefix = "installer.fleet.inventory."
    for position, name in enumerate(LAYERS):
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        imported = {
            node.module.removeprefix(prefix)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(prefix)
        }
        allowed = set(LAYERS[:position])
        assert imported <= allowed, f"{name} imports {sorted(imported - allowed)}"
        assert not any(
            isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree)
        ), f"{name} uses a relative import"
