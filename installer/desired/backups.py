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
`backup=none` removes the schedule (the dumps stay).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from installer.transport.shell import sh

BACKUP_KINDS = ("pg_dump", "none")
DEFAULT_KEEP_DAYS = 7
DEFAULT_ON_CALENDAR = "*-*-* 03:00:00"
#: systemd's RandomizedDelaySec with FixedRandomDelay: each host its own, stable delay
JITTER = "1h"

SCRIPT_PATH = "/usr/local/lib/chatalot-db/backup"
SYSTEMD_DIR = "/etc/systemd/system"
CRON_DIR = "/etc/cron.d"

#: the dump kinds in a backup file's name: `DB-YYYYmmddTHHMMSSZ-KIND.dump`
SCHEDULED, MANUAL, BEFORE_RESTORE = "scheduled", "manual", "before-restore"

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


def systemd_schedule(db_name: str, port: int, backup_dir: str, keep_days: int, pgbin: str,
                     on_calendar: str, after_unit: str) -> Schedule:
    service, timer, _ = schedule_paths(db_name)
    argv = " ".join(command(db_name, port, backup_dir, keep_days, pgbin or '""'))
    unit = (
        "# Written by chatalot-db apply (backup=pg_dump); changes are overwritten.\n"
        "[Unit]\n"
        f"Description=chatalot-db: pg_dump of database {db_name}\n"
        f"After={after_unit}\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        "User=postgres\n"
        "Group=postgres\n"
        f"ExecStart={argv}\n"
        "Nice=10\n"
        "IOSchedulingClass=idle\n"
    )
    tim = (
        "# Written by chatalot-db apply (backup=pg_dump); changes are overwritten.\n"
        "[Unit]\n"
        f"Description=chatalot-db: nightly pg_dump of database {db_name}\n\n"
        "[Timer]\n"
        f"OnCalendar={on_calendar}\n"
        f"RandomizedDelaySec={JITTER}\n"
        "FixedRandomDelay=true\n"
        "Persistent=true\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return Schedule({SCRIPT_PATH: SCRIPT, service: unit, timer: tim},
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


def cron_schedule(db_name: str, port: int, backup_dir: str, keep_days: int, pgbin: str,
                  on_calendar: str, spread_key: str) -> Schedule:
    """The cron.d entry (hosts without systemd); ValueError when `on_calendar` is not a
    daily time."""
    at = cron_time(on_calendar, spread_key)
    if at is None:
        raise ValueError(f"backup_on_calendar {on_calendar!r} is no daily time (e.g. "
                         "`*-*-* 03:00:00`), which is all a cron entry can say here")
    minute, hour = at
    _, _, path = schedule_paths(db_name)
    argv = " ".join(command(db_name, port, backup_dir, keep_days, pgbin or '""'))
    entry = (
        "# Written by chatalot-db apply (backup=pg_dump); changes are overwritten.\n"
        "SHELL=/bin/sh\n"
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
        f"{minute} {hour} * * * postgres {argv}\n"
    )
    return Schedule({SCRIPT_PATH: SCRIPT, path: entry}, None,
                    f"daily at {hour:02d}:{minute:02d} (cron, spread by machine-id)")


@dataclass(frozen=True)
class BackupFile:
    """One dump in backup_dir, from its name and `stat`."""

    path: str
    kind: str  # scheduled, manual, before-restore, before-migration, before-upgrade
    mtime: int
    size: int


_NAME = re.compile(r"^(?P<db>.+)-(?P<stamp>\d{8}T\d{6}Z)-(?P<what>[A-Za-z0-9_.-]+)\.dump$")


def kind_of(name: str, db_name: str) -> str | None:
    """The kind of a dump file named `name`, when it is one of `db_name`'s (else None)."""
    m = _NAME.match(name)
    if m is None or m["db"] != db_name:
        return None
    what = m["what"]
    if what in (SCHEDULED, MANUAL, BEFORE_RESTORE):
        return what
    if what.startswith("before-upgrade-"):
        return "before-upgrade"
    if what.startswith("before-"):
        return "before-migration"
    return None


def listing_script(backup_dir: str, db_name: str) -> str:
    """Shell (as root) printing `MTIME SIZE PATH` per dump of `db_name` in backup_dir."""
    d = sh(backup_dir.rstrip("/") or "/")
    return (f"for f in {d}/{sh(db_name)}-*.dump; do [ -f \"$f\" ] || continue; "
            "stat -c '%Y %s %n' \"$f\"; done; true")


def parse_listing(text: str, db_name: str) -> list[BackupFile]:
    """listing_script's lines as BackupFiles, newest first."""
    found = []
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        kind = kind_of(parts[2].rsplit("/", 1)[-1], db_name)
        if kind is not None:
            found.append(BackupFile(parts[2], kind, int(parts[0]), int(parts[1])))
    return sorted(found, key=lambda b: (b.mtime, b.path), reverse=True)


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


__all__ = ["BACKUP_KINDS", "DEFAULT_KEEP_DAYS", "DEFAULT_ON_CALENDAR", "SCRIPT", "SCRIPT_PATH",
           "BackupFile", "Schedule", "age_text", "command", "cron_schedule", "cron_time", "kind_of",
           "listing_script", "parse_listing", "schedule_paths", "size_text",
           "systemd_schedule", "unit_base"]
