"""The upgrade plans of the data-directory families (Fedora/RHEL, Arch), as tables.

These families' upgrades CANNOT run for real on this machine's test bed: its Fedora and
Arch hosts are layout emulations on Debian 12 (testbed/emulations.py) that carry Debian's
PostgreSQL 15 only, without any other major's binaries (no postgresql-upgrade, no
postgresql-old-upgrade, no PGDG packages), so pg_upgrade has nothing to move to there.
The plans are therefore table-tested: per case (Fedora's own packages, Fedora's PGDG
layout, EL, Arch; copy and --link; ports like 5433) the description, the packages, the
commands in their order, the quoting, the port, the link flag, rollback's --link refusal,
drop_old's running check, and that every script parses (`sh -n`, `bash -n`).

The shell logic those scripts share (a failure bringing the old cluster back, rollback,
drop_old) is also run for real, on scratch directories with stand-ins for pg_ctl, initdb,
pg_upgrade, runuser and systemctl: DataDirUpgrade with temporary paths. That proves the
shell, not the distributions' tools.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from installer.desired import pgconf
from installer.desired.upgrade import Cluster
from installer.errors import UnsupportedDistroError
from installer.host.distros.base import UpgradePlan
from installer.host.distros.datadir_upgrade import (
    DataDirUpgrade,
    drop_old_script,
    rollback_script,
    upgrade_script,
)
from installer.transport.shell import sh
from tests.unit.test_distros import strategy

SETUP_OPTIONS = ("PGSETUP_INITDB_OPTIONS='--auth-host=scram-sha-256 --auth-local=peer "
                 "--encoding=UTF8 --locale=C.UTF-8'\" $cs\"")
ARCH_INITDB = ("cd / && runuser -u postgres -- initdb --locale=C.UTF-8 --encoding=UTF8 "
               "--auth-local=peer --auth-host=scram-sha-256 $cs -D /var/lib/postgres/data")
INCLUDE = (f"printf '%s\\n' '{pgconf.INCLUDE_MARK}' "
           "'include_dir = '\"'\"'conf.d'\"'\"''")


@dataclass(frozen=True)
class Case:
    sample: str  # an os-release of tests.unit.test_distros
    old: Cluster
    to: int
    link: bool
    systemd: bool
    description: str
    packages: list[str]
    #: what the script runs, in this order (each a substring of the script)
    order: list[str]
    #: pg_upgrade as the script runs it ("" when the family's tool runs it)
    pg_upgrade: str
    #: the rollback's steps, in this order
    rollback: list[str]
    #: the old data directory drop_old removes, and the unit it checks (side by side)
    kept: str
    old_unit: str = ""
    new_parent: str = "/var/lib/pgsql"
    absent: list[str] = field(default_factory=list)


def pgdg_steps(old: int, new: int, port: int, own_old: bool = False,
               own_new: bool = False) -> list[str]:
    """Fedora/EL side by side: the PGDG layout (or the release's own) on both ends."""
    od = "/var/lib/pgsql/data" if own_old else f"/var/lib/pgsql/{old}/data"
    nd = "/var/lib/pgsql/data" if own_new else f"/var/lib/pgsql/{new}/data"
    setup = ("postgresql-setup --initdb" if own_new
             else f"/usr/pgsql-{new}/bin/postgresql-{new}-setup initdb")
    return [
        f'stop_dir "$ob" {od}',
        f"install -d -o postgres -g postgres -m 0700 {nd}",
        f"{SETUP_OPTIONS} {setup}",
        f"cp -p {od}/pg_hba.conf {nd}/pg_hba.conf",
        f"cp -pR {od}/conf.d {nd}/conf.d",
        f"'port = {port}' >> {nd}/postgresql.conf",
        f"{INCLUDE} >> {nd}/postgresql.conf",
    ]


CASES = {
    "fedora own, copy": Case(
        "fedora40", Cluster(15, "/var/lib/pgsql/data", 5432, True, True), 16, False, True,
        "postgresql-setup --upgrade with PGSETUP_PGUPGRADE_OPTIONS=--copy "
        "(/var/lib/pgsql/data, PostgreSQL 15 -> 16)",
        ["postgresql-server", "postgresql-contrib", "postgresql-upgrade"],
        ["unit_stop postgresql\n", 'stop_dir "$ob" /var/lib/pgsql/data',
         f"{SETUP_OPTIONS} PGSETUP_PGUPGRADE_OPTIONS=--copy postgresql-setup --upgrade\n",
         "cp -p /var/lib/pgsql/data-old/pg_hba.conf /var/lib/pgsql/data/pg_hba.conf",
         "'port = 5432' >> /var/lib/pgsql/data/postgresql.conf",
         f"{INCLUDE} >> /var/lib/pgsql/data/postgresql.conf",
         "systemctl start postgresql\n", "systemctl enable --quiet postgresql;"],
        "",
        ["unit_stop postgresql; stop_dir /usr/bin /var/lib/pgsql/data",
         "systemctl disable --quiet postgresql",
         "mv /var/lib/pgsql/data /var/lib/pgsql/data-16",
         "mv /var/lib/pgsql/data-old /var/lib/pgsql/data",
         'start_dir "$ob" /var/lib/pgsql/data /var/lib/pgsql/pg_ctl.log'],
        "/var/lib/pgsql/data-old",
        absent=["mv /var/lib/pgsql/data /var/lib/pgsql/data-old"]),
    "fedora own, link, port 5433": Case(
        "fedora40", Cluster(15, "/var/lib/pgsql/data", 5433, True, True), 16, True, True,
        "postgresql-setup --upgrade (/var/lib/pgsql/data, PostgreSQL 15 -> 16)",
        ["postgresql-server", "postgresql-contrib", "postgresql-upgrade"],
        ['stop_dir "$ob" /var/lib/pgsql/data', f"{SETUP_OPTIONS} postgresql-setup --upgrade\n",
         "cp -p /var/lib/pgsql/data-old/pg_hba.conf /var/lib/pgsql/data/pg_hba.conf",
         "'port = 5433' >> /var/lib/pgsql/data/postgresql.conf",
         "systemctl start postgresql\n"],
        "",
        ["mv /var/lib/pgsql/data /var/lib/pgsql/data-16",
         "mv /var/lib/pgsql/data-old /var/lib/pgsql/data"],
        "/var/lib/pgsql/data-old",
        absent=["PGSETUP_PGUPGRADE_OPTIONS"]),
    "fedora pgdg 15 to pgdg 17, port 5433": Case(
        "fedora40", Cluster(15, "/var/lib/pgsql/15/data", 5433, True, True), 17, False, True,
        "/usr/pgsql-17/bin/postgresql-17-setup initdb, pg_upgrade -b /usr/pgsql-15/bin -B "
        "/usr/pgsql-17/bin (/var/lib/pgsql/15/data -> /var/lib/pgsql/17/data, "
        "PostgreSQL 15 -> 17)",
        ["postgresql17-server", "postgresql17-contrib"],
        ["unit_stop postgresql-15\n", *pgdg_steps(15, 17, 5433),
         "systemctl start postgresql-17\n", "systemctl enable --quiet postgresql-17;",
         "systemctl disable --quiet postgresql-15;"],
        "(cd /var/lib/pgsql && runuser -u postgres -- /usr/pgsql-17/bin/pg_upgrade -b \"$ob\" "
        "-B /usr/pgsql-17/bin -d /var/lib/pgsql/15/data -D /var/lib/pgsql/17/data)",
        ["unit_stop postgresql-17\n", "systemctl disable --quiet postgresql-17",
         "stop_dir /usr/pgsql-17/bin /var/lib/pgsql/17/data",
         'systemctl enable --quiet "$ou"', 'systemctl start "$ou"'],
        "/var/lib/pgsql/15/data", "postgresql-15",
        absent=["mv /var/lib/pgsql/15/data"]),
    "fedora pgdg 15 to the release's own 16": Case(
        "fedora40", Cluster(15, "/var/lib/pgsql/15/data", 5432, True, True), 16, True, True,
        "postgresql-setup --initdb, pg_upgrade -b /usr/pgsql-15/bin -B /usr/bin --link "
        "(/var/lib/pgsql/15/data -> /var/lib/pgsql/data, PostgreSQL 15 -> 16)",
        ["postgresql-server", "postgresql-contrib"],
        ["unit_stop postgresql-15\n", *pgdg_steps(15, 16, 5432, own_new=True),
         "systemctl start postgresql\n", "systemctl disable --quiet postgresql-15;"],
        "(cd /var/lib/pgsql && runuser -u postgres -- /usr/bin/pg_upgrade -b \"$ob\" -B "
        "/usr/bin -d /var/lib/pgsql/15/data -D /var/lib/pgsql/data --link)",
        ["unit_stop postgresql\n", "stop_dir /usr/bin /var/lib/pgsql/data",
         'systemctl start "$ou"'],
        "/var/lib/pgsql/15/data", "postgresql-15"),
    "EL own 13 to pgdg 16, link, no systemd": Case(
        "rhel9", Cluster(13, "/var/lib/pgsql/data", 5432, True, True), 16, True, False,
        "/usr/pgsql-16/bin/postgresql-16-setup initdb, pg_upgrade -b /usr/bin -B "
        "/usr/pgsql-16/bin --link (/var/lib/pgsql/data -> /var/lib/pgsql/16/data, "
        "PostgreSQL 13 -> 16)",
        ["postgresql16-server", "postgresql16-contrib"],
        [*pgdg_steps(13, 16, 5432, own_old=True),
         "start_dir /usr/pgsql-16/bin /var/lib/pgsql/16/data /var/lib/pgsql/16/pg_ctl.log"],
        "(cd /var/lib/pgsql && runuser -u postgres -- /usr/pgsql-16/bin/pg_upgrade -b \"$ob\" "
        "-B /usr/pgsql-16/bin -d /var/lib/pgsql/data -D /var/lib/pgsql/16/data --link)",
        ["stop_dir /usr/pgsql-16/bin /var/lib/pgsql/16/data",
         'start_dir "$ob" /var/lib/pgsql/data /var/lib/pgsql/pg_ctl.log'],
        "/var/lib/pgsql/data",
        absent=["systemctl", "systemd-run"]),
    "EL own 12 to the release's own 13, copy (before 16: pg_upgrade itself)": Case(
        "rocky9", Cluster(12, "/var/lib/pgsql/data", 5432, True, True), 13, False, True,
        "pg_upgrade -b /usr/lib64/pgsql/postgresql-12/bin -B /usr/bin (/var/lib/pgsql/data, "
        "PostgreSQL 12 -> 13)",
        ["postgresql-server", "postgresql-contrib", "postgresql-upgrade"],
        ['stop_dir "$ob" /var/lib/pgsql/data', "mv /var/lib/pgsql/data /var/lib/pgsql/data-old",
         "install -d -o postgres -g postgres -m 0700 /var/lib/pgsql/data",
         f"{SETUP_OPTIONS} postgresql-setup --initdb",
         "cp -p /var/lib/pgsql/data-old/pg_hba.conf /var/lib/pgsql/data/pg_hba.conf",
         "'port = 5432' >> /var/lib/pgsql/data/postgresql.conf", "systemctl start postgresql\n"],
        "(cd /var/lib/pgsql && runuser -u postgres -- /usr/bin/pg_upgrade -b \"$ob\" -B "
        "/usr/bin -d /var/lib/pgsql/data-old -D /var/lib/pgsql/data)",
        ["mv /var/lib/pgsql/data /var/lib/pgsql/data-13",
         "mv /var/lib/pgsql/data-old /var/lib/pgsql/data"],
        "/var/lib/pgsql/data-old",
        absent=["postgresql-setup --upgrade"]),
    "rocky pgdg 15 to pgdg 16, link, port 6543": Case(
        "rocky9", Cluster(15, "/var/lib/pgsql/15/data", 6543, True, True), 16, True, True,
        "/usr/pgsql-16/bin/postgresql-16-setup initdb, pg_upgrade -b /usr/pgsql-15/bin -B "
        "/usr/pgsql-16/bin --link (/var/lib/pgsql/15/data -> /var/lib/pgsql/16/data, "
        "PostgreSQL 15 -> 16)",
        ["postgresql16-server", "postgresql16-contrib"],
        ["unit_stop postgresql-15\n", *pgdg_steps(15, 16, 6543), "systemctl start postgresql-16\n"],
        "(cd /var/lib/pgsql && runuser -u postgres -- /usr/pgsql-16/bin/pg_upgrade -b \"$ob\" "
        "-B /usr/pgsql-16/bin -d /var/lib/pgsql/15/data -D /var/lib/pgsql/16/data --link)",
        ["unit_stop postgresql-16\n", 'systemctl start "$ou"'],
        "/var/lib/pgsql/15/data", "postgresql-15"),
    "arch 16 to 17, copy": Case(
        "arch", Cluster(16, "/var/lib/postgres/data", 5432, True, True), 17, False, True,
        "pg_upgrade -b /opt/pgsql-16/bin -B /usr/bin (/var/lib/postgres/data, "
        "PostgreSQL 16 -> 17)",
        ["postgresql", "postgresql-old-upgrade"],
        ["unit_stop postgresql\n", 'stop_dir "$ob" /var/lib/postgres/data',
         "mv /var/lib/postgres/data /var/lib/postgres/olddata-16",
         "install -d -o postgres -g postgres -m 0700 /var/lib/postgres/data", ARCH_INITDB,
         "cp -p /var/lib/postgres/olddata-16/pg_hba.conf /var/lib/postgres/data/pg_hba.conf",
         "cp -pR /var/lib/postgres/olddata-16/conf.d /var/lib/postgres/data/conf.d",
         "'port = 5432' >> /var/lib/postgres/data/postgresql.conf",
         f"{INCLUDE} >> /var/lib/postgres/data/postgresql.conf",
         "systemctl start postgresql\n", "systemctl enable --quiet postgresql;"],
        "(cd /var/lib/postgres && runuser -u postgres -- /usr/bin/pg_upgrade -b \"$ob\" -B "
        "/usr/bin -d /var/lib/postgres/olddata-16 -D /var/lib/postgres/data)",
        ["unit_stop postgresql; stop_dir /usr/bin /var/lib/postgres/data",
         "systemctl disable --quiet postgresql",
         "mv /var/lib/postgres/data /var/lib/postgres/data-17",
         "mv /var/lib/postgres/olddata-16 /var/lib/postgres/data",
         'start_dir "$ob" /var/lib/postgres/data /var/lib/postgres/pg_ctl.log'],
        "/var/lib/postgres/olddata-16", new_parent="/var/lib/postgres"),
    "arch 16 to 17, link, port 5433, no systemd": Case(
        "arch", Cluster(16, "/var/lib/postgres/data", 5433, True, True), 17, True, False,
        "pg_upgrade -b /opt/pgsql-16/bin -B /usr/bin --link (/var/lib/postgres/data, "
        "PostgreSQL 16 -> 17)",
        ["postgresql", "postgresql-old-upgrade"],
        ['stop_dir "$ob" /var/lib/postgres/data',
         "mv /var/lib/postgres/data /var/lib/postgres/olddata-16", ARCH_INITDB,
         "'port = 5433' >> /var/lib/postgres/data/postgresql.conf",
         "start_dir /usr/bin /var/lib/postgres/data /var/lib/postgres/pg_ctl.log"],
        "(cd /var/lib/postgres && runuser -u postgres -- /usr/bin/pg_upgrade -b \"$ob\" -B "
        "/usr/bin -d /var/lib/postgres/olddata-16 -D /var/lib/postgres/data --link)",
        ["stop_dir /usr/bin /var/lib/postgres/data",
         "mv /var/lib/postgres/olddata-16 /var/lib/postgres/data",
         'start_dir "$ob" /var/lib/postgres/data /var/lib/postgres/pg_ctl.log'],
        "/var/lib/postgres/olddata-16", new_parent="/var/lib/postgres",
        absent=["systemctl", "systemd-run"]),
}


def plan_of(c: Case) -> UpgradePlan:
    # as `chatalot-db upgrade --to N` builds it: the run wants N (pg_version)
    s = strategy(c.sample, c.to, systemd=c.systemd)
    return s.upgrade_plan(c.old, c.to, link=c.link)


def in_order(text: str, parts: list[str]) -> None:
    at = 0
    for p in parts:
        found = text.find(p, at)
        assert found >= 0, f"{p!r} not found (in order) in:\n{text}"
        at = found + len(p)


def body(script: str) -> str:
    """The script after its shell functions (the first comment line on)."""
    return script[script.index("\n# "):]


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_plan(case: Case) -> None:
    p = plan_of(case)
    assert p.description == case.description
    assert p.packages == case.packages
    assert p.old_data_dir == case.old.name
    assert p.new_parent == case.new_parent
    for script in (p.script, p.rollback, p.drop_old):
        assert script.startswith("set -eu\ncd /\n")
    in_order(body(p.script), case.order)
    for text in case.absent:
        assert text not in body(p.script)
    upgrades = [ln for ln in p.script.splitlines() if "pg_upgrade -b" in ln]
    assert upgrades == ([case.pg_upgrade] if case.pg_upgrade else [])
    in_order(body(p.rollback), case.rollback)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_every_script_parses(case: Case, shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell}")
    p = plan_of(case)
    for script in (p.script, p.rollback, p.drop_old):
        r = subprocess.run([shell, "-n", "-c", script], capture_output=True, text=True,
                           check=False)
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_the_link_flag_and_its_refusals(case: Case) -> None:
    p = plan_of(case)
    s = body(p.script)
    if case.pg_upgrade:
        assert case.pg_upgrade.endswith(" --link)") == case.link
    else:  # postgresql-setup --upgrade links in place; copy mode overrides it
        assert ("PGSETUP_PGUPGRADE_OPTIONS=--copy" in s) == (not case.link)
    # an old data directory an earlier --link disabled stops the upgrade before any change
    refuse = s.index(f"if linked {case.old.name}; then refuse ")
    assert refuse < s.index("stopped=1\n")
    # and the failure path never removes the new data once pg_upgrade --link disabled the
    # old one: that check comes before the removal
    assert s.index("  if linked ") < s.index("rm -rf ")


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_rollback_refuses_a_linked_old_cluster_before_any_change(case: Case) -> None:
    r = body(plan_of(case).rollback)
    refuse = r.index('if linked "$at"; then refuse ')
    for change in ("unit_stop ", "stop_dir ", "mv ", "systemctl ", "start_dir "):
        if change in r:
            assert refuse < r.index(change), change
    assert "refuse() { printf '%s\\n' \"$1\" >&2; exit 3; }" in plan_of(case).rollback


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_drop_old_checks_the_old_cluster_is_stopped(case: Case) -> None:
    d = plan_of(case).drop_old
    kept = case.kept
    remove = d.index(f"rm -rf {kept}\n")
    assert d.index(f"if running {kept}; then refuse ") < remove
    assert d.index(f'[ "$(pgv {kept})" = {case.old.major} ] || refuse ') < remove
    if case.old_unit:
        assert d.index(f"if systemctl is-active --quiet {case.old_unit}; then refuse ") < remove
    assert d.count("rm -rf") == 1


def test_fedora_refusals() -> None:
    s = strategy("fedora40", 17)
    with pytest.raises(UnsupportedDistroError, match=r"in /srv/pg \(PostgreSQL 15\)"):
        s.upgrade_plan(Cluster(15, "/srv/pg", 5432, True, True), 17, link=False)
    with pytest.raises(UnsupportedDistroError, match="only goes to a newer major"):
        s.upgrade_plan(Cluster(17, "/var/lib/pgsql/17/data", 5432, True, True), 16, link=False)


def test_arch_upgrades_only_to_the_major_pacman_installs_from_the_one_before() -> None:
    s = strategy("arch", 17)
    with pytest.raises(UnsupportedDistroError, match="Arch packages one PostgreSQL major, 17"):
        s.upgrade_plan(Cluster(16, "/var/lib/postgres/data", 5432, True, True), 18, link=False)
    with pytest.raises(UnsupportedDistroError, match=r"previous major's programs only \(16\)"):
        s.upgrade_plan(Cluster(15, "/var/lib/postgres/data", 5432, True, True), 17, link=False)
    with pytest.raises(UnsupportedDistroError, match="upgrades /var/lib/postgres/data only"):
        s.upgrade_plan(Cluster(16, "/srv/pg", 5432, True, True), 17, link=False)


def test_rollback_and_drop_old_plans_for_the_kept_cluster() -> None:
    # --rollback / --drop-old build the plan for the kept old cluster and the serving
    # major, without pg_version (the inventory may not name one)
    arch = strategy("arch").upgrade_plan(
        Cluster(16, "/var/lib/postgres/olddata-16", 5432, False, None), 17, link=False)
    assert arch.old_data_dir == "/var/lib/postgres/olddata-16"
    assert "rm -rf /var/lib/postgres/olddata-16\n" in arch.drop_old
    own = strategy("fedora40").upgrade_plan(
        Cluster(15, "/var/lib/pgsql/data-old", 5432, False, None), 16, link=False)
    assert "mv /var/lib/pgsql/data-old /var/lib/pgsql/data" in own.rollback


def test_new_checksums_follow_the_old_cluster() -> None:
    pg18 = plan_of(dataclasses.replace(
        CASES["fedora pgdg 15 to pgdg 17, port 5433"], to=18)).script
    assert "case $ck in 0) cs=--no-data-checksums ;; '') cs='' ;; *) cs=--data-checksums" in pg18
    arch = plan_of(CASES["arch 16 to 17, copy"]).script
    assert "case $ck in 0) cs='' ;; '') cs=--data-checksums ;; *) cs=--data-checksums" in arch


# --- the shared shell logic, run for real on scratch directories ---------------------------

STAND_INS = {
    "runuser": '#!/bin/sh\nwhile [ "$1" != -- ]; do shift; done; shift; exec "$@"\n',
    "systemd-run": '#!/bin/sh\nwhile [ "$1" != -- ]; do shift; done; shift; exec "$@"\n',
    "systemctl": '#!/bin/sh\necho "systemctl $*" >> "$BED/log"\n'
                 "case $1 in is-active|is-enabled) exit 1 ;; esac\n",
    "install": '#!/bin/sh\nfor a; do d=$a; done; mkdir -p "$d"\n',
    "initdb": '#!/bin/sh\necho "initdb $*" >> "$BED/log"\n[ -z "${FAIL_INITDB:-}" ] || exit 1\n'
              'for a; do d=$a; done; mkdir -p "$d/global"; echo "$NEW_MAJOR" > "$d/PG_VERSION"\n'
              'echo "# initdb" > "$d/postgresql.conf"; echo "local all all peer" > '
              '"$d/pg_hba.conf"; echo c > "$d/global/pg_control"\n',
}


def pg_ctl(major: int) -> str:
    """A pg_ctl stand-in: start runs a process named postgres (postmaster.pid, its PID in
    $BED/pids for the teardown), stop ends it."""
    return (
        f'#!/bin/sh\necho "pg_ctl {major} $*" >> "$BED/log"\n'
        'd=; p=; for a; do [ "$p" = -D ] && d=$a; p=$a; done\n'
        'case " $* " in\n'
        f'*" start "*) [ "$(cat "$d/PG_VERSION")" = {major} ] && [ -f "$d/global/pg_control" ]'
        f' && [ -z "${{FAIL_START_{major}:-}}" ] || exit 1\n'
        '  "$BED/proc/postgres" 120 >/dev/null 2>&1 & echo $! > "$d/postmaster.pid"\n'
        '  echo $! >> "$BED/pids" ;;\n'
        '*" stop "*) kill "$(head -n 1 "$d/postmaster.pid")"; rm -f "$d/postmaster.pid" ;;\n'
        "esac\n"
    )


PG_UPGRADE = (
    '#!/bin/sh\necho "pg_upgrade $*" >> "$BED/log"\n'
    "while [ $# -gt 0 ]; do case $1 in -d) od=$2; shift ;; -D) nd=$2; shift ;; "
    "--link) link=1 ;; esac; shift; done\n"
    'mkdir -p "$nd/pg_upgrade_output.d"; echo log > "$nd/pg_upgrade_output.d/server.log"\n'
    '[ -z "${FAIL_CHECK:-}" ] || exit 1\n'
    'if [ -n "${link:-}" ]; then mv "$od/global/pg_control" "$od/global/pg_control.old"; fi\n'
    '[ -z "${FAIL_TRANSFER:-}" ] || exit 1\n'
    'cp "$od/rows" "$nd/rows"; rm -rf "$nd/pg_upgrade_output.d"\n'
)


@dataclass
class Bed:
    root: Path

    def path(self, name: str) -> str:
        return str(self.root / name)

    def model(self, *, in_place: bool, link: bool = False, systemd: bool = False,
              data: str = "var/data") -> DataDirUpgrade:
        old = self.path(data)
        new = old if in_place else self.path("var/new data")
        return DataDirUpgrade(
            old_major=16, to=17, port=5433, link=link, systemd=systemd, old_data=old,
            keep=self.path("var/olddata-16") if in_place else old,
            old_bins=(self.path("nowhere"), self.path("old/bin")), old_unit="pg-old",
            old_unit_bin=self.path("nowhere"), new_data=new, new_bin=self.path("new/bin"),
            new_unit="pg-new", new_kept=self.path("var/data-17") if in_place else new,
            workdir=self.path("var"), initdb=f"initdb $cs -D {sh(new)}",
            default_checksums="--data-checksums", old_programs="old", new_programs="new")

    def old_cluster(self, m: DataDirUpgrade, *, running: bool = True) -> None:
        d = Path(m.old_data)
        (d / "global").mkdir(parents=True)
        (d / "conf.d").mkdir()
        (d / "PG_VERSION").write_text("16\n")
        (d / "global" / "pg_control").write_text("c")
        (d / "rows").write_text("precious")
        (d / "pg_hba.conf").write_text("# old rules\n")
        (d / "chatalot-server.crt").write_text("cert")
        (d / "conf.d" / "50-chatalot.conf").write_text("shared_buffers = 1GB\n")
        (d / "postgresql.conf").write_text("# old\n")
        if running:
            assert self.run(sh(self.path("old/bin/pg_ctl"), "-D", str(d), "start")).returncode == 0

    def run(self, script: str, **env: str) -> subprocess.CompletedProcess[str]:
        e = {**os.environ, "PATH": f"{self.root / 'stand-ins'}:{os.environ['PATH']}",
             "BED": str(self.root), "NEW_MAJOR": "17", **env}
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                              check=False, env=e)

    def alive(self, data: str) -> bool:
        try:
            pid = Path(data, "postmaster.pid").read_text().split()[0]
        except FileNotFoundError:
            return False
        comm = Path(f"/proc/{pid}/comm")
        return comm.exists() and comm.read_text().strip() == "postgres"

    def tree(self) -> list[str]:
        return sorted(str(p.relative_to(self.root / "var")) for p in
                      (self.root / "var").rglob("*") if p.name != "postmaster.pid")

    def log(self) -> str:
        f = self.root / "log"
        return f.read_text() if f.exists() else ""


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    root = tmp_path / "bed's root"  # a quote and a space: every path must be quoted
    for name, text in {**STAND_INS, "old/bin/pg_ctl": pg_ctl(16), "new/bin/pg_ctl": pg_ctl(17),
                       "new/bin/pg_upgrade": PG_UPGRADE}.items():
        f = root / ("stand-ins/" + name if "/" not in name else name)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        f.chmod(0o755)
    for major, where in ((16, "old/bin"), (17, "new/bin")):
        (root / where / "postgres").write_text(
            f'#!/bin/sh\necho "postgres (PostgreSQL) {major}.4"\n')
        (root / where / "pg_controldata").write_text(
            '#!/bin/sh\necho "Data page checksum version:           ${CK:-1}"\n')
        for f in (root / where).iterdir():
            f.chmod(0o755)
    (root / "proc").mkdir()
    shutil.copy("/bin/sleep", root / "proc" / "postgres")  # its comm is postgres
    (root / "var").mkdir()
    yield Bed(root)
    # the stand-in servers still running: each by its PID, and only while that PID is
    # still our copy of sleep (a PID of one stopped already may belong to another process)
    pids = root / "pids"
    for pid in pids.read_text().split() if pids.exists() else []:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/exe") == str(root / "proc" / "postgres"):
                os.kill(int(pid), signal.SIGTERM)


@pytest.mark.parametrize("in_place", [True, False], ids=["in place", "side by side"])
def test_upgrade_then_rollback_then_drop_old(bed: Bed, in_place: bool) -> None:
    m = bed.model(in_place=in_place)
    bed.old_cluster(m)
    r = bed.run(upgrade_script(m))
    assert r.returncode == 0, r.stderr
    assert bed.alive(m.new_data) and not bed.alive(m.keep)
    new = Path(m.new_data)
    assert (new / "rows").read_text() == "precious"
    assert (new / "pg_hba.conf").read_text() == "# old rules\n"
    assert (new / "chatalot-server.crt").read_text() == "cert"
    assert (new / "conf.d" / "50-chatalot.conf").read_text() == "shared_buffers = 1GB\n"
    assert (new / "postgresql.conf").read_text() == (
        "# initdb\n\n# chatalot-db upgrade: the port PostgreSQL 16 served on\nport = 5433\n"
        f"{pgconf.INCLUDE_MARK}\n{pgconf.INCLUDE_LINE}\n")
    assert "initdb --data-checksums -D" in bed.log()  # as the old cluster has them

    r = bed.run(rollback_script(m))
    assert r.returncode == 0, r.stderr
    assert bed.alive(m.old_data) and Path(m.old_data, "PG_VERSION").read_text() == "16\n"
    assert Path(m.new_kept, "PG_VERSION").read_text() == "17\n"  # kept, stopped
    assert not bed.alive(m.new_kept)
    assert bed.run(rollback_script(m)).returncode == 0  # twice: nothing more to do
    assert bed.alive(m.old_data)

    r = bed.run(drop_old_script(m))  # the old cluster serves again: never removed
    if in_place:
        assert (r.returncode, r.stdout.strip()) == (0, f"{m.keep} is gone already: nothing "
                                                       "to remove")
    else:
        assert r.returncode == 3 and "is running" in r.stderr
    assert Path(m.old_data, "rows").exists()


@pytest.mark.parametrize("in_place", [True, False], ids=["in place", "side by side"])
@pytest.mark.parametrize("fail", ["FAIL_INITDB", "FAIL_CHECK", "FAIL_START_17"])
def test_a_failed_upgrade_brings_the_old_cluster_back(bed: Bed, in_place: bool,
                                                      fail: str) -> None:
    m = bed.model(in_place=in_place)
    bed.old_cluster(m)
    before = bed.tree()
    r = bed.run(upgrade_script(m), **{fail: "1"})
    assert r.returncode == 1
    assert r.stderr.strip().endswith(f"PostgreSQL 16 serves from {m.old_data} on port 5433 "
                                     "again")
    assert bed.alive(m.old_data)
    after = [p for p in bed.tree() if not p.startswith("pg_upgrade_output.d-")]
    assert after == before  # the new data directory this run made is gone, nothing else
    if fail == "FAIL_CHECK":  # pg_upgrade's logs outlive the directory they were in
        assert any(p.startswith("pg_upgrade_output.d-") for p in bed.tree())


def test_a_failed_upgrade_empties_a_directory_it_found_empty_but_keeps_it(bed: Bed) -> None:
    m = bed.model(in_place=False)
    bed.old_cluster(m)
    Path(m.new_data).mkdir()  # as the package leaves it
    r = bed.run(upgrade_script(m), FAIL_START_17="1")
    assert r.returncode == 1 and bed.alive(m.old_data)
    assert Path(m.new_data).is_dir() and not any(Path(m.new_data).iterdir())


def test_initdb_never_runs_over_a_directory_holding_data(bed: Bed) -> None:
    m = bed.model(in_place=False)
    bed.old_cluster(m)
    Path(m.new_data).mkdir()
    Path(m.new_data, "someone's").write_text("x")
    r = bed.run(upgrade_script(m))
    assert r.returncode == 3 and "is not an empty directory" in r.stderr
    assert bed.alive(m.old_data) and " stop" not in bed.log()


def test_a_kept_old_copy_stops_an_in_place_upgrade(bed: Bed) -> None:
    m = bed.model(in_place=True)
    bed.old_cluster(m)
    Path(m.keep).mkdir()
    r = bed.run(upgrade_script(m))
    assert r.returncode == 3 and "--drop-old" in r.stderr and bed.alive(m.old_data)


@pytest.mark.parametrize("in_place", [True, False], ids=["in place", "side by side"])
def test_link_failure_after_the_old_was_disabled_keeps_both(bed: Bed, in_place: bool) -> None:
    m = bed.model(in_place=in_place, link=True)
    bed.old_cluster(m)
    r = bed.run(upgrade_script(m), FAIL_TRANSFER="1")
    assert r.returncode == 1 and "upgraded with pg_upgrade --link" in r.stderr
    assert Path(m.keep, "rows").exists() and Path(m.new_data, "PG_VERSION").exists()
    assert not bed.alive(m.keep)


def test_rollback_refuses_a_linked_old_data_directory_changing_nothing(bed: Bed) -> None:
    m = bed.model(in_place=True, link=True)
    bed.old_cluster(m)
    assert bed.run(upgrade_script(m)).returncode == 0
    before, log = bed.tree(), bed.log()
    r = bed.run(rollback_script(m))
    assert r.returncode == 3
    assert "upgraded with pg_upgrade --link" in r.stderr and "Nothing was changed" in r.stderr
    assert bed.tree() == before and bed.log() == log and bed.alive(m.new_data)


def test_rollback_of_a_new_cluster_never_made(bed: Bed) -> None:
    m = bed.model(in_place=False)
    bed.old_cluster(m, running=False)
    r = bed.run(rollback_script(m))
    assert r.returncode == 0, r.stderr
    assert bed.alive(m.old_data)


def test_drop_old_refuses_a_running_old_cluster_and_removes_a_stopped_one(bed: Bed) -> None:
    m = bed.model(in_place=False)
    bed.old_cluster(m)
    r = bed.run(drop_old_script(m))
    assert r.returncode == 3 and "is running" in r.stderr and Path(m.keep, "rows").exists()
    assert bed.run(sh(bed.path("old/bin/pg_ctl"), "-D", m.keep, "stop")).returncode == 0
    r = bed.run(drop_old_script(m))
    assert r.returncode == 0, r.stderr
    assert not Path(m.keep).exists()


def test_drop_old_never_removes_another_major(bed: Bed) -> None:
    m = bed.model(in_place=True)
    Path(m.keep).mkdir()
    Path(m.keep, "PG_VERSION").write_text("17\n")
    r = bed.run(drop_old_script(m))
    assert r.returncode == 3 and Path(m.keep, "PG_VERSION").exists()


def test_under_systemd_units_are_stopped_started_and_enabled(bed: Bed) -> None:
    m = bed.model(in_place=False, systemd=True)
    bed.old_cluster(m)
    r = bed.run(upgrade_script(m))
    assert r.returncode == 0, r.stderr
    calls = [ln for ln in bed.log().splitlines() if ln.startswith("systemctl")]
    assert calls == ["systemctl is-active --quiet pg-old", "systemctl start pg-new",
                     "systemctl is-enabled --quiet pg-new", "systemctl enable --quiet pg-new",
                     "systemctl is-enabled --quiet pg-old"]
