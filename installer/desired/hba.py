"""pg_hba.conf editing, pure: a managed block for the app role, and no `trust`.

The block goes before the first rule, so its lines match first. Every other
line is kept as it is, except a `trust` method, which becomes `peer` on
`local` lines and `scram-sha-256` on host lines (trust lets anyone in).
"""

from __future__ import annotations

from dataclasses import dataclass

BEGIN = "# BEGIN chatalot-db managed block for {user}@{database}: rewritten on every run"
END = "# END chatalot-db managed block for {user}@{database}"

LOOPBACK = ("127.0.0.1/32", "::1/128")


@dataclass(frozen=True)
class HbaWanted:
    database: str
    user: str
    #: addresses the app role may connect from with a password over plain TCP
    local_cidrs: tuple[str, ...] = LOOPBACK
    #: remote networks, allowed only over SSL (hostssl)
    remote_cidrs: tuple[str, ...] = ()
    #: the role's name before a rename: its block for this database is replaced by ours
    renamed_from: str | None = None


def managed_block(w: HbaWanted) -> list[str]:
    lines = [BEGIN.format(user=w.user, database=w.database)]
    for cidr in w.local_cidrs:
        lines.append(f"host    {w.database:<15} {w.user:<15} {cidr:<23} scram-sha-256")
    for cidr in w.remote_cidrs:
        lines.append(f"hostssl {w.database:<15} {w.user:<15} {cidr:<23} scram-sha-256")
    lines.append(END.format(user=w.user, database=w.database))
    return lines


def _fix_trust(line: str) -> str:
    """Replace a `trust` method on a rule line; other lines unchanged."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return line
    code, sep, comment = line.partition("#")
    fields = code.split()
    if "trust" not in fields:
        return line
    kind = fields[0]
    # method is the first field after the address part; `trust` never appears elsewhere
    # in a valid rule except as a database/user name, which we leave alone
    method_index = 3 if kind == "local" else 4
    if kind != "local" and len(fields) > 4 and "/" not in fields[3] and len(fields) > 5:
        method_index = 5  # address + netmask form
    if len(fields) <= method_index or fields[method_index] != "trust":
        return line
    fields[method_index] = "peer" if kind == "local" else "scram-sha-256"
    new = "    ".join(fields)
    return new + (f"  {sep}{comment}" if sep else "")


def render(current: str, wanted: HbaWanted) -> str:
    """Return pg_hba.conf text with the managed block in place and no trust rules.

    An existing block is rewritten where it stands (so several apps' blocks on one
    cluster keep their order and a rerun changes nothing); a new block goes at the top,
    before every rule, so the app role's lines match first. A renamed role's old block
    (`renamed_from`) is rewritten as the new one, or dropped when both are there.
    """
    users = [wanted.user] + ([wanted.renamed_from] if wanted.renamed_from else [])
    ends = {BEGIN.format(user=u, database=wanted.database):
            END.format(user=u, database=wanted.database) for u in users}
    block = managed_block(wanted)
    out: list[str] = []
    end: str | None = None
    placed = False
    for line in current.splitlines():
        if end is None and line.strip() in ends:
            end = ends[line.strip()]
            if not placed:
                placed = True
                out.extend(block)
            continue
        if end is not None:
            if line.strip() == end:
                end = None
            continue
        out.append(_fix_trust(line))
    if not placed:
        while out and not out[0].strip():
            out.pop(0)
        out = [*block, "", *out]
    return "\n".join(out).rstrip("\n") + "\n"
