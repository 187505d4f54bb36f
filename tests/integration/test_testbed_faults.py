"""Faults on the test bed: the installer killed mid-run, a connection cut, a restart, a
held package-manager lock, two runs at once, and app data across reruns.

Two hosts of their own (debian12-flt, debian13-flt; with CHATALOT_TESTBED_SUFFIX `-h`,
debian12-flt-h ...) in a test bed of their own (state dir CHATALOT_TESTBED_FAULTS_DIR), as
test_testbed_fleet does: these tests reset, kill and cut hosts, which must not disturb the
session's hosts other modules use, and the module then runs beside another test bed.
Each test says which host it uses and how it leaves it; databases of their own (`flt_*`,
own env files) keep the main app out of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import REPO, TESTBED_DIR, booted_testbed, inventory, run_apply

pytestmark = pytest.mark.testbed

#: the host lock every apply run holds on its host (installer.fleet.runner.HOST_LOCK)
HOST_LOCK = "/run/lock/chatalot-db.lock"
_SUFFIX = os.environ.get("CHATALOT_TESTBED_SUFFIX", "")
D12, D13 = f"debian12-flt{_SUFFIX}", f"debian13-flt{_SUFFIX}"


@pytest.fixture(scope="module")
def bed() -> Iterator[Any]:
    state = os.environ.get("CHATALOT_TESTBED_FAULTS_DIR", TESTBED_DIR + "-faults")
    with booted_testbed([D12, D13], state, "faults test bed") as tb:
        yield tb


def _steps(doc: dict[str, Any], host: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in doc["hosts"][host]["steps"]}


def _sql(bed: Any, host: str, query: str, database: str) -> str:
    r = bed.ssh(host, f"cd / && runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 "
                      f"-d {database}", input=query)
    assert r.returncode == 0, r.stderr
    return str(r.stdout).strip()


def _drop(bed: Any, host: str, app: str) -> None:
    bed.ssh(host, f"cd / && command -v psql >/dev/null && runuser -u postgres -- psql -Xq "
                  f"-c 'DROP DATABASE IF EXISTS {app} WITH (FORCE)' "
                  f"-c 'DROP ROLE IF EXISTS {app}'; rm -f /etc/chatalot/{app}.env; true")


def _app_vars(app: str, **extra: str) -> dict[str, str]:
    return {"db_name": app, "db_user": app, "db_env_file": f"/etc/chatalot/{app}.env", **extra}


def _popen_apply(inv: Path, report: Path, *args: str) -> subprocess.Popen[str]:
    """`chatalot-db apply` as a child we can SIGKILL (its own session: only it is killed)."""
    if report.exists():
        report.unlink()
    return subprocess.Popen(
        [sys.executable, "-m", "installer", "apply", "-i", str(inv), "--json", str(report),
         *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)), start_new_session=True)


def _wait_until(what: str, probe: Any, timeout: float, p: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        if p.poll() is not None:
            out = p.stdout.read() if p.stdout else ""
            pytest.fail(f"apply ended (exit {p.returncode}) before {what}:\n{out[-3000:]}")
        time.sleep(0.2)
    p.kill()
    pytest.fail(f"timed out waiting for {what}")


def _sigkill(p: subprocess.Popen[str]) -> None:
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(30)
    if p.stdout:
        p.stdout.close()


def _changed(doc: dict[str, Any], host: str) -> int:
    return int(doc["hosts"][host]["changed"])


# ---------------------------------------------------------------------------
# the package install: killed; the package manager's lock held by another process
# ---------------------------------------------------------------------------

#: dpkg's status logger (`status-logger` in dpkg.cfg.d): the first time a postgresql-NN
#: package turns half-configured (its postinst about to run), it stops (SIGSTOP) the dpkg
#: running it and writes the dpkg's pid and that status line to FROZEN. The kill then
#: always lands in the middle of the configure pass, never before or after dpkg's work.
FREEZE_LOGGER = "/usr/local/sbin/chatalot-test-dpkg-freeze"
FREEZE_CFG = "/etc/dpkg/dpkg.cfg.d/zz-chatalot-test-freeze"
FROZEN = "/run/chatalot-test-dpkg-frozen"
FREEZE_SCRIPT = f"""#!/bin/sh
while IFS= read -r line; do
  case $line in
    "status: postgresql-"[0-9]*": half-configured")
      [ -e {FROZEN} ] && continue
      p=$PPID
      while [ "$p" -gt 1 ] && [ "$(cat /proc/$p/comm)" != dpkg ]; do
        p=$(cut -d' ' -f4 /proc/$p/stat)
      done
      kill -STOP "$p" && echo "$p $line" > {FROZEN} ;;
  esac
done
"""


def test_sigkill_during_package_install_then_rerun_converges(bed: Any, tmp_path: Path) -> None:
    """debian13, fresh: dpkg is frozen (SIGSTOP, by its status logger) the moment
    postgresql-NN turns half-configured; our process is killed -9 there, then dpkg and
    apt-get on the host. `dpkg --audit` then names the half-configured package; the rerun
    repairs dpkg (`dpkg --configure -a`, "finished an interrupted package run"), leaves
    `dpkg --audit` empty and converges; the next run changes nothing."""
    host = D13
    bed.reset(host)
    r = bed.ssh(host, f"cat > {FREEZE_LOGGER} && chmod 755 {FREEZE_LOGGER} && rm -f {FROZEN} "
                      f"&& echo 'status-logger={FREEZE_LOGGER}' > {FREEZE_CFG}",
                input=FREEZE_SCRIPT)
    assert r.returncode == 0, r.stderr
    inv = inventory(bed, tmp_path / "inv.ini", {host: "root"})
    try:
        p = _popen_apply(inv, tmp_path / "killed.json")

        def frozen() -> bool:
            return int(bed.ssh(host, f"test -s {FROZEN}", timeout=20).returncode) == 0

        _wait_until("dpkg to be frozen half-way through configuring postgresql", frozen, 600, p)
        _sigkill(p)
        # dpkg (stopped) and apt-get killed -9; the postinst dpkg was running is left to end
        # on its own (it was not stopped: as when dpkg alone is killed), before the rerun
        # ([f]: the pattern does not match this shell's own command line)
        scripts = "pgrep -f '/var/lib/dpkg/in[f]o/' >/dev/null"
        r = bed.ssh(host, f"rm -f {FREEZE_CFG}; pkill -9 -x dpkg; pkill -9 -x apt-get; "
                          f"for i in $(seq 1 600); do {scripts} || break; sleep 0.2; done; "
                          f"cat {FROZEN}; {scripts} && echo 'a maintainer script still runs'; "
                          "true", timeout=180)
    finally:
        bed.ssh(host, f"rm -f {FREEZE_CFG}; pkill -CONT -x dpkg; true")
    frozen_line = r.stdout.strip()
    assert frozen_line and "still runs" not in frozen_line, frozen_line
    package = frozen_line.split("status: ", 1)[1].split(":", 1)[0]  # postgresql-17
    audit = bed.ssh(host, "dpkg --audit").stdout
    # dpkg left the run half-done: the package it was configuring is half-configured
    assert "only half configured" in audit and f" {package} " in audit, audit

    start = time.monotonic()
    p1, doc1 = run_apply(inv, tmp_path / "rerun.json")
    assert p1.returncode == 0, p1.stdout + p1.stderr
    install = _steps(doc1, host)["install postgresql"]
    print(f"\nrerun after the kill: {time.monotonic() - start:.1f}s; dpkg was frozen at "
          f"{frozen_line!r}; install: {install['status']} ({install['reason']})")
    assert install["status"] == "changed"
    assert install["reason"].startswith("finished an interrupted package run"), install
    assert bed.ssh(host, "dpkg --audit").stdout.strip() == ""

    p2, doc2 = run_apply(inv, tmp_path / "again.json")
    assert p2.returncode == 0 and _changed(doc2, host) == 0, p2.stdout


#: holds dpkg's frontend lock as apt and dpkg take it (fcntl; flock(1) takes a flock(2)
#: lock, which apt never sees): prints "held", waits for an `apt-get install` to start,
#: holds the lock argv[1] seconds more, then prints what it saw as JSON and lets go. Ends
#: early when its stdin closes (the test gave up).
LOCK_HOLDER = r"""
import fcntl, json, os, select, sys, time

hold = float(sys.argv[1])


def dpkg_log_lines():
    with open("/var/log/dpkg.log", "rb") as f:
        return sum(1 for _ in f)


def test_gone(seconds):
    ready, _, _ = select.select([sys.stdin], [], [], seconds)
    return bool(ready) and not os.read(0, 1)


def apt_get_install():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"apt-get" and b"install" in argv:
            return pid
    return None


with open("/var/lib/dpkg/lock-frontend", "w") as lock:
    fcntl.lockf(lock, fcntl.LOCK_EX)
    lines_at_lock = dpkg_log_lines()
    print("held", flush=True)
    while (pid := apt_get_install()) is None:
        if test_gone(0.1):
            sys.exit("the test ended before apt-get install started")
    seen = time.monotonic()
    if test_gone(hold):
        sys.exit("the test ended while the lock was held")
    print(json.dumps({"apt_get_pid": int(pid), "alive_at_release": os.path.exists(f"/proc/{pid}"),
                      "held_after_apt_get_started": time.monotonic() - seen,
                      "dpkg_log_lines": [lines_at_lock, dpkg_log_lines()]}), flush=True)
"""


def test_apt_waits_for_a_held_dpkg_lock(bed: Any, tmp_path: Path) -> None:
    """debian12, fresh: another process holds dpkg's frontend lock (fcntl, as dpkg and apt
    take it) from before apply starts until apply's `apt-get install` has waited 8 s for it.
    apt-get is still there when the lock is let go, dpkg did nothing while it was held and
    its first action (dpkg.log's `startup`) comes after; the run succeeds."""
    host, hold = D12, 8.0
    bed.reset(host)
    assert bed.ssh(host, "cat > /run/chatalot-test-lock-holder.py",
                   input=LOCK_HOLDER).returncode == 0
    inv = inventory(bed, tmp_path / "inv.ini", {host: "root"})
    holder = subprocess.Popen(
        [*bed.ssh_argv(host), f"python3 /run/chatalot-test-lock-holder.py {hold:g}"],
        stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        p, doc = run_apply(inv, tmp_path / "apply.json")
    finally:
        if holder.stdin:
            holder.stdin.close()  # a holder still waiting for apt-get ends without a report
        seen = holder.stdout.read() if holder.stdout else ""
        holder.wait(30)
        if holder.stdout:
            holder.stdout.close()
    assert p.returncode == 0, p.stdout + p.stderr
    assert seen, f"the lock holder saw no apt-get install (exit {holder.returncode})"
    held = json.loads(seen)
    install = _steps(doc, host)["install postgresql"]
    print(f"\napply with dpkg's lock held: {held}; install step {install['seconds']:.1f}s "
          f"({install['reason']})")
    assert install["status"] == "changed"
    # apt-get install was waiting all along: alive after `hold` s, and dpkg did nothing
    assert held["alive_at_release"] and held["held_after_apt_get_started"] >= hold, held
    at_lock, at_release = held["dpkg_log_lines"]
    assert at_release == at_lock, held
    after = bed.ssh(host, f"tail -n +{at_release + 1} /var/log/dpkg.log").stdout.splitlines()
    assert after and after[0].split()[2:] == ["startup", "archives", "unpack"], after[:3]
    assert install["seconds"] >= hold


# ---------------------------------------------------------------------------
# two runs on one host; a held host lock
# ---------------------------------------------------------------------------

def test_two_applies_on_one_host_never_interleave(bed: Any, tmp_path: Path) -> None:
    """debian12 (provisioned above): two applies at once on a new app database; the
    second waits for the first's host lock, and its first step starts after the first's
    last step ended."""
    host, app = D12, "flt_two"
    _drop(bed, host, app)
    inv = inventory(bed, tmp_path / "inv.ini", {host: "root"}, None, **_app_vars(app))
    out: dict[str, tuple[subprocess.CompletedProcess[str], dict[str, Any]]] = {}

    def one(tag: str) -> None:
        out[tag] = run_apply(inv, tmp_path / f"{tag}.json")

    threads = [threading.Thread(target=one, args=(t,)) for t in ("a", "b")]
    try:
        for t in threads:
            t.start()
            time.sleep(0.3)
        for t in threads:
            t.join(600)
        for tag in ("a", "b"):
            assert out[tag][0].returncode == 0, out[tag][0].stdout + out[tag][0].stderr
        docs = sorted((out[t][1]["hosts"][host] for t in ("a", "b")),
                      key=lambda h: h["steps"][0]["started"])
        first, second = docs
        first_end = max(s["started"] + s["seconds"] for s in first["steps"])
        assert second["steps"][0]["started"] >= first_end, (first, second)
        assert second["lock_wait"] > 0 and first["lock_wait"] == 0
        assert first["changed"] > 0 and second["changed"] == 0  # the first did it all
        waited = [out[t][0].stdout for t in ("a", "b")
                  if "waiting for another chatalot-db run on this host" in out[t][0].stdout]
        assert len(waited) == 1
        print(f"\nsecond run waited {second['lock_wait']:.1f}s for the first")
    finally:
        _drop(bed, host, app)


def test_short_lock_timeout_fails_clearly(bed: Any, tmp_path: Path) -> None:
    """debian12: the host lock held (as another run would hold it); --lock-timeout 2
    fails that host (exit 2) naming the lock, and changes nothing."""
    host = D12
    inv = inventory(bed, tmp_path / "inv.ini", {host: "root"})
    # held until its stdin closes (as a run holds it): killing ssh frees it at once
    holder = subprocess.Popen(
        [*bed.ssh_argv(host), f"flock -x {HOST_LOCK} -c 'echo held; exec cat >/dev/null'"],
        stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        p, doc = run_apply(inv, tmp_path / "apply.json", "--lock-timeout", "2")
        took = time.monotonic() - start
    finally:
        if holder.stdin:
            holder.stdin.close()
        holder.wait(30)
        if holder.stdout:
            holder.stdout.close()
    assert p.returncode == 2, p.stdout + p.stderr
    h = doc["hosts"][host]
    assert h["state"] == "failed" and h["changed"] == 0
    assert [s["name"] for s in h["steps"]] == ["take the host lock"]
    assert f"another chatalot-db run holds the host lock {HOST_LOCK}" in h["error"]
    assert "--lock-timeout" in h["error"] and 2 <= took < 30
    assert "waiting for another chatalot-db run on this host" in p.stdout


# ---------------------------------------------------------------------------
# the migrations: killed in the middle
# ---------------------------------------------------------------------------

def test_sigkill_during_migrations_leaves_a_consistent_ledger(bed: Any, tmp_path: Path) -> None:
    """debian12: a migrations copy whose 26th file sleeps 3 s; apply killed -9 while it
    runs. The rerun finds every applied migration once, none dirty, and applies the rest;
    the next run changes nothing."""
    host, app = D12, "flt_mig"
    _drop(bed, host, app)
    source = tmp_path / "migrations"
    shutil.copytree(REPO / "migrations", source)
    slow = sorted(source.glob("026_*.sql"))[0]
    # first in the file: pg_stat_activity shows only a query's first 1024 bytes
    slow.write_text("SELECT pg_sleep(3);\n" + slow.read_text())
    inv = inventory(bed, tmp_path / "inv.ini", {host: "root"}, None,
                    **_app_vars(app, migrations_source=str(source)))
    try:
        p = _popen_apply(inv, tmp_path / "killed.json")

        def sleeping() -> bool:
            r = bed.ssh(host, "cd / && runuser -u postgres -- psql -XAt -c \"SELECT count(*) "
                              "FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3)%' "
                              "AND pid <> pg_backend_pid()\"", timeout=20)
            return r.stdout.strip() not in ("", "0")

        _wait_until("the slow migration to run", sleeping, 300, p)
        _sigkill(p)
        time.sleep(4)  # whatever the server still runs ends (committed or rolled back)
        before = _sql(bed, host, "SELECT count(*) FROM _sqlx_migrations", app)
        assert int(before) in (25, 26), before  # 26 whole, or rolled back whole

        p1, doc1 = run_apply(inv, tmp_path / "rerun.json")
        assert p1.returncode == 0, p1.stdout + p1.stderr
        assert _changed(doc1, host) > 0
        rows = _sql(bed, host, "SELECT count(*), count(DISTINCT version), "
                               "count(*) FILTER (WHERE NOT success) FROM _sqlx_migrations", app)
        assert rows == "52|52|0", rows
        p2, doc2 = run_apply(inv, tmp_path / "again.json")
        assert p2.returncode == 0 and _changed(doc2, host) == 0, p2.stdout
    finally:
        _drop(bed, host, app)


def test_sigkill_while_a_migration_waits_for_the_app_leaves_nothing_behind(
        bed: Any, tmp_path: Path) -> None:
    """debian12: the app holds `LOCK TABLE users IN ACCESS SHARE MODE` in an open
    transaction; apply (migration_lock_timeout=3s) is killed -9 while its ALTER TABLE waits
    behind it. Within the lock timeout the host-side psql and its backend are gone (nothing
    of ours outlives the run), the app's reads work, the migration is not in the ledger,
    and it is not applied unattended when the app's transaction ends; the rerun applies it."""
    host, app = D12, "flt_lock"
    _drop(bed, host, app)
    source = tmp_path / "migrations"
    source.mkdir()
    (source / "1_users.sql").write_text(
        "CREATE TABLE users (id bigint PRIMARY KEY);\nINSERT INTO users VALUES (1), (2), (3);\n")
    inv = inventory(bed, tmp_path / "inv.ini", {host: "root"}, None, **_app_vars(
        app, migrations_source=str(source), migration_lock_timeout="3s"))
    ours = ("SELECT count(*) FROM pg_stat_activity "  # apply names its session uniquely
            "WHERE application_name LIKE 'chatalot-db migrate%'")
    try:
        p0, _ = run_apply(inv, tmp_path / "first.json")
        assert p0.returncode == 0, p0.stdout + p0.stderr
        (source / "2_user_names.sql").write_text("ALTER TABLE users ADD COLUMN name text;\n")
        bed.ssh(host, f"cd / && setsid -f runuser -u postgres -- env PGAPPNAME=flt-blocker "
                      f"psql -X -d {app} -c 'BEGIN; LOCK TABLE users IN ACCESS SHARE MODE; "
                      "SELECT pg_sleep(600);' >/dev/null 2>&1 </dev/null", check=True)
        p = _popen_apply(inv, tmp_path / "killed.json", "--no-backup")

        def waiting() -> bool:
            return _sql(bed, host, ours + " AND wait_event_type = 'Lock'", app) == "1"

        _wait_until("the migration to wait for the app's lock", waiting, 120, p)
        _sigkill(p)
        read = _sql(bed, host, "SET statement_timeout = '5s';\nSELECT count(*) FROM users", app)
        assert read.splitlines()[-1] == "3", read
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _sql(bed, host, ours, app) != "0":
            time.sleep(0.5)
        assert _sql(bed, host, ours, app) == "0", "our backend outlived the run"
        left = bed.ssh(host, f"pgrep -u postgres -f 'ON_ERROR_STOP=1 -p 5432 -d {app}'")
        assert left.stdout.strip() == "", f"our psql outlived the run: {left.stdout}"
        # the app's transaction ends: nothing of ours is left to apply the migration
        _sql(bed, host, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'flt-blocker'", app)
        time.sleep(2)
        assert _sql(bed, host, "SELECT string_agg(version::text, ',') FROM _sqlx_migrations",
                    app) == "1"
        assert _sql(bed, host, "SELECT count(*) FROM pg_attribute WHERE attrelid = "
                               "'users'::regclass AND attname = 'name'", app) == "0"
        p1, doc1 = run_apply(inv, tmp_path / "rerun.json", "--no-backup")
        assert p1.returncode == 0, p1.stdout + p1.stderr
        assert _steps(doc1, host)["apply migrations"]["reason"].startswith("applied 2 ")
    finally:
        bed.ssh(host, "pkill -u postgres -f flt-blocker; true")
        _drop(bed, host, app)


@pytest.mark.parametrize("host, user", [(D12, "root"), (D13, "ops")],
                         ids=["debian12-root", "debian13-sudo"])
def test_sigkill_while_a_migration_executes_leaves_nothing_behind(
        bed: Any, tmp_path: Path, host: str, user: str) -> None:
    """apply killed -9 while a migration executes (a 120 s statement, no lock wait): the
    host-side watchdog (installer.transport.base.tethered) finds its reader gone within a
    second or two and interrupts psql, which cancels the statement: within 15 s neither our
    psql nor its backend is left, the migration rolled back whole (no ledger row, not
    dirty, nothing of it applied), and the rerun applies it. As root and through sudo."""
    app = "flt_exec"
    _drop(bed, host, app)
    source = tmp_path / "migrations"
    source.mkdir()
    (source / "1_t.sql").write_text("CREATE TABLE t (id int);\n")
    inv = inventory(bed, tmp_path / "inv.ini", {host: user}, None,
                    **_app_vars(app, migrations_source=str(source)))
    ours = ("SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name LIKE 'chatalot-db migrate%'")
    try:
        p0, _ = run_apply(inv, tmp_path / "first.json")
        assert p0.returncode == 0, p0.stdout + p0.stderr
        slow = source / "2_slow.sql"
        slow.write_text("SELECT pg_sleep(120);\nALTER TABLE t ADD COLUMN slow int;\n")
        p = _popen_apply(inv, tmp_path / "killed.json", "--no-backup")

        def executing() -> bool:
            return _sql(bed, host, ours + " AND query LIKE '%pg_sleep(120)%' AND state = "
                                          "'active'", app) == "1"

        _wait_until("the slow migration to execute", executing, 120, p)
        _sigkill(p)
        killed = time.monotonic()
        while time.monotonic() - killed < 15 and _sql(bed, host, ours, app) != "0":
            time.sleep(0.5)
        gone = time.monotonic() - killed
        print(f"\n{host}: our backend gone {gone:.1f}s after the SIGKILL")
        assert _sql(bed, host, ours, app) == "0", "our backend outlived the run"
        left = bed.ssh(host, f"pgrep -u postgres -f 'ON_ERROR_STOP=1 -p 5432 -d {app}'")
        assert left.stdout.strip() == "", f"our psql outlived the run: {left.stdout}"
        assert _sql(bed, host, "SELECT string_agg(version::text || ':' || success::text, ',') "
                               "FROM _sqlx_migrations", app) == "1:true"
        assert _sql(bed, host, "SELECT count(*) FROM pg_attribute WHERE attrelid = "
                               "'t'::regclass AND attname = 'slow'", app) == "0"
        slow.write_text("ALTER TABLE t ADD COLUMN slow int;\n")
        p1, doc1 = run_apply(inv, tmp_path / "rerun.json", "--no-backup")
        assert p1.returncode == 0, p1.stdout + p1.stderr
        assert _steps(doc1, host)["apply migrations"]["reason"].startswith("applied 2 ")
    finally:
        _drop(bed, host, app)


# ---------------------------------------------------------------------------
# the SSH connection cut on one host of two
# ---------------------------------------------------------------------------

def test_connection_cut_on_one_host_the_other_finishes(bed: Any, tmp_path: Path) -> None:
    """debian12 (as root) and debian13 (as ops, via sudo), both provisioned above, on a
    new app database with a slow migration: debian13's sshd session is killed mid-run.
    debian13 is reported unreachable with the reason, debian12 finishes, exit 4; a
    rerun converges."""
    app = "flt_cut"
    hosts = {D12: "root", D13: "ops"}
    for h in hosts:
        _drop(bed, h, app)
    source = tmp_path / "migrations"
    shutil.copytree(REPO / "migrations", source)
    slow = sorted(source.glob("010_*.sql"))[0]
    slow.write_text("SELECT pg_sleep(4);\n" + slow.read_text())
    inv = inventory(bed, tmp_path / "inv.ini", hosts, None, **_app_vars(app,
                    migrations_source=str(source)))
    try:
        p = _popen_apply(inv, tmp_path / "cut.json")

        def sleeping() -> bool:
            r = bed.ssh(D13, "cd / && runuser -u postgres -- psql -XAt -c \"SELECT "
                        "count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(4)%' "
                        "AND pid <> pg_backend_pid()\"", timeout=20)
            return r.stdout.strip() not in ("", "0")

        _wait_until("debian13's slow migration", sleeping, 300, p)
        # the apply's session (as ops), not this test's root sessions; OpenSSH 10 (Debian 13)
        # names session processes sshd-session
        kill = bed.ssh(D13, "pkill -9 -f '^sshd(-session)?: ops'", timeout=20)
        assert kill.returncode == 0, f"no sshd session of ops to kill: {kill.stderr}"
        out, _ = p.communicate(timeout=300)
        doc = json.loads((tmp_path / "cut.json").read_text())
        assert p.returncode == 4, out
        cut = doc["hosts"][D13]
        # the command's channel closed without an exit status while the link went down
        # (SSHTransport._drive): never "is closed" (no command started on a dead link) nor
        # "refused another session" (the link stays up there)
        assert cut["state"] == "unreachable", cut
        assert cut["error"] == (f"connection to {D13} lost: the SSH connection dropped while "
                                "the command ran"), cut
        assert doc["hosts"][D12]["state"] == "done"
        print(f"\ncut host's error: {cut['error']}")

        p1, doc1 = run_apply(inv, tmp_path / "rerun.json")
        assert p1.returncode == 0, p1.stdout + p1.stderr
        assert _changed(doc1, D13) > 0 and _changed(doc1, D12) == 0
        for h in hosts:
            rows = _sql(bed, h, "SELECT count(*), count(*) FILTER (WHERE NOT success) "
                                "FROM _sqlx_migrations", app)
            assert rows == "52|0", (h, rows)
    finally:
        for h in hosts:
            _drop(bed, h, app)


# ---------------------------------------------------------------------------
# restart between runs; app rows across reruns
# ---------------------------------------------------------------------------

def test_restart_between_runs_changes_nothing(bed: Any, tmp_path: Path) -> None:
    """debian13: converged, then PostgreSQL restarted and a new connection (the test
    bed's nspawn hosts cannot reboot in place; reset would make a fresh host). Apply then
    reports changed=0 and PostgreSQL is enabled at boot and running."""
    host = D13
    inv = inventory(bed, tmp_path / "inv.ini", {host: "root"})
    p0, _ = run_apply(inv, tmp_path / "before.json")  # converged first (a no-op in order)
    assert p0.returncode == 0, p0.stdout + p0.stderr
    bed.ssh(host, "systemctl restart postgresql", check=True)
    p, doc = run_apply(inv, tmp_path / "apply.json")
    assert p.returncode == 0 and _changed(doc, host) == 0, p.stdout
    r = bed.ssh(host, "systemctl is-enabled postgresql; systemctl is-active postgresql")
    assert r.stdout.split() == ["enabled", "active"], r.stdout


def test_app_rows_survive_tuning_changes_and_new_migrations(bed: Any, tmp_path: Path) -> None:
    """debian12: rows the app writes (as its role, with its DATABASE_URL) are still there
    after a rerun that changes tuning (a restart) and applies a new migration 053."""
    host, app = D12, "flt_rows"
    _drop(bed, host, app)
    source = tmp_path / "migrations"
    shutil.copytree(REPO / "migrations", source)
    inv = inventory(bed, tmp_path / "inv.ini", {host: "root"}, None, **_app_vars(app))
    try:
        p, _ = run_apply(inv, tmp_path / "first.json")
        assert p.returncode == 0, p.stdout + p.stderr
        insert = ("INSERT INTO users (username, display_name, password_hash) "
                  "SELECT 'user' || i, 'User ' || i, 'x' FROM generate_series(1, 500) i;")
        r = bed.ssh(host, f". /etc/chatalot/{app}.env && psql \"$DATABASE_URL\" -XAt "
                          "-v ON_ERROR_STOP=1", input=insert)
        assert r.returncode == 0, r.stderr
        (source / "053_fault_extra.sql").write_text(
            "ALTER TABLE users ADD COLUMN fault_note TEXT;\n")
        inv2 = inventory(bed, tmp_path / "inv2.ini", {host: "root"}, None,
                         **_app_vars(app, migrations_source=str(source), pg_memory="900MB"))
        p2, doc2 = run_apply(inv2, tmp_path / "second.json")
        assert p2.returncode == 0, p2.stdout + p2.stderr
        steps = _steps(doc2, host)
        conf = next(s for n, s in steps.items() if "postgresql.conf" in n)
        assert conf["status"] == "changed", conf
        assert _sql(bed, host, "SELECT count(*), count(DISTINCT username) FROM users",
                    app) == "500|500"
        assert _sql(bed, host, "SELECT max(version) FROM _sqlx_migrations", app) == "53"
    finally:
        _drop(bed, host, app)
        # the cluster's tuning back to the host's own (other modules expect it)
        back = inventory(bed, tmp_path / "back.ini", {host: "root"})
        run_apply(back, tmp_path / "back.json")
