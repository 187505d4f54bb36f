"""ALTER SYSTEM over a setting chatalot-db manages, on a real host.

debian12 provisioned, then `ALTER SYSTEM SET work_mem = '64MB'` and a `trust` line added to
pg_hba.conf, as an operator might in a hurry. `apply --check` predicts what the real run
does: "configure postgresql.conf" fails naming postgresql.auto.conf and its line with the
two ways out, and the steps after it still run (pg_hba "would update"). The real run fails
the same way, but the trust line is gone (the access rules are enforced that run) and the
server keeps 64MB. With the value kept through pg_settings, the host converges and the
rerun changes nothing.

Needs root and the test bed: CI runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import host_of_kind
from tests.integration.helpers import inventory, run_apply

pytestmark = pytest.mark.testbed

AUTO = "/var/lib/postgresql/15/main/postgresql.auto.conf"
HBA = "/etc/postgresql/15/main/pg_hba.conf"
TRUST = "host all all 192.0.2.0/24 trust"


def _steps(run: Any, host: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in run[1]["hosts"][host]["steps"]}


@pytest.fixture(scope="module")
def altered(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("alter-system")
    host = host_of_kind(bed, "debian12")
    bed.reset(host)
    base = inventory(bed, tmp / "base.ini", {host: "root"})
    p, _ = run_apply(base, tmp / "base.json")
    assert p.returncode == 0, p.stdout + p.stderr
    bed.ssh(host, "runuser -u postgres -- psql -XAtq -c \"ALTER SYSTEM SET work_mem = '64MB'\" "
                  "-c 'SELECT pg_reload_conf()' && "
                  f"echo '{TRUST}' >> {HBA} && runuser -u postgres -- psql -XAtqc "
                  "'SELECT pg_reload_conf()'", check=True)
    out: dict[str, Any] = {"host": host}
    out["check"] = run_apply(base, tmp / "check.json", "--check")
    out["run"] = run_apply(base, tmp / "run.json")
    out["hba"] = bed.ssh(host, f"cat {HBA}", check=True).stdout
    out["work_mem"] = bed.ssh(host, "runuser -u postgres -- psql -XAtc 'SHOW work_mem'",
                              check=True).stdout.strip()
    keep = tmp / "keep.ini"  # on the host line: Ansible reads a dict there, a string in :vars
    keep.write_text(base.read_text().replace(
        f"{host} ansible_host=", f"{host} pg_settings=\"{{'work_mem': '64MB'}}\" ansible_host="))
    out["keep"] = run_apply(keep, tmp / "keep.json")
    out["keep-rerun"] = run_apply(keep, tmp / "keep-rerun.json")
    try:
        yield out
    finally:
        bed.reset(host)


WAY_OUT = (f"work_mem is 64MB by ALTER SYSTEM (set in {AUTO} line 3), over the drop-in's ")


def test_check_mode_predicts_the_conflict_and_goes_on(altered: dict[str, Any]) -> None:
    p, _ = altered["check"]
    assert p.returncode == 2, p.stdout + p.stderr
    steps = _steps(altered["check"], altered["host"])
    conf = steps["configure postgresql.conf"]
    assert conf["status"] == "failed"
    assert conf["reason"].startswith(WAY_OUT), conf["reason"]
    assert conf["reason"].endswith("Either run ALTER SYSTEM RESET work_mem; (as postgres) and "
                                   "rerun, or keep the value: pg_settings={'work_mem': '64MB'}")
    assert steps["configure pg_hba.conf"]["reason"].startswith("would update")
    assert "check DATABASE_URL login" in steps  # the steps after it ran


def test_the_real_run_fails_the_same_and_still_enforces_the_access_rules(
        altered: dict[str, Any]) -> None:
    p, doc = altered["run"]
    assert p.returncode == 2, p.stdout + p.stderr
    steps = _steps(altered["run"], altered["host"])
    assert steps["configure postgresql.conf"]["status"] == "failed"
    assert steps["configure postgresql.conf"]["reason"].startswith(WAY_OUT)
    assert steps["configure pg_hba.conf"]["status"] == "changed"
    rules = [line.split() for line in altered["hba"].splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert [r for r in rules if "trust" in r] == []
    assert ["host", "all", "all", "192.0.2.0/24", "scram-sha-256"] in rules
    assert altered["work_mem"] == "64MB"  # the operator's value, untouched
    assert doc["hosts"][altered["host"]]["state"] == "failed"


def test_keeping_the_value_converges(altered: dict[str, Any]) -> None:
    p, _ = altered["keep"]
    assert p.returncode == 0, p.stdout + p.stderr
    p2, doc2 = altered["keep-rerun"]
    assert p2.returncode == 0, p2.stdout + p2.stderr
    assert doc2["hosts"][altered["host"]]["changed"] == 0
