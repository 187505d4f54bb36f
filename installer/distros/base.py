"""What every distribution strategy provides."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from installer.config import HostConfig
from installer.probes.facts import Facts
from installer.probes.sections import SectionScript


@dataclass
class ServiceState:
    """What the package manager and init system say about PostgreSQL."""

    missing_packages: list[str]
    enabled: bool | None  # None: no systemd, nothing to enable
    active: bool
    needs_repair: str = ""  # an interrupted package run to repair first


class Strategy(ABC):
    """One distribution family's way of installing and running PostgreSQL."""

    #: os-release IDs (ID or ID_LIKE) this strategy handles
    ids: ClassVar[frozenset[str]] = frozenset()
    family: ClassVar[str] = ""

    def __init__(self, facts: Facts, config: HostConfig) -> None:
        self.facts = facts
        self.config = config
        self.major: int | None = config.pg_version or self.default_major()

    # -- versions and layout ------------------------------------------------
    @abstractmethod
    def default_major(self) -> int | None:
        """The distribution's own PostgreSQL major, if known from os-release."""

    def major_probe(self) -> str | None:
        """A command printing the default major when os-release cannot tell."""
        return None

    @abstractmethod
    def packages(self) -> list[str]:
        """Packages to install."""

    @abstractmethod
    def hba_path(self) -> str: ...

    @abstractmethod
    def dropin_path(self) -> str:
        """The file our settings are rendered into."""

    @abstractmethod
    def service(self) -> str:
        """The systemd unit that runs the cluster."""

    def enable_unit(self) -> str:
        """The systemd unit to enable at boot."""
        return self.service()

    # -- probing -------------------------------------------------------------
    @abstractmethod
    def add_state_sections(self, s: SectionScript) -> None:
        """Add the sections `parse_state` reads (run as root)."""

    @abstractmethod
    def parse_state(self, sections: dict[str, str]) -> ServiceState: ...

    # -- changing ------------------------------------------------------------
    @abstractmethod
    def install_script(self, missing: list[str]) -> str:
        """Shell to install the packages non-interactively (run as root)."""

    def repair_script(self) -> str:
        """Shell that finishes an interrupted package run."""
        return "true"

    def enable_script(self) -> str:
        return f"systemctl enable {self.enable_unit()}"

    @abstractmethod
    def control_script(self, action: str) -> str:
        """Shell to start / restart / reload the cluster, with or without systemd."""

    def control_tool(self) -> str:
        """How the service is managed, for messages."""
        return "systemd" if self.facts.systemd else "the distribution's own tool"
