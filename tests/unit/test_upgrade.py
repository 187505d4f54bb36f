"""`chatalot-db upgrade`: the decisions (pure, by tables), the pre-check parser, Debian's
scripts (pg_upgradecluster; they parse, quote, and keep their safety checks), the
command's refusals before any host is contacted."""

from __future__ import annotations

import subprocess

import pytest

from installer.cli import main
from installer.desired.backups import size_text as size
from installer.desired.upgrade import (
    decide_drop_old,
    decide_rollback,
    decide_upgrade,
    disk_shortfall,
)
from installer.host.clusters import Cluster
from installer.host.distros.debian import (
    debian_drop_old_script,
    debian_rollback_script,
    debian_upgrade_script,
)
from installer.steps.upgrade import parse_precheck, upgrade_steps

OLD_RUNNING = Cluster(15, "main", 5432, True, True)
OLD_KEPT = Cluster(15, "main", 5433, False, None)
NEW_RUNNING = Cluster(17, "main", 5432, True, True)
NEW_KEPT = Cluster(17, "main", 5433, False, None)
NEW_EMPTY = Cluster(17, "main", 5433, True, False)
OTHER_EMPTY = Cluster(16, "main", 5434, True, False)


@pytest.mark.parametrize(("found", "to", "act", "refused", "start"), [
    ((OLD_RUNNING,), 17, True, False, "PostgreSQL 15 (main, port 5432) to 17"),
    ((OLD_RUNNING, NEW_EMPTY), 17, True, False, "PostgreSQL 15 (main, port 5432) to 17"),
    ((OLD_RUNNING, OTHER_EMPTY), 17, True, False, "PostgreSQL 15"),
    ((OLD_RUNNING,), 15, False, False, "database chat is on PostgreSQL 15 already"),
    ((NEW_RUNNING, OLD_KEPT), 17, False, False, "database chat is on PostgreSQL 17 already"),
    ((OLD_RUNNING,), 14, False, True, "database chat is on PostgreSQL 15, newer than --to 14"),
    ((OLD_RUNNING, NEW_KEPT), 17, False, True,
     "PostgreSQL 17's cluster main already exists (port 5433, stopped: kept by a rollback?)"),
    ((), 17, False, True, "no running cluster holds database chat: found no PostgreSQL "
     "cluster. Nothing to upgrade"),
    ((OLD_KEPT,), 17, False, True, "no running cluster holds database chat: found "
     "PostgreSQL 15 (main, port 5433, stopped) (a stopped cluster cannot be asked"),
    ((Cluster(15, "main", 5433, True, True),), 17, False, True,
     "database chat is in PostgreSQL 15 (main, port 5433, running), not on pg_port 5432"),
    ((OLD_RUNNING, Cluster(16, "main", 5433, True, True)), 17, False, True,
     "database chat is in several clusters"),
], ids=["plain", "package made an empty one", "an unrelated empty one", "same major",
        "done already", "older", "kept new one", "no cluster", "only stopped",
        "another port", "two holders"])
def test_decide_upgrade(found: tuple[Cluster, ...], to: int, act: bool, refused: bool,
                        start: str) -> None:
    d = decide_upgrade(found, to, "chat", 5432)
    assert (d.act, d.refused) == (act, refused), d
    assert d.reason.startswith(start), d.reason
    if act:
        assert d.source == OLD_RUNNING
    if refused:
        assert "Nothing" in d.reason


@pytest.mark.parametrize(("found", "act", "refused", "start"), [
    ((NEW_RUNNING, OLD_KEPT), True, False, "back to PostgreSQL 15 (main, now port 5433) on "
     "port 5432; PostgreSQL 17 kept, stopped"),
    ((NEW_RUNNING, OLD_KEPT, Cluster(13, "main", 5434, False, None)), True, False,
     "back to PostgreSQL 15"),
    ((OLD_RUNNING, NEW_KEPT), False, False, "PostgreSQL 15 serves database chat on port "
     "5432, PostgreSQL 17 is kept stopped: rolled back already"),
    ((NEW_RUNNING,), False, True, "PostgreSQL 17 serves database chat and no older cluster"),
    ((NEW_RUNNING, Cluster(15, "other", 5433, False, None)), False, True, "PostgreSQL 17"),
], ids=["kept", "newest kept first", "rolled back", "nothing kept", "another name"])
def test_decide_rollback(found: tuple[Cluster, ...], act: bool, refused: bool,
                         start: str) -> None:
    d = decide_rollback(found, "chat", 5432)
    assert (d.act, d.refused) == (act, refused), d
    assert d.reason.startswith(start), d.reason
    if act:
        assert d.source == OLD_KEPT and d.serving == NEW_RUNNING


@pytest.mark.parametrize(("found", "act", "start"), [
    ((NEW_RUNNING, OLD_KEPT), True, "remove PostgreSQL 15's cluster (main), kept since the "
     "upgrade to 17"),
    ((NEW_RUNNING,), False, "PostgreSQL 17 serves database chat; no older cluster is kept"),
    ((OLD_RUNNING, NEW_KEPT), False, "PostgreSQL 15 serves database chat; no older"),
], ids=["kept", "none kept", "the newer one is never dropped"])
def test_decide_drop_old(found: tuple[Cluster, ...], act: bool, start: str) -> None:
    d = decide_drop_old(found, "chat", 5432)
    assert d.act == act and not d.refused, d
    assert d.reason.startswith(start), d.reason


@pytest.mark.parametrize(("needed", "available", "short"), [
    (100 * 2**20, 200 * 2**20, False),
    (100 * 2**20, 110 * 2**20, False),
    (100 * 2**20, 105 * 2**20, True),
    (None, 10, False),
    (10, None, False),
])
def test_disk_shortfall(needed: int | None, available: int | None, short: bool) -> None:
    why = disk_shortfall(needed, available)
    assert (why is not None) == short
    if why:
        assert why.startswith("copying the data needs 110.0 MB free and 105.0 MB is")
        assert "--link" in why


@pytest.mark.parametrize(("n", "said"), [(812, "812 bytes"), (2048, "2.0 kB"),
                                         (3 * 2**20 + 2**19, "3.5 MB"), (12 * 2**30, "12.0 GB"),
                                         (5000 * 2**30, "4.9 TB")])
def test_size(n: int, said: str) -> None:
    assert size(n) == said


def test_parse_precheck() -> None:
    text = ("size 50397184\navail 3543348224\nsession chatalot@chatalot (app, from 10.0.0.5)\n"
            "session postgres@- (psql, from the local socket)\n")
    assert parse_precheck(text) == (50397184, 3543348224, [
        "chatalot@chatalot (app, from 10.0.0.5)", "postgres@- (psql, from the local socket)"])
    assert parse_precheck("size ?\navail ?\n") == (None, None, [])


@pytest.mark.parametrize("script", [
    debian_upgrade_script(15, 17, 5432, "upgrade"),
    debian_upgrade_script(13, 16, 6543, "link"),
    debian_rollback_script(15, 17, 5432),
    debian_drop_old_script(15),
], ids=["upgrade", "link", "rollback", "drop-old"])
def test_debian_scripts_parse(script: str) -> None:
    r = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert script.startswith("set -eu\ncd /\n")


def test_debian_upgrade_drops_only_an_empty_new_cluster_and_rolls_back_on_failure() -> None:
    s = debian_upgrade_script(15, 17, 6543, "link")
    empty_check = s.index("SELECT (SELECT count(*) FROM pg_database")
    assert empty_check < s.index("pg_dropcluster --stop 17 main")
    assert 'if [ "$n" != 0 ]; then echo' in s and "exit 3" in s
    assert "if ! pg_upgradecluster -v 17 -m link 15 main; then" in s
    assert s.index("pg_upgradecluster -v 17") < s.index("pg_conftool 15 main set port 6543")


def test_debian_rollback_refuses_a_linked_old_cluster_first() -> None:
    s = debian_rollback_script(15, 17, 5432)
    refuse = s.index('[ -f "$od/global/pg_control.old" ] && [ ! -f "$od/global/pg_control" ]')
    assert refuse < s.index("pg_ctlcluster 17 main stop")
    assert s.index("pg_ctlcluster 17 main stop") < s.index("pg_conftool 15 main set port 5432")
    assert "echo auto > /etc/postgresql/15/main/start.conf" in s


def test_debian_drop_old_refuses_a_running_cluster() -> None:
    s = debian_drop_old_script(15)
    assert s.index("pg_ctlcluster 15 main status") < s.index("pg_dropcluster 15 main")


@pytest.mark.parametrize(("mode", "names"), [
    ("upgrade", ["gather facts", "plan the upgrade", "install postgresql",
                 "back up before the upgrade", "upgrade the cluster",
                 "enable postgresql at boot", "start postgresql", "configure postgresql.conf",
                 "configure pg_hba.conf", "create role {db_user}", "create database {db_name}",
                 "grant schema public", "write the env file", "schedule backups",
                 "check DATABASE_URL login", "rebuild statistics"]),
    ("rollback", ["gather facts", "plan the rollback", "roll back to the old cluster",
                  "check DATABASE_URL login"]),
    ("drop-old", ["gather facts", "plan removing the old cluster", "remove the old cluster"]),
])
def test_steps_per_mode(mode: str, names: list[str]) -> None:
    got = [s.name for s in upgrade_steps(mode, to=17 if mode == "upgrade" else None)]
    assert len(got) == len(names)
    assert got[:2] == names[:2] and got[-1] == names[-1]


@pytest.mark.parametrize(("argv", "message"), [
    (["upgrade", "--to", "99"], "--to 99: no such PostgreSQL major (known: 10 to 19)"),
    (["upgrade", "--to", "9"], "--to 9: no such PostgreSQL major"),
    (["upgrade", "--rollback", "--link"], "--link goes with --to"),
])
def test_bad_options_exit_5_before_any_host(argv: list[str], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 5
    assert message in capsys.readouterr().err


def test_one_of_to_rollback_drop_old_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["upgrade"])
    assert e.value.code == 5
    assert "one of the arguments --to --rollback --drop-old is required" in \
        capsys.readouterr().err


@pytest.mark.parametrize("mode", ["rollback", "drop-old"])
@pytest.mark.parametrize("distro", ["fedora40", "arch"])
def test_rollback_and_drop_old_are_refused_where_kept_clusters_are_not_paired(
        mode: str, distro: str) -> None:
    from installer.steps.base import StepFailed
    from tests.unit.stepkit import harness

    h = harness(distro)
    plan = upgrade_steps(mode)[1]
    with pytest.raises(StepFailed, match=rf"^upgrade --{mode} is available on Debian/Ubuntu "
                                         "hosts only; .* Nothing was changed$"):
        h.run(plan)
    assert h.host.ran() == []
