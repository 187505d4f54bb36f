"""A role's later life on a real host: its password changed, its name changed.

debian12 provisioned with db_name=chat_prod db_user=chat_app; the app (with its own
DATABASE_URL) writes rows. Then, as an operator would in a first week:

1. `db_password` set: `--check --diff` and a real `--diff` run print neither the old nor the
   new password (stdout, JSON report, `--log-dir` files);
2. `db_user=chat_app2` alone: refused at "preflight", before any change (the host's files and
   roles byte for byte as before), in check mode and for real;
3. with `db_user_rename_from=chat_app`: the role is renamed, the app reads every row with
   the new DATABASE_URL, the old name no longer logs in, its pg_hba block is gone, the
   password (its SCRAM verifier) is unchanged and printed nowhere; the rerun changes nothing.

Needs root and the test bed: CI runs it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.desired import envfile
from tests.integration.conftest import host_of_kind
from tests.integration.helpers import inventory, run_apply

pytestmark = pytest.mark.testbed

NEW_PASSWORD = "Second-password-4711"
APP_SQL = ("CREATE TABLE app_notes (id int PRIMARY KEY, body text); "
           "INSERT INTO app_notes SELECT g, 'note ' || g FROM generate_series(1, 25) g;")
Run = tuple[subprocess.CompletedProcess[str], dict[str, Any]]


def as_app(bed: Any, host: str, sql: str) -> subprocess.CompletedProcess[str]:
    """psql over TCP with the env file's DATABASE_URL, as the Chatalot server connects."""
    p: subprocess.CompletedProcess[str] = bed.ssh(
        host, "set -a; . /etc/chatalot/database.env; "
              f'psql "$DATABASE_URL" -X -At -v ON_ERROR_STOP=1 -c "{sql}"')
    return p


def snapshot(bed: Any, host: str) -> str:
    """What a refused run must not touch: the files we manage, the roles and their secrets."""
    return str(bed.ssh(host, "sha256sum /etc/chatalot/database.env "
                             "/etc/postgresql/15/main/pg_hba.conf "
                             "/etc/postgresql/15/main/conf.d/*; runuser -u postgres -- psql -XAt "
                             "-c 'SELECT rolname, rolpassword FROM pg_authid ORDER BY 1' "
                             "-c 'SELECT datname, datdba::regrole FROM pg_database ORDER BY 1'",
                       check=True).stdout)


def shown(run: Run, logs: Path | None) -> str:
    p, doc = run
    text = p.stdout + p.stderr + repr(doc)
    if logs is not None and logs.exists():
        text += "".join(f.read_text() for f in sorted(logs.rglob("*")) if f.is_file())
    return text


@pytest.fixture(scope="module")
def roles(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("roles")
    host = host_of_kind(bed, "debian12")
    bed.reset(host)
    users = {host: "root"}
    out: dict[str, Any] = {"host": host, "runs": {}, "logs": {}}

    def apply(name: str, inv: Path, *args: str) -> Run:
        logs = tmp / f"logs-{name}"
        out["logs"][name] = logs
        run = run_apply(inv, tmp / f"{name}.json", "--log-dir", str(logs), *args)
        out["runs"][name] = run
        return run

    base = inventory(bed, tmp / "base.ini", users, db_name="chat_prod", db_user="chat_app")
    p, _ = apply("provision", base)
    assert p.returncode == 0, p.stdout + p.stderr
    made = as_app(bed, host, APP_SQL)
    assert made.returncode == 0, made.stderr
    out["first_password"] = envfile.password_from_url(envfile.read_url(bed.ssh(
        host, "cat /etc/chatalot/database.env", check=True).stdout), "chat_app")

    pw = inventory(bed, tmp / "pw.ini", users, db_name="chat_prod", db_user="chat_app",
                   db_password=NEW_PASSWORD)
    apply("password-check", pw, "--check", "--diff")
    apply("password-run", pw, "--diff")

    changed = inventory(bed, tmp / "user.ini", users, db_name="chat_prod", db_user="chat_app2")
    out["before_refused"] = snapshot(bed, host)
    apply("user-check", changed, "--check", "--diff")
    apply("user-run", changed, "--diff")
    out["after_refused"] = snapshot(bed, host)

    renamed = inventory(bed, tmp / "rename.ini", users, db_name="chat_prod",
                        db_user="chat_app2", db_user_rename_from="chat_app")
    out["secret_before"] = bed.ssh(host, "runuser -u postgres -- psql -XAtc \"SELECT "
                                         "rolpassword FROM pg_authid WHERE rolname = "
                                         "'chat_app'\"", check=True).stdout.strip()
    apply("rename-check", renamed, "--check", "--diff")
    apply("rename-run", renamed, "--diff")
    apply("rename-rerun", renamed)
    out["secret_after"] = bed.ssh(host, "runuser -u postgres -- psql -XAtc \"SELECT "
                                        "rolpassword FROM pg_authid WHERE rolname = "
                                        "'chat_app2'\"", check=True).stdout.strip()
    out["rows"] = as_app(bed, host, "SELECT count(*), max(body) FROM app_notes")
    out["env"] = bed.ssh(host, "cat /etc/chatalot/database.env", check=True).stdout
    out["hba"] = bed.ssh(host, "cat /etc/postgresql/15/main/pg_hba.conf", check=True).stdout
    out["old_login"] = bed.ssh(
        host, f"PGPASSWORD={NEW_PASSWORD} psql -X -At -w -h localhost -U chat_app "
              "-d chat_prod -c 'SELECT 1'")
    out["old_role"] = bed.ssh(host, "runuser -u postgres -- psql -XAtc \"SELECT count(*) FROM "
                                    "pg_roles WHERE rolname = 'chat_app'\"",
                              check=True).stdout.strip()
    try:
        yield out
    finally:
        bed.reset(host)


def _steps(run: Run, host: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in run[1]["hosts"][host]["steps"]}


def test_no_password_old_or_new_is_printed_anywhere(roles: dict[str, Any]) -> None:
    secrets = [NEW_PASSWORD, roles["first_password"]]
    assert all(secrets)
    for name, run in roles["runs"].items():
        text = shown(run, roles["logs"][name])
        for secret in secrets:
            assert secret not in text, f"{name} printed a password"
    p, _ = roles["runs"]["password-run"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert "-DATABASE_URL=postgres://chat_app:********@" in p.stdout  # the diff, masked


def test_a_role_change_alone_is_refused_before_any_change(roles: dict[str, Any]) -> None:
    host = roles["host"]
    for name in ("user-check", "user-run"):
        p, doc = roles["runs"][name]
        assert p.returncode == 2, p.stdout + p.stderr
        steps = doc["hosts"][host]["steps"]
        assert [s["name"] for s in steps] == ["gather facts", "preflight"], steps
        assert steps[-1]["status"] == "failed"
        assert steps[-1]["reason"].startswith(
            "database chat_prod belongs to role chat_app, not to db_user chat_app2: changing "
            "db_user is a role change, refused before any change."), steps[-1]["reason"]
        assert "set db_user_rename_from=chat_app" in steps[-1]["reason"]
        assert doc["hosts"][host]["changed"] == 0
    assert roles["after_refused"] == roles["before_refused"]


def test_a_planned_rename_is_done_whole(roles: dict[str, Any]) -> None:
    host = roles["host"]
    p, _ = roles["runs"]["rename-check"]
    assert p.returncode == 0, p.stdout + p.stderr
    check = _steps(roles["runs"]["rename-check"], host)
    assert check["create role chat_app2"]["reason"].startswith(
        "would rename role chat_app to chat_app2")
    assert check["create database chat_prod"]["status"] == "ok"
    p, _ = roles["runs"]["rename-run"]
    assert p.returncode == 0, p.stdout + p.stderr
    run = _steps(roles["runs"]["rename-run"], host)
    assert run["create role chat_app2"]["reason"] == (
        "renamed role chat_app to chat_app2 (its objects, grants, ledger and password kept)")
    assert run["apply migrations"]["status"] == "ok"
    # the app reads every row with the new URL; the old name logs in no more
    assert roles["rows"].returncode == 0, roles["rows"].stderr
    assert roles["rows"].stdout.strip() == "25|note 9"
    assert envfile.read_url(roles["env"]) == (
        f"postgres://chat_app2:{NEW_PASSWORD}@localhost:5432/chat_prod")
    assert roles["old_login"].returncode != 0
    assert 'password authentication failed for user "chat_app"' in roles["old_login"].stderr
    assert roles["old_role"] == "0"
    assert "chat_app@chat_prod" not in roles["hba"]
    assert "managed block for chat_app2@chat_prod" in roles["hba"]
    assert roles["secret_after"] == roles["secret_before"] != ""


def test_the_rerun_after_a_rename_changes_nothing(roles: dict[str, Any]) -> None:
    p, doc = roles["runs"]["rename-rerun"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert doc["hosts"][roles["host"]]["changed"] == 0
