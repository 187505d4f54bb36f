"""installer.sqltext: SQL literals and identifiers quoted, names checked."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from installer.errors import UsageError
from installer.sqltext import quote_ident, quote_literal, validate_identifier


@pytest.mark.parametrize(
    ("value", "expected"),
    [("chatalot", '"chatalot"'), ('we"ird', '"we""ird"'), ("Mixed", '"Mixed"')],
)
def test_quote_ident(value: str, expected: str) -> None:
    assert quote_ident(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("abc", "'abc'"), ("it's", "'it''s'"), ("a\\b", "E'a\\\\b'"), ("", "''"),
     ("$$x$$", "'$$x$$'"),
     # as installer.sqlx.rules writes migration descriptions: control characters stay raw
     # (psql keeps a quoted literal whole across lines), psql variables are not read in quotes
     ("two\nlines\r\tx", "'two\nlines\r\tx'"), ("bell\x07", "'bell\x07'"),
     ("é ünïcode", "'é ünïcode'"), (":USER", "':USER'"), ("it's a\\b", "E'it''s a\\\\b'")],
)
def test_quote_literal(value: str, expected: str) -> None:
    assert quote_literal(value) == expected


@pytest.mark.parametrize("quote", [quote_literal, quote_ident])
def test_quoting_refuses_nul(quote: Callable[[str], str]) -> None:
    with pytest.raises(ValueError, match="NUL"):
        quote("a\x00b")


@pytest.mark.parametrize("bad", ["", "1abc", "Chatalot", "a-b", "a b", "x;drop", "a" * 64, 5,
                                 'q"uote', "é"])
def test_identifier_refused(bad: object) -> None:
    with pytest.raises(UsageError, match="not a plain identifier"):
        validate_identifier(bad, "db_name")


@pytest.mark.parametrize("good", ["chatalot", "_x", "app_db2", "a" * 63])
def test_identifier_accepted(good: str) -> None:
    assert validate_identifier(good, "db_user") == good
