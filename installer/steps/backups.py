"""The backup schedule (installer.desired.backups) in place: the script, the systemd
timer (or the cron entry) and backup_dir; or, with backup=none, no schedule."""

from __future__ import annotations

from installer.desired import backups
from installer.host.state import psql_command
from installer.sqltext import quote_ident, quote_literal
from installer.steps.base import HostContext, Step, StepFailed, StepResult, changed, ok, skipped
from installer.steps.files import unified_diff
from installer.transport.shell import sh

#: the files' modes: the script is run by postgres, everything is root's
_MODES = {backups.SCRIPT_PATH: "0755"}


def wanted_schedule(ctx: HostContext) -> backups.Schedule | None:
    """The schedule this host should have; None where nothing would run one (no systemd
    and no cron daemon)."""
    c, s = ctx.config, ctx.strategy
    dump = s.client("pg_dump")
    pgbin = dump.rsplit("/", 1)[0] if "/" in dump else ""
    if ctx.facts.systemd:
        service = s.service()
        after = service if "." in service else f"{service}.service"
        return backups.systemd_schedule(c.db_name, c.pg_port, c.backup_dir, c.backup_keep,
                                        pgbin, c.backup_on_calendar, after)
    if not ctx.state.cron_running:
        return None
    try:
        return backups.cron_schedule(c.db_name, c.pg_port, c.backup_dir, c.backup_keep, pgbin,
                                     c.backup_on_calendar, ctx.facts.machine_id or ctx.name)
    except ValueError as e:
        raise StepFailed(str(e)) from None


def install_script(files: dict[str, str], remove: list[str], timer: str | None,
                   backup_dir: str, *, systemd: bool, stale_timer: str | None = None) -> str:
    """Root shell, one round trip: backup_dir (0700, postgres) made, each file written
    whole (a temporary file renamed over it), stale files removed, the timer enabled."""
    d = sh(backup_dir)
    lines = ["set -eu", "cd /", "umask 022",
             f"if [ ! -d {d} ]; then mkdir -p {d}; chown postgres:postgres {d}; "
             f"chmod 0700 {d}; fi"]
    if stale_timer:
        lines.append(f"systemctl disable --now {sh(stale_timer)} >/dev/null 2>&1 || true")
    for path, content in files.items():
        q, tmp = sh(path), sh(path + ".chatalot-db.new")
        mode = _MODES.get(path, "0644")
        lines += [f"mkdir -p {sh(path.rsplit('/', 1)[0])}",
                  f"cat > {tmp} <<'CHATALOT_EOF'\n{content}CHATALOT_EOF",
                  f"chmod {mode} {tmp}; chown root:root {tmp}; mv -f {tmp} {q}"]
    if remove:
        lines.append("rm -f " + " ".join(sh(p) for p in remove))
    if systemd:
        lines.append("systemctl daemon-reload")
    if timer:
        lines.append(f"systemctl enable --now --quiet {sh(timer)}")
    return "\n".join(lines) + "\n"


class ScheduleBackups(Step):
    """Nightly pg_dumps of the app's database, kept backup_keep days (backup=pg_dump)."""

    name = "schedule backups"

    def run(self, ctx: HostContext) -> StepResult:
        c, st = ctx.config, ctx.state
        have = {p: v for p, v in st.backup_files.items() if v is not None}
        _, timer_path, _ = backups.schedule_paths(c.db_name)
        timer = timer_path.rsplit("/", 1)[1]
        systemd = ctx.facts.systemd
        if c.backup == "none":
            ours = [p for p in have if p != backups.SCRIPT_PATH]  # (other apps may use it)
            if not ours:
                return ok("backup=none: no schedule")
            if ctx.check:
                return changed(f"would remove the backup schedule ({', '.join(ours)}); the "
                               f"dumps in {c.backup_dir} stay")
            ctx.root(install_script({}, ours, None, c.backup_dir, systemd=systemd,
                                    stale_timer=timer if timer_path in have else None),
                     "removing the backup schedule")
            ctx.invalidate()
            return changed(f"removed the backup schedule ({', '.join(ours)}); the dumps in "
                           f"{c.backup_dir} stay")
        want = wanted_schedule(ctx)
        if want is None:
            return skipped(
                f"no systemd as PID 1 (PID 1 is {ctx.facts.pid1 or 'unknown'}) and no cron "
                "daemon running: nothing would run a schedule. Run cron, or take dumps with "
                "`chatalot-db backup`")
        what = (f"pg_dump of {c.db_name} {want.when}, kept {c.backup_keep} days in "
                f"{c.backup_dir}")
        differ = {p: text for p, text in want.files.items() if have.get(p) != text}
        stale = [p for p in have if p not in want.files]
        timer_off = want.timer is not None and st.backup_timer != "enabled active"
        if not differ and not stale and not timer_off:
            return ok(what)
        first = not any(p in have for p in want.files if p != backups.SCRIPT_PATH)
        verb = "scheduled" if first else "updated the schedule:"
        diff = None
        if ctx.diff:
            diff = "".join(unified_diff(p, have.get(p), text) for p, text in differ.items())
        if ctx.check:
            return changed(f"would have {what}" + (" (none yet)" if first else ""), diff)
        stale_timer = timer if timer_path in stale else None
        ctx.root(install_script(differ, stale, want.timer, c.backup_dir, systemd=systemd,
                                stale_timer=stale_timer), "installing the backup schedule")
        ctx.invalidate()
        return changed(f"{verb} {what}", diff)




# -- chatalot-db backup / backups / restore ------------------------------------------------

def pgbin(ctx: HostContext) -> str:
    """The directory of the managed major's client programs ("" : PATH's)."""
    dump = ctx.strategy.client("pg_dump")
    return dump.rsplit("/", 1)[0] if "/" in dump else ""


def backup_now_script(ctx: HostContext, kind: str) -> str:
    """Root shell: backup_dir made if missing (0700, postgres), then the backup script (as
    installed by apply, or sent along where it is not) run as postgres: prints
    `PATH SIZE`."""
    c = ctx.config
    d = sh(c.backup_dir)
    argv = " ".join(sh(a) for a in backups.command(c.db_name, c.pg_port, c.backup_dir,
                                                   c.backup_keep, pgbin(ctx), kind)[1:])
    return (
        "set -eu\ncd /\n"
        f"if [ ! -d {d} ]; then umask 022; mkdir -p {d}; chown postgres:postgres {d}; "
        f"chmod 0700 {d}; fi\n"
        f"script=$(cat <<'CHATALOT_EOF'\n{backups.SCRIPT}CHATALOT_EOF\n)\n"
        f'runuser -u postgres -- sh -c "$script" backup {argv}\n'
    )


def take_backup(ctx: HostContext, kind: str) -> tuple[str, int]:
    """Run a dump now; (path, size). StepFailed (the earlier dumps untouched) otherwise."""
    c = ctx.config
    r = ctx.t.run(backup_now_script(ctx, kind), become="root", timeout=None)
    first = r.stdout.strip().splitlines()[0].rsplit(" ", 1) if r.ok and r.stdout.strip() else []
    if not r.ok or len(first) != 2 or not first[1].isdigit():
        said = " / ".join(ln for ln in (r.stderr or r.stdout).strip().splitlines()[-3:])
        raise StepFailed(f"pg_dump of {c.db_name} into {c.backup_dir} failed: {said}; no "
                         "backup written, the earlier ones untouched")
    return first[0], int(first[1])


def _require_database(ctx: HostContext) -> None:
    sql = ctx.server_answers()
    if not (sql or {}).get("database"):
        raise StepFailed(f"no database {ctx.config.db_name} on this host (port "
                         f"{ctx.config.pg_port}): nothing to back up or restore")


class TakeBackup(Step):
    """`chatalot-db backup`: one pg_dump now, next to the scheduled ones."""

    name = "take a backup"

    def run(self, ctx: HostContext) -> StepResult:
        _require_database(ctx)
        path, size = take_backup(ctx, backups.MANUAL)
        return changed(f"backup {path} ({backups.size_text(size)})")


def list_backups(ctx: HostContext) -> list[backups.BackupFile]:
    c = ctx.config
    r = ctx.root(backups.listing_script(c.backup_dir, c.db_name), "listing the backups")
    return backups.parse_listing(r.stdout, c.db_name)


class ListBackups(Step):
    """`chatalot-db backups`: the dumps of the app database in backup_dir."""

    name = "list backups"

    def __init__(self, found: dict[str, list[backups.BackupFile]]) -> None:
        self.found = found

    def run(self, ctx: HostContext) -> StepResult:
        files = list_backups(ctx)
        self.found[ctx.name] = files
        if not files:
            return ok(f"no backups of {ctx.config.db_name} in {ctx.config.backup_dir}")
        newest = files[0]
        return ok(f"{len(files)} backup(s) of {ctx.config.db_name} in {ctx.config.backup_dir}; "
                  f"newest {newest.path.rsplit('/', 1)[1]} ({newest.kind}, "
                  f"{backups.size_text(newest.size)})")


#: the restored database's checks: statistics made (a restore has none), the ledger, then
#: the exact rows of the five tables with the most rows
CHECK_SQL = """\
ANALYZE;
SELECT 'ledger ' || CASE WHEN to_regclass('public._sqlx_migrations') IS NULL THEN 'none'
  ELSE (SELECT count(*) || ' ' || coalesce(max(version)::text, '-')
        FROM public._sqlx_migrations) END;
SELECT format('SELECT %L || '' '' || count(*) FROM %I.%I',
              'rows ' || n.nspname || '.' || c.relname, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY c.reltuples DESC, pg_total_relation_size(c.oid) DESC, 1 LIMIT 5
\\gexec
"""


def parse_checks(text: str) -> tuple[str, list[tuple[str, int]]]:
    """("N rows, last V" | "no ledger", [(table, rows)]) from check_sql's output. Pure."""
    ledger, rows = "no ledger", []
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key == "ledger" and rest != "none":
            count, _, last = rest.partition(" ")
            ledger = f"ledger {count} rows, last {last}"
        elif key == "rows":
            table, _, n = rest.rpartition(" ")
            if n.isdigit():
                rows.append((table, int(n)))
    return ledger, rows


def pick_backup(files: list[backups.BackupFile], source: str, backup_dir: str,
                db_name: str) -> backups.BackupFile:
    """The backup `source` names: `latest`, a file name in backup_dir or its full path;
    StepFailed otherwise (never a file that is not one of db_name's dumps there). Pure."""
    if not files:
        raise StepFailed(f"no backups of {db_name} in {backup_dir}: nothing to restore")
    if source == "latest":
        return files[0]
    for f in files:
        if source in (f.path, f.path.rsplit("/", 1)[1]):
            return f
    raise StepFailed(f"{source} is not one of the {len(files)} backups of {db_name} in "
                     f"{backup_dir} (`chatalot-db backups` lists them; or --from latest)")


class RestoreBackup(Step):
    """`chatalot-db restore`: a backup into a new database, checked; with `in_place`, the
    live database then replaced by it (a dump of the live one first, and the live one kept
    under another name)."""

    name = "restore a backup"

    def __init__(self, source: str, *, to_db: str | None = None, in_place: bool = False,
                 stamp: str = "") -> None:
        self.source, self.to_db, self.in_place = source, to_db, in_place
        self.stamp = stamp

    def run(self, ctx: HostContext) -> StepResult:
        c = ctx.config
        _require_database(ctx)
        chosen = pick_backup(list_backups(ctx), self.source, c.backup_dir, c.db_name)
        name = chosen.path.rsplit("/", 1)[1]
        psql, restore = ctx.strategy.psql(), ctx.strategy.client("pg_restore")
        readable = ctx.t.run(f"cd / && {sh(restore)} --list {sh(chosen.path)} >/dev/null",
                             become="postgres", timeout=600)
        if not readable.ok:
            raise StepFailed(f"{name} cannot be read to its end (truncated or corrupt): "
                             f"{readable.stderr.strip()[-300:]}; nothing was changed")
        target = self.to_db or (f"{c.db_name}_restoring_{self.stamp}" if self.in_place
                                else f"{c.db_name}_restored_{self.stamp}")
        qt, qu = quote_ident(target), quote_ident(c.db_user)
        exists = ctx.psql(f"SELECT count(*) FROM pg_database WHERE datname = "
                          f"{quote_literal(target)};", "looking for the target database")
        if exists.stdout.strip() != "0":
            raise StepFailed(f"database {target} exists already: give --to-db another name; "
                             "nothing was changed")
        ctx.psql(f"CREATE DATABASE {qt} OWNER {qu} ENCODING 'UTF8' TEMPLATE template0;",
                 f"creating database {target}")
        ctx.psql(f"REVOKE CONNECT, TEMPORARY ON DATABASE {qt} FROM PUBLIC;\n"
                 f"GRANT ALL PRIVILEGES ON DATABASE {qt} TO {qu};",
                 f"granting on database {target}")
        r = ctx.t.run(f"cd / && {sh(restore)} --no-owner --role={sh(c.db_user)} "
                      f"--exit-on-error --single-transaction -p {c.pg_port} -d {sh(target)} "
                      f"{sh(chosen.path)}", become="postgres", timeout=None)
        if not r.ok:
            ctx.psql(f"DROP DATABASE IF EXISTS {qt};", f"dropping {target} again")
            raise StepFailed(f"pg_restore of {name} into {target} failed: "
                             f"{r.stderr.strip()[-400:]}; {target} dropped again, the live "
                             f"database {c.db_name} untouched")
        out = ctx.t.check(f"cd / && {sh(psql)} -X -At -v ON_ERROR_STOP=1 -p {c.pg_port} "
                          f"-d {sh(target)}", what=f"checking {target}", become="postgres",
                          stdin=CHECK_SQL, timeout=600)
        ledger, rows = parse_checks(out.stdout)
        checked = f"{ledger}; rows: " + (", ".join(f"{t} {n}" for t, n in rows) or "no tables")
        what = f"{name} ({chosen.kind})"
        if not self.in_place:
            return changed(f"restored {what} into database {target}: {checked}; the live "
                           f"database {c.db_name} untouched")
        safety, _ = take_backup(ctx, backups.BEFORE_RESTORE)
        kept = f"{c.db_name}_replaced_{self.stamp}"
        r = ctx.t.run(psql_command(c.pg_port, "postgres", "-At", psql=psql),
                      become="postgres", stdin=swap_sql(c.db_name, target, kept), timeout=120)
        ctx.invalidate()
        if not r.ok:  # the live database (whatever its name now) takes connections again
            back = ctx.t.run(psql_command(c.pg_port, "postgres", "-At", psql=psql),
                             become="postgres", timeout=60, stdin=(
                                 f"ALTER DATABASE {quote_ident(c.db_name)} "
                                 "ALLOW_CONNECTIONS true;"))
            raise StepFailed(f"replacing database {c.db_name} failed: "
                             f"{r.stderr.strip()[-300:]}; "
                             + (f"{c.db_name} takes connections again, unchanged" if back.ok
                                else f"and {c.db_name} could not be reopened: "
                                     f"{back.stderr.strip()[-200:]}")
                             + f"; the restored copy is database {target}, the dump of the "
                             f"live one {safety}")
        return changed(f"replaced database {c.db_name} with {what}: {checked}; the previous "
                       f"one kept as database {kept} and dumped to {safety}")


def swap_sql(live: str, restored: str, kept: str) -> str:
    """As postgres: no new connection to `live`, its sessions ended, then `live` renamed to
    `kept` and `restored` to `live` (each rename waits for the ended sessions to go)."""
    ql, qr, qk, ll = quote_ident(live), quote_ident(restored), quote_ident(kept), \
        quote_literal(live)
    return (
        f"ALTER DATABASE {ql} ALLOW_CONNECTIONS false;\n"
        f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = {ll} "
        "AND pid <> pg_backend_pid();\n"
        "DO $$ BEGIN FOR i IN 1..100 LOOP EXIT WHEN NOT EXISTS (SELECT 1 FROM "
        f"pg_stat_activity WHERE datname = {ll} AND pid <> pg_backend_pid()); "
        "PERFORM pg_sleep(0.1); END LOOP; END $$;\n"
        f"ALTER DATABASE {ql} RENAME TO {qk};\n"
        f"ALTER DATABASE {qk} ALLOW_CONNECTIONS true;\n"
        f"ALTER DATABASE {qr} RENAME TO {ql};\n"
    )


__all__ = [
    "CHECK_SQL",
    "ListBackups",
    "RestoreBackup",
    "ScheduleBackups",
    "TakeBackup",
    "install_script",
    "parse_checks",
    "pick_backup",
    "swap_sql",
    "wanted_schedule",
]
