"""Read everything the steps compare against, in one round trip (as root).

Package and service state (from the strategy), the files we manage, and the
server's own view (roles, database, grants, settings, pg_hba) via one psql run
as the postgres user. The env file's text is read too: it holds the secret, so
this probe's output is never logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from installer.desired import backups
from installer.desired.config import HostConfig
from installer.errors import CommandError
from installer.host import applogin, clusters, queries
from installer.host.distros.base import ServiceState, Strategy
from installer.host.sections import SectionScript, file_section, file_value
from installer.sqlx.migrator import PSQL_FLAGS
from installer.transport.base import Transport
from installer.transport.shell import sh


@dataclass(frozen=True)
class PgbackrestState:
    """backup=pgbackrest on the host: the program, our stanza in the repository, its backups."""

    installed: bool
    #: the stanza's backup.info and archive.info exist in the repository
    stanza: bool
    #: the backups' labels in the repository (YYYYmmdd-HHMMSSF[_YYYYmmdd-HHMMSS{D,I}])
    labels: tuple[str, ...] = ()


def pgbackrest_section(config: HostConfig) -> str:
    """Shell (as root): whether pgbackrest is installed, whether our stanza exists in the
    repository, and its backups' labels (directory names, no pgbackrest run: cheap)."""
    repo, stanza = config.pgbackrest_repo, backups.STANZA
    b, a = sh(f"{repo}/backup/{stanza}"), sh(f"{repo}/archive/{stanza}")
    return ("if command -v pgbackrest >/dev/null 2>&1; then echo installed; fi; "
            f"if [ -f {b}/backup.info ] && [ -f {a}/archive.info ]; then echo stanza; fi; "
            f'for d in {b}/[0-9]*; do [ -d "$d" ] && echo "label ${{d##*/}}"; done; true')


def parse_pgbackrest(text: str) -> PgbackrestState:
    lines = text.splitlines()
    labels = tuple(sorted(ln.split(" ", 1)[1] for ln in lines if ln.startswith("label ")))
    return PgbackrestState("installed" in lines, "stanza" in lines, labels)


@dataclass
class HostState:
    service: ServiceState
    env_file: str | None
    #: "mode owner group kind" of the env file (`stat -c '%a %U %G %F'`; empty: missing)
    env_meta: str | None
    hba: str | None
    dropin: str | None
    #: the server's answers; None when it is not running (or not installed)
    sql: dict[str, Any] | None
    sql_error: str = ""
    #: sqlx.LEDGER_PROBE's lines for the app database, read as the app role (None: not read)
    ledger: str | None = None
    #: postgresql.conf, read where our drop-in needs an include line in it (else None)
    main_conf: str | None = None
    #: the env file's DATABASE_URL logging in over TCP on the host (None: not tried)
    login: applogin.LoginOutcome | None = None
    #: the host's clusters of another major than the strategy's (installer.host.clusters)
    other_clusters: tuple[clusters.Cluster, ...] = ()
    #: the managed cluster's configured port, read only when nothing listens on pg_port
    #: (None: not read, or no configuration yet)
    own_port: int | None = None
    #: the backup schedule's files (installer.desired.backups): path -> text, None missing
    backup_files: dict[str, str | None] = field(default_factory=dict)
    #: the backup timer's `UnitFileState ActiveState` ("" when it has no unit file)
    backup_timer: str = ""
    #: whether a cron daemon runs (asked only where systemd is not PID 1; None: not asked)
    cron_running: bool | None = None
    #: backup=pgbackrest: what the host has of it (None: not asked)
    pgbackrest: PgbackrestState | None = None

    @property
    def running(self) -> bool:
        return self.sql is not None


def psql_command(port: int, database: str = "postgres", *extra: str, psql: str = "psql") -> str:
    """psql as it is run on the host as postgres (PSQL_FLAGS, the cluster's port). `psql`:
    which binary (Strategy.psql(): the server's own where PATH has a wrapper)."""
    return sh(psql, *PSQL_FLAGS, "-p", str(port), "-d", database, *extra)


def state_sql(config: HostConfig, setting_names: list[str]) -> str:
    """psql script printing one JSON object per line: server-wide, then per-database."""
    q = queries
    return q.script(
        config,
        [q.setting_fragment("server_version_num", "int"), q.setting_fragment("data_directory"),
         q.POSTMASTER_START, q.role_fragment(config, password=True),
         q.database_fragment(config), q.settings_fragment(setting_names), q.CAPS, q.HBA_RULES],
        [q.schema_privileges_fragment(config), q.SCHEMA_OWNER, q.PUBLIC_TABLES])


NO_PSQL = "PostgreSQL is not installed (no psql, or no postgres user)"


def sql_section(port: int, sql: str, psql: str = "psql") -> str:
    """Shell running `sql` as the postgres superuser (stdin, a quoted here-document), its
    errors in its output; NO_PSQL when the server is not installed."""
    return (f"if command -v {sh(psql)} >/dev/null 2>&1 && id postgres >/dev/null 2>&1; then "
            f"runuser -u postgres -- {psql_command(port, psql=psql)} 2>&1 "
            f"<<'CHATALOT_SQL_EOF'\n{sql}CHATALOT_SQL_EOF\n"
            f"else echo {sh(NO_PSQL)}; fi")


def probe_state(
    t: Transport, strategy: Strategy, config: HostConfig, setting_names: list[str],
    *, login: bool = False,
) -> HostState:
    """One round trip: package/service state, managed files, and the server's view;
    with `login`, also the env file's DATABASE_URL logging in (a no-op run's last check,
    done here so that it costs no command of its own)."""
    s = SectionScript()
    strategy.add_state_sections(s)
    env = sh(config.env_file)  # read only as a regular file, never through a symlink
    s.section("env", f"if [ -f {env} ] && [ ! -L {env} ]; then cat {env}; else echo MISSING; fi")
    s.section("env-meta", f"stat -c '%a %U %G %F' {env} 2>/dev/null; true")
    file_section(s, "hba", strategy.hba_path())
    file_section(s, "dropin", strategy.dropin_path())
    include = strategy.conf_include()
    if include is not None:
        file_section(s, "main-conf", include.conf_path)
    confs = strategy.cluster_confs()
    if confs:
        s.section("other-clusters", clusters.section(confs, strategy.major, config.db_name,
                                                     own=strategy.own_conf()))
    s.section("own-port", clusters.own_port_section(strategy.own_conf(), config.pg_port))
    backup_sections(s, config, systemd=strategy.facts.systemd)
    if config.backup == "pgbackrest":
        s.section("pgbackrest", pgbackrest_section(config))
    psql = strategy.psql()
    s.section("sql", sql_section(config.pg_port, state_sql(config, setting_names), psql))
    if login:
        s.section("login", f"if [ -f {env} ] && [ ! -L {env} ]; then "
                           f"{applogin.probe_section(config.env_file, psql)}\nfi")
    r = t.run(s.script, become="root", timeout=120)
    sections = s.parse(r.stdout)
    if "sql" not in sections:
        raise CommandError("probing PostgreSQL state", r.exit_code, r.stderr)
    merged, ledger_lines, errors = queries.parse_output(sections["sql"])
    ledger = "".join(f"{ln}\n" for ln in ledger_lines)
    sql_state, sql_error = merged or None, "\n".join(errors)
    return HostState(
        service=strategy.parse_state(sections),
        env_file=file_value(sections, "env"),
        env_meta=sections.get("env-meta"),
        hba=file_value(sections, "hba"),
        dropin=file_value(sections, "dropin"),
        sql=sql_state,
        sql_error=sql_error,
        ledger=ledger or None,
        main_conf=file_value(sections, "main-conf"),
        login=applogin.parse_probe_section(sections["login"])
        if sections.get("login", "").strip() else None,
        other_clusters=clusters.parse(sections.get("other-clusters", "")),
        own_port=int(sections.get("own-port", "").strip() or 0) or None,
        backup_files=backup_file_texts(sections, config),
        backup_timer=timer_state(sections.get("backup-timer", "")),
        cron_running=parse_cron(sections.get("cron", "")),
        pgbackrest=parse_pgbackrest(sections.get("pgbackrest", ""))
        if config.backup == "pgbackrest" else None,
    )


def timer_state(text: str) -> str:
    """`systemctl show -p UnitFileState -p ActiveState` as "UNITFILESTATE ACTIVESTATE"."""
    props = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
    if not props:
        return ""
    return f"{props.get('UnitFileState', '?')} {props.get('ActiveState', '?')}"


def parse_cron(text: str) -> bool | None:
    """The `cron` section: whether a cron daemon runs (None: not asked)."""
    return {"yes": True, "no": False}.get(text.strip())


def backup_paths(config: HostConfig) -> tuple[str, ...]:
    """The backup scripts, then the schedule's files (service, timer, cron entry), then
    pgBackRest's configuration of our stanza."""
    return (backups.SCRIPT_PATH, backups.PGBR_SCRIPT, *backups.schedule_paths(config.db_name),
            backups.PGBR_CONF)


def backup_file_texts(sections: dict[str, str], config: HostConfig) -> dict[str, str | None]:
    """backup_sections' files: path -> text, None when missing."""
    return {path: file_value(sections, f"backup {path}") for path in backup_paths(config)}


def backup_sections(s: SectionScript, config: HostConfig, *, systemd: bool | None) -> None:
    """The schedule's files (sections `backup PATH`), the timer's state (`backup-timer`: one
    systemctl, only when its unit file exists) where systemd is PID 1, and whether cron
    runs (`cron`) where it is not. `systemd` None (not known to the caller): both."""
    for path in backup_paths(config):
        file_section(s, f"backup {path}", path)
    _, timer, _ = backups.schedule_paths(config.db_name)
    if systemd is not False:
        s.section("backup-timer",
                  f"if [ -f {sh(timer)} ]; then systemctl show -p UnitFileState "
                  f"-p ActiveState {sh(timer.rsplit('/', 1)[1])}; fi; true")
    if not systemd:
        s.section("cron", "if pgrep -x cron >/dev/null 2>&1 || pgrep -x crond >/dev/null "
                          "2>&1; then echo yes; else echo no; fi")
