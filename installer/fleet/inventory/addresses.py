"""Host names, IP addresses and ports as Ansible recognises them.

The rules of ansible/parsing/utils/addresses.py: `host`, `host:port`,
`[host]:port`, IPv4 and IPv6 addresses, and names that contain host ranges
(`db[01:10]`). The INI parser uses this to split a host line's `name:port`;
host patterns use it to keep `host:port`, an IPv6 address or a range whole
instead of splitting it at `:`.
"""

from __future__ import annotations

import re

__all__ = ["parse_address"]

_NUMERIC_RANGE = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_HEX_RANGE = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]"
_ALNUM_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_IPV6_PART = rf"(?:[0-9a-f]{{1,4}}|{_HEX_RANGE})"
_IPV4_PART = rf"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{_NUMERIC_RANGE})"
_LABEL = rf"(?:[\w]|{_ALNUM_RANGE})(?:[\w_-]|{_ALNUM_RANGE})*(?<![_-])"

_BRACKETED_HOSTPORT = re.compile(r"^\[(.+)\]:([0-9]+)$")
_HOSTPORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_IPV4 = re.compile(rf"^(?:{_IPV4_PART}\.){{3}}{_IPV4_PART}$", re.I)
_IPV6 = re.compile(
    "^("
    + "|".join(
        [
            rf"(?:{_IPV6_PART}:){{7}}{_IPV6_PART}",
            rf"(?:{_IPV6_PART}:){{1,6}}:",
            rf"(?:{_IPV6_PART}:)(?::{_IPV6_PART}){{1,6}}",
            rf"(?:{_IPV6_PART}:){{2}}(?::{_IPV6_PART}){{1,5}}",
            rf"(?:{_IPV6_PART}:){{3}}(?::{_IPV6_PART}){{1,4}}",
            rf"(?:{_IPV6_PART}:){{4}}(?::{_IPV6_PART}){{1,3}}",
            rf"(?:{_IPV6_PART}:){{5}}(?::{_IPV6_PART}){{1,2}}",
            rf"(?:{_IPV6_PART}:){{6}}(?::{_IPV6_PART})",
            rf":(?::{_IPV6_PART}){{1,6}}",
            rf"{_IPV6_PART}?::",
            rf"(?:0:){{6}}(?:{_IPV6_PART}\.){{3}}{_IPV6_PART}",
            rf"::(?:ffff:)?(?:{_IPV6_PART}\.){{3}}{_IPV6_PART}",
            rf"(?:0:){{5}}ffff:(?:{_IPV6_PART}\.){{3}}{_IPV6_PART}",
        ]
    )
    + ")$",
    re.I,
)
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.I)


def parse_address(address: str) -> tuple[str, int | None] | None:
    """Split `host`, `host:port`, `[host]:port`; None if not a recognisable host.

    Like Ansible, both port forms are tried in turn, and IPv6 addresses take a
    port only in the bracketed form.
    """
    port: int | None = None
    for regex in (_BRACKETED_HOSTPORT, _HOSTPORT):
        m = regex.match(address)
        if m:
            address, port = m.group(1), int(m.group(2))
    if any(regex.match(address) for regex in (_IPV4, _IPV6, _HOSTNAME)):
        return address, port
    return None
