"""Service settings: where the database is, who may write, how usage is refreshed, which S3 endpoints it reaches."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from brokers.config import AccessPolicy

__all__ = ["Settings", "default_database_url", "hide_password", "normalize_database_url"]

_PASSWORD = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")


def hide_password(url: str) -> str:
    """Return a database URL with its password replaced by ``***`` (for logs and messages)."""
    return _PASSWORD.sub(r"\1:***@", url)


def default_database_url() -> str:
    """Return the embedded default: a SQLite file ``$XDG_DATA_HOME/brokers/brokers.db``.

    ``XDG_DATA_HOME`` defaults to ``~/.local/share``. The directory is created when the service starts.
    """
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return "sqlite:///" + str(Path(base) / "brokers" / "brokers.db")


def normalize_database_url(url: str) -> str:
    """Point ``postgresql://`` and ``postgres://`` URLs at the psycopg 3 driver installed with the extra."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@dataclass(frozen=True)
class Settings:
    """How the service runs.

    Attributes:
        database_url: SQLAlchemy URL; ``None`` means :func:`default_database_url`.
        tokens: Access tokens accepted in the ``X-Access-Token`` header. Without any, the service is read-only.
        public_reads: Let reads (list, details, validation) through without a token.
        secret_keys: Fernet keys (or passphrases) encrypting S3 secrets at rest; the first encrypts, all
            decrypt (key rotation). Empty: secrets are stored as given.
        usage_interval: Seconds between two measurements of a workspace's usage.
        usage_timeout: Seconds after which a measurement in progress stops holding a worker slot.
        usage_workers: How many measurements may run at once; 0 turns measuring off.
        check_access: Let validation try to reach the store (the S3 ``bucket_access`` warning).
        s3_endpoint_allow: Patterns of the custom S3 ``endpoint_url`` values the service may contact (validation,
            usage), matched on scheme, host and port (see :class:`~brokers.config.AccessPolicy`). Empty: none;
            configurations without ``endpoint_url`` (AWS) are always allowed.
        s3_ambient_credentials: Let the service sign requests of configurations without keys with its own
            identity (the AWS credential chain). Off: they are checked and measured anonymously.
        nfs_server_allow: NFS servers the service may connect to itself (direct mode, as its own uid/gid):
            host names, IPs, ``*.domain`` or ``*``. Empty: none; exports mounted on the service's machine are
            always used.
        high_disk_usage: The fraction of ``total_size`` above which the management API reports
            ``high_disk_usage: 1`` (0.9: more than 90 % used).

    Raises:
        ValueError: An endpoint pattern is not valid.
    """

    database_url: str | None = None
    tokens: tuple[str, ...] = ()
    public_reads: bool = False
    secret_keys: tuple[str, ...] = ()
    usage_interval: float = 300.0
    usage_timeout: float = 60.0
    usage_workers: int = 4
    check_access: bool = True
    s3_endpoint_allow: tuple[str, ...] = ()
    s3_ambient_credentials: bool = False
    nfs_server_allow: tuple[str, ...] = ()
    high_disk_usage: float = 0.9
    access_policy: AccessPolicy = field(init=False, repr=False, compare=False)
    """What the service's brokers may reach (built from the two fields above; the patterns are checked here)."""

    def __post_init__(self) -> None:
        if not 0 < self.high_disk_usage <= 1:
            raise ValueError(f"high_disk_usage must be a fraction in (0, 1], not {self.high_disk_usage!r}")
        object.__setattr__(self, "s3_endpoint_allow", tuple(self.s3_endpoint_allow))
        object.__setattr__(self, "nfs_server_allow", tuple(self.nfs_server_allow))
        object.__setattr__(self, "access_policy", AccessPolicy(endpoint_allow=self.s3_endpoint_allow,
                                                               ambient_credentials=self.s3_ambient_credentials,
                                                               nfs_server_allow=self.nfs_server_allow))

    def __repr__(self) -> str:
        return (f"Settings(database_url={hide_password(self.url)!r}, tokens=<{len(self.tokens)}>, "
                f"public_reads={self.public_reads}, "
                f"secret_keys=<{len(self.secret_keys)}>, usage_interval={self.usage_interval}, "
                f"usage_timeout={self.usage_timeout}, usage_workers={self.usage_workers}, "
                f"s3_endpoint_allow={self.s3_endpoint_allow!r}, "
                f"s3_ambient_credentials={self.s3_ambient_credentials}, "
                f"nfs_server_allow={self.nfs_server_allow!r}, high_disk_usage={self.high_disk_usage})")

    @property
    def url(self) -> str:
        """The database URL to connect to (default applied, driver normalised)."""
        return normalize_database_url(self.database_url or default_database_url())
