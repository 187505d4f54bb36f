"""installer.desired.paths: path variables that name the system's files or folders are
refused before the host is contacted; paths of our own pass unchanged."""

from __future__ import annotations

import re

import pytest

from installer.desired import paths
from installer.desired.config import HostConfig
from installer.errors import UsageError


@pytest.mark.parametrize(("value", "why"), [
    ("/etc/passwd", "a system file"),
    ("/etc/shadow", "a system file"),
    ("/etc/sudoers", "a system file"),
    ("/etc/ssh/sshd_config", "in /etc/ssh, the system's"),
    ("/etc/ssh/ssh_host_ed25519_key", "in /etc/ssh, the system's"),
    ("/boot/grub/grub.cfg", "in /boot"),
    ("/proc/sys/kernel/hostname", "in /proc"),
    ("/sys/power/state", "in /sys"),
    ("/dev/sda", "in /dev"),
    ("/usr/bin/python3", "in /usr"),
    ("/bin/sh", "in /bin"),
    ("/sbin/init", "in /sbin"),
    ("/lib/x86_64-linux-gnu/libc.so.6", "in /lib,"),
    ("/lib64/ld-linux-x86-64.so.2", "in /lib64"),
    ("/root/.ssh/authorized_keys", "in an .ssh folder"),
    ("/home/ops/.ssh/authorized_keys", "in an .ssh folder"),
    ("/etc/sudoers.d/ops", "in /etc/sudoers.d"),
    ("/etc/pam.d/sshd", "in /etc/pam.d"),
    ("//etc/passwd", "a system file"),
    ("/etc/./shadow", "a system file"),
    ("/etc/", "the folder"),
    ("/", "the folder"),
    ("/etc", "the folder"),
    ("/etc/chatalot/", "the folder"),
    ("/etc/chatalot/../passwd", "must not contain '..'"),
    ("etc/chatalot.env", "absolute path"),
    ("/etc/chatalot/a\nb.env", "absolute path"),
])
def test_file_paths_refused(value: str, why: str) -> None:
    with pytest.raises(UsageError, match=f"^db_env_file .*{re.escape(why)}"):
        paths.file_path("db_env_file", value)


@pytest.mark.parametrize("value", [
    "/etc/chatalot/database.env", "/etc/chatalot/prod.env", "/srv/chat/app.env",
    "/etc/passwords.env", "/etc/ssl/private/chatalot.key", "/opt/chatalot/database.env",
    "/var/lib/chatalot/env", "/etc/shadow.d/x",
])
def test_file_paths_of_our_own_pass_unchanged(value: str) -> None:
    assert paths.file_path("db_env_file", value) == value


@pytest.mark.parametrize(("value", "why"), [
    ("/", "a shared system folder"), ("/etc", "a shared system folder"),
    ("/var", "a shared system folder"), ("/var/lib", "a shared system folder"),
    ("/home", "a shared system folder"), ("/root", "a shared system folder"),
    ("/tmp", "a shared system folder"), ("/var/backups", "a shared system folder"),
    ("/etc/ssh", "in /etc/ssh"), ("/usr/local/backups", "in /usr"),
    ("/proc/1", "in /proc"), ("/root/.ssh", "in an .ssh folder"),
    ("/var/backups/../../etc", "must not contain '..'"), ("backups", "absolute path"),
])
def test_dir_paths_refused(value: str, why: str) -> None:
    with pytest.raises(UsageError, match=f"^backup_dir .*{re.escape(why)}"):
        paths.dir_path("backup_dir", value)


@pytest.mark.parametrize("value", ["/var/backups/chatalot", "/srv/backups", "/var/backups/x/",
                                   "/home/backup/chatalot", "/mnt/nas/chatalot"])
def test_dir_paths_of_our_own_pass_unchanged(value: str) -> None:
    assert paths.dir_path("backup_dir", value) == value


@pytest.mark.parametrize(("variables", "name"), [
    ({"db_env_file": "/etc/passwd"}, "db_env_file"),
    ({"db_env_file": "/etc/shadow"}, "db_env_file"),
    ({"backup_dir": "/etc"}, "backup_dir"),
    ({"pg_ssl_cert": "/etc/shadow", "pg_ssl_key": "/etc/chatalot/k.pem",
      "pg_allowed_cidrs": "10.0.0.0/8", "pg_listen": "*"}, "pg_ssl_cert"),
    ({"pg_ssl_cert": "/etc/chatalot/c.pem", "pg_ssl_key": "/etc/ssh/ssh_host_rsa_key",
      "pg_allowed_cidrs": "10.0.0.0/8", "pg_listen": "*"}, "pg_ssl_key"),
])
def test_config_refuses_system_paths_at_check_variables(variables: dict[str, str],
                                                        name: str) -> None:
    with pytest.raises(UsageError, match=f"^{name} "):
        HostConfig.from_vars(variables)


def test_run_holds_files_of_our_own_but_is_not_a_folder_of_ours() -> None:
    """/run/chatalot/database.env (a tmpfs secret) is fine; /run itself is not a backup
    folder; systemd's and sshd's runtime folders are the system's."""
    assert paths.file_path("db_env_file", "/run/chatalot/database.env")
    with pytest.raises(UsageError, match="a shared system folder"):
        paths.dir_path("backup_dir", "/run")
    with pytest.raises(UsageError, match="in /run/systemd"):
        paths.file_path("db_env_file", "/run/systemd/system/x.env")
