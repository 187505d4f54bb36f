"""Debian and Ubuntu: apt, pg_createcluster's layout, pg_ctlcluster without systemd."""

from __future__ import annotations

import re
from typing import ClassVar

from installer.distros.base import ServiceState, Strategy
from installer.probes.sections import SectionScript
from installer.transport.base import sh

# The `postgresql` metapackage's major, per release (os-release VERSION_ID).
DEFAULT_MAJOR = {
    ("debian", "11"): 13,
    ("debian", "12"): 15,
    ("debian", "13"): 17,
    ("ubuntu", "20.04"): 12,
    ("ubuntu", "22.04"): 14,
    ("ubuntu", "24.04"): 16,
    ("ubuntu", "24.10"): 16,
    ("ubuntu", "25.04"): 17,
    ("ubuntu", "25.10"): 17,
}

APT_ENV = "DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a"
# wait for another apt/dpkg run (unattended-upgrades) instead of failing on its lock
APT_OPTS = (
    "-o DPkg::Lock::Timeout=600 "
    "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
)


class DebianStrategy(Strategy):
    ids: ClassVar[frozenset[str]] = frozenset({"debian", "ubuntu", "raspbian", "linuxmint"})
    family: ClassVar[str] = "debian"

    def default_major(self) -> int | None:
        os_id = "ubuntu" if "ubuntu" in (self.facts.os_id, *self.facts.os_like) else "debian"
        if self.facts.os_id in ("debian", "ubuntu"):
            os_id = self.facts.os_id
        return DEFAULT_MAJOR.get((os_id, self.facts.version_id))

    def major_probe(self) -> str:
        return (
            "apt-cache depends postgresql 2>/dev/null | grep -o 'postgresql-[0-9][0-9]*' "
            "| head -n1 | cut -d- -f2"
        )

    def packages(self) -> list[str]:
        if self.config.pg_version is None:
            return ["postgresql", "postgresql-contrib"]
        return [f"postgresql-{self.major}"]

    def installed_markers(self) -> dict[str, str]:
        """Package to install -> the real package whose presence proves it.

        `postgresql-contrib` is a virtual package on Debian 13 (provided by the server
        package, which has shipped the contrib modules since PostgreSQL 10), so dpkg
        never lists it as installed: the server package stands for it.
        """
        server = f"postgresql-{self.major}" if self.major else "postgresql"
        return {p: (server if p == "postgresql-contrib" else p) for p in self.packages()}

    # layout --------------------------------------------------------------
    @property
    def conf_dir(self) -> str:
        return f"/etc/postgresql/{self.major}/main"

    def hba_path(self) -> str:
        return f"{self.conf_dir}/pg_hba.conf"

    def dropin_path(self) -> str:
        return f"{self.conf_dir}/conf.d/50-chatalot.conf"

    def service(self) -> str:
        return f"postgresql@{self.major}-main"

    def enable_unit(self) -> str:
        return "postgresql"

    def control_tool(self) -> str:
        return "systemd" if self.facts.systemd else f"pg_ctlcluster {self.major} main"

    # probing -------------------------------------------------------------
    def add_state_sections(self, s: SectionScript) -> None:
        pkgs = sh(*sorted(set(self.installed_markers().values()) | set(self.packages())))
        s.section(
            "dpkg",
            f"dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {pkgs} 2>/dev/null; true",
        )
        s.section("dpkg-audit", "dpkg --audit 2>/dev/null | head -n 3")
        s.section("clusters", "pg_lsclusters -h 2>/dev/null; true")
        if self.facts.systemd:
            s.section(
                "systemd",
                f"systemctl is-enabled {self.enable_unit()} 2>/dev/null; "
                f"systemctl is-active {self.service()} 2>/dev/null; true",
            )

    def parse_state(self, sections: dict[str, str]) -> ServiceState:
        installed = set()
        for line in sections.get("dpkg", "").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].startswith("ii"):
                installed.add(parts[0])
        missing = [p for p, marker in self.installed_markers().items() if marker not in installed]
        active = False
        for line in sections.get("clusters", "").splitlines():
            f = line.split()
            if len(f) >= 4 and f[0] == str(self.major) and f[1] == "main":
                active = f[3].startswith("online")
        enabled: bool | None = None
        if self.facts.systemd:
            lines = sections.get("systemd", "").split()
            enabled = bool(lines) and lines[0] in ("enabled", "enabled-runtime", "static")
            active = len(lines) > 1 and lines[1] == "active"
        return ServiceState(missing, enabled, active, sections.get("dpkg-audit", "").strip())

    # changing ------------------------------------------------------------
    def install_script(self, missing: list[str]) -> str:
        pkgs = sh(*missing)
        # refresh the package lists only when apt knows no candidate for a package
        return (
            "set -e\n"
            f"need_update=0\n"
            f"for p in {pkgs}; do\n"
            "  c=$(apt-cache policy \"$p\" 2>/dev/null | sed -n 's/^ *Candidate: //p')\n"
            "  if [ -z \"$c\" ] || [ \"$c\" = '(none)' ]; then need_update=1; fi\n"
            "done\n"
            f"if [ $need_update = 1 ]; then {APT_ENV} apt-get {APT_OPTS} update -q; fi\n"
            f"{APT_ENV} apt-get {APT_OPTS} install -y -q --no-install-recommends {pkgs}\n"
        )

    def repair_script(self) -> str:
        return f"{APT_ENV} dpkg --force-confdef --force-confold --configure -a"

    def control_script(self, action: str) -> str:
        if action not in ("start", "restart", "reload"):
            raise ValueError(action)
        if self.facts.systemd:
            return f"systemctl {action} {self.service()}"
        return f"pg_ctlcluster {self.major} main {action}"


def parse_major(text: str) -> int | None:
    m = re.search(r"\d+", text)
    return int(m.group()) if m else None
