"""The test bed: real Debian hosts with systemd, each in its own network namespace.

`Testbed.up(names)` builds (or takes from the cache) each kind's image, gives
every host an overlay root, a netns and a fresh SSH host key, boots them in
parallel with systemd-nspawn and waits until sshd accepts the test bed's key
and systemd says the system is running (or degraded). `down()` removes every
process, mount, netns, veth and NAT rule it made.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from testbed import container, hostfs, images, mounts, network
from testbed._proc import tail, which
from testbed.errors import (
    BootError,
    HostsFailed,
    TestbedError,
    UnavailableError,
)
from testbed.mirror import Mirror, machine_mirror
from testbed.recipes import recipe_for
from testbed.state import HostRecord, State, load, save

log = logging.getLogger("testbed")

DEFAULT_STATE_DIR = Path("/var/tmp/chatalot-testbed")
STATE_ENV = "CHATALOT_TESTBED_STATE"
REQUIRED_TOOLS = (
    "debootstrap",
    "systemd-nspawn",
    "iptables",
    "ip",
    "ssh",
    "ssh-keygen",
    "chroot",
    "mount",
    "umount",
)
APT_PACKAGES = "debootstrap systemd-container iptables openssh-client"
"""What `apt-get install -y` needs on a Debian machine to run the test bed."""


def default_state_dir() -> Path:
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR)


def testbed_available() -> tuple[bool, str]:
    """Whether this machine can run the test bed; if not, the reason and the fix."""
    if os.geteuid() != 0:
        return False, "the test bed needs root (network namespaces, mounts, systemd-nspawn)"
    missing = [tool for tool in REQUIRED_TOOLS if which(tool) is None]
    if missing:
        return False, (
            f"missing tools: {', '.join(missing)}; install them with"
            f" `apt-get install -y {APT_PACKAGES} iproute2`"
        )
    try:
        filesystems = Path("/proc/filesystems").read_text()
    except OSError:
        filesystems = ""
    if "overlay" not in filesystems.split():
        return False, "the kernel has no overlayfs (try `modprobe overlay`)"
    return True, ""


testbed_available.__test__ = False  # type: ignore[attr-defined]  # not a test when imported


@dataclass(frozen=True)
class TestHost:
    """One test host: reach it as root@address with the test bed's key and known_hosts."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    name: str
    kind: str
    address: str
    index: int
    suite: str
    pg_major: int


class Testbed:
    """Real hosts for tests; see the module docstring. One state dir per test bed.

    A Testbed made for a state dir that already has hosts (from another
    process, say) knows them: `hosts`, `ssh()`, `stop()`, `reset()` and
    `down()` work on them.
    """

    __test__: ClassVar[bool] = False  # not a pytest test class

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        cache_dir: Path | str | None = None,
        mirror: Mirror | None = None,
        boot_timeout: float = 180.0,
        tmpfs_size: str | None = "4g",
        report: Callable[[str], None] | None = None,
    ) -> None:
        """state_dir: default $CHATALOT_TESTBED_STATE or /var/tmp/chatalot-testbed.
        cache_dir: images; default $CHATALOT_TESTBED_CACHE or /var/cache/chatalot-testbed.
        mirror: default the mirror of this machine's apt sources.
        tmpfs_size: each host's writable layer lives on a tmpfs of at most this size, so
        throwing a host away is instant; None puts it on the state dir's disk instead.
        report: called with one line per step (timings); default logging at INFO.
        """
        self.state_dir = Path(state_dir or default_state_dir()).absolute()
        self.cache_dir = Path(cache_dir or images.default_cache_dir()).absolute()
        self.inventory_path = self.state_dir / "inventory.ini"
        self.key_path = self.state_dir / "id_ed25519"
        self.known_hosts_path = self.state_dir / "known_hosts"
        self.boot_timeout = boot_timeout
        self.tmpfs_size = tmpfs_size
        self.timings: dict[str, float] = {}
        """Seconds per step of the last up/reset: `<host>.image`, `.ssh`, `.boot`, and `up`."""
        self._report = report or log.info
        self._mirror = mirror
        self._lock = threading.RLock()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._state = load(self._state_path)
        self._made: dict[str, TestHost] = {}
        self.hosts: dict[str, TestHost] = {}
        self._sync_hosts()

    # --- public API ----------------------------------------------------------

    def up(self, names: list[str], *, add: bool = False) -> None:
        """Boot fresh hosts called names (kinds: see recipes), after clearing any earlier run.

        Whatever this state dir ran before is torn down first, so the result is
        exactly these hosts. On failure everything is torn down again and the
        error names every host that failed, with the tail of its boot log.

        add=True keeps the hosts already up in this test bed and boots the named ones
        beside them (a named host that is already up is replaced by a fresh one); on
        failure only the named hosts are torn down. The inventory and known_hosts
        then list every host.
        """
        ok, why = testbed_available()
        if not ok:
            raise UnavailableError(why)
        if not names:
            raise TestbedError("up needs at least one host name (e.g. debian12)")
        if len(set(names)) != len(names):
            raise TestbedError(f"a host name was given twice: {names}")
        for name in names:
            recipe_for(name)  # refuse unknown kinds before touching anything
        started = time.monotonic()
        self.timings = {}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._op_lock():
            self._refuse_foreign(names)
            if add:
                self._teardown_hosts(names)
            else:
                self._teardown(also=names)
            try:
                self._raise_inotify_limit(len(names) + (len(self.hosts) if add else 0))
                self._start(names)
            except BaseException as exc:
                if add:
                    self._report(f"up failed ({type(exc).__name__}): tearing down"
                                 f" {', '.join(names)}")
                    self._teardown_hosts(names)
                    self._write_known_hosts()
                    self._write_inventory()
                    raise
                self._report(f"up failed ({type(exc).__name__}): tearing everything down")
                self._teardown(also=[])
                self._remove_files()
                raise
        self.timings["up"] = time.monotonic() - started
        self._report(f"up: {len(names)} host(s) in {self.timings['up']:.1f}s")
        self._report(f"inventory: {self.inventory_path}")

    def down(self) -> None:
        """Remove every process, mount, overlay, netns, veth and NAT rule this test bed made.

        The client key and the boot logs stay in the state dir; the NAT rule and
        ip_forward are restored only when no other test bed still has hosts.
        """
        if not self.state_dir.is_dir():
            return
        with self._op_lock():
            self._teardown(also=[])
            self._remove_files()

    def remove(self, names: list[str]) -> None:
        """Stop and remove only these hosts; the others keep running (the inverse of
        up(add=True)). The inventory and known_hosts then list the hosts left."""
        with self._op_lock():
            for name in names:
                self._record(name)  # refuse unknown names before touching anything
            self._teardown_hosts(names)
            with network.machine_lock():
                network.remove_nat_if_unused()
            self._write_known_hosts()
            self._write_inventory()

    def reset(self, name: str) -> None:
        """Throw the host's root away and boot a fresh copy from the image.

        Same address and same SSH host key, so known_hosts stays valid. Works on
        a host that stop() powered off, too.
        """
        with self._op_lock():
            record = self._record(name)
            self.timings = {}
            self._power_off(name)
            host_dir = self._host_dir(name)
            mounts.unmount_below(host_dir)
            mounts.remove_tree(host_dir / "rw")
            network.set_host_link(name, record.index, up=True)
            mirror = self._mirror or machine_mirror()
            client_key = hostfs.ensure_client_key(self.key_path)
            self._bring_up(name, mirror, client_key, hostfs.resolv_conf())

    def stop(self, name: str) -> None:
        """Power one host off, like a machine that is switched off: its address stops answering.

        Its netns stays (with the link inside set down), so connections fail
        with "No route to host" after a few seconds; the other hosts keep running.
        reset(name) boots it again, fresh.
        """
        with self._op_lock():
            record = self._record(name)
            self._power_off(name)
            mounts.unmount_below(self._host_dir(name))
            network.set_host_link(name, record.index, up=False)

    def ssh(
        self,
        name: str,
        command: str,
        user: str = "root",
        *,
        timeout: float | None = 600,
        input: str | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command on the host with the system ssh client.

        Host keys are checked strictly against the test bed's known_hosts.
        A timeout gives exit code 124 instead of an exception; check=True raises
        TestbedError on a non-zero exit.
        """
        argv = [*self.ssh_argv(name, user), command]
        try:
            done = subprocess.run(
                argv,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            done = subprocess.CompletedProcess(
                argv, 124, _text(exc.stdout), _text(exc.stderr) + f"\ntimed out after {timeout}s"
            )
        if check and done.returncode != 0:
            raise TestbedError(
                f"{user}@{name}: `{command}` failed (exit {done.returncode}):"
                f" {done.stderr.strip()[-2000:]}"
            )
        return done

    def ssh_argv(self, name: str, user: str = "root") -> list[str]:
        """The ssh command line (without the remote command) that ssh() uses for user@name."""
        host = self._host(name)
        return [
            "ssh",
            "-F", "/dev/null",  # no user or system ssh_config (no SendEnv LANG, no surprises)
            "-i", str(self.key_path),
            "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts_path}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "UpdateHostKeys=no",
            "-o", "ConnectTimeout=10",
            "-o", "ServerAliveInterval=15",
            "-o", "LogLevel=ERROR",
            "-l", user,
            host.address,
        ]  # fmt: skip

    def is_running(self, name: str) -> bool:
        """Whether the host's nspawn process is alive."""
        return bool(container.nspawn_pids(name))

    def leftovers(self, hosts: Iterable[TestHost] | None = None) -> list[str]:
        """What is left on this machine of the given hosts (default: every host this object
        brought up, and the ones in the state file): processes, mounts, netns, veths, cgroups.
        Also the NAT rule, if no test bed host is left at all. Empty after a clean down().
        """
        wanted = dict(self._made)
        wanted.update(self.hosts)
        if hosts is not None:
            wanted = {host.name: host for host in hosts}
        found = []
        netns = set(network.list_netns())
        links = set(network.list_links())
        for name, host in sorted(wanted.items()):
            pids = container.host_pids(name)
            if pids:
                found.append(f"{name}: processes {pids}")
            if network.netns_name(name) in netns:
                found.append(f"{name}: netns {network.netns_name(name)}")
            if network.veth_host(host.index) in links:
                found.append(f"{name}: veth {network.veth_host(host.index)}")
            found.extend(f"{name}: cgroup {d}" for d in container.cgroup_dirs(name) if d.exists())
        found.extend(f"mount {target}" for target in mounts.under(self.state_dir))
        if not network.testbed_netns():
            found.extend(f"iptables -t {t} {' '.join(r)}" for t, r in network.tagged_rules())
        hosts_dir = self.state_dir / "hosts"
        if hosts_dir.exists():
            found.append(f"directory {hosts_dir}")
        return found

    # --- steps -------------------------------------------------------------------

    def _start(self, names: list[str]) -> None:
        """Networks, keys, inventory, then every host booted in parallel; errors collected."""
        mirror = self._mirror or machine_mirror()
        resolv = hostfs.resolv_conf()
        client_key = hostfs.ensure_client_key(self.key_path)
        with network.machine_lock():
            self._state.nat_device = network.ensure_nat()
            taken: set[int] = set()
            for name in names:
                recipe = recipe_for(name)
                index = network.free_index(taken)
                taken.add(index)
                self._state.hosts[name] = HostRecord(
                    name=name,
                    kind=recipe.kind,
                    index=index,
                    address=network.host_address(index),
                    image=str(images.image_path(self.cache_dir, recipe, mirror)),
                )
                self._save()  # recorded before it exists: a killed run can be cleared
                network.create_host_network(name, index)
        self._sync_hosts()
        self._write_known_hosts()
        self._write_inventory()
        errors: dict[str, Exception] = {}
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = {
                name: pool.submit(self._bring_up, name, mirror, client_key, resolv)
                for name in names
            }
            for name, future in futures.items():
                error = future.exception()
                if isinstance(error, Exception):
                    errors[name] = error
                elif error is not None:
                    raise error
        if len(errors) == 1:
            raise next(iter(errors.values()))
        if errors:
            raise HostsFailed("up", errors)

    def _bring_up(self, name: str, mirror: Mirror, client_key: str, resolv: str) -> None:
        """Image (cached or built), overlay root, host identity, nspawn, wait until ready."""
        recipe = recipe_for(name)
        image, seconds, built = images.ensure_image(recipe, mirror, self.cache_dir, self._report)
        self.timings[f"{name}.image"] = seconds
        how = "built" if built else "cached"
        self._report(f"{name}: image {image.name} {how} ({seconds:.1f}s)")
        with self._lock:
            self._state.hosts[name].image = str(image)
            self._save()
        host_dir = self._host_dir(name)
        merged, writable = host_dir / "merged", host_dir / "rw"
        if self.tmpfs_size and not mounts.is_mount_point(writable):
            mounts.mount_tmpfs(writable, self.tmpfs_size)
        mounts.mount_overlay(image, writable / "upper", writable / "work", merged)
        hostfs.prepare_root(merged, name, client_key, host_dir / "hostkey", resolv)
        started = time.monotonic()
        proc = container.launch(name, merged, self._log_path(name))
        with self._lock:
            self._procs[name] = proc
            record = self._state.hosts[name]
            record.pid = proc.pid
            record.running = True
            self._save()
        self._wait_ready(name, proc, started)

    def _wait_ready(self, name: str, proc: subprocess.Popen[bytes], started: float) -> None:
        host = self._host(name)
        deadline = started + self.boot_timeout
        log_path = self._log_path(name)
        last = ""
        while True:
            if proc.poll() is not None:
                raise BootError(
                    f"{name}: systemd-nspawn exited with code {proc.returncode} while booting;"
                    f" boot log {log_path}:\n{tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise BootError(
                    f"{name}: sshd on {host.address}:22 did not accept the test bed's key within"
                    f" {self.boot_timeout:.1f}s (last: {last or 'port closed'});"
                    f" boot log {log_path}:\n{tail(log_path)}"
                )
            if _port_open(host.address, 22):
                done = self.ssh(name, "true", timeout=15)
                if done.returncode == 0:
                    break
                last = done.stderr.strip()
            time.sleep(0.2)
        ssh_ready = time.monotonic() - started
        self.timings[f"{name}.ssh"] = ssh_ready
        remaining = max(5, int(deadline - time.monotonic()))
        done = self.ssh(
            name, f"timeout {remaining} systemctl is-system-running --wait", timeout=remaining + 15
        )
        words = done.stdout.split()
        status = words[-1] if words else ""
        if status not in ("running", "degraded"):
            failed = self.ssh(name, "systemctl --failed --no-legend --plain", timeout=30).stdout
            raise BootError(
                f"{name}: `systemctl is-system-running` says {status or done.stderr.strip()!r}"
                f" {time.monotonic() - started:.0f}s after boot; failed units: {failed.strip()};"
                f" boot log {log_path}:\n{tail(log_path)}"
            )
        booted = time.monotonic() - started
        self.timings[f"{name}.boot"] = booted
        extra = ""
        if status == "degraded":
            failed = self.ssh(name, "systemctl --failed --no-legend --plain", timeout=30).stdout
            units = [line.split()[0] for line in failed.splitlines() if line.split()]
            extra = f" (failed units: {', '.join(units) or 'none listed'})"
        self._report(
            f"{name}: booted at {host.address}: ssh ready in {ssh_ready:.1f}s,"
            f" system {status} in {booted:.1f}s{extra}"
        )

    def _power_off(self, name: str) -> None:
        record = self._state.hosts.get(name)
        container.stop_hosts([name], {name: record.pid if record else None})
        self._reap(name)
        if record:
            with self._lock:
                record.pid = None
                record.running = False
                self._save()

    def _teardown(self, also: list[str]) -> None:
        """Stop and remove every host of the state file (and those named in also)."""
        names = sorted(set(self._state.hosts) | set(also))
        recorded = {name: record.pid for name, record in self._state.hosts.items()}
        if names:
            container.stop_hosts(names, recorded)
        for name in list(self._procs):
            self._reap(name)
        mounts.unmount_below(self.state_dir / "hosts")
        with network.machine_lock():
            for name in names:
                record = self._state.hosts.get(name)
                network.delete_host_network(name, record.index if record else None)
            network.remove_nat_if_unused()
        mounts.remove_tree(self.state_dir / "hosts")
        with self._lock:
            self._state = State()
            self._save()
        self._sync_hosts()

    def _teardown_hosts(self, names: list[str]) -> None:
        """Stop and remove only the named hosts (and leftovers of them); others keep running."""
        recorded = {name: record.pid for name, record in self._state.hosts.items()}
        container.stop_hosts(names, recorded)
        for name in names:
            self._reap(name)
            mounts.unmount_below(self._host_dir(name))
        with network.machine_lock():
            for name in names:
                record = self._state.hosts.get(name)
                network.delete_host_network(name, record.index if record else None)
        for name in names:
            mounts.remove_tree(self._host_dir(name))
        with self._lock:
            for name in names:
                self._state.hosts.pop(name, None)
            self._save()
        self._sync_hosts()

    def _refuse_foreign(self, names: list[str]) -> None:
        """Refuse to take over a running host of the same name that another state dir made."""
        existing = set(network.testbed_netns())
        for name in names:
            if name in self._state.hosts or network.netns_name(name) not in existing:
                continue
            pids = container.host_pids(name)
            if pids:
                raise TestbedError(
                    f"host {name} is running (netns {network.netns_name(name)}, processes"
                    f" {pids[:5]}) but was not made by the test bed in {self.state_dir}:"
                    " another test bed uses that name. Stop it with `python -m testbed down"
                    " --state-dir ITS_DIR`, or clear every test bed on this machine with"
                    " `python -m testbed down --all`"
                )

    def _reap(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("%s: nspawn pid %s did not exit", name, proc.pid)

    def _remove_files(self) -> None:
        for path in (self.inventory_path, self.known_hosts_path, self._state_path):
            path.unlink(missing_ok=True)

    # --- files -------------------------------------------------------------------

    def _write_known_hosts(self) -> None:
        lines = []
        for name, host in sorted(self.hosts.items()):
            key = hostfs.ensure_host_key(self._host_dir(name) / "hostkey", name)
            lines.append(f"{host.address} {key}\n")
        _atomic_write(self.known_hosts_path, "".join(lines))

    def _write_inventory(self) -> None:
        lines = ["[testbed]"]
        for name, host in sorted(self.hosts.items(), key=lambda item: item[1].index):
            lines.append(f"{name} ansible_host={host.address} pg_major={host.pg_major}")
        lines += [
            "[testbed:vars]",
            "ansible_user=root",
            f"ansible_ssh_private_key_file={self.key_path}",
            f"ansible_ssh_common_args='-o UserKnownHostsFile={self.known_hosts_path}'",
        ]
        _atomic_write(self.inventory_path, "\n".join(lines) + "\n")

    # --- bookkeeping ---------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.state_dir / "state.json"

    def _host_dir(self, name: str) -> Path:
        return self.state_dir / "hosts" / name

    def _raise_inotify_limit(self, hosts: int) -> None:
        """Each host's systemd takes several inotify instances of the machine's root user,
        whose default limit (128) leaves hosts beyond a dozen or so without (their sshd
        then never starts): raise it for `hosts` hosts, never lower it."""
        path = Path("/proc/sys/fs/inotify/max_user_instances")
        try:
            have = int(path.read_text().strip())
        except (OSError, ValueError):
            return
        want = inotify_instances_needed(hosts)
        if want > have:
            path.write_text(f"{want}\n")
            self._report(f"fs.inotify.max_user_instances raised from {have} to {want} "
                         f"for {hosts} hosts")

    def _log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def _save(self) -> None:
        with self._lock:
            save(self._state_path, self._state)

    def _sync_hosts(self) -> None:
        hosts = {}
        for name, record in self._state.hosts.items():
            recipe = recipe_for(name)
            hosts[name] = TestHost(
                name=name,
                kind=record.kind,
                address=record.address,
                index=record.index,
                suite=recipe.suite,
                pg_major=recipe.pg_major,
            )
        self.hosts = hosts
        self._made.update(hosts)

    def _record(self, name: str) -> HostRecord:
        record = self._state.hosts.get(name)
        if record is None:
            known = ", ".join(sorted(self._state.hosts)) or "none"
            raise TestbedError(f"no host {name!r} in the test bed at {self.state_dir} ({known})")
        return record

    def _host(self, name: str) -> TestHost:
        host = self.hosts.get(name)
        if host is None:
            known = ", ".join(sorted(self.hosts)) or "none"
            raise TestbedError(f"no host {name!r} in the test bed at {self.state_dir} ({known})")
        return host

    @contextmanager
    def _op_lock(self) -> Iterator[None]:
        """One operation at a time per state dir, across processes."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def inotify_instances_needed(hosts: int) -> int:
    """fs.inotify.max_user_instances for `hosts` test-bed hosts beside the machine's own
    use: 16 per host (a booted host's systemd, journald, udev and logind take about 10),
    and 128 (the kernel's default) for the rest."""
    return 128 + 16 * hosts

