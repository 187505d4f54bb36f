"""installer.host.facts: a host's facts, read from its probe's sections.

The disk the tuning's disk type comes from is the one under PostgreSQL's directory.
The section's shell runs for real; `findmnt` is a stand-in that names a device per
mount point (this machine's own mounts would make the answer depend on where it runs).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from installer.host.facts import DATA_PARENTS, disk_section, facts_from_sections

FAKE_FINDMNT = """#!/bin/sh
# findmnt -no SOURCE -T PATH: a dedicated disk for .../pgdisk, the root disk elsewhere
for last; do :; done
case $last in
  */pgdisk*) echo /dev/nvme1n1 ;;
  *) echo /dev/sda2 ;;
esac
"""


@pytest.mark.parametrize(("existing", "device"), [
    (["pgdisk"], "nvme1n1"),              # the first candidate exists: its own disk
    (["other", "pgdisk"], "sda2"),        # the first existing candidate wins
    ([], "sda2"),                         # none exists yet (before install): /var/lib's
])
def test_disk_under_the_first_existing_postgresql_directory(
        tmp_path: Path, existing: list[str], device: str) -> None:
    for name in existing:
        (tmp_path / name).mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "findmnt"
    fake.write_text(FAKE_FINDMNT)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    candidates = tuple(str(tmp_path / n) for n in (existing or ["absent"]))
    script = disk_section(candidates, fallback=str(tmp_path / "varlib"))
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True,
                         env={"PATH": f"{bindir}:{os.environ['PATH']}"}).stdout
    # no such device under /sys here: the name is what matters, the rotational flag is empty
    assert out.split()[0] == device


def test_the_distributions_directories_are_the_candidates() -> None:
    assert DATA_PARENTS == ("/var/lib/postgresql", "/var/lib/pgsql", "/var/lib/postgres")
    assert "/var/lib/postgresql" in disk_section() and "/var/lib/pgsql" in disk_section()


def test_facts_from_sections() -> None:
    f = facts_from_sections({
        "os-release": 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n'
                      'PRETTY_NAME="Ubuntu 24.04 LTS"\nVERSION_CODENAME=noble\n',
        "meminfo": "MemTotal:        4030464 kB\n", "nproc": "4\n", "pid1": "systemd\n",
        "uid": "0\n",
    })
    assert (f.os_id, f.os_like, f.version_id, f.codename) == ("ubuntu", ("debian",), "24.04",
                                                              "noble")
    assert (f.memory_kb, f.cpus, f.systemd, f.is_root) == (4030464, 4, True, True)
