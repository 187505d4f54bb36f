"""installer.fleet.sources: migration sources fetched onto the control machine, with a
real git (repositories shaped like Chatalot's, served over file://) and a real HTTP
server on 127.0.0.1 for release archives. Git's configuration is the test's own."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import subprocess
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from installer.desired.sources import NONE, MigrationSource, parse_source
from installer.errors import ChatalotError
from installer.fleet.sources import SourceFetcher, cache_root, redact
from installer.resources import migrations_dir
from installer.sqlx import rules

M1 = "20240101000000_init.sql"
M2 = "20240102000000_users.sql"
M3 = "20240103000000_channels.sql"
M4 = "20240104000000_messages_index.sql"
FILES_A: dict[str, bytes] = {
    M1: b"CREATE TABLE servers (id uuid PRIMARY KEY);\n",
    M2: b"CREATE TABLE users (\n    id uuid PRIMARY KEY,\n    name text NOT NULL\n);\n",
}
FILES_B: dict[str, bytes] = {
    **FILES_A,
    M3: b"CREATE TABLE channels (id uuid PRIMARY KEY);\n",
    M4: b"-- no-transaction\nCREATE INDEX CONCURRENTLY channels_id ON channels (id);\n",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def names(folder: Path | None) -> list[str]:
    assert folder is not None
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(autouse=True)
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Git reads only an empty global config of the test's; commits have a fixed author;
    the cache is the test's. Returns the global config file."""
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "test@example.invalid")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_SSH_COMMAND", "GIT_SSH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHATALOT_DB_CACHE", str(tmp_path / "cache"))
    return config


@dataclass
class Repo:
    path: Path
    #: the commits of v0.1.0 (two migrations) and v0.2.0 (four)
    c1: str
    c2: str

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def source(self, suffix: str = "") -> str:
        return f"git+{self.url}{suffix}"


def make_repo(root: Path, extra: dict[str, bytes] | None = None,
              folder: str = "migrations") -> Repo:
    """A repository shaped like Chatalot's: `main` with v0.1.0 (annotated) at two
    migrations and v0.2.0 (lightweight) at four, one of them `-- no-transaction`."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    write_files(root, {"README.md": b"# Chatalot\n", "server/Cargo.toml": b"[package]\n",
                       **(extra or {})})
    write_files(root / folder, FILES_A)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "two migrations")
    git(root, "tag", "-a", "-m", "first release", "v0.1.0")
    write_files(root / folder, FILES_B)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "four migrations")
    git(root, "tag", "v0.2.0")
    return Repo(root, git(root, "rev-parse", "v0.1.0^{commit}"), git(root, "rev-parse", "HEAD"))


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path / "chatalot")


def fetch(text: str, *, cache: Path | None = None,
          say: Callable[[str], None] | None = None) -> MigrationSource:
    return SourceFetcher(cache, say=say).fetch(parse_source(text))


# -- git ------------------------------------------------------------------------------


def test_tag_a_then_tag_b(repo: Repo, tmp_path: Path) -> None:
    fetcher = SourceFetcher()
    a = fetcher.fetch(parse_source(repo.source("@v0.1.0")))
    b = fetcher.fetch(parse_source(repo.source("@v0.2.0")))
    assert a.resolved == repo.c1 != repo.c2 == b.resolved
    assert names(a.folder) == [M1, M2]
    assert names(b.folder) == [M1, M2, M3, M4]
    assert a.folder == tmp_path / "cache" / "trees" / repo.c1 / "migrations"
    assert [m.no_transaction for m in rules.load_migrations(b.folder or Path())] == [
        False, False, False, True]
    assert a.describe() == f"{repo.source('@v0.1.0')} (commit {repo.c1[:12]})"
    cache_repo = next((tmp_path / "cache" / "git").iterdir())
    assert json.loads((cache_repo / "tags.json").read_text()) == {
        "v0.1.0": repo.c1, "v0.2.0": repo.c2}
    assert (cache_repo / "url").read_text().strip() == repo.url


def test_full_commit(repo: Repo) -> None:
    got = fetch(repo.source(f"@{repo.c1}"))
    assert got.resolved == repo.c1
    assert names(got.folder) == [M1, M2]


def test_commit_refused_by_the_server_is_found_in_a_full_fetch(
        repo: Repo, git_env: Path) -> None:
    # protocol v0 upload-pack refuses a want that is not an advertised ref's tip
    git_env.write_text("[protocol]\n\tversion = 0\n")
    said: list[str] = []
    got = fetch(repo.source(f"@{repo.c1}"), say=said.append)
    assert got.resolved == repo.c1
    assert names(got.folder) == [M1, M2]
    assert any(line.startswith("fetching all branches and tags of") for line in said)


def test_missing_full_commit(repo: Repo) -> None:
    with pytest.raises(ChatalotError, match=f"no tag, branch or commit '{'e' * 40}' in "
                                            f"{repo.url}$"):
        fetch(repo.source(f"@{'e' * 40}"))


def test_abbreviated_commit(repo: Repo) -> None:
    got = fetch(repo.source(f"@{repo.c1[:10]}"))
    assert got.resolved == repo.c1
    assert names(got.folder) == [M1, M2]


def test_abbreviated_commit_behind_a_shallow_cache(repo: Repo) -> None:
    (repo.path / "migrations" / M1).unlink()
    git(repo.path, "commit", "-q", "-am", "untagged, on no branch's tip")
    middle = git(repo.path, "rev-parse", "HEAD")
    git(repo.path, "commit", "-q", "--allow-empty", "-m", "main's tip")
    fetch(repo.source("@main"))  # depth 1: the cache is shallow, `middle` not in it
    got = fetch(repo.source(f"@{middle[:8]}"))
    assert got.resolved == middle
    assert names(got.folder) == [M2, M3, M4]


def test_branch_and_default_branch(repo: Repo) -> None:
    git(repo.path, "branch", "release", repo.c1)
    assert fetch(repo.source("@release")).resolved == repo.c1
    assert fetch(repo.source("@main")).resolved == repo.c2
    default = fetch(repo.source())
    assert default.resolved == repo.c2
    assert names(default.folder) == [M1, M2, M3, M4]


def test_a_tag_is_resolved_once_per_fetcher(repo: Repo, tmp_path: Path) -> None:
    git(repo.path, "tag", "stable", repo.c1)
    fetcher = SourceFetcher()
    first = fetcher.fetch(parse_source(repo.source("@stable")))
    git(repo.path, "tag", "-f", "stable", repo.c2)
    again = fetcher.fetch(parse_source(repo.source("@stable")))
    assert first.resolved == again.resolved == repo.c1
    assert names(again.folder) == [M1, M2]
    fresh = SourceFetcher(tmp_path / "cache").fetch(parse_source(repo.source("@stable")))
    assert fresh.resolved == repo.c2
    assert names(fresh.folder) == [M1, M2, M3, M4]


def test_threads_share_one_resolution(repo: Repo) -> None:
    said: list[str] = []
    fetcher = SourceFetcher(say=said.append)
    results: list[MigrationSource] = []
    barrier = threading.Barrier(6)

    def host() -> None:
        barrier.wait()
        results.append(fetcher.fetch(parse_source(repo.source("@v0.2.0"))))

    threads = [threading.Thread(target=host) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.resolved for r in results] == [repo.c2] * 6
    assert len({r.folder for r in results}) == 1
    assert [line.split()[0] for line in said] == ["looking", "fetching"]


def test_failure_is_remembered(tmp_path: Path) -> None:
    said: list[str] = []
    fetcher = SourceFetcher(say=said.append)
    source = parse_source("git+file:///nonexistent.git@v1")
    for _ in range(2):
        with pytest.raises(ChatalotError, match="cannot reach"):
            fetcher.fetch(source)
    assert len(said) == 1


def test_unknown_ref(repo: Repo) -> None:
    with pytest.raises(ChatalotError, match=(
            rf"^migrations_source 'git\+{repo.url}@v9\.9\.9': no tag, branch or commit "
            rf"'v9\.9\.9' in {repo.url}$")):
        fetch(repo.source("@v9.9.9"))
    with pytest.raises(ChatalotError, match="no tag, branch or commit 'abcdef12' in "):
        fetch(repo.source("@abcdef12"))


def test_unreachable_repository() -> None:
    with pytest.raises(ChatalotError, match=(
            r"^migrations_source 'git\+file:///nonexistent\.git@v1': cannot reach "
            r"file:///nonexistent\.git: fatal: '/nonexistent\.git' does not appear to be a "
            r"git repository$")):
        fetch("git+file:///nonexistent.git@v1")


def test_offline_uses_cached_commits_and_tags_never_branches(
        repo: Repo, tmp_path: Path) -> None:
    online = SourceFetcher()
    for ref in (repo.c1, "v0.1.0", "main"):
        online.fetch(parse_source(repo.source(f"@{ref}")))
    repo.path.rename(tmp_path / "moved")

    said: list[str] = []
    offline = SourceFetcher(say=said.append)
    by_commit = offline.fetch(parse_source(repo.source(f"@{repo.c1}")))
    assert by_commit.resolved == repo.c1
    assert said == []  # a cached commit needs no network at all
    by_tag = offline.fetch(parse_source(repo.source("@v0.1.0")))
    assert by_tag.resolved == repo.c1
    assert names(by_tag.folder) == [M1, M2]
    assert said[-1].startswith(f"using the cached commit {repo.c1[:12]} of "
                               f"{repo.source('@v0.1.0')} (the repository cannot be reached")
    with pytest.raises(ChatalotError, match=f"@main': cannot reach {repo.url}: "):
        offline.fetch(parse_source(repo.source("@main")))
    # v0.2.0's commit is in the cache (main's), but the tag was never resolved
    with pytest.raises(ChatalotError, match=f"@v0.2.0': cannot reach {repo.url}: "):
        offline.fetch(parse_source(repo.source("@v0.2.0")))
    with pytest.raises(ChatalotError, match=f"cannot reach {repo.url}: "):
        offline.fetch(parse_source(repo.source(f"@{repo.c2[:10]}")))


def test_subdirectory(tmp_path: Path) -> None:
    nested = make_repo(tmp_path / "nested", folder="db/migrations")
    got = fetch(nested.source("@v0.2.0#subdirectory=db/migrations"))
    assert got.resolved == nested.c2
    assert names(got.folder) == [M1, M2, M3, M4]
    assert got.folder is not None and got.folder.parts[-2:] == ("db", "migrations")
    with pytest.raises(ChatalotError, match=(
            rf"@v0\.2\.0': commit {nested.c2[:12]} has no migrations/ folder \(give "
            r"#subdirectory=PATH\)$")):
        fetch(nested.source("@v0.2.0"))


def test_two_folders_of_one_commit(tmp_path: Path) -> None:
    both = make_repo(tmp_path / "both", extra={f"migrations/postgres/{M1}": b"SELECT 1;\n"})
    fetcher = SourceFetcher()
    inner = fetcher.fetch(parse_source(both.source("@v0.2.0#subdirectory=migrations/postgres")))
    outer = fetcher.fetch(parse_source(both.source("@v0.2.0")))
    assert names(inner.folder) == [M1]
    assert names(outer.folder) == [M1, M2, M3, M4, "postgres"]


def test_line_ends_stay_as_committed(tmp_path: Path, git_env: Path) -> None:
    attrs = {".gitattributes": b"*.sql text eol=crlf\nmigrations/*_users.sql export-ignore\n"}
    crlf = make_repo(tmp_path / "crlf", extra=attrs)
    git_env.write_text("[core]\n\tautocrlf = true\n\teol = crlf\n")
    got = fetch(crlf.source("@v0.2.0"))
    assert got.folder is not None
    assert names(got.folder) == [M1, M2, M3, M4]
    for name, data in FILES_B.items():
        committed = subprocess.run(["git", "cat-file", "blob", f"v0.2.0:migrations/{name}"],
                                   cwd=crlf.path, capture_output=True, check=True).stdout
        assert committed == data
        assert (got.folder / name).read_bytes() == data
    assert all(b"\r" not in (got.folder / n).read_bytes() for n in FILES_B)
    checksums = {m.filename: m.checksum for m in rules.load_migrations(got.folder)}
    assert checksums[M2] == hashlib.sha384(FILES_B[M2]).digest()


def test_ssh_is_never_interactive(git_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = SourceFetcher()._git_env()
    assert (env["GIT_SSH_COMMAND"], env["GIT_TERMINAL_PROMPT"], env["LC_ALL"]) == (
        "ssh -o BatchMode=yes", "0", "C")
    git_env.write_text("[core]\n\tsshCommand = ssh -F my_config\n")
    assert "GIT_SSH_COMMAND" not in SourceFetcher()._git_env()  # the user's own is kept
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i key")
    assert SourceFetcher()._git_env()["GIT_SSH_COMMAND"] == "ssh -i key"


# -- folders, bundled, none ---------------------------------------------------------


def test_folder_and_checkout_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = tmp_path / "home" / "chatalot"
    write_files(checkout, {"README.md": b"x\n", "build_db.sql": b"SELECT 1;\n"})
    write_files(checkout / "migrations", FILES_A)
    folder = fetch(str(checkout / "migrations"))
    assert folder.folder == (checkout / "migrations").resolve()
    assert folder.resolved is None
    root = fetch(str(checkout))
    assert root.folder == (checkout / "migrations").resolve()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert fetch("~/chatalot").folder == (checkout / "migrations").resolve()
    monkeypatch.chdir(tmp_path / "home")
    assert fetch("chatalot/migrations").folder == (checkout / "migrations").resolve()


def test_not_a_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ChatalotError, match=(
            rf"^migrations_source '{missing}' is not a folder on this \(the control\) "
            r"machine; give the migrations folder of your Chatalot release, a git\+URL@REF, "
            r"a release archive URL, or none to leave migrations to the Chatalot server$")):
        fetch(str(missing))


def test_folder_without_migrations(tmp_path: Path) -> None:
    write_files(tmp_path / "empty", {"README.md": b"x\n"})
    with pytest.raises(ChatalotError, match=(
            rf"^migrations_source '{tmp_path / 'empty'}': no sqlx migrations in "
            rf"{tmp_path / 'empty'}$")):
        fetch(str(tmp_path / "empty"))


def test_two_files_with_one_version(tmp_path: Path) -> None:
    write_files(tmp_path / "m", {**FILES_A, "20240101000000_again.sql": b"SELECT 1;\n"})
    with pytest.raises(ChatalotError, match=(
            rf"^migrations_source '{tmp_path / 'm'}': migration 20240101000000 is defined "
            r"twice")):
        fetch(str(tmp_path / "m"))


def test_bundled_and_none() -> None:
    bundled = fetch("bundled")
    assert bundled.folder == migrations_dir()
    assert bundled.resolved is None
    none = fetch("none")
    assert none.kind == NONE and none.folder is None and none.resolved is None


def test_cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_root() == tmp_path / "cache"
    monkeypatch.delenv("CHATALOT_DB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "chatalot-db"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert cache_root() == tmp_path / "h" / ".cache" / "chatalot-db"


# -- archives -------------------------------------------------------------------------


class _Handler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        server: Any = self.server
        server.seen.append((self.path, self.headers.get("Authorization")))
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Http:
    root: Path
    server: ThreadingHTTPServer
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    stopped: bool = False

    def url(self, name: str, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.server.server_address[1]}/{name}"

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def http(tmp_path: Path) -> Iterator[Http]:
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_Handler, directory=str(root)))
    served = Http(root, server)
    server.seen = served.seen  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield served
    served.stop()
    thread.join(timeout=5)


def make_tar(path: Path, files: dict[str, bytes]) -> bytes:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def make_zip(path: Path, files: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path.read_bytes()


def release(prefix: str = "chatalot-0.2.0/migrations/") -> dict[str, bytes]:
    return {prefix + name: data for name, data in FILES_B.items()}


def archive_dir(tmp_path: Path, url: str) -> Path:
    return tmp_path / "cache" / "archives" / hashlib.sha256(url.encode()).hexdigest()[:16]


def test_archive_with_the_right_pin(http: Http) -> None:
    data = make_tar(http.root / "chatalot-0.2.0.tar.gz", release())
    pin = hashlib.sha256(data).hexdigest()
    got = fetch(f"{http.url('chatalot-0.2.0.tar.gz')}#sha256={pin}")
    assert got.resolved == pin
    assert names(got.folder) == [M1, M2, M3, M4]
    assert got.folder is not None and got.folder.parent.name == "chatalot-0.2.0"
    assert (got.folder / M4).read_bytes() == FILES_B[M4]


def test_archive_with_a_wrong_pin(http: Http, tmp_path: Path) -> None:
    data = make_tar(http.root / "c.tar.gz", release())
    wrong = "0" * 64
    url = http.url("c.tar.gz")
    with pytest.raises(ChatalotError, match=(
            rf"^migrations_source '{url}#sha256={wrong}': sha256 of the downloaded archive "
            rf"is {hashlib.sha256(data).hexdigest()}, the pin says {wrong}; nothing was "
            r"applied$")):
        fetch(f"{url}#sha256={wrong}")
    assert list(archive_dir(tmp_path, url).iterdir()) == []


def test_archive_without_a_pin_is_downloaded_each_run(http: Http, tmp_path: Path) -> None:
    url = http.url("c.tar.gz")
    first = make_tar(http.root / "c.tar.gz", release("migrations/"))
    got = fetch(url)
    assert got.resolved == hashlib.sha256(first).hexdigest()
    assert got.describe() == f"{url} (sha256 {got.resolved[:16]})"
    assert names(got.folder) == [M1, M2, M3, M4]
    assert (archive_dir(tmp_path, url) / "sha256").read_text().strip() == got.resolved
    second = make_tar(http.root / "c.tar.gz", {f"migrations/{M1}": FILES_B[M1]})
    again = fetch(url)
    assert again.resolved == hashlib.sha256(second).hexdigest()
    assert names(again.folder) == [M1]


def test_pinned_archive_from_the_cache_when_the_server_is_gone(http: Http) -> None:
    data = make_tar(http.root / "c.tar.gz", release())
    text = f"{http.url('c.tar.gz')}#sha256={hashlib.sha256(data).hexdigest()}"
    fetch(text)
    http.stop()
    said: list[str] = []
    got = fetch(text, say=said.append)
    assert names(got.folder) == [M1, M2, M3, M4]
    assert said == []


def test_unpinned_archive_from_the_cache_when_the_server_is_gone(http: Http) -> None:
    data = make_tar(http.root / "c.tar.gz", release())
    url = http.url("c.tar.gz")
    fetch(url)
    http.stop()
    said: list[str] = []
    got = fetch(url, say=said.append)
    assert got.resolved == hashlib.sha256(data).hexdigest()
    assert said[0] == f"downloading {url} ..."
    assert said[1].startswith(f"using the cached c.tar.gz (sha256 {got.resolved[:16]}) of "
                              f"{url} (the download failed: ")
    with pytest.raises(ChatalotError, match=f"cannot download {http.url('other.tar.gz')}: "):
        fetch(http.url("other.tar.gz"))


def test_zip_archive(http: Http) -> None:
    make_zip(http.root / "c.zip", release("chatalot/migrations/"))
    got = fetch(http.url("c.zip"))
    assert names(got.folder) == [M1, M2, M3, M4]
    assert (got.folder or Path()).joinpath(M2).read_bytes() == FILES_B[M2]


def test_zip_leaving_its_folder_is_refused(http: Http) -> None:
    make_zip(http.root / "evil.zip", {**release("migrations/"), "../evil.sql": b"x"})
    with pytest.raises(ChatalotError, match=r"cannot extract evil\.zip: member '\.\./evil\.sql'"):
        fetch(http.url("evil.zip"))


def test_archive_subdirectory_and_missing_folder(http: Http) -> None:
    make_tar(http.root / "c.tar.gz", release("chatalot-0.2.0/db/sql/"))
    got = fetch(http.url("c.tar.gz") + "#subdirectory=db/sql")
    assert names(got.folder) == [M1, M2, M3, M4]
    with pytest.raises(ChatalotError, match=(
            r"archive c\.tar\.gz has no migrations/ folder at its top or in its single "
            r"top-level folder \(give #subdirectory=PATH\)$")):
        fetch(http.url("c.tar.gz"))


def test_http_404(http: Http) -> None:
    url = http.url("missing.tar.gz")
    with pytest.raises(ChatalotError, match=(
            rf"^migrations_source '{url}': cannot download {url}: HTTP 404 ")):
        fetch(url)


def test_file_url_archive(tmp_path: Path) -> None:
    data = make_tar(tmp_path / "r.tar.gz", release())
    got = fetch(f"file://{tmp_path / 'r.tar.gz'}")
    assert got.resolved == hashlib.sha256(data).hexdigest()
    assert names(got.folder) == [M1, M2, M3, M4]


# -- passwords ------------------------------------------------------------------------


def test_redact() -> None:
    assert redact("https://ci:s3cret@host/c.tar.gz") == "https://ci:***@host/c.tar.gz"
    assert redact("git+https://ci:s3cret@h:8443/c.git@v1#subdirectory=m") == (
        "git+https://ci:***@h:8443/c.git@v1#subdirectory=m")
    assert redact("cannot reach https://a:b@h/x and https://c:d@i/y") == (
        "cannot reach https://a:***@h/x and https://c:***@i/y")
    for kept in ("ssh://git@host/c.git@v1", "https://host:8443/c.tar.gz", "/srv/m@v1"):
        assert redact(kept) == kept


def test_archive_password_is_sent_never_shown(http: Http) -> None:
    data = make_tar(http.root / "c.tar.gz", release())
    said: list[str] = []
    got = fetch(http.url("c.tar.gz", "ci:s3cret@"), say=said.append)
    assert got.resolved == hashlib.sha256(data).hexdigest()
    assert http.seen[-1] == ("/c.tar.gz", "Basic " + base64.b64encode(b"ci:s3cret").decode())
    gone = http.url("gone.tar.gz", "ci:***@").replace("*", r"\*").replace(".", r"\.")
    with pytest.raises(ChatalotError, match=f"cannot download {gone}: HTTP 404 ") as caught:
        fetch(http.url("gone.tar.gz", "ci:s3cret@"), say=said.append)
    assert said and not any("s3cret" in line for line in [*said, str(caught.value)])


def test_git_password_is_never_shown() -> None:
    said: list[str] = []
    with pytest.raises(ChatalotError, match=r"cannot reach https://ci:\*\*\*@127\.0\.0\.1:1/"
                                            r"c\.git: ") as caught:
        fetch("git+https://ci:s3cret@127.0.0.1:1/c.git@v1", say=said.append)
    assert said and not any("s3cret" in line for line in [*said, str(caught.value)])
