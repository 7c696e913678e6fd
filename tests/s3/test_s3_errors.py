"""Failure paths against the real server: errors injected by the recording middleware in front of moto.

The injected answers travel through botocore's real retry handler and parsers, so what is tested is what a
broker does with a store that refuses, throttles, breaks or corrupts.
"""

from __future__ import annotations

import socket
import struct
import threading

import pytest
from botocore.exceptions import ClientError
from botocore.retries import standard

import brokers
from brokers.backends.s3 import S3Broker
from brokers.errors import AccessDenied, BrokerError, FileNotFound, IntegrityError, StorageUnavailable
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY, free_port

from .test_s3_broker import SMALL_PARTS, MiB, pattern

pytestmark = pytest.mark.s3


def no_uploads(s3_client, bucket):
    return s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def broker_with(s3_config, attempts, **overrides):
    cfg = {**s3_config, "broker": {**s3_config["broker"], **overrides}}
    return S3Broker(brokers.load_configuration(cfg), transfer=SMALL_PARTS, retry_attempts=attempts)


def test_missing_key_is_file_not_found(s3_broker):
    with pytest.raises(FileNotFound) as info:
        s3_broker.read_bytes("nope/x.bin")
    assert isinstance(info.value, FileNotFoundError) and "nope/x.bin" in str(info.value)
    assert isinstance(info.value.__cause__, ClientError)


def test_missing_bucket_names_the_bucket(make_s3_broker):
    broker = make_s3_broker(bucket_name="brokers-no-such-bucket")
    for action in (lambda: broker.read_bytes("x"), lambda: list(broker.list()),
                   lambda: broker.write_bytes("x", b"1")):
        with pytest.raises(BrokerError, match="brokers-no-such-bucket") as info:
            action()
        assert not isinstance(info.value, FileNotFound)


@pytest.mark.parametrize("code", ["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"])
def test_refusals_are_access_denied_naming_the_bucket(s3_broker, s3_server, s3_bucket, code):
    s3_broker.write_bytes("f", b"1")
    s3_server.inject(lambda r: r.by_broker, status=403, code=code)
    for action in (lambda: s3_broker.read_bytes("f"), lambda: s3_broker.info("f"),
                   lambda: list(s3_broker.list()), lambda: s3_broker.write_bytes("g", b"2"),
                   lambda: s3_broker.usage()):
        with pytest.raises(AccessDenied) as info:
            action()
        assert s3_bucket in str(info.value) and SECRET_KEY not in str(info.value)
        assert ACCESS_KEY not in str(info.value) and isinstance(info.value, PermissionError)
        assert info.value.__cause__ is not None


def test_transient_failure_is_retried(s3_broker, s3_server):
    s3_broker.write_bytes("f", b"data")
    s3_server.inject(lambda r: r.by_broker and r.method == "GET", status=503, code="SlowDown", times=1)
    mark = s3_server.mark()
    assert s3_broker.read_bytes("f") == b"data"
    assert [r.status for r in s3_server.since(mark)] == [503, 200]


def test_persistent_failure_becomes_storage_unavailable_after_bounded_retries(s3_config, s3_server):
    broker = broker_with(s3_config, attempts=3)
    broker.write_bytes("f", b"data")
    s3_server.inject(lambda r: r.by_broker and r.method == "GET", status=500, code="InternalError")
    mark = s3_server.mark()
    with pytest.raises(StorageUnavailable) as info:
        broker.read_bytes("f")
    assert isinstance(info.value, ConnectionError) and isinstance(info.value.__cause__, ClientError)
    assert len(s3_server.since(mark)) == 3


def count_attempts(broker) -> list[str]:
    sent: list[str] = []
    broker.client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    return sent


@pytest.fixture
def fast_backoff(monkeypatch):
    """botocore's standard retry waits up to 1 s, 2 s...: the same jittered doubling, from 20 ms."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount",
                        lambda self, context: self._random() * 0.02 * (2 ** (context.attempt_number - 1)))


def test_refused_connection_fails_at_once_naming_the_endpoint(s3_config):
    port = free_port()
    broker = broker_with(s3_config, attempts=5, endpoint_url=f"http://user:pa55word@127.0.0.1:{port}")
    attempts = count_attempts(broker)
    for action in (lambda: broker.read_bytes("f"), lambda: broker.write_bytes("f", b"1"),
                   lambda: list(broker.list()), lambda: broker.usage()):
        attempts.clear()
        with pytest.raises(StorageUnavailable) as info:
            action()
        message = str(info.value)
        assert f"http://127.0.0.1:{port}" in message and "refused" in message, message
        assert "pa55word" not in message and "user" not in message
        assert len(attempts) == 1, f"a refused connection was tried {len(attempts)} times"


def test_a_live_endpoint_that_resets_connections_is_retried(s3_config, fast_backoff):
    """Only a refusal is final: a server that accepts and then drops the connection is asked again."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        stop = threading.Event()

        def drop_everyone() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()  # RST

        thread = threading.Thread(target=drop_everyone, daemon=True)
        thread.start()
        port = server.getsockname()[1]
        broker = broker_with(s3_config, attempts=3, endpoint_url=f"http://127.0.0.1:{port}")
        attempts = count_attempts(broker)
        try:
            with pytest.raises(StorageUnavailable) as info:
                broker.read_bytes("f")
        finally:
            stop.set()
            server.shutdown(socket.SHUT_RDWR)
    assert len(attempts) == 3
    assert f"http://127.0.0.1:{port}" in str(info.value)


def test_interrupted_multipart_upload_leaves_no_parts(s3_config, s3_server, s3_client, s3_bucket):
    broker = broker_with(s3_config, attempts=2)
    broker.write_bytes("f", b"old")
    s3_server.inject(lambda r: r.by_broker and "partNumber=3" in r.query, status=403, code="AccessDenied")
    with pytest.raises(AccessDenied):
        broker.write_bytes("f", pattern(16 * MiB))
    assert no_uploads(s3_client, s3_bucket)
    assert broker.read_bytes("f") == b"old"


def test_interrupted_file_upload_leaves_no_parts(s3_config, s3_server, s3_client, s3_bucket, tmp_path):
    broker = broker_with(s3_config, attempts=2)
    local = tmp_path / "big"
    local.write_bytes(pattern(16 * MiB))
    s3_server.inject(lambda r: r.by_broker and "partNumber=2" in r.query, status=500, code="InternalError")
    with pytest.raises(StorageUnavailable):
        broker.upload(local, "f")
    assert no_uploads(s3_client, s3_bucket)
    assert not broker.exists("f")


def test_rejected_checksum_is_integrity_error(s3_broker, s3_server, s3_client, s3_bucket):
    s3_server.inject(lambda r: r.by_broker and r.method == "PUT", status=400, code="BadDigest")
    with pytest.raises(IntegrityError):
        s3_broker.write_bytes("f", b"data")
    assert "Contents" not in s3_client.list_objects_v2(Bucket=s3_bucket)


def test_corrupted_download_is_integrity_error(s3_broker, s3_server, tmp_path):
    s3_broker.write_bytes("f", pattern(MiB))
    s3_server.inject(lambda r: r.by_broker and r.method == "GET", corrupt=True, times=1)
    with pytest.raises(IntegrityError, match="hash"):
        s3_broker.download("f", tmp_path / "f")
    assert not (tmp_path / "f").exists()


def test_failed_copy_keeps_the_source(s3_broker, s3_server, s3_client, s3_bucket):
    s3_broker.write_bytes("src", b"precious")
    s3_server.inject(lambda r: "x-amz-copy-source" in r.headers, status=403, code="AccessDenied")
    with pytest.raises(AccessDenied):
        s3_broker.move("src", "dst")
    assert s3_broker.read_bytes("src") == b"precious"
    assert not s3_broker.exists("dst")


def test_failed_multipart_copy_keeps_the_source_and_leaves_no_parts(s3_config, s3_server, s3_client,
                                                                    s3_bucket):
    broker = broker_with(s3_config, attempts=2)
    data = pattern(16 * MiB, seed=9)
    s3_client.put_object(Bucket=s3_bucket, Key="ws/src", Body=data)
    s3_server.inject(lambda r: "partNumber=2" in r.query and "x-amz-copy-source" in r.headers,
                     status=500, code="InternalError")
    with pytest.raises(StorageUnavailable):
        broker.move("src", "dst")
    assert broker.read_bytes("src") == data
    assert not broker.exists("dst")
    assert no_uploads(s3_client, s3_bucket)


def test_copy_that_cannot_be_checked_keeps_the_source(s3_broker, s3_server):
    s3_broker.write_bytes("src", b"precious")
    s3_server.inject(lambda r: r.method == "HEAD" and r.path.endswith("/ws/dst"), status=404, code="404")
    with pytest.raises(BrokerError):
        s3_broker.move("src", "dst")
    assert s3_broker.read_bytes("src") == b"precious"


def test_stores_rejecting_new_checksum_headers_still_work(make_s3_broker, s3_server, tmp_path):
    """A store that refuses x-amz-checksum-* / x-amz-sdk-checksum-algorithm (older MinIO, Ceph...)."""
    rule = s3_server.inject(lambda r: any(h.startswith(("x-amz-checksum-", "x-amz-sdk-checksum"))
                                          for h in r.headers), status=400, code="InvalidArgument")
    broker = make_s3_broker()
    broker.transfer = SMALL_PARTS
    broker.write_bytes("small", b"s")
    broker.write_bytes("big", pattern(11 * MiB))
    broker.move("big", "big2")
    broker.move("small", "small2")
    assert broker.read_bytes("big2", 5, 10) == pattern(11 * MiB)[5:10]
    broker.download("big2", tmp_path / "big2")
    broker.delete("small2")
    assert broker.delete_all() == 1
    assert rule.hits == 0


def test_validation_warns_when_the_bucket_cannot_be_reached(s3_config, monkeypatch):
    from brokers.backends.s3 import broker as s3_broker_module

    attempts: list[str] = []
    real_build = s3_broker_module.build_client

    def counting_build(*args, **kwargs):
        client = real_build(*args, **kwargs)
        client.meta.events.register("before-send.s3", lambda request, **_: attempts.append(request.method))
        return client

    monkeypatch.setattr(s3_broker_module, "build_client", counting_build)
    cfg = {**s3_config, "broker": {**s3_config["broker"], "endpoint_url": f"http://127.0.0.1:{free_port()}"}}
    result = brokers.validate_configuration(cfg).to_dict()
    assert result["is_valid"] is True
    warning = next(w for w in result["warnings"] if w["name"] == "bucket_access")
    assert warning["path"] == "/broker/bucket_name"
    assert s3_config["broker"]["bucket_name"] in warning["description"]
    assert attempts == ["HEAD"], "a refused connection is not tried again"
    assert SECRET_KEY not in str(result) and ACCESS_KEY not in str(result)


def test_validation_warns_about_a_missing_bucket_but_not_a_good_one(s3_config):
    good = brokers.validate_configuration(s3_config).to_dict()
    assert [w["name"] for w in good["warnings"] if w["name"] == "bucket_access"] == []
    cfg = {**s3_config, "broker": {**s3_config["broker"], "bucket_name": "brokers-absent-bucket"}}
    bad = brokers.validate_configuration(cfg).to_dict()
    warning = next(w for w in bad["warnings"] if w["name"] == "bucket_access")
    assert "does not exist" in warning["description"] and "brokers-absent-bucket" in warning["description"]


def test_validation_warns_on_refused_credentials(s3_config, s3_server):
    s3_server.inject(lambda r: r.method == "HEAD", status=403, code="403")
    result = brokers.validate_configuration(s3_config).to_dict()
    warning = next(w for w in result["warnings"] if w["name"] == "bucket_access")
    assert "access denied with these credentials" in warning["description"]
