"""Host usage: the one-thread walk (local disks) and the parallel walk (network/FUSE mounts) agree."""

from __future__ import annotations

import os

import brokers
from brokers.core.local import usage as local_usage


def make_tree(root):
    expected_size = expected_files = 0
    for i in range(300):
        d = root / f"a{i % 7}" / f"b{i % 5}" / f"c{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(b"x" * i)
        expected_size += i
        expected_files += 1
    (root / "top.bin").write_bytes(b"y" * 1000)
    os.link(root / "top.bin", root / "a0" / "hard.bin")  # counted once
    (root / "a1" / "link").symlink_to(root / "a2")  # never followed
    (root / "a3" / "dangling").symlink_to(root / "nowhere")
    os.mkfifo(root / "a4" / "fifo")  # not a regular file
    return expected_size + 1000, expected_files + 2


def test_local_and_parallel_walks_agree(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    root.mkdir()
    size, files = make_tree(root)
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(root)}})
    assert not local_usage.on_network_filesystem(str(root))
    local = broker.usage()
    monkeypatch.setattr(local_usage, "on_network_filesystem", lambda path: True)
    parallel = broker.usage()
    assert (local.used_size, local.file_count) == (size, files)
    assert (parallel.used_size, parallel.file_count) == (size, files)


def test_network_filesystems_are_recognised(s3_mount, s3_client, s3_bucket, tmp_path):
    """A real FUSE mount (s3fs) is a network filesystem, at its mount point and below; local ones are not."""
    for key, size in (("d/a.bin", 100), ("d/e/b.bin", 23), ("c.bin", 7)):
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"z" * size)
    assert local_usage.on_network_filesystem(s3_mount.path)
    assert local_usage.on_network_filesystem(os.path.join(s3_mount.path, "d", "e"))
    for local in (str(tmp_path), "/proc", "/dev/shm", "/"):
        assert not local_usage.on_network_filesystem(local), local
    usage = brokers.get_broker({"broker": {"type": "host", "host_path": s3_mount.path}}).usage()
    assert (usage.used_size, usage.file_count) == (130, 3)  # walked in parallel, the same answer
