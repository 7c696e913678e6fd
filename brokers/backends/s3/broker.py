"""S3Broker: a workspace in an S3 (or S3-compatible) bucket, optionally under a key prefix.

Built on boto3 (one thread-safe client per broker and process, bounded retries and timeouts) and s3fs for
:attr:`~brokers.broker.Broker.fs`. Reads fetch exactly the requested range; writes are atomic (one PUT, or a
multipart upload that is completed or aborted, never left half-done); moves are server-side copies verified
before the source is deleted. When ``host_path`` is set and the bucket is mounted there (s3fs-fuse,
rclone...), ranged reads, :meth:`local_path` and ``download(partial=True)`` use the mount and make no S3
request.

Where the pieces live: :mod:`~brokers.backends.s3.client` (client, retries, credential registry),
:mod:`~brokers.backends.s3.errors` (the one error table), :mod:`~brokers.backends.s3.transfer` (uploads, copies,
deletes), :mod:`~brokers.backends.s3.reader` (streams and verified downloads), :mod:`~brokers.backends.s3.fs`
(the s3fs view).

Secrets: neither key appears in ``repr``/``str``, messages or logs, and a pickled broker carries neither (see
:mod:`~brokers.backends.s3.client`: an unpickled broker finds its keys again in the same process or a forked child, and
elsewhere uses the standard AWS credential chain).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import IO, TYPE_CHECKING, Any, BinaryIO, ClassVar, cast

from botocore.exceptions import ClientError

from ...config import Credentials, S3Config, WorkspaceConfiguration
from ...core.broker import Broker
from ...core.local import pread_range
from ...core.mounts import is_mount_point
from ...core.streams import Writer
from ...core.tally import Tally
from ...core.volumes import Volume
from ...errors import AccessDenied, BrokerError, IntegrityError, MissingDependency, StorageUnavailable
from ...paths import normalize
from ...types import Capabilities, FileInfo, Usage
from .client import (
    ClientHolder,
    build_client,
    client_config,
    recall_credentials,
    remember_credentials,
    safe_endpoint,
)
from .errors import error_code, s3_errors, translate
from .reader import BodyBroke, S3RawReader, download_verified, retry_bodies
from .transfer import (
    ObjectRef,
    S3Writer,
    TransferSettings,
    copy_object,
    delete_keys,
    etag_matches,
    upload_file,
)

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Broker", "TransferSettings"]

log = logging.getLogger("brokers.s3")

_USAGE_WORKERS = 8


class S3Broker(Broker):
    """A workspace in an S3 bucket (under ``prefix`` if one is configured).

    How it differs from a host workspace: ``move`` is a verified server-side copy then a delete (not atomic
    for readers of the source); there is no capacity, so ``usage().total_size`` is the ``total_size`` quota or
    None; ``local_path`` and ``download(partial=True)`` work only through a mount at ``host_path``.

    Attributes:
        transfer: Part sizes, thresholds and concurrency of uploads and copies (replaceable per broker).
        list_page_size: Keys per ListObjectsV2 page.
        delete_batch_size: Keys per DeleteObjects request (S3 allows at most 1,000).
    """

    broker_type: ClassVar[str] = "s3"
    capabilities: ClassVar[Capabilities] = Capabilities(atomic_rename=False, ranged_read=True,
                                                         server_side_copy=True, capacity=False,
                                                         local_files=False)
    list_page_size: int = 1000
    delete_batch_size: int = 1000
    bulk_workers: ClassVar[int] = 16
    """Objects in flight in ``upload_many``/``download_many`` (the client's connection pool holds 16)."""

    def __init__(self, config: WorkspaceConfiguration, *, transfer: TransferSettings | None = None,
                 retry_attempts: int = 5) -> None:
        """Build the broker (no request is made until it is used).

        Args:
            config: A loaded configuration of type ``s3``.
            transfer: Part sizes and concurrency; the defaults suit most stores.
            retry_attempts: Attempts per request (first try included) before a transient failure becomes
                :class:`~brokers.errors.StorageUnavailable`.
        """
        if not isinstance(config.broker, S3Config):
            raise BrokerError(f"S3Broker needs an s3 configuration, not {config.broker_type!r}")
        credentials = config.broker.credentials
        token = remember_credentials(credentials) if credentials is not None else None
        self._setup(config, credentials, token, transfer or TransferSettings(), retry_attempts)

    def _setup(self, config: WorkspaceConfiguration, credentials: Credentials | None, token: str | None,
               transfer: TransferSettings, retry_attempts: int) -> None:
        super().__init__(config)
        s3 = cast(S3Config, config.broker)
        self.s3_config = s3
        self.transfer = transfer
        self._credentials = credentials  # keeps the registry entry alive as long as this broker
        self._token = token
        self._bucket = s3.bucket_name
        stripped = (s3.prefix or "").strip("/")
        self._prefix = stripped + "/" if stripped else ""
        self.retry_attempts = retry_attempts
        self._settings = client_config(pool=max(16, transfer.max_concurrency * 2), attempts=retry_attempts,
                                       path_style=bool(s3.endpoint_url))
        self._holder = ClientHolder(s3, credentials, self._settings)
        self._mount_seen: bool | None = None

    # ------------------------------------------------------------------ identity, pickling, validation
    def describe(self) -> str:
        """Return ``s3://bucket/prefix`` (never a key or secret)."""
        return f"s3://{self._bucket}/{self._prefix.rstrip('/')}".rstrip("/")

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without secrets: the credentials are dropped; an opaque token stands for them."""
        config = replace(self.config, broker=replace(self.s3_config, credentials=None))
        return {"config": config, "token": self._token, "transfer": self.transfer,
                "retry_attempts": self.retry_attempts, "list_page_size": self.list_page_size,
                "delete_batch_size": self.delete_batch_size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild from a pickle; credentials come from this process's registry, else from the AWS chain."""
        config: WorkspaceConfiguration = state["config"]
        token: str | None = state["token"]
        credentials = recall_credentials(token)
        if credentials is not None:
            config = replace(config, broker=replace(cast(S3Config, config.broker), credentials=credentials))
        elif token is not None:
            bucket = cast(S3Config, config.broker).bucket_name
            log.warning("the credentials of s3://%s do not travel with a pickle and are not known in this "
                        "process; using the standard AWS credential chain", bucket)
            token = None
        self._setup(config, credentials, token, state["transfer"], state["retry_attempts"])
        self.list_page_size = state["list_page_size"]
        self.delete_batch_size = state["delete_batch_size"]

    @classmethod
    def validation_warnings(cls, config: WorkspaceConfiguration) -> list[dict[str, str]]:
        """Return a ``bucket_access`` warning when HeadBucket fails (short timeouts, at most one retry)."""
        s3 = config.broker
        if not isinstance(s3, S3Config):
            return []
        settings = client_config(connect_timeout=1.5, read_timeout=3.0, attempts=2, pool=1,
                                 path_style=bool(s3.endpoint_url))
        where = f" at {safe_endpoint(s3.endpoint_url)}" if s3.endpoint_url else ""
        try:
            client = build_client(s3, s3.credentials, settings)
        except Exception as exc:  # a broken setting is reported, not raised
            reason = type(exc).__name__
        else:
            try:
                client.head_bucket(Bucket=s3.bucket_name)
                return []
            except Exception as exc:  # validation never raises
                reason = _access_problem(exc, s3.bucket_name)
            finally:
                client.close()
        return [{"name": "bucket_access", "path": "/broker/bucket_name",
                 "description": f"bucket {s3.bucket_name!r}{where} cannot be reached: {reason}"}]

    # ------------------------------------------------------------------ helpers
    @property
    def client(self) -> S3Client:
        """This broker's boto3 client (built on first use in each process)."""
        return self._holder.get()

    def _key(self, rel: str) -> str:
        return self._prefix + rel

    def _ref(self, rel: str) -> ObjectRef:
        return ObjectRef(self._holder.get, self._bucket, self._key(rel), rel)

    def _errors(self, path: str | None, action: str) -> Any:
        return s3_errors(bucket=self._bucket, path=path, action=action)

    def _mount_root(self) -> str | None:
        """Return ``host_path`` if the bucket is mounted there; log once when it is set but not mounted."""
        host_path = self.s3_config.host_path
        if not host_path:
            return None
        mounted = is_mount_point(host_path)
        if mounted != self._mount_seen:
            self._mount_seen = mounted
            if not mounted:
                log.warning("host_path %s of %s is not mounted; reading through S3 instead", host_path,
                            self.describe())
        return host_path if mounted else None

    def _mounted_path(self, rel: str) -> str | None:
        root = self._mount_root()
        return os.path.join(root, self._prefix, rel) if root else None

    def _file_info(self, rel: str, size: int, modified: datetime | None, etag: str | None) -> FileInfo:
        return FileInfo(path=rel, size=size, modified=modified.astimezone(timezone.utc) if modified else None,
                        checksum=etag.strip('"') if etag else None)

    # ------------------------------------------------------------------ primitives
    def _info(self, rel: str) -> FileInfo:
        with self._errors(rel, "info"):
            head = self.client.head_object(Bucket=self._bucket, Key=self._key(rel))
        return self._file_info(rel, int(head["ContentLength"]), head.get("LastModified"), head.get("ETag"))

    def _iter(self, prefix: str, recursive: bool) -> Iterator[FileInfo]:
        list_prefix = self._key(prefix) + "/" if prefix else self._prefix
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": list_prefix,
                                  "PaginationConfig": {"PageSize": self.list_page_size}}
        if not recursive:
            kwargs["Delimiter"] = "/"
        with self._errors(prefix or None, "list"):
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                for item in page.get("Contents", []):
                    rel = item["Key"][len(self._prefix):]
                    if not rel or rel.endswith("/") or not _is_workspace_path(rel):
                        continue
                    yield self._file_info(rel, int(item["Size"]), item.get("LastModified"), item.get("ETag"))

    def _read(self, rel: str, start: int, end: int | None) -> bytes:
        local = self._mounted_path(rel)
        if local is not None:
            try:
                return _pread_file(local, start, end)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                log.debug("%s not found through the mount; asking S3", rel)
            except OSError as exc:  # a broken mount (EIO, ENOTCONN): the store still answers
                log.warning("reading %s through the mount at %s failed (%s); reading through S3 instead", rel,
                            self.s3_config.host_path, exc.strerror or type(exc).__name__)
        kwargs: dict[str, Any] = {}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end - 1}"

        def fetch(attempt: int) -> bytes | None:
            if attempt > 1:
                log.debug("reading %s: the answer broke off; asking again", rel)
            with self._errors(rel, "read"):  # a failing request has been retried by botocore already
                try:
                    reply = self.client.get_object(Bucket=self._bucket, Key=self._key(rel), **kwargs)
                except ClientError as exc:
                    if error_code(exc) not in ("InvalidRange", "416"):
                        raise
                    return None
            try:
                with self._errors(rel, "read"):
                    data: bytes = reply["Body"].read()
                return data
            except StorageUnavailable as exc:  # botocore retries a request, not a body cut short: ask again
                raise BodyBroke from exc

        data = retry_bodies(fetch)
        if data is None:
            self._info(rel)  # a range past the end of an existing file reads as empty
            return b""
        return data

    def _reader(self, rel: str, buffer_size: int) -> BinaryIO:
        return cast(BinaryIO, io.BufferedReader(S3RawReader(self._ref(rel)), buffer_size=max(buffer_size, 1)))

    def _writer(self, rel: str) -> Writer:
        return S3Writer(self._ref(rel), self.transfer)

    def _remove(self, rel: str) -> None:
        self._info(rel)
        with self._errors(rel, "delete"):
            self.client.delete_object(Bucket=self._bucket, Key=self._key(rel))

    def _usage(self) -> Usage:
        """Sum sizes from listings: one request for up to a page of objects, else prefixes in parallel.

        The first page is listed without a delimiter, so a workspace of up to :attr:`list_page_size` objects
        costs one request. Keys come sorted, so that page holds every key up to its last one; the rest is
        split by top-level "directory" (a delimited listing after that key) and each part is listed on its
        own thread, the directory the first page stopped in from where it stopped.
        """
        client = self.client
        tally = Tally()
        with self._errors(None, "usage"):
            first = client.list_objects_v2(Bucket=self._bucket, Prefix=self._prefix, MaxKeys=self.list_page_size)
            contents = first.get("Contents", [])
            _count(tally, contents)
            if first.get("IsTruncated") and contents:
                last = contents[-1]["Key"]
                head, sep, _ = last[len(self._prefix):].partition("/")
                current = self._prefix + head + "/" if sep else None  # the directory the page stopped in
                parts: list[tuple[str, str | None]] = [(current, last)] if current else []
                for page in client.get_paginator("list_objects_v2").paginate(
                        Bucket=self._bucket, Prefix=self._prefix, Delimiter="/", StartAfter=last,
                        PaginationConfig={"PageSize": self.list_page_size}):
                    _count(tally, page.get("Contents", []))
                    parts.extend((p["Prefix"], None) for p in page.get("CommonPrefixes", [])
                                 if p["Prefix"] != current)
                with ThreadPoolExecutor(_USAGE_WORKERS, thread_name_prefix="brokers-s3-usage") as pool:
                    for sub in pool.map(lambda part: self._sum_prefix(*part), parts):
                        tally.merge(sub)
        return Usage(used_size=tally.used, total_size=None, free_size=None, file_count=tally.files,
                     measured_at=datetime.now(timezone.utc), method="list_objects_v2")

    def _sum_prefix(self, prefix: str, start_after: str | None = None) -> Tally:
        tally = Tally()
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix,
                                  "PaginationConfig": {"PageSize": self.list_page_size}}
        if start_after:
            kwargs["StartAfter"] = start_after
        for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
            _count(tally, page.get("Contents", []))
        return tally

    # ------------------------------------------------------------------ hooks
    def _rename(self, src: str, dst: str) -> None:
        """Server-side copy, verify size (and ETag), then delete the source; any failure keeps the source."""
        client = self.client
        with self._errors(src, "move"):
            head = client.head_object(Bucket=self._bucket, Key=self._key(src))
        copy_object(self._ref(src), self._ref(dst), self.transfer, dict(head))
        with self._errors(dst, "move"):
            copied = client.head_object(Bucket=self._bucket, Key=self._key(dst))
        size, etag = int(head["ContentLength"]), head.get("ETag", "").strip('"')
        if int(copied["ContentLength"]) != size:
            raise IntegrityError(f"move {src} -> {dst}: the copy has {copied['ContentLength']} bytes, the "
                                 f"source {size}; source kept")
        single_copy = size <= self.transfer.copy_threshold and "-" not in etag
        if single_copy and not etag_matches(copied.get("ETag"), etag):
            raise IntegrityError(f"move {src} -> {dst}: the copy's ETag {copied.get('ETag')} differs from "
                                 f"the source's {etag}; source kept")
        with self._errors(src, "move"):
            client.delete_object(Bucket=self._bucket, Key=self._key(src))

    def _remove_all(self) -> int:
        client = self.client

        def keys() -> Iterator[str]:
            with self._errors(None, "delete"):
                for page in client.get_paginator("list_objects_v2").paginate(
                        Bucket=self._bucket, Prefix=self._prefix,
                        PaginationConfig={"PageSize": self.list_page_size}):
                    for item in page.get("Contents", []):
                        yield item["Key"]

        return delete_keys(client, self._bucket, list(keys()), self.delete_batch_size)

    def _upload(self, local: str, rel: str) -> None:
        upload_file(self._ref(rel), self.transfer, local)

    def _download_to(self, rel: str, out: IO[bytes]) -> None:
        download_verified(self._ref(rel), out)

    def _local_path(self, rel: str) -> str | None:
        local = self._mounted_path(rel)
        return local if local is not None and os.path.isfile(local) else None

    def _cleanup(self, older_than: float) -> int:
        """Abort incomplete multipart uploads under the prefix started at least ``older_than`` seconds ago."""
        client = self.client
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than)
        removed = 0
        with self._errors(None, "cleanup"):
            for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=self._bucket,
                                                                                Prefix=self._prefix):
                for upload in page.get("Uploads", []):
                    initiated = upload.get("Initiated")
                    if initiated is not None and initiated > cutoff:
                        continue
                    try:
                        client.abort_multipart_upload(Bucket=self._bucket, Key=upload["Key"],
                                                      UploadId=upload["UploadId"])
                    except ClientError as exc:
                        if error_code(exc) not in ("NoSuchUpload", "404"):
                            raise
                        continue
                    removed += 1
        return removed

    def _volume(self) -> Volume | None:
        host_path = self.s3_config.host_path
        if not host_path:
            return None
        source = os.path.join(host_path, self._prefix).rstrip("/") if self._prefix else host_path
        return Volume(kind="bind", source=source, read_only=True)

    def _filesystem(self) -> AbstractFileSystem:
        try:
            from .fs import workspace_filesystem
        except ImportError as exc:  # pragma: no cover - s3fs is a core dependency
            raise MissingDependency("broker.fs of an s3 workspace needs s3fs (pip install s3fs)") from exc
        s3 = self.s3_config
        options: dict[str, Any] = {"endpoint_url": s3.endpoint_url,
                                   "client_kwargs": {"region_name": s3.region_name} if s3.region_name else {},
                                   "config_kwargs": {"connect_timeout": 10, "read_timeout": 60,
                                                     "retries": {"mode": "standard",
                                                                 "total_max_attempts": self.retry_attempts}}}
        if self._credentials is not None:
            options["key"] = self._credentials.access_key_id
            options["secret"] = self._credentials.secret_access_key
        return workspace_filesystem(self, options, f"{self._bucket}/{self._prefix}".rstrip("/"))


def _access_problem(exc: Exception, bucket: str) -> str:
    """Say in a few words why HeadBucket failed (no key, no secret)."""
    if isinstance(exc, ClientError) and error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
        return "it does not exist"
    error = translate(exc, bucket=bucket, action="access check")
    cause = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
    if isinstance(error, AccessDenied):
        return f"access denied with these credentials ({cause}); check the keys and the bucket policy"
    if isinstance(error, StorageUnavailable):
        return f"the endpoint did not answer ({cause})"
    return str(error)


def _count(tally: Tally, contents: Any) -> None:
    """Count the objects of a listing page (``dir/`` markers are not files)."""
    for item in contents:
        if not item["Key"].endswith("/"):
            tally.add(int(item["Size"]))


def _is_workspace_path(rel: str) -> bool:
    try:
        return normalize(rel) == rel
    except BrokerError:
        return False


def _pread_file(local: str, start: int, end: int | None) -> bytes:
    fd = os.open(local, os.O_RDONLY)
    try:
        return pread_range(fd, start, end)
    finally:
        os.close(fd)

