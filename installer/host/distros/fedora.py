"""Fedora and the RHEL family: dnf, postgresql-setup, the data directory in /var/lib/pgsql.

With pg_version another major than the release's own, the PostgreSQL project's
repository (PGDG): its repo RPM, the AppStream module disabled on EL 8/9,
postgresqlNN-server in /usr/pgsql-NN, postgresql-NN-setup, /var/lib/pgsql/NN/data,
service postgresql-NN.
"""

from __future__ import annotations

from typing import ClassVar

from installer.errors import UnsupportedDistroError
from installer.host.distros.datadir import DataDirStrategy
from installer.transport.shell import sh

#: os-release IDs of the RHEL rebuilds (versions 8, 9, 10: EL, not Fedora, numbering);
#: the `distro` package reports Oracle Linux's `ol` as `oracle`
EL_IDS = frozenset({"rhel", "centos", "rocky", "almalinux", "ol", "oracle"})

#: the major of the release's own postgresql-server (EL: the AppStream default stream)
FEDORA_DEFAULT_MAJOR = {39: 15, 40: 16, 41: 16, 42: 16}
EL_DEFAULT_MAJOR = {8: 10, 9: 13, 10: 16}

#: postgresql-setup runs `initdb --auth=ident` followed by these: peer on the local
#: socket, scram-sha-256 over TCP (never ident: "Ident authentication failed"), UTF8
PGSETUP_INITDB_OPTIONS = "--auth-host=scram-sha-256 --auth-local=peer --encoding=UTF8 " \
    "--locale=C.UTF-8"

PGDG_REPO_RPM = ("https://download.postgresql.org/pub/repos/yum/reporpms/"
                 "{dist}-{version}-{machine}/pgdg-{flavor}-repo-latest.noarch.rpm")


class FedoraStrategy(DataDirStrategy):
    ids: ClassVar[frozenset[str]] = frozenset({"fedora", *EL_IDS})
    family: ClassVar[str] = "fedora"
    label: ClassVar[str] = "Fedora/RHEL"

    # -- which release -------------------------------------------------------
    def release(self) -> int | None:
        """The release's major number (Fedora 40, EL 9), from VERSION_ID."""
        head = self.facts.version_id.split(".")[0]
        return int(head) if head.isdigit() else None

    @property
    def el(self) -> bool:
        """RHEL or a rebuild (EL numbering), not Fedora."""
        if self.facts.os_id == "fedora":
            return False
        if self.facts.os_id in EL_IDS:
            return True
        release = self.release()
        like = set(self.facts.os_like)
        return bool(like & {"rhel", "centos"}) and release is not None and release < 20

    def distro_major(self) -> int | None:
        """The release's own PostgreSQL major (None: not in the table)."""
        release = self.release()
        if release is None:
            return None
        return (EL_DEFAULT_MAJOR if self.el else FEDORA_DEFAULT_MAJOR).get(release)

    @property
    def pgdg(self) -> bool:
        """Whether pg_version comes from PGDG (another major than the release's own)."""
        pinned = self.config.pg_version
        return pinned is not None and pinned != self.distro_major()

    # -- layout ----------------------------------------------------------------
    def packages(self) -> list[str]:
        if self.pgdg:
            return [f"postgresql{self.major}-server", f"postgresql{self.major}-contrib"]
        return ["postgresql-server", "postgresql-contrib"]

    def bindir(self) -> str:
        return f"/usr/pgsql-{self.major}/bin" if self.pgdg else "/usr/bin"

    def data_dir(self) -> str:
        return f"/var/lib/pgsql/{self.major}/data" if self.pgdg else "/var/lib/pgsql/data"

    def cluster_confs(self) -> tuple[str, ...]:
        return ("/var/lib/pgsql/data/postgresql.conf", "/var/lib/pgsql/*/data/postgresql.conf")

    def service(self) -> str:
        return f"postgresql-{self.major}" if self.pgdg else "postgresql"

    def package_query(self) -> str:
        return f"rpm -q {sh(*self.packages())}"

    def installed_packages(self, text: str) -> set[str]:
        """`rpm -q` prints NAME-VERSION-RELEASE.ARCH, or `package NAME is not installed`."""
        found = set()
        for line in text.split():
            for p in self.packages():
                rest = line[len(p) + 1:]
                if line.startswith(p + "-") and rest[:1].isdigit():
                    found.add(p)
        return found

    # -- changing --------------------------------------------------------------
    def repo_rpm_url(self) -> str:
        release = self.release()
        if release is None:
            raise UnsupportedDistroError(
                f"pg_version={self.config.pg_version} needs the PGDG repository, whose repo "
                f"RPM is per release, and {self.facts.pretty_name} has no numeric VERSION_ID")
        dist, flavor = ("EL", "redhat") if self.el else ("F", "fedora")
        return PGDG_REPO_RPM.format(dist=dist, version=release, machine=self.facts.machine,
                                    flavor=flavor)

    def install_plan(self, missing: list[str]) -> list[str]:
        plan: list[str] = []
        if self.pgdg:
            plan.append(f"dnf install -y {sh(self.repo_rpm_url())}")
            if self.el and self.release() in (8, 9):
                # AppStream's postgresql module would shadow PGDG's packages
                plan.append("dnf -qy module disable postgresql")
        plan.append(f"dnf install -y {sh(*missing)}")
        return plan

    def setup_command(self) -> str:
        if self.pgdg:
            return f"{self.bindir()}/postgresql-{self.major}-setup initdb"
        return "postgresql-setup --initdb"

    def init_plan(self) -> list[str]:
        return [f"PGSETUP_INITDB_OPTIONS={sh(PGSETUP_INITDB_OPTIONS)} {self.setup_command()}"]

    def init_description(self) -> str:
        return (f"{self.setup_command()} with PGSETUP_INITDB_OPTIONS=\"{PGSETUP_INITDB_OPTIONS}\" "
                "(scram-sha-256 over TCP, not ident)")

    def upgrade_hint(self) -> str:
        return "upgrade it with `postgresql-setup --upgrade` (pg_upgrade)"
