"""`chatalot-db apply` on this machine itself (local mode, no systemd here), twice.

Needs root and a Debian-family machine: CI runs it on the CI machine.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from installer.desired import envfile
from tests.integration.helpers import apply, as_postgres_sql

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(os.geteuid() != 0, reason="apply on this machine needs root"),
]

ENV_FILE = Path("/etc/chatalot/database.env")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("local")
    first, doc1 = apply(report=tmp / "first.json")
    second, doc2 = apply(report=tmp / "second.json")
    return {"first": first, "doc1": doc1, "second": second, "doc2": doc2}


def _password() -> str:
    pw = envfile.password_from_url(envfile.read_url(ENV_FILE.read_text()), "chatalot")
    assert pw
    return pw


def test_first_run_succeeds(two_runs: dict[str, object]) -> None:
    first = two_runs["first"]
    assert isinstance(first, subprocess.CompletedProcess)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "PLAY RECAP" in first.stdout
    assert re.search(r"localhost\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", first.stdout)


def test_second_run_changes_nothing(two_runs: dict[str, object]) -> None:
    second, doc2 = two_runs["second"], two_runs["doc2"]
    assert isinstance(second, subprocess.CompletedProcess) and isinstance(doc2, dict)
    assert second.returncode == 0, second.stdout + second.stderr
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", second.stdout)
    host = doc2["hosts"]["localhost"]
    assert host["changed"] == 0 and host["failed"] == 0
    assert [s["status"] for s in host["steps"] if s["status"] == "changed"] == []


def test_enable_is_skipped_with_the_reason_without_systemd(two_runs: dict[str, object]) -> None:
    doc2 = two_runs["doc2"]
    assert isinstance(doc2, dict)
    steps = {s["name"]: s for s in doc2["hosts"]["localhost"]["steps"]}
    enable = steps["enable postgresql at boot"]
    assert enable["status"] == "skipped"
    assert "no systemd" in enable["reason"] and "pg_ctlcluster" in enable["reason"]


def test_database_url_logs_in_over_tcp(two_runs: dict[str, object]) -> None:
    del two_runs
    url = envfile.read_url(ENV_FILE.read_text())
    assert url and url.startswith("postgres://chatalot:") and "@localhost:5432/chatalot" in url
    sql = "select current_user, inet_server_addr() is not null"
    p = subprocess.run(["psql", url, "-XAtc", sql], capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "chatalot|t"  # a TCP connection has a server address


def test_wrong_password_is_refused(two_runs: dict[str, object]) -> None:
    del two_runs
    p = subprocess.run(
        ["psql", "postgres://chatalot:wrong@localhost:5432/chatalot", "-XAtc", "select 1"],
        capture_output=True, text=True, check=False)
    assert p.returncode != 0 and "password authentication failed" in p.stderr


def test_role_and_database(two_runs: dict[str, object]) -> None:
    del two_runs
    assert as_postgres_sql(
        "select rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, left(rolpassword, 14) "
        "from pg_authid where rolname = 'chatalot'") == "f|f|f|t|SCRAM-SHA-256$"
    assert as_postgres_sql(
        "select pg_get_userbyid(datdba), pg_encoding_to_char(encoding), "
        "has_database_privilege('public', oid, 'CONNECT') "
        "from pg_database where datname = 'chatalot'") == "chatalot|UTF8|f"
    assert as_postgres_sql("select has_schema_privilege('chatalot', 'public', 'CREATE')",
                           "chatalot") == "t"


def test_no_trust_and_loopback_only(two_runs: dict[str, object]) -> None:
    del two_runs
    assert as_postgres_sql("select count(*) from pg_hba_file_rules where auth_method = 'trust'") \
        == "0"
    assert as_postgres_sql("show listen_addresses") in ("localhost", "127.0.0.1,::1")
    rules = as_postgres_sql("select address from pg_hba_file_rules where "
                            "'chatalot' = any(user_name) and 'chatalot' = any(database)")
    assert set(rules.split()) == {"127.0.0.1", "::1"}


def test_env_file_is_0600_root(two_runs: dict[str, object]) -> None:
    del two_runs
    st = ENV_FILE.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0 and st.st_gid == 0


def test_password_never_in_output_or_report(two_runs: dict[str, object], tmp_path: Path) -> None:
    pw = _password()
    for key in ("first", "second"):
        p = two_runs[key]
        assert isinstance(p, subprocess.CompletedProcess)
        assert pw not in p.stdout and pw not in p.stderr
    # --diff and --check output too
    p, doc = apply("--check", "--diff", report=tmp_path / "check.json")
    assert p.returncode == 0
    assert pw not in p.stdout + p.stderr and pw not in (tmp_path / "check.json").read_text()
    assert doc["hosts"]["localhost"]["changed"] == 0


def test_without_systemd_cron_runs_the_nightly_dump(two_runs: dict[str, object]) -> None:
    """This machine has no systemd as PID 1; CI runs cron here (scripts/test.sh)."""
    doc1, doc2 = two_runs["doc1"], two_runs["doc2"]
    assert isinstance(doc1, dict) and isinstance(doc2, dict)
    steps = {s["name"]: s for s in doc2["hosts"]["localhost"]["steps"]}
    assert steps["schedule backups"]["status"] == "ok"
    assert steps["schedule backups"]["reason"].startswith("pg_dump of chatalot daily at ")
    assert "(cron, spread by machine-id), kept 7 days in /var/backups/chatalot" in \
        steps["schedule backups"]["reason"]
    entry = Path("/etc/cron.d/chatalot-db-backup-chatalot")
    line = [ln for ln in entry.read_text().splitlines() if not ln.startswith(("#", "SHELL",
                                                                               "PATH"))]
    assert len(line) == 1 and line[0].endswith(
        " * * * postgres /usr/local/lib/chatalot-db/backup chatalot 5432 "
        "/var/backups/chatalot 7 /usr/lib/postgresql/15/bin scheduled"), line
    assert stat.S_IMODE(entry.stat().st_mode) == 0o644 and entry.stat().st_uid == 0
    # what cron would run, run now as cron runs it: a dump appears, 0600, postgres's
    cmd = line[0].split(" postgres ", 1)[1]
    r = subprocess.run(["runuser", "-u", "postgres", "--", "sh", "-c", cmd], cwd="/",
                       capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.split()[0])
    assert path.name.startswith("chatalot-") and path.name.endswith("-scheduled.dump")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.unlink()


def test_the_readme_s_first_command_leaves_migrations_to_the_server(
        two_runs: dict[str, object]) -> None:
    """migrations_source defaults to none: the Chatalot server applies its own release's
    migrations when it starts (the bundled set would give a ledger it refuses)."""
    from installer.steps.migrations import SKIP_REASON

    doc1, doc2 = two_runs["doc1"], two_runs["doc2"]
    assert isinstance(doc1, dict) and isinstance(doc2, dict)
    for doc in (doc1, doc2):
        step = {s["name"]: s for s in doc["hosts"]["localhost"]["steps"]}["apply migrations"]
        assert (step["status"], step["reason"]) == ("skipped", SKIP_REASON), step
