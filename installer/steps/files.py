"""Files we manage on a host: written atomically (content on stdin, never in argv), the
previous one kept as a backup and put back when the server refuses the new one; diffs."""

from __future__ import annotations

import difflib

from installer.transport.base import Transport
from installer.transport.shell import sh

BACKUP_SUFFIX = ".chatalot-db.bak"


def write_file(t: Transport, path: str, content: str, *, mode: str, owner: str,
               backup: bool = True) -> None:
    """Atomically replace a file as root (content on stdin), keeping the old one as a
    backup (`path` + BACKUP_SUFFIX) unless `backup` is False."""
    directory = path.rsplit("/", 1)[0] or "/"
    q = sh(path)
    keep = f"cp -p {q} {sh(path + BACKUP_SUFFIX)}" if backup else "true"
    script = (
        "set -e; umask 077\n"
        f"mkdir -p {sh(directory)}\n"
        f"tmp=$(mktemp {sh(path + '.XXXXXX')})\n"
        'trap \'rm -f "$tmp"\' EXIT\n'
        'cat > "$tmp"\n'
        f'chmod {sh(mode)} "$tmp"; chown {sh(owner)} "$tmp"\n'
        f"if [ -e {q} ]; then {keep}; fi\n"
        f'mv -f "$tmp" {q}\n'
        "trap - EXIT\n"
    )
    t.check(script, what=f"writing {path}", become="root", stdin=content, timeout=600)


def restore_file(t: Transport, path: str, previous: str | None) -> None:
    """Put back the file as it was before `write_file` (or remove it if it was new)."""
    if previous is None:
        t.check(f"rm -f {sh(path)}", what=f"removing {path}", become="root", timeout=600)
    else:
        t.check(f"cp -p {sh(path + BACKUP_SUFFIX)} {sh(path)}",
                what=f"restoring {path} from its backup", become="root", timeout=600)


def unified_diff(path: str, old: str | None, new: str) -> str:
    return "".join(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (before)" if old is not None else "/dev/null",
            tofile=f"{path} (after)",
        )
    )
