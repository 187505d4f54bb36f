"""installer.fleet.inventory.values: INI values typed as Ansible types them.

The types were checked against ansible-core (test_inventory.py compares whole
inventories using them, hostline_typing.ini and vars_typing.ini).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from installer.fleet.inventory import UntrustedStr, parse_inventory
from installer.fleet.inventory.values import InvalidValueError, parse_value

HOST_LINE_VALUES: list[tuple[str, Any]] = [
    ("42", 42),
    ("-7", -7),
    ("0x1F", 31),
    ("1_000", 1000),
    ("1.5", 1.5),
    ("1e3", 1000.0),
    ("true", "true"),
    ("True", True),
    ("yes", "yes"),
    ("None", None),
    ("\"'042'\"", "042"),  # the only way to keep a number a string on a host line
    ("'\"quoted\"'", "quoted"),
    ('"hello world"', "hello world"),
    ("hello\\ there", "hello there"),
    ("", ""),
    ("[1,2]", [1, 2]),
    ("(1,2)", [1, 2]),
    ("{3}", [3]),
    ("\"{'work_mem': '8MB'}\"", {"work_mem": "8MB"}),
    ("{'work_mem':'8MB'}", "{work_mem:8MB}"),  # shlex ate the quotes
    ("1j", "1j"),
    ("...", "..."),
    ("=x", "=x"),
    ("a=b", "a=b"),
    ("1+2", "1+2"),
    ("16.2", 16.2),
    ("1.2.3", "1.2.3"),
    ("$HOME", "$HOME"),
]

VARS_VALUES: list[tuple[str, Any]] = [
    ("42", 42),
    ("true", "true"),
    ("True", True),
    ("'042'", "042"),
    ("hello world", "hello world"),
    ("5 # a comment", 5),  # literal_eval drops a Python comment
    ("some text # kept", "some text # kept"),
    ("pass#word", "pass#word"),
    ("", ""),
    ("{'work_mem': '8MB', 'n': 2}", {"work_mem": "8MB", "n": 2}),
    ("[1, (2, 3)]", [1, [2, 3]]),
    ("a=b", "a=b"),
    ("{{ inventory_hostname }}", "{{ inventory_hostname }}"),
    ("2+3j", "(2+3j)"),
]


@pytest.mark.parametrize(("text", "expected"), HOST_LINE_VALUES)
def test_host_line_value_types(text: str, expected: Any) -> None:
    inventory = parse_inventory(f"h v={text}\n")
    value = inventory.hosts["h"].vars["v"]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("text", "expected"), VARS_VALUES)
def test_vars_section_value_types(text: str, expected: Any) -> None:
    inventory = parse_inventory(f"[g]\nh\n[g:vars]\nv = {text}\n")
    value = inventory.groups["g"].vars["v"]
    assert value == expected
    assert type(value) is type(expected)


#: parse_value on its own: the text exactly as the parser cut it out.
PARSED: list[tuple[str, Any]] = [
    ("'042'", "042"),
    ("042", "042"),  # not a Python literal (leading zero): kept as written
    ("(1, (2, 3))", [1, [2, 3]]),
    ("frozenset()", "frozenset()"),  # a call, not a literal
    ("{1: {2}}", {1: [2]}),
    ("Ellipsis", "Ellipsis"),
    ("...", "..."),
    ("3j", "3j"),
    ("1+2j", "(1+2j)"),
    ("{None: 1, True: 2, 1.5: 3}", {None: 1, True: 2, 1.5: 3}),
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_parse_value(text: str, expected: Any) -> None:
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_bytes_become_untrusted_strings() -> None:
    value = parse_value("[b'caf\\xc3\\xa9', 'plain']")
    assert value == ["café", "plain"]
    assert type(value[0]) is UntrustedStr
    assert type(value[1]) is str


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{[1]: 2}", "cannot evaluate the value '{[1]: 2}': unhashable type: 'list'"),
        ("{(1, 2): 3}", "dict keys must be strings, numbers, booleans or None, got tuple"),
        ("{b'k': 1}", "got bytes b'k'"),
    ],
)
def test_values_ansible_gives_up_on(text: str, message: str) -> None:
    with pytest.raises(InvalidValueError, match=re.escape(message)):
        parse_value(text)
