"""`chatalot-db migrate run|info`: a drop-in for `sqlx migrate run` / `sqlx migrate info`.

Against one database (`--database-url URL`, else the DATABASE_URL variable): psql
runs on this machine as the URL's user, who therefore owns what the migrations
create; the password reaches psql through its environment, set from stdin, never
argv. Or against inventory hosts (`-i`), over SSH: the facts and the `apply
migrations` step only, as `apply` runs them (psql on the host as postgres, `SET
ROLE` to db_user). Output lines are sqlx-cli's: `1/installed users`,
`Applied 1/migrate users (3.2ms)`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from installer.commands.targets import (
    add_target_options,
    become_password,
    inventory_inputs,
    list_hosts,
)
from installer.desired.sources import FOLDER, NONE, parse_source
from installer.errors import MigrationError, UsageError
from installer.fleet.hosts import load_hosts, with_migrations
from installer.fleet.sources import SourceFetcher
from installer.resources import migrations_dir
from installer.sqlx import migrator, rules
from installer.steps.base import Step
from installer.steps.host import GatherFacts
from installer.steps.migrations import ApplyMigrations, LineSink, MigrationInfo
from installer.transport.base import Result, tethered, untethered
from installer.transport.local import LocalTransport

_DESCRIPTION = """\
Apply (run) or list (info) the Chatalot migrations exactly as sqlx does: the same
_sqlx_migrations rows and checksums, the same advisory lock, the same refusals
(partially applied, missing, modified) and the same output lines, so the Chatalot
server later sees its own migrator's work.

Target: --database-url URL (or the DATABASE_URL environment variable): psql runs on
this machine as the URL's user, who owns everything created. Or -i INVENTORY: each
host over SSH, psql run there as postgres with SET ROLE db_user (the apply step).
"""

#: --database-url's backups: this user's own state folder (with -i: backup_dir on the host)
URL_BACKUP_DIR = "~/.local/state/chatalot-db/backups"

_RUN_EPILOG = f"""\
Before applying to a database that already holds data (a ledger row, or any table in
schema public), pg_dump --format=custom writes <db>-<UTC time>-before-<version>.dump
(mode 0600) into --backup-dir (default {URL_BACKUP_DIR}, made 0700; with -i, each
host's backup_dir variable, on the host); --no-backup skips it.

Exit status: 0 done; 1 a refusal or failed migration (sqlx's message on stderr);
5 bad options; with -i, apply's codes (2 a host failed, 4 unreachable).

examples:
  chatalot-db migrate run --database-url postgres://chatalot@localhost/chatalot
  DATABASE_URL=... chatalot-db migrate run --source ./chatalot/migrations
  chatalot-db migrate info -i hosts.ini --limit db01
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `migrate run` and `migrate info`; `func` takes the Namespace, returns the exit code."""
    parser = subparsers.add_parser(
        "migrate", help="apply or list migrations as sqlx-cli does (run, info)",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="migrate_command", metavar="SUBCOMMAND",
                                parser_class=type(parser))
    sub.required = True

    run = sub.add_parser(
        "run", help="apply the pending migrations (sqlx migrate run)",
        description=_DESCRIPTION, epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _target_options(run)
    run.add_argument("--no-backup", action="store_true",
                     help="apply without the pg_dump backup first")
    run.add_argument("--backup-dir", metavar="DIR",
                     help=f"where backups go (default: {URL_BACKUP_DIR}; with -i the "
                     "host's backup_dir)")
    run.add_argument("--dry-run", action="store_true",
                     help="print what would be applied (`Can apply ...`), change nothing")
    run.add_argument("--ignore-missing", action="store_true",
                     help="ignore applied migrations missing from the source (as sqlx's)")
    run.add_argument("--target-version", type=int, metavar="VERSION",
                     help="apply migrations up to VERSION only (as sqlx's); the later ones "
                     "are printed as Skipped")
    run.set_defaults(func=cmd_run)

    info = sub.add_parser(
        "info", help="list each migration's status (sqlx migrate info)",
        description=_DESCRIPTION + "\nRead-only: creates nothing, not even the ledger.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _target_options(info)
    info.set_defaults(func=cmd_info)


def _target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", metavar="SOURCE",
                   help="the migrations: a folder, a Chatalot checkout, git+URL@REF (a tag, "
                   "branch or commit) or a release archive URL (#sha256=... pins it); with "
                   "-i it replaces migrations_source (default: migrations_source; without "
                   "-i, the bundled reference migrations)")
    p.add_argument("-D", "--database-url", metavar="URL",
                   help="postgres://user:password@host:port/db (default: $DATABASE_URL)")
    add_target_options(p, inventory="run on these inventory hosts over SSH instead of a URL",
                       forks="worked on", json="write apply's JSON report to FILE",
                       scope="with -i: ")


# -- commands ----------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    if args.inventory:
        return _on_hosts(args, lambda sink: ApplyMigrations(
            backup=not args.no_backup, ignore_missing=args.ignore_missing,
            target_version=args.target_version, on_line=sink),
            check=args.dry_run)
    local = rules.load_migrations(_source(args))
    odd = rules.encoding_note(local)
    if odd:
        print(f"chatalot-db: {odd}", file=sys.stderr)
    url = _url(args)
    t = LocalTransport()
    run_psql = _psql(url, t)
    ledger, session = migrator.read_ledger(run_psql)
    if args.dry_run:
        pending = rules.plan(local, ledger.applied, ignore_missing=args.ignore_missing,
                             target_version=args.target_version)
        for m in pending:
            print(f"Can apply {m.version}/migrate {m.description} (0ns)")
        for m in rules.beyond_target(local, ledger.applied, args.target_version):
            print(rules.skipped_line(m))
        if migrator.builds_indexes(pending):  # read-only: INVALID indexes to drop, or not
            for text in migrator.invalid_index_notes(
                    migrator.find_invalid_indexes(run_psql), pending):
                print(f"chatalot-db: {text}", file=sys.stderr)
        return 0

    def before(pending: list[rules.Migration], state: rules.LedgerState) -> None:
        if args.no_backup or not (state.applied or session.public_tables):
            return
        path = _backup(url, t, session.database, pending[0].version,
                       Path(args.backup_dir or URL_BACKUP_DIR).expanduser())
        print(f"chatalot-db: backup written to {path}", file=sys.stderr)

    try:
        applied = migrator.apply_pending(
            run_psql, local, ledger, reread=lambda: migrator.read_ledger(run_psql)[0],
            database=session.database, role=session.user, set_role=False,
            ignore_missing=args.ignore_missing, target_version=args.target_version,
            before=before, on_note=lambda text: print(f"chatalot-db: {text}", file=sys.stderr))
    except migrator.MigrationRunError as e:
        for a in e.applied:
            print(a.line())
        raise
    for a in applied:
        print(a.line())
    for m in rules.beyond_target(local, ledger.applied, args.target_version):
        print(rules.skipped_line(m))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    if args.inventory:
        return _on_hosts(args, lambda sink: MigrationInfo(on_line=sink), check=False)
    local = rules.load_migrations(_source(args))
    ledger, _ = migrator.read_ledger(_psql(_url(args), LocalTransport()))
    for line in rules.info_lines(local, ledger.applied):
        print(line)
    return 0


# -- one database, by URL -----------------------------------------------------------------


def _source_value(text: str) -> str:
    """--source as given; a folder made absolute (the hosts' runs do not share our cwd)."""
    parsed = parse_source(text)
    return str(Path(text).expanduser().resolve()) if parsed.kind == FOLDER else text


def _source(args: argparse.Namespace) -> Path:
    """The migrations folder for --database-url: --source fetched (a folder, a checkout,
    git+URL@REF, an archive), else the bundled set."""
    if not args.source:
        return migrations_dir()
    parsed = parse_source(args.source)
    if parsed.kind == NONE:
        raise UsageError("--source none: nothing to apply; give the migrations of your "
                         "Chatalot release")
    fetched = SourceFetcher(say=lambda line: print(f"chatalot-db: {line}", file=sys.stderr,
                                                   flush=True)).fetch(parsed)
    if fetched.folder is None:  # none was refused above: every other kind has a folder
        raise UsageError(f"--source {args.source}: no migrations folder")
    if fetched.remote:
        print(f"chatalot-db: migrations from {fetched.describe()}", file=sys.stderr)
    return fetched.folder


def _url(args: argparse.Namespace) -> migrator.DatabaseUrl:
    for name in ("limit", "json"):
        if getattr(args, name):
            raise UsageError(f"--{name} goes with -i INVENTORY")
    text = args.database_url or os.environ.get("DATABASE_URL")
    if not text:
        raise UsageError("no database: give --database-url URL, set DATABASE_URL, "
                         "or -i INVENTORY")
    return migrator.parse_database_url(text)


def _psql(url: migrator.DatabaseUrl, t: LocalTransport) -> migrator.PsqlRunner:
    command = migrator.psql_for_url(url)

    def run(script: str) -> Result:  # tethered: psql ends with this process
        return untethered(t.run(tethered(command), stdin=migrator.stdin_for(url, script),
                                timeout=None))

    return run


def _backup(url: migrator.DatabaseUrl, t: LocalTransport, database: str, first: int,
            directory: Path) -> Path:
    """pg_dump (custom format) as the URL's user into `directory` (made 0700), mode 0600."""
    hint = "; --backup-dir DIR elsewhere, or --no-backup to skip the backup"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise MigrationError(f"backup before migrating: cannot create {directory}: "
                             f"{e.strerror}{hint}") from None
    path = directory / migrator.backup_filename(database, first, datetime.now(UTC))
    if path.exists():
        raise MigrationError(f"backup before migrating: {path} already exists{hint}")
    r = t.run(migrator.pg_dump_command(url, str(path)), stdin=migrator.stdin_for(url, ""),
              timeout=None)
    if not r.ok:
        path.unlink(missing_ok=True)
        raise MigrationError(f"backup before migrating failed, nothing applied: pg_dump: "
                             f"{migrator.server_error(r.stderr)}{hint}")
    return path


# -- inventory hosts ----------------------------------------------------------------------


def _on_hosts(args: argparse.Namespace, make_step: Callable[[LineSink], Step],
              *, check: bool) -> int:
    """GatherFacts and one migration step on each host, as `apply` runs them."""
    from installer.fleet.display import Display
    from installer.fleet.report import exit_code, write_json
    from installer.fleet.runner import RunOptions, run_fleet

    if args.database_url:
        raise UsageError("give --database-url or -i INVENTORY, not both")
    if args.forks < 1:
        raise UsageError("--forks must be at least 1")
    overrides: dict[str, Any] = {}
    if args.source:
        overrides["migrations_source"] = _source_value(args.source)
    if getattr(args, "backup_dir", None):
        overrides["backup_dir"] = args.backup_dir
    if args.list_hosts:
        return list_hosts(args, f"migrate {args.migrate_command}")
    become = become_password(args)  # asked first, then the vault's: Ansible's order
    hosts = with_migrations({n: {**hv, **overrides}
                             for n, hv in load_hosts(args.inventory, args.limit,
                                                     *inventory_inputs(args)).items()})
    opts = RunOptions(check=check, forks=args.forks,
                      accept_new_host_keys=args.accept_new_host_keys,
                      become_password=become)
    display = Display(multi_host=len(hosts) > 1)
    lines: dict[str, list[str]] = {n: [] for n in hosts}

    def sink(host: str, line: str) -> None:
        lines[host].append(line)

    reports = run_fleet(hosts, opts, display, steps=lambda: [GatherFacts(), make_step(sink)])
    for report in reports:
        report.notes.clear()  # apply's DATABASE_URL note: this command does not write it
    for name, printed in lines.items():
        if printed:
            display.message("\n".join(([f"[{name}]"] if len(hosts) > 1 else []) + printed))
    display.recap(reports)
    if args.json:
        write_json(args.json, reports, check=check)
    return exit_code(reports)
