"""In-place partial reads through the bucket mounted with s3fs-fuse at ``host_path``.

What is counted, and why it is honest: the broker's own boto3 client is watched with a botocore
``before-send`` hook (every HTTP request it would make), and the server log is split by User-Agent (the
broker's requests carry ``brokers-s3/1``; s3fs-fuse's start with ``s3fs/``). Reads through the mount still
cause requests *by s3fs-fuse* (that is the mount doing its job, with read-ahead cut to one 5 MiB request per
miss); the claim tested is that the broker itself fetches no data: one HEAD per in-place read, to check that
the file in the mount is the object's current version (size and modification time), and the bytes the mount
fetched are reported.
Reads of data the mount already holds (its ``use_cache`` directory) make the server send no data at all:
s3fs-fuse only checks freshness with a HEAD per open.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

import brokers

from .test_s3_broker import MiB, body, pattern

pytestmark = [pytest.mark.s3, pytest.mark.fuse]


def count_sends(broker) -> list[str]:
    """The HTTP methods of the requests the broker's client sends from now on."""
    sent: list[str] = []
    broker.client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.method))
    return sent


def test_partial_reads_go_through_the_mount(make_s3_broker, s3_client, s3_bucket, s3_server, s3_mount,
                                            tmp_path):
    data = pattern(16 * MiB, seed=5)
    s3_client.put_object(Bucket=s3_bucket, Key="ws/in/big.bin", Body=data)
    broker = make_s3_broker(host_path=s3_mount.path)
    sends = count_sends(broker)
    mark = s3_server.mark()
    offsets = [0, 8 * MiB + 123, 16 * MiB - 4096]
    for offset in offsets:
        assert broker.read_bytes("in/big.bin", offset, offset + 4096) == data[offset:offset + 4096]
    local = broker.local_path("in/big.bin")
    assert local == os.path.join(s3_mount.path, "ws", "in", "big.bin")
    link = broker.download("in/big.bin", tmp_path / "job" / "big.bin", partial=True)
    assert os.path.islink(link) and os.readlink(link) == local
    with open(link, "rb") as f:
        f.seek(4 * MiB)
        assert f.read(4096) == data[4 * MiB:4 * MiB + 4096]
    first = s3_server.since(mark)
    assert sends == ["HEAD"] * (len(offsets) + 2)  # one freshness check per read, local_path and link
    assert [(r.method, r.sent) for r in first if r.by_broker] == [("HEAD", 0)] * (len(offsets) + 2)
    fuse = [r for r in first if r.by_fuse]
    print(f"\nmount reads: broker requests {len(sends)} HEAD; s3fs-fuse made {len(fuse)} requests, "
          f"{sum(r.sent for r in fuse)} bytes, for {len(offsets) + 1} reads of 4 KiB")
    # the same ranges again: served from what the mount already holds, or re-fetched by s3fs-fuse; never by us
    mark = s3_server.mark()
    for offset in offsets:
        assert broker.read_bytes("in/big.bin", offset, offset + 4096) == data[offset:offset + 4096]
    again = s3_server.since(mark)
    assert sends == ["HEAD"] * (2 * len(offsets) + 2)
    # s3fs-fuse (with use_cache) serves them from its cache: at most a HEAD per open to check freshness
    assert all(r.method == "HEAD" for r in again) and sum(r.sent for r in again) == 0
    print(f"repeat reads: s3fs-fuse made {len([r for r in again if r.by_fuse])} requests, "
          f"{sum(r.sent for r in again if r.by_fuse)} bytes")


def test_missing_from_the_mount_falls_back_to_s3(make_s3_broker, s3_mount):
    broker = make_s3_broker(host_path=s3_mount.path)
    assert broker.local_path("nope") is None
    broker.write_bytes("late.txt", b"written after the mount looked")  # the mount may not list it yet
    assert broker.read_bytes("late.txt", 0, 7) == b"written"


def test_unmounted_host_path_reads_through_s3_and_warns_once(make_s3_broker, s3_server, tmp_path, caplog):
    broker = make_s3_broker(host_path=str(tmp_path))
    broker.write_bytes("f", b"0123456789")
    caplog.set_level(logging.WARNING, logger="brokers.s3")
    mark = s3_server.mark()
    assert broker.read_bytes("f", 2, 5) == b"234"
    assert broker.read_bytes("f", 5, 6) == b"5"
    assert broker.local_path("f") is None
    link = broker.download("f", tmp_path / "out" / "f", partial=True)
    assert not os.path.islink(link)
    with open(link, "rb") as f:
        assert f.read() == b"0123456789"
    assert [r.range for r in s3_server.since(mark) if r.method == "GET"][:2] == ["bytes=2-4", "bytes=5-5"]
    warnings = [r.getMessage() for r in caplog.records if "not mounted" in r.getMessage()]
    assert len(warnings) == 1 and str(tmp_path) in warnings[0]


def test_broken_mount_falls_back_to_s3(make_s3_broker, s3_mount, s3_server, caplog):
    broker = make_s3_broker(host_path=s3_mount.path)
    broker.write_bytes("f", b"0123456789")
    s3_mount.process.kill()  # the FUSE daemon dies: the mount point stays, every access fails (ENOTCONN)
    s3_mount.process.wait()
    caplog.set_level(logging.WARNING, logger="brokers.s3")
    mark = s3_server.mark()
    assert broker.read_bytes("f", 3, 6) == b"345"
    assert broker.local_path("f") is None
    assert [r.range for r in s3_server.since(mark) if r.by_broker] == ["bytes=3-5"]
    assert any("through S3 instead" in r.getMessage() for r in caplog.records)


def test_a_file_gone_from_the_mount_after_its_open_is_read_through_s3(make_s3_broker, s3_mount, s3_server,
                                                                        monkeypatch):
    """s3fs-fuse can answer fstat on an open file with ENOENT once the object changed or went (seen in CI): the
    read goes through S3, which knows whether the object is there."""
    broker = make_s3_broker(host_path=s3_mount.path)
    broker.write_bytes("f", b"0123456789")
    fstat = os.fstat

    def gone(fd: int) -> os.stat_result:
        if os.path.realpath(f"/proc/self/fd/{fd}").startswith(os.path.realpath(s3_mount.path)):
            raise FileNotFoundError(2, "No such file or directory")
        return fstat(fd)

    monkeypatch.setattr(os, "fstat", gone)
    mark = s3_server.mark()
    assert broker.read_bytes("f", 3, 6) == b"345"
    assert broker.local_path("f") is None
    assert [r.range for r in s3_server.since(mark) if r.by_broker and r.method == "GET"] == ["bytes=3-5"]
    broker.delete("f")
    with pytest.raises(brokers.FileNotFound):
        broker.read_bytes("f", 0, 3)


def link_object(s3_client, bucket: str, key: str, target: str) -> None:
    """An object s3fs-fuse shows as a symbolic link (its mode metadata says so; its bytes are the target)."""
    s3_client.put_object(Bucket=bucket, Key=key, Body=target.encode(), Metadata={"mode": str(0o120777)})


def test_a_link_in_the_mount_leading_outside_is_not_followed(make_s3_broker, s3_client, s3_bucket, s3_mount,
                                                            tmp_path):
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_bytes(b"this machine's secret")
    (tmp_path / "outside" / "inner.txt").write_bytes(b"another file of this machine")
    link_object(s3_client, s3_bucket, "ws/evil", str(secret))  # 11 bytes... of its own: the target path
    link_object(s3_client, s3_bucket, "ws/dir", str(tmp_path / "outside"))
    s3_client.put_object(Bucket=s3_bucket, Key="ws/dir/inner.txt", Body=b"the object in the bucket")
    broker = make_s3_broker(host_path=s3_mount.path)
    assert os.path.islink(os.path.join(s3_mount.path, "ws", "evil"))  # the premise: the mount shows links
    assert broker.read_bytes("evil") == str(secret).encode()  # the object's own bytes, from S3
    assert broker.read_bytes("evil", 0, 4) == str(secret).encode()[:4]
    assert broker.read_bytes("dir/inner.txt") == b"the object in the bucket"
    assert broker.read_bytes("dir/inner.txt", 4, 10) == b"the object in the bucket"[4:10]
    for rel in ("evil", "dir/inner.txt"):
        assert broker.local_path(rel) is None
        out = broker.download(rel, tmp_path / "job" / rel, partial=True)
        assert not os.path.islink(out)
        assert Path(out).read_bytes() == body(s3_client, s3_bucket, f"ws/{rel}")


def test_a_link_in_the_mount_leading_inside_is_not_followed_either(make_s3_broker, s3_client, s3_bucket,
                                                                  s3_mount):
    """A key is never a link: the object "alias" holds the text "a.bin", not a.bin's bytes (same size here)."""
    s3_client.put_object(Bucket=s3_bucket, Key="ws/a.bin", Body=b"12345")
    link_object(s3_client, s3_bucket, "ws/alias", "a.bin")
    broker = make_s3_broker(host_path=s3_mount.path)
    assert broker.read_bytes("alias", 0, 5) == b"a.bin"
    assert broker.local_path("alias") is None
    assert broker.local_path("a.bin") == os.path.join(s3_mount.path, "ws", "a.bin")


def test_a_stale_file_in_the_mount_is_not_served(make_s3_broker, s3_client, s3_bucket, s3_server, s3_mount,
                                                tmp_path):
    """s3fs-fuse keeps what it saw for ``stat_cache_expire`` seconds: an object replaced meanwhile is read
    through S3, whether its size or only its modification time (here x-amz-meta-mtime) changed."""
    s3_client.put_object(Bucket=s3_bucket, Key="ws/size.bin", Body=b"old content")
    s3_client.put_object(Bucket=s3_bucket, Key="ws/time.bin", Body=b"old content", Metadata={"mtime": "1000000000"})
    broker = make_s3_broker(host_path=s3_mount.path)
    for rel in ("size.bin", "time.bin"):  # the mount caches both
        assert broker.read_bytes(rel, 0, 3) == b"old"
        assert Path(s3_mount.path, "ws", rel).read_bytes() == b"old content"
    s3_client.put_object(Bucket=s3_bucket, Key="ws/size.bin", Body=b"new, longer content")
    s3_client.put_object(Bucket=s3_bucket, Key="ws/time.bin", Body=b"new content", Metadata={"mtime": "2000000000"})
    # the premise: the mount still shows the old versions
    assert os.stat(os.path.join(s3_mount.path, "ws", "size.bin")).st_size == len(b"old content")
    assert int(os.stat(os.path.join(s3_mount.path, "ws", "time.bin")).st_mtime) == 1000000000
    sends = count_sends(broker)
    for rel, new in (("size.bin", b"new, longer content"), ("time.bin", b"new content")):
        sends.clear()
        assert broker.read_bytes(rel, 0, 3) == b"new"
        assert broker.read_bytes(rel) == new
        assert broker.local_path(rel) is None
        out = broker.download(rel, tmp_path / "job" / rel, partial=True)
        # A copy of the new version; or, if the mount's cache expired meanwhile (a loaded machine), a link to the
        # mount, which then shows the new version too: never the stale bytes.
        assert Path(out).read_bytes() == new
    s3_client.delete_object(Bucket=s3_bucket, Key="ws/size.bin")  # the mount may still list it
    with pytest.raises(brokers.FileNotFound):
        broker.read_bytes("size.bin", 0, 3)
    assert broker.local_path("size.bin") is None
