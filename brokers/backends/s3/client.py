"""The boto3 client of an S3 broker: settings, fork safety, and where credentials are kept.

One client per broker, shared by its threads (boto3 clients are thread-safe once built; building is not, so
it happens under a lock). A process that forks gets a new client on first use in the child (urllib3
connection pools must not be shared across processes).

Credentials never travel with a pickled broker. :func:`remember_credentials` files them in a process-local
registry under an opaque random token; the pickle carries only the token. Unpickling in the same process (or
in a child forked after the broker was built, which inherits the registry) finds the keys again; anywhere
else the token is unknown and the broker falls back to the standard AWS credential chain (environment,
profile, instance role), logging that it does so. The registry holds weak references: keys live as long as a
broker using them does.

A client built with ``ambient=False`` (an :class:`~brokers.config.AccessPolicy` without ambient credentials)
and no configured keys is anonymous: botocore's ``UNSIGNED`` signature, under which it never consults the
credential chain. The endpoint a client is given is :func:`~brokers.config.endpoints.client_endpoint`'s: the
checked scheme, host, port and path, never user info.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import secrets
import socket
import threading
import weakref
from typing import TYPE_CHECKING, Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config

from ...config import MASK, Credentials, S3Config
from ...config.endpoints import client_endpoint, safe_endpoint
from ...errors import BrokerError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "USER_AGENT",
    "ClientHolder",
    "RedactKeys",
    "build_client",
    "client_config",
    "final_connection_failure",
    "install_log_redaction",
    "recall_credentials",
    "remember_credentials",
    "safe_endpoint",
]

log = logging.getLogger("brokers.s3")

USER_AGENT = "brokers-s3/1"
"""Appended to the User-Agent of every request a broker makes (lets a server tell them apart)."""

_REGISTRY: weakref.WeakValueDictionary[str, Credentials] = weakref.WeakValueDictionary()
_REGISTRY_LOCK = threading.Lock()


def remember_credentials(credentials: Credentials) -> str:
    """File credentials in the process-local registry; return the opaque token that finds them again."""
    token = secrets.token_hex(16)
    with _REGISTRY_LOCK:
        _REGISTRY[token] = credentials
    return token


def recall_credentials(token: str | None) -> Credentials | None:
    """Return the credentials filed under ``token`` in this process, or None."""
    if not token:
        return None
    with _REGISTRY_LOCK:
        return _REGISTRY.get(token)


def client_config(*, connect_timeout: float = 10.0, read_timeout: float = 60.0, attempts: int = 5,
                  pool: int = 16, path_style: bool = False) -> Config:
    """Return the botocore settings of a broker client.

    Retries use botocore's ``standard`` mode (exponential backoff with jitter on 5xx, throttling, connection
    errors and timeouts) with a bounded number of attempts; a refused connection or an unknown host is not
    retried (:func:`final_connection_failure`, hooked in by :func:`build_client`). Checksums are computed only
    where an operation requires them, so stores that reject the newer ``x-amz-checksum-*`` headers keep
    working; the broker sends ``Content-MD5`` itself (see :mod:`brokers._s3_transfer`).

    Args:
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait for data on an open connection.
        attempts: Total attempts per request (first try included).
        pool: Size of the HTTP connection pool (at least the number of concurrent transfers).
        path_style: Address buckets as ``endpoint/bucket`` (S3-compatible stores) rather than by host name.
    """
    return Config(
        signature_version="s3v4",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": attempts},
        max_pool_connections=pool,
        tcp_keepalive=True,
        user_agent_extra=USER_AGENT,
        s3={"addressing_style": "path" if path_style else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def build_client(config: S3Config, credentials: Credentials | None, settings: Config, *,
                 ambient: bool = True) -> S3Client:
    """Return a new boto3 S3 client for a bucket configuration (its own session: no global state).

    Args:
        config: The bucket's configuration (region, endpoint).
        credentials: The configured keys; None: the AWS credential chain, or anonymous with ``ambient=False``.
        settings: botocore settings (:func:`client_config`).
        ambient: Let botocore find this process's own credentials when none are configured.

    Raises:
        BrokerError: ``endpoint_url`` is not a usable http(s) URL (named without its user info).
    """
    kwargs: dict[str, Any] = {}
    if credentials is not None:
        kwargs = {"aws_access_key_id": credentials.access_key_id,
                  "aws_secret_access_key": credentials.secret_access_key}
    elif not ambient:
        settings = settings.merge(Config(signature_version=UNSIGNED))
    try:
        endpoint = client_endpoint(config.endpoint_url)
    except ValueError as exc:
        raise BrokerError(f"broker.endpoint_url of s3://{config.bucket_name} is not usable: {exc}") from None
    session = boto3.session.Session(region_name=config.region_name, **kwargs)
    client: S3Client = session.client("s3", endpoint_url=endpoint, config=settings)
    client.meta.events.register("before-sign.s3.DeleteObjects", _content_md5_instead_of_crc)
    # the stubs type handlers as returning None; botocore reads a needs-retry handler's answer
    client.meta.events.register_first("needs-retry.s3", _no_retry_when_nothing_listens)  # type: ignore[arg-type]
    return client


def final_connection_failure(exc: BaseException | None) -> str | None:
    """Say why a connection can never succeed (``"connection refused"``, ``"unknown host"``), else None.

    A refused connection or a host name that does not exist is not worth retrying with backoff; a timeout, a
    reset or a 5xx from a live server is.
    """
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_NONAME:
            return "unknown host"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _no_retry_when_nothing_listens(caught_exception: BaseException | None = None, **_: Any) -> bool | None:
    """``needs-retry`` hook, run before botocore's retry handler: ``False`` (do not retry) when nothing listens."""
    return False if final_connection_failure(caught_exception) else None


def _content_md5_instead_of_crc(request: Any, **_: Any) -> None:
    """Send DeleteObjects with ``Content-MD5`` rather than ``x-amz-checksum-crc32``.

    DeleteObjects must carry a checksum; botocore >= 1.36 picks CRC32, which older S3-compatible stores
    reject.
    ``Content-MD5`` is accepted by AWS and by every S3-compatible store.
    """
    body = request.body
    if not isinstance(body, (bytes, bytearray)):
        return
    for name in list(request.headers.keys()):
        lowered = name.lower()
        if lowered.startswith("x-amz-checksum-") or lowered == "x-amz-sdk-checksum-algorithm":
            del request.headers[name]
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    request.headers["Content-MD5"] = base64.b64encode(digest).decode("ascii")


_CREDENTIAL_FIELD = re.compile(
    r"(Credential=|<AWSAccessKeyId>|aws_access_key_id['\"]?\s*[:=]\s*['\"]?)[^/,\s'\"<]+")


class RedactKeys(logging.Filter):
    """Masks access key ids (``Credential=AKIA...``) and any registered key in botocore's DEBUG records.

    botocore logs each prepared request, Authorization header included, at DEBUG; the secret key itself is
    never sent, but the access key id is. Installed once on the few botocore/aiobotocore loggers that log
    requests and responses; it only runs for records that are actually emitted (DEBUG enabled).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with keys masked; never drops a record."""
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is left to the handler
            return True
        redacted = _CREDENTIAL_FIELD.sub(lambda m: m.group(1) + MASK, message)
        with _REGISTRY_LOCK:
            known = list(_REGISTRY.values())
        for credentials in known:
            redacted = redacted.replace(credentials.secret_access_key, MASK)
            redacted = redacted.replace(credentials.access_key_id, MASK)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACTED_LOGGERS = ("botocore.endpoint", "botocore.parsers", "botocore.auth", "botocore.hooks",
                     "botocore.retryhandler", "botocore.credentials", "aiobotocore.endpoint", "s3fs")


def install_log_redaction() -> None:
    """Attach :class:`RedactKeys` to the loggers that may print keys (idempotent)."""
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in logger.filters):
            logger.addFilter(RedactKeys())


install_log_redaction()


class ClientHolder:
    """Builds a broker's boto3 client lazily, once per process, and hands it to every thread."""

    def __init__(self, config: S3Config, credentials: Credentials | None, settings: Config, *,
                 ambient: bool = True) -> None:
        self._config = config
        self._credentials = credentials
        self._settings = settings
        self._ambient = ambient
        self._lock = threading.Lock()
        self._client: S3Client | None = None
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"<ClientHolder s3://{self._config.bucket_name}>"

    def __reduce__(self) -> Any:
        raise TypeError("a ClientHolder cannot be pickled (it holds credentials)")

    def get(self) -> S3Client:
        """Return the client, building it on first use in this process."""
        pid = os.getpid()
        if pid != self._pid:  # forked: never reuse the parent's connection pool (or its lock)
            self._lock = threading.Lock()
            self._client = None
            self._pid = pid
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = build_client(self._config, self._credentials, self._settings,
                                                ambient=self._ambient)
                client = self._client
        return client
