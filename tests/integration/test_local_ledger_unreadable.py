"""A ledger the app role cannot read is an error everywhere, never an empty ledger.

On this machine's cluster (local mode): an app of its own (`ledger_unread` role and
database, its own env file; never `chatalot` or `ci_app`) is provisioned and migrated by
apply; then `_sqlx_migrations` is given to another role and the app role loses every
privilege on it ("permission denied for table _sqlx_migrations"). While it is so, status,
migrate info (-i and --database-url), migrate run --dry-run, apply --check and verify run
once each; the ledger is given back in a `finally`, and the app dropped at the end.
Each must fail naming the error; none may say "pending", "would apply" or "missing".
Needs root.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from installer.desired import envfile
from tests.integration.helpers import as_postgres_sql, cli, remove_hba_block, run_apply

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(os.geteuid() != 0, reason="apply on this machine needs root"),
]

APP = "ledger_unread"
#: the role the ledger is given to while it is unreadable
OTHER = "ledger_unread_owner"
DENIED = "permission denied for table _sqlx_migrations"
#: what each command says when the ledger could not be read
UNREADABLE = (f"_sqlx_migrations in database {APP} (owner {OTHER}) could not be read: "
              f"ERROR: {DENIED}")
#: what no command may say about a ledger it could not read
EMPTY_LEDGER_WORDS = ("pending", "would apply", "Can apply", "missing from the ledger",
                      "installed")


def _drop() -> None:
    as_postgres_sql(f"DROP DATABASE IF EXISTS {APP} WITH (FORCE);")
    as_postgres_sql(f"DROP ROLE IF EXISTS {APP};")
    as_postgres_sql(f"DROP ROLE IF EXISTS {OTHER};")
    remove_hba_block(APP, APP)


def _break_ledger() -> None:
    as_postgres_sql(f"CREATE ROLE {OTHER} NOLOGIN;")
    as_postgres_sql(f"ALTER TABLE _sqlx_migrations OWNER TO {OTHER};\n"
                    f"REVOKE ALL ON _sqlx_migrations FROM {APP};", database=APP)


def _restore_ledger() -> None:
    as_postgres_sql(f"ALTER TABLE IF EXISTS _sqlx_migrations OWNER TO {APP};", database=APP)
    as_postgres_sql(f"DROP ROLE IF EXISTS {OTHER};")


def _verify(junit: Path, inv: Path) -> tuple[CompletedProcess[str], dict[str, str]]:
    """verify with a JUnit report: the process and {failed check: its message}."""
    p = cli("verify", "--junitxml", str(junit), "-i", str(inv), timeout=600)
    failed: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is not None:
                failed[case.get("name", "").split("[", 1)[0]] = \
                    (node.get("message") or "") + (node.text or "")
    return p, failed


def _step(doc: dict[str, Any], name: str = "apply migrations") -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in doc["hosts"]["localhost"]["steps"]
                                   if s["name"] == name]
    assert len(found) == 1, doc
    return found[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("ledger_unread")
    env_file = tmp / "app.env"
    line = (f"localhost ansible_connection=local migrations_source=bundled "
            f"db_name={APP} db_user={APP} "
            f"db_env_file={env_file} backup_dir={tmp / 'backups'}")
    inv, start = tmp / "local.ini", tmp / "start.ini"
    inv.write_text(f"[local]\n{line}\n")
    # the cluster must run before anything is dropped: an apply that leaves any ledger alone
    start.write_text(f"[local]\n{line} migrations_source=none\n")
    p, _ = run_apply(start, tmp / "start.json")
    assert p.returncode == 0, p.stdout + p.stderr
    _drop()
    out: dict[str, Any] = {"tmp": tmp, "inv": inv}
    try:
        p, doc = run_apply(inv, tmp / "provision.json")
        assert p.returncode == 0, p.stdout + p.stderr
        assert _step(doc)["reason"].startswith("applied 1-"), doc
        url = envfile.read_url(env_file.read_text())
        assert url is not None
        try:
            _break_ledger()
            out["probe"] = as_postgres_sql(
                f"SELECT has_table_privilege('{APP}', '_sqlx_migrations', 'SELECT');",
                database=APP)
            out["status"] = cli("status", "-i", str(inv))
            out["info"] = cli("migrate", "info", "-i", str(inv))
            out["info_url"] = cli("migrate", "info", "--database-url", url)
            out["dry_run"] = cli("migrate", "run", "--dry-run", "-i", str(inv))
            out["check"] = run_apply(inv, tmp / "check.json", "--check")
            out["verify"] = _verify(tmp / "verify.xml", inv)
        finally:
            _restore_ledger()
        out["status_after"] = cli("status", "-i", str(inv))
        yield out
    finally:
        _drop()


def _no_empty_ledger_words(text: str) -> None:
    for words in EMPTY_LEDGER_WORDS:
        assert words not in text, text


def test_the_ledger_really_is_unreadable(runs: dict[str, Any]) -> None:
    assert runs["probe"] == "f"


def test_status_shows_the_error_and_exits_2(runs: dict[str, Any]) -> None:
    p = runs["status"]
    assert p.returncode == 2, p.stdout + p.stderr
    lines = {ln.split()[0]: ln for ln in p.stdout.splitlines()[1:] if ln.strip()}
    assert lines["migrations"].split(None, 1)[1] == UNREADABLE, p.stdout
    _no_empty_ledger_words(p.stdout)


@pytest.mark.parametrize("run", ["info", "dry_run"], ids=["migrate info", "migrate run --dry-run"])
def test_migrate_on_the_host_fails_the_step(runs: dict[str, Any], run: str) -> None:
    p = runs[run]  # never "0 installed" nor "Can apply"
    assert p.returncode == 2, p.stdout + p.stderr
    assert UNREADABLE in p.stdout, p.stdout
    _no_empty_ledger_words(p.stdout)


def test_migrate_info_by_url_fails(runs: dict[str, Any]) -> None:
    p = runs["info_url"]
    assert p.returncode != 0, p.stdout + p.stderr
    assert DENIED in p.stderr, p.stderr
    assert p.stdout == ""  # not one `1/pending users` line


def test_apply_check_fails_instead_of_would_apply(runs: dict[str, Any]) -> None:
    p, doc = runs["check"]
    assert p.returncode == 2, p.stdout + p.stderr
    s = _step(doc)
    assert (s["status"], s["reason"]) == ("failed", UNREADABLE)
    assert "would apply" not in p.stdout and "Can apply" not in p.stdout, p.stdout


def test_verify_fails_the_migration_and_table_checks_naming_the_error(
        runs: dict[str, Any]) -> None:
    p, failed = runs["verify"]
    assert p.returncode == 2, p.stdout + p.stderr
    assert set(failed) == {"test_migrations_are_applied",
                           "test_app_role_can_read_every_table"}, failed
    assert UNREADABLE in failed["test_migrations_are_applied"]
    assert "missing from the ledger" not in failed["test_migrations_are_applied"]
    assert (f"role {APP} lacks SELECT on table _sqlx_migrations in schema public of database "
            f"{APP}") in failed["test_app_role_can_read_every_table"]


def test_restored_ledger_reads_again(runs: dict[str, Any]) -> None:
    p = runs["status_after"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert "applied, 0 pending" in p.stdout, p.stdout
