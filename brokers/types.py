"""Typed values of the broker contract: :class:`FileInfo`, :class:`Usage` and :class:`Capabilities`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

__all__ = ["Capabilities", "FileInfo", "Usage"]


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
