"""S3Broker: a workspace in an S3 (or S3-compatible) bucket, optionally under a key prefix.

Built on boto3 (one thread-safe client per broker and process, bounded retries and timeouts);
:attr:`~brokers.broker.Broker.fs` is the generic view (:mod:`brokers.fsspec`) on these methods. Reads fetch
exactly the requested range; writes are atomic (one PUT, or a multipart upload that is completed or aborted,
never left half-done); moves are server-side copies verified before the source is deleted. When ``host_path``
is set and the bucket is mounted there (s3fs-fuse, rclone...), ranged reads, :meth:`local_path` and
``download(partial=True)`` use the file in the mount, after one HEAD shows it is the object's current version
(size and modification time), and never through a symbolic link; otherwise they read through S3.

Where the pieces live: :mod:`~brokers.backends.s3.client` (client, retries, credential registry),
:mod:`~brokers.backends.s3.errors` (the one error table), :mod:`~brokers.backends.s3.transfer` (uploads, copies,
deletes), :mod:`~brokers.backends.s3.reader` (streams and verified downloads).

Secrets: neither key appears in ``repr``/``str``, messages or logs, and a pickled broker carries neither (see
:mod:`~brokers.backends.s3.client`: an unpickled broker finds its keys again in the same process or a forked child, and
elsewhere uses the standard AWS credential chain).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import IO, TYPE_CHECKING, Any, BinaryIO, ClassVar, cast

from botocore.exceptions import ClientError

from ...config import AccessPolicy, Credentials, S3Config, WorkspaceConfiguration
from ...core.broker import Broker
from ...core.local import pread_range
from ...core.mounts import is_mount_point
from ...core.streams import Progress, Writer
from ...core.tally import Tally, folder_at, folder_shares
from ...core.volumes import Volume
from ...errors import (
    AccessDenied,
    BrokerError,
    FileNotFound,
    IntegrityError,
    PathOutsideWorkspace,
    StorageUnavailable,
)
from ...paths import normalize, open_beneath
from ...types import Capabilities, FileInfo, Usage, UsageReport
from .client import (
    ClientHolder,
    build_client,
    client_config,
    recall_credentials,
    remember_credentials,
    safe_endpoint,
)
from .errors import error_code, s3_errors, translate
from .inventory import inventory_report
from .reader import BodyBroke, download_verified, open_stream, retry_bodies
from .transfer import (
    ETagHasher,
    ObjectRef,
    S3Writer,
    TransferSettings,
    copy_object,
    delete_keys,
    holds_bytes,
    md5_etag,
    upload_file,
)

if TYPE_CHECKING:
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
                 retry_attempts: int = 5, policy: AccessPolicy | None = None) -> None:
        """Build the broker (no request is made until it is used).

        Args:
            config: A loaded configuration of type ``s3``.
            transfer: Part sizes and concurrency; the defaults suit most stores.
            retry_attempts: Attempts per request (first try included) before a transient failure becomes
                :class:`~brokers.errors.StorageUnavailable`.
            policy: What the broker may reach: allowed endpoints, and whether a configuration without keys is
                signed with this process's own credentials (else its requests go unsigned). None: anything.

        Raises:
            AccessDenied: ``policy`` does not allow the configuration's ``endpoint_url``.
        """
        if not isinstance(config.broker, S3Config):
            raise BrokerError(f"S3Broker needs an s3 configuration, not {config.broker_type!r}")
        credentials = config.broker.credentials
        token = remember_credentials(credentials) if credentials is not None else None
        self._setup(config, credentials, token, transfer or TransferSettings(), retry_attempts, policy)

    @classmethod
    def with_policy(cls, config: WorkspaceConfiguration, policy: AccessPolicy) -> S3Broker:
        """Build the broker under ``policy`` (see :meth:`__init__`)."""
        return cls(config, policy=policy)

    def _setup(self, config: WorkspaceConfiguration, credentials: Credentials | None, token: str | None,
               transfer: TransferSettings, retry_attempts: int, policy: AccessPolicy | None = None) -> None:
        super().__init__(config)
        s3 = cast(S3Config, config.broker)
        if policy is not None and not policy.endpoint_allowed(s3.endpoint_url):
            raise AccessDenied(f"s3://{s3.bucket_name}: the endpoint {safe_endpoint(s3.endpoint_url)} is "
                               "not allowed by this deployment")
        self._policy = policy
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
        self._holder = ClientHolder(s3, credentials, self._settings,
                                    ambient=policy is None or policy.ambient_credentials)
        self._mount_seen: bool | None = None

    # ------------------------------------------------------------------ identity, pickling, validation
    def describe(self) -> str:
        """Return ``s3://bucket/prefix`` (never a key or secret)."""
        return f"s3://{self._bucket}/{self._prefix.rstrip('/')}".rstrip("/")

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without secrets: credentials and endpoint user info are dropped; an opaque token stands for keys."""
        return {"config": self._shareable_config(), "token": self._token, "transfer": self.transfer,
                "retry_attempts": self.retry_attempts, "list_page_size": self.list_page_size,
                "delete_batch_size": self.delete_batch_size, "policy": self._policy}

    def _shareable_config(self) -> WorkspaceConfiguration:
        s3 = self.s3_config
        return replace(self.config, broker=replace(s3, credentials=None, endpoint_url=safe_endpoint(s3.endpoint_url)))

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild from a pickle; credentials come from this process's registry, else from the AWS chain."""
        config: WorkspaceConfiguration = state["config"]
        token: str | None = state["token"]
        policy: AccessPolicy | None = state.get("policy")
        credentials = recall_credentials(token)
        if credentials is not None:
            config = replace(config, broker=replace(cast(S3Config, config.broker), credentials=credentials))
        elif token is not None:
            bucket = cast(S3Config, config.broker).bucket_name
            log.warning("the credentials of s3://%s do not travel with a pickle and are not known in this "
                        "process; %s", bucket, "using the standard AWS credential chain"
                        if policy is None or policy.ambient_credentials else "its requests go unsigned")
            token = None
        self._setup(config, credentials, token, state["transfer"], state["retry_attempts"], policy)
        self.list_page_size = state["list_page_size"]
        self.delete_batch_size = state["delete_batch_size"]

    @classmethod
    def validation_warnings(cls, config: WorkspaceConfiguration,
                            policy: AccessPolicy | None = None) -> list[dict[str, str]]:
        """Return a ``bucket_access`` warning when HeadBucket fails (short timeouts, at most one retry).

        Under a restricting ``policy`` (a service checking its users' configurations) an endpoint it does not
        allow is never contacted, a configuration without keys is checked anonymously, and every way of not
        getting an S3 answer (refused, timed out, unknown host, not S3) reads the same, so the warning tells
        nothing about what listens where.
        """
        s3 = config.broker
        if not isinstance(s3, S3Config):
            return []
        where = f" at {safe_endpoint(s3.endpoint_url)}" if s3.endpoint_url else ""
        policy = policy or AccessPolicy()
        if not policy.endpoint_allowed(s3.endpoint_url):
            return [{"name": "bucket_access", "path": "/broker/endpoint_url",
                     "description": f"bucket {s3.bucket_name!r}{where} was not checked: the endpoint is not "
                                    "allowed by this deployment"}]
        settings = client_config(connect_timeout=1.5, read_timeout=3.0, attempts=2, pool=1,
                                 path_style=bool(s3.endpoint_url))
        anonymous = s3.credentials is None and not policy.ambient_credentials
        try:
            client = build_client(s3, s3.credentials, settings, ambient=policy.ambient_credentials)
        except Exception as exc:  # a broken setting is reported, not raised
            reason = str(exc) if isinstance(exc, BrokerError) else type(exc).__name__
        else:
            try:
                client.head_bucket(Bucket=s3.bucket_name)
                return []
            except Exception as exc:  # validation never raises
                s3_answer = isinstance(exc, ClientError) and (
                    error_code(exc) in ("404", "NoSuchBucket", "NotFound")
                    or isinstance(translate(exc, bucket=s3.bucket_name), AccessDenied))
                reason = (_access_problem(exc, s3.bucket_name) if s3_answer or not policy.restricted else
                          "no S3 answer from the endpoint (refused, timed out, unknown host or not S3: this "
                          "deployment does not say which)")
            finally:
                client.close()
        if anonymous:
            reason += ("; checked without credentials: the configuration has none, and this deployment does not "
                       "lend its own")
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
        """Return ``host_path`` (resolved) if the bucket is mounted there; log once when it is not mounted."""
        host_path = self.s3_config.host_path
        if not host_path:
            return None
        mounted = is_mount_point(host_path)
        if mounted != self._mount_seen:
            self._mount_seen = mounted
            if not mounted:
                log.warning("host_path %s of %s is not mounted; reading through S3 instead", host_path,
                            self.describe())
        return os.path.realpath(host_path) if mounted else None

    def _open_in_mount(self, rel: str) -> tuple[int, str] | None:
        """Open ``rel`` in place through the mount if the file there is this very object; else None.

        The path is walked with directory descriptors and no symbolic link is followed: a key is never a
        link, so a link in the FUSE view leads to another file, perhaps outside the mount. The file must then
        agree with the object (one HEAD): the same size, and a modification time within a second of its
        ``LastModified`` or ``x-amz-meta-mtime`` (s3fs-fuse reports whole seconds). A file that disagrees is
        a version the mount still caches: the caller reads through S3.

        Returns:
            ``(fd, path)`` of the open file (the caller closes ``fd``), or None.

        Raises:
            FileNotFound: S3 has no such object (whatever the mount still shows).
        """
        root = self._mount_root()
        if root is None:
            return None
        inner = self._prefix + rel
        try:
            dir_fd, name = open_beneath(root, inner, follow_links=False)
            try:
                if not name:
                    return None  # a directory
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
            try:  # a FUSE mount can fail this too: the object went from the store after the open (ENOENT)
                st = os.fstat(fd)
            except OSError:
                os.close(fd)
                raise
        except (PathOutsideWorkspace, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
                log.debug("%s is not in the mount; asking S3", rel)
            elif isinstance(exc, PathOutsideWorkspace) or exc.errno == errno.ELOOP:
                log.warning("%s is a symbolic link in the mount at %s (or has one on its way), which is never "
                            "followed; reading through S3 instead", rel, root)
            else:  # a broken mount (EIO, ENOTCONN): the store still answers
                log.warning("reading %s through the mount at %s failed (%s); reading through S3 instead", rel,
                            root, exc.strerror or type(exc).__name__)
            return None
        try:
            if stat.S_ISREG(st.st_mode):
                with self._errors(rel, "read"):
                    head = self.client.head_object(Bucket=self._bucket, Key=self._key(rel))
                if _same_version(st, head):
                    return fd, os.path.join(root, inner)
                log.debug("%s: the mount at %s shows another version (%d bytes) than S3 (%s bytes); reading "
                          "through S3", rel, root, st.st_size, head.get("ContentLength"))
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        return None

    def _file_info(self, rel: str, size: int, modified: datetime | None, etag: str | None) -> FileInfo:
        return FileInfo(path=rel, size=size, modified=modified.astimezone(timezone.utc) if modified else None,
                        checksum=etag.strip('"') if etag else None)

    # ------------------------------------------------------------------ primitives
    def _info(self, rel: str) -> FileInfo:
        with self._errors(rel, "info"):
            head = self.client.head_object(Bucket=self._bucket, Key=self._key(rel))
        return self._file_info(rel, int(head["ContentLength"]), head.get("LastModified"), head.get("ETag"))

    def _iter(self, prefix: str, recursive: bool) -> Iterator[FileInfo]:
        for entry in self._listing(prefix, one_level=not recursive):
            if isinstance(entry, FileInfo):
                yield entry

    def _entries(self, prefix: str) -> Iterator[FileInfo | str]:
        """One level of a delimited listing: files, and the common prefixes as sub-folders."""
        return self._listing(prefix, one_level=True)

    def _listing(self, prefix: str, one_level: bool) -> Iterator[FileInfo | str]:
        """List under ``prefix``: every file, or (``one_level``) the files and sub-folders directly under it."""
        list_prefix = self._key(prefix) + "/" if prefix else self._prefix
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": list_prefix,
                                  "PaginationConfig": {"PageSize": self.list_page_size}}
        if one_level:
            kwargs["Delimiter"] = "/"
        with self._errors(prefix or None, "list"):
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                for common in page.get("CommonPrefixes", []):
                    rel = common["Prefix"][len(self._prefix):].rstrip("/")
                    if _is_workspace_path(rel):
                        yield rel
                for item in page.get("Contents", []):
                    rel = item["Key"][len(self._prefix):]
                    if rel and not rel.endswith("/") and _is_workspace_path(rel):
                        yield self._file_info(rel, int(item["Size"]), item.get("LastModified"), item.get("ETag"))

    def _read(self, rel: str, start: int, end: int | None) -> bytes:
        opened = self._open_in_mount(rel)
        if opened is not None:
            try:
                return pread_range(opened[0], start, end)
            except OSError as exc:  # the mount broke mid-read (EIO, ENOTCONN): the store still answers
                log.warning("reading %s through the mount at %s failed (%s); reading through S3 instead", rel,
                            self.s3_config.host_path, exc.strerror or type(exc).__name__)
            finally:
                os.close(opened[0])
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
        return cast(BinaryIO, open_stream(self._ref(rel), buffer_size))

    def _writer(self, rel: str) -> Writer:
        return S3Writer(self._ref(rel), self.transfer)

    def _remove(self, rel: str) -> None:
        self._info(rel)
        with self._errors(rel, "delete"):
            self.client.delete_object(Bucket=self._bucket, Key=self._key(rel))

    def _usage(self) -> Usage:
        """Sum sizes from listings (see :meth:`_folder_tallies`)."""
        return self._measured(folder_shares(self._folder_tallies(0))[0])

    def inventory_usage(self, location: str, depth: int = 1) -> UsageReport:
        """Measure the workspace from the bucket's newest S3 Inventory report instead of listing it.

        For a bucket too large to list: the figures are those of the report (``measured_at`` its creation time;
        at most a day old for a daily report). Read with this workspace's own endpoint and credentials.

        Args:
            location: ``s3://DESTINATION-BUCKET/PREFIX/SOURCE-BUCKET/CONFIG-ID`` (where the dated report
                folders are), or a ``manifest.json`` there.
            depth: As for :meth:`folder_usage`.

        Raises:
            ValueError: ``location`` is not an ``s3://`` location, or ``depth`` not a whole number >= 1.
            FileNotFound: There is no report.
            BrokerError: The report lists another bucket, or is in a format not read (CSV and Parquet are).
        """
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a whole number >= 1, not {depth!r}")
        report = inventory_report(self.client, self._bucket, self._prefix, location, depth)
        return replace(report, usage=self._with_quota(report.usage))

    def _folder_usage(self, depth: int) -> UsageReport:
        """:meth:`usage` and each folder's share at ``depth``, from the same listings."""
        totals, folders = folder_shares(self._folder_tallies(depth))
        return UsageReport(usage=self._measured(totals), folders=folders, depth=depth)

    @staticmethod
    def _measured(totals: Tally) -> Usage:
        return Usage(used_size=totals.used, total_size=None, free_size=None, file_count=totals.files,
                     measured_at=datetime.now(timezone.utc), method="list_objects_v2")

    def _folder_tallies(self, depth: int) -> dict[str, Tally]:
        """Sum sizes by folder at ``depth`` (0: all in ``""``): one request, or top-level prefixes in parallel.

        The first page is listed without a delimiter, so a workspace of up to :attr:`list_page_size` objects
        costs one request. Keys come sorted, so that page holds every key up to its last one; the rest is
        split by top-level "directory" (a delimited listing after that key, whose ``Contents`` are the files at
        the root) and each part is listed on its own thread, the directory the first page stopped in from where
        it stopped. Deeper folders are told apart by their keys.
        """
        client = self.client
        tallies: defaultdict[str, Tally] = defaultdict(Tally)
        with self._errors(None, "usage"):
            first = client.list_objects_v2(Bucket=self._bucket, Prefix=self._prefix, MaxKeys=self.list_page_size)
            contents = first.get("Contents", [])
            self._count(tallies, contents, depth)
            if first.get("IsTruncated") and contents:
                last = contents[-1]["Key"]
                head, sep, _ = last[len(self._prefix):].partition("/")
                current = self._prefix + head + "/" if sep else None  # the directory the page stopped in
                parts: list[tuple[str, str | None]] = [(current, last)] if current else []
                for page in client.get_paginator("list_objects_v2").paginate(
                        Bucket=self._bucket, Prefix=self._prefix, Delimiter="/", StartAfter=last,
                        PaginationConfig={"PageSize": self.list_page_size}):
                    self._count(tallies, page.get("Contents", []), depth)
                    parts.extend((p["Prefix"], None) for p in page.get("CommonPrefixes", [])
                                 if p["Prefix"] != current)
                with ThreadPoolExecutor(_USAGE_WORKERS, thread_name_prefix="brokers-s3-usage") as pool:
                    for sub in pool.map(lambda part: self._sum_prefix(part[0], part[1], depth), parts):
                        for folder, tally in sub.items():
                            tallies[folder].merge(tally)
        return tallies

    def _sum_prefix(self, prefix: str, start_after: str | None = None, depth: int = 0) -> dict[str, Tally]:
        """Sum the objects under ``prefix`` by folder at ``depth``, every page of one listing."""
        tallies: defaultdict[str, Tally] = defaultdict(Tally)
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix,
                                  "PaginationConfig": {"PageSize": self.list_page_size}}
        if start_after:
            kwargs["StartAfter"] = start_after
        for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
            self._count(tallies, page.get("Contents", []), depth)
        return tallies

    def _count(self, tallies: defaultdict[str, Tally], contents: Any, depth: int) -> None:
        """Count the objects of a listing page by folder (``dir/`` markers are not files)."""
        cut = len(self._prefix)
        for item in contents:
            key = item["Key"]
            if not key.endswith("/"):
                tallies[folder_at(key[cut:].rpartition("/")[0], depth)].add(int(item["Size"]))

    # ------------------------------------------------------------------ hooks
    def _copy(self, src: str, dst: str, action: str = "copy") -> None:
        """Server-side copy, then verify size (and ETag); the source is never touched."""
        client = self.client
        kept = "; source kept" if action == "move" else ""
        with self._errors(src, action):
            head = client.head_object(Bucket=self._bucket, Key=self._key(src))
        copy_object(self._ref(src), self._ref(dst), self.transfer, dict(head))
        with self._errors(dst, action):
            copied = client.head_object(Bucket=self._bucket, Key=self._key(dst))
        size = int(head["ContentLength"])
        if int(copied["ContentLength"]) != size:
            raise IntegrityError(f"{action} {src} -> {dst}: the copy has {copied['ContentLength']} bytes, the "
                                 f"source {size}{kept}")
        # A single CopyObject keeps a plain object's MD5 ETag; SSE-KMS/SSE-C ETags are no digest (md5_etag None)
        etag, copied_etag = md5_etag(head), md5_etag(copied)
        if (etag is not None and copied_etag is not None and "-" not in etag and copied_etag != etag
                and size <= self.transfer.copy_threshold
                and not holds_bytes(self._ref(dst), copied["ETag"], ETagHasher(), etag)):
            raise IntegrityError(f"{action} {src} -> {dst}: the copy does not hold the source's bytes (its ETag "
                                 f"{copied['ETag']}, the source's {etag}){kept}")

    def _rename(self, src: str, dst: str) -> None:
        """Server-side copy, verified, then delete the source; any failure keeps the source."""
        self._copy(src, dst, action="move")
        with self._errors(src, "move"):
            self.client.delete_object(Bucket=self._bucket, Key=self._key(src))

    def _remove_many(self, rels: list[str]) -> None:
        delete_keys(self.client, self._bucket, [self._key(rel) for rel in rels], self.delete_batch_size)

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

    def _upload(self, local: str, rel: str, progress: Progress | None = None) -> None:
        upload_file(self._ref(rel), self.transfer, local, progress)

    def _download_to(self, rel: str, out: IO[bytes], progress: Progress | None = None) -> None:
        download_verified(self._ref(rel), out, progress)

    def _local_path(self, rel: str) -> str | None:
        """The file in the mount, if it is this very object (see :meth:`_open_in_mount`), else None."""
        try:
            opened = self._open_in_mount(rel)
        except FileNotFound:  # the mount still shows an object deleted from S3
            return None
        if opened is None:
            return None
        os.close(opened[0])
        return opened[1]

    def cleanup(self, older_than: float = 3600.0, *, bucket_wide: bool = False) -> int:
        """Abort incomplete multipart uploads under the prefix idle for at least ``older_than`` seconds.

        An upload's age is that of its last part (ListParts ``LastModified``; ``Initiated`` only while it has
        no part), so a long upload still sending parts is never aborted, whoever runs it. The listing stays
        inside the prefix (``ws/``, never ``ws2/``).

        Args:
            older_than: Idle time, in seconds, after which an upload counts as abandoned.
            bucket_wide: A workspace without prefix is the whole bucket, where other tools upload too: its
                uploads are aborted only when this is True. Otherwise nothing is aborted, 0 is returned and a
                warning is logged (logger ``brokers.s3``).

        Returns:
            How many uploads were aborted.
        """
        return self._cleanup(older_than, bucket_wide)

    def _cleanup(self, older_than: float, bucket_wide: bool = False) -> int:
        if not self._prefix and not bucket_wide:
            log.warning("cleanup of %s: the workspace has no prefix, so its incomplete multipart uploads are "
                        "those of the whole bucket (other tools' too); none aborted. Call "
                        "cleanup(older_than, bucket_wide=True) to abort idle ones bucket-wide", self.describe())
            return 0
        client = self.client
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than)
        removed = 0
        with self._errors(None, "cleanup"):
            for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=self._bucket,
                                                                                Prefix=self._prefix):
                for upload in page.get("Uploads", []):
                    if not upload["Key"].startswith(self._prefix) or not self._idle_since(upload, cutoff):
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

    def _idle_since(self, upload: Any, cutoff: datetime) -> bool:
        """True if the upload's last activity (its newest part, else its start) is at or before ``cutoff``."""
        dated_parts = False
        try:
            for page in self.client.get_paginator("list_parts").paginate(
                    Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]):
                for part in page.get("Parts", []):
                    modified = part.get("LastModified")
                    if modified is None:
                        continue
                    if modified > cutoff:
                        return False  # a part went up recently: the upload is alive
                    dated_parts = True
        except ClientError as exc:
            if error_code(exc) in ("NoSuchUpload", "404"):
                return False  # completed or aborted meanwhile
            raise
        initiated = upload.get("Initiated")
        return dated_parts or initiated is None or initiated <= cutoff

    def _volume(self) -> Volume | None:
        host_path = self.s3_config.host_path
        if not host_path:
            return None
        source = os.path.join(host_path, self._prefix).rstrip("/") if self._prefix else host_path
        return Volume(kind="bind", source=source, read_only=True)


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


def _is_workspace_path(rel: str) -> bool:
    try:
        return normalize(rel) == rel
    except BrokerError:
        return False


def _same_version(st: os.stat_result, head: Any) -> bool:
    """True if a file in the mount has the object's size and modification time (to the second)."""
    if st.st_size != int(head["ContentLength"]):
        return False
    stamps = [head["LastModified"].timestamp()] if head.get("LastModified") else []
    with contextlib.suppress(KeyError, TypeError, ValueError):
        stamps.append(float(head["Metadata"]["mtime"]))  # set by s3fs-fuse, rclone...: what the mount shows
    return any(abs(st.st_mtime - stamp) < 1.0 for stamp in stamps)

