"""Boot a host's root with systemd-nspawn (real systemd as PID 1) and stop it again.

Each host's nspawn runs in its own cgroup, `chatalot-testbed/<name>`, in the
name=systemd (v1) and the unified (v2) hierarchies. Without that, nspawn
(with --keep-unit and no systemd on this machine) puts every container in the
same `payload` cgroup of the caller, and parallel hosts would share it. The
cgroup is also how every process of a host is found again for teardown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from testbed import mounts, network
from testbed._proc import (
    alive,
    all_pids,
    cmdline,
    pids_in_netns,
    signal_pids,
    tool_env,
    wait_gone,
)

CGROUP_NAME = "chatalot-testbed"
STOP_TIMEOUT = 20.0


def cgroup_roots() -> list[Path]:
    """Mount points of the cgroup hierarchies nspawn uses: name=systemd (v1) and cgroup2."""
    roots = []
    for mount in mounts.all_mounts():
        if mount.fstype == "cgroup2" or (
            mount.fstype == "cgroup" and "name=systemd" in mount.options.split(",")
        ):
            roots.append(Path(mount.target))
    return roots


def cgroup_dirs(name: str | None = None) -> list[Path]:
    """The test bed's cgroup directory (for one host, or the parent of all) per hierarchy."""
    return [root / CGROUP_NAME / name if name else root / CGROUP_NAME for root in cgroup_roots()]


def cgroup_pids(name: str | None = None) -> list[int]:
    """Every process in the host's cgroups (all hosts' when name is None), children included."""
    pids: set[int] = set()
    for top in cgroup_dirs(name):
        if not top.is_dir():
            continue
        for directory, _subdirs, _files in os.walk(top):
            try:
                text = (Path(directory) / "cgroup.procs").read_text()
            except OSError:
                continue
            pids.update(int(line) for line in text.split())
    return sorted(pids)


def remove_cgroups(name: str | None = None) -> None:
    """Remove the (empty) cgroup directories, deepest first; the shared parent if empty."""
    for top in cgroup_dirs(name):
        if not top.is_dir():
            continue
        for directory, _subdirs, _files in os.walk(top, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        if name:
            with contextlib.suppress(OSError):  # another host's cgroup may still be there
                os.rmdir(top.parent)


def nspawn_argv(name: str, root: Path) -> list[str]:
    return [
        "systemd-nspawn",
        "--boot",
        f"--directory={root}",
        f"--machine={name}",
        "--register=no",  # there is no system bus on this machine
        "--keep-unit",
        f"--network-namespace-path={network.netns_path(name)}",
        "--console=read-only",
        "--link-journal=no",
        "--resolv-conf=off",  # the test bed writes one that works from the netns
        "--timezone=off",
    ]


def launch(name: str, root: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start nspawn in the background (own session, own cgroup, output to log_path)."""
    dirs = cgroup_dirs(name)
    for directory in dirs:
        directory.mkdir(parents=True, exist_ok=True)
    # Join the cgroups from inside the child before exec, so nspawn starts there.
    script = "".join(f'echo $$ > "{d}/cgroup.procs"\n' for d in dirs) + 'exec "$@"\n'
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log_file:
        return subprocess.Popen(
            ["/bin/sh", "-c", script, "sh", *nspawn_argv(name, root)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=tool_env(),
        )


def is_our_nspawn(pid: int, name: str | None = None) -> bool:
    """True if pid is a test bed nspawn (for host name, if given), checked by command line.

    The shell that launch() starts, before it execs nspawn, counts too: a run
    killed just after starting it leaves that shell to become nspawn.
    """
    argv = cmdline(pid)
    if not argv:
        return False
    if not argv[0].endswith("systemd-nspawn") and not (
        argv[0] == "/bin/sh" and "systemd-nspawn" in argv
    ):
        return False
    wanted = (
        f"--network-namespace-path={network.netns_path(name)}"
        if name
        else f"--network-namespace-path={network.NETNS_DIR}/{network.PREFIX}"
    )
    return any(arg == wanted if name else arg.startswith(wanted) for arg in argv)


def nspawn_pids(name: str | None = None) -> list[int]:
    """Running test bed nspawn processes (for one host, or all), found by command line."""
    return [pid for pid in all_pids() if is_our_nspawn(pid, name)]


def host_pids(name: str) -> list[int]:
    """Every process belonging to host name: its nspawn, its cgroups, its network namespace."""
    pids = set(nspawn_pids(name)) | set(cgroup_pids(name))
    pids |= set(pids_in_netns(network.netns_path(name)))
    pids.discard(os.getpid())
    return sorted(pid for pid in pids if alive(pid))


def stop_hosts(
    names: list[str], recorded: dict[str, int | None], timeout: float = STOP_TIMEOUT
) -> None:
    """Power the hosts off: SIGTERM to nspawn (clean shutdown), SIGKILL whatever remains.

    recorded maps a host to the nspawn pid the state file knows; it is only
    signalled if its command line shows it is that host's nspawn.
    """
    leaders: list[int] = []
    for name in names:
        pid = recorded.get(name)
        candidates = set(nspawn_pids(name))
        if pid and is_our_nspawn(pid, name):
            candidates.add(pid)
        leaders.extend(candidates)
    # A container still starting up may miss the first request (systemd has not
    # installed its handler yet), so ask again every two seconds.
    deadline = time.monotonic() + timeout
    while leaders and time.monotonic() < deadline:
        signal_pids(leaders, signal.SIGTERM)
        leaders = wait_gone(leaders, min(2.0, max(0.0, deadline - time.monotonic())))
    for _ in range(5):
        rest = [pid for name in names for pid in host_pids(name)]
        if not rest:
            break
        signal_pids(rest, signal.SIGKILL)
        wait_gone(rest, 10)
    for name in names:
        remove_cgroups(name)
        propagate = Path("/run/systemd/nspawn/propagate") / name
        with contextlib.suppress(OSError):
            os.rmdir(propagate)
