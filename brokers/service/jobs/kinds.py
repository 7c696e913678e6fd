"""What each kind of job does, on brokers built by the runner; each returns its ``stats``.

Every kind stops only at a safe point (:meth:`JobContext.check`): between files, or between the chunks of a
copy, whose unfinished write is then discarded by the target's atomic write, so nothing is ever left
half-written. Per-folder figures follow the management document: ``data_volumes`` (bytes) and ``files_count``
keyed ``"/in"``, ``"/out"``..., ``"/"`` for files at the root of the workspace.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from brokers.backends.s3 import S3Broker
from brokers.core.broker import Broker
from brokers.core.streams import COPY_CHUNK, copy_stream
from brokers.errors import BrokerError
from brokers.types import FileInfo, FolderUsage, Usage, UsageReport

from .context import JobContext

__all__ = ["KIND_FUNCTIONS", "KindFailed", "cleanup", "clone_data", "delete_data", "folder_key", "usage_scan",
           "usage_stats", "verify"]

_DELETE_BATCH = 1000
_REPORTED_PROBLEMS = 100
"""At most this many files named one per log line (the stats count them all)."""


def folder_key(path: str) -> str:
    """The document's key of a folder: ``"in"`` -> ``"/in"``, the root (``""``) -> ``"/"``."""
    return "/" + path


def usage_stats(report: UsageReport) -> dict[str, Any]:
    """The stats of a usage scan: the document's per-folder figures and the totals."""
    usage = report.usage
    return {"data_volumes": {folder_key(f.path): f.used_size for f in report.folders},
            "files_count": {folder_key(f.path): f.file_count for f in report.folders},
            "used_size": usage.used_size, "total_size": usage.total_size, "free_size": usage.free_size,
            "file_count": usage.file_count, "method": usage.method, "measured_at": usage.measured_at.isoformat()}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _split_report(ctx: JobContext, broker: Broker) -> UsageReport | None:
    """Scan the top-level folders as parts on the queue, if asked (``settings.split``) or worth it; else None.

    Worth it: an S3 workspace of two folders or more, with workers in other processes (``split_auto``).
    """
    wanted = ctx.settings.get("split")
    if ctx.split is None or wanted is False or (wanted is None and not (ctx.split_auto and broker.broker_type == "s3")):
        return None
    entries = list(broker.entries(""))
    folders = sorted(e for e in entries if isinstance(e, str))
    if len(folders) < 2 and wanted is None:
        return None
    tallies = ctx.split(broker, folders)
    shares = [FolderUsage(folder, *tallies[folder]) for folder in folders if tallies[folder][1]]
    root = [e for e in entries if isinstance(e, FileInfo)]
    if root:
        shares.insert(0, FolderUsage("", sum(f.size for f in root), len(root)))
    used, files = sum(f.used_size for f in shares), sum(f.file_count for f in shares)
    quota = broker.config.broker.total_size
    usage = Usage(used_size=used, total_size=quota, free_size=None if quota is None else max(quota - used, 0),
                  file_count=files, measured_at=datetime.now(timezone.utc),
                  method=f"{'list_objects_v2' if broker.broker_type == 's3' else 'list'} in "
                         f"{_plural(len(folders), 'part')} on the queue")
    return UsageReport(usage=usage, folders=tuple(sorted(shares, key=lambda f: f.path)), depth=1)


def usage_scan(ctx: JobContext, broker: Broker, _target: Broker | None) -> dict[str, Any]:
    """Measure the workspace, per top-level folder: in one pass, or as parts spread over the workers."""
    ctx.check()
    inventory = ctx.settings.get("inventory")
    if inventory:
        if not isinstance(broker, S3Broker):
            raise KindFailed(f"an inventory report measures S3 workspaces, not {broker.broker_type} ones", {})
        report = broker.inventory_usage(str(inventory), 1)
    else:
        report = _split_report(ctx, broker) or broker.folder_usage(1)
    ctx.total(report.usage.file_count, report.usage.used_size)
    ctx.advance(report.usage.file_count, report.usage.used_size)
    ctx.log("info", f"measured {_plural(report.usage.file_count, 'file')}, {report.usage.used_size} bytes in "
            f"{_plural(len(report.folders), 'folder')} ({report.usage.method})")
    return usage_stats(report)


def _listing(ctx: JobContext, broker: Broker) -> list[FileInfo]:
    files = []
    for info in broker.list():
        files.append(info)
        if len(files) % 1000 == 0:
            ctx.check()
    ctx.total(len(files), sum(f.size for f in files))
    return files


def delete_data(ctx: JobContext, broker: Broker, _target: Broker | None) -> dict[str, Any]:
    """Empty the workspace, in batches (a cancel stops between two batches), counting what was removed."""
    files = _listing(ctx, broker)
    removed = removed_bytes = 0
    try:
        for start in range(0, len(files), _DELETE_BATCH):
            ctx.check()
            batch = files[start:start + _DELETE_BATCH]
            broker.delete_many(f.path for f in batch)
            removed += len(batch)
            removed_bytes += sum(f.size for f in batch)
            ctx.advance(len(batch), sum(f.size for f in batch))
        removed += broker.delete_all()  # what was written meanwhile, and empty folders
    finally:
        ctx.log("info", f"deleted {removed} files, {removed_bytes} bytes")
    return {"deleted_files": removed, "deleted_bytes": removed_bytes}


def _comparable(a: str | None, b: str | None) -> bool:
    """Two store checksums are comparable when both are plain MD5s (single-part S3 ETags)."""
    return all(x is not None and len(x) == 32 and "-" not in x for x in (a, b))


def _same(source: FileInfo, target: FileInfo | None) -> bool:
    """The target already holds this file: same size, and the same checksum, or written after the source changed."""
    if target is None or target.size != source.size:
        return False
    if _comparable(source.checksum, target.checksum):
        return source.checksum == target.checksum
    return source.modified is not None and target.modified is not None and _not_older(target.modified,
                                                                                      source.modified)


def _not_older(copy: datetime, original: datetime) -> bool:
    """Whether a copy was written at or after the original's last change, at the coarser store's resolution.

    S3 dates objects in whole seconds, so a copy made in the second of the change counts (as an s3fs mount's
    mtime does; a same-size rewrite within that second goes unnoticed).
    """
    if copy.microsecond == 0 or original.microsecond == 0:
        copy, original = copy.replace(microsecond=0), original.replace(microsecond=0)
    return copy >= original


def _digest(ctx: JobContext, broker: Broker, path: str) -> str:
    """The MD5 of a file's bytes, read to its end (a safe point between chunks)."""
    digest = hashlib.md5(usedforsecurity=False)
    with broker.open(path) as reader:
        copy_stream(reader, _Hashing(digest), lambda _size: ctx.check())
    return digest.hexdigest()


def _kept(ctx: JobContext, source: Broker, target: Broker, info: FileInfo, there: FileInfo | None,
          moving: bool) -> bool:
    """Whether the target's file may stand for the source's: a move (which deletes the source) trusts no guess.

    A clone keeps a target file of the same size written after the source's (a resumed clone); a move keeps it
    only if the store's checksums match or both files' bytes do.
    """
    if not _same(info, there):
        return False
    assert there is not None
    if not moving or _comparable(info.checksum, there.checksum):
        return True
    return _digest(ctx, source, info.path) == _digest(ctx, target, info.path)


def _location(broker: Broker) -> tuple[str, str]:
    """Where a workspace's files are: the store (type, endpoint) and a ``/``-separated place in it."""
    where = broker.describe()
    if broker.broker_type == "host":
        where = os.path.realpath(where)
    endpoint = getattr(broker.config.broker, "endpoint_url", None) or ""
    return f"{broker.broker_type} {endpoint}", where.rstrip("/")


def _overlap(source: Broker, target: Broker) -> bool:
    """Whether the two workspaces share files: the same place, or one inside the other, on the same store."""
    (store_a, a), (store_b, b) = _location(source), _location(target)
    return store_a == store_b and (a == b or a.startswith(b + "/") or b.startswith(a + "/"))


class _Hashing:
    """A sink that hashes what passes through it (into another sink, if given)."""

    def __init__(self, digest: Any, sink: Any = None) -> None:
        self.digest = digest
        self.sink = sink
        self.count = 0

    def write(self, data: bytes, /) -> int:
        self.digest.update(data)
        self.count += len(data)
        return len(data) if self.sink is None else int(self.sink.write(data))


def _chunk_done(ctx: JobContext) -> Callable[[int], None]:
    """The progress callback of a copy: count the chunk, then a safe point."""
    def done(size: int) -> None:
        ctx.advance(size=size)
        ctx.check()

    return done


def _copy_one(ctx: JobContext, source: Broker, target: Broker, info: FileInfo) -> None:
    """Stream one file into an atomic write at the target, checking for a cancel between chunks; verify it."""
    digest = hashlib.md5(usedforsecurity=False)
    with source.open(info.path) as reader, target.open(info.path, "wb", buffer_size=COPY_CHUNK) as writer:
        sink = _Hashing(digest, writer)
        copy_stream(reader, sink, _chunk_done(ctx))  # a cancel between chunks discards the unfinished write
    written = target.info(info.path)
    if written.size != info.size or sink.count != info.size:
        raise BrokerError(f"{info.path}: the copy has {written.size} bytes, the source {info.size}")
    for checksum in (info.checksum, written.checksum):
        if _comparable(checksum, digest.hexdigest()) and checksum != digest.hexdigest():
            raise BrokerError(f"{info.path}: the copy's checksum does not match the bytes read")


def clone_data(ctx: JobContext, source: Broker, target: Broker | None) -> dict[str, Any]:
    """Copy every file into the target workspace, verified; files already there are kept (a resumed clone).

    With ``delete_data_after_success``, the source files are deleted once every copy is verified (a move): a file
    kept at the target is compared byte for byte first, and a source file that changed since its copy stays.
    A target whose storage overlaps the source's (two workspaces on one folder or prefix, or one inside the
    other) is refused before anything is copied: the move would delete what it kept.
    """
    assert target is not None
    if _overlap(source, target):
        raise KindFailed(f"the target workspace's storage ({target.describe()}) overlaps the source's "
                         f"({source.describe()}): the clone would copy the workspace into itself; nothing was done",
                         {})
    moving = bool(ctx.settings.get("delete_data_after_success"))
    files = _listing(ctx, source)
    existing = {f.path: f for f in target.list()}
    copied = skipped = copied_bytes = 0
    try:
        for info in files:
            ctx.check()
            if _kept(ctx, source, target, info, existing.get(info.path), moving):
                skipped += 1
                ctx.advance(1, info.size)
                continue
            _copy_one(ctx, source, target, info)
            copied += 1
            copied_bytes += info.size
            ctx.advance(files=1)
    finally:
        ctx.log("info", f"copied {copied} files ({copied_bytes} bytes), kept {skipped} already at the target")
    stats: dict[str, Any] = {"copied_files": copied, "copied_bytes": copied_bytes, "skipped_files": skipped,
                             "deleted_source_files": 0}
    if moving:
        stats.update(_delete_moved(ctx, source, files))
    return stats


def _delete_moved(ctx: JobContext, source: Broker, files: list[FileInfo]) -> dict[str, int]:
    """Delete the source files of a move, except those that changed since they were copied (kept, with a warning)."""
    ctx.check()
    now = {f.path: f for f in source.list()}
    unchanged = [f.path for f in files if now.get(f.path) == f]
    changed = [f.path for f in files if f.path in now and now[f.path] != f]
    source.delete_many(unchanged)
    ctx.log("info", f"every copy verified: deleted {len(unchanged)} source files (a move)")
    for number, path in enumerate(changed):
        if number == _REPORTED_PROBLEMS:
            ctx.log("warning", f"... and {len(changed) - number} more source files changed during the move")
            break
        ctx.log("warning", f"{path}: changed at the source during the move: kept there (move it again)")
    return {"deleted_source_files": len(unchanged), "changed_source_files": len(changed)}


def cleanup(ctx: JobContext, broker: Broker, _target: Broker | None) -> dict[str, Any]:
    """Remove leftovers of writes that crashed, older than ``settings.older_than`` seconds (default 3600)."""
    ctx.check()
    older_than = float(ctx.settings.get("older_than", 3600))
    removed = broker.cleanup(older_than=older_than)
    ctx.log("info", f"removed {removed} leftovers of crashed writes older than {older_than:g} s")
    return {"removed_leftovers": removed}


def _problems(ctx: JobContext, what: str, paths: Iterable[str]) -> None:
    for number, path in enumerate(paths):
        if number == _REPORTED_PROBLEMS:
            ctx.log("error", f"... and more {what} files (see stats)")
            break
        ctx.log("error", f"{path}: {what}")


def verify(ctx: JobContext, broker: Broker, _target: Broker | None) -> dict[str, Any]:
    """Read every file to its end; compare the MD5 of its bytes with the store's checksum where it has one."""
    files = _listing(ctx, broker)
    unreadable: list[str] = []
    mismatched: list[str] = []
    checked = 0
    for info in files:
        ctx.check()
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with broker.open(info.path) as reader:
                copy_stream(reader, _Hashing(digest), _chunk_done(ctx))
        except BrokerError as exc:
            unreadable.append(f"{info.path} ({type(exc).__name__}: {exc})")
            continue
        finally:
            ctx.advance(files=1)
        if _comparable(info.checksum, digest.hexdigest()):
            checked += 1
            if info.checksum != digest.hexdigest():
                mismatched.append(info.path)
    _problems(ctx, "unreadable", unreadable)
    _problems(ctx, "checksum mismatch", mismatched)
    ctx.log("info", f"read {len(files)} files; {checked} checked against the store's checksum")
    stats = {"files_read": len(files) - len(unreadable), "files_unreadable": len(unreadable),
             "checksums_checked": checked, "checksum_mismatches": len(mismatched)}
    if unreadable or mismatched:
        raise KindFailed(f"{len(unreadable)} unreadable files, {len(mismatched)} checksum mismatches", stats)
    return stats


class KindFailed(Exception):
    """A job that ran to its end and found problems: it ends in ``error`` with these stats."""

    def __init__(self, message: str, stats: dict[str, Any]) -> None:
        super().__init__(message)
        self.stats = stats


KIND_FUNCTIONS: dict[str, Callable[[JobContext, Broker, Broker | None], dict[str, Any]]] = {
    "usage_scan": usage_scan, "delete_data": delete_data, "clone_data": clone_data, "cleanup": cleanup,
    "verify": verify,
}
"""Each kind's function (the names of :data:`brokers.service.store.jobs.KINDS`)."""
