"""installer.desired.scram: SCRAM-SHA-256 verifiers, checked against RFC 5802 written out again."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from installer.desired import scram


def _independent_scram(password: bytes, salt: bytes, it: int) -> tuple[bytes, bytes]:
    # RFC 5802 written out again, independently of installer.desired.scram
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, it)
    ck = hmac.new(salted, b"Client Key", "sha256").digest()
    return hashlib.sha256(ck).digest(), hmac.new(salted, b"Server Key", "sha256").digest()


@pytest.mark.parametrize("password", ["pencil", "pä ss'\"$\\word", "x" * 200])
def test_scram_verifier_format_and_match(password: str) -> None:
    salt = b"0123456789abcdef"
    v = scram.make_verifier(password, salt=salt)
    text = str(v)
    assert text.startswith("SCRAM-SHA-256$4096:" + base64.b64encode(salt).decode() + "$")
    stored, server = _independent_scram(scram.saslprep(password), salt, 4096)
    assert (v.stored_key, v.server_key) == (stored, server)
    assert scram.matches(text, password)
    assert not scram.matches(text, password + "x")
    assert scram.parse_verifier(text) == v


@pytest.mark.parametrize("stored", [None, "", "md5abc", "SCRAM-SHA-256$bad", "plain"])
def test_scram_match_rejects_non_verifiers(stored: str | None) -> None:
    assert not scram.matches(stored, "pencil")


@pytest.mark.parametrize(
    ("password", "prepped"),
    [("pencil", b"pencil"), ("I\u00adX", b"IX"), ("\u2168", b"IX"), ("a\u00a0b", b"a b"),
     ("a\x07b", b"a\x07b")],  # RFC 4013 examples; a control char makes PostgreSQL use raw bytes
)
def test_saslprep(password: str, prepped: bytes) -> None:
    assert scram.saslprep(password) == prepped
