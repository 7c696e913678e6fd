"""Service settings: where the database and the job queue are, who may write, which stores it may reach."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from brokers.config import AccessPolicy

__all__ = ["QUEUE_SCHEMES", "Settings", "check_queue_url", "check_smtp_url", "default_database_url", "hide_password",
           "normalize_database_url"]

QUEUE_SCHEMES = ("redis", "rediss", "unix", "sqlite", "memory")
"""The job queue URLs the service takes (see :mod:`brokers.service.jobs.queue`)."""

_PASSWORD = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")


def hide_password(url: str) -> str:
    """Return a database URL with its password replaced by ``***`` (for logs and messages)."""
    return _PASSWORD.sub(r"\1:***@", url)


def check_queue_url(url: str | None) -> str | None:
    """Return the URL if it names a queue this service speaks.

    Raises:
        ValueError: Another scheme (the message lists the ones it takes).
    """
    if url is None or url == "":
        return None
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in QUEUE_SCHEMES:
        raise ValueError(f"the job queue URL must start with redis://, rediss://, unix://, sqlite:/// or "
                         f"memory:// (got {url.split('://', 1)[0] if '://' in url else 'no scheme'!r})")
    return url


def check_smtp_url(url: str) -> str:
    """Return the URL if it names an SMTP server.

    Raises:
        ValueError: Not ``smtp://`` or ``smtps://`` with a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("the SMTP URL must look like smtp://[USER:PASSWORD@]HOST[:PORT] or smtps://...")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("the SMTP URL has a port that is not a number") from None
    return url


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
        usage_interval: Seconds after which a workspace gets a periodic usage scan (a job); 0 turns them off.
        queue_url: The job queue: None for the embedded SQLite file ``queue.db`` in :attr:`data_dir`,
            ``redis://HOST:PORT/N`` for workers on other machines (``brokers worker``).
        job_workers: Jobs this process runs at once (0: it only sends them, to ``brokers worker`` processes).
        job_lease: Seconds a worker's claim on a job lasts unless renewed (a dead worker's job is retried after).
        job_heartbeat: Seconds between two renewals; a cancel is noticed within about this time.
        job_attempts: Runs a job gets when the workers running it die.
        job_resend: Seconds after which a waiting job's message counts as lost and is sent again.
        smtp_url: ``smtp://[USER:PASSWORD@]HOST[:PORT]`` (or ``smtps://``) for notification mails; None: no mail.
        mail_from: The ``From`` address of notification mails.
        data_dir: The data folder (the embedded queue); None: the SQLite database's folder, or
            ``$XDG_DATA_HOME/brokers``.
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
    queue_url: str | None = None
    job_workers: int = 2
    job_lease: float = 30.0
    job_heartbeat: float = 0.5
    job_attempts: int = 3
    job_resend: float = 60.0
    smtp_url: str | None = None
    mail_from: str = "brokers@localhost"
    data_dir: Path | None = None
    check_access: bool = True
    s3_endpoint_allow: tuple[str, ...] = ()
    s3_ambient_credentials: bool = False
    nfs_server_allow: tuple[str, ...] = ()
    high_disk_usage: float = 0.9
    access_policy: AccessPolicy = field(init=False, repr=False, compare=False)
    """What the service's brokers may reach (built from the two fields above; the patterns are checked here)."""

    def __post_init__(self) -> None:
        if self.job_workers < 0 or self.job_attempts < 1 or min(self.job_lease, self.job_heartbeat) <= 0:
            raise ValueError("job_workers must be >= 0, job_attempts >= 1, job_lease and job_heartbeat > 0")
        if self.job_heartbeat * 3 > self.job_lease:
            raise ValueError(f"job_lease ({self.job_lease:g} s) must be at least three heartbeats "
                             f"({self.job_heartbeat:g} s each), or a busy worker loses its jobs")
        check_queue_url(self.queue_url)
        if self.smtp_url is not None:
            check_smtp_url(self.smtp_url)
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
                f"queue_url={None if self.queue_url is None else hide_password(self.queue_url)!r}, "
                f"job_workers={self.job_workers}, "
                f"smtp_url={None if self.smtp_url is None else hide_password(self.smtp_url)!r}, "
                f"s3_endpoint_allow={self.s3_endpoint_allow!r}, "
                f"s3_ambient_credentials={self.s3_ambient_credentials}, "
                f"nfs_server_allow={self.nfs_server_allow!r}, high_disk_usage={self.high_disk_usage})")

    @property
    def data_folder(self) -> Path:
        """The data folder: :attr:`data_dir`, else the SQLite database's folder, else ``$XDG_DATA_HOME/brokers``."""
        if self.data_dir is not None:
            return Path(self.data_dir)
        url = self.url
        if url.startswith("sqlite:///") and ":memory:" not in url:
            return Path(url[len("sqlite:///"):]).parent
        return Path(default_database_url()[len("sqlite:///"):]).parent

    @property
    def url(self) -> str:
        """The database URL to connect to (default applied, driver normalised)."""
        return normalize_database_url(self.database_url or default_database_url())
