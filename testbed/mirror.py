"""The Debian mirror this machine's apt already uses, read from its apt sources.

Never hard-coded: the test hosts use the same mirror (and the same security
mirror, if one is configured) as this machine, reached through NAT.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import TestbedError

MIRROR_ENV = "CHATALOT_TESTBED_MIRROR"


@dataclass(frozen=True)
class Mirror:
    """Where the hosts fetch packages: the main archive and, if known, the security archive."""

    uri: str
    security_uri: str | None = None

    def sources_list(self, suite: str) -> str:
        """An /etc/apt/sources.list for suite (main, updates and, if known, security)."""
        lines = [
            "# Written by the chatalot-db test bed from the build machine's apt sources.",
            f"deb {self.uri} {suite} main",
            f"deb {self.uri} {suite}-updates main",
        ]
        if self.security_uri:
            lines.append(f"deb {self.security_uri} {suite}-security main")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Entry:
    uri: str
    suites: tuple[str, ...]


def _deb822_entries(text: str) -> list[_Entry]:
    entries: list[_Entry] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(fields.get("suites", "").split())
        entries.extend(_Entry(uri, suites) for uri in fields.get("uris", "").split())
    return entries


def _one_line_entries(text: str) -> list[_Entry]:
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line)  # options like [signed-by=...]
        parts = line.split()
        if len(parts) >= 3:
            entries.append(_Entry(parts[1], (parts[2],)))
    return entries


def apt_entries(root: Path = Path("/")) -> list[_Entry]:
    """Every enabled `deb` entry of the apt sources under root, in apt's reading order."""
    apt = root / "etc/apt"
    entries = []
    main_list = apt / "sources.list"
    if main_list.is_file():
        entries.extend(_one_line_entries(main_list.read_text()))
    parts = apt / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.name.endswith(".list"):
                entries.extend(_one_line_entries(path.read_text()))
            elif path.name.endswith(".sources"):
                entries.extend(_deb822_entries(path.read_text()))
    return [e for e in entries if e.uri.startswith(("http://", "https://"))]


def machine_mirror(root: Path = Path("/")) -> Mirror:
    """The mirror of this machine's apt sources ($CHATALOT_TESTBED_MIRROR overrides it)."""
    override = os.environ.get(MIRROR_ENV)
    if override:
        return Mirror(override.rstrip("/"))
    entries = apt_entries(root)
    main = next(
        (e for e in entries if any(re.fullmatch(r"[a-z]+", s) for s in e.suites)),
        None,
    )
    if main is None:
        raise TestbedError(
            f"no Debian mirror found in {root / 'etc/apt'} (sources.list, sources.list.d/*.list,"
            f" *.sources): need an enabled `deb` entry for a plain suite such as bookworm;"
            f" or set {MIRROR_ENV}"
        )
    security = next(
        (e for e in entries if any(s.endswith("-security") for s in e.suites)),
        None,
    )
    return Mirror(main.uri.rstrip("/"), security.uri.rstrip("/") if security else None)
