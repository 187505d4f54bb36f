"""Find the bundled templates and migrations, from a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """`templates` or `migrations`: inside the wheel (installer/_data) or the checkout root."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"bundled {name}/ folder not found (looked in {_PKG / '_data' / name} and "
        f"{_PKG.parent / name}); reinstall chatalot-db"
    )


def templates_dir() -> Path:
    return data_dir("templates")


def migrations_dir() -> Path:
    return data_dir("migrations")
