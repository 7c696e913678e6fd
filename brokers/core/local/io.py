"""Local I/O primitives: new files (mode from the umask), kernel copies (``copy_file_range``, ``sendfile``), pread."""

from __future__ import annotations

import errno
import os
import secrets
import stat

from ..streams import TEMP_PREFIX, Progress

__all__ = ["NEW_FILE_MODE", "create_temp", "kernel_copy", "pread_range"]

NEW_FILE_MODE = 0o666
"""Mode asked for when a file is created, as ``cp`` does: the kernel takes the umask (or a default ACL) off it.

Nothing reads or changes the process's umask (a change is process-wide and races with other threads)."""

_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def create_temp(directory: str | int) -> tuple[int, str]:
    """Create a new hidden temporary file (``TEMP_PREFIX`` + random) in ``directory``; return ``(fd, path)``.

    ``directory`` is a path, or the descriptor of an open directory (``path`` is then the bare name in it).
    """
    name = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    if isinstance(directory, int):
        return os.open(name, _NEW_FLAGS, NEW_FILE_MODE, dir_fd=directory), name
    path = os.path.join(directory, name)
    return os.open(path, _NEW_FLAGS, NEW_FILE_MODE), path


def kernel_copy(src_fd: int, dst_fd: int, progress: Progress | None = None) -> int:
    """Copy ``src_fd`` from its start to its end of file into ``dst_fd`` (from offset 0), inside the kernel.

    ``copy_file_range`` lets the filesystem share extents (reflinks) or copy server-side (NFS 4.2); where the
    kernel refuses it for this pair of files, ``sendfile`` still avoids user-space buffers. The copy runs until
    the source ends, never to the size ``fstat`` reports: a pipe, a device or a ``/proc`` file (size 0, and
    refused by both calls) is read and written in user space to its end, and what a kernel copy stops short of
    (a file that grew) is finished the same way. ``progress`` is told each step copied (64 MiB at most).

    Returns:
        Bytes copied.
    """
    st = os.fstat(src_fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return _copy_to_eof(src_fd, dst_fd, 0, positional=stat.S_ISREG(st.st_mode), progress=progress)
    copied = 0
    use_cfr = hasattr(os, "copy_file_range")
    step = _KERNEL_CHUNK if progress is None else _PROGRESS_CHUNK
    while True:
        try:
            if use_cfr:
                n = os.copy_file_range(src_fd, dst_fd, step, copied, copied)
            else:
                os.lseek(dst_fd, copied, os.SEEK_SET)
                n = os.sendfile(dst_fd, src_fd, copied, step)
        except OSError as exc:
            if use_cfr and exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF):
                use_cfr = False
                continue
            if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP) and copied == 0:
                return _copy_to_eof(src_fd, dst_fd, 0, positional=True,  # neither call takes this file
                                    progress=progress)
            raise
        if n == 0:
            break
        copied += n
        if progress is not None:
            progress(n)
    return copied + _copy_to_eof(src_fd, dst_fd, copied, positional=True, progress=progress)


_KERNEL_CHUNK = 1 << 30
_PROGRESS_CHUNK = 64 << 20
_USER_CHUNK = 1 << 20


def _copy_to_eof(src_fd: int, dst_fd: int, offset: int, *, positional: bool,
                 progress: Progress | None = None) -> int:
    """Copy from ``offset`` to the end of the source through user space; return the bytes copied.

    ``positional``: read with ``pread`` at the offset (files); else read the stream as it comes (pipes).
    """
    copied = 0
    while True:
        chunk = os.pread(src_fd, _USER_CHUNK, offset + copied) if positional else os.read(src_fd, _USER_CHUNK)
        if not chunk:
            return copied
        view = memoryview(chunk)
        while view:
            written = os.pwrite(dst_fd, view, offset + copied)
            view = view[written:]
            copied += written
        if progress is not None:
            progress(len(chunk))


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
