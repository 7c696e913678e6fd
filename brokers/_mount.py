"""Run ``mount``/``umount`` and turn failures into :class:`~brokers.errors.MountError`."""

from __future__ import annotations

import os
import subprocess

from .errors import MountError

__all__ = ["is_mount_point", "run_mount", "run_unmount"]


def is_mount_point(path: str) -> bool:
    """Return True if ``path`` is a mount point listed in ``/proc/self/mountinfo``."""
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            return any(_unescape(line.split()[4]) == real for line in f if len(line.split()) > 4)
    except OSError:
        return os.path.ismount(path)


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def run_mount(argv: list[str], target: str) -> None:
    """Run a mount command line and check that ``target`` became a mount point.

    Raises:
        MountError: The command is missing, failed, or did not produce a mount.
    """
    os.makedirs(target, exist_ok=True)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MountError(f"cannot run {argv[0]!r}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise MountError(f"{' '.join(argv[:3])} ... failed: {detail[0]}")
    if not is_mount_point(target):
        raise MountError(f"{target} is not a mount point after {argv[0]} succeeded")


def run_unmount(target: str) -> None:
    """Unmount ``target``.

    Raises:
        MountError: The unmount failed.
    """
    try:
        done = subprocess.run(["umount", target], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MountError(f"cannot run umount: {exc}") from exc
    if done.returncode != 0:
        raise MountError(f"umount {target} failed: {done.stderr.strip() or done.returncode}")
