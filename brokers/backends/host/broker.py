"""HostBroker: a workspace that is a directory on this machine."""

from __future__ import annotations

from typing import ClassVar

from ...config import HostConfig, WorkspaceConfiguration
from ...core.file_broker import FileBroker
from ...core.local import LocalFiles
from ...core.volumes import Volume
from ...types import Capabilities

__all__ = ["HostBroker"]


class HostBroker(FileBroker):
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
        self.files: LocalFiles = LocalFiles(self.host_path)

    def describe(self) -> str:
        """The workspace directory."""
        return self.host_path

    def _volume(self) -> Volume:
        return Volume(kind="bind", source=self.files.root)
