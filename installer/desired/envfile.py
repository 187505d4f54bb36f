"""The env file Chatalot reads: DATABASE_URL, pure building and parsing."""

from __future__ import annotations

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


def app_password(user: str, given: str | None, env_text: str | None) -> tuple[str, bool]:
    """The app role's password and whether it is new: `given` (db_password) when set; else
    the one the env file's DATABASE_URL holds for `user`; else a new strong one."""
    if given is not None:
        return given, False
    kept = password_from_url(read_url(env_text), user)
    if kept is not None:
        return kept, False
    return secrets.token_urlsafe(32), True
