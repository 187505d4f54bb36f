"""Fedora and the RHEL family: dnf, postgresql-setup, the data directory in /var/lib/pgsql.

With pg_version another major than the release's own, the PostgreSQL project's
repository (PGDG): its repo RPM, the AppStream module disabled on EL 8/9,
postgresqlNN-server in /usr/pgsql-NN, postgresql-NN-setup, /var/lib/pgsql/NN/data,
service postgresql-NN.

Major upgrades (`upgrade_plan`): to the release's own major over the release's own
layout, `postgresql-setup --upgrade` in place (postgresql-upgrade brings the old major's
programs, the old data is kept in /var/lib/pgsql/data-old); every other pair, pg_upgrade
between the two layouts' data directories, side by side. The scripts are written by
installer.host.distros.datadir_upgrade, which Arch's plan uses too (pg_upgrade in place).
"""

from __future__ import annotations

from typing import ClassVar

from installer.desired.upgrade import Cluster
from installer.errors import UnsupportedDistroError
from installer.host.distros.base import UpgradePlan
from installer.host.distros.datadir import DataDirStrategy
from installer.host.distros.datadir_upgrade import (
    DataDirUpgrade,
    drop_old_script,
    newer_major,
    rollback_script,
    upgrade_script,
)
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

#: the release's own layout; the old data directory postgresql-setup --upgrade keeps
PGSQL_HOME = "/var/lib/pgsql"
OWN_DATA = "/var/lib/pgsql/data"
OWN_KEEP = "/var/lib/pgsql/data-old"
#: machines whose %{_libdir} is /usr/lib64
LIB64_MACHINES = frozenset({"x86_64", "aarch64", "ppc64le", "ppc64", "s390x", "riscv64"})


def pgdg_data(major: int) -> str:
    return f"/var/lib/pgsql/{major}/data"


def pgdg_bin(major: int) -> str:
    return f"/usr/pgsql-{major}/bin"


def setup_command(pgdg_major: int | None) -> str:
    """The setup tool's initdb: PGDG's postgresql-NN-setup, or the release's own."""
    if pgdg_major is not None:
        return f"{pgdg_bin(pgdg_major)}/postgresql-{pgdg_major}-setup initdb"
    return "postgresql-setup --initdb"


class FedoraStrategy(DataDirStrategy):
    ids: ClassVar[frozenset[str]] = frozenset({"fedora", *EL_IDS})
    family: ClassVar[str] = "fedora"
    label: ClassVar[str] = "Fedora/RHEL"
    other_major_bindirs: ClassVar[tuple[str, ...]] = (
        "/usr/pgsql-{major}/bin", "/usr/lib64/pgsql/postgresql-{major}/bin",
        "/usr/lib/pgsql/postgresql-{major}/bin")
    other_major_package: ClassVar[str] = ("postgresql{major}-server (PGDG), or postgresql-upgrade "
                                          "(the previous major only)")

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
        return setup_command(self.major if self.pgdg else None)

    def init_plan(self) -> list[str]:
        return [f"PGSETUP_INITDB_OPTIONS={sh(PGSETUP_INITDB_OPTIONS)} {self.setup_command()}"]

    def init_description(self) -> str:
        return (f"{self.setup_command()} with PGSETUP_INITDB_OPTIONS=\"{PGSETUP_INITDB_OPTIONS}\" "
                "(scram-sha-256 over TCP, not ident)")

    def upgrade_hint(self) -> str:
        return "upgrade it with `postgresql-setup --upgrade` (pg_upgrade)"

    def upgrade_plan(self, old: Cluster, to: int, *, link: bool) -> UpgradePlan:
        """The release's own major (`to` is distro_major()) over the release's own layout:
        `postgresql-setup --upgrade` in place (postgresql-upgrade brings the old major's
        programs; /var/lib/pgsql/data moves to data-old). Every other pair: pg_upgrade
        between the two layouts' data directories side by side (PGDG's
        /var/lib/pgsql/NN/data, postgresql-NN, /usr/pgsql-NN/bin, or the release's own),
        after `postgresql-NN-setup initdb` (or `postgresql-setup --initdb`)."""
        newer_major(self.label, old, to)
        own_old = old.name in (OWN_DATA, OWN_KEEP)
        if not own_old and old.name != pgdg_data(old.major):
            raise UnsupportedDistroError(
                f"the app's database is in {old.name} (PostgreSQL {old.major}): chatalot-db "
                f"upgrades {OWN_DATA} (the release's packages) or /var/lib/pgsql/MAJOR/data "
                f"(PGDG) only; upgrade it by hand ({self.upgrade_hint()})")
        own_new = to == self.distro_major()
        if old.name == OWN_KEEP and not own_new:
            raise UnsupportedDistroError(
                f"PostgreSQL {old.major}'s data in {OWN_KEEP} was kept by an upgrade to the "
                f"release's own major ({self.distro_major()}), not to {to}: bring it back or "
                "remove it by hand")
        if own_old and own_new:
            m = self._in_place(old, to, link)
            if m.tool:
                tool = "postgresql-setup --upgrade" + (
                    "" if link else " with PGSETUP_PGUPGRADE_OPTIONS=--copy")
            else:
                tool = f"pg_upgrade -b {self._upgrade_bin(old.major)} -B /usr/bin"
            description = f"{tool} ({OWN_DATA}, PostgreSQL {old.major} -> {to})"
            packages = ["postgresql-server", "postgresql-contrib", "postgresql-upgrade"]
        else:
            m = self._side_by_side(old, to, link, own_old, own_new)
            flag = " --link" if link else ""
            description = (f"{setup_command(None if own_new else to)}, pg_upgrade -b "
                           f"{m.old_unit_bin} -B {m.new_bin}{flag} ({m.old_data} -> "
                           f"{m.new_data}, PostgreSQL {old.major} -> {to})")
            packages = (["postgresql-server", "postgresql-contrib"] if own_new
                        else [f"postgresql{to}-server", f"postgresql{to}-contrib"])
        return UpgradePlan(
            description=description, packages=packages, script=upgrade_script(m),
            rollback=rollback_script(m), drop_old=drop_old_script(m),
            old_data_dir=old.name, new_parent=PGSQL_HOME)

    def _upgrade_bin(self, major: int) -> str:
        """Where postgresql-upgrade puts the previous major's programs (%{_libdir})."""
        lib = "lib64" if self.facts.machine in LIB64_MACHINES else "lib"
        return f"/usr/{lib}/pgsql/postgresql-{major}/bin"

    def _old_bins(self, major: int, own: bool) -> tuple[str, ...]:
        if not own:
            return (pgdg_bin(major),)
        # the release's own programs, until the package upgrade replaces them with the
        # new major's; then postgresql-upgrade's copy (lib64, or lib on 32-bit machines)
        return ("/usr/bin", f"/usr/lib64/pgsql/postgresql-{major}/bin",
                f"/usr/lib/pgsql/postgresql-{major}/bin")

    def _in_place(self, old: Cluster, to: int, link: bool) -> DataDirUpgrade:
        """The release's own layout, old and new: the new cluster in /var/lib/pgsql/data,
        the old data kept in data-old. postgresql-setup --upgrade links (pg_upgrade --link)
        in place; copy mode overrides that with pg_upgrade's --copy (PostgreSQL 16 and
        later), and before 16 runs pg_upgrade (copying) itself after
        `postgresql-setup --initdb`."""
        options = f"PGSETUP_INITDB_OPTIONS={sh(PGSETUP_INITDB_OPTIONS)}\" $cs\""
        tool = ""
        if link or to >= 16:
            copy = "" if link else "PGSETUP_PGUPGRADE_OPTIONS=--copy "
            tool = f"{options} {copy}postgresql-setup --upgrade"
        return DataDirUpgrade(
            old_major=old.major, to=to, port=old.port, link=link, systemd=self.facts.systemd,
            old_data=OWN_DATA, keep=OWN_KEEP, old_bins=self._old_bins(old.major, True),
            old_unit="postgresql", old_unit_bin="/usr/bin",
            new_data=OWN_DATA, new_bin="/usr/bin", new_unit="postgresql",
            new_kept=f"{OWN_DATA}-{to}", workdir=PGSQL_HOME,
            initdb=f"{options} {setup_command(None)}", default_checksums="",
            old_programs=f"postgresql-upgrade (PostgreSQL {old.major}'s programs: the "
            "release's previous major)",
            new_programs=f"the release's postgresql-server (PostgreSQL {to})", tool=tool)

    def _side_by_side(self, old: Cluster, to: int, link: bool, own_old: bool,
                      own_new: bool) -> DataDirUpgrade:
        new_data = OWN_DATA if own_new else pgdg_data(to)
        new_bin = "/usr/bin" if own_new else pgdg_bin(to)
        options = f"PGSETUP_INITDB_OPTIONS={sh(PGSETUP_INITDB_OPTIONS)}\" $cs\""
        return DataDirUpgrade(
            old_major=old.major, to=to, port=old.port, link=link, systemd=self.facts.systemd,
            old_data=OWN_DATA if own_old else pgdg_data(old.major),
            keep=OWN_DATA if own_old else pgdg_data(old.major),
            old_bins=self._old_bins(old.major, own_old),
            old_unit="postgresql" if own_old else f"postgresql-{old.major}",
            old_unit_bin="/usr/bin" if own_old else pgdg_bin(old.major),
            new_data=new_data, new_bin=new_bin,
            new_unit="postgresql" if own_new else f"postgresql-{to}",
            new_kept=new_data, workdir=PGSQL_HOME,
            initdb=f"{options} {setup_command(None if own_new else to)}",
            default_checksums="",
            old_programs=("the release's postgresql-server" if own_old
                          else f"postgresql{old.major}-server (PGDG)")
            + f" (PostgreSQL {old.major})",
            new_programs=("the release's postgresql-server" if own_new
                          else f"postgresql{to}-server (PGDG)") + f" (PostgreSQL {to})")
