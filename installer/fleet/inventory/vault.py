"""ansible-vault's format 1.1 and 1.2 (AES256), decrypted as ansible-core decrypts it.

A vault text is a header `$ANSIBLE_VAULT;1.1;AES256` (1.2 adds `;<vault id>`) and hex
lines. They decode to three hex strings separated by newlines: salt, HMAC, ciphertext.
PBKDF2-HMAC-SHA256 over the password with that salt, 10000 iterations, gives 80 bytes:
the AES-256 key, the HMAC-SHA256 key and the CTR counter block. The HMAC of the ciphertext
is checked before anything is decrypted; the plaintext was PKCS7-padded. The crypto is the
`cryptography` library's, never our own.

Secrets are tried as Ansible tries them: the one whose label is the text's vault id
first, then every other. Nothing here reads a password: the caller gives `VaultSecret`s
(installer.commands.targets reads them from files, scripts or the terminal). Errors
never show ciphertext or plaintext.
"""

from __future__ import annotations

import binascii
import hmac
from dataclasses import dataclass, field
from hashlib import sha256

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

__all__ = ["HEADER", "VaultError", "VaultSecret", "VaultText", "decrypt", "is_vault",
           "vault_id_of"]

HEADER = "$ANSIBLE_VAULT"


@dataclass(frozen=True)
class VaultSecret:
    """A vault password and its label (`default` unless --vault-id says LABEL@source)."""

    label: str
    password: bytes = field(repr=False)


class VaultError(Exception):
    """The text could not be decrypted; the message says why, never showing the data."""


class VaultText(str):
    """An inline `!vault` value: the decrypted plaintext, which is what the run uses, and
    the vault text it came from, which is what `ansible-inventory` shows for it."""

    __slots__ = ("vaulttext",)
    vaulttext: str

    def __new__(cls, plaintext: str, vaulttext: str) -> VaultText:
        obj = super().__new__(cls, plaintext)
        obj.vaulttext = vaulttext
        return obj

    def __reduce__(self) -> tuple[type[VaultText], tuple[str, str]]:  # copy, deepcopy
        return VaultText, (str(self), self.vaulttext)


def is_vault(text: str) -> bool:
    return text.lstrip().startswith(HEADER + ";")


def _envelope(text: str) -> tuple[str, str | None, bytes]:
    lines = text.strip().splitlines()
    header = [p.strip() for p in lines[0].strip().split(";")]
    if len(header) < 3 or header[0] != HEADER:
        raise VaultError("not an ansible-vault text (bad header)")
    vault_id = header[3] if len(header) >= 4 and header[3] else None
    return header[2], vault_id, "".join(line.strip() for line in lines[1:]).encode()


def vault_id_of(text: str) -> str | None:
    """The vault id a 1.2 header names (None for 1.1)."""
    return _envelope(text)[1]


def _keys(password: bytes, salt: bytes) -> tuple[bytes, bytes, bytes]:
    derived = PBKDF2HMAC(algorithm=hashes.SHA256(), length=80, salt=salt,
                         iterations=10000).derive(password)
    return derived[:32], derived[32:64], derived[64:80]


def _try(body: bytes, secret: VaultSecret) -> bytes | None:
    try:
        salt_hex, mac_hex, cipher_hex = binascii.unhexlify(body).split(b"\n", 2)
        salt, ciphertext = binascii.unhexlify(salt_hex), binascii.unhexlify(cipher_hex)
        expected = binascii.unhexlify(mac_hex.strip())
    except (ValueError, binascii.Error):
        raise VaultError("the vault text is damaged (not the hex Ansible writes)") from None
    key, mac_key, counter = _keys(secret.password, salt)
    if not hmac.compare_digest(hmac.new(mac_key, ciphertext, sha256).digest(), expected):
        return None  # not this password
    decryptor = Cipher(algorithms.AES(key), modes.CTR(counter)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise VaultError("the vault text is damaged (bad padding)") from None


def decrypt(text: str, secrets: list[VaultSecret]) -> str:
    """The plaintext of a vault text; VaultError naming the vault id when no secret fits."""
    cipher, vault_id, body = _envelope(text)
    label = f"vault id {vault_id!r}" if vault_id else "format 1.1, vault id 'default'"
    if cipher != "AES256":
        raise VaultError(f"cipher {cipher!r} is not one ansible-vault writes ({label})")
    if not secrets:
        raise VaultError(f"encrypted with ansible-vault ({label}) and no vault password was "
                         "given: use --vault-password-file FILE, --vault-id [LABEL@]SOURCE, "
                         "--ask-vault-pass or ANSIBLE_VAULT_PASSWORD_FILE")
    ordered = ([s for s in secrets if s.label == vault_id]
               + [s for s in secrets if s.label != vault_id])
    for secret in ordered:
        plain = _try(body, secret)
        if plain is not None:
            try:
                return plain.decode("utf-8")
            except UnicodeDecodeError:
                raise VaultError(f"decrypted ({label}) but not UTF-8 text") from None
    tried = ", ".join(dict.fromkeys(s.label for s in ordered))
    raise VaultError(f"no vault password given fits ({label}; tried {tried})")
