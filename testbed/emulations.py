"""Layout emulations: Debian 12 images that look like Fedora, Arch, Ubuntu or Alpine hosts.

The package repositories of Fedora and Arch cannot be reached from the test
machines, so those hosts are LAYOUT EMULATIONS on a Debian 12 base (see
docs/testbed.md), not the real distributions:

- `/etc/os-release` (and /usr/lib/os-release) is the real file of that distribution;
- `dnf` (with a query-only `rpm`) or `pacman` on PATH accept the real command lines,
  append each command line to /var/log/chatalot-emulated-pkg.log, and "install"
  PostgreSQL by apt-installing Debian's postgresql-15 (no cluster created, nothing
  started or enabled) and laying it out as that distribution does: `postgres`,
  `initdb`, `pg_ctl`, `psql`, ... symlinked into /usr/bin, the postgres user's home
  and an empty data directory owned by postgres (/var/lib/pgsql/data,
  /var/lib/postgres/data), a `postgresql.service` like the distribution's, which
  refuses to start on an empty data directory;
- Fedora's `postgresql-setup --initdb` runs `initdb --auth=ident` plus
  $PGSETUP_INITDB_OPTIONS, as the real one does, so without options host lines are
  `ident` (the classic "Ident authentication failed" pitfall).

What is NOT emulated: the real distribution's PostgreSQL major (every emulation
gets Debian 12's PostgreSQL 15: Fedora 40 would have 16, Arch 17), the PGDG
repositories (a repo RPM URL fails as if unreachable), rpm's database, pacman's
sync databases. The Ubuntu host is Debian 12 with Ubuntu 24.04's os-release: its
apt is Debian's, whose `postgresql` depends on postgresql-15 where Ubuntu 24.04's
depends on postgresql-16. The Alpine host is Debian with Alpine's os-release, for
the unsupported-distribution test.

Each kind's files become WriteFile steps of its recipe (testbed/recipes.py), so
changing a file here changes the recipe hash and rebuilds only that kind's image.
"""

from __future__ import annotations

EMU_DIR = "/usr/lib/chatalot-emulation"
PKG_LOG = "/var/log/chatalot-emulated-pkg.log"
"""Every command line the emulated package tools were called with, one per line."""

# --- os-release files (verbatim from each distribution) ------------------------------

FEDORA_OS_RELEASE = """\
NAME="Fedora Linux"
VERSION="40 (Server Edition)"
ID=fedora
VERSION_ID=40
VERSION_CODENAME=""
PLATFORM_ID="platform:f40"
PRETTY_NAME="Fedora Linux 40 (Server Edition)"
ANSI_COLOR="0;38;2;60;110;180"
LOGO=fedora-logo-icon
CPE_NAME="cpe:/o:fedoraproject:fedora:40"
HOME_URL="https://fedoraproject.org/"
DOCUMENTATION_URL="https://docs.fedoraproject.org/en-US/fedora/f40/system-administrators-guide/"
SUPPORT_URL="https://ask.fedoraproject.org/"
BUG_REPORT_URL="https://bugzilla.redhat.com/"
REDHAT_BUGZILLA_PRODUCT="Fedora"
REDHAT_BUGZILLA_PRODUCT_VERSION=40
REDHAT_SUPPORT_PRODUCT="Fedora"
REDHAT_SUPPORT_PRODUCT_VERSION=40
SUPPORT_END=2025-05-13
VARIANT="Server Edition"
VARIANT_ID=server
"""

ARCH_OS_RELEASE = """\
NAME="Arch Linux"
PRETTY_NAME="Arch Linux"
ID=arch
BUILD_ID=rolling
ANSI_COLOR="38;2;23;147;209"
HOME_URL="https://archlinux.org/"
DOCUMENTATION_URL="https://wiki.archlinux.org/"
SUPPORT_URL="https://bbs.archlinux.org/"
BUG_REPORT_URL="https://gitlab.archlinux.org/groups/archlinux/-/issues"
PRIVACY_POLICY_URL="https://terms.archlinux.org/docs/privacy-policy/"
LOGO=archlinux-logo
"""

UBUNTU_OS_RELEASE = """\
PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.1 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=noble
LOGO=ubuntu-logo
"""

ALPINE_OS_RELEASE = """\
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
"""

# --- shared helpers of the emulated tools ---------------------------------------------

COMMON_SH = f"""\
# chatalot-db test bed: helpers of the LAYOUT EMULATIONS (sourced by dnf, rpm, pacman).
# These hosts are Debian 12; see {EMU_DIR}/README.
EMU_DIR={EMU_DIR}
EMU_LOG={PKG_LOG}
EMU_DB=/var/lib/chatalot-emulation/installed
PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin

# Record one command line (the real tool's argv, as called).
emu_log() {{ printf '%s\\n' "$*" >> "$EMU_LOG"; }}

emu_installed() {{ [ -f "$EMU_DB" ] && grep -qxF "$1" "$EMU_DB"; }}

emu_mark() {{
    mkdir -p "${{EMU_DB%/*}}"
    emu_installed "$1" || echo "$1" >> "$EMU_DB"
}}

# The upstream version of the Debian server package, e.g. 15.10
emu_pg_version() {{
    dpkg-query -W -f='${{Version}}' "postgresql-$PG_MAJOR" 2>/dev/null | sed 's/-.*//'
}}

emu_systemd_pid1() {{ [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; }}

# apt-get; where systemd is not PID 1 (a session in its own PID namespace), Debian's
# maintainer scripts must not see /run/systemd/system, or they call systemctl and fail:
# /run/systemd is hidden under an empty tmpfs in a mount namespace of its own.
emu_apt() {{
    if emu_systemd_pid1; then
        DEBIAN_FRONTEND=noninteractive apt-get "$@"
    else
        DEBIAN_FRONTEND=noninteractive unshare -m sh -c \\
            'mount -t tmpfs none /run/systemd && exec apt-get "$@"' sh "$@"
    fi
}}

# Debian's PostgreSQL server, with no cluster created and nothing started or enabled.
emu_install_debian_server() {{
    install -d /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' \\
        > /etc/postgresql-common/createcluster.d/chatalot-emulation.conf
    if dpkg-query -W -f='${{db:Status-Abbrev}}' "postgresql-$PG_MAJOR" 2>/dev/null \\
            | grep -q '^ii'; then
        return 0
    fi
    printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    local rc=0 log=/var/log/chatalot-emulation-apt.log
    local opts=(-q -y -o DPkg::Lock::Timeout=600
                -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    {{
        if ! apt-cache policy "postgresql-$PG_MAJOR" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            emu_apt "${{opts[@]}}" update
        fi
        emu_apt "${{opts[@]}}" install --no-install-recommends \\
            "postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR"
    }} >> "$log" 2>&1 || rc=$?
    rm -f /usr/sbin/policy-rc.d
    if [ "$rc" != 0 ]; then
        echo "emulation: apt-get failed (exit $rc); the end of $log:" >&2
        tail -n 15 "$log" >&2
        return "$rc"
    fi
    # Debian's postinst enabled its umbrella postgresql.service; the emulated
    # distributions' packages enable nothing.
    rm -f /etc/systemd/system/multi-user.target.wants/postgresql.service
}}

# Every server and client program on PATH, as Fedora and Arch install them (/usr/bin).
emu_link_binaries() {{
    local f
    for f in "$PG_BIN"/*; do ln -sfn "$f" "/usr/bin/${{f##*/}}"; done
}}

# The postgres user's home as the emulated distribution has it (made, 0700).
emu_home() {{
    usermod -d "$1" postgres
    install -d -o postgres -g postgres -m 0700 "$1"
}}

emu_systemd_reload() {{
    if emu_systemd_pid1; then systemctl daemon-reload; fi
}}
"""

# --- Fedora ---------------------------------------------------------------------------

DNF = f"""\
#!/bin/bash
# chatalot-db test bed: a LAYOUT EMULATION of Fedora's dnf on Debian 12 (not the real dnf).
# It accepts dnf's command lines for PostgreSQL, records each in {PKG_LOG}, and
# installs postgresql-server / postgresql-contrib by apt-installing Debian's PostgreSQL 15
# laid out as Fedora's packages lay it out. See {EMU_DIR}/README.
set -euo pipefail
. {EMU_DIR}/common.sh
emu_log dnf "$@"

assume=0
args=()
for a in "$@"; do
    case "$a" in
        -y|--assumeyes) assume=1 ;;
        -q|--quiet) ;;
        -qy|-yq) assume=1 ;;
        -*) echo "dnf (emulation): unsupported option $a" >&2; exit 1 ;;
        *) args+=("$a") ;;
    esac
done
[ "${{#args[@]}}" -gt 0 ] || {{ echo "dnf (emulation): no command given" >&2; exit 1; }}
cmd=${{args[0]}}
pkgs=("${{args[@]:1}}")

fedora_layout() {{
    emu_install_debian_server
    emu_link_binaries
    emu_home /var/lib/pgsql
    install -d -o postgres -g postgres -m 0700 /var/lib/pgsql/data /var/lib/pgsql/backups
    install -m 0644 "$EMU_DIR/fedora/postgresql.service" /usr/lib/systemd/system/postgresql.service
    install -D -m 0755 "$EMU_DIR/fedora/postgresql-check-db-dir" \\
        /usr/libexec/postgresql-check-db-dir
    install -m 0755 "$EMU_DIR/fedora/postgresql-setup" /usr/bin/postgresql-setup
    install -m 0644 "$EMU_DIR/fedora/tmpfiles.conf" /usr/lib/tmpfiles.d/postgresql.conf
    if emu_systemd_pid1; then
        systemd-tmpfiles --create /usr/lib/tmpfiles.d/postgresql.conf
    fi
    emu_systemd_reload
}}

case "$cmd" in
    install)
        [ "$assume" = 1 ] || {{
            echo "dnf (emulation): cannot ask for confirmation; pass -y" >&2; exit 1; }}
        [ "${{#pkgs[@]}}" -gt 0 ] || {{
            echo "Error: Need to pass a list of pkgs to install" >&2; exit 1; }}
        for p in "${{pkgs[@]}}"; do
            case "$p" in
                postgresql|postgresql-server|postgresql-contrib) ;;
                *://*|*.rpm)
                    echo "Curl error (6): Couldn't resolve host name for $p" \\
                         "[emulation: the PGDG repository cannot be reached from the test bed]" >&2
                    exit 1 ;;
                *)
                    echo "No match for argument: $p" >&2
                    echo "Error: Unable to find a match: $p" >&2
                    exit 1 ;;
            esac
        done
        todo=()
        for p in "${{pkgs[@]}}"; do
            if emu_installed "$p"; then
                echo "Package $p-$(emu_pg_version)-1.fc40.x86_64 is already installed."
            else
                todo+=("$p")
            fi
        done
        if [ "${{#todo[@]}}" = 0 ]; then echo "Dependencies resolved."; echo "Nothing to do."
            echo "Complete!"; exit 0; fi
        fedora_layout
        echo "Installed:"
        for p in postgresql "${{todo[@]}}"; do
            emu_mark "$p"
            echo "  $p-$(emu_pg_version)-1.fc40.x86_64"
        done
        echo "Complete!"
        ;;
    module)
        case "${{pkgs[0]:-}}" in
            disable|enable|reset) echo "(emulation) dnf module ${{pkgs[*]}}: nothing to do" ;;
            *) echo "dnf (emulation): unsupported: dnf module ${{pkgs[*]}}" >&2; exit 1 ;;
        esac
        ;;
    *)
        echo "dnf (emulation): unsupported command: $cmd" >&2
        exit 1
        ;;
esac
"""

RPM = f"""\
#!/bin/bash
# chatalot-db test bed: a query-only stand-in for rpm on the Fedora LAYOUT EMULATION:
# `rpm -q NAME...` answers from what the emulated dnf installed.
set -euo pipefail
. {EMU_DIR}/common.sh
emu_log rpm "$@"
[ "${{1:-}}" = -q ] || {{ echo "rpm (emulation): only rpm -q NAME... is emulated" >&2; exit 1; }}
shift
missing=0
for p in "$@"; do
    if emu_installed "$p"; then
        echo "$p-$(emu_pg_version)-1.fc40.x86_64"
    else
        echo "package $p is not installed"
        missing=$((missing + 1))
    fi
done
exit "$missing"
"""

FEDORA_UNIT = """\
# chatalot-db test bed (Fedora LAYOUT EMULATION): Fedora's postgresql.service, as
# its postgresql-server package installs it.
[Unit]
Description=PostgreSQL database server
After=network.target

[Service]
Type=notify

User=postgres
Group=postgres

# Disable OOM kill on the postmaster
OOMScoreAdjust=-1000
Environment=PG_OOM_ADJUST_FILE=/proc/self/oom_score_adj
Environment=PG_OOM_ADJUST_VALUE=0

Environment=PGDATA=/var/lib/pgsql/data

ExecStartPre=/usr/libexec/postgresql-check-db-dir %N
ExecStart=/usr/bin/postgres -D ${PGDATA}
ExecReload=/bin/kill -HUP $MAINPID
KillMode=mixed
KillSignal=SIGINT

# Do not set any timeout value, so that systemd will not kill postmaster
# during crash recovery.
TimeoutSec=0
TimeoutStartSec=0
TimeoutStopSec=1h

[Install]
WantedBy=multi-user.target
"""

FEDORA_CHECK_DB_DIR = """\
#!/bin/bash
# chatalot-db test bed (Fedora LAYOUT EMULATION): what Fedora's
# /usr/libexec/postgresql-check-db-dir checks before the service starts.
unit=${1:-postgresql}
if [ -z "${PGDATA:-}" ]; then
    echo "PGDATA is not set (unit $unit)" >&2
    exit 1
fi
if [ ! -f "$PGDATA/PG_VERSION" ]; then
    echo "Directory \\"$PGDATA\\" is missing or empty."
    echo "Use \\"/usr/bin/postgresql-setup --initdb\\""
    echo "to initialize the database cluster."
    echo "See /usr/share/doc/postgresql/README.rpm-dist for more information."
    exit 1
fi
version=$(postgres --version | sed -n 's/^postgres (PostgreSQL) \\([0-9]*\\).*/\\1/p')
if [ "$(cat "$PGDATA/PG_VERSION")" != "$version" ]; then
    echo "An old version of the database format was found."
    echo "Use \\"/usr/bin/postgresql-setup --upgrade\\" to upgrade to version $version."
    echo "See /usr/share/doc/postgresql/README.rpm-dist for more information."
    exit 1
fi
exit 0
"""

POSTGRESQL_SETUP = f"""\
#!/bin/bash
# chatalot-db test bed (Fedora LAYOUT EMULATION): Fedora's postgresql-setup --initdb.
# Like the real one it runs `initdb --auth=ident` followed by $PGSETUP_INITDB_OPTIONS,
# so without options the pg_hba host lines are `ident`.
set -euo pipefail
. {EMU_DIR}/common.sh
emu_log "PGSETUP_INITDB_OPTIONS=${{PGSETUP_INITDB_OPTIONS:-}}" postgresql-setup "$@"
mode=""
unit=postgresql
while [ $# -gt 0 ]; do
    case "$1" in
        --initdb) mode=initdb ;;
        --upgrade) mode=upgrade ;;
        --unit) unit=$2; shift ;;
        --unit=*) unit=${{1#--unit=}} ;;
        --help) echo "Usage: postgresql-setup --initdb|--upgrade [--unit=UNIT]"; exit 0 ;;
        *) echo "postgresql-setup: unrecognized option '$1'" >&2; exit 1 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || {{ echo "postgresql-setup: must be run as root" >&2; exit 1; }}
case "$mode" in
    initdb) ;;
    upgrade) echo "postgresql-setup (emulation): --upgrade is not emulated" >&2; exit 1 ;;
    *) echo "postgresql-setup: no mode given (--initdb or --upgrade)" >&2; exit 1 ;;
esac
unitfile=/etc/systemd/system/$unit.service
[ -f "$unitfile" ] || unitfile=/usr/lib/systemd/system/$unit.service
PGDATA=$(sed -n 's/^Environment=PGDATA=//p' "$unitfile" | tail -n 1)
[ -n "$PGDATA" ] || {{ echo "failed to find PGDATA setting in $unit.service" >&2; exit 1; }}
echo " * Initializing database in '$PGDATA'"
if [ -e "$PGDATA" ] && [ -n "$(ls -A "$PGDATA")" ]; then
    echo "Data directory \\"$PGDATA\\" is not empty!" >&2
    echo " * Initializing database in '$PGDATA' failed" >&2
    exit 1
fi
install -d -o postgres -g postgres -m 0700 "$PGDATA"
log=/var/lib/pgsql/initdb_$unit.log
read -r -a opts <<< "${{PGSETUP_INITDB_OPTIONS:-}}"
if ! (cd /var/lib/pgsql && runuser -u postgres -- initdb --pgdata="$PGDATA" --auth=ident \\
        "${{opts[@]}}") >> "$log" 2>&1; then
    echo "ERROR: Initializing database failed, see $log" >&2
    tail -n 5 "$log" >&2
    exit 1
fi
chown postgres:postgres "$log"
echo " * Initialized, logs are in $log"
"""

FEDORA_TMPFILES = "d /run/postgresql 0755 postgres postgres -\n"

# --- Arch -----------------------------------------------------------------------------

PACMAN = f"""\
#!/bin/bash
# chatalot-db test bed: a LAYOUT EMULATION of Arch's pacman on Debian 12 (not pacman).
# It accepts pacman's command lines for PostgreSQL, records each in {PKG_LOG}, and
# installs `postgresql` by apt-installing Debian's PostgreSQL 15 laid out as Arch's
# package lays it out. See {EMU_DIR}/README.
set -euo pipefail
. {EMU_DIR}/common.sh
emu_log pacman "$@"

op=""
needed=0
noconfirm=0
pkgs=()
for a in "$@"; do
    case "$a" in
        --needed) needed=1 ;;
        --noconfirm) noconfirm=1 ;;
        -S|-Sy|-Syu|-Syy|-Su) op=S ;;
        -Q|-Qq) op=Q ;;
        -*) echo "error: (emulation) unsupported option $a" >&2; exit 1 ;;
        *) pkgs+=("$a") ;;
    esac
done

arch_layout() {{
    emu_install_debian_server
    emu_link_binaries
    emu_home /var/lib/postgres
    install -d -o postgres -g postgres -m 0700 /var/lib/postgres/data
    install -m 0644 "$EMU_DIR/arch/postgresql.service" /usr/lib/systemd/system/postgresql.service
    install -m 0755 "$EMU_DIR/arch/postgresql-check-db-dir" /usr/bin/postgresql-check-db-dir
    emu_systemd_reload
}}

case "$op" in
    Q)
        rc=0
        for p in "${{pkgs[@]}}"; do
            if emu_installed "$p"; then
                echo "$p $(emu_pg_version)-1"
            else
                echo "error: package '$p' was not found" >&2
                rc=1
            fi
        done
        exit "$rc"
        ;;
    S)
        [ "${{#pkgs[@]}}" -gt 0 ] || {{
            echo "error: no targets specified (use -h for help)" >&2; exit 1; }}
        for p in "${{pkgs[@]}}"; do
            case "$p" in
                postgresql|postgresql-libs) ;;
                *) echo "error: target not found: $p" >&2; exit 1 ;;
            esac
        done
        todo=()
        for p in "${{pkgs[@]}}"; do
            if [ "$needed" = 1 ] && emu_installed "$p"; then
                echo "warning: $p-$(emu_pg_version)-1 is up to date -- skipping"
            else
                todo+=("$p")
            fi
        done
        if [ "${{#todo[@]}}" = 0 ]; then echo " there is nothing to do"; exit 0; fi
        [ "$noconfirm" = 1 ] || {{
            echo "error: (emulation) cannot ask for confirmation; pass --noconfirm" >&2; exit 1; }}
        echo "resolving dependencies..."
        arch_layout
        for p in postgresql-libs "${{todo[@]}}"; do
            emu_mark "$p"
            echo "installing $p-$(emu_pg_version)-1..."
        done
        ;;
    *)
        echo "error: (emulation) no operation specified; only -S and -Q are emulated" >&2
        exit 1
        ;;
esac
"""

ARCH_UNIT = """\
# chatalot-db test bed (Arch LAYOUT EMULATION): Arch's postgresql.service, as its
# postgresql package installs it.
[Unit]
Description=PostgreSQL database server
Documentation=man:postgres(1)
After=network.target
Wants=network-online.target

[Service]
Type=notify
TimeoutSec=120
User=postgres
Group=postgres

Environment=PGROOT=/var/lib/postgres

SyslogIdentifier=postgres
RuntimeDirectory=postgresql
RuntimeDirectoryMode=755

ExecStartPre=/usr/bin/postgresql-check-db-dir ${PGROOT}/data
ExecStart=/usr/bin/postgres -D ${PGROOT}/data
ExecReload=/bin/kill -HUP ${MAINPID}
KillMode=mixed
KillSignal=SIGINT

# Due to PostgreSQL's use of shared memory, OOM killer is often overzealous in
# killing Postgres, so adjust it downward
OOMScoreAdjust=-200

# Additional security-related features
PrivateTmp=true
ProtectHome=true
ProtectSystem=full
NoNewPrivileges=true
ProtectControlGroups=true
ProtectKernelModules=true
ProtectKernelTunables=true
PrivateDevices=true
RestrictNamespaces=true
RestrictRealtime=true
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
"""

ARCH_CHECK_DB_DIR = """\
#!/bin/sh
# chatalot-db test bed (Arch LAYOUT EMULATION): what Arch's postgresql-check-db-dir
# checks before the service starts.
PGDATA="$1"
if [ -z "$PGDATA" ]; then
    echo "Usage: $0 database-path"
    exit 1
fi
PGMAJORVERSION=$(/usr/bin/postgres --version \\
    | sed -n 's/^postgres (PostgreSQL) \\([0-9]*\\).*/\\1/p')
if [ ! -d "$PGDATA" ]; then
    echo "\\"$PGDATA\\" is missing or not a directory."
    exit 1
fi
if [ ! -f "$PGDATA/PG_VERSION" ]; then
    echo "\\"$PGDATA\\" is missing or empty. Use a command like"
    echo "  su - postgres -c \\"initdb --locale en_US.UTF-8 -D '$PGDATA'\\""
    echo "with relevant options, to initialize the database cluster."
    exit 1
fi
if [ "$(cat "$PGDATA/PG_VERSION")" != "$PGMAJORVERSION" ]; then
    echo "An old version of the database format was found."
    echo "See https://wiki.archlinux.org/title/PostgreSQL#Upgrading_PostgreSQL"
    exit 1
fi
exit 0
"""

README = f"""\
This host is a LAYOUT EMULATION made by the chatalot-db test bed (testbed/emulations.py):
a Debian 12 system with another distribution's /etc/os-release and, for Fedora and
Arch, stand-ins for dnf/rpm/postgresql-setup or pacman that record their command
lines in {PKG_LOG} and lay Debian's PostgreSQL 15 out as that distribution does.
It is not the real distribution.
"""


def files(kind: str) -> dict[str, tuple[str, int]]:
    """The files (path -> (text, mode)) an emulated kind adds to its Debian image."""
    emulated: dict[str, tuple[str, int]] = {}
    if kind in ("fedora", "arch"):
        emulated.update({
            f"{EMU_DIR}/README": (README, 0o644),
            f"{EMU_DIR}/common.sh": (COMMON_SH, 0o644),
            PKG_LOG: ("", 0o644),
        })
    if kind == "fedora":
        emulated.update({
            "/usr/bin/dnf": (DNF, 0o755),
            "/usr/bin/rpm": (RPM, 0o755),
            f"{EMU_DIR}/fedora/postgresql.service": (FEDORA_UNIT, 0o644),
            f"{EMU_DIR}/fedora/postgresql-check-db-dir": (FEDORA_CHECK_DB_DIR, 0o755),
            f"{EMU_DIR}/fedora/postgresql-setup": (POSTGRESQL_SETUP, 0o755),
            f"{EMU_DIR}/fedora/tmpfiles.conf": (FEDORA_TMPFILES, 0o644),
        })
    elif kind == "arch":
        emulated.update({
            "/usr/bin/pacman": (PACMAN, 0o755),
            f"{EMU_DIR}/arch/postgresql.service": (ARCH_UNIT, 0o644),
            f"{EMU_DIR}/arch/postgresql-check-db-dir": (ARCH_CHECK_DB_DIR, 0o755),
        })
    release = OS_RELEASE[kind]
    # both places: Debian's /etc/os-release is a symlink to ../usr/lib/os-release
    emulated["/usr/lib/os-release"] = (release, 0o644)
    emulated["/etc/os-release"] = (release, 0o644)
    return emulated


OS_RELEASE = {
    "fedora": FEDORA_OS_RELEASE,
    "arch": ARCH_OS_RELEASE,
    "ubuntu": UBUNTU_OS_RELEASE,
    "alpine": ALPINE_OS_RELEASE,
}
