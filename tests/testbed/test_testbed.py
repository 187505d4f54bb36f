"""The test bed itself, on real hosts: boot, log in, sudo, apt through NAT, stop, reset, down.

These tests need root, debootstrap, systemd-nspawn and iptables (see
testbed_available()). Each test bed here has its own state dir and host names
ending in `-tb`, so they can run beside a session test bed of the usual
names without touching it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed import OPS_USER, OPSPW_PASSWORD, OPSPW_USER, Testbed, testbed_available
from testbed import network as tb_network

AVAILABLE, WHY = testbed_available()
pytestmark = [
    pytest.mark.testbed,
    pytest.mark.skipif(not AVAILABLE, reason=f"test bed unavailable: {WHY}"),
]

HOST = "debian12-tb"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    testbed = Testbed(tmp_path_factory.mktemp("testbed-state"), report=print)
    try:
        testbed.up([HOST])
        yield testbed
    finally:
        testbed.down()


def test_systemd_is_pid_1_and_the_system_is_running(bed: Testbed) -> None:
    done = bed.ssh(HOST, "cat /proc/1/comm; systemctl is-system-running", check=True)
    pid1, state = done.stdout.split()
    assert pid1 == "systemd"
    assert state in ("running", "degraded")
    release = bed.ssh(HOST, ". /etc/os-release; echo $VERSION_CODENAME", check=True)
    assert release.stdout.strip() == "bookworm"
    assert bed.hosts[HOST].kind == "debian12"
    assert bed.ssh(HOST, "hostname", check=True).stdout.strip() == HOST


def test_root_and_ops_log_in_with_the_key_and_ops_has_passwordless_sudo(bed: Testbed) -> None:
    assert bed.ssh(HOST, "id -un", check=True).stdout.strip() == "root"
    assert bed.ssh(HOST, "id -un", user=OPS_USER, check=True).stdout.strip() == OPS_USER
    assert bed.ssh(HOST, "sudo -n true", user=OPS_USER).returncode == 0


def test_opspw_needs_its_password_for_sudo(bed: Testbed) -> None:
    without = bed.ssh(HOST, "sudo -n true", user=OPSPW_USER)
    assert without.returncode != 0
    assert "password is required" in without.stderr
    with_password = bed.ssh(
        HOST, "sudo -S -p '' id -u", user=OPSPW_USER, input=OPSPW_PASSWORD + "\n"
    )
    assert with_password.returncode == 0, with_password.stderr
    assert with_password.stdout.strip() == "0"


def test_host_keys_are_checked_strictly(bed: Testbed, tmp_path: Path) -> None:
    address = bed.hosts[HOST].address
    known = bed.known_hosts_path.read_text()
    assert known.startswith(f"{address} ssh-ed25519 ")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    argv = [arg.replace(str(bed.known_hosts_path), str(empty)) for arg in bed.ssh_argv(HOST)]
    done = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 255
    assert "Host key verification failed" in done.stderr


def test_inventory_lists_the_host_with_key_and_known_hosts(bed: Testbed) -> None:
    lines = bed.inventory_path.read_text().splitlines()
    host = bed.hosts[HOST]
    assert lines[0] == "[testbed]"
    assert f"{HOST} ansible_host={host.address} pg_major=15" in lines
    assert f"ansible_ssh_private_key_file={bed.key_path}" in lines
    assert f"ansible_ssh_common_args='-o UserKnownHostsFile={bed.known_hosts_path}'" in lines
    assert oct(bed.key_path.stat().st_mode & 0o777) == "0o600"


def test_host_reaches_the_debian_mirror(bed: Testbed) -> None:
    done = bed.ssh(HOST, "apt-get update", timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Err:" not in done.stdout


def test_stop_makes_the_host_unreachable_and_reset_brings_a_fresh_one(bed: Testbed) -> None:
    bed.ssh(HOST, "touch /root/left-by-test", check=True)
    bed.stop(HOST)
    assert not bed.is_running(HOST)
    down = bed.ssh(HOST, "true", timeout=60)
    assert down.returncode == 255
    bed.reset(HOST)
    assert bed.is_running(HOST)
    # Same address and host key: the strict known_hosts check still passes.
    assert bed.ssh(HOST, "test ! -e /root/left-by-test").returncode == 0


def _no_trace(bed: Testbed, names: list[str], indices: list[int]) -> list[str]:
    """Everything of these hosts still on the machine, checked with the system's own tools."""
    found = list(bed.leftovers())
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True)
    procs = subprocess.run(["ps", "-eo", "stat,args"], capture_output=True, text=True).stdout
    for name in names:
        if f"ctb-{name}" in netns.split():
            found.append(f"netns ctb-{name}")
        for line in procs.splitlines():
            if f"--machine={name} " in line + " " and not line.startswith("Z"):
                found.append(f"process {line}")
    for index in indices:
        if f" ctb-{index}h@" in links or f" ctb-{index}h:" in links:
            found.append(f"link ctb-{index}h")
    found.extend(
        f"mount {t}" for t in mounts.stdout.splitlines() if t.startswith(str(bed.state_dir))
    )
    if not tb_network.testbed_netns():  # no other test bed running: the NAT rule must be gone
        for table in ("nat", "filter"):
            rules = subprocess.run(
                ["iptables", "-t", table, "-S"], capture_output=True, text=True
            ).stdout
            found.extend(line for line in rules.splitlines() if "chatalot-testbed" in line)
    return found


def test_down_leaves_nothing_behind(tmp_path: Path) -> None:
    bed = Testbed(tmp_path / "state", report=print)
    names = ["debian12-down-tb"]
    try:
        bed.up(names)
        indices = [bed.hosts[name].index for name in names]
        assert bed.ssh(names[0], "true").returncode == 0
    finally:
        bed.down()
    assert _no_trace(bed, names, indices) == []
    assert not (bed.state_dir / "hosts").exists()
    assert not bed.inventory_path.exists()


def test_up_add_keeps_the_hosts_already_up(tmp_path: Path) -> None:
    """up(add=True) boots hosts beside the running ones; up() without it replaces them all."""
    bed = Testbed(tmp_path / "state", report=print)
    first, added = "debian12-add1-tb", "debian12-add2-tb"
    try:
        bed.up([first])
        bed.ssh(first, "touch /root/still-here", check=True)
        bed.up([added], add=True)
        assert sorted(bed.hosts) == [first, added]
        assert bed.ssh(first, "test -e /root/still-here").returncode == 0  # not rebooted
        assert bed.ssh(added, "true").returncode == 0
        inventory = bed.inventory_path.read_text()
        assert f"{first} ansible_host=" in inventory and f"{added} ansible_host=" in inventory
        assert len(bed.known_hosts_path.read_text().splitlines()) == 2
        bed.up([added], add=True)  # a named host that is up is replaced by a fresh one
        assert bed.ssh(first, "test -e /root/still-here").returncode == 0
        indices = [bed.hosts[name].index for name in (first, added)]
        bed.remove([added])
        assert sorted(bed.hosts) == [first] and f"{added} " not in bed.inventory_path.read_text()
        assert bed.ssh(first, "test -e /root/still-here").returncode == 0
        bed.up([added], add=True)
        bed.up([first])  # without add: exactly these hosts
        assert sorted(bed.hosts) == [first]
        assert bed.ssh(first, "test ! -e /root/still-here").returncode == 0
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not bed.is_running(added) and f"ctb-{added}" not in netns.split()
    finally:
        bed.down()
    assert _no_trace(bed, [first, added], indices) == []


def test_up_clears_a_killed_run(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    name = "debian12-kill-tb"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cli = [sys.executable, "-m", "testbed", "up", name, "--state-dir", str(state_dir)]
    first = subprocess.Popen(
        cli, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state_file = state_dir / "state.json"
    deadline = time.monotonic() + 600
    pid = None
    while pid is None and time.monotonic() < deadline and first.poll() is None:
        try:
            pid = json.loads(state_file.read_text())["hosts"][name]["pid"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # killed mid-boot (or just after): leftovers remain
    first.wait()
    assert pid is not None, "the killed run never started nspawn"
    bed = Testbed(state_dir, report=print)
    try:
        bed.up([name])
        assert bed.ssh(name, "systemctl is-system-running").stdout.strip() in (
            "running",
            "degraded",
        )
        assert not _alive(pid), "the killed run's nspawn is still running"
        index = bed.hosts[name].index
    finally:
        bed.down()
    assert _no_trace(bed, [name], [index]) == []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
