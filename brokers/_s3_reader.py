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
from typing import IO, TYPE_CHECKING, Any

from ._s3_errors import s3_errors
from ._s3_transfer import ETagHasher, ObjectRef, etag_matches
from .errors import IntegrityError, StorageUnavailable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["S3RawReader", "download_verified"]

log = logging.getLogger("brokers.s3")

_CHUNK = 1024 * 1024
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
    with ref.errors("read"):
        head = client.head_object(Bucket=ref.bucket, Key=ref.key)
    etag = head.get("ETag", "").strip('"')
    size = int(head["ContentLength"])
    hasher = _hasher_for(ref, etag, size)
    written = 0
    for attempt in range(1, _RESUMES + 2):
        with ref.errors("read"):  # a failing request has been retried by botocore already
            # A body cut short is resumed from the byte reached (If-Match: never a mix of two versions).
            if written:
                reply = client.get_object(Bucket=ref.bucket, Key=ref.key, IfMatch=head["ETag"],
                                          Range=f"bytes={written}-")
            else:  # no Range at first: "bytes=0-" of an empty object is 416
                reply = client.get_object(Bucket=ref.bucket, Key=ref.key, IfMatch=head["ETag"])
        body = reply["Body"]
        try:
            with ref.errors("read"):
                while chunk := body.read(_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
            break
        except StorageUnavailable:
            if attempt > _RESUMES or written >= size:
                raise
            log.debug("download of %s broke at byte %d; resuming", ref.path, written)
        finally:
            body.close()
    if written != size:
        raise IntegrityError(f"download of {ref.path}: received {written} bytes, the store has {size}")
    if hasher is not None and not etag_matches(etag, hasher.hexdigest()):
        raise IntegrityError(f"download of {ref.path}: the bytes received hash to {hasher.hexdigest()}, "
                             f"the store's ETag is {etag}")
    return written


def _hasher_for(ref: ObjectRef, etag: str, size: int) -> ETagHasher | None:
    if "-" not in etag:
        return ETagHasher()
    parts = int(etag.rpartition("-")[2] or 0)
    try:
        with s3_errors(bucket=ref.bucket, path=ref.path, action="read"):
            first = ref.client().head_object(Bucket=ref.bucket, Key=ref.key, PartNumber=1)
    except Exception:  # a store without part numbers: size only
        log.debug("cannot learn the part size of %s; checking its size only", ref.path)
        return None
    part_size = int(first["ContentLength"])
    if part_size <= 0 or -(-size // part_size) != parts:
        log.debug("parts of %s are not of one size; checking its size only", ref.path)
        return None
    return ETagHasher(part_size)
