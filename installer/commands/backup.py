"""`chatalot-db backup`, `backups` and `restore`: a dump now, the dumps listed, a dump
restored (into a new database, checked; or in place of the live one, which is dumped first
and kept under another name). The nightly schedule itself is apply's ("schedule backups",
the `backup` variable)."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from installer.commands.rollout import add_rollout_options, run_rollout
from installer.commands.targets import (
    add_target_options,
    become_password,
    inventory_inputs,
    list_hosts,
)
from installer.desired import backups
from installer.errors import UsageError
from installer.fleet.display import Display
from installer.fleet.hosts import load_hosts, one_host
from installer.fleet.report import exit_code, write_json
from installer.fleet.runner import RunOptions, run_fleet
from installer.sqltext import validate_identifier
from installer.steps.access import AppDatabase, LoginCheck, SchemaGrants
from installer.steps.backups import FetchBackups, ListBackups, RestoreBackup, TakeBackup
from installer.steps.base import Step
from installer.steps.host import GatherFacts

_BACKUP = """\
Take one backup of the app database now on each host, next to the scheduled ones.

backup=pg_dump (the default): a pg_dump into backup_dir, DB-TIME-manual.dump, custom
format, mode 0600, written whole or not at all (pg_restore must read it to its end before
it takes its name). The nightly dumps are the ones backup_keep rotates; this one is kept
until you remove it.

backup=pgbackrest: a pgBackRest backup into the stanza's repository (--type: full,
diff, incr; auto, the default, as the schedule chooses: full when there is none from the
last 6.5 days, else differential); pgBackRest's retention then applies.

Backups on the host's disk die with it: copy them off the host, with --fetch DIR here,
`chatalot-db backups --fetch DIR` (from a schedule of your own) or rsync, restic, borg.
"""

_BACKUPS = """\
List the backups of the app database on each host, newest first: time, age, size, kind,
and path (or pgBackRest label). The dumps in backup_dir (scheduled, manual,
before-migration, before-upgrade, before-restore, uploaded) and, with backup=pgbackrest,
the stanza's backups (pgbackrest-full, -diff, -incr; size in the repository).

--fetch DIR copies the dumps off the hosts, to DIR/HOST/ on this machine, over the run's
SSH connection: each written to a hidden .partial file, its sha256 checked against the
host's, then named (0600, in 0700 folders). A dump already there is not copied again, a
different file of the same name is left alone, and nothing is removed, here or on the
host: run it from cron as often as you like, and prune DIR yourself. A pgBackRest
repository is not copied file by file (use pgBackRest's own repo options, or rsync).
`restore HOST --upload DIR/HOST/FILE` restores one of these on any host, the same one or
a new one that replaces it.
"""

_RESTORE = """\
Restore one of HOST's backups (`chatalot-db backups` lists them). By default into a new
database (DB_restored_TIME, or --to-db NAME) owned by the app role, and checked: the
migration ledger and the exact row counts of the five biggest tables are printed; the
live database is not touched. With --in-place, that restored copy then replaces the live
database: after a dump of the live one (DB-TIME-before-restore.dump), the app's sessions
are ended, the live database is renamed to DB_replaced_TIME (kept) and the copy takes its
name. A backup that cannot be read to its end fails before anything is created.

--upload FILE restores a custom-format dump from this machine instead, such as one that
`backups --fetch` copied off a host that is gone: it is sent over the SSH connection into
backup_dir as DB-TIME-uploaded.dump (checked by sha256 and read to its end by pg_restore
before it takes that name; kept afterwards, listed by `backups`), then restored as above.
On a new host, run `apply` first: it creates the empty database a restore replaces.

With backup=pgbackrest, --from names a pgBackRest backup by its label (or latest), and
--time 'YYYY-MM-DD HH:MM:SS' (UTC unless an offset such as +02:00 is given) restores the
database as it was at that moment (the backup before it, then the archived WAL up to it).
The backup is first restored into a cluster of its own in backup_dir (no TCP, no WAL
archiving, removed afterwards), and the app database is copied from there: the live
cluster and its other databases keep running throughout.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser("backup", help="take a pg_dump of the app database now",
                       description=_BACKUP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_options(b, forks="backed up", json="write a machine-readable report to FILE")
    b.add_argument("--type", choices=("auto", "full", "diff", "incr"), default="auto",
                   help="backup=pgbackrest: the kind of pgBackRest backup (default: auto, as "
                   "the schedule picks)")
    b.add_argument("--fetch", metavar="DIR", type=Path,
                   help="then copy each host's dumps (this one and those not there yet) to "
                   "DIR/HOST/ on this machine, as `backups --fetch` does")
    add_rollout_options(b)
    b.set_defaults(func=cmd_backup)

    ls = sub.add_parser("backups", help="list the app database's backups on each host "
                        "(--fetch: copy them to this machine)", description=_BACKUPS,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_options(ls, forks="read", json="write a machine-readable report to FILE")
    ls.add_argument("--fetch", metavar="DIR", type=Path,
                    help="copy each host's dumps to DIR/HOST/ on this machine (only those "
                    "not there yet; checked by sha256)")
    ls.set_defaults(func=cmd_backups)

    r = sub.add_parser("restore", help="restore a backup (into a new database by default)",
                       description=_RESTORE, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("host", metavar="HOST", help="an inventory host (localhost without -i)")
    add_target_options(r, limit=False, json="write a machine-readable report to FILE")
    source = r.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="source", metavar="BACKUP",
                        help="`latest`, or a backup's file name (or path) in backup_dir")
    source.add_argument("--upload", metavar="FILE", type=Path,
                        help="a dump on this machine (`backups --fetch` copied it, say): "
                        "sent into the host's backup_dir as DB-TIME-uploaded.dump, checked, "
                        "then restored")
    where = r.add_mutually_exclusive_group()
    where.add_argument("--to-db", metavar="NAME",
                       help="the new database to restore into (default: DB_restored_TIME)")
    where.add_argument("--in-place", action="store_true",
                       help="replace the live database with the restored copy (asks first)")
    r.add_argument("--time", metavar="'YYYY-MM-DD HH:MM:SS'", type=_point_in_time,
                   help="backup=pgbackrest: restore the database as it was at this moment "
                   "(UTC unless an offset is given); --from latest lets pgBackRest pick the "
                   "backup before it")
    r.add_argument("--yes", action="store_true",
                   help="with --in-place: do not ask (needed when stdin is not a terminal)")
    r.set_defaults(func=cmd_restore)


def _point_in_time(text: str) -> str:
    try:
        return backups.check_time(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def cmd_backup(args: argparse.Namespace) -> int:
    _fetch_dir(args.fetch)
    found: dict[str, list[backups.BackupFile]] = {}
    return run_rollout(args, "backup", lambda: [GatherFacts(), TakeBackup(args.type)] + (
        [ListBackups(found), FetchBackups(found, args.fetch)] if args.fetch else []),
        check=False)


def _fetch_dir(path: Path | None) -> None:
    if path is not None and path.exists() and not path.is_dir():
        raise UsageError(f"--fetch {path}: not a directory")


def cmd_backups(args: argparse.Namespace) -> int:
    if args.forks < 1:
        raise UsageError("--forks must be at least 1")
    _fetch_dir(args.fetch)
    if args.list_hosts:
        return list_hosts(args, "backups")
    become = become_password(args)
    hosts = load_hosts(args.inventory, args.limit, *inventory_inputs(args))
    found: dict[str, list[backups.BackupFile]] = {}
    display = Display(multi_host=len(hosts) > 1)
    reports = run_fleet(hosts, _options(args, become), display,
                        steps=lambda: [GatherFacts(), ListBackups(found)] + (
                            [FetchBackups(found, args.fetch)] if args.fetch else []))
    for report in reports:
        report.notes.clear()
    now = time.time()
    for name in hosts:
        if found.get(name):
            display.message(listing(name, found[name], now))
    display.recap(reports)
    if args.json:
        write_json(args.json, reports, check=False)
    return exit_code(reports)


def listing(host: str, files: list[backups.BackupFile], now: float) -> str:
    """One host's backups as a table, newest first."""
    rows = [(datetime.fromtimestamp(f.mtime, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
             backups.age_text(now - f.mtime), backups.size_text(f.size), f.kind, f.path)
            for f in files]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"{host}: {len(files)} backup(s)"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True))
              + "  " + r[4] for r in rows]
    return "\n".join(lines)


def dump_to_upload(path: Path) -> str:
    """The sha256 of `path`, a custom-format dump on this machine to send to a host;
    UsageError (before any host is contacted) when it is not one."""
    try:
        with path.open("rb") as f:
            if f.read(len(backups.DUMP_MAGIC)) != backups.DUMP_MAGIC:
                raise UsageError(f"--upload {path}: not a custom-format pg_dump archive "
                                 "(chatalot-db's dumps are; a plain SQL dump restores with "
                                 "psql)")
            digest = hashlib.sha256(backups.DUMP_MAGIC)
            while data := f.read(1 << 20):
                digest.update(data)
    except IsADirectoryError:
        raise UsageError(f"--upload {path}: a directory, not a dump file") from None
    except OSError as e:
        raise UsageError(f"--upload {path}: {e.strerror or e}") from None
    return digest.hexdigest()


def cmd_restore(args: argparse.Namespace) -> int:
    if args.to_db is not None:
        validate_identifier(args.to_db, "--to-db")
    upload = None
    if args.upload is not None:
        if args.time is not None:
            raise UsageError("--time restores from pgBackRest's archive on the host: it "
                             "does not go with --upload")
        upload = (args.upload, dump_to_upload(args.upload))
    source = str(args.upload) if upload else args.source
    if args.in_place and not args.yes and not sys.stdin.isatty():
        raise UsageError("--in-place replaces the live database: confirm with --yes "
                         "(stdin is not a terminal to ask on)")
    name, hostvars = one_host(args.inventory, args.host, *inventory_inputs(args))
    if args.in_place and not args.yes:
        answer = input(f"Replace the live database on {name} with backup {source}? "
                       "It is dumped first and kept under another name. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("chatalot-db: nothing done", file=sys.stderr)
            return 1
    become = become_password(args)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ").lower()

    def steps() -> list[Step]:
        restore: list[Step] = [GatherFacts(), RestoreBackup(source, to_db=args.to_db,
                                                            in_place=args.in_place,
                                                            stamp=stamp,
                                                            target_time=args.time,
                                                            upload=upload)]
        if args.in_place:  # the new live database as apply wants it, and the app's login
            restore += [AppDatabase(), SchemaGrants(), LoginCheck()]
        return restore

    display = Display(multi_host=False)
    reports = run_fleet({name: hostvars}, _options(args, become), display, steps=steps)
    for report in reports:
        report.notes.clear()
    display.recap(reports)
    if args.json:
        write_json(args.json, reports, check=False)
    return exit_code(reports)


def _options(args: argparse.Namespace, become: str | None) -> RunOptions:
    return RunOptions(forks=getattr(args, "forks", 1),
                      accept_new_host_keys=args.accept_new_host_keys, become_password=become)
