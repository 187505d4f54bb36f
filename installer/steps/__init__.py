"""The steps of `apply`, in order: each reads the host and changes only what differs."""

from __future__ import annotations

from installer.steps.access import AppDatabase, AppRole, EnvFile, LoginCheck, SchemaGrants
from installer.steps.base import HostContext, Status, Step, StepFailed, StepResult
from installer.steps.host import EnableService, GatherFacts, InstallPackages, StartService
from installer.steps.server import ConfigureHba, ConfigureSettings


def apply_steps() -> list[Step]:
    """The apply pipeline. Settings come before the steps that rely on them."""
    return [
        GatherFacts(),
        InstallPackages(),
        EnableService(),
        StartService(),
        ConfigureSettings(),  # listen_addresses, password_encryption, tuning (slot)
        ConfigureHba(),
        AppRole(),
        AppDatabase(),
        SchemaGrants(),
        EnvFile(),
        # slot: migrations (their own issue) run here, as the app role
        LoginCheck(),
    ]


__all__ = ["HostContext", "Status", "Step", "StepFailed", "StepResult", "apply_steps"]
