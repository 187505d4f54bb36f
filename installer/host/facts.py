"""Gather facts: distribution, memory, CPUs, init system. One round trip."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace

import distro

from installer.desired.tuning import disk_type_from_rotational
from installer.errors import CommandError
from installer.host.sections import SectionScript
from installer.transport.base import Transport
from installer.transport.shell import sh


@dataclass(frozen=True)
class Facts:
    os_id: str
    os_like: tuple[str, ...]
    version_id: str
    codename: str
    pretty_name: str
    memory_kb: int
    cpus: int
    pid1: str
    is_root: bool
    #: "ssd", "hdd" or "nvme", from the device under /var/lib
    disk: str = "ssd"
    raw: dict[str, str] = field(default_factory=dict, repr=False)
    #: `uname -m`: x86_64, aarch64 (package repository paths name it)
    machine: str = "x86_64"
    #: /etc/machine-id: one per installed system (two inventory names, one host: the same)
    machine_id: str = ""

    @property
    def systemd(self) -> bool:
        """True when systemd is PID 1 (so units can be enabled and started)."""
        return self.pid1 == "systemd"


def parse_os_release(text: str) -> dict[str, str]:
    """Parse /etc/os-release text with the `distro` package."""
    with tempfile.NamedTemporaryFile("w", suffix="os-release", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        d = distro.LinuxDistribution(
            include_lsb=False,
            os_release_file=path,
            distro_release_file=os.devnull,
            include_uname=False,
            include_oslevel=False,
        )
        info = {k.upper(): str(v) for k, v in d.os_release_info().items()}
        info["_ID"] = d.id()
        info["_LIKE"] = d.like()
        info["_VERSION"] = d.version()
        info["_CODENAME"] = d.codename()
        info["_PRETTY"] = d.name(pretty=True)
        return info
    finally:
        os.unlink(path)


def _cat(path: str) -> str:
    """Shell printing a file, in the shell itself (no `cat`: every process costs the host
    a few ms, and a fleet's no-op run reads facts on every host)."""
    return (f'while IFS= read -r l || [ -n "$l" ]; do printf \'%s\\n\' "$l"; done '
            f"2>/dev/null < {path}")


#: where the distributions keep PostgreSQL's data: Debian's, Fedora's/RHEL's, Arch's
DATA_PARENTS = ("/var/lib/postgresql", "/var/lib/pgsql", "/var/lib/postgres")


def disk_section(candidates: tuple[str, ...] = DATA_PARENTS, fallback: str = "/var/lib") -> str:
    """Shell printing `DEVICE ROTATIONAL` for the block device under the first existing
    candidate (a DB host often has a disk of its own mounted there), else under
    `fallback`; a partition is resolved to its disk."""
    return (f"t={sh(fallback)}; for p in {sh(*candidates)}; do "
            '[ -d "$p" ] && t=$p && break; done; '
            "d=$(findmnt -no SOURCE -T \"$t\" 2>/dev/null | sed 's|^/dev/||; s|\\[.*||'); "
            "b=$d; [ -e /sys/class/block/$d/partition ] && "
            "b=$(basename \"$(readlink -f /sys/class/block/$d/..)\"); "
            "echo \"$b $(cat /sys/block/$b/queue/rotational 2>/dev/null)\"")


FACTS_SCRIPT_SECTIONS = {
    "os-release": f"{_cat('/etc/os-release')} || {_cat('/usr/lib/os-release')}",
    "meminfo": "while read -r k v u; do "
               'case $k in MemTotal:) echo "$k $v $u"; break ;; esac; done < /proc/meminfo',
    "nproc": "nproc 2>/dev/null || getconf _NPROCESSORS_ONLN",
    "pid1": _cat("/proc/1/comm"),
    "machine": "uname -m",
    "machine-id": _cat("/etc/machine-id"),
    "uid": "id -u",
    "cgroup-v2-memory": _cat("/sys/fs/cgroup/memory.max"),
    "cgroup-v2-cpu": _cat("/sys/fs/cgroup/cpu.max"),
    "cgroup-v1-memory": _cat("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    "cgroup-v1-quota": _cat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    "cgroup-v1-period": _cat("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    "disk": disk_section(),
}


def facts_script() -> SectionScript:
    """The facts probe: one script, its output split back by `parse`."""
    s = SectionScript()
    for name, cmd in FACTS_SCRIPT_SECTIONS.items():
        s.section(name, cmd)
    s.raw("true")
    return s


def gather(t: Transport, script: SectionScript | None = None,
           output: str | None = None) -> Facts:
    """Read the host's facts in one round trip; or none, given the `output` of `script`
    already run (as root, under the host lock: the connected user's root-ness is then the
    transport's, not the script's `id -u`)."""
    if script is not None and output is not None:
        return replace(facts_from_sections(script.parse(output)), is_root=t.is_root)
    s = facts_script()
    r = t.run(s.script, timeout=60)
    if not r.ok:
        raise CommandError("gathering facts", r.exit_code, r.stderr)
    sec = s.parse(r.stdout)
    return facts_from_sections(sec)


def facts_from_sections(sec: dict[str, str]) -> Facts:
    """Pure: turn the probe's sections into Facts."""
    osr = parse_os_release(sec.get("os-release", ""))
    mem_line = sec.get("meminfo", "").split()
    memory_kb = int(mem_line[1]) if len(mem_line) >= 2 and mem_line[1].isdigit() else 0
    nproc = sec.get("nproc", "").strip()
    return Facts(
        os_id=osr.get("_ID", ""),
        os_like=tuple(osr.get("_LIKE", "").split()),
        version_id=osr.get("_VERSION", ""),
        codename=osr.get("_CODENAME", ""),
        pretty_name=osr.get("_PRETTY", "") or osr.get("PRETTY_NAME", ""),
        memory_kb=memory_kb,
        cpus=int(nproc) if nproc.isdigit() else 1,
        pid1=sec.get("pid1", "").strip(),
        is_root=sec.get("uid", "").strip() == "0",
        disk=_disk(sec.get("disk", "")),
        machine=sec.get("machine", "").strip() or "x86_64",
        machine_id=sec.get("machine-id", "").strip(),
        raw={k: v for k, v in sec.items() if k.startswith("cgroup")},
    )


def _disk(text: str) -> str:
    parts = text.split()
    device = parts[0] if parts else ""
    rotational = parts[1] if len(parts) > 1 else None
    return disk_type_from_rotational(rotational, device)
