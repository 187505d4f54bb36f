"""The built wheel carries templates/ and migrations/, and the installed code finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_ships_templates_migrations_and_the_verify_suite(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(tmp_path / "dist"), str(REPO)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("chatalot_db-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "site")
    migrations = sorted(p.name for p in (REPO / "migrations").glob("*.sql"))
    assert "installer/_data/templates/postgresql.conf.j2" in names
    assert {f"installer/_data/migrations/{m}" for m in migrations} <= names
    assert "installer/verify/test_chatalot_host.py" in names
    # the installed package resolves its data inside itself, not from a checkout
    probe = ("from installer.resources import templates_dir, migrations_dir; "
             "print(templates_dir()); print(migrations_dir())")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, check=True,
                         capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    site = str(tmp_path / "site" / "installer" / "_data")
    assert out.stdout.split() == [f"{site}/templates", f"{site}/migrations"]
