"""The inventory variables apply reads, declared once: name, default as users see it, meaning.

`VARIABLES` is the one list. docs/inventory.md's table is `markdown_table()`'s output,
inventory.example.ini names every variable, and tests/unit/test_variables.py holds the
three to each other and to the code that reads them: `HostConfig.from_vars`
(installer/desired/config.py) reads the chatalot-db variables, the transports and the
runner read the `ansible_*` connection variables.

Pure data, no I/O. To refresh the documented table after a change here:

    .venv/bin/python -c 'from installer.desired.variables import markdown_table as t; print(t())'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    """One inventory variable; its cells are Markdown (backticks for literal values)."""

    name: str
    #: the default, as shown to users (not necessarily a Python value)
    default: str
    meaning: str
    #: other names read for the same thing (Ansible's aliases), the first one set wins
    aliases: tuple[str, ...] = ()

    @property
    def connection(self) -> bool:
        """Whether this is one of Ansible's connection variables (read by the transports)."""
        return self.name.startswith("ansible_")

    @property
    def names(self) -> tuple[str, ...]:
        """The name, then its aliases."""
        return (self.name, *self.aliases)


VARIABLES: tuple[Variable, ...] = (
    # -- connection (Ansible's names; ~/.ssh/config applies underneath) --------------
    Variable("ansible_host", "the host's inventory name",
             "the address or DNS name to connect to"),
    Variable("ansible_port", "22 (or `~/.ssh/config`)",
             "the SSH port (1-65535; anything else fails that host at `connect`); "
             "`name:port` on a host line sets it too"),
    Variable("ansible_user", "`~/.ssh/config`, else your login",
             "who to log in as; anyone but root goes through sudo"),
    Variable("ansible_connection", "`ssh`", "`local` runs on this machine, no SSH"),
    Variable("ansible_ssh_private_key_file", "ssh config / agent", "the key to log in with"),
    Variable("ansible_ssh_common_args", "none",
             "only `-o` options are read: `UserKnownHostsFile`, `Port`, `User`, "
             "`IdentityFile`; `StrictHostKeyChecking=no` is ignored (host keys are always "
             "verified)"),
    Variable("ansible_become", "no",
             "use sudo (implied when the user is not root; `yes`, `true`, `on` or `1`)"),
    Variable("ansible_become_password", "none",
             "the sudo password (`ansible_become_pass` is read too); `-K` is preferred and "
             "wins when given", aliases=("ansible_become_pass",)),
    Variable("ansible_password", "none (keys)",
             "an SSH password (`ansible_ssh_pass` is read too); prefer keys",
             aliases=("ansible_ssh_pass",)),
    # -- chatalot-db's own (installer/desired/config.py) ------------------------------
    Variable("db_name", "`chatalot`", "the database (a plain identifier only)"),
    Variable("db_user", "`chatalot`",
             "the app role (a plain identifier only). Changing it on a host whose database "
             "belongs to the old role is refused before any change, unless "
             "`db_user_rename_from` says so"),
    Variable("db_user_rename_from", "none",
             "the role's old name, to rename it to `db_user` (`ALTER ROLE old RENAME TO new`: "
             "every object, grant, the ledger and the password stay with it; its pg_hba block "
             "and DATABASE_URL follow; the old name no longer logs in). Only when the "
             "database belongs to that role and `db_user` does not exist yet; inert afterwards"),
    Variable("db_env_file", "`/etc/chatalot/database.env`",
             "where DATABASE_URL is written (an absolute path on the host, a file of its own: "
             "system files and folders are refused, and an existing file that is not one "
             "chatalot-db wrote (a symlink, not root's, or holding more than DATABASE_URL) is "
             "never replaced: the host fails before the role changes)"),
    Variable("pg_version", "distribution default",
             "PostgreSQL major version; another than the distribution's comes from PGDG "
             "(apt: `pgdg.sources` signed by postgresql-common's key, `postgresql-NN`; dnf: "
             "the repo RPM, `postgresqlNN-server`, `/var/lib/pgsql/NN/data`, service "
             "`postgresql-NN`); Arch has only its current major"),
    Variable("pg_port", "`5432`",
             "the port the cluster listens on, used by psql, the login check, `verify` and "
             "DATABASE_URL; apply leaves the server's own `port` setting as it is, and stops "
             "before any change when the cluster's configuration names another port"),
    Variable("db_password", "generated once, then the env file's",
             "the app role's password (any characters but a line break or NUL; never "
             "printed). Changing it resets the role and rewrites the env file"),
    Variable("pg_listen", "`localhost`",
             "`listen_addresses`; anything but loopback needs `pg_allowed_cidrs` (refused "
             "otherwise: the port would be open with no rule letting anyone in)"),
    Variable("pg_allowed_cidrs", "none (loopback only)",
             "networks the app role may connect from, a list or comma-separated "
             "(`10.0.0.0/24, 2001:db8::/64`; `0.0.0.0/0` only if you write it): `hostssl ... "
             "scram-sha-256` rules, `ssl = on`, and a self-signed certificate generated on "
             "the host when none is given (`openssl req -x509 -newkey rsa:2048 -days 3650 "
             "-subj /CN=<host>`, `chatalot-server.crt`/`.key` in the data directory, key 0600 "
             "postgres, only if missing)"),
    Variable("pg_ssl_cert", "generated (see `pg_allowed_cidrs`)",
             "an existing certificate on the host (an absolute path, not a system file) for "
             "`ssl_cert_file`; "
             "goes with `pg_ssl_key`"),
    Variable("pg_ssl_key", "generated (see `pg_allowed_cidrs`)",
             "its key on the host (an absolute path) for `ssl_key_file`; goes with "
             "`pg_ssl_cert`"),
    Variable("pg_memory", "the host's RAM, lowered to its cgroup's memory limit",
             "the RAM to tune for (`4GB`, `512MB`; binary units, a bare number is bytes)"),
    Variable("pg_cpus", "the host's CPUs, lowered to its cgroup's CPU quota",
             "the CPUs to tune for (`2`)"),
    Variable("pg_disk",
             "from the `rotational` flag of the disk under `/var/lib/postgresql`, "
             "`/var/lib/pgsql` or `/var/lib/postgres`, whichever exists, else under "
             "`/var/lib` (an `nvme*` device is `nvme`)",
             "the disk type to tune for: `ssd`, `hdd`, `san` or `nvme`"),
    Variable("pg_profile", "`chatalot`",
             "`chatalot`, `web`, `oltp`, `dw`, `desktop`, `mixed` ([tuning](tuning.md))"),
    Variable("pg_max_connections", "the profile's (`chatalot`: 100)",
             "at least 53 (Chatalot's pool opens 50, 3 are reserved for superusers)"),
    Variable("pg_settings", "`{}`",
             "a dict of extra settings, applied last, e.g. "
             "`{'log_min_duration_statement': '250ms'}`"),
    Variable("migrations_source", "`none`",
             "your Chatalot release's migrations, applied before the server starts: "
             "`git+https://HOST/chatalot.git@v0.19.0` (a tag, branch or commit; also "
             "`git+ssh://`, `git+file://`), a release archive "
             "`'https://HOST/chatalot-0.19.0.tar.gz#sha256=HEX'` (quoted in INI: an "
             "unquoted `#` starts a comment, as Ansible reads it), a folder or a checkout on "
             "the control machine; `bundled`: this project's reference set (not a release: "
             "a Chatalot server refuses its ledger); `none`: the server applies its own "
             "when it starts"),
    Variable("migration_lock_timeout", "`5s`",
             "how long a migration statement may wait for a table lock the app holds "
             "(`500ms`, `5s`, `1min`; `0` or `none`: no limit, as sqlx); it then rolls back "
             "and is tried again 3 times (pauses of 1, 2, 4 s), then the host fails naming the "
             "sessions holding locks: the app's queries never queue behind a waiting migration "
             "for longer"),
    Variable("backup_dir", "`/var/backups/chatalot`",
             "on the host: where `pg_dump` backups go before migrating a database that holds "
             "data (a folder of its own: `/`, `/etc`, `/var` and the like, and system folders, "
             "are refused)"),
    Variable("backup", "`pg_dump`",
             "scheduled backups: `pg_dump` (a custom-format dump of `db_name` every night "
             "into `backup_dir`, by a systemd timer, or a cron entry where systemd is not PID "
             "1), `pgbackrest` (pgBackRest from the distribution's packages: WAL archiving, a "
             "full backup weekly and a differential one daily on the same schedule, restore "
             "to any point in time since the oldest kept backup; the first full backup is "
             "taken by apply) or `none` (the schedule is removed; the dumps and a pgBackRest "
             "repository stay)"),
    Variable("backup_keep", "`7`",
             "days the scheduled backups are kept (1-3650): older dumps are removed by the "
             "backup script after a dump succeeded, never any other file; with `pgbackrest`, "
             "its time-based retention keeps point-in-time recovery `backup_keep` days back"),
    Variable("pgbackrest_repo_path", "`backup_dir`/pgbackrest",
             "on the host: the pgBackRest repository with `backup=pgbackrest` (mode 0750, "
             "owned by postgres); put it on another disk than the data directory"),
    Variable("backup_on_calendar", "`*-*-* 03:00:00`",
             "when the backup runs: a systemd calendar expression, plus a delay of up to an "
             "hour fixed per host so that a fleet does not dump at once; where cron runs it, "
             "a daily time (`03:00`, `daily`), spread over the hour by the machine-id"),
)


def names() -> tuple[str, ...]:
    """Every declared variable's name, in the documented order (aliases not included)."""
    return tuple(v.name for v in VARIABLES)


def by_name(name: str) -> Variable:
    """The variable called `name` or one of its aliases; KeyError otherwise."""
    for v in VARIABLES:
        if name in v.names:
            return v
    raise KeyError(name)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table() -> str:
    """The variables as the Markdown table docs/inventory.md shows (no trailing newline)."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for v in VARIABLES:
        lines.append(f"| `{v.name}` | {_cell(v.default)} | {_cell(v.meaning)} |")
    return "\n".join(lines)


__all__ = ["VARIABLES", "Variable", "by_name", "markdown_table", "names"]
