"""Tuning applied to a real host without surprises.

A Debian 13 test-bed host (PostgreSQL 17, systemd): raising pg_memory restarts once and
changes shared_buffers; changing only work_mem reloads (postmaster start time unchanged);
a rerun changes nothing; a setting the server cannot start with is rolled back and the
server keeps running on its previous configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import inventory, run_apply

pytestmark = pytest.mark.testbed

HOST = "debian13-tun"


@pytest.fixture(scope="module")
def host(bed: Any) -> Iterator[str]:
    bed.up([HOST], add=True)
    try:
        yield HOST
    finally:
        bed.remove([HOST])


def _sql(bed: Any, host: str, sql: str) -> str:
    r = bed.ssh(host, f"runuser -u postgres -- psql -XAtc \"{sql}\"", timeout=60)
    assert r.returncode == 0, r.stderr
    return str(r.stdout).strip()


def _apply(bed: Any, tmp: Path, name: str, **hostvars: str) -> dict[str, Any]:
    inv = inventory(bed, tmp / f"{name}.ini", {HOST: "root"}, None, **hostvars)
    p, doc = run_apply(inv, tmp / f"{name}.json")
    return {"p": p, "doc": doc, "steps": {s["name"]: s for s in doc["hosts"][HOST]["steps"]}}


def test_memory_restart_work_mem_reload_rerun_and_rollback(bed: Any, host: str,
                                                           tmp_path: Path) -> None:
    first = _apply(bed, tmp_path, "m1", pg_memory="1GB")
    assert first["p"].returncode == 0, first["p"].stdout + first["p"].stderr
    assert _sql(bed, host, "show shared_buffers") == "256MB"
    start1 = _sql(bed, host, "select pg_postmaster_start_time()")

    # more memory: shared_buffers is a postmaster setting -> exactly one restart
    bigger = _apply(bed, tmp_path, "m2", pg_memory="2GB")
    assert bigger["p"].returncode == 0, bigger["p"].stdout
    conf = bigger["steps"]["configure postgresql.conf"]
    assert conf["status"] == "changed" and "restarted" in conf["reason"]
    assert _sql(bed, host, "show shared_buffers") == "512MB"
    start2 = _sql(bed, host, "select pg_postmaster_start_time()")
    assert start2 != start1

    # only work_mem: a reload, the postmaster keeps running
    reload = _apply(bed, tmp_path, "m3", pg_memory="2GB",
                    pg_settings="{'work_mem': '8MB'}")
    conf = reload["steps"]["configure postgresql.conf"]
    assert conf["status"] == "changed" and "reloaded" in conf["reason"], conf
    assert _sql(bed, host, "show work_mem") == "8MB"
    assert _sql(bed, host, "select pg_postmaster_start_time()") == start2

    again = _apply(bed, tmp_path, "m4", pg_memory="2GB", pg_settings="{'work_mem': '8MB'}")
    assert again["doc"]["hosts"][HOST]["changed"] == 0, again["p"].stdout

    # huge_pages=on passes the file check but the server cannot start without huge pages
    # reserved: the previous file comes back, the server runs again, the host fails
    bad = _apply(bed, tmp_path, "m5", pg_memory="2GB",
                 pg_settings="{'work_mem': '8MB', 'huge_pages': 'on'}")
    assert bad["p"].returncode == 2, bad["p"].stdout
    conf = bad["steps"]["configure postgresql.conf"]
    assert conf["status"] == "failed" and "huge_pages" in conf["reason"], conf
    assert "previous configuration restored" in conf["reason"]
    assert _sql(bed, host, "show huge_pages") != "on"
    assert _sql(bed, host, "show work_mem") == "8MB"
    dropin = bed.ssh(host, "cat /etc/postgresql/17/main/conf.d/50-chatalot.conf").stdout
    assert "huge_pages = on" not in dropin and "work_mem = 8MB" in dropin
