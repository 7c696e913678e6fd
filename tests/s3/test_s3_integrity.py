"""What an ETag proves: writes, reads, copies and downloads on encrypted buckets, and stores that damage data.

S3 makes an object's ETag the MD5 of its bytes (``md5(part md5s)-N`` after a multipart upload) only when the
object is not encrypted with SSE-KMS or SSE-C: then the ETag still has 32 hex digits but is no digest of the
data. Every answer says which (``x-amz-server-side-encryption: aws:kms``, or the SSE-C customer algorithm).

moto keeps real SSE-KMS buckets (a KMS key of moto's KMS, the bucket's default encryption, ``aws:kms`` in each
answer) but answers MD5 ETags for them. :class:`AwsKmsETags`, a layer in front of moto for one bucket, gives
that bucket AWS's ETags: 32 hex digits that are not the MD5 (distinct per key, stable per version), with the
``aws:kms`` header on every object answer (moto omits it on CreateMultipartUpload and UploadPart); the ETags
clients send back (If-Match, CompleteMultipartUpload) are mapped to moto's own.

:class:`CorruptingStore` is the other way round: a store that damages what it is sent and still answers 200 (the
``Content-MD5`` header is dropped on the way, so moto cannot notice). Its ETags are then the MD5 of the damaged
bytes, a real mismatch that must still raise. :class:`MisdirectedCopy` is a store whose server-side copy copies
the wrong object.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from brokers.backends.s3.transfer import md5_etag
from brokers.errors import IntegrityError

from .test_s3_broker import SMALL_PARTS, MiB, body, pattern

pytestmark = pytest.mark.s3

_ETAG_IN_XML = re.compile(rb"(<ETag>(?:&quot;|&#34;|\")?)([0-9a-f]{32})((?:-\d+)?(?:&quot;|&#34;|\")?</ETag>)")
_HEX = re.compile(rb"[0-9a-f]{32}")


class AwsKmsETags:
    """WSGI layer: the object answers of one bucket get AWS's SSE-KMS ETags (not the MD5 of the data)."""

    def __init__(self, app: Any, bucket: str) -> None:
        self.app = app
        self.prefix = f"/{bucket}/"
        self.real: dict[str, str] = {}  # the ETag we answered -> moto's
        self.lock = threading.Lock()
        self.answered = 0

    def fake(self, where: str, real: str) -> str:
        tag = hashlib.md5(f"kms|{where}|{real}".encode()).hexdigest()
        with self.lock:
            self.real[tag] = real
            self.answered += 1
        return tag

    def unfake(self, data: bytes) -> bytes:
        with self.lock:
            return _HEX.sub(lambda m: self.real.get(m.group().decode(), m.group().decode()).encode(), data)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(self.prefix):
            return self.app(environ, start_response)
        query = environ.get("QUERY_STRING", "")
        where = path + ("|part" + query if "partNumber=" in query else "")
        for name in ("HTTP_IF_MATCH", "HTTP_X_AMZ_COPY_SOURCE_IF_MATCH"):
            if name in environ:
                environ[name] = self.unfake(environ[name].encode()).decode()
        rewrite_body = environ["REQUEST_METHOD"] == "POST" or "HTTP_X_AMZ_COPY_SOURCE" in environ
        if environ["REQUEST_METHOD"] == "POST" and "uploadId=" in query:  # CompleteMultipartUpload
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"] = io.BytesIO(self.unfake(environ["wsgi.input"].read(length)))

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            out = []
            for name, value in headers:
                if name.lower() == "etag":
                    real, _, parts = value.strip('"').partition("-")
                    value = f'"{self.fake(where, real)}{"-" + parts if parts else ""}"'
                out.append((name, value))
            if status.startswith("2") and not any(n.lower() == "x-amz-server-side-encryption" for n, _ in out):
                out.append(("x-amz-server-side-encryption", "aws:kms"))
            return start_response(status, out, exc_info)

        result = self.app(environ, start)
        if not rewrite_body:
            return result
        try:
            data = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        return iter([_ETAG_IN_XML.sub(lambda m: m.group(1) + self.fake(where, m.group(2).decode()).encode()
                                      + m.group(3), data)])


class CorruptingStore:
    """WSGI layer: uploads to keys ending in ``key_suffix`` lose their Content-MD5 and get one byte flipped."""

    def __init__(self, app: Any, key_suffix: str, query: str = "") -> None:
        self.app, self.key_suffix, self.query = app, key_suffix, query
        self.damaged = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        if (environ["REQUEST_METHOD"] == "PUT" and environ.get("PATH_INFO", "").endswith(self.key_suffix)
                and self.query in environ.get("QUERY_STRING", "") and "HTTP_X_AMZ_COPY_SOURCE" not in environ):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            data = bytearray(environ["wsgi.input"].read(length))
            if data:
                data[len(data) // 2] ^= 0x01
                self.damaged += 1
            environ["wsgi.input"] = io.BytesIO(bytes(data))
            environ.pop("HTTP_CONTENT_MD5", None)
        return self.app(environ, start_response)


class MisdirectedCopy:
    """WSGI layer: a CopyObject from ``source`` copies ``instead`` (a store that copies the wrong bytes)."""

    def __init__(self, app: Any, source: str, instead: str) -> None:
        self.app, self.source, self.instead = app, source, instead
        self.misdirected = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        if environ.get("HTTP_X_AMZ_COPY_SOURCE", "").endswith(self.source):
            environ["HTTP_X_AMZ_COPY_SOURCE"] = environ["HTTP_X_AMZ_COPY_SOURCE"][:-len(self.source)] + self.instead
            environ.pop("HTTP_X_AMZ_COPY_SOURCE_IF_MATCH", None)
            self.misdirected += 1
        return self.app(environ, start_response)


@pytest.fixture
def kms_bucket(s3_server, s3_client, s3_bucket, monkeypatch):
    """The test bucket with SSE-KMS by default (a key of moto's KMS) and AWS's ETags for its objects."""
    import boto3

    from tests.fixtures.s3 import ACCESS_KEY, REGION, SECRET_KEY

    kms = boto3.session.Session().client("kms", endpoint_url=s3_server.endpoint, region_name=REGION,
                                         aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    key_id = kms.create_key(Description="brokers test")["KeyMetadata"]["KeyId"]
    s3_client.put_bucket_encryption(Bucket=s3_bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}}]})
    layer = AwsKmsETags(s3_server.recorder.app, s3_bucket)
    monkeypatch.setattr(s3_server.recorder, "app", layer)
    return layer


def corrupting(s3_server, monkeypatch, key_suffix: str, query: str = "") -> CorruptingStore:
    layer = CorruptingStore(s3_server.recorder.app, key_suffix, query)
    monkeypatch.setattr(s3_server.recorder, "app", layer)
    return layer


def test_sse_kms_objects_have_etags_that_are_not_md5s(kms_bucket, s3_client, s3_bucket):
    """The premise: what AWS (and the layer above) answers for SSE-KMS objects."""
    s3_client.put_object(Bucket=s3_bucket, Key="ws/plain", Body=b"data")
    head = s3_client.head_object(Bucket=s3_bucket, Key="ws/plain")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"]
    tag = head["ETag"].strip('"')
    assert re.fullmatch("[0-9a-f]{32}", tag) and tag != hashlib.md5(b"data").hexdigest()
    assert md5_etag(head) is None


def test_writes_to_an_sse_kms_bucket_succeed_and_round_trip(kms_bucket, make_s3_broker, s3_client, s3_bucket,
                                                           tmp_path):
    broker = make_s3_broker()
    broker.transfer = SMALL_PARTS
    small, big = b"id,value\n1,alpha\n", pattern(12 * MiB, seed=11)
    broker.write_bytes("in/small.csv", small)  # one PUT
    broker.write_bytes("in/big.bin", big)  # a multipart upload of 3 parts
    with broker.open("in/streamed.bin", "wb") as f:
        f.write(big)
    local = tmp_path / "up.bin"
    local.write_bytes(big)
    broker.upload(local, "in/uploaded.bin")
    for key, data in [("small.csv", small), ("big.bin", big), ("streamed.bin", big), ("uploaded.bin", big)]:
        assert body(s3_client, s3_bucket, f"ws/in/{key}") == data, key
        assert s3_client.head_object(Bucket=s3_bucket, Key=f"ws/in/{key}")["ServerSideEncryption"] == "aws:kms"
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_reads_and_downloads_from_an_sse_kms_bucket(kms_bucket, make_s3_broker, s3_client, s3_bucket, tmp_path):
    broker = make_s3_broker()
    small, big = b"id,value\n1,alpha\n", pattern(12 * MiB, seed=12)
    s3_client.put_object(Bucket=s3_bucket, Key="ws/small.csv", Body=small)
    upload_id = s3_client.create_multipart_upload(Bucket=s3_bucket, Key="ws/big.bin")["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3_client.upload_part(
        Bucket=s3_bucket, Key="ws/big.bin", UploadId=upload_id, PartNumber=n,
        Body=big[(n - 1) * 5 * MiB:n * 5 * MiB])["ETag"]} for n in (1, 2, 3)]
    s3_client.complete_multipart_upload(Bucket=s3_bucket, Key="ws/big.bin", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})
    assert broker.read_bytes("big.bin", 5 * MiB - 3, 5 * MiB + 3) == big[5 * MiB - 3:5 * MiB + 3]
    with broker.open("big.bin") as f:  # If-Match with the object's own ETag
        f.seek(7 * MiB)
        assert f.read(100) == big[7 * MiB:7 * MiB + 100]
    broker.download("big.bin", tmp_path / "big.bin")  # the size is checked; the ETag proves nothing here
    broker.download("small.csv", tmp_path / "small.csv")
    assert (tmp_path / "big.bin").read_bytes() == big and (tmp_path / "small.csv").read_bytes() == small


def test_moves_in_an_sse_kms_bucket(kms_bucket, make_s3_broker, s3_client, s3_bucket):
    broker = make_s3_broker()
    broker.transfer = SMALL_PARTS
    small, big = b"id,value\n1,alpha\n", pattern(12 * MiB, seed=13)
    s3_client.put_object(Bucket=s3_bucket, Key="ws/in/small.csv", Body=small)
    s3_client.put_object(Bucket=s3_bucket, Key="ws/in/big.bin", Body=big)
    broker.move("in/small.csv", "out/small.csv")  # CopyObject: the copy's ETag differs from the source's
    broker.move("in/big.bin", "out/big.bin")  # UploadPartCopy
    assert body(s3_client, s3_bucket, "ws/out/small.csv") == small
    assert body(s3_client, s3_bucket, "ws/out/big.bin") == big
    assert not broker.exists("in/small.csv") and not broker.exists("in/big.bin")
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_a_store_that_damages_a_single_put_is_caught(s3_broker, s3_server, monkeypatch):
    store = corrupting(s3_server, monkeypatch, "/ws/f.bin")
    with pytest.raises(IntegrityError, match=r"f\.bin") as info:
        s3_broker.write_bytes("f.bin", pattern(100_000))
    assert store.damaged == 1
    assert "the object now in place" in str(info.value)


def test_a_store_that_damages_a_part_is_caught_before_the_object_is_replaced(make_s3_broker, s3_server,
                                                                          s3_client, s3_bucket, monkeypatch):
    broker = make_s3_broker()
    broker.transfer = SMALL_PARTS
    broker.write_bytes("f.bin", b"old")
    store = corrupting(s3_server, monkeypatch, "/ws/f.bin", query="partNumber=2")
    with pytest.raises(IntegrityError, match="part 2"):
        broker.write_bytes("f.bin", pattern(12 * MiB))
    assert store.damaged == 1
    assert broker.read_bytes("f.bin") == b"old"
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_a_store_whose_plain_etags_are_not_md5s_is_verified_by_reading_back(s3_broker, s3_server, s3_client,
                                                                          s3_bucket, monkeypatch):
    """An unencrypted answer whose ETag is MD5-shaped but not the MD5 (some gateways): the object is read back
    and, holding the bytes sent, kept without an error."""
    layer = AwsKmsETags(s3_server.recorder.app, s3_bucket)
    layer_call = layer.__call__

    def without_sse_header(environ, start_response):
        def start(status, headers, exc_info=None):
            return start_response(status, [(n, v) for n, v in headers
                                           if n.lower() != "x-amz-server-side-encryption"], exc_info)
        return layer_call(environ, start)

    monkeypatch.setattr(s3_server.recorder, "app", without_sse_header)
    mark = s3_server.mark()
    s3_broker.write_bytes("g.bin", b"payload")
    assert body(s3_client, s3_bucket, "ws/g.bin") == b"payload"
    assert [r.method for r in s3_server.since(mark) if r.by_broker] == ["PUT", "GET"]


def test_a_completed_upload_whose_etag_is_not_the_parts_digest_is_verified_by_reading_back(
        make_s3_broker, s3_server, s3_client, s3_bucket, monkeypatch):
    """Parts answered with their MD5, the completed object with another MD5-shaped ``...-N`` ETag: read back."""
    inner = s3_server.recorder.app
    rewritten = []

    def other_final_etag(environ, start_response):
        if not (environ["REQUEST_METHOD"] == "POST" and "uploadId=" in environ.get("QUERY_STRING", "")):
            return inner(environ, start_response)
        data = b"".join(inner(environ, start_response))
        rewritten.append(data)
        return [_ETAG_IN_XML.sub(lambda m: m.group(1) + b"0" * 32 + m.group(3), data)]

    monkeypatch.setattr(s3_server.recorder, "app", other_final_etag)
    broker = make_s3_broker()
    broker.transfer = SMALL_PARTS
    data = pattern(12 * MiB, seed=14)
    mark = s3_server.mark()
    broker.write_bytes("big.bin", data)
    assert len(rewritten) == 1 and body(s3_client, s3_bucket, "ws/big.bin") == data
    assert [r.method for r in s3_server.since(mark) if r.by_broker][-1] == "GET"  # the read-back


def test_a_copy_that_comes_out_wrong_keeps_the_source(s3_broker, s3_server, s3_client, s3_bucket, monkeypatch):
    s3_broker.write_bytes("src", b"precious")
    s3_broker.write_bytes("other", b"imposter")  # the same size: only the bytes tell them apart
    layer = MisdirectedCopy(s3_server.recorder.app, "/ws/src", "/ws/other")
    monkeypatch.setattr(s3_server.recorder, "app", layer)
    with pytest.raises(IntegrityError, match="source kept"):
        s3_broker.move("src", "dst")
    assert layer.misdirected == 1
    assert body(s3_client, s3_bucket, "ws/src") == b"precious"


@pytest.mark.parametrize(("reply", "checkable"), [
    ({"ETag": '"5eb63bbbe01eeed093cb22bb8f5acdc3"'}, True),
    ({"ETag": '"5eb63bbbe01eeed093cb22bb8f5acdc3"', "ServerSideEncryption": "AES256"}, True),
    ({"ETag": '"241d8a27c836427bd7f04461b60e7359-3"'}, True),
    ({"ETag": '"5eb63bbbe01eeed093cb22bb8f5acdc3"', "ServerSideEncryption": "aws:kms"}, False),
    ({"ETag": '"5eb63bbbe01eeed093cb22bb8f5acdc3"', "ServerSideEncryption": "aws:kms:dsse"}, False),
    ({"ETag": '"5eb63bbbe01eeed093cb22bb8f5acdc3"', "SSECustomerAlgorithm": "AES256"}, False),
    ({"ETag": '"not-an-md5"'}, False),
    ({}, False),
])
def test_which_answers_carry_an_md5_etag(reply, checkable):
    """SSE-C needs the customer's key on every request (the broker has none to give), so it is judged from the
    answer's headers alone, as AWS documents them."""
    assert (md5_etag(reply) is not None) is checkable
