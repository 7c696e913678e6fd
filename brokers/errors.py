"""The error hierarchy of ``brokers``.

Every error a broker raises is a :class:`BrokerError`. Leaves also derive from the matching built-in so that
code written against plain files keeps working::

    BrokerError
    ├── InvalidConfiguration   (ValueError)    the configuration does not validate; ``.errors`` lists why
    ├── PathOutsideWorkspace   (ValueError)    a path escapes the workspace or is not a valid workspace path
    ├── FileNotFound           (FileNotFoundError)
    │   └── WorkspaceNotFound                   the workspace folder itself is missing
    ├── AccessDenied           (PermissionError)  the store refused the credentials or the operation
    ├── MountError             (OSError)        a mount could not be made on this machine
    ├── StorageUnavailable     (ConnectionError) transient failures persisted after retries
    ├── IntegrityError                          a checksum or size check failed after a transfer
    └── MissingDependency      (ImportError)    an optional extra is needed for this broker

Dependency errors are translated at each backend's edge and chained (``raise ... from exc``); messages never
carry secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AccessDenied",
    "BrokerError",
    "FileNotFound",
    "IntegrityError",
    "InvalidConfiguration",
    "MissingDependency",
    "MountError",
    "PathOutsideWorkspace",
    "StorageUnavailable",
    "WorkspaceNotFound",
]


class BrokerError(Exception):
    """Root of every error raised by ``brokers``."""


class InvalidConfiguration(BrokerError, ValueError):
    """The workspace configuration is not valid.

    Attributes:
        errors: The validation errors, each a dict with ``name``, ``description`` and ``path``.
    """

    def __init__(self, errors: Sequence[dict[str, Any]]) -> None:
        self.errors = [dict(e) for e in errors]
        lines = "; ".join(e["description"] for e in self.errors) or "invalid configuration"
        super().__init__(f"invalid workspace configuration: {lines}")


class PathOutsideWorkspace(BrokerError, ValueError):
    """A workspace path is malformed or would lead outside the workspace."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        self.reason = reason
        shown = repr(path) if len(repr(path)) <= 200 else repr(path)[:200] + "..."
        super().__init__(f"path {shown} is not allowed: {reason}")


class FileNotFound(BrokerError, FileNotFoundError):
    """The file does not exist in the workspace."""

    def __init__(self, path: str, detail: str = "no such file in the workspace") -> None:
        self.path = path
        super().__init__(f"{path}: {detail}")


class WorkspaceNotFound(FileNotFound):
    """The workspace's folder itself (a host directory, a mounted export's directory) does not exist.

    Raised by every operation on such a workspace, listing included (a missing folder is never an empty
    workspace); ``path`` is ``""`` (the workspace root) and ``folder`` the local directory.
    """

    def __init__(self, folder: str, detail: str = "does not exist") -> None:
        self.path = ""
        self.folder = folder
        super(FileNotFound, self).__init__(f"workspace folder {folder} {detail}")


class AccessDenied(BrokerError, PermissionError):
    """The store refused the operation (credentials or permissions)."""


class MountError(BrokerError, OSError):
    """A mount could not be created or removed on this machine."""


class StorageUnavailable(BrokerError, ConnectionError):
    """The store could not be reached, or kept failing, after retries."""


class IntegrityError(BrokerError):
    """Data written or read does not match its expected size or checksum."""


class MissingDependency(BrokerError, ImportError):
    """An optional dependency (an extra) is needed for this feature."""
