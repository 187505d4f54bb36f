"""Another major's cluster holding the app's database is never half-changed (real apt).

debian13 with a bookworm apt source beside trixie's, as a host upgraded from Debian 12
keeps it: `apply` with `pg_version=15` installs bookworm's postgresql-15 without PGDG (the
host's own sources have it) and converges; the app writes rows. Then `apply` wanting
trixie's PostgreSQL 17 (no pg_version, and pg_version=17), in check mode and for real,
stops at "preflight" naming the 15 cluster and the ways forward: nothing installed, no
second cluster, the rows and the password as before. The pinned run changes nothing.

Needs root and the test bed: CI runs it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import host_of_kind
from tests.integration.helpers import BOOKWORM_SOURCE, inventory, run_apply

pytestmark = pytest.mark.testbed

ROWS = ("CREATE TABLE app_notes (id int PRIMARY KEY); "
        "INSERT INTO app_notes SELECT generate_series(1, 40);")
STOP = ("database chatalot lives in PostgreSQL 15's cluster (main, port 5432, running) and "
        "this run wants PostgreSQL 17: going on would install 17 beside it and leave the "
        "app's data on 15. Nothing was changed. Set pg_version=15 to keep managing that "
        "cluster, or upgrade it to 17 first (chatalot-db upgrade --to 17)")


def snapshot(bed: Any, host: str) -> str:
    """Packages, clusters, files we manage, roles and their secrets, the app's rows."""
    return str(bed.ssh(host, "dpkg-query -W -f='${Package} ${Status}\\n' 'postgresql*' "
                             "2>/dev/null | sort; pg_lsclusters -h; ls /etc/postgresql; "
                             "sha256sum /etc/chatalot/database.env "
                             "/etc/postgresql/15/main/pg_hba.conf; ls /etc/apt/sources.list.d; "
                             "runuser -u postgres -- psql -XAt -p 5432 "
                             "-c 'SELECT rolname, rolpassword FROM pg_authid ORDER BY 1' "
                             "-c 'SELECT pg_postmaster_start_time()' "
                             "-d chatalot -c 'SELECT count(*) FROM app_notes'",
                       check=True).stdout)


@pytest.fixture(scope="module")
def majors(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("majors")
    host = host_of_kind(bed, "debian13")
    bed.reset(host)
    out: dict[str, Any] = {"host": host, "runs": {}}
    try:
        bed.ssh(host, BOOKWORM_SOURCE, check=True)
        pinned = inventory(bed, tmp / "pinned.ini", {host: "root"}, pg_version="15")
        out["runs"]["pinned"] = run_apply(pinned, tmp / "pinned.json")
        app: subprocess.CompletedProcess[str] = bed.ssh(
            host, "set -a; . /etc/chatalot/database.env; "
                  f'psql "$DATABASE_URL" -X -At -v ON_ERROR_STOP=1 -c "{ROWS}"')
        out["app"] = app
        out["before"] = snapshot(bed, host)
        default = inventory(bed, tmp / "default.ini", {host: "root"})
        seventeen = inventory(bed, tmp / "seventeen.ini", {host: "root"}, pg_version="17")
        for name, inv in (("default", default), ("seventeen", seventeen)):
            out["runs"][f"{name}-check"] = run_apply(inv, tmp / f"{name}-check.json", "--check")
            out["runs"][name] = run_apply(inv, tmp / f"{name}.json")
        out["after"] = snapshot(bed, host)
        out["runs"]["pinned-rerun"] = run_apply(pinned, tmp / "pinned-rerun.json")
        yield out
    finally:
        bed.reset(host)


def test_a_major_from_the_hosts_own_sources_needs_no_pgdg(bed: Any,
                                                          majors: dict[str, Any]) -> None:
    p, doc = majors["runs"]["pinned"]
    assert p.returncode == 0, p.stdout + p.stderr
    steps = {s["name"]: s for s in doc["hosts"][majors["host"]]["steps"]}
    assert steps["install postgresql"]["reason"].startswith("installed postgresql-15")
    assert "pgdg.sources" not in majors["before"]
    assert majors["app"].returncode == 0, majors["app"].stderr


@pytest.mark.parametrize("name", ["default", "default-check", "seventeen", "seventeen-check"])
def test_another_majors_cluster_stops_the_host_before_any_change(
        majors: dict[str, Any], name: str) -> None:
    p, doc = majors["runs"][name]
    assert p.returncode == 2, p.stdout + p.stderr
    h = doc["hosts"][majors["host"]]
    assert [s["name"] for s in h["steps"]] == ["gather facts", "preflight"], h["steps"]
    assert h["steps"][-1]["reason"] == STOP
    assert h["changed"] == 0


def test_nothing_installed_no_second_cluster_rows_kept(majors: dict[str, Any]) -> None:
    assert majors["after"] == majors["before"]
    assert "postgresql-17 " not in majors["after"]
    assert "15 main 5432 online" in " ".join(majors["after"].split())
    assert majors["after"].rstrip().endswith("40")


def test_the_pinned_rerun_changes_nothing(majors: dict[str, Any]) -> None:
    p, doc = majors["runs"]["pinned-rerun"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert doc["hosts"][majors["host"]]["changed"] == 0
