"""The test bed, shared by every test module that needs real hosts (session scope)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.helpers import TESTBED_DIR, booted_testbed

#: every host the end-to-end tests use; booted once per session.
#: CHATALOT_TESTBED_SUFFIX (e.g. `-h`) names them debian12-h, ...: a second test bed beside a
#: running one (with its own CHATALOT_TESTBED_DIR); only modules that look hosts up by kind
#: (`host_of_kind`) run there.
TESTBED_HOSTS = [f"{kind}{os.environ.get('CHATALOT_TESTBED_SUFFIX', '')}"
                 for kind in ("debian12", "debian13")]


def host_of_kind(bed: Any, kind: str) -> str:
    """The test bed's host of that kind (`debian12`), whatever its suffix."""
    return next(str(name) for name, h in bed.hosts.items() if h.kind == kind)


@pytest.fixture(scope="session")
def bed() -> Iterator[Any]:
    """Debian 12 and 13 hosts with systemd and sshd; torn down (and checked) at the end.

    Tests that need a fresh host call `bed.reset(name)`; hosts may have been provisioned
    by an earlier test module.
    """
    with booted_testbed(TESTBED_HOSTS, TESTBED_DIR) as tb:
        yield tb
