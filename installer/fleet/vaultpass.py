"""Vault passwords from where ansible-playbook takes them: `--vault-id [LABEL@]SOURCE`,
`--vault-password-file` (an executable is run), ANSIBLE_VAULT_PASSWORD_FILE and a prompt.
The I/O beside installer.fleet.inventory.vault, which only decrypts; used by the CLI's
options and by the suite's pytest options alike."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

from installer.errors import UsageError
from installer.fleet.inventory.vault import VaultSecret

#: the environment variable naming a vault password file, as Ansible reads it
VAULT_ENV = "ANSIBLE_VAULT_PASSWORD_FILE"


def read_password_source(source: str, label: str, ask: Callable[[str], str]) -> bytes:
    """A vault password from a file (trailing whitespace stripped), or the output of an
    executable file (as Ansible: stripped of line ends), or `ask` for `prompt`."""
    if source == "prompt":
        return ask(f"Vault password ({label}): ").encode()
    path = os.path.expanduser(source)
    if not os.path.isfile(path):
        raise UsageError(f"vault password file {source} does not exist (vault id {label!r})")
    if os.access(path, os.X_OK):
        r = subprocess.run([path], capture_output=True, check=False, timeout=60)
        if r.returncode != 0:
            raise UsageError(f"vault password script {source} failed (exit {r.returncode}; "
                             f"vault id {label!r})")
        secret = r.stdout.strip(b"\r\n")
    else:
        try:
            with open(path, "rb") as f:
                secret = f.read().strip()
        except OSError as e:
            raise UsageError(f"cannot read vault password file {source}: {e.strerror}"
                             ) from None
    if not secret:
        raise UsageError(f"vault password file {source} is empty (vault id {label!r})")
    return secret


def read_vault_secrets(vault_ids: list[str], password_files: list[str], *,
                       ask: Callable[[str], str], ask_vault_pass: bool = False
                       ) -> list[VaultSecret]:
    """The passwords `--vault-id [LABEL@]SOURCE`, `--vault-password-file FILE` (else
    ANSIBLE_VAULT_PASSWORD_FILE) and `--ask-vault-pass` name, labelled as Ansible labels
    them (`default` unless LABEL@), in that order. UsageError naming what cannot be read."""
    found: list[VaultSecret] = []
    for spec in vault_ids:
        label, sep, source = spec.partition("@")
        if not sep:
            label, source = "default", spec
        found.append(VaultSecret(label, read_password_source(source, label, ask)))
    files = list(password_files)
    if not files and not found and os.environ.get(VAULT_ENV):
        files = [os.environ[VAULT_ENV]]
    for source in files:
        found.append(VaultSecret("default", read_password_source(source, "default", ask)))
    if ask_vault_pass:
        found.append(VaultSecret("default", ask("Vault password: ").encode()))
    return found


__all__ = ["VAULT_ENV", "read_password_source", "read_vault_secrets"]
