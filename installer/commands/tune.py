"""`chatalot-db tune`: print the settings the tuning calculator gives for stated inputs.

Touches no host: the inputs are the command-line options, the output is
postgresql.conf lines (or, with --json, an object of setting name -> value).
"""

from __future__ import annotations

import argparse
import json
import sys

from installer.desired.tuning import (
    CHATALOT_MAX_CONNECTIONS,
    DISK_TYPES,
    MAX_PG_MAJOR,
    MIN_PG_MAJOR,
    PROFILES,
    TuningInputs,
    compute,
    conf_value,
    format_kb,
    parse_size,
)
from installer.errors import EXIT_BAD_OPTIONS, ChatalotError, UsageError

DEFAULT_PROFILE = "chatalot"
DEFAULT_DISK = "ssd"
#: The Chatalot guide's docker-compose runs postgres:17.
DEFAULT_PG_VERSION = 17
DEFAULT_RESERVED_CONNECTIONS = 3

_DESCRIPTION = """\
Print PostgreSQL settings scaled to a machine's memory, CPUs and disk, as
postgresql.conf lines. Nothing is read from or changed on any host.

Profiles: chatalot (the default: PGTune's web rules with max_connections 100
and wal_buffers 16MB, as the Chatalot database guide recommends), and PGTune's
web, oltp, dw (data warehouse), desktop and mixed.
"""

_EPILOG = f"""\
max_connections must leave room for the Chatalot server's pool of 50
connections plus the superuser-reserved ones (at least 53 by default), so the
dw and desktop profiles (PGTune defaults 40 and 20) need --connections.

examples:
  chatalot-db tune --memory 4GB --cpus 2
  chatalot-db tune --memory 16GB --cpus 8 --disk nvme --pg-version 16 --profile web
  chatalot-db tune --memory 64GB --cpus 16 --profile dw --connections 100 --json

PostgreSQL majors {MIN_PG_MAJOR} to {MAX_PG_MAJOR} are supported. Exit status 5 on bad input.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tune`; its `func` takes the parsed Namespace and returns the exit code."""
    parser = subparsers.add_parser(
        "tune",
        help="print PostgreSQL settings for a given memory, CPU count and disk",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--memory",
        required=True,
        metavar="SIZE",
        help="RAM available to PostgreSQL, e.g. 4GB, 512MB, 1.5GB "
        "(binary units; a bare number is bytes)",
    )
    parser.add_argument("--cpus", required=True, metavar="N", help="CPUs available to PostgreSQL")
    parser.add_argument(
        "--disk",
        default=DEFAULT_DISK,
        metavar="TYPE",
        help=f"storage of the data directory: {', '.join(DISK_TYPES)} (default: {DEFAULT_DISK})",
    )
    parser.add_argument(
        "--pg-version",
        default=str(DEFAULT_PG_VERSION),
        metavar="MAJOR",
        help=f"PostgreSQL major version, {MIN_PG_MAJOR} to {MAX_PG_MAJOR} "
        f"(default: {DEFAULT_PG_VERSION}, the guide's postgres:17)",
    )
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        metavar="NAME",
        help=f"workload profile: {', '.join(PROFILES)} (default: {DEFAULT_PROFILE})",
    )
    parser.add_argument(
        "--connections",
        default=None,
        metavar="N",
        help=f"max_connections (default: {CHATALOT_MAX_CONNECTIONS} for chatalot; PGTune's "
        "per-profile default otherwise: web 200, oltp 300, dw 40, desktop 20, mixed 100)",
    )
    parser.add_argument(
        "--reserved-connections",
        default=str(DEFAULT_RESERVED_CONNECTIONS),
        metavar="N",
        help="superuser_reserved_connections of the server "
        f"(default: {DEFAULT_RESERVED_CONNECTIONS}, PostgreSQL's default)",
    )
    parser.add_argument(
        "--no-lz4",
        dest="lz4",
        action="store_false",
        help="the server lacks lz4: on PostgreSQL 15+ use wal_compression = pglz, not lz4",
    )
    parser.add_argument(
        "--no-io-uring",
        dest="io_uring",
        action="store_false",
        help="the server or kernel lacks io_uring: on PostgreSQL 18+ use io_method = worker",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON object of setting name -> value instead of postgresql.conf lines",
    )
    parser.set_defaults(func=run)


def _whole_number(option: str, text: object) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise UsageError(f"{option} must be a whole number, got {text!r}") from None


def _inputs(args: argparse.Namespace) -> TuningInputs:
    connections = args.connections
    return TuningInputs(
        memory_kb=parse_size(args.memory),
        cpus=_whole_number("--cpus", args.cpus),
        disk=str(args.disk).strip().lower(),
        pg_major=_whole_number("--pg-version", args.pg_version),
        profile=str(args.profile).strip().lower(),
        max_connections=None
        if connections is None
        else _whole_number("--connections", connections),
        superuser_reserved_connections=_whole_number(
            "--reserved-connections", args.reserved_connections
        ),
        lz4=bool(getattr(args, "lz4", True)),
        io_uring=bool(getattr(args, "io_uring", True)),
    )


def _header(inp: TuningInputs, settings: dict[str, str]) -> list[str]:
    connections = settings["max_connections"]
    if inp.max_connections is None:
        connections += f" ({inp.profile} profile default)"
    lines = [
        "# Generated by chatalot-db tune",
        f"# PostgreSQL: {inp.pg_major}",
        f"# Profile: {inp.profile}",
        f"# Memory: {format_kb(inp.memory_kb)}",
        f"# CPUs: {inp.cpus}",
        f"# Disk: {inp.disk}",
        f"# Connections: {connections}",
    ]
    if settings.get("wal_compression") == "lz4":
        lines.append("# wal_compression = lz4 needs a server built with lz4 (else use --no-lz4)")
    if settings.get("io_method") == "io_uring":
        lines.append(
            "# io_method = io_uring needs a server built with liburing and a kernel that "
            "allows io_uring (else use --no-io-uring)"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the settings for the inputs in `args`; 0, or 5 (message on stderr) on bad input."""
    try:
        inp = _inputs(args)
        settings = compute(inp)
    except ChatalotError as exc:
        print(f"chatalot-db: error: {exc}", file=sys.stderr)
        return EXIT_BAD_OPTIONS
    if getattr(args, "json", False):
        print(json.dumps(settings, indent=2))
        return 0
    lines = _header(inp, settings)
    lines.append("")
    lines.extend(f"{name} = {conf_value(value)}" for name, value in settings.items())
    print("\n".join(lines))
    return 0
