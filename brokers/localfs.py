"""Local-filesystem primitives shared by every broker whose files are reachable on this machine.

:class:`LocalFiles` implements the broker primitives over a directory: :class:`~brokers.host.HostBroker` uses
it directly, and :class:`~brokers.nfs.NfsBroker` uses it for a mounted export. Writes go to a temporary file in
the target's directory, are fsynced and renamed over the target; reads use ``pread`` for ranges; copies use the
kernel's fast path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import BinaryIO, TypeVar

from .broker import Writer
from .errors import BrokerError, FileNotFound, IntegrityError, PathOutsideWorkspace, StorageUnavailable
from .paths import open_beneath, resolve_local
from .types import FileInfo, Usage

__all__ = ["TEMP_PREFIX", "LocalFiles", "kernel_copy", "pread_range"]

TEMP_PREFIX = ".brokers-tmp-"
"""Name prefix of temporary files of writes in progress (hidden from listings)."""

_SUBDIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

T = TypeVar("T")


def _translate(rel: str, exc: OSError) -> BrokerError:
    """Map an OSError to a broker error (one table for every local operation)."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return FileNotFound(rel)
    if exc.errno == errno.EISDIR:
        return FileNotFound(rel, "is a directory, not a file")
    if exc.errno in (errno.EACCES, errno.EPERM):
        from .errors import AccessDenied

        return AccessDenied(f"{rel}: permission denied")
    if exc.errno in (errno.ESTALE, errno.EIO, errno.ETIMEDOUT, errno.ENOTCONN, errno.EHOSTDOWN):
        return StorageUnavailable(f"{rel}: {exc.strerror}")
    if exc.errno == errno.ELOOP:
        return PathOutsideWorkspace(rel, "too many levels of symbolic links")
    return BrokerError(f"{rel}: {exc.strerror or exc}")


def kernel_copy(src_fd: int, dst_fd: int) -> int:
    """Copy all of ``src_fd`` to ``dst_fd`` inside the kernel (``copy_file_range``, then ``sendfile``).

    ``copy_file_range`` lets the filesystem share extents (reflinks) or copy server-side (NFS 4.2); where the
    kernel refuses it for this pair of files, ``sendfile`` still avoids user-space buffers.

    Returns:
        Bytes copied.
    """
    size = os.fstat(src_fd).st_size
    copied = 0
    use_cfr = hasattr(os, "copy_file_range")
    while copied < size:
        chunk = min(size - copied, 1 << 30)
        try:
            if use_cfr:
                n = os.copy_file_range(src_fd, dst_fd, chunk, copied, copied)
            else:
                os.lseek(dst_fd, copied, os.SEEK_SET)
                n = os.sendfile(dst_fd, src_fd, copied, chunk)
        except OSError as exc:
            if use_cfr and exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF):
                use_cfr = False
                continue
            raise
        if n == 0:
            break
        copied += n
    return copied


def pread_range(fd: int, start: int, end: int | None) -> bytes:
    """Read bytes ``[start, end)`` of an open file with ``pread`` (``end`` None: to the end); only that range."""
    stop = os.fstat(fd).st_size if end is None else end
    parts = []
    offset = start
    while offset < stop:
        chunk = os.pread(fd, min(stop - offset, 1 << 30), offset)
        if not chunk:
            break
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts)


class _LocalWriter(Writer):
    """Temporary file beside the target; commit = flush + fsync + rename + fsync of the directory.

    The directory is held open (resolved with :func:`~brokers.paths.open_beneath`) and every step works
    relative to it, so a directory swapped for a symbolic link meanwhile cannot redirect the write.
    """

    def __init__(self, root: str, rel: str) -> None:
        self._rel = rel
        self._dir_fd = -1
        try:
            self._dir_fd, self._name = open_beneath(root, rel, follow_last=False, create_dirs=True)
            self._tmp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=self._dir_fd)
        except OSError as exc:
            self._close_dir()
            raise _translate(rel, exc) from exc
        except BaseException:
            self._close_dir()
            raise
        self._file = os.fdopen(fd, "wb")
        self._finished = False

    def _close_dir(self) -> None:
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1

    @property
    def fileno(self) -> int:
        return self._file.fileno()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        try:
            return self._file.write(data)
        except OSError as exc:
            self.abort()
            raise _translate(self._rel, exc) from exc

    def commit(self) -> None:
        if self._finished:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.chmod(self._tmp, 0o666 & ~_umask(), dir_fd=self._dir_fd, follow_symlinks=False)
            os.replace(self._tmp, self._name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            os.fsync(self._dir_fd)
        except OSError as exc:
            self.abort()
            raise _translate(self._rel, exc) from exc
        self._finished = True
        self._close_dir()

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp, dir_fd=self._dir_fd)
        self._close_dir()

    def __del__(self) -> None:
        # A writer dropped without commit or abort still releases its directory descriptor.
        with contextlib.suppress(Exception):  # nothing can be reported from a finaliser
            self._close_dir()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _file_info(rel: str, st: os.stat_result) -> FileInfo:
    return FileInfo(path=rel, size=st.st_size, modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc))


class LocalFiles:
    """Broker primitives over a local directory (the workspace root).

    Args:
        root: The workspace directory; it is resolved once (``realpath``) and every path is confined to it.
        workers: Threads used to walk large trees in parallel for :meth:`usage`.
    """

    def __init__(self, root: str, workers: int = 4) -> None:
        self.root = os.path.realpath(root)
        self.workers = workers

    def path(self, rel: str) -> str:
        """Return the confined local path of a normalised workspace path."""
        return resolve_local(self.root, rel)

    def _call(self, rel: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except BrokerError:  # FileNotFound is also an OSError: already translated
            raise
        except OSError as exc:
            raise _translate(rel, exc) from exc

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
        except OSError:
            return
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

    def writer(self, rel: str) -> _LocalWriter:
        """Start an atomic write (temporary file in the same directory)."""
        self.path(rel)  # the string check first: errors keep their meaning
        return _LocalWriter(self.root, rel)

    def upload(self, local: str, rel: str) -> None:
        """Copy a local file in with the kernel's fast path, atomically."""
        with open(local, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            self._copy_in(source.fileno(), rel, size, rel)

    def _copy_in(self, fd: int, rel: str, size: int, what: str) -> None:
        """Copy all of ``fd`` into ``rel`` atomically with the kernel's fast path (IntegrityError if short)."""
        writer = self.writer(rel)
        try:
            copied = kernel_copy(fd, writer.fileno)
            if copied != size:
                raise IntegrityError(f"{what}: copied {copied} of {size} bytes")
            writer.commit()
        except OSError as exc:
            writer.abort()
            raise _translate(rel, exc) from exc
        except BaseException:
            writer.abort()
            raise

    def download_to(self, rel: str, out_fd: int) -> None:
        """Copy a workspace file into an open local file descriptor with the kernel's fast path."""
        def _copy() -> None:
            fd = self._open_file(rel)
            try:
                kernel_copy(fd, out_fd)
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
                        raise _translate(src, exc) from exc
            fd = self._open_file(src)
            try:
                self._copy_in(fd, dst, st.st_size, f"move {src} -> {dst} (source kept)")
            finally:
                os.close(fd)
            self._call(src, lambda: os.unlink(src_name, dir_fd=src_fd))

    def cleanup(self, older_than: float) -> int:
        """Remove temporary files of crashed writes older than ``older_than`` seconds."""
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
        """Walk the tree and count bytes (hard links once); capacity from statvfs.

        On a local filesystem one thread walks (a stat costs a microsecond or two, and threads only fight over
        the GIL: 200,000 files took 1.17 s on 4 threads, 0.81 s on one, against 0.51 s for ``du -sb``). On a
        network or FUSE filesystem, where every stat may be a round trip, subtrees are walked in parallel.
        """
        totals = _Tally()
        if not _on_network_fs(self.root):
            totals.merge(_walk_subtree(self.root))
        else:
            frontier = [self.root]
            # Expand breadth-first until there are enough subtrees to keep every worker busy, then walk each
            # subtree in one tight loop per task (a task per directory costs more than it saves).
            while frontier and len(frontier) < 4 * self.workers:
                level, frontier = frontier, []
                for directory in level:
                    frontier.extend(totals.scan(directory, top=directory == self.root))
                if len(frontier) > 4 * self.workers or not frontier:
                    break
            if frontier:
                with ThreadPoolExecutor(max_workers=self.workers) as pool:
                    for part in pool.map(_walk_below, frontier):
                        totals.merge(part)
        vfs = self._call("", lambda: os.statvfs(self.root))
        return Usage(used_size=totals.used(), total_size=vfs.f_blocks * vfs.f_frsize,
                     free_size=vfs.f_bavail * vfs.f_frsize, file_count=totals.files,
                     measured_at=datetime.now(timezone.utc), method="walk+statvfs")


_NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "lustre", "afs", "beegfs",
               "gpfs", "fuse", "fuseblk")


def _on_network_fs(path: str) -> bool:
    """Return True if ``path`` lies on a network or FUSE filesystem (per ``/proc/self/mountinfo``)."""
    real = os.path.realpath(path)
    best, fstype = "", ""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 5 or " - " not in line:
                    continue
                point = fields[4].replace("\\040", " ").replace("\\134", "\\")
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, fstype = point, line.split(" - ", 1)[1].split()[0]
    except OSError:
        return True  # unknown: walk in parallel, which is safe everywhere
    return fstype.split(".", 1)[0] in _NETWORK_FS


class _Tally:
    """Bytes and files counted by a walk; files with several hard links are kept aside to count once."""

    def __init__(self) -> None:
        self.size = 0
        self.files = 0
        self.linked: dict[tuple[int, int], int] = {}

    def scan(self, directory: str, top: bool = True) -> list[str]:
        """Count the files of one directory; return its subdirectories (symlinks are never followed).

        The directory is listed through a descriptor, so each file's stat is an ``fstatat`` relative to it
        (no path walk per file); subdirectories are opened with ``O_NOFOLLOW``.
        """
        subdirs: list[str] = []
        size = files = 0
        linked = self.linked
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
                        files += 1
                        if st.st_nlink > 1:
                            linked[(st.st_dev, st.st_ino)] = st.st_size
                        else:
                            size += st.st_size
        except OSError:
            pass
        finally:
            os.close(fd)
        self.size += size
        self.files += files
        return subdirs

    def merge(self, other: _Tally) -> None:
        self.size += other.size
        self.files += other.files
        self.linked.update(other.linked)

    def used(self) -> int:
        return self.size + sum(self.linked.values())


def _walk_subtree(top: str, top_is_root: bool = True) -> _Tally:
    tally = _Tally()
    stack = tally.scan(top, top=top_is_root)
    while stack:
        stack.extend(tally.scan(stack.pop(), top=False))
    return tally


def _walk_below(top: str) -> _Tally:
    return _walk_subtree(top, top_is_root=False)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
