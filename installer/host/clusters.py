"""The host's other PostgreSQL clusters: those of another major than the one wanted.

A host upgraded from an older release keeps its old cluster (Debian 13 with bookworm's
postgresql-15 on 5432); a run that wants another major would install it beside that one
(Debian then makes the new cluster on the next free port) while its steps address
`pg_port`, that is, the old cluster: a half-changed host. The state probe lists every
cluster configuration of another major (the strategy's `cluster_confs()`), its port (the
last `port =` of its postgresql.conf and conf.d/, 5432 when none), whether its socket is
there (running), and for a running one whether it holds the app's database; preflight
(installer.steps.preflight) stops the host before any change when one of them is in the
way. Nothing is listed, and no process started, on a host with only the wanted major.
"""

from __future__ import annotations

from installer.desired.upgrade import Cluster
from installer.sqltext import quote_literal
from installer.transport.shell import sh

#: where every family's server puts its socket (/var/run is a link to /run)
SOCKET_DIR = "/run/postgresql"

__all__ = ["SOCKET_DIR", "Cluster", "in_the_way", "own_port_section", "parse", "section",
           "wrong_port"]


#: shell: the port of the configuration "$c" (the last `port =` of it and of its conf.d/,
#: 5432 when none) into $p
_PORT_OF = ("d=${c%/postgresql.conf}; "
            "p=$(cat \"$c\" \"$d\"/conf.d/*.conf 2>/dev/null | sed -n "
            "\"s/^[[:space:]]*port[[:space:]]*=[[:space:]]*'\\{0,1\\}\\([0-9][0-9]*\\).*/\\1/p\" "
            "| tail -n 1); p=${p:-5432}; ")


def own_port_section(conf: str, pg_port: int, socket_dir: str = SOCKET_DIR) -> str:
    """Shell printing the managed cluster's configured port, only when nothing listens on
    pg_port's socket (a healthy host starts no process for it) and its configuration
    exists."""
    return (f"if [ ! -S {sh(socket_dir)}/.s.PGSQL.{pg_port} ] && [ -f {sh(conf)} ]; then "
            f"c={sh(conf)}; {_PORT_OF}echo \"$p\"; fi; true")


def section(confs: tuple[str, ...], wanted_major: int | None, db_name: str,
            socket_dir: str = SOCKET_DIR, own: str = "") -> str:
    """Shell printing `MAJOR NAME PORT up|down 1|0|?` per cluster configuration of another
    major than `wanted_major` (every one when it is None) among the `confs` globs, the
    managed cluster's own (`own`) left out; up when its socket is in `socket_dir`."""
    skip = f'[ "$v" = {sh(str(wanted_major))} ] && continue; ' if wanted_major else ""
    mine = f'[ "$c" = {sh(own)} ] && continue; ' if own else ""
    query = sh(f"SELECT count(*) FROM pg_database WHERE datname = {quote_literal(db_name)}")
    return (
        f"for c in {' '.join(confs)}; do "
        '[ -f "$c" ] || continue; d=${c%/postgresql.conf}; '
        f"{mine}"
        'if [ -f "$d/PG_VERSION" ]; then read -r v < "$d/PG_VERSION"; n=$d; '
        'else v=${d%/*}; v=${v##*/}; n=${d##*/}; fi; '
        f"{skip}{_PORT_OF}"
        f'if [ -S {sh(socket_dir)}/.s.PGSQL.$p ]; then u=up; '
        f"h=$(cd / && runuser -u postgres -- psql -X -At -p \"$p\" -d postgres -c {query} "
        "2>/dev/null) || h='?'; else u=down; h='?'; fi; "
        'echo "$v $n $p $u ${h:-?}"; done; true'
    )


def parse(text: str) -> tuple[Cluster, ...]:
    """The section's lines as Clusters (lines that do not parse are left out)."""
    found: list[Cluster] = []
    for line in text.splitlines():
        f = line.split()
        if len(f) != 5 or not f[0].isdigit() or not f[2].isdigit():
            continue
        running = f[3] == "up"
        holds = {"1": True, "0": False}.get(f[4]) if running else None
        found.append(Cluster(int(f[0]), f[1], int(f[2]), running, holds))
    return tuple(found)


def in_the_way(clusters: tuple[Cluster, ...], wanted_major: int | None, pg_port: int,
               db_name: str, database_here: bool) -> str | None:
    """Pure: why the run must not go on (None: nothing in the way).

    `database_here`: the wanted major's cluster answered on pg_port and holds the database
    (then an old cluster beside it, e.g. stopped after an upgrade, is no concern)."""
    if database_here or wanted_major is None:
        return None
    want = f"PostgreSQL {wanted_major}"
    for c in clusters:
        if c.major != wanted_major and c.holds_database:
            forward = (f"or upgrade it to {wanted_major} first (chatalot-db upgrade --to "
                       f"{wanted_major})" if c.major < wanted_major else
                       "(a major cannot go back; chatalot-db upgrade --rollback returns to "
                       "an older cluster an upgrade kept)")
            return (
                f"database {db_name} lives in PostgreSQL {c.major}'s cluster ({c.name}, port "
                f"{c.port}, running) and this run wants {want}: going on would install "
                f"{wanted_major} beside it and leave the app's data on {c.major}. Nothing was "
                f"changed. Set pg_version={c.major} to keep managing that cluster, {forward}")
    for c in clusters:
        if c.major != wanted_major and c.port == pg_port:
            state = "running" if c.running else "stopped"
            return (
                f"port {pg_port} (pg_port) belongs to PostgreSQL {c.major}'s cluster ({c.name}, "
                f"{state}) and this run wants {want}: its steps would address that cluster, "
                f"not the {wanted_major} one it installs. Nothing was changed. Set "
                f"pg_version={c.major} to manage that cluster, or remove it, or give "
                f"{want} a port of its own (pg_port)")
    return None


def wrong_port(pg_port: int, configured: int | None, conf: str) -> str | None:
    """Why the managed cluster cannot be reached on pg_port: its configuration names
    another port (None: no such problem). Pure."""
    if configured is None or configured == pg_port:
        return None
    return (f"the cluster this run manages listens on port {configured} ({conf} and its "
            f"conf.d), not on pg_port {pg_port}: set pg_port={configured} for this host "
            "(DATABASE_URL then carries it), or change the port in that file")
