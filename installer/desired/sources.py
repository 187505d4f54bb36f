"""What `migrations_source` names, read from its text alone (pure; fetching is
installer.fleet.sources).

    none | (empty)                         migrations left to the Chatalot server
    bundled                                this project's reference set (`migrations/`)
    /srv/chatalot/migrations               a folder of sqlx migrations on the control machine
    /src/chatalot                          a Chatalot checkout (its `migrations/` is used)
    git+https://host/owner/chatalot.git@v0.19.0
    git+ssh://git@host/owner/chatalot.git@<commit>
    git+file:///srv/chatalot.git@main      a git repository at a tag, branch or commit
    https://host/chatalot-0.19.0.tar.gz#sha256=<hex>
                                           a release archive (.tar.gz, .tgz, .tar.xz,
                                           .tar.bz2, .tar, .zip), its digest pinned

Git and archive forms take `#subdirectory=PATH` (pip's spelling) when the migrations are
not in `migrations/` at the root; an archive's single top folder is looked through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from installer.errors import UsageError

#: the kinds of source
NONE, BUNDLED, FOLDER, GIT, ARCHIVE = "none", "bundled", "folder", "git", "archive"

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar", ".zip")
#: a full commit id (SHA-1 or SHA-256 repositories)
COMMIT_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_REF_RE = re.compile(r"[A-Za-z0-9._/+-]+")
_SUBDIR_RE = re.compile(r"[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*")
#: `scheme://user:password@` in a URL or a text holding one
_USERINFO_RE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*):[^/@\s]*@")


def redact(url: str) -> str:
    """`url` (or any text holding URLs) with each URL's password replaced by `***`:
    `https://user:***@host/x`; a user name alone (`ssh://git@host`) stays."""
    return _USERINFO_RE.sub(r"\g<head>:***@", url)


@dataclass(frozen=True)
class MigrationSource:
    """A parsed `migrations_source`; `folder` and `resolved` are filled in once fetched.

    `text` is the value as given (with any `#sha256=` pin), `url` the git or archive URL
    (without `git+`, the ref and the fragment), `ref` the git ref (None: the remote's
    default branch), `subdirectory` the migrations folder inside the repository or archive.
    """

    kind: str
    text: str
    url: str = ""
    ref: str | None = None
    subdirectory: str | None = None
    sha256: str | None = None
    #: the local folder holding the migrations (None until fetched; always None for none)
    folder: Path | None = field(default=None, compare=False)
    #: what was fetched: the commit of a git source, the sha256 of an archive
    resolved: str | None = field(default=None, compare=False)

    @property
    def remote(self) -> bool:
        return self.kind in (GIT, ARCHIVE)

    def fetched(self, folder: Path, resolved: str | None = None) -> MigrationSource:
        return replace(self, folder=folder, resolved=resolved)

    def describe(self) -> str:
        """How reasons, reports and `migrate info` name it: the source and what it
        resolved to (`git+https://h/c.git@v0.19.0 (commit 1a2b3c4d5e6f)`)."""
        if self.kind == BUNDLED:
            return "the bundled reference migrations"
        text = redact(self.text)
        if self.kind == GIT and self.resolved:
            return f"{text} (commit {self.resolved[:12]})"
        if self.kind == ARCHIVE and self.resolved and not self.sha256:
            return f"{text} (sha256 {self.resolved[:16]})"
        return text


def parse_source(value: object) -> MigrationSource:
    """The source `value` names (see the module's table). UsageError naming the value when
    it cannot be one. A folder is not looked at here."""
    text = "" if value is None else str(value).strip()
    if text.lower() in ("", NONE):
        return MigrationSource(NONE, NONE)
    if text.lower() == BUNDLED:
        return MigrationSource(BUNDLED, BUNDLED)
    if text.startswith("git+"):
        return _git(text)
    scheme = urlsplit(text).scheme.lower()
    if scheme in ("http", "https", "file") and "://" in text:
        return _archive(text)
    if "://" in text:
        raise UsageError(f"migrations_source {redact(text)!r}: {scheme}:// is not a source; give a "
                         "folder, git+URL@REF or an https:// release archive")
    return MigrationSource(FOLDER, text)


def _fragment(text: str, fragment: str, allowed: tuple[str, ...]) -> dict[str, str]:
    pairs = parse_qsl(fragment, keep_blank_values=True) if fragment else []
    out: dict[str, str] = {}
    for key, val in pairs:
        if key not in allowed or key in out or not val:
            raise UsageError(f"migrations_source {redact(text)!r}: #{fragment} is not understood; "
                             f"the fragment takes {' and '.join(k + '=' for k in allowed)}")
        out[key] = val
    sub = out.get("subdirectory")
    if sub is not None and (sub.startswith("/") or not _SUBDIR_RE.fullmatch(sub.rstrip("/"))
                            or ".." in sub.split("/")):
        raise UsageError(f"migrations_source {redact(text)!r}: subdirectory {sub!r} must be a "
                         "relative path inside the repository or archive")
    return out


def _git(text: str) -> MigrationSource:
    rest, _, fragment = text[len("git+"):].partition("#")
    extra = _fragment(text, fragment, ("subdirectory",))
    parts = urlsplit(rest)
    if parts.scheme not in ("https", "http", "ssh", "file", "git") or "://" not in rest:
        raise UsageError(f"migrations_source {redact(text)!r}: a git source is git+https://, "
                         "git+ssh://, git+file:// or git+git:// followed by the repository "
                         "and @REF (a tag, branch or commit)")
    path, at, ref = parts.path.rpartition("@")
    if not at:  # no ref: the remote's default branch
        path, ref = parts.path, ""
    if at and (not ref or not _REF_RE.fullmatch(ref) or ref.startswith(("-", "/"))
               or ".." in ref or ref.endswith((".lock", "/"))):
        raise UsageError(f"migrations_source {redact(text)!r}: {ref!r} is not a git ref (a tag, "
                         "branch or commit)")
    if not path.strip("/") and parts.scheme != "file":
        raise UsageError(f"migrations_source {redact(text)!r}: no repository path in the URL")
    url = parts._replace(path=path, fragment="").geturl()
    return MigrationSource(GIT, text, url=url, ref=ref or None,
                           subdirectory=(extra.get("subdirectory") or "").strip("/") or None)


def _archive(text: str) -> MigrationSource:
    parts = urlsplit(text)
    extra = _fragment(text, parts.fragment, ("sha256", "subdirectory"))
    url = parts._replace(fragment="").geturl()
    if not parts.path.lower().endswith(ARCHIVE_SUFFIXES):
        raise UsageError(f"migrations_source {redact(text)!r}: a URL source is a release archive "
                         f"({', '.join(ARCHIVE_SUFFIXES)}); a git repository is git+URL@REF")
    pin = extra.get("sha256")
    if pin is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", pin):
        raise UsageError(f"migrations_source {redact(text)!r}: sha256= takes the archive's 64 hex "
                         "digits")
    return MigrationSource(ARCHIVE, text, url=url, sha256=pin.lower() if pin else None,
                           subdirectory=(extra.get("subdirectory") or "").strip("/") or None)


def archive_name(url: str) -> str:
    """The archive's file name from its URL (`chatalot-0.19.0.tar.gz`)."""
    return urlsplit(url).path.rstrip("/").rpartition("/")[2] or "archive"
