"""Debian and Ubuntu: apt, pg_createcluster's layout, pg_ctlcluster without systemd."""

from __future__ import annotations

from typing import ClassVar

from installer.desired.upgrade import Cluster
from installer.errors import UnsupportedDistroError
from installer.host.distros.base import ServiceState, Strategy, UpgradePlan, parse_major
from installer.host.sections import SectionScript
from installer.transport.shell import sh

# The `postgresql` metapackage's major, per release (os-release VERSION_ID). A guess
# made before anything is read from the host: what apt says wins (see MAJOR_PROBE).
DEFAULT_MAJOR = {
    ("debian", "11"): 13,
    ("debian", "12"): 15,
    ("debian", "13"): 17,
    ("ubuntu", "20.04"): 12,
    ("ubuntu", "22.04"): 14,
    ("ubuntu", "24.04"): 16,
    ("ubuntu", "24.10"): 16,
    ("ubuntu", "25.04"): 17,
    ("ubuntu", "25.10"): 17,
}

APT_ENV = "DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a"
# wait for another apt/dpkg run (unattended-upgrades) instead of failing on its lock
APT_OPTS = (
    "-o DPkg::Lock::Timeout=600 "
    "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
)

# The major of the `postgresql` metapackage: the installed one's dependency, else the one
# apt would install. Debian 12's apt says 15 even where os-release claims Ubuntu 24.04
# (the test bed's ubuntu emulation), and a host with the PGDG source already configured
# gets PGDG's newest major from `apt-get install postgresql`: apt knows, the table guesses.
# (One dpkg-query, the rest in the shell: this runs in every state probe.)
MAJOR_PROBE = (
    "v=$(dpkg-query -W -f='${db:Status-Abbrev} ${Depends}\\n' postgresql 2>/dev/null | "
    "{ read -r st deps; case $st in ii*) for w in $deps; do case $w in "
    "postgresql-[0-9]*) w=${w%,}; echo \"${w#postgresql-}\"; break ;; esac; done ;; esac; }); "
    '[ -n "$v" ] || v=$(apt-cache depends postgresql 2>/dev/null '
    "| grep -o 'postgresql-[0-9][0-9]*' | head -n1); "
    'echo "${v#postgresql-}"'
)

# The PostgreSQL project's own apt repository (PGDG), for a pg_version the release lacks.
PGDG_URI = "https://apt.postgresql.org/pub/repos/apt"
PGDG_SOURCES = "/etc/apt/sources.list.d/pgdg.sources"
#: the repository's signing key as postgresql-common ships it
PGDG_KEY = "/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc"


def pgdg_sources(codename: str) -> str:
    """The deb822 source for PGDG, signed by the key postgresql-common ships."""
    return (
        "Types: deb\n"
        f"URIs: {PGDG_URI}\n"
        f"Suites: {codename}-pgdg\n"
        "Components: main\n"
        f"Signed-By: {PGDG_KEY}\n"
    )


def apt_install(packages: list[str]) -> str:
    """Install packages; refresh the lists only when apt knows no candidate for one."""
    pkgs = sh(*packages)
    return (
        "need_update=0\n"
        f"for p in {pkgs}; do\n"
        "  c=$(apt-cache policy \"$p\" 2>/dev/null | sed -n 's/^ *Candidate: //p')\n"
        "  if [ -z \"$c\" ] || [ \"$c\" = '(none)' ]; then need_update=1; fi\n"
        "done\n"
        f"if [ $need_update = 1 ]; then {APT_ENV} apt-get {APT_OPTS} update -q; fi\n"
        f"{APT_ENV} apt-get {APT_OPTS} install -y -q --no-install-recommends {pkgs}"
    )


def has_candidate(packages: list[str]) -> str:
    """Shell condition: apt knows an installable version of every package (its lists as
    they are: no update)."""
    return ("{ ok=1; for p in " + sh(*packages) + "; do "
            "c=$(apt-cache policy \"$p\" 2>/dev/null | sed -n 's/^ *Candidate: //p'); "
            "if [ -z \"$c\" ] || [ \"$c\" = '(none)' ]; then ok=0; fi; done; [ $ok = 1 ]; }")


class DebianStrategy(Strategy):
    ids: ClassVar[frozenset[str]] = frozenset({"debian", "ubuntu", "raspbian", "linuxmint"})
    family: ClassVar[str] = "debian"
    label: ClassVar[str] = "Debian/Ubuntu"
    package_creates_cluster: ClassVar[bool] = True

    def _release(self) -> tuple[str, str]:
        os_id = "ubuntu" if "ubuntu" in (self.facts.os_id, *self.facts.os_like) else "debian"
        if self.facts.os_id in ("debian", "ubuntu"):
            os_id = self.facts.os_id
        return os_id, self.facts.version_id

    def default_major(self) -> int | None:
        return DEFAULT_MAJOR.get(self._release())

    @property
    def pgdg(self) -> bool:
        """Whether pg_version comes from PGDG (the release's own archive lacks it)."""
        pinned = self.config.pg_version
        return pinned is not None and pinned != self.default_major()

    def major_probe(self) -> str | None:
        # with pg_version, postgresql-NN is installed beside whatever `postgresql` points to
        return None if self.config.pg_version is not None else MAJOR_PROBE

    def packages(self) -> list[str]:
        if self.config.pg_version is None:
            return ["postgresql", "postgresql-contrib"]
        return [f"postgresql-{self.major}"]

    def installed_markers(self) -> dict[str, str]:
        """Package to install -> the real package whose presence proves it.

        `postgresql-contrib` is a virtual package on Debian 13 (provided by the server
        package, which has shipped the contrib modules since PostgreSQL 10), so dpkg
        never lists it as installed: the server package stands for it.
        """
        server = f"postgresql-{self.major}" if self.major else "postgresql"
        return {p: (server if p == "postgresql-contrib" else p) for p in self.packages()}

    def psql(self) -> str:
        # /usr/bin/psql is pg_wrapper (Perl); the server's own psql starts in a fifth of the time
        return self.client("psql")

    def client(self, program: str) -> str:
        return f"/usr/lib/postgresql/{self.major}/bin/{program}" if self.major else program

    other_major_bindirs: ClassVar[tuple[str, ...]] = ("/usr/lib/postgresql/{major}/bin",)
    other_major_package: ClassVar[str] = "postgresql-{major}"

    # layout --------------------------------------------------------------
    @property
    def conf_dir(self) -> str:
        return f"/etc/postgresql/{self.major}/main"

    def data_dir(self) -> str:
        return f"/var/lib/postgresql/{self.major}/main"

    def own_conf(self) -> str:
        return f"{self.conf_dir}/postgresql.conf"

    def cluster_confs(self) -> tuple[str, ...]:
        return ("/etc/postgresql/*/*/postgresql.conf",)

    def hba_path(self) -> str:
        return f"{self.conf_dir}/pg_hba.conf"

    def dropin_path(self) -> str:
        return f"{self.conf_dir}/conf.d/50-chatalot.conf"

    def service(self) -> str:
        return f"postgresql@{self.major}-main"

    def enable_unit(self) -> str:
        return "postgresql"

    def control_tool(self) -> str:
        return "systemd" if self.facts.systemd else f"pg_ctlcluster {self.major} main"

    # probing -------------------------------------------------------------
    def add_state_sections(self, s: SectionScript) -> None:
        markers = sorted(set(self.installed_markers().values()))
        names = sorted(set(markers) | set(self.packages()))
        s.section(
            "dpkg",
            f"q=$(dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {sh(*names)} "
            "2>/dev/null); printf '%s\\n' \"$q\"",
        )
        # dpkg --audit (what an interrupted package run left) reads the whole database:
        # only when dpkg's journal holds an unfinished run, or one of our packages is not
        # fully installed (the install step then repairs first); not on a no-op run
        s.section(
            "dpkg-audit",
            "n=0; IFS='\n'; for line in $q; do case $line in "
            f"{'|'.join(sh(m + ' ii') + '*' for m in markers)}) n=$((n + 1)) ;; esac; done; "
            "unset IFS; set -- /var/lib/dpkg/updates/*; "
            f'if [ -e "$1" ] || [ "$n" -lt {len(markers)} ]; then '
            "dpkg --audit 2>/dev/null | head -n 3; fi",
        )
        if self.facts.systemd:
            # pg_lsclusters (Perl, 25 ms) only lists /etc/postgresql/MAJOR/CLUSTER: its
            # postgresql.conf tells the same, and systemd tells whether it runs
            s.section("cluster-conf",
                      f"[ -f {sh(self.conf_dir + '/postgresql.conf')} ] && echo exists; true")
        else:
            s.section("clusters", "pg_lsclusters -h 2>/dev/null; true")
        self.add_cluster_sections(s)
        if self.facts.systemd:
            self.add_systemd_section(s)

    def parse_state(self, sections: dict[str, str]) -> ServiceState:
        installed = set()
        for line in sections.get("dpkg", "").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].startswith("ii"):
                installed.add(parts[0])
        missing = [p for p, marker in self.installed_markers().items() if marker not in installed]
        data_dir, data_version, found = self.parse_cluster(sections)
        active = False
        for line in sections.get("clusters", "").splitlines():
            f = line.split()
            if len(f) >= 4 and f[0] == str(self.major) and f[1] == "main":
                active = f[3].startswith("online")
                # pg_lsclusters knows the cluster, wherever its data_directory points
                data_dir, data_version = "nonempty", parse_major(f[0])
        if sections.get("cluster-conf", "").strip() == "exists":
            # the cluster's configuration exists, wherever its data_directory points
            data_dir, data_version = "nonempty", self.major
        enabled: bool | None = None
        if self.facts.systemd:
            lines = sections.get("systemd", "").split()
            enabled = bool(lines) and lines[0] in ("enabled", "enabled-runtime", "static")
            active = len(lines) > 1 and lines[1] == "active"
        return ServiceState(missing, enabled, active, sections.get("dpkg-audit", "").strip(),
                            installed_major=found, data_dir=data_dir, data_version=data_version)

    # changing ------------------------------------------------------------
    def install_plan(self, missing: list[str]) -> list[str]:
        plan: list[str] = []
        if self.pgdg:
            codename = self.facts.codename
            if not codename:
                raise UnsupportedDistroError(
                    f"pg_version={self.config.pg_version} needs the PGDG apt repository, whose "
                    f"suite is named after the release's codename, and {self.facts.pretty_name} "
                    "has no VERSION_CODENAME in /etc/os-release")
            # only when the host's own sources lack the major (15 from a bookworm source on
            # trixie needs no PGDG); a repository that cannot be reached is taken away again
            # (no pgdg.sources left for every later apt-get update to warn about)
            unreachable = sh(f"the PGDG repository for {codename} could not be reached: "
                             f"{PGDG_SOURCES} removed again; nothing was installed")
            plan += [
                f"if ! {has_candidate(missing)}; then",
                apt_install(["ca-certificates", "postgresql-common"]),
                f"cat > {PGDG_SOURCES} <<'CHATALOT_EOF'\n{pgdg_sources(codename)}CHATALOT_EOF",
                f"if ! {APT_ENV} apt-get {APT_OPTS} update -q; then rm -f {PGDG_SOURCES}; "
                f"echo {unreachable} >&2; exit 1; fi",
                "fi",
            ]
        plan.append(apt_install(missing))
        return plan

    can_hold_start = True

    def install_script(self, missing: list[str], *, hold_start: bool = False) -> str:
        body = super().install_script(missing)
        return hold_start_script(body) if hold_start else body

    def repair_script(self) -> str:
        return f"{APT_ENV} dpkg --force-confdef --force-confold --configure -a"

    def init_plan(self) -> list[str]:
        # only where the package made none (create_main_cluster = false in createcluster.conf)
        return [sh("pg_createcluster", str(self.major), "main")]

    def init_description(self) -> str:
        return f"pg_createcluster {self.major} main"

    def cluster_reason(self) -> str:
        return f"the package created cluster {self.major}/main"

    def upgrade_hint(self) -> str:
        return "upgrade it with pg_upgradecluster"

    def upgrade_plan(self, old: Cluster, to: int, *, link: bool) -> UpgradePlan:
        """pg_upgradecluster (pg_upgrade; --link with `link`): the new cluster takes the old
        one's port, the old one is moved to a free port, set to `manual` and kept."""
        if old.name != "main":
            raise UnsupportedDistroError(
                f"the app's database is in cluster {old.major}/{old.name}; chatalot-db manages "
                f"cluster main only: upgrade it by hand (pg_upgradecluster {old.major} "
                f"{old.name}) and set pg_port")
        method = "link" if link else "upgrade"
        return UpgradePlan(
            description=f"pg_upgradecluster -v {to} -m {method} {old.major} main",
            packages=[f"postgresql-{to}"],
            script=debian_upgrade_script(old.major, to, old.port, method),
            rollback=debian_rollback_script(old.major, to, old.port),
            drop_old=debian_drop_old_script(old.major),
            old_data_dir=f"/var/lib/postgresql/{old.major}/main",
            new_parent="/var/lib/postgresql",
        )

    def control_script(self, action: str) -> str:
        if action not in ("start", "restart", "reload"):
            raise ValueError(action)
        if self.facts.systemd:
            return f"systemctl {action} {self.service()}"
        return f"pg_ctlcluster {self.major} main {action}"


#: a cluster's port as pg_conftool reads it (5432 when postgresql.conf sets none)
_PORT = "$(pg_conftool -s {v} main show port 2>/dev/null || echo 5432)"


def debian_rollback_script(old: int, new: int, port: int) -> str:
    """Root shell: cluster `old`/main serves on `port` again, `new`/main (if it exists)
    stopped, set to manual start and moved to the port `old` had. Tolerates every point a
    failed upgrade may stop at; refuses (exit 3, nothing changed) when `old` was upgraded
    with --link and so cannot start any more."""
    oconf, nconf = f"/etc/postgresql/{old}/main", f"/etc/postgresql/{new}/main"
    linked = sh(f"PostgreSQL {old}'s cluster was upgraded with --link: its data directory "
                f"cannot start again once PostgreSQL {new} has run. Nothing was changed; "
                "restore the backup taken before the upgrade instead (pg_restore)")
    gone = sh(f"there is no PostgreSQL {old} cluster main to go back to (removed with "
              "--drop-old?). Nothing was changed")
    manual = sh("# chatalot-db upgrade --rollback: kept, not started automatically\nmanual\n")
    return (
        "set -eu\ncd /\n"
        f"[ -f {oconf}/postgresql.conf ] || {{ echo {gone} >&2; exit 3; }}\n"
        f"od=$(pg_conftool -s {old} main show data_directory 2>/dev/null) "
        f"|| od=/var/lib/postgresql/{old}/main\n"
        'if [ -f "$od/global/pg_control.old" ] && [ ! -f "$od/global/pg_control" ]; then '
        f"echo {linked} >&2; exit 3; fi\n"
        f"op={_PORT.format(v=old)}\n"
        f"if [ -f {nconf}/postgresql.conf ]; then\n"
        f"  if pg_ctlcluster {new} main status >/dev/null 2>&1; then "
        f"pg_ctlcluster {new} main stop; fi\n"
        f"  printf %s {manual} > {nconf}/start.conf\n"
        f'  if [ "$op" != {port} ]; then pg_conftool {new} main set port "$op"; fi\n'
        "fi\n"
        f"pg_conftool {old} main set port {port}\n"
        f"echo auto > {oconf}/start.conf\n"
        "if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi\n"
        f"if ! pg_ctlcluster {old} main status >/dev/null 2>&1; then "
        f"pg_ctlcluster {old} main start; fi\n"
    )


def debian_upgrade_script(old: int, new: int, port: int, method: str) -> str:
    """Root shell: pg_upgradecluster `old` main to `new`. A `new`/main cluster already there
    (the package install makes one) is removed first only when it holds no database and no
    role of its own; one that holds something stops the script (exit 3, nothing changed).
    On failure the rollback script puts `old` back on `port` (pg_upgradecluster restarts it
    itself on most failures)."""
    nconf = f"/etc/postgresql/{new}/main"
    count = sh("SELECT (SELECT count(*) FROM pg_database WHERE datname NOT IN "
               "('postgres', 'template0', 'template1')) + (SELECT count(*) FROM pg_roles "
               "WHERE rolname !~ '^pg_' AND rolname <> 'postgres')")
    holds = sh(f"cluster {new}/main already exists and holds databases or roles of its own (or "
               "cannot be asked: not running), so pg_upgradecluster cannot make it. Nothing "
               f"was changed; move its data away or remove it (pg_dropcluster {new} main), "
               "then rerun")
    failed = sh(f"pg_upgradecluster failed: PostgreSQL {old} is put back on port {port}")
    rollback = sh(debian_rollback_script(old, new, port))
    return (
        "set -eu\ncd /\n"
        f"if [ -f {nconf}/postgresql.conf ]; then\n"
        f"  np={_PORT.format(v=new)}\n"
        f"  n=$(runuser -u postgres -- /usr/lib/postgresql/{new}/bin/psql -XAtq -p \"$np\" "
        f"-d postgres -c {count} 2>/dev/null) || n=unknown\n"
        f'  if [ "$n" != 0 ]; then echo {holds} >&2; exit 3; fi\n'
        f"  pg_dropcluster --stop {new} main\n"
        "fi\n"
        f"if ! pg_upgradecluster -v {new} -m {method} {old} main; then\n"
        f"  echo {failed} >&2\n"
        f"  sh -c {rollback} >&2 || true\n"
        "  exit 1\n"
        "fi\n"
    )


def debian_drop_old_script(old: int) -> str:
    """Root shell: remove cluster `old`/main, which must be stopped (exit 3 otherwise)."""
    running = sh(f"PostgreSQL {old}'s cluster main is running: it is not the old copy an "
                 "upgrade left. Nothing was removed")
    return (
        "set -eu\ncd /\n"
        f"[ -f /etc/postgresql/{old}/main/postgresql.conf ] || exit 0\n"
        f"if pg_ctlcluster {old} main status >/dev/null 2>&1; then echo {running} >&2; "
        "exit 3; fi\n"
        f"pg_dropcluster {old} main\n"
    )


__all__ = ["DEFAULT_MAJOR", "DebianStrategy", "apt_install", "parse_major", "pgdg_sources"]


#: Debian's hook that lets a package's maintainer scripts start a service, or not
POLICY_RC_D = "/usr/sbin/policy-rc.d"
#: the first line after the shebang of the policy-rc.d this tool writes
POLICY_MARK = "# chatalot-db:"


def hold_start_script(install: str) -> str:
    """`install` run with a policy-rc.d that forbids starting postgresql* (invoke-rc.d and
    deb-systemd-invoke ask it) while this very shell runs (its PID and start time: a run
    that is killed leaves a file that forbids nothing). Removed when the shell exits. A
    policy-rc.d of someone else is left alone, and the packages start the server as usual.
    """
    p = sh(POLICY_RC_D)
    policy = (
        "#!/bin/sh\n"
        f"{POLICY_MARK} PostgreSQL's packages do not start it while chatalot-db installs it "
        "(shell $$); chatalot-db starts it once its settings are written\n"
        'case "$1" in postgresql*) '
        '[ "$(cut -d" " -f22 /proc/$$/stat 2>/dev/null)" = "$chatalot_start" ] && exit 101 ;; '
        "esac\nexit 0\n"
    )
    # the heredoc is unquoted: $$ and $chatalot_start are this shell's, written in; the
    # policy's own $1 and $( ) are escaped
    policy_text = (policy.replace("$1", "\\$1").replace("$(cut", "\\$(cut"))
    mark = sh("^" + POLICY_MARK)
    return (
        "chatalot_start=$(cut -d' ' -f22 /proc/$$/stat)\n"
        "chatalot_held=\n"
        "chatalot_release() {\n"
        f"  if [ -n \"$chatalot_held\" ] && grep -q {mark} {p} 2>/dev/null; then rm -f {p}; fi\n"
        "}\n"
        "trap chatalot_release EXIT\n"
        f"if [ ! -e {p} ] || grep -q {mark} {p}; then\n"
        f"cat > {p} <<CHATALOT_EOF\n{policy_text}CHATALOT_EOF\n"
        f"chmod 0755 {p}; chatalot_held=1\n"
        "fi\n"
        + install
    )
