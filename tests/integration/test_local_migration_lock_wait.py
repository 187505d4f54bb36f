"""A pending migration behind an app's open transaction, on this machine's real PostgreSQL.

The app holds `LOCK TABLE users IN ACCESS SHARE MODE` in an open transaction; a pending
migration wants `ALTER TABLE users` (ACCESS EXCLUSIVE). Without a limit the ALTER would
queue forever, and every later read of `users` would queue behind it. With
`migration_lock_timeout=1s` apply waits at most 1 s per try (4 tries, pauses of 1, 2, 4 s),
the app's reads keep succeeding meanwhile, the migration rolls back (no ledger row, no
column), the host fails naming the blocking session, and a rerun once the app's
transaction has ended applies it. Its own app (`mig_lock`), dropped first and afterwards.
Needs root.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
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

APP = "mig_lock"
BLOCKER = "chatalot-test-blocker"


def _drop() -> None:
    as_postgres_sql(f"DROP DATABASE IF EXISTS {APP} WITH (FORCE);")
    as_postgres_sql(f"DROP ROLE IF EXISTS {APP};")


def _read_users() -> tuple[bool, float]:
    """One app read with a 3 s statement timeout: (succeeded, seconds)."""
    start = time.monotonic()
    p = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-At", "-d", APP, "-c",
         "SET statement_timeout = '3s'; SELECT count(*) FROM users"],
        capture_output=True, text=True, check=False, cwd="/")
    return p.returncode == 0 and p.stdout.strip().endswith("3"), time.monotonic() - start


@pytest.fixture(scope="module")
def waited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("miglock")
    _drop()
    source = tmp / "migrations"
    source.mkdir()
    (source / "1_users.sql").write_text(
        "CREATE TABLE users (id bigint PRIMARY KEY);\nINSERT INTO users VALUES (1), (2), (3);\n")
    inv = tmp / "local.ini"
    inv.write_text(f"[local]\nlocalhost ansible_connection=local db_name={APP} db_user={APP} "
                   f"db_env_file={tmp / 'app.env'} backup_dir={tmp / 'backups'} "
                   f"migrations_source={source} migration_lock_timeout=1s\n")
    out: dict[str, Any] = {"first": run_apply(inv, tmp / "first.json", "--no-backup"),
                           "inv": inv, "tmp": tmp, "source": source}
    (source / "2_user_names.sql").write_text("ALTER TABLE users ADD COLUMN name text;\n")
    blocker = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-d", APP, "-c",
         "BEGIN; LOCK TABLE users IN ACCESS SHARE MODE; SELECT pg_sleep(120);"],
        env=dict(os.environ, PGAPPNAME=BLOCKER), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, cwd="/")
    try:
        for _ in range(100):  # until the app's transaction holds its lock
            pid = as_postgres_sql(
                f"SELECT pid FROM pg_stat_activity WHERE application_name = '{BLOCKER}' "
                "AND state = 'active' AND query LIKE '%pg_sleep%'")
            if pid:
                break
            time.sleep(0.1)
        out["blocker_pid"] = int(pid)
        reads: list[tuple[bool, float]] = []
        done = threading.Event()

        def app() -> None:
            while not done.is_set():
                reads.append(_read_users())
                time.sleep(0.2)

        reader = threading.Thread(target=app)
        reader.start()
        start = time.monotonic()
        out["waited"] = run_apply(inv, tmp / "waited.json", "--no-backup")
        out["seconds"] = time.monotonic() - start
        done.set()
        reader.join(timeout=30)
        out["reads"] = reads
        out["ledger_while"] = as_postgres_sql(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM _sqlx_migrations",
            database=APP)
        out["columns_while"] = as_postgres_sql(
            "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = 'users'::regclass AND attnum > 0", database=APP)
    finally:
        blocker.kill()
        blocker.wait(timeout=30)
    as_postgres_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE application_name = '{BLOCKER}'")
    out["rerun"] = run_apply(inv, tmp / "rerun.json", "--no-backup")
    out["ledger_after"] = as_postgres_sql(
        "SELECT string_agg(version::text, ',' ORDER BY version) FROM _sqlx_migrations",
        database=APP)
    yield out
    _drop()


def _step(doc: dict[str, Any]) -> dict[str, Any]:
    steps: list[dict[str, Any]] = doc["hosts"]["localhost"]["steps"]
    return next(s for s in steps if s["name"] == "apply migrations")


def test_first_run_applies_the_first_migration(waited: dict[str, Any]) -> None:
    p, doc = waited["first"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert _step(doc)["reason"].startswith("applied 1 ")


def test_a_migration_behind_the_app_gives_up_in_bounded_time_naming_the_blocker(
        waited: dict[str, Any]) -> None:
    p, doc = waited["waited"]
    assert p.returncode == 2, p.stdout + p.stderr
    s = _step(doc)
    assert s["status"] == "failed"
    assert s["reason"].startswith(
        "while executing migration 2: waited for a table lock 4 times (1000 ms each) and gave "
        "up; rolled back, nothing of it applied. Sessions holding table locks in the "
        f"database: pid {waited['blocker_pid']} (postgres, {BLOCKER}, active for "), s["reason"]
    assert f"SELECT pg_terminate_backend({waited['blocker_pid']})" in s["reason"]
    # 4 waits of 1 s and pauses of 1 + 2 + 4 s, plus the run: never unbounded
    assert 10 <= waited["seconds"] < 40, waited["seconds"]


def test_while_it_waits_the_step_line_says_for_whom(waited: dict[str, Any]) -> None:
    """Output that is no terminal: a line per new try naming the sessions holding table
    locks (a terminal's live view shows the same text on the host's row)."""
    p, _ = waited["waited"]
    lines = [ln for ln in p.stdout.splitlines()
             if ln.startswith("localhost: apply migrations: migration 2 waits")]
    held = f"held by pid {waited['blocker_pid']} (postgres, {BLOCKER}, active for "
    assert [ln.split(": held by", 1)[0] for ln in lines] == [
        f"localhost: apply migrations: migration 2 waits for a table lock (try {n} of 4 in "
        f"{pause} s)" for n, pause in ((2, 1), (3, 2), (4, 4))], p.stdout
    assert all(held in ln and "BEGIN; LOCK TABLE users" in ln for ln in lines), lines


def test_the_apps_reads_kept_succeeding_while_apply_waited(waited: dict[str, Any]) -> None:
    reads: list[tuple[bool, float]] = waited["reads"]
    assert len(reads) >= 10, reads
    assert all(ok for ok, _ in reads), reads
    assert max(seconds for _, seconds in reads) < 3, reads


def test_nothing_of_the_migration_was_applied_while_it_waited(waited: dict[str, Any]) -> None:
    assert waited["ledger_while"] == "1"
    assert waited["columns_while"] == "id"


def test_the_rerun_applies_it_once_the_app_is_done(waited: dict[str, Any]) -> None:
    p, doc = waited["rerun"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert _step(doc)["reason"].startswith("applied 2 ")
    assert waited["ledger_after"] == "1,2"


@pytest.fixture(scope="module")
def dump_waited(waited: dict[str, Any]) -> dict[str, Any]:
    """The app holds `users` in ACCESS EXCLUSIVE mode (a maintenance of its own) while a
    third migration is pending over data: the pg_dump before it waits no longer than
    migration_lock_timeout (1 s), fails, and nothing is applied."""
    tmp = waited["tmp"]
    backups = Path("/var/tmp/chatalot-test-miglock-backups")  # postgres can reach it
    shutil.rmtree(backups, ignore_errors=True)
    inv = tmp / "dump.ini"
    inv.write_text(waited["inv"].read_text().replace(f"backup_dir={tmp / 'backups'}",
                                                     f"backup_dir={backups}"))
    (waited["source"] / "3_user_mails.sql").write_text("ALTER TABLE users ADD COLUMN mail text;\n")
    blocker = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-d", APP, "-c",
         "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);"],
        env=dict(os.environ, PGAPPNAME=BLOCKER), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, cwd="/")
    out: dict[str, Any] = {}
    try:
        for _ in range(100):
            if as_postgres_sql(f"SELECT pid FROM pg_stat_activity WHERE application_name = "
                               f"'{BLOCKER}' AND query LIKE '%pg_sleep%'"):
                break
            time.sleep(0.1)
        start = time.monotonic()
        out["run"] = run_apply(inv, tmp / "dump.json")
        out["seconds"] = time.monotonic() - start
        out["ledger"] = as_postgres_sql(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM _sqlx_migrations",
            database=APP)
        out["dumps"] = sorted(p.name for p in backups.glob("*"))
    finally:
        blocker.kill()
        blocker.wait(timeout=30)
        as_postgres_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE application_name = '{BLOCKER}'")
        (waited["source"] / "3_user_mails.sql").unlink()
        shutil.rmtree(backups, ignore_errors=True)
    return out


def test_the_backup_waits_no_longer_than_the_lock_timeout(dump_waited: dict[str, Any]) -> None:
    p, doc = dump_waited["run"]
    assert p.returncode == 2, p.stdout + p.stderr
    step = _step(doc)
    assert step["status"] == "failed"
    assert step["reason"].startswith("backup before migrating failed, nothing applied: pg_dump "
                                     "into "), step["reason"]
    assert ": it waited 1000 ms for a table lock (migration_lock_timeout) and gave up. " \
           "Sessions holding table locks in the database: " in step["reason"], step["reason"]
    assert f"postgres, {BLOCKER}, active for " in step["reason"]  # the app's session, named
    assert dump_waited["seconds"] < 30
    assert dump_waited["ledger"] == "1,2"  # nothing applied
    assert dump_waited["dumps"] == []  # no partial dump left


@pytest.fixture(scope="module")
def interrupted(waited: dict[str, Any], dump_waited: dict[str, Any]) -> dict[str, Any]:
    """The app's transaction holds `users` (ACCESS SHARE); a pending migration's ALTER waits
    for it, with a lock timeout far longer than the test (60 s). SIGINT to chatalot-db's
    own process only, as over SSH, where the host's psql never sees the terminal's Ctrl-C
    (a local psql in the terminal's process group would cancel its query itself): our
    interrupt hook cancels that wait at once, the run ends interrupted (exit 99), nothing
    applied, no session of ours left."""
    del dump_waited  # runs after it: both use migration 3's slot
    tmp, source = waited["tmp"], waited["source"]
    inv = tmp / "interrupt.ini"
    inv.write_text(waited["inv"].read_text().replace("migration_lock_timeout=1s",
                                                     "migration_lock_timeout=60s"))
    (source / "3_user_mails.sql").write_text("ALTER TABLE users ADD COLUMN mail text;\n")
    blocker = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-d", APP, "-c",
         "BEGIN; LOCK TABLE users IN ACCESS SHARE MODE; SELECT pg_sleep(120);"],
        env=dict(os.environ, PGAPPNAME=BLOCKER), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, cwd="/")
    out: dict[str, Any] = {}
    try:
        for _ in range(100):  # until the app's transaction holds its lock
            if as_postgres_sql(f"SELECT pid FROM pg_stat_activity WHERE application_name = "
                               f"'{BLOCKER}' AND state = 'active' AND query LIKE '%pg_sleep%'"):
                break
            time.sleep(0.1)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        p = subprocess.Popen(
            [sys.executable, "-m", "installer", "apply", "-i", str(inv), "--no-backup",
             "--json", str(tmp / "interrupt.json")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
            start_new_session=True)
        waiting = ""
        for _ in range(300):  # until our migration's session waits for the lock
            waiting = as_postgres_sql(
                "SELECT wait_event_type FROM pg_stat_activity WHERE application_name LIKE "
                "'chatalot-db migrate %' AND wait_event_type = 'Lock'")
            if waiting or p.poll() is not None:
                break
            time.sleep(0.1)
        out["waiting"] = waiting
        start = time.monotonic()
        os.kill(p.pid, signal.SIGINT)
        stdout, stderr = p.communicate(timeout=100)
        out["seconds"] = time.monotonic() - start
        out["code"], out["stdout"], out["stderr"] = p.returncode, stdout, stderr
        out["doc"] = json.loads((tmp / "interrupt.json").read_text())
        out["ledger"] = as_postgres_sql(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM _sqlx_migrations",
            database=APP)
        out["ours_left"] = as_postgres_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
            "'chatalot-db migrate %'")
    finally:
        blocker.kill()
        blocker.wait(timeout=30)
        as_postgres_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE application_name = '{BLOCKER}'")
        (source / "3_user_mails.sql").unlink()
    return out


def test_ctrl_c_cancels_a_migration_waiting_for_a_lock(interrupted: dict[str, Any]) -> None:
    assert interrupted["waiting"] == "Lock", interrupted["stdout"] + interrupted["stderr"]
    assert interrupted["code"] == 99, interrupted["stdout"] + interrupted["stderr"]
    assert interrupted["seconds"] < 15  # not the 60 s lock timeout
    assert "localhost: cancelled the migration's wait for a table lock" in interrupted["stdout"]
    step = _step(interrupted["doc"])
    assert step["status"] == "failed"
    assert step["reason"].startswith("while executing migration 3: Ctrl-C cancelled its wait "
                                     "for a table lock; rolled back, nothing of it applied")
    assert interrupted["ledger"] == "1,2"
    assert interrupted["ours_left"] == "0"
