"""Open files of the userspace NFS client: a stream reader and an atomic writer that survive reconnects.

An open ``nfs_rs`` file belongs to one connection. :class:`Pinned` keeps it there and, after a transient
failure (or when another thread dropped the connection), reopens it on a fresh one and checks that the file id
did not change, so a stream never mixes two versions of a file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ....core.streams import TEMP_PREFIX, PositionalReader, Writer
from ....core.umask import current_umask
from ....errors import BrokerError, FileNotFound, IntegrityError, StorageUnavailable
from .client import READ_CHUNK, WRITE_CHUNK, Connection, ConnectionPool, keep_across_fork, native_call
from .errors import MaybeDone, is_transient, translate

if TYPE_CHECKING:
    import nfs_rs

__all__ = ["CREATED_MODE", "DirectWriter", "Pinned", "RawReader", "handle_close_quietly", "read_range"]

T = TypeVar("T")


def read_range(handle: Any, start: int, size: int) -> bytes:
    """Read ``size`` bytes (-1: to the end) from ``start`` in calls of at most :data:`READ_CHUNK`."""
    if 0 <= size <= READ_CHUNK:
        return bytes(handle.read_at(start, size))
    parts, offset = [], start
    while size < 0 or offset < start + size:
        want = READ_CHUNK if size < 0 else min(READ_CHUNK, start + size - offset)
        part = handle.read_at(offset, want)
        parts.append(part)
        offset += len(part)
        if len(part) < want:
            break
    return b"".join(parts)


def _write_at(handle: Any, data: memoryview, offset: int) -> int:
    return int(handle.write_at(data, offset))


def _chmod(client: nfs_rs.Client, remote: str, mode: int) -> None:
    client.chmod(remote, mode)


CREATED_MODE = 0o666
"""Mode of a file ``nfs_rs`` creates (it takes no mode and applies no umask)."""


class _Reopen(Exception):
    """A failure (its ``__cause__``) after which the file is reopened on a fresh connection and tried again."""


class Pinned:
    """An open ``nfs_rs`` file kept on one connection; reopened on a fresh one after a transient failure.

    Args:
        pool: The connection pool.
        rel: Workspace path (for errors).
        remote: Path below the mount root.
        mode: ``"rb"`` or ``"r+b"`` (reopens never truncate).
        first_mode: Mode of the first open (``"wb"`` creates the temporary file of a write).
    """

    def __init__(self, pool: ConnectionPool, rel: str, remote: str, mode: str, first_mode: str | None = None
                 ) -> None:
        self.pool, self.rel, self.remote, self.mode = pool, rel, remote, mode
        self.fileid: int | None = None
        self._conn: Connection | None = None
        self._file: Any = None
        self._pid = os.getpid()
        self._next_mode = first_mode or mode
        self.call(lambda f: None)

    def _open(self, mode: str) -> None:
        def do(client: nfs_rs.Client) -> tuple[Any, int]:
            handle = keep_across_fork(client.open(self.remote, mode))
            try:
                st = client.stat(self.remote)
            except BaseException:
                handle_close_quietly(handle)
                raise
            return handle, int(st.fileid)

        conn = self.pool.acquire()
        try:
            with native_call():
                handle, fileid = do(conn.client)
        except BaseException as exc:
            if is_transient(exc):
                self.pool.discard(conn)
            raise
        finally:
            conn.lock.release()
        if self.fileid is not None and fileid != self.fileid:
            handle_close_quietly(handle)
            raise IntegrityError(f"{self.rel}: the file was replaced while it was open; read it again")
        self.fileid, self._conn, self._file = fileid, conn, handle

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(file)`` under the connection's lock; after a transient failure reopen and retry."""
        self._check_fork()

        def once(attempt: int) -> T:
            del attempt
            conn = self._conn
            try:
                if conn is None or conn.broken or self._file is None:
                    self._file = None
                    self._open(self._next_mode)
                    self._next_mode = self.mode
                    conn = self._conn
                assert conn is not None
                with conn.lock, native_call():
                    return fn(self._file)
            except BrokerError:
                raise
            except Exception as exc:
                # A file closed under us: another thread dropped its connection after a failure. Reopen it.
                closed = type(exc).__name__ == "NfsClosedResourceError" and conn is not None and conn.broken
                if not (closed or is_transient(exc)):
                    raise translate(exc, self.rel, self.pool.endpoint.location(self.rel)) from exc
                if conn is not None and not conn.broken:
                    self.pool.discard(conn)
                self._conn, self._file = None, None
                raise _Reopen from exc

        try:
            return self.pool.retry.run(once, retry_if=lambda exc: isinstance(exc, _Reopen))
        except _Reopen as exc:
            raise StorageUnavailable(f"{self.pool.endpoint.location(self.rel)}: the NFS server kept failing: "
                                     f"{exc.__cause__}") from exc.__cause__

    def _check_fork(self) -> None:
        if self._pid != os.getpid():  # opened by the parent: unusable here (and made immortal by the pool)
            self._conn, self._file, self._pid = None, None, os.getpid()

    def close(self) -> None:
        """Close the file (errors ignored: nothing to report for a file being let go)."""
        self._check_fork()
        conn, handle = self._conn, self._file
        self._conn, self._file = None, None
        if conn is not None and handle is not None and not conn.broken:
            with conn.lock:
                handle_close_quietly(handle)


def handle_close_quietly(handle: Any) -> None:
    """Close an ``nfs_rs`` file, ignoring failures."""
    with contextlib.suppress(Exception), native_call():  # a file being dropped: its close errors cannot matter
        handle.close()


class RawReader(PositionalReader):
    """Positional reads from one open file, one READ of at most :data:`READ_CHUNK` a call (wrap in ``ReadStream``)."""

    def __init__(self, pinned: Pinned, size: int, name: str) -> None:
        super().__init__(size, name)
        self._pinned = pinned

    def _read_into(self, view: memoryview, position: int) -> int:
        chunk = view[:READ_CHUNK]
        return int(self._pinned.call(lambda f: f.readinto_at(chunk, position)))

    def read_at(self, position: int, size: int) -> bytes:
        """Read ``size`` bytes from ``position`` (fewer only at the end): the client's own bytes, not a copy."""
        return self._pinned.call(lambda f: read_range(f, position, size))

    def close(self) -> None:
        """Close the stream and its open file."""
        if not self.closed:
            self._pinned.close()
        super().close()


class Namespace(Protocol):
    """The directory operations an atomic write needs of the export."""

    pool: ConnectionPool

    def makedirs(self, rel: str) -> None:
        """Create a directory and its parents."""

    def rename_raw(self, src: str, dst: str) -> None:
        """Rename ``src`` over ``dst``."""

    def remove_raw(self, rel: str) -> None:
        """Remove one non-directory entry."""


class DirectWriter(Writer):
    """A temporary file beside the target; commit renames it over the target."""

    def __init__(self, files: Namespace, rel: str) -> None:
        self._files, self._rel = files, rel
        directory = posixpath.dirname(rel)
        self._tmp_rel = posixpath.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        pool = files.pool
        try:
            self._pinned = Pinned(pool, rel, pool.remote(self._tmp_rel), "r+b", first_mode="wb")
        except FileNotFound:
            files.makedirs(directory)
            self._pinned = Pinned(pool, rel, pool.remote(self._tmp_rel), "r+b", first_mode="wb")
        self._offset = 0
        self._finished = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append data to the temporary file, in calls of at most ``WRITE_CHUNK``.

        The server may take fewer bytes than sent (a short WRITE): the rest is sent again from where it stopped.

        Raises:
            StorageUnavailable: The server took none of the bytes of a call (the write is aborted).
        """
        view = memoryview(data).cast("B")
        try:
            done = 0
            while done < len(view):
                chunk, offset = view[done:done + WRITE_CHUNK], self._offset
                taken = int(self._pinned.call(functools.partial(_write_at, data=chunk, offset=offset)))
                if taken <= 0:
                    raise StorageUnavailable(f"{self._files.pool.endpoint.location(self._rel)}: the NFS server took "
                                             f"none of {len(chunk)} bytes at offset {offset}")
                self._offset += taken
                done += taken
        except BaseException:
            self.abort()
            raise
        return len(view)

    def commit(self) -> None:
        """Close the temporary file, give it the mode the umask leaves (as ``cp``), rename it over the target."""
        if self._finished:
            return
        try:
            self._pinned.close()
            mode = 0o666 & ~current_umask()
            if mode != CREATED_MODE:  # one SETATTR; the client cannot send a mode when it creates the file
                self._files.pool.run(functools.partial(_chmod, remote=self._pinned.remote, mode=mode), self._rel)
            self._files.rename_raw(self._tmp_rel, self._rel)
        except BaseException:
            self.abort()
            raise
        self._finished = True

    def abort(self) -> None:
        """Close and remove the temporary file; the target keeps its old content."""
        if self._finished:
            return
        self._finished = True
        self._pinned.close()
        with contextlib.suppress(FileNotFound, MaybeDone):
            self._files.remove_raw(self._tmp_rel)
