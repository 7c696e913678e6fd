"""Typed, immutable workspace configurations.

The shape is defined once, in ``schemas/workspace_configuration.json``; the dataclasses here mirror it (a test
proves the two agree). They are built from data that has passed validation (:mod:`brokers.config.loading`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from .endpoints import split_userinfo

__all__ = [
    "BUILTIN_CONFIGS",
    "MASK",
    "NEWEST_VERSION",
    "SECRET_FIELDS",
    "URL_FIELDS",
    "BrokerConfig",
    "Credentials",
    "HostConfig",
    "NfsConfig",
    "OtherBrokerConfig",
    "S3Config",
    "WorkspaceConfiguration",
    "holds_secret",
    "mask_endpoint",
    "mask_secrets",
]

MASK = "************"
"""What a secret is shown as."""
NEWEST_VERSION = "7"
"""The version a configuration without ``version`` is read as."""

SECRET_FIELDS = frozenset({"access_key_id", "secret_access_key"})
"""Names of the fields whose values are secrets (marked ``x-secret`` in the schema)."""


URL_FIELDS = frozenset({"endpoint_url"})
"""Names of the fields holding a URL whose user info (``https://user:password@host``) is a secret."""


def mask_endpoint(url: str) -> str:
    """Return a URL with its user info, if any, replaced by :data:`MASK` (``https://************@host``)."""
    scheme, userinfo, rest = split_userinfo(url)
    return url if userinfo is None else f"{scheme}{MASK}@{rest}"


def holds_secret(key: str | int, value: Any) -> bool:
    """True if the field ``key`` with this value is (or carries) a secret: a key, or a URL with user info."""
    if not isinstance(value, str):
        return False
    return key in SECRET_FIELDS or (key in URL_FIELDS and split_userinfo(value)[1] is not None)


def _masked(key: str, value: Any) -> Any:
    if not holds_secret(key, value):
        return mask_secrets(value)
    return mask_endpoint(value) if key in URL_FIELDS else MASK


def mask_secrets(data: Any) -> Any:
    """Return a deep copy of JSON data with every secret replaced by :data:`MASK`.

    Secrets are the values of :data:`SECRET_FIELDS` and the user info of :data:`URL_FIELDS`.
    """
    if isinstance(data, Mapping):
        return {k: _masked(k, v) for k, v in data.items()}
    if isinstance(data, list):
        return [mask_secrets(v) for v in data]
    return data


@dataclass(frozen=True, repr=False)
class Credentials:
    """S3 access keys. Neither key ever appears in ``repr``/``str``."""

    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"Credentials(access_key_id={MASK!r}, secret_access_key={MASK!r})"

    __str__ = __repr__


@dataclass(frozen=True)
class BrokerConfig:
    """Settings shared by every broker type."""

    type: ClassVar[str] = ""
    total_size: int | None = None

    def to_dict(self, *, mask: bool = True) -> dict[str, Any]:
        """Return the ``broker`` object as JSON data, omitting unset fields; secrets masked unless ``mask=False``."""
        data: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, Credentials):
                value = {"access_key_id": value.access_key_id, "secret_access_key": value.secret_access_key}
            elif isinstance(value, tuple):
                value = list(value)
            data[f.name] = value
        return mask_secrets(data) if mask else data


@dataclass(frozen=True)
class HostConfig(BrokerConfig):
    """A directory on this machine."""

    type: ClassVar[str] = "host"
    host_path: str = ""


_NFS_PATH = re.compile(r"^(?P<server>\[[^\]]+\]|[^:/\[\]]+):(?P<export>/.*)$")


@dataclass(frozen=True)
class NfsConfig(BrokerConfig):
    """An NFS export, mounted or reached by a userspace client."""

    type: ClassVar[str] = "nfs"
    nfs_path: str = ""
    host_path: str | None = None
    nfs_version: str | None = None
    nfs_port: int | None = None
    mount_port: int | None = None
    mount_options: tuple[str, ...] | None = None

    @property
    def server(self) -> str:
        """The server part of ``nfs_path`` (IPv6 without brackets)."""
        match = _NFS_PATH.match(self.nfs_path)
        return match.group("server").strip("[]") if match else ""

    @property
    def export(self) -> str:
        """The path part of ``nfs_path`` (``/export/sub``), without a trailing slash."""
        match = _NFS_PATH.match(self.nfs_path)
        return (match.group("export").rstrip("/") or "/") if match else ""


@dataclass(frozen=True, repr=False)
class S3Config(BrokerConfig):
    """An S3 or S3-compatible bucket (optionally a key prefix within it); ``repr`` masks every secret."""

    type: ClassVar[str] = "s3"
    bucket_name: str = ""
    region_name: str | None = None
    credentials: Credentials | None = field(default=None, repr=False)
    endpoint_url: str | None = None
    prefix: str | None = None
    host_path: str | None = None

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        if self.endpoint_url is not None:
            shown["endpoint_url"] = mask_endpoint(self.endpoint_url)
        return f"S3Config({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


@dataclass(frozen=True)
class OtherBrokerConfig(BrokerConfig):
    """Settings of a third-party broker type (registered through the ``brokers.brokers`` entry points)."""

    type: ClassVar[str] = ""
    broker_type: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self, *, mask: bool = True) -> dict[str, Any]:
        """Return the ``broker`` object as JSON data."""
        data = {"type": self.broker_type, **self.options}
        return mask_secrets(data) if mask else data


BUILTIN_CONFIGS: dict[str, type[BrokerConfig]] = {"host": HostConfig, "nfs": NfsConfig, "s3": S3Config}


@dataclass(frozen=True)
class WorkspaceConfiguration:
    """A validated workspace configuration."""

    broker: BrokerConfig
    version: str = NEWEST_VERSION
    workspace: str | None = None

    @property
    def broker_type(self) -> str:
        """The broker type, e.g. ``"host"``."""
        return self.broker.broker_type if isinstance(self.broker, OtherBrokerConfig) else self.broker.type

    def to_dict(self, *, mask: bool = True) -> dict[str, Any]:
        """Return the configuration as JSON data, secrets masked unless ``mask=False``."""
        data: dict[str, Any] = {"version": self.version}
        if self.workspace is not None:
            data["workspace"] = self.workspace
        data["broker"] = self.broker.to_dict(mask=mask)
        return data

    @classmethod
    def from_valid_dict(cls, data: Mapping[str, Any]) -> WorkspaceConfiguration:
        """Build from JSON data that has already passed validation."""
        broker = dict(data["broker"])
        kind = broker.pop("type")
        config_cls = BUILTIN_CONFIGS.get(kind)
        config: BrokerConfig
        if config_cls is None:
            config = OtherBrokerConfig(total_size=broker.get("total_size"), broker_type=kind, options=broker)
        else:
            if "credentials" in broker:
                broker["credentials"] = Credentials(**broker["credentials"])
            if "mount_options" in broker:
                broker["mount_options"] = tuple(broker["mount_options"])
            config = config_cls(**broker)
        return cls(broker=config, version=data.get("version", NEWEST_VERSION), workspace=data.get("workspace"))
