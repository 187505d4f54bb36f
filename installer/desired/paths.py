"""Path variables the tool writes to or points PostgreSQL at: refused when the path alone
says it is the system's (before the host is contacted). No I/O.

The env file (`db_env_file`) is replaced whole, the backup folder (`backup_dir`) is created
and written to, the certificate paths (`pg_ssl_cert`, `pg_ssl_key`) are handed to the
server: none may name a system file or folder. What the path cannot tell (an existing file
that is not ours) is checked on the host (installer.desired.envfile.foreign).
"""

from __future__ import annotations

import posixpath

from installer.errors import UsageError

#: folders whose content belongs to the system or the kernel: nothing of ours goes there
SYSTEM_DIRS = (
    "/proc", "/sys", "/dev", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
    "/libx32", "/run/systemd", "/run/sshd", "/etc/ssh", "/etc/pam.d", "/etc/security",
    "/etc/sudoers.d", "/etc/systemd", "/etc/apt", "/etc/yum.repos.d", "/etc/pacman.d",
    "/etc/cron.d", "/etc/profile.d", "/etc/ld.so.conf.d", "/var/lib/dpkg", "/var/lib/rpm",
    "/var/lib/pacman", "/var/spool/cron",
)

#: single files the system lives by
SYSTEM_FILES = (
    "/etc/passwd", "/etc/passwd-", "/etc/shadow", "/etc/shadow-", "/etc/group",
    "/etc/group-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/hosts",
    "/etc/hostname", "/etc/fstab", "/etc/crontab", "/etc/resolv.conf", "/etc/os-release",
    "/etc/environment", "/etc/profile", "/etc/bash.bashrc", "/etc/login.defs",
    "/etc/nsswitch.conf", "/etc/machine-id", "/etc/ld.so.preload", "/etc/ld.so.conf",
    "/etc/securetty", "/etc/inittab", "/etc/sysctl.conf", "/etc/locale.gen",
)

#: folders that are never ours as a whole (a folder of our own inside them is fine)
TOP_DIRS = ("/", "/etc", "/var", "/var/lib", "/var/log", "/var/backups", "/var/tmp", "/home",
            "/root", "/tmp", "/opt", "/srv", "/mnt", "/media", "/run", "/var/run")


def _system_reason(path: str) -> str | None:
    """Why `path` (normalised) is the system's, or None."""
    if path in SYSTEM_FILES:
        return "a system file"
    for d in SYSTEM_DIRS:
        if path == d or path.startswith(d + "/"):
            return f"in {d}, the system's"
    if ".ssh" in path.split("/"):
        return "in an .ssh folder"
    return None


def _normalised(key: str, value: str) -> str:
    if not value.startswith("/") or any(c in value for c in "\n\x00"):
        raise UsageError(f"{key} must be an absolute path, got {value!r}")
    if ".." in value.split("/"):
        raise UsageError(f"{key} must not contain '..', got {value!r}")
    return posixpath.normpath(value).replace("//", "/")


def file_path(key: str, value: str) -> str:
    """An absolute path for a file of ours (or one we read); UsageError naming `key` when it
    is a folder path or the system's."""
    path = _normalised(key, value)
    if value.endswith("/") or path in TOP_DIRS:
        raise UsageError(f"{key} must be a file path, got the folder {value!r}")
    why = _system_reason(path)
    if why is not None:
        raise UsageError(f"{key} {value!r} is {why}: chatalot-db never writes or points "
                         "PostgreSQL at system files; choose a path of its own (e.g. under "
                         "/etc/chatalot/)")
    return value


def dir_path(key: str, value: str) -> str:
    """An absolute path for a folder of ours; UsageError naming `key` when it is the system's
    or a shared top folder itself."""
    path = _normalised(key, value)
    why = _system_reason(path) or ("a shared system folder" if path in TOP_DIRS else None)
    if why is not None:
        raise UsageError(f"{key} {value!r} is {why}: chatalot-db needs a folder of its own "
                         "(e.g. /var/backups/chatalot)")
    return value
