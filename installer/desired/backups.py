"""Scheduled backups of the app's database: what the host should hold. Pure, no I/O.

`backup=pg_dump` (the default): a custom-format `pg_dump` of `db_name` every night into
`backup_dir`, by one script of ours run as postgres (SCRIPT_PATH), from a systemd timer
(chatalot-db-backup-DB.timer: `backup_on_calendar`, a fixed random delay of up to an hour
per host so that a fleet does not dump at once, catch-up after downtime) where systemd is
PID 1, else from an /etc/cron.d entry (the minute spread by the host's machine-id) where
cron runs. The script writes `DB-TIME-scheduled.dump` through a `.partial` file that
pg_restore must read to its end before it is renamed, mode 0600 in a 0700 folder, and
then removes the scheduled dumps older than `backup_keep` days; it never touches other
dumps (those taken before migrations or upgrades, or by `chatalot-db backup`).
`backup=pgbackrest`: pgBackRest (the distribution's package) with one stanza for the
cluster (STANZA, configured in PGBR_CONF), a repository in `pgbackrest_repo_path` (default
`backup_dir`/pgbackrest), WAL archived by `archive_command` (so that any point in time
since the oldest kept backup can be restored), and one scheduled job (PGBR_SCRIPT, on the
same timer or cron entry): a full backup when the repository holds none from the last 6.5
days, else a differential one. Retention is pgBackRest's own expire, time-based: the full
backups (and what depends on them) that `backup_keep` days of point-in-time recovery no
longer need are removed after each backup.
`backup=none` removes the schedule (the dumps, and a pgBackRest repository, stay).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from installer.transport.shell import sh

BACKUP_KINDS = ("pg_dump", "pgbackrest", "none")
DEFAULT_KEEP_DAYS = 7
DEFAULT_ON_CALENDAR = "*-*-* 03:00:00"
#: systemd's RandomizedDelaySec with FixedRandomDelay: each host its own, stable delay
JITTER = "1h"

SCRIPT_PATH = "/usr/local/lib/chatalot-db/backup"
PGBR_SCRIPT = "/usr/local/lib/chatalot-db/pgbackrest-backup"
#: our stanza's configuration: pgBackRest reads /etc/pgbackrest/conf.d/*.conf beside its
#: main file (either /etc/pgbackrest/pgbackrest.conf or the older /etc/pgbackrest.conf,
#: which Debian's package ships), so the user's own file is never edited
PGBR_CONF = "/etc/pgbackrest/conf.d/chatalot-db.conf"
#: the stanza: one per cluster (pgBackRest backs up the whole cluster)
STANZA = "chatalot"
SYSTEMD_DIR = "/etc/systemd/system"
CRON_DIR = "/etc/cron.d"

#: the dump kinds in a backup file's name: `DB-YYYYmmddTHHMMSSZ-KIND.dump`
SCHEDULED, MANUAL, BEFORE_RESTORE = "scheduled", "manual", "before-restore"
#: a dump sent from the control machine by `restore --upload` (never rotated)
UPLOADED = "uploaded"
#: what every custom-format pg_dump archive starts with
DUMP_MAGIC = b"PGDMP"

SCRIPT = """\
#!/bin/sh
# chatalot-db: a custom-format pg_dump of one database, written whole or not at all;
# then the scheduled dumps older than KEEP days are removed (never any other file).
# Written by `chatalot-db apply`; run as postgres by its timer or cron entry.
# usage: backup DB PORT DIR KEEP_DAYS PGBIN [KIND]
set -eu
db=$1 port=$2 dir=$3 keep=$4 bin=$5 kind=${6:-scheduled}
case $kind in
    scheduled|manual|before-restore) ;;
    *) echo "backup: unknown kind $kind" >&2; exit 2 ;;
esac
cd /
umask 077
stamp=$(date -u +%Y%m%dT%H%M%SZ)
final="$dir/$db-$stamp-$kind.dump"
part="$final.partial"
trap 'rm -f "$part"' EXIT
"${bin:+$bin/}pg_dump" --format=custom -p "$port" -d "$db" -f "$part"
# readable to its end: a truncated or corrupt file is never taken for a backup
"${bin:+$bin/}pg_restore" --list "$part" >/dev/null
chmod 0600 "$part"
mv "$part" "$final"
trap - EXIT
echo "$final $(stat -c %s "$final")"
if [ "$kind" = scheduled ]; then
    find "$dir" -maxdepth 1 -type f -name "$db-*-scheduled.dump" \\
        -mmin +$((keep * 1440)) ! -path "$final" -print -delete | sed 's/^/removed /'
fi
"""


PGBR_SCRIPT_TEXT = """\
#!/bin/sh
# chatalot-db: one pgBackRest backup of a stanza. TYPE auto: full when the repository
# holds no full backup finished in the last 6.5 days (so a weekly full, whatever day the
# schedule first ran or missed), else differential (against the newest full). pgBackRest
# then expires what repo1-retention-full (time-based, days) no longer needs.
# Written by `chatalot-db apply`; run as postgres by its timer or cron entry.
# usage: pgbackrest-backup STANZA REPO_PATH [auto|full|diff|incr]
set -eu
stanza=$1 repo=$2 type=${3:-auto}
cd /
case $type in
    auto)
        type=full
        if [ -n "$(find "$repo/backup/$stanza" -mindepth 1 -maxdepth 1 -type d \\
                -name '*F' -mmin -9360 2>/dev/null)" ]; then type=diff; fi ;;
    full|diff|incr) ;;
    *) echo "pgbackrest-backup: unknown type $type" >&2; exit 2 ;;
esac
pgbackrest --stanza="$stanza" --type="$type" --log-level-console=warn backup
echo "label $(readlink "$repo/backup/$stanza/latest") $type"
"""


def pgbackrest_conf(stanza: str, data_dir: str, port: int, repo: str, keep_days: int) -> str:
    """Our stanza's section of pgBackRest's configuration (PGBR_CONF). Retention is by time:
    the full backups (and their differentials) older than `keep_days` go, bar the one
    that point-in-time recovery back to `keep_days` ago still needs."""
    return (
        "# Written by chatalot-db apply (backup=pgbackrest); changes are overwritten.\n"
        f"[{stanza}]\n"
        f"pg1-path={data_dir}\n"
        f"pg1-port={port}\n"
        f"repo1-path={repo}\n"
        "repo1-retention-full-type=time\n"
        f"repo1-retention-full={keep_days}\n"
        "start-fast=y\n"
        "log-level-file=info\n"
    )


def archive_command(stanza: str) -> str:
    """PostgreSQL's archive_command for backup=pgbackrest."""
    return f"pgbackrest --stanza={stanza} archive-push %p"


def archive_settings(stanza: str) -> dict[str, str]:
    """The settings backup=pgbackrest adds to our drop-in (archive_mode needs a restart)."""
    return {"archive_mode": "on", "archive_command": archive_command(stanza)}


@dataclass(frozen=True)
class Job:
    """What a schedule runs: one command line (as postgres) and the scripts it needs."""

    kind: str  # pg_dump or pgbackrest
    argv: list[str]
    #: path -> text of the scripts the command runs
    scripts: dict[str, str]
    #: for messages: "pg_dump of chatalot"
    what: str
    #: for the units' Description: "pg_dump of database chatalot"
    description: str


def pg_dump_job(db_name: str, port: int, backup_dir: str, keep_days: int, pgbin: str) -> Job:
    argv = command(db_name, port, backup_dir, keep_days, pgbin or '""')
    return Job("pg_dump", argv, {SCRIPT_PATH: SCRIPT}, f"pg_dump of {db_name}",
               f"pg_dump of database {db_name}")


def pgbackrest_job(repo: str, stanza: str = STANZA) -> Job:
    return Job("pgbackrest", [PGBR_SCRIPT, stanza, repo, "auto"], {PGBR_SCRIPT: PGBR_SCRIPT_TEXT},
               f"pgBackRest backups of stanza {stanza} (full weekly, differential daily)",
               f"pgBackRest backup of stanza {stanza}")


@dataclass(frozen=True)
class Schedule:
    """The files a host's backup schedule is made of (path -> content)."""

    files: dict[str, str]
    #: the systemd timer to enable (None: cron)
    timer: str | None
    #: for messages: "nightly at *-*-* 03:00:00 (+ up to 1h, fixed per host)"
    when: str


def unit_base(db_name: str) -> str:
    return f"chatalot-db-backup-{db_name}"


def schedule_paths(db_name: str) -> tuple[str, str, str]:
    """(service, timer, cron file) paths for `db_name`'s schedule."""
    base = unit_base(db_name)
    return (f"{SYSTEMD_DIR}/{base}.service", f"{SYSTEMD_DIR}/{base}.timer",
            f"{CRON_DIR}/{base}")


def command(db_name: str, port: int, backup_dir: str, keep_days: int, pgbin: str,
            kind: str = SCHEDULED) -> list[str]:
    """The script's argv (every argument is one word: the validated names and paths)."""
    return [SCRIPT_PATH, db_name, str(port), backup_dir, str(keep_days), pgbin, kind]


def systemd_schedule(db_name: str, job: Job, on_calendar: str, after_unit: str) -> Schedule:
    service, timer, _ = schedule_paths(db_name)
    head = f"# Written by chatalot-db apply (backup={job.kind}); changes are overwritten.\n"
    unit = (
        head + "[Unit]\n"
        f"Description=chatalot-db: {job.description}\n"
        f"After={after_unit}\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        "User=postgres\n"
        "Group=postgres\n"
        f"ExecStart={' '.join(job.argv)}\n"
        "Nice=10\n"
        "IOSchedulingClass=idle\n"
    )
    tim = (
        head + "[Unit]\n"
        f"Description=chatalot-db: nightly {job.description}\n\n"
        "[Timer]\n"
        f"OnCalendar={on_calendar}\n"
        f"RandomizedDelaySec={JITTER}\n"
        "FixedRandomDelay=true\n"
        "Persistent=true\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return Schedule({**job.scripts, service: unit, timer: tim},
                    timer.rsplit("/", 1)[1],
                    f"{on_calendar} (+ up to {JITTER}, fixed per host), systemd timer "
                    f"{unit_base(db_name)}.timer")


_CALENDAR_DAILY = re.compile(
    r"^(?:\*-\*-\*\s+)?(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?$")


def cron_time(on_calendar: str, spread_key: str) -> tuple[int, int] | None:
    """(minute, hour) for cron from a daily OnCalendar (`*-*-* 03:00:00`, `03:00`, `daily`),
    moved later by 0-59 minutes by `spread_key` (the host's machine-id); None when the
    expression is not a daily time cron can say."""
    text = on_calendar.strip()
    if text == "daily":
        hour, minute = 0, 0
    else:
        m = _CALENDAR_DAILY.match(text)
        if m is None:
            return None
        hour, minute = int(m["h"]), int(m["m"])
    spread = int(hashlib.sha256(spread_key.encode()).hexdigest(), 16) % 60
    total = (hour * 60 + minute + spread) % (24 * 60)
    return total % 60, total // 60


def cron_schedule(db_name: str, job: Job, on_calendar: str, spread_key: str) -> Schedule:
    """The cron.d entry (hosts without systemd); ValueError when `on_calendar` is not a
    daily time."""
    at = cron_time(on_calendar, spread_key)
    if at is None:
        raise ValueError(f"backup_on_calendar {on_calendar!r} is no daily time (e.g. "
                         "`*-*-* 03:00:00`), which is all a cron entry can say here")
    minute, hour = at
    _, _, path = schedule_paths(db_name)
    entry = (
        f"# Written by chatalot-db apply (backup={job.kind}); changes are overwritten.\n"
        "SHELL=/bin/sh\n"
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
        f"{minute} {hour} * * * postgres {' '.join(job.argv)}\n"
    )
    return Schedule({**job.scripts, path: entry}, None,
                    f"daily at {hour:02d}:{minute:02d} (cron, spread by machine-id)")


@dataclass(frozen=True)
class BackupFile:
    """One dump in backup_dir, from its name and `stat`."""

    path: str
    kind: str  # scheduled, manual, before-restore, before-migration, before-upgrade,
    # uploaded; or pgbackrest-full/-diff/-incr (path: the label)
    mtime: int
    size: int


_NAME = re.compile(r"^(?P<db>.+)-(?P<stamp>\d{8}T\d{6}Z)-(?P<what>[A-Za-z0-9_.-]+)\.dump$")


def kind_of(name: str, db_name: str) -> str | None:
    """The kind of a dump file named `name`, when it is one of `db_name`'s (else None)."""
    m = _NAME.match(name)
    if m is None or m["db"] != db_name:
        return None
    what = m["what"]
    if what in (SCHEDULED, MANUAL, BEFORE_RESTORE, UPLOADED):
        return what
    if what.startswith("before-upgrade-"):
        return "before-upgrade"
    if what.startswith("before-"):
        return "before-migration"
    return None


def newest_taken(files: list[BackupFile]) -> BackupFile | None:
    """The newest backup taken on the host (`files` newest first): an uploaded dump is a
    copy sent there, maybe days old or another host's, and never counts as one. Pure."""
    return next((f for f in files if f.kind != UPLOADED), None)


@dataclass(frozen=True)
class FetchPlan:
    """What `backups --fetch` copies from one host: the dumps not yet on this machine;
    those already there (same name and size: a dump never changes once it has its name);
    those whose name is there with another size (left alone, never overwritten); and
    the pgBackRest backups listed (a repository, not files to copy one by one)."""

    fetch: list[BackupFile]
    present: list[BackupFile]
    differs: list[BackupFile]
    pgbackrest: int


def fetch_plan(files: list[BackupFile], local_sizes: dict[str, int]) -> FetchPlan:
    """The plan for a host's `files` against the sizes of the dumps already in its local
    folder, by file name. Pure."""
    fetch: list[BackupFile] = []
    present: list[BackupFile] = []
    differs: list[BackupFile] = []
    pgbr = 0
    for f in files:
        if f.kind.startswith("pgbackrest"):
            pgbr += 1
            continue
        have = local_sizes.get(f.path.rsplit("/", 1)[-1])
        (fetch if have is None else present if have == f.size else differs).append(f)
    return FetchPlan(fetch, present, differs, pgbr)


#: how a fetch's stderr carries the host's checksum of the file it sent
_SHA_LINE = re.compile(r"^([0-9a-f]{64})  ", re.M)


def fetch_command(path: str) -> str:
    """Root shell: the dump's bytes on stdout, then its sha256 on stderr (fetch_sha)."""
    q = sh(path)
    return f"cd / && cat -- {q} && sha256sum -- {q} >&2"


def fetch_sha(stderr: str) -> str | None:
    """The sha256 fetch_command printed, or None. Pure."""
    found = _SHA_LINE.findall(stderr)
    return found[-1] if found else None


def uploaded_name(db_name: str, stamp: str) -> str:
    """The name `restore --upload` gives the dump it sends (a kind `backups` lists)."""
    return f"{db_name}-{stamp}-{UPLOADED}.dump"


def upload_script(backup_dir: str, name: str, sha256: str, pg_restore: str,
                  mtime: int | None = None) -> str:
    """Root shell, one round trip: stdin written to NAME.partial in backup_dir (made 0700,
    postgres, if missing), its sha256 checked against what was sent, then read to its end
    by pg_restore as postgres, and only then named NAME (0600, postgres): a cut or corrupt
    upload never takes a dump's name. `mtime`: the time the file gets (the local copy's, so
    that listings show when the dump was taken, not when it arrived)."""
    d = backup_dir.rstrip("/") or "/"
    final = f"{d}/{name}"
    return "\n".join([
        "set -eu", "cd /", "umask 077",
        f"dir={sh(d)} final={sh(final)} part={sh(final + '.partial')} want={sh(sha256)}",
        'if [ ! -d "$dir" ]; then mkdir -p "$dir"; chown postgres:postgres "$dir"; '
        'chmod 0700 "$dir"; fi',
        'if [ -e "$final" ]; then echo "$final exists already" >&2; exit 1; fi',
        """trap 'rm -f -- "$part"' EXIT""",
        'cat > "$part"',
        'sum=$(sha256sum < "$part"); sum=${sum%% *}',
        'if [ "$sum" != "$want" ]; then echo "the copy on the host has sha256 $sum, not '
        '$want as sent: the transfer was cut short" >&2; exit 1; fi',
        'chown postgres:postgres "$part"; chmod 0600 "$part"'
        + (f'; touch -d @{int(mtime)} "$part"' if mtime is not None else ""),
        f'if ! runuser -u postgres -- {sh(pg_restore)} --list "$part" >/dev/null; then '
        "echo 'pg_restore cannot read it to its end' >&2; exit 1; fi",
        'mv "$part" "$final"', "trap - EXIT",
    ]) + "\n"


#: the prefix of listing_script's line holding `pgbackrest info --output=json`
PGBR_INFO = "pgbackrest-info "
#: the kinds of pgBackRest backups in listings (the path of one is its label)
PGBR_KINDS = {"full": "pgbackrest-full", "diff": "pgbackrest-diff", "incr": "pgbackrest-incr"}


def stanza_of(backup: str) -> str | None:
    """The pgBackRest stanza a host's listings include (backup=pgbackrest), else None."""
    return STANZA if backup == "pgbackrest" else None


def listing_script(backup_dir: str, db_name: str, stanza: str | None = None) -> str:
    """Shell (as root) printing `MTIME SIZE PATH` per dump of `db_name` in backup_dir;
    with `stanza`, then PGBR_INFO and pgBackRest's info as one JSON line."""
    d = sh(backup_dir.rstrip("/") or "/")
    dumps = (f"for f in {d}/{sh(db_name)}-*.dump; do [ -f \"$f\" ] || continue; "
             "stat -c '%Y %s %n' \"$f\"; done; true")
    if stanza is None:
        return dumps
    return (f"{dumps}; if command -v pgbackrest >/dev/null 2>&1; then printf %s "
            f"{sh(PGBR_INFO)}; (cd / && runuser -u postgres -- pgbackrest "
            f"--stanza={sh(stanza)} --output=json info 2>&1 | tr -d '\\n'); echo; fi; true")


@dataclass(frozen=True)
class PgbackrestInfo:
    """pgBackRest's view of a stanza: its backups, the archived WAL, its status."""

    backups: list[BackupFile]
    #: status code and message ("ok" is 0); None when the info could not be read
    status: tuple[int, str] | None
    #: the oldest and newest archived WAL segment ("" when none)
    wal: tuple[str, str] = ("", "")
    error: str = ""


def parse_pgbackrest_info(text: str, stanza: str) -> PgbackrestInfo:
    """`pgbackrest --output=json info` of `stanza`; anything else (an error message) as
    PgbackrestInfo.error. Pure."""
    try:
        data = json.loads(text)
    except ValueError:
        return PgbackrestInfo([], None, error=text.strip()[-300:] or "no output")
    found = [x for x in data if isinstance(x, dict) and x.get("name") == stanza] \
        if isinstance(data, list) else []
    if not found:
        return PgbackrestInfo([], None, error=f"no stanza {stanza} in pgBackRest's info")
    info = found[0]
    status = info.get("status") or {}
    files = []
    for b in info.get("backup") or []:
        try:
            kind = PGBR_KINDS.get(str(b["type"]), f"pgbackrest-{b['type']}")
            stop = int(b["timestamp"]["stop"])
            size = int(((b.get("info") or {}).get("repository") or {}).get("delta") or 0)
            files.append(BackupFile(str(b["label"]), kind, stop, size))
        except (KeyError, TypeError, ValueError):
            continue
    archives = info.get("archive") or []
    wal = ("", "")
    if archives:
        mins = [a.get("min") or "" for a in archives]
        maxs = [a.get("max") or "" for a in archives]
        wal = (min((m for m in mins if m), default=""), max(maxs, default=""))
    return PgbackrestInfo(sorted(files, key=lambda f: (f.mtime, f.path), reverse=True),
                          (int(status.get("code", -1)), str(status.get("message", "?"))), wal)


def parse_listing(text: str, db_name: str, stanza: str | None = None) -> list[BackupFile]:
    """listing_script's lines as BackupFiles (with `stanza`, its pgBackRest backups too),
    newest first."""
    found = []
    for line in text.splitlines():
        if line.startswith(PGBR_INFO):
            if stanza is not None:
                found += parse_pgbackrest_info(line[len(PGBR_INFO):], stanza).backups
            continue
        parts = line.split(" ", 2)
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        kind = kind_of(parts[2].rsplit("/", 1)[-1], db_name)
        if kind is not None:
            found.append(BackupFile(parts[2], kind, int(parts[0]), int(parts[1])))
    return sorted(found, key=lambda b: (b.mtime, b.path), reverse=True)


def pgbackrest_info_line(text: str) -> str | None:
    """The JSON of listing_script's PGBR_INFO line (None: there is none)."""
    for line in text.splitlines():
        if line.startswith(PGBR_INFO):
            return line[len(PGBR_INFO):]
    return None


#: the settings a restored cluster must have at least the primary's values of, or its
#: recovery stops ("insufficient parameter settings")
RECOVERY_MINIMUMS = ("max_connections", "max_worker_processes", "max_wal_senders",
                     "max_prepared_transactions", "max_locks_per_transaction")

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?"
                   r"(?: ?(?:[+-]\d{2}(?::?\d{2})?|UTC|Z))?$")


def check_time(text: str) -> str:
    """A point in time for `restore --time`: `YYYY-MM-DD HH:MM[:SS[.ffffff]]`, UTC unless
    it ends in an offset (`+02`, `-05:30`) or `UTC`; ValueError otherwise. Pure."""
    t = text.strip()
    if not _TIME.match(t):
        raise ValueError(f"--time must be 'YYYY-MM-DD HH:MM:SS' (UTC, or with an offset such "
                         f"as +02:00), got {text!r}")
    t = t.replace("T", " ", 1) if "T" in t[10:11] else t
    if t.endswith("Z"):  # ISO's Z, which recovery_target_time does not take
        t = t[:-1].rstrip() + "+00"
    return t


def restore_conf(workdir: str, port: int, minimums: dict[str, str]) -> str:
    """The configuration a pgBackRest restore is started with (pgbackrest_restore_script):
    no TCP (its socket directory, and archive_mode = off once more, are given on the
    command line), no WAL archiving (it must never push into the stanza's archive), times
    in UTC."""
    del workdir  # (its folder: the restore script writes the file there)
    lines = ["listen_addresses = ''", f"port = {port}",
             "archive_mode = off",
             "shared_buffers = 128MB", "timezone = 'UTC'",
             "logging_collector = off", "max_wal_size = 1GB"]
    lines += [f"{name} = {int(minimums[name])}" for name in RECOVERY_MINIMUMS
              if minimums.get(name, "").isdigit()]
    return "\n".join(lines) + "\n"


def pgbackrest_restore_script(*, workdir: str, stanza: str, db_name: str, port: int,
                              label: str | None, target_time: str | None, pg_ctl: str,
                              pg_dump: str, psql: str, minimums: dict[str, str],
                              live_major: int | None = None,
                              other_bindirs: tuple[str, ...] = (),
                              other_package: str = "") -> str:
    """Root shell: the pgBackRest backup `label` (None: the one pgBackRest picks for
    `target_time`) restored into `workdir`/cluster (only `db_name` of the user databases),
    recovered to the end of that backup or to `target_time` (the live server's current WAL
    switched and archived first, by `pgbackrest check`) and promoted, started on a
    socket in a folder of its own only, and `db_name` dumped to `workdir`/restored.dump; the
    cluster then stopped and removed (on failure, `workdir` entirely). Prints
    `dump PATH`. A backup of another major than `live_major` (taken before a major
    upgrade) is started with that major's pg_ctl, the first found in `other_bindirs`
    (`{major}` standing for it; install `other_package` says how to get it when none is
    there); `pg_dump` and `psql` stay the live major's, which read older servers. Pure."""
    w = sh(workdir)
    cluster, dump = f"{workdir}/cluster", f"{workdir}/restored.dump"
    opts = [f"--stanza={stanza}", "--log-level-console=warn", f"--pg1-path={cluster}",
            f"--db-include={db_name}", "--target-action=promote"]
    if label is not None:
        opts.append(f"--set={label}")
    opts += (["--type=time", f"--target={target_time}"] if target_time is not None
             else ["--type=immediate"])
    conf = restore_conf(workdir, port, minimums)
    files = {f"{workdir}/restore.conf": conf, f"{workdir}/restore.hba": "local all postgres peer\n",
             f"{workdir}/restore.ident": ""}
    # on the command line, each word quoted for the shell pg_ctl runs postgres with:
    # these win over postgresql.auto.conf (a user's ALTER SYSTEM archive_mode included)
    start_opts = " ".join(f"-c {sh(o)}" for o in (
        f"config_file={workdir}/restore.conf", f"hba_file={workdir}/restore.hba",
        f"ident_file={workdir}/restore.ident", "archive_mode=off"))
    as_pg = "runuser -u postgres --"
    lines = [
        "set -eu", "cd /", "umask 077",
        f"w={w}",
        "started= sock=",
        f"ctl={sh(pg_ctl)}",
        "finish() { rc=$?; if [ -n \"$started\" ]; then "
        f"{as_pg} \"$ctl\" -D \"$w/cluster\" -m immediate -w stop >/dev/null 2>&1 || true; fi; "
        "if [ -n \"$sock\" ]; then rm -rf \"$sock\"; fi; "
        "if [ $rc != 0 ]; then rm -rf \"$w\"; else rm -rf \"$w/cluster\"; fi; }",
        "trap finish EXIT",
        f"{as_pg} mkdir -m 0700 \"$w\" \"$w/cluster\"",
        # the socket in a short folder of its own (a socket path has at most 107 bytes)
        f"sock=$({as_pg} mktemp -d /tmp/chatalot-db-restore.XXXXXX)",
        *([f"{as_pg} pgbackrest --stanza={sh(stanza)} --log-level-console=warn check"]
          if target_time is not None else []),  # the live WAL up to now, switched and archived
        f"{as_pg} pgbackrest {sh(*opts)} restore",
        *_other_major_lines(live_major, other_bindirs, other_package),
    ]
    for path, text in files.items():
        lines.append(f"{as_pg} sh -c 'cat > \"$1\"' restore {sh(path)} <<'CHATALOT_EOF'\n"
                     f"{text}CHATALOT_EOF")
    lines += [
        f"opts={sh(start_opts)}\" -c unix_socket_directories=$sock\"",
        "started=yes",
        f"if ! {as_pg} \"$ctl\" -D \"$w/cluster\" -l \"$w/restore.log\" -w -t 86400 "
        '-o "$opts" start >/dev/null; then '
        "echo 'the restored cluster did not start: its log says:' >&2; "
        "tail -n 8 \"$w/restore.log\" >&2; exit 1; fi",
        # started means consistent, not recovered: wait for the promotion (or its failure)
        f"until [ \"$({as_pg} {sh(psql)} -XAt -h \"$sock\" -p {port} -d postgres "
        "-c 'SELECT pg_is_in_recovery()' 2>/dev/null)\" = f ]; do "
        f"if ! {as_pg} \"$ctl\" -D \"$w/cluster\" status >/dev/null 2>&1; then "
        "echo 'the restored cluster stopped while recovering: its log says:' >&2; "
        "tail -n 8 \"$w/restore.log\" >&2; exit 1; fi; sleep 0.2; done",
        f"{as_pg} {sh(pg_dump)} --format=custom -h \"$sock\" -p {port} -d {sh(db_name)} "
        f"-f {sh(dump)}",
        f"{as_pg} \"$ctl\" -D \"$w/cluster\" -m fast -w stop >/dev/null",
        "started=",
        "grep -h -E 'recovery stopping|last completed transaction|redo done' "
        "\"$w/restore.log\" | sed 's/^/log /' || true",
        f"echo dump {sh(dump)}",
    ]
    return "\n".join(lines) + "\n"


def _with_major(text: str) -> str:
    """`text` as one shell word, each `{major}` in it the restored cluster's ($v)."""
    return '"$v"'.join(sh(part) if part else "" for part in text.split("{major}"))


def _other_major_lines(live_major: int | None, bindirs: tuple[str, ...],
                       package: str) -> list[str]:
    """Shell (pgbackrest_restore_script): `ctl` set to the pg_ctl of the restored
    cluster's major when it is not `live_major`."""
    if live_major is None or not bindirs:
        return []
    looked = ", ".join(bindirs)
    missing = (f"the backup is of PostgreSQL {{major}} (this host's server is {live_major}): "
               f"its restore needs {{major}}'s pg_ctl, which is not in {looked}; install "
               f"{package or 'that major'} and restore again. Nothing was changed")
    dirs = " ".join(_with_major(b) for b in bindirs)
    return [
        'v=$(cat "$w/cluster/PG_VERSION")',
        'case "$v" in ""|*[!0-9]*) echo "the restored cluster has no PG_VERSION" >&2; '
        "exit 1;; esac",
        f'if [ "$v" != {int(live_major)} ]; then ctl=; for b in {dirs}; do '
        'if [ -x "$b/pg_ctl" ]; then ctl=$b/pg_ctl; break; fi; done; '
        f'if [ -z "$ctl" ]; then echo {_with_major(missing)} >&2; exit 1; fi; fi',
    ]


def size_text(n: int) -> str:
    """Bytes for people: 812 bytes, 3.4 MB, 12.0 GB."""
    if n < 1024:
        return f"{n} bytes"
    x, unit = n / 1024, "kB"
    for bigger in ("MB", "GB", "TB"):
        if x < 1024:
            break
        x, unit = x / 1024, bigger
    return f"{x:.1f} {unit}"


def age_text(seconds: float) -> str:
    """An age for people: 45 s, 12 min, 5 h, 3 d."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 3 * 86400:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


__all__ = ["BACKUP_KINDS", "DEFAULT_KEEP_DAYS", "DEFAULT_ON_CALENDAR", "PGBR_CONF", "PGBR_INFO",
           "PGBR_SCRIPT", "SCRIPT", "SCRIPT_PATH", "STANZA", "BackupFile", "Job", "PgbackrestInfo",
           "Schedule", "age_text", "archive_command", "archive_settings", "command",
           "cron_schedule", "cron_time", "kind_of", "listing_script", "parse_listing",
           "parse_pgbackrest_info", "pg_dump_job", "pgbackrest_conf", "pgbackrest_info_line",
           "pgbackrest_job", "schedule_paths", "size_text", "stanza_of", "systemd_schedule",
           "unit_base"]
