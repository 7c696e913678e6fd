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

from .broker import Broker, Capabilities
from .configuration import MASK, WorkspaceConfiguration, load_configuration
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
)
from .registry import broker_types, get_broker
from .types import FileInfo, Usage
from .validation import ValidationResult, validate_configuration
from .volumes import Volume

__version__ = "0.1.0"

__all__ = [
    "MASK",
    "AccessDenied",
    "Broker",
    "BrokerError",
    "Capabilities",
    "FileInfo",
    "FileNotFound",
    "IntegrityError",
    "InvalidConfiguration",
    "MissingDependency",
    "MountError",
    "PathOutsideWorkspace",
    "StorageUnavailable",
    "Usage",
    "ValidationResult",
    "Volume",
    "WorkspaceConfiguration",
    "__version__",
    "broker_types",
    "get_broker",
    "load_configuration",
    "validate_configuration",
]
