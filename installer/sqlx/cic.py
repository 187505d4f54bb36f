"""Indexes built CONCURRENTLY by `-- no-transaction` migrations: pure logic, no I/O.

An interrupted `CREATE INDEX CONCURRENTLY` (killed process, cut connection, a
unique violation, a deadlock) leaves an INVALID index behind (pg_index.indisvalid
false): never used by the planner, and for a UNIQUE index, uniqueness is not
enforced. The migration has no ledger row, so it runs again, but `IF NOT EXISTS`
then skips the invalid index and the ledger ends up saying it is applied. sqlx's
own migrator has that hole; the run script (installer.sqlx.rules.apply_script) closes it
with what this module provides:

- `index_targets(sql)`: the indexes a migration's SQL creates with
  `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON [ONLY] table`;
- `drop_invalid_sql(...)`: psql text, before such a migration, that drops the
  INVALID indexes with those names on those tables (`DROP INDEX CONCURRENTLY`,
  outside a transaction) and prints what it dropped;
- `check_sql(...)`: psql text, after it, that prints each named index that is
  missing, invalid or not an index of that table, so that the migration fails
  before its ledger row is written;
- `LIST_INVALID`: psql text printing every INVALID index of the app's schemas,
  and `owner()`, matching one to the pending migration that recreates it (the
  others are someone else's: left alone, reported).

Matching: an index lives in its table's schema. `to_regclass('"t"')` resolves an
unqualified table as the migration's statement will (the session's search_path);
`pg_table_is_visible(t.oid)` is true exactly for the table it resolves to, which
is how `owner()` matches the listing in Python.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from installer.sqltext import quote_ident, quote_literal

#: PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
_MAX_IDENT_BYTES = 63

_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")

#: the schemas that are not the app's
_SYSTEM_SCHEMAS = ("n.nspname NOT IN ('pg_catalog', 'information_schema')"
                   " AND n.nspname !~ '^pg_(toast|temp_)'")


@dataclass(frozen=True)
class IndexTarget:
    """One index a migration creates with CREATE [UNIQUE] INDEX CONCURRENTLY."""

    #: the index name as PostgreSQL stores it (unquoted names folded to lower case)
    name: str
    #: the table after ON [ONLY], and its schema when the statement qualifies it
    table: str
    table_schema: str | None = None
    #: a schema written before the index name (PostgreSQL refuses it, but it is read)
    schema: str | None = None
    unique: bool = False

    def table_regclass(self) -> str:
        """The table as an SQL literal for to_regclass(): quoted, qualified if written so."""
        parts = [self.table_schema, self.table] if self.table_schema else [self.table]
        return quote_literal(".".join(quote_ident(p) for p in parts))


@dataclass(frozen=True)
class InvalidIndex:
    """An INVALID index found in the app's schemas."""

    schema: str
    name: str
    table_schema: str
    table: str
    #: pg_table_is_visible(table): an unqualified name in the session resolves to it
    table_visible: bool = True

    def display(self) -> str:
        return display_name(self.schema, self.name)

    def table_display(self) -> str:
        return display_name(self.table_schema, self.table)


def display_name(*parts: str | None) -> str:
    """`public.idx_x`; parts that are not plain lower-case names are quoted."""
    return ".".join(p if _PLAIN.fullmatch(p) else quote_ident(p) for p in parts if p)


# -- reading the SQL ------------------------------------------------------------------------

_SIMPLE = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<line>--[^\n]*)"
    r"|(?P<dollar>\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$)"
    r"|(?P<word>[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*)"
    r"|(?P<other>.)",
    re.S,
)


def _truncate(name: str) -> str:
    data = name.encode("utf-8")
    if len(data) <= _MAX_IDENT_BYTES:
        return name
    return data[:_MAX_IDENT_BYTES].decode("utf-8", errors="ignore")


def _fold(word: str) -> str:
    """PostgreSQL's downcasing of an unquoted identifier: ASCII letters only."""
    return _truncate("".join(chr(ord(ch) + 32) if "A" <= ch <= "Z" else ch for ch in word))


def tokens(sql: str) -> list[tuple[str, str]]:
    """(kind, value) tokens: `word` (folded), `ident` (a quoted identifier), `literal`
    (a string or dollar-quoted body), `punct`. Comments and white space are dropped.
    Good enough to find statements, not a full lexer (U& escapes are not decoded)."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("/*", i):  # nested, as PostgreSQL's
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        if ch == "'" or (ch in "eE" and sql.startswith("'", i + 1)):
            escapes = ch != "'"
            i += 2 if escapes else 1
            while i < n:
                if escapes and sql[i] == "\\":
                    i += 2
                elif sql[i] == "'":
                    if sql.startswith("''", i):
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    i += 1
            out.append(("literal", ""))
            continue
        if ch == '"':
            end = i + 1
            value: list[str] = []
            while end < n:
                if sql[end] == '"':
                    if sql.startswith('""', end):
                        value.append('"')
                        end += 2
                        continue
                    break
                value.append(sql[end])
                end += 1
            out.append(("ident", _truncate("".join(value))))
            i = end + 1
            continue
        m = _SIMPLE.match(sql, i)
        assert m is not None  # `other` matches any character
        kind = m.lastgroup
        if kind == "dollar":
            close = sql.find(m.group(), m.end())
            i = n if close < 0 else close + len(m.group())
            out.append(("literal", ""))
            continue
        i = m.end()
        if kind == "word":
            out.append(("word", _fold(m.group())))
        elif kind == "other":
            out.append(("punct", m.group()))
    return out


def _name(toks: Sequence[tuple[str, str]], j: int) -> tuple[list[str], int]:
    """A possibly qualified name at toks[j]: its parts and the index after it."""
    parts: list[str] = []
    while j < len(toks) and toks[j][0] in ("word", "ident"):
        parts.append(toks[j][1])
        j += 1
        if j < len(toks) and toks[j] == ("punct", ".") and len(parts) < 3:
            j += 1
            continue
        break
    return parts, j


def _word(toks: Sequence[tuple[str, str]], j: int, *words: str) -> bool:
    return all(j + k < len(toks) and toks[j + k] == ("word", w) for k, w in enumerate(words))


def index_targets(sql: str) -> tuple[IndexTarget, ...]:
    """The indexes `sql` creates with CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS]
    name ON [ONLY] table, in order. Unnamed ones (PostgreSQL picks the name) and those in
    comments, strings and dollar-quoted bodies are not counted."""
    toks = tokens(sql)
    found: list[IndexTarget] = []
    for i in range(len(toks)):
        if not _word(toks, i, "create"):
            continue
        j = i + 1
        unique = _word(toks, j, "unique")
        j += unique
        if not _word(toks, j, "index", "concurrently"):
            continue
        j += 2
        if _word(toks, j, "if", "not", "exists"):
            j += 3
        if _word(toks, j, "on"):  # no name
            continue
        name, j = _name(toks, j)
        if not name or len(name) > 2 or not _word(toks, j, "on"):
            continue
        j += 1
        if _word(toks, j, "only"):
            j += 1
        table, j = _name(toks, j)
        if not table:
            continue
        found.append(IndexTarget(
            name=name[-1], table=table[-1],
            table_schema=table[-2] if len(table) > 1 else None,
            schema=name[0] if len(name) == 2 else None, unique=unique))
    return tuple(found)


# -- matching -------------------------------------------------------------------------------


def matches(index: InvalidIndex, target: IndexTarget) -> bool:
    """Whether `target`'s statement would meet `index` (same name, on its table)."""
    if index.name != target.name or index.table != target.table:
        return False
    if target.schema is not None and target.schema != index.schema:
        return False
    if target.table_schema is not None:
        return index.table_schema == target.table_schema
    return index.table_visible


def owner(index: InvalidIndex, pending: Iterable[tuple[int, Sequence[IndexTarget]]]
          ) -> int | None:
    """The first pending version (version, its targets) that recreates `index`, if any."""
    for version, targets in sorted(pending, key=lambda p: p[0]):
        if any(matches(index, t) for t in targets):
            return version
    return None


# -- psql text ------------------------------------------------------------------------------

_INDEXES = (
    "FROM pg_catalog.pg_index AS i\n"
    "JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid\n"
    "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace\n"
)

#: every INVALID index in the app's schemas, as JSON in :chatalot_invalid
LIST_INVALID_QUERY = (
    "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(n.nspname, c.relname,"
    " tn.nspname, t.relname, pg_catalog.pg_table_is_visible(t.oid))"
    " ORDER BY n.nspname, c.relname), '[]')::text AS chatalot_invalid\n"
    + _INDEXES
    + "JOIN pg_catalog.pg_class AS t ON t.oid = i.indrelid\n"
    "JOIN pg_catalog.pg_namespace AS tn ON tn.oid = t.relnamespace\n"
    f"WHERE NOT i.indisvalid AND {_SYSTEM_SCHEMAS} \\gset\n"
)


def list_invalid(marker: str) -> str:
    """psql text printing `<marker> invalid <JSON>`: LIST_INVALID_QUERY's rows."""
    return LIST_INVALID_QUERY + f"\\echo {marker} invalid :chatalot_invalid\n"


def drop_invalid_sql(marker: str, version: int, targets: Sequence[IndexTarget]) -> str:
    """psql text dropping the INVALID indexes `targets` name, on their tables.

    Prints `<marker> dropping <v> <JSON [[schema, name], ...]>` before and
    `<marker> dropped <v> <JSON>` after: a failure in between leaves the first only.
    Each DROP INDEX CONCURRENTLY runs on its own (\\gexec, autocommit), outside any
    transaction, as it must.
    """
    cond = " OR ".join(
        f"(i.indrelid = pg_catalog.to_regclass({t.table_regclass()})"
        f" AND c.relname = {quote_literal(t.name)}"
        + (f" AND n.nspname = {quote_literal(t.schema)}" if t.schema else "") + ")"
        for t in targets)
    return (
        "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(n.nspname, c.relname)"
        " ORDER BY n.nspname, c.relname), '[]')::text AS chatalot_drop\n"
        + _INDEXES
        + f"WHERE NOT i.indisvalid AND {_SYSTEM_SCHEMAS} AND ({cond}) \\gset\n"
        f"\\echo {marker} dropping {version} :chatalot_drop\n"
        "SELECT pg_catalog.format('DROP INDEX CONCURRENTLY IF EXISTS %I.%I', e ->> 0, e ->> 1)"
        " FROM pg_catalog.jsonb_array_elements(:'chatalot_drop'::jsonb) AS e \\gexec\n"
        f"\\echo {marker} dropped {version} :chatalot_drop\n"
    )


def check_sql(marker: str, version: int, targets: Sequence[IndexTarget]) -> str:
    """psql text checking, after the migration, each index `targets` name.

    Sets :chatalot_bad and prints `<marker> checked <v> <JSON [[problem, schema,
    name], ...]>` for those that are `missing`, `invalid`, or `other` (the name
    belongs to something that is not an index of that table: IF NOT EXISTS
    skipped it).
    """
    rows = "\n    UNION ALL\n".join(
        f"    SELECT {k} AS ord, tn.nspname AS nsp, {quote_literal(t.name)} AS name,\n"
        "        CASE WHEN c.oid IS NULL THEN 'missing'\n"
        "             WHEN i.indexrelid IS NULL OR i.indrelid <> t.oid THEN 'other'\n"
        "             WHEN NOT i.indisvalid THEN 'invalid' END AS problem\n"
        f"    FROM (SELECT pg_catalog.to_regclass({t.table_regclass()}) AS oid) AS r\n"
        "    LEFT JOIN pg_catalog.pg_class AS t ON t.oid = r.oid\n"
        "    LEFT JOIN pg_catalog.pg_namespace AS tn ON tn.oid = t.relnamespace\n"
        "    LEFT JOIN pg_catalog.pg_class AS c ON c.relnamespace = t.relnamespace"
        f" AND c.relname = {quote_literal(t.name)}\n"
        "    LEFT JOIN pg_catalog.pg_index AS i ON i.indexrelid = c.oid"
        for k, t in enumerate(targets))
    return (
        "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(x.problem, x.nsp,"
        " x.name) ORDER BY x.ord), '[]')::text AS chatalot_left,"
        " count(*) > 0 AS chatalot_bad\n"
        f"FROM (\n{rows}\n) AS x WHERE x.problem IS NOT NULL \\gset\n"
        f"\\echo {marker} checked {version} :chatalot_left\n"
    )


# -- reading what the psql text printed ------------------------------------------------------


def _json_rows(text: str) -> list[list[object]]:
    try:
        doc = json.loads(text)
    except ValueError:
        return []
    if not isinstance(doc, list):
        return []
    return [row for row in doc if isinstance(row, list)]


def parse_invalid(text: str) -> tuple[InvalidIndex, ...]:
    """LIST_INVALID_QUERY's JSON."""
    out: list[InvalidIndex] = []
    for row in _json_rows(text):
        if len(row) == 5:
            out.append(InvalidIndex(str(row[0]), str(row[1]), str(row[2]), str(row[3]),
                                    row[4] is True))
    return tuple(out)


def parse_names(text: str) -> tuple[tuple[str, str], ...]:
    """drop_invalid_sql's JSON: (schema, name) pairs."""
    return tuple((str(r[0]), str(r[1])) for r in _json_rows(text) if len(r) == 2)


def parse_problems(text: str) -> tuple[tuple[str, str | None, str], ...]:
    """check_sql's JSON: (problem, schema or None, name)."""
    return tuple((str(r[0]), None if r[1] is None else str(r[1]), str(r[2]))
                 for r in _json_rows(text) if len(r) == 3)
