"""Two inventory names for one host, on a real host: two apps of one cluster, or refused
before any change.

debian12, provisioned. Then one run with two names for it:
- the same ansible_host (and port), each with its own db_name, db_user and pg_memory: both
  names fail at "check variables" before the host is contacted; the host's files, roles and
  server start time are as before;
- the second name reaching it on another port (a second sshd on 2222): only the machine-id
  tells. The name the run reaches first runs (here, with --forks 1, the first: a no-op on
  the provisioned host), the second fails at "preflight" naming it; nothing restarted, no
  password rotated;
- two apps of the cluster (same address, each its own db_name, db_user and db_env_file,
  the same tuning): both run, and the rerun changes nothing (no restart, no password).

Needs root and the test bed: CI runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import host_of_kind
from tests.integration.helpers import inventory, run_apply, wait_port

pytestmark = pytest.mark.testbed

PORT = 2222
SECOND_SSHD = f"systemd-run --unit=chatalot-second-sshd /usr/sbin/sshd -D -p {PORT} -o PidFile=none"


def snapshot(bed: Any, host: str) -> str:
    """The files we manage, the roles with their secrets, the server's start time."""
    return str(bed.ssh(host, "sha256sum /etc/chatalot/database.env "
                             "/etc/postgresql/15/main/pg_hba.conf "
                             "/etc/postgresql/15/main/conf.d/*; runuser -u postgres -- psql -XAt "
                             "-c 'SELECT rolname, rolpassword FROM pg_authid ORDER BY 1' "
                             "-c 'SELECT datname FROM pg_database ORDER BY 1' "
                             "-c 'SELECT pg_postmaster_start_time()'", check=True).stdout)


@pytest.fixture(scope="module")
def two(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("aliases")
    host = host_of_kind(bed, "debian12")
    address = bed.hosts[host].address
    bed.reset(host)
    base = inventory(bed, tmp / "base.ini", {host: "root"})
    p, _ = run_apply(base, tmp / "base.json")
    assert p.returncode == 0, p.stdout + p.stderr
    # another port to the same machine: its host key under [address]:2222 too
    known = bed.known_hosts_path.read_text()
    key = next(line.split(None, 1)[1] for line in known.splitlines()
               if line.split()[0] == address)
    kh = tmp / "known_hosts"
    kh.write_text(known + f"[{address}]:{PORT} {key}\n")
    bed.ssh(host, SECOND_SSHD, check=True)
    wait_port(address, PORT)
    out: dict[str, Any] = {"host": host, "address": address, "before": snapshot(bed, host)}
    key_file = bed.key_path
    common = (f"ansible_user=root ansible_ssh_private_key_file={key_file} "
              f"ansible_ssh_common_args='-o UserKnownHostsFile={kh}'")
    same = tmp / "same.ini"
    same.write_text(
        "[db]\n"
        f"chat-a ansible_host={address} {common} db_name=chat_a db_user=chat_a pg_memory=2GB\n"
        f"chat-b ansible_host={address} {common} db_name=chat_b db_user=chat_b pg_memory=6GB\n")
    out["same"] = run_apply(same, tmp / "same.json")
    out["after_same"] = snapshot(bed, host)
    port = tmp / "port.ini"
    port.write_text(
        "[db]\n"
        f"{host} ansible_host={address} {common}\n"
        f"{host}-2222 ansible_host={address} ansible_port={PORT} {common} db_name=chat_b "
        "db_user=chat_b pg_memory=6GB\n")
    out["port"] = run_apply(port, tmp / "port.json", "--forks", "1")  # the first name first
    out["after_port"] = snapshot(bed, host)
    apps = tmp / "apps.ini"  # two apps of one cluster: allowed
    apps.write_text(
        "[db]\n"
        f"{host} ansible_host={address} {common}\n"
        f"{host}-app2 ansible_host={address} {common} db_name=chat_b db_user=chat_b "
        "db_env_file=/etc/chatalot/chat_b.env\n")
    out["apps"] = run_apply(apps, tmp / "apps.json")
    out["apps_between"] = snapshot(bed, host)
    out["apps_rerun"] = run_apply(apps, tmp / "apps-rerun.json")
    out["apps_after"] = snapshot(bed, host)
    try:
        yield out
    finally:
        bed.reset(host)


def test_same_address_both_names_refused_before_contact(two: dict[str, Any]) -> None:
    p, doc = two["same"]
    assert p.returncode == 2, p.stdout + p.stderr
    for name, other in (("chat-a", "chat-b"), ("chat-b", "chat-a")):
        steps = doc["hosts"][name]["steps"]
        assert [s["name"] for s in steps] == ["check variables"], steps
        assert steps[0]["reason"].startswith(
            f"{name} and {other} are one host ({two['address']}:22), and both have "
            "db_env_file=/etc/chatalot/database.env: each app of a cluster needs its own, or "
            f"they overwrite each other's; pg_memory differs ({name}: ")
        assert steps[0]["reason"].endswith("(several apps on one cluster), or keep one name "
                                           "per host")
    assert two["after_same"] == two["before"]


def test_same_machine_on_another_port_second_name_refused(two: dict[str, Any]) -> None:
    host = two["host"]
    p, doc = two["port"]
    assert p.returncode == 2, p.stdout + p.stderr
    first, second = doc["hosts"][host], doc["hosts"][f"{host}-2222"]
    assert first["state"] == "done" and first["changed"] == 0, first
    steps = second["steps"]
    assert [s["name"] for s in steps] == ["gather facts", "preflight"], steps
    assert steps[-1]["reason"].startswith(
        f"{host}-2222 and {host} are one host (the same /etc/machine-id), and both have "
        "db_env_file=/etc/chatalot/database.env")
    assert "; pg_memory differs" in steps[-1]["reason"]
    assert second["changed"] == 0
    assert two["after_port"] == two["before"]  # no restart, no password rotated


def test_two_apps_of_one_cluster_share_it_without_restarts(two: dict[str, Any]) -> None:
    """Same address, each its own db_name, db_user and env file, the same tuning: both run;
    the rerun changes nothing (no restart, no password rotated)."""
    host = two["host"]
    p, doc = two["apps"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert doc["hosts"][f"{host}-app2"]["changed"] > 0  # its role, database, env file
    assert doc["hosts"][host]["changed"] == 0
    p2, doc2 = two["apps_rerun"]
    assert p2.returncode == 0, p2.stdout + p2.stderr
    assert all(h["changed"] == 0 for h in doc2["hosts"].values())
    assert two["apps_after"] == two["apps_between"]
