"""The file object of ``open(path, "rb")`` on stores read by position (S3, NFS direct mode): it fetches what is read.

:class:`ReadStream` is a regular seekable binary file over a :class:`~brokers.core.streams.PositionalReader`, whose
``read_at``/``readinto_at`` fetch exactly the range they are given (S3: one ranged GET). One read-ahead policy decides
what is fetched, as Linux's page cache and fsspec's read-ahead caches do it:

- a fetch that does not continue the previous one (the first read, a read after a seek) asks for what is read, or
  :data:`SEEK_WINDOW` if that is more: a parquet footer or a column chunk costs about its own size;
- each fetch that continues the previous one doubles the window, up to ``buffer_size``: a sequential stream soon
  reads in large requests, and fetches each byte once;
- once the window is full size, the next ``ahead`` windows are fetched in the background while the caller reads
  (for stores where a request has a cost of its own, such as S3): a stream keeps a request in flight, as a single
  download does. A read elsewhere drops them, so at most ``ahead`` windows are fetched in vain (a forked child
  fetches its own);
- otherwise a read at least as large as the window goes straight into the caller's memory, not through the buffer;
- a seek fetches nothing (a position still in the buffer is read from it), and nothing past the end of the file
  (its size when opened) is asked for.
"""

from __future__ import annotations

import collections
import errno
import io
import operator
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .streams import COPY_CHUNK, PositionalReader

__all__ = ["SEEK_WINDOW", "ReadStream"]

SEEK_WINDOW = 64 * 1024
"""What a read that does not continue the previous fetch fetches at least (if ``buffer_size`` allows)."""


class ReadStream(io.BufferedIOBase):
    """A readable, seekable binary file over a positional source, fetching what is read (see the module).

    Safe to share between threads as :class:`io.BufferedReader` is: calls run one at a time.

    Args:
        raw: The source, closed with the stream. With ``ahead``, its ``readinto_at`` is called from other threads.
        buffer_size: The largest read-ahead window (so the largest buffer), in bytes.
        ahead: How many full windows a sequential stream fetches in the background (0: none, no thread). Memory
            is bounded by ``(1 + ahead) * buffer_size``.

    Attributes:
        raw: The source.
        name: The workspace path.
        size: The file's size when opened: ``SEEK_END`` is relative to it, and reads end there.
        mode: ``"rb"``.
    """

    mode = "rb"

    def __init__(self, raw: PositionalReader, buffer_size: int = COPY_CHUNK, ahead: int = 0) -> None:
        super().__init__()
        self.raw = raw
        self.name = raw.name
        self.size = raw.size
        self._cap = max(buffer_size, 1)
        self._ahead = max(ahead, 0)
        self._window = 0
        self._pos = 0
        self._fetched_to = -1  # where the last fetch ended: a fetch from there continues it
        self._data = b""  # the buffer: file bytes from _data_at on
        self._view = memoryview(self._data)
        self._data_at = 0
        self._pending: collections.deque[tuple[int, Future[bytes]]] = collections.deque()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ file flags and position
    def readable(self) -> bool:
        """True: the stream is for reading."""
        self._check_open()
        return True

    def seekable(self) -> bool:
        """True: any position can be read."""
        self._check_open()
        return True

    def writable(self) -> bool:
        """False: the stream is for reading only."""
        self._check_open()
        return False

    def tell(self) -> int:
        """The current position."""
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to a position and return it; nothing is fetched.

        Raises:
            OSError: The position would be negative (``EINVAL``, as for a regular file); the position is kept.
            ValueError: ``whence`` is not ``SEEK_SET``, ``SEEK_CUR`` or ``SEEK_END``.
        """
        offset = operator.index(offset)
        with self._lock:
            self._check_open()
            if whence not in (io.SEEK_SET, io.SEEK_CUR, io.SEEK_END):
                raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
            target = (0, self._pos, self.size)[whence] + offset
            if target < 0:
                raise OSError(errno.EINVAL, f"{self.name}: cannot seek to the negative position {target}")
            self._pos = target
            return target

    def close(self) -> None:
        """Close the stream and its source (after the background fetches stop), and drop the buffer."""
        with self._lock:
            if not self.closed:
                self._drop_pending()
                if self._pool is not None and not self._forked():
                    self._pool.shutdown(wait=True)
                self._set_buffer(b"", 0)
                self.raw.close()
        super().close()

    # ------------------------------------------------------------------ reads
    def read(self, size: int | None = -1) -> bytes:
        """Read ``size`` bytes (all to the end if negative or None); fewer only at the end of the file."""
        with self._lock:
            self._check_open()
            return self._read(self._left() if size is None or size < 0 else size)

    def read1(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes with at most one fetch: what is buffered, else one fetch's worth."""
        with self._lock:
            self._check_open()
            head = self._take(self._cap if size < 0 else size)
            return head if head else self._read(self._cap if size < 0 else size, once=True)

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` (a large read straight from the source); return how many bytes, fewer only at the end."""
        with self._lock:
            self._check_open()
            return self._readinto(memoryview(buffer).cast("B"))

    def readinto1(self, buffer: Any) -> int:
        """Read into ``buffer`` with at most one fetch; return how many bytes (0 at the end)."""
        with self._lock:
            self._check_open()
            return self._readinto_once(memoryview(buffer).cast("B"))

    def readline(self, size: int | None = -1) -> bytes:
        """Read up to and including the next newline (at most ``size`` bytes if not negative or None)."""
        with self._lock:
            self._check_open()
            limit = self._left() if size is None or size < 0 else min(size, self._left())
            parts: list[bytes] = []
            while limit > 0:
                start = self._pos - self._data_at
                if not 0 <= start < len(self._view):
                    if not self._fill(0):
                        break
                    start = 0
                stop = min(start + limit, len(self._view))
                newline = self._data.find(b"\n", start, stop)
                stop = stop if newline < 0 else newline + 1
                parts.append(self._data[start:stop])
                self._pos += stop - start
                limit -= stop - start
                if newline >= 0:
                    break
            return b"".join(parts)

    # ------------------------------------------------------------------ the policy
    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _left(self) -> int:
        return max(self.size - self._pos, 0)

    def _take(self, most: int) -> bytes:
        """Take up to ``most`` buffered bytes at the position (the buffer itself if that is all of it: no copy)."""
        start = self._pos - self._data_at
        if not 0 <= start < len(self._data):
            return b""
        piece = self._data[start:start + max(most, 0)]
        self._pos += len(piece)
        return piece

    def _buffered(self, most: int) -> memoryview:
        """Take up to ``most`` buffered bytes at the position, as a view to copy from."""
        start = self._pos - self._data_at
        if not 0 <= start < len(self._view):
            return self._view[:0]
        piece = self._view[start:start + max(most, 0)]
        self._pos += len(piece)
        return piece

    def _window_for(self, asked: int) -> int:
        """The window of a fetch at the position: doubled if it continues the last fetch, else a small one."""
        if self._pos == self._fetched_to:
            return min(max(self._window * 2, asked, 1), self._cap)
        return min(max(SEEK_WINDOW, asked), self._cap)

    def _streaming(self, asked: int, window: int) -> bool:
        """Whether a read of ``asked`` bytes takes windows fetched in the background.

        Yes for a sequential stream at full window (if ``ahead`` allows), unless the read is larger than all the
        windows it would keep in flight: that one goes straight into the caller's memory.
        """
        return (bool(self._ahead) and window == self._cap and self._pos == self._fetched_to
                and asked < (self._ahead + 1) * self._cap)

    def _read(self, size: int, once: bool = False) -> bytes:
        want = min(size, self._left())
        head = self._take(want)
        if len(head) == want:
            return head
        if not head:  # one fetch may bring it all: the bytes the source made are returned, no copy
            if self._direct(want):
                self._go_direct(want)
                data = self.raw.read_at(self._pos, want)
                self._fetched_to = self._pos = self._pos + len(data)
                return data
            self._fill(want)
            head = self._take(want)
            if len(head) == want or once:
                return head
        out = bytearray(want)
        out[:len(head)] = head
        fill = self._readinto_once if once else self._readinto
        got = len(head) + fill(memoryview(out)[len(head):])
        return bytes(out) if got == want else bytes(out[:got])

    def _readinto(self, view: memoryview) -> int:
        """Fill ``view``; fewer bytes only at the end of the file."""
        done = 0
        while done < len(view) and (got := self._readinto_once(view[done:])):
            done += got
        return done

    def _readinto_once(self, view: memoryview) -> int:
        """Read into ``view`` from the buffer, then with one fetch (of at most a window, or all of a large read)."""
        want = min(len(view), self._left())
        head = self._buffered(want)
        done = len(head)
        view[:done] = head
        if done == want:
            return done
        if self._direct(want - done):  # straight into the caller's memory
            self._go_direct(want - done)
            got = self.raw.readinto_at(view[done:want], self._pos)
            self._fetched_to = self._pos + got
            self._pos += got
        else:
            self._fill(want - done)
            piece = self._buffered(want - done)
            got = len(piece)
            view[done:done + got] = piece
        return done + got

    def _direct(self, asked: int) -> bool:
        """Whether the next fetch, for a read of ``asked`` bytes, goes straight into the caller's memory."""
        window = self._window_for(asked)
        return asked >= window and not self._streaming(asked, window)

    def _go_direct(self, asked: int) -> None:
        self._window = self._window_for(asked)
        self._drop_pending()

    def _fill(self, asked: int) -> bool:
        """Fetch a window at the position (never past the end) into the buffer; False if nothing came."""
        window = self._window_for(asked)
        streaming, self._window = self._streaming(asked, window), window
        if streaming:
            self._set_buffer(b"", self._pos)  # memory: the old window goes before the new one comes
            data = self._take_pending()
        else:
            self._drop_pending()
            data = self.raw.read_at(self._pos, min(window, self._left())) if self._left() else b""
        self._set_buffer(data, self._pos)
        self._fetched_to = self._pos + len(data)
        return bool(data)

    def _take_pending(self) -> bytes:
        """The window at the position, from the background fetches; the ``ahead`` windows after it are started."""
        self._forked()
        if self._pending and self._pending[0][0] != self._pos:
            self._drop_pending()
        if not self._pending:
            self._start(self._pos)
        at, first = self._pending.popleft()
        after = self._pending[-1][0] if self._pending else at
        while len(self._pending) < self._ahead and (after := after + self._cap) < self.size:
            self._start(after)
        return first.result()

    def _forked(self) -> bool:
        """Forget the background fetches of the parent process (its threads are not in a forked child)."""
        if self._pool is None or self._pool_pid == os.getpid():
            return False
        self._pool, self._pending = None, collections.deque()
        return True

    def _start(self, position: int) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._ahead + 1, thread_name_prefix="brokers-read-ahead")
            self._pool_pid = os.getpid()
        self._pending.append((position, self._pool.submit(self._window_at, position)))

    def _window_at(self, position: int) -> bytes:
        """Fetch the full window at ``position`` (run in the background)."""
        return self.raw.read_at(position, min(self._cap, self.size - position))

    def _drop_pending(self) -> None:
        """Forget the background fetches (those not started yet are cancelled)."""
        while self._pending:
            self._pending.popleft()[1].cancel()

    def _set_buffer(self, data: bytes, at: int) -> None:
        self._data, self._view, self._data_at = data, memoryview(data), at
