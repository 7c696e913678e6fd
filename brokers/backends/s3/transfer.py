"""S3 transfers: atomic writes (single PUT or concurrent multipart), server-side copies, batch deletes.

Integrity: every PUT and every part carries ``Content-MD5``, so the store itself rejects damaged data
(``BadDigest`` → :class:`~brokers.errors.IntegrityError`), and the ETag the store answers is compared with
the MD5 computed here (the multipart ETag ``md5(part digests)-N`` as well). ``Content-MD5`` is understood by
every S3-compatible store, unlike the newer ``x-amz-checksum-*`` headers which some reject; where an ETag is
not an MD5 (SSE-KMS, SSE-C) only the store's own ``Content-MD5`` check applies.

A multipart upload that fails or is aborted is always ended with ``AbortMultipartUpload`` after its part
uploads have stopped, so no orphaned parts are left behind.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ...core.streams import Writer
from ...errors import BrokerError, IntegrityError
from .errors import error_code, s3_errors

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, CopySourceTypeDef

__all__ = ["ETagHasher", "ObjectRef", "S3Writer", "TransferSettings", "copy_object", "delete_keys",
           "etag_matches", "upload_file"]

log = logging.getLogger("brokers.s3")

MiB = 1024 * 1024
MAX_PARTS = 10_000
MIN_PART = 5 * MiB
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
_MULTI_ETAG = re.compile(r"^[0-9a-f]{32}-(\d+)$")


@dataclass(frozen=True)
class TransferSettings:
    """Sizes and concurrency of S3 transfers.

    Attributes:
        multipart_threshold: Writes up to this size are one PUT; larger ones are multipart uploads.
        part_size: Size of each uploaded part (at least 5 MiB; grown for large uploads to stay under 10,000).
        max_concurrency: Parts uploaded (or copied) at the same time by one transfer; also bounds the memory a
            streaming write holds (``(max_concurrency + 1) * part_size``).
        copy_threshold: Copies up to this size are one CopyObject (S3's limit is 5 GiB); larger ones are
            multipart copies (UploadPartCopy).
        copy_part_size: Size of each part of a multipart copy.
    """

    multipart_threshold: int = 8 * MiB
    part_size: int = 8 * MiB
    max_concurrency: int = 8
    copy_threshold: int = 5 * 1024 * MiB
    copy_part_size: int = 512 * MiB


@dataclass(frozen=True)
class ObjectRef:
    """One object: how to reach it, and the workspace path it stands for (used in messages)."""

    client: Callable[[], S3Client]
    bucket: str
    key: str
    path: str

    def errors(self, action: str) -> Any:
        """Return the error-translating context for an action on this object."""
        return s3_errors(bucket=self.bucket, path=self.path, action=action)


def _content_md5(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _md5(data: bytes | bytearray | memoryview = b"") -> Any:
    return hashlib.md5(data, usedforsecurity=False)


def etag_matches(etag: str | None, expected: str) -> bool:
    """Compare a store's ETag with the expected MD5 form; an ETag that is no MD5 (SSE-KMS/C) is not judged."""
    tag = (etag or "").strip('"').lower()
    if not (_MD5_HEX.match(tag) or _MULTI_ETAG.match(tag)):
        return True
    return tag == expected


class ETagHasher:
    """Computes the ETag S3 gives an object, from its bytes in order: ``md5`` or ``md5(part md5s)-N``."""

    def __init__(self, part_size: int | None = None) -> None:
        self._part_size = part_size
        self._current = _md5()
        self._filled = 0
        self._digests: list[bytes] = []
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes of the object."""
        view = memoryview(data).cast("B")
        self.size += len(view)
        if self._part_size is None:
            self._current.update(view)
            return
        while view:
            take = min(len(view), self._part_size - self._filled)
            self._current.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self._part_size:
                self._digests.append(self._current.digest())
                self._current, self._filled = _md5(), 0

    def hexdigest(self) -> str:
        """Return the ETag (without quotes) of the bytes fed so far."""
        if self._part_size is None:
            return str(self._current.hexdigest())
        digests = self._digests + ([self._current.digest()] if self._filled or not self._digests else [])
        return f"{_md5(b''.join(digests)).hexdigest()}-{len(digests)}"


@dataclass(frozen=True)
class _Part:
    number: int
    etag: str
    digest: bytes


def put_single(ref: ObjectRef, data: bytes | bytearray | memoryview) -> None:
    """Write a whole object with one PUT carrying ``Content-MD5``; compare the ETag.

    Raises:
        IntegrityError: The store rejected the checksum, or answered another ETag.
    """
    digest = _md5(data).digest()
    with ref.errors("write"):
        reply = ref.client().put_object(Bucket=ref.bucket, Key=ref.key, Body=bytes(data),
                                        ContentMD5=_content_md5(digest))
    if not etag_matches(reply.get("ETag"), digest.hex()):
        raise IntegrityError(f"write of {ref.path}: the store's ETag {reply.get('ETag')} does not match the "
                             f"MD5 of the data sent ({digest.hex()})")


class MultipartUpload:
    """One multipart upload: parts go up concurrently (bounded), and it ends completed or aborted."""

    def __init__(self, ref: ObjectRef, settings: TransferSettings, part_size: int) -> None:
        self._ref = ref
        self._part_size = part_size
        with ref.errors("write"):
            self._upload_id = ref.client().create_multipart_upload(Bucket=ref.bucket, Key=ref.key)["UploadId"]
        self._pool = ThreadPoolExecutor(settings.max_concurrency, thread_name_prefix="brokers-s3-part")
        self._slots = threading.Semaphore(settings.max_concurrency + 1)
        self._futures: list[Future[_Part]] = []
        self._ended = False

    def submit(self, data: bytes | Callable[[], bytes]) -> None:
        """Queue the next part (bytes, or a function returning them); blocks while many are in flight.

        Raises:
            BrokerError: An earlier part already failed.
        """
        self._raise_failed()
        self._slots.acquire()
        number = len(self._futures) + 1
        if number > MAX_PARTS:
            self._slots.release()
            raise BrokerError(f"write of {self._ref.path}: more than {MAX_PARTS} parts of "
                              f"{self._part_size} bytes")
        try:
            future = self._pool.submit(self._put_part, number, data)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)

    def _raise_failed(self) -> None:
        for future in self._futures:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]

    def _put_part(self, number: int, data: bytes | Callable[[], bytes]) -> _Part:
        body = data() if callable(data) else data
        digest = _md5(body).digest()
        ref = self._ref
        with ref.errors("write"):
            reply = ref.client().upload_part(Bucket=ref.bucket, Key=ref.key, UploadId=self._upload_id,
                                             PartNumber=number, Body=body, ContentMD5=_content_md5(digest))
        etag = reply["ETag"]
        if not etag_matches(etag, digest.hex()):
            raise IntegrityError(f"write of {ref.path}: part {number} came back with ETag {etag}, not the "
                                 f"MD5 of the data sent ({digest.hex()})")
        return _Part(number, etag, digest)

    def complete(self) -> None:
        """Wait for every part, then complete the upload and compare the multipart ETag.

        Raises:
            BrokerError: A part failed (the upload is then aborted), or the completion failed.
            IntegrityError: The completed object's ETag does not match the parts sent.
        """
        try:
            parts = [future.result() for future in self._futures]
            expected = f"{_md5(b''.join(p.digest for p in parts)).hexdigest()}-{len(parts)}"
            ref = self._ref
            with ref.errors("write"):
                reply = ref.client().complete_multipart_upload(
                    Bucket=ref.bucket, Key=ref.key, UploadId=self._upload_id,
                    MultipartUpload={"Parts": [{"ETag": p.etag, "PartNumber": p.number} for p in parts]})
            self._ended = True
        except BaseException:
            self.abort()
            raise
        finally:
            self._pool.shutdown(wait=False)
        # Some S3-compatible stores (s3rver, some gateways) answer a completed multipart upload with an ETag
        # that is not of the form md5(part md5s)-N (e.g. the MD5 of the whole object). Only that form can be
        # checked here; every part was already checked by the store (Content-MD5) and by its part ETag.
        got = (reply.get("ETag") or "").strip('"').lower()
        if _MULTI_ETAG.match(got) and got != expected:
            raise IntegrityError(f"write of {ref.path}: the completed object has ETag {reply.get('ETag')}, "
                                 f"not {expected} computed from the parts sent")

    def abort(self) -> None:
        """Stop queued parts, wait for running ones, then abort the upload (its parts are deleted)."""
        if self._ended:
            return
        self._ended = True
        for future in self._futures:
            future.cancel()
        wait(self._futures)
        self._pool.shutdown(wait=True)
        ref = self._ref
        try:
            with ref.errors("abort"):
                ref.client().abort_multipart_upload(Bucket=ref.bucket, Key=ref.key, UploadId=self._upload_id)
        except BrokerError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, ClientError) and error_code(cause) in ("NoSuchUpload", "404")):
                log.warning("could not abort the multipart upload of %s (%s); cleanup() will remove it later",
                            ref.path, type(exc).__name__)


class S3Writer(Writer):
    """An atomic S3 write: buffered; one PUT up to the threshold, a concurrent multipart upload above it."""

    def __init__(self, ref: ObjectRef, settings: TransferSettings) -> None:
        self._ref = ref
        self._settings = settings
        self._part_size = max(settings.part_size, MIN_PART)
        self._buffer = bytearray()
        self._upload: MultipartUpload | None = None
        self._done = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append data; full parts start uploading in the background once past the threshold."""
        if self._done:
            raise ValueError(f"write to {self._ref.path} after commit or abort")
        view = memoryview(data).cast("B")
        self._buffer += view
        if self._upload is None and len(self._buffer) > self._settings.multipart_threshold:
            self._upload = MultipartUpload(self._ref, self._settings, self._part_size)
        if self._upload is not None:
            while len(self._buffer) >= self._part_size:
                part = bytes(self._buffer[:self._part_size])
                del self._buffer[:self._part_size]
                self._upload.submit(part)
        return len(view)

    def commit(self) -> None:
        """Make the object visible: the single PUT, or the last part and the completion."""
        if self._done:
            raise ValueError(f"{self._ref.path}: commit after commit or abort")
        self._done = True
        data, self._buffer = self._buffer, bytearray()
        if self._upload is None:
            put_single(self._ref, data)
            return
        if data:
            self._upload.submit(bytes(data))
        self._upload.complete()

    def abort(self) -> None:
        """Discard the write; a started multipart upload is aborted (no parts are left behind)."""
        self._done = True
        self._buffer = bytearray()
        if self._upload is not None:
            self._upload.abort()


def upload_file(ref: ObjectRef, settings: TransferSettings, local: str) -> None:
    """Upload a local file: one PUT when small, else parts read concurrently by the workers (``os.pread``).

    Raises:
        FileNotFoundError: The local file does not exist.
    """
    fd = os.open(local, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size <= settings.multipart_threshold:
            put_single(ref, _pread_all(fd, 0, size))
            return
        part_size = max(settings.part_size, MIN_PART, math.ceil(size / MAX_PARTS / MiB) * MiB)
        upload = MultipartUpload(ref, settings, part_size)
        try:
            for offset in range(0, size, part_size):
                upload.submit(functools.partial(_pread_all, fd, offset, min(part_size, size - offset)))
        except BaseException:
            upload.abort()
            raise
        upload.complete()
    finally:
        os.close(fd)


def _pread_all(fd: int, offset: int, length: int) -> bytes:
    chunks = []
    while length > 0:
        chunk = os.pread(fd, length, offset)
        if not chunk:
            raise IntegrityError("the local file shrank while it was being uploaded")
        chunks.append(chunk)
        offset += len(chunk)
        length -= len(chunk)
    return b"".join(chunks)


def copy_object(src: ObjectRef, dst: ObjectRef, settings: TransferSettings,
                head: dict[str, Any]) -> str | None:
    """Copy an object inside the store (CopyObject, or UploadPartCopy parts above ``copy_threshold``).

    Args:
        src: The source object.
        dst: The destination object (same bucket and client).
        settings: Thresholds and concurrency.
        head: The source's HeadObject answer (size, ETag, content type, metadata).

    Returns:
        The ETag the store gave the copy.

    Raises:
        BrokerError: The copy failed (a multipart copy is then aborted); the source is untouched.
    """
    size = int(head["ContentLength"])
    source: CopySourceTypeDef = {"Bucket": src.bucket, "Key": src.key}
    etag = head.get("ETag")
    if size <= settings.copy_threshold:
        with dst.errors("copy"):
            reply = dst.client().copy_object(Bucket=dst.bucket, Key=dst.key, CopySource=source,
                                             **({"CopySourceIfMatch": etag} if etag else {}))
        return reply.get("CopyObjectResult", {}).get("ETag")
    part_size = max(settings.copy_part_size, MIN_PART, math.ceil(size / MAX_PARTS))
    extra: dict[str, Any] = {"Metadata": head.get("Metadata") or {}}
    if head.get("ContentType"):
        extra["ContentType"] = head["ContentType"]
    with dst.errors("copy"):
        upload_id = dst.client().create_multipart_upload(Bucket=dst.bucket, Key=dst.key, **extra)["UploadId"]

    def copy_part(number: int, first: int, last: int) -> CompletedPartTypeDef:
        with dst.errors("copy"):
            reply = dst.client().upload_part_copy(
                Bucket=dst.bucket, Key=dst.key, UploadId=upload_id, PartNumber=number, CopySource=source,
                CopySourceRange=f"bytes={first}-{last}", **({"CopySourceIfMatch": etag} if etag else {}))
        return {"ETag": reply["CopyPartResult"]["ETag"], "PartNumber": number}

    pool = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="brokers-s3-copy")
    futures = [pool.submit(copy_part, n, off, min(off + part_size, size) - 1)
               for n, off in enumerate(range(0, size, part_size), start=1)]
    try:
        parts = [f.result() for f in futures]
        with dst.errors("copy"):
            reply2 = dst.client().complete_multipart_upload(
                Bucket=dst.bucket, Key=dst.key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except BaseException:
        for f in futures:
            f.cancel()
        wait(futures)
        try:
            with dst.errors("abort"):
                dst.client().abort_multipart_upload(Bucket=dst.bucket, Key=dst.key, UploadId=upload_id)
        except BrokerError:
            log.warning("could not abort the multipart copy to %s; cleanup() will remove it later", dst.path)
        raise
    finally:
        pool.shutdown(wait=False)
    return reply2.get("ETag")


def delete_keys(client: S3Client, bucket: str, keys: Iterable[str], batch_size: int = 1000) -> int:
    """Delete keys with DeleteObjects, ``batch_size`` (at most 1,000) a request; return how many went.

    Raises:
        BrokerError: The store refused to delete some keys (the first refusal is named).
    """
    count = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal count
        if not batch:
            return
        with s3_errors(bucket=bucket, action="delete"):
            reply = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch],
                                                                 "Quiet": True})
        errors = reply.get("Errors") or []
        if errors:
            first = errors[0]
            raise BrokerError(f"delete on s3://{bucket}: {len(errors)} of {len(batch)} keys were not deleted "
                              f"(first: {first.get('Code')})")
        count += len(batch)
        batch.clear()

    for key in keys:
        batch.append(key)
        if len(batch) >= min(max(batch_size, 1), 1000):
            flush()
    flush()
    return count
