"""Inventory host names full of shell and path syntax, on this machine's cluster.

Four names (`x;touch${IFS}/tmp/...`, `$(touch ...)`, a backquoted command, `../../x`), each
an app of this machine's cluster (its own database, role and env file), provisioned by one
real `apply --log-dir`: every host succeeds, no file is created by a name (the marker files
do not exist, nothing appears beside or above the log directory), the log files have
sanitised names inside the log directory, and the rerun changes nothing. Local mode: needs
root (CI runs it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import REPO, as_postgres_sql, cli, remove_hba_block

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(os.geteuid() != 0, reason="apply on this machine needs root"),
]

MARKS = ("/tmp/chatalot-hostile-semicolon", "/tmp/chatalot-hostile-dollar",
         "/tmp/chatalot-hostile-backquote")
NAMES = (f"x;touch${{IFS}}{MARKS[0]}", f"$(touch${{IFS}}{MARKS[1]})",
         f"`touch${{IFS}}{MARKS[2]}`", "../../x")
APPS = tuple(f"hostile_name_{i}" for i in range(len(NAMES)))


def _drop() -> None:
    for app in APPS:
        as_postgres_sql(f"DROP DATABASE IF EXISTS {app} WITH (FORCE);")
        as_postgres_sql(f"DROP ROLE IF EXISTS {app};")
        remove_hba_block(app, app)


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hostile-names")
    work = tmp / "a" / "b"
    work.mkdir(parents=True)
    for m in MARKS:
        Path(m).unlink(missing_ok=True)
    _drop()
    lines = ["[local]"]
    for name, app in zip(NAMES, APPS, strict=True):
        lines.append(f"{name} ansible_connection=local db_name={app} db_user={app} "
                     f"db_env_file={tmp}/{app}.env migrations_source=none")
    inv = work / "hosts.ini"
    inv.write_text("\n".join(lines) + "\n")
    logs = work / "logs"
    before = sorted(str(p) for p in tmp.rglob("*"))
    out: dict[str, Any] = {"tmp": tmp, "work": work, "logs": logs, "before": before}
    out["run"] = cli("apply", "-i", str(inv), "--log-dir", str(logs), "--json",
                     str(work / "run.json"), "--forks", "1")
    out["doc"] = json.loads((work / "run.json").read_text())
    out["rerun"] = cli("apply", "-i", str(inv), "--forks", "1")
    out["after"] = sorted(str(p) for p in tmp.rglob("*"))
    try:
        yield out
    finally:
        _drop()


def test_every_hostile_name_is_provisioned(named: dict[str, Any]) -> None:
    p = named["run"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert list(named["doc"]["hosts"]) == list(NAMES)
    assert all(h["state"] == "done" for h in named["doc"]["hosts"].values())
    rerun = named["rerun"]
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert rerun.stdout.count("changed=0") == len(NAMES)


def test_no_name_ran_a_command_or_made_a_file(named: dict[str, Any]) -> None:
    for m in MARKS:
        assert not Path(m).exists(), m
    new = set(named["after"]) - set(named["before"])
    work, logs = str(named["work"]), str(named["logs"])
    allowed = {work + "/run.json", logs}
    strays = [p for p in new if p not in allowed and not p.startswith(logs + "/")
              and not p.endswith(".env")]
    assert strays == []
    assert not (REPO / ".." / ".." / "x").resolve().exists()  # `../../x` from the cwd


def test_log_files_have_sanitised_names_inside_the_log_dir(named: dict[str, Any]) -> None:
    files = sorted(p for p in named["logs"].rglob("*") if p.is_file())
    assert len(files) == len(NAMES), files
    for f in files:
        assert f.parent == named["logs"]
        assert not set(f.name) & set(";$`()/ "), f.name
