"""Build each kind's root file system once and cache it, keyed by its recipe.

An image is a directory `<cache>/images/<kind>-<hash12>`. It is built in a
temporary directory beside it and renamed into place, so a directory with the
final name is always complete. A lock file per key lets concurrent runs wait
for one build instead of building twice. Images are only ever used as the
read-only lower layer of a host's overlay.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import IO

from testbed import mounts
from testbed._proc import pids_using, run, signal_pids, tail, tool_env, wait_gone
from testbed.errors import CommandFailed, ImageBuildError
from testbed.mirror import Mirror
from testbed.recipes import Recipe, RunInChroot, WriteFile

DEFAULT_CACHE_DIR = Path("/var/cache/chatalot-testbed")
CACHE_ENV = "CHATALOT_TESTBED_CACHE"
DEBOOTSTRAP_TIMEOUT = 1800.0
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "HOME": "/root"}


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


def image_path(cache_dir: Path, recipe: Recipe, mirror: Mirror) -> Path:
    return cache_dir / "images" / recipe.key(mirror)


def ensure_image(
    recipe: Recipe,
    mirror: Mirror,
    cache_dir: Path,
    report: Callable[[str], None],
) -> tuple[Path, float, bool]:
    """The image for recipe, built if missing: (path, seconds spent, whether it was built)."""
    started = time.monotonic()
    final = image_path(cache_dir, recipe, mirror)
    final.parent.mkdir(parents=True, exist_ok=True)
    lock_path = final.parent / f".{final.name}.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another run builds the same key
        if final.is_dir():
            return final, time.monotonic() - started, False
        report(f"{recipe.kind}: building image {final.name} ({recipe.suite}, mirror {mirror.uri})")
        _build(recipe, mirror, final)
    return final, time.monotonic() - started, True


def _build(recipe: Recipe, mirror: Mirror, final: Path) -> None:
    for stale in final.parent.glob(f".build-{final.name}-*"):
        # A killed run's debootstrap may still be writing there: stop it first.
        for _ in range(10):
            users = pids_using(stale)
            if not users:
                break
            signal_pids(users, signal.SIGKILL)
            wait_gone(users, 10)
        mounts.remove_tree(stale)
    tmp = final.parent / f".build-{final.name}-{os.getpid()}"
    log_path = final.parent / f"{final.name}.build.log"
    argv = [
        "debootstrap",
        f"--variant={recipe.variant}",
        f"--include={','.join(recipe.packages)}",
        recipe.suite,
        str(tmp),
        mirror.uri,
    ]
    try:
        with open(log_path, "w") as log_file:
            log_file.write(" ".join(argv) + "\n")
            log_file.flush()
            done = _run_logged(argv, log_file)
        if done != 0:
            raise ImageBuildError(
                f"{recipe.kind}: debootstrap failed (exit {done}); log {log_path}:\n"
                + tail(log_path, 25)
            )
        _write(tmp, WriteFile("/etc/apt/sources.list", mirror.sources_list(recipe.suite)))
        for step in recipe.steps:
            if isinstance(step, WriteFile):
                _write(tmp, step)
            else:
                _chroot(tmp, step)
        left = mounts.under(tmp)
        if left:
            raise ImageBuildError(f"{recipe.kind}: mounts left inside the image: {left}")
        os.rename(tmp, final)
    except (CommandFailed, OSError) as exc:
        mounts.remove_tree(tmp)
        raise ImageBuildError(f"{recipe.kind}: image build failed: {exc}") from exc
    except BaseException:
        mounts.remove_tree(tmp)
        raise
    meta = {"recipe": asdict(recipe), "mirror": asdict(mirror), "built": time.time()}
    (final.parent / f"{final.name}.json").write_text(json.dumps(meta, indent=2) + "\n")


def _run_logged(argv: list[str], log_file: IO[str]) -> int:
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        timeout=DEBOOTSTRAP_TIMEOUT,
        env=tool_env(),
        check=False,
    )
    return proc.returncode


def _write(root: Path, step: WriteFile) -> None:
    target = root / step.path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    target.write_text(step.content)
    os.chmod(target, step.mode)


def _chroot(root: Path, step: RunInChroot) -> None:
    run(
        ["chroot", str(root), "/bin/sh", "-c", step.script],
        input=step.stdin,
        env=CHROOT_ENV,
        timeout=600,
    )
