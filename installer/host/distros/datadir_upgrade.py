"""Major upgrades between data directories, as shell scripts (Fedora/RHEL's
postgresql-setup --upgrade and PGDG layouts, Arch's pg_upgrade with postgresql-old-upgrade):
the DataDirUpgrade a family's `upgrade_plan` fills in, and the upgrade, rollback and
drop-old scripts written from it. Pure: no I/O.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from installer.desired.pgconf import INCLUDE_LINE, INCLUDE_MARK
from installer.desired.settings import SSL_CERT, SSL_KEY
from installer.desired.upgrade import Cluster
from installer.errors import UnsupportedDistroError
from installer.transport.shell import sh


def newer_major(label: str, old: Cluster, to: int) -> None:
    """pg_upgrade goes to a newer major only."""
    if to <= old.major:
        raise UnsupportedDistroError(
            f"PostgreSQL {old.major} ({old.name}) cannot be upgraded to {to} on {label} "
            "hosts: pg_upgrade only goes to a newer major")


# -- major upgrades between data directories (Fedora/RHEL here; Arch uses them too) -------

#: files carried from the old data directory into the new one when there: user name maps,
#: the server certificate ensure_certificate made
CARRIED_FILES = ("pg_ident.conf", SSL_CERT, SSL_KEY)

#: the shell functions every data-directory upgrade script starts with (POSIX sh: dash on
#: Debian, bash as sh on Fedora and Arch)
UPGRADE_FUNCTIONS = r"""say() { printf '%s\n' "$1" >&2; }
refuse() { printf '%s\n' "$1" >&2; exit 3; }
pgv() { cat "$1/PG_VERSION" 2>/dev/null || true; }
pgmajor() {
  if [ -x "$1/postgres" ]; then
    "$1/postgres" --version 2>/dev/null | sed -n 's/^.*(PostgreSQL) \([0-9][0-9]*\).*$/\1/p'
  fi
}
running() {
  [ -f "$1/postmaster.pid" ] || return 1
  read -r pid < "$1/postmaster.pid" || return 1
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  [ -r "/proc/$pid/comm" ] || return 1
  read -r comm < "/proc/$pid/comm" || return 1
  case $comm in postgres|postmaster) return 0 ;; esac
  return 1
}
linked() { [ -f "$1/global/pg_control.old" ] && [ ! -f "$1/global/pg_control" ]; }
"""


def _control_functions(systemd: bool) -> str:
    """start_dir BINDIR DATA LOG / stop_dir BINDIR DATA: pg_ctl as postgres; under systemd
    the started server goes into a scope of its own (it outlives this session), and
    unit_stop UNIT stops a unit that runs."""
    scope = "systemd-run --scope --quiet -- " if systemd else ""
    text = (
        "start_dir() {\n"
        "  [ -d /run/postgresql ] || install -d -o postgres -g postgres -m 2775 /run/postgresql\n"
        f'  (cd / && {scope}runuser -u postgres -- "$1/pg_ctl" -D "$2" -l "$3" -w -t 300 '
        "start)\n"
        "}\n"
        "stop_dir() {\n"
        '  if running "$2"; then\n'
        '    (cd / && runuser -u postgres -- "$1/pg_ctl" -D "$2" -m fast -w -t 300 stop)\n'
        "  fi\n"
        "}\n"
    )
    if systemd:
        text += ('unit_stop() { if systemctl is-active --quiet "$1"; then systemctl stop "$1"; '
                 "fi; }\n")
    return text


@dataclass(frozen=True)
class DataDirUpgrade:
    """One data-directory cluster moved to a newer major by pg_upgrade: the paths, units
    and programs on both sides, from which upgrade_script, rollback_script and
    drop_old_script are written. Side by side (Fedora's PGDG layout: the old data stays
    where it is) or in place (the new cluster where the old one was, the old data moved
    to `keep`: Fedora's own packages, Arch)."""

    old_major: int
    to: int
    #: the old cluster's port, which the new one takes
    port: int
    link: bool
    systemd: bool
    #: where the old cluster's data is, and where its service expects it
    old_data: str
    #: where the old data is kept after the upgrade (`old_data` when side by side)
    keep: str
    #: where the old major's programs may be, the first with that major wins (at run time:
    #: the package upgrade may have replaced them, e.g. /usr/bin)
    old_bins: tuple[str, ...]
    #: the systemd unit that ran the old cluster, usable again while `old_unit_bin` holds
    #: the old major (else the old cluster is started by its own pg_ctl: not at boot)
    old_unit: str
    old_unit_bin: str
    new_data: str
    new_bin: str
    new_unit: str
    #: where rollback keeps the new data (in place: beside, the old data goes back)
    new_kept: str
    #: pg_upgrade's working directory, writable by postgres (its logs, its sockets)
    workdir: str
    #: shell making the new cluster in `new_data` (missing or empty), `$cs` its checksum option
    initdb: str
    #: the checksum option when the old cluster's cannot be read
    default_checksums: str
    #: what brings the old major's programs, for messages
    old_programs: str
    #: what brings the new major's programs, for messages
    new_programs: str
    #: the family's own tool that moves `old_data` to `keep`, makes the new cluster and runs
    #: pg_upgrade itself (postgresql-setup --upgrade), instead of our steps for those
    tool: str = ""

    @property
    def in_place(self) -> bool:
        return self.keep != self.old_data

    def log(self, data: str) -> str:
        """The server log when pg_ctl starts a cluster (DataDirStrategy.pg_ctl_log)."""
        return posixpath.join(posixpath.dirname(data), "pg_ctl.log")


def _prelude(m: DataDirUpgrade) -> str:
    return "set -eu\ncd /\n" + UPGRADE_FUNCTIONS + _control_functions(m.systemd)


def _find_old_bin(m: DataDirUpgrade) -> str:
    """`ob`: the old major's programs (empty when none); `ou`: the unit that can run the
    old cluster again (empty: pg_ctl from `ob`)."""
    text = (f"ob=\nfor b in {sh(*m.old_bins)}; do\n"
            f'  if [ "$(pgmajor "$b")" = {m.old_major} ]; then ob=$b; break; fi\ndone\nou=\n')
    if m.systemd:
        text += f'if [ "$ob" = {sh(m.old_unit_bin)} ]; then ou={sh(m.old_unit)}; fi\n'
    return text


def _start_old(m: DataDirUpgrade) -> str:
    """Shell: the old cluster (in `old_data`) started by its unit, else by its pg_ctl."""
    unit = ('if [ -n "$ou" ]; then systemctl start "$ou"; else '
            f'start_dir "$ob" {sh(m.old_data)} {sh(m.log(m.old_data))}; fi')
    return unit if m.systemd else f'start_dir "$ob" {sh(m.old_data)} {sh(m.log(m.old_data))}'


def _linked(m: DataDirUpgrade, where: str, then: str) -> str:
    """A message word: `where` (a quoted path, or "$at") was disabled by pg_upgrade --link."""
    return (sh(f"PostgreSQL {m.old_major}'s data directory ") + where
            + sh(" was upgraded with pg_upgrade --link (global/pg_control renamed to "
                 f"pg_control.old): it cannot start again once PostgreSQL {m.to} has run. "
                 + then))


def _carry_config(m: DataDirUpgrade) -> list[str]:
    """The old cluster's access rules, our drop-in (and the include line it needs), the
    server certificate and the port, into the new cluster. Where the script runs
    pg_upgrade itself this comes before it: pg_upgrade then starts the new server with
    them, so a setting the new major refuses stops the upgrade while the old cluster can
    still come back (after the family's tool, which makes the new cluster and upgrades in
    one go, it cannot). The port goes into postgresql.conf, before the include line: the
    configure step rewrites the drop-in from the inventory."""
    old, new = m.keep, m.new_data
    lines = [f"cp -p {sh(old + '/pg_hba.conf')} {sh(new + '/pg_hba.conf')}"]
    lines.append(f"for f in {sh(*CARRIED_FILES)}; do\n"
                 f'  if [ -f {sh(old)}/"$f" ]; then cp -p {sh(old)}/"$f" {sh(new)}/"$f"; fi\n'
                 "done")
    lines.append(f"if [ -d {sh(old + '/conf.d')} ]; then "
                 f"cp -pR {sh(old + '/conf.d')} {sh(new + '/conf.d')}; fi")
    conf = sh(new + "/postgresql.conf")
    said = sh(f"# chatalot-db upgrade: the port PostgreSQL {m.old_major} served on")
    lines.append(f"printf '%s\\n' '' {said} {sh(f'port = {m.port}')} >> {conf}")
    lines.append(f"if [ -d {sh(new + '/conf.d')} ]; then "
                 f"printf '%s\\n' {sh(INCLUDE_MARK)} {sh(INCLUDE_LINE)} >> {conf}; fi")
    return lines


def upgrade_script(m: DataDirUpgrade) -> str:
    """Root shell: the old cluster stopped, the new one made and upgraded from it with
    pg_upgrade (or the family's `tool`), started on the old one's port and enabled; the
    old one kept, stopped, not started at boot. Refuses (exit 3, nothing changed) what it
    cannot do. On any failure after that, `recover` (the EXIT trap) stops the new
    cluster, removes what this run made of it (never a directory it did not make: an
    empty one it found is emptied again), puts the old data back and starts the old
    cluster, unless pg_upgrade --link has already disabled it (it says so, keeps both)."""
    old, keep, new = sh(m.old_data), sh(m.keep), sh(m.new_data)
    nb = sh(m.new_bin)
    gone = sh(f"{m.old_data} holds no PostgreSQL {m.old_major} cluster (PG_VERSION). "
              "Nothing was changed")
    linked_before = _linked(m, old, "Nothing was changed; restore the backup taken before "
                            "the upgrade")
    no_old = sh(f"PostgreSQL {m.old_major}'s programs were not found in "
                f"{', '.join(m.old_bins)}: install {m.old_programs}. Nothing was changed")
    no_new = sh(f"PostgreSQL {m.to}'s programs (postgres, pg_upgrade) were not found in "
                f"{m.new_bin}: install {m.new_programs}. Nothing was changed")
    kept = sh(f"{m.keep} exists (an old cluster kept by an earlier upgrade?): remove it "
              "(chatalot-db upgrade --drop-old) or move it away. Nothing was changed")
    not_empty = sh(f"{m.new_data} is not an empty directory: initdb never runs over "
                   "data it did not make. Nothing was changed; move it away")
    still = sh(f"PostgreSQL {m.old_major} still runs in {m.old_data} after being stopped")
    failed = (sh(f"the upgrade to PostgreSQL {m.to} failed (exit ") + '"$st"'
              + sh(f"): bringing PostgreSQL {m.old_major} back"))
    linked_after = _linked(m, keep, f"Both data directories are kept as they are "
                           f"({m.new_data} holds the upgraded data, not running): start "
                           f"PostgreSQL {m.to} by hand, or restore the backup taken before "
                           "the upgrade")
    linked_back = _linked(m, old, "The family's tool removed the new cluster: restore the "
                          "backup taken before the upgrade")
    output = sh(m.new_data + "/pg_upgrade_output.d")
    back = sh(f"PostgreSQL {m.old_major} serves from {m.old_data} on port {m.port} again")
    not_back = sh(f"PostgreSQL {m.old_major} did NOT start again from {m.old_data}: "
                  "chatalot-db upgrade --rollback")
    off = "--no-data-checksums" if m.to >= 18 else ""
    lines = [
        _prelude(m).rstrip("\n"),
        "# before any change: what the upgrade needs, or exit 3 with nothing changed",
        f"[ \"$(pgv {old})\" = {m.old_major} ] || refuse {gone}",
        f"if linked {old}; then refuse {linked_before}; fi",
        _find_old_bin(m).rstrip("\n"),
        f'[ -n "$ob" ] || refuse {no_old}',
        f"[ \"$(pgmajor {nb})\" = {m.to} ] && [ -x {sh(m.new_bin + '/pg_upgrade')} ] "
        f"|| refuse {no_new}",
        "nw=missing",
    ]
    if m.in_place:
        lines.append(f"if [ -e {keep} ] || [ -L {keep} ]; then refuse {kept}; fi")
    else:
        lines += [
            f"if [ -e {new} ] || [ -L {new} ]; then",
            f'  if [ -d {new} ] && [ ! -L {new} ] && [ -z "$(ls -A {new})" ]; then nw=empty; '
            f"else refuse {not_empty}; fi",
            "fi",
        ]
    lines += [
        # the new cluster's checksums as the old one's: pg_upgrade refuses a difference
        f'ck=$(LC_ALL=C "$ob/pg_controldata" {old} 2>/dev/null '
        "| sed -n 's/^Data page checksum version:[[:space:]]*//p')",
        f"case $ck in 0) cs={sh(off)} ;; '') cs={sh(m.default_checksums)} ;; "
        "*) cs=--data-checksums ;; esac",
        "# the upgrade: from here on a failure brings the old cluster back (recover)",
        "stopped=0 moved=0 made=0 started=0 enabled=0 disabled=0",
        "recover() {",
        "  st=$?",
        "  trap - EXIT",
        "  set +e",
        '  [ "$st" -ne 0 ] || exit 0',
        f"  say {failed}",
        '  [ "$stopped" = 1 ] || exit "$st"',
    ]
    if m.in_place:
        # the kept copy was refused before: if it is there, this run moved the old data
        # there, and whatever is where the old data was is what this run made
        lines.append(f"  if [ -e {keep} ]; then moved=1 made=1; fi")
    if m.systemd:
        lines += [
            f'  if [ "$started" = 1 ]; then unit_stop {sh(m.new_unit)}; fi',
            f'  if [ "$enabled" = 1 ]; then systemctl disable --quiet {sh(m.new_unit)}; fi',
        ]
    lines += [
        f'  if [ "$made" = 1 ] && [ "$(pgv {new})" = {m.to} ]; then stop_dir {nb} {new}; fi',
        f"  if linked {keep}; then say {linked_after}; exit \"$st\"; fi",
        '  if [ "$made" = 1 ]; then',
        # pg_upgrade's logs (PostgreSQL 15 and later: in the new data directory) outlive it
        f"    if [ -d {output} ]; then",
        f'      logs={sh(m.workdir + "/pg_upgrade_output.d-")}"$(date +%Y%m%dT%H%M%S)"',
        f'      if mv {output} "$logs"; then say {sh("pg_upgrade" + chr(39) + "s logs: ")}"$logs"; '
        "fi",
        "    fi",
        f'    if [ "$nw" = missing ]; then rm -rf {new}; else find {new} -mindepth 1 -delete; fi',
        "  fi",
    ]
    if m.in_place:
        lines.append(f'  if [ "$moved" = 1 ]; then mv {keep} {old}; fi')
    if m.systemd and not m.in_place:
        lines.append(f'  if [ "$disabled" = 1 ]; then systemctl enable --quiet '
                     f"{sh(m.old_unit)}; fi")
    if m.tool:
        # the tool's own cleanup put back an old data directory it had already disabled
        lines.append(f"  if linked {old}; then say {linked_back}; exit \"$st\"; fi")
    lines += [
        f"  if {_start_old(m)}; then say {back}; else say {not_back}; fi",
        '  exit "$st"',
        "}",
        "trap recover EXIT",
        "trap 'exit 129' HUP",
        "trap 'exit 130' INT",
        "trap 'exit 143' TERM",
        "stopped=1",
    ]
    if m.systemd:
        lines.append(f"unit_stop {sh(m.old_unit)}")
    lines += [
        f'stop_dir "$ob" {old}',
        f'if running {old}; then say {still}; exit 1; fi',
    ]
    if m.tool:
        lines.append(m.tool)
    else:
        if m.in_place:
            lines.append(f"mv {old} {keep}")
        lines += [
            "made=1",
            f'if [ "$nw" = missing ]; then install -d -o postgres -g postgres -m 0700 {new}; fi',
            m.initdb,
        ]
    lines += _carry_config(m)
    if not m.tool:
        lines.append(
            f"(cd {sh(m.workdir)} && "
            + sh("runuser", "-u", "postgres", "--", f"{m.new_bin}/pg_upgrade", "-b")
            + ' "$ob" ' + sh("-B", m.new_bin, "-d", m.keep, "-D", m.new_data,
                              *(["--link"] if m.link else [])) + ")")
    lines.append("started=1")
    if m.systemd:
        unit = sh(m.new_unit)
        lines += [
            f"systemctl start {unit}",
            f"if ! systemctl is-enabled --quiet {unit}; then enabled=1; "
            f"systemctl enable --quiet {unit}; fi",
        ]
        if not m.in_place:
            lines.append(f"if systemctl is-enabled --quiet {sh(m.old_unit)}; then disabled=1; "
                         f"systemctl disable --quiet {sh(m.old_unit)}; fi")
    else:
        lines.append(f"start_dir {nb} {new} {sh(m.log(m.new_data))}")
    done = sh(f"PostgreSQL {m.to} serves from {m.new_data} on port {m.port}; PostgreSQL "
              f"{m.old_major} kept, stopped, in {m.keep}")
    lines += ["trap - EXIT", f"printf '%s\\n' {done}"]
    return "\n".join(lines) + "\n"


def rollback_script(m: DataDirUpgrade) -> str:
    """Root shell: the old cluster serves again on its port (its data back where its
    service expects it, its unit enabled, or its own pg_ctl where the package upgrade
    replaced the programs its unit runs); the new cluster, if it was made, stopped, not
    started at boot, its data kept (in place: moved to `new_kept`). Refuses (exit 3,
    nothing changed) an old data directory that pg_upgrade --link disabled, or none."""
    old, keep, new = sh(m.old_data), sh(m.keep), sh(m.new_data)
    gone = sh(f"there is no PostgreSQL {m.old_major} data directory to go back to "
              f"({m.keep}; removed with --drop-old?). Nothing was changed")
    linked = _linked(m, '"$at"', "Nothing was changed; restore the backup taken before the "
                     "upgrade instead (pg_restore)")
    no_old = sh(f"PostgreSQL {m.old_major}'s programs were not found in "
                f"{', '.join(m.old_bins)}: install {m.old_programs}. Nothing was changed")
    lines = [
        _prelude(m).rstrip("\n"),
        "# where the old cluster is: kept by the upgrade, or back already",
        f"if [ \"$(pgv {keep})\" = {m.old_major} ]; then at={keep}",
    ]
    if m.in_place:
        lines.append(f"elif [ \"$(pgv {old})\" = {m.old_major} ]; then at={old}")
    lines += [
        f"else refuse {gone}; fi",
        f'if linked "$at"; then refuse {linked}; fi',
        _find_old_bin(m).rstrip("\n"),
        f'[ -n "$ob" ] || refuse {no_old}',
    ]
    if m.in_place:
        taken = sh(f"{m.new_kept} exists: the new cluster's data cannot be kept there. "
                   "Nothing was changed; move it away")
        lines.append(f'if [ "$at" = {keep} ] && {{ [ -e {new} ] || [ -L {new} ]; }} && '
                     f"{{ [ -e {sh(m.new_kept)} ] || [ -L {sh(m.new_kept)} ]; }}; "
                     f"then refuse {taken}; fi")
    lines.append("# the new cluster, if it was made: stopped, not started at boot, kept")
    unit = sh(m.new_unit)
    stop_new = f"stop_dir {sh(m.new_bin)} {new}"
    if m.in_place:
        # the new cluster sits where the old one goes back; its unit is the old one's
        if m.systemd:
            stop_new = f"unit_stop {unit}; {stop_new}"
        lines.append(f"if [ \"$(pgv {new})\" = {m.to} ]; then {stop_new}; fi")
        if m.systemd:
            lines.append(f'if [ -z "$ou" ] && systemctl is-enabled --quiet {sh(m.new_unit)}; '
                         f"then systemctl disable --quiet {sh(m.new_unit)}; fi")
        lines += [
            f'if [ "$at" = {keep} ]; then',
            f"  if [ -e {new} ] || [ -L {new} ]; then mv {new} {sh(m.new_kept)}; fi",
            f"  mv {keep} {old}",
            "fi",
        ]
    else:
        if m.systemd:
            lines += [f"unit_stop {unit}",
                      f"if systemctl is-enabled --quiet {unit}; then "
                      f"systemctl disable --quiet {unit}; fi"]
        lines.append(f"if [ \"$(pgv {new})\" = {m.to} ]; then {stop_new}; fi")
    lines.append(f"# PostgreSQL {m.old_major} serves again, on port {m.port} (its own "
                 "configuration: the upgrade never changed it)")
    if m.systemd:
        lines.append('if [ -n "$ou" ]; then systemctl enable --quiet "$ou"; fi')
    lines.append(f"if ! running {old}; then {_start_old(m)}; fi")
    done = sh(f"PostgreSQL {m.old_major} serves from {m.old_data} on port {m.port} again; "
              f"PostgreSQL {m.to}'s data kept, stopped, in {m.new_kept}")
    lines.append(f"printf '%s\\n' {done}")
    return "\n".join(lines) + "\n"


def drop_old_script(m: DataDirUpgrade) -> str:
    """Root shell: the old data directory an upgrade kept, removed; only a stopped one
    holding the old major (exit 3 otherwise, nothing removed), never the one the new
    cluster serves from; nothing to do when it is gone already."""
    keep = sh(m.keep)
    other = sh(f"{m.keep} holds no PostgreSQL {m.old_major} cluster: it is not the copy an "
               "upgrade kept. Nothing was removed")
    serving = sh(f"{m.keep} is the data directory PostgreSQL {m.to} serves from. Nothing was "
                 "removed")
    up = sh(f"PostgreSQL {m.old_major}'s cluster in {m.keep} is running: it is not the stopped "
            "copy an upgrade left (rolled back?). Nothing was removed")
    gone = sh(f"{m.keep} is gone already: nothing to remove")
    lines = [
        _prelude(m).rstrip("\n"),
        f"if [ ! -e {keep} ] && [ ! -L {keep} ]; then printf '%s\\n' {gone}; exit 0; fi",
        f"[ \"$(pgv {keep})\" = {m.old_major} ] || refuse {other}",
        f'[ "$(readlink -f {keep})" != "$(readlink -f {sh(m.new_data)} || true)" ] '
        f"|| refuse {serving}",
        f"if running {keep}; then refuse {up}; fi",
    ]
    if m.systemd and not m.in_place:
        lines.append(f"if systemctl is-active --quiet {sh(m.old_unit)}; then refuse {up}; fi")
    lines.append(f"rm -rf {keep}")
    lines.append(f"printf '%s\\n' {sh(f'removed {m.keep} (PostgreSQL {m.old_major})')}")
    return "\n".join(lines) + "\n"
