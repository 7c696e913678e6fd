"""Pure unit tests of the S3 helpers: the error table, ETag arithmetic, log redaction (no server needed)."""

from __future__ import annotations

import hashlib
import logging
import socket

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from brokers.backends.s3.client import RedactKeys, final_connection_failure, remember_credentials, safe_endpoint
from brokers.backends.s3.errors import s3_errors, translate
from brokers.backends.s3.transfer import ETagHasher
from brokers.config import Credentials
from brokers.errors import AccessDenied, BrokerError, FileNotFound, IntegrityError, StorageUnavailable


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "GetObject")


@pytest.mark.parametrize(("code", "status", "kind"), [
    ("NoSuchKey", 404, FileNotFound), ("404", 404, FileNotFound),
    ("AccessDenied", 403, AccessDenied), ("InvalidAccessKeyId", 403, AccessDenied),
    ("SignatureDoesNotMatch", 403, AccessDenied), ("403", 403, AccessDenied),
    ("SlowDown", 503, StorageUnavailable), ("InternalError", 500, StorageUnavailable),
    ("Whatever", 502, StorageUnavailable), ("BadDigest", 400, IntegrityError),
    ("NoSuchBucket", 404, BrokerError), ("InvalidArgument", 400, BrokerError),
])
def test_error_table(code, status, kind):
    err = translate(client_error(code, status), bucket="bkt", path="a/b")
    assert type(err) is kind
    if kind in (AccessDenied,):
        assert "bkt" in str(err)
    if code == "NoSuchBucket":
        assert "bkt" in str(err) and "does not exist" in str(err)


@pytest.mark.parametrize("exc", [
    EndpointConnectionError(endpoint_url="http://x"), ConnectTimeoutError(endpoint_url="http://x"),
    ReadTimeoutError(endpoint_url="http://x"), ConnectionResetError(104, "reset"),
])
def test_connection_failures_are_storage_unavailable(exc):
    with pytest.raises(StorageUnavailable) as info, s3_errors(bucket="bkt", path="p", action="read"):
        raise exc
    assert info.value.__cause__ is exc


def test_other_botocore_errors_stay_broker_errors():
    with pytest.raises(AccessDenied), s3_errors(bucket="bkt"):
        raise NoCredentialsError()
    with pytest.raises(BrokerError), s3_errors(bucket="bkt"):
        raise ParamValidationError(report="bad")


def test_urllib3_stream_errors_are_storage_unavailable():
    from urllib3.exceptions import ProtocolError

    with pytest.raises(StorageUnavailable), s3_errors(bucket="bkt"):
        raise ProtocolError("Connection broken")


def test_etag_hasher_matches_s3_arithmetic():
    data = bytes(range(256)) * 4096 * 11  # 11 MiB
    single = ETagHasher()
    single.update(data)
    assert single.hexdigest() == hashlib.md5(data).hexdigest()
    part = 5 * 1024 * 1024
    multi = ETagHasher(part)
    for offset in range(0, len(data), 777_777):  # chunks that straddle part boundaries
        multi.update(data[offset:offset + 777_777])
    digests = b"".join(hashlib.md5(data[o:o + part]).digest() for o in range(0, len(data), part))
    assert multi.hexdigest() == f"{hashlib.md5(digests).hexdigest()}-3"
    exact = ETagHasher(part)
    exact.update(data[:2 * part])
    assert exact.hexdigest().endswith("-2")


# What an SSE-KMS or SSE-C ETag means for writes, reads and moves is tested against the real server, on an
# SSE-KMS bucket: tests/s3/test_s3_integrity.py.


def test_refused_and_unknown_hosts_are_final_timeouts_and_resets_are_not():
    def chained(outer: Exception, inner: BaseException) -> Exception:
        try:
            try:
                raise inner
            except BaseException as exc:
                raise outer from exc
        except Exception as exc:
            return exc

    refused = chained(EndpointConnectionError(endpoint_url="http://x"), ConnectionRefusedError(111, "refused"))
    unknown = chained(EndpointConnectionError(endpoint_url="http://x"),
                      socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    dns_down = chained(EndpointConnectionError(endpoint_url="http://x"),
                       socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"))
    reset = chained(EndpointConnectionError(endpoint_url="http://x"), ConnectionResetError(104, "reset"))
    assert final_connection_failure(refused) == "connection refused"
    assert final_connection_failure(unknown) == "unknown host"
    for transient in (dns_down, reset, ConnectTimeoutError(endpoint_url="http://x"), None):
        assert final_connection_failure(transient) is None


def test_log_redaction_masks_registered_keys_and_credential_fields():
    creds = Credentials("AKIAUNITTESTKEY0001", "unit-secret-value-0001")
    remember_credentials(creds)
    record = logging.LogRecord("botocore.endpoint", logging.DEBUG, __file__, 1,
                               "auth %s then %s", ("Credential=AKIAOTHERKEY/2026/us-east-1/s3",
                                                   "secret unit-secret-value-0001 and AKIAUNITTESTKEY0001"), None)
    assert RedactKeys().filter(record)
    text = record.getMessage()
    assert "AKIAOTHERKEY" not in text and "unit-secret-value-0001" not in text and "AKIAUNITTESTKEY0001" not in text
    assert "Credential=************/2026" in text


def test_safe_endpoint_drops_user_info():
    assert safe_endpoint("https://user:pw@minio.local:9000/") == "https://minio.local:9000/"
    assert safe_endpoint("http://127.0.0.1:9000") == "http://127.0.0.1:9000"
