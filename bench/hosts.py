"""The benchmark's own test-bed hosts: boot, reset, count SSH use, verify the result.

SSH use is counted on the hosts, from sshd's log: each host's sshd runs with
`LogLevel VERBOSE` (a drop-in the benchmark adds after every reset), which logs
one `Accepted publickey` line per connection and one `Starting session: command`
line per command (exec request; `subsystem` for an sftp/scp transfer). A journal
cursor taken just before a run, and the count read just after it, bracket the
run; the connection that reads the count is left out by its source port. The
count is the same for every tool and needs nothing from the tools themselves.

The tools reach each host at its address, or, when the benchmark adds latency, through a
relay in front of it (bench/relay.py): `route()` gives each host an endpoint
(127.0.0.1 and the relay's port), which the inventory (ours, Ansible) and the floor's ssh
command line name, and a known_hosts file that lists each endpoint with the host's own
key, so that every tool still verifies the host key strictly. The benchmark's own
commands (mark, count, verify) always go straight to the hosts.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from testbed import Testbed

T = TypeVar("T")

SSHD_DROPIN = "/etc/ssh/sshd_config.d/zz-chatalot-bench.conf"

#: sshd at LogLevel VERBOSE (restart: Debian's ssh.service is Type=notify, so restart
#: returns once the new sshd listens; KillMode=process keeps this session), then the
#: journal's current cursor
MARK_SCRIPT = f"""set -e
if [ ! -f {SSHD_DROPIN} ]; then
    echo 'LogLevel VERBOSE' > {SSHD_DROPIN}
    systemctl restart ssh
fi
journalctl -n 0 --show-cursor -q
"""

COUNT_SCRIPT = """set -e
journalctl --after-cursor="$1" -o cat -t sshd -t sshd-session --no-pager -q || true
echo "@@self ${SSH_CLIENT:-}"
"""


@dataclass(frozen=True)
class SshUse:
    """What one tool run did over SSH to one host."""

    connections: int
    commands: int
    transfers: int

    def to_json(self) -> dict[str, int]:
        return {"connections": self.connections, "commands": self.commands,
                "transfers": self.transfers}


def parse_sshd_log(text: str) -> SshUse:
    """Count connections, commands and file transfers in sshd's VERBOSE lines.

    The last line, `@@self <SSH_CLIENT>`, names the reading connection, left out.
    """
    lines = text.splitlines()
    self_port = ""
    for line in lines:
        if line.startswith("@@self "):
            words = line.split()
            self_port = words[2] if len(words) >= 3 else ""
    mine = f" port {self_port} " if self_port else None
    connections = commands = transfers = 0
    for line in lines:
        if mine is not None and (mine in line or line.endswith(mine.rstrip())):
            continue
        if line.startswith("Accepted publickey for ") or line.startswith("Accepted password for "):
            connections += 1
        elif line.startswith("Starting session: command ") or line.startswith(
                "Starting session: shell "):
            commands += 1
        elif line.startswith("Starting session: subsystem "):
            transfers += 1
    return SshUse(connections, commands, transfers)


@dataclass(frozen=True)
class Endpoint:
    """Where a tool's SSH connects to reach a host: its address, or a relay in front of it."""

    host: str
    #: None: SSH's default port (22)
    port: int | None = None

    def known_hosts_name(self) -> str:
        """The name known_hosts lists it by, as OpenSSH and paramiko look it up."""
        return self.host if self.port in (None, 22) else f"[{self.host}]:{self.port}"


def inventory_text(names: Sequence[str], endpoints: Mapping[str, Endpoint], key_path: Path,
                   known_hosts: Path) -> str:
    """An Ansible INI inventory of these hosts, each at its endpoint (pure)."""
    lines = ["[bench]"]
    for name in names:
        e = endpoints[name]
        lines.append(f"{name} ansible_host={e.host}"
                     + (f" ansible_port={e.port}" if e.port is not None else ""))
    lines += [
        "[bench:vars]",
        "ansible_user=root",
        f"ansible_ssh_private_key_file={key_path}",
        f"ansible_ssh_common_args='-o UserKnownHostsFile={known_hosts}"
        " -o GlobalKnownHostsFile=/dev/null'",
    ]
    return "\n".join(lines) + "\n"


def relay_known_hosts(known: str, aliases: Mapping[str, Endpoint]) -> str:
    """known_hosts text (`NAMES KEYTYPE KEY` lines) plus, for each address of aliases, a line
    naming its endpoint with that address's key(s) (pure). An address without a key in
    `known` is an error: its tools could not verify the host."""
    lines = [line for line in known.splitlines() if line.strip()]
    added: list[str] = []
    for address, endpoint in aliases.items():
        found = False
        for line in lines:
            names, _, key = line.partition(" ")
            if line.startswith(("#", "@")) or address not in names.split(","):
                continue
            added.append(f"{endpoint.known_hosts_name()} {key.strip()}")
            found = True
        if not found:
            raise ValueError(f"no host key for {address} in known_hosts")
    return "".join(f"{line}\n" for line in [*lines, *added])


def routed_ssh_argv(argv: Sequence[str], address: str, endpoint: Endpoint,
                    known_hosts: Path) -> list[str]:
    """The test bed's ssh command line for a host (ending with its address) aimed at the
    endpoint instead, its host key checked against known_hosts (pure)."""
    if not argv or argv[-1] != address:
        raise ValueError(f"the ssh command line does not end with {address}: {list(argv)}")
    option = f"UserKnownHostsFile={known_hosts}"
    out = [option if a.startswith("UserKnownHostsFile=") else a for a in argv[:-1]]
    if option not in out:
        out[1:1] = ["-o", option]
    if endpoint.port is not None:
        out += ["-p", str(endpoint.port)]
    return [*out, endpoint.host]


def in_parallel(names: Sequence[str], fn: Callable[[str], T]) -> dict[str, T]:
    """fn(name) for every name at once; results by name (the first error is raised)."""
    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {name: pool.submit(fn, name) for name in names}
        return {name: future.result() for name, future in futures.items()}


class BenchBed:
    """The benchmark's hosts, in its own state dir (never another test bed's)."""

    def __init__(self, state_dir: Path, names: Sequence[str],
                 report: Callable[[str], None], *, upper_on_disk: bool = False) -> None:
        self.state_dir = state_dir
        self.names = list(names)
        self.report = report
        # each provisioned host writes about 0.7 GB into its writable layer: on tmpfs, 32
        # hosts took this 24 GB machine's memory (the kernel's OOM killer then stepped in)
        self.bed = Testbed(state_dir, report=report,
                           tmpfs_size=None if upper_on_disk else "4g")
        #: the tools' way to hosts that are not reached at their address (relays)
        self.endpoints: dict[str, Endpoint] = {}
        self.routed_known_hosts: Path | None = None

    # -- life cycle ---------------------------------------------------------------
    def up(self) -> None:
        self.bed.up(self.names)

    def reset(self, names: Iterable[str]) -> None:
        for name in names:
            self.bed.reset(name)

    def down(self) -> None:
        self.bed.down()

    # -- reaching the hosts -----------------------------------------------------------
    def address(self, name: str) -> str:
        return self.bed.hosts[name].address

    def ssh_argv(self, name: str) -> list[str]:
        return self.bed.ssh_argv(name)

    def run(self, name: str, script: str, *args: str,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A bash script on the host as root (sent on stdin; args as $1...)."""
        command = "bash -s -- " + " ".join(shlex.quote(a) for a in args)
        return self.bed.ssh(name, command, input=script, timeout=timeout, check=True)

    # -- the tools' way to the hosts ---------------------------------------------------------
    def endpoint(self, name: str) -> Endpoint:
        """Where the tools connect to reach this host (its address unless routed)."""
        return self.endpoints.get(name) or Endpoint(self.address(name))

    @property
    def tools_known_hosts(self) -> Path:
        """The known_hosts the tools check host keys against."""
        return self.routed_known_hosts or self.bed.known_hosts_path

    def route(self, endpoints: Mapping[str, Endpoint], known_hosts: Path) -> None:
        """From now on the tools reach these hosts at these endpoints; known_hosts (written
        here) lists each endpoint with its host's key, besides the test bed's entries."""
        text = relay_known_hosts(self.bed.known_hosts_path.read_text(),
                                 {self.address(n): e for n, e in endpoints.items()})
        known_hosts.write_text(text)
        self.endpoints = dict(endpoints)
        self.routed_known_hosts = known_hosts

    def route_direct(self) -> None:
        """The tools reach every host at its address again."""
        self.endpoints = {}
        self.routed_known_hosts = None

    def tool_ssh_argv(self, name: str) -> list[str]:
        """The ssh command line (without the remote command) a tool uses for this host."""
        argv = self.ssh_argv(name)
        if name not in self.endpoints:
            return argv
        return routed_ssh_argv(argv, self.address(name), self.endpoints[name],
                               self.tools_known_hosts)

    def write_inventory(self, names: Sequence[str], path: Path) -> Path:
        """An Ansible INI inventory of these hosts (the test bed's key; each host at its
        endpoint, checked against the tools' known_hosts)."""
        path.write_text(inventory_text(names, {n: self.endpoint(n) for n in names},
                                       self.bed.key_path, self.tools_known_hosts))
        return path

    # -- counting ---------------------------------------------------------------------
    def mark(self, names: Sequence[str]) -> dict[str, str]:
        """sshd logging at VERBOSE on each host; the journal cursor of each, now."""
        def one(name: str) -> str:
            out = self.run(name, MARK_SCRIPT).stdout
            for line in out.splitlines():
                if line.startswith("-- cursor: "):
                    return line[len("-- cursor: "):].strip()
            raise RuntimeError(f"{name}: no journal cursor in {out!r}")
        return in_parallel(names, one)

    def count(self, cursors: Mapping[str, str]) -> dict[str, SshUse]:
        """SSH use on each host since its cursor (this reading connection left out)."""
        return in_parallel(list(cursors), lambda n: parse_sshd_log(
            self.run(n, COUNT_SCRIPT, cursors[n]).stdout))

    # -- verifying ----------------------------------------------------------------------
    def verify(self, names: Sequence[str], settings: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What each host has: role, database, grants, ledger, settings, env file, login."""
        script = verify_script(settings)
        return in_parallel(list(names), lambda n: parse_verify(self.run(n, script).stdout))


def verify_script(settings: Sequence[str]) -> str:
    names = ", ".join("'" + s.replace("'", "''") + "'" for s in settings) or "NULL"
    return f"""set -u
cd /
sql=$(runuser -u postgres -- psql -X -q -At -d chatalot 2>&1 <<'SQL'
SELECT 'sql ' || json_build_object(
  'role', (SELECT json_build_object('login', rolcanlogin, 'superuser', rolsuper,
           'createdb', rolcreatedb, 'createrole', rolcreaterole, 'replication', rolreplication,
           'bypassrls', rolbypassrls, 'scram', rolpassword LIKE 'SCRAM-SHA-256$%')
           FROM pg_authid WHERE rolname = 'chatalot'),
  'database', (SELECT json_build_object('owner', pg_get_userbyid(datdba),
           'encoding', pg_encoding_to_char(encoding),
           'public_connect', has_database_privilege('public', oid, 'CONNECT'),
           'public_temp', has_database_privilege('public', oid, 'TEMPORARY'))
           FROM pg_database WHERE datname = 'chatalot'),
  'schema_public', json_build_object(
           'create', has_schema_privilege('chatalot', 'public', 'CREATE'),
           'usage', has_schema_privilege('chatalot', 'public', 'USAGE')),
  'ledger', (SELECT json_build_object('rows', count(*), 'all_success', bool_and(success),
           'owner', (SELECT pg_get_userbyid(relowner) FROM pg_class
                     WHERE oid = to_regclass('public._sqlx_migrations')),
           'rows_text', string_agg(version || ':' || description || ':' || encode(checksum, 'hex'),
                                   ',' ORDER BY version))
           FROM public._sqlx_migrations),
  'tables', (SELECT json_build_object('count', count(*),
           'owners', json_agg(DISTINCT tableowner))
           FROM pg_tables WHERE schemaname = 'public'),
  'settings', (SELECT json_object_agg(name, current_setting(name) ORDER BY name)
           FROM pg_settings WHERE name IN ({names})),
  'hba', (SELECT json_agg(json_build_object('type', type, 'database', database,
           'user', user_name, 'address', address, 'method', auth_method)
           ORDER BY line_number)
           FROM pg_hba_file_rules WHERE 'chatalot' = ANY(user_name)),
  'trust_rules', (SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'),
  'server_version', current_setting('server_version'));
SQL
)
printf '%s\\n' "$sql"
echo "env $(stat -c '%a %U %G' /etc/chatalot/database.env 2>/dev/null || echo missing)"
echo "enabled $(systemctl is-enabled postgresql 2>/dev/null)"
url=$(sed -n 's/^DATABASE_URL=//p' /etc/chatalot/database.env 2>/dev/null)
pw=${{url#*://*:}}; pw=${{pw%%@*}}
login=$(PGPASSWORD=$pw psql -X -w -At -d "host=localhost port=5432 dbname=chatalot user=chatalot" \\
        -c 'SELECT 1' 2>&1)
echo "login $login"
"""


def parse_verify(out: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        if word == "sql" and rest.startswith("{"):
            found.update(json.loads(rest))
        elif word in ("env", "enabled", "login"):
            found[word] = rest.strip()
    if "role" not in found:
        found["error"] = out.strip()[-500:]
    return found


def expected_problems(found: Mapping[str, Any], ledger_rows: str, migrations: int) -> list[str]:
    """What differs from what apply guarantees (empty: the host is as apply leaves it)."""
    problems: list[str] = []
    if "error" in found:
        return [f"could not read the host: {found['error']}"]
    want_role = {"login": True, "superuser": False, "createdb": False, "createrole": False,
                 "replication": False, "bypassrls": False, "scram": True}
    if found.get("role") != want_role:
        problems.append(f"role {found.get('role')}")
    db = found.get("database") or {}
    if db != {"owner": "chatalot", "encoding": "UTF8", "public_connect": False,
              "public_temp": False}:
        problems.append(f"database {db}")
    if found.get("schema_public") != {"create": True, "usage": True}:
        problems.append(f"schema public {found.get('schema_public')}")
    ledger = found.get("ledger") or {}
    if ledger.get("rows") != migrations or not ledger.get("all_success"):
        problems.append(f"ledger has {ledger.get('rows')} rows, wanted {migrations}")
    if ledger.get("rows_text") != ledger_rows:
        problems.append("ledger rows (version, description, checksum) differ from sqlx's")
    if ledger.get("owner") != "chatalot":
        problems.append(f"ledger owned by {ledger.get('owner')}")
    if (found.get("tables") or {}).get("owners") != ["chatalot"]:
        problems.append(f"tables owned by {(found.get('tables') or {}).get('owners')}")
    rules = {(r["type"], r["address"], r["method"]) for r in found.get("hba") or []}
    for address in ("127.0.0.1", "::1"):
        if ("host", address, "scram-sha-256") not in rules:
            problems.append(f"no scram-sha-256 rule for chatalot from {address}")
    if found.get("trust_rules"):
        problems.append(f"{found.get('trust_rules')} trust rules")
    if found.get("env") != "600 root root":
        problems.append(f"env file {found.get('env')}")
    if found.get("enabled") != "enabled":
        problems.append(f"postgresql {found.get('enabled')} at boot")
    if found.get("login") != "1":
        problems.append(f"DATABASE_URL login: {found.get('login')}")
    return problems


#: a provisioned host's writable layer (PostgreSQL, its cluster, apt's lists, the journal)
UPPER_GB_PER_HOST = 0.7


def upper_on_disk(hosts: int, memory_gb: float) -> bool:
    """Whether `hosts` hosts' writable layers go on disk: when on tmpfs they would take
    more than half of the machine's memory (the hosts' own processes need the rest)."""
    return hosts * UPPER_GB_PER_HOST > memory_gb / 2

