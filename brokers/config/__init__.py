"""Workspace configurations: the typed objects, where they come from, the schema, validation and warnings.

This layer imports no backend: what it needs of a broker type (a third-party ``config_schema``, an access
check) it asks through a :data:`~brokers.config.lookup.BrokerLookup` that the registry passes in.
"""

from __future__ import annotations

from .endpoints import AccessPolicy, safe_endpoint
from .loading import load
from .model import (
    BUILTIN_CONFIGS,
    MASK,
    NEWEST_VERSION,
    SECRET_FIELDS,
    URL_FIELDS,
    BrokerConfig,
    Credentials,
    HostConfig,
    NfsConfig,
    OtherBrokerConfig,
    S3Config,
    WorkspaceConfiguration,
    mask_endpoint,
    mask_secrets,
)
from .schema import configuration_schema
from .source import ConfigSource, SourceError, read_source
from .validation import ValidationResult, check, validate

__all__ = [
    "BUILTIN_CONFIGS", "MASK", "NEWEST_VERSION", "SECRET_FIELDS", "URL_FIELDS", "AccessPolicy", "BrokerConfig",
    "ConfigSource", "Credentials", "HostConfig", "NfsConfig", "OtherBrokerConfig", "S3Config", "SourceError",
    "ValidationResult", "WorkspaceConfiguration", "check", "configuration_schema", "load", "mask_endpoint",
    "mask_secrets", "read_source", "safe_endpoint", "validate",
]
