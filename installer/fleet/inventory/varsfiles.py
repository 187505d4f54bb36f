"""group_vars/ and host_vars/ beside an inventory, read as ansible-core 2.19 reads them.

Ansible's `host_group_vars` vars plugin looks, for every group and host, in
`<inventory's directory>/group_vars/` and `host_vars/` (the directory's real path) for the
first of `NAME` (a file, or a folder whose files are read in sorted order, sub-folders
too), `NAME.yml`, `NAME.yaml`, `NAME.json`. In a folder, hidden names and names ending in
`~` are skipped, and only files without an extension or with one of those three are read.
A host whose name starts with `/` has none. Each file is JSON or else YAML (YAML 1.1, as
PyYAML's safe loader types it: `yes`/`no` are booleans, `0022` is 18); empty files are
skipped; files merge key by key, later files winning (Ansible's default `replace`).

Vault-encrypted files are decrypted with the secrets given (installer.fleet.inventory.vault)
and read as any other; an inline `!vault` value becomes a `VaultText`: its plaintext for
the run, its vault text for `ansible-inventory`'s views. Without a fitting secret the file
fails naming itself and the vault id, before anything runs: a run without the secret would
be a silently wrong one. Any file that cannot be read fails naming the file (and line).
"""

from __future__ import annotations

import json
import os
from typing import Any

import yaml

from installer.errors import InventoryError
from installer.fleet.inventory import vault
from installer.fleet.inventory.values import UntrustedStr
from installer.fleet.inventory.vault import VaultSecret, VaultText

__all__ = ["EXTENSIONS", "find_vars_files", "inventory_basedir", "load_entity_vars",
           "parse_vars_text"]

#: what Ansible tries after the bare name (constants.YAML_FILENAME_EXTENSIONS)
EXTENSIONS = (".yml", ".yaml", ".json")


class _VaultFailed(Exception):
    def __init__(self, line: int, why: str) -> None:
        super().__init__(why)
        self.line = line
        self.why = why


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (YAML 1.1), with Ansible's two tags: `!unsafe` (a string not to
    be templated) and `!vault` (decrypted with `vault_secrets`)."""

    vault_secrets: tuple[VaultSecret, ...] = ()


def _untrusted(value: Any) -> Any:
    if isinstance(value, str):
        return UntrustedStr(value)
    if isinstance(value, list):
        return [_untrusted(v) for v in value]
    if isinstance(value, dict):
        return {k: _untrusted(v) for k, v in value.items()}
    return value


def _unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """`!unsafe`: not to be templated; kept as a string Ansible shows as unsafe in --list."""
    if isinstance(node, yaml.ScalarNode):
        return UntrustedStr(loader.construct_scalar(node))
    if isinstance(node, yaml.SequenceNode):
        return _untrusted(loader.construct_sequence(node, deep=True))
    return _untrusted(loader.construct_mapping(node, deep=True))  # type: ignore[arg-type]


def _vault(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    secrets = list(getattr(loader, "vault_secrets", ()))
    try:
        return VaultText(vault.decrypt(text, secrets), text)
    except vault.VaultError as e:
        raise _VaultFailed(node.start_mark.line + 1, f"a !vault value {e}") from None


_Loader.add_constructor("!unsafe", _unsafe)
_Loader.add_constructor("!vault", _vault)


def find_vars_files(directory: str, name: str) -> list[str]:
    """The files Ansible reads for `name` in `directory` (DataLoader.find_vars_files)."""
    base = os.path.join(directory, name)
    for candidate in (base, *(base + ext for ext in EXTENSIONS)):
        if os.path.exists(candidate):
            if os.path.isdir(candidate):
                return _folder_files(candidate)
            return [candidate]
    return []


def _folder_files(folder: str) -> list[str]:
    found: list[str] = []
    for entry in sorted(os.listdir(folder)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        ext = os.path.splitext(entry)[1]
        path = os.path.join(folder, entry)
        if os.path.isdir(path) and not ext:
            found.extend(_folder_files(path))
        elif os.path.isfile(path) and (not ext or ext in EXTENSIONS):
            found.append(path)
    return found


def parse_vars_text(text: str, path: str, secrets: list[VaultSecret] | None = None) -> Any:
    """A vars file's data: decrypted when vaulted, then JSON if it is JSON, else YAML;
    InventoryError naming the file (and line)."""
    if vault.is_vault(text):
        try:
            text = vault.decrypt(text, list(secrets or []))
        except vault.VaultError as e:
            raise InventoryError(path, None, f"{e}; nothing was run") from None
    try:
        return json.loads(text)
    except ValueError:
        pass
    loader = _Loader(text)
    loader.vault_secrets = tuple(secrets or ())
    try:
        return loader.get_single_data()
    except _VaultFailed as e:
        raise InventoryError(path, e.line, f"{e.why}; nothing was run") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InventoryError(path, line, f"not valid YAML: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise InventoryError(path, None, f"not valid YAML: {e}") from None
    finally:
        loader.dispose()


def load_entity_vars(directory: str, name: str,
                     secrets: list[VaultSecret] | None = None) -> dict[str, Any]:
    """The variables of one group or host from `directory` (group_vars/ or host_vars/)."""
    merged: dict[str, Any] = {}
    if name.startswith(os.sep) or not os.path.isdir(directory):
        return merged
    for path in find_vars_files(directory, name):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise InventoryError(path, None, f"cannot read it: {getattr(e, 'strerror', None) or e}"
                                 ) from None
        data = parse_vars_text(text, path, secrets)
        if not data:
            continue  # an empty file
        if not isinstance(data, dict):
            raise InventoryError(path, None, "a vars file holds a mapping of names to values, "
                                 f"not a {type(data).__name__}")
        merged.update(data)
    return merged


def inventory_basedir(source: str) -> str:
    """Where group_vars/ and host_vars/ are looked for: the source's folder (real path)."""
    path = os.path.abspath(source)
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    return os.path.realpath(folder)
