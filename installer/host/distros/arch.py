"""Arch Linux and its derivatives: pacman, initdb as postgres, /var/lib/postgres/data.

Arch packages only the current PostgreSQL major; a major bump needs pg_upgrade
(postgresql-old-upgrade), never a new initdb over a data directory that holds data.
`upgrade_plan` does it in place as the Arch wiki does (fedora.DataDirUpgrade writes the
scripts): the old data kept in /var/lib/postgres/olddata-OLD.
"""

from __future__ import annotations

from typing import ClassVar

from installer.desired.upgrade import Cluster
from installer.errors import UnsupportedDistroError
from installer.host.distros.base import INITDB_AUTH, INITDB_LOCALE, UpgradePlan
from installer.host.distros.datadir import DataDirStrategy
from installer.host.distros.datadir_upgrade import (
    DataDirUpgrade,
    drop_old_script,
    newer_major,
    rollback_script,
    upgrade_script,
)
from installer.transport.shell import sh

POSTGRES_HOME = "/var/lib/postgres"
DATA_DIR = "/var/lib/postgres/data"
CHECKSUMS = "--data-checksums"


def old_data_dir(major: int) -> str:
    """Where an upgrade keeps PostgreSQL `major`'s data directory."""
    return f"{POSTGRES_HOME}/olddata-{major}"


def old_bin(major: int) -> str:
    """postgresql-old-upgrade's programs: the previous major only."""
    return f"/opt/pgsql-{major}/bin"


class ArchStrategy(DataDirStrategy):
    ids: ClassVar[frozenset[str]] = frozenset({"arch", "manjaro", "endeavouros"})
    family: ClassVar[str] = "arch"
    #: pgBackRest is in the AUR only
    pgbackrest_package: ClassVar[str | None] = None
    other_major_bindirs: ClassVar[tuple[str, ...]] = ("/opt/pgsql-{major}/bin",)
    other_major_package: ClassVar[str] = "postgresql-old-upgrade (the previous major only)"
    label: ClassVar[str] = "Arch"

    def packages(self) -> list[str]:
        return ["postgresql"]

    def bindir(self) -> str:
        return "/usr/bin"

    def data_dir(self) -> str:
        return DATA_DIR

    def cluster_confs(self) -> tuple[str, ...]:
        return ("/var/lib/postgres/data/postgresql.conf",)

    def service(self) -> str:
        return "postgresql"

    def package_query(self) -> str:
        return f"pacman -Q {sh(*self.packages())}"

    def installed_packages(self, text: str) -> set[str]:
        """`pacman -Q` prints `NAME VERSION`, or `error: package 'NAME' was not found`."""
        found = set()
        for line in text.splitlines():
            words = line.split()
            if len(words) == 2 and words[0] in self.packages():
                found.add(words[0])
        return found

    def install_plan(self, missing: list[str]) -> list[str]:
        return [f"pacman -S --needed --noconfirm {sh(*missing)}"]

    def initdb_argv(self) -> list[str]:
        # --auth-*: initdb's default is trust, open to every local user until the hba step
        return ["initdb", INITDB_LOCALE[1], INITDB_LOCALE[0], "--data-checksums", *INITDB_AUTH,
                "-D", DATA_DIR]

    def init_plan(self) -> list[str]:
        return [
            f"install -d -o postgres -g postgres -m 0700 {DATA_DIR}",
            "cd / && " + sh("runuser", "-u", "postgres", "--", *self.initdb_argv()),
        ]

    def init_description(self) -> str:
        return f"{' '.join(self.initdb_argv())} as postgres"

    def upgrade_hint(self) -> str:
        return ("upgrade it with pg_upgrade (pacman -S postgresql-old-upgrade, see "
                "https://wiki.archlinux.org/title/PostgreSQL#Upgrading_PostgreSQL)")

    def upgrade_plan(self, old: Cluster, to: int, *, link: bool) -> UpgradePlan:
        """In place, as the Arch wiki does it: the old data moved to olddata-OLD (kept),
        a new cluster made by initdb_argv() in /var/lib/postgres/data, pg_upgrade from
        postgresql-old-upgrade's programs (/opt/pgsql-OLD/bin, the previous major only) to
        /usr/bin. Only to the one major pacman installs, from the one before it."""
        newer_major(self.label, old, to)
        if self.major is not None and to != self.major:
            raise UnsupportedDistroError(
                f"Arch packages one PostgreSQL major, {self.major} (what pacman installs, "
                f"/usr/bin/postgres): --to {to} is another, pacman cannot install it. "
                "Nothing was changed; upgrade to the major the postgresql package brings "
                "(after pacman -Syu)")
        if old.major != to - 1:
            raise UnsupportedDistroError(
                f"PostgreSQL {old.major} cannot be upgraded to {to} on Arch: "
                f"postgresql-old-upgrade brings the previous major's programs only "
                f"({to - 1}). Nothing was changed; move the database with pg_dumpall and a "
                "restore instead")
        if old.name not in (DATA_DIR, old_data_dir(old.major)):
            raise UnsupportedDistroError(
                f"the app's database is in {old.name} (PostgreSQL {old.major}): chatalot-db "
                f"upgrades {DATA_DIR} only; {self.upgrade_hint()}")
        argv = self.initdb_argv()
        if argv[-2:] != ["-D", DATA_DIR]:
            raise AssertionError(argv)
        options = [a for a in argv[:-2] if a != CHECKSUMS]
        m = DataDirUpgrade(
            old_major=old.major, to=to, port=old.port, link=link, systemd=self.facts.systemd,
            old_data=DATA_DIR, keep=old_data_dir(old.major),
            old_bins=(old_bin(old.major), "/usr/bin"),
            old_unit=self.service(), old_unit_bin="/usr/bin",
            new_data=DATA_DIR, new_bin="/usr/bin", new_unit=self.service(),
            new_kept=f"{POSTGRES_HOME}/data-{to}", workdir=POSTGRES_HOME,
            # the strategy's own initdb, the checksums as the old cluster has them
            initdb="cd / && " + sh("runuser", "-u", "postgres", "--", *options) + " $cs "
            + sh(*argv[-2:]),
            default_checksums=CHECKSUMS,
            old_programs=f"postgresql-old-upgrade (PostgreSQL {old.major})",
            new_programs=f"postgresql (PostgreSQL {to})")
        flag = " --link" if link else ""
        return UpgradePlan(
            description=(f"pg_upgrade -b {old_bin(old.major)} -B /usr/bin{flag} ({DATA_DIR}, "
                         f"PostgreSQL {old.major} -> {to})"),
            packages=["postgresql", "postgresql-old-upgrade"],
            script=upgrade_script(m), rollback=rollback_script(m), drop_old=drop_old_script(m),
            old_data_dir=old.name, new_parent=POSTGRES_HOME)

    def pinned_hint(self, found: int) -> str:
        return (f"Arch packages only the current major ({found}): pacman cannot install "
                "another. Leave pg_version unset")
