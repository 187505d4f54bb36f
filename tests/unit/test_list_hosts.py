"""--list-hosts: the hosts a run would touch, as `ansible-playbook --list-hosts` lists them
for the same inventory and --limit (compared as a set, with the count: Ansible's listing
order is not its run order), ours in run order with the --serial batches; no host is
contacted (the inventory's hosts do not exist)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from installer.cli import main
from installer.fleet.inventory import load_inventory
from tests.unit.test_inventory import GOOD, INVENTORIES, LIMITS, Ansible

PLAY = "- hosts: all\n  gather_facts: false\n  tasks: []\n"
CASES = [(name, None) for name in GOOD] + [(n, p) for n, p in LIMITS]


@pytest.fixture(scope="module")
def ansible(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ansible, Path]:
    root = tmp_path_factory.mktemp("list-hosts")
    (root / "ref").mkdir()
    play = root / "play.yml"
    play.write_text(PLAY)
    reference = Ansible(root / "ref")
    calls = []
    for name, pattern in CASES:
        limit = ("--limit", pattern) if pattern else ()
        calls.append(("ansible-playbook", "-i", str(INVENTORIES / name), str(play),
                      "--list-hosts", *limit))
    reference.prefetch(calls)
    return reference, play


def _hosts(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\s+hosts \(\d+\):", line))
    count = int(re.findall(r"\d+", lines[start])[0])
    return [line.strip() for line in lines[start + 1:start + 1 + count]]


@pytest.mark.parametrize(("name", "pattern"), CASES)
def test_same_hosts_as_ansible_playbook(ansible: tuple[Ansible, Path], name: str,
                                        pattern: str | None,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    reference, play = ansible
    limit = ["--limit", pattern] if pattern else []
    r = reference.run("ansible-playbook", "-i", str(INVENTORIES / name), str(play),
                      "--list-hosts", *limit)
    code = main(["apply", "-i", str(INVENTORIES / name), "--list-hosts", *limit])
    out, err = capsys.readouterr()
    if r.returncode != 0 or b"skipping: no hosts matched" in r.stdout + r.stderr:
        assert code != 0 or "hosts (0)" in out, out + err
        return
    assert code == 0, err
    theirs = _hosts(r.stdout.decode())
    ours = _hosts(out)
    assert sorted(ours) == sorted(theirs) and len(ours) == len(theirs)
    assert ours == load_inventory(str(INVENTORIES / name)).select(pattern)  # run order


def test_serial_batches_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "h.ini"
    inv.write_text("[web]\nw[1:5]\n")
    assert main(["apply", "-i", str(inv), "--list-hosts", "--serial", "1,2"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("    batches (3):\n      1: w1\n      2: w2, w3\n      3: w4, w5\n")
    assert "hosts (5):\n      w1\n      w2\n      w3\n      w4\n      w5\n" in out


@pytest.mark.parametrize("limit", ["@{retry}", "@{retry},db1", "web:@{retry}", "@{missing}",
                                   "@{folder}"])
def test_limit_files_select_what_ansible_selects(
        ansible: tuple[Ansible, Path], tmp_path: Path, limit: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    reference, play = ansible
    inv = tmp_path / "h.ini"
    inv.write_text("[web]\nw1\nw2\n[db]\ndb1\ndb2\n")
    (tmp_path / "retry").write_text("w2\n\n  db2  \nnot-in-inventory\n")
    (tmp_path / "folder").mkdir()
    pattern = limit.format(retry=tmp_path / "retry", missing=tmp_path / "missing",
                           folder=tmp_path / "folder")
    r = reference.run("ansible-playbook", "-i", str(inv), str(play), "--list-hosts",
                      "--limit", pattern)
    code = main(["apply", "-i", str(inv), "--list-hosts", "--limit", pattern])
    out, err = capsys.readouterr()
    if r.returncode != 0:
        assert code == 1 and err.startswith("chatalot-db: error: "), err
        theirs = r.stderr.decode()
        assert ("Unable to find limit file" in theirs) == ("Unable to find limit file" in err)
        return
    assert code == 0, err
    assert sorted(_hosts(out)) == sorted(_hosts(r.stdout.decode()))


def test_failed_hosts_are_written_to_the_retry_file_with_the_limit_to_use(
        tmp_path: Path) -> None:
    import io

    from installer.commands.rollout import _retry_hint
    from installer.fleet.display import Display
    from installer.fleet.report import HostReport, StepRecord

    ok, bad, gone = HostReport("ok1"), HostReport("bad1"), HostReport("gone1")
    bad.steps.append(StepRecord("install postgresql", "failed", "apt broke"))
    gone.unreachable = True
    stream = io.StringIO()
    retry = tmp_path / "apply.retry"
    _retry_hint(Display(stream, multi_host=True), [ok, bad, gone], str(retry))
    assert retry.read_text() == "bad1\ngone1\n"
    assert f"to retry the 2 failed or unreachable host(s): --limit @{retry}" in stream.getvalue()
    stream = io.StringIO()
    _retry_hint(Display(stream, multi_host=True), [ok, bad], None)
    assert "to retry the 1 failed or unreachable host(s): --limit bad1" in stream.getvalue()
    stream = io.StringIO()
    _retry_hint(Display(stream, multi_host=True), [ok], str(tmp_path / "none.retry"))
    assert stream.getvalue() == "" and not (tmp_path / "none.retry").exists()


@pytest.mark.parametrize("limit", ["db1,typo", "web:nothere:db", "web,!ghost", "db[0],zz*",
                                   "all", "w1", "~w.*,~nomatch.*", "&web,web"])
def test_unmatched_limit_patterns_warn_as_ansible(
        ansible: tuple[Ansible, Path], tmp_path: Path, limit: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    reference, play = ansible
    inv = tmp_path / "h.ini"
    inv.write_text("[web]\nw1\nw2\n[db]\ndb1\n[empty]\n")
    r = reference.run("ansible-playbook", "-i", str(inv), str(play), "--list-hosts",
                      "--limit", limit)
    theirs = sorted(re.findall(r"Could not match supplied host pattern, ignoring: (\S+)",
                               r.stderr.decode()))
    main(["apply", "-i", str(inv), "--list-hosts", "--limit", limit])
    ours = sorted(re.findall(r"Could not match supplied host pattern, ignoring: (\S+)",
                             capsys.readouterr().err))
    assert ours == theirs
