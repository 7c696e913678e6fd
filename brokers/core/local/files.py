"""Broker file operations over a local directory: the host broker's, and a mounted NFS export's.

Every path is resolved race-free beneath the root with directory descriptors (:func:`~brokers.paths.open_beneath`).
Writes go to a temporary file in the target's directory, are fsynced and renamed over the target
(:class:`~brokers.core.local.writer.LocalWriter`); reads use ``pread`` for ranges; copies use the kernel's fast path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import IO, BinaryIO, TypeVar

from ...errors import BrokerError, FileNotFound, IntegrityError, WorkspaceNotFound
from ...paths import open_beneath, resolve_local
from ...types import FileInfo, Usage, UsageReport
from ..errno_map import translate_os_error
from ..streams import TEMP_PREFIX, Progress, committing
from ..tally import Tally, folder_shares
from .io import kernel_copy, pread_range
from .usage import walk_folders, walk_tree
from .writer import LocalWriter

__all__ = ["LocalFiles"]

_SUBDIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

T = TypeVar("T")


def _file_info(rel: str, st: os.stat_result) -> FileInfo:
    return FileInfo(path=rel, size=st.st_size, modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc))


class LocalFiles:
    """Broker primitives over a local directory (the workspace root).

    Every operation on a root that does not exist (or is not a directory) raises
    :class:`~brokers.errors.WorkspaceNotFound` naming it; the root is checked only when an operation meets a
    missing path, and once before a walk (list, usage, cleanup, delete_all), so a missing folder never reads
    as an empty workspace.

    Args:
        root: The workspace directory; it is resolved once (``realpath``) and every path is confined to it.
        workers: Threads used to walk large trees in parallel for :meth:`usage`.
    """

    def __init__(self, root: str, workers: int = 4) -> None:
        self.folder = root
        self.root = os.path.realpath(root)
        self.workers = workers

    def path(self, rel: str) -> str:
        """Return the confined local path of a normalised workspace path."""
        return resolve_local(self.root, rel)

    def _missing_root(self) -> WorkspaceNotFound | None:
        """The error for a workspace folder that is not there (or not a directory), else None."""
        try:
            st = os.stat(self.root)
        except (FileNotFoundError, NotADirectoryError):
            return WorkspaceNotFound(self.folder)
        except OSError:  # e.g. not allowed to look: the operation's own error says more
            return None
        return None if stat.S_ISDIR(st.st_mode) else WorkspaceNotFound(self.folder, "is not a directory")

    def _require_root(self) -> None:
        """Raise WorkspaceNotFound if the workspace folder is not there."""
        missing = self._missing_root()
        if missing is not None:
            raise missing

    def _call(self, rel: str, fn: Callable[[], T]) -> T:
        """Run ``fn``, translating OS errors; a missing file is first checked against a missing workspace folder."""
        try:
            return fn()
        except FileNotFound as exc:  # also an OSError: already translated
            missing = None if isinstance(exc, WorkspaceNotFound) else self._missing_root()
            if missing is not None:
                raise missing from exc
            raise
        except BrokerError:
            raise
        except OSError as exc:
            error = self._translate(exc, rel)
            missing = self._missing_root() if isinstance(error, FileNotFound) else None
            raise (missing or error) from exc

    def _translate(self, exc: OSError, rel: str) -> BrokerError:
        """The broker error for ``exc`` on ``rel``; messages name the workspace folder for its root."""
        return translate_os_error(exc, rel, where=None if rel else self.folder)

    @contextlib.contextmanager
    def _at(self, rel: str, *, follow_last: bool = True, create_dirs: bool = False) -> Iterator[tuple[int, str]]:
        """Resolve ``rel`` race-free under the root: yield ``(dir_fd, name)`` (see ``open_beneath``).

        The string check of :meth:`path` runs first so errors keep their meaning (a link leading outside is
        :class:`PathOutsideWorkspace`); the descriptor walk then guarantees that what is used is what was checked.
        """
        self.path(rel)
        dir_fd, name = self._call(rel, lambda: open_beneath(self.root, rel, follow_last=follow_last,
                                                            create_dirs=create_dirs))
        try:
            yield dir_fd, name
        finally:
            os.close(dir_fd)

    def _open_file(self, rel: str) -> int:
        """Open a regular file for reading, race-free under the root; return its descriptor."""
        with self._at(rel) as (dir_fd, name):
            if not name:
                raise FileNotFound(rel, "is a directory, not a file")
            fd = self._call(rel, lambda: os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd))
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise FileNotFound(rel, "is not a regular file")
        return fd

    def info(self, rel: str) -> FileInfo:
        """Return the info of a regular file (FileNotFound for a directory or nothing)."""
        with self._at(rel) as (dir_fd, name):
            if not name:
                raise FileNotFound(rel, "is not a regular file")
            st = self._call(rel, lambda: os.stat(name, dir_fd=dir_fd, follow_symlinks=False))
        if not stat.S_ISREG(st.st_mode):
            raise FileNotFound(rel, "is not a regular file")
        return _file_info(rel, st)

    def iter(self, prefix: str, recursive: bool) -> Iterator[FileInfo]:
        """Yield the regular files under ``prefix``, sorted per directory, temporary files hidden.

        Directories are opened and read through descriptors (``O_NOFOLLOW``), so a directory swapped for a link
        during the walk is skipped, never listed.
        """
        self.path(prefix)  # the string check first: a link leading outside is PathOutsideWorkspace
        try:
            top_fd, name = open_beneath(self.root, prefix, follow_last=True)
        except OSError as exc:
            missing = self._missing_root()
            if missing is not None:
                raise missing from exc
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return  # no such directory: nothing under this prefix
            raise self._translate(exc, prefix) from exc
        if name:  # a file, not a directory
            os.close(top_fd)
            return
        stack = [(top_fd, prefix)]
        try:
            while stack:
                dir_fd, rel_dir = stack.pop()
                try:
                    with os.scandir(dir_fd) as it:
                        entries = sorted(it, key=lambda e: e.name)
                    subdirs = []
                    for entry in entries:
                        if entry.name.startswith(TEMP_PREFIX):
                            continue
                        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                        try:
                            if entry.is_symlink():
                                st = self._linked_stat(rel)  # confined: a link leading outside is skipped
                                if st is not None and stat.S_ISREG(st.st_mode):
                                    yield _file_info(rel, st)
                                continue
                            st = entry.stat(follow_symlinks=False)
                            if stat.S_ISDIR(st.st_mode):
                                if recursive:
                                    subdirs.append((os.open(entry.name, _SUBDIR_FLAGS, dir_fd=dir_fd), rel))
                            elif stat.S_ISREG(st.st_mode):
                                yield _file_info(rel, st)
                        except OSError:
                            continue
                finally:
                    os.close(dir_fd)
                stack.extend(reversed(subdirs))
        finally:
            for fd, _ in stack:
                os.close(fd)

    def _linked_stat(self, rel: str) -> os.stat_result | None:
        """Stat what a symbolic link leads to, if it stays inside the workspace (else None)."""
        try:
            with self._at(rel) as (dir_fd, name):
                if not name:
                    return os.fstat(dir_fd)
                return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except (BrokerError, OSError):
            return None

    def read(self, rel: str, start: int, end: int | None) -> bytes:
        """Read ``[start, end)`` with ``pread``: only that range is read."""
        def _read() -> bytes:
            fd = self._open_file(rel)
            try:
                return pread_range(fd, start, end)
            finally:
                os.close(fd)

        return self._call(rel, _read)

    def reader(self, rel: str, buffer_size: int) -> BinaryIO:
        """Open for streaming reads with a ``buffer_size`` buffer."""
        def _open() -> BinaryIO:
            fd = self._open_file(rel)
            f = open(fd, "rb", buffering=buffer_size)  # noqa: SIM115 - returned to the caller
            with contextlib.suppress(AttributeError):
                f.raw.name = os.path.join(self.root, rel)  # type: ignore[attr-defined]
            return f

        return self._call(rel, _open)

    def writer(self, rel: str) -> LocalWriter:
        """Start an atomic write (temporary file in the same directory)."""
        self.path(rel)  # the string check first: errors keep their meaning
        return self._call(rel, lambda: LocalWriter(self.root, rel))

    def upload(self, local: str, rel: str, progress: Progress | None = None) -> None:
        """Copy a local file in to its end (a pipe or a ``/proc`` file too) with the kernel's fast path, atomically."""
        with open(local, "rb") as source:
            self._copy_in(source.fileno(), rel, None, rel, progress)

    def _copy_in(self, fd: int, rel: str, size: int | None, what: str, progress: Progress | None = None) -> None:
        """Copy all of ``fd`` into ``rel`` atomically with the kernel's fast path (IntegrityError if not ``size``)."""
        try:
            with committing(self.writer(rel)) as writer:
                copied = kernel_copy(fd, writer.fileno, progress)
                if size is not None and copied != size:
                    raise IntegrityError(f"{what}: copied {copied} of {size} bytes")
        except BrokerError:  # already translated (by the writer); some are OSErrors too
            raise
        except OSError as exc:
            raise translate_os_error(exc, rel) from exc

    def download_to(self, rel: str, out: IO[bytes], progress: Progress | None = None) -> None:
        """Copy a workspace file into an open local file with the kernel's fast path."""
        def _copy() -> None:
            fd = self._open_file(rel)
            try:
                kernel_copy(fd, out.fileno(), progress)
            finally:
                os.close(fd)

        self._call(rel, _copy)

    def remove(self, rel: str) -> None:
        """Delete one file (not a directory)."""
        with self._at(rel, follow_last=False) as (dir_fd, name):
            st = self._call(rel, lambda: os.stat(name, dir_fd=dir_fd, follow_symlinks=False))
            if stat.S_ISDIR(st.st_mode):
                raise BrokerError(f"{rel}: is a directory; delete its files instead")
            self._call(rel, lambda: os.unlink(name, dir_fd=dir_fd))

    def remove_all(self) -> int:
        """Delete everything inside the root (files, links and directories), never the root itself.

        Walks with directory descriptors (``os.fwalk``): a directory swapped for a link meanwhile is not entered.
        """
        self._require_root()
        count = 0
        for _dirpath, dirnames, filenames, dir_fd in os.fwalk(self.root, topdown=False):
            for name in filenames:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dir_fd)
                    count += not name.startswith(TEMP_PREFIX)
            for name in dirnames:
                try:
                    os.rmdir(name, dir_fd=dir_fd)
                except NotADirectoryError:  # a symbolic link to a directory: remove the link only
                    os.unlink(name, dir_fd=dir_fd)
                except FileNotFoundError:
                    continue
        return count

    def rename(self, src: str, dst: str) -> None:
        """Rename atomically; across filesystems copy, verify and then delete the source."""
        with self._at(src, follow_last=False) as (src_fd, src_name):
            st = self._call(src, lambda: os.stat(src_name, dir_fd=src_fd) if src_name else os.fstat(src_fd))
            if not src_name or not stat.S_ISREG(st.st_mode):
                raise FileNotFound(src, "is not a regular file")
            with self._at(dst, follow_last=False, create_dirs=True) as (dst_fd, dst_name):
                if not dst_name:
                    raise FileNotFound(dst, "is a directory, not a file")
                try:
                    os.rename(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
                    return
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise translate_os_error(exc, src) from exc
            fd = self._open_file(src)
            try:
                self._copy_in(fd, dst, st.st_size, f"move {src} -> {dst} (source kept)")
            finally:
                os.close(fd)
            self._call(src, lambda: os.unlink(src_name, dir_fd=src_fd))

    def cleanup(self, older_than: float) -> int:
        """Remove temporary files of crashed writes older than ``older_than`` seconds."""
        self._require_root()
        limit = time.time() - older_than
        removed = 0
        for _dirpath, _dirs, filenames, dir_fd in os.fwalk(self.root):
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    try:
                        if os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mtime <= limit:
                            os.unlink(name, dir_fd=dir_fd)
                            removed += 1
                    except FileNotFoundError:
                        continue
        return removed

    def usage(self) -> Usage:
        """Walk the tree and count bytes (hard links once, temporary files left out); capacity from statvfs."""
        self._require_root()
        return self._measured(walk_tree(self.root, self.workers))

    def folder_usage(self, depth: int) -> UsageReport:
        """:meth:`usage` and each folder's share at ``depth``, in the same walk (each folder one subtree)."""
        self._require_root()
        totals, folders = folder_shares(walk_folders(self.root, depth, self.workers))
        return UsageReport(usage=self._measured(totals), folders=folders, depth=depth)

    def _measured(self, totals: Tally) -> Usage:
        """The usage of a walk's totals, with the capacity from statvfs."""
        vfs = self._call("", lambda: os.statvfs(self.root))
        return Usage(used_size=totals.used, total_size=vfs.f_blocks * vfs.f_frsize,
                     free_size=vfs.f_bavail * vfs.f_frsize, file_count=totals.files,
                     measured_at=datetime.now(timezone.utc), method="walk+statvfs")

    def local_file(self, rel: str) -> str | None:
        """Return the confined local path of a regular file, or None."""
        path = self.path(rel)
        return path if os.path.isfile(path) else None
