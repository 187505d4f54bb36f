"""bench/.venv: Ansible and matplotlib, kept apart from the project's .venv.

The virtualenv lives in a cache outside the repo, keyed by a hash of
bench/requirements.txt and the Python version, so a rerun finds it ready;
bench/.venv is a symlink to it (gitignored).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

DEFAULT_CACHE = Path("/var/cache/chatalot-bench")
MARKER = ".chatalot-bench-complete"


def venv_key(requirements: Path) -> str:
    blob = requirements.read_bytes() + sys.version.encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def ensure_venv(bench_dir: Path, cache: Path, report: Callable[[str], None]) -> Path:
    """The cached venv for bench/requirements.txt (built if missing); bench/.venv points to it."""
    requirements = bench_dir / "requirements.txt"
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"venv-{venv_key(requirements)}"
    with (cache / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / MARKER).is_file():
            if target.exists():
                shutil.rmtree(target)
            report(f"building {target} (ansible, matplotlib) from {requirements}")
            base = getattr(sys, "_base_executable", sys.executable)
            subprocess.run([base, "-m", "venv", str(target)], check=True)
            done = subprocess.run([str(target / "bin" / "pip"), "install", "-q",
                                   "--disable-pip-version-check", "-r", str(requirements)],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"pip install -r {requirements} failed "
                                   f"(exit {done.returncode}):\n{done.stderr[-3000:]}")
            (target / MARKER).write_text(requirements.read_text())
    link = bench_dir / ".venv"
    if link.is_symlink() or not link.exists():
        if not (link.is_symlink() and os.readlink(link) == str(target)):
            tmp = bench_dir / ".venv.tmp-link"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target)
            os.replace(tmp, link)
        return link
    if (link / "bin" / "ansible-playbook").exists():
        return link  # a venv someone made there by hand: use it as it is
    raise RuntimeError(f"{link} is a directory without ansible-playbook: remove it and rerun")
