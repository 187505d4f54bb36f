"""pg_hba.conf editing: table of inputs and the exact text expected."""

from __future__ import annotations

import pytest

from installer.desired import hba

W = hba.HbaWanted("chatalot", "chatalot")
BLOCK = "\n".join(hba.managed_block(W))

DEBIAN = """# comment header

local   all             postgres                                peer
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
"""


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        # fresh Debian file: block on top, every other line untouched
        (DEBIAN, BLOCK + "\n\n" + DEBIAN),
        # already managed: unchanged (idempotent)
        (BLOCK + "\n\n" + DEBIAN, BLOCK + "\n\n" + DEBIAN),
        # an outdated block of ours is rewritten where it stands, not moved or duplicated
        ("local all all peer\n# BEGIN chatalot-db managed block for chatalot@chatalot: rewritten"
         " on every run\nhost x y 10.0.0.0/8 md5\n# END chatalot-db managed block for "
         "chatalot@chatalot\n", "local all all peer\n" + BLOCK + "\n"),
        # another app's block is kept (each user@database owns its own)
        ("# BEGIN chatalot-db managed block for a@b: rewritten on every run\nhost b a ::1/128 "
         "scram-sha-256\n# END chatalot-db managed block for a@b\n",
         BLOCK + "\n\n# BEGIN chatalot-db managed block for a@b: rewritten on every run\n"
         "host b a ::1/128 scram-sha-256\n# END chatalot-db managed block for a@b\n"),
        # trust on a local line becomes peer; on a host line scram-sha-256
        ("local all all trust\n", BLOCK + "\n\nlocal    all    all    peer\n"),
        ("host all all 127.0.0.1/32 trust # dev\n",
         BLOCK + "\n\nhost    all    all    127.0.0.1/32    scram-sha-256  # dev\n"),
        # address + netmask form
        ("host all all 127.0.0.1 255.255.255.255 trust\n",
         BLOCK + "\n\nhost    all    all    127.0.0.1    255.255.255.255    scram-sha-256\n"),
        # a database named trust is not a method: untouched
        ("host trust all 10.0.0.0/8 md5\n", BLOCK + "\n\nhost trust all 10.0.0.0/8 md5\n"),
        # commented-out trust lines stay as they are
        ("# host all all 0.0.0.0/0 trust\n", BLOCK + "\n\n# host all all 0.0.0.0/0 trust\n"),
        ("", BLOCK + "\n"),
    ],
)
def test_render(current: str, expected: str) -> None:
    assert hba.render(current, W) == expected


def test_two_apps_on_one_cluster_converge() -> None:
    """Apps a and b take turns (two inventories, one cluster): nothing moves after round one."""
    other = hba.HbaWanted("b", "b")
    text = hba.render(hba.render("local all all peer\n", W), other)
    assert hba.render(text, W) == text
    assert hba.render(hba.render(text, W), other) == text


def test_render_is_idempotent_on_its_output() -> None:
    once = hba.render("local all all trust\nhost all all ::1/128 trust\n", W)
    assert hba.render(once, W) == once
    assert "trust" not in once


def test_block_lists_loopback_only_by_default_and_hostssl_for_remote() -> None:
    lines = hba.managed_block(hba.HbaWanted("db", "app", remote_cidrs=("10.1.0.0/16",)))
    rules = [ln.split() for ln in lines if not ln.startswith("#")]
    assert rules == [
        ["host", "db", "app", "127.0.0.1/32", "scram-sha-256"],
        ["host", "db", "app", "::1/128", "scram-sha-256"],
        ["hostssl", "db", "app", "10.1.0.0/16", "scram-sha-256"],
    ]
