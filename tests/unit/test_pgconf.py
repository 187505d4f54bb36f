"""installer.desired.pgconf: postgresql.conf values quoted, compared and rendered."""

from __future__ import annotations

import pytest

from installer.desired import pgconf
from installer.errors import TuningError


@pytest.mark.parametrize(
    ("value", "expected"),
    [("256MB", "256MB"), ("0.9", "0.9"), ("100", "100"), ("localhost", "localhost"),
     ("scram-sha-256", "'scram-sha-256'"), ("127.0.0.1,::1", "'127.0.0.1,::1'"),
     ("*", "'*'"), (True, "on"), (False, "off"), ("it's", "'it''s'"),
     ("a\\b", "'a\\\\b'")],
)
def test_pg_value(value: object, expected: str) -> None:
    assert pgconf.pg_value(value) == expected


@pytest.mark.parametrize(
    ("wanted", "live", "same"),
    [("256MB", "256MB", True), ("1GB", "1024MB", True), ("16MB", "16384kB", True),
     ("4MB", "8MB", False), ("0.9", "0.9", True), ("on", "on", True), ("true", "on", True),
     ("localhost", "localhost", True), ("127.0.0.1,::1", "::1, 127.0.0.1", True),
     ("*", "localhost", False), ("scram-sha-256", "md5", False)],
)
def test_same_value(wanted: str, live: str, same: bool) -> None:
    assert pgconf.same_value(wanted, live) is same


@pytest.mark.parametrize(
    ("wanted", "live", "unit", "same"),
    [("3932kB", "3928kB", "8kB", True), ("3932kB", "3944kB", "8kB", False),
     ("1GB", "1GB", "MB", True), ("1025MB", "1GB", "MB", False), ("5041kB", "5041kB", "kB", True)],
)
def test_same_value_within_the_settings_unit(wanted: str, live: str, unit: str, same: bool) -> None:
    assert pgconf.same_value(wanted, live, unit) is same


def test_pg_value_refuses_line_breaks() -> None:
    with pytest.raises(TuningError, match="line break"):
        pgconf.pg_value("x\ny = 1")


def test_render_template_has_every_setting_once() -> None:
    text = pgconf.render({"listen_addresses": "localhost", "password_encryption": "scram-sha-256",
                          "work_mem": "8MB"}, host="db01")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines == ["listen_addresses = localhost", "password_encryption = 'scram-sha-256'",
                     "work_mem = 8MB"]


# -- hostile values: postgresql.conf escaping ------------------------------------------

def _conf_unquote(text: str) -> str:
    """A value as PostgreSQL's config scanner reads it: quoted strings unescaped."""
    if not text.startswith("'"):
        return text
    assert text.endswith("'") and len(text) >= 2, text
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c == "'":
            assert body[i + 1] == "'", f"lone quote in {text!r}"
            out.append("'")
            i += 2
        elif c == "\\":
            out.append(body[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


HOSTILE_VALUES = [
    "%m [%p] q'x ", "it's", "''", "'", "a\\b", "\\'; listen_addresses = '*", "x # not a comment",
    "#", "$(reboot)", "`id`", "a;b", "é€ ü", " lead and trail ", "\\\\", "x\\", "q'\"\\\\$ x",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_setting_values_render_as_one_safe_line(value: str) -> None:
    text = pgconf.render({"listen_addresses": "localhost", "password_encryption": "scram-sha-256",
                          "log_line_prefix": value}, host="db01")
    lines = [ln for ln in text.splitlines() if ln.startswith("log_line_prefix")]
    assert len(lines) == 1
    assert [ln for ln in text.splitlines() if ln.startswith("listen_addresses")] == \
        ["listen_addresses = localhost"]
    rendered = lines[0].removeprefix("log_line_prefix = ")
    assert rendered.startswith("'") and rendered.endswith("'")
    assert _conf_unquote(rendered) == value
