"""Streaming S3 reads: a seekable raw stream over GetObject, and verified downloads.

The stream learns size and ETag with one HEAD; each read is then one GET of exactly the bytes asked (a bounded
``Range``), which :class:`~brokers.core.reading.ReadStream` sizes with its read-ahead policy. Every GET carries
``If-Match`` with the ETag, so a stream never mixes two versions of an object; an answer whose body breaks off is
asked again once, from the byte reached.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import IO, Any, TypeVar

from ...core.reading import ReadStream
from ...core.retry import RetryPolicy
from ...core.streams import PositionalReader, Progress
from ...errors import IntegrityError, StorageUnavailable
from .errors import s3_errors
from .transfer import ETagHasher, ObjectRef, md5_etag

__all__ = ["BODY_RETRY", "READ_AHEAD", "BodyBroke", "S3RawReader", "download_verified", "open_stream",
           "retry_bodies"]

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
READ_AHEAD = 2
"""Full windows a sequential stream fetches in the background: each GET has a cost of its own (the first byte of
an 8 MiB range came 14 ms after the request on s3rver), which two requests in flight hide (bench/bench_reads.py)."""
_STREAM_RETRY = RetryPolicy(attempts=2, backoff=0.0)
"""A stream read whose body broke off is asked again once, from the byte reached."""


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
    """A readable, seekable raw stream over one S3 object: one bounded GET per read, safe from several threads."""

    def __init__(self, ref: ObjectRef) -> None:
        with ref.errors("read"):
            head = ref.client().head_object(Bucket=ref.bucket, Key=ref.key)
        super().__init__(int(head["ContentLength"]), ref.path)
        self._ref = ref
        self._etag: str = head.get("ETag", "")

    def _read_into(self, view: memoryview, position: int) -> int:
        """Fetch ``[position, position + len(view))`` (cut at the end) with one ranged GET into ``view``."""
        done = 0

        def put(chunk: bytes) -> None:
            nonlocal done
            view[done:done + len(chunk)] = chunk
            done += len(chunk)

        self._get(position, position + len(view), put)
        return done

    def read_at(self, position: int, size: int) -> bytes:
        """Fetch ``size`` bytes from ``position`` (fewer at the end) with one ranged GET."""
        chunks: list[bytes] = []
        self._get(position, position + size, chunks.append)
        return b"".join(chunks)

    def _get(self, start: int, end: int, put: Callable[[bytes], None]) -> None:
        """GET ``[start, end)`` (cut at the object's end) with If-Match, handing the body to ``put`` in pieces.

        A body that breaks off is asked again once, from the byte reached.
        """
        end = min(end, self._size)
        if start >= end:
            return
        ref, reached = self._ref, start
        kwargs: dict[str, Any] = {"IfMatch": self._etag} if self._etag else {}

        def fetch(attempt: int) -> None:
            nonlocal reached
            if attempt > 1:
                log.debug("S3 stream of %s broke at byte %d; asking again", ref.path, reached)
            with ref.errors("read"):  # a failing request has been retried by botocore already
                body = ref.client().get_object(Bucket=ref.bucket, Key=ref.key, Range=f"bytes={reached}-{end - 1}",
                                               **kwargs)["Body"]
            try:
                with ref.errors("read"):
                    while reached < end and (chunk := body.read(min(_PIPE_CHUNK, end - reached))):
                        put(chunk)
                        reached += len(chunk)
            except StorageUnavailable as exc:  # botocore retries a request, not a body cut short: ask again
                raise BodyBroke from exc
            finally:
                _close_quietly(body)

        retry_bodies(fetch, _STREAM_RETRY)


def open_stream(ref: ObjectRef, buffer_size: int) -> ReadStream:
    """The file object of ``open(path, "rb")``: one HEAD now, then bounded GETs sized by the read-ahead policy."""
    return ReadStream(S3RawReader(ref), buffer_size, ahead=READ_AHEAD)


def _close_quietly(body: Any) -> None:
    try:
        body.close()
    except Exception:  # closing a dead connection cannot fail usefully
        log.debug("closing an S3 response body failed", exc_info=True)


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
