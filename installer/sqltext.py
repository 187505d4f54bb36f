"""Quoting for SQL text sent to psql: identifiers as identifiers, values as literals."""

from __future__ import annotations

import re

from installer.errors import UsageError

# A plain identifier: what users expect a role or database name to be. Quoted anyway.
_PLAIN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def validate_identifier(value: object, what: str) -> str:
    """Return `value` if it is a plain lower-case SQL identifier, else raise UsageError."""
    if not isinstance(value, str) or not _PLAIN.match(value):
        raise UsageError(
            f"{what} {value!r} is not a plain identifier: use 1-63 characters from a-z, 0-9 "
            "and '_', not starting with a digit"
        )
    return value


def quote_ident(name: str) -> str:
    """Quote an identifier: "name" with embedded quotes doubled."""
    if "\x00" in name:
        raise ValueError("identifier contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string literal for standard_conforming_strings=on (the default since 9.1).

    Backslashes are kept literal by writing the E'' form only when needed.
    """
    if "\x00" in value:
        raise ValueError("literal contains a NUL byte")
    body = value.replace("'", "''")
    if "\\" in value:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return "'" + body + "'"
