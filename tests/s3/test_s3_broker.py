"""S3Broker against a real (moto) S3 server; a separate plain boto3 client checks what the broker wrote."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta, timezone

import pytest

import brokers
from brokers.backends.s3.transfer import TransferSettings
from brokers.core.volumes import Volume
from brokers.errors import BrokerError, FileNotFound

pytestmark = pytest.mark.s3

MiB = 1024 * 1024
SMALL_PARTS = TransferSettings(multipart_threshold=5 * MiB, part_size=5 * MiB, max_concurrency=3,
                               copy_threshold=5 * MiB, copy_part_size=5 * MiB)


def pattern(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def body(s3_client, bucket, key):
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_write_read_info_checked_by_plain_client(s3_broker, s3_client, s3_bucket, s3_server):
    mark = s3_server.mark()
    s3_broker.write_bytes("in/a.csv", b"x,y\n1,2\n")
    assert body(s3_client, s3_bucket, "ws/in/a.csv") == b"x,y\n1,2\n"
    put = [r for r in s3_server.since(mark) if r.method == "PUT"]
    assert len(put) == 1 and "content-md5" in put[0].headers
    assert s3_broker.read_bytes("in/a.csv") == b"x,y\n1,2\n"
    info = s3_broker.info("in/a.csv")
    assert info.path == "in/a.csv" and info.size == 8
    assert info.checksum == hashlib.md5(b"x,y\n1,2\n").hexdigest()
    assert info.modified is not None and info.modified.tzinfo == timezone.utc
    assert s3_broker.exists("in/a.csv") and not s3_broker.exists("in/b.csv")
    with pytest.raises(FileNotFound):
        s3_broker.info("in/b.csv")
    with pytest.raises(FileNotFound):
        s3_broker.read_bytes("in/b.csv", 0, 10)


def test_prefix_is_a_directory_not_a_string_prefix(s3_broker, s3_client, s3_bucket):
    for key in ("ws2/x", "wsx", "other/y", "ws"):
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"outside")
    s3_broker.write_bytes("a", b"1")
    s3_broker.write_bytes("d/b", b"22")
    assert sorted(i.path for i in s3_broker.list()) == ["a", "d/b"]
    assert s3_broker.usage().used_size == 3
    assert s3_broker.delete_all() == 2
    left = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert left == ["other/y", "ws", "ws2/x", "wsx"]


def test_list_recursive_delimited_and_paged(make_s3_broker, s3_client, s3_bucket):
    broker = make_s3_broker()
    broker.list_page_size = 7
    names = [f"top{i}" for i in range(5)] + [f"d/f{i}" for i in range(20)] + ["d/e/g", "dd/h"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: s3_client.put_object(Bucket=s3_bucket, Key=f"ws/{n}", Body=n.encode()),
                      names))
    s3_client.put_object(Bucket=s3_bucket, Key="ws/d/marker/", Body=b"")  # a "directory" marker is no file
    assert sorted(i.path for i in broker.list()) == sorted(names)
    assert sorted(i.path for i in broker.list("", recursive=False)) == [f"top{i}" for i in range(5)]
    assert sorted(i.path for i in broker.list("d", recursive=False)) == sorted(f"d/f{i}" for i in range(20))
    assert sorted(i.path for i in broker.list("d")) == sorted([f"d/f{i}" for i in range(20)] + ["d/e/g"])
    usage = broker.usage()
    assert usage.file_count == len(names) and usage.used_size == sum(len(n) for n in names)
    assert usage.method == "list_objects_v2" and usage.total_size is None and usage.free_size is None


def test_usage_reports_quota(make_s3_broker):
    broker = make_s3_broker(total_size=1000)
    broker.write_bytes("x/y", b"a" * 100)
    usage = broker.usage()
    assert (usage.used_size, usage.total_size, usage.free_size, usage.file_count) == (100, 1000, 900, 1)


def test_ranged_read_of_4k_from_16mib_fetches_4k(s3_broker, s3_client, s3_bucket, s3_server):
    data = pattern(16 * MiB)
    s3_client.put_object(Bucket=s3_bucket, Key="ws/big.bin", Body=data)
    start = 8 * MiB + 12345
    mark = s3_server.mark()
    got = s3_broker.read_bytes("big.bin", start, start + 4096)
    assert got == data[start:start + 4096]
    calls = s3_server.since(mark)
    assert [(r.method, r.range) for r in calls] == [("GET", f"bytes={start}-{start + 4095}")]
    assert calls[0].sent <= 4096, calls[0].sent
    print(f"\n4 KiB ranged read of a 16 MiB object: {len(calls)} request, {calls[0].sent} bytes sent "
          "by the server")
    # ranges past the end are cut short, or empty
    assert s3_broker.read_bytes("big.bin", len(data) - 10, len(data) + 100) == data[-10:]
    assert s3_broker.read_bytes("big.bin", len(data) + 5, len(data) + 100) == b""
    assert s3_broker.read_bytes("big.bin", 7, 7) == b""


def test_multipart_write_streams_parts_concurrently(make_s3_broker, s3_client, s3_bucket, s3_server):
    broker = make_s3_broker()
    broker.transfer = SMALL_PARTS
    data = pattern(16 * MiB, seed=1)
    mark = s3_server.mark()
    with broker.open("out/big.bin", "wb", buffer_size=MiB) as f:
        for offset in range(0, len(data), 3 * MiB):
            f.write(data[offset:offset + 3 * MiB])
    head = s3_client.head_object(Bucket=s3_bucket, Key="ws/out/big.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].strip('"').endswith("-4")
    assert body(s3_client, s3_bucket, "ws/out/big.bin") == data
    parts = [r for r in s3_server.since(mark) if r.method == "PUT" and "partNumber=" in r.query]
    assert len(parts) == 4 and all("content-md5" in r.headers for r in parts)
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_small_write_is_one_put(s3_broker, s3_server):
    mark = s3_server.mark()
    with s3_broker.open("s.txt", "wb") as f:
        f.write(b"abc")
        f.write(b"def")
    assert [r.method for r in s3_server.since(mark)] == ["PUT"]
    assert s3_broker.read_bytes("s.txt") == b"abcdef"


def test_failed_stream_write_keeps_old_content(make_s3_broker, s3_client, s3_bucket):
    broker = make_s3_broker()
    broker.transfer = SMALL_PARTS
    broker.write_bytes("f", b"old")
    with pytest.raises(RuntimeError), broker.open("f", "wb") as f:
        f.write(pattern(12 * MiB))  # parts already on the server
        raise RuntimeError("job crashed")
    assert broker.read_bytes("f") == b"old"
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_reader_streams_and_seeks(make_s3_broker, s3_client, s3_bucket):
    data = pattern(6 * MiB, seed=2)
    s3_client.put_object(Bucket=s3_bucket, Key="ws/r.bin", Body=data)
    broker = make_s3_broker()
    with broker.open("r.bin", buffer_size=256 * 1024) as f:
        assert f.read(10) == data[:10]
        f.seek(5 * MiB)
        assert f.read(100) == data[5 * MiB:5 * MiB + 100]
        f.seek(-50, io.SEEK_END)
        assert f.read() == data[-50:]
        f.seek(0)
        chunks = iter(lambda: f.read(MiB), b"")
        assert b"".join(chunks) == data
    with pytest.raises(FileNotFound):
        broker.open("nope.bin")


def test_reader_fetches_from_the_seek_position_and_never_mixes_versions(s3_broker, s3_server):
    data = pattern(4 * MiB, seed=4)
    s3_broker.write_bytes("v.bin", data)
    mark = s3_server.mark()
    with s3_broker.open("v.bin", buffer_size=64 * 1024) as f:
        f.seek(3 * MiB)
        assert f.read(10) == data[3 * MiB:3 * MiB + 10]
        assert [(r.method, r.range) for r in s3_server.since(mark)] == [  # a bounded range: one window
            ("HEAD", None), ("GET", f"bytes={3 * MiB}-{3 * MiB + 64 * 1024 - 1}")]
        s3_broker.write_bytes("v.bin", b"replaced")  # a new version while the stream is open
        f.seek(0)
        with pytest.raises(BrokerError, match="changed"):
            f.read(10)


def test_upload_download_64mib_round_trip_verified(make_s3_broker, s3_client, s3_bucket, s3_server, tmp_path):
    broker = make_s3_broker()
    broker.transfer = TransferSettings(multipart_threshold=8 * MiB, part_size=8 * MiB, max_concurrency=4)
    src = tmp_path / "src.bin"
    data = os.urandom(64 * MiB)
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    mark = s3_server.mark()
    t0 = time.perf_counter()
    broker.upload(src, "big/64.bin")
    t1 = time.perf_counter()
    out = broker.download("big/64.bin", tmp_path / "dl" / "64.bin")
    t2 = time.perf_counter()
    with open(out, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == digest
    etag = s3_client.head_object(Bucket=s3_bucket, Key="ws/big/64.bin")["ETag"].strip('"')
    parts = [hashlib.md5(data[o:o + 8 * MiB]).digest() for o in range(0, len(data), 8 * MiB)]
    assert etag == f"{hashlib.md5(b''.join(parts)).hexdigest()}-8"
    calls = s3_server.since(mark)
    uploads = [r for r in calls if r.method == "PUT" and "partNumber=" in r.query]
    assert len(uploads) == 8 and all("content-md5" in r.headers for r in uploads)
    # the part size, for recomputing the multipart ETag of the download
    assert any(r.method == "HEAD" and "partNumber=1" in r.query for r in calls)
    print(f"\n64 MiB upload {t1 - t0:.2f} s ({64 / (t1 - t0):.0f} MiB/s), download+verify {t2 - t1:.2f} s "
          f"({64 / (t2 - t1):.0f} MiB/s), ETag {etag} verified")


def test_small_upload_and_download(s3_broker, tmp_path):
    src = tmp_path / "a.txt"
    src.write_bytes(b"hello")
    s3_broker.upload(src, "a.txt")
    assert s3_broker.download("a.txt", tmp_path / "b.txt") == str(tmp_path / "b.txt")
    assert (tmp_path / "b.txt").read_bytes() == b"hello"
    with pytest.raises(FileNotFoundError):
        s3_broker.upload(tmp_path / "missing", "x")
    with pytest.raises(FileNotFound):
        s3_broker.download("missing", tmp_path / "c.txt")
    assert not (tmp_path / "c.txt").exists()


def test_move_is_a_verified_server_side_copy(s3_broker, s3_client, s3_bucket, s3_server):
    s3_broker.write_bytes("a/src", b"payload")
    mark = s3_server.mark()
    s3_broker.move("a/src", "b/dst")
    assert body(s3_client, s3_bucket, "ws/b/dst") == b"payload"
    assert "Contents" not in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="ws/a/")
    calls = [r for r in s3_server.since(mark) if r.by_broker]
    assert any("x-amz-copy-source" in r.headers for r in calls)
    assert not any(r.method == "GET" for r in calls)  # no data passed through this machine
    with pytest.raises(FileNotFound):
        s3_broker.move("a/src", "c")


def test_large_move_uses_upload_part_copy(make_s3_broker, s3_client, s3_bucket, s3_server):
    broker = make_s3_broker()
    broker.transfer = SMALL_PARTS
    data = pattern(16 * MiB, seed=3)
    s3_client.put_object(Bucket=s3_bucket, Key="ws/big", Body=data)
    mark = s3_server.mark()
    broker.move("big", "moved/big")
    copies = [r for r in s3_server.since(mark) if "x-amz-copy-source-range" in r.headers]
    assert len(copies) == 4
    assert body(s3_client, s3_bucket, "ws/moved/big") == data
    assert not broker.exists("big")
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_delete(s3_broker):
    s3_broker.write_bytes("x", b"1")
    s3_broker.delete("x")
    assert not s3_broker.exists("x")
    with pytest.raises(FileNotFound):
        s3_broker.delete("x")
    s3_broker.delete("x", missing_ok=True)


def test_delete_all_uses_batches(s3_broker, s3_client, s3_bucket, s3_server):
    keys = [f"ws/k/{i:04d}" for i in range(23)] + ["ws/odd//name"]  # also keys no workspace path names
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3_client.put_object(Bucket=s3_bucket, Key=k, Body=b"."), keys))
    s3_client.put_object(Bucket=s3_bucket, Key="keep/me", Body=b"!")
    s3_broker.delete_batch_size = 10  # S3 allows 1,000 per request; smaller here to see the batching
    s3_broker.list_page_size = 7
    mark = s3_server.mark()
    assert s3_broker.delete_all() == 24
    batches = [r for r in s3_server.since(mark) if r.method == "POST" and r.query.startswith("delete")]
    assert len(batches) == 3
    assert [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]] == ["keep/me"]


@contextlib.contextmanager
def server_clock(hours_ago: float):
    """Run the moto server's clock ``hours_ago`` behind while the block runs (what it stores is dated then)."""
    import moto.s3.models

    real = moto.s3.models.utcnow
    moto.s3.models.utcnow = lambda: real() - timedelta(hours=hours_ago)
    try:
        yield
    finally:
        moto.s3.models.utcnow = real


def start_upload(s3_client, bucket, key, *, hours_ago: float = 5, part_hours_ago: float | None = None) -> str:
    """An incomplete multipart upload started ``hours_ago``; with one part uploaded ``part_hours_ago`` hours ago
    (None: no part)."""
    with server_clock(hours_ago):
        upload_id = s3_client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    if part_hours_ago is not None:
        with server_clock(part_hours_ago):
            s3_client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * 100)
    return upload_id


def uploads_left(s3_client, bucket) -> list[str]:
    return sorted(u["Key"] for u in s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def test_cleanup_ages_uploads_by_their_last_part_and_stays_in_the_prefix(s3_broker, s3_client, s3_bucket):
    # every upload started 5 hours ago
    start_upload(s3_client, s3_bucket, "ws/busy", part_hours_ago=0)  # a long upload still sending parts
    start_upload(s3_client, s3_bucket, "ws/idle", part_hours_ago=3)  # its last part went up 3 hours ago
    start_upload(s3_client, s3_bucket, "ws/empty")  # no part at all: aged by Initiated
    start_upload(s3_client, s3_bucket, "ws/new", hours_ago=0)  # just started, no part yet
    start_upload(s3_client, s3_bucket, "ws2/other", part_hours_ago=3)  # a sibling workspace's
    start_upload(s3_client, s3_bucket, "wsfile", part_hours_ago=3)  # shares the string prefix "ws" only
    assert s3_broker.cleanup(older_than=3600) == 2
    assert uploads_left(s3_client, s3_bucket) == ["ws/busy", "ws/new", "ws2/other", "wsfile"]
    start_upload(s3_client, s3_bucket, "ws/idle", part_hours_ago=3)
    assert s3_broker.cleanup(older_than=4 * 3600) == 0  # the 3-hour-old part counts, not the 5-hour-old start
    assert s3_broker.cleanup(older_than=0) == 3  # nothing is younger than now
    assert uploads_left(s3_client, s3_bucket) == ["ws2/other", "wsfile"]


def test_cleanup_of_a_workspace_without_prefix_is_bucket_wide_only_when_asked(make_s3_broker, s3_client,
                                                                              s3_bucket, caplog):
    broker = make_s3_broker(prefix=None)
    start_upload(s3_client, s3_bucket, "tool/backup.tar", part_hours_ago=3)  # another tool's, crashed
    start_upload(s3_client, s3_bucket, "tool/live.tar", part_hours_ago=0)  # another tool's, uploading
    caplog.set_level(logging.WARNING, logger="brokers.s3")
    assert broker.cleanup(older_than=3600) == 0
    assert uploads_left(s3_client, s3_bucket) == ["tool/backup.tar", "tool/live.tar"]
    assert any("bucket_wide=True" in r.getMessage() and s3_bucket in r.getMessage() for r in caplog.records)
    assert broker.cleanup(older_than=3600, bucket_wide=True) == 1
    assert uploads_left(s3_client, s3_bucket) == ["tool/live.tar"]


def test_volume_describe_and_capabilities(make_s3_broker, s3_bucket, tmp_path):
    broker = make_s3_broker()
    assert broker.volume is None
    assert broker.describe() == f"s3://{s3_bucket}/ws" and repr(broker) == f"<S3Broker s3://{s3_bucket}/ws>"
    assert make_s3_broker(prefix=None).describe() == f"s3://{s3_bucket}"
    assert broker.capabilities.server_side_copy and broker.capabilities.ranged_read
    assert not broker.capabilities.atomic_rename
    mounted = make_s3_broker(host_path=str(tmp_path), prefix=None)
    assert mounted.volume == Volume(kind="bind", source=str(tmp_path), read_only=True)
    # with a prefix, a job sees only its workspace
    assert make_s3_broker(host_path=str(tmp_path)).volume == Volume(kind="bind", source=str(tmp_path / "ws"),
                                                                   read_only=True)


def test_fs_is_rooted_at_the_prefix(s3_broker, s3_client, s3_bucket):
    s3_broker.write_bytes("t/data.csv", b"a,b\n1,2\n")
    s3_client.put_object(Bucket=s3_bucket, Key="ws2/t/data.csv", Body=b"other")
    fs = s3_broker.fs
    assert fs.cat_file("t/data.csv") == b"a,b\n1,2\n"
    assert [p.rsplit("/", 1)[-1] for p in fs.ls("t", detail=False)] == ["data.csv"]
    with fs.open("t/new.txt", "wb") as f:
        f.write(b"via fsspec")
    assert s3_broker.read_bytes("t/new.txt") == b"via fsspec"


def _child_write(broker) -> None:
    inherited = broker._holder._client  # the parent's client, copied into this process by fork
    if broker.client is inherited:
        os._exit(3)
    broker.write_bytes("from-child", str(os.getpid()).encode())


def test_client_is_rebuilt_after_fork(s3_broker):
    s3_broker.write_bytes("warm", b"1")  # the parent's client exists and has open connections
    parent_client = s3_broker.client
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_child_write, args=(s3_broker,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert s3_broker.read_bytes("from-child") == str(child.pid).encode()
    assert s3_broker.client is parent_client


def test_get_broker_returns_s3_broker(s3_config):
    broker = brokers.get_broker(s3_config)
    assert type(broker).__name__ == "S3Broker" and broker.broker_type == "s3"
