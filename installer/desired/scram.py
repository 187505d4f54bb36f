"""SCRAM-SHA-256 verifiers, computed on the control side.

The role's password is set as a verifier (what PostgreSQL itself stores in
pg_authid), so the plaintext never reaches the host's argv, logs or the
server's statement log. `matches()` checks a stored verifier against a
password offline, which is how drift (a changed password) is detected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata
from dataclasses import dataclass

ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def saslprep(password: str) -> bytes:
    """Normalise a password as PostgreSQL's pg_saslprep does.

    Where SASLprep fails (prohibited characters), PostgreSQL uses the raw
    bytes; so do we.
    """
    raw = password.encode("utf-8")
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c
        for c in password
        if not stringprep.in_table_b1(c)
    )
    norm = unicodedata.normalize("NFKC", mapped)
    if not norm:
        return raw
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21,
        stringprep.in_table_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    for c in norm:
        if any(test(c) for test in prohibited):
            return raw
    has_randal = any(stringprep.in_table_d1(c) for c in norm)
    if has_randal:
        if any(stringprep.in_table_d2(c) for c in norm):
            return raw
        if not (stringprep.in_table_d1(norm[0]) and stringprep.in_table_d1(norm[-1])):
            return raw
    return norm.encode("utf-8")


@dataclass(frozen=True)
class Verifier:
    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def __str__(self) -> str:
        b64 = base64.b64encode
        return (
            f"SCRAM-SHA-256${self.iterations}:{b64(self.salt).decode()}"
            f"${b64(self.stored_key).decode()}:{b64(self.server_key).decode()}"
        )


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def make_verifier(
    password: str, salt: bytes | None = None, iterations: int = ITERATIONS
) -> Verifier:
    """Compute a SCRAM-SHA-256 verifier for `password` (random 16-byte salt by default)."""
    salt = os.urandom(16) if salt is None else salt
    stored, server = _keys(password, salt, iterations)
    return Verifier(iterations, salt, stored, server)


def parse_verifier(text: str) -> Verifier | None:
    """Parse `SCRAM-SHA-256$iter:salt$stored:server`; None for anything else (md5, NULL)."""
    try:
        scheme, rest = text.split("$", 1)
        if scheme != "SCRAM-SHA-256":
            return None
        iter_salt, keys = rest.split("$", 1)
        it, salt = iter_salt.split(":", 1)
        stored, server = keys.split(":", 1)
        return Verifier(
            int(it), base64.b64decode(salt), base64.b64decode(stored), base64.b64decode(server)
        )
    except ValueError:
        return None


def matches(stored: str | None, password: str) -> bool:
    """True when `stored` (pg_authid.rolpassword) is a SCRAM verifier of `password`."""
    if not stored:
        return False
    v = parse_verifier(stored)
    if v is None:
        return False
    stored_key, server_key = _keys(password, v.salt, v.iterations)
    return hmac.compare_digest(stored_key, v.stored_key) and hmac.compare_digest(
        server_key, v.server_key
    )
