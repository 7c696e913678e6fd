"""The S3 error edge: one table turns botocore/boto3 failures into :mod:`brokers.errors` exceptions.

Every S3 call of :class:`~brokers.backends.s3.S3Broker` runs inside :func:`s3_errors`, so no botocore exception escapes
as anything but a :class:`~brokers.errors.BrokerError` (always chained with ``raise ... from exc``). Messages
name the bucket and the workspace path, and for a connection that failed the endpoint (without user info),
never a key or a secret. Transient failures (5xx, throttling, connection resets, timeouts) have already been
retried with backoff by botocore's retry handler (see :mod:`brokers.backends.s3.client`); what reaches this
table has exhausted its attempts and becomes :class:`~brokers.errors.StorageUnavailable`. A refused connection
or an unknown host is not retried at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from ...config.endpoints import parse_endpoint
from ...errors import AccessDenied, BrokerError, FileNotFound, IntegrityError, StorageUnavailable
from .client import final_connection_failure

__all__ = ["ERROR_TABLE", "error_code", "s3_errors", "translate"]

_NOT_FOUND = "not_found"
_DENIED = "denied"
_NO_BUCKET = "no_bucket"
_TRANSIENT = "transient"
_INTEGRITY = "integrity"
_CHANGED = "changed"

ERROR_TABLE: dict[str, str] = {
    "NoSuchKey": _NOT_FOUND,
    "404": _NOT_FOUND,
    "NotFound": _NOT_FOUND,
    "AccessDenied": _DENIED,
    "403": _DENIED,
    "Forbidden": _DENIED,
    "InvalidAccessKeyId": _DENIED,
    "SignatureDoesNotMatch": _DENIED,
    "AllAccessDisabled": _DENIED,
    "AccountProblem": _DENIED,
    "ExpiredToken": _DENIED,
    "InvalidToken": _DENIED,
    "NoSuchBucket": _NO_BUCKET,
    "InternalError": _TRANSIENT,
    "ServiceUnavailable": _TRANSIENT,
    "SlowDown": _TRANSIENT,
    "Throttling": _TRANSIENT,
    "ThrottlingException": _TRANSIENT,
    "RequestTimeout": _TRANSIENT,
    "RequestTimeTooSkewed": _TRANSIENT,
    "500": _TRANSIENT,
    "502": _TRANSIENT,
    "503": _TRANSIENT,
    "504": _TRANSIENT,
    "BadDigest": _INTEGRITY,
    "InvalidDigest": _INTEGRITY,
    "XAmzContentSHA256Mismatch": _INTEGRITY,
    "PreconditionFailed": _CHANGED,
    "412": _CHANGED,
}
"""S3 error code (or HTTP status as text) → kind of failure; anything else is a plain :class:`BrokerError`."""


def error_code(exc: ClientError) -> str:
    """Return the S3 error code of a ``ClientError`` (the HTTP status as text when the body had none)."""
    code = str(exc.response.get("Error", {}).get("Code") or "")
    return code or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _status(exc: ClientError) -> int:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status if isinstance(status, int) else 0


def translate(exc: BaseException, *, bucket: str, path: str | None = None,
              action: str = "access") -> BrokerError:
    """Return the :class:`BrokerError` for a botocore failure (the caller raises it ``from exc``).

    Args:
        exc: The exception raised by boto3/botocore (or already a ``BrokerError``, returned unchanged).
        bucket: The bucket, named in the message.
        path: The workspace path concerned, if any.
        action: What was being done (``"read"``, ``"write"``...), for the message.
    """
    if isinstance(exc, BrokerError):
        return exc
    where = f"s3://{bucket}" + (f" ({path})" if path else "")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = _status(exc)
        kind = ERROR_TABLE.get(code) or ERROR_TABLE.get(str(status))
        if kind is None and status >= 500:
            kind = _TRANSIENT
        if kind == _NOT_FOUND:
            if path:
                return FileNotFound(path, f"no such file in the workspace (s3://{bucket})")
            return BrokerError(f"{action} failed on {where}: not found ({code})")
        if kind == _DENIED:
            return AccessDenied(f"access denied to bucket {bucket!r} during {action}"
                                f"{f' of {path}' if path else ''} ({code}); check the credentials and the "
                                "bucket policy")
        if kind == _NO_BUCKET:
            return BrokerError(f"bucket {bucket!r} does not exist (or is not visible with these credentials)")
        if kind == _TRANSIENT:
            return StorageUnavailable(f"{action} failed on {where}: the store kept failing after retries "
                                      f"({code})")
        if kind == _INTEGRITY:
            return IntegrityError(f"{action} failed on {where}: the store rejected the data's checksum "
                                  f"({code})")
        if kind == _CHANGED:
            return BrokerError(f"{action} failed on {where}: the object changed during the operation; "
                               "try again")
        return BrokerError(f"{action} failed on {where}: {code or 'error'} (HTTP {status})")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return AccessDenied(f"no usable S3 credentials for bucket {bucket!r} (none configured, and the AWS "
                            "credential chain found none)")
    if isinstance(exc, (BotoConnectionError, HTTPClientError, IncompleteReadError, ResponseStreamingError,
                        ConnectionError, TimeoutError)):
        endpoint = _endpoint_of(exc) or "the store"
        final = final_connection_failure(exc)
        if final:  # not retried: nothing listens there
            return StorageUnavailable(f"{action} failed on {where}: {endpoint} cannot be reached: {final} "
                                      "(check endpoint_url)")
        if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, TimeoutError)):
            return StorageUnavailable(f"{action} failed on {where}: {endpoint} did not answer in time, after "
                                      f"retries ({type(exc).__name__})")
        return StorageUnavailable(f"{action} failed on {where}: the connection to {endpoint} kept failing, "
                                  f"after retries ({type(exc).__name__})")
    if isinstance(exc, BotoCoreError):
        return BrokerError(f"{action} failed on {where}: {type(exc).__name__}")
    return BrokerError(f"{action} failed on {where}: {type(exc).__name__}")


def _endpoint_of(exc: BaseException) -> str | None:
    """Return ``scheme://host:port`` of the URL a botocore connection error names (never user info), or None."""
    url = getattr(exc, "kwargs", {}).get("endpoint_url")
    if not isinstance(url, str) or not url:
        return None
    try:
        return parse_endpoint(url).origin
    except ValueError:
        return None


def _is_stream_error(exc: BaseException) -> bool:
    """True for urllib3 errors raised while reading a response body (they are not botocore exceptions)."""
    module = type(exc).__module__
    return module.startswith("urllib3") or module.startswith("http.client")


@contextmanager
def s3_errors(*, bucket: str, path: str | None = None, action: str = "access") -> Iterator[None]:
    """Translate any boto3/botocore/urllib3 failure inside the block into a :class:`BrokerError`.

    Raises:
        BrokerError: Or one of its subclasses, chained to the original exception.
    """
    try:
        yield
    except BrokerError:
        raise
    except (ClientError, BotoCoreError, ConnectionError, TimeoutError) as exc:
        raise translate(exc, bucket=bucket, path=path, action=action) from exc
    except Exception as exc:
        if _is_stream_error(exc):
            raise StorageUnavailable(f"{action} failed on s3://{bucket}"
                                     f"{f' ({path})' if path else ''}: the connection broke "
                                     f"({type(exc).__name__})") from exc
        raise
