"""Indexes built CONCURRENTLY: which ones a migration creates, which INVALID ones a run
drops or leaves alone, the psql text around such a migration, and the messages."""

from __future__ import annotations

import hashlib
import re

import pytest

from installer.sqlx import cic, migrator, rules
from installer.sqlx.cic import IndexTarget, InvalidIndex
from installer.sqlx.rules import Migration
from installer.transport.base import Result

M = rules.RUN_MARKER


def nt(version: int, sql: str, *, no_transaction: bool = True) -> Migration:
    text = ("-- no-transaction\n" if no_transaction else "") + sql
    return Migration(version, f"m{version}", text, hashlib.sha384(text.encode()).digest(),
                     no_transaction, f"{version}_m.sql")


# -- index_targets ------------------------------------------------------------------------

T = IndexTarget

TARGETS = [
    ("CREATE INDEX CONCURRENTLY IF NOT EXISTS messages_reply_to_id_idx\n"
     "    ON messages (reply_to_id) WHERE reply_to_id IS NOT NULL;",
     [T("messages_reply_to_id_idx", "messages")]),
    ("create unique index concurrently idx_x on t (x)", [T("idx_x", "t", unique=True)]),
    ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS Idx_X ON Public.T (x)",
     [T("idx_x", "t", table_schema="public", unique=True)]),
    ('CREATE INDEX CONCURRENTLY "Idx ""Q""" ON ONLY "My Table" (x)',
     [T('Idx "Q"', "My Table")]),
    ('CREATE INDEX CONCURRENTLY app."i" ON app.t (x)',
     [T("i", "t", table_schema="app", schema="app")]),
    ("CREATE INDEX CONCURRENTLY i ON db.app.t (x)", [T("i", "t", table_schema="app")]),
    ("CREATE\n  UNIQUE\tINDEX /* why */ CONCURRENTLY -- line\n i ON t (x)",
     [T("i", "t", unique=True)]),
    ("CREATE INDEX CONCURRENTLY ON t (x)", []),  # unnamed: PostgreSQL picks the name
    ("CREATE INDEX CONCURRENTLY IF NOT EXISTS ON t (x)", []),
    ("CREATE INDEX i ON t (x)", []),  # not concurrent: a failure leaves nothing
    ("CREATE UNIQUE INDEX i ON t (x)", []),
    ("-- CREATE INDEX CONCURRENTLY i ON t (x)\nSELECT 1", []),
    ("/* CREATE INDEX CONCURRENTLY i ON t (x) /* nested */ still a comment */ SELECT 1", []),
    ("SELECT 'CREATE INDEX CONCURRENTLY i ON t (x)'", []),
    ("SELECT E'it\\'s CREATE INDEX CONCURRENTLY i ON t (x)'", []),
    ("SELECT 'it''s', $$CREATE INDEX CONCURRENTLY i ON t (x)$$", []),
    ("DO $body$ BEGIN EXECUTE 'x'; END $body$; CREATE INDEX CONCURRENTLY j ON t (x)",
     [T("j", "t")]),
    ("CREATE INDEX CONCURRENTLY a ON t (x); CREATE UNIQUE INDEX CONCURRENTLY b ON u (y)",
     [T("a", "t"), T("b", "u", unique=True)]),
    ("CREATE INDEX CONCURRENTLY " + "x" * 70 + " ON t (c)", [T("x" * 63, "t")]),
    ("CREATE INDEX CONCURRENTLY ÉtÉ ON t (c)", [T("ÉtÉ", "t")]),  # only ASCII folds
    ("CREATE INDEX CONCURRENTLY i ON", []),
    ("CREATE INDEX CONCURRENTLY", []),
    ("", []),
]


@pytest.mark.parametrize(("sql", "targets"), TARGETS)
def test_index_targets(sql: str, targets: list[IndexTarget]) -> None:
    assert list(cic.index_targets(sql)) == targets


def test_bundled_no_transaction_migrations_name_their_indexes() -> None:
    local = {m.version: m for m in rules.load_migrations("migrations")}
    assert rules.index_targets(local[35]) == (T("messages_reply_to_id_idx", "messages"),)
    assert rules.index_targets(local[36]) == (T("community_members_user_id_idx",
                                               "community_members"),)
    assert [v for v, m in local.items() if rules.index_targets(m)] == [35, 36]


def test_only_no_transaction_migrations_have_targets() -> None:
    sql = "CREATE INDEX CONCURRENTLY i ON t (x);\n"
    assert rules.index_targets(nt(1, sql, no_transaction=False)) == ()
    assert rules.index_targets(nt(1, sql)) == (T("i", "t"),)


@pytest.mark.parametrize(("target", "literal"), [
    (T("i", "t"), "'\"t\"'"),
    (T("i", "My T", table_schema="app"), "'\"app\".\"My T\"'"),
    (T("i", "it's"), "'\"it''s\"'"),
])
def test_table_regclass(target: IndexTarget, literal: str) -> None:
    assert target.table_regclass() == literal


@pytest.mark.parametrize(("parts", "shown"), [
    (("public", "idx_x"), "public.idx_x"),
    (("public", "Idx"), 'public."Idx"'),
    (("my schema", 'a"b'), '"my schema"."a""b"'),
    ((None, "i"), "i"),
])
def test_display_name(parts: tuple[str | None, str], shown: str) -> None:
    assert cic.display_name(*parts) == shown


# -- which pending migration recreates an INVALID index ------------------------------------

Inv = InvalidIndex

MATCHES = [
    (Inv("public", "i", "public", "t"), T("i", "t"), True),
    (Inv("public", "i", "public", "t"), T("j", "t"), False),  # another name
    (Inv("public", "i", "public", "u"), T("i", "t"), False),  # another table
    (Inv("app", "i", "app", "t", table_visible=False), T("i", "t"), False),  # not in the path
    (Inv("app", "i", "app", "t", table_visible=False), T("i", "t", table_schema="app"), True),
    (Inv("app", "i", "app", "t"), T("i", "t", table_schema="public"), False),
    (Inv("app", "i", "app", "t"), T("i", "t", schema="public"), False),
]


@pytest.mark.parametrize(("index", "target", "expected"), MATCHES)
def test_matches(index: InvalidIndex, target: IndexTarget, expected: bool) -> None:
    assert cic.matches(index, target) is expected


def test_owner_is_the_first_pending_version() -> None:
    index = Inv("public", "i", "public", "t")
    pending = [(40, (T("i", "t"),)), (36, (T("x", "t"), T("i", "t"))), (37, ())]
    assert cic.owner(index, pending) == 36
    assert cic.owner(Inv("public", "z", "public", "t"), pending) is None
    assert cic.owner(index, []) is None


# -- the psql text ----------------------------------------------------------------------------


def test_apply_script_around_a_concurrent_build() -> None:
    m = nt(35, "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x);\n")
    script = rules.apply_script(m)
    marks = [
        f"\\echo {M} start 35",
        "AS chatalot_drop",
        "pg_catalog.to_regclass('\"t\"')",
        f"\\echo {M} dropping 35 :chatalot_drop",
        "'DROP INDEX CONCURRENTLY IF EXISTS %I.%I'",
        f"\\echo {M} dropped 35 :chatalot_drop",
        "AS chatalot_t0 \\gset",
        "\\set ON_ERROR_STOP off",
        f"SELECT $chatalot_sql${m.sql}$chatalot_sql$ \\gexec",
        "\\if :{?ERROR}\n\\set chatalot_failed :ERROR\n\\endif",
        "\\set ON_ERROR_STOP on",
        f"\\echo {M} checked 35 :chatalot_left",
        "\\if :chatalot_failed\nDO $chatalot_stop$",
        "\\elif :chatalot_bad\nDO $chatalot_stop$",
        "INSERT INTO _sqlx_migrations",
        f"\\echo {M} committed 35",
    ]
    positions = [script.index(mark) for mark in marks]
    assert positions == sorted(positions)
    assert "BEGIN;" not in script and "COMMIT;" not in script
    # the only stretch without ON_ERROR_STOP is the file itself
    off = script.index("\\set ON_ERROR_STOP off")
    assert script.index("\\set ON_ERROR_STOP on", off) < script.index("checked 35")


@pytest.mark.parametrize("m", [
    nt(3, "CREATE INDEX CONCURRENTLY ON t (x);\n"),  # unnamed
    nt(3, "CREATE INDEX i ON t (x);\n", no_transaction=False),
    nt(3, "VACUUM t;\n"),
])
def test_apply_script_without_targets_is_as_before(m: Migration) -> None:
    script = rules.apply_script(m)
    for word in ("chatalot_drop", "ON_ERROR_STOP", "checked", "indisvalid"):
        assert word not in script


def test_run_script_lists_invalid_indexes_under_the_lock() -> None:
    script = rules.run_script([nt(1, "SELECT 1;\n")], database="db", applied=[])
    listing = script.index(f"\\echo {M} invalid :chatalot_invalid")
    assert script.index("DO $chatalot_guard$") < listing < script.index(f"{M} start 1")
    assert "NOT i.indisvalid" in script and "^pg_(toast|temp_)" in script
    assert "indisvalid" not in rules.run_script([], database="db", applied=[])


# -- reading the output -------------------------------------------------------------------------

RUN = (
    f"{M} locked 1\n"
    f'{M} invalid [["public", "i", "public", "t", true], ["app", "Odd one", "app", "u", false]]\n'
    f"{M} start 2\n"
    f'{M} dropping 2 [["public", "i"]]\n'
    f'{M} dropped 2 [["public", "i"]]\n'
    f"{M} checked 2 []\n"
    f"{M} committed 2\n{M} applied 2 500\n"
    f"{M} start 3\n{M} dropping 3 []\n{M} dropped 3 []\n"
    f'{M} checked 3 [["invalid", "public", "j"], ["missing", null, "k"]]\n'
)


def test_parse_run_output_index_lines() -> None:
    outcome = rules.parse_run_output(RUN)
    assert outcome.invalid == (Inv("public", "i", "public", "t", True),
                               Inv("app", "Odd one", "app", "u", False))
    assert outcome.dropping == {2: (("public", "i"),), 3: ()}
    assert outcome.dropped == {2: (("public", "i"),), 3: ()}
    assert outcome.problems == {3: (("invalid", "public", "j"), ("missing", None, "k"))}
    assert outcome.applied == {2: 500} and outcome.failed == 3


@pytest.mark.parametrize("text", ["", "[", "{}", "[1, 2]", '[["a"]]', "null"])
def test_unreadable_json_is_ignored(text: str) -> None:
    assert cic.parse_invalid(text) == ()
    assert cic.parse_names(text) == ()
    assert cic.parse_problems(text) == ()


# -- the messages -------------------------------------------------------------------------------

UNIQUE = nt(2, "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x);\n")
PLAIN = nt(3, "CREATE INDEX CONCURRENTLY IF NOT EXISTS j ON t (y);\n")


def test_run_notes() -> None:
    outcome = rules.parse_run_output(RUN)
    assert migrator.index_notes(outcome, [UNIQUE, PLAIN]) == [
        'warning: invalid index app."Odd one" on app.u left alone: no pending migration '
        "creates it (queries do not use it; REINDEX INDEX CONCURRENTLY rebuilds it)",
        "dropped invalid index public.i left by an interrupted CREATE INDEX CONCURRENTLY; "
        "migration 2 recreates it",
    ]


def test_check_mode_notes() -> None:
    invalid = [Inv("public", "i", "public", "t"), Inv("public", "x", "public", "t")]
    assert migrator.invalid_index_notes(invalid, [UNIQUE, PLAIN]) == [
        "would drop invalid index public.i left by an interrupted CREATE INDEX CONCURRENTLY; "
        "migration 2 recreates it",
        "warning: invalid index public.x on public.t left alone: no pending migration creates "
        "it (queries do not use it; REINDEX INDEX CONCURRENTLY rebuilds it)",
    ]
    assert migrator.builds_indexes([UNIQUE]) and not migrator.builds_indexes([nt(4, "")])


def failed_run(version: int, lines: str, stderr: str) -> tuple[Result, rules.RunOutcome]:
    out = f"{M} locked 1\n{M} start {version}\n{M} dropping {version} []\n" \
          f"{M} dropped {version} []\n" + lines
    return Result(3, out, stderr), rules.parse_run_output(out)


DUP = 'psql:<stdin>:40: ERROR:  could not create unique index "i"\nDETAIL:  Key (x)=(1) ...\n'
OURS = ("psql:<stdin>:60: ERROR:  chatalot-db: migration 2 did not leave a valid index "
        "(not recorded in _sqlx_migrations)\n")

FAILURES = [
    (UNIQUE, f'{M} checked 2 [["invalid", "public", "i"]]\n',
     DUP + "psql:<stdin>:50: ERROR:  chatalot-db: migration 2 failed\n",
     'while executing migration 2: error returned from database: could not create unique '
     'index "i"; it left the invalid index public.i behind (never used by queries, '
     "uniqueness not enforced); migration 2 is not recorded as applied: fix the cause and "
     "run again (the invalid index is dropped first)"),
    (UNIQUE, f'{M} checked 2 [["invalid", "public", "i"]]\n', OURS,
     "while executing migration 2: index public.i is invalid after CREATE INDEX "
     "CONCURRENTLY and PostgreSQL reported no error (IF NOT EXISTS kept an existing invalid "
     "index; never used by queries, uniqueness not enforced); migration 2 is not recorded "
     "as applied: fix the cause and run again (the invalid index is dropped first)"),
    (UNIQUE, f'{M} checked 2 [["other", "public", "i"]]\n', OURS,
     "while executing migration 2: public.i exists but is not an index of the table "
     "migration 2 names, so IF NOT EXISTS skipped the build; migration 2 is not recorded as "
     "applied: fix the cause and run again"),
    (UNIQUE, f'{M} checked 2 [["missing", null, "i"]]\n',
     'psql:<stdin>:40: ERROR:  relation "t" does not exist\n',
     'while executing migration 2: error returned from database: relation "t" does not '
     "exist; migration 2 is not recorded as applied: fix the cause and run again"),
    (PLAIN, f'{M} checked 3 [["missing", "public", "j"]]\n',
     "psql:<stdin>:60: ERROR:  chatalot-db: migration 3 did not leave a valid index\n",
     "while executing migration 3: index public.j was not created; migration 3 is not "
     "recorded as applied: fix the cause and run again"),
]


@pytest.mark.parametrize(("m", "lines", "stderr", "message"), FAILURES)
def test_index_failure_message(m: Migration, lines: str, stderr: str, message: str) -> None:
    r, outcome = failed_run(m.version, lines, stderr)
    assert migrator.index_failure_message(r, outcome, m) == message


def test_a_failed_drop_says_so() -> None:
    out = f'{M} locked 1\n{M} start 2\n{M} dropping 2 [["public", "i"]]\n'
    r = Result(3, out, "psql:<stdin>:9: ERROR:  must be owner of index i\n")
    assert migrator.index_failure_message(r, rules.parse_run_output(out), UNIQUE) == (
        "while executing migration 2: dropping the invalid index public.i left by an "
        "interrupted CREATE INDEX CONCURRENTLY failed: error returned from database: must be "
        "owner of index i")


def test_other_failures_keep_sqlxs_message() -> None:
    r, outcome = failed_run(2, f"{M} checked 2 []\n", DUP)
    assert migrator.index_failure_message(r, outcome, UNIQUE) is None


def test_apply_pending_reports_and_fails_without_a_row() -> None:
    """The migrator end to end with a scripted psql: notes first, then sqlx-style failure."""
    out = (f"{M} locked 1\n"
           f'{M} invalid [["public", "i", "public", "t", true], ["public", "z", "public", "t", '
           "true]]\n"
           f'{M} start 2\n{M} dropping 2 [["public", "i"]]\n{M} dropped 2 [["public", "i"]]\n'
           f'{M} checked 2 [["invalid", "public", "i"]]\n')
    notes: list[str] = []
    with pytest.raises(migrator.MigrationRunError, match="^" + re.escape(
            "while executing migration 2: error returned from database: could not create "
            'unique index "i"; it left the invalid')) as e:
        migrator.apply_pending(
            lambda script: Result(3, out, DUP), [UNIQUE], rules.LedgerState(False, None, ()),
            reread=lambda: rules.LedgerState(False, None, ()), database="db", role="app",
            set_role=True, on_note=notes.append)
    assert e.value.applied == []
    assert notes == [
        "warning: invalid index public.z on public.t left alone: no pending migration creates "
        "it (queries do not use it; REINDEX INDEX CONCURRENTLY rebuilds it)",
        "dropped invalid index public.i left by an interrupted CREATE INDEX CONCURRENTLY; "
        "migration 2 recreates it",
    ]
