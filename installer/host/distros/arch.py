"""Arch Linux and its derivatives: pacman, initdb as postgres, /var/lib/postgres/data.

Arch packages only the current PostgreSQL major; a major bump needs pg_upgrade
(postgresql-old-upgrade), never a new initdb over a data directory that holds data.
"""

from __future__ import annotations

from typing import ClassVar

from installer.host.distros.base import INITDB_AUTH, INITDB_LOCALE
from installer.host.distros.datadir import DataDirStrategy
from installer.transport.shell import sh

DATA_DIR = "/var/lib/postgres/data"


class ArchStrategy(DataDirStrategy):
    ids: ClassVar[frozenset[str]] = frozenset({"arch", "manjaro", "endeavouros"})
    family: ClassVar[str] = "arch"
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

    def pinned_hint(self, found: int) -> str:
        return (f"Arch packages only the current major ({found}): pacman cannot install "
                "another. Leave pg_version unset")
