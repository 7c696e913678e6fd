"""Local I/O primitives: kernel copies (``copy_file_range``, ``sendfile``) and ranged ``pread``."""

from __future__ import annotations

import errno
import os

__all__ = ["kernel_copy", "pread_range"]


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
