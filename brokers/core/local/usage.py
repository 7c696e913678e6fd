"""Measuring a local tree: bytes and files (hard links once) by a walk with directory descriptors."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor

from ..mounts import mount_containing, read_mounts
from ..tally import Tally

__all__ = ["NETWORK_FILESYSTEMS", "on_network_filesystem", "scan_directory", "walk_tree"]

NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "lustre", "afs",
                                 "beegfs", "gpfs", "fuse", "fuseblk"})
"""Filesystem types (before any ``.subtype``) where a stat may be a network round trip."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def on_network_filesystem(path: str) -> bool:
    """Return True if ``path`` lies on a network or FUSE filesystem (True when mountinfo cannot tell)."""
    mounts = read_mounts()
    if mounts is None:
        return True  # unknown: walk in parallel, which is safe everywhere
    mount = mount_containing(path, mounts)
    return mount is not None and mount.fstype.split(".", 1)[0] in NETWORK_FILESYSTEMS


def scan_directory(directory: str, tally: Tally, top: bool = True) -> list[str]:
    """Count the files of one directory into ``tally``; return its subdirectories (links are never followed).

    The directory is listed through a descriptor, so each file's stat is an ``fstatat`` relative to it (no path
    walk per file); subdirectories are opened with ``O_NOFOLLOW``.
    """
    subdirs: list[str] = []
    size = files = 0
    linked = tally.linked
    try:
        fd = os.open(directory, _DIR_FLAGS if top else _DIR_FLAGS | os.O_NOFOLLOW)
    except OSError:
        return subdirs
    try:
        with os.scandir(fd) as it:
            for entry in it:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(f"{directory}/{entry.name}")
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    if st.st_nlink > 1:
                        linked[(st.st_dev, st.st_ino)] = st.st_size
                    else:
                        size += st.st_size
                    files += 1
    except OSError:
        pass
    finally:
        os.close(fd)
    tally.size += size  # the hot loop counts in locals; the tally takes the sums
    tally.files += files
    return subdirs


def _walk_subtree(top: str, top_is_root: bool = True) -> Tally:
    tally = Tally()
    stack = scan_directory(top, tally, top=top_is_root)
    while stack:
        stack.extend(scan_directory(stack.pop(), tally, top=False))
    return tally


def _walk_below(top: str) -> Tally:
    return _walk_subtree(top, top_is_root=False)


def walk_tree(root: str, workers: int) -> Tally:
    """Count every regular file under ``root``.

    On a local filesystem one thread walks (a stat costs a microsecond or two, and threads only fight over the
    GIL: 200,000 files took 1.17 s on 4 threads, 0.81 s on one, against 0.51 s for ``du -sb``). On a network or
    FUSE filesystem, where every stat may be a round trip, subtrees are walked on ``workers`` threads.
    """
    if not on_network_filesystem(root):
        return _walk_subtree(root)
    totals = Tally()
    frontier = [root]
    # Expand breadth-first until there are enough subtrees to keep every worker busy, then walk each subtree in
    # one tight loop per task (a task per directory costs more than it saves).
    while frontier and len(frontier) < 4 * workers:
        level, frontier = frontier, []
        for directory in level:
            frontier.extend(scan_directory(directory, totals, top=directory == root))
        if len(frontier) > 4 * workers or not frontier:
            break
    if frontier:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for part in pool.map(_walk_below, frontier):
                totals.merge(part)
    return totals
