"""The PGDG part of the Debian install script, run for real with stand-ins for apt-cache
and apt-get (a mock: this machine's real apt must not be changed by a unit test; the test
bed's debian13 test installs a bookworm major without PGDG for real)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from installer.host.distros.debian import PGDG_SOURCES
from tests.unit.test_distros import strategy


def _run(tmp_path: Path, candidate: str, update_ok: bool) -> tuple[int, str, str, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    updated = tmp_path / "updated"  # after an update, PGDG's lists have postgresql-16
    (bin_dir / "apt-cache").write_text(  # only postgresql-16's candidate is in question
        f"#!/bin/sh\necho \"$@\" >> {log}\nc=1.0; [ \"$2\" = postgresql-16 ] && c='{candidate}'\n"
        f"[ -e {updated} ] && c=16.9-1.pgdg\n"
        "printf '  Installed: (none)\\n  Candidate: %s\\n' \"$c\"\n")
    (bin_dir / "apt-get").write_text(
        f"#!/bin/sh\necho \"apt-get $*\" >> {log}\n"
        f"case \"$*\" in *update*) {'touch ' + str(updated) if update_ok else 'exit 100'} ;; "
        "esac\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    sources = tmp_path / "pgdg.sources"
    script = strategy("debian13", 16).install_script(["postgresql-16"]).replace(
        PGDG_SOURCES, str(sources))
    r = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False,
                       env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    return r.returncode, r.stderr, log.read_text() if log.exists() else "", sources


def test_a_major_the_host_sources_have_needs_no_pgdg(tmp_path: Path) -> None:
    code, _, log, sources = _run(tmp_path, "16.9-1.pgdg", update_ok=True)
    assert code == 0
    assert not sources.exists()
    assert "update" not in log and "install -y -q --no-install-recommends postgresql-16" in log


@pytest.mark.parametrize("candidate", ["(none)", ""])
def test_pgdg_added_when_the_host_lacks_the_major(tmp_path: Path, candidate: str) -> None:
    code, _, log, sources = _run(tmp_path, candidate, update_ok=True)
    assert code == 0
    assert "Suites: trixie-pgdg" in sources.read_text()
    updates = [line for line in log.splitlines()
               if line.startswith("apt-get") and " update" in line]
    assert len(updates) == 1  # once, for PGDG's lists: the install then finds its candidate


def test_an_unreachable_pgdg_is_taken_away_and_nothing_installed(tmp_path: Path) -> None:
    code, err, log, sources = _run(tmp_path, "(none)", update_ok=False)
    assert code == 1
    assert not sources.exists()
    assert err.strip().endswith(
        f"the PGDG repository for trixie could not be reached: {sources} removed again; "
        "nothing was installed")
    assert "postgresql-16" not in "".join(line for line in log.splitlines(keepends=True)
                                          if line.startswith("apt-get") and "install" in line
                                          and "postgresql-common" not in line)
