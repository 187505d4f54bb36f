"""The Chatalot host suite: pytest-testinfra checks shipped with the package.

`chatalot-db verify` runs it against inventory hosts; testinfra users run it
with plain pytest (`pytest --hosts=ssh://root@db01 SUITE`, SUITE being
`suite_path()`, which `chatalot-db verify --print-suite-path` prints).
"""

from __future__ import annotations

from pathlib import Path

SUITE_FILE = "test_chatalot_host.py"


def suite_path() -> Path:
    """The folder holding the suite and its conftest.py (pass it to pytest)."""
    return Path(__file__).resolve().parent
