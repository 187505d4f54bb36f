"""Value typing: what Python value an INI inventory value becomes, as in ansible-core 2.19.

Ansible's ini plugin hands every value to `ast.literal_eval`: a Python literal
becomes that value, anything else stays the string as written. Tuples and sets
become lists, bytes become an `UntrustedStr`, complex numbers and Ellipsis stay
strings.

What text reaches `parse_value` depends on where the value is written (the INI
parser, `ini.py`, cuts it out). On a host line the value is a shlex token
(quotes already removed, ` #` starts a comment), so `port=2222` is an int,
`v=true` the string "true", `v=True` a bool, and keeping `'042'` a string or
passing a dict takes double quoting: `v="'042'"`, `s="{'work_mem': '8MB'}"`.
In a `:vars` section the value is the rest of the line, quotes included, so
`s={'work_mem': '8MB'}` is a dict and `v='042'` a string. Strings that are not
Python literals stay as written.
"""

from __future__ import annotations

import ast
import warnings
from typing import Any

__all__ = ["InvalidValueError", "UntrustedStr", "parse_value"]


class InvalidValueError(Exception):
    """A value Ansible would choke on; the INI parser adds file and line."""


class UntrustedStr(str):
    """A string from a bytes literal (`b'x'`): Ansible marks it as not to be templated.

    It is an ordinary `str` everywhere; only `to_ansible_list()` shows it the way
    `ansible-inventory --list` does, as `{"__ansible_unsafe": "x"}`.
    """

    __slots__ = ()


def parse_value(text: str) -> Any:
    """A value as Ansible reads it: a Python literal where it parses, else the string.

    Tuples and sets become lists, bytes become (untrusted) str, complex numbers
    and Ellipsis stay strings. Raises InvalidValueError where Ansible would give
    up on the whole file (a literal that cannot be evaluated, such as a dict
    with a list as key, or a dict key Ansible cannot print).
    """
    value: Any = text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    except Exception as exc:  # Ansible gives up on the whole file here
        raise InvalidValueError(f"cannot evaluate the value {text!r}: {exc}") from None
    return _coerce(value, text)


def _coerce(value: Any, text: str) -> Any:
    """`value` (from `text`) with the container and scalar types Ansible keeps."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_coerce(v, text) for v in value]
    if isinstance(value, dict):
        for key in value:
            if key is not None and not isinstance(key, (str, int, float)):
                raise InvalidValueError(
                    f"dict keys must be strings, numbers, booleans or None, got "
                    f"{type(key).__name__} {key!r} in {text!r} (Ansible cannot print it either)"
                )
        return {k: _coerce(v, text) for k, v in value.items()}
    if value is Ellipsis:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        return UntrustedStr(value.decode("utf-8", "surrogateescape"))
    return value
