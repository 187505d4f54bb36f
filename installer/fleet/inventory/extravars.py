"""Extra vars (`-e/--extra-vars`), read as ansible-core 2.19's load_extra_vars reads them.

Each option is one of: `@FILE` (a vars file: JSON or YAML, vaulted ones decrypted),
`{...}` or `[...]` (YAML or JSON text), or `key=value ...` (Ansible's parse_kv: words
split on blanks outside quotes, escapes such as `\\n` decoded, a quoted value unquoted,
every value a string; words without `=` joined into `_raw_params`). A path without `@`
is refused as Ansible refuses it. Options merge in order, later keys winning; they beat
every other variable. Not a mapping: refused.
"""

from __future__ import annotations

import codecs
import os
import re
from typing import Any

from installer.errors import InventoryError, UsageError
from installer.fleet.inventory import varsfiles
from installer.fleet.inventory.vault import VaultSecret

__all__ = ["load_extra_vars", "parse_kv"]

_HEX = "[0-9A-Fa-f]"
_ESCAPES = re.compile(
    rf"""(\\U{_HEX}{{8}}|\\u{_HEX}{{4}}|\\x{_HEX}{{2}}|\\N\{{[^}}]+\}}|\\[\\'"abfnrtv])""")


def _decode_escapes(text: str) -> str:
    return _ESCAPES.sub(lambda m: codecs.decode(m.group(0), "unicode-escape"), text)


def _quote_after(token: str, quote: str) -> str:
    """The quote still open after `token`, given the one open before it."""
    escaped = False
    for ch in token:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
    return quote


def _split(text: str) -> list[str]:
    """Words as Ansible's split_args cuts plain text: on single spaces and line ends (not
    tabs), a run of spaces kept at the end of the word before it, line ends kept, quoted
    spaces inside their word."""
    words: list[str] = []
    quote = ""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        for token in line.split(" "):
            if quote:
                words[-1] += " " + token
            elif token == "":
                if words and not words[-1].endswith("\n"):
                    words[-1] += " "
                continue
            else:
                words.append(token)
            quote = _quote_after(token, quote)
        if i < len(lines) - 1 and words:
            words[-1] += "\n"
    if quote:
        raise UsageError(f"-e {text!r}: a quote is not closed")
    return words


def _join(words: list[str]) -> str:
    """Ansible's join_args: a space between words, none after a line end."""
    out = ""
    for w in words:
        out += w if not out or out.endswith("\n") else " " + w
    return out


def _unquote(value: str) -> str:
    if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"" and value[-2] != "\\":
        return value[1:-1]
    return value


def parse_kv(text: str) -> dict[str, Any]:
    """`key=value ...` as Ansible's parse_kv reads it (every value a string)."""
    options: dict[str, Any] = {}
    raw: list[str] = []
    for word in _split(text):
        x = _decode_escapes(word)
        pos = 0
        found = False
        while True:
            pos = x.find("=", pos + 1)
            if pos < 0:
                break
            if x[pos - 1] != "\\":
                found = True
                break
        if "=" in x and not found:
            raw.append(x.replace("\\=", "="))
        elif found:
            options[x[:pos].strip()] = _unquote(x[pos + 1:].strip())
        else:
            raw.append(word)
    if raw:
        options["_raw_params"] = _join(raw)
    return options


def load_extra_vars(options: list[str], secrets: list[VaultSecret] | None = None
                    ) -> dict[str, Any]:
    """Every -e option merged, later ones winning. UsageError for a bad option (exit 5),
    InventoryError for a file that cannot be read or parsed (exit 1)."""
    merged: dict[str, Any] = {}
    for option in options:
        if not option:
            continue
        if option.startswith("@"):
            path = option[1:]
            try:
                with open(os.path.expanduser(path), encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise InventoryError(path, None, "cannot read the extra vars file: "
                                     f"{getattr(e, 'strerror', None) or e}") from None
            data = varsfiles.parse_vars_text(text, path, secrets)
        elif option[0] in "/.":
            raise UsageError(f"Please prepend extra_vars filename '{option}' with '@'")
        elif option[0] in "[{":
            data = varsfiles.parse_vars_text(option, "-e", secrets)
        else:
            data = parse_kv(option)
        if not isinstance(data, dict):
            raise UsageError(f"Invalid extra vars data supplied. '{option}' could not be made "
                             "into a dictionary")
        merged.update(data)
    return merged
