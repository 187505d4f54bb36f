"""Table-driven tests of installer.desired.tuning and the `tune` command.

Every expected value below was worked out by hand from PGTune's formulas
(le0pard/pgtune, src/features/configuration/configurationSlice.js; output
order from src/common/components/configurationView/index.jsx) and from
docs/tuning.md, never copied from our own output. Sizes are kB;
GB = 1048576 kB, MB = 1024 kB. Shorthand in the comments:
  SB = shared_buffers, ECS = effective_cache_size, MWM = maintenance_work_mem,
  P = max_worker_processes used for work_mem (CPUs when >= 4, else 8),
  W = (RAM - SB) / ((max_connections + P) * 3), work_mem = floor(W / d)
  with d = 1 (web, oltp, chatalot), 2 (dw, mixed), 6 (desktop), at least 4MB.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

import pytest

from installer.commands import tune
from installer.desired.tuning import (
    DISK_TYPES,
    POSTMASTER_SETTINGS,
    PROFILES,
    TuningInputs,
    compute,
    conf_value,
    disk_type_from_rotational,
    effective_cpus,
    effective_memory_kb,
    format_kb,
    merge_overrides,
    needs_restart,
    parse_size,
    render_value,
)
from installer.errors import TuningError

GB = 1024 * 1024
MB = 1024

# -- full outputs (values and order) ----------------------------------------------

FULL_CASES: list[tuple[str, TuningInputs, dict[str, str]]] = [
    (
        # Spec worked example 1. SB 1GB/4 = 262144 = 256MB; ECS 786432 = 768MB;
        # MWM 1GB/16 = 65536 = 64MB; wal_buffers floor(0.03 * 262144) = 7864kB;
        # W = 786432 / ((100 + 8) * 3) = 2427.3 -> 2427 < 4096 -> 4MB;
        # SB < 2GB -> huge_pages off; 1 CPU -> no parallel settings; PG 17 -> lz4.
        "spec-example-1-web-1GB-1cpu-ssd-pg17-100conn",
        TuningInputs(1 * GB, 1, "ssd", 17, profile="web", max_connections=100),
        {
            "max_connections": "100",
            "shared_buffers": "256MB",
            "effective_cache_size": "768MB",
            "maintenance_work_mem": "64MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "7864kB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "200",
            "work_mem": "4MB",
            "huge_pages": "off",
            "jit": "off",
            "wal_compression": "lz4",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
        },
    ),
    (
        # Spec worked example 2. SB 1GB; ECS 3GB; MWM 4GB/16 = 256MB;
        # wal_buffers 0.03 * 1048576 = 31457 -> capped 16MB;
        # W = (4194304 - 1048576) / ((200 + 8) * 3) = 3145728 / 624 = 5041.2 -> 5041kB.
        "spec-example-2-web-4GB-2cpu-ssd-pg16-default-conn",
        TuningInputs(4 * GB, 2, "ssd", 16, profile="web"),
        {
            "max_connections": "200",
            "shared_buffers": "1GB",
            "effective_cache_size": "3GB",
            "maintenance_work_mem": "256MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "200",
            "work_mem": "5041kB",
            "huge_pages": "off",
            "jit": "off",
            "wal_compression": "lz4",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
        },
    ),
    (
        # The guide's numbers: web rules, max_connections 100, wal_buffers fixed 16MB.
        # W = 786432 / 324 = 2427.3 -> floored to 4MB.
        "chatalot-guide-1GB-1cpu-ssd-pg17",
        TuningInputs(1 * GB, 1, "ssd", 17),
        {
            "max_connections": "100",
            "shared_buffers": "256MB",
            "effective_cache_size": "768MB",
            "maintenance_work_mem": "64MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "200",
            "work_mem": "4MB",
            "huge_pages": "off",
            "jit": "off",
            "wal_compression": "lz4",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
        },
    ),
    (
        # chatalot 4GB: W = 3145728 / ((100 + 8) * 3) = 3145728 / 324 = 9709.04 -> 9709kB.
        "chatalot-4GB-2cpu-ssd-pg16",
        TuningInputs(4 * GB, 2, "ssd", 16),
        {
            "max_connections": "100",
            "shared_buffers": "1GB",
            "effective_cache_size": "3GB",
            "maintenance_work_mem": "256MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "200",
            "work_mem": "9709kB",
            "huge_pages": "off",
            "jit": "off",
            "wal_compression": "lz4",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
        },
    ),
    (
        # chatalot 512MB on hdd, PG 14: SB 128MB, ECS 384MB, MWM 32MB, wal_buffers 16MB
        # (fixed); rpc 4 and eic 2 for hdd; W = 393216 / 324 = 1213.6 -> 4MB;
        # PG 14 < 15 -> wal_compression on.
        "chatalot-512MB-1cpu-hdd-pg14",
        TuningInputs(512 * MB, 1, "hdd", 14),
        {
            "max_connections": "100",
            "shared_buffers": "128MB",
            "effective_cache_size": "384MB",
            "maintenance_work_mem": "32MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "4",
            "effective_io_concurrency": "2",
            "work_mem": "4MB",
            "huge_pages": "off",
            "jit": "off",
            "wal_compression": "on",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
        },
    ),
    (
        # chatalot 64GB, 16 CPUs, nvme, PG 18: SB 16GB, ECS 48GB, MWM 4GB;
        # P = 16: W = (67108864 - 16777216) / ((100 + 16) * 3) = 50331648 / 348 = 144631.2;
        # 16 CPUs -> autovacuum_max_workers 4; MWM >= 2GB -> autovacuum_work_mem 2GB;
        # PG 18 -> io_method io_uring, io_workers min(32, max(3, 16 // 4)) = 4 > 3;
        # parallel: 16, min(ceil(16/2), 4) = 4, 16, min(8, 4) = 4.
        "chatalot-64GB-16cpu-nvme-pg18",
        TuningInputs(64 * GB, 16, "nvme", 18),
        {
            "max_connections": "100",
            "shared_buffers": "16GB",
            "effective_cache_size": "48GB",
            "maintenance_work_mem": "4GB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "1000",
            "work_mem": "144631kB",
            "huge_pages": "try",
            "jit": "off",
            "wal_compression": "lz4",
            "autovacuum_max_workers": "4",
            "autovacuum_work_mem": "2GB",
            "io_method": "io_uring",
            "io_workers": "4",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
            "max_worker_processes": "16",
            "max_parallel_workers_per_gather": "4",
            "max_parallel_workers": "16",
            "max_parallel_maintenance_workers": "4",
        },
    ),
    (
        # oltp 8GB, 4 CPUs, nvme, PG 15, default 300 connections: SB 2097152 = 2GB
        # (>= 2GB -> huge_pages try); ECS 6GB; MWM 512MB; wal_buffers 62914 -> 16MB;
        # P = 4: W = 6291456 / ((300 + 4) * 3) = 6291456 / 912 = 6898.5 -> 6898kB;
        # oltp WAL 2GB/8GB; parallel 4, ceil(4/2) = 2, 4, 2.
        "oltp-8GB-4cpu-nvme-pg15",
        TuningInputs(8 * GB, 4, "nvme", 15, profile="oltp"),
        {
            "max_connections": "300",
            "shared_buffers": "2GB",
            "effective_cache_size": "6GB",
            "maintenance_work_mem": "512MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "1000",
            "work_mem": "6898kB",
            "huge_pages": "try",
            "jit": "off",
            "wal_compression": "lz4",
            "min_wal_size": "2GB",
            "max_wal_size": "8GB",
            "max_worker_processes": "4",
            "max_parallel_workers_per_gather": "2",
            "max_parallel_workers": "4",
            "max_parallel_maintenance_workers": "2",
        },
    ),
    (
        # oltp 4GB, 4 CPUs, PG 10: W = 3145728 / ((300 + 4) * 3) = 3449.3 -> 4MB;
        # PG 10: no jit (< 12), wal_compression on, max_parallel_workers (>= 10) but
        # no max_parallel_maintenance_workers (< 11).
        "oltp-4GB-4cpu-ssd-pg10",
        TuningInputs(4 * GB, 4, "ssd", 10, profile="oltp"),
        {
            "max_connections": "300",
            "shared_buffers": "1GB",
            "effective_cache_size": "3GB",
            "maintenance_work_mem": "256MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "200",
            "work_mem": "4MB",
            "huge_pages": "off",
            "wal_compression": "on",
            "min_wal_size": "2GB",
            "max_wal_size": "8GB",
            "max_worker_processes": "4",
            "max_parallel_workers_per_gather": "2",
            "max_parallel_workers": "4",
        },
    ),
    (
        # dw 64GB, 16 CPUs, hdd, PG 14, 100 connections: SB 16GB; ECS 48GB;
        # MWM 64GB/8 = 8GB = the cap; statistics 500; rpc 4, eic 2 (hdd);
        # P = 16: W = 50331648 / ((100 + 16) * 3) = 144631.2; / 2 = 72315.6 -> 72315kB;
        # dw: no jit line; parallel 16, ceil(16/2) = 8 (dw: no cap of 4), 16, 4;
        # autovacuum_max_workers 4, autovacuum_work_mem 2GB; WAL 4GB/16GB.
        "dw-64GB-16cpu-hdd-pg14-100conn",
        TuningInputs(64 * GB, 16, "hdd", 14, profile="dw", max_connections=100),
        {
            "max_connections": "100",
            "shared_buffers": "16GB",
            "effective_cache_size": "48GB",
            "maintenance_work_mem": "8GB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "500",
            "random_page_cost": "4",
            "effective_io_concurrency": "2",
            "work_mem": "72315kB",
            "huge_pages": "try",
            "wal_compression": "on",
            "autovacuum_max_workers": "4",
            "autovacuum_work_mem": "2GB",
            "min_wal_size": "4GB",
            "max_wal_size": "16GB",
            "max_worker_processes": "16",
            "max_parallel_workers_per_gather": "8",
            "max_parallel_workers": "16",
            "max_parallel_maintenance_workers": "4",
        },
    ),
    (
        # dw 32GB, 32 CPUs, ssd, PG 17, 60 connections: SB 8GB; ECS 24GB; MWM 4GB;
        # rpc 4 (dw on non-hdd keeps PostgreSQL's default); eic 200;
        # P = 32: W = 25165824 / ((60 + 32) * 3) = 25165824 / 276 = 91180.5; / 2 = 45590kB;
        # parallel 32, 16, 32, 4; autovacuum_max_workers 5 (>= 32 CPUs).
        "dw-32GB-32cpu-ssd-pg17-60conn",
        TuningInputs(32 * GB, 32, "ssd", 17, profile="dw", max_connections=60),
        {
            "max_connections": "60",
            "shared_buffers": "8GB",
            "effective_cache_size": "24GB",
            "maintenance_work_mem": "4GB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "500",
            "random_page_cost": "4",
            "effective_io_concurrency": "200",
            "work_mem": "45590kB",
            "huge_pages": "try",
            "wal_compression": "lz4",
            "autovacuum_max_workers": "5",
            "autovacuum_work_mem": "2GB",
            "min_wal_size": "4GB",
            "max_wal_size": "16GB",
            "max_worker_processes": "32",
            "max_parallel_workers_per_gather": "16",
            "max_parallel_workers": "32",
            "max_parallel_maintenance_workers": "4",
        },
    ),
    (
        # desktop 2GB, 1 CPU, ssd, PG 13, 60 connections: SB 2GB/16 = 128MB;
        # ECS 2GB/4 = 512MB; MWM 128MB; wal_buffers floor(0.03 * 131072) = 3932kB;
        # W = 1966080 / ((60 + 8) * 3) = 9637.6; / 6 = 1606.3 -> 4MB;
        # desktop: no jit, WAL 100MB/2GB, wal_level minimal, max_wal_senders 0.
        "desktop-2GB-1cpu-ssd-pg13-60conn",
        TuningInputs(2 * GB, 1, "ssd", 13, profile="desktop", max_connections=60),
        {
            "max_connections": "60",
            "shared_buffers": "128MB",
            "effective_cache_size": "512MB",
            "maintenance_work_mem": "128MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "3932kB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "200",
            "work_mem": "4MB",
            "huge_pages": "off",
            "wal_compression": "on",
            "min_wal_size": "100MB",
            "max_wal_size": "2GB",
            "wal_level": "minimal",
            "max_wal_senders": "0",
        },
    ),
    (
        # desktop 8GB, 4 CPUs, nvme, PG 16, 100 connections: SB 512MB; ECS 2GB;
        # MWM 512MB; wal_buffers floor(0.03 * 524288) = 15728 > 14MB -> rounds up to 16MB;
        # P = 4: W = 7864320 / ((100 + 4) * 3) = 25206.2; / 6 = 4201.0 -> 4201kB.
        "desktop-8GB-4cpu-nvme-pg16-100conn",
        TuningInputs(8 * GB, 4, "nvme", 16, profile="desktop", max_connections=100),
        {
            "max_connections": "100",
            "shared_buffers": "512MB",
            "effective_cache_size": "2GB",
            "maintenance_work_mem": "512MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "1000",
            "work_mem": "4201kB",
            "huge_pages": "off",
            "wal_compression": "lz4",
            "min_wal_size": "100MB",
            "max_wal_size": "2GB",
            "max_worker_processes": "4",
            "max_parallel_workers_per_gather": "2",
            "max_parallel_workers": "4",
            "max_parallel_maintenance_workers": "2",
            "wal_level": "minimal",
            "max_wal_senders": "0",
        },
    ),
    (
        # mixed 16GB, 8 CPUs, san, PG 18, default 100 connections: SB 4GB; ECS 12GB;
        # MWM 1GB; eic 300 (san), rpc 1.1; P = 8: W = 12582912 / 324 = 38836.2;
        # / 2 = 19418.1 -> 19418kB; io_method io_uring; io_workers max(3, 8 // 4 = 2) = 3,
        # not above the default 3 -> omitted; parallel 8, 4, 8, 4.
        "mixed-16GB-8cpu-san-pg18",
        TuningInputs(16 * GB, 8, "san", 18, profile="mixed"),
        {
            "max_connections": "100",
            "shared_buffers": "4GB",
            "effective_cache_size": "12GB",
            "maintenance_work_mem": "1GB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "300",
            "work_mem": "19418kB",
            "huge_pages": "try",
            "jit": "off",
            "wal_compression": "lz4",
            "io_method": "io_uring",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
            "max_worker_processes": "8",
            "max_parallel_workers_per_gather": "4",
            "max_parallel_workers": "8",
            "max_parallel_maintenance_workers": "4",
        },
    ),
    (
        # mixed 32GB, 8 CPUs, hdd, PG 13, 200 connections: MWM 32GB/16 = 2GB exactly ->
        # autovacuum_work_mem 2GB (threshold is >=); W = 25165824 / ((200 + 8) * 3)
        # = 40329.8; / 2 = 20164.9 -> 20164kB; rpc 4, eic 2.
        "mixed-32GB-8cpu-hdd-pg13-200conn",
        TuningInputs(32 * GB, 8, "hdd", 13, profile="mixed", max_connections=200),
        {
            "max_connections": "200",
            "shared_buffers": "8GB",
            "effective_cache_size": "24GB",
            "maintenance_work_mem": "2GB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "4",
            "effective_io_concurrency": "2",
            "work_mem": "20164kB",
            "huge_pages": "try",
            "jit": "off",
            "wal_compression": "on",
            "autovacuum_work_mem": "2GB",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
            "max_worker_processes": "8",
            "max_parallel_workers_per_gather": "4",
            "max_parallel_workers": "8",
            "max_parallel_maintenance_workers": "4",
        },
    ),
    (
        # web 256GB, 64 CPUs, nvme, PG 18: SB 64GB; ECS 192GB; MWM 16GB -> capped 8GB;
        # P = 64: W = 201326592 / ((200 + 64) * 3) = 254200.2 -> 254200kB;
        # autovacuum_max_workers 5; io_workers min(32, 64 // 4 = 16) = 16;
        # parallel 64, min(32, 4) = 4, 64, 4.
        "web-256GB-64cpu-nvme-pg18",
        TuningInputs(256 * GB, 64, "nvme", 18, profile="web"),
        {
            "max_connections": "200",
            "shared_buffers": "64GB",
            "effective_cache_size": "192GB",
            "maintenance_work_mem": "8GB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "1000",
            "work_mem": "254200kB",
            "huge_pages": "try",
            "jit": "off",
            "wal_compression": "lz4",
            "autovacuum_max_workers": "5",
            "autovacuum_work_mem": "2GB",
            "io_method": "io_uring",
            "io_workers": "16",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
            "max_worker_processes": "64",
            "max_parallel_workers_per_gather": "4",
            "max_parallel_workers": "64",
            "max_parallel_maintenance_workers": "4",
        },
    ),
    (
        # web 512MB, 1 CPU, hdd, PG 12: SB 128MB; ECS 384MB; MWM 32MB;
        # wal_buffers floor(0.03 * 131072) = 3932kB; W = 393216 / 624 = 630.2 -> 4MB;
        # PG 12 -> jit off, wal_compression on.
        "web-512MB-1cpu-hdd-pg12",
        TuningInputs(512 * MB, 1, "hdd", 12, profile="web"),
        {
            "max_connections": "200",
            "shared_buffers": "128MB",
            "effective_cache_size": "384MB",
            "maintenance_work_mem": "32MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "3932kB",
            "default_statistics_target": "100",
            "random_page_cost": "4",
            "effective_io_concurrency": "2",
            "work_mem": "4MB",
            "huge_pages": "off",
            "jit": "off",
            "wal_compression": "on",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
        },
    ),
    (
        # web 2000MB, 2 CPUs, PG 15, 100 connections: SB 512000 = 500MB; ECS 1536000 = 1500MB;
        # MWM 128000 = 125MB; wal_buffers 0.03 * 512000 = 15360 > 14336 -> 16MB;
        # W = 1536000 / 324 = 4740.7 -> 4740kB.
        "web-2000MB-2cpu-ssd-pg15-100conn",
        TuningInputs(2000 * MB, 2, "ssd", 15, profile="web", max_connections=100),
        {
            "max_connections": "100",
            "shared_buffers": "500MB",
            "effective_cache_size": "1500MB",
            "maintenance_work_mem": "125MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "200",
            "work_mem": "4740kB",
            "huge_pages": "off",
            "jit": "off",
            "wal_compression": "lz4",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
        },
    ),
    (
        # web with an odd (cgroup) RAM of 1000000kB, 3 CPUs, PG 17, 100 connections:
        # SB 250000 (not whole MB -> kB); ECS 750000; MWM 62500; wal_buffers 7500;
        # W = 750000 / 324 = 2314.8 -> 4MB; 3 CPUs -> no parallel settings.
        "web-1000000kB-3cpu-ssd-pg17-100conn",
        TuningInputs(1_000_000, 3, "ssd", 17, profile="web", max_connections=100),
        {
            "max_connections": "100",
            "shared_buffers": "250000kB",
            "effective_cache_size": "750000kB",
            "maintenance_work_mem": "62500kB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "7500kB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "200",
            "work_mem": "4MB",
            "huge_pages": "off",
            "jit": "off",
            "wal_compression": "lz4",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
        },
    ),
]


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [pytest.param(inp, exp, id=case_id) for case_id, inp, exp in FULL_CASES],
)
def test_compute_full(inputs: TuningInputs, expected: dict[str, str]) -> None:
    result = compute(inputs)
    assert result == expected
    assert list(result) == list(expected), "settings must come in PGTune's order"


# -- key settings ---------------------------------------------------------------------

KEY_CASES: list[tuple[str, TuningInputs, dict[str, str | None]]] = [
    # None means "not emitted".
    # SB = 8388604 // 4 = 2097151 < 2GB -> off; 8GB -> SB 2097152 -> try.
    (
        "huge-pages-just-below-2GB",
        TuningInputs(8 * GB - 4, 2, "ssd", 16, "web"),
        {"shared_buffers": "2097151kB", "huge_pages": "off"},
    ),
    (
        "huge-pages-at-2GB",
        TuningInputs(8 * GB, 2, "ssd", 16, "web"),
        {"shared_buffers": "2GB", "huge_pages": "try"},
    ),
    # desktop 32GB: SB 2GB -> try; desktop 16GB: SB 1GB -> off.
    (
        "huge-pages-desktop-32GB",
        TuningInputs(32 * GB, 2, "ssd", 16, "desktop", 60),
        {"shared_buffers": "2GB", "huge_pages": "try", "effective_cache_size": "8GB"},
    ),
    # 3 CPUs: no parallel settings; 4 CPUs: they appear.
    (
        "cpus-3-no-parallel",
        TuningInputs(4 * GB, 3, "ssd", 16, "web"),
        {
            "max_worker_processes": None,
            "max_parallel_workers_per_gather": None,
            "max_parallel_workers": None,
            "max_parallel_maintenance_workers": None,
            "work_mem": "5041kB",  # P = 8, as in spec example 2
        },
    ),
    # 4 CPUs web 4GB: W = 3145728 / ((200 + 4) * 3) = 5140.1 -> 5140kB.
    (
        "cpus-4-parallel",
        TuningInputs(4 * GB, 4, "ssd", 16, "web"),
        {
            "max_worker_processes": "4",
            "max_parallel_workers_per_gather": "2",
            "max_parallel_workers": "4",
            "max_parallel_maintenance_workers": "2",
            "work_mem": "5140kB",
        },
    ),
    # 5 CPUs: ceil(5/2) = 3 for per-gather and maintenance.
    (
        "cpus-5-ceil",
        TuningInputs(4 * GB, 5, "ssd", 16, "web"),
        {
            "max_worker_processes": "5",
            "max_parallel_workers_per_gather": "3",
            "max_parallel_workers": "5",
            "max_parallel_maintenance_workers": "3",
        },
    ),
    # 32 CPUs web: per-gather capped at 4; dw 64 CPUs: 32 (no cap), maintenance 4.
    (
        "cpus-32-web-cap",
        TuningInputs(32 * GB, 32, "ssd", 16, "web"),
        {
            "max_parallel_workers_per_gather": "4",
            "max_parallel_maintenance_workers": "4",
            "autovacuum_max_workers": "5",
        },
    ),
    (
        "cpus-64-dw-nocap",
        TuningInputs(64 * GB, 64, "ssd", 16, "dw", 100),
        {
            "max_worker_processes": "64",
            "max_parallel_workers_per_gather": "32",
            "max_parallel_workers": "64",
            "max_parallel_maintenance_workers": "4",
        },
    ),
    # autovacuum_max_workers: 15 CPUs none, 16 -> 4, 31 -> 4, 32 -> 5.
    (
        "autovacuum-15cpu",
        TuningInputs(8 * GB, 15, "ssd", 16, "web"),
        {"autovacuum_max_workers": None},
    ),
    (
        "autovacuum-31cpu",
        TuningInputs(8 * GB, 31, "ssd", 16, "web"),
        {"autovacuum_max_workers": "4"},
    ),
    # MWM 31GB/16 = 1984MB < 2GB -> no autovacuum_work_mem; 32GB -> 2GB -> emitted.
    (
        "autovacuum-work-mem-below",
        TuningInputs(31 * GB, 2, "ssd", 16, "web"),
        {"maintenance_work_mem": "1984MB", "autovacuum_work_mem": None},
    ),
    (
        "autovacuum-work-mem-at",
        TuningInputs(32 * GB, 2, "ssd", 16, "web"),
        {"maintenance_work_mem": "2GB", "autovacuum_work_mem": "2GB"},
    ),
    # dw 16GB: MWM 16GB/8 = 2GB -> autovacuum_work_mem 2GB.
    (
        "dw-maintenance-is-ram-over-8",
        TuningInputs(16 * GB, 2, "ssd", 16, "dw", 60),
        {"maintenance_work_mem": "2GB", "autovacuum_work_mem": "2GB"},
    ),
    # 128GB web: MWM 8GB exactly (= cap).
    (
        "maintenance-cap-exact",
        TuningInputs(128 * GB, 8, "ssd", 16, "web"),
        {"maintenance_work_mem": "8GB"},
    ),
    # random_page_cost / effective_io_concurrency per disk, and dw's 4 on every disk.
    (
        "disk-san-web",
        TuningInputs(4 * GB, 2, "san", 16, "web"),
        {"random_page_cost": "1.1", "effective_io_concurrency": "300"},
    ),
    (
        "disk-nvme-dw",
        TuningInputs(4 * GB, 2, "nvme", 16, "dw", 60),
        {
            "random_page_cost": "4",
            "effective_io_concurrency": "1000",
            "default_statistics_target": "500",
        },
    ),
    (
        "disk-hdd-oltp",
        TuningInputs(4 * GB, 2, "hdd", 16, "oltp"),
        {"random_page_cost": "4", "effective_io_concurrency": "2"},
    ),
    # jit: PG 11 none; PG 12 off for web/oltp/mixed; never for dw/desktop.
    (
        "jit-pg11-web",
        TuningInputs(4 * GB, 2, "ssd", 11, "web"),
        {"jit": None, "wal_compression": "on"},
    ),
    ("jit-pg12-oltp", TuningInputs(4 * GB, 2, "ssd", 12, "oltp"), {"jit": "off"}),
    ("jit-pg17-dw", TuningInputs(4 * GB, 2, "ssd", 17, "dw", 60), {"jit": None}),
    ("jit-pg17-desktop", TuningInputs(4 * GB, 2, "ssd", 17, "desktop", 60), {"jit": None}),
    # PG 11 has max_parallel_maintenance_workers; PG 10 not (full case above).
    (
        "pg11-parallel-maintenance",
        TuningInputs(4 * GB, 8, "ssd", 11, "web"),
        {"max_parallel_maintenance_workers": "4", "max_parallel_workers": "8"},
    ),
    # wal_compression: 14 on, 15 lz4; without lz4: pglz on 15+, unchanged before.
    ("walcomp-pg14", TuningInputs(4 * GB, 2, "ssd", 14, "web"), {"wal_compression": "on"}),
    ("walcomp-pg15", TuningInputs(4 * GB, 2, "ssd", 15, "web"), {"wal_compression": "lz4"}),
    (
        "walcomp-pg16-no-lz4",
        TuningInputs(4 * GB, 2, "ssd", 16, "web", lz4=False),
        {"wal_compression": "pglz"},
    ),
    (
        "walcomp-pg14-no-lz4",
        TuningInputs(4 * GB, 2, "ssd", 14, "web", lz4=False),
        {"wal_compression": "on"},
    ),
    # io_method / io_workers only on PG 18; io_workers = min(32, max(3, CPUs // 4)) if > 3.
    (
        "io-pg17-none",
        TuningInputs(64 * GB, 64, "nvme", 17, "web"),
        {"io_method": None, "io_workers": None},
    ),
    (
        "io-pg18-15cpu",
        TuningInputs(8 * GB, 15, "ssd", 18, "web"),
        {"io_method": "io_uring", "io_workers": None},
    ),  # 15 // 4 = 3, not > 3
    (
        "io-pg18-128cpu",
        TuningInputs(64 * GB, 128, "ssd", 18, "web"),
        {"io_workers": "32"},
    ),  # 128 // 4 = 32
    (
        "io-pg18-200cpu",
        TuningInputs(64 * GB, 200, "ssd", 18, "web"),
        {"io_workers": "32"},
    ),  # min(32, 50)
    (
        "io-pg18-no-io-uring",
        TuningInputs(8 * GB, 2, "ssd", 18, "web", io_uring=False),
        {"io_method": "worker"},
    ),
    # Explicit connections. web 4GB 2 CPUs 500 conns: W = 3145728 / (508 * 3) = 2064 -> 4MB.
    (
        "conn-web-500",
        TuningInputs(4 * GB, 2, "ssd", 16, "web", 500),
        {"max_connections": "500", "work_mem": "4MB"},
    ),
    # chatalot 4GB, 53 conns (the least allowed): W = 3145728 / ((53 + 8) * 3) = 17189.8.
    (
        "conn-chatalot-53",
        TuningInputs(4 * GB, 2, "ssd", 16, "chatalot", 53),
        {"max_connections": "53", "work_mem": "17189kB", "wal_buffers": "16MB"},
    ),
    # chatalot 16GB 8 CPUs 200 conns: W = 12582912 / ((200 + 8) * 3) = 20164.9 -> 20164kB.
    (
        "conn-chatalot-200",
        TuningInputs(16 * GB, 8, "ssd", 16, "chatalot", 200),
        {"max_connections": "200", "work_mem": "20164kB"},
    ),
    # oltp 16GB 2 CPUs 60 conns: W = 12582912 / ((60 + 8) * 3) = 61680.9 -> 61680kB.
    ("conn-oltp-60", TuningInputs(16 * GB, 2, "ssd", 16, "oltp", 60), {"work_mem": "61680kB"}),
    # reserved 10 -> at least 60 connections; 60 passes.
    (
        "reserved-10-conn-60",
        TuningInputs(4 * GB, 2, "ssd", 16, "web", 60, 10),
        {"max_connections": "60"},
    ),
    # mixed default 100, 8GB 1 CPU: W = 6291456 / 324 = 19418.1; / 2 = 9709kB.
    (
        "mixed-8GB-1cpu",
        TuningInputs(8 * GB, 1, "ssd", 16, "mixed"),
        {"work_mem": "9709kB", "wal_buffers": "16MB"},
    ),
    # web 768MB: SB 196608 = 192MB, wal_buffers floor(5898.24) = 5898kB, ECS 576MB.
    (
        "web-768MB-wal-buffers",
        TuningInputs(768 * MB, 1, "ssd", 16, "web"),
        {
            "shared_buffers": "192MB",
            "effective_cache_size": "576MB",
            "wal_buffers": "5898kB",
            "maintenance_work_mem": "48MB",
        },
    ),
    # chatalot keeps 16MB wal_buffers at any size (768MB would give 5898kB by PGTune).
    ("chatalot-768MB-wal-buffers", TuningInputs(768 * MB, 1, "ssd", 16), {"wal_buffers": "16MB"}),
]


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [pytest.param(inp, exp, id=case_id) for case_id, inp, exp in KEY_CASES],
)
def test_compute_key_settings(inputs: TuningInputs, expected: dict[str, str | None]) -> None:
    result = compute(inputs)
    for name, value in expected.items():
        assert result.get(name) == value, name


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("pg_major", range(10, 19))
@pytest.mark.parametrize("disk", DISK_TYPES)
def test_every_combination_is_valid_text(profile: str, pg_major: int, disk: str) -> None:
    result = compute(TuningInputs(4 * GB, 8, disk, pg_major, profile, max_connections=100))
    assert list(result)[:11] == [
        "max_connections",
        "shared_buffers",
        "effective_cache_size",
        "maintenance_work_mem",
        "checkpoint_completion_target",
        "wal_buffers",
        "default_statistics_target",
        "random_page_cost",
        "effective_io_concurrency",
        "work_mem",
        "huge_pages",
    ]
    assert all(isinstance(v, str) and v and conf_value(v) == v for v in result.values())


def test_inputs_default_to_chatalot() -> None:
    inp = TuningInputs(memory_kb=GB, cpus=1, disk="ssd", pg_major=17)
    assert (inp.profile, inp.max_connections, inp.superuser_reserved_connections) == (
        "chatalot",
        None,
        3,
    )
    assert (inp.lz4, inp.io_uring) == (True, True)


# -- refusals -------------------------------------------------------------------------

REFUSALS: list[tuple[str, TuningInputs, list[str]]] = [
    (
        "conn-52",
        TuningInputs(4 * GB, 2, "ssd", 16, "chatalot", 52),
        ["max_connections 52 is too low", "50 connections", "3 are reserved", "at least 53"],
    ),
    (
        "conn-59-reserved-10",
        TuningInputs(4 * GB, 2, "ssd", 16, "web", 59, 10),
        ["max_connections 59", "10 are reserved", "at least 60"],
    ),
    ("conn-20", TuningInputs(4 * GB, 2, "ssd", 16, "web", 20), ["at least 53"]),
    (
        "dw-default-40",
        TuningInputs(4 * GB, 2, "ssd", 16, "dw"),
        ["dw profile's default max_connections 40", "at least 53"],
    ),
    (
        "desktop-default-20",
        TuningInputs(4 * GB, 2, "ssd", 16, "desktop"),
        ["desktop profile's default max_connections 20"],
    ),
    ("conn-too-many", TuningInputs(4 * GB, 2, "ssd", 16, "web", 300000), ["262143"]),
    (
        "unknown-profile",
        TuningInputs(4 * GB, 2, "ssd", 16, "analytics"),
        ["'analytics'", "chatalot, web, oltp, dw, desktop, mixed"],
    ),
    ("unknown-disk", TuningInputs(4 * GB, 2, "floppy", 16), ["'floppy'", "ssd, hdd, san, nvme"]),
    ("memory-zero", TuningInputs(0, 2, "ssd", 16), ["memory", "positive"]),
    ("memory-negative", TuningInputs(-GB, 2, "ssd", 16), ["memory", "positive"]),
    ("memory-tiny", TuningInputs(255 * MB, 2, "ssd", 16), ["255MB", "256MB"]),
    ("memory-huge", TuningInputs(17 * 1024 * GB, 2, "ssd", 16), ["16384GB"]),
    ("cpus-zero", TuningInputs(4 * GB, 0, "ssd", 16), ["cpus", "positive"]),
    ("cpus-negative", TuningInputs(4 * GB, -2, "ssd", 16), ["cpus"]),
    ("pg-9", TuningInputs(4 * GB, 2, "ssd", 9), ["PostgreSQL 9", "10 to 18"]),
    ("pg-19", TuningInputs(4 * GB, 2, "ssd", 19), ["PostgreSQL 19", "10 to 18"]),
    (
        "reserved-negative",
        TuningInputs(4 * GB, 2, "ssd", 16, superuser_reserved_connections=-1),
        ["superuser_reserved_connections"],
    ),
]


@pytest.mark.parametrize(
    ("inputs", "fragments"),
    [pytest.param(inp, frags, id=case_id) for case_id, inp, frags in REFUSALS],
)
def test_compute_refuses(inputs: TuningInputs, fragments: list[str]) -> None:
    # every fragment, anywhere in the message (one lookahead each)
    with pytest.raises(TuningError,
                       match="(?s)^" + "".join(f"(?=.*{re.escape(f)})" for f in fragments)):
        compute(inputs)


def test_connections_refusal_message_in_full() -> None:
    with pytest.raises(TuningError, match="^" + re.escape(
            "max_connections 40 is too low: the Chatalot server's pool opens up to 50 "
            "connections and 3 are reserved for superusers, so max_connections must be at "
            "least 53") + "$"):
        compute(TuningInputs(4 * GB, 2, "ssd", 16, max_connections=40))


# -- units ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kb", "text"),
    [
        (1048576, "1GB"),
        (2097152, "2GB"),
        (3145728, "3GB"),
        (1024, "1MB"),
        (262144, "256MB"),
        (1572864, "1536MB"),  # 1.5GB is not a whole GB
        (1536, "1536kB"),
        (7864, "7864kB"),
        (5041, "5041kB"),
        (32, "32kB"),
        (1, "1kB"),
        (102400, "100MB"),
        (8388608, "8GB"),
    ],
)
def test_format_kb(kb: int, text: str) -> None:
    assert format_kb(kb) == text


def test_format_kb_refuses_negative() -> None:
    with pytest.raises(TuningError,
                       match=r"^a size must be a whole number of kB, 0 or more, got -1$"):
        format_kb(-1)


@pytest.mark.parametrize(
    ("text", "kb"),
    [
        ("4GB", 4 * GB),
        ("512MB", 512 * MB),
        ("1.5GB", 1572864),
        ("4096kB", 4096),
        ("4096KB", 4096),
        ("4 GiB", 4 * GB),
        ("8g", 8 * GB),
        ("100M", 100 * MB),
        ("2048 MiB", 2 * GB),
        ("1TB", 1024 * GB),
        (" 8 GB ", 8 * GB),
        ("0.5MB", 512),
        (".5GB", 512 * MB),
        ("1536 KiB", 1536),
        ("4294967296", 4 * GB),  # a bare number is bytes
        ("1024B", 1),
        ("1000", 0),  # 1000 bytes -> 0 whole kB (rounded down)
        ("1000000000", 976562),  # a typical cgroup byte limit
        (4294967296, 4 * GB),  # an int is bytes
        (0, 0),
    ],
)
def test_parse_size(text: str | int, kb: int) -> None:
    assert parse_size(text) == kb


#: parse_size's refusal of a text that is no size
NOT_A_SIZE = ("not a size: {!r} (expected a number with an optional unit B, kB, MB, GB or TB, "
              "e.g. 4GB, 512MB, 1.5GB; a bare number is bytes)")
#: ... and of a value that is neither text nor a whole number
NOT_A_SIZE_VALUE = "not a size: {!r} (expected e.g. 4GB, 512MB or a number of bytes)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        *((t, NOT_A_SIZE.format(t)) for t in (
            "", "   ", "GB", "four GB", "4 XB", "4GB4", "-4GB", "4 G B", "nan", "inf", "1e3GB",
            "4,5GB", "0x10GB")),
        (-1, "a size cannot be negative: -1"),
        *((v, NOT_A_SIZE_VALUE.format(v)) for v in (True, 4.5, None)),
    ],
)
def test_parse_size_refuses_garbage(text: Any, message: str) -> None:
    with pytest.raises(TuningError, match="^" + re.escape(message) + "$"):
        parse_size(text)


# -- what the host really has -----------------------------------------------------------

HOST = 8 * GB  # 8GB MemTotal in kB

MEMORY_CASES: list[tuple[str, int, str | None, str | None, int]] = [
    ("no-cgroup", HOST, None, None, HOST),
    ("v2-max", HOST, "max\n", None, HOST),
    ("v2-2GiB", HOST, "2147483648\n", None, 2 * GB),
    ("v2-odd-bytes", HOST, "1000000000\n", None, 976562),
    ("v2-equal-host", HOST, str(8 * 1024**3), None, HOST),
    ("v2-above-host", HOST, str(64 * 1024**3), None, HOST),
    ("v2-2^60", HOST, str(2**60), None, HOST),
    ("v2-zero-ignored", HOST, "0", None, HOST),
    ("v2-empty-file", HOST, "", None, HOST),
    ("v1-unlimited", HOST, None, "9223372036854771712\n", HOST),
    ("v1-1GiB", HOST, None, "1073741824\n", GB),
    ("v1-above-host", HOST, None, str(16 * 1024**3), HOST),
    ("both-v2-tighter", HOST, "2147483648", "4294967296", 2 * GB),
    ("both-v1-tighter", HOST, "4294967296", "1073741824", GB),
    ("both-v2-max", HOST, "max", "3221225472", 3 * GB),
]


@pytest.mark.parametrize(
    ("meminfo", "v2", "v1", "expected"),
    [pytest.param(m, v2, v1, e, id=i) for i, m, v2, v1, e in MEMORY_CASES],
)
def test_effective_memory_kb(meminfo: int, v2: str | None, v1: str | None, expected: int) -> None:
    assert effective_memory_kb(meminfo, v2, v1) == expected


@pytest.mark.parametrize(
    ("meminfo", "v2", "v1", "fragment"),
    [
        (HOST, "lots", None, "memory.max"),
        (HOST, None, "12 GB", "memory.limit_in_bytes"),
        (0, None, None, "MemTotal"),
        (-5, None, None, "MemTotal"),
    ],
)
def test_effective_memory_kb_refuses(
    meminfo: int, v2: str | None, v1: str | None, fragment: str
) -> None:
    with pytest.raises(TuningError, match=re.escape(fragment)):
        effective_memory_kb(meminfo, v2, v1)


CPU_CASES: list[tuple[str, int, str | None, str | None, str | None, int]] = [
    ("no-cgroup", 8, None, None, None, 8),
    ("v2-2cpu", 8, "200000 100000\n", None, None, 2),
    ("v2-max", 8, "max 100000\n", None, None, 8),
    ("v2-max-alone", 8, "max", None, None, 8),
    ("v2-1.5-rounds-up", 8, "150000 100000", None, None, 2),
    ("v2-half-is-1", 8, "50000 100000", None, None, 1),
    ("v2-tiny-is-1", 8, "1000 100000", None, None, 1),
    ("v2-above-nproc", 8, "1600000 100000", None, None, 8),
    ("v2-other-period", 16, "250000 50000", None, None, 5),
    ("v2-empty", 8, "", None, None, 8),
    ("v1-unlimited", 8, None, "-1", "100000", 8),
    ("v1-3cpu", 8, None, "300000", "100000", 3),
    ("v1-2.5cpu", 8, None, "250000\n", "100000\n", 3),
    ("v1-default-period", 8, None, "400000", None, 4),
    ("v1-zero-period-ignored", 8, None, "400000", "0", 8),
    ("both-min", 8, "600000 100000", "200000", "100000", 2),
    ("nproc-1", 1, "400000 100000", None, None, 1),
]


@pytest.mark.parametrize(
    ("nproc", "v2", "quota", "period", "expected"),
    [pytest.param(n, v2, q, p, e, id=i) for i, n, v2, q, p, e in CPU_CASES],
)
def test_effective_cpus(
    nproc: int, v2: str | None, quota: str | None, period: str | None, expected: int
) -> None:
    assert effective_cpus(nproc, v2, quota, period) == expected


@pytest.mark.parametrize(
    ("nproc", "v2", "quota", "period", "fragment"),
    [
        (8, "two cpus", None, None, "cpu.max"),
        (8, "200000 100000 7", None, None, "cpu.max"),
        (8, None, "lots", "100000", "cfs_quota_us"),
        (8, None, "200000", "often", "cfs_period_us"),
        (0, None, None, None, "CPU count"),
    ],
)
def test_effective_cpus_refuses(
    nproc: int, v2: str | None, quota: str | None, period: str | None, fragment: str
) -> None:
    with pytest.raises(TuningError, match=re.escape(fragment)):
        effective_cpus(nproc, v2, quota, period)


@pytest.mark.parametrize(
    ("rotational", "device", "expected"),
    [
        ("1\n", "sda", "hdd"),
        ("0\n", "sda", "ssd"),
        ("1", "vdb", "hdd"),
        ("0", "nvme0n1", "nvme"),
        (None, "nvme1n1", "nvme"),
        ("0", "/dev/nvme0n1", "nvme"),
        (None, "sda", "ssd"),
        ("", "sda", "ssd"),
        ("2", "sda", "ssd"),
        ("0", "dm-0", "ssd"),
        ("1", "md0", "hdd"),
    ],
)
def test_disk_type_from_rotational(rotational: str | None, device: str, expected: str) -> None:
    assert disk_type_from_rotational(rotational, device) == expected


# -- overrides and postgresql.conf text ---------------------------------------------------


def test_merge_overrides_replaces_in_place_and_appends() -> None:
    computed = {"max_connections": "100", "shared_buffers": "256MB", "work_mem": "4MB"}
    merged = merge_overrides(
        computed,
        {
            "work_mem": "64MB",
            "shared_preload_libraries": "pg_stat_statements",
            "max_connections": 200,
        },
    )
    assert list(merged.items()) == [
        ("max_connections", "200"),
        ("shared_buffers", "256MB"),
        ("work_mem", "64MB"),
        ("shared_preload_libraries", "pg_stat_statements"),
    ]
    assert computed == {"max_connections": "100", "shared_buffers": "256MB", "work_mem": "4MB"}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "on"),
        (False, "off"),
        (500, "500"),
        (0, "0"),
        (-1, "-1"),
        (1.1, "1.1"),
        (0.9, "0.9"),
        ("lz4", "lz4"),
        ("", ""),
        (["pg_stat_statements", "auto_explain"], "pg_stat_statements,auto_explain"),
        (("a",), "a"),
    ],
)
def test_render_value(value: object, text: str) -> None:
    assert render_value(value) == text
    assert merge_overrides({}, {"x": value}) == {"x": text}


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"work mem": "4MB"}, "'work mem'"),
        ({"a=b": "1"}, "'a=b'"),
        ({"": "1"}, "not a PostgreSQL setting name"),
        ({"1abc": "1"}, "not a PostgreSQL setting name"),
        ({"a.b.c": "1"}, "not a PostgreSQL setting name"),
        ({"work_mem": None}, "pg_settings work_mem"),
        ({"work_mem": {"x": 1}}, "pg_settings work_mem"),
        ({"work_mem": "4MB\nshared_buffers = 1TB"}, "line break"),
        ({"random_page_cost": float("nan")}, "nan"),
        ({"x": [1, 2]}, "list of strings"),
    ],
)
def test_merge_overrides_refuses(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(TuningError, match=re.escape(fragment)):
        merge_overrides({"work_mem": "4MB"}, overrides)


def test_merge_overrides_names_are_case_insensitive() -> None:
    merged = merge_overrides({"work_mem": "4MB"}, {"Work_Mem": "8MB", "pg_stat_statements.max": 1})
    assert merged == {"work_mem": "8MB", "pg_stat_statements.max": "1"}


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("1GB", "1GB"),
        ("5041kB", "5041kB"),
        ("0.9", "0.9"),
        ("100", "100"),
        ("-1", "-1"),
        ("off", "off"),
        ("io_uring", "io_uring"),
        ("*", "'*'"),
        ("localhost,10.0.0.1", "'localhost,10.0.0.1'"),
        ("pg_stat_statements,auto_explain", "'pg_stat_statements,auto_explain'"),
        ("it's", "'it''s'"),
        ("C:\\pg", "'C:\\\\pg'"),
        ("", "''"),
        ("1e-05", "'1e-05'"),
        ("%m [%p] ", "'%m [%p] '"),
    ],
)
def test_conf_value(value: str, written: str) -> None:
    assert conf_value(value) == written


# -- restart or reload ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pg_major", "expected"),
    [
        ("shared_buffers", 16, True),
        ("max_connections", 12, True),
        ("wal_buffers", 18, True),
        ("huge_pages", 14, True),
        ("max_worker_processes", 17, True),
        ("wal_level", 13, True),
        ("max_wal_senders", 15, True),
        ("autovacuum_max_workers", 17, True),
        ("autovacuum_max_workers", 18, False),  # sighup since PG 18
        ("autovacuum_worker_slots", 18, True),
        ("io_method", 18, True),
        ("io_workers", 18, False),
        ("shared_preload_libraries", 16, True),
        ("listen_addresses", 16, True),
        ("Shared_Buffers", 16, True),
        ("work_mem", 16, False),
        ("effective_cache_size", 16, False),
        ("maintenance_work_mem", 16, False),
        ("checkpoint_completion_target", 16, False),
        ("random_page_cost", 16, False),
        ("jit", 16, False),
        ("wal_compression", 16, False),
        ("max_parallel_workers", 16, False),
        ("min_wal_size", 16, False),
        ("primary_conninfo", 12, True),
        ("primary_conninfo", 13, False),
        ("reserved_connections", 16, True),
        ("reserved_connections", 15, False),  # does not exist before 16
        ("io_method", 19, True),  # newer majors: as the newest known
    ],
)
def test_needs_restart(name: str, pg_major: int, expected: bool) -> None:
    assert needs_restart(name, pg_major) is expected


def test_postmaster_settings_cover_the_spec_list() -> None:
    spec = {
        "shared_buffers",
        "max_connections",
        "wal_buffers",
        "huge_pages",
        "max_worker_processes",
        "wal_level",
        "max_wal_senders",
    }
    assert spec <= POSTMASTER_SETTINGS
    assert "autovacuum_max_workers" not in POSTMASTER_SETTINGS  # version-dependent
    assert "work_mem" not in POSTMASTER_SETTINGS


# -- the tune command -----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatalot-db")
    subparsers = parser.add_subparsers(dest="command")
    tune.register(subparsers)
    return parser


def _namespace(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "memory": "4GB",
        "cpus": "2",
        "disk": "ssd",
        "pg_version": "16",
        "profile": "web",
        "connections": None,
        "reserved_connections": "3",
        "lz4": True,
        "io_uring": True,
        "json": True,
    }
    values.update(overrides)
    return argparse.Namespace(**values)


def test_tune_json_spec_example_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert tune.run(_namespace()) == 0
    out = json.loads(capsys.readouterr().out)
    # spec example 2, as in FULL_CASES
    assert out == dict(FULL_CASES[1][2])
    assert list(out) == list(FULL_CASES[1][2])


def test_tune_json_chatalot_guide(capsys: pytest.CaptureFixture[str]) -> None:
    args = _namespace(memory="1GB", cpus="1", profile="chatalot", pg_version="17")
    assert tune.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {
        k: out[k]
        for k in (
            "shared_buffers",
            "effective_cache_size",
            "work_mem",
            "wal_buffers",
            "checkpoint_completion_target",
            "max_connections",
        )
    } == {
        "shared_buffers": "256MB",
        "effective_cache_size": "768MB",
        "work_mem": "4MB",
        "wal_buffers": "16MB",
        "checkpoint_completion_target": "0.9",
        "max_connections": "100",
    }


def test_tune_parsed_from_argv(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["tune", "--memory", "1GB", "--cpus", "1", "--json"])
    assert (args.profile, args.disk, args.pg_version, args.connections) == (
        "chatalot",
        "ssd",
        "17",
        None,
    )
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == FULL_CASES[2][2]  # the guide's profile on PG 17


def test_tune_conf_lines(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(
        [
            "tune",
            "--memory",
            "64GB",
            "--cpus",
            "16",
            "--disk",
            "nvme",
            "--pg-version",
            "18",
            "--no-lz4",
            "--no-io-uring",
        ]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = [line for line in lines if line.startswith("#")]
    assert "# PostgreSQL: 18" in header
    assert "# Profile: chatalot" in header
    assert "# Memory: 64GB" in header
    assert "# CPUs: 16" in header
    assert "# Disk: nvme" in header
    assert "# Connections: 100 (chatalot profile default)" in header
    body = [line for line in lines if line and not line.startswith("#")]
    assert body[0] == "max_connections = 100"
    assert "shared_buffers = 16GB" in body
    assert "work_mem = 144631kB" in body  # as in the chatalot-64GB-16cpu-nvme-pg18 case
    assert "wal_compression = pglz" in body
    assert "io_method = worker" in body
    assert "checkpoint_completion_target = 0.9" in body
    assert all(" = " in line for line in body)


def test_tune_header_notes_lz4_and_io_uring(capsys: pytest.CaptureFixture[str]) -> None:
    assert tune.run(_namespace(json=False, pg_version="18")) == 0
    out = capsys.readouterr().out
    assert "# wal_compression = lz4 needs a server built with lz4" in out
    assert "# io_method = io_uring needs" in out
    assert "# Connections: 200 (web profile default)" in out


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"connections": "40"}, "at least 53"),
        ({"profile": "dw"}, "dw profile's default max_connections 40"),
        ({"memory": "lots"}, "not a size"),
        ({"cpus": "two"}, "--cpus must be a whole number"),
        ({"pg_version": "sixteen"}, "--pg-version must be a whole number"),
        ({"pg_version": "9"}, "10 to 18"),
        ({"disk": "tape"}, "ssd, hdd, san, nvme"),
        ({"profile": "olap"}, "chatalot, web, oltp, dw, desktop, mixed"),
        ({"connections": "many"}, "--connections must be a whole number"),
        ({"reserved_connections": "10", "connections": "55"}, "at least 60"),
    ],
)
def test_tune_bad_input(
    capsys: pytest.CaptureFixture[str], overrides: dict[str, object], fragment: str
) -> None:
    assert tune.run(_namespace(**overrides)) == 5
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("chatalot-db: error: ")
    assert fragment in captured.err


def test_tune_help_shows_defaults() -> None:
    parser = _parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = " ".join(subparsers.choices["tune"].format_help().split())
    for fragment in (
        "--memory SIZE",
        "--cpus N",
        "default: chatalot",
        "default: ssd",
        "default: 17",
        "--connections N",
        "--json",
        "--no-lz4",
        "--no-io-uring",
        "chatalot, web, oltp, dw, desktop, mixed",
        "ssd, hdd, san, nvme",
    ):
        assert fragment in text, fragment
