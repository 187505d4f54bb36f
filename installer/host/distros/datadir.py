"""Distributions whose configuration lives in the data directory (Fedora/RHEL, Arch).

One cluster in one data directory, made by the init step (nothing exists after the
package install), run by one systemd unit, or by `pg_ctl -D` as postgres where
systemd is not PID 1. postgresql.conf comes from initdb and includes nothing, so
our drop-in in conf.d/ needs an `include_dir = 'conf.d'` line at its end.
"""

from __future__ import annotations

import posixpath
from abc import abstractmethod

from installer.host.distros.base import SERVICE_ACTIONS, ConfInclude, ServiceState, Strategy
from installer.host.sections import SectionScript
from installer.transport.shell import sh


class DataDirStrategy(Strategy):
    """Layout and service control shared by the data-directory distributions."""

    def default_major(self) -> int | None:
        """Unknown until installed: the package manager decides, `postgres --version` tells."""
        return None

    @abstractmethod
    def bindir(self) -> str:
        """Where the server's programs are (postgres, pg_ctl, initdb)."""

    def major_probe(self) -> str:
        return f"{sh(self.bindir() + '/postgres')} --version"

    def psql(self) -> str:
        return f"{self.bindir()}/psql"

    def client(self, program: str) -> str:
        # PGDG's /usr/pgsql-N/bin is not in PATH (pg_ctl is never linked into /usr/bin); the
        # distribution's /usr/bin is, and stays PATH's (the backup units name no folder)
        b = self.bindir()
        return program if b == "/usr/bin" else f"{b}/{program}"

    def hba_path(self) -> str:
        return f"{self.data_dir()}/pg_hba.conf"

    def dropin_path(self) -> str:
        return f"{self.data_dir()}/conf.d/50-chatalot.conf"

    def conf_include(self) -> ConfInclude:
        return ConfInclude(f"{self.data_dir()}/postgresql.conf", f"{self.data_dir()}/conf.d")

    def pg_ctl_log(self) -> str:
        """The server log when pg_ctl starts it: beside the data dir, in postgres's own dir."""
        return posixpath.join(posixpath.dirname(self.data_dir()), "pg_ctl.log")

    # -- probing -------------------------------------------------------------
    @abstractmethod
    def package_query(self) -> str:
        """A command listing which of packages() are installed (parsed by installed_packages)."""

    @abstractmethod
    def installed_packages(self, text: str) -> set[str]:
        """Which of packages() the package query's output says are installed."""

    def pg_ctl(self, *args: str) -> str:
        """pg_ctl on our data directory, as postgres (it refuses to run as root)."""
        return "cd / && " + sh("runuser", "-u", "postgres", "--", f"{self.bindir()}/pg_ctl",
                               "-D", self.data_dir(), *args)

    def add_state_sections(self, s: SectionScript) -> None:
        s.section("packages", f"{{ {self.package_query()}; }} 2>&1; true")
        self.add_cluster_sections(s)
        if self.facts.systemd:
            self.add_systemd_section(s)
        else:
            s.section("pg_ctl", f"if ( {self.pg_ctl('status')} ) >/dev/null 2>&1; "
                                "then echo running; else echo stopped; fi")

    def parse_state(self, sections: dict[str, str]) -> ServiceState:
        installed = self.installed_packages(sections.get("packages", ""))
        missing = [p for p in self.packages() if p not in installed]
        data_dir, data_version, found = self.parse_cluster(sections)
        enabled: bool | None = None
        if self.facts.systemd:
            words = sections.get("systemd", "").split()
            enabled = bool(words) and words[0] in ("enabled", "enabled-runtime", "static")
            active = len(words) > 1 and words[1] == "active"
        else:
            active = sections.get("pg_ctl", "").strip() == "running"
        return ServiceState(missing, enabled, active, installed_major=found,
                            data_dir=data_dir, data_version=data_version)

    # -- changing ------------------------------------------------------------
    def enable_script(self) -> str:
        return f"systemctl enable --now {sh(self.enable_unit())}"

    def enable_reason(self) -> str:
        return f"enabled and started {self.enable_unit()} (systemctl enable --now)"

    def control_script(self, action: str) -> str:
        if action not in SERVICE_ACTIONS:
            raise ValueError(action)
        if self.facts.systemd:
            return f"systemctl {action} {sh(self.service())}"
        if action == "reload":
            return self.pg_ctl("reload")
        # the socket directory: systemd's RuntimeDirectory / tmpfiles make it elsewhere
        return ("install -d -o postgres -g postgres -m 2775 /run/postgresql && "
                + self.pg_ctl("-l", self.pg_ctl_log(), "-w", action))

    def control_tool(self) -> str:
        if self.facts.systemd:
            return "systemd"
        return f"pg_ctl -D {self.data_dir()} as postgres (log {self.pg_ctl_log()})"
