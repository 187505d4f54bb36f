"""`chatalot-db migrate run|info --database-url` against this machine's cluster (port 5432).

Each test makes its own throw-away role and database (`mig_t*`, dropped first and
afterwards; never `chatalot` or `ci_app`) with a password full of URL delimiters,
and drives the real command line as that role over TCP. Needs root (runuser to
postgres) and the cluster that the local apply tests provision.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from installer.sqlx import rules
from tests.integration.helpers import REPO, cli, drop_app, fresh_app

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: roles are made through postgres"),
]

BUNDLED = REPO / "migrations"
PASSWORD = "p@ss:w/o'rd %41 \\ $(id) #frag?q=1"
APPLIED = re.compile(r"^Applied (\d+)/migrate (.+) \((\d+(?:\.\d+)?(?:ns|µs|ms|s))\)$")


class Db:
    """A role and its database, reached by URL as that role."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = (f"postgres://{name}:{quote(PASSWORD, safe='')}@localhost:5432/{name}")

    def sql(self, query: str) -> str:
        """As the role itself (so it sees what the server would see)."""
        p = subprocess.run(
            ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d",
             f"host=localhost port=5432 dbname={self.name} user={self.name}"],
            input=query, capture_output=True, text=True, check=False,
            env=dict(os.environ, PGPASSWORD=PASSWORD), cwd="/",
        )
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    def ledger(self) -> list[tuple[int, str, str, bool]]:
        if self.sql("SELECT to_regclass('_sqlx_migrations') IS NULL") == "t":
            return []
        out = self.sql("SELECT version, description, encode(checksum, 'hex'), success "
                       "FROM _sqlx_migrations ORDER BY version")
        rows = [line.split("|") for line in out.splitlines()]
        return [(int(v), d, c, s == "t") for v, d, c, s in rows]

    def exists(self, table: str) -> bool:
        return self.sql(f"SELECT to_regclass('{table}') IS NOT NULL") == "t"


@pytest.fixture
def db(request: pytest.FixtureRequest) -> Iterator[Db]:
    """A fresh `mig_t<n>` role and database for this test (the password set by SQL)."""
    name = "mig_t" + hashlib.sha1(request.node.name.encode()).hexdigest()[:8]
    fresh_app(name, PASSWORD)
    yield Db(name)
    drop_app(name)


def run(db: Db, *args: str) -> subprocess.CompletedProcess[str]:
    return cli("migrate", "run", "--database-url", db.url, *args, timeout=600)


def info(db: Db, *args: str) -> subprocess.CompletedProcess[str]:
    return cli("migrate", "info", "--database-url", db.url, *args, timeout=120)


def applied_versions(stdout: str) -> list[int]:
    versions = []
    for line in stdout.splitlines():
        m = APPLIED.match(line)
        assert m, f"not sqlx's line: {line!r}"
        versions.append(int(m.group(1)))
    return versions


def copy_bundled(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(BUNDLED, folder)
    return folder


def expected_info(folder: Path, status: str) -> list[str]:
    return [f"{m.version}/{status} {m.description}" for m in rules.load_migrations(folder)]


def test_fresh_database_gets_all_52_as_sqlx_would(db: Db) -> None:
    before = info(db)
    assert before.returncode == 0, before.stderr
    assert before.stdout.splitlines() == expected_info(BUNDLED, "pending")
    assert db.ledger() == [] and not db.exists("_sqlx_migrations")  # info is read-only

    started = time.monotonic()
    p = run(db)
    elapsed = time.monotonic() - started
    assert p.returncode == 0, p.stdout + p.stderr
    assert applied_versions(p.stdout) == list(range(1, 53))
    print(f"\n52 migrations by `migrate run --database-url`: {elapsed:.2f}s")
    first = p.stdout.splitlines()[0]
    assert first.startswith("Applied 1/migrate users (")

    rows = db.ledger()
    files = sorted(BUNDLED.glob("*.sql"))
    assert [r[0] for r in rows] == list(range(1, 53))
    for (version, description, hexsum, success), path in zip(rows, files, strict=True):
        assert version == int(path.name[:3])
        assert description == path.name[4:-4].replace("_", " ")
        assert hexsum == hashlib.sha384(path.read_bytes()).hexdigest()
        assert success
    assert db.sql("SELECT min(execution_time) >= 0 FROM _sqlx_migrations") == "t"

    after = info(db)
    assert after.returncode == 0, after.stderr
    assert after.stdout.splitlines() == expected_info(BUNDLED, "installed")
    assert after.stdout.splitlines()[0] == "1/installed users"


def test_the_role_owns_and_can_alter_every_table(db: Db) -> None:
    assert run(db).returncode == 0
    assert db.sql(f"""
        SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> '{db.name}'""") == "0"
    altered = db.sql("""
        BEGIN;
        CREATE TEMP TABLE altered (t text);
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT c.oid::regclass AS t FROM pg_class c
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
            LOOP
                EXECUTE format('ALTER TABLE %s ADD COLUMN chatalot_alter_probe int', r.t);
                EXECUTE format('ALTER TABLE %s DROP COLUMN chatalot_alter_probe', r.t);
                INSERT INTO altered VALUES (r.t::text);
            END LOOP;
        END $$;
        SELECT count(*) FROM altered;
        ROLLBACK;""")
    assert int(altered.splitlines()[-2]) >= 46  # every table, the ledger included


def test_rerun_applies_nothing(db: Db) -> None:
    assert run(db).returncode == 0
    stamps = db.sql("SELECT string_agg(installed_on::text, ',' ORDER BY version) "
                    "FROM _sqlx_migrations")
    again = run(db)
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""  # sqlx prints nothing when nothing is pending
    assert db.sql("SELECT string_agg(installed_on::text, ',' ORDER BY version) "
                  "FROM _sqlx_migrations") == stamps


def test_database_url_from_the_environment(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db.url)
    p = cli("migrate", "run", timeout=600)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 52
    assert cli("migrate", "info").stdout.splitlines() == expected_info(BUNDLED, "installed")


def test_edited_applied_file_is_refused_and_nothing_applied(db: Db, tmp_path: Path) -> None:
    folder = copy_bundled(tmp_path)
    assert run(db, "--source", str(folder)).returncode == 0
    old_sum = hashlib.sha384((folder / "005_prekeys.sql").read_bytes()).hexdigest()
    with (folder / "005_prekeys.sql").open("a") as f:
        f.write("-- an innocent comment is still a change\n")
    (folder / "053_later.sql").write_text("CREATE TABLE later_table (id bigint);\n")

    p = run(db, "--source", str(folder))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "migration 5 was previously applied but has been modified" in p.stderr
    assert p.stdout == ""
    assert [r[0] for r in db.ledger()] == list(range(1, 53))  # 53 was not applied
    assert not db.exists("later_table")

    lines = info(db, "--source", str(folder)).stdout.splitlines()
    i = lines.index("5/installed (different checksum) prekeys")
    new_sum = hashlib.sha384((folder / "005_prekeys.sql").read_bytes()).hexdigest()
    assert lines[i + 1:i + 3] == [f"applied migration had checksum {old_sum}",
                                  f"local migration has checksum {new_sum}"]
    assert lines[-1] == "53/pending later"


def test_failing_migration_midway_then_fixed(db: Db, tmp_path: Path) -> None:
    folder = copy_bundled(tmp_path)
    (path,) = folder.glob("010_*.sql")
    original = path.read_bytes()
    path.write_bytes(original + b"\nSELECT no_such_function();\n")

    p = run(db, "--source", str(folder))
    assert p.returncode == 1, p.stdout + p.stderr
    assert applied_versions(p.stdout) == list(range(1, 10))
    assert ("while executing migration 10: error returned from database: "
            "function no_such_function() does not exist") in p.stderr
    assert [r[0] for r in db.ledger()] == list(range(1, 10))  # no row for 10
    assert not db.exists("voice_sessions")  # 010 rolled back as a whole
    assert not db.exists("reactions")  # 011 and later never started
    assert db.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == "0"

    path.write_bytes(original)
    again = run(db, "--source", str(folder))
    assert again.returncode == 0, again.stderr
    assert applied_versions(again.stdout) == list(range(10, 53))
    assert [r[0] for r in db.ledger()] == list(range(1, 53))


@pytest.mark.parametrize(("damage", "message"), [
    ("UPDATE _sqlx_migrations SET success = false WHERE version IN (3, 7)",
     "migration 3 is partially applied; fix and remove row from `_sqlx_migrations` table"),
    ("INSERT INTO _sqlx_migrations VALUES (99, 'gone', now(), true, '\\x00', 1)",
     "migration 99 was previously applied but is missing in the resolved migrations"),
])
def test_dirty_and_missing_are_refused(db: Db, tmp_path: Path, damage: str, message: str
                                       ) -> None:
    folder = copy_bundled(tmp_path)
    assert run(db, "--source", str(folder)).returncode == 0
    db.sql(damage)
    (folder / "053_later.sql").write_text("CREATE TABLE later_table (id bigint);\n")
    p = run(db, "--source", str(folder))
    assert p.returncode == 1 and message in p.stderr, p.stderr
    assert not db.exists("later_table")


def test_two_runs_at_once_apply_each_migration_once(db: Db, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # (the later one may find data already there, and back it up first)
    argv = [sys.executable, "-m", "installer", "migrate", "run", "--database-url", db.url,
            "--backup-dir", str(tmp_path / "backups")]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=REPO) for _ in range(2)]
    # meanwhile, what any user could see in ps: never the password
    seen: list[str] = []
    while any(p.poll() is None for p in procs):
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False)
        seen += [line for line in ps.stdout.splitlines() if "psql" in line]
        time.sleep(0.05)
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out + err
    versions = [v for out, _ in outs for v in applied_versions(out)]
    assert sorted(versions) == list(range(1, 53))  # each exactly once, between them
    assert [r[0] for r in db.ledger()] == list(range(1, 53))
    encoded = quote(PASSWORD, safe="")
    assert not [line for line in seen if PASSWORD in line or encoded in line]


def test_backup_before_migrating_a_database_with_data(db: Db, tmp_path: Path) -> None:
    folder = copy_bundled(tmp_path)
    backups = tmp_path / "backups"
    first = run(db, "--source", str(folder), "--backup-dir", str(backups))
    assert first.returncode == 0 and not backups.exists()  # nothing to back up yet

    (folder / "053_later.sql").write_text("CREATE TABLE later_table (id bigint);\n")
    p = run(db, "--source", str(folder), "--backup-dir", str(backups))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Applied 53/migrate later (")
    (dump,) = backups.iterdir()
    assert re.fullmatch(rf"{db.name}-\d{{8}}T\d{{6}}Z-before-53\.dump", dump.name)
    assert f"backup written to {dump}" in p.stderr
    assert stat.S_IMODE(backups.stat().st_mode) == 0o700
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    listing = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True,
                             text=True, check=False)
    assert listing.returncode == 0 and "_sqlx_migrations" in listing.stdout
    assert "later_table" not in listing.stdout  # taken before 053

    (folder / "054_more.sql").write_text("CREATE TABLE more_table (id bigint);\n")
    p = run(db, "--source", str(folder), "--backup-dir", str(backups), "--no-backup")
    assert p.returncode == 0 and len(list(backups.iterdir())) == 1


def test_a_foreign_migration_set_with_source(db: Db, tmp_path: Path) -> None:
    """sqlx's naming beyond the bundled set: timestamps, reversible pairs, no-transaction."""
    folder = tmp_path / "foreign"
    folder.mkdir()
    files = {
        "20240101120000_create_accounts.up.sql": "CREATE TABLE accounts (id bigint);\n",
        "20240101120000_create_accounts.down.sql": "DROP TABLE accounts;\n",
        "20240102090000_index_accounts.up.sql":
            "-- no-transaction\nCREATE INDEX CONCURRENTLY accounts_id ON accounts (id);\n",
        "20240102090000_index_accounts.down.sql": "DROP INDEX accounts_id;\n",
        "README.md": "not a migration\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    p = run(db, "--source", str(folder))
    assert p.returncode == 0, p.stderr
    assert applied_versions(p.stdout) == [20240101120000, 20240102090000]
    assert db.ledger() == [
        (20240101120000, "create accounts",
         hashlib.sha384(files["20240101120000_create_accounts.up.sql"].encode()).hexdigest(),
         True),
        (20240102090000, "index accounts",
         hashlib.sha384(files["20240102090000_index_accounts.up.sql"].encode()).hexdigest(),
         True),
    ]
    assert info(db, "--source", str(folder)).stdout.splitlines() == [
        "20240101120000/installed create accounts", "20240102090000/installed index accounts"]


def test_bad_url_and_missing_target_are_usage_errors() -> None:
    p = cli("migrate", "run", "--database-url", "mysql://x@y/z")
    assert p.returncode == 5 and "postgres://" in p.stderr
    env_less = subprocess.run(
        [sys.executable, "-m", "installer", "migrate", "info"], capture_output=True, text=True,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {
            "PYTHONPATH": str(REPO)}, cwd=REPO, check=False)
    assert env_less.returncode == 5 and "--database-url" in env_less.stderr


def test_waits_for_a_session_holding_sqlxs_lock(db: Db) -> None:
    """A starting server holds sqlx's lock: the run polls until it is released, then runs."""
    key = rules.lock_id(db.name)
    holder = subprocess.Popen(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
         f"host=localhost port=5432 dbname={db.name} user={db.name}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PGPASSWORD=PASSWORD), cwd="/")
    assert holder.stdin is not None
    holder.stdin.write(f"SELECT pg_advisory_lock({key});\n\\echo held\n")
    holder.stdin.flush()
    assert holder.stdout is not None
    while holder.stdout.readline().strip() != "held":
        pass
    env = dict(os.environ, PYTHONPATH=str(REPO))
    runner = subprocess.Popen(
        [sys.executable, "-m", "installer", "migrate", "run", "--database-url", db.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        time.sleep(3)
        assert runner.poll() is None, runner.communicate()
        assert db.ledger() == []  # nothing while the lock is held
    finally:
        holder.communicate(timeout=30)  # closes its stdin (the lock goes) and its pipes
    out, err = runner.communicate(timeout=120)
    assert runner.returncode == 0, err
    assert applied_versions(out) == list(range(1, 53))
