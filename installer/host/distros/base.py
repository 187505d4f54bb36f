"""What every distribution strategy provides."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from installer.desired.config import HostConfig
from installer.desired.upgrade import Cluster
from installer.errors import UnsupportedDistroError
from installer.host.facts import Facts
from installer.host.sections import SectionScript
from installer.transport.shell import sh


@dataclass
class ServiceState:
    """What the package manager and init system say about PostgreSQL."""

    missing_packages: list[str]
    enabled: bool | None  # None: no systemd, nothing to enable
    active: bool
    needs_repair: str = ""  # an interrupted package run to repair first
    #: the major of the server this strategy runs, as the host tells it (installed, or
    #: what the package manager would install); None when the host cannot tell yet
    installed_major: int | None = None
    #: the data directory: "missing", "empty" or "nonempty"; "" when not read
    data_dir: str = ""
    #: the major in the data directory's PG_VERSION; None when there is none
    data_version: int | None = None


@dataclass(frozen=True)
class UpgradePlan:
    """How one family moves the app's cluster to a newer major (installer.steps.upgrade).

    Each script runs as root and stops at its first failure. Whatever point `script`
    fails at, the old cluster serves again on its port as before (the script's own
    recovery, then `rollback`, which tolerates a new cluster that was never made)."""

    #: for messages: the family's own tool as it is run ("pg_upgradecluster -m upgrade 15 main")
    description: str
    #: the new major's packages, installed by the install step before `script` runs
    packages: list[str]
    #: the upgrade: the new cluster ends serving on the old one's port; the old one is
    #: stopped, not started at boot, and kept (`rollback`, `drop_old`)
    script: str
    #: the old cluster serving on its port again, the new one stopped and kept
    rollback: str
    #: the old cluster (stopped) removed for good
    drop_old: str
    #: the old cluster's data directory (copy mode needs its size free)
    old_data_dir: str
    #: a directory on the filesystem the new cluster's data lands on
    new_parent: str


@dataclass(frozen=True)
class ConfInclude:
    """Our drop-in needs an include line in postgresql.conf (the data-directory layouts)."""

    #: the postgresql.conf that must end with `include_dir = 'conf.d'`
    conf_path: str
    #: the directory that line names (made, owned by postgres, before the drop-in is written)
    conf_d: str


#: initdb options every strategy that runs initdb itself uses: never `trust`, never `ident`
INITDB_AUTH = ("--auth-local=peer", "--auth-host=scram-sha-256")
INITDB_LOCALE = ("--encoding=UTF8", "--locale=C.UTF-8")

SERVICE_ACTIONS = ("start", "restart", "reload")


def parse_major(text: str) -> int | None:
    """The major version in `postgres --version` output, a PG_VERSION file or a bare number."""
    m = re.search(r"\(PostgreSQL\)\s+(\d+)", text)
    if m:
        return int(m.group(1))
    m = re.search(r"\d+", text)
    return int(m.group()) if m else None


class Strategy(ABC):
    """One distribution family's way of installing and running PostgreSQL."""

    #: os-release IDs (ID or ID_LIKE) this strategy handles
    ids: ClassVar[frozenset[str]] = frozenset()
    family: ClassVar[str] = ""
    #: for messages: "Debian/Ubuntu"
    label: ClassVar[str] = ""
    #: installing the packages creates the cluster (Debian); elsewhere the init step does
    package_creates_cluster: ClassVar[bool] = False

    def __init__(self, facts: Facts, config: HostConfig) -> None:
        self.facts = facts
        self.config = config
        self.major: int | None = config.pg_version or self.default_major()

    # -- versions and layout ------------------------------------------------
    @abstractmethod
    def default_major(self) -> int | None:
        """The distribution's own PostgreSQL major, if known before anything is installed."""

    def major_probe(self) -> str | None:
        """A command printing the major of the server this strategy runs (or would install).

        Run by GatherFacts and in every state probe: what the host says wins over
        default_major() when pg_version is unset (and must agree with pg_version when set).
        """
        return None

    @abstractmethod
    def packages(self) -> list[str]:
        """Packages to install."""

    def psql(self) -> str:
        """The psql the host runs for us: the server's own binary where the distribution
        puts a wrapper in PATH (Debian's pg_wrapper is Perl: 25 ms per call)."""
        return "psql"

    @abstractmethod
    def data_dir(self) -> str:
        """The cluster's data directory."""

    @abstractmethod
    def hba_path(self) -> str: ...

    @abstractmethod
    def dropin_path(self) -> str:
        """The file our settings are rendered into."""

    def cluster_confs(self) -> tuple[str, ...]:
        """Globs of every cluster's postgresql.conf this family may have (any major), for
        installer.host.clusters; the directory holds PG_VERSION, or is MAJOR/NAME."""
        return ()

    def own_conf(self) -> str:
        """The postgresql.conf of the cluster this strategy manages (left out of
        installer.host.clusters: its own data directory's major is the init step's
        concern, which names pg_upgrade)."""
        return f"{self.data_dir()}/postgresql.conf"

    def conf_include(self) -> ConfInclude | None:
        """The include postgresql.conf needs for our drop-in; None when it has one already."""
        return None

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

    def add_cluster_sections(self, s: SectionScript) -> None:
        """The data directory (missing/empty/nonempty, PG_VERSION) and the host's major."""
        dd = sh(self.data_dir())
        s.section(
            "data-dir",
            # globs and read, no ls/cat: this runs in every state probe
            f"if [ ! -d {dd} ]; then echo missing; else e=empty; "
            f"for x in {dd}/* {dd}/.[!.]* {dd}/..?*; do "
            'if [ -e "$x" ] || [ -L "$x" ]; then e=nonempty; break; fi; done; echo "$e"; fi; '
            f'{{ read -r v < {dd}/PG_VERSION && echo "$v"; }} 2>/dev/null; true',
        )
        probe = self.major_probe()
        if probe:
            s.section("pg-major", f"{{ {probe}; }} 2>/dev/null; true")

    def add_systemd_section(self, s: SectionScript) -> None:
        """`enable_unit()`'s unit-file state and `service()`'s active state, as two words
        (`enabled active`), from ONE systemctl (each one costs the host a few ms)."""
        units = [self.enable_unit()] if self.enable_unit() == self.service() else \
            [self.enable_unit(), self.service()]
        last = len(units) - 1
        s.section(
            "systemd",
            f"systemctl show -p UnitFileState -p ActiveState {sh(*units)} 2>/dev/null | "
            "{ n=0; e=; a=; while IFS= read -r l; do case $l in "
            "'') n=$((n + 1)) ;; "
            'UnitFileState=*) [ "$n" = 0 ] && e=${l#*=} ;; '
            f'ActiveState=*) [ "$n" = {last} ] && a=${{l#*=}} ;; '
            'esac; done; echo "${e:-not-found}"; echo "${a:-inactive}"; }',
        )

    @staticmethod
    def parse_cluster(sections: dict[str, str]) -> tuple[str, int | None, int | None]:
        """(data dir state, PG_VERSION major, the host's major) from add_cluster_sections."""
        lines = sections.get("data-dir", "").split("\n", 1)
        state = lines[0].strip()
        version = parse_major(lines[1]) if len(lines) > 1 and lines[1].strip() else None
        found = sections.get("pg-major", "").strip()
        return state, version, parse_major(found) if found else None

    # -- changing ------------------------------------------------------------
    @abstractmethod
    def install_plan(self, missing: list[str]) -> list[str]:
        """Shell commands (run as root, in order) that install the missing packages,
        including any repository they come from."""

    def install_script(self, missing: list[str], *, hold_start: bool = False) -> str:
        """install_plan as one script that stops at the first failure. `hold_start`: the
        packages do not start PostgreSQL themselves (only where `can_hold_start`), so
        that its first start has our settings."""
        return "set -e\n" + "\n".join(self.install_plan(missing)) + "\n"

    #: whether install_script can keep the package from starting the server it installs
    can_hold_start: bool = False

    #: backup=pgbackrest: the distribution's package of pgBackRest (None: it has none)
    pgbackrest_package: ClassVar[str | None] = "pgbackrest"

    def repair_script(self) -> str:
        """Shell that finishes an interrupted package run."""
        return "true"

    @abstractmethod
    def init_plan(self) -> list[str]:
        """Shell commands (run as root) that create the cluster in an empty data directory."""

    def init_script(self) -> str:
        return "set -e\n" + "\n".join(self.init_plan()) + "\n"

    @abstractmethod
    def init_description(self) -> str:
        """How the cluster is created, for messages."""

    def cluster_reason(self) -> str:
        """Why an existing cluster is fine, for the init step's ok."""
        return f"cluster in {self.data_dir()} (PostgreSQL {self.major})"

    def upgrade_hint(self) -> str:
        """How to upgrade a data directory of another major, for messages."""
        return "upgrade it with pg_upgrade"

    def client(self, program: str) -> str:
        """A client program of the managed major (vacuumdb, pg_dump), as psql() is."""
        return program

    #: where another major's server programs (pg_ctl) may be, `{major}` standing for it, and
    #: the package that brings them: for a cluster restored from a backup taken before a
    #: major upgrade
    other_major_bindirs: ClassVar[tuple[str, ...]] = ()
    other_major_package: ClassVar[str] = "that major's server package"

    def upgrade_plan(self, old: Cluster, to: int, *, link: bool) -> UpgradePlan:
        """The plan that moves `old` (the cluster holding the app's database) to major
        `to`; `link`: pg_upgrade's --link (no copy: the old cluster cannot start again
        once the new one has run)."""
        raise UnsupportedDistroError(
            f"chatalot-db upgrade has no plan for {self.label} hosts yet; "
            f"{self.upgrade_hint()}")

    def pinned_hint(self, found: int) -> str:
        """What to do when pg_version differs from the major the host installs (`found`)."""
        return f"set pg_version={found}, or leave it unset for the distribution's default"

    def enable_script(self) -> str:
        return f"systemctl enable {sh(self.enable_unit())}"

    def enable_reason(self) -> str:
        return f"enabled {self.enable_unit()}"

    @abstractmethod
    def control_script(self, action: str) -> str:
        """Shell to start / restart / reload the cluster, with or without systemd."""

    def control_tool(self) -> str:
        """How the service is managed, for messages."""
        return "systemd" if self.facts.systemd else "the distribution's own tool"
