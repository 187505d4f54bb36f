"""A host set up in German: every command chatalot-db runs there reads C-locale output.

debian12 with `locales`, de_DE.UTF-8 generated and LANG/LANGUAGE in /etc/default/locale
(which pam_env gives sshd's sessions): `apt-cache policy` answers "Installationskandidat:"
there. An APT hook records each `apt-get update`. apply on the fresh host, whose package
lists are already current, must install without refreshing them (reading apt-cache in
German, it found no candidate and ran `apt-get update` on every install), and converge.
Needs root: CI runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import host_of_kind
from tests.integration.helpers import inventory, run_apply

pytestmark = pytest.mark.testbed

MARK = "/var/tmp/chatalot-apt-update-ran"
HOOK = f'APT::Update::Pre-Invoke {{ "echo update >> {MARK}"; }};'


@pytest.fixture(scope="module")
def german(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("locale")
    host = host_of_kind(bed, "debian12")
    bed.reset(host)
    bed.ssh(host, "DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && "
                  "DEBIAN_FRONTEND=noninteractive apt-get install -y -q locales >/dev/null && "
                  "echo 'de_DE.UTF-8 UTF-8' > /etc/locale.gen && locale-gen >/dev/null && "
                  "printf 'LANG=de_DE.UTF-8\\nLANGUAGE=de\\n' > /etc/default/locale",
            check=True, timeout=600)
    bed.ssh(host, f"printf '%s\\n' '{HOOK}' > /etc/apt/apt.conf.d/99chatalot-test-hook; "
                  f"rm -f {MARK}", check=True)
    out: dict[str, Any] = {"host": host}
    # a new session: pam_env now gives it the German locale
    out["policy"] = bed.ssh(host, "echo \"$LANG\"; apt-cache policy bash", check=True).stdout
    inv = inventory(bed, tmp / "inv.ini", {host: "root"})
    out["first"] = run_apply(inv, tmp / "first.json")
    out["updates"] = bed.ssh(host, f"cat {MARK} 2>/dev/null; true").stdout
    out["second"] = run_apply(inv, tmp / "second.json")
    try:
        yield out
    finally:
        bed.reset(host)


def test_the_host_speaks_german(german: dict[str, Any]) -> None:
    """The precondition: sshd's sessions on this host get German output from apt."""
    assert german["policy"].startswith("de_DE.UTF-8\n"), german["policy"]
    assert "Installationskandidat:" in german["policy"], german["policy"]


def test_apply_installs_without_refreshing_current_package_lists(
        german: dict[str, Any]) -> None:
    p, doc = german["first"]
    assert p.returncode == 0, p.stdout + p.stderr
    steps = {s["name"]: s for s in doc["hosts"][german["host"]]["steps"]}
    assert steps["install postgresql"]["status"] == "changed"
    assert german["updates"] == "", "apt-get update ran: apt-cache policy was read in German"


def test_the_rerun_changes_nothing(german: dict[str, Any]) -> None:
    p, doc = german["second"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert doc["hosts"][german["host"]]["changed"] == 0
