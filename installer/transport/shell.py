"""Shell quoting for the commands sent to a host."""

from __future__ import annotations

import shlex


def sh(*argv: str) -> str:
    """Join arguments into one shell command, each quoted."""
    return " ".join(shlex.quote(a) for a in argv)
