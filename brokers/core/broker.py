"""The broker contract: the public API every workspace offers, built on a few per-backend primitives.

The class is laid out in three visibly separate parts:

1. **User API** (public methods): path checking, argument checking, atomicity and error guarantees live here,
   written once for every backend.
2. **Backend primitives** (abstract ``_`` methods): what a backend must implement. Paths they receive are
   already normalised and confined; they raise :mod:`brokers.errors` exceptions only.
3. **Backend hooks with defaults** (``_`` methods with a body): faster paths a backend may provide; the default
   is correct for any backend, built on the primitives.
"""

from __future__ import annotations

import abc
import builtins
import contextlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, BinaryIO, ClassVar, Literal

from ..config import AccessPolicy, WorkspaceConfiguration
from ..errors import BrokerError, FileNotFound, IntegrityError, MountError, WorkspaceNotFound
from ..paths import normalize
from ..types import Capabilities, FileInfo, Usage, UsageReport
from .local.io import create_temp
from .mounts import run_mount, run_unmount
from .streams import COPY_CHUNK, Progress, Writer, WriteStream, committing, copy_stream, download_stream, upload_file
from .tally import Tally, folder_at, folder_shares
from .volumes import Volume

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["FSSPEC_PROTOCOL", "Broker"]

FSSPEC_PROTOCOL = "brokers"
"""The fsspec protocol of the workspace view (:mod:`brokers.fsspec`, registered as an ``fsspec.specs`` entry point)."""


class Broker(abc.ABC):
    """One workspace: a host directory, an NFS export or an S3 bucket (prefix), behind one interface.

    Get one with :func:`brokers.get_broker`. Workspace paths are relative POSIX strings (``"in/a.csv"``); a
    path that escapes the workspace raises :class:`~brokers.errors.PathOutsideWorkspace` before anything is
    touched.
    """

    broker_type: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    bulk_workers: ClassVar[int] = 8
    """Files transferred at the same time by :meth:`upload_many` and :meth:`download_many`."""
    config_schema: ClassVar[dict[str, Any] | None] = None
    """JSON Schema of the ``broker`` object, for third-party broker types (built-ins live in the main schema)."""

    def __init__(self, config: WorkspaceConfiguration) -> None:
        self.config = config

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the broker's own state; its fsspec view (:attr:`fs`) is made again when asked for."""
        state = self.__dict__.copy()
        state.pop("fs", None)
        return state

    def describe(self) -> str:
        """A short, secret-free description of where the workspace lives."""
        return self.broker_type

    @classmethod
    def validation_warnings(cls, config: WorkspaceConfiguration,
                            policy: AccessPolicy | None = None) -> list[dict[str, str]]:
        """Extra warnings for :func:`~brokers.validate_configuration`, e.g. an unreachable store.

        ``policy`` limits what the check may reach (endpoints, ambient credentials); None: anything.
        """
        del config, policy
        return []

    @classmethod
    def with_policy(cls, config: WorkspaceConfiguration, policy: AccessPolicy) -> Broker:
        """Build the broker of a configuration this process did not write, reaching only what ``policy`` allows.

        The default ignores the policy (right for a broker that contacts no server); a broker that does
        overrides it.
        """
        del policy
        return cls(config)

    # ------------------------------------------------------------------ user API
    def exists(self, path: str) -> bool:
        """Return True if ``path`` is a file in the workspace.

        Raises:
            WorkspaceNotFound: The workspace's folder itself does not exist (as every operation does).
        """
        try:
            self._info(normalize(path))
        except WorkspaceNotFound:
            raise
        except FileNotFound:
            return False
        return True

    def info(self, path: str) -> FileInfo:
        """Return size, modification time and checksum of a file.

        Raises:
            FileNotFound: There is no such file.
        """
        return self._info(normalize(path))

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[FileInfo]:
        """Iterate over the files under ``prefix`` (a directory-like path; ``""`` for the whole workspace).

        Args:
            prefix: Directory to list, relative to the workspace.
            recursive: Descend into subdirectories; otherwise only files directly under ``prefix``.

        Yields:
            One :class:`FileInfo` per file, paths relative to the workspace root. Temporary files of
            unfinished writes are never listed.

        Raises:
            WorkspaceNotFound: The workspace's folder itself does not exist (never listed as empty).
        """
        return self._iter(normalize(prefix, allow_root=True), recursive)

    def read_bytes(self, path: str, start: int = 0, end: int | None = None) -> bytes:
        """Read a whole file, or the bytes ``[start, end)`` of it; only that range is fetched.

        A range that runs past the end of the file is cut short, as with ``file.read``.

        Raises:
            FileNotFound: There is no such file.
            ValueError: ``start`` is negative or ``end`` is before ``start``.
        """
        rel = normalize(path)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start must be a whole number >= 0, not {start!r}")
        if end is not None and (isinstance(end, bool) or not isinstance(end, int) or end < start):
            raise ValueError(f"end must be None or a whole number >= start ({start}), not {end!r}")
        if end == start:
            self._info(rel)
            return b""
        return self._read(rel, start, end)

    def open(self, path: str, mode: Literal["rb", "wb"] = "rb", *, buffer_size: int = COPY_CHUNK) -> BinaryIO:
        """Open a file for streaming.

        ``"rb"`` streams with a bounded buffer. ``"wb"`` writes to a hidden temporary object and commits it on
        ``close()`` (or at the end of a ``with`` block); if the block raises, the write is discarded and the
        file keeps its old content.

        Raises:
            FileNotFound: ``"rb"`` on a missing file.
            ValueError: Another mode was asked for.
        """
        rel = normalize(path)
        if mode == "rb":
            return self._reader(rel, buffer_size)
        if mode == "wb":
            return WriteStream(self._writer(rel), rel, buffer_size)  # type: ignore[return-value]
        raise ValueError(f"mode must be 'rb' or 'wb', not {mode!r}")

    def write_bytes(self, path: str, data: bytes | bytearray | memoryview) -> None:
        """Write a whole file atomically: readers see the old content or the new, never a part."""
        with committing(self._writer(normalize(path))) as writer:
            writer.write(memoryview(data).cast("B"))

    def upload(self, local: str | os.PathLike[str], path: str, *, progress: Progress | None = None) -> None:
        """Copy a local file into the workspace, atomically.

        Args:
            local: The file on this machine.
            path: Where it goes in the workspace.
            progress: Told each number of bytes sent (from worker threads too); once the total is reached,
                the upload is being committed and checked.

        Raises:
            FileNotFoundError: The local file does not exist.
        """
        rel = normalize(path)
        self._upload(os.fspath(local), rel, progress)

    def download(self, path: str, local: str | os.PathLike[str], partial: bool = False, *,
                 progress: Progress | None = None) -> str:
        """Copy a workspace file to a local path.

        Args:
            path: The workspace file.
            local: Where to put it on this machine (its directory is created if needed).
            partial: The job will read only parts of the file: where the file is reachable on this machine
                (host, mounted NFS, S3 through a FUSE ``host_path``), make ``local`` a symbolic link to it
                instead of copying. Falls back to a copy where no mount exists.
            progress: Told each number of bytes received (a link moves none); once the file's size is reached,
                the copy is being checked and renamed into place.

        Returns:
            The local path written.
        """
        rel = normalize(path)
        dest = os.path.abspath(os.fspath(local))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if partial:
            source = self._local_path(rel)
            if source is not None:
                _replace_with_symlink(source, dest)
                return dest
        self._download_file(rel, dest, progress)
        return dest

    def upload_many(self, pairs: Iterable[tuple[str | os.PathLike[str], str]], *,
                    workers: int | None = None) -> int:
        """Upload many local files, several at a time; each one atomically, as :meth:`upload` does.

        Every workspace path is checked before anything is sent. The first failure stops the files not yet
        started and is raised once the running ones have ended; files already uploaded stay.

        Args:
            pairs: ``(local file, workspace path)`` pairs.
            workers: Files in flight at once (default :attr:`bulk_workers`).

        Returns:
            The number of files uploaded.
        """
        jobs = [(os.fspath(local), normalize(path)) for local, path in pairs]
        return self._bulk(self._upload, jobs, workers)

    def download_many(self, pairs: Iterable[tuple[str, str | os.PathLike[str]]], *,
                      workers: int | None = None) -> builtins.list[str]:
        """Download many workspace files, several at a time; each as :meth:`download` does (no partial links).

        Every workspace path is checked before anything is fetched. The first failure stops the files not yet
        started and is raised once the running ones have ended.

        Args:
            pairs: ``(workspace path, local file)`` pairs.
            workers: Files in flight at once (default :attr:`bulk_workers`).

        Returns:
            The local paths written, in the order given.
        """
        jobs = [(normalize(path), os.path.abspath(os.fspath(local))) for path, local in pairs]
        for directory in {os.path.dirname(dest) for _, dest in jobs}:
            os.makedirs(directory, exist_ok=True)
        self._bulk(self._download_file, jobs, workers)
        return [dest for _, dest in jobs]

    def _bulk(self, fn: Callable[[str, str], Any], jobs: builtins.list[tuple[str, str]], workers: int | None) -> int:
        """Run ``fn(a, b)`` for each job on a bounded pool; raise the first failure after the others stop."""
        if not jobs:
            return 0
        size = max(1, min(workers or self.bulk_workers, len(jobs)))
        if size == 1:
            for a, b in jobs:
                fn(a, b)
            return len(jobs)
        with ThreadPoolExecutor(size, thread_name_prefix=f"brokers-{self.broker_type}-bulk") as pool:
            futures: builtins.list[Future[Any]] = [pool.submit(fn, a, b) for a, b in jobs]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                for future in pending:
                    future.cancel()
                wait(pending)
                raise failed.exception()  # type: ignore[misc]
        return len(jobs)

    def _download_file(self, rel: str, dest: str, progress: Progress | None = None) -> None:
        """Download one file to ``dest`` (its directory exists): a temporary file renamed into place."""
        fd, tmp = create_temp(os.path.dirname(dest))  # mode 0666 less the umask, as `cp` makes it
        try:
            with os.fdopen(fd, "wb") as out:
                self._download_to(rel, out, progress)
            # Renamed into place only when complete; not fsynced: a local input copy is cheap to fetch again,
            # and syncing would make a download slower than `cp`.
            os.replace(tmp, dest)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def local_path(self, path: str) -> str | None:
        """Return where the file can be read directly on this machine, or None (then read through the broker)."""
        return self._local_path(normalize(path))

    def move(self, src: str, dst: str) -> None:
        """Move a file within the workspace, replacing ``dst``.

        Atomic where the store allows (host, NFS: a rename). Elsewhere it copies, verifies the copy's size,
        then deletes the source: a failure at any step leaves the source in place.

        Raises:
            FileNotFound: ``src`` does not exist.
        """
        self._between(src, dst, self._rename)

    def copy(self, src: str, dst: str) -> None:
        """Copy a file within the workspace, replacing ``dst`` atomically (server-side where the store can).

        The copy is checked (size, and the store's checksum where it has one) before it counts as done.

        Raises:
            FileNotFound: ``src`` does not exist.
        """
        self._between(src, dst, self._copy)

    def _between(self, src: str, dst: str, operation: Callable[[str, str], None]) -> None:
        """Check both paths, then run a move or copy; onto itself it only checks that the file exists."""
        src_rel, dst_rel = normalize(src), normalize(dst)
        if src_rel == dst_rel:
            self._info(src_rel)
            return
        operation(src_rel, dst_rel)

    def entries(self, prefix: str = "") -> Iterator[FileInfo | str]:
        """Iterate over what is directly under ``prefix``: a :class:`FileInfo` per file, a path per sub-folder.

        Folders are implied by the files below them (a workspace holds files only), so a sub-folder is
        yielded only if it holds a file at some depth. Order is unspecified.

        Raises:
            WorkspaceNotFound: The workspace's folder itself does not exist.
        """
        return self._entries(normalize(prefix, allow_root=True))

    def shareable_config(self) -> WorkspaceConfiguration:
        """The configuration without any secret (keys, endpoint user info): safe to show, store or send.

        A broker rebuilt from it in another process finds credentials the way the pickled broker does.
        """
        return self._shareable_config()

    def delete(self, path: str, missing_ok: bool = False) -> None:
        """Delete a file.

        Raises:
            FileNotFound: The file does not exist (unless ``missing_ok``).
        """
        try:
            self._remove(normalize(path))
        except FileNotFound as exc:
            if not missing_ok or isinstance(exc, WorkspaceNotFound):
                raise

    def delete_many(self, paths: Iterable[str]) -> None:
        """Delete several files; one that does not exist is no error (S3: batched, 1,000 keys a request).

        Every path is checked before anything is deleted.
        """
        self._remove_many([normalize(path) for path in paths])

    def delete_all(self) -> int:
        """Delete every file of the workspace (and nothing outside it); return how many were deleted."""
        return self._remove_all()

    def usage(self) -> Usage:
        """Measure the workspace: used bytes, capacity, free bytes and file count.

        A ``total_size`` quota in the configuration is reported as the total (and bounds the free space).
        """
        return self._with_quota(self._usage())

    def folder_usage(self, depth: int = 1) -> UsageReport:
        """Measure the workspace and each folder's share of it, in one pass where the store allows.

        A file counts in the folder named by the first ``depth`` components of its directory: at depth 1
        ``a/b/c.txt`` counts in ``a``, at depth 2 in ``a/b``; a file less deep counts in its own folder
        (``a/y.txt`` in ``a``, ``x.txt`` in ``""``, the root). Files of unfinished writes count nowhere, as in
        :meth:`usage`.

        Returns:
            The :class:`~brokers.types.UsageReport`: ``usage`` as :meth:`usage` reports it (quota applied), and
            the folders holding a file, sorted by path. Without hard links across folders their sizes and
            counts add up to ``usage``'s.

        Raises:
            ValueError: ``depth`` is not a whole number >= 1.
            WorkspaceNotFound: The workspace's folder itself does not exist.
        """
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a whole number >= 1, not {depth!r}")
        report = self._folder_usage(depth)
        return replace(report, usage=self._with_quota(report.usage))

    def _with_quota(self, usage: Usage) -> Usage:
        """Report a ``total_size`` quota of the configuration as the total (and a bound on the free space)."""
        quota = self.config.broker.total_size
        if quota is not None:
            free = max(quota - usage.used_size, 0)
            usage = replace(usage, total_size=quota,
                            free_size=free if usage.free_size is None else min(free, usage.free_size))
        return usage

    def cleanup(self, older_than: float = 3600.0) -> int:
        """Remove leftovers of writes that crashed (temporary files, incomplete uploads).

        Args:
            older_than: Only remove leftovers at least this many seconds old, so writes in progress survive.

        Returns:
            How many leftovers were removed.
        """
        return self._cleanup(older_than)

    @property
    def volume(self) -> Volume | None:
        """The mount a job needs to see the workspace as files, or None if the store cannot be mounted."""
        return self._volume()

    def mount(self, target: str) -> None:
        """Mount the workspace at ``target`` on this machine (needs privileges).

        Raises:
            MountError: The workspace has no volume, or the mount failed (the message says why).
        """
        volume = self.volume
        if volume is None:
            raise MountError(f"this {self.broker_type} workspace has no host_path: it cannot be mounted")
        run_mount(volume.mount_argv(target), target)

    def unmount(self, target: str) -> None:
        """Unmount what :meth:`mount` mounted at ``target``.

        Raises:
            MountError: The unmount failed.
        """
        run_unmount(target)

    @cached_property
    def fs(self) -> AbstractFileSystem:
        """An fsspec filesystem rooted at the workspace (for pandas, pyarrow, dask)."""
        return self._filesystem()

    # ------------------------------------------------------------------ backend primitives
    @abc.abstractmethod
    def _info(self, rel: str) -> FileInfo:
        """Return the file's info or raise FileNotFound."""

    @abc.abstractmethod
    def _iter(self, prefix: str, recursive: bool) -> Iterator[FileInfo]:
        """Yield the files under a normalised prefix (``""`` for all)."""

    @abc.abstractmethod
    def _read(self, rel: str, start: int, end: int | None) -> bytes:
        """Return bytes ``[start, end)`` (``end`` None: to the end), fetching only that range."""

    @abc.abstractmethod
    def _reader(self, rel: str, buffer_size: int) -> BinaryIO:
        """Return a readable binary stream; raise FileNotFound for a missing file."""

    @abc.abstractmethod
    def _writer(self, rel: str) -> Writer:
        """Return a pending atomic write to ``rel``."""

    @abc.abstractmethod
    def _remove(self, rel: str) -> None:
        """Delete one file; raise FileNotFound if it does not exist."""

    @abc.abstractmethod
    def _usage(self) -> Usage:
        """Measure used bytes and file count (and capacity where the store has one)."""

    # ------------------------------------------------------------------ backend hooks with defaults
    def _rename(self, src: str, dst: str) -> None:
        """Copy (verified), then delete the source (a failure leaves the source in place)."""
        self._copy(src, dst, action="move")
        self._remove(src)

    def _copy(self, src: str, dst: str, action: str = "copy") -> None:
        """Stream ``src`` into an atomic write of ``dst``, then verify the copy's size."""
        source = self._info(src)
        with self._reader(src, COPY_CHUNK) as stream, committing(self._writer(dst)) as writer:
            copy_stream(stream, writer)
        copied = self._info(dst)
        if copied.size != source.size:
            kept = "; source kept" if action == "move" else ""
            raise IntegrityError(f"{action} {src} -> {dst}: copied {copied.size} bytes of {source.size}{kept}")

    def _entries(self, prefix: str) -> Iterator[FileInfo | str]:
        """Derived from a recursive listing; a backend that can list one level (S3 delimiters) overrides it."""
        folders: set[str] = set()
        cut = len(prefix) + 1 if prefix else 0
        for item in self._iter(prefix, True):
            head, sep, _ = item.path[cut:].partition("/")
            if not sep:
                yield item
            elif head not in folders:
                folders.add(head)
                yield f"{prefix}/{head}" if prefix else head

    def _folder_usage(self, depth: int) -> UsageReport:
        """Two passes: :meth:`_usage` for the totals and capacity, then a listing grouped by folder.

        A backend that can count per folder while it measures overrides this (one pass, totals that agree).
        """
        usage = self._usage()
        tallies: defaultdict[str, Tally] = defaultdict(Tally)
        for item in self._iter("", True):
            tallies[folder_at(item.path.rpartition("/")[0], depth)].add(item.size)
        return UsageReport(usage=usage, folders=folder_shares(tallies)[1], depth=depth)

    def _shareable_config(self) -> WorkspaceConfiguration:
        return self.config

    def _remove_many(self, rels: builtins.list[str]) -> None:
        for rel in rels:
            try:
                self._remove(rel)
            except WorkspaceNotFound:
                raise
            except FileNotFound:
                continue

    def _remove_all(self) -> int:
        count = 0
        for item in list(self._iter("", True)):
            try:
                self._remove(item.path)
            except FileNotFound:
                continue
            count += 1
        return count

    def _upload(self, local: str, rel: str, progress: Progress | None = None) -> None:
        upload_file(local, lambda: self._writer(rel), progress)

    def _download_to(self, rel: str, out: IO[bytes], progress: Progress | None = None) -> None:
        download_stream(self._reader(rel, COPY_CHUNK), out, progress)

    def _local_path(self, rel: str) -> str | None:
        del rel
        return None

    def _cleanup(self, older_than: float) -> int:
        del older_than
        return 0

    def _volume(self) -> Volume | None:
        return None

    def _filesystem(self) -> AbstractFileSystem:
        """The fsspec view of this broker: the implementation fsspec knows for :data:`FSSPEC_PROTOCOL`.

        The view (:mod:`brokers.fsspec`) is built on this contract and registered with fsspec as an entry point,
        so the contract does not import it.
        """
        from fsspec import get_filesystem_class

        view: AbstractFileSystem = get_filesystem_class(FSSPEC_PROTOCOL)(broker=self)
        return view


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _replace_with_symlink(source: str, dest: str) -> None:
    tmp = os.path.join(os.path.dirname(dest), f".brokers-tmp-link-{os.getpid()}-{id(dest):x}")
    _unlink_quietly(tmp)
    os.symlink(source, tmp)
    try:
        os.replace(tmp, dest)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise BrokerError(f"cannot create link at {dest}: {exc.strerror}") from exc
