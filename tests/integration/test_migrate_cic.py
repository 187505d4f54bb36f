"""INVALID indexes left by an interrupted CREATE INDEX CONCURRENTLY, against this machine's
cluster (port 5432), through `chatalot-db migrate run --database-url`.

A `-- no-transaction` migration building a UNIQUE index CONCURRENTLY on a column with
duplicates fails and leaves an INVALID index: the run fails and says so, the ledger has
no row for it. Once the data is fixed, the next run drops that index first and builds
it again, valid. Each test makes its own role and database (`cic_t*`, dropped before
and after). Needs root (runuser to postgres).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import pytest

from installer import cli
from installer.commands import migrate as migrate_command
from installer.sqlx import migrator, rules
from installer.transport.base import Result
from installer.transport.local import LocalTransport
from tests.integration.helpers import cli as run_cli
from tests.integration.helpers import drop_app, fresh_app

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: roles are made through postgres"),
]

PASSWORD = "c1c:p@ss/w'rd %41"

ACCOUNTS = ("CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);\n"
            "INSERT INTO accounts VALUES (1, 'a@example.org'), (2, 'b@example.org'),"
            " (3, 'a@example.org');\n")
UNIQUE_EMAIL = ("-- no-transaction\n"
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_key\n"
                "    ON accounts (email);\n")


class Db:
    def __init__(self, name: str) -> None:
        self.name = name
        self.url = f"postgres://{name}:{quote(PASSWORD, safe='')}@localhost:5432/{name}"

    def sql(self, query: str) -> str:
        p = subprocess.run(
            ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d",
             f"host=localhost port=5432 dbname={self.name} user={self.name}"],
            input=query, capture_output=True, text=True, check=False,
            env=dict(os.environ, PGPASSWORD=PASSWORD), cwd="/")
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    def versions(self) -> list[int]:
        if self.sql("SELECT to_regclass('_sqlx_migrations') IS NULL") == "t":
            return []
        return [int(v) for v in
                self.sql("SELECT version FROM _sqlx_migrations ORDER BY version").split()]

    def index(self, name: str) -> tuple[int, bool] | None:
        """(oid, indisvalid) of index public.<name>, or None."""
        out = self.sql(f"SELECT c.oid, i.indisvalid FROM pg_index i JOIN pg_class c "
                       f"ON c.oid = i.indexrelid WHERE c.oid = to_regclass('public.{name}')")
        if not out:
            return None
        oid, valid = out.split("|")
        return int(oid), valid == "t"


@pytest.fixture
def db(request: pytest.FixtureRequest) -> Iterator[Db]:
    name = "cic_t" + hashlib.sha1(request.node.name.encode()).hexdigest()[:8]
    fresh_app(name, PASSWORD)
    yield Db(name)
    drop_app(name)


def folder_with(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def run(db: Db, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("migrate", "run", "--database-url", db.url, "--source", str(folder),
                   "--no-backup", *args, timeout=300)


DROPPED = ("chatalot-db: dropped invalid index public.accounts_email_key left by an "
           "interrupted CREATE INDEX CONCURRENTLY; migration 2 recreates it")
LEFT_BEHIND = ("while executing migration 2: error returned from database: could not create "
               'unique index "accounts_email_key"; it left the invalid index '
               "public.accounts_email_key behind (never used by queries, uniqueness not "
               "enforced); migration 2 is not recorded as applied: fix the cause and run "
               "again (the invalid index is dropped first)")


def test_failed_unique_build_then_fixed(db: Db, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {"001_accounts.sql": ACCOUNTS,
                                    "002_accounts_email.sql": UNIQUE_EMAIL})
    # 1. duplicates: the build fails and leaves an INVALID index; no ledger row for 2
    p = run(db, folder)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.startswith("Applied 1/migrate accounts (") and "Applied 2" not in p.stdout
    assert LEFT_BEHIND in p.stderr, p.stderr
    assert db.versions() == [1]
    first = db.index("accounts_email_key")
    assert first is not None and first[1] is False  # there, INVALID
    assert db.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == "0"

    # 2. check mode says what it would do, and changes nothing
    dry = run(db, folder, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == "Can apply 2/migrate accounts email (0ns)\n"
    assert ("chatalot-db: would drop invalid index public.accounts_email_key left by an "
            "interrupted CREATE INDEX CONCURRENTLY; migration 2 recreates it") in dry.stderr
    assert db.index("accounts_email_key") == first and db.versions() == [1]

    # 3. run again, data not fixed: dropped, built again, fails again, still no row
    again = run(db, folder)
    assert again.returncode == 1, again.stdout + again.stderr
    assert DROPPED in again.stderr and LEFT_BEHIND in again.stderr, again.stderr
    second = db.index("accounts_email_key")
    assert second is not None and second[1] is False and second[0] != first[0]  # a new one
    assert db.versions() == [1]

    # someone else's INVALID index: left alone, reported
    db.sql("CREATE TABLE other (x int); INSERT INTO other VALUES (1), (1);")
    p = subprocess.run(
        ["psql", "-X", "-q", "-d", f"host=localhost port=5432 dbname={db.name} user={db.name}",
         "-c", "CREATE UNIQUE INDEX CONCURRENTLY other_x_key ON other (x)"],
        capture_output=True, text=True, check=False, env=dict(os.environ, PGPASSWORD=PASSWORD))
    assert p.returncode != 0 and db.index("other_x_key") is not None

    # 4. data fixed: the INVALID index is dropped, built again, valid; the row written
    db.sql("DELETE FROM accounts WHERE id = 3;")
    fixed = run(db, folder)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert fixed.stdout.startswith("Applied 2/migrate accounts email (")
    assert DROPPED in fixed.stderr, fixed.stderr
    assert ("chatalot-db: warning: invalid index public.other_x_key on public.other left "
            "alone: no pending migration creates it") in fixed.stderr
    third = db.index("accounts_email_key")
    assert third is not None and third[1] is True
    assert db.versions() == [1, 2]
    assert db.index("other_x_key") is not None  # not ours: still there
    dup = subprocess.run(
        ["psql", "-X", "-q", "-d", f"host=localhost port=5432 dbname={db.name} user={db.name}",
         "-c", "INSERT INTO accounts VALUES (4, 'a@example.org')"],
        capture_output=True, text=True, check=False, env=dict(os.environ, PGPASSWORD=PASSWORD))
    assert dup.returncode != 0 and "accounts_email_key" in dup.stderr  # enforced

    # 5. nothing pending: nothing printed, nothing dropped
    noop = run(db, folder)
    assert noop.returncode == 0 and noop.stdout == "" and noop.stderr == "", noop.stderr


def test_invalid_index_of_that_name_on_another_table_is_not_dropped(db: Db, tmp_path: Path
                                                                    ) -> None:
    """IF NOT EXISTS would skip over it: the migration fails instead of being recorded."""
    db.sql("CREATE TABLE elsewhere (email text); INSERT INTO elsewhere VALUES ('x'), ('x');")
    p = subprocess.run(
        ["psql", "-X", "-q", "-d", f"host=localhost port=5432 dbname={db.name} user={db.name}",
         "-c", "CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON elsewhere (email)"],
        capture_output=True, text=True, check=False, env=dict(os.environ, PGPASSWORD=PASSWORD))
    assert p.returncode != 0
    before = db.index("accounts_email_key")
    assert before is not None and before[1] is False
    folder = folder_with(tmp_path, {
        "001_accounts.sql": "CREATE TABLE accounts (id bigint, email text);\n",
        "002_accounts_email.sql": UNIQUE_EMAIL})
    r = run(db, folder)
    assert r.returncode == 1, r.stdout + r.stderr
    assert ("chatalot-db: warning: invalid index public.accounts_email_key on public.elsewhere "
            "left alone") in r.stderr
    assert ("while executing migration 2: public.accounts_email_key exists but is not an index "
            "of the table migration 2 names, so IF NOT EXISTS skipped the build; migration 2 "
            "is not recorded as applied") in r.stderr, r.stderr
    assert db.versions() == [1] and db.index("accounts_email_key") == before


class Recording(LocalTransport):
    """LocalTransport keeping the scripts (stdin) it was given, password line removed."""

    scripts: ClassVar[list[str]] = []

    def run(self, command: str, *, become: str | None = None,
            stdin: str | bytes | None = None, timeout: float | None = 600) -> Result:
        text = stdin.decode() if isinstance(stdin, bytes) else (stdin or "")
        Recording.scripts.append(text.partition("\n")[2])
        return super().run(command, become=become, stdin=stdin, timeout=timeout)


def in_process(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, list[str], str]:
    """`chatalot-db ARGV` in this process: exit code, the psql scripts sent, stderr."""
    Recording.scripts = []
    monkeypatch.setattr(migrate_command, "LocalTransport", Recording)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, list(Recording.scripts), err.getvalue()


def test_round_trips(db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pending: the ledger read, then one script (the invalid-index work inside it).
    Nothing pending: the ledger read alone, exactly as before this feature."""
    folder = folder_with(tmp_path, {"001_accounts.sql": ACCOUNTS.replace("(3, 'a@", "(3, 'c@"),
                                    "002_accounts_email.sql": UNIQUE_EMAIL})
    args = ("migrate", "run", "--database-url", db.url, "--source", str(folder), "--no-backup")
    code, scripts, err = in_process(monkeypatch, *args)
    assert code == 0, err
    assert len(scripts) == 2
    assert scripts[0] == rules.LEDGER_PROBE + migrator.SESSION_QUERY
    assert "indisvalid" in scripts[1] and "DROP INDEX CONCURRENTLY" in scripts[1]
    built = db.index("accounts_email_key")
    assert db.versions() == [1, 2] and built is not None and built[1] is True

    code, scripts, err = in_process(monkeypatch, *args)
    assert code == 0 and err == ""
    assert scripts == [rules.LEDGER_PROBE + migrator.SESSION_QUERY]  # nothing new runs

    code, scripts, err = in_process(monkeypatch, *args, "--dry-run")
    assert code == 0 and scripts == [rules.LEDGER_PROBE + migrator.SESSION_QUERY]


def test_apply_step_on_this_machine_over_an_inventory(db: Db, tmp_path: Path) -> None:
    """The same through apply's migration step (psql as postgres, SET ROLE), check mode too."""
    folder = folder_with(tmp_path, {"001_accounts.sql": ACCOUNTS,
                                    "002_accounts_email.sql": UNIQUE_EMAIL})
    hosts = tmp_path / "hosts.ini"
    hosts.write_text(f"localhost ansible_connection=local migrations_source=bundled "
                     f"db_name={db.name} db_user={db.name}"
                     f" backup_dir={tmp_path / 'backups'}\n")
    report = tmp_path / "report.json"

    def step(*args: str) -> tuple[int, str]:
        p = run_cli("migrate", "run", "-i", str(hosts), "--source", str(folder), "--no-backup",
                    "--json", str(report), *args, timeout=300)
        doc = json.loads(report.read_text())
        (result,) = [s for s in doc["hosts"]["localhost"]["steps"]
                     if s["name"] == "apply migrations"]
        return p.returncode, f"{result['status']}: {result['reason']}"

    code, reason = step()
    assert code == 2 and reason.startswith("failed: applied 1 (1 migration); " + LEFT_BEHIND)
    assert db.versions() == [1]
    code, reason = step("--dry-run")
    assert code == 0 and reason == (
        "changed: would apply 1 migration: 2; would drop invalid index "
        "public.accounts_email_key left by an interrupted CREATE INDEX CONCURRENTLY; "
        "migration 2 recreates it")
    db.sql("DELETE FROM accounts WHERE id = 3;")
    code, reason = step()
    assert code == 0 and reason == (
        "changed: applied 2 (1 migration); no backup (--no-backup); "
        + DROPPED.removeprefix("chatalot-db: "))
    assert db.versions() == [1, 2] and db.index("accounts_email_key") is not None
    code, reason = step()
    assert code == 0 and reason == "ok: 2 applied, none pending"
