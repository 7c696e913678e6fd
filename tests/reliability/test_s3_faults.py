"""S3Broker through a fault-injecting proxy: 200 mixed operations at a 10 % fault rate lose nothing.

Every operation either finishes with the right bytes (checksums compared) or raises ``StorageUnavailable``;
after a failure the object holds its old content or its new one (checked with plain boto3 against moto
directly), a failed move keeps its source, a failed download leaves no local file, and no incomplete
multipart upload remains.
"""

from __future__ import annotations

import hashlib
import os
import random
from urllib.parse import urlsplit

import pytest
from botocore.retries import standard

import brokers
from brokers.backends.s3 import S3Broker, TransferSettings
from tests.fixtures.s3 import ACCESS_KEY, REGION, SECRET_KEY
from tests.reliability.faultproxy import FAULTS, FaultProxy

MiB = 1024 * 1024
OPERATIONS = 200
SEED = 20261125


def sha(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()[:16]


@pytest.fixture
def fast_backoff(monkeypatch):
    """botocore's standard retry waits up to 1 s, 2 s...: the same jittered doubling, from 20 ms, at most 0.3 s."""
    def delay_amount(self, context):
        return self._random() * min(0.02 * (2 ** (context.attempt_number - 1)), 0.3)

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", delay_amount)


@pytest.fixture
def proxy(s3_server):
    url = urlsplit(s3_server.endpoint)
    p = FaultProxy((url.hostname, url.port), seed=SEED, rate=0.10).start()
    yield p
    p.stop()


def direct_get(client, bucket, key) -> bytes | None:
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


@pytest.mark.timeout(180)
def test_200_operations_at_10_percent_faults_lose_nothing(s3_bucket, s3_client, proxy, tmp_path, fast_backoff):
    config = brokers.load_configuration({"broker": {
        "type": "s3", "bucket_name": s3_bucket, "region_name": REGION, "endpoint_url": proxy.endpoint,
        "prefix": "ws", "credentials": {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}}})
    broker = S3Broker(config, transfer=TransferSettings(multipart_threshold=5 * MiB, part_size=5 * MiB,
                                                        max_concurrency=2))
    rng = random.Random(SEED)
    model: dict[str, bytes] = {}
    outcome = {"ok": 0, "unavailable": 0}
    failures: list[str] = []
    unavailable: list[str] = []
    big_left = 8  # multipart uploads (> 5 MiB) among the 200: each is 2-3 parts

    def actual(rel: str) -> bytes | None:
        return direct_get(s3_client, s3_bucket, f"ws/{rel}")

    def check_write(rel: str, old: bytes | None, new: bytes) -> None:
        now = actual(rel)
        if now == new:
            model[rel] = new
        elif now == old:
            if old is None:
                model.pop(rel, None)
        else:
            failures.append(f"{rel}: after a failed write holds {len(now or b'')} bytes sha {sha(now)}, "
                            f"neither the old {sha(old)} nor the new {sha(new)}")

    for number in range(OPERATIONS):
        names = sorted(model)
        kind = rng.choices(["write", "upload", "stream", "read", "range", "download", "move", "delete"],
                           [25, 10, 5, 15, 15, 12, 13, 5])[0]
        if kind in ("read", "range", "download", "move", "delete") and not names:
            kind = "write"
        size = rng.choice([0, 1, 1000, 64 * 1024, 300 * 1024])
        if kind in ("upload", "stream") and big_left and rng.random() < 0.5:
            size, big_left = rng.randint(5 * MiB + 1, 11 * MiB), big_left - 1
        rel = f"d{rng.randint(0, 3)}/f{rng.randint(0, 24)}.bin"
        src = rng.choice(names) if names else rel
        data = rng.randbytes(size)
        step = f"#{number} {kind}"
        try:
            if kind == "write":
                old = model.get(rel)
                try:
                    broker.write_bytes(rel, data)
                finally:
                    check_write(rel, old, data)
                assert actual(rel) == data
            elif kind == "upload":
                local = tmp_path / f"up{number}.bin"
                local.write_bytes(data)
                old = model.get(rel)
                try:
                    broker.upload(local, rel)
                finally:
                    check_write(rel, old, data)
                assert actual(rel) == data
            elif kind == "stream":
                old = model.get(rel)
                try:
                    with broker.open(rel, "wb", buffer_size=1 * MiB) as f:
                        for i in range(0, len(data), 700_000):
                            f.write(data[i:i + 700_000])
                finally:
                    check_write(rel, old, data)
                assert actual(rel) == data
            elif kind == "read":
                assert sha(broker.read_bytes(src)) == sha(model[src]), step
            elif kind == "range":
                whole = model[src]
                start = rng.randint(0, max(len(whole) - 1, 0))
                end = rng.randint(start, len(whole) + 10)
                assert broker.read_bytes(src, start, end) == whole[start:end], step
            elif kind == "download":
                out = tmp_path / "dl" / f"{number}.bin"
                try:
                    broker.download(src, out)
                finally:
                    leftovers = [n for n in os.listdir(out.parent) if n.startswith(".brokers-tmp-")]
                    assert not leftovers, f"{step}: temporary download files left: {leftovers}"
                assert sha(out.read_bytes()) == sha(model[src]), step
            elif kind == "move":
                dst = rel if rel != src else rel + ".moved"
                content, old_dst = model[src], model.get(dst)
                try:
                    broker.move(src, dst)
                finally:
                    at_src, at_dst = actual(src), actual(dst)
                    if at_src == content:
                        if at_dst not in (old_dst, content):
                            failures.append(f"{step}: {dst} holds neither its old content nor the moved one")
                        model.update({dst: at_dst} if at_dst is not None else {})
                    elif at_src is None and at_dst == content:
                        model.pop(src)
                        model[dst] = content
                    else:
                        failures.append(f"{step}: the source {src} was lost (src sha {sha(at_src)}, dst sha "
                                        f"{sha(at_dst)}, content sha {sha(content)})")
                assert actual(src) is None and actual(dst) == content, step
            elif kind == "delete":
                try:
                    broker.delete(src, missing_ok=True)
                finally:
                    if actual(src) is None:
                        model.pop(src)
                assert actual(src) is None, step
            outcome["ok"] += 1
        except brokers.StorageUnavailable as exc:
            outcome["unavailable"] += 1
            unavailable.append(f"{kind}: {exc}")
        except Exception as exc:
            failures.append(f"{step} on {rel}/{src}: {type(exc).__name__}: {exc}")

    proxy.enabled = False
    # Nothing half-written anywhere: every key holds exactly what the model says, through the broker and directly.
    listed = {info.path: info.size for info in broker.list()}
    assert listed == {rel: len(data) for rel, data in model.items()}
    for rel, data in model.items():
        assert actual(rel) == data, rel
    keys = [o["Key"] for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket)
            for o in page.get("Contents", [])]
    assert sorted(keys) == sorted(f"ws/{rel}" for rel in model)
    uploads = s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert uploads == [], f"incomplete multipart uploads left: {[u['Key'] for u in uploads]}"

    print(f"\nS3 fault proxy: {proxy.requests} requests, {proxy.total_injected} faults injected "
          f"{dict(proxy.injected)}; {outcome['ok']} operations completed, {outcome['unavailable']} ended in "
          f"StorageUnavailable {unavailable}, {big_left} of 8 large uploads not drawn")
    assert not failures, "\n".join(failures)
    assert outcome["ok"] + outcome["unavailable"] == OPERATIONS
    assert proxy.total_injected >= 0.05 * proxy.requests
    assert set(proxy.injected) == set(FAULTS), "every kind of fault was injected at least once"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("method", "contains", "fault"), [
    ("POST", "uploadId=", "reset_after"),  # CompleteMultipartUpload done by the store, answer lost
    ("PUT", "partNumber=2", "reset_after"),  # a part stored, answer lost
    ("PUT", "partNumber=1", "truncate"),
    ("POST", "uploads", "reset_after"),  # CreateMultipartUpload done, answer lost: an orphan upload id
    ("PUT", "/ws/big.bin", "reset_after"),  # a whole PUT... or a part: whatever comes first
])
def test_lost_answers_of_multipart_steps(s3_bucket, s3_client, proxy, tmp_path, fast_backoff, method, contains, fault):
    """The store did the step but the answer was lost: the write ends right (or StorageUnavailable), never
    half-done, and what is left over is an incomplete upload that ``cleanup`` removes."""
    config = brokers.load_configuration({"broker": {
        "type": "s3", "bucket_name": s3_bucket, "region_name": REGION, "endpoint_url": proxy.endpoint,
        "prefix": "ws", "credentials": {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}}})
    broker = S3Broker(config, transfer=TransferSettings(multipart_threshold=5 * MiB, part_size=5 * MiB,
                                                        max_concurrency=1))
    proxy.rate = 0.0
    old, new = b"old" * 1000, random.Random(1).randbytes(11 * MiB)
    broker.write_bytes("big.bin", old)
    proxy.force(method, contains, fault)
    try:
        broker.write_bytes("big.bin", new)
        outcome = "completed"
    except brokers.StorageUnavailable:
        outcome = "StorageUnavailable"
    except brokers.BrokerError as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    now = direct_get(s3_client, s3_bucket, "ws/big.bin")
    assert proxy.total_injected == 1
    assert now in (old, new), "half-written"
    if outcome == "completed":
        assert now == new
    broker.cleanup(older_than=0)
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert outcome in ("completed", "StorageUnavailable"), (
        f"{method} {contains} {fault}: the write ended with {outcome}; the object now holds the "
        f"{'new' if now == new else 'old'} content")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", ["truncate", "reset_after"])
def test_a_body_cut_short_is_fetched_again(s3_bucket, s3_client, proxy, tmp_path, fast_backoff, fault):
    """botocore retries requests, not response bodies: a download or a read whose body breaks off must ask again
    (from where it stopped, with If-Match) instead of failing."""
    config = brokers.load_configuration({"broker": {
        "type": "s3", "bucket_name": s3_bucket, "region_name": REGION, "endpoint_url": proxy.endpoint,
        "prefix": "ws", "credentials": {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}}})
    broker = S3Broker(config)
    proxy.rate = 0.0
    data = random.Random(3).randbytes(3 * MiB)
    s3_client.put_object(Bucket=s3_bucket, Key="ws/x.bin", Body=data)
    proxy.force("GET", "/ws/x.bin", fault, times=2)
    assert (tmp_path / "x.bin").exists() is False
    broker.download("x.bin", tmp_path / "x.bin")
    assert (tmp_path / "x.bin").read_bytes() == data
    proxy.force("GET", "/ws/x.bin", fault, times=2)
    assert broker.read_bytes("x.bin", 1000, 2 * MiB) == data[1000:2 * MiB]
    assert proxy.total_injected == 4
