"""The broker contract, written once and run against every backend (host, S3, NFSv3, NFSv4.1)."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest

import brokers


def payload(n: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (n // len(block) + 1))[:n]


def test_round_trip_and_info(any_broker):
    data = payload(100_000)
    any_broker.write_bytes("in/a.bin", data)
    assert any_broker.read_bytes("in/a.bin") == data
    info = any_broker.info("in/a.bin")
    assert (info.path, info.size) == ("in/a.bin", len(data))
    assert info.modified is not None and info.modified.tzinfo is not None
    assert any_broker.exists("in/a.bin")
    assert not any_broker.exists("in/b.bin")
    assert any_broker.broker_type in ("host", "s3", "nfs")


def test_empty_file_and_overwrite(any_broker):
    any_broker.write_bytes("e", b"")
    assert any_broker.read_bytes("e") == b"" and any_broker.info("e").size == 0
    any_broker.write_bytes("e", b"new")
    assert any_broker.read_bytes("e") == b"new"


def test_ranged_reads(any_broker):
    data = payload(1 << 20, 1)
    any_broker.write_bytes("r.bin", data)
    assert any_broker.read_bytes("r.bin", 1000, 5096) == data[1000:5096]
    assert any_broker.read_bytes("r.bin", 0, 1) == data[:1]
    assert any_broker.read_bytes("r.bin", len(data) - 10) == data[-10:]
    assert any_broker.read_bytes("r.bin", len(data) - 10, len(data) + 100) == data[-10:]
    assert any_broker.read_bytes("r.bin", 7, 7) == b""
    with pytest.raises(ValueError):
        any_broker.read_bytes("r.bin", -1)
    with pytest.raises(ValueError):
        any_broker.read_bytes("r.bin", 10, 5)


def test_missing_file_errors(any_broker):
    for call in (lambda: any_broker.read_bytes("nope"), lambda: any_broker.read_bytes("nope", 0, 10),
                 lambda: any_broker.info("nope"), lambda: any_broker.open("nope"),
                 lambda: any_broker.delete("nope"), lambda: any_broker.move("nope", "other"),
                 lambda: any_broker.read_bytes("nope", 3, 3)):
        with pytest.raises(brokers.FileNotFound) as info:
            call()
        assert isinstance(info.value, FileNotFoundError)
    any_broker.delete("nope", missing_ok=True)


def test_streaming_open(any_broker):
    data = payload(3 * 1024 * 1024 + 17, 2)
    with any_broker.open("s/big.bin", "wb") as f:
        for i in range(0, len(data), 100_000):
            f.write(data[i:i + 100_000])
    with any_broker.open("s/big.bin", buffer_size=64 * 1024) as f:
        chunks = []
        while chunk := f.read(65536):
            chunks.append(chunk)
    assert b"".join(chunks) == data
    with pytest.raises(ValueError):
        any_broker.open("s/big.bin", "ab")  # type: ignore[arg-type]


def test_failed_write_keeps_old_content(any_broker):
    any_broker.write_bytes("keep.txt", b"old")
    with pytest.raises(RuntimeError), any_broker.open("keep.txt", "wb") as f:
        f.write(b"half of the new")
        raise RuntimeError("job crashed")
    assert any_broker.read_bytes("keep.txt") == b"old"
    with pytest.raises(RuntimeError), any_broker.open("fresh.txt", "wb") as f:
        f.write(b"x" * 10)
        raise RuntimeError("job crashed")
    assert not any_broker.exists("fresh.txt")
    assert [i.path for i in any_broker.list()] == ["keep.txt"]


def test_listing(any_broker):
    for path in ("a/1", "a/2", "a/sub/3", "ab/4", "top"):
        any_broker.write_bytes(path, path.encode())
    assert sorted(i.path for i in any_broker.list()) == ["a/1", "a/2", "a/sub/3", "ab/4", "top"]
    assert sorted(i.path for i in any_broker.list("a")) == ["a/1", "a/2", "a/sub/3"]
    assert sorted(i.path for i in any_broker.list("a/")) == ["a/1", "a/2", "a/sub/3"]
    assert sorted(i.path for i in any_broker.list("a", recursive=False)) == ["a/1", "a/2"]
    assert sorted(i.path for i in any_broker.list("", recursive=False)) == ["top"]
    assert list(any_broker.list("missing")) == []
    assert {i.path: i.size for i in any_broker.list("a")}["a/sub/3"] == len(b"a/sub/3")


def test_move(any_broker):
    any_broker.write_bytes("src.txt", b"content")
    any_broker.write_bytes("dst/old.txt", b"to be replaced")
    any_broker.move("src.txt", "dst/old.txt")
    assert not any_broker.exists("src.txt")
    assert any_broker.read_bytes("dst/old.txt") == b"content"
    any_broker.move("dst/old.txt", "dst/old.txt")
    assert any_broker.read_bytes("dst/old.txt") == b"content"
    any_broker.move("dst/old.txt", "new/deep/dir/f.txt")
    assert [i.path for i in any_broker.list()] == ["new/deep/dir/f.txt"]


def test_delete_and_delete_all(any_broker):
    for i in range(5):
        any_broker.write_bytes(f"d/{i}", b"x")
    any_broker.delete("d/0")
    assert not any_broker.exists("d/0")
    assert any_broker.delete_all() == 4
    assert list(any_broker.list()) == []
    assert any_broker.usage().file_count == 0


def test_upload_download(any_broker, tmp_path):
    data = payload(2 * 1024 * 1024 + 5, 3)
    local = tmp_path / "up.bin"
    local.write_bytes(data)
    any_broker.upload(local, "u/up.bin")
    assert any_broker.read_bytes("u/up.bin") == data
    out = any_broker.download("u/up.bin", tmp_path / "out" / "down.bin")
    assert Path(out).read_bytes() == data
    linked = any_broker.download("u/up.bin", tmp_path / "out" / "partial.bin", partial=True)
    assert Path(linked).read_bytes() == data
    assert not [n for n in os.listdir(tmp_path / "out") if n.startswith(".brokers-tmp")]
    with pytest.raises(FileNotFoundError):
        any_broker.upload(tmp_path / "missing.bin", "u/x")
    assert not any_broker.exists("u/x")


def test_usage(any_broker):
    any_broker.write_bytes("x/1", b"a" * 1000)
    any_broker.write_bytes("x/2", b"b" * 234)
    usage = any_broker.usage()
    assert usage.used_size == 1234
    assert usage.file_count == 2
    assert usage.method
    assert usage.measured_at.tzinfo is not None
    if usage.total_size is not None:
        assert usage.free_size is not None and 0 <= usage.free_size <= usage.total_size


def test_unicode_and_odd_names(any_broker):
    names = ["données/été.csv", "with space/a b", "a+b=c&d", "#hash", "%41", "x..y", "...", ".hidden"]
    for name in names:
        any_broker.write_bytes(name, name.encode())
    assert sorted(i.path for i in any_broker.list()) == sorted(names)
    for name in names:
        assert any_broker.read_bytes(name) == name.encode()


def test_paths_confined(any_broker):
    for path in ("../x", "/abs", "a/../../x", "a\x00", "a\\b"):
        with pytest.raises(brokers.PathOutsideWorkspace):
            any_broker.write_bytes(path, b"x")
    assert list(any_broker.list()) == []


def test_fsspec_view(any_broker):
    any_broker.write_bytes("tables/t.csv", b"a,b\n1,2\n")
    fs = any_broker.fs
    with fs.open("tables/t.csv", "rb") as f:
        assert f.read() == b"a,b\n1,2\n"
    assert fs.cat_file("tables/t.csv", start=2, end=5) == b"b\n1"
    assert [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls("tables", detail=False)] == ["t.csv"]


def _crashed_write(broker, path: str, size: int) -> None:
    """Fork a writer that opens ``path``, sends ``size`` bytes without committing, and is SIGKILLed there."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        try:
            stream = broker.open(path, "wb")
            stream.write(payload(size, seed=9))
            stream.flush()
            os.write(ready_w, b"1")
            signal.pause()
        finally:
            os._exit(1)
    os.close(ready_w)
    try:
        assert os.read(ready_r, 1) == b"1", "the writer died before its write was under way"
    finally:
        os.close(ready_r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_cleanup_removes_crash_leftovers_once_old_enough(any_broker):
    any_broker.write_bytes("keep.txt", b"keep")
    _crashed_write(any_broker, "out/big.bin", 12 * 1024 * 1024)  # over a part: an S3 multipart upload is open
    assert [i.path for i in any_broker.list()] == ["keep.txt"]
    assert any_broker.cleanup(older_than=3600) == 0, "a leftover younger than older_than was removed"
    assert any_broker.cleanup(older_than=0) == 1
    assert any_broker.cleanup(older_than=0) == 0
    assert [i.path for i in any_broker.list()] == ["keep.txt"]
    assert any_broker.read_bytes("keep.txt") == b"keep"
