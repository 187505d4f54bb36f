"""The command line: every command registered (a broken import is an error, not a missing
command), and the exit codes defined once, in installer.errors."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from installer import cli, errors
from installer.errors import (
    EXIT_BAD_OPTIONS,
    EXIT_INTERRUPTED,
    EXIT_OWN_ERROR,
    ChatalotError,
    InventoryError,
    UsageError,
)

PACKAGE = Path(cli.__file__).resolve().parent


def test_every_command_module_is_registered() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = list(getattr(sub, "choices", {}))
    assert names == ["apply", "inventory", "tune", "migrate", "verify", "status", "upgrade",
                     "backup", "backups", "restore", "psql"]
    assert {m.rsplit(".", 1)[1] for m in cli.COMMAND_MODULES} == set(
        p.stem for p in (PACKAGE / "commands").glob("*.py")) - {"__init__", "targets", "rollout"}


def test_a_broken_command_import_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """No command silently vanishes from the parser because its module does not import."""
    real = importlib.import_module

    def broken(name: str, package: str | None = None) -> object:
        if name == "installer.commands.status":
            raise ModuleNotFoundError("No module named 'something_missing'")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="something_missing"):
        cli.build_parser()


def test_exit_codes_are_defined_only_in_errors() -> None:
    """Every `EXIT_...` constant of the tool's own lives in installer/errors.py; the host-side
    scripts' codes (the login check's EXIT_BAD_ENV, the lock's) are not the tool's."""
    host_side = {"EXIT_BAD_ENV", "EXIT_MARKER"}
    found: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, ast.AnnAssign) else [])
            for t in targets:
                for name in ([t] if isinstance(t, ast.Name) else
                             t.elts if isinstance(t, ast.Tuple) else []):
                    if (isinstance(name, ast.Name) and re.fullmatch(r"EXIT_[A-Z_]+", name.id)
                            and name.id not in host_side):
                        found.append(f"{path.relative_to(PACKAGE)}:{name.id}")
    assert found == []
    codes = {n: getattr(errors, n) for n in dir(errors) if n.startswith("EXIT_")}
    assert codes == {"EXIT_OK": 0, "EXIT_OWN_ERROR": 1, "EXIT_FAILED": 2, "EXIT_UNREACHABLE": 4,
                     "EXIT_BAD_OPTIONS": 5, "EXIT_INTERRUPTED": 99}


@pytest.mark.parametrize(("raised", "code"), [
    (UsageError("bad option"), EXIT_BAD_OPTIONS),
    (InventoryError("hosts.ini", 3, "broken line"), EXIT_OWN_ERROR),
    (ChatalotError("something of our own"), EXIT_OWN_ERROR),
    (KeyboardInterrupt(), EXIT_INTERRUPTED),
])
def test_main_maps_errors_to_exit_codes(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str],
                                        raised: BaseException, code: int) -> None:
    def fail(args: object) -> int:
        raise raised

    from installer.commands import tune

    monkeypatch.setattr(tune, "run", fail)
    assert cli.main(["tune", "--memory", "4GB", "--cpus", "2"]) == code
    err = capsys.readouterr().err
    if isinstance(raised, InventoryError):
        assert "hosts.ini:3: broken line" in err
