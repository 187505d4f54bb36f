"""The test bed's pure logic: mirror discovery, host names, DNS, cache keys (no root needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testbed import hostfs
from testbed.errors import TestbedError
from testbed.mirror import Mirror, machine_mirror
from testbed.recipes import RECIPES, kind_of

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main
"""

DISABLED = DEB822.replace("Types: deb\n", "Types: deb\nEnabled: no\n")


def _apt_root(tmp_path: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = tmp_path / "etc/apt" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.fixture(autouse=True)
def _no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATALOT_TESTBED_MIRROR", raising=False)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"sources.list.d/debian.sources": DEB822},
            Mirror("http://mirror.example/debian", "http://mirror.example/debian-security"),
        ),
        (
            {
                "sources.list": "# deb http://commented.example/debian bookworm main\n"
                "deb [signed-by=/k.gpg] http://one.example/debian/ bookworm main\n"
                "deb http://one.example/debian-security bookworm-security main\n"
            },
            Mirror("http://one.example/debian", "http://one.example/debian-security"),
        ),
        (
            {
                "sources.list.d/debian.sources": DISABLED,
                "sources.list.d/other.list": "deb http://two.example/debian trixie main\n",
                "sources.list.d/ignored.list.disabled": "deb http://no.example/debian sid main\n",
            },
            Mirror("http://two.example/debian", None),
        ),
    ],
    ids=["deb822", "one-line", "disabled-and-list-d"],
)
def test_mirror_is_read_from_apt_sources(
    tmp_path: Path, files: dict[str, str], expected: Mirror
) -> None:
    assert machine_mirror(_apt_root(tmp_path, files)) == expected


def test_no_mirror_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(TestbedError, match="CHATALOT_TESTBED_MIRROR"):
        machine_mirror(_apt_root(tmp_path, {"sources.list": "deb cdrom:/ bookworm main\n"}))


def test_sources_list_for_a_suite() -> None:
    text = Mirror("http://m.example/debian", "http://m.example/debian-security").sources_list(
        "trixie"
    )
    assert text.splitlines()[1:] == [
        "deb http://m.example/debian trixie main",
        "deb http://m.example/debian trixie-updates main",
        "deb http://m.example/debian-security trixie-security main",
    ]


@pytest.mark.parametrize(
    ("name", "kind"),
    [("debian12", "debian12"), ("debian13", "debian13"), ("debian12-b", "debian12")],
)
def test_host_names_map_to_kinds(name: str, kind: str) -> None:
    assert kind_of(name) == kind


@pytest.mark.parametrize("name", ["fedora40", "debian12-", "Debian12", "debian12 x", ""])
def test_bad_host_names_are_refused(name: str) -> None:
    with pytest.raises(TestbedError, match=r"^(bad|unknown) host (name )?" + re.escape(repr(name))):
        kind_of(name)


def test_recipe_keys_are_stable_and_depend_on_the_mirror() -> None:
    recipe = RECIPES["debian12"]
    one = recipe.key(Mirror("http://a.example/debian"))
    assert one == recipe.key(Mirror("http://a.example/debian"))
    assert one != recipe.key(Mirror("http://b.example/debian"))
    assert one.startswith("debian12-") and len(one) == len("debian12-") + 12
    assert RECIPES["debian12"].pg_major == 15 and RECIPES["debian13"].pg_major == 17


def test_resolv_conf_keeps_reachable_servers(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/resolv.conf").write_text(
        "nameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch example\noptions edns0\n"
    )
    text = hostfs.resolv_conf(tmp_path)
    assert "127.0.0.53" not in text
    assert "nameserver 10.255.255.53" in text and "search example" in text


def test_resolv_conf_falls_back_to_resolved_upstreams(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/resolv.conf").write_text("nameserver 127.0.0.53\n")
    upstream = tmp_path / "run/systemd/resolve/resolv.conf"
    upstream.parent.mkdir(parents=True)
    upstream.write_text("nameserver 192.0.2.53\n")
    assert "nameserver 192.0.2.53" in hostfs.resolv_conf(tmp_path)
    upstream.write_text("nameserver ::1\n")
    with pytest.raises(TestbedError, match="no usable name server"):
        hostfs.resolv_conf(tmp_path)


def test_inotify_instances_grow_with_the_hosts() -> None:
    from testbed.core import inotify_instances_needed
    assert inotify_instances_needed(1) == 144
    # 32 hosts took more than the kernel's default 128: 11 of them never started sshd
    assert inotify_instances_needed(32) == 640 > 32 * 10 + 128
