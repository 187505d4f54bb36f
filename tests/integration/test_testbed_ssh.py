"""`chatalot-db apply` over SSH to real hosts: Debian 12 and 13 booted with systemd-nspawn.

Each host is a real Debian with systemd as PID 1 and sshd, reached over a network
namespace; apt installs PostgreSQL from the Debian mirror. Needs root: CI runs it.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import inventory, run_apply

pytestmark = pytest.mark.testbed

HOSTS = ("debian12", "debian13")
PG_MAJOR = {"debian12": 15, "debian13": 17}


@pytest.fixture(scope="module")
def runs(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Check mode on fresh hosts, then provision (debian12 as root, debian13 as the sudo
    user), then rerun with the users swapped."""
    tmp = tmp_path_factory.mktemp("ssh")
    for h in HOSTS:  # other test modules may have provisioned them: start from fresh copies
        bed.reset(h)
    out: dict[str, Any] = {}
    root_inv = inventory(bed, tmp / "root.ini", {h: "root" for h in HOSTS})
    out["check"] = run_apply(root_inv, tmp / "check.json", "--check")
    out["check_dpkg"] = {h: bed.ssh(h, "dpkg -s postgresql >/dev/null 2>&1; echo $?").stdout
                         for h in HOSTS}
    first = inventory(bed, tmp / "first.ini", {"debian12": "root", "debian13": "ops"})
    out["first"] = run_apply(first, tmp / "first.json")
    second = inventory(bed, tmp / "second.ini", {"debian12": "ops", "debian13": "root"})
    out["second"] = run_apply(second, tmp / "second.json")
    out["tmp"] = tmp
    return out


def _counts(doc: dict[str, Any], host: str) -> dict[str, int]:
    return {k: v for k, v in doc["hosts"][host].items() if isinstance(v, int)}


def test_check_mode_on_fresh_hosts_reports_changes_and_installs_nothing(
        runs: dict[str, Any]) -> None:
    p, doc = runs["check"]
    assert p.returncode == 0, p.stdout + p.stderr
    for h in HOSTS:
        assert doc["hosts"][h]["changed"] >= 5, doc["hosts"][h]
        steps = {s["name"]: s for s in doc["hosts"][h]["steps"]}
        assert steps["install postgresql"]["reason"].startswith("would install")
        assert runs["check_dpkg"][h].strip() != "0", "check mode installed postgresql"


def test_first_apply_provisions_both_hosts(runs: dict[str, Any]) -> None:
    p, doc = runs["first"]
    assert p.returncode == 0, p.stdout + p.stderr
    for h in HOSTS:
        c = _counts(doc, h)
        assert c["failed"] == 0 and c["unreachable"] == 0 and c["changed"] >= 5, c
        assert c["skipped"] == 0  # systemd runs there: enable is a real step


@pytest.mark.parametrize("host", HOSTS)
def test_a_fresh_install_starts_postgresql_once_with_its_settings(
        bed: Any, runs: dict[str, Any], host: str) -> None:
    """Debian: the package's own start held back (a policy-rc.d of the install's own, gone
    afterwards), the drop-in written before the first start, which is the start step's;
    the configure step finds every setting in force: no restart. As root and via sudo."""
    _, doc = runs["first"]
    steps = {s["name"]: s for s in doc["hosts"][host]["steps"]}
    assert steps["install postgresql"]["reason"].endswith(
        "its settings written before its first start "
        f"(/etc/postgresql/{bed.hosts[host].pg_major}/main/conf.d/50-chatalot.conf)"), steps
    assert steps["start postgresql"]["status"] == "changed"
    conf = steps["configure postgresql.conf"]
    assert conf["status"] == "ok" and conf["reason"].endswith("settings in force"), conf
    r = bed.ssh(host, "test -e /usr/sbin/policy-rc.d; echo $?")
    assert r.stdout.strip() == "1", "the install left its policy-rc.d behind"


def test_second_apply_changes_nothing(runs: dict[str, Any]) -> None:
    p, doc = runs["second"]
    assert p.returncode == 0, p.stdout + p.stderr
    for h in HOSTS:
        assert _counts(doc, h)["changed"] == 0, doc["hosts"][h]
        assert re.search(rf"{h}\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", p.stdout)


@pytest.mark.parametrize("host", HOSTS)
def test_postgresql_enabled_and_active_under_systemd(bed: Any, runs: dict[str, Any],
                                                     host: str) -> None:
    del runs
    major = PG_MAJOR[host]
    r = bed.ssh(host, "systemctl is-enabled postgresql; "
                      f"systemctl is-active postgresql@{major}-main")
    assert r.stdout.split() == ["enabled", "active"], r.stdout + r.stderr


@pytest.mark.parametrize("host", HOSTS)
def test_database_url_logs_in_from_inside_the_host(bed: Any, runs: dict[str, Any],
                                                   host: str) -> None:
    del runs
    r = bed.ssh(host, "stat -c '%a %U' /etc/chatalot/database.env; set -a; "
                      ". /etc/chatalot/database.env; psql \"$DATABASE_URL\" -XAtc \"select "
                      "current_user, current_setting('server_version_num')::int / 10000\"")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["600", "root", f"chatalot|{PG_MAJOR[host]}"]


@pytest.mark.parametrize("host", HOSTS)
def test_password_not_in_output(bed: Any, runs: dict[str, Any], host: str) -> None:
    url = bed.ssh(host, "sed -n 's/^DATABASE_URL=//p' /etc/chatalot/database.env").stdout.strip()
    password = url.split(":", 2)[2].split("@", 1)[0]
    assert len(password) >= 32
    for key in ("check", "first", "second"):
        p, doc = runs[key]
        assert password not in p.stdout + p.stderr + json.dumps(doc)


def test_sudo_with_password(bed: Any, runs: dict[str, Any]) -> None:
    tmp: Path = runs["tmp"]
    from testbed import OPSPW_PASSWORD, OPSPW_USER

    inv = inventory(bed, tmp / "opspw.ini", {"debian12": OPSPW_USER})
    p, doc = run_apply(inv, tmp / "opspw.json", "-K", stdin=OPSPW_PASSWORD + "\n")
    assert p.returncode == 0, p.stdout + p.stderr
    assert _counts(doc, "debian12")["changed"] == 0
    assert OPSPW_PASSWORD not in p.stdout + p.stderr
    # without -K: a clear message, the host failed, nothing run
    p, doc = run_apply(inv, tmp / "opspw-no-k.json")
    assert p.returncode == 2, p.stdout + p.stderr
    assert "sudo needs a password" in p.stdout and "--ask-become-pass" in p.stdout
    # a wrong password: refused, said so
    p, doc = run_apply(inv, tmp / "opspw-wrong.json", "-K", stdin="wrong-password\n")
    assert p.returncode == 2 and "sudo password was refused" in p.stdout, p.stdout + p.stderr


def test_wrong_user_on_one_host_the_other_finishes(bed: Any, runs: dict[str, Any]) -> None:
    """A wrong ansible_user on one host of two: that host is UNREACHABLE with who and where
    failed, the other finishes (provisioned: changed=0), nothing runs on the first; exit 4."""
    tmp: Path = runs["tmp"]
    marker = "/var/tmp/chatalot-db-wrong-user-probe"
    bed.ssh("debian12", f"rm -f {marker}; touch {marker}")
    before = bed.ssh("debian12", f"stat -c %Y {marker}; ls /run/lock").stdout
    inv = inventory(bed, tmp / "wrong-user.ini", {"debian12": "nobody", "debian13": "root"})
    p, doc = run_apply(inv, tmp / "wrong-user.json")
    assert p.returncode == 4, p.stdout + p.stderr
    bad, good = doc["hosts"]["debian12"], doc["hosts"]["debian13"]
    assert bad["unreachable"] == 1 and bad["state"] == "unreachable" and bad["steps"] == []
    addr = bed.hosts["debian12"].address
    assert f"authentication failed for nobody@{addr}:22" in bad["error"], bad["error"]
    assert f"UNREACHABLE [debian12]: authentication failed for nobody@{addr}:22" in p.stdout
    assert good["state"] == "done" and good["failed"] == 0 and good["changed"] == 0, good
    assert re.search(r"debian12\s+: ok=0\s+changed=0\s+unreachable=1\s+failed=0", p.stdout)
    # nothing ran on the unreachable host: no lock file appeared, nothing touched
    assert bed.ssh("debian12", f"stat -c %Y {marker}; ls /run/lock").stdout == before


def test_max_sessions_1_fails_the_host_with_what_to_change(bed: Any,
                                                          runs: dict[str, Any]) -> None:
    """sshd with MaxSessions 1 refuses the second session (the host lock holds the first):
    that host fails saying so and what to set (it was reported as a lost connection), the
    other host finishes, nothing changed; with the setting back, the run converges."""
    tmp: Path = runs["tmp"]
    conf = "/etc/ssh/sshd_config"
    bed.ssh("debian13", f"cp -p {conf} {conf}.chatalot-test && "
                        f"sed -i '1i MaxSessions 1' {conf} && sshd -t && systemctl reload ssh",
            check=True)
    try:
        inv = inventory(bed, tmp / "maxsessions.ini", {"debian12": "root", "debian13": "root"})
        p, doc = run_apply(inv, tmp / "maxsessions.json")
    finally:
        bed.ssh("debian13", f"mv -f {conf}.chatalot-test {conf} && systemctl reload ssh",
                check=True)
    assert p.returncode == 2, p.stdout + p.stderr
    bad = doc["hosts"]["debian13"]
    assert bad["state"] == "failed" and bad["unreachable"] == 0 and bad["changed"] == 0, bad
    assert bad["error"].startswith("sshd on debian13 refused another session on the "
                                   "connection"), bad["error"]
    assert "Set MaxSessions 2 or more" in bad["error"]
    assert doc["hosts"]["debian12"]["state"] == "done"
    p2, doc2 = run_apply(inv, tmp / "maxsessions-after.json")
    assert p2.returncode == 0, p2.stdout + p2.stderr
    assert doc2["hosts"]["debian13"]["changed"] == 0


def test_unknown_host_key_refused_then_accept_new(bed: Any, runs: dict[str, Any]) -> None:
    tmp: Path = runs["tmp"]
    kh = tmp / "empty_known_hosts"
    kh.write_text("")
    inv = inventory(bed, tmp / "unknown.ini", {"debian12": "root"}, known_hosts=kh)
    p, doc = run_apply(inv, tmp / "unknown.json")
    assert p.returncode == 4, p.stdout + p.stderr
    assert doc["hosts"]["debian12"]["unreachable"] == 1
    assert "not in known_hosts" in p.stdout and "--accept-new-host-keys" in p.stdout
    assert kh.read_text() == ""  # nothing recorded without the option
    p, doc = run_apply(inv, tmp / "accept.json", "--accept-new-host-keys")
    assert p.returncode == 0, p.stdout + p.stderr
    recorded = kh.read_text().split()
    addr = bed.hosts["debian12"].address
    assert recorded[0] == addr
    known = next(ln.split() for ln in bed.known_hosts_path.read_text().splitlines()
                 if ln.split()[0] == addr)
    assert recorded[1:] == known[1:3]
    # now known: plain runs connect
    p, _ = run_apply(inv, tmp / "known.json")
    assert p.returncode == 0


def test_changed_host_key_always_refused(bed: Any, runs: dict[str, Any]) -> None:
    tmp: Path = runs["tmp"]
    addr = bed.hosts["debian12"].address
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            str(tmp / "fake_host_key")], check=True)
    del other
    fake = (tmp / "fake_host_key.pub").read_text().split()
    kh = tmp / "changed_known_hosts"
    kh.write_text(f"{addr} {fake[0]} {fake[1]}\n")
    inv = inventory(bed, tmp / "changed.ini", {"debian12": "root"}, known_hosts=kh)
    for extra in ((), ("--accept-new-host-keys",)):
        p, _ = run_apply(inv, tmp / "changed.json", *extra)
        assert p.returncode == 4, p.stdout + p.stderr
        assert "has CHANGED" in p.stdout and "ssh-keygen -R" in p.stdout
    assert kh.read_text().split() == [addr, fake[0], fake[1]]


def test_ssh_transport_never_loses_output_or_misreports_a_drop(bed: Any,
                                                               runs: dict[str, Any]) -> None:
    """sshd may send the exit status before the last output: the transport reads to EOF.

    Found by bench/ssh_stress.py (11 of 150 large outputs came back short with exit 0).
    """
    del runs
    import threading

    from installer.transport.ssh import SSHTransport

    host = bed.hosts["debian12"]
    hostvars = {"ansible_host": host.address, "ansible_user": "root",
                "ansible_ssh_private_key_file": str(bed.key_path),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={bed.known_hosts_path}"}
    expected = "".join(f"{i}\n" for i in range(1, 20001))
    bad: list[str] = []

    def worker() -> None:
        with SSHTransport.from_hostvars("debian12", hostvars) as t:
            for _ in range(25):
                r = t.run("seq 1 20000; seq 1 3 >&2")
                if r.exit_code != 0 or r.stdout != expected or r.stderr != "1\n2\n3\n":
                    bad.append(f"exit {r.exit_code}, {len(r.stdout)} bytes")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert bad == []
