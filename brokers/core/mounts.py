r"""Mounts on this machine: the one ``/proc/self/mountinfo`` parser, and running ``mount``/``umount``.

A mountinfo line reads ``36 35 98:0 /root /mnt/point rw,noatime master:1 - nfs4 server:/export rw,addr=...``:
fields before ``-`` describe the mount (its root inside the filesystem, its mount point), after it the
filesystem type, the source and the superblock options. Paths are escaped as octal (a space is ``\040``).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from ..errors import MountError

__all__ = ["MOUNTINFO", "Mount", "is_mount_point", "mount_containing", "parse_mountinfo", "read_mounts",
           "run_mount", "run_unmount", "unescape"]

MOUNTINFO = "/proc/self/mountinfo"


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo.

    Attributes:
        point: Where it is mounted on this machine.
        root: The directory of the filesystem shown at ``point`` (``/`` for all of it).
        fstype: Filesystem type (``ext4``, ``nfs4``, ``fuse.s3fs``).
        source: What is mounted (``/dev/vda``, ``server:/export``).
        options: Superblock options (``addr=10.0.0.5`` for NFS).
    """

    point: str
    root: str
    fstype: str
    source: str
    options: tuple[str, ...] = ()


def unescape(field: str) -> str:
    """Undo the octal escapes of a mountinfo field (a space is written as backslash, 0, 4, 0)."""
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse the text of ``/proc/self/mountinfo`` (lines that do not parse are skipped)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if sep < 6 or len(fields) < sep + 3:
            continue
        options = tuple(fields[sep + 3].split(",")) if len(fields) > sep + 3 else ()
        mounts.append(Mount(point=unescape(fields[4]), root=unescape(fields[3]), fstype=fields[sep + 1],
                            source=unescape(fields[sep + 2]), options=options))
    return mounts


def read_mounts(path: str = MOUNTINFO) -> list[Mount] | None:
    """Return the mounts of this process, or None when mountinfo cannot be read (not Linux, no /proc)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_mountinfo(f.read())
    except OSError:
        return None


def mount_containing(path: str, mounts: list[Mount]) -> Mount | None:
    """Return the mount a path lies on: the one with the deepest mount point above its real path."""
    real = os.path.realpath(path)
    best: Mount | None = None
    for mount in mounts:
        point = mount.point
        if (real == point or real.startswith(point.rstrip("/") + "/")) and (
                best is None or len(point) >= len(best.point)):
            best = mount
    return best


def is_mount_point(path: str) -> bool:
    """Return True if ``path`` is a mount point (per mountinfo; ``os.path.ismount`` where it is unreadable)."""
    mounts = read_mounts()
    if mounts is None:
        return os.path.ismount(path)
    real = os.path.realpath(path)
    return any(m.point == real for m in mounts)


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
