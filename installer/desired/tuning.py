"""Memory-scaled PostgreSQL settings: PGTune's formulas plus the Chatalot guide's profile.

Pure functions, no I/O: the facts (RAM, cgroup files, CPU count, the data
disk's `rotational` flag, the server's major version) are read elsewhere and
passed in as plain values. The contract is docs/tuning.md; where it is silent
this module follows PGTune (github.com/le0pard/pgtune,
src/features/configuration/configurationSlice.js for the formulas and
src/common/components/configurationView/index.jsx for which settings are
printed and in what order), for a Linux host and PGTune's default
"database size" answer (between RAM and 4x RAM, which leaves work_mem as is).

Every size is integer kB. `compute()` returns the settings in PGTune's output
order, each value as PostgreSQL's own text ("1GB", "5041kB", "0.9", "off").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from installer.errors import TuningError

PROFILES = ("chatalot", "web", "oltp", "dw", "desktop", "mixed")
DISK_TYPES = ("ssd", "hdd", "san", "nvme")

#: PostgreSQL majors PGTune has rules for (it offers 10 to 18).
MIN_PG_MAJOR = 10
MAX_PG_MAJOR = 18

#: The Chatalot server's pool opens up to this many connections (compiled in).
CHATALOT_POOL_CONNECTIONS = 50
#: max_connections of the `chatalot` profile (the guide's value).
CHATALOT_MAX_CONNECTIONS = 100
#: wal_buffers of the `chatalot` profile (the guide's fixed value).
CHATALOT_WAL_BUFFERS_KB = 16 * 1024

#: Below this the formulas stop making sense (PGTune warns below 256MB and its
#: form refuses less than 512MB).
MIN_MEMORY_KB = 256 * 1024
#: Above this effective_cache_size (3/4 of RAM) passes PostgreSQL's 16TB maximum.
MAX_MEMORY_KB = 16 * 1024**3
#: PostgreSQL's upper bound for max_connections (MAX_BACKENDS).
MAX_CONNECTIONS_LIMIT = 262143

_KB_PER_MB = 1024
_KB_PER_GB = 1024 * 1024

# PGTune's constants, in kB.
_MAINTENANCE_WORK_MEM_CAP_KB = 8 * _KB_PER_GB
_AUTOVACUUM_WORK_MEM_KB = 2 * _KB_PER_GB
_HUGE_PAGES_THRESHOLD_KB = 2 * _KB_PER_GB
_WAL_BUFFERS_MAX_KB = 16 * _KB_PER_MB
_WAL_BUFFERS_NEAR_KB = 14 * _KB_PER_MB
_WAL_BUFFERS_MIN_KB = 32
_WORK_MEM_MIN_KB = 4 * _KB_PER_MB
#: max_worker_processes assumed for work_mem when no parallel settings are emitted.
_DEFAULT_WORKER_PROCESSES = 8
#: PostgreSQL's hard maximum for io_workers (PG 18).
_IO_WORKERS_MAX = 32
_IO_WORKERS_DEFAULT = 3


@dataclass(frozen=True)
class TuningInputs:
    """What the host has and what it is for.

    `lz4`: the server was built with lz4 (PG >= 15 then gets
    wal_compression = lz4, else pglz). `io_uring`: the server was built with
    liburing and the kernel lets it use io_uring (PG >= 18 then gets
    io_method = io_uring, else worker). Both default to PGTune's assumption
    (a standard package build); the caller checks the host and passes False
    when it lacks support, e.g. when `pg_settings.enumvals` of wal_compression
    or io_method lacks the value.
    """

    memory_kb: int
    cpus: int
    disk: str
    pg_major: int
    profile: str = "chatalot"
    max_connections: int | None = None
    superuser_reserved_connections: int = 3
    lz4: bool = True
    io_uring: bool = True


@dataclass(frozen=True)
class _Rules:
    """One PGTune "DB type"."""

    default_connections: int
    shared_buffers_divisor: int
    effective_cache_quarters: int
    maintenance_divisor: int
    work_mem_divisor: int
    statistics_target: int
    min_wal_size_kb: int
    max_wal_size_kb: int


_RULES: dict[str, _Rules] = {
    "web": _Rules(200, 4, 3, 16, 1, 100, 1 * _KB_PER_GB, 4 * _KB_PER_GB),
    "oltp": _Rules(300, 4, 3, 16, 1, 100, 2 * _KB_PER_GB, 8 * _KB_PER_GB),
    "dw": _Rules(40, 4, 3, 8, 2, 500, 4 * _KB_PER_GB, 16 * _KB_PER_GB),
    "desktop": _Rules(20, 16, 1, 16, 6, 100, 100 * _KB_PER_MB, 2 * _KB_PER_GB),
    "mixed": _Rules(100, 4, 3, 16, 2, 100, 1 * _KB_PER_GB, 4 * _KB_PER_GB),
}

_EFFECTIVE_IO_CONCURRENCY = {"hdd": 2, "ssd": 200, "san": 300, "nvme": 1000}
#: Profiles that get jit = off on PG >= 12 (short queries, where JIT only costs).
_JIT_OFF_PROFILES = frozenset({"web", "oltp", "mixed"})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(inp: TuningInputs) -> None:
    if inp.profile not in PROFILES:
        raise TuningError(
            f"unknown tuning profile {inp.profile!r}: choose one of {', '.join(PROFILES)}"
        )
    if inp.disk not in DISK_TYPES:
        raise TuningError(f"unknown disk type {inp.disk!r}: choose one of {', '.join(DISK_TYPES)}")
    if not _is_int(inp.memory_kb) or inp.memory_kb <= 0:
        raise TuningError(f"memory must be a positive number of kB, got {inp.memory_kb!r}")
    if inp.memory_kb < MIN_MEMORY_KB:
        raise TuningError(
            f"memory {format_kb(inp.memory_kb)} is below {format_kb(MIN_MEMORY_KB)}, the least "
            "these formulas are meant for: give the host (or its cgroup) more memory, "
            "or set the memory input explicitly"
        )
    if inp.memory_kb > MAX_MEMORY_KB:
        raise TuningError(
            f"memory {format_kb(inp.memory_kb)} is above {format_kb(MAX_MEMORY_KB)}, more than "
            "PostgreSQL's settings can address: set the memory input explicitly"
        )
    if not _is_int(inp.cpus) or inp.cpus <= 0:
        raise TuningError(f"cpus must be a positive whole number, got {inp.cpus!r}")
    if not _is_int(inp.pg_major) or not MIN_PG_MAJOR <= inp.pg_major <= MAX_PG_MAJOR:
        raise TuningError(
            f"no tuning rules for PostgreSQL {inp.pg_major!r}: supported majors are "
            f"{MIN_PG_MAJOR} to {MAX_PG_MAJOR}"
        )
    reserved = inp.superuser_reserved_connections
    if not _is_int(reserved) or reserved < 0:
        raise TuningError(f"superuser_reserved_connections must be 0 or more, got {reserved!r}")
    if inp.max_connections is not None and not _is_int(inp.max_connections):
        raise TuningError(f"max_connections must be a whole number, got {inp.max_connections!r}")


def _max_connections(inp: TuningInputs, base: str) -> int:
    """The max_connections to use; refuses one that leaves no room for Chatalot's pool."""
    if inp.max_connections is not None:
        value, source = inp.max_connections, "max_connections"
    elif inp.profile == "chatalot":
        value, source = CHATALOT_MAX_CONNECTIONS, "the chatalot profile's max_connections"
    else:
        value = _RULES[base].default_connections
        source = f"the {inp.profile} profile's default max_connections"
    check_max_connections(value, source, inp.superuser_reserved_connections)
    return value


def check_max_connections(value: int, source: str = "max_connections",
                          reserved: int = 3) -> None:
    """Refuse a max_connections that leaves no room for Chatalot's pool (or that PostgreSQL
    cannot take). Pure: the variables check runs it before any host is contacted."""
    needed = CHATALOT_POOL_CONNECTIONS + reserved
    if value < needed:
        raise TuningError(
            f"{source} {value} is too low: the Chatalot server's pool opens up to "
            f"{CHATALOT_POOL_CONNECTIONS} connections and {reserved} "
            f"are reserved for superusers, so max_connections must be at least {needed}"
        )
    if value > MAX_CONNECTIONS_LIMIT:
        raise TuningError(
            f"{source} {value} is above PostgreSQL's limit of {MAX_CONNECTIONS_LIMIT}"
        )


def _wal_buffers_kb(shared_buffers_kb: int) -> int:
    """PGTune: 3% of shared_buffers, at most 16MB, rounded up to 16MB above 14MB, at least 32kB."""
    value = min(3 * shared_buffers_kb // 100, _WAL_BUFFERS_MAX_KB)
    if _WAL_BUFFERS_NEAR_KB < value < _WAL_BUFFERS_MAX_KB:
        value = _WAL_BUFFERS_MAX_KB
    return max(value, _WAL_BUFFERS_MIN_KB)


def _parallel_settings(cpus: int, pg_major: int, base: str) -> list[tuple[str, int]]:
    """PGTune's parallel-query settings: none below 4 CPUs."""
    if cpus < 4:
        return []
    half = math.ceil(cpus / 2)
    per_gather = half if base == "dw" else min(half, 4)
    settings = [("max_worker_processes", cpus), ("max_parallel_workers_per_gather", per_gather)]
    if pg_major >= 10:
        settings.append(("max_parallel_workers", cpus))
    if pg_major >= 11:
        settings.append(("max_parallel_maintenance_workers", min(half, 4)))
    return settings


def compute(inp: TuningInputs) -> dict[str, str]:
    """The recommended settings for `inp`, in PGTune's order, as PostgreSQL text.

    Raises TuningError for an unknown profile or disk, memory or CPUs out of
    range, an unsupported major, or a max_connections too low for Chatalot's
    pool (including the dw and desktop profiles' defaults of 40 and 20).
    """
    _validate(inp)
    base = "web" if inp.profile == "chatalot" else inp.profile
    rules = _RULES[base]
    pg = inp.pg_major
    memory = inp.memory_kb

    max_connections = _max_connections(inp, base)
    shared_buffers = memory // rules.shared_buffers_divisor
    effective_cache = memory * rules.effective_cache_quarters // 4
    maintenance = min(memory // rules.maintenance_divisor, _MAINTENANCE_WORK_MEM_CAP_KB)
    if inp.profile == "chatalot":
        wal_buffers = CHATALOT_WAL_BUFFERS_KB
    else:
        wal_buffers = _wal_buffers_kb(shared_buffers)
    parallel = _parallel_settings(inp.cpus, pg, base)
    workers = inp.cpus if parallel else _DEFAULT_WORKER_PROCESSES
    # (RAM - shared_buffers) / ((max_connections + max_worker_processes) * 3), then
    # divided per profile; floor(floor(a / b) / d) == a // (b * d) for positive ints.
    work_mem = (memory - shared_buffers) // (
        (max_connections + workers) * 3 * rules.work_mem_divisor
    )
    work_mem = max(work_mem, _WORK_MEM_MIN_KB)
    # PGTune leaves dw at PostgreSQL's default 4 on every disk (its index-scan warning).
    random_page_cost = "4" if inp.disk == "hdd" or base == "dw" else "1.1"

    out: dict[str, str] = {
        "max_connections": str(max_connections),
        "shared_buffers": format_kb(shared_buffers),
        "effective_cache_size": format_kb(effective_cache),
        "maintenance_work_mem": format_kb(maintenance),
        "checkpoint_completion_target": "0.9",
        "wal_buffers": format_kb(wal_buffers),
        "default_statistics_target": str(rules.statistics_target),
        "random_page_cost": random_page_cost,
        "effective_io_concurrency": str(_EFFECTIVE_IO_CONCURRENCY[inp.disk]),
        "work_mem": format_kb(work_mem),
        "huge_pages": "try" if shared_buffers >= _HUGE_PAGES_THRESHOLD_KB else "off",
    }
    if pg >= 12 and base in _JIT_OFF_PROFILES:
        out["jit"] = "off"
    if pg >= 15:
        out["wal_compression"] = "lz4" if inp.lz4 else "pglz"
    else:
        out["wal_compression"] = "on"
    if inp.cpus >= 32:
        out["autovacuum_max_workers"] = "5"
    elif inp.cpus >= 16:
        out["autovacuum_max_workers"] = "4"
    if maintenance >= _AUTOVACUUM_WORK_MEM_KB:
        out["autovacuum_work_mem"] = format_kb(_AUTOVACUUM_WORK_MEM_KB)
    if pg >= 18:
        out["io_method"] = "io_uring" if inp.io_uring else "worker"
        io_workers = min(_IO_WORKERS_MAX, max(_IO_WORKERS_DEFAULT, inp.cpus // 4))
        if io_workers > _IO_WORKERS_DEFAULT:
            out["io_workers"] = str(io_workers)
    out["min_wal_size"] = format_kb(rules.min_wal_size_kb)
    out["max_wal_size"] = format_kb(rules.max_wal_size_kb)
    for name, value in parallel:
        out[name] = str(value)
    if base == "desktop":
        out["wal_level"] = "minimal"
        out["max_wal_senders"] = "0"
    return out


# -- units --------------------------------------------------------------------


def format_kb(kb: int) -> str:
    """kB as PostgreSQL prints it: NGB if whole GB, else NMB if whole MB, else NkB."""
    if not _is_int(kb) or kb < 0:
        raise TuningError(f"a size must be a whole number of kB, 0 or more, got {kb!r}")
    if kb % _KB_PER_GB == 0:
        return f"{kb // _KB_PER_GB}GB"
    if kb % _KB_PER_MB == 0:
        return f"{kb // _KB_PER_MB}MB"
    return f"{kb}kB"


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*$")
#: bytes per unit; all binary, as PostgreSQL's kB/MB/GB/TB are.
_UNIT_BYTES = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}


def parse_size(text: str | int) -> int:
    """A size ("4GB", "512MB", "1.5GB", "4096kB", "4 GiB", "8g") as whole kB, rounded down.

    Units are binary and case-insensitive (kB = KiB = 1024 bytes, as in
    PostgreSQL); a bare number, or an int, is bytes.
    """
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise TuningError(f"not a size: {text!r} (expected e.g. 4GB, 512MB or a number of bytes)")
    if isinstance(text, int):
        if text < 0:
            raise TuningError(f"a size cannot be negative: {text}")
        return text // 1024
    match = _SIZE_RE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNIT_BYTES:
        raise TuningError(
            f"not a size: {text!r} (expected a number with an optional unit B, kB, MB, GB "
            "or TB, e.g. 4GB, 512MB, 1.5GB; a bare number is bytes)"
        )
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise TuningError(f"not a size: {text!r}") from exc
    return int(number * _UNIT_BYTES[unit] // 1024)


# -- what the host really has ---------------------------------------------------

#: A cgroup limit at or above this many bytes means "no limit" (v1 reports 2^63 - page).
_ABSURD_BYTES = 2**60


def _cgroup_int(value: str | None, what: str) -> int | None:
    """An integer read from a cgroup file; None when absent, empty or "max"."""
    if value is None:
        return None
    text = value.strip()
    if text in ("", "max"):
        return None
    try:
        return int(text)
    except ValueError:
        raise TuningError(
            f"cannot read {what}: {value.strip()!r} is neither a number nor 'max'"
        ) from None


def effective_memory_kb(
    meminfo_total_kb: int,
    cgroup_v2_memory_max: str | None,
    cgroup_v1_limit: str | None,
) -> int:
    """Host RAM (MemTotal, kB) lowered to the tightest cgroup memory limit (file text, bytes).

    "max", empty files, limits of 0 or less, limits at or above the host's RAM
    and limits of 2^60 bytes or more (v1's "unlimited") are ignored.
    """
    if not _is_int(meminfo_total_kb) or meminfo_total_kb <= 0:
        raise TuningError(f"MemTotal must be a positive number of kB, got {meminfo_total_kb!r}")
    result = meminfo_total_kb
    for text, what in (
        (cgroup_v2_memory_max, "cgroup v2 memory.max"),
        (cgroup_v1_limit, "cgroup v1 memory.limit_in_bytes"),
    ):
        limit = _cgroup_int(text, what)
        if limit is None or limit <= 0 or limit >= _ABSURD_BYTES:
            continue
        limit_kb = limit // 1024
        if 0 < limit_kb < result:
            result = limit_kb
    return result


def effective_cpus(
    nproc: int,
    cgroup_v2_cpu_max: str | None,
    cgroup_v1_quota: str | None,
    cgroup_v1_period: str | None,
) -> int:
    """CPUs usable: nproc lowered to the tightest CPU quota, rounded up, between 1 and nproc.

    v2 `cpu.max` is "QUOTA PERIOD" or "max PERIOD"; v1 gives cpu.cfs_quota_us
    (-1 = unlimited) and cpu.cfs_period_us (100000 when not given).
    """
    if not _is_int(nproc) or nproc <= 0:
        raise TuningError(f"the CPU count must be a positive whole number, got {nproc!r}")
    quotas: list[tuple[int, int]] = []
    if cgroup_v2_cpu_max is not None and cgroup_v2_cpu_max.strip():
        fields = cgroup_v2_cpu_max.split()
        if len(fields) > 2:
            raise TuningError(
                f"cannot read cgroup v2 cpu.max: {cgroup_v2_cpu_max.strip()!r} is not "
                "'QUOTA PERIOD' or 'max PERIOD'"
            )
        quota = _cgroup_int(fields[0], "cgroup v2 cpu.max quota")
        period = _cgroup_int(fields[1], "cgroup v2 cpu.max period") if len(fields) == 2 else None
        if quota is not None:
            quotas.append((quota, 100000 if period is None else period))
    v1_quota = _cgroup_int(cgroup_v1_quota, "cgroup v1 cpu.cfs_quota_us")
    v1_period = _cgroup_int(cgroup_v1_period, "cgroup v1 cpu.cfs_period_us")
    if v1_quota is not None:
        quotas.append((v1_quota, 100000 if v1_period is None else v1_period))
    result = nproc
    for quota, period in quotas:
        if quota <= 0 or period <= 0:  # -1 is v1's "unlimited"
            continue
        result = min(result, max(1, math.ceil(quota / period)))
    return result


def disk_type_from_rotational(rotational: str | None, device_name: str) -> str:
    """The disk type from /sys/block/<dev>/queue/rotational: nvme* -> nvme, 1 -> hdd, else ssd."""
    name = device_name.strip().rsplit("/", 1)[-1]
    if name.startswith("nvme"):
        return "nvme"
    if rotational is not None and rotational.strip() == "1":
        return "hdd"
    return "ssd"


# -- user overrides and postgresql.conf text --------------------------------------

_GUC_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?$")


def render_value(value: object) -> str:
    """A Python value as PostgreSQL setting text: True -> on, 42 -> "42", ["a", "b"] -> "a,b"."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TuningError(f"a setting cannot be {value!r}")
        return repr(value)
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        text = ",".join(value)
    else:
        raise TuningError(
            f"cannot use {value!r} as a setting value: give a string, number, boolean "
            "or a list of strings"
        )
    if any(c in text for c in "\n\r\0"):
        raise TuningError(f"a setting value cannot contain a line break or NUL: {text!r}")
    return text


def merge_overrides(computed: dict[str, str], pg_settings: Mapping[str, object]) -> dict[str, str]:
    """`computed` with the user's `pg_settings` applied: overrides keep their place, new ones last.

    Names are matched case-insensitively (as PostgreSQL does) and must be valid
    setting names (`work_mem`, `pg_stat_statements.max`); values are rendered
    by `render_value`. Neither argument is modified.
    """
    merged = dict(computed)
    for raw_name, value in pg_settings.items():
        name = raw_name.strip().lower() if isinstance(raw_name, str) else ""
        if not _GUC_NAME_RE.match(name):
            raise TuningError(
                f"pg_settings: {raw_name!r} is not a PostgreSQL setting name "
                "(letters, digits and _, optionally prefix.name)"
            )
        try:
            merged[name] = render_value(value)
        except TuningError as exc:
            raise TuningError(f"pg_settings {name}: {exc}") from None
    return merged


_UNQUOTED_RE = re.compile(
    r"^(?:[A-Za-z_][A-Za-z0-9_]*"  # an identifier: on, lz4, io_uring
    r"|[+-]?\d+[A-Za-z]*"  # an integer with an optional unit: 100, 5041kB
    r"|[+-]?(?:\d+\.\d*|\.\d+))$"  # a plain decimal: 0.9, 1.1
)


def conf_value(value: str) -> str:
    """`value` as written after `name = ` in postgresql.conf, quoted unless a bare token."""
    if _UNQUOTED_RE.match(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


# -- applying -------------------------------------------------------------------

#: Settings with context `postmaster` (changing them needs a restart) in every
#: PostgreSQL major from 10 to 18 that has them. Version-dependent ones are in
#: `_POSTMASTER_BY_VERSION`; prefer pg_settings.context where the server is up.
POSTMASTER_SETTINGS: frozenset[str] = frozenset(
    {
        "archive_mode",
        "autovacuum_freeze_max_age",
        "autovacuum_multixact_freeze_max_age",
        "bonjour",
        "bonjour_name",
        "cluster_name",
        "config_file",
        "data_directory",
        "data_sync_retry",
        "dynamic_shared_memory_type",
        "event_source",
        "external_pid_file",
        "hba_file",
        "hot_standby",
        "huge_pages",
        "ident_file",
        "jit_provider",
        "listen_addresses",
        "logging_collector",
        "max_connections",
        "max_files_per_process",
        "max_locks_per_transaction",
        "max_logical_replication_workers",
        "max_pred_locks_per_transaction",
        "max_prepared_transactions",
        "max_replication_slots",
        "max_wal_senders",
        "max_worker_processes",
        "port",
        "shared_buffers",
        "shared_memory_type",
        "shared_preload_libraries",
        "superuser_reserved_connections",
        "track_activity_query_size",
        "track_commit_timestamp",
        "unix_socket_directories",
        "unix_socket_group",
        "unix_socket_permissions",
        "wal_buffers",
        "wal_level",
        "wal_log_hints",
    }
)

#: name -> (first major, last major) in which the setting has context postmaster.
_POSTMASTER_BY_VERSION: dict[str, tuple[int, int]] = {
    "autovacuum_max_workers": (MIN_PG_MAJOR, 17),  # sighup from 18 (autovacuum_worker_slots)
    "old_snapshot_threshold": (MIN_PG_MAJOR, 16),  # removed in 17
    "primary_conninfo": (12, 12),  # recovery.conf before 12, sighup from 13
    "primary_slot_name": (12, 12),
    "restore_command": (12, 13),  # sighup from 14
    "recovery_target": (12, MAX_PG_MAJOR),
    "recovery_target_action": (12, MAX_PG_MAJOR),
    "recovery_target_inclusive": (12, MAX_PG_MAJOR),
    "recovery_target_lsn": (12, MAX_PG_MAJOR),
    "recovery_target_name": (12, MAX_PG_MAJOR),
    "recovery_target_time": (12, MAX_PG_MAJOR),
    "recovery_target_timeline": (12, MAX_PG_MAJOR),
    "recovery_target_xid": (12, MAX_PG_MAJOR),
    "huge_page_size": (14, MAX_PG_MAJOR),
    "min_dynamic_shared_memory": (14, MAX_PG_MAJOR),
    "wal_decode_buffer_size": (15, MAX_PG_MAJOR),
    "reserved_connections": (16, MAX_PG_MAJOR),
    "debug_io_direct": (16, MAX_PG_MAJOR),
    "commit_timestamp_buffers": (17, MAX_PG_MAJOR),
    "max_notify_queue_pages": (17, MAX_PG_MAJOR),
    "multixact_member_buffers": (17, MAX_PG_MAJOR),
    "multixact_offset_buffers": (17, MAX_PG_MAJOR),
    "notify_buffers": (17, MAX_PG_MAJOR),
    "serializable_buffers": (17, MAX_PG_MAJOR),
    "subtransaction_buffers": (17, MAX_PG_MAJOR),
    "transaction_buffers": (17, MAX_PG_MAJOR),
    "autovacuum_worker_slots": (18, MAX_PG_MAJOR),
    "io_method": (18, MAX_PG_MAJOR),
    "io_max_concurrency": (18, MAX_PG_MAJOR),
    "max_active_replication_origins": (18, MAX_PG_MAJOR),
}


def needs_restart(name: str, pg_major: int) -> bool:
    """Whether changing `name` on PostgreSQL `pg_major` needs a restart (not just a reload).

    A fallback for when pg_settings.context cannot be read (server down, new
    install); majors above MAX_PG_MAJOR are treated like MAX_PG_MAJOR.
    """
    key = name.strip().lower()
    if key in POSTMASTER_SETTINGS:
        return True
    span = _POSTMASTER_BY_VERSION.get(key)
    if span is None:
        return False
    first, last = span
    if last == MAX_PG_MAJOR:  # still postmaster in the newest major we know
        return pg_major >= first
    return first <= pg_major <= last
