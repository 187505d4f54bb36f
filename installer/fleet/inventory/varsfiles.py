"""group_vars/ and host_vars/ beside an inventory, read as ansible-core 2.19 reads them.

Ansible's `host_group_vars` vars plugin looks, for every group and host, in
`<inventory's directory>/group_vars/` and `host_vars/` (the directory's real path) for the
first of `NAME` (a file, or a folder whose files are read in sorted order, sub-folders
too), `NAME.yml`, `NAME.yaml`, `NAME.json`. In a folder, hidden names and names ending in
`~` are skipped, and only files without an extension or with one of those three are read.
A host whose name starts with `/` has none. Each file is JSON or else YAML (YAML 1.1, as
PyYAML's safe loader types it: `yes`/`no` are booleans, `0022` is 18); empty files are
skipped; files merge key by key, later files winning (Ansible's default `replace`).

Vault-encrypted files and `!vault` values are refused with a clear error naming the file:
ansible-vault is not supported yet, and a run with a password it could not read would be a
silently wrong run. Any file that cannot be read fails naming the file (and the line).
"""

from __future__ import annotations

import json
import os
from typing import Any

import yaml

from installer.errors import InventoryError
from installer.fleet.inventory.values import UntrustedStr

__all__ = ["EXTENSIONS", "find_vars_files", "inventory_basedir", "load_entity_vars",
           "parse_vars_text"]

#: what Ansible tries after the bare name (constants.YAML_FILENAME_EXTENSIONS)
EXTENSIONS = (".yml", ".yaml", ".json")

VAULT_HEADER = "$ANSIBLE_VAULT"


class _VaultTagged(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (YAML 1.1), with Ansible's two tags: `!unsafe` (a plain string
    here) and `!vault` (refused)."""


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
    raise _VaultTagged(node.start_mark.line + 1)


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


def parse_vars_text(text: str, path: str) -> Any:
    """A vars file's data: JSON if it is JSON, else YAML; InventoryError naming the file."""
    if text.lstrip().startswith(VAULT_HEADER):
        raise InventoryError(
            path, None, "encrypted with ansible-vault, which chatalot-db cannot read yet; "
            "nothing was run. Keep the secret in a file chatalot-db can read (e.g. db_password "
            "in a host_vars file readable by root only), or leave db_password unset (generated "
            "and kept in the env file)")
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.load(text, Loader=_Loader)
    except _VaultTagged as e:
        raise InventoryError(
            path, e.line, "a !vault value, which chatalot-db cannot read yet; nothing was "
            "run. Put the value in plain text in a file readable by root only, or leave it "
            "unset") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InventoryError(path, line, f"not valid YAML: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise InventoryError(path, None, f"not valid YAML: {e}") from None


def load_entity_vars(directory: str, name: str) -> dict[str, Any]:
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
        data = parse_vars_text(text, path)
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
