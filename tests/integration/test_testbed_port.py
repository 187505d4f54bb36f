"""The cluster's real port: a run never addresses a port the cluster does not listen on.

A debian12 host provisioned with defaults; then its cluster is moved to port 5433 (as a
host where another server had 5432 when the package made the cluster). `apply` with the
default pg_port stops at "preflight", before any change, naming the port the cluster's
configuration gives and the way forward; with `pg_port=5433` it converges: the env file's
DATABASE_URL carries 5433 and logs in; the rerun changes nothing.

Needs root and the test bed: CI runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import host_of_kind
from tests.integration.helpers import inventory, run_apply

pytestmark = pytest.mark.testbed

MOVE = ("pg_conftool 15 main set port 5433 && systemctl restart postgresql@15-main && "
        "sha256sum /etc/chatalot/database.env")


@pytest.fixture(scope="module")
def moved(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("port")
    host = host_of_kind(bed, "debian12")
    bed.reset(host)
    out: dict[str, Any] = {"host": host}
    try:
        plain = inventory(bed, tmp / "plain.ini", {host: "root"})
        other = inventory(bed, tmp / "other.ini", {host: "root"}, pg_port="5433")
        out["first"] = run_apply(plain, tmp / "first.json")
        out["env-before"] = bed.ssh(host, MOVE, check=True).stdout
        out["default"] = run_apply(plain, tmp / "default.json")
        out["env-after-default"] = bed.ssh(host, "sha256sum /etc/chatalot/database.env",
                                           check=True).stdout
        out["5433"] = run_apply(other, tmp / "5433.json")
        out["url"] = bed.ssh(host, "grep -c '@localhost:5433/chatalot' "
                                   "/etc/chatalot/database.env", check=True).stdout
        out["app"] = bed.ssh(host, "set -a; . /etc/chatalot/database.env; "
                                   'psql "$DATABASE_URL" -XAt -c "SELECT 1"')
        out["rerun"] = run_apply(other, tmp / "rerun.json")
        yield out
    finally:
        bed.reset(host)


def test_a_cluster_on_another_port_stops_the_run_before_any_change(
        moved: dict[str, Any]) -> None:
    p, _ = moved["first"]
    assert p.returncode == 0, p.stdout + p.stderr
    p, doc = moved["default"]
    assert p.returncode == 2, p.stdout + p.stderr
    h = doc["hosts"][moved["host"]]
    assert [s["name"] for s in h["steps"]] == ["gather facts", "preflight"]
    assert h["steps"][-1]["reason"] == (
        "the cluster this run manages listens on port 5433 (/etc/postgresql/15/main/"
        "postgresql.conf and its conf.d), not on pg_port 5432: set pg_port=5433 for this "
        "host (DATABASE_URL then carries it), or change the port in that file. Nothing was "
        "changed")
    assert moved["env-after-default"] in moved["env-before"]


def test_with_pg_port_set_the_url_carries_it_and_the_rerun_changes_nothing(
        moved: dict[str, Any]) -> None:
    p, doc = moved["5433"]
    assert p.returncode == 0, p.stdout + p.stderr
    steps = {s["name"]: s for s in doc["hosts"][moved["host"]]["steps"]}
    assert steps["write /etc/chatalot/database.env"]["status"] == "changed"
    assert steps["check DATABASE_URL login"]["reason"].startswith(
        "chatalot@localhost:5433/chatalot logs in over TCP")
    assert moved["url"].strip() == "1"
    assert moved["app"].returncode == 0 and moved["app"].stdout.strip() == "1"
    p, doc = moved["rerun"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert doc["hosts"][moved["host"]]["changed"] == 0
