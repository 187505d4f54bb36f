"""The env file Chatalot reads: DATABASE_URL, pure building and parsing."""

from __future__ import annotations

import re
import secrets
from urllib.parse import quote, unquote, urlsplit

HEADER = "# Written by chatalot-db: the Chatalot server reads DATABASE_URL from this file.\n"


def database_url(user: str, password: str, host: str, port: int, database: str) -> str:
    """postgres://user:password@host:port/db with every part URL-encoded."""
    return (
        f"postgres://{quote(user, safe='')}:{quote(password, safe='')}"
        f"@{host}:{port}/{quote(database, safe='')}"
    )


def render(url: str) -> str:
    return f"{HEADER}DATABASE_URL={url}\n"


def read_url(text: str | None) -> str | None:
    """The DATABASE_URL value in an env file's text, if any."""
    if not text:
        return None
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == "DATABASE_URL":
            return value.strip().strip("'\"")
    return None


def password_from_url(url: str | None, user: str) -> str | None:
    """The (decoded) password in `url` when it is for `user`; else None."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("postgres", "postgresql"):
        return None
    if parts.username is None or unquote(parts.username) != user or parts.password is None:
        return None
    return unquote(parts.password)


def app_password(user: str, given: str | None, env_text: str | None,
                 renamed_from: str | None = None) -> tuple[str, bool]:
    """The app role's password and whether it is new: `given` (db_password) when set; else
    the one the env file's DATABASE_URL holds for `user` (or for `renamed_from`, the role's
    name before a planned rename: the role keeps its password); else a new strong one."""
    if given is not None:
        return given, False
    url = read_url(env_text)
    for name in (user, renamed_from):
        kept = password_from_url(url, name) if name is not None else None
        if kept is not None:
            return kept, False
    return secrets.token_urlsafe(32), True


def foreign(text: str | None, meta: str | None) -> str | None:
    """Why an existing env file is not one we may replace, or None (missing, or ours).

    `meta`: `stat -c '%a %U %G %F'` of the path (not following a symlink; empty: missing);
    `text`: its content when it is a regular file. Ours: a regular file of root's holding
    nothing but comments, blank lines and one postgres:// DATABASE_URL line. What is found
    is named by kind and variable names only, never by content.
    """
    fields = (meta or "").split(maxsplit=3)
    if len(fields) < 4:
        return None  # no such file: ours to create
    owner, kind = fields[1], fields[3].strip()
    if kind != "regular file":
        return f"is a {kind}, not a file chatalot-db wrote"
    if owner != "root":
        return f"belongs to {owner}, not root: not a file chatalot-db wrote"
    assigned: list[str] = []
    other_lines = 0
    for line in (text or "").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*=", stripped)
        if m:
            assigned.append(m.group(1))
        else:
            other_lines += 1
    url = read_url(text) or ""
    extra = sorted(set(assigned) - {"DATABASE_URL"})
    if "DATABASE_URL" not in assigned or not url:
        found = (f"holds {', '.join(extra[:5])} and no postgres:// DATABASE_URL" if extra
                 else "holds no postgres:// DATABASE_URL")
    elif not url.startswith(("postgres://", "postgresql://")):
        found = "holds a DATABASE_URL that is not postgres://"
    elif assigned.count("DATABASE_URL") > 1:
        found = "holds several DATABASE_URL lines"
    elif extra:
        found = f"holds {', '.join(extra[:5])} besides DATABASE_URL"
    elif other_lines:
        found = f"holds {other_lines} line(s) that are not NAME=value"
    else:
        return None
    return f"{found}: not a file chatalot-db wrote (DATABASE_URL alone)"


_URL_SECRET = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*(@)")


def mask_secrets(text: str) -> str:
    """Every password in a postgres:// URL of `text` replaced by ********."""
    return _URL_SECRET.sub(r"\1********\2", text)
