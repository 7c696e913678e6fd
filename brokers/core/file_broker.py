"""Brokers whose primitives are a set of file operations: the host broker and both modes of the NFS broker.

:class:`FileOperations` is what such a backend provides (local files through the kernel, or an export through a
userspace client); :class:`FileBroker` forwards every primitive and hook of the contract to it, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, BinaryIO, Protocol

from ..types import FileInfo, Usage, UsageReport
from .broker import Broker
from .streams import Progress, Writer

__all__ = ["FileBroker", "FileOperations"]


class FileOperations(Protocol):
    """The file operations a :class:`FileBroker` forwards to (paths already normalised and confined)."""

    def info(self, rel: str) -> FileInfo:
        """Return the info of a regular file, or raise FileNotFound."""

    def iter(self, prefix: str, recursive: bool) -> Iterator[FileInfo]:
        """Yield the regular files under ``prefix``, temporary files hidden."""

    def read(self, rel: str, start: int, end: int | None) -> bytes:
        """Read bytes ``[start, end)``, fetching only that range."""

    def reader(self, rel: str, buffer_size: int) -> BinaryIO:
        """Open a streaming reader."""

    def writer(self, rel: str) -> Writer:
        """Start an atomic write."""

    def remove(self, rel: str) -> None:
        """Delete one file."""

    def remove_all(self) -> int:
        """Delete everything inside the workspace root; return how many files."""

    def rename(self, src: str, dst: str) -> None:
        """Move a file, atomically where the filesystem allows."""

    def upload(self, local: str, rel: str, progress: Progress | None = None) -> None:
        """Copy a local file in, atomically (each chunk sent told to ``progress``)."""

    def download_to(self, rel: str, out: IO[bytes], progress: Progress | None = None) -> None:
        """Copy a file into an open local file (each chunk received told to ``progress``)."""

    def local_file(self, rel: str) -> str | None:
        """Where the file can be read on this machine, or None."""

    def cleanup(self, older_than: float) -> int:
        """Remove temporary files of crashed writes older than ``older_than`` seconds."""

    def usage(self) -> Usage:
        """Measure used bytes, file count and capacity (temporary files left out)."""

    def folder_usage(self, depth: int) -> UsageReport:
        """Measure as :meth:`usage` does and, in the same walk, each folder's share at ``depth`` (>= 1)."""


class FileBroker(Broker):
    """A broker whose primitives and hooks are the :class:`FileOperations` in :attr:`files`."""

    files: FileOperations

    def _info(self, rel: str) -> FileInfo:
        return self.files.info(rel)

    def _iter(self, prefix: str, recursive: bool) -> Iterator[FileInfo]:
        return self.files.iter(prefix, recursive)

    def _read(self, rel: str, start: int, end: int | None) -> bytes:
        return self.files.read(rel, start, end)

    def _reader(self, rel: str, buffer_size: int) -> BinaryIO:
        return self.files.reader(rel, buffer_size)

    def _writer(self, rel: str) -> Writer:
        return self.files.writer(rel)

    def _remove(self, rel: str) -> None:
        self.files.remove(rel)

    def _remove_all(self) -> int:
        return self.files.remove_all()

    def _usage(self) -> Usage:
        return self.files.usage()

    def _folder_usage(self, depth: int) -> UsageReport:
        return self.files.folder_usage(depth)

    def _rename(self, src: str, dst: str) -> None:
        self.files.rename(src, dst)

    def _upload(self, local: str, rel: str, progress: Progress | None = None) -> None:
        self.files.upload(local, rel, progress)

    def _download_to(self, rel: str, out: IO[bytes], progress: Progress | None = None) -> None:
        self.files.download_to(rel, out, progress)

    def _local_path(self, rel: str) -> str | None:
        return self.files.local_file(rel)

    def _cleanup(self, older_than: float) -> int:
        return self.files.cleanup(older_than)
