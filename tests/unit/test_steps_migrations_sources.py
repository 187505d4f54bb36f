"""ApplyMigrations and MigrationInfo over a recorded host, by where the migrations come from:
a fetched git or archive source is named in the reasons (its commit or digest), a folder is
not, the bundled set's note comes with applying it (never with a no-op), an unfetched source
fails; `--target-version` as sqlx-cli's; files with CRLF line endings or a byte order mark
are warned about."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from installer.desired.config import HostConfig
from installer.desired.sources import MigrationSource, parse_source
from installer.errors import MigrationError
from installer.resources import migrations_dir
from installer.sqlx import migrator, rules
from installer.steps.base import Step, StepFailed
from installer.steps.migrations import BUNDLED_NOTE, ApplyMigrations, MigrationInfo
from tests.unit.stepkit import Harness, harness, said, service, state
from tests.unit.test_migrator import probe_lines
from tests.unit.test_steps_migrations import FILES, PSQL, folder, ran

COMMIT = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "a1b2c3d4e5f60718" * 4
GIT = "git+https://git.example/owner/chatalot.git@v1"
GIT_LABEL = f"{GIT} (commit 0123456789ab)"
SECRET_GIT = "git+https://ci:s3cret@git.example/owner/chatalot.git@v1"
ARCHIVE = "https://dl.example/chatalot-1.0.tar.gz"
PINNED = f"{ARCHIVE}#sha256={DIGEST}"

#: two more migrations after FILES' three, for --target-version
MORE = {"4_channels.sql": "CREATE TABLE channels (id int);\n",
        "5_messages.sql": "CREATE TABLE messages (id int);\n"}

Configure = Callable[[Path], HostConfig]


def from_source(source: MigrationSource) -> HostConfig:
    """As the commands build it: the fetched source in the host's variables."""
    return HostConfig.from_vars({"migrations_source": source})


#: kind -> (the config over a folder of migrations, how the reasons name it: None = not)
SOURCES: list[tuple[str, Configure, str | None]] = [
    ("git", lambda d: from_source(parse_source(GIT).fetched(d, COMMIT)), GIT_LABEL),
    ("git, a password in the URL",
     lambda d: from_source(parse_source(SECRET_GIT).fetched(d, COMMIT)),
     "git+https://ci:***@git.example/owner/chatalot.git@v1 (commit 0123456789ab)"),
    ("archive", lambda d: from_source(parse_source(ARCHIVE).fetched(d, DIGEST)),
     f"{ARCHIVE} (sha256 a1b2c3d4e5f60718)"),
    ("pinned archive", lambda d: from_source(parse_source(PINNED).fetched(d, DIGEST)), PINNED),
    ("folder", lambda d: HostConfig.from_vars({"migrations_source": str(d)}), None),
    ("fetched folder", lambda d: from_source(parse_source(str(d)).fetched(d)), None),
    ("folder built in code", lambda d: HostConfig(migrations_source=d), None),
]
SOURCE_IDS = [s[0] for s in SOURCES]

SQL = {"database": {"datname": "chatalot", "owner": "chatalot", "encoding": "UTF8"},
       "public_tables": 0}


def ledger_of(config: HostConfig, *applied: int, exists: bool = True) -> str:
    """LEDGER_PROBE's output with these versions applied (their files' checksums)."""
    assert config.migrations_source is not None
    sums = {m.version: m.checksum for m in rules.load_migrations(config.migrations_source)
            if m.version in applied}
    return probe_lines(sums, exists=exists)


def on_host(config: HostConfig, *applied: int, absent: bool = False,
            check: bool = False) -> Harness:
    """A Debian 12 host whose database holds these ledger rows (`absent`: no ledger yet)."""
    before = state(service(), sql=SQL, ledger=ledger_of(config, *applied, exists=not absent))
    return harness("debian12", before, check=check, config=config)


def collect(lines: list[str]) -> Callable[[str, str], None]:
    return lambda host, line: lines.append(f"{host}: {line}")


# -- the source, named or not ------------------------------------------------------------------

@pytest.mark.parametrize(("configure", "label"), [s[1:] for s in SOURCES], ids=SOURCE_IDS)
def test_check_mode_names_a_git_or_archive_source(
        tmp_path: Path, configure: Configure, label: str | None) -> None:
    h = on_host(configure(folder(tmp_path, FILES)), absent=True, check=True)
    reason = "would apply 3 migrations: 1-3" + (f"; from {label}" if label else "")
    assert said(h.run(ApplyMigrations())) == ("changed", reason)
    assert h.host.calls == []


@pytest.mark.parametrize(("configure", "label"), [s[1:] for s in SOURCES], ids=SOURCE_IDS)
def test_applying_names_a_git_or_archive_source(
        tmp_path: Path, configure: Configure, label: str | None) -> None:
    h = on_host(configure(folder(tmp_path, FILES)), absent=True)
    h.host.on(PSQL, ran(1, 2, 3))
    reason = "applied 1-3 (3 migrations)" + (f"; from {label}" if label else "")
    assert said(h.run(ApplyMigrations())) == ("changed", reason)
    assert "s3cret" not in reason


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
@pytest.mark.parametrize(("configure", "label"), [s[1:] for s in SOURCES], ids=SOURCE_IDS)
def test_a_no_op_names_a_git_or_archive_source_in_parentheses(
        tmp_path: Path, configure: Configure, label: str | None, check: bool) -> None:
    h = on_host(configure(folder(tmp_path, FILES)), 1, 2, 3, check=check)
    status, reason = said(h.run(ApplyMigrations()))
    assert (status, reason) == ("ok", "3 applied, none pending" + (f" ({label})" if label
                                                                     else ""))
    assert h.host.calls == [] and "from " not in reason and BUNDLED_NOTE not in reason


@pytest.mark.parametrize(("configure", "label"), [s[1:] for s in SOURCES], ids=SOURCE_IDS)
def test_migrate_info_names_a_git_or_archive_source(
        tmp_path: Path, configure: Configure, label: str | None) -> None:
    lines: list[str] = []
    h = on_host(configure(folder(tmp_path, FILES)), 1)
    result = h.run(MigrationInfo(on_line=collect(lines)))
    assert said(result) == ("ok", "1 installed, 2 pending" + (f" ({label})" if label else ""))
    assert lines == ["h: 1/installed users", "h: 2/pending identity keys",
                     "h: 3/pending refresh tokens"]
    assert h.host.calls == []


def test_migrate_info_names_it_when_the_database_is_not_there_yet(tmp_path: Path) -> None:
    config = from_source(parse_source(GIT).fetched(folder(tmp_path, FILES), COMMIT))
    h = harness("debian12", state(service(), sql={"database": None}), config=config)
    assert said(h.run(MigrationInfo())) == (
        "ok", f"0 installed, 3 pending (database chatalot does not exist yet) ({GIT_LABEL})")


def test_sqlxs_refusal_names_a_git_source(tmp_path: Path) -> None:
    config = from_source(parse_source(GIT).fetched(folder(tmp_path, FILES), COMMIT))
    h = on_host(config, 1, 2)
    (tmp_path / "migrations" / "2_identity_keys.sql").write_text("-- edited\n")
    with pytest.raises(MigrationError, match="^" + re.escape(
            f"migration 2 was previously applied but has been modified ({GIT_LABEL})") + "$"):
        h.run(ApplyMigrations())
    assert h.host.calls == []


# -- the bundled set ---------------------------------------------------------------------------

BUNDLED_SET = rules.load_migrations(migrations_dir())
ALL = migrator.version_ranges(m.version for m in BUNDLED_SET)
N = len(BUNDLED_SET)


@pytest.mark.parametrize("value", ["bundled", "BUNDLED"])
def test_the_bundled_sets_note_comes_with_applying_it(value: str) -> None:
    config = HostConfig.from_vars({"migrations_source": value})
    check = harness("debian12", state(service(), sql={"database": None}), check=True,
                    config=config)
    assert said(check.run(ApplyMigrations())) == (
        "changed", f"would apply {N} migrations: {ALL}; {BUNDLED_NOTE}")
    h = on_host(config, absent=True)
    h.host.on(PSQL, ran(*(m.version for m in BUNDLED_SET)))
    assert said(h.run(ApplyMigrations())) == (
        "changed", f"applied {ALL} ({N} migrations); {BUNDLED_NOTE}")


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_the_bundled_sets_note_never_comes_with_a_no_op(check: bool) -> None:
    config = HostConfig.from_vars({"migrations_source": "bundled"})
    h = on_host(config, *(m.version for m in BUNDLED_SET), check=check)
    assert said(h.run(ApplyMigrations())) == ("ok", f"{N} applied, none pending")
    assert said(h.run(MigrationInfo())) == ("ok", f"{N} installed, 0 pending")
    assert h.host.calls == []


# -- a source nobody fetched -------------------------------------------------------------------

UNFETCHED = [("git", GIT), ("archive", PINNED)]


@pytest.mark.parametrize(("step", "check"), [
    (ApplyMigrations(), False), (ApplyMigrations(), True), (MigrationInfo(), False),
], ids=["apply", "check", "info"])
@pytest.mark.parametrize("text", [u[1] for u in UNFETCHED], ids=[u[0] for u in UNFETCHED])
def test_an_unfetched_source_fails_naming_it(text: str, step: Step, check: bool) -> None:
    config = HostConfig.from_vars({"migrations_source": text})
    h = harness("debian12", state(service(), sql=SQL, ledger=probe_lines({})), check=check,
                config=config)
    with pytest.raises(StepFailed, match="^" + re.escape(
            f"migrations_source {text} was not fetched on the control machine (this command "
            "does not fetch migrations)") + "$"):
        h.run(step)
    assert h.host.calls == []


def test_an_unfetched_sources_failure_hides_the_password() -> None:
    config = HostConfig.from_vars({"migrations_source": SECRET_GIT})
    h = harness("debian12", state(service(), sql=SQL, ledger=probe_lines({})), config=config)
    with pytest.raises(StepFailed, match="was not fetched") as failed:
        h.run(ApplyMigrations())
    assert "s3cret" not in str(failed.value)


# -- --target-version --------------------------------------------------------------------------

#: (case, applied, absent ledger, target) -> (lines after `h: `, status, reason); a check run
TARGETED: list[tuple[str, tuple[int, ...], bool, int, list[str], str, str]] = [
    ("in between", (1,), False, 3,
     ["Can apply 2/migrate identity keys (0ns)", "Can apply 3/migrate refresh tokens (0ns)",
      "Skipped 4/migrate channels (0ns)", "Skipped 5/migrate messages (0ns)"],
     "changed", "would back up chatalot to /var/backups/chatalot, then apply 2 migrations: 2-3"),
    ("fresh", (), True, 2,
     ["Can apply 1/migrate users (0ns)", "Can apply 2/migrate identity keys (0ns)",
      "Skipped 3/migrate refresh tokens (0ns)", "Skipped 4/migrate channels (0ns)",
      "Skipped 5/migrate messages (0ns)"],
     "changed", "would apply 2 migrations: 1-2"),
    ("the newest", (1, 2), False, 5,
     ["Can apply 3/migrate refresh tokens (0ns)", "Can apply 4/migrate channels (0ns)",
      "Can apply 5/migrate messages (0ns)"],
     "changed", "would back up chatalot to /var/backups/chatalot, then apply 3 migrations: 3-5"),
    ("a gap below the latest applied", (1, 3), False, 4,
     ["Can apply 2/migrate identity keys (0ns)", "Can apply 4/migrate channels (0ns)",
      "Skipped 5/migrate messages (0ns)"],
     "changed", "would back up chatalot to /var/backups/chatalot, then apply 2 migrations: 2, 4"),
    ("equal to the latest applied", (1, 2), False, 2,
     ["Skipped 3/migrate refresh tokens (0ns)", "Skipped 4/migrate channels (0ns)",
      "Skipped 5/migrate messages (0ns)"],
     "ok", "2 applied, none pending, 3 beyond --target-version"),
]


@pytest.mark.parametrize(("applied", "absent", "target", "lines", "status", "reason"),
                         [t[1:] for t in TARGETED], ids=[t[0] for t in TARGETED])
def test_check_mode_with_a_target_version(
        tmp_path: Path, applied: tuple[int, ...], absent: bool, target: int,
        lines: list[str], status: str, reason: str) -> None:
    got: list[str] = []
    h = on_host(HostConfig(migrations_source=folder(tmp_path, {**FILES, **MORE})), *applied,
                absent=absent, check=True)
    result = h.run(ApplyMigrations(target_version=target, on_line=collect(got)))
    assert said(result) == (status, reason)
    assert got == [f"h: {line}" for line in lines]
    assert h.host.calls == []


def test_check_mode_with_a_target_version_names_a_git_source(tmp_path: Path) -> None:
    got: list[str] = []
    config = from_source(parse_source(GIT).fetched(folder(tmp_path, {**FILES, **MORE}), COMMIT))
    h = on_host(config, absent=True, check=True)
    result = h.run(ApplyMigrations(target_version=1, on_line=collect(got)))
    assert said(result) == ("changed", f"would apply 1 migration: 1; from {GIT_LABEL}")
    assert got == ["h: Can apply 1/migrate users (0ns)",
                   "h: Skipped 2/migrate identity keys (0ns)",
                   "h: Skipped 3/migrate refresh tokens (0ns)",
                   "h: Skipped 4/migrate channels (0ns)", "h: Skipped 5/migrate messages (0ns)"]


def test_applying_up_to_a_target_version(tmp_path: Path) -> None:
    got: list[str] = []
    h = on_host(HostConfig(migrations_source=folder(tmp_path, {**FILES, **MORE})), 1)
    h.host.on(PSQL, ran(2, 3))
    result = h.run(ApplyMigrations(backup=False, target_version=3, on_line=collect(got)))
    assert said(result) == ("changed", "applied 2-3 (2 migrations); no backup (--no-backup)")
    assert got == ["h: Applied 2/migrate identity keys (2µs)",
                   "h: Applied 3/migrate refresh tokens (3µs)",
                   "h: Skipped 4/migrate channels (0ns)", "h: Skipped 5/migrate messages (0ns)"]
    [call] = h.host.calls
    script = call.stdin or ""
    assert FILES["2_identity_keys.sql"] in script and FILES["3_refresh_tokens.sql"] in script
    assert all(sql not in script for sql in MORE.values())


@pytest.mark.parametrize(("configure", "suffix"), [
    (lambda d: HostConfig(migrations_source=d), ""),
    (lambda d: from_source(parse_source(GIT).fetched(d, COMMIT)), f" ({GIT_LABEL})"),
], ids=["folder", "git"])
@pytest.mark.parametrize(("applied", "target", "message"), [
    ((1,), 9, rules.not_present_message(9)),
    ((1, 2, 3), 2, rules.too_old_message(2, 3)),
], ids=["not present", "too old"])
def test_a_target_version_sqlx_refuses(
        tmp_path: Path, configure: Configure, suffix: str, applied: tuple[int, ...],
        target: int, message: str) -> None:
    got: list[str] = []
    h = on_host(configure(folder(tmp_path, {**FILES, **MORE})), *applied, check=True)
    with pytest.raises(MigrationError, match="^" + re.escape(message + suffix) + "$"):
        h.run(ApplyMigrations(target_version=target, on_line=collect(got)))
    assert got == [] and h.host.calls == []


# -- CRLF line endings and byte order marks ----------------------------------------------------

CRLF = {**FILES, "2_identity_keys.sql": "CREATE TABLE identity_keys (id int);\r\n"}
BOM = {**FILES, "3_refresh_tokens.sql": "\ufeffCREATE TABLE refresh_tokens (id int);\n"}
ODD = [("crlf", CRLF, "CRLF line endings in migration 2"),
       ("bom", BOM, "a UTF-8 byte order mark in migration 3")]


@pytest.mark.parametrize(("configure", "label"), [SOURCES[0][1:], SOURCES[4][1:]],
                         ids=["git", "folder"])
@pytest.mark.parametrize(("files", "odd"), [o[1:] for o in ODD], ids=[o[0] for o in ODD])
def test_odd_files_add_the_encoding_warning(
        tmp_path: Path, configure: Configure, label: str | None, files: dict[str, str],
        odd: str) -> None:
    config = configure(folder(tmp_path, files))
    assert config.migrations_source is not None
    note = rules.encoding_note(rules.load_migrations(config.migrations_source))
    assert note is not None and note.startswith(f"warning: {odd}: sqlx checksums the raw bytes")
    named = [f"from {label}"] if label else []
    check = on_host(config, absent=True, check=True)
    assert said(check.run(ApplyMigrations())) == (
        "changed", "; ".join(["would apply 3 migrations: 1-3", *named, note]))
    h = on_host(config, absent=True)
    h.host.on(PSQL, ran(1, 2, 3))
    assert said(h.run(ApplyMigrations())) == (
        "changed", "; ".join(["applied 1-3 (3 migrations)", *named, note]))


def test_lf_files_add_no_warning(tmp_path: Path) -> None:
    h = on_host(HostConfig(migrations_source=folder(tmp_path, FILES)), absent=True, check=True)
    assert "warning" not in said(h.run(ApplyMigrations()))[1]


def test_a_crlf_copy_of_an_lf_applied_file_is_explained(tmp_path: Path) -> None:
    d = folder(tmp_path, FILES)
    config = from_source(parse_source(GIT).fetched(d, COMMIT))
    h = on_host(config, 1, 2)
    (d / "2_identity_keys.sql").write_bytes(b"CREATE TABLE identity_keys (id int);\r\n")
    with pytest.raises(MigrationError, match="^" + re.escape(
            "migration 2 was previously applied but has been modified: the ledger's checksum "
            "is this file's with LF line endings: the file has CRLF line endings") + ".*"
            + re.escape(f"(dos2unix) ({GIT_LABEL})") + "$"):
        h.run(ApplyMigrations())
    assert h.host.calls == []
