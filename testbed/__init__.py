"""Real hosts for chatalot-db's tests: Debian with systemd, booted with systemd-nspawn.

    from testbed import Testbed, testbed_available

    ok, why = testbed_available()
    bed = Testbed()                    # state in /var/tmp/chatalot-testbed
    bed.up(["debian12", "debian13"])
    bed.ssh("debian12", "systemctl is-system-running")
    bed.down()

Command line: `python -m testbed up|down|status --help`.
See docs/testbed.md for what was tried on these machines.
"""

from testbed.core import (
    APT_PACKAGES,
    DEFAULT_STATE_DIR,
    Testbed,
    TestHost,
    testbed_available,
)
from testbed.errors import BootError, HostsFailed, ImageBuildError, TestbedError, UnavailableError
from testbed.recipes import OPS_USER, OPSPW_PASSWORD, OPSPW_USER, RECIPES, USERS

__all__ = [
    "APT_PACKAGES",
    "DEFAULT_STATE_DIR",
    "OPSPW_PASSWORD",
    "OPSPW_USER",
    "OPS_USER",
    "RECIPES",
    "USERS",
    "BootError",
    "HostsFailed",
    "ImageBuildError",
    "TestHost",
    "Testbed",
    "TestbedError",
    "UnavailableError",
    "testbed_available",
]
