"""`chatalot-db verify`, `status` and `psql` on this machine (local mode), for real.

After apply, verify passes. Then one thing at a time is broken on this
machine's cluster (and put back in a `finally`): a trust line in pg_hba, a
tuned setting changed with ALTER SYSTEM, a ledger row deleted, listen_addresses
= '*', the env file's mode. Each time verify must fail, and exactly one check
must fail, its message naming the thing.

The breakable target is a scratch role and database of its own
(chatalot_vfy, provisioned by `apply -i` with a local inventory), so the
database-level breakages never touch the `chatalot` database; the
server-wide ones (pg_hba, settings, listen_addresses) are undone at once.
Needs root and a Debian-family machine with PostgreSQL: CI runs it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from installer.desired import envfile
from installer.resources import migrations_dir
from installer.sqlx.rules import (
    LEDGER_PROBE,
    load_migrations,
    parse_ledger_probe,
    plan,
    run_script,
)
from installer.verify import suite_path
from tests.integration.helpers import REPO, as_postgres_sql, cli, remove_hba_block

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(os.geteuid() != 0, reason="verify on this machine needs root"),
]

SCRATCH = "chatalot_vfy"
ALL_CHECKS = 19
#: the checks only backup=pgbackrest has (skipped on these backup=pg_dump targets)
PGBACKREST_CHECKS = 2


@dataclass
class Scratch:
    inventory: Path
    env_file: Path
    backup_dir: Path
    tmp: Path


_TRANSIENT = ("shutting down", "starting up", "connection to server", "No such file")


def _psql(sql: str, database: str = "postgres") -> str:
    """SQL as postgres; waits out a restart (other tests share this machine's cluster)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return as_postgres_sql(sql, database)
        except subprocess.CalledProcessError as e:
            if time.monotonic() > deadline or not any(t in (e.stderr or "") for t in _TRANSIENT):
                raise
            time.sleep(1)


def _reload() -> None:
    _psql("SELECT pg_reload_conf();")
    time.sleep(0.3)


def _restart_until(listen_addresses: str) -> None:
    """Restart the cluster until it runs with this listen_addresses (a concurrent restart
    by another test can make one attempt fail)."""
    major = int(_psql("SHOW server_version_num")) // 10000
    for _ in range(5):
        subprocess.run(["pg_ctlcluster", str(major), "main", "restart"], capture_output=True,
                       timeout=180, check=False)
        subprocess.run(["pg_ctlcluster", str(major), "main", "start"], capture_output=True,
                       timeout=180, check=False)  # no-op when running
        if _psql("SHOW listen_addresses") == listen_addresses:
            return
    raise AssertionError(f"PostgreSQL did not come back with listen_addresses = "
                         f"{listen_addresses!r}")


def _hba_path() -> Path:
    return Path(_psql("SHOW hba_file"))


def _ensure_migrated(database: str, role: str) -> None:
    """Stand-in for apply's migration step if this tree's apply does not migrate yet: sqlx's
    run() through installer.sqlx.rules.run_script, as the app role (SET ROLE), in the scratch db."""
    local = load_migrations(migrations_dir())
    probe = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-d", database],
        input=f"SET ROLE {role};\n" + LEDGER_PROBE, capture_output=True, text=True,
        check=True, cwd="/")
    state = parse_ledger_probe(probe.stdout)
    pending = plan(local, state.applied)
    if not pending:
        return
    script = run_script(pending, database=database, applied=state.applied, role=role,
                        set_role=True)
    subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-d", database],
                   input=script, capture_output=True, text=True, check=True, cwd="/")


def _cleanup_scratch(s: Scratch | None) -> None:
    _psql(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE);")
    _psql(f"DROP ROLE IF EXISTS {SCRATCH};")
    remove_hba_block(SCRATCH, SCRATCH)
    if s is not None:
        for f in (s.env_file.parent, s.backup_dir):
            subprocess.run(["rm", "-rf", str(f)], check=True)


@pytest.fixture(scope="module")
def applied() -> subprocess.CompletedProcess[str]:
    """`chatalot-db apply` on this machine, as a user would run it first."""
    p = cli("apply")
    assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.fixture(scope="module")
def scratch(applied: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    """A second app role and database on this machine's cluster, provisioned by apply -i."""
    del applied
    tmp = tmp_path_factory.mktemp("verify")
    _cleanup_scratch(None)
    s = Scratch(tmp / "local.ini", Path(f"/run/{SCRATCH}/database.env"),
                Path(f"/var/tmp/{SCRATCH}-backups"), tmp)
    s.inventory.write_text(
        "[db]\n"
        f"localhost ansible_connection=local migrations_source=bundled "
        f"db_name={SCRATCH} db_user={SCRATCH} "
        f"db_env_file={s.env_file} backup_dir={s.backup_dir}\n")
    try:
        p = cli("apply", "-i", str(s.inventory))
        assert p.returncode == 0, p.stdout + p.stderr
        _ensure_migrated(SCRATCH, SCRATCH)
        yield s
    finally:
        _cleanup_scratch(s)


def _verify(*args: str, junit: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run verify with a JUnit report; return the process and {failed check: message}."""
    if junit.exists():
        junit.unlink()
    p = cli("verify", "--junitxml", str(junit), *args)
    failed: dict[str, str] = {}
    cases = ET.parse(junit).getroot().iter("testcase")
    count = 0
    for case in cases:
        count += 1
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is not None:
                name = case.get("name", "").split("[", 1)[0]
                failed[name] = (node.get("message") or "") + (node.text or "")
    assert count == ALL_CHECKS, p.stdout
    return p, failed


def _only(failed: dict[str, str], check: str, *needles: str) -> None:
    assert list(failed) == [check], failed
    for needle in needles:
        assert needle in failed[check], failed[check]


# -- passing -------------------------------------------------------------------------------------


def test_verify_passes_after_apply(applied: object, tmp_path: Path) -> None:
    start = time.monotonic()
    p, failed = _verify(junit=tmp_path / "default.xml")
    assert p.returncode == 0 and failed == {}, p.stdout + p.stderr
    assert "VERIFY RECAP" in p.stdout and "failed=0" in p.stdout
    assert "test_settings_match_tuning[localhost] PASSED" in p.stdout
    print(f"verify took {time.monotonic() - start:.1f}s")


def test_verify_passes_on_the_scratch_target(scratch: Scratch) -> None:
    p, failed = _verify("-i", str(scratch.inventory), junit=scratch.tmp / "scratch.xml")
    assert p.returncode == 0 and failed == {}, p.stdout + p.stderr


def test_plain_pytest_runs_the_same_suite(scratch: Scratch) -> None:
    """As testinfra users run it: pytest with the local backend, variables from an inventory."""
    p = subprocess.run(
        [str(REPO / ".venv/bin/pytest"), str(suite_path()), "-p", "no:cacheprovider", "-q",
         f"--chatalot-inventory={scratch.inventory}"],
        capture_output=True, text=True, cwd="/", check=False, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    # skipped: the enabled-at-boot check (no systemd as PID 1 here) and the pgBackRest ones
    assert f"16 passed, {1 + PGBACKREST_CHECKS} skipped" in p.stdout
    # the same checks, told another database: the variables really reach the checks
    p = subprocess.run(
        [str(REPO / ".venv/bin/pytest"), str(suite_path()), "-p", "no:cacheprovider", "-q",
         f"--chatalot-inventory={scratch.inventory}", "--chatalot-var=db_name=nosuchdb"],
        capture_output=True, text=True, cwd="/", check=False, timeout=300)
    assert p.returncode == 1 and "database nosuchdb does not exist" in p.stdout, p.stdout


# -- one thing broken at a time --------------------------------------------------------------------


def test_a_trust_line_in_pg_hba(scratch: Scratch) -> None:
    path = _hba_path()
    line = "host    all    all    192.0.2.1/32    trust    # chatalot-db verify test\n"
    try:
        with path.open("a") as f:
            f.write(line)
        _reload()
        number = path.read_text().splitlines().index(line.rstrip("\n")) + 1
        p, failed = _verify("-i", str(scratch.inventory), junit=scratch.tmp / "trust.xml")
    finally:
        path.write_text(path.read_text().replace(line, ""))
        _reload()
    assert p.returncode == 2, p.stdout + p.stderr
    _only(failed, "test_pg_hba_has_no_trust_rules",
          f"pg_hba line {number} uses trust (host all all 192.0.2.1/32)")
    assert f"pg_hba line {number} uses trust" in p.stdout


def test_a_tuned_setting_changed_by_hand(scratch: Scratch) -> None:
    wanted = _psql("SHOW work_mem")
    try:
        _psql("ALTER SYSTEM SET work_mem = '1MB';")
        _reload()
        p, failed = _verify("-i", str(scratch.inventory), junit=scratch.tmp / "work_mem.xml")
    finally:
        _psql("ALTER SYSTEM RESET work_mem;")
        _reload()
    assert _psql("SHOW work_mem") == wanted
    assert p.returncode == 2, p.stdout + p.stderr
    _only(failed, "test_settings_match_tuning", "work_mem is 1MB (set in ",
          "postgresql.auto.conf", f"the tuning calculator gives {wanted}")
    assert "work_mem is 1MB" in p.stdout


def test_a_ledger_row_deleted(scratch: Scratch) -> None:
    newest = max(m.version for m in load_migrations(migrations_dir()))
    row = _psql(f"SELECT description, installed_on, success, encode(checksum, 'hex'), "
                f"execution_time FROM _sqlx_migrations WHERE version = {newest}", SCRATCH)
    description, installed_on, success, checksum, execution_time = row.split("|")
    try:
        _psql(f"DELETE FROM _sqlx_migrations WHERE version = {newest};", SCRATCH)
        p, failed = _verify("-i", str(scratch.inventory), junit=scratch.tmp / "ledger.xml")
    finally:
        _psql("INSERT INTO _sqlx_migrations (version, description, installed_on, success, "
              f"checksum, execution_time) VALUES ({newest}, $d${description}$d$, "
              f"'{installed_on}', '{success}', decode('{checksum}', 'hex'), {execution_time}) "
              "ON CONFLICT DO NOTHING;", SCRATCH)
    assert p.returncode == 2, p.stdout + p.stderr
    _only(failed, "test_migrations_are_applied", f"migration {newest} is missing from the ledger")


def test_listen_addresses_star(scratch: Scratch) -> None:
    try:
        _psql("ALTER SYSTEM SET listen_addresses = '*';")
        _restart_until("*")
        p, failed = _verify("-i", str(scratch.inventory), junit=scratch.tmp / "listen.xml")
    finally:
        _psql("ALTER SYSTEM RESET listen_addresses;")
        _restart_until("localhost")
    assert _psql("SHOW listen_addresses") == "localhost"
    assert p.returncode == 2, p.stdout + p.stderr
    _only(failed, "test_listens_only_where_configured", "postgresql listens on 0.0.0.0:5432",
          "listen_addresses is '*'")


def test_env_file_mode_0644(scratch: Scratch) -> None:
    try:
        scratch.env_file.chmod(0o644)
        p, failed = _verify("-i", str(scratch.inventory), junit=scratch.tmp / "mode.xml")
    finally:
        scratch.env_file.chmod(0o600)
    assert p.returncode == 2, p.stdout + p.stderr
    _only(failed, "test_env_file_is_0600_root",
          f"env file {scratch.env_file} has mode 0644, not 0600")


# -- status and psql ------------------------------------------------------------------------------


def test_status_shows_size_and_migration_counts(scratch: Scratch) -> None:
    total = len(load_migrations(migrations_dir()))
    scratch.backup_dir.mkdir(parents=True, exist_ok=True)
    old, new = f"{SCRATCH}-20200101T000000Z-manual.dump", f"{SCRATCH}-20991231T000000Z-manual.dump"
    (scratch.backup_dir / old).write_bytes(b"x" * 10)
    os.utime(scratch.backup_dir / old, (1, 1))
    (scratch.backup_dir / new).write_bytes(b"x" * 20480)
    (scratch.backup_dir / f"{SCRATCH}-unrelated.dump").write_bytes(b"x" * 5)
    start = time.monotonic()
    p = cli("status", "-i", str(scratch.inventory))
    took = time.monotonic() - start
    assert p.returncode == 0, p.stdout + p.stderr
    lines = {ln.split()[0]: ln for ln in p.stdout.splitlines()[1:] if ln.strip()}
    assert lines["PostgreSQL"].split()[1].startswith(_psql("SHOW server_version").split()[0])
    size = _psql(f"SELECT pg_size_pretty(pg_database_size('{SCRATCH}'))")
    assert lines["database"].split(None, 1)[1] == size
    assert lines["migrations"].split(None, 1)[1] == f"{total} applied, 0 pending"
    assert f"{new} (manual, 20 kB, " in lines["last"], lines["last"]
    assert lines["backups"].split(None, 1)[1] == "2 (2 manual)", lines["backups"]
    assert "/ " + _psql("SHOW max_connections") in lines["connections"]
    print(f"status took {took:.2f}s")
    p = cli("status")  # migrations_source none: the server's own ledger, counted
    rows = _psql("SELECT CASE WHEN to_regclass('public._sqlx_migrations') IS NULL THEN -1 "
                 "ELSE (SELECT count(*) FROM public._sqlx_migrations) END", "chatalot")
    said = ("no ledger yet (the server has not started on it)" if rows == "-1"
            else f"{rows} in its ledger")
    assert p.returncode == 0 and ("migrations   left to the Chatalot server (migrations_source "
                                  f"is none): {said}\n") in p.stdout, p.stdout


def test_psql_runs_a_query_as_the_app_role(scratch: Scratch) -> None:
    p = cli("psql", "localhost", "-i", str(scratch.inventory), "-c",
            "select current_user, current_database(), inet_server_addr() is not null as tcp")
    assert p.returncode == 0, p.stderr
    rows = [[c.strip() for c in ln.split("|")] for ln in p.stdout.splitlines() if "|" in ln]
    assert rows == [["current_user", "current_database", "tcp"], [SCRATCH, SCRATCH, "t"]], \
        p.stdout
    p = cli("psql", "localhost", "-i", str(scratch.inventory), "-c", "select nope")
    assert p.returncode != 0 and 'column "nope" does not exist' in p.stderr


def test_psql_password_is_in_no_command_line(scratch: Scratch) -> None:
    url = envfile.read_url(scratch.env_file.read_text())
    password = envfile.password_from_url(url, SCRATCH)
    assert password
    seen: list[str] = []
    done = threading.Event()

    def scan() -> None:
        while not done.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    seen.append(cmdline.read_bytes().decode(errors="replace"))
                except OSError:
                    continue
            time.sleep(0.05)

    scanner = threading.Thread(target=scan)
    scanner.start()
    try:
        p = cli("psql", "localhost", "-i", str(scratch.inventory), "-c", "select pg_sleep(1.5)")
        v = cli("verify", "-i", str(scratch.inventory), "-k", "logs_in")
    finally:
        done.set()
        scanner.join()
    assert p.returncode == 0 and v.returncode == 0, p.stderr + v.stdout
    assert any("pg_sleep" in c for c in seen)  # the scan did see the running psql
    assert not any(password in c for c in seen)
    assert password not in p.stdout + p.stderr + v.stdout + v.stderr
