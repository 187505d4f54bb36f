"""Machine-wide view of the test bed: everything any test bed made, whatever its state dir.

Used by `python -m testbed status` (to show) and `python -m testbed down --all`
(to clear after a run whose state dir is gone). Only things carrying the
test bed's marks are considered: netns and links named `ctb-*`, iptables
rules commented `chatalot-testbed`, the `chatalot-testbed` cgroups,
systemd-nspawn processes joined to a `ctb-*` netns, and overlays whose lower
layer is in the image cache.
"""

from __future__ import annotations

import re
from pathlib import Path

from testbed import container, mounts, network
from testbed._proc import cmdline, run


def _host_names() -> set[str]:
    names = {ns[len(network.PREFIX) :] for ns in network.testbed_netns()}
    for top in container.cgroup_dirs():
        if top.is_dir():
            names.update(entry.name for entry in top.iterdir() if entry.is_dir())
    for pid in container.nspawn_pids():
        for arg in cmdline(pid):
            match = re.fullmatch(r"--machine=(.+)", arg)
            if match:
                names.add(match.group(1))
    return names


def machine_leftovers(cache_dir: Path) -> list[str]:
    """Everything test-bed-made that exists on this machine now (empty when all is down)."""
    found: list[str] = []
    found.extend(f"netns {ns}" for ns in network.testbed_netns())
    found.extend(f"link {link}" for link in network.testbed_links())
    found.extend(f"iptables -t {t} {' '.join(rule)}" for t, rule in network.tagged_rules())
    found.extend(
        f"overlay {m.target}" for m in mounts.overlays_with_lower_below(cache_dir / "images")
    )
    found.extend(f"nspawn pid {pid}: {' '.join(cmdline(pid))}" for pid in container.nspawn_pids())
    pids = container.cgroup_pids()
    if pids:
        found.append(f"processes in the test bed's cgroups: {pids}")
    found.extend(f"cgroup {d}" for d in container.cgroup_dirs() if d.exists())
    return found


def clear_machine(cache_dir: Path) -> None:
    """Stop every test bed host on this machine and remove all the test bed's marks."""
    names = sorted(_host_names())
    container.stop_hosts(names, {})
    for overlay in mounts.overlays_with_lower_below(cache_dir / "images"):
        mounts.unmount(overlay.target)
    with network.machine_lock():
        for ns in network.testbed_netns():
            network.delete_host_network(ns[len(network.PREFIX) :], None)
        for link in network.testbed_links():
            if link in network.list_links():
                run(["ip", "link", "del", link], check=False)
        network.remove_nat_if_unused()
    container.remove_cgroups(None)
