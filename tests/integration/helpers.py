"""Running the real command line, and asking the real server, from tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def cli(
    *args: str, stdin: str | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """Run `chatalot-db ARGS` (as `python -m installer`) and capture its output."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "installer", *args], input=stdin, capture_output=True, text=True,
        timeout=timeout, env=env, cwd=REPO, check=False,
    )


def apply(*args: str, report: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    p = cli("apply", "--json", str(report), *args)
    doc: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    return p, doc


def as_postgres_sql(sql: str, database: str = "postgres") -> str:
    """Run SQL on this machine's cluster as the postgres superuser; return its output."""
    p = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1",
         "-d", database], input=sql, capture_output=True, text=True, check=True, cwd="/",
    )
    return p.stdout.strip()


def inventory(bed: Any, path: Path, users: dict[str, str], known_hosts: Path | None = None,
              **extra: str) -> Path:
    """An INI inventory for test-bed hosts, with the SSH user per host and extra [db:vars];
    the bundled migrations unless `migrations_source` is given (the tests count on its 52
    migrations; the tool's default is none)."""
    extra = {"migrations_source": "bundled", **extra}
    kh = known_hosts or bed.known_hosts_path
    lines = ["[db]"]
    for name, user in users.items():
        lines.append(f"{name} ansible_host={bed.hosts[name].address} ansible_user={user}")
    lines += ["[db:vars]", f"ansible_ssh_private_key_file={bed.key_path}",
              f"ansible_ssh_common_args='-o UserKnownHostsFile={kh}'"]
    lines += [f"{k}={v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_apply(inv: Path, report: Path, *args: str, stdin: str | None = None
              ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`chatalot-db apply -i INV --json REPORT ARGS`: the process and the parsed report."""
    return run_reported("apply", inv, report, *args, stdin=stdin)


def run_reported(command: str, inv: Path, report: Path, *args: str, stdin: str | None = None
                 ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`chatalot-db COMMAND -i INV --json REPORT ARGS`: the process and the parsed report
    (empty when the command wrote none)."""
    if report.exists():
        report.unlink()
    p = cli(command, "-i", str(inv), "--json", str(report), *args, stdin=stdin)
    doc: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    return p, doc


def drop_app(name: str) -> None:
    """Drop a test's own database and role of that name (if any), and the nightly backup
    entry apply scheduled for it on this machine (cron: no systemd here)."""
    as_postgres_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")
    as_postgres_sql(f"DROP ROLE IF EXISTS {name};")
    Path(f"/etc/cron.d/chatalot-db-backup-{name}").unlink(missing_ok=True)


def fresh_app(name: str, password: str) -> None:
    """A new login role `name` (no other powers, `password`) owning a new database `name`."""
    drop_app(name)
    as_postgres_sql(f"CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                    f"PASSWORD '{password.replace(chr(39), chr(39) * 2)}';")
    as_postgres_sql(f"CREATE DATABASE {name} OWNER {name};")


#: where the session's test bed lives; modules with hosts of their own add a suffix
TESTBED_DIR = os.environ.get("CHATALOT_TESTBED_DIR", "/var/tmp/chatalot-testbed-pytest")


@contextmanager
def booted_testbed(hosts: Sequence[str], state_dir: str, label: str = "test bed"
                   ) -> Iterator[Any]:
    """Boot `hosts` in their own test bed (skip when this machine cannot run one); take it
    down at the end and check that nothing is left behind."""
    from testbed import Testbed, testbed_available

    ok, why = testbed_available()
    if not ok:
        pytest.skip(f"test bed unavailable: {why}")
    tb = Testbed(state_dir)
    start = time.monotonic()
    tb.up(list(hosts))
    print(f"\n{label} up in {time.monotonic() - start:.1f}s: {tb.timings}")
    try:
        yield tb
    finally:
        tb.down()
        left = tb.leftovers()
        assert left == [], f"{label} left things behind: {left}"


def remove_hba_block(user: str, database: str) -> None:
    """Take chatalot-db's managed pg_hba block for user@database (and only it) out of this
    machine's pg_hba.conf, then reload."""
    from installer.desired import hba

    path = Path(as_postgres_sql("SHOW hba_file"))
    begin = hba.BEGIN.format(user=user, database=database)
    end = hba.END.format(user=user, database=database)
    kept: list[str] = []
    inside = False
    for line in path.read_text().splitlines(keepends=True):
        if line.strip() == begin:
            inside = True
        elif inside and line.strip() == end:
            inside = False
        elif not inside:
            kept.append(line)
    path.write_text("".join(kept).lstrip("\n"))
    as_postgres_sql("SELECT pg_reload_conf();")


def wait_port(address: str, port: int, seconds: float = 30) -> None:
    """Until something listens on address:port (OSError after `seconds`)."""
    import socket

    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


#: a Debian 13 host given bookworm's apt source beside trixie's, as a host upgraded from
#: Debian 12 keeps it (bookworm's postgresql-15 installs beside trixie's packages)
BOOKWORM_SOURCE = ("sed -n 's/^deb \\([^ ]*\\) trixie main$/deb \\1 bookworm main/p' "
                   "/etc/apt/sources.list > /etc/apt/sources.list.d/bookworm.list && "
                   "test -s /etc/apt/sources.list.d/bookworm.list && apt-get update -q >/dev/null")
