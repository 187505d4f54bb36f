"""What each kind of test host is: one recipe per kind, all in one table.

A host's name is its kind (`debian12`), or its kind followed by `-` and a
suffix (`debian12-b`) when several hosts of one kind are wanted.

A recipe says which Debian suite is bootstrapped and which steps are then run
in the image. The image cache key is a hash of the whole recipe, the mirror and
BUILD_VERSION, so changing any of them builds a new image.

Adding a kind means adding one entry to RECIPES with extra `steps`: WriteFile for
/etc/os-release or a stand-in `dnf`, RunInChroot for the rest. The layout
emulations (fedora, arch) and the os-release hosts (ubuntu, alpine) are made so,
from the files in testbed/emulations.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

from testbed import emulations
from testbed.errors import TestbedError
from testbed.mirror import Mirror

# Bump when the build code (not a recipe) changes what an image contains.
BUILD_VERSION = 1

OPS_USER = "ops"
"""Non-root user with passwordless sudo (NOPASSWD)."""
OPSPW_USER = "opspw"
"""Non-root user whose sudo asks for a password: OPSPW_PASSWORD."""
OPSPW_PASSWORD = "opspw-Sudo-123"
USERS = ("root", OPS_USER, OPSPW_USER)
"""Users that accept the test bed's client key."""

BASE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "sudo",
    "python3",
    "iproute2",
    "ca-certificates",
)


@dataclass(frozen=True)
class WriteFile:
    """Write a file into the image (parents created), with a mode."""

    path: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class RunInChroot:
    """Run a /bin/sh script inside the image with chroot; stdin carries secrets."""

    script: str
    stdin: str = ""


Step = WriteFile | RunInChroot

# Steps every Debian-based image gets, after debootstrap and the sources.list.
DEBIAN_BASE_STEPS: tuple[Step, ...] = (
    RunInChroot(
        "set -eu\n"
        # Host keys, hostname and machine id are made per host at boot time.
        "rm -f /etc/ssh/ssh_host_* /etc/hostname\n"
        ": > /etc/machine-id\n"
        # No background apt run may hold the dpkg lock while a test installs packages.
        "systemctl mask apt-daily.timer apt-daily-upgrade.timer\n"
        f"useradd --create-home --shell /bin/bash --uid 1000 {OPS_USER}\n"
        f"useradd --create-home --shell /bin/bash --uid 1001 --groups sudo {OPSPW_USER}\n"
        "chpasswd\n"  # reads user:password from stdin, never argv
        "apt-get clean\n"
        "rm -rf /var/lib/apt/lists/*\n",
        stdin=f"{OPSPW_USER}:{OPSPW_PASSWORD}\n",
    ),
    WriteFile(f"/etc/sudoers.d/{OPS_USER}", f"{OPS_USER} ALL=(ALL) NOPASSWD:ALL\n", 0o440),
    WriteFile(
        "/etc/ssh/sshd_config.d/chatalot-testbed.conf",
        "# Only the per-host key the test bed generates and records in known_hosts.\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\n",
    ),
)


@dataclass(frozen=True)
class Recipe:
    """How to build the image of one kind of host."""

    kind: str
    suite: str
    """debootstrap suite (codename)."""
    pg_major: int
    """PostgreSQL major version the distribution ships (informational, for tests)."""
    description: str
    packages: tuple[str, ...] = BASE_PACKAGES
    steps: tuple[Step, ...] = DEBIAN_BASE_STEPS
    variant: str = "minbase"

    def key(self, mirror: Mirror) -> str:
        """`<kind>-<sha256(recipe, mirror, build version)[:12]>`: the cache entry name."""
        blob = json.dumps(
            {
                "recipe": asdict(self),
                "mirror": asdict(mirror),
                "build_version": BUILD_VERSION,
            },
            sort_keys=True,
        )
        return f"{self.kind}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def emulation_steps(kind: str) -> tuple[Step, ...]:
    """DEBIAN_BASE_STEPS plus the files of a layout emulation (testbed/emulations.py)."""
    return DEBIAN_BASE_STEPS + tuple(
        WriteFile(path, text, mode) for path, (text, mode) in emulations.files(kind).items()
    )


RECIPES: dict[str, Recipe] = {
    recipe.kind: recipe
    for recipe in (
        Recipe("debian12", "bookworm", 15, "Debian 12 (bookworm)"),
        Recipe("debian13", "trixie", 17, "Debian 13 (trixie)"),
        # Layout emulations on a Debian 12 base (testbed/emulations.py says what is and
        # is not emulated). pg_major is what the host really gets: Debian 12's 15.
        # (cron: the no-systemd variants' nightly backups run from it)
        Recipe("fedora", "bookworm", 15,
               "Fedora 40 layout emulation on Debian 12 (dnf, postgresql-setup)",
               packages=(*BASE_PACKAGES, "cron"), steps=emulation_steps("fedora")),
        Recipe("arch", "bookworm", 15, "Arch Linux layout emulation on Debian 12 (pacman)",
               packages=(*BASE_PACKAGES, "cron"), steps=emulation_steps("arch")),
        Recipe("ubuntu", "bookworm", 15,
               "Ubuntu 24.04 os-release on Debian 12 (apt is Debian 12's)",
               steps=emulation_steps("ubuntu")),
        Recipe("alpine", "bookworm", 0,
               "Alpine os-release on Debian 12 (an unsupported distribution)",
               steps=emulation_steps("alpine")),
    )
}


def kind_of(name: str) -> str:
    """The kind of the host called name: the name itself, or the part before `-<suffix>`."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", name):
        raise TestbedError(
            f"bad host name {name!r}: use lower-case letters, digits and '-' (at most 40)"
        )
    if name in RECIPES:
        return name
    base, sep, suffix = name.partition("-")
    if sep and suffix and base in RECIPES:
        return base
    raise TestbedError(
        f"unknown host {name!r}: a host name is a kind ({', '.join(sorted(RECIPES))})"
        " or a kind followed by -suffix (e.g. debian12-b)"
    )


def recipe_for(name: str) -> Recipe:
    return RECIPES[kind_of(name)]
