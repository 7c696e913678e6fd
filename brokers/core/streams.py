"""Streams of the broker contract: atomic writes, the ``open("wb")`` file object, seekable raw readers.

:class:`Writer` is a pending atomic write; :class:`WriteStream` is the file object that commits it on close;
:class:`PositionalReader` is the base of seekable raw readers.

Every atomic write has the same shape: bytes go to a :class:`Writer`, and :func:`committing` makes them visible
with ``commit()`` when the work succeeds, or discards them with ``abort()`` when anything raises.
"""

from __future__ import annotations

import abc
import contextlib
import io
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol, TypeVar

__all__ = ["COPY_CHUNK", "TEMP_PREFIX", "PositionalReader", "Progress", "WriteStream", "Writer", "committing",
           "copy_stream", "download_stream", "upload_file"]

COPY_CHUNK = 8 * 1024 * 1024
"""Chunk size for streamed copies."""
W = TypeVar("W", bound="Writer")

TEMP_PREFIX = ".brokers-tmp-"
"""Name prefix of the temporary files and objects of writes in progress (never listed)."""
Progress = Callable[[int], None]
"""Told the number of bytes a transfer has just moved (``upload``/``download``); may be called from worker threads."""


class Writer(abc.ABC):
    """A pending atomic write: bytes go somewhere invisible until :meth:`commit`; :meth:`abort` discards them."""

    @abc.abstractmethod
    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append data; return the number of bytes taken."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Make the written bytes visible at the target path, atomically."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard everything written; the target keeps its old content. Safe to call more than once."""


class WriteStream(io.BufferedIOBase):
    """The file object returned by ``open(path, "wb")``: commits on close, discards on error.

    An exception inside ``with broker.open(p, "wb") as f:`` discards the write; so does a stream dropped
    without ``close()``. Writes are buffered up to ``buffer_size`` bytes before reaching the store.
    """

    def __init__(self, writer: Writer, path: str, buffer_size: int) -> None:
        super().__init__()
        self._writer = writer
        self._buffer = bytearray()
        self._limit = max(buffer_size, 1)
        self.name = path
        self._done = False
        self._written = 0

    def writable(self) -> bool:
        """True: the stream is for writing."""
        return True

    def tell(self) -> int:
        """How many bytes were written so far (writers such as pyarrow's ask)."""
        return self._written

    def write(self, data: Any) -> int:
        """Buffer data, passing it on to the writer in ``buffer_size`` pieces."""
        if self.closed:
            raise ValueError("write to a closed file")
        view = memoryview(data).cast("B")
        size = len(view)
        self._written += size
        if self._buffer or size < self._limit:
            self._buffer += view
            if len(self._buffer) >= self._limit:
                self._drain()
        else:
            self._writer.write(view)
        return size

    def _drain(self) -> None:
        if self._buffer:
            self._writer.write(self._buffer)
            self._buffer = bytearray()

    def abort(self) -> None:
        """Discard what was written and close the file; the target keeps its old content."""
        if not self._done:
            self._done = True
            self._buffer = bytearray()
            self._writer.abort()
        super().close()

    def close(self) -> None:
        """Commit the written bytes atomically and close the file."""
        if not self._done:
            try:
                self._drain()
                self._writer.commit()
            except BaseException:
                self.abort()
                raise
            self._done = True
        super().close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:
        # A stream dropped without close() is treated as failed, never as committed.
        if not self._done:
            self._done = True
            with contextlib.suppress(Exception):  # nothing can be reported from a finaliser
                self._writer.abort()


@contextlib.contextmanager
def committing(writer: W) -> Iterator[W]:
    """Yield ``writer``; commit it when the block ends, abort it if the block (or the commit) raises."""
    try:
        yield writer
        writer.commit()
    except BaseException:
        writer.abort()
        raise


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


def copy_stream(stream: IO[bytes], writer: _Sink, progress: Progress | None = None) -> None:
    """Copy a readable stream into a pending write or a local file, chunk by chunk (each told to ``progress``)."""
    while chunk := stream.read(COPY_CHUNK):
        writer.write(chunk)
        if progress is not None:
            progress(len(chunk))


def upload_file(local: str, start: Callable[[], Writer], progress: Progress | None = None) -> None:
    """Copy a local file into a write begun by ``start()`` (once the file is open) and commit it, atomically."""
    with open(local, "rb") as source, committing(start()) as writer:
        copy_stream(source, writer, progress)


def download_stream(stream: IO[bytes], out: IO[bytes], progress: Progress | None = None) -> None:
    """Copy an open workspace stream into a local file, then close the stream."""
    with stream:
        copy_stream(stream, out, progress)


class PositionalReader(io.RawIOBase):
    """A seekable raw stream over a file of known size: subclasses read at a position (wrap in ``ReadStream``).

    Args:
        size: The file's size when opened (``SEEK_END`` is relative to it).
        name: The workspace path, shown as the stream's ``name``.
    """

    def __init__(self, size: int, name: str) -> None:
        super().__init__()
        self._size = size
        self._pos = 0
        self.name = name

    @property
    def size(self) -> int:
        """The file's size when opened."""
        return self._size

    def readable(self) -> bool:
        """True: the stream is for reading."""
        return True

    def seekable(self) -> bool:
        """True: any position can be read."""
        return True

    def tell(self) -> int:
        """The current position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to a position (nothing is read until the next read)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        target = base + offset
        if target < 0:
            raise ValueError("negative seek position")
        self._pos = target
        return self._pos

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer`` from the current position; return how many bytes (0 at the end)."""
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        count = self._read_into(view, self._pos)
        self._pos += count
        return count

    def readinto_at(self, buffer: Any, position: int) -> int:
        """Fill ``buffer`` from ``position`` (fewer bytes only at the end; the source may answer in pieces).

        The stream's position is left alone. Returns how many bytes were read.
        """
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and (count := self._read_into(view[done:], position + done)):
            done += count
        return done

    def read_at(self, position: int, size: int) -> bytes:
        """Read ``size`` bytes from ``position`` (fewer only at the end), leaving the stream's position alone."""
        data = bytearray(size)
        return bytes(memoryview(data)[:self.readinto_at(data, position)])

    @abc.abstractmethod
    def _read_into(self, view: memoryview, position: int) -> int:
        """Fill the start of ``view`` with bytes from ``position``; return how many (0 at the end)."""
