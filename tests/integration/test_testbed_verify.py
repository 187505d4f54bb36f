"""`verify`, `status` and `psql` over SSH against the test bed's real hosts (systemd as PID 1).

Fresh hosts are provisioned by apply, then verify passes on every one; a service
disabled on one host makes verify fail there, naming the service, and nowhere
else. Host keys follow apply's policy; the suite also runs under plain
pytest-testinfra with its ssh backend. Needs root: CI runs it.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from installer.resources import migrations_dir
from installer.sqlx.rules import load_migrations
from installer.verify import suite_path
from tests.integration.helpers import REPO, cli, inventory, run_apply

pytestmark = pytest.mark.testbed

ALL_CHECKS = 19
#: the checks only backup=pgbackrest has (skipped on these backup=pg_dump hosts)
PGBACKREST_CHECKS = 2


def _hosts(bed: Any) -> list[str]:
    return sorted(bed.hosts)


@pytest.fixture(scope="module")
def provisioned(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Fresh hosts, provisioned by apply as root over SSH."""
    tmp = tmp_path_factory.mktemp("verify")
    hosts = _hosts(bed)
    for h in hosts:  # other modules may have left them in any state
        bed.reset(h)
    inv = inventory(bed, tmp / "root.ini", {h: "root" for h in hosts})
    p, _doc = run_apply(inv, tmp / "apply.json")
    assert p.returncode == 0, p.stdout + p.stderr
    return {"tmp": tmp, "inv": inv, "hosts": hosts}


def _verify(*args: str, junit: Path, stdin: str | None = None
            ) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, str]],
                       dict[str, int]]:
    """verify with a JUnit report: the process, {host: {failed check: message}}, {host: cases}."""
    if junit.exists():
        junit.unlink()
    p = cli("verify", "--junitxml", str(junit), *args, stdin=stdin)
    failed: dict[str, dict[str, str]] = {}
    cases: dict[str, int] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = case.get("name", "")
            check, _, host = name.partition("[")
            host = host.rstrip("]")
            cases[host] = cases.get(host, 0) + 1
            for tag in ("failure", "error"):
                node = case.find(tag)
                if node is not None:
                    failed.setdefault(host, {})[check] = (node.get("message") or "") + (
                        node.text or "")
    return p, failed, cases


def test_verify_passes_on_freshly_provisioned_hosts(provisioned: dict[str, Any]) -> None:
    p, failed, cases = _verify("-i", str(provisioned["inv"]),
                               junit=provisioned["tmp"] / "pass.xml")
    assert p.returncode == 0 and failed == {}, p.stdout + p.stderr
    assert cases == {h: ALL_CHECKS for h in provisioned["hosts"]}
    # systemd runs there: enable at boot is really checked; only the pgBackRest checks skip
    # (backup=pg_dump)
    skipped = [ln for ln in p.stdout.splitlines() if " SKIPPED" in ln]
    assert len(skipped) == PGBACKREST_CHECKS * len(provisioned["hosts"]), skipped
    assert all("pgbackrest" in ln or "wal_archiving" in ln for ln in skipped), skipped
    for h in provisioned["hosts"]:
        assert f"test_postgresql_is_enabled_at_boot[{h}] PASSED" in p.stdout


def test_a_disabled_service_fails_on_that_host_only(bed: Any,
                                                    provisioned: dict[str, Any]) -> None:
    hosts = provisioned["hosts"]
    broken = "debian12" if "debian12" in hosts else hosts[0]
    other = next(h for h in hosts if h != broken)
    try:
        bed.ssh(broken, "systemctl disable postgresql", check=True)
        p, failed, cases = _verify("-i", str(provisioned["inv"]),
                                   junit=provisioned["tmp"] / "disabled.xml")
    finally:
        bed.ssh(broken, "systemctl enable postgresql", check=True)
    assert p.returncode == 2, p.stdout + p.stderr
    assert list(failed) == [broken], failed
    assert list(failed[broken]) == ["test_postgresql_is_enabled_at_boot"], failed
    assert ("postgresql is not enabled at boot (systemctl is-enabled postgresql: disabled)"
            in failed[broken]["test_postgresql_is_enabled_at_boot"])
    assert cases[other] == ALL_CHECKS
    assert "postgresql is not enabled at boot" in p.stdout


def test_verify_keeps_apply_s_host_key_policy(bed: Any, provisioned: dict[str, Any]) -> None:
    tmp: Path = provisioned["tmp"]
    host = provisioned["hosts"][0]
    kh = tmp / "empty_known_hosts"
    kh.write_text("")
    inv = inventory(bed, tmp / "unknown.ini", {host: "root"}, known_hosts=kh)
    p, failed, _ = _verify("-i", str(inv), junit=tmp / "unknown.xml")
    assert p.returncode == 4, p.stdout + p.stderr
    assert "not in known_hosts" in p.stderr and "--accept-new-host-keys" in p.stderr
    assert len(failed[host]) == ALL_CHECKS  # every check errs, each saying why
    assert all("is unreachable: host key for" in m for m in failed[host].values())
    assert kh.read_text() == ""  # nothing recorded without the option
    p, failed, _ = _verify("-i", str(inv), "--accept-new-host-keys", junit=tmp / "accept.xml")
    assert p.returncode == 0 and failed == {}, p.stdout + p.stderr
    assert kh.read_text().split()[0] == bed.hosts[host].address
    # a changed key is refused, even with --accept-new-host-keys
    other_key = tmp / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)],
                   check=True)
    kind, blob = other_key.with_suffix(".pub").read_text().split()[:2]
    kh.write_text(f"{bed.hosts[host].address} {kind} {blob}\n")
    p, failed, _ = _verify("-i", str(inv), "--accept-new-host-keys", junit=tmp / "changed.xml")
    assert p.returncode == 4, p.stdout + p.stderr
    assert "has CHANGED" in p.stderr


def test_plain_pytest_with_testinfra_s_ssh_backend(bed: Any,
                                                   provisioned: dict[str, Any]) -> None:
    """The way testinfra users run suites: --hosts=ssh://..., host keys checked by OpenSSH.

    (pytest-testinfra 10.2 ignores --ssh-extra-args, so the options go in --ssh-config.)
    """
    hosts = ",".join(f"ssh://root@{bed.hosts[h].address}" for h in provisioned["hosts"])
    config = provisioned["tmp"] / "ssh_config"
    config.write_text(f"Host *\n  IdentityFile {bed.key_path}\n  IdentitiesOnly yes\n"
                      f"  UserKnownHostsFile {bed.known_hosts_path}\n"
                      "  StrictHostKeyChecking yes\n  BatchMode yes\n")
    p = subprocess.run(
        [str(REPO / ".venv/bin/pytest"), str(suite_path()), "-p", "no:cacheprovider", "-q",
         f"--hosts={hosts}", f"--ssh-config={config}",
         f"--chatalot-inventory={provisioned['inv']}"],
        capture_output=True, text=True, cwd="/", check=False, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    hosts_n = len(provisioned["hosts"])
    assert (f"{(ALL_CHECKS - PGBACKREST_CHECKS) * hosts_n} passed, "
            f"{PGBACKREST_CHECKS * hosts_n} skipped") in p.stdout
    # an unknown host key is refused by OpenSSH, and the check says so
    config.write_text(config.read_text().replace(str(bed.known_hosts_path), "/dev/null"))
    p = subprocess.run(
        [str(REPO / ".venv/bin/pytest"), str(suite_path()), "-p", "no:cacheprovider", "-q",
         f"--hosts={hosts}", f"--ssh-config={config}", "-k", "installed"],
        capture_output=True, text=True, cwd="/", check=False, timeout=600)
    assert p.returncode == 1 and "Host key verification failed." in p.stdout, p.stdout


def test_status_shows_each_host(provisioned: dict[str, Any]) -> None:
    total = len(load_migrations(migrations_dir()))
    p = cli("status", "-i", str(provisioned["inv"]))
    assert p.returncode == 0, p.stdout + p.stderr
    blocks = {b.splitlines()[0]: b for b in p.stdout.strip().split("\n\n")}
    assert sorted(blocks) == provisioned["hosts"]
    for block in blocks.values():
        rows = {ln.split()[0]: ln.split(None, 1)[1] for ln in block.splitlines()[1:]}
        assert rows["migrations"].startswith(f"{total} applied, 0 pending"), block
        assert rows["database"].endswith(("kB", "MB")), block
        assert rows["connections"].endswith("/ 100"), block


@pytest.mark.parametrize("user", ["root", "ops"])
def test_psql_over_ssh_as_the_app_role(bed: Any, provisioned: dict[str, Any], user: str) -> None:
    host = provisioned["hosts"][-1]
    inv = inventory(bed, provisioned["tmp"] / f"psql-{user}.ini", {host: user})
    p = cli("psql", host, "-i", str(inv), "-c",
            "select current_user, inet_server_addr() is not null as tcp")
    assert p.returncode == 0, p.stdout + p.stderr
    rows = [[c.strip() for c in ln.split("|")] for ln in p.stdout.splitlines() if "|" in ln]
    assert rows == [["current_user", "tcp"], ["chatalot", "t"]], p.stdout


def test_psql_refuses_an_unknown_host_key(bed: Any, provisioned: dict[str, Any]) -> None:
    tmp: Path = provisioned["tmp"]
    host = provisioned["hosts"][-1]
    kh = tmp / "psql_known_hosts"
    kh.write_text("")
    inv = inventory(bed, tmp / "psql-unknown.ini", {host: "root"}, known_hosts=kh)
    p = cli("psql", host, "-i", str(inv), "-c", "select 1")
    assert p.returncode == 255 and "Host key verification failed" in p.stderr, p.stderr
    assert kh.read_text() == ""


def test_verify_and_status_as_a_sudo_user_with_a_password(bed: Any,
                                                          provisioned: dict[str, Any]) -> None:
    """-K as apply has it: the password read from stdin's first line, given to sudo on its
    stdin; without it, a clear message and no check run as that user."""
    from testbed import OPSPW_PASSWORD, OPSPW_USER

    host = "debian12"
    tmp: Path = provisioned["tmp"]
    inv = inventory(bed, tmp / "opspw.ini", {host: OPSPW_USER})
    p, failed, cases = _verify("-i", str(inv), "-K", junit=tmp / "opspw.xml",
                               stdin=OPSPW_PASSWORD + "\n")
    assert p.returncode == 0 and failed == {}, p.stdout + p.stderr
    assert cases == {host: ALL_CHECKS}
    assert OPSPW_PASSWORD not in p.stdout + p.stderr
    s = cli("status", "-i", str(inv), "-K", stdin=OPSPW_PASSWORD + "\n")
    assert s.returncode == 0, s.stdout + s.stderr
    blocks = {b.splitlines()[0]: b for b in s.stdout.strip().split("\n\n")}
    assert list(blocks) == [host] and "applied, 0 pending" in blocks[host], s.stdout
    assert OPSPW_PASSWORD not in s.stdout + s.stderr
    p, failed, cases = _verify("-i", str(inv), junit=tmp / "opspw-no-k.xml")
    assert p.returncode != 0 and "--ask-become-pass" in p.stdout + p.stderr, \
        p.stdout + p.stderr
