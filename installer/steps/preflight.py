"""Decisions taken before anything changes: what the host holds that the wanted state
would take over.

A step before the first change reads the host's state (the probe the install step would
make anyway: no extra round trip) and stops the host when going on would leave it
half-changed:
- a second inventory name for a machine this run already works on (its machine-id) that
  is not another app of its cluster (installer.desired.sharing);
- a cluster of another major than the wanted one that holds the app's database or has
  pg_port (installer.host.clusters), or a server of another major answering on pg_port;
- a database that belongs to another role than db_user (a role change: it goes ahead
  only as a planned rename, db_user_rename_from).
"""

from __future__ import annotations

from typing import Any

from installer.desired import sharing
from installer.desired.config import HostConfig
from installer.host import clusters
from installer.steps.base import HostContext, Step, StepFailed, StepResult, ok


def role_change(config: HostConfig, sql: dict[str, Any] | None) -> str | None:
    """The role this run renames to db_user, or None. Pure.

    StepFailed when db_user would take over a database that belongs to another login role
    (every table, the ledger and the app's password are that role's: handing over only the
    database would leave the app unable to read its own rows). A database a superuser owns
    (made by hand as postgres) is not a role change: its ownership is handed to db_user.
    """
    db = (sql or {}).get("database")
    if not db:
        return None
    old, new, name = str(db.get("owner")), config.db_user, config.db_name
    if old == new or db.get("owner_super"):
        return None
    if config.db_user_rename_from == old:
        if (sql or {}).get("role") is None:
            return old
        raise StepFailed(
            f"db_user_rename_from={old}, but role {new} already exists, so {old} cannot take "
            f"its name; nothing was changed. Drop role {new} if nothing uses it and rerun, or "
            f"move the objects by hand (REASSIGN OWNED BY {old} TO {new} in database {name}) "
            "and remove db_user_rename_from")
    raise StepFailed(
        f"database {name} belongs to role {old}, not to db_user {new}: changing db_user is a "
        "role change, refused before any change. To rename the role (its tables, grants, "
        f"ledger and password go with it; the app then needs the new DATABASE_URL from "
        f"{config.env_file}), set db_user_rename_from={old}; to leave the app as it is, set "
        f"db_user={old}")


class Preflight(Step):
    """Nothing the run would change belongs to something else (see role_change)."""

    name = "preflight"

    def run(self, ctx: HostContext) -> StepResult:
        clash = ctx.same_machine_conflict()
        if clash is not None:
            raise StepFailed(sharing.refusal(ctx.name, [clash[0]], "the same /etc/machine-id",
                                             clash[1]))
        st, c = ctx.state, ctx.config
        sql = st.sql
        major = ctx.strategy.major
        answering = int((sql or {}).get("server_version_num") or 0) // 10000
        in_the_way = clusters.in_the_way(st.other_clusters, major, c.pg_port, c.db_name,
                                         database_here=bool(sql and sql.get("database"))
                                         and answering == major)
        if in_the_way is not None:
            raise StepFailed(in_the_way)
        pb = st.pgbackrest
        if c.backup == "pgbackrest" and ctx.strategy.pgbackrest_package is None \
                and pb is not None and not pb.installed:
            # before archive_command names a program that is not there (every WAL segment
            # would then stay in pg_wal until the disk is full)
            raise StepFailed(f"backup=pgbackrest, and pgBackRest is not in "
                             f"{ctx.facts.pretty_name}'s package repositories: install it "
                             "(pgbackrest in PATH; on Arch Linux from the AUR), or set "
                             "backup=pg_dump. Nothing was changed")
        if sql is not None and major is not None and answering not in (0, major):
            raise StepFailed(
                f"port {c.pg_port} (pg_port) is answered by PostgreSQL {answering}, and this "
                f"run wants PostgreSQL {major}: its steps would change the {answering} "
                f"cluster. Nothing was changed. Set pg_version={answering} to manage it, or "
                "give the wanted major's cluster its own pg_port")
        if sql is None:
            port_problem = clusters.wrong_port(c.pg_port, st.own_port, ctx.strategy.own_conf())
            if port_problem is not None:
                raise StepFailed(port_problem + ". Nothing was changed")
            return ok("no server answering yet: nothing to take over")
        ctx.role_renamed_from = role_change(c, sql)
        if ctx.role_renamed_from is not None:
            return ok(f"role {ctx.role_renamed_from} will be renamed to {c.db_user} "
                      "(db_user_rename_from)")
        db = sql.get("database")
        if db is None:
            return ok(f"no database {c.db_name} yet")
        return ok(f"database {c.db_name} belongs to {db.get('owner')}")
