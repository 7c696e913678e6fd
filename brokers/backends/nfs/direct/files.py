"""Broker primitives over an NFS export reached in user space (``nfs_rs``), the direct mode of NfsBroker.

Paths arrive normalised and confined by :func:`brokers.paths.normalize`; the server confines them to the export
and the client never follows symbolic links (a link is not a file here, and listings skip it), so nothing can
lead outside the workspace. Writes go to a ``.brokers-tmp-`` file beside the target and are renamed over it.
"""

from __future__ import annotations

import contextlib
import functools
import posixpath
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

from ....core.reading import ReadStream
from ....core.streams import COPY_CHUNK, TEMP_PREFIX, Progress, Writer, download_stream, upload_file
from ....core.tally import Tally, folder_at, folder_shares
from ....core.umask import current_umask
from ....errors import BrokerError, FileNotFound
from ....types import FileInfo, Usage, UsageReport
from .client import URL_SAFE, ConnectionPool, keep_across_fork, load_nfs_rs
from .errors import MaybeDone, translate
from .io import DirectWriter, Pinned, RawReader, handle_close_quietly, read_range

if TYPE_CHECKING:
    import nfs_rs

__all__ = ["DirectFiles"]

T = TypeVar("T")


def _is_file(info: Any) -> bool:
    return bool(info.type.value == "file")


def _is_dir(info: Any) -> bool:
    return bool(info.type.value == "directory")


def _file_info(rel: str, info: Any) -> FileInfo:
    return FileInfo(path=rel, size=int(info.size),
                    modified=datetime.fromtimestamp(info.mtime / 1e9, tz=timezone.utc))


def _page(client: nfs_rs.Client, remote: str, position: Any) -> Any:
    return client.scandir_page(remote, position)


def _rmdir(client: nfs_rs.Client, remote: str) -> None:
    client.rmdir(remote)


def _mkdir(client: nfs_rs.Client, remote: str, mode: int) -> None:
    client.mkdir(remote, mode, exist_ok=True)


@dataclass
class _Entry:
    name: str
    info: Any


class DirectFiles:
    """Broker primitives over an export reached with the userspace NFS client.

    Args:
        pool: Connections to the export (``pool.base`` is the workspace root below the mount root).
    """

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def _stat(self, rel: str) -> Any:
        return self.pool.run(lambda c: c.stat(self.pool.remote(rel)), rel)

    def info(self, rel: str) -> FileInfo:
        """Return the info of a regular file (FileNotFound for a directory, a symbolic link or nothing)."""
        st = self._stat(rel)
        if not _is_file(st):
            raise FileNotFound(rel, f"is a {st.type.value}, not a regular file")
        return _file_info(rel, st)

    def _scan(self, rel: str) -> list[_Entry]:
        """Read one directory page by page (each page retried on its own); return its entries by name."""
        nfs_rs = load_nfs_rs()
        remote = self.pool.remote(rel)
        entries: dict[str, _Entry] = {}
        position = None
        seen: set[int] = set()
        while True:
            try:
                page = self.pool.run(functools.partial(_page, remote=remote, position=position), rel)
            except BrokerError as exc:
                if isinstance(exc.__cause__, nfs_rs.NfsBadCookieError) and position is not None:
                    position = None  # the directory changed under the listing: start over, names deduplicated
                    continue
                raise
            for entry in page.entries:
                if entry.name not in (".", ".."):
                    entries[entry.name] = _Entry(entry.name, entry.info)
            if page.eof or page.next.cookie in seen:
                break
            seen.add(page.next.cookie)
            position = page.next
        return sorted(entries.values(), key=lambda e: e.name)

    def _tree(self, prefix: str, recursive: bool = True) -> Iterator[tuple[str, list[tuple[str, _Entry]]]]:
        """Yield each directory top-down with its entries as ``(rel, entry)``, by name (vanished ones skipped)."""
        stack = [prefix]
        while stack:
            directory = stack.pop()
            try:
                entries = self._scan(directory)
            except FileNotFound:
                continue
            named = [(f"{directory}/{entry.name}" if directory else entry.name, entry) for entry in entries]
            yield directory, named
            if recursive:
                stack.extend(reversed([rel for rel, entry in named if _is_dir(entry.info)]))

    def walk(self, prefix: str, recursive: bool = True, temp: bool = False
             ) -> Iterator[tuple[str, list[tuple[str, Any]], list[str]]]:
        """Yield ``(directory, files, subdirectories)`` top-down; files are ``(rel, info)``, names sorted.

        Symbolic links and other special files are left out; temporary files only with ``temp=True``.
        """
        for directory, named in self._tree(prefix, recursive):
            files = [(rel, entry.info) for rel, entry in named
                     if _is_file(entry.info) and (temp or not entry.name.startswith(TEMP_PREFIX))]
            yield directory, files, [rel for rel, entry in named if _is_dir(entry.info)]

    def iter(self, prefix: str, recursive: bool) -> Iterator[FileInfo]:
        """Yield the regular files under ``prefix``, sorted per directory, temporary files hidden."""
        if prefix:
            try:
                if not _is_dir(self._stat(prefix)):
                    return
            except FileNotFound:
                return
        for _directory, files, _subdirs in self.walk(prefix, recursive):
            for rel, info in files:
                yield _file_info(rel, info)

    def _check_file(self, rel: str, exc: BrokerError) -> BrokerError:
        """Explain a failed open: a directory or a symbolic link is not a file here."""
        if isinstance(exc, FileNotFound):
            return exc
        try:
            self.info(rel)
        except FileNotFound as missing:
            return missing
        except BrokerError:
            pass
        return exc

    def read(self, rel: str, start: int, end: int | None) -> bytes:
        """Read ``[start, end)`` with one positional read: only that range is fetched."""
        remote = self.pool.remote(rel)
        size = -1 if end is None else end - start

        def do(client: nfs_rs.Client) -> bytes:
            f = keep_across_fork(client.open(remote, "rb"))
            try:
                return read_range(f, start, size)
            finally:
                handle_close_quietly(f)  # the bytes are in hand: a failed CLOSE of a reader changes nothing

        try:
            return self.pool.run(do, rel)
        except BrokerError as exc:
            raise self._check_file(rel, exc) from exc.__cause__

    def reader(self, rel: str, buffer_size: int) -> BinaryIO:
        """Open a streaming reader (the shared ``ReadStream``: read-ahead of at most ``buffer_size`` bytes)."""
        info = self.info(rel)
        try:
            pinned = Pinned(self.pool, rel, self.pool.remote(rel), "rb")
        except BrokerError as exc:
            raise self._check_file(rel, exc) from exc.__cause__
        return cast(BinaryIO, ReadStream(RawReader(pinned, info.size, rel), buffer_size))

    def writer(self, rel: str) -> Writer:
        """Start an atomic write (temporary file in the same directory)."""
        return DirectWriter(self, rel)

    def makedirs(self, rel: str) -> None:
        """Create a directory and the parents it lacks (the workspace's own folder too); existing ones are fine.

        New directories get mode ``0777`` less the process's umask, as a kernel NFS mount gives them.

        The deepest one is tried first and only missing parents are created, one level at a time: a ``mkdir -p``
        from the mount root would also create the ones that exist, and NFSv4.1 reaches a workspace at the root
        of an export from the read-only pseudo root above it, which refuses even that (``NFS4ERR_ROFS``).
        """
        remote = self.pool.remote(rel)
        todo, made = ([remote] if remote else []), set()
        mode = 0o777 & ~current_umask()  # as a kernel mount makes it
        while todo:
            try:
                self.pool.run(functools.partial(_mkdir, remote=todo[-1], mode=mode), rel)
            except FileNotFound:
                parent = posixpath.dirname(todo[-1])
                if not parent or parent in made:  # nothing above to create (or a file is in the way)
                    raise
                todo.append(parent)
                continue
            except BrokerError as exc:
                if isinstance(exc.__cause__, FileExistsError):  # a file (or a link) where a folder must go
                    raise FileNotFound(rel, "a file is in the way: a folder on this path is a file") from exc
                raise
            made.add(todo.pop())

    def rename_raw(self, src: str, dst: str) -> None:
        """Rename ``src`` over ``dst`` (same export); a retried rename whose source is gone counts as done."""
        a, b = self.pool.remote(src), self.pool.remote(dst)
        try:
            self.pool.run(lambda c: c.rename(a, b), src, mutation=True)
        except MaybeDone:
            self._stat(dst)

    def rename(self, src: str, dst: str) -> None:
        """Move a file atomically (one RENAME); create the destination's directories first if needed."""
        self.info(src)
        try:
            self.rename_raw(src, dst)
        except FileNotFound:
            self.info(src)  # still there: the destination's directory is missing
            self.makedirs(posixpath.dirname(dst))
            self.rename_raw(src, dst)

    def remove_raw(self, rel: str) -> None:
        """Remove one non-directory entry (MaybeDone if a retry found it gone)."""
        remote = self.pool.remote(rel)
        self.pool.run(lambda c: c.remove(remote), rel, mutation=True)

    def remove(self, rel: str) -> None:
        """Delete one file."""
        st = self._stat(rel)
        if _is_dir(st):
            raise BrokerError(f"{rel}: is a directory; delete its files instead")
        with contextlib.suppress(MaybeDone):
            self.remove_raw(rel)

    def remove_all(self) -> int:
        """Delete every file, link and directory inside the workspace root (never the root itself)."""
        count = 0
        dirs: list[str] = []
        for _directory, named in self._tree(""):
            for rel, entry in named:
                if _is_dir(entry.info):
                    dirs.append(rel)  # parents before children: removed in reverse order below
                    continue
                try:
                    self.remove_raw(rel)
                except FileNotFound:
                    continue
                except MaybeDone:
                    pass  # an earlier attempt removed it
                count += _is_file(entry.info) and not entry.name.startswith(TEMP_PREFIX)
        for rel in reversed(dirs):
            remote = self.pool.remote(rel)
            try:
                self.pool.run(functools.partial(_rmdir, remote=remote), rel, mutation=True)
            except (FileNotFound, MaybeDone):
                continue
        return count

    def cleanup(self, older_than: float) -> int:
        """Remove temporary files of crashed writes older than ``older_than`` seconds."""
        limit_ns = int((time.time() - older_than) * 1e9)
        removed = 0
        for _directory, files, _subdirs in self.walk("", True, temp=True):
            for rel, info in files:
                if posixpath.basename(rel).startswith(TEMP_PREFIX) and info.mtime <= limit_ns:
                    try:
                        self.remove_raw(rel)
                    except (FileNotFound, MaybeDone):
                        continue
                    removed += 1
        return removed

    def fs_stat(self) -> Any:
        """The server's FSSTAT for the export (capacity, free bytes)."""
        stat = self.pool.run(lambda c: c.fs_stat(), "")
        if stat.total_bytes or not self.pool.base:
            return stat
        # Mounted on the NFSv4 pseudo root, which has no capacity of its own: ask from inside the export.
        export = self.pool.endpoint.export.rstrip("/") or "/"
        if not URL_SAFE.match(export):
            return stat
        try:
            client = self.pool.endpoint.connect(export)
        except Exception as exc:  # the pseudo root's numbers are all there is
            del exc
            return stat
        try:
            return client.fs_stat()
        except Exception as exc:
            raise translate(exc, "", self.pool.endpoint.location()) from exc
        finally:
            client.close()

    def usage(self) -> Usage:
        """Walk the export, directories in parallel over the pool (hard links counted once); capacity from FSSTAT."""
        return self._measured(folder_shares(self._folder_tallies(0))[0])

    def folder_usage(self, depth: int) -> UsageReport:
        """:meth:`usage` and each folder's share at ``depth``, from the same walk."""
        totals, folders = folder_shares(self._folder_tallies(depth))
        return UsageReport(usage=self._measured(totals), folders=folders, depth=depth)

    def _measured(self, totals: Tally) -> Usage:
        stat = self.fs_stat()
        return Usage(used_size=totals.used, total_size=int(stat.total_bytes) or None,
                     free_size=int(stat.available_bytes), file_count=totals.files,
                     measured_at=datetime.now(timezone.utc), method="walk+fsstat")

    def _folder_tallies(self, depth: int) -> dict[str, Tally]:
        """Count the files by folder at ``depth`` (0: all in ``""``), directories scanned in parallel over the pool.

        Temporary files are left out, symbolic links and special files are no files.
        """
        tallies: defaultdict[str, Tally] = defaultdict(Tally)
        with ThreadPoolExecutor(max_workers=self.pool.size, thread_name_prefix="brokers-nfs-usage") as workers:
            pending = [workers.submit(self._scan_or_nothing, "")]
            while pending:
                directory, entries = pending.pop().result()
                tally = tallies[folder_at(directory, depth)]
                for entry in entries:
                    if _is_dir(entry.info):
                        rel = f"{directory}/{entry.name}" if directory else entry.name
                        pending.append(workers.submit(self._scan_or_nothing, rel))
                    elif _is_file(entry.info) and not entry.name.startswith(TEMP_PREFIX):
                        tally.add(int(entry.info.size), entry.info.fileid if entry.info.nlink > 1 else None)
        return tallies

    def _scan_or_nothing(self, rel: str) -> tuple[str, list[_Entry]]:
        try:
            return rel, self._scan(rel)
        except FileNotFound:  # removed while the walk was on its way
            return rel, []

    def upload(self, local: str, rel: str, progress: Progress | None = None) -> None:
        """Copy a local file in, atomically (streamed through the writer)."""
        upload_file(local, lambda: self.writer(rel), progress)

    def download_to(self, rel: str, out: IO[bytes], progress: Progress | None = None) -> None:
        """Copy a file into an open local file."""
        download_stream(self.reader(rel, COPY_CHUNK), out, progress)

    def local_file(self, rel: str) -> str | None:
        """Nothing is mounted in direct mode: no file can be read in place."""
        del rel
        return None
