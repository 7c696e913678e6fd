"""Measuring a local tree: bytes and files (hard links once), per folder if asked, by a walk with descriptors."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor

from ..mounts import mount_containing, read_mounts
from ..streams import TEMP_PREFIX
from ..tally import Tally

__all__ = ["NETWORK_FILESYSTEMS", "on_network_filesystem", "scan_directory", "walk_folders", "walk_tree"]

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
    walk per file); subdirectories are opened with ``O_NOFOLLOW``. Temporary files of unfinished writes
    (``TEMP_PREFIX``) are not counted, as listings never show them.
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
                    if entry.name.startswith(TEMP_PREFIX):
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
    """Count every regular file under ``root`` (see :func:`walk_folders`)."""
    return walk_folders(root, 0, workers)[""]


def walk_folders(root: str, depth: int, workers: int) -> dict[str, Tally]:
    """Count every regular file under ``root``, by the folder at ``depth`` it lies in (0: all in ``""``).

    The levels above ``depth`` are scanned first (their files count in their own folder); then each folder at
    ``depth`` is walked as one subtree. On a local filesystem one thread walks (a stat costs a microsecond or
    two, and threads only fight over the GIL: 200,000 files took 1.17 s on 4 threads, 0.81 s on one, against
    0.51 s for ``du -sb``). On a network or FUSE filesystem, where every stat may be a round trip, subtrees are
    walked on ``workers`` threads.

    Returns:
        A tally per folder path relative to ``root`` (``""`` always present); a folder may have counted nothing.
    """
    tallies = {"": Tally()}
    level = [("", root)]
    for _ in range(depth):
        below = []
        for folder, directory in level:
            tally = tallies.setdefault(folder, Tally())
            for sub in scan_directory(directory, tally, top=directory == root):
                name = sub[len(directory) + 1:]
                below.append((f"{folder}/{name}" if folder else name, sub))
        level = below
    for folder, _ in level:
        tallies.setdefault(folder, Tally())
    if not on_network_filesystem(root):
        for folder, directory in level:
            tallies[folder].merge(_walk_subtree(directory, top_is_root=directory == root))
        return tallies
    # Expand breadth-first until there are enough subtrees to keep every worker busy, then walk each subtree in
    # one tight loop per task (a task per directory costs more than it saves).
    frontier = level
    while frontier and len(frontier) < 4 * workers:
        level, frontier = frontier, []
        for folder, directory in level:
            frontier.extend((folder, sub) for sub in scan_directory(directory, tallies[folder],
                                                                    top=directory == root))
    if frontier:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for (folder, _), part in zip(frontier, pool.map(_walk_below, [d for _, d in frontier]), strict=True):
                tallies[folder].merge(part)
    return tallies
