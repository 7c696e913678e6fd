"""S3 transfers: atomic writes (single PUT or concurrent multipart), server-side copies, batch deletes.

Integrity: every PUT and every part carries ``Content-MD5``, so the store itself rejects damaged data
(``BadDigest`` → :class:`~brokers.errors.IntegrityError`, nothing replaced). ``Content-MD5`` is understood by
every S3-compatible store, unlike the newer ``x-amz-checksum-*`` headers which some reject. The ETag answered is
compared with the MD5 computed here (the multipart ETag ``md5(part digests)-N`` as well) only where it is one
(:func:`md5_etag`: not SSE-KMS, not SSE-C); a part that disagrees fails the upload before anything is replaced,
and a written object that disagrees is read back (:func:`holds_bytes`): an error is raised only if the
object now in place really holds other bytes.

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
import stat
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ...core.streams import Progress, Writer, committing, copy_stream
from ...errors import BrokerError, IntegrityError
from .errors import error_code, s3_errors

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, CopySourceTypeDef

__all__ = ["ETagHasher", "ObjectRef", "S3Writer", "TransferSettings", "copy_object", "delete_keys", "holds_bytes",
           "md5_etag", "upload_file"]

log = logging.getLogger("brokers.s3")

MiB = 1024 * 1024
MAX_PARTS = 10_000
MIN_PART = 5 * MiB
_READ_BACK_CHUNK = MiB
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
_MULTI_ETAG = re.compile(r"^[0-9a-f]{32}-(\d+)$")
_NOT_MD5_ENCRYPTION = frozenset({"aws:kms", "aws:kms:dsse"})


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


def md5_etag(reply: Mapping[str, Any]) -> str | None:
    """Return the ETag of a store's answer (unquoted, lower case) if it is an MD5 of the data, else None.

    An ETag is ``md5`` (``md5(part md5s)-N`` after a multipart upload) only for objects not encrypted with
    SSE-KMS or SSE-C: theirs have the same shape but are no digest of the data. The answer says which
    (``ServerSideEncryption``, ``SSECustomerAlgorithm``); SSE-S3 (``AES256``) keeps MD5 ETags.
    """
    if reply.get("ServerSideEncryption") in _NOT_MD5_ENCRYPTION or reply.get("SSECustomerAlgorithm"):
        return None
    tag = str(reply.get("ETag") or "").strip('"').lower()
    return tag if _MD5_HEX.match(tag) or _MULTI_ETAG.match(tag) else None


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
    etag = md5_etag(reply)
    if etag is not None and etag != digest.hex() and not holds_bytes(ref, reply["ETag"], ETagHasher(), digest.hex()):
        raise IntegrityError(f"write of {ref.path}: the object now in place does not hold the bytes sent (read "
                             f"back, they do not hash to the data's MD5 {digest.hex()}; the store's ETag "
                             f"{reply['ETag']})")


def holds_bytes(ref: ObjectRef, etag: str, hasher: ETagHasher, expected: str) -> bool:
    """Read back an object whose ETag disagrees with the data sent: False only if its bytes really differ.

    The store accepted the data's ``Content-MD5``, and some stores answer MD5-shaped ETags that are no MD5: the
    bytes of the version written (``If-Match`` ``etag``), hashed by ``hasher`` into ``expected``'s form, settle
    it. A read-back that fails (or finds the object replaced meanwhile) proves nothing: logged, True.
    """
    try:
        with ref.errors("verify"):
            stream = ref.client().get_object(Bucket=ref.bucket, Key=ref.key, IfMatch=etag)["Body"]
            try:
                while chunk := stream.read(_READ_BACK_CHUNK):
                    hasher.update(chunk)
            finally:
                stream.close()
    except BrokerError as exc:
        log.warning("%s: the store's ETag %s differs from the MD5 of the data sent, and reading it back failed "
                    "(%s); kept, as the store had accepted the data's Content-MD5", ref.path, etag, exc)
        return True
    if hasher.hexdigest() != expected:
        return False
    log.debug("%s: the store's ETags are not MD5s (%s); the bytes read back match", ref.path, etag)
    return True


class MultipartUpload:
    """One multipart upload: parts go up concurrently (bounded), and it ends completed or aborted."""

    def __init__(self, ref: ObjectRef, settings: TransferSettings, part_size: int,
                 progress: Progress | None = None) -> None:
        self._ref = ref
        self._part_size = part_size
        self._progress = progress
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
        plain = md5_etag(reply)
        if plain is not None and plain != digest.hex():  # the upload is then aborted: the object is untouched
            raise IntegrityError(f"write of {ref.path}: part {number} came back with ETag {etag}, not the "
                                 f"MD5 of the data sent ({digest.hex()})")
        if self._progress is not None:
            self._progress(len(body))
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
        got = md5_etag(reply)
        if (got is not None and _MULTI_ETAG.match(got) and got != expected
                and not holds_bytes(ref, reply["ETag"], ETagHasher(self._part_size), expected)):
            raise IntegrityError(f"write of {ref.path}: the object now in place does not hold the parts sent "
                                 f"(read back, they do not hash to {expected}; the store's ETag {reply['ETag']})")

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


def upload_file(ref: ObjectRef, settings: TransferSettings, local: str, progress: Progress | None = None) -> None:
    """Upload a local file: one PUT when small, else parts read concurrently by the workers (``os.pread``).

    ``progress`` is told each part's size once the store has taken it.

    Raises:
        FileNotFoundError: The local file does not exist.
    """
    fd = os.open(local, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        size = st.st_size
        if not stat.S_ISREG(st.st_mode) or size == 0:
            # A pipe, a device or a /proc file: fstat's size means nothing; stream it to its end.
            with open(fd, "rb", closefd=False) as source, committing(S3Writer(ref, settings)) as writer:
                copy_stream(source, writer, progress)
            return
        if size <= settings.multipart_threshold:
            put_single(ref, _pread_all(fd, 0, size))
            if progress is not None:
                progress(size)
            return
        part_size = max(settings.part_size, MIN_PART, math.ceil(size / MAX_PARTS / MiB) * MiB)
        upload = MultipartUpload(ref, settings, part_size, progress)
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
