"""Typed values of the broker contract: ``FileInfo``, ``Usage``, ``FolderUsage``, ``UsageReport``, ``Capabilities``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

__all__ = ["Capabilities", "FileInfo", "FolderUsage", "Usage", "UsageReport"]


@dataclass(frozen=True)
class FileInfo:
    """One file of a workspace.

    Attributes:
        path: Path relative to the workspace root (POSIX, no leading slash).
        size: Size in bytes.
        modified: Last modification time (timezone-aware UTC), or ``None`` where the store has none.
        checksum: A store-provided checksum (an S3 ETag, for example), or ``None``.
    """

    path: str
    size: int
    modified: datetime | None = None
    checksum: str | None = None


@dataclass(frozen=True)
class Usage:
    """Disk usage of a workspace.

    Attributes:
        used_size: Bytes taken by the workspace's files (hard links counted once).
        total_size: Capacity in bytes (the filesystem's, or the configured quota), or ``None`` if unbounded.
        free_size: Bytes still available, or ``None`` if unknown.
        file_count: Number of files counted.
        measured_at: When the measurement finished (UTC).
        method: How it was measured, e.g. ``"walk+statvfs"``, ``"list_objects_v2"``.
    """

    used_size: int
    total_size: int | None
    free_size: int | None
    file_count: int
    measured_at: datetime
    method: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``measured_at`` as ISO-8601)."""
        data = asdict(self)
        data["measured_at"] = self.measured_at.isoformat()
        return data


@dataclass(frozen=True)
class FolderUsage:
    """One folder's share of a workspace, from :meth:`~brokers.Broker.folder_usage`.

    Attributes:
        path: The folder, relative to the workspace (``"in"``, ``"in/raw"`` at depth 2); ``""`` holds the files
            directly at the root.
        used_size: Bytes of the files below it (a file with several hard links in the folder counts once).
        file_count: Number of files below it.
    """

    path: str
    used_size: int
    file_count: int


@dataclass(frozen=True)
class UsageReport:
    """A workspace's usage and each folder's share, measured in the same pass.

    Attributes:
        usage: What :meth:`~brokers.Broker.usage` reports (the quota applied the same way).
        folders: The folders at ``depth`` that hold a file at some depth, sorted by path; a file less deep counts
            in its own folder (``""`` for the root, present only if the root holds files).
        depth: How many path components name a folder.
    """

    usage: Usage
    folders: tuple[FolderUsage, ...]
    depth: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: ``usage`` as :meth:`Usage.to_dict`, ``folders`` as a list of dicts."""
        return {"usage": self.usage.to_dict(), "folders": [asdict(folder) for folder in self.folders],
                "depth": self.depth}


@dataclass(frozen=True)
class Capabilities:
    """What a broker can do natively; derived methods consult this rather than ``isinstance``.

    Attributes:
        atomic_rename: ``move`` is a single atomic operation in the store.
        ranged_read: Reads of a byte range fetch only that range.
        server_side_copy: Copies happen inside the store, without passing data through this machine.
        capacity: The store reports its own capacity (otherwise only a configured quota gives a total).
        local_files: Files can be reached through this machine's filesystem (``local_path``).
    """

    atomic_rename: bool = False
    ranged_read: bool = True
    server_side_copy: bool = False
    capacity: bool = False
    local_files: bool = False
