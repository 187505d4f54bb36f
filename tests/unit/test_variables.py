"""The inventory variables are declared once (installer/desired/variables.py) and the
documentation, the example inventory and the code that reads them all agree with it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from installer.desired.variables import VARIABLES, by_name, markdown_table, names

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "inventory.md"
EXAMPLE = ROOT / "inventory.example.ini"
CONFIG = ROOT / "installer" / "desired" / "config.py"
#: the name a mapping of inventory variables goes by where it is read
HOSTVARS = "hostvars"


def _doc_table() -> list[str]:
    """The lines of docs/inventory.md's variables table (header row included)."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| variable |"))
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return lines[start:end]


def _is_hostvars(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == HOSTVARS


def _str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def hostvars_reads(source: str) -> set[str]:
    """Names read from `hostvars` in Python source: `hostvars.get("x")`, `hostvars["x"]`,
    `"x" in hostvars`, and helpers called as `_opt_int(hostvars, "x", ...)`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "get" and _is_hostvars(
                    func.value) and node.args:
                name = _str(node.args[0])
                if name is not None:
                    found.add(name)
            for a, b in zip(node.args, node.args[1:], strict=False):
                name = _str(b)
                if _is_hostvars(a) and name is not None:
                    found.add(name)
        elif isinstance(node, ast.Subscript) and _is_hostvars(node.value):
            name = _str(node.slice)
            if name is not None:
                found.add(name)
        elif isinstance(node, ast.Compare) and any(_is_hostvars(c) for c in node.comparators):
            name = _str(node.left)
            if name is not None:
                found.add(name)
    return found


def test_hostvars_reads_finds_every_form() -> None:
    source = (
        "def f(hostvars):\n"
        "    a = hostvars.get('a', 1)\n"
        "    b = hostvars['b']\n"
        "    if 'c' in hostvars: pass\n"
        "    d = _opt_int(hostvars, 'd', 1, 2)\n"
        "    e = _abs_path(hostvars, key, 'not-a-name')\n"
        "    other.get('f')\n"
    )
    assert hostvars_reads(source) == {"a", "b", "c", "d"}


def test_names_are_unique_and_aliases_resolve() -> None:
    every = [n for v in VARIABLES for n in v.names]
    assert len(every) == len(set(every))
    assert by_name("ansible_become_pass").name == "ansible_become_password"
    assert by_name("ansible_ssh_pass").name == "ansible_password"


def test_the_documented_table_is_the_declared_one() -> None:
    table = _doc_table()
    documented = [re.fullmatch(r"\| `([a-z_]+)` \|.*", row) for row in table[2:]]
    assert all(documented), "every row of docs/inventory.md's table starts with `name`"
    assert [m.group(1) for m in documented if m] == list(names())
    assert "\n".join(table) == markdown_table(), (
        "docs/inventory.md's variables table differs from "
        "installer.desired.variables.markdown_table(): paste its output there")


def test_the_example_inventory_names_every_variable() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = [n for v in VARIABLES for n in v.names
               if not re.search(rf"(?<![A-Za-z0-9_]){n}(?![A-Za-z0-9_])", text)]
    assert not missing, f"inventory.example.ini does not mention {missing}"


def test_config_reads_exactly_the_declared_chatalot_variables() -> None:
    read = hostvars_reads(CONFIG.read_text(encoding="utf-8"))
    assert read, "no hostvars read found in installer/desired/config.py"
    declared = {v.name for v in VARIABLES}
    assert read - declared == set(), "read by config.py but not declared in variables.py"
    own = {v.name for v in VARIABLES if not v.connection}
    assert own - read == set(), "declared in variables.py but never read by config.py"


def test_every_connection_variable_read_anywhere_is_declared() -> None:
    declared = {n for v in VARIABLES for n in v.names}
    read: set[str] = set()
    for path in sorted((ROOT / "installer").rglob("*.py")):
        read |= {n for n in hostvars_reads(path.read_text(encoding="utf-8"))
                 if n.startswith("ansible_")}
    assert read, "no ansible_* variable read found under installer/"
    assert read - declared == set(), "ansible_* variables read but not declared"
    connection = {n for v in VARIABLES if v.connection for n in v.names}
    assert connection - read == set(), "ansible_* variables declared but read nowhere"
