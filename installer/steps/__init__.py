"""The steps of `apply`, in order: each reads the host and changes only what differs."""

from __future__ import annotations

from installer.steps.access import AppDatabase, AppRole, EnvFile, LoginCheck, SchemaGrants
from installer.steps.backups import ScheduleBackups
from installer.steps.base import HostContext, Status, Step, StepFailed, StepResult
from installer.steps.host import (
    EnableService,
    GatherFacts,
    InitCluster,
    InstallPackages,
    StartService,
)
from installer.steps.migrations import ApplyMigrations
from installer.steps.preflight import Preflight
from installer.steps.server import ConfigureHba, ConfigureSettings


def apply_steps(*, backup: bool = True) -> list[Step]:
    """The apply pipeline. Settings come before the steps that rely on them.

    `backup=False` (apply --no-backup): migrations run without the pg_dump before them.
    """
    return [
        GatherFacts(),
        Preflight(),  # decisions before any change (a role change: a planned rename only)
        InstallPackages(),
        InitCluster(),  # initdb where the package made no cluster (Fedora, Arch)
        EnableService(),
        StartService(),
        ConfigureSettings(),  # listen_addresses, password_encryption, tuning (slot)
        ConfigureHba(),
        AppRole(),
        AppDatabase(),
        SchemaGrants(),
        EnvFile(),
        ApplyMigrations(backup=backup),  # as the app role (SET ROLE), sqlx's ledger
        ScheduleBackups(),  # nightly pg_dump (systemd timer, or cron), kept backup_keep days
        LoginCheck(),
    ]


__all__ = ["HostContext", "Status", "Step", "StepFailed", "StepResult", "apply_steps"]
