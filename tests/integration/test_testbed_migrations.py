"""The migrations over SSH on real hosts: Debian 12 (PostgreSQL 15) and 13 (PostgreSQL 17).

Uses the session's test bed as it finds it (other modules may have provisioned the hosts),
with an app of its own (`mig_bed`, its own env file), dropped first, so the step really
applies the 52 migrations here. debian12 is reached as root, debian13 as the sudo user.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from installer.steps.migrations import BUNDLED_NOTE
from tests.integration.helpers import REPO, cli, inventory, run_apply

pytestmark = pytest.mark.testbed

APP = "mig_bed"
ENV_FILE = f"/etc/chatalot/{APP}.env"
USERS = {"debian12": "root", "debian13": "ops"}


def _hosts(bed: Any) -> list[str]:
    return sorted(h for h in bed.hosts if h.split("-")[0] in USERS)


def _sql(bed: Any, host: str, query: str, database: str = APP) -> str:
    r = bed.ssh(host, f"cd / && runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 -d {database}",
                input=query)
    assert r.returncode == 0, r.stderr
    return str(r.stdout).strip()


def _steps(doc: dict[str, Any], host: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in doc["hosts"][host]["steps"]}


@pytest.fixture(scope="module")
def runs(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bedmig")
    hosts = _hosts(bed)
    assert len(hosts) == 2, bed.hosts
    for h in hosts:  # a clean app, whatever earlier modules left (no-op on a fresh host)
        bed.ssh(h, f"cd / && command -v psql >/dev/null && runuser -u postgres -- psql -Xq "
                   f"-c 'DROP DATABASE IF EXISTS {APP} WITH (FORCE)' -c 'DROP ROLE IF EXISTS "
                   f"{APP}'; rm -rf /var/backups/chatalot; true")
    users = {h: USERS[h.split("-")[0]] for h in hosts}
    inv = inventory(bed, tmp / "mig.ini", users, db_name=APP, db_user=APP, db_env_file=ENV_FILE)
    source = tmp / "migrations"
    shutil.copytree(REPO / "migrations", source)
    inv53 = inventory(bed, tmp / "mig53.ini", users, db_name=APP, db_user=APP,
                      db_env_file=ENV_FILE, migrations_source=str(source))
    out: dict[str, Any] = {"hosts": hosts, "tmp": tmp, "inv": inv, "inv53": inv53,
                           "source": source}
    out["first"] = run_apply(inv, tmp / "first.json")
    out["second"] = run_apply(inv, tmp / "second.json")
    out["info"] = cli("migrate", "info", "-i", str(inv))
    (source / "053_extra.sql").write_text("CREATE TABLE mig_extra (id bigint PRIMARY KEY);\n")
    out["run53"] = cli("migrate", "run", "-i", str(inv53), "--json", str(tmp / "run53.json"))
    return out


def test_first_apply_applies_the_52_migrations(runs: dict[str, Any]) -> None:
    p, doc = runs["first"]
    assert p.returncode == 0, p.stdout + p.stderr
    for h in runs["hosts"]:
        step = _steps(doc, h)["apply migrations"]
        assert (step["status"], step["reason"]) == (
            "changed", "applied 1-52 (52 migrations); " + BUNDLED_NOTE)  # the default source
        print(f"\n{h}: 52 migrations by the apply step over SSH: {step['seconds']}s")


def test_ledger_has_52_rows_owned_by_the_app_role(bed: Any, runs: dict[str, Any]) -> None:
    for h in runs["hosts"]:
        major = bed.hosts[h].pg_major
        assert _sql(bed, h, "SHOW server_version_num").startswith(str(major))
        assert _sql(bed, h, "SELECT count(*), min(version), max(version), bool_and(success), "
                            "pg_get_userbyid((SELECT relowner FROM pg_class "
                            "WHERE oid = '_sqlx_migrations'::regclass)) "
                            "FROM _sqlx_migrations WHERE version <= 52") == f"52|1|52|t|{APP}"
        assert _sql(bed, h, "SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                            f"AND pg_get_userbyid(c.relowner) <> '{APP}'") == "0"


def test_app_role_can_alter_every_table(bed: Any, runs: dict[str, Any]) -> None:
    for h in runs["hosts"]:
        out = _sql(bed, h, f"""
            BEGIN;
            SET ROLE {APP};
            CREATE TEMP TABLE altered (t text);
            DO $$
            DECLARE r record;
            BEGIN
                FOR r IN SELECT c.oid::regclass AS t FROM pg_class c
                         JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                LOOP
                    EXECUTE format('ALTER TABLE %s ADD COLUMN chatalot_probe int', r.t);
                    INSERT INTO altered VALUES (r.t::text);
                END LOOP;
            END $$;
            SELECT count(*) FROM altered;
            ROLLBACK;""")
        assert int(out.splitlines()[-2]) >= 46, out


def test_rerun_changes_nothing(runs: dict[str, Any]) -> None:
    p, doc = runs["second"]
    assert p.returncode == 0, p.stdout + p.stderr
    for h in runs["hosts"]:
        assert doc["hosts"][h]["changed"] == 0, doc["hosts"][h]
        step = _steps(doc, h)["apply migrations"]
        assert (step["status"], step["reason"]) == ("ok", "52 applied, none pending")
        assert re.search(rf"{h}\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", p.stdout)


def test_migrate_info_over_ssh(runs: dict[str, Any]) -> None:
    p = runs["info"]
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    for h in runs["hosts"]:
        block = lines[lines.index(f"[{h}]") + 1:][:52]
        assert block[0] == "1/installed users" and block[-1] == "52/installed oidc"
        assert all("/installed " in line for line in block)


def test_migrate_run_backs_up_then_applies(bed: Any, runs: dict[str, Any]) -> None:
    p = runs["run53"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert "DATABASE_URL" not in p.stdout
    for h in runs["hosts"]:
        assert f"[{h}]\nApplied 53/migrate extra (" in p.stdout
        m = re.search(rf"{h}\s+TASK \[apply migrations\] \.+ changed +\(applied 53 "
                      rf"\(1 migration\); backup (/var/backups/chatalot/{APP}-\d{{8}}T\d{{6}}Z"
                      rf"-before-53\.dump)\)", p.stdout)
        assert m, p.stdout
        r = bed.ssh(h, f"stat -c '%a %U' /var/backups/chatalot {m.group(1)}")
        assert r.stdout.split() == ["700", "postgres", "600", "postgres"], r.stdout + r.stderr
        listing = bed.ssh(h, f"cd / && runuser -u postgres -- pg_restore --list {m.group(1)}")
        assert listing.returncode == 0 and "_sqlx_migrations" in listing.stdout
    doc_path: Path = runs["tmp"] / "run53.json"
    assert doc_path.exists()
