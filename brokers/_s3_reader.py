"""Streaming S3 reads: a seekable raw stream over GetObject, and verified downloads.

The stream learns size and ETag with one HEAD, then holds one HTTP response at a time (a GET from the
current position, started at the first read and again after a seek) and reads it in the caller's chunks (the
buffer around it is bounded by ``buffer_size``). Every GET carries ``If-Match`` with the ETag, so a stream
never mixes two versions of an object; a connection that breaks mid-stream is reopened once at the current
position.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from typing import IO, TYPE_CHECKING, Any

from ._s3_errors import s3_errors
from ._s3_transfer import ETagHasher, ObjectRef, etag_matches
from .errors import IntegrityError, StorageUnavailable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["S3RawReader", "download_verified"]

log = logging.getLogger("brokers.s3")

_CHUNK = 1024 * 1024
_PIPE_CHUNK = 512 * 1024
"""Read size of large downloads (urllib3 reads of several MiB were measured slower than 512 KiB ones)."""
_PIPELINE_MIN = 16 * 1024 * 1024
"""Downloads larger than this hash and write on a helper thread while the next chunk is read."""
_RESUMES = 3
"""Times a download whose connection broke mid-body is resumed (each GET itself is retried by botocore)."""


class S3RawReader(io.RawIOBase):
    """A readable, seekable raw stream over one S3 object (wrap it in :class:`io.BufferedReader`)."""

    def __init__(self, ref: ObjectRef) -> None:
        super().__init__()
        self._ref = ref
        self._pos = 0
        self._body: Any = None
        self.name = ref.path
        with ref.errors("read"):
            head = ref.client().head_object(Bucket=ref.bucket, Key=ref.key)
        self._etag: str = head.get("ETag", "")
        self._size = int(head["ContentLength"])

    def _open(self, position: int) -> None:
        """Start a GET from ``position`` to the end (nothing is fetched before the first read, or a seek)."""
        kwargs: dict[str, Any] = {"IfMatch": self._etag} if self._etag else {}
        if position:
            kwargs["Range"] = f"bytes={position}-"
        ref = self._ref
        with ref.errors("read"):
            self._body = ref.client().get_object(Bucket=ref.bucket, Key=ref.key, **kwargs)["Body"]

    def _close_body(self) -> None:
        if self._body is not None:
            try:
                self._body.close()
            except Exception:  # closing a dead connection cannot fail usefully
                log.debug("closing an S3 response body failed", exc_info=True)
            self._body = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        target = base + offset
        if target < 0:
            raise ValueError("negative seek position")
        if target != self._pos:
            self._close_body()
            self._pos = target
        return self._pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        for attempt in (1, 2):
            try:
                if self._body is None:
                    self._open(self._pos)
                with self._ref.errors("read"):
                    data = self._body.read(len(view))
                break
            except StorageUnavailable:
                self._close_body()
                if attempt == 2:
                    raise
                log.debug("S3 stream of %s broke at byte %d; reopening", self._ref.path, self._pos)
        view[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._close_body()
        super().close()


def download_verified(ref: ObjectRef, out: IO[bytes]) -> int:
    """Stream an object into ``out``, computing its ETag on the way and comparing it at the end.

    The first GET's answer carries the ETag and length of the very version it streams, so no HEAD is made (a
    small object costs one request). A body cut short is resumed from the byte reached, with ``If-Match``
    (never a mix of two versions). Above :data:`_PIPELINE_MIN` bytes, received chunks are written and hashed
    on a helper thread while the next one is read (``hashlib`` and file writes release the GIL).

    Multipart ETags are recomputed with the part size the store reports for part 1 (``HeadObject
    PartNumber=1``), which holds when parts are of one size (as this library and the common tools write them);
    when the store's answer shows otherwise, only the size is checked.

    Returns:
        The number of bytes written.

    Raises:
        FileNotFound: There is no such object.
        IntegrityError: Size or ETag of the received bytes differs from the store's.
    """
    client = ref.client()
    with ref.errors("read"):  # no Range at first: "bytes=0-" of an empty object is 416
        reply = client.get_object(Bucket=ref.bucket, Key=ref.key)
    body = reply["Body"]
    sink: _Sink | None = None
    try:
        quoted = reply.get("ETag", "")
        etag = quoted.strip('"')
        size = int(reply["ContentLength"])
        hasher = _hasher_for(ref, etag, size)
        big = size > _PIPELINE_MIN
        sink = _Sink(out, hasher, threaded=big)
        for attempt in range(1, _RESUMES + 2):
            try:
                with ref.errors("read"):
                    while chunk := body.read(_PIPE_CHUNK if big else _CHUNK):
                        sink.put(chunk)
                break
            except StorageUnavailable:
                if attempt > _RESUMES or sink.written >= size:
                    raise
                log.debug("download of %s broke at byte %d; resuming", ref.path, sink.written)
            body.close()
            with ref.errors("read"):  # a failing request has been retried by botocore already
                body = client.get_object(Bucket=ref.bucket, Key=ref.key, IfMatch=quoted,
                                         Range=f"bytes={sink.written}-")["Body"]
    finally:
        body.close()
        if sink is not None:
            sink.close()
    written = sink.written
    if written != size:
        raise IntegrityError(f"download of {ref.path}: received {written} bytes, the store has {size}")
    if hasher is not None and not etag_matches(etag, hasher.hexdigest()):
        raise IntegrityError(f"download of {ref.path}: the bytes received hash to {hasher.hexdigest()}, "
                             f"the store's ETag is {etag}")
    return written


class _Sink:
    """Writes received chunks to ``out`` and feeds the hasher, inline or on a helper thread (bounded queue)."""

    def __init__(self, out: IO[bytes], hasher: ETagHasher | None, threaded: bool) -> None:
        self._out, self._hasher = out, hasher
        self.written = 0
        self._error: BaseException | None = None
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=8)
            self._thread = threading.Thread(target=self._drain, name="brokers-s3-download", daemon=True)
            self._thread.start()

    def _consume(self, chunk: bytes) -> None:
        self._out.write(chunk)
        if self._hasher is not None:
            self._hasher.update(chunk)

    def _drain(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._consume(chunk)
                except BaseException as exc:  # raised in the reading thread by put() or close()
                    self._error = exc

    def put(self, chunk: bytes) -> None:
        """Hand over the next chunk (counted in :attr:`written` at once)."""
        if self._error is not None:
            raise self._error
        self.written += len(chunk)
        if self._queue is None:
            self._consume(chunk)
        else:
            self._queue.put(chunk)

    def close(self) -> None:
        """Wait until every chunk handed over is written; raise what writing raised."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        if self._error is not None:
            raise self._error


def _hasher_for(ref: ObjectRef, etag: str, size: int) -> ETagHasher | None:
    if "-" not in etag:
        return ETagHasher()
    parts = int(etag.rpartition("-")[2] or 0)
    try:
        with s3_errors(bucket=ref.bucket, path=ref.path, action="read"):
            first = ref.client().head_object(Bucket=ref.bucket, Key=ref.key, PartNumber=1, IfMatch=f'"{etag}"')
    except Exception:  # a store without part numbers: size only
        log.debug("cannot learn the part size of %s; checking its size only", ref.path)
        return None
    part_size = int(first["ContentLength"])
    if part_size <= 0 or -(-size // part_size) != parts:
        log.debug("parts of %s are not of one size; checking its size only", ref.path)
        return None
    return ETagHasher(part_size)
