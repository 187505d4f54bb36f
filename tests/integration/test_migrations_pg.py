"""The bundled migrations, applied by our psql scripts to a real PostgreSQL.

The module starts its own throwaway cluster (initdb as postgres, a free port,
the socket in a private directory, no TCP), so it never touches a system
cluster. It needs root (runuser) and a PostgreSQL server package.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from installer.errors import MigrationError
from installer.sqlx import rules

pytestmark = pytest.mark.local

BUNDLED = Path(__file__).resolve().parents[2] / "migrations"
APP = "chatalot"


def _bindir() -> Path | None:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Cluster:
    bindir: Path
    base: Path
    port: int

    def as_postgres(self, *argv: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv],
            cwd=self.base,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def psql_argv(self, db: str, user: str = APP) -> list[str]:
        return [
            str(self.bindir / "psql"), "-X",
            "-h", str(self.base), "-p", str(self.port), "-U", user, "-d", db,
        ]  # fmt: skip

    def psql(self, db: str, script: str, user: str = APP) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.psql_argv(db, user),
            input=script,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def rows(self, db: str, query: str) -> list[tuple[str, ...]]:
        r = subprocess.run(
            [*self.psql_argv(db, "postgres"), "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1"],
            input=query,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        return [tuple(line.split("\x1f")) for line in r.stdout.splitlines() if line]

    def createdb(self, name: str) -> str:
        self.rows("postgres", f'CREATE DATABASE "{name}" OWNER "{APP}";')
        return name


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.skip("needs root: initdb and pg_ctl run as postgres through runuser")
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    pg = pwd.getpwnam("postgres")
    # Not pytest's tmp_path: its parent is 0700 root, closed to the postgres user.
    base = Path(tempfile.mkdtemp(prefix="chatalot-migtest-"))
    os.chown(base, pg.pw_uid, pg.pw_gid)
    c = Cluster(bindir, base, _free_port())
    data = base / "data"
    try:
        c.as_postgres(
            str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        c.as_postgres(
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w",
            "-o", f"-p {c.port} -k {base} -c listen_addresses='' -c fsync=off",
            "start",
        )  # fmt: skip
        c.rows("postgres", f'CREATE ROLE "{APP}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;')
        yield c
    finally:
        if (data / "postmaster.pid").exists():
            c.as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def migrate(
    c: Cluster,
    db: str,
    folder: Path = BUNDLED,
    *,
    user: str = APP,
    set_role: bool = False,
) -> tuple[subprocess.CompletedProcess[str], rules.RunOutcome]:
    """Probe, plan and run, as the installer does."""
    local = rules.load_migrations(folder)
    probe = c.psql(db, rules.LEDGER_PROBE, user)
    assert probe.returncode == 0, probe.stderr
    state = rules.parse_ledger_probe(probe.stdout)
    pending = rules.plan(local, state.applied)
    script = rules.run_script(
        pending, database=db, applied=state.applied, role=APP, set_role=set_role
    )
    r = c.psql(db, script, user)
    return r, rules.parse_run_output(r.stdout)


def ledger(c: Cluster, db: str) -> list[tuple[str, ...]]:
    return c.rows(
        db,
        "SELECT version, description, encode(checksum, 'hex'), success, execution_time,"
        " installed_on IS NOT NULL FROM _sqlx_migrations ORDER BY version",
    )


def not_owned_by_app(c: Cluster, db: str) -> list[tuple[str, ...]]:
    return c.rows(
        db,
        f"""
        SELECT 'relation', c.relname, pg_get_userbyid(c.relowner)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> '{APP}'
        UNION ALL
        SELECT 'type', t.typname, pg_get_userbyid(t.typowner)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND pg_get_userbyid(t.typowner) <> '{APP}'
        UNION ALL
        SELECT 'function', p.proname, pg_get_userbyid(p.proowner)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> '{APP}';
        """,
    )


def copy_bundled(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(BUNDLED, folder)
    return folder


def test_apply_all_52(cluster: Cluster) -> None:
    db = cluster.createdb("full")
    started = time.monotonic()
    r, outcome = migrate(cluster, db)
    elapsed = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    assert outcome.locked and outcome.finished and outcome.failed is None
    assert sorted(outcome.applied) == list(range(1, 53))
    assert elapsed < 30

    rows = ledger(cluster, db)
    files = sorted(BUNDLED.glob("*.sql"))
    assert [int(v) for v, *_ in rows] == list(range(1, 53))
    for (version, description, hexsum, success, exec_ns, installed), path in zip(
        rows, files, strict=True
    ):
        assert int(path.name[:3]) == int(version)
        assert description == path.name[4:-4].replace("_", " ")
        assert hexsum == hashlib.sha384(path.read_bytes()).hexdigest()
        assert success == "t"
        assert int(exec_ns) >= 0
        assert outcome.applied[int(version)] == int(exec_ns)
        assert installed == "t"

    assert not_owned_by_app(cluster, db) == []
    kinds = {
        row[0]: row[1]
        for row in cluster.rows(
            db,
            "SELECT c.relkind, count(*) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = 'public' GROUP BY 1",
        )
    }
    assert int(kinds["r"]) >= 46 and int(kinds["i"]) >= 100  # tables (with the ledger), indexes
    enums = cluster.rows(
        db,
        "SELECT t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)"
        " FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY 1 ORDER BY 1",
    )
    assert enums == [
        ("channel_type", "text,voice,dm,gallery"),
        ("report_status", "open,reviewing,resolved,dismissed"),
        ("user_role", "user,moderator,admin"),
    ]
    assert cluster.rows(db, "SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid") == []

    # As sqlx sees it now: nothing to do, everything installed.
    local = rules.load_migrations(BUNDLED)
    state = rules.parse_ledger_probe(cluster.psql(db, rules.LEDGER_PROBE).stdout)
    assert state.exists and state.owner == APP and len(state.applied) == 52
    assert rules.plan(local, state.applied) == []
    assert all("/installed " in line for line in rules.info_lines(local, state.applied))
    r, outcome = migrate(cluster, db)  # an empty run: lock, guard, unlock
    assert r.returncode == 0 and outcome.finished and outcome.applied == {}
    assert len(ledger(cluster, db)) == 52


@pytest.mark.parametrize(
    ("broken", "rolled_back", "next_table"),
    [
        (10, "voice_sessions", "reactions"),  # in a transaction: its table goes too
        (36, None, "recovery_codes"),  # -- no-transaction, one CONCURRENTLY statement
    ],
)
def test_failure_midway_then_fix(
    cluster: Cluster, tmp_path: Path, broken: int, rolled_back: str | None, next_table: str
) -> None:
    db = cluster.createdb(f"fail{broken}")
    folder = copy_bundled(tmp_path)
    (path,) = folder.glob(f"{broken:03d}_*.sql")
    original = path.read_bytes()
    if broken == 36:
        path.write_bytes(original.replace(b"(user_id)", b"(no_such_column)"))
    else:
        path.write_bytes(original + b"SELECT no_such_function();\n")

    r, outcome = migrate(cluster, db, folder)
    assert r.returncode == 3, r.stderr  # psql's ON_ERROR_STOP exit
    assert outcome.failed == broken and not outcome.finished
    assert sorted(outcome.applied) == list(range(1, broken))
    assert [int(row[0]) for row in ledger(cluster, db)] == list(range(1, broken))
    if rolled_back is not None:
        assert cluster.rows(db, f"SELECT to_regclass('{rolled_back}') IS NULL") == [("t",)]
    assert cluster.rows(db, f"SELECT to_regclass('{next_table}') IS NULL") == [("t",)]
    assert cluster.rows(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [("0",)]

    path.write_bytes(original)
    r, outcome = migrate(cluster, db, folder)
    assert r.returncode == 0, r.stderr
    assert sorted(outcome.applied) == list(range(broken, 53))
    assert [int(row[0]) for row in ledger(cluster, db)] == list(range(1, 53))
    assert not_owned_by_app(cluster, db) == []


def test_modified_file_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    db = cluster.createdb("modified")
    folder = copy_bundled(tmp_path)
    assert migrate(cluster, db, folder)[0].returncode == 0
    path = folder / "005_prekeys.sql"
    old_sum = hashlib.sha384(path.read_bytes()).hexdigest()
    path.write_bytes(path.read_bytes() + b"-- a harmless comment, still a change\n")

    local = rules.load_migrations(folder)
    state = rules.parse_ledger_probe(cluster.psql(db, rules.LEDGER_PROBE).stdout)
    with pytest.raises(MigrationError) as e:
        rules.plan(local, state.applied)
    assert str(e.value) == "migration 5 was previously applied but has been modified"
    lines = rules.info_lines(local, state.applied)
    i = lines.index("5/installed (different checksum) prekeys")
    assert lines[i + 1] == f"applied migration had checksum {old_sum}"
    assert lines[i + 2] == (
        f"local migration has checksum {hashlib.sha384(path.read_bytes()).hexdigest()}"
    )


def test_guard_refuses_a_stale_plan_and_a_wrong_role(cluster: Cluster, tmp_path: Path) -> None:
    db = cluster.createdb("guarded")
    assert migrate(cluster, db)[0].returncode == 0
    sql = "CREATE TABLE late_arrival (x int);\n"
    extra = rules.Migration(53, "late", sql, rules.checksum(sql.encode()), False, "053_late.sql")

    # Planned against an empty ledger, run against a full one.
    r = cluster.psql(db, rules.run_script([extra], database=db, applied=[], role=APP))
    assert r.returncode == 3
    assert "_sqlx_migrations changed since it was read" in r.stderr
    # Right ledger, wrong role (a superuser session without SET ROLE).
    state = rules.parse_ledger_probe(cluster.psql(db, rules.LEDGER_PROBE).stdout)
    script = rules.run_script([extra], database=db, applied=state.applied, role=APP)
    r = cluster.psql(db, script, user="postgres")
    assert r.returncode == 3
    assert "running as role postgres, expected chatalot" in r.stderr
    # Right role, wrong database name (so the wrong lock).
    script = rules.run_script([extra], database="elsewhere", applied=state.applied, role=APP)
    r = cluster.psql(db, script)
    assert r.returncode == 3 and "expected elsewhere" in r.stderr

    assert cluster.rows(db, "SELECT to_regclass('late_arrival') IS NULL") == [("t",)]
    assert len(ledger(cluster, db)) == 52


def test_superuser_session_with_set_role(cluster: Cluster) -> None:
    db = cluster.createdb("viarole")
    r, outcome = migrate(cluster, db, user="postgres", set_role=True)
    assert r.returncode == 0, r.stderr
    assert len(outcome.applied) == 52
    assert not_owned_by_app(cluster, db) == []


def test_file_reaches_the_server_byte_for_byte(cluster: Cluster, tmp_path: Path) -> None:
    """current_query() is the query string as the server received it: it must be
    the whole file, untouched by psql (no :variables, no splitting, CRLF kept)."""
    folder = tmp_path / "odd"
    folder.mkdir()
    files = {
        "1_capture.sql": (
            "CREATE TABLE capture (version int PRIMARY KEY, query text NOT NULL);\r\n"
            "-- :USER :'DBNAME' \\echo are psql syntax, not ours\r\n"
            "INSERT INTO capture VALUES (1, current_query());\r\n"
        ),
        "2_semicolons.sql": "INSERT INTO capture SELECT 2, current_query() WHERE ';' <> '\\';",
        "3_it's_a\\back_slash.sql": (
            "INSERT INTO capture VALUES (3, current_query()); -- ends like $chatalot_sql"
        ),
        "4_no_tx.sql": (
            "-- no-transaction\n"
            "INSERT INTO capture VALUES (4, current_query()); -- héllo ✓ $chatalot_sql$\n"
        ),
        "5_tab\tand_dollar$.sql": "INSERT INTO capture VALUES (5, current_query());\n\t\n",
    }
    for name, text in files.items():
        (folder / name).write_bytes(text.encode())
    db = cluster.createdb("verbatim")
    r, outcome = migrate(cluster, db, folder)
    assert r.returncode == 0, r.stderr
    assert sorted(outcome.applied) == [1, 2, 3, 4, 5]
    query = "SELECT version, encode(convert_to(query, 'UTF8'), 'hex') FROM capture"
    captured = {row[0]: row[1] for row in cluster.rows(db, query)}
    for m in rules.load_migrations(folder):
        assert bytes.fromhex(captured[str(m.version)]) == m.sql.encode(), m.filename
    descriptions = [row[1] for row in ledger(cluster, db)]
    assert descriptions == [
        "capture", "semicolons", "it's a\\back slash", "no tx", "tab\tand dollar$",
    ]  # fmt: skip


def test_waits_on_sqlx_lock(cluster: Cluster) -> None:
    """A session holding sqlx's key for this database (a starting server) makes
    the run wait; releasing it lets the run finish."""
    db = cluster.createdb("contended")
    key = rules.lock_id(db)
    holder = subprocess.Popen(
        [*cluster.psql_argv(db), "-v", "ON_ERROR_STOP=1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert holder.stdin is not None
    holder.stdin.write(f"SELECT pg_advisory_lock({key});\n")
    holder.stdin.flush()
    seen = (
        "SELECT granted FROM pg_locks WHERE locktype = 'advisory'"
        f" AND ((classid::bigint << 32) | objid::bigint) = {key} ORDER BY granted DESC"
    )
    try:
        _wait_for(lambda: cluster.rows(db, seen) == [("t",)])
        local = rules.load_migrations(BUNDLED)
        script = rules.run_script(local, database=db, applied=[], role=APP)
        # stdin from a file: a pipe would fill up while psql waits on the lock.
        script_file = cluster.base / "contended.sql"
        script_file.write_text(script)
        with script_file.open() as stdin:
            runner = subprocess.Popen(
                cluster.psql_argv(db),
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        _wait_for(lambda: cluster.rows(db, seen) == [("t",), ("f",)])
        assert cluster.rows(db, "SELECT to_regclass('_sqlx_migrations') IS NULL") == [("t",)]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    assert rules.parse_run_output(out).finished
    assert len(ledger(cluster, db)) == 52


def _wait_for(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_polling_lock_quits_when_busy(cluster: Cluster) -> None:
    """run_script(wait_for_lock=False): with sqlx's lock held elsewhere it prints `busy`
    and quits at once, exit 0, having created nothing (the caller polls)."""
    db = cluster.createdb("busy")
    key = rules.lock_id(db)
    holder = subprocess.Popen(
        [*cluster.psql_argv(db), "-v", "ON_ERROR_STOP=1"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )
    assert holder.stdin is not None
    holder.stdin.write(f"SELECT pg_advisory_lock({key});\n")
    holder.stdin.flush()
    seen = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            f" AND ((classid::bigint << 32) | objid::bigint) = {key}")
    local = rules.load_migrations(BUNDLED)
    try:
        _wait_for(lambda: cluster.rows(db, seen) == [("1",)])
        script = rules.run_script(local, database=db, applied=[], role=APP, wait_for_lock=False)
        r = cluster.psql(db, script)
        assert r.returncode == 0, r.stderr
        outcome = rules.parse_run_output(r.stdout)
        assert outcome.busy and not outcome.locked and outcome.applied == {}
        assert cluster.rows(db, "SELECT to_regclass('_sqlx_migrations') IS NULL") == [("t",)]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    r = cluster.psql(db, script)
    assert r.returncode == 0, r.stderr
    outcome = rules.parse_run_output(r.stdout)
    assert outcome.finished and not outcome.busy and len(outcome.applied) == 52
