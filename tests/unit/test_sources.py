"""`migrations_source` read from its text alone (installer.desired.sources), and how
HostConfig.from_vars takes each kind: as tables of inputs and what they give."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from installer.desired.config import HostConfig
from installer.desired.sources import (
    ARCHIVE,
    BUNDLED,
    FOLDER,
    GIT,
    NONE,
    MigrationSource,
    archive_name,
    parse_source,
    redact,
)
from installer.errors import UsageError
from installer.resources import migrations_dir

COMMIT = "0123456789abcdef0123456789abcdef01234567"
COMMIT256 = "89abcdef" * 8
DIGEST = "a1b2c3d4e5f60718" * 4
UPPER = DIGEST.upper()

# -- what parses, and into what ---------------------------------------------------------------

#: value -> (kind, url, ref, subdirectory, sha256)
Parsed = tuple[str, str, str | None, str | None, str | None]
PARSED: list[tuple[object, Parsed]] = [
    # none
    (None, (NONE, "", None, None, None)),
    ("", (NONE, "", None, None, None)),
    ("   ", (NONE, "", None, None, None)),
    ("none", (NONE, "", None, None, None)),
    ("NONE", (NONE, "", None, None, None)),
    (" None ", (NONE, "", None, None, None)),
    # the bundled set
    ("bundled", (BUNDLED, "", None, None, None)),
    ("Bundled", (BUNDLED, "", None, None, None)),
    # folders, not looked at here
    ("migrations", (FOLDER, "", None, None, None)),
    ("./release/migrations", (FOLDER, "", None, None, None)),
    ("/srv/chatalot/migrations", (FOLDER, "", None, None, None)),
    ("~/chatalot/migrations", (FOLDER, "", None, None, None)),
    (Path("/src/chatalot"), (FOLDER, "", None, None, None)),
    ("git@host:owner/chatalot.git", (FOLDER, "", None, None, None)),  # no scheme: a path
    # git: the schemes
    ("git+https://github.com/owner/chatalot.git@v0.19.0",
     (GIT, "https://github.com/owner/chatalot.git", "v0.19.0", None, None)),
    ("git+http://git.lan/owner/chatalot.git@v0.19.0",
     (GIT, "http://git.lan/owner/chatalot.git", "v0.19.0", None, None)),
    ("git+ssh://git@github.com/owner/chatalot.git@v0.19.0",
     (GIT, "ssh://git@github.com/owner/chatalot.git", "v0.19.0", None, None)),
    ("git+ssh://git@git.lan:2222/owner/chatalot.git@main",
     (GIT, "ssh://git@git.lan:2222/owner/chatalot.git", "main", None, None)),
    ("git+file:///srv/chatalot.git@main", (GIT, "file:///srv/chatalot.git", "main", None, None)),
    ("git+git://git.lan/chatalot.git@v1", (GIT, "git://git.lan/chatalot.git", "v1", None, None)),
    ("git+HTTPS://git.lan/chatalot.git@v1",
     (GIT, "https://git.lan/chatalot.git", "v1", None, None)),
    ("git+https://ci:s3cret@git.lan/chatalot.git@v1",  # the URL keeps what fetching needs
     (GIT, "https://ci:s3cret@git.lan/chatalot.git", "v1", None, None)),
    # git: the refs
    ("git+https://git.lan/c.git@release/0.19", (GIT, "https://git.lan/c.git", "release/0.19",
                                                None, None)),
    ("git+https://git.lan/c.git@feature/a/b_c-d+e",
     (GIT, "https://git.lan/c.git", "feature/a/b_c-d+e", None, None)),
    (f"git+https://git.lan/c.git@{COMMIT}", (GIT, "https://git.lan/c.git", COMMIT, None, None)),
    (f"git+https://git.lan/c.git@{COMMIT256}",
     (GIT, "https://git.lan/c.git", COMMIT256, None, None)),
    ("git+https://git.lan/c.git", (GIT, "https://git.lan/c.git", None, None, None)),
    ("git+ssh://git@git.lan/c.git", (GIT, "ssh://git@git.lan/c.git", None, None, None)),
    # git: #subdirectory=
    ("git+https://git.lan/c.git@v1#subdirectory=db/migrations",
     (GIT, "https://git.lan/c.git", "v1", "db/migrations", None)),
    ("git+https://git.lan/c.git@v1#subdirectory=db/migrations/",
     (GIT, "https://git.lan/c.git", "v1", "db/migrations", None)),
    ("git+https://git.lan/c.git#subdirectory=migrations",
     (GIT, "https://git.lan/c.git", None, "migrations", None)),
    # archives, every suffix, unpinned
    ("https://h.example/r/chatalot-0.19.0.tar.gz",
     (ARCHIVE, "https://h.example/r/chatalot-0.19.0.tar.gz", None, None, None)),
    ("https://h.example/r/chatalot-0.19.0.tgz",
     (ARCHIVE, "https://h.example/r/chatalot-0.19.0.tgz", None, None, None)),
    ("https://h.example/r/chatalot-0.19.0.tar.xz",
     (ARCHIVE, "https://h.example/r/chatalot-0.19.0.tar.xz", None, None, None)),
    ("https://h.example/r/chatalot-0.19.0.txz",
     (ARCHIVE, "https://h.example/r/chatalot-0.19.0.txz", None, None, None)),
    ("https://h.example/r/chatalot-0.19.0.tar.bz2",
     (ARCHIVE, "https://h.example/r/chatalot-0.19.0.tar.bz2", None, None, None)),
    ("https://h.example/r/chatalot-0.19.0.tbz2",
     (ARCHIVE, "https://h.example/r/chatalot-0.19.0.tbz2", None, None, None)),
    ("https://h.example/r/chatalot-0.19.0.tar",
     (ARCHIVE, "https://h.example/r/chatalot-0.19.0.tar", None, None, None)),
    ("https://h.example/r/chatalot-0.19.0.zip",
     (ARCHIVE, "https://h.example/r/chatalot-0.19.0.zip", None, None, None)),
    ("https://h.example/r/CHATALOT.TAR.GZ",
     (ARCHIVE, "https://h.example/r/CHATALOT.TAR.GZ", None, None, None)),
    ("http://mirror.lan/chatalot.tgz", (ARCHIVE, "http://mirror.lan/chatalot.tgz", None, None,
                                        None)),
    ("file:///srv/dist/chatalot.tar.xz", (ARCHIVE, "file:///srv/dist/chatalot.tar.xz", None,
                                          None, None)),
    ("https://h.example/chatalot.zip?raw=1",
     (ARCHIVE, "https://h.example/chatalot.zip?raw=1", None, None, None)),
    # archives, pinned (an upper-case pin is lowered), with a subdirectory
    (f"https://h.example/chatalot.tar.gz#sha256={DIGEST}",
     (ARCHIVE, "https://h.example/chatalot.tar.gz", None, None, DIGEST)),
    (f"https://h.example/chatalot.zip#sha256={UPPER}",
     (ARCHIVE, "https://h.example/chatalot.zip", None, None, DIGEST)),
    (f"https://h.example/chatalot.tbz2#sha256={DIGEST}&subdirectory=server/migrations",
     (ARCHIVE, "https://h.example/chatalot.tbz2", None, "server/migrations", DIGEST)),
    (f"https://h.example/chatalot.tar#subdirectory=m&sha256={UPPER}",
     (ARCHIVE, "https://h.example/chatalot.tar", None, "m", DIGEST)),
    ("https://h.example/chatalot.txz#subdirectory=m",
     (ARCHIVE, "https://h.example/chatalot.txz", None, "m", None)),
]


@pytest.mark.parametrize(("value", "expected"), PARSED, ids=[repr(v) for v, _ in PARSED])
def test_parse_source(value: object, expected: Parsed) -> None:
    source = parse_source(value)
    assert (source.kind, source.url, source.ref, source.subdirectory, source.sha256) == expected
    assert (source.folder, source.resolved) == (None, None)
    kind = expected[0]
    text = {NONE: NONE, BUNDLED: BUNDLED}.get(kind, str(value).strip())
    assert source.text == text  # the value as given, any pin included
    assert source.remote == (kind in (GIT, ARCHIVE))


# -- what is refused, and what it says ---------------------------------------------------------

_GIT_FORMS = "a git source is git+https://, git+ssh://, git+file:// or git+git://"
_NOT_REF = "is not a git ref (a tag, branch or commit)"
_GIT_FRAGMENT = "is not understood; the fragment takes subdirectory="
_ARCHIVE_FRAGMENT = "is not understood; the fragment takes sha256= and subdirectory="
_RELATIVE = "must be a relative path inside the repository or archive"
_NOT_ARCHIVE = "a URL source is a release archive (.tar.gz, .tgz, .tar.xz"
_HEX = "sha256= takes the archive's 64 hex digits"

REFUSED: list[tuple[str, str]] = [
    ("ftp://h.example/chatalot.tar.gz", "ftp:// is not a source; give a folder, git+URL@REF"),
    ("FTP://h.example/chatalot.tar.gz", "ftp:// is not a source"),
    ("s3://bucket/chatalot.tar.gz", "s3:// is not a source"),
    ("ssh://git@h.example/c.git", "ssh:// is not a source"),
    ("git+ftp://h.example/c.git@v1", _GIT_FORMS),
    ("git+h.example/c.git@v1", _GIT_FORMS),
    ("git+https:h.example/c.git@v1", _GIT_FORMS),
    ("git+https://h.example/c.git@..x", f"'..x' {_NOT_REF}"),
    ("git+https://h.example/c.git@a..b", f"'a..b' {_NOT_REF}"),
    ("git+https://h.example/c.git@-x", f"'-x' {_NOT_REF}"),
    ("git+https://h.example/c.git@x.lock", f"'x.lock' {_NOT_REF}"),
    ("git+https://h.example/c.git@", f"'' {_NOT_REF}"),
    ("git+https://h.example/c.git@x/", f"'x/' {_NOT_REF}"),
    ("git+https://h.example/c.git@/x", f"'/x' {_NOT_REF}"),
    ("git+https://h.example/c.git@v1~1", f"'v1~1' {_NOT_REF}"),
    ("git+https://h.example/c.git@v1^{}", f"'v1^{{}}' {_NOT_REF}"),
    ("git+https://h.example/c.git@v1#foo=bar", f"#foo=bar {_GIT_FRAGMENT}"),
    (f"git+https://h.example/c.git@v1#sha256={DIGEST}", _GIT_FRAGMENT),
    ("git+https://h.example/c.git@v1#egg=chatalot", f"#egg=chatalot {_GIT_FRAGMENT}"),
    ("git+https://h.example/c.git@v1#subdirectory=a&subdirectory=b", _GIT_FRAGMENT),
    ("git+https://h.example/c.git@v1#subdirectory=", _GIT_FRAGMENT),
    ("git+https://h.example/c.git@v1#subdirectory", _GIT_FRAGMENT),
    ("https://h.example/c.tar.gz#md5=abc", f"#md5=abc {_ARCHIVE_FRAGMENT}"),
    (f"https://h.example/c.tar.gz#sha256={DIGEST}&sha256={DIGEST}", _ARCHIVE_FRAGMENT),
    ("https://h.example/c.tar.gz#sha256=", _ARCHIVE_FRAGMENT),
    ("https://h.example/c.tar.gz#sha256=abc", _HEX),
    (f"https://h.example/c.tar.gz#sha256={DIGEST[:-1]}", _HEX),
    (f"https://h.example/c.tar.gz#sha256={DIGEST}0", _HEX),
    (f"https://h.example/c.tar.gz#sha256={'g' * 64}", _HEX),
    ("git+https://h.example/c.git@v1#subdirectory=../m", f"subdirectory '../m' {_RELATIVE}"),
    ("git+https://h.example/c.git@v1#subdirectory=a/../b", f"subdirectory 'a/../b' {_RELATIVE}"),
    ("git+https://h.example/c.git@v1#subdirectory=..", f"subdirectory '..' {_RELATIVE}"),
    ("git+https://h.example/c.git@v1#subdirectory=a//b", f"subdirectory 'a//b' {_RELATIVE}"),
    ("git+https://h.example/c.git@v1#subdirectory=a%2F..%2Fb",
     f"subdirectory 'a/../b' {_RELATIVE}"),
    ("https://h.example/c.zip#subdirectory=m/..", f"subdirectory 'm/..' {_RELATIVE}"),
    ("https://h.example/c.zip#subdirectory=m%00", f"subdirectory 'm\\x00' {_RELATIVE}"),
    ("https://github.com/owner/chatalot", _NOT_ARCHIVE),
    ("https://github.com/owner/chatalot.git", _NOT_ARCHIVE),
    ("https://h.example/chatalot.tar.gz.sha256", _NOT_ARCHIVE),
    ("https://h.example/download?file=chatalot.tar.gz", _NOT_ARCHIVE),
    ("file:///srv/chatalot", _NOT_ARCHIVE),
    ("git+https://github.com", "no repository path in the URL"),
    ("git+https://github.com/", "no repository path in the URL"),
    ("git+https://github.com/@v1", "no repository path in the URL"),
    ("git+ssh://git@github.com@v1", "no repository path in the URL"),
]

#: refused by the brief, taken by the code (see the report): a leading `/` is stripped
ABSOLUTE_SUBDIRECTORY = [
    ("git+https://h.example/c.git@v1#subdirectory=/abs/m", f"subdirectory '/abs/m' {_RELATIVE}"),
    ("https://h.example/c.zip#subdirectory=/etc", f"subdirectory '/etc' {_RELATIVE}"),
]


@pytest.mark.parametrize(("value", "fragment"), [
    *REFUSED,
    *ABSOLUTE_SUBDIRECTORY,
], ids=[v for v, _ in REFUSED] + [v for v, _ in ABSOLUTE_SUBDIRECTORY])
def test_parse_source_refuses(value: str, fragment: str) -> None:
    """Each message names the value as given, then what is wrong with it."""
    with pytest.raises(UsageError, match=f"^migrations_source {re.escape(repr(value))}: "
                                         f".*{re.escape(fragment)}"):
        parse_source(value)


# -- how it is named ---------------------------------------------------------------------------

_PINNED = f"https://h.example/chatalot.tar.gz#sha256={DIGEST}"

DESCRIBED: list[tuple[MigrationSource, str]] = [
    (parse_source("none"), "none"),
    (parse_source("bundled"), "the bundled reference migrations"),
    (parse_source("bundled").fetched(Path("/x/migrations")), "the bundled reference migrations"),
    (parse_source("/srv/m"), "/srv/m"),
    (parse_source("/srv/m").fetched(Path("/srv/m")), "/srv/m"),
    (parse_source("git+https://h/c.git@v1"), "git+https://h/c.git@v1"),
    (parse_source("git+https://h/c.git@v1").fetched(Path("/cache/x"), COMMIT),
     "git+https://h/c.git@v1 (commit 0123456789ab)"),
    (parse_source(f"git+https://h/c.git@{COMMIT}").fetched(Path("/cache/x"), COMMIT),
     f"git+https://h/c.git@{COMMIT} (commit 0123456789ab)"),
    (parse_source("git+https://h/c.git#subdirectory=m").fetched(Path("/c"), COMMIT256),
     "git+https://h/c.git#subdirectory=m (commit 89abcdef89ab)"),
    (parse_source("git+https://ci:s3cret@h/c.git@v1").fetched(Path("/c"), COMMIT),
     "git+https://ci:***@h/c.git@v1 (commit 0123456789ab)"),
    (parse_source("git+ssh://git@h/c.git@v1").fetched(Path("/c"), COMMIT),
     "git+ssh://git@h/c.git@v1 (commit 0123456789ab)"),
    (parse_source("https://h/c.tar.gz"), "https://h/c.tar.gz"),
    (parse_source("https://h/c.tar.gz").fetched(Path("/c"), DIGEST),
     "https://h/c.tar.gz (sha256 a1b2c3d4e5f60718)"),
    (parse_source(_PINNED).fetched(Path("/c"), DIGEST), _PINNED),  # the pin says it already
    (parse_source("https://ci:s3cret@h/c.zip").fetched(Path("/c"), DIGEST),
     "https://ci:***@h/c.zip (sha256 a1b2c3d4e5f60718)"),
]


@pytest.mark.parametrize(("source", "text"), DESCRIBED, ids=[d for _, d in DESCRIBED])
def test_describe(source: MigrationSource, text: str) -> None:
    assert source.describe() == text
    assert "s3cret" not in source.describe()


def test_fetched_fills_in_folder_and_resolved_and_keeps_the_rest() -> None:
    parsed = parse_source("git+https://h/c.git@v1#subdirectory=m")
    fetched = parsed.fetched(Path("/cache/c"), COMMIT)
    assert (fetched.folder, fetched.resolved) == (Path("/cache/c"), COMMIT)
    assert (parsed.folder, parsed.resolved) == (None, None)
    assert (fetched.kind, fetched.text, fetched.url, fetched.ref, fetched.subdirectory) == (
        GIT, "git+https://h/c.git@v1#subdirectory=m", "https://h/c.git", "v1", "m")
    assert fetched == parsed  # where it was put is not what it is


REDACTED: list[tuple[str, str]] = [
    ("https://ci:s3cret@h/c.tar.gz", "https://ci:***@h/c.tar.gz"),
    ("git+https://ci:s3cret@h:8443/c.git@v1#subdirectory=m",
     "git+https://ci:***@h:8443/c.git@v1#subdirectory=m"),
    ("https://ci:pa:ss@h/c.tar.gz", "https://ci:***@h/c.tar.gz"),
    ("https://ci:@h/c.tar.gz", "https://ci:***@h/c.tar.gz"),
    ("https://:token@h/c.tar.gz", "https://:***@h/c.tar.gz"),
    ("cannot reach https://a:b@h/x.zip and git+ssh://c:d@i/y.git: timed out",
     "cannot reach https://a:***@h/x.zip and git+ssh://c:***@i/y.git: timed out"),
    ("https://a:b@h/x.zip\nhttps://c:d@i/y.zip", "https://a:***@h/x.zip\nhttps://c:***@i/y.zip"),
    # kept as they are: a user name alone, a port, no URL at all
    ("git+ssh://git@h/c.git@v1", "git+ssh://git@h/c.git@v1"),
    ("ssh://git@h:2222/c.git", "ssh://git@h:2222/c.git"),
    ("https://h:8443/c.tar.gz", "https://h:8443/c.tar.gz"),
    ("https://h:8443/c.git@v1", "https://h:8443/c.git@v1"),
    ("git@github.com:owner/chatalot.git", "git@github.com:owner/chatalot.git"),
    ("/srv/chatalot/migrations", "/srv/chatalot/migrations"),
]


@pytest.mark.parametrize(("text", "expected"), REDACTED, ids=[t for t, _ in REDACTED])
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(("url", "name"), [
    ("https://h/r/chatalot-0.19.0.tar.gz", "chatalot-0.19.0.tar.gz"),
    ("https://h/r/chatalot-0.19.0.zip?raw=1", "chatalot-0.19.0.zip"),
    ("https://h/r/chatalot.tgz/", "chatalot.tgz"),
    ("file:///srv/dist/chatalot.tar", "chatalot.tar"),
    ("https://h/", "archive"),
    ("https://h", "archive"),
])
def test_archive_name(url: str, name: str) -> None:
    assert archive_name(url) == name


# -- HostConfig.from_vars ----------------------------------------------------------------------

#: migrations_source -> (kind, bundled_migrations, migrations_label, migrations_unfetched);
#: the folder migrations_source is checked below
#: (what an unset migrations_source means is left to the tests of the defaults)
CONFIGS: list[tuple[str, tuple[str, bool, str, str | None]]] = [
    ("bundled", (BUNDLED, True, "the bundled reference migrations", None)),
    ("BUNDLED", (BUNDLED, True, "the bundled reference migrations", None)),
    ("none", (NONE, False, "none", None)),
    ("", (NONE, False, "none", None)),
    ("git+https://h/c.git@v1", (GIT, False, "git+https://h/c.git@v1", "git+https://h/c.git@v1")),
    ("git+https://ci:s3cret@h/c.git@v1",
     (GIT, False, "git+https://ci:***@h/c.git@v1", "git+https://ci:s3cret@h/c.git@v1")),
    ("https://h/c.tar.gz", (ARCHIVE, False, "https://h/c.tar.gz", "https://h/c.tar.gz")),
]


@pytest.mark.parametrize(("value", "expected"), CONFIGS, ids=[repr(v) for v, _ in CONFIGS])
def test_config_takes_each_kind(value: str,
                                expected: tuple[str, bool, str, str | None]) -> None:
    c = HostConfig.from_vars({"migrations_source": value})
    assert c.migrations is not None
    assert (c.migrations.kind, c.bundled_migrations, c.migrations_label,
            c.migrations_unfetched) == expected
    # the bundled set is fetched as it is read; none and an unfetched source have no folder
    folder = migrations_dir() if expected[0] == BUNDLED else None
    assert c.migrations_source == folder and c.migrations.folder == folder


@pytest.mark.parametrize("spelling", ["absolute", "relative", "home"])
def test_config_takes_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               spelling: str) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    (home / "rel").mkdir(parents=True)
    work.mkdir()
    (work / "rel").symlink_to(home / "rel")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    value = {"absolute": str(home / "rel"), "relative": "rel", "home": "~/rel"}[spelling]
    c = HostConfig.from_vars({"migrations_source": value})
    assert c.migrations_source == (home / "rel").resolve()
    assert c.migrations is not None and (c.migrations.kind, c.migrations.text) == (FOLDER, value)
    assert (c.bundled_migrations, c.migrations_unfetched) == (False, None)
    assert c.migrations_label == str((home / "rel").resolve())


@pytest.mark.parametrize("value", ["/no/such/chatalot/migrations", "no-such-folder",
                                   "~/no-such-folder"])
def test_config_refuses_a_folder_that_is_not_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=f"^migrations_source {re.escape(repr(value))} is not "
                                         "a folder on this \\(the control\\) machine; "):
        HostConfig.from_vars({"migrations_source": value})


def test_config_refuses_what_parse_source_refuses() -> None:
    with pytest.raises(UsageError, match=r"^migrations_source 'ftp://h/c\.tar\.gz': ftp:// "
                                         r"is not a source"):
        HostConfig.from_vars({"migrations_source": "ftp://h/c.tar.gz"})


@pytest.mark.parametrize(("source", "label"), [
    (parse_source("git+https://h/c.git@v1").fetched(Path("/cache/c1"), COMMIT),
     "git+https://h/c.git@v1 (commit 0123456789ab)"),
    (parse_source("https://h/c.tar.gz").fetched(Path("/cache/c1"), DIGEST),
     "https://h/c.tar.gz (sha256 a1b2c3d4e5f60718)"),
    # a folder the fetcher resolved (a checkout's migrations/): not looked at again
    (parse_source("/src/chatalot").fetched(Path("/cache/c1")), "/cache/c1"),
], ids=["git", "archive", "folder"])
def test_config_takes_a_fetched_source_as_it_is(source: MigrationSource, label: str) -> None:
    c = HostConfig.from_vars({"migrations_source": source})
    assert c.migrations is source
    assert c.migrations_source == Path("/cache/c1")  # never checked on this machine
    assert (c.migrations_label, c.migrations_unfetched, c.bundled_migrations) == (
        label, None, False)


def test_config_an_unfetched_remote_source_instance_stays_unfetched() -> None:
    source = parse_source("git+https://h/c.git@v1")
    c = HostConfig.from_vars({"migrations_source": source})
    assert c.migrations is source and c.migrations_source is None
    assert c.migrations_unfetched == "git+https://h/c.git@v1"


def test_config_the_bundled_folder_by_its_path_is_the_bundled_set() -> None:
    assert HostConfig(migrations_source=migrations_dir()).bundled_migrations
    c = HostConfig.from_vars({"migrations_source": str(migrations_dir())})
    assert c.bundled_migrations


@pytest.mark.parametrize("value", [
    "https://ci:s3cret@h.example/chatalot-0.19.0.tar.gz#sha256=abc",
    "https://ci:s3cret@h.example/chatalot-0.19.0.txt",
    "git+https://ci:s3cret@h.example/c.git@..bad",
    "git+https://ci:s3cret@h.example/c.git@v1#nope=1",
])
def test_a_refused_source_never_shows_the_urls_password(value: str) -> None:
    with pytest.raises(UsageError, match=r"^migrations_source '[^']*ci:\*\*\*@h\.example") as e:
        parse_source(value)
    assert "s3cret" not in str(e.value)
