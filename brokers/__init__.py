"""``brokers``: one interface for host, NFS and S3 workspaces.

Validate a workspace configuration, get its broker, then read, write, move, delete and size its files::

    import brokers
    result = brokers.validate_configuration(cfg)        # never raises; result.to_dict()
    broker = brokers.get_broker(cfg)                     # HostBroker | NfsBroker | S3Broker
    broker.write_bytes("out/a.txt", b"hello")
    broker.read_bytes("out/a.txt", 1, 3)                 # b"el"
    broker.usage().used_size
"""

from __future__ import annotations

from .config import MASK, ValidationResult, WorkspaceConfiguration, configuration_schema
from .core.broker import Broker
from .core.volumes import Volume
from .errors import (
    AccessDenied,
    BrokerError,
    FileNotFound,
    IntegrityError,
    InvalidConfiguration,
    MissingDependency,
    MountError,
    PathOutsideWorkspace,
    StorageUnavailable,
    WorkspaceNotFound,
)
from .registry import broker_types, get_broker, load_configuration, validate_configuration
from .types import Capabilities, FileInfo, FolderUsage, Usage, UsageReport

__version__ = "0.1.0"

__all__ = [
    "MASK", "AccessDenied", "Broker", "BrokerError", "Capabilities", "FileInfo", "FileNotFound", "FolderUsage",
    "IntegrityError", "InvalidConfiguration", "MissingDependency", "MountError", "PathOutsideWorkspace",
    "StorageUnavailable", "Usage", "UsageReport", "ValidationResult", "Volume", "WorkspaceConfiguration",
    "WorkspaceNotFound", "__version__", "broker_types", "configuration_schema", "get_broker", "load_configuration",
    "validate_configuration",
]
