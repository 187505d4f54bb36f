"""sqlx's ledger rules, as data: file names, checksums, lock ids, plans, info lines."""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from pathlib import Path

import pytest

from installer.errors import MigrationError
from installer.sqlx import rules
from installer.sqlx.rules import AppliedMigration, Migration

BUNDLED = Path(__file__).resolve().parents[2] / "migrations"


def bad_name(name: str) -> str:
    return (
        f"error parsing migration filename {name}; "
        "expected integer version prefix (e.g. `01_foo.sql`)"
    )


# -- file names --------------------------------------------------------------------

PARSED = [
    ("001_users.sql", (1, "users", "simple")),
    ("1_identity_keys.sql", (1, "identity keys", "simple")),
    ("0008_leading_zeros.sql", (8, "leading zeros", "simple")),
    ("9_a_b_c.sql", (9, "a b c", "simple")),
    ("1_000_x.sql", (1, "000 x", "simple")),  # split at the FIRST underscore
    ("20240101120000_add_x.up.sql", (20240101120000, "add x", "up")),
    ("3_drop_x.down.sql", (3, "drop x", "down")),
    ("4_twice.sql.sql", (4, "twice", "simple")),  # trim_end_matches repeats
    ("4_twice.up.sql.up.sql", (4, "twice", "up")),
    ("5_.sql", (5, "", "simple")),
    ("5_.up.sql", (5, "", "up")),
    ("10_up.sql", (10, "up", "simple")),  # no dot before "up": a simple migration
    ("11_x.UP.sql", (11, "x.UP", "simple")),
    ("+6_plus.sql", (6, "plus", "simple")),  # Rust's i64::from_str takes a sign
    ("-7_negative.sql", (-7, "negative", "simple")),
    ("9223372036854775807_max.sql", (9223372036854775807, "max", "simple")),
    ("-9223372036854775808_min.sql", (-9223372036854775808, "min", "simple")),
    ("12_ünïcode_ok.sql", (12, "ünïcode ok", "simple")),
]


@pytest.mark.parametrize(("name", "expected"), PARSED)
def test_parse_filename(name: str, expected: tuple[int, str, str]) -> None:
    assert rules.parse_filename(name) == expected


IGNORED = [
    "README.md",
    "users.sql",  # no underscore
    "nounderscore",
    "1_users.txt",
    "1_users.SQL",
    "1_users.sql~",
    "1_users.sql.bak",
    "x_not_sql.txt",  # ignored before the version is even looked at
    "_",
]


@pytest.mark.parametrize("name", IGNORED)
def test_parse_filename_ignores(name: str) -> None:
    assert rules.parse_filename(name) is None


HARD_ERRORS = [
    ("x1_bad.sql", '"x1_bad.sql"'),
    ("_foo.sql", '"_foo.sql"'),  # empty prefix
    ("v1_foo.sql", '"v1_foo.sql"'),
    ("1a_foo.sql", '"1a_foo.sql"'),
    (" 1_foo.sql", '" 1_foo.sql"'),  # Python's int() would take it, Rust's does not
    ("1.0_foo.sql", '"1.0_foo.sql"'),
    ("+_foo.sql", '"+_foo.sql"'),
    ("１_fullwidth.sql", '"１_fullwidth.sql"'),  # int() takes Unicode digits; Rust does not
    ("9223372036854775808_overflow.sql", '"9223372036854775808_overflow.sql"'),
    ("1e3_foo.sql", '"1e3_foo.sql"'),
    ('a"b_quote.sql', '"a\\"b_quote.sql"'),  # Rust's {:?} escapes the quote
    ("a\\b_back.sql", '"a\\\\b_back.sql"'),
    ("x\ty_tab.sql", '"x\\ty_tab.sql"'),
]


@pytest.mark.parametrize(("name", "shown"), HARD_ERRORS)
def test_parse_filename_hard_error(name: str, shown: str) -> None:
    with pytest.raises(MigrationError, match="^" + re.escape(bad_name(shown)) + "$"):
        rules.parse_filename(name)


# -- checksums and lock ids ----------------------------------------------------------

CHECKSUM_VECTORS = [
    # Published SHA-384 test vectors (FIPS 180-2).
    (
        b"",
        "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da"
        "274edebfe76f65fbd51ad2f14898b95b",
    ),
    (
        b"abc",
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
        "8086072ba1e7cc2358baeca134c825a7",
    ),
]


@pytest.mark.parametrize(("data", "hexdigest"), CHECKSUM_VECTORS)
def test_checksum_known_vectors(data: bytes, hexdigest: str) -> None:
    assert rules.checksum(data).hex() == hexdigest


@pytest.mark.parametrize(
    "data",
    [
        b"CREATE TABLE t (x int);\n",
        b"CREATE TABLE t (x int);\r\n",  # CRLF stays
        b"\xef\xbb\xbfCREATE TABLE t (x int);\n",  # BOM stays
        b"-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);\n",  # directive stays
        "SELECT 'é';\n".encode(),
    ],
)
def test_checksum_is_sha384_of_raw_bytes(data: bytes) -> None:
    digest = rules.checksum(data)
    assert digest == hashlib.sha384(data).digest()
    assert len(digest) == 48


def test_checksum_does_not_normalise() -> None:
    lf = b"SELECT 1;\n"
    assert rules.checksum(lf) != rules.checksum(lf.replace(b"\n", b"\r\n"))
    assert rules.checksum(lf) != rules.checksum(b"\xef\xbb\xbf" + lf)


LOCK_VECTORS = [
    # 0x3d32ad9e * zlib.crc32(name), worked out once and written down.
    ("chatalot", 1029201667983595304),  # crc32 = 1002405932
    ("postgres", 368907709894077238),  # crc32 = 359303029
    ("a", 4008724892388209754),  # crc32 = 3904355907 > 2**31: unsigned in sqlx too
    ("chaté", 161436201310799392),  # UTF-8 bytes c3 a9
    ("", 0),
]


@pytest.mark.parametrize(("name", "expected"), LOCK_VECTORS)
def test_lock_id(name: str, expected: int) -> None:
    assert rules.lock_id(name) == expected
    assert expected == 0x3D32AD9E * zlib.crc32(name.encode())


def test_lock_id_never_overflows_i64() -> None:
    assert 0x3D32AD9E * 0xFFFFFFFF < 2**63
    assert all(rules.lock_id(n) >= 0 for n, _ in LOCK_VECTORS)


# -- load_migrations -----------------------------------------------------------------


def write(folder: Path, name: str, data: bytes | str) -> Path:
    p = folder / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def test_load_sorted_and_filtered(tmp_path: Path) -> None:
    write(tmp_path, "10_ten.sql", "SELECT 10;\n")
    write(tmp_path, "2_two.sql", "SELECT 2;\n")
    write(tmp_path, "3_three.up.sql", "SELECT 3;\n")
    write(tmp_path, "3_three.down.sql", "SELECT -3;\n")
    write(tmp_path, "README.md", "not a migration")
    write(tmp_path, "notes.sql", "no underscore")
    (tmp_path / "4_a_directory.sql").mkdir()
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub, "5_nested.sql", "SELECT 5;\n")  # no recursion
    ms = rules.load_migrations(str(tmp_path))
    assert [(m.version, m.description, m.filename) for m in ms] == [
        (2, "two", "2_two.sql"),
        (3, "three", "3_three.up.sql"),
        (10, "ten", "10_ten.sql"),
    ]
    assert ms[0].sql == "SELECT 2;\n"
    assert ms[0].checksum == hashlib.sha384(b"SELECT 2;\n").digest()


def test_load_follows_symlinks(tmp_path: Path) -> None:
    target = write(tmp_path, "elsewhere.txt", "SELECT 1;\n")
    (tmp_path / "1_linked.sql").symlink_to(target)
    (ms,) = rules.load_migrations(tmp_path)
    assert (ms.version, ms.description, ms.filename) == (1, "linked", "1_linked.sql")


def test_load_broken_symlink_is_an_error(tmp_path: Path) -> None:
    # sqlx's fs::metadata fails on it, and so does the resolve.
    (tmp_path / "1_dangling.sql").symlink_to(tmp_path / "missing")
    with pytest.raises(MigrationError, match="error getting metadata of migration path"):
        rules.load_migrations(tmp_path)


def test_load_raw_bytes_checksum(tmp_path: Path) -> None:
    crlf = b"\xef\xbb\xbfCREATE TABLE t (x int);\r\n"
    write(tmp_path, "1_crlf_bom.sql", crlf)
    (m,) = rules.load_migrations(tmp_path)
    assert m.checksum == hashlib.sha384(crlf).digest()
    assert m.sql == crlf.decode()  # kept as read, BOM and CR included


NO_TX = [
    (b"-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);\n", True),
    (b"-- no-transaction", True),
    (b"-- no-transactional\n", True),  # sqlx's starts_with: a prefix is enough
    (b"-- No-Transaction\n", False),
    (b" -- no-transaction\n", False),
    (b"\xef\xbb\xbf-- no-transaction\n", False),  # the BOM comes first
    (b"--no-transaction\n", False),
    (b"SELECT 1;\n-- no-transaction\n", False),
]


@pytest.mark.parametrize(("data", "no_tx"), NO_TX)
def test_load_no_transaction(tmp_path: Path, data: bytes, no_tx: bool) -> None:
    write(tmp_path, "1_x.sql", data)
    (m,) = rules.load_migrations(tmp_path)
    assert m.no_transaction is no_tx


def test_load_bad_prefix_is_a_hard_error(tmp_path: Path) -> None:
    write(tmp_path, "1_ok.sql", "SELECT 1;\n")
    write(tmp_path, "x1_bad.sql", "SELECT 1;\n")
    with pytest.raises(MigrationError, match="^" + re.escape(bad_name('"x1_bad.sql"')) + "$"):
        rules.load_migrations(tmp_path)


def test_load_bad_prefix_on_a_down_file_too(tmp_path: Path) -> None:
    write(tmp_path, "x_undo.down.sql", "SELECT 1;\n")
    with pytest.raises(MigrationError, match="expected integer version prefix"):
        rules.load_migrations(tmp_path)


@pytest.mark.parametrize("name", ["1_latin1.sql", "1_latin1.down.sql"])
def test_load_requires_utf8(tmp_path: Path, name: str) -> None:
    write(tmp_path, name, b"SELECT '\xe9';\n")
    with pytest.raises(MigrationError, match="valid UTF-8"):
        rules.load_migrations(tmp_path)


def test_load_duplicate_versions(tmp_path: Path) -> None:
    write(tmp_path, "1_first.sql", "SELECT 1;\n")
    write(tmp_path, "01_second.sql", "SELECT 1;\n")
    with pytest.raises(MigrationError, match="migration 1 is defined twice"):
        rules.load_migrations(tmp_path)


def test_load_up_and_down_share_a_version(tmp_path: Path) -> None:
    write(tmp_path, "1_x.up.sql", "SELECT 1;\n")
    write(tmp_path, "1_x.down.sql", "SELECT 2;\n")
    write(tmp_path, "2_y.sql", "SELECT 3;\n")
    write(tmp_path, "2_y.down.sql", "SELECT 4;\n")
    assert [m.version for m in rules.load_migrations(tmp_path)] == [1, 2]


def test_load_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="error reading migration directory"):
        rules.load_migrations(tmp_path / "nope")


def test_load_non_utf8_file_name(tmp_path: Path) -> None:
    # to_string_lossy: the bad byte becomes U+FFFD in the description.
    name = os.fsdecode(b"7_caf\xe9.sql")
    (tmp_path / name).write_bytes(b"SELECT 1;\n")
    (m,) = rules.load_migrations(tmp_path)
    assert (m.version, m.description) == (7, "caf\ufffd")


# -- the bundled migrations -------------------------------------------------------------

EXPECTED_DESCRIPTIONS = [
    "users", "identity keys", "refresh tokens", "audit log", "prekeys",
    "channels", "messages", "files", "dm pairs", "voice sessions",
    "reactions", "unread tracking", "channel bans", "groups", "group invites",
    "account deletion", "admin role", "registration invites", "communities",
    "user preferences", "pinned messages", "sender key distributions", "instance owner",
    "permissions", "performance indexes", "security suite", "lockout quota",
    "blocking reports", "new features", "discoverable", "group discoverable",
    "personal groups", "channel archiving", "customization", "more indexes",
    "community members index", "recovery codes", "message edits", "threads",
    "webhooks", "polls", "custom emoji", "announcements", "feedback", "web push",
    "user warnings", "slow mode", "instance settings", "e2e feature flag",
    "thumbnails", "gallery channels", "oidc",
]  # fmt: skip


def test_bundled_set() -> None:
    ms = rules.load_migrations(BUNDLED)
    assert [m.version for m in ms] == list(range(1, 53))
    assert [m.description for m in ms] == EXPECTED_DESCRIPTIONS
    assert all(re.fullmatch(r"\d{3}_[a-z0-9_]+\.sql", m.filename) for m in ms)
    assert sorted(p.name for p in BUNDLED.iterdir()) == [m.filename for m in ms]


@pytest.mark.parametrize("path", sorted(BUNDLED.glob("*.sql")), ids=lambda p: p.name)
def test_bundled_file_bytes(path: Path) -> None:
    data = path.read_bytes()
    data.decode("utf-8")
    assert not data.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in data
    assert data.endswith(b"\n")
    # Code only: comments may name what is avoided.
    text = re.sub(r"--[^\n]*", "", data.decode()).upper()
    for newer in ("NULLS NOT DISTINCT", "MERGE INTO", "CREATE OR REPLACE TRIGGER"):
        assert newer not in text, f"{path.name} needs PostgreSQL > 13: {newer}"
    assert "CREATE EXTENSION" not in text


def test_bundled_no_transaction_files_hold_one_concurrent_index() -> None:
    no_tx = [m for m in rules.load_migrations(BUNDLED) if m.no_transaction]
    assert [m.version for m in no_tx] == [35, 36]
    for m in no_tx:
        code = "\n".join(
            line for line in m.sql.splitlines() if not line.lstrip().startswith("--")
        ).strip()
        assert code.count(";") == 1 and code.endswith(";")
        assert code.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS ")


def test_bundled_enum_types() -> None:
    by_version = {m.version: m.sql for m in rules.load_migrations(BUNDLED)}
    creators = sorted(v for v, sql in by_version.items() if "CREATE TYPE" in sql)
    assert creators == [6, 17, 28]


# -- plan(): sqlx's run() checks -----------------------------------------------------------


def mig(version: int, text: str | None = None) -> Migration:
    sql = text if text is not None else f"SELECT {version};\n"
    data = sql.encode()
    return Migration(version, f"m{version}", sql, hashlib.sha384(data).digest(), False, "")


def row(version: int, *, ok: bool = True, modified: bool = False) -> AppliedMigration:
    m = mig(version, f"SELECT {version}; -- edited\n" if modified else None)
    return AppliedMigration(version, m.checksum, ok)


LOCAL = [mig(1), mig(2), mig(3), mig(4)]

PLANS: list[tuple[str, list[AppliedMigration], bool, list[int] | str]] = [
    ("fresh", [], False, [1, 2, 3, 4]),
    ("partial", [row(1), row(2)], False, [3, 4]),
    ("complete", [row(1), row(2), row(3), row(4)], False, []),
    ("lower version pending", [row(1), row(3), row(4)], False, [2]),
    ("gaps", [row(2), row(4)], False, [1, 3]),
    (
        "dirty (lowest reported)",
        [row(1), row(3, ok=False), row(2, ok=False)],
        False,
        "migration 2 is partially applied; fix and remove row from `_sqlx_migrations` table",
    ),
    (
        "dirty before missing and modified",
        [row(9), row(1, modified=True), row(4, ok=False)],
        False,
        "migration 4 is partially applied; fix and remove row from `_sqlx_migrations` table",
    ),
    (
        "missing",
        [row(1), row(9)],
        False,
        "migration 9 was previously applied but is missing in the resolved migrations",
    ),
    (
        "missing (lowest reported)",
        [row(9), row(7), row(1)],
        False,
        "migration 7 was previously applied but is missing in the resolved migrations",
    ),
    (
        "missing before modified",
        [row(1, modified=True), row(9)],
        False,
        "migration 9 was previously applied but is missing in the resolved migrations",
    ),
    ("missing ignored", [row(1), row(9)], True, [2, 3, 4]),
    (
        "modified",
        [row(1), row(2, modified=True)],
        False,
        "migration 2 was previously applied but has been modified",
    ),
    (
        "modified (lowest reported)",
        [row(1), row(2), row(3, modified=True), row(4, modified=True)],
        False,
        "migration 3 was previously applied but has been modified",
    ),
    (
        "modified above a pending one refuses everything",
        [row(1), row(3, modified=True)],
        False,
        "migration 3 was previously applied but has been modified",
    ),
]


@pytest.mark.parametrize(
    ("applied", "ignore_missing", "expected"),
    [p[1:] for p in PLANS],
    ids=[p[0] for p in PLANS],
)
def test_plan(
    applied: list[AppliedMigration], ignore_missing: bool, expected: list[int] | str
) -> None:
    if isinstance(expected, str):
        with pytest.raises(MigrationError, match="^" + re.escape(expected) + "$"):
            rules.plan(LOCAL, applied, ignore_missing=ignore_missing)
    else:
        got = rules.plan(LOCAL, applied, ignore_missing=ignore_missing)
        assert [m.version for m in got] == expected


def test_plan_sorts_local() -> None:
    assert [m.version for m in rules.plan([mig(3), mig(1), mig(2)], [])] == [1, 2, 3]


def test_plan_rejects_duplicate_local_versions() -> None:
    with pytest.raises(MigrationError, match="defined twice"):
        rules.plan([mig(1), mig(1, "SELECT 'other';\n")], [])


# -- info ---------------------------------------------------------------------------------


def test_info_lines() -> None:
    local = [
        Migration(1, "users", "a", rules.checksum(b"a"), False, "001_users.sql"),
        Migration(2, "identity keys", "b", rules.checksum(b"b"), False, "002_identity_keys.sql"),
        Migration(3, "refresh tokens", "c", rules.checksum(b"c"), False, "003_refresh_tokens.sql"),
    ]
    applied = [
        AppliedMigration(1, rules.checksum(b"a")),
        AppliedMigration(2, rules.checksum(b"old b")),
        AppliedMigration(7, rules.checksum(b"gone")),  # not local: not listed
    ]
    assert rules.info_lines(local, applied) == [
        "1/installed users",
        "2/installed (different checksum) identity keys",
        f"applied migration had checksum {hashlib.sha384(b'old b').hexdigest()}",
        f"local migration has checksum {hashlib.sha384(b'b').hexdigest()}",
        "3/pending refresh tokens",
    ]


def test_info_lines_fresh() -> None:
    assert rules.info_lines([mig(2), mig(1)], []) == ["1/pending m1", "2/pending m2"]


DURATIONS = [
    (0, "0ns"),
    (999, "999ns"),
    (1_000, "1µs"),
    (1_500, "1.5µs"),
    (1_000_000, "1ms"),
    (12_345_678, "12.345678ms"),
    (100_000_000, "100ms"),
    (1_000_000_000, "1s"),
    (1_500_000_000, "1.5s"),
    (61_000_000_001, "61.000000001s"),
    (-1, "0ns"),
]


@pytest.mark.parametrize(("ns", "text"), DURATIONS)
def test_format_duration(ns: int, text: str) -> None:
    assert rules.format_duration(ns) == text


def test_applied_line() -> None:
    m = Migration(1, "identity keys", "", rules.checksum(b""), False, "001_identity_keys.sql")
    assert rules.applied_line(m, 3_250_000) == "Applied 1/migrate identity keys (3.25ms)"


# -- quoting ------------------------------------------------------------------------------
# Literals and identifiers are installer.sqltext's (tests/unit/test_sqltext.py); here only
# that what installer.sqlx.rules writes with them survives psql: see test_migrations_pg's
# byte-for-byte and odd-description cases, which run them through a real psql and server.


def test_descriptions_are_quoted_literals() -> None:
    sql = "SELECT 1;\n"
    m = Migration(3, "it's a\\back slash", sql, rules.checksum(sql.encode()), False, "x")
    assert "VALUES (3, E'it''s a\\\\back slash', TRUE," in rules.apply_script(m)


DOLLAR = [
    ("SELECT 1;", "$chatalot_sql$SELECT 1;$chatalot_sql$"),
    ("a $chatalot_sql$ b", "$chatalot_sql_1$a $chatalot_sql$ b$chatalot_sql_1$"),
    # The closing tag would complete "$chatalot_sql" at the end of the text.
    ("x $chatalot_sql", "$chatalot_sql_1$x $chatalot_sql$chatalot_sql_1$"),
    (
        "$chatalot_sql$ $chatalot_sql_1$",
        "$chatalot_sql_2$$chatalot_sql$ $chatalot_sql_1$$chatalot_sql_2$",
    ),
    ("", "$chatalot_sql$$chatalot_sql$"),
]


@pytest.mark.parametrize(("text", "quoted"), DOLLAR)
def test_dollar_quote(text: str, quoted: str) -> None:
    got = rules.dollar_quote(text)
    assert got == quoted
    tag = got[: got.index("$", 1) + 1]
    assert got[len(tag) :].find(tag) == len(text)  # the first closing tag is the real one


# -- the psql scripts ---------------------------------------------------------------------


def test_ledger_ddl_is_sqlxs() -> None:
    assert rules.LEDGER_DDL == (
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (\n"
        "    version BIGINT PRIMARY KEY,\n"
        "    description TEXT NOT NULL,\n"
        "    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
        "    success BOOLEAN NOT NULL,\n"
        "    checksum BYTEA NOT NULL,\n"
        "    execution_time BIGINT NOT NULL\n"
        ");\n"
    )


def test_apply_script_transactional() -> None:
    m = Migration(7, "it's new", "SELECT 1;\n", rules.checksum(b"SELECT 1;\n"), False, "7_x.sql")
    lines = rules.apply_script(m).splitlines()
    order = [
        "\\echo chatalot-migrate: start 7",
        "BEGIN;",
        "SELECT $chatalot_sql$SELECT 1;",
        "$chatalot_sql$ \\gexec",
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)"
        f" VALUES (7, 'it''s new', TRUE, decode('{m.checksum.hex()}', 'hex'), -1);",
        "COMMIT;",
        "\\echo chatalot-migrate: committed 7",
    ]
    positions = [lines.index(line) for line in order]
    assert positions == sorted(positions)
    update = next(line for line in lines if line.startswith("UPDATE"))
    assert "SET execution_time =" in update and update.endswith("\\gset")
    assert "WHERE version = 7 " in update
    assert lines.index(update) > lines.index("COMMIT;")
    assert lines[-1] == "\\echo chatalot-migrate: applied 7 :chatalot_elapsed"


def test_apply_script_no_transaction() -> None:
    sql = "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x);\n"
    m = Migration(35, "more indexes", sql, rules.checksum(sql.encode()), True, "035_x.sql")
    script = rules.apply_script(m)
    assert "BEGIN;" not in script and "COMMIT;" not in script
    assert f"SELECT $chatalot_sql${sql}$chatalot_sql$ \\gexec\n" in script
    assert "VALUES (35, 'more indexes', TRUE," in script


def test_run_script_layout() -> None:
    applied = [row(1), row(2)]
    script = rules.run_script(
        [mig(4), mig(3)], database="chatalot", applied=applied, role="chatalot", set_role=True
    )
    key = rules.lock_id("chatalot")
    marks = [
        "\\set ON_ERROR_STOP on",
        "\\o /dev/null",
        'SET ROLE "chatalot";',
        f"SELECT pg_advisory_lock({key});",
        rules.LEDGER_DDL,
        "DO $chatalot_guard$",
        "current_database() <> 'chatalot'",
        "current_user <> 'chatalot'",
        f"IF ledger_rows <> '1:{applied[0].checksum.hex()}:t,2:{applied[1].checksum.hex()}:t'",
        "\\echo chatalot-migrate: start 3",
        "\\echo chatalot-migrate: start 4",
        f"SELECT pg_advisory_unlock({key});",
        "\\echo chatalot-migrate: finished",
    ]
    positions = [script.index(mark) for mark in marks]
    assert positions == sorted(positions)


def test_run_script_polling_lock() -> None:
    key = rules.lock_id("chatalot")
    script = rules.run_script([mig(1)], database="chatalot", applied=[], wait_for_lock=False)
    assert "pg_advisory_lock(" not in script
    try_lock = script.index(f"SELECT pg_try_advisory_lock({key}) AS chatalot_locked \\gset\n"
                            "\\if :chatalot_locked\n\\else\n"
                            f"\\echo chatalot-migrate: busy {key}\n\\q\n\\endif\n")
    assert try_lock < script.index(rules.LEDGER_DDL) < script.index("chatalot-migrate: start 1")


def test_run_script_without_role() -> None:
    script = rules.run_script([], database="db", applied=[])
    assert "SET ROLE" not in script and "current_user" not in script
    assert "IF ledger_rows <> '' THEN" in script


def test_run_script_refuses_an_applied_version() -> None:
    with pytest.raises(MigrationError, match="already in _sqlx_migrations"):
        rules.run_script([mig(1)], database="db", applied=[row(1)])


def test_run_script_set_role_needs_a_role() -> None:
    with pytest.raises(MigrationError, match=r"^set_role needs the role to switch to$"):
        rules.run_script([], database="db", applied=[], set_role=True)


RUN_OUTPUTS = [
    (
        "chatalot-migrate: locked 42\n"
        "chatalot-migrate: start 1\nchatalot-migrate: committed 1\n"
        "chatalot-migrate: applied 1 1500000\n"
        "some query output\n"
        "chatalot-migrate: start 2\nchatalot-migrate: committed 2\n"
        "chatalot-migrate: applied 2 7000\n"
        "chatalot-migrate: finished\n",
        rules.RunOutcome(applied={1: 1500000, 2: 7000}, failed=None, finished=True, locked=True),
    ),
    (
        "chatalot-migrate: locked 42\n"
        "chatalot-migrate: start 1\nchatalot-migrate: committed 1\n"
        "chatalot-migrate: applied 1 1500000\n"
        "chatalot-migrate: start 2\n",
        rules.RunOutcome(applied={1: 1500000}, failed=2, finished=False, locked=True),
    ),
    (
        "chatalot-migrate: locked 42\nchatalot-migrate: start 5\nchatalot-migrate: committed 5\n",
        rules.RunOutcome(applied={5: -1}, failed=None, finished=False, locked=True),
    ),
    ("", rules.RunOutcome(applied={}, failed=None, finished=False, locked=False)),
    (
        "chatalot-migrate: busy 42\n",
        rules.RunOutcome(applied={}, failed=None, finished=False, locked=False, busy=True),
    ),
]


@pytest.mark.parametrize(("stdout", "outcome"), RUN_OUTPUTS)
def test_parse_run_output(stdout: str, outcome: rules.RunOutcome) -> None:
    assert rules.parse_run_output(stdout) == outcome


def test_parse_ledger_probe() -> None:
    a = hashlib.sha384(b"a").hexdigest()
    b = hashlib.sha384(b"b").hexdigest()
    out = (
        "chatalot-ledger: owner chatalot\n"
        f"chatalot-ledger: row 1 {a} t\n"
        f"chatalot-ledger: row 2 {b} f\n"
        "chatalot-ledger: end\n"
    )
    assert rules.parse_ledger_probe(out) == rules.LedgerState(
        exists=True,
        owner="chatalot",
        applied=(
            AppliedMigration(1, bytes.fromhex(a), True),
            AppliedMigration(2, bytes.fromhex(b), False),
        ),
    )
    assert rules.parse_ledger_probe("chatalot-ledger: absent\n") == rules.LedgerState(
        exists=False, owner=None, applied=()
    )


@pytest.mark.parametrize(("stdout", "message"), [
    ("", "the _sqlx_migrations probe printed nothing recognisable"),
    ("chatalot-ledger: row 1 zz t\n",
     "unreadable _sqlx_migrations probe line: 'chatalot-ledger: row 1 zz t'"),
    ("chatalot-ledger: ?\n", "unreadable _sqlx_migrations probe line: 'chatalot-ledger: ?'"),
])
def test_parse_ledger_probe_garbage(stdout: str, message: str) -> None:
    with pytest.raises(MigrationError, match="^" + re.escape(message) + "$"):
        rules.parse_ledger_probe(stdout)


_A = hashlib.sha384(b"a").hexdigest()
#: psql's stderr when the row query is refused (ON_ERROR_STOP: nothing runs after it)
DENIED = "psql:<stdin>:12: ERROR:  permission denied for table _sqlx_migrations\n"


@pytest.mark.parametrize(("stdout", "state"), [
    # the probe ran to its end: rows, or none (an empty ledger table)
    (f"chatalot-ledger: owner chatalot\nchatalot-ledger: row 1 {_A} t\nchatalot-ledger: end\n",
     rules.LedgerState(True, "chatalot", (AppliedMigration(1, bytes.fromhex(_A), True),))),
    ("chatalot-ledger: owner chatalot\nchatalot-ledger: end\n",
     rules.LedgerState(True, "chatalot", ())),
    # no ledger: one line, as before (no end line needed)
    ("chatalot-ledger: absent\n", rules.LedgerState(False, None, ())),
    # psql's other lines are not the probe's
    ("Timing is on.\nchatalot-ledger: absent\n", rules.LedgerState(False, None, ())),
], ids=["rows", "empty table", "absent", "other lines"])
def test_parse_ledger_probe_complete_outputs(stdout: str, state: rules.LedgerState) -> None:
    assert rules.parse_ledger_probe(stdout, DENIED) == state


@pytest.mark.parametrize(("stdout", "errors", "database", "message"), [
    # the row query was refused: owner, no rows, no end line
    ("chatalot-ledger: owner other\n", DENIED, "chatalot",
     r"^_sqlx_migrations in database chatalot \(owner other\) could not be read: "
     r"ERROR: permission denied for table _sqlx_migrations$"),
    ("chatalot-ledger: owner other\n", DENIED, None,
     r"^_sqlx_migrations \(owner other\) could not be read: ERROR: permission denied for table "
     r"_sqlx_migrations$"),
    # stopped after some rows (e.g. the connection dropped): still not the ledger
    (f"chatalot-ledger: owner chatalot\nchatalot-ledger: row 1 {_A} t\n",
     "FATAL:  terminating connection due to administrator command\n", "app",
     r"^_sqlx_migrations in database app \(owner chatalot\) could not be read: FATAL: "
     r"terminating connection due to administrator command$"),
    # no error output at all: still an error, never an empty ledger
    ("chatalot-ledger: owner chatalot\n", "", None,
     r"^_sqlx_migrations \(owner chatalot\) could not be read: the probe stopped before its "
     r"end line$"),
    # nothing printed: the error is named
    ("", "psql: error: connection to server on socket failed\n", None,
     r"^the _sqlx_migrations probe printed nothing recognisable: psql: error: connection to "
     r"server on socket failed$"),
], ids=["denied", "denied, no database named", "stopped after a row", "no error output",
        "nothing"])
def test_parse_ledger_probe_unreadable_ledger_is_an_error(
        stdout: str, errors: str, database: str | None, message: str) -> None:
    with pytest.raises(MigrationError, match=message):
        rules.parse_ledger_probe(stdout, errors, database=database)


@pytest.mark.parametrize("stdout", [
    "chatalot-ledger: end\n",  # an end with no owner line
    "chatalot-ledger: absent\nchatalot-ledger: end\n",
    f"chatalot-ledger: owner chatalot\nchatalot-ledger: end\nchatalot-ledger: row 1 {_A} t\n",
    "chatalot-ledger: owner chatalot\nchatalot-ledger: end now\n",
], ids=["end alone", "absent then end", "row after end", "end with words"])
def test_parse_ledger_probe_misplaced_end_line(stdout: str) -> None:
    with pytest.raises(MigrationError, match=r"^unreadable _sqlx_migrations probe line"):
        rules.parse_ledger_probe(stdout)


def test_ledger_probe_prints_its_end_line_after_the_rows() -> None:
    probe = rules.LEDGER_PROBE
    rows = probe.index("FROM _sqlx_migrations ORDER BY version;")
    end = probe.index("\\echo chatalot-ledger: end\n")
    assert rows < end < probe.index("\\else") < probe.index("\\echo chatalot-ledger: absent")


@pytest.mark.parametrize(("errors", "text"), [
    (DENIED, "ERROR: permission denied for table _sqlx_migrations"),
    ("psql:<stdin>:3: FATAL:  role \"x\" does not exist\nmore\n", 'FATAL: role "x" does not exist'),
    ("one\ntwo\nthree\nfour\n", "two; three; four"),
    ("", ""),
])
def test_psql_error_text(errors: str, text: str) -> None:
    assert rules.psql_error_text(errors) == text
