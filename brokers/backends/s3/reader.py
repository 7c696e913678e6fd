"""Streaming S3 reads: a seekable raw stream over GetObject, and verified downloads.

The stream learns size and ETag with one HEAD, then holds one HTTP response at a time (a GET from the
current position, started at the first read and again after a seek) and reads it in the caller's chunks (the
buffer around it is bounded by ``buffer_size``). Every GET carries ``If-Match`` with the ETag, so a stream
never mixes two versions of an object; a connection that breaks mid-stream is reopened once at the current
position.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import IO, Any, TypeVar

from ...core.retry import RetryPolicy
from ...core.streams import PositionalReader, Progress
from ...errors import IntegrityError, StorageUnavailable
from .errors import s3_errors
from .transfer import ETagHasher, ObjectRef, md5_etag

__all__ = ["BODY_RETRY", "BodyBroke", "S3RawReader", "download_verified", "retry_bodies"]

T = TypeVar("T")

log = logging.getLogger("brokers.s3")

_CHUNK = 1024 * 1024
_PIPE_CHUNK = 512 * 1024
"""Read size of large downloads (urllib3 reads of several MiB were measured slower than 512 KiB ones)."""
_PIPELINE_MIN = 16 * 1024 * 1024
"""Downloads larger than this hash and write on a helper thread while the next chunk is read."""
BODY_RETRY = RetryPolicy(attempts=3, backoff=0.0)
"""How often an answer whose body broke off is asked for again (botocore retries requests, not bodies)."""
_RESUME_RETRY = RetryPolicy(attempts=4, backoff=0.0)
"""A download whose connection broke mid-body is resumed up to three times."""
_STREAM_RETRY = RetryPolicy(attempts=2, backoff=0.0)
"""A stream whose connection broke is reopened once at the current position."""


class BodyBroke(Exception):
    """An answer's body broke off mid-way (its ``__cause__`` is the StorageUnavailable): worth asking again."""


def retry_bodies(fn: Callable[[int], T], policy: RetryPolicy = BODY_RETRY) -> T:
    """Run ``fn(attempt)``, again while it raises :class:`BodyBroke`; the last break raises its StorageUnavailable."""
    try:
        return policy.run(fn, retry_if=lambda exc: isinstance(exc, BodyBroke))
    except BodyBroke as exc:
        cause = exc.__cause__
        assert cause is not None
        raise cause from cause.__cause__


class S3RawReader(PositionalReader):
    """A readable, seekable raw stream over one S3 object (wrap it in :class:`io.BufferedReader`)."""

    def __init__(self, ref: ObjectRef) -> None:
        with ref.errors("read"):
            head = ref.client().head_object(Bucket=ref.bucket, Key=ref.key)
        super().__init__(int(head["ContentLength"]), ref.path)
        self._ref = ref
        self._body: Any = None
        self._etag: str = head.get("ETag", "")

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

    def _moved(self, position: int) -> None:
        del position
        self._close_body()

    def _read_into(self, view: memoryview, position: int) -> int:
        if position >= self._size:
            return 0

        def read(attempt: int) -> bytes:
            if attempt > 1:
                log.debug("S3 stream of %s broke at byte %d; reopening", self._ref.path, position)
            try:
                if self._body is None:
                    self._open(position)
                with self._ref.errors("read"):
                    data: bytes = self._body.read(len(view))
                return data
            except StorageUnavailable:
                self._close_body()
                raise

        data = _STREAM_RETRY.run(read, retry_if=lambda exc: isinstance(exc, StorageUnavailable))
        view[:len(data)] = data
        return len(data)

    def close(self) -> None:
        """Close the stream and the response body it holds."""
        self._close_body()
        super().close()


def download_verified(ref: ObjectRef, out: IO[bytes], progress: Progress | None = None) -> int:
    """Stream an object into ``out``, computing its ETag on the way and comparing it at the end.

    The first GET's answer carries the ETag and length of the very version it streams, so no HEAD is made (a
    small object costs one request). A body cut short is resumed from the byte reached, with ``If-Match``
    (never a mix of two versions). Above :data:`_PIPELINE_MIN` bytes, received chunks are written and hashed
    on a helper thread while the next one is read (``hashlib`` and file writes release the GIL).

    Multipart ETags are recomputed with the part size the store reports for part 1 (``HeadObject
    PartNumber=1``), which holds when parts are of one size (as this library and the common tools write them);
    when the store's answer shows otherwise, or the ETag is no MD5 (SSE-KMS, SSE-C), only the size is checked.
    ``progress`` is told each chunk received.

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
        etag = md5_etag(reply)  # None: an SSE-KMS/SSE-C object, whose ETag is no digest (size only)
        size = int(reply["ContentLength"])
        hasher = _hasher_for(ref, etag, size) if etag is not None else None
        big = size > _PIPELINE_MIN
        sink = _Sink(out, hasher, threaded=big, progress=progress)

        def pump(attempt: int) -> None:
            nonlocal body
            assert sink is not None
            if attempt > 1:
                log.debug("download of %s broke at byte %d; resuming", ref.path, sink.written)
                body.close()
                with ref.errors("read"):  # a failing request has been retried by botocore already
                    body = client.get_object(Bucket=ref.bucket, Key=ref.key, IfMatch=quoted,
                                             Range=f"bytes={sink.written}-")["Body"]
            try:
                with ref.errors("read"):
                    while chunk := body.read(_PIPE_CHUNK if big else _CHUNK):
                        sink.put(chunk)
            except StorageUnavailable as exc:
                if sink.written >= size:
                    raise
                raise BodyBroke from exc

        retry_bodies(pump, _RESUME_RETRY)
    finally:
        body.close()
        if sink is not None:
            sink.close()
    written = sink.written
    if written != size:
        raise IntegrityError(f"download of {ref.path}: received {written} bytes, the store has {size}")
    if hasher is not None and hasher.hexdigest() != etag:
        raise IntegrityError(f"download of {ref.path}: the bytes received hash to {hasher.hexdigest()}, "
                             f"the store's ETag is {etag}")
    return written


class _Sink:
    """Writes received chunks to ``out`` and feeds the hasher, inline or on a helper thread (bounded queue)."""

    def __init__(self, out: IO[bytes], hasher: ETagHasher | None, threaded: bool,
                 progress: Progress | None = None) -> None:
        self._out, self._hasher, self._progress = out, hasher, progress
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
        if self._progress is not None:
            self._progress(len(chunk))

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
