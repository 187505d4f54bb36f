"""Fetch what `migrations_source` names onto the control machine (the I/O beside the pure
installer.desired.sources): a local folder of sqlx migrations, and what it resolved to.

    none       returned as it is (no folder)
    bundled    this project's reference set
    folder     a folder of this machine, or a Chatalot checkout (its `migrations/`)
    git        a bare cache repository per URL; the ref resolved with `git ls-remote`, the
               commit fetched (depth 1) and its migrations folder extracted as committed,
               byte for byte; a full commit or a tag fetched before works offline
    archive    downloaded with urllib, checked against its `#sha256=` pin, extracted; a
               pinned archive in the cache is not downloaded again

The cache is `cache_root()`:

    git/<key>/             bare repository of one URL (`url`, `tags.json` beside the objects)
    trees/<commit>/<dir>/  a commit's migrations folder, extracted
    archives/<key>/        the downloaded archive, its `sha256`, `<digest[:16]>/` extracted

A URL's password never appears in a message or a progress line (`redact`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from installer.desired.sources import (
    ARCHIVE,
    BUNDLED,
    COMMIT_RE,
    FOLDER,
    GIT,
    NONE,
    MigrationSource,
    archive_name,
    parse_source,
    redact,
)
from installer.errors import ChatalotError, MigrationError
from installer.resources import migrations_dir
from installer.sqlx import rules

#: the environment variable naming the cache folder
CACHE_ENV = "CHATALOT_DB_CACHE"
#: seconds a git command may take
GIT_TIMEOUT = 300
#: seconds an archive download may wait on the network
DOWNLOAD_TIMEOUT = 60
#: the ssh command git uses unless the user configured one: never ask on a terminal
BATCH_SSH = "ssh -o BatchMode=yes"
#: the migrations folder of a Chatalot repository or release
DEFAULT_DIR = "migrations"

#: an abbreviated commit id
_ABBREV_RE = re.compile(r"[0-9a-f]{7,39}")
#: git's advice after a failed connection, which says nothing about why
_GIT_BOILERPLATE = {
    "fatal: could not read from remote repository.",
    "please make sure you have the correct access rights",
    "and the repository exists.",
}
#: the cache repository's info/attributes: git archive gives the committed bytes, with
#: no end-of-line, encoding, filter, ident or export conversion from the tree's
#: .gitattributes (sqlx checksums the raw bytes)
_RAW_ATTRIBUTES = ("* -text !eol -ident -filter -working-tree-encoding "
                   "-export-ignore -export-subst\n")
_FULL_REFSPECS = ("+refs/heads/*:refs/remotes/cache/*", "+refs/tags/*:refs/tags/*")


def cache_root() -> Path:
    """$CHATALOT_DB_CACHE, else $XDG_CACHE_HOME/chatalot-db, else ~/.cache/chatalot-db."""
    explicit = os.environ.get(CACHE_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "chatalot-db"
    return Path.home() / ".cache" / "chatalot-db"


def _key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _place(tmp: Path, dest: Path) -> None:
    """Move the finished folder `tmp` to `dest` in one rename; when another process got
    there first, its folder is kept and `tmp` removed."""
    try:
        os.rename(tmp, dest)
    except OSError:
        if not dest.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pick(refs: dict[str, str], ref: str | None) -> tuple[str, str] | None:
    """(ref name to fetch, commit) for `ref` in an ls-remote listing: an annotated tag
    peeled, a tag, a branch, a full ref name; HEAD for None. None when nothing matches."""
    if ref is None:
        candidates = [("HEAD", "HEAD")]
    else:
        candidates = [(f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"),
                      (f"refs/tags/{ref}", f"refs/tags/{ref}"),
                      (f"refs/heads/{ref}", f"refs/heads/{ref}")]
        if ref.startswith("refs/"):
            candidates += [(f"{ref}^{{}}", ref), (ref, ref)]
    for listed, refname in candidates:
        if listed in refs:
            return refname, refs[listed]
    return None


def _holds_migration(folder: Path) -> bool:
    """Whether `folder` directly holds a regular file sqlx takes for a migration."""
    for entry in folder.iterdir():
        try:
            if entry.is_file() and rules.parse_filename(entry.name) is not None:
                return True
        except MigrationError:
            continue
    return False


class _GitFailed(Exception):
    """A git command exited non-zero or timed out; `reason` is what git said last."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _git_reason(stderr: bytes, returncode: int) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    useful = [ln for ln in lines if ln.lower() not in _GIT_BOILERPLATE]
    if useful:
        return redact(useful[-1])
    return redact(lines[-1]) if lines else f"git exited with {returncode}"


class _DownloadFailed(Exception):
    """The archive could not be downloaded; `reason` says why (redacted)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SourceFetcher:
    """Fetches migration sources into `cache` (default `cache_root()`), each source text
    once for the fetcher's life: every host of one run gets the same commit or archive,
    even if a tag moves meanwhile. Safe to share between threads. `say` gets one short
    progress line per network action."""

    def __init__(self, cache: Path | None = None, *,
                 say: Callable[[str], None] | None = None) -> None:
        self.cache = cache if cache is not None else cache_root()
        self._say: Callable[[str], None] = say if say is not None else (lambda _line: None)
        self._lock = threading.Lock()
        self._done: dict[str, MigrationSource | ChatalotError] = {}
        self._env: dict[str, str] | None = None

    def fetch(self, source: MigrationSource) -> MigrationSource:
        """`source` with `folder` (a local folder of sqlx migrations) and `resolved` (the
        commit of a git source, the sha256 of an archive) filled in; none is returned as
        it is. ChatalotError naming the source when it cannot be fetched or holds no
        usable migrations (a failure is remembered like a success)."""
        if source.kind == NONE:
            return source
        with self._lock:
            done = self._done.get(source.text)
            if done is None:
                try:
                    done = self._fetch(source)
                except ChatalotError as e:
                    done = e
                except _GitFailed as e:  # a local git command on the cache failed
                    done = ChatalotError(f"migrations_source '{redact(source.text)}': git "
                                         f"failed in the cache {self.cache}: {e.reason}")
                self._done[source.text] = done
        if isinstance(done, ChatalotError):
            raise done.with_traceback(None)
        return done

    # -- the kinds ------------------------------------------------------------------

    def _fetch(self, source: MigrationSource) -> MigrationSource:
        if source.kind == BUNDLED:
            try:
                folder = migrations_dir()
            except FileNotFoundError as e:
                raise ChatalotError(str(e)) from None
            fetched = source.fetched(folder)
        elif source.kind == FOLDER:
            fetched = source.fetched(self._folder(source))
        elif source.kind == GIT:
            fetched = self._git_source(source)
        elif source.kind == ARCHIVE:
            fetched = self._archive_source(source)
        else:
            raise ChatalotError(f"migrations_source '{redact(source.text)}': unknown kind "
                                f"{source.kind!r}")
        assert fetched.folder is not None
        self._check_migrations(source, fetched.folder)
        return fetched

    def _folder(self, source: MigrationSource) -> Path:
        """The folder a folder source names (absolute), or the `migrations/` of a
        checkout's root given instead."""
        folder = Path(source.text).expanduser()
        if not folder.is_dir():
            raise ChatalotError(
                f"migrations_source '{redact(source.text)}' is not a folder on this (the "
                "control) machine; give the migrations folder of your Chatalot release, a "
                "git+URL@REF, a release archive URL, or none to leave migrations to the "
                "Chatalot server")
        folder = folder.resolve()
        inner = folder / DEFAULT_DIR
        if not _holds_migration(folder) and inner.is_dir():
            return inner
        return folder

    def _check_migrations(self, source: MigrationSource, folder: Path) -> None:
        """ChatalotError unless `folder` holds a consistent, non-empty set of migrations."""
        shown = redact(source.text)
        try:
            found = rules.load_migrations(folder)
        except MigrationError as e:
            raise ChatalotError(f"migrations_source '{shown}': {e}") from None
        if not found:
            raise ChatalotError(f"migrations_source '{shown}': no sqlx migrations in {folder}")

    # -- git ------------------------------------------------------------------------

    def _git_env(self) -> dict[str, str]:
        """The environment git runs in: never a prompt, C messages, and ssh in batch mode
        unless the user chose an ssh command (GIT_SSH_COMMAND, GIT_SSH, core.sshCommand)."""
        if self._env is None:
            env = dict(os.environ)
            env["GIT_TERMINAL_PROMPT"] = "0"
            env["LC_ALL"] = "C"
            if not env.get("GIT_SSH_COMMAND") and not env.get("GIT_SSH"):
                self.cache.mkdir(parents=True, exist_ok=True)
                try:
                    configured = subprocess.run(
                        ["git", "config", "--get", "core.sshCommand"], env=env,
                        stdin=subprocess.DEVNULL, capture_output=True, check=False,
                        timeout=GIT_TIMEOUT, cwd=self.cache).stdout.strip()
                except (OSError, subprocess.TimeoutExpired):
                    configured = b""
                if not configured:
                    env["GIT_SSH_COMMAND"] = BATCH_SSH
            self._env = env
        return self._env

    def _git(self, args: Sequence[str], repo: Path | None = None) -> bytes:
        """Run git (never a shell, line ends never converted) on the cache repository
        `repo`; its stdout, or _GitFailed."""
        argv = ["git", "-c", "core.autocrlf=false", "-c", "core.eol=lf"]
        if repo is not None:
            argv += ["--git-dir", str(repo)]
        self.cache.mkdir(parents=True, exist_ok=True)
        env = self._git_env()
        try:
            r = subprocess.run([*argv, *args], env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, check=False, timeout=GIT_TIMEOUT,
                               cwd=self.cache)
        except FileNotFoundError:
            raise ChatalotError("git is not installed on this (the control) machine; it is "
                                "needed for a git+ migrations_source") from None
        except subprocess.TimeoutExpired:
            raise _GitFailed(f"git {args[0]} timed out after {GIT_TIMEOUT} s") from None
        if r.returncode != 0:
            raise _GitFailed(_git_reason(r.stderr, r.returncode))
        return r.stdout

    def _git_ok(self, args: Sequence[str], repo: Path) -> bool:
        try:
            self._git(args, repo)
        except _GitFailed:
            return False
        return True

    def _repo(self, url: str) -> Path:
        return self.cache / "git" / _key(url)

    def _open_repo(self, repo: Path, url: str, hash_length: int) -> None:
        """Create the bare cache repository of `url` unless it exists (SHA-256 objects
        when the remote's ids are 64 hex digits), with raw-bytes info/attributes."""
        if not (repo / "HEAD").is_file():
            repo.parent.mkdir(parents=True, exist_ok=True)
            fmt = ["--object-format=sha256"] if hash_length == 64 else []
            try:
                self._git(["init", "--bare", "-q", *fmt, str(repo)])
            except _GitFailed as e:
                raise ChatalotError(f"cannot create the git cache {repo}: {e.reason}") from None
        attributes = repo / "info" / "attributes"
        if not attributes.is_file() or attributes.read_text(encoding="utf-8") != _RAW_ATTRIBUTES:
            attributes.parent.mkdir(exist_ok=True)
            _write_atomic(attributes, _RAW_ATTRIBUTES)
        if not (repo / "url").is_file():
            _write_atomic(repo / "url", redact(url) + "\n")

    def _has_commit(self, repo: Path, commit: str) -> bool:
        return (repo / "HEAD").is_file() and self._git_ok(
            ["cat-file", "-e", f"{commit}^{{commit}}"], repo)

    def _tags(self, repo: Path) -> dict[str, str]:
        try:
            data = json.loads((repo / "tags.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def _record_tag(self, repo: Path, tag: str, commit: str) -> None:
        tags = self._tags(repo)
        if tags.get(tag) != commit:
            tags[tag] = commit
            _write_atomic(repo / "tags.json", json.dumps(tags, indent=1, sort_keys=True) + "\n")

    def _git_source(self, source: MigrationSource) -> MigrationSource:
        url, ref = source.url, source.ref
        repo = self._repo(url)
        if ref is not None and COMMIT_RE.fullmatch(ref):
            commit = ref
            if not self._has_commit(repo, commit):
                self._open_repo(repo, url, len(commit))
                self._fetch_commit(source, repo, commit)
        else:
            self._say(f"looking up {ref or 'HEAD'} in {redact(url)} ...")
            try:
                listing = self._git(["ls-remote", url])
            except _GitFailed as e:
                commit = self._offline_tag(source, repo, e.reason)
            else:
                commit = self._resolve(source, repo, listing)
        folder = self._extract(source, repo, commit)
        return source.fetched(folder, commit)

    def _unreachable(self, source: MigrationSource, reason: str) -> ChatalotError:
        return ChatalotError(f"migrations_source '{redact(source.text)}': cannot reach "
                             f"{redact(source.url)}: {reason}")

    def _unknown_ref(self, source: MigrationSource) -> ChatalotError:
        return ChatalotError(f"migrations_source '{redact(source.text)}': no tag, branch or "
                             f"commit '{source.ref or 'HEAD'}' in {redact(source.url)}")

    def _offline_tag(self, source: MigrationSource, repo: Path, reason: str) -> str:
        """The commit a tag had when it was last fetched, if the cache still holds it (the
        repository cannot be reached); a branch or an unknown tag cannot be had."""
        commit = self._tags(repo).get(source.ref or "") if source.ref else None
        if commit is None or not self._has_commit(repo, commit):
            raise self._unreachable(source, reason)
        self._say(f"using the cached commit {commit[:12]} of {redact(source.text)} (the "
                  f"repository cannot be reached: {reason})")
        return commit

    def _resolve(self, source: MigrationSource, repo: Path, listing: bytes) -> str:
        """The commit `source.ref` names in the remote's `ls-remote` listing, fetched into
        the cache repository."""
        refs: dict[str, str] = {}
        for line in listing.decode("utf-8", "replace").splitlines():
            oid, _, name = line.partition("\t")
            if oid and name:
                refs[name.strip()] = oid.strip()
        hash_length = len(next(iter(refs.values()), "0" * 40))
        ref = source.ref
        picked = _pick(refs, ref)
        if picked is None:
            if ref is None or not _ABBREV_RE.fullmatch(ref):
                raise self._unknown_ref(source)
            self._open_repo(repo, source.url, hash_length)
            self._fetch_all(source, repo)
            try:
                out = self._git(["rev-parse", "--verify", "-q", f"{ref}^{{commit}}"], repo)
            except _GitFailed:
                raise self._unknown_ref(source) from None
            return out.decode().strip()
        refname, commit = picked
        self._open_repo(repo, source.url, len(commit))
        if not self._has_commit(repo, commit):
            self._say(f"fetching {redact(source.text)} (commit {commit[:12]}) ...")
            try:
                self._git(["fetch", "-q", "--depth", "1", source.url, refname], repo)
            except _GitFailed as e:
                raise self._unreachable(source, e.reason) from None
            if not self._has_commit(repo, commit):  # the ref moved since ls-remote
                self._fetch_commit(source, repo, commit)
        if refname.startswith("refs/tags/"):
            self._record_tag(repo, refname[len("refs/tags/"):], commit)
        return commit

    def _fetch_commit(self, source: MigrationSource, repo: Path, commit: str) -> None:
        """Fetch `commit` by its id; when the server refuses an id by itself, fetch every
        branch and tag and look for it there."""
        self._say(f"fetching {redact(source.text)} (commit {commit[:12]}) ...")
        if self._git_ok(["fetch", "-q", "--depth", "1", source.url, commit], repo) and (
                self._has_commit(repo, commit)):
            return
        self._fetch_all(source, repo)
        if not self._has_commit(repo, commit):
            raise self._unknown_ref(source)

    def _fetch_all(self, source: MigrationSource, repo: Path) -> None:
        """Fetch the remote's branches and tags with their whole history."""
        self._say(f"fetching all branches and tags of {redact(source.url)} ...")
        shallow = self._git(["rev-parse", "--is-shallow-repository"], repo).strip() == b"true"
        try:
            self._git(["fetch", "-q", *(["--unshallow"] if shallow else []), source.url,
                       *_FULL_REFSPECS], repo)
        except _GitFailed as e:
            raise self._unreachable(source, e.reason) from None

    def _extract(self, source: MigrationSource, repo: Path, commit: str) -> Path:
        """The migrations folder of `commit`, extracted (once) as committed under
        trees/<commit>/ (trees/<commit>-<key>/ for a #subdirectory= other than the
        default, so that one tree never holds two folders of one commit)."""
        wanted = source.subdirectory or DEFAULT_DIR
        name = commit if wanted == DEFAULT_DIR else f"{commit}-{_key(wanted)[:8]}"
        tree = self.cache / "trees" / name
        if (tree / wanted).is_dir():
            return tree / wanted
        listed = self._git(["ls-tree", "-d", "-z", commit, "--", wanted], repo)
        if not any(entry.partition(b"\t")[2] == wanted.encode()
                   for entry in listed.split(b"\0")):
            raise ChatalotError(f"migrations_source '{redact(source.text)}': commit "
                                f"{commit[:12]} has no {wanted}/ folder (give "
                                "#subdirectory=PATH)")
        try:
            data = self._git(["archive", "--format=tar", commit, "--", wanted], repo)
        except _GitFailed as e:
            raise ChatalotError(f"migrations_source '{redact(source.text)}': git archive of "
                                f"commit {commit[:12]} failed: {e.reason}") from None
        tree.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=tree.parent, prefix=".tmp-"))
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ChatalotError(f"migrations_source '{redact(source.text)}': cannot extract "
                                f"commit {commit[:12]}: {e}") from None
        _place(tmp, tree)
        return tree / wanted

    # -- archives -------------------------------------------------------------------

    def _archive_source(self, source: MigrationSource) -> MigrationSource:
        shown = redact(source.text)
        folder = self.cache / "archives" / _key(source.url)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / archive_name(source.url)
        pin = source.sha256
        if pin is not None and path.is_file() and _file_digest(path) == pin:
            digest = pin
        else:
            self._say(f"downloading {redact(source.url)} ...")
            try:
                digest = self._download(source, path)
            except _DownloadFailed as e:
                if pin is not None or not path.is_file():
                    raise ChatalotError(f"migrations_source '{shown}': cannot download "
                                        f"{redact(source.url)}: {e.reason}") from None
                digest = _file_digest(path)
                self._say(f"using the cached {path.name} (sha256 {digest[:16]}) of {shown} "
                          f"(the download failed: {e.reason})")
        root = self._unpack(source, path, folder / digest[:16])
        return source.fetched(self._archive_folder(source, root, path.name), digest)

    def _download(self, source: MigrationSource, path: Path) -> str:
        """Download the archive to `path` (through a temporary file beside it) and return
        its sha256; a digest that is not the pin leaves nothing behind."""
        parts = urlsplit(source.url)
        url = source.url
        request_headers: dict[str, str] = {}
        if parts.username is not None or parts.password is not None:
            host = parts.hostname or ""
            netloc = f"[{host}]" if ":" in host else host
            if parts.port is not None:
                netloc += f":{parts.port}"
            url = parts._replace(netloc=netloc).geturl()
            token = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            request_headers["Authorization"] = "Basic " + base64.b64encode(
                token.encode("utf-8")).decode("ascii")
        request = urllib.request.Request(url, headers={"User-Agent": "chatalot-db"})
        for name, value in request_headers.items():
            request.add_unredirected_header(name, value)  # not sent on to a redirect's host
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".download-")
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
                        for chunk in iter(lambda: response.read(1 << 16), b""):
                            digest.update(chunk)
                            out.write(chunk)
                except urllib.error.HTTPError as e:
                    raise _DownloadFailed(f"HTTP {e.code} {redact(str(e.reason))}") from None
                except urllib.error.URLError as e:
                    raise _DownloadFailed(redact(str(e.reason))) from None
                except (OSError, ValueError) as e:
                    raise _DownloadFailed(redact(str(e) or type(e).__name__)) from None
            got = digest.hexdigest()
            if source.sha256 is not None and got != source.sha256:
                raise ChatalotError(
                    f"migrations_source '{redact(source.text)}': sha256 of the downloaded "
                    f"archive is {got}, the pin says {source.sha256}; nothing was applied")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _write_atomic(path.parent / "sha256", got + "\n")
        return got

    def _unpack(self, source: MigrationSource, archive: Path, dest: Path) -> Path:
        """`archive` extracted (once) into `dest`."""
        if dest.is_dir():
            return dest
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".tmp-"))
        try:
            if archive.name.lower().endswith(".zip"):
                _unzip(archive, tmp)
            else:
                with tarfile.open(archive, "r:*") as tar:
                    tar.extractall(tmp, filter="data")
        except (tarfile.TarError, zipfile.BadZipFile, OSError, ValueError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ChatalotError(f"migrations_source '{redact(source.text)}': cannot extract "
                                f"{archive.name}: {e}") from None
        _place(tmp, dest)
        return dest

    def _archive_folder(self, source: MigrationSource, root: Path, name: str) -> Path:
        """The migrations folder of an extracted archive: `#subdirectory=` or
        `migrations/`, at the top or in the archive's single top-level folder."""
        wanted = source.subdirectory or DEFAULT_DIR
        if (root / wanted).is_dir():
            return root / wanted
        tops = [p for p in root.iterdir() if p.name != "__MACOSX"]
        if len(tops) == 1 and (tops[0] / wanted).is_dir():
            return tops[0] / wanted
        raise ChatalotError(f"migrations_source '{redact(source.text)}': archive {name} has "
                            f"no {wanted}/ folder at its top or in its single top-level "
                            "folder (give #subdirectory=PATH)")


def _unzip(archive: Path, dest: Path) -> None:
    """Extract a zip file, refusing absolute member paths and `..`."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if (name.startswith(("/", "\\")) or ".." in parts
                    or (parts and re.fullmatch(r"[A-Za-z]:", parts[0]))):
                raise ValueError(f"member {name!r} would land outside the archive's folder")
        zf.extractall(dest)


__all__ = ["CACHE_ENV", "SourceFetcher", "cache_root", "redact"]


def fetch_migration_sources(hosts: Mapping[str, Mapping[str, Any]],
                            say: Callable[[str], None] | None = None,
                            fetcher: SourceFetcher | None = None) -> dict[str, dict[str, Any]]:
    """Each host's variables with `migrations_source` fetched (a MigrationSource with its
    folder, and for git the commit, for an archive the digest): once per distinct source,
    so every host of the run gets the same commit. ChatalotError naming the source when
    one cannot be fetched: the run stops before any host is contacted. A value that is not
    a source is left for the host's check of its variables to name."""
    fetcher = fetcher or SourceFetcher(say=say)
    out: dict[str, dict[str, Any]] = {}
    for name, hostvars in hosts.items():
        value = hostvars.get("migrations_source", NONE)
        if isinstance(value, MigrationSource):
            out[name] = dict(hostvars)
            continue
        try:
            parsed = parse_source(value)
        except ChatalotError:
            out[name] = dict(hostvars)
            continue
        out[name] = {**hostvars, "migrations_source": fetcher.fetch(parsed)}
    return out
