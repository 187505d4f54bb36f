"""The backup schedule (installer.desired.backups) in place: the script, the systemd
timer (or the cron entry) and backup_dir; or, with backup=none, no schedule."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from installer.desired import backups
from installer.host.state import psql_command
from installer.sqltext import quote_ident, quote_literal
from installer.steps.base import HostContext, Step, StepFailed, StepResult, changed, ok, skipped
from installer.steps.files import unified_diff
from installer.transport.shell import sh

#: the files' modes: the scripts are run by postgres, everything is root's
_MODES = {backups.SCRIPT_PATH: "0755", backups.PGBR_SCRIPT: "0755"}
#: files a change of `backup` leaves in place: the scripts (`chatalot-db backup` and the
#: dumps before migrations use the pg_dump one) and pgBackRest's configuration of our
#: stanza (without it, the backups in its repository could not be listed or restored)
_KEPT = (backups.SCRIPT_PATH, backups.PGBR_SCRIPT, backups.PGBR_CONF)


def wanted_job(ctx: HostContext) -> backups.Job:
    """What the schedule runs on this host (backup=pg_dump or pgbackrest)."""
    c = ctx.config
    if c.backup == "pgbackrest":
        return backups.pgbackrest_job(c.pgbackrest_repo)
    return backups.pg_dump_job(c.db_name, c.pg_port, c.backup_dir, c.backup_keep, pgbin(ctx))


def wanted_schedule(ctx: HostContext) -> backups.Schedule | None:
    """The schedule this host should have; None where nothing would run one (no systemd
    and no cron daemon)."""
    c, s = ctx.config, ctx.strategy
    job = wanted_job(ctx)
    if ctx.facts.systemd:
        service = s.service()
        after = service if "." in service else f"{service}.service"
        return backups.systemd_schedule(c.db_name, job, c.backup_on_calendar, after)
    if not ctx.state.cron_running:
        return None
    try:
        return backups.cron_schedule(c.db_name, job, c.backup_on_calendar,
                                     ctx.facts.machine_id or ctx.name)
    except ValueError as e:
        raise StepFailed(str(e)) from None


def install_script(files: dict[str, str], remove: list[str], timer: str | None,
                   backup_dir: str, *, systemd: bool, stale_timer: str | None = None,
                   then: list[str] | None = None) -> str:
    """Root shell, one round trip: backup_dir (0700, postgres) made, each file written
    whole (a temporary file renamed over it), stale files removed, `then` run, the timer
    enabled."""
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
    lines += then or []
    if systemd:
        lines.append("systemctl daemon-reload")
    if timer:
        lines.append(f"systemctl enable --now --quiet {sh(timer)}")
    return "\n".join(lines) + "\n"


def pgbackrest_run(*args: str) -> str:
    """pgbackrest as postgres on our stanza, only its warnings and errors on the console."""
    return ("runuser -u postgres -- pgbackrest " + sh(f"--stanza={backups.STANZA}")
            + " --log-level-console=warn " + sh(*args))


def stanza_script(major: int) -> str:
    """stanza-create; or stanza-upgrade where the stanza's newest database is another major
    than the cluster's (`chatalot-db upgrade` ran: pgBackRest then says to run
    stanza-upgrade). The same message for the same major means another cluster (a
    re-initialised one, or another host's in a shared repository): refused, never adopted.
    Prints `stanza-upgraded` when it upgraded."""
    info = ("runuser -u postgres -- pgbackrest " + sh(f"--stanza={backups.STANZA}")
            + " --output=json info 2>/dev/null | grep -o '\"version\":\"[0-9]*\"' | "
            "tail -n 1 | tr -dc 0-9")
    return (
        "upgraded=\n"
        f"if ! out=$({pgbackrest_run('stanza-create')} 2>&1); then\n"
        "  case $out in\n"
        f"  *stanza-upgrade*) was=$({info})\n"
        f"    if [ \"$was\" = {major} ]; then echo \"$out\" >&2; echo \"stanza "
        f"{backups.STANZA} holds another PostgreSQL {major} cluster's backups (a "
        "re-initialised cluster, or another host's in a shared repository): not taken over; "
        "give this cluster a repository of its own (pgbackrest_repo_path)\" >&2; exit 1; fi\n"
        f"    {pgbackrest_run('stanza-upgrade')}; upgraded=yes; echo stanza-upgraded ;;\n"
        "  *) echo \"$out\" >&2; exit 1 ;;\n"
        "  esac\n"
        "fi"
    )


class ScheduleBackups(Step):
    """Scheduled backups, kept backup_keep days: nightly pg_dumps (backup=pg_dump), or
    pgBackRest with WAL archiving, full weekly and differential daily (backup=pgbackrest)."""

    name = "schedule backups"

    def run(self, ctx: HostContext) -> StepResult:
        c, st = ctx.config, ctx.state
        have = {p: v for p, v in st.backup_files.items() if v is not None}
        _, timer_path, _ = backups.schedule_paths(c.db_name)
        timer = timer_path.rsplit("/", 1)[1]
        systemd = ctx.facts.systemd
        if c.backup == "none":
            ours = [p for p in have if p not in _KEPT]
            if not ours:
                return ok("backup=none: no schedule")
            kept = f"the dumps in {c.backup_dir} stay" + (
                " (and the pgBackRest repository)" if backups.PGBR_CONF in have else "")
            if ctx.check:
                return changed(f"would remove the backup schedule ({', '.join(ours)}); {kept}")
            ctx.root(install_script({}, ours, None, c.backup_dir, systemd=systemd,
                                    stale_timer=timer if timer_path in have else None),
                     "removing the backup schedule")
            ctx.invalidate()
            return changed(f"removed the backup schedule ({', '.join(ours)}); {kept}")
        want = wanted_schedule(ctx)
        if want is None:
            return skipped(
                f"no systemd as PID 1 (PID 1 is {ctx.facts.pid1 or 'unknown'}) and no cron "
                "daemon running: nothing would run a schedule. Run cron, or take backups with "
                "`chatalot-db backup`")
        job = wanted_job(ctx)
        where = c.pgbackrest_repo if job.kind == "pgbackrest" else c.backup_dir
        what = f"{job.what} {want.when}, kept {c.backup_keep} days in {where}"
        files = dict(want.files)
        todo: list[tuple[str, str]] = []  # the pgBackRest part: (would do, done) for messages
        then: list[str] = []
        if job.kind == "pgbackrest":
            files[backups.PGBR_CONF] = self._pgbackrest_conf(ctx)
            then, todo = self._pgbackrest_plan(ctx, conf_differs=have.get(
                backups.PGBR_CONF) != files[backups.PGBR_CONF])
        differ = {p: text for p, text in files.items() if have.get(p) != text}
        stale = [p for p in have if p not in files and p not in _KEPT]
        timer_off = want.timer is not None and st.backup_timer != "enabled active"
        if not differ and not stale and not timer_off and not todo:
            return ok(what + self._count(ctx))
        first = not any(p in have for p in want.files if p not in _KEPT)
        verb = "scheduled" if first else "updated the schedule:"
        diff = None
        if ctx.diff:
            diff = "".join(unified_diff(p, have.get(p), text) for p, text in differ.items())
        done = "; ".join(future for future, _ in todo)
        if ctx.check:
            return changed((f"would {done}; " if todo else "") + f"would have {what}"
                           + (" (none yet)" if first else ""), diff)
        if job.kind == "pgbackrest" and st.pgbackrest is not None \
                and not st.pgbackrest.installed:
            self._install_pgbackrest(ctx)
        stale_timer = timer if timer_path in stale else None
        r = ctx.root(install_script(differ, stale, want.timer, c.backup_dir, systemd=systemd,
                                    stale_timer=stale_timer, then=then),
                     "installing the backup schedule", timeout=3600)
        ctx.invalidate()
        label = next((ln.split()[1] for ln in r.stdout.splitlines()
                      if ln.startswith("label ") and len(ln.split()) > 1), None)
        upgraded = "stanza-upgraded" in r.stdout.split()
        said = []
        for _, past in todo:
            if past.startswith("checked stanza") and upgraded:
                past = (f"upgraded stanza {backups.STANZA} to PostgreSQL {ctx.major}, then took "
                        f"its first full backup ({label})")
            elif past == "took the first full backup" and label is not None:
                past += f" ({label})"
            said.append(past)
        done = "; ".join(said)
        return changed((f"{done}; " if todo else "") + f"{verb} {what}", diff)

    @staticmethod
    def _pgbackrest_conf(ctx: HostContext) -> str:
        c = ctx.config
        data_dir = str((ctx.state.sql or {}).get("data_directory") or ctx.strategy.data_dir())
        return backups.pgbackrest_conf(backups.STANZA, data_dir, c.pg_port, c.pgbackrest_repo,
                                       c.backup_keep)

    @staticmethod
    def _pgbackrest_plan(ctx: HostContext, *, conf_differs: bool
                         ) -> tuple[list[str], list[tuple[str, str]]]:
        """(root shell lines, what they do) for the repository, the stanza and the first
        full backup; ([], []) when all are in place."""
        c, pb = ctx.config, ctx.state.pgbackrest
        if pb is None:
            raise StepFailed("backup=pgbackrest, but its state was not read")
        if not pb.installed and ctx.strategy.pgbackrest_package is None:
            raise StepFailed(f"pgBackRest is not in {ctx.facts.pretty_name}'s package "
                             "repositories: install it yourself (pgbackrest in PATH), or set "
                             "backup=pg_dump")
        repo = c.pgbackrest_repo
        lines = [f"install -d -o postgres -g postgres -m 0750 {sh(repo)}"]
        todo = []
        if not pb.installed:
            todo.append(("install pgbackrest", "installed pgbackrest"))
        if not pb.stanza or conf_differs:
            lines += [stanza_script(ctx.major), pgbackrest_run("check")]
            todo.append((f"create stanza {backups.STANZA} in {repo}",
                         f"created stanza {backups.STANZA} in {repo}") if not pb.stanza
                        else (f"check stanza {backups.STANZA}",
                              f"checked stanza {backups.STANZA}"))
        full = "runuser -u postgres -- " + " ".join(
            sh(a) for a in backups.pgbackrest_job(repo).argv[:-1]) + " full"
        if not pb.labels:
            lines.append(full)
            todo.append(("take the first full backup", "took the first full backup"))
        elif not pb.stanza or conf_differs:
            # after stanza-upgrade (a new major), the new cluster's first full backup now:
            # the old major's backups cannot bring it back to a point in time
            lines.append(f'if [ -n "$upgraded" ]; then {full}; fi')
        return (lines, todo) if todo else ([], [])

    @staticmethod
    def _install_pgbackrest(ctx: HostContext) -> None:
        package = ctx.strategy.pgbackrest_package or "pgbackrest"
        ctx.root(ctx.strategy.install_script([package]), f"installing {package}",
                 timeout=1800)

    @staticmethod
    def _count(ctx: HostContext) -> str:
        pb = ctx.state.pgbackrest
        if pb is None:
            return ""
        full = sum(1 for label in pb.labels if label.endswith("F"))
        return f"; {len(pb.labels)} backups ({full} full) in the repository"


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
                         f"{ctx.config.pg_port}): nothing to back up or restore (a new host: run "
                         "`chatalot-db apply` first, it creates the database)")


class TakeBackup(Step):
    """`chatalot-db backup`: one backup now, next to the scheduled ones: a pg_dump, or with
    backup=pgbackrest a pgBackRest backup (`kind`: auto, full, diff or incr)."""

    name = "take a backup"

    def __init__(self, kind: str = "auto") -> None:
        self.kind = kind

    def run(self, ctx: HostContext) -> StepResult:
        _require_database(ctx)
        c = ctx.config
        if c.backup != "pgbackrest":
            path, size = take_backup(ctx, backups.MANUAL)
            return changed(f"backup {path} ({backups.size_text(size)})")
        argv = [*backups.pgbackrest_job(c.pgbackrest_repo).argv[:-1], self.kind]
        # on failure, the repository's free space too (pgBackRest's write errors omit it)
        r = ctx.t.run(f"cd / && {sh(*argv)} || {{ rc=$?; df -Pk {sh(c.pgbackrest_repo)} | "
                      "awk 'NR == 2 { print \"the repository file system has \" $4 \" kB "
                      "free\" }' >&2; exit $rc; }", become="postgres", timeout=None)
        words = next((ln.split() for ln in r.stdout.splitlines() if ln.startswith("label ")),
                     [])
        if not r.ok or len(words) != 3:
            text = (r.stderr or r.stdout).strip()
            said = " / ".join(" ".join(ln.split()) for ln in text.splitlines()[-8:])
            hint = ""
            if "missing stanza" in text or "not found" in text:
                hint = " (has apply set backup=pgbackrest up on this host?)"
            raise StepFailed(f"pgBackRest backup of stanza {backups.STANZA} into "
                             f"{c.pgbackrest_repo} failed: {said or 'no output'}; the earlier "
                             f"backups untouched{hint}")
        found = [f for f in list_backups(ctx) if f.path == words[1]]
        stored = f" ({backups.size_text(found[0].size)} in the repository)" if found else ""
        return changed(f"pgBackRest {words[2]} backup {words[1]}{stored}")


def list_backups(ctx: HostContext) -> list[backups.BackupFile]:
    c = ctx.config
    stanza = backups.stanza_of(c.backup)
    r = ctx.root(backups.listing_script(c.backup_dir, c.db_name, stanza), "listing the backups")
    return backups.parse_listing(r.stdout, c.db_name, stanza)


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
                  f"newest {newest.path.rsplit('/', 1)[-1]} ({newest.kind}, "
                  f"{backups.size_text(newest.size)})")


class FetchBackups(Step):
    """`chatalot-db backups --fetch DIR`: the host's dumps (as ListBackups found them)
    copied to DIR/HOST/ on this machine, over the run's SSH connection. Each is written to
    a hidden .partial file (0600, in 0700 folders), its sha256 compared with the host's,
    and only then named; one already there (same name and size) is not copied again, one
    of that name with another size is left alone, and nothing is ever removed."""

    name = "fetch backups"

    def __init__(self, found: dict[str, list[backups.BackupFile]], to: Path) -> None:
        self.found, self.to = found, to

    def run(self, ctx: HostContext) -> StepResult:
        if "/" in ctx.name or ctx.name in (".", ".."):
            raise StepFailed(f"{ctx.name!r} cannot name a folder in {self.to}")
        dest = self.to / ctx.name
        have = ({p.name: p.stat().st_size for p in dest.iterdir() if p.is_file()}
                if dest.is_dir() else {})
        plan = backups.fetch_plan(self.found.get(ctx.name, []), have)
        notes = []
        if plan.differs:
            notes.append(f"left alone, another file of that name is in {dest}: "
                         + ", ".join(_base(f.path) for f in plan.differs))
        if plan.pgbackrest:
            notes.append(f"the {plan.pgbackrest} pgBackRest backup(s) stay in the repository "
                         f"{ctx.config.pgbackrest_repo} (copy it with pgBackRest's own "
                         "repo options or rsync)")
        if not plan.fetch:
            what = (f"all {len(plan.present)} dump(s) already in {dest}" if plan.present
                    else f"no dumps of {ctx.config.db_name} to fetch")
            return ok("; ".join([what, *notes]))
        _private_dirs(self.to, dest)
        fetched, failed, total = [], [], 0
        for f in plan.fetch:
            try:
                total += _fetch_one(ctx, f.path, dest / _base(f.path), f.mtime)
                fetched.append(_base(f.path))
            except StepFailed as e:
                failed.append(str(e))
        done = (f"fetched {len(fetched)} dump(s) ({backups.size_text(total)}) to {dest}"
                + (f": {', '.join(fetched)}" if len(fetched) <= 3 else "")
                + (f"; {len(plan.present)} already there" if plan.present else ""))
        if failed:
            raise StepFailed("; ".join([*failed, done, *notes]))
        return changed("; ".join([done, *notes]))


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _private_dirs(top: Path, dest: Path) -> None:
    """`top` and `dest` made if missing, mode 0700 (the dumps hold the app's data)."""
    for d in (top, dest):
        if not d.is_dir():
            d.mkdir(mode=0o700, parents=True)
            d.chmod(0o700)


def _fetch_one(ctx: HostContext, path: str, final: Path, mtime: int) -> int:
    """One dump copied to `final` through a hidden .partial file, checked by sha256;
    its size. StepFailed (nothing left behind) otherwise."""
    part = final.with_name(f".{final.name}.partial")
    digest, size = hashlib.sha256(), 0
    unwritten: list[OSError] = []  # this machine's disk full, say: not the host's fault
    out = os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
    try:
        def sink(data: bytes) -> None:
            nonlocal size
            if unwritten:
                return  # the rest is read and dropped: the command ends as usual
            try:
                out.write(data)
            except OSError as e:
                unwritten.append(e)
            digest.update(data)
            size += len(data)
        try:
            r = ctx.t.stream(backups.fetch_command(path), sink=sink, become="root")
            out.flush()
        except OSError as e:
            unwritten.append(e)
        finally:
            with contextlib.suppress(OSError):
                out.close()
        if unwritten:
            raise StepFailed(f"writing {final} on this machine failed: "
                             f"{unwritten[0].strerror or unwritten[0]}; not kept")
        theirs = backups.fetch_sha(r.stderr)
        if not r.ok or theirs is None:
            raise StepFailed(f"{_base(path)} could not be read on the host: "
                             f"{r.stderr.strip()[-300:] or 'no output'}")
        if theirs != digest.hexdigest():
            raise StepFailed(f"{_base(path)} arrived with sha256 {digest.hexdigest()}, the "
                             f"host's is {theirs}: not kept")
        os.replace(part, final)
        os.utime(final, (mtime, mtime))  # when the dump was taken, as the host has it
        return size
    finally:
        part.unlink(missing_ok=True)


def upload_dump(ctx: HostContext, local: Path, sha256: str, stamp: str) -> str:
    """`local` (a custom-format dump on this machine) sent into backup_dir as
    DB-STAMP-uploaded.dump, checked on the host (upload_script); its path there."""
    c = ctx.config
    name = backups.uploaded_name(c.db_name, stamp)
    script = backups.upload_script(c.backup_dir, name, sha256,
                                   ctx.strategy.client("pg_restore"),
                                   int(local.stat().st_mtime))
    with local.open("rb") as source:
        r = ctx.t.stream(script, sink=lambda _: None, become="root", source=source)
    if not r.ok:
        raise StepFailed(f"sending {local} to {c.backup_dir} failed: "
                         f"{' / '.join(r.stderr.strip().splitlines()[-3:]) or 'no output'}; "
                         "nothing was changed (no file left there)")
    return f"{c.backup_dir.rstrip('/')}/{name}"


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
        if source in (f.path, f.path.rsplit("/", 1)[-1]):
            return f
    raise StepFailed(f"{source} is not one of the {len(files)} backups of {db_name} in "
                     f"{backup_dir} (`chatalot-db backups` lists them; or --from latest)")


class RestoreBackup(Step):
    """`chatalot-db restore`: a backup into a new database, checked; with `in_place`, the
    live database then replaced by it (a dump of the live one first, and the live one kept
    under another name). A pgBackRest backup (or `target_time`, a point in time) is first
    restored into a cluster of its own beside the live one, and its copy of the app
    database taken from there."""

    name = "restore a backup"

    def __init__(self, source: str, *, to_db: str | None = None, in_place: bool = False,
                 stamp: str = "", target_time: str | None = None,
                 upload: tuple[Path, str] | None = None) -> None:
        self.source, self.to_db, self.in_place = source, to_db, in_place
        self.stamp, self.target_time = stamp, target_time
        #: a dump on this machine and its sha256, sent to the host first
        self.upload = upload

    def run(self, ctx: HostContext) -> StepResult:
        c = ctx.config
        _require_database(ctx)
        if self.upload is not None:
            local, sha256 = self.upload
            path = upload_dump(ctx, local, sha256, self.stamp.upper())
            return self._restore(ctx, path, f"{_base(path)} (uploaded from {local})")
        files = list_backups(ctx)
        if self.target_time is not None and c.backup != "pgbackrest":
            raise StepFailed(f"--time needs backup=pgbackrest (WAL archiving); this host has "
                             f"backup={c.backup}: restore one of its backups with --from")
        if self.target_time is not None and self.source == "latest":
            chosen = None
        else:
            chosen = pick_backup(files if self.target_time is None else
                                 [f for f in files if f.kind.startswith("pgbackrest")],
                                 self.source, c.backup_dir, c.db_name)
        if chosen is None or chosen.kind.startswith("pgbackrest"):
            workdir = f"{c.backup_dir.rstrip('/')}/restore-{self.stamp}"
            try:
                dump, what = self._from_pgbackrest(ctx, chosen, workdir)
                return self._restore(ctx, dump, what)
            finally:
                ctx.t.run(f"rm -rf {sh(workdir)}", become="root", timeout=600)
        return self._restore(ctx, chosen.path, f"{chosen.path.rsplit('/', 1)[1]} "
                             f"({chosen.kind})")

    def _from_pgbackrest(self, ctx: HostContext, chosen: backups.BackupFile | None,
                         workdir: str) -> tuple[str, str]:
        """(dump path, words for messages) of the app database as the pgBackRest backup
        (or the point in time) has it."""
        c = ctx.config
        names = ", ".join(quote_literal(n) for n in backups.RECOVERY_MINIMUMS)
        live = ctx.psql(f"SELECT name || '=' || setting FROM pg_settings WHERE name IN "
                        f"({names});", "reading the settings a restore needs")
        minimums = dict(ln.split("=", 1) for ln in live.stdout.splitlines() if "=" in ln)
        script = backups.pgbackrest_restore_script(
            workdir=workdir, stanza=backups.STANZA, db_name=c.db_name, port=c.pg_port,
            label=chosen.path if chosen is not None else None, target_time=self.target_time,
            pg_ctl=ctx.strategy.client("pg_ctl"), pg_dump=ctx.strategy.client("pg_dump"),
            psql=ctx.strategy.psql(), minimums=minimums, live_major=ctx.strategy.major,
            other_bindirs=ctx.strategy.other_major_bindirs,
            other_package=ctx.strategy.other_major_package)
        r = ctx.t.run(script, become="root", timeout=None)
        dump = next((ln[5:] for ln in r.stdout.splitlines() if ln.startswith("dump ")), "")
        if not r.ok or not dump:
            said = " / ".join(ln for ln in (r.stderr or r.stdout).strip().splitlines()[-6:])
            if "recovery ended before configured recovery target" in said:
                said = (f"the archived WAL ends before {self.target_time} (UTC unless it "
                        "names an offset): nothing was written after the last archived "
                        f"transaction, or the time is in the future. The server said: {said}")
            raise StepFailed(f"restoring pgBackRest backup "
                             f"{chosen.path if chosen else '(for ' + str(self.target_time) + ')'}"
                             f" failed: {said or 'no output'}; nothing was changed (the live "
                             f"database {c.db_name} untouched)")
        stopped = [ln[4:] for ln in r.stdout.splitlines() if ln.startswith("log ")]
        what = (f"pgBackRest backup {chosen.path} ({chosen.kind})" if chosen is not None
                else "")
        if self.target_time is not None:
            hint = next((ln.split("LOG:", 1)[-1].strip() for ln in stopped
                         if "recovery stopping" in ln), "")
            what = (f"the state of {self.target_time}" + (f" from {what}" if what else "")
                    + f" (pgBackRest and the archived WAL{': ' + hint if hint else ''})")
        return dump, what

    def _restore(self, ctx: HostContext, path: str, what: str) -> StepResult:
        c = ctx.config
        name = path.rsplit("/", 1)[1]
        psql, restore = ctx.strategy.psql(), ctx.strategy.client("pg_restore")
        readable = ctx.t.run(f"cd / && {sh(restore)} --list {sh(path)} >/dev/null",
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
                      f"{sh(path)}", become="postgres", timeout=None)
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
    "FetchBackups",
    "ListBackups",
    "RestoreBackup",
    "ScheduleBackups",
    "TakeBackup",
    "install_script",
    "parse_checks",
    "pick_backup",
    "swap_sql",
    "upload_dump",
    "wanted_schedule",
]
