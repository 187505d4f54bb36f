"""sqlx-cli 0.8's `migrate run --target-version` in rules.plan, and what is said of files whose
bytes differ from the ledger's only by their line endings or a byte order mark."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from installer.errors import MigrationError
from installer.sqlx import rules
from installer.sqlx.rules import BOM, AppliedMigration, Migration

LF = b"CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n"
CRLF = LF.replace(b"\n", b"\r\n")


def mig(version: int, data: bytes | None = None, description: str | None = None) -> Migration:
    """A migration as load_migrations makes it from a file of these bytes."""
    data = f"CREATE TABLE t{version} (id int);\n".encode() if data is None else data
    text = data.decode("utf-8")
    name = description or f"m{version}"
    return Migration(version=version, description=name, sql=text, checksum=rules.checksum(data),
                     no_transaction=text.startswith(rules.NO_TRANSACTION),
                     filename=f"{version}_{name.replace(' ', '_')}.sql")


#: a source with a gap: 1, 2, 3, 5 (4 is no version of it)
LOCAL = [mig(1), mig(2), mig(3), mig(5)]


def rows(*versions: int, dirty: int | None = None, missing: int | None = None
         ) -> list[AppliedMigration]:
    """Ledger rows for these versions (their files' checksums); `dirty`: one with success
    false; `missing`: one no file of the source has."""
    by_version = {m.version: m for m in LOCAL}
    out = [AppliedMigration(v, by_version[v].checksum) for v in versions]
    if dirty is not None:
        out.append(AppliedMigration(dirty, by_version[dirty].checksum, success=False))
    if missing is not None:
        out.append(AppliedMigration(missing, b"\x07" * 48))
    return out


# -- plan() with a target ---------------------------------------------------------------------

#: (case, applied, target, ignore_missing) -> pending versions, or sqlx's message
TARGETS: list[tuple[str, list[AppliedMigration], int | None, bool, list[int] | str]] = [
    ("no target: everything", rows(1), None, False, [2, 3, 5]),
    ("fresh, target the first", [], 1, False, [1]),
    ("fresh, target in between", [], 3, False, [1, 2, 3]),
    ("in between", rows(1), 3, False, [2, 3]),
    ("the newest: all", rows(1), 5, False, [2, 3, 5]),
    ("equal to the latest applied: nothing", rows(1, 2), 2, False, []),
    ("all applied, target the newest", rows(1, 2, 3, 5), 5, False, []),
    ("a gap below the latest applied is pending", rows(1, 3), 3, False, [2]),
    ("a gap below, target above", rows(1, 3), 5, False, [2, 5]),
    ("not present: the gap", rows(1), 4, False, rules.not_present_message(4)),
    ("not present: above every version", rows(1), 99, False, rules.not_present_message(99)),
    ("not present: below every version", [], 0, False, rules.not_present_message(0)),
    ("not present wins over dirty", rows(1, dirty=2), 4, False, rules.not_present_message(4)),
    ("not present wins over missing", rows(1, missing=7), 4, False,
     rules.not_present_message(4)),
    ("not present wins over too old", rows(1, 2, 3), 4, False, rules.not_present_message(4)),
    ("dirty before too old", rows(1, 2, dirty=3), 1, False, rules.dirty_message(3)),
    ("dirty with a valid target", rows(1, dirty=2), 3, False, rules.dirty_message(2)),
    ("missing before too old", rows(1, 2, missing=4), 1, False, rules.missing_message(4)),
    ("too old", rows(1, 2, 3), 2, False, rules.too_old_message(2, 3)),
    ("too old by one version", rows(1, 2, 3, 5), 3, False, rules.too_old_message(3, 5)),
    ("too old: the latest is a missing one when ignored", rows(1, missing=4), 3, True,
     rules.too_old_message(3, 4)),
    ("ignored missing below the target", rows(1, missing=4), 5, True, [2, 3, 5]),
]


@pytest.mark.parametrize(("applied", "target", "ignore_missing", "expected"),
                         [t[1:] for t in TARGETS], ids=[t[0] for t in TARGETS])
def test_plan_with_a_target(applied: list[AppliedMigration], target: int | None,
                            ignore_missing: bool, expected: list[int] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(MigrationError, match=f"^{re.escape(expected)}$"):
            rules.plan(LOCAL, applied, ignore_missing=ignore_missing, target_version=target)
    else:
        pending = rules.plan(LOCAL, applied, ignore_missing=ignore_missing,
                             target_version=target)
        assert [m.version for m in pending] == expected


def test_the_latest_of_an_empty_ledger_is_zero_as_in_sqlx_cli() -> None:
    """sqlx-cli: `latest_version = ... .unwrap_or(0)`, so a negative target is too old for
    a fresh database; a version 0 is not."""
    local = [mig(-1), mig(0), mig(1)]
    with pytest.raises(MigrationError, match=r"^migration -1 is older than the latest applied "
                                             r"migration 0$"):
        rules.plan(local, [], target_version=-1)
    assert [m.version for m in rules.plan(local, [], target_version=0)] == [-1, 0]


@pytest.mark.parametrize(("applied", "target", "beyond"), [
    ([], None, []),
    (rows(1), None, []),
    ([], 1, [2, 3, 5]),
    (rows(1), 2, [3, 5]),
    (rows(1, 2), 2, [3, 5]),
    (rows(1), 3, [5]),
    (rows(1), 5, []),
    (rows(1, 2, 3, 5), 5, []),
    (rows(1, 5), 2, [3]),  # an applied one above the target is not left: it is there
])
def test_beyond_target(applied: list[AppliedMigration], target: int | None,
                       beyond: list[int]) -> None:
    assert [m.version for m in rules.beyond_target(LOCAL, applied, target)] == beyond


def test_beyond_target_is_in_version_order_whatever_the_order_given() -> None:
    shuffled = [LOCAL[3], LOCAL[1], LOCAL[2], LOCAL[0]]
    assert [m.version for m in rules.beyond_target(shuffled, [], 1)] == [2, 3, 5]


def test_pending_and_beyond_target_split_the_unapplied_ones() -> None:
    applied = rows(1, 3)
    pending = rules.plan(LOCAL, applied, target_version=3)
    left = rules.beyond_target(LOCAL, applied, 3)
    assert sorted(m.version for m in [*pending, *left]) == [2, 5]


def test_skipped_line_is_sqlx_clis(tmp_path: Path) -> None:
    (tmp_path / "20240105120000_add_read_receipts.sql").write_text("SELECT 1;\n")
    [m] = rules.load_migrations(tmp_path)
    assert rules.skipped_line(m) == "Skipped 20240105120000/migrate add read receipts (0ns)"
    assert rules.skipped_line(mig(4, description="x")) == "Skipped 4/migrate x (0ns)"


@pytest.mark.parametrize(("said", "text"), [
    (rules.not_present_message(7), "migration 7 is not present in the migration source"),
    (rules.too_old_message(3, 5), "migration 3 is older than the latest applied migration 5"),
], ids=["not present", "too old"])
def test_sqlx_cli_messages(said: str, text: str) -> None:
    assert said == text


# -- line endings and byte order marks ---------------------------------------------------------

_TAIL = (": sqlx checksums the raw bytes, so a Chatalot server built from LF files without a "
         "byte order mark refuses these ledger rows (a checkout with git's core.autocrlf=true "
         "does this: check the release out again with `git -c core.autocrlf=false`)")

NOTES: list[tuple[str, list[Migration], str | None]] = [
    ("none", [mig(1, LF), mig(2)], None),
    ("a lone CR is not CRLF", [mig(1, b"SELECT 1;\rSELECT 2;\r")], None),
    ("a BOM elsewhere than at the start", [mig(1, b"SELECT '" + BOM + b"';\n")], None),
    ("CRLF", [mig(1, LF), mig(2, CRLF)], "CRLF line endings in migration 2"),
    ("one CRLF line is enough", [mig(3, b"SELECT 1;\nSELECT 2;\r\n")],
     "CRLF line endings in migration 3"),
    ("BOM", [mig(1, BOM + LF), mig(2, LF)], "a UTF-8 byte order mark in migration 1"),
    ("both in one file", [mig(4, BOM + CRLF)],
     "CRLF line endings in migration 4; a UTF-8 byte order mark in migration 4"),
    ("both, in several files", [mig(1, BOM + LF), mig(2, CRLF), mig(3, CRLF)],
     "a UTF-8 byte order mark in migration 1; CRLF line endings in migrations 2, 3"),
    ("five: all named", [mig(v, CRLF) for v in range(1, 6)],
     "CRLF line endings in migrations 1, 2, 3, 4, 5"),
    ("six: and 1 more", [mig(v, CRLF) for v in range(1, 7)],
     "CRLF line endings in migrations 1, 2, 3, 4, 5 and 1 more"),
    ("many: and N more", [mig(v, BOM + CRLF) for v in range(10, 22)],
     "CRLF line endings in migrations 10, 11, 12, 13, 14 and 7 more; "
     "a UTF-8 byte order mark in migrations 10, 11, 12, 13, 14 and 7 more"),
]


@pytest.mark.parametrize(("local", "said"), [n[1:] for n in NOTES], ids=[n[0] for n in NOTES])
def test_encoding_note(local: list[Migration], said: str | None) -> None:
    assert rules.encoding_note(local) == (None if said is None else f"warning: {said}{_TAIL}")


def test_encoding_note_of_files_as_loaded(tmp_path: Path) -> None:
    """load_migrations keeps the bytes (a BOM decodes to U+FEFF and encodes back)."""
    (tmp_path / "1_a.sql").write_bytes(BOM + LF)
    (tmp_path / "2_b.sql").write_bytes(CRLF)
    (tmp_path / "3_c.sql").write_bytes(LF)
    note = rules.encoding_note(rules.load_migrations(tmp_path))
    assert note == ("warning: a UTF-8 byte order mark in migration 1; CRLF line endings in "
                    f"migration 2{_TAIL}")


_WHY = "the ledger's checksum is this file's "

#: (case, the file's bytes, the bytes the ledger's checksum is of) -> the explanation's head
EXPLAINED: list[tuple[str, bytes, bytes, str | None]] = [
    ("CRLF file, LF ledger", CRLF, LF,
     "with LF line endings: the file has CRLF line endings (a checkout with git's "
     "core.autocrlf=true); check the release out again with `git -c core.autocrlf=false` or "
     "convert the file to LF (dos2unix)"),
    ("BOM file, ledger without", BOM + LF, LF,
     "without its UTF-8 byte order mark: remove the mark (an editor added it)"),
    ("BOM and CRLF file, LF ledger without", BOM + CRLF, LF,
     "with LF line endings and without its UTF-8 byte order mark: check the release out "
     "again with `git -c core.autocrlf=false` and remove the mark"),
    ("LF file, CRLF ledger", LF, CRLF,
     "with CRLF line endings: the ledger was applied from a checkout with CRLF endings "
     "(git's core.autocrlf=true), which a server built from LF files refuses too"),
    ("BOM and CRLF file, LF ledger with the BOM", BOM + CRLF, BOM + LF,
     "with LF line endings: the file has CRLF line endings"),
    ("an edit", LF, LF.replace(b"1", b"2"), None),
    ("an edit and CRLF", CRLF, LF.replace(b"1", b"2"), None),
    ("a BOM added to the ledger's", LF, BOM + LF, None),
    ("BOM file, CRLF ledger without (two differences)", BOM + LF, CRLF, None),
    ("a lone CR", b"SELECT 1;\r", b"SELECT 1;\n", None),
]


@pytest.mark.parametrize(("data", "ledger", "why"), [e[1:] for e in EXPLAINED],
                         ids=[e[0] for e in EXPLAINED])
def test_explain_modified(data: bytes, ledger: bytes, why: str | None) -> None:
    said = rules.explain_modified(mig(2, data), rules.checksum(ledger))
    if why is None:
        assert said is None
    else:
        assert said is not None and said.startswith(_WHY + why), said


def test_plan_explains_a_crlf_copy_of_an_lf_applied_file(tmp_path: Path) -> None:
    (tmp_path / "1_users.sql").write_bytes(LF)
    (tmp_path / "2_keys.sql").write_bytes(CRLF)
    local = rules.load_migrations(tmp_path)
    applied = [AppliedMigration(1, rules.checksum(LF)), AppliedMigration(2, rules.checksum(LF))]
    why = rules.explain_modified(local[1], rules.checksum(LF))
    assert why is not None
    message = f"{rules.modified_message(2)}: {why}"
    assert message.startswith("migration 2 was previously applied but has been modified: "
                              "the ledger's checksum is this file's with LF line endings")
    for target in (None, 2):
        with pytest.raises(MigrationError, match=f"^{re.escape(message)}$"):
            rules.plan(local, applied, target_version=target)


def test_plan_says_sqlxs_bare_message_for_a_real_modification(tmp_path: Path) -> None:
    (tmp_path / "1_users.sql").write_bytes(LF)
    (tmp_path / "2_keys.sql").write_bytes(CRLF)
    local = rules.load_migrations(tmp_path)
    edited = LF.replace(b"VALUES (1)", b"VALUES (2)")
    applied = [AppliedMigration(1, rules.checksum(LF)), AppliedMigration(2, rules.checksum(edited))]
    with pytest.raises(MigrationError, match=r"^migration 2 was previously applied but has been "
                                             r"modified$"):
        rules.plan(local, applied)
