"""installer.host.queries: psql's JSON lines merged, its errors kept."""

from __future__ import annotations

from installer.host.queries import parse_output


def test_parse_sql_output() -> None:
    merged, ledger, errors = parse_output('{"a": 1}\n{"b": [1, 2]}\n')
    assert (merged, ledger, errors) == ({"a": 1, "b": [1, 2]}, [], [])
    merged, ledger, errors = parse_output("psql: error: connection refused\n")
    assert merged == {} and errors == ["psql: error: connection refused"]
