"""Backups off the host, and back onto a new one: the drill for a host whose disk died.

Two real Debian hosts (12 and 13) provisioned by `apply`. The app writes rows on the old
one, `backup` dumps it, and `backups --fetch DIR` copies every dump to DIR/HOST/ on this
machine over the run's SSH connection: byte for byte (sha256 compared with the host's),
0600 files in 0700 folders; a rerun copies nothing (changed=0) and a different file of a
dump's name is left alone. The old host is then switched off: a fetch still copies from
the other one and reports the old one unreachable. `restore NEW --upload FILE` first
refuses a copy cut short (the bytes sent are fewer than the checksum says: nothing is left
on the host, its database untouched), then puts the fetched dump in place of the new
host's (empty) database, as a user whose sudo asks for a password (-K, the password sent
first on the upload's stdin): the app reads its 40 and 5 rows there through its own
DATABASE_URL, and `backups` lists the dump as `uploaded`. Last, `backup --fetch` on the
new host (as a sudo user) takes a dump and fetches it with the other new ones in one run.

Needs root and the test bed: CI runs it.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from installer.desired import backups
from testbed import OPS_USER, OPSPW_PASSWORD, OPSPW_USER
from tests.integration.conftest import host_of_kind
from tests.integration.helpers import cli, inventory, run_apply, run_reported
from tests.integration.test_testbed_backups import APP, DIR, READ, ROWS

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def drill(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("offhost")
    old, new = host_of_kind(bed, "debian12"), host_of_kind(bed, "debian13")
    bed.reset(old)
    bed.reset(new)
    fetched = tmp / "fetched"
    out: dict[str, Any] = {"old": old, "new": new, "fetched": fetched, "runs": {}, "seen": {}}
    runs, seen = out["runs"], out["seen"]

    def sh(host: str, command: str) -> str:
        return str(bed.ssh(host, command, check=True).stdout)

    try:
        inv = inventory(bed, tmp / "hosts.ini", {old: "root", new: "root"})
        runs["apply"] = run_apply(inv, tmp / "apply.json")
        sh(old, APP + f'-c "{ROWS}"')
        runs["backup"] = run_reported("backup", inv, tmp / "backup.json", "-l", old)
        runs["fetch"] = run_reported("backups", inv, tmp / "fetch.json", "--fetch", str(fetched))
        seen["old-sums"] = sh(old, f"cd {DIR} && sha256sum *.dump && stat -c '%Y %n' *.dump")
        seen["ours"] = {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(),
                                 oct(p.stat().st_mode & 0o777), int(p.stat().st_mtime))
                        for p in (fetched / old).iterdir()}
        runs["refetch"] = run_reported("backups", inv, tmp / "refetch.json",
                                       "--fetch", str(fetched))
        dump = sorted((fetched / old).glob("*-manual.dump"))[-1]
        out["dump"] = dump
        # a second dump on the old host, whose name is taken here by another file
        runs["backup2"] = run_reported("backup", inv, tmp / "backup2.json", "-l", old)
        second = sh(old, f"cd {DIR} && ls -t *-manual.dump | head -n1").strip()
        (fetched / old / second).write_bytes(b"mine")
        bed.stop(old)  # the old host's disk dies
        runs["fetch-dead"] = run_reported("backups", inv, tmp / "fetch-dead.json",
                                          "--fetch", str(fetched))
        seen["second"] = (second, (fetched / old / second).read_bytes())
        # a transfer cut short: the host gets fewer bytes than the checksum it was given
        cut = subprocess.run(
            [*bed.ssh_argv(new), backups.upload_script(
                DIR, backups.uploaded_name("chatalot", "20261203T000000Z"),
                hashlib.sha256(dump.read_bytes()).hexdigest(), "pg_restore")],
            input=dump.read_bytes()[:30000], capture_output=True, timeout=120, check=False)
        seen["cut"] = (cut.returncode, cut.stderr.decode(errors="replace"))
        truncated = tmp / "truncated.dump"
        truncated.write_bytes(dump.read_bytes()[:30000])
        runs["truncated"] = run_reported("restore", inv, tmp / "truncated.json", new,
                                         "--upload", str(truncated), "--in-place", "--yes")
        seen["new-after-bad"] = sh(new, f"ls -A {DIR} | grep -c 'uploaded\\|partial'; " + APP
                                   + "-c 'SELECT count(*) FROM _sqlx_migrations'")
        # as a user whose sudo asks for a password: it goes first on the upload's stdin
        pw = inventory(bed, tmp / "opspw.ini", {new: OPSPW_USER})
        runs["restore"] = run_reported("restore", pw, tmp / "restore.json", new, "-K",
                                       "--upload", str(dump), "--in-place", "--yes",
                                       stdin=OPSPW_PASSWORD + "\n")
        seen["new-rows"] = sh(new, APP + READ)
        runs["listing"] = run_reported("backups", inv, tmp / "listing.json", "-l", new)
        seen["new-uploaded"] = sh(new, f"stat -c '%a %U %Y' {DIR}/*-uploaded.dump; "
                                  f"sha256sum {DIR}/*-uploaded.dump")
        seen["status"] = cli("status", "-i", str(inv), "-l", new)
        ops = inventory(bed, tmp / "ops.ini", {new: OPS_USER})  # sudo without a password
        runs["backup-fetch"] = run_reported("backup", ops, tmp / "backup-fetch.json",
                                            "--fetch", str(fetched))
        seen["new-sums"] = sh(new, f"cd {DIR} && sha256sum *.dump")
        yield out
    finally:
        bed.reset(old)
        bed.reset(new)


def _host(drill: dict[str, Any], run: str, host: str) -> dict[str, Any]:
    p, doc = drill["runs"][run]
    assert doc, p.stdout + p.stderr
    return dict(doc["hosts"][host])


def _step(drill: dict[str, Any], run: str, host: str, name: str) -> dict[str, Any]:
    return dict(next(s for s in _host(drill, run, host)["steps"] if s["name"] == name))


def _ok(drill: dict[str, Any], run: str) -> None:
    p, _ = drill["runs"][run]
    assert p.returncode == 0, p.stdout + p.stderr


def test_fetch_copies_every_dump_byte_for_byte_into_private_folders(
        drill: dict[str, Any]) -> None:
    for run in ("apply", "backup", "fetch"):
        _ok(drill, run)
    old, fetched = drill["old"], drill["fetched"]
    step = _step(drill, "fetch", old, "fetch backups")
    assert step["status"] == "changed"
    assert step["reason"].startswith("fetched 1 dump(s) (") and f"to {fetched / old}: chatalot-" \
        in step["reason"], step["reason"]
    lines = drill["seen"]["old-sums"].splitlines()
    theirs = {ln.split()[1]: ln.split()[0] for ln in lines[:len(lines) // 2]}
    mtimes = {ln.split()[1]: int(ln.split()[0]) for ln in lines[len(lines) // 2:]}
    ours = drill["seen"]["ours"]  # the folder right after the fetch
    assert {name: sha for name, (sha, _, _) in ours.items()} == theirs and len(ours) == 1
    assert {mode for _, mode, _ in ours.values()} == {"0o600"}
    # each copy carries the time the host's dump has: when it was taken
    assert {name: mtime for name, (_, _, mtime) in ours.items()} == mtimes
    assert oct(fetched.stat().st_mode & 0o777) == oct((fetched / old).stat().st_mode & 0o777) \
        == "0o700"
    new = _step(drill, "fetch", drill["new"], "fetch backups")
    assert (new["status"], new["reason"]) == ("ok", "no dumps of chatalot to fetch")


def test_a_rerun_copies_nothing(drill: dict[str, Any]) -> None:
    _ok(drill, "refetch")
    old = drill["old"]
    assert _host(drill, "refetch", old)["changed"] == 0
    step = _step(drill, "refetch", old, "fetch backups")
    assert step["reason"] == f"all 1 dump(s) already in {drill['fetched'] / old}"


def test_a_dead_host_is_unreachable_and_the_others_are_fetched(drill: dict[str, Any]) -> None:
    p, doc = drill["runs"]["fetch-dead"]
    assert p.returncode == 4, p.stdout + p.stderr
    assert doc["hosts"][drill["old"]]["unreachable"] == 1
    assert _step(drill, "fetch-dead", drill["new"], "fetch backups")["status"] == "ok"
    # fetched before the host died; the file of the second dump's name was never replaced
    second, content = drill["seen"]["second"]
    assert content == b"mine" and second.endswith("-manual.dump")


def test_a_cut_upload_leaves_nothing_and_a_truncated_dump_is_refused(
        drill: dict[str, Any]) -> None:
    code, err = drill["seen"]["cut"]
    assert code == 1 and "the transfer was cut short" in err, err
    p, _ = drill["runs"]["truncated"]
    assert p.returncode == 2, p.stdout + p.stderr
    reason = _step(drill, "truncated", drill["new"], "restore a backup")["reason"]
    assert reason.startswith(f"sending {drill['fetched'].parent / 'truncated.dump'} to {DIR} "
                             "failed: ") and "pg_restore cannot read it to its end" in reason
    assert reason.endswith("nothing was changed (no file left there)")
    # no uploaded or partial file on the host; its database as it was
    assert drill["seen"]["new-after-bad"].split() == ["0", "52"]


def test_the_fetched_dump_restores_onto_the_new_host(drill: dict[str, Any]) -> None:
    _ok(drill, "restore")
    steps = {s["name"]: s for s in _host(drill, "restore", drill["new"])["steps"]}
    reason = steps["restore a backup"]["reason"]
    assert reason.startswith("replaced database chatalot with chatalot-") and \
        f"-uploaded.dump (uploaded from {drill['dump']}): ledger 52 rows, last 52" in reason
    assert "public.app_notes 40" in reason and "public.app_keys 5" in reason
    assert steps["check DATABASE_URL login"]["status"] == "ok"
    assert drill["seen"]["new-rows"].split() == ["40", "5"]
    mode, sums = drill["seen"]["new-uploaded"].split("\n", 1)
    assert mode == f"600 postgres {int(drill['dump'].stat().st_mtime)}"  # the dump's time
    assert sums.split()[0] == hashlib.sha256(drill["dump"].read_bytes()).hexdigest()
    _ok(drill, "listing")
    p, _ = drill["runs"]["listing"]
    assert "  uploaded  " in p.stdout and "  before-restore  " in p.stdout, p.stdout
    # status: the last backup is the one taken on this host, not the (older) uploaded copy
    status = drill["seen"]["status"]
    assert status.returncode == 0, status.stdout + status.stderr
    last = next(ln for ln in status.stdout.splitlines() if "last backup" in ln)
    assert "-before-restore.dump (before-restore," in last, status.stdout


def test_backup_fetch_takes_a_dump_then_fetches_the_new_ones(drill: dict[str, Any]) -> None:
    _ok(drill, "backup-fetch")
    new, fetched = drill["new"], drill["fetched"]
    steps = {s["name"]: s for s in _host(drill, "backup-fetch", new)["steps"]}
    taken = steps["take a backup"]["reason"].split()[1].rsplit("/", 1)[1]
    assert taken.endswith("-manual.dump")
    # the manual dump, the uploaded one and the dump of the live one before the restore
    assert steps["fetch backups"]["reason"].startswith("fetched 3 dump(s) (")
    theirs = {ln.split()[1]: ln.split()[0] for ln in drill["seen"]["new-sums"].splitlines()}
    assert taken in theirs and len(theirs) == 3
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (fetched / new).iterdir()} == theirs
