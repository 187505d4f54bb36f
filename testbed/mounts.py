"""Mounts on this machine: read from /proc/self/mountinfo, overlay mount and unmount."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from testbed._proc import run


@dataclass(frozen=True)
class Mount:
    target: str
    fstype: str
    source: str
    options: str
    """Superblock options (for overlay: lowerdir=..., upperdir=..., workdir=...)."""

    def option(self, name: str) -> str | None:
        for part in self.options.split(","):
            key, _, value = part.partition("=")
            if key == name:
                return value
        return None


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (\\040 for a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def all_mounts() -> list[Mount]:
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        rest = right.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        found.append(Mount(_unescape(fields[4]), rest[0], _unescape(rest[1]), rest[2]))
    return found


def _is_below(target: str, path: Path) -> bool:
    base = str(path).rstrip("/")
    return target == base or target.startswith(base + "/")


def under(path: Path) -> list[str]:
    """Mount points at or below path, the last mounted first (the order to unmount them in)."""
    resolved = path.resolve() if path.exists() else path
    targets: list[str] = []
    for mount in reversed(all_mounts()):
        if _is_below(mount.target, resolved) and mount.target not in targets:
            targets.append(mount.target)
    return targets


def overlays_with_lower_below(path: Path) -> list[Mount]:
    """Overlay mounts whose lower layer lies below path (e.g. the image cache)."""
    found = []
    for mount in all_mounts():
        lower = mount.option("lowerdir") if mount.fstype == "overlay" else None
        if lower and any(_is_below(part, path) for part in lower.split(":")):
            found.append(mount)
    return found


def mount_overlay(lower: Path, upper: Path, work: Path, merged: Path) -> None:
    for directory in (upper, work, merged):
        directory.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)])


def mount_tmpfs(target: Path, size: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(target)])


def is_mount_point(target: Path) -> bool:
    return str(target) in {m.target for m in all_mounts()}


def unmount(target: str) -> None:
    """Unmount target; if it stays busy for a few seconds, detach it lazily."""
    for _ in range(20):
        if run(["umount", target], check=False).returncode == 0:
            return
        if not any(m.target == target for m in all_mounts()):
            return
        time.sleep(0.25)
    run(["umount", "--lazy", target])


def unmount_below(path: Path) -> None:
    """Unmount everything mounted at or below path, last mounted first (stacked mounts too)."""
    for _ in range(10):
        targets = under(path)
        if not targets:
            return
        for target in targets:
            unmount(target)


def remove_tree(path: Path) -> None:
    """Unmount anything below path, then delete it without crossing into other file systems."""
    if not path.exists() and not path.is_symlink():
        return
    unmount_below(path)
    run(["rm", "-rf", "--one-file-system", "--", str(path)], timeout=600)
