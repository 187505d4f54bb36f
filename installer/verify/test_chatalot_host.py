"""Is this a working Chatalot database host? One check per test, per host.

A failing check says what is wrong ("postgresql listens on 0.0.0.0:5432 ...",
"pg_hba line 3 uses trust ...", "migration 12 is missing from the ledger").
What is expected comes from the host's variables, the defaults apply uses, and
apply's own functions (the tuning calculator, the distribution strategy,
the bundled migrations). See conftest.py for how to run it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest

from installer.desired import backups
from installer.errors import ChatalotError
from installer.sqlx.rules import Migration, load_migrations
from installer.verify import checks
from installer.verify.observe import Observed


@cache
def local_migrations(folder: Path) -> tuple[Migration, ...]:
    return tuple(load_migrations(folder))


def expect(problems: Sequence[str]) -> None:
    """Pass, or fail with the problems as the whole message (no traceback)."""
    if problems:
        pytest.fail(checks.fail_text(problems), pytrace=False)


def test_postgresql_is_installed(chatalot: Observed) -> None:
    expect(checks.package_problems(chatalot.service.missing_packages))


def test_postgresql_is_enabled_at_boot(chatalot: Observed) -> None:
    if not chatalot.facts.systemd:
        pytest.skip(f"no systemd as PID 1 (PID 1 is {chatalot.facts.pid1 or 'unknown'}): "
                    "nothing starts services at boot")
    unit = chatalot.strategy.enable_unit()
    state = chatalot.systemd_words[0] if chatalot.systemd_words else "unknown"
    expect([] if chatalot.service.enabled else
           [f"{unit} is not enabled at boot (systemctl is-enabled {unit}: {state})"])


def test_postgresql_is_running(chatalot: Observed) -> None:
    s = chatalot.strategy
    problems = []
    if not chatalot.service.active:
        if chatalot.facts.systemd:
            state = chatalot.systemd_words[1] if len(chatalot.systemd_words) > 1 else "unknown"
            problems.append(f"{s.service()} is not active (systemctl is-active: {state})")
        else:
            problems.append(f"PostgreSQL {s.major} is not running ({s.control_tool()})")
    if chatalot.sql is None:
        problems.append("PostgreSQL does not answer: " + (chatalot.sql_error or "no output"))
    expect(problems)


def test_listens_only_where_configured(chatalot: Observed) -> None:
    c = chatalot.config
    live = (chatalot.sql or {}).get("listen_addresses")
    expect(checks.listen_problems(chatalot.sockets, c.pg_port, c.pg_listen, live))


def test_app_role_exists_without_extra_powers(chatalot: Observed) -> None:
    _needs_server(chatalot)
    expect(checks.role_problems((chatalot.sql or {}).get("role"), chatalot.config.db_user))


def test_database_url_logs_in_over_tcp(chatalot: Observed) -> None:
    c = chatalot.config
    expect(checks.login_problems(chatalot.login, c.env_file, c.db_user, c.db_name))


def test_database_is_owned_by_app_role_and_utf8(chatalot: Observed) -> None:
    _needs_server(chatalot)
    c = chatalot.config
    expect(checks.database_problems((chatalot.sql or {}).get("database"), c.db_name, c.db_user))


def test_public_cannot_connect_to_database(chatalot: Observed) -> None:
    _needs_server(chatalot)
    expect(checks.public_connect_problems((chatalot.sql or {}).get("database"),
                                          chatalot.config.db_name))


def test_app_role_has_schema_grants(chatalot: Observed) -> None:
    _needs_server(chatalot)
    c = chatalot.config
    privileges = (chatalot.sql or {}).get("schema_privileges")
    expect(checks.schema_problems(privileges, c.db_user, c.db_name))


def test_app_role_can_read_every_table(chatalot: Observed) -> None:
    _needs_server(chatalot)
    c = chatalot.config
    unreadable = (chatalot.sql or {}).get("unreadable_tables")
    expect(checks.table_read_problems(unreadable, c.db_user, c.db_name))


def test_pg_hba_has_no_trust_rules(chatalot: Observed) -> None:
    _needs_server(chatalot)
    expect(checks.hba_problems((chatalot.sql or {}).get("hba_rules")))


def test_settings_match_tuning(chatalot: Observed) -> None:
    _needs_server(chatalot)
    live = (chatalot.sql or {}).get("settings") or {}
    expect(checks.settings_problems(chatalot.wanted, live, chatalot.inputs))


def test_migrations_are_applied(chatalot: Observed) -> None:
    folder = chatalot.config.migrations_source
    _needs_server(chatalot)
    if folder is None:  # the server applies its own: its ledger readable, none dirty
        expect(checks.server_ledger_problems(chatalot.ledger, chatalot.ledger_error))
        return
    try:
        local = local_migrations(folder)
    except ChatalotError as e:
        pytest.fail(f"cannot read the migrations in {folder}: {e}", pytrace=False)
    problems = checks.migration_problems(local, chatalot.ledger, chatalot.config.db_name,
                                         chatalot.ledger_error)
    source = chatalot.config.migrations
    if problems and source is not None and source.remote:  # which release was checked
        problems.append(f"checked against {chatalot.config.migrations_label}")
    expect(problems)


def test_env_file_is_0600_root(chatalot: Observed) -> None:
    expect(checks.env_file_problems(chatalot.env_meta, chatalot.config.env_file))


def test_backups_are_scheduled_as_configured(chatalot: Observed) -> None:
    c = chatalot.config
    present = [path for path, text in chatalot.backup_files.items() if text is not None]
    expect(checks.backup_schedule_problems(c.backup, c.db_name, chatalot.facts.pid1, present,
                                           chatalot.backup_timer, chatalot.cron_running))


def test_pgbackrest_stanza_is_in_order(chatalot: Observed) -> None:
    """backup=pgbackrest: pgBackRest's own view of the stanza (repository, archive) is ok."""
    if chatalot.config.backup != "pgbackrest":
        pytest.skip(f"backup={chatalot.config.backup}: no pgBackRest stanza")
    expect(checks.pgbackrest_problems(chatalot.pgbackrest_info, backups.STANZA))


def test_wal_archiving_works(chatalot: Observed) -> None:
    """backup=pgbackrest: archive_command succeeds (no failure since the last success)."""
    if chatalot.config.backup != "pgbackrest":
        pytest.skip(f"backup={chatalot.config.backup}: no WAL archiving")
    _needs_server(chatalot)
    expect(checks.archiver_problems((chatalot.sql or {}).get("archiver")))


def test_newest_backup_is_recent(chatalot: Observed) -> None:
    c = chatalot.config
    if c.backup == "none":
        pytest.skip("backup=none: nothing schedules backups, so none is due")
    systemd = chatalot.facts.systemd
    expect(checks.backup_age_problems(
        backups.newest_taken(chatalot.backups), chatalot.now,
        chatalot.backup_stat.schedule_mtime(c.db_name, systemd), c.db_name, c.backup_dir,
        systemd=systemd))


def test_backups_are_not_readable_by_others(chatalot: Observed) -> None:
    b = chatalot.backup_stat
    expect(checks.backup_permission_problems(b.dir, b.dumps, chatalot.config.backup_dir))


def _needs_server(chatalot: Observed) -> None:
    if chatalot.sql is None:
        pytest.fail("PostgreSQL does not answer, so this cannot be checked: "
                    + (chatalot.sql_error or "no output"), pytrace=False)
