"""The atomic write of a local file: a temporary file beside the target, fsynced and renamed over it.

The temporary file is created with mode ``0666`` and the kernel takes the umask (or the directory's default ACL)
off it, as ``cp`` does (:func:`~brokers.core.local.io.create_temp`): the process's umask is never read or changed.
"""

from __future__ import annotations

import contextlib
import os

from ...paths import open_beneath
from ..errno_map import translate_os_error
from ..streams import Writer
from .io import create_temp

__all__ = ["LocalWriter"]


class LocalWriter(Writer):
    """Temporary file beside the target; commit = flush + fsync + rename + fsync of the directory.

    The directory is held open (resolved with :func:`~brokers.paths.open_beneath`) and every step works
    relative to it, so a directory swapped for a symbolic link meanwhile cannot redirect the write.
    """

    def __init__(self, root: str, rel: str) -> None:
        self._rel = rel
        self._dir_fd = -1
        try:
            self._dir_fd, self._name = open_beneath(root, rel, follow_last=False, create_dirs=True)
            fd, self._tmp = create_temp(self._dir_fd)
        except OSError as exc:
            self._close_dir()
            raise translate_os_error(exc, rel) from exc
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
        """The descriptor of the temporary file (for kernel copies into it)."""
        return self._file.fileno()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append data to the temporary file."""
        try:
            return self._file.write(data)
        except OSError as exc:
            self.abort()
            raise translate_os_error(exc, self._rel) from exc

    def commit(self) -> None:
        """Flush, fsync and rename the temporary file over the target, then fsync the directory."""
        if self._finished:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self._name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            os.fsync(self._dir_fd)
        except OSError as exc:
            self.abort()
            raise translate_os_error(exc, self._rel) from exc
        self._finished = True
        self._close_dir()

    def abort(self) -> None:
        """Remove the temporary file; the target keeps its old content."""
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
