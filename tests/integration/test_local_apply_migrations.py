"""The `apply migrations` step, and `migrate run|info -i`, on this machine (local mode).

Its own app (`mig_apply` role and database, its own env file and backup folder; never
`chatalot` or `ci_app`), dropped first and afterwards. Needs root.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.steps.migrations import BUNDLED_NOTE, SKIP_REASON
from tests.integration.helpers import REPO, as_postgres_sql, cli, run_apply

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(os.geteuid() != 0, reason="apply on this machine needs root"),
]

APP = "mig_apply"


def _drop() -> None:
    as_postgres_sql(f"DROP DATABASE IF EXISTS {APP} WITH (FORCE);")
    as_postgres_sql(f"DROP ROLE IF EXISTS {APP};")


def step(doc: dict[str, Any], name: str = "apply migrations") -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in doc["hosts"]["localhost"]["steps"]
                                   if s["name"] == name]
    assert len(found) == 1, doc
    return found[0]


def ledger() -> list[tuple[int, str]]:
    out = as_postgres_sql("SELECT version, pg_get_userbyid(c.relowner) FROM _sqlx_migrations, "
                          "pg_class c WHERE c.oid = '_sqlx_migrations'::regclass "
                          "ORDER BY version", database=APP)
    return [(int(v), owner) for v, owner in (line.split("|") for line in out.splitlines())]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("migapply")
    # the backup folder must be reachable by postgres: not under pytest's 0700 tmp
    shared = Path(tempfile.mkdtemp(prefix="chatalot-migapply-"))
    shared.chmod(0o755)
    _drop()
    line = (f"localhost ansible_connection=local migrations_source=bundled "
            f"db_name={APP} db_user={APP} "
            f"db_env_file={tmp / 'app.env'} backup_dir={shared / 'backups'}")
    inv = tmp / "local.ini"
    inv.write_text(f"[local]\n{line}\n")
    source = tmp / "migrations"
    shutil.copytree(REPO / "migrations", source)
    inv53 = tmp / "local53.ini"
    inv53.write_text(f"[local]\n{line} migrations_source={source}\n")
    out: dict[str, Any] = {"tmp": tmp, "inv": inv, "inv53": inv53, "source": source,
                           "backups": shared / "backups"}
    out["check"] = run_apply(inv, tmp / "check.json", "--check")
    out["first"] = run_apply(inv, tmp / "first.json")
    out["ledger_first"] = ledger()
    out["second"] = run_apply(inv, tmp / "second.json")
    (source / "053_extra.sql").write_text("CREATE TABLE mig_extra (id bigint PRIMARY KEY);\n")
    out["check53"] = run_apply(inv53, tmp / "check53.json", "--check")
    out["third"] = run_apply(inv53, tmp / "third.json")
    out["fourth"] = run_apply(inv53, tmp / "fourth.json")
    yield out
    _drop()
    shutil.rmtree(shared, ignore_errors=True)


def test_check_mode_says_what_it_would_apply(runs: dict[str, Any]) -> None:
    p, doc = runs["check"]
    assert p.returncode == 0, p.stdout + p.stderr
    s = step(doc)
    assert (s["status"], s["reason"]) == ("changed", "would apply 52 migrations: 1-52; "
                                          + BUNDLED_NOTE)  # (the default source)


def test_first_apply_applies_52_as_the_app_role(runs: dict[str, Any]) -> None:
    p, doc = runs["first"]
    assert p.returncode == 0, p.stdout + p.stderr
    s = step(doc)
    assert (s["status"], s["reason"]) == ("changed",
                                          "applied 1-52 (52 migrations); " + BUNDLED_NOTE)
    print(f"\n52 migrations by the apply step (incl. its state probe): {s['seconds']}s")
    assert runs["ledger_first"] == [(v, APP) for v in range(1, 53)]
    names = [x["name"] for x in doc["hosts"]["localhost"]["steps"]]
    assert names.index("apply migrations") == names.index(f"write {runs['tmp'] / 'app.env'}") + 1
    assert names[names.index("apply migrations") + 1:] == ["schedule backups",
                                                        "check DATABASE_URL login"]
    foreign = as_postgres_sql(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> '{APP}'", database=APP)
    assert foreign == "0"


def test_rerun_is_ok_and_changes_nothing(runs: dict[str, Any]) -> None:
    p, doc = runs["second"]
    assert p.returncode == 0, p.stdout + p.stderr
    s = step(doc)
    assert (s["status"], s["reason"]) == ("ok", "52 applied, none pending")
    # (the whole run's changed=0 is test_local_apply's: other apps' runs on this shared
    # cluster, e.g. concurrent test sessions, move their pg_hba block above ours)


def test_new_migration_on_data_is_backed_up_first(runs: dict[str, Any]) -> None:
    p, doc = runs["check53"]
    assert step(doc)["reason"] == (f"would back up {APP} to {runs['backups']}, then apply "
                                   "1 migration: 53")
    p, doc = runs["third"]
    assert p.returncode == 0, p.stdout + p.stderr
    s = step(doc)
    assert s["status"] == "changed"
    m = re.fullmatch(r"applied 53 \(1 migration\); backup (\S+)", s["reason"])
    assert m, s["reason"]
    dump = Path(m.group(1))
    assert dump.parent == runs["backups"]
    assert re.fullmatch(rf"{APP}-\d{{8}}T\d{{6}}Z-before-53\.dump", dump.name)
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    folder = runs["backups"].stat()
    assert stat.S_IMODE(folder.st_mode) == 0o700
    postgres = pwd.getpwnam("postgres")
    assert (folder.st_uid, folder.st_gid) == (postgres.pw_uid, postgres.pw_gid)
    assert [v for v, _ in ledger()] == list(range(1, 54))
    p, doc = runs["fourth"]
    assert (step(doc)["status"], step(doc)["reason"]) == ("ok", "53 applied, none pending")
    assert len(list(runs["backups"].iterdir())) == 1


def test_no_backup_and_a_failing_migration(runs: dict[str, Any]) -> None:
    """--no-backup skips the dump (and says so); a failing migration fails the host with
    the database's error, keeps the ones before it, and the fixed file then applies."""
    source: Path = runs["source"]
    (source / "054_ok.sql").write_text("CREATE TABLE mig_054 (id bigint);\n")
    (source / "055_broken.sql").write_text("CREATE TABLE mig_055 (id bigint);\n"
                                           "SELECT no_such_function();\n")
    p, doc = run_apply(runs["inv53"], runs["tmp"] / "fail.json", "--no-backup")
    assert p.returncode == 2, p.stdout + p.stderr
    s = step(doc)
    assert s["status"] == "failed"
    assert s["reason"] == ("applied 54 (1 migration); while executing migration 55: error "
                           "returned from database: function no_such_function() does not "
                           "exist; no backup (--no-backup)")
    assert [v for v, _ in ledger()] == list(range(1, 55))
    assert len(list(runs["backups"].iterdir())) == 1
    (source / "055_broken.sql").write_text("CREATE TABLE mig_055 (id bigint);\n")
    p, doc = run_apply(runs["inv53"], runs["tmp"] / "fixed.json", "--no-backup")
    assert p.returncode == 0, p.stdout + p.stderr
    assert step(doc)["reason"] == "applied 55 (1 migration); no backup (--no-backup)"


def test_modified_file_fails_the_host_with_sqlxs_message(runs: dict[str, Any]) -> None:
    source: Path = runs["source"]
    path = source / "001_users.sql"
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"-- edited\n")
        (source / "056_never.sql").write_text("CREATE TABLE mig_never (id bigint);\n")
        p, doc = run_apply(runs["inv53"], runs["tmp"] / "modified.json")
        assert p.returncode == 2
        s = step(doc)
        assert (s["status"], s["reason"]) == (
            "failed", "migration 1 was previously applied but has been modified")
        assert 56 not in [v for v, _ in ledger()]
    finally:
        path.write_bytes(original)
        (source / "056_never.sql").unlink()


def test_migrations_source_none_skips(runs: dict[str, Any]) -> None:
    inv = runs["tmp"] / "none.ini"
    inv.write_text(runs["inv"].read_text().rstrip("\n") + " migrations_source=none\n")
    p, doc = run_apply(inv, runs["tmp"] / "none.json")
    assert p.returncode == 0, p.stdout + p.stderr
    s = step(doc)
    assert (s["status"], s["reason"]) == (
        "skipped", SKIP_REASON)


def test_migrate_info_and_run_on_inventory_hosts(runs: dict[str, Any]) -> None:
    p = cli("migrate", "info", "-i", str(runs["inv53"]))
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[lines.index("1/installed users") + 54] == "55/installed broken"
    assert "DATABASE_URL" not in p.stdout
    p = cli("migrate", "run", "-i", str(runs["inv53"]))
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"TASK \[apply migrations\] \.+ ok +\(55 applied, none pending\)", p.stdout)
    (runs["source"] / "057_via_migrate.sql").write_text("CREATE TABLE mig_057 (id bigint);\n")
    p = cli("migrate", "run", "-i", str(runs["inv53"]), "--no-backup")
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"^Applied 57/migrate via migrate \(\S+\)$", p.stdout, re.M), p.stdout
    assert [v for v, _ in ledger()][-1] == 57
