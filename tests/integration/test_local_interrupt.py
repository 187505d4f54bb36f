"""Ctrl-C on a real `apply`, and the live view on a real terminal, in local mode.

Three inventory hosts that are all this machine (ansible_connection=local, each with
its own app role and database), run one at a time. The first host's migrations are
a single slow migration (pg_sleep inside sqlx's transaction). While it runs, the
whole process group gets SIGINT, as a terminal's Ctrl-C does, twice: the migration
still commits whole, no other host starts, the recap is printed, exit 99. A rerun
finishes the job and the run after it changes nothing. Needs root (CI runs it).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import REPO, as_postgres_sql, run_apply

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(os.geteuid() != 0, reason="apply on this machine needs root"),
]

HOSTS = ("sigint-a", "sigint-b", "sigint-c")
DBS = tuple(h.replace("-", "_") for h in HOSTS)
SLOW_MIGRATION = """\
CREATE TABLE interrupt_probe (step int);
INSERT INTO interrupt_probe VALUES (1);
SELECT pg_sleep(3);
INSERT INTO interrupt_probe VALUES (2);
"""


def _drop_all() -> None:
    for db in DBS:
        as_postgres_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE);")
        as_postgres_sql(f"DROP ROLE IF EXISTS {db};")


def _inventory(tmp: Path) -> Path:
    slow = tmp / "slow-migrations"
    slow.mkdir(exist_ok=True)
    (slow / "1_slow_probe.sql").write_text(SLOW_MIGRATION)
    lines = ["[local]"]
    for host, db in zip(HOSTS, DBS, strict=True):
        source = slow if host == HOSTS[0] else "none"
        lines.append(f"{host} ansible_connection=local db_name={db} db_user={db} "
                     f"db_env_file={tmp}/{db}.env backup_dir={tmp}/backups "
                     f"migrations_source={source}")
    inv = tmp / "local3.ini"
    inv.write_text("\n".join(lines) + "\n")
    return inv


def _interrupted_apply(inv: Path, report: Path) -> dict[str, Any]:
    """Start apply; 0.5s into the first host's migration, Ctrl-C (SIGINT to the process
    group, as a terminal sends it), and again 0.5s later. Return what happened."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen(
        [sys.executable, "-m", "installer", "apply", "-i", str(inv), "--forks", "1",
         "--json", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        start_new_session=True,  # its own process group, like a shell job
    )
    assert p.stdout is not None and p.stderr is not None
    lines: list[str] = []
    sent: list[float] = []
    deadline = time.monotonic() + 300
    for line in p.stdout:
        lines.append(line)
        if not sent and line.startswith(f"{HOSTS[0]} ") and "TASK [write " in line:
            time.sleep(0.5)  # the migration (pg_sleep(3)) is running now
            os.killpg(p.pid, signal.SIGINT)
            time.sleep(0.5)
            os.killpg(p.pid, signal.SIGINT)
            sent.append(time.monotonic())
        if time.monotonic() > deadline:
            p.kill()
            break
    code = p.wait(timeout=60)
    err = p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    return {"code": code, "stdout": "".join(lines), "stderr": err,
            "sent": bool(sent),
            "doc": json.loads(report.read_text()) if report.exists() else {}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("interrupt")
    _drop_all()
    inv = _inventory(tmp)
    out: dict[str, Any] = {"inv": inv}
    out["interrupted"] = _interrupted_apply(inv, tmp / "interrupted.json")
    out["probe"] = as_postgres_sql("select string_agg(step::text, ',' order by step) "
                                   "from interrupt_probe", DBS[0])
    out["ledger"] = as_postgres_sql("select version, success from _sqlx_migrations", DBS[0])
    out["others"] = as_postgres_sql(
        "select count(*) from pg_roles where rolname in ('sigint_b', 'sigint_c')")
    out["rerun"] = run_apply(inv, tmp / "rerun.json", "--forks", "1")
    # the three hosts share this machine's cluster, and each host rewrites the parts that
    # name it (the drop-in's "# Host:" header, its pg_hba block first): converging is
    # checked on the interrupted host alone
    out["again"] = [run_apply(inv, tmp / f"again{i}.json", "--limit", HOSTS[0])
                    for i in (1, 2)]
    yield out
    _drop_all()


def test_ctrl_c_exits_99_with_the_recap(runs: dict[str, Any]) -> None:
    r = runs["interrupted"]
    assert r["sent"], r["stdout"] + r["stderr"]
    assert r["code"] == 99, r["stdout"] + r["stderr"]
    out = r["stdout"]
    assert (f"INTERRUPTED: no new host starts; waiting for the running steps to end safely: "
            f"{HOSTS[0]} (apply migrations)") in out
    assert "still waiting for the running steps to end safely" in out  # the second Ctrl-C
    assert "PLAY RECAP ****" in out
    recap = out[out.index("PLAY RECAP"):]
    assert f"\n{HOSTS[0]} " in recap and f"\n{HOSTS[1]} " not in recap
    assert f"NOT STARTED (interrupted): {HOSTS[1]}, {HOSTS[2]}" in out
    assert "Traceback" not in out + r["stderr"]


def test_the_running_migration_ended_whole_and_nothing_else_started(
        runs: dict[str, Any]) -> None:
    doc = runs["interrupted"]["doc"]
    assert doc["interrupted"] is True
    first = doc["hosts"][HOSTS[0]]
    assert first["state"] == "stopped" and first["failed"] == 0
    steps = {s["name"]: s for s in first["steps"]}
    assert steps["apply migrations"]["status"] == "changed", steps["apply migrations"]
    assert first["stopped_before"] == "schedule backups"
    for h in HOSTS[1:]:
        assert doc["hosts"][h]["state"] == "not started" and doc["hosts"][h]["steps"] == []
    assert runs["probe"] == "1,2"  # committed whole, after the Ctrl-C
    assert runs["ledger"] == "1|t"
    assert runs["others"] == "0"


def test_a_rerun_finishes_and_then_converges(runs: dict[str, Any]) -> None:
    p, doc = runs["rerun"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert {h: doc["hosts"][h]["state"] for h in HOSTS} == dict.fromkeys(HOSTS, "done")
    assert all(s["status"] in ("ok", "changed", "skipped")
               for h in HOSTS for s in doc["hosts"][h]["steps"])
    for p, _ in runs["again"]:
        assert p.returncode == 0, p.stdout + p.stderr
    assert runs["again"][1][1]["hosts"][HOSTS[0]]["changed"] == 0


def test_live_view_on_a_terminal(runs: dict[str, Any]) -> None:
    """On a pty: one line per host redrawn in place, then the recap; same exit code."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TERM="xterm")
    env.pop("NO_COLOR", None)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    p = subprocess.Popen([sys.executable, "-m", "installer", "apply", "-i", str(runs["inv"]),
                          "--forks", "1"], stdin=subprocess.DEVNULL, stdout=follower,
                         stderr=follower, env=env, cwd=REPO, start_new_session=True)
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            p.kill()
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert p.wait(timeout=60) == 0
    text = b"".join(chunks).decode()
    assert "\x1b[3A\r\x1b[J" in text  # moved up over the three host lines, redrew them
    final = text.split("\x1b[J")[-1]
    for h in HOSTS:
        assert f"\n{h}" in "\n" + final
    assert "PLAY RECAP " + "*" * 109 in text  # as wide as the terminal, as Ansible
    assert "TASK [" not in text  # several hosts: step lines are in the logs, not on screen
