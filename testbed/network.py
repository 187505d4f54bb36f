"""One network namespace per host, a veth pair to it, and NAT to the Debian mirror.

Host N (N >= 1) lives in netns `ctb-<name>`; the veth pair is `ctb-<N>h` on
this machine (10.199.N.1/24) and `ctb-<N>c` inside (10.199.N.2/24, default
route via 10.199.N.1). One MASQUERADE rule, tagged with the comment
`chatalot-testbed`, lets 10.199.0.0/16 out through the default route's
device. Traffic between hosts is routed by this machine and keeps its
source address.

The NAT rule and ip_forward are shared by every running test bed: they are
removed (and ip_forward restored) only when the last `ctb-*` netns is gone.
Nothing here touches a namespace, link or rule without the `ctb-` prefix or
the `chatalot-testbed` comment.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testbed import mounts
from testbed._proc import run
from testbed.errors import TestbedError

PREFIX = "ctb-"
SUBNET = "10.199.0.0/16"
COMMENT = "chatalot-testbed"
MAX_INDEX = 254
NETNS_DIR = Path("/run/netns")
RUN_DIR = Path("/run/chatalot-testbed")
"""Shared runtime state of all test beds on this machine (lock, saved ip_forward)."""
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def netns_name(name: str) -> str:
    return f"{PREFIX}{name}"


def netns_path(name: str) -> Path:
    return NETNS_DIR / netns_name(name)


def veth_host(index: int) -> str:
    return f"{PREFIX}{index}h"


def veth_container(index: int) -> str:
    return f"{PREFIX}{index}c"


def host_address(index: int) -> str:
    return f"10.199.{index}.2"


def gateway_address(index: int) -> str:
    return f"10.199.{index}.1"


@contextmanager
def machine_lock() -> Iterator[None]:
    """Serialise network changes of all test beds on this machine."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(RUN_DIR / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def list_netns() -> list[str]:
    """Names of all network namespaces bound under /run/netns."""
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def testbed_netns() -> list[str]:
    return [ns for ns in list_netns() if ns.startswith(PREFIX)]


def list_links() -> list[str]:
    """Names of this machine's network interfaces (in its own namespace)."""
    out = run(["ip", "-o", "link", "show"]).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def testbed_links() -> list[str]:
    return [link for link in list_links() if link.startswith(PREFIX)]


def free_index(taken: set[int]) -> int:
    """The lowest N >= 1 whose veth does not exist on this machine and is not in taken."""
    present = set(list_links())
    for index in range(1, MAX_INDEX + 1):
        if index not in taken and veth_host(index) not in present:
            return index
    raise TestbedError(f"no free host index: {MAX_INDEX} veths {PREFIX}*h exist")


def default_device() -> str:
    """The device of this machine's default IPv4 route (where NAT sends traffic out)."""
    out = run(["ip", "-o", "-4", "route", "show", "default"]).stdout.split()
    if "dev" not in out:
        raise TestbedError("no default IPv4 route on this machine: the hosts could not reach apt")
    return out[out.index("dev") + 1]


def create_host_network(name: str, index: int) -> None:
    """Make netns ctb-<name> with its veth pair, addresses, lo and default route."""
    ns, outside, inside = netns_name(name), veth_host(index), veth_container(index)
    _remember_netns_mount()
    run(["ip", "netns", "add", ns])
    try:
        run(["ip", "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", ns])
        run(["ip", "addr", "add", f"{gateway_address(index)}/24", "dev", outside])
        run(["ip", "link", "set", outside, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{host_address(index)}/24", "dev", inside])
        run(["ip", "-n", ns, "link", "set", inside, "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "route", "add", "default", "via", gateway_address(index)])
    except BaseException:
        delete_host_network(name, index)
        raise


def set_host_link(name: str, index: int, up: bool) -> None:
    """Bring the host's side of its veth up or down (down: its address stops answering)."""
    state = "up" if up else "down"
    run(["ip", "-n", netns_name(name), "link", "set", veth_container(index), state])
    if up:
        # a link set down loses its default route; put it back
        run(
            [
                "ip",
                "-n",
                netns_name(name),
                "route",
                "replace",
                "default",
                "via",
                gateway_address(index),
            ]
        )


def delete_host_network(name: str, index: int | None) -> None:
    """Remove the veth ctb-<index>h (its peer goes with it) and netns ctb-<name>.

    The veth goes first: deleting it is synchronous, while a deleted netns
    takes its interfaces down in the background.
    """
    if index is not None and veth_host(index) in list_links():
        run(["ip", "link", "del", veth_host(index)], check=False)
    ns = netns_name(name)
    if ns in list_netns():
        run(["ip", "netns", "del", ns])
    if index is not None:
        deadline = time.monotonic() + 10
        while veth_host(index) in list_links():
            if time.monotonic() > deadline:
                raise TestbedError(f"veth {veth_host(index)} is still there 10s after removal")
            time.sleep(0.1)


# --- NAT and forwarding (shared) -------------------------------------------


def _masquerade_rule(device: str) -> list[str]:
    return [
        "POSTROUTING",
        "-s",
        SUBNET,
        "-o",
        device,
        "-m",
        "comment",
        "--comment",
        COMMENT,
        "-j",
        "MASQUERADE",
    ]


def ensure_nat() -> str:
    """Turn on forwarding and add the MASQUERADE rule once; return the outgoing device."""
    device = default_device()
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    saved = RUN_DIR / "ip_forward.orig"
    current = IP_FORWARD.read_text().strip()
    if current != "1":
        if not saved.exists():
            saved.write_text(current + "\n")
        IP_FORWARD.write_text("1\n")
    rule = _masquerade_rule(device)
    if run(["iptables", "-t", "nat", "-C", *rule], check=False).returncode != 0:
        run(["iptables", "-t", "nat", "-A", *rule])
    policy = run(["iptables", "-S", "FORWARD"]).stdout.splitlines()
    if policy and policy[0].split()[-1] != "ACCEPT":
        # A DROP policy (left by Docker, say) would block the hosts: let our subnet through.
        for direction in ("-s", "-d"):
            forward = [
                "FORWARD",
                direction,
                SUBNET,
                "-m",
                "comment",
                "--comment",
                COMMENT,
                "-j",
                "ACCEPT",
            ]
            if run(["iptables", "-C", *forward], check=False).returncode != 0:
                run(["iptables", "-I", *forward])
    return device


def tagged_rules() -> list[tuple[str, list[str]]]:
    """(table, rule) for every iptables rule carrying the test bed's comment."""
    found = []
    for table in ("nat", "filter"):
        out = run(["iptables", "-t", table, "-S"]).stdout
        for line in out.splitlines():
            argv = shlex.split(line)
            if argv[:1] == ["-A"] and COMMENT in argv:
                found.append((table, argv[1:]))
    return found


def remove_nat_if_unused() -> bool:
    """If no ctb-* netns is left, delete the tagged rules and restore ip_forward."""
    if testbed_netns():
        return False
    for table, rule in tagged_rules():
        run(["iptables", "-t", table, "-D", *rule])
    saved = RUN_DIR / "ip_forward.orig"
    if saved.exists():
        IP_FORWARD.write_text(saved.read_text())
        saved.unlink()
    _forget_netns_mount()
    return True


def _remember_netns_mount() -> None:
    """Note whether /run/netns exists before `ip netns add` creates and bind-mounts it."""
    marker = RUN_DIR / "netns-dir.created"
    if not NETNS_DIR.exists() and not marker.exists():
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        marker.write_text("/run/netns was made by the test bed\n")


def _forget_netns_mount() -> None:
    """Undo what `ip netns add` did to /run/netns, if the test bed caused it and it is empty."""
    marker = RUN_DIR / "netns-dir.created"
    if not marker.exists():
        return
    if NETNS_DIR.exists() and not any(NETNS_DIR.iterdir()):
        if str(NETNS_DIR) in {m.target for m in mounts.all_mounts()}:
            mounts.unmount(str(NETNS_DIR))
        os.rmdir(NETNS_DIR)
    marker.unlink()
