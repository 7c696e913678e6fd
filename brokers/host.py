"""HostBroker: a workspace that is a directory on this machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, BinaryIO, ClassVar

from .broker import Broker, Capabilities, Writer
from .configuration import HostConfig, WorkspaceConfiguration
from .localfs import LocalFiles
from .types import FileInfo, Usage
from .volumes import Volume

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["HostBroker"]


class HostBroker(Broker):
    """A local directory (``broker.host_path``), mounted into jobs with a bind mount.

    Writes are atomic (temporary file, fsync, rename); ranged reads use ``pread``; ``move`` is a rename;
    ``download(partial=True)`` links to the file in place; copies use ``copy_file_range``/``sendfile``.
    """

    broker_type: ClassVar[str] = "host"
    capabilities: ClassVar[Capabilities] = Capabilities(
        atomic_rename=True, ranged_read=True, server_side_copy=True, capacity=True, local_files=True
    )

    def __init__(self, config: WorkspaceConfiguration) -> None:
        super().__init__(config)
        assert isinstance(config.broker, HostConfig)
        self.host_path = config.broker.host_path
        self.files = LocalFiles(self.host_path)

    def describe(self) -> str:
        """The workspace directory."""
        return self.host_path

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

    def _rename(self, src: str, dst: str) -> None:
        self.files.rename(src, dst)

    def _upload(self, local: str, rel: str) -> None:
        self.files.upload(local, rel)

    def _download_to(self, rel: str, out: IO[bytes]) -> None:
        self.files.download_to(rel, out.fileno())

    def _local_path(self, rel: str) -> str | None:
        path = self.files.path(rel)
        return path if os.path.isfile(path) else None

    def _cleanup(self, older_than: float) -> int:
        return self.files.cleanup(older_than)

    def _volume(self) -> Volume:
        return Volume(kind="bind", source=self.files.root)

    def _filesystem(self) -> AbstractFileSystem:
        from fsspec.implementations.dirfs import DirFileSystem
        from fsspec.implementations.local import LocalFileSystem

        return DirFileSystem(path=self.files.root, fs=LocalFileSystem())
