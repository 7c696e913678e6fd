"""Local files in and out of every backend: downloads honour the umask, uploads of special files stream to EOF."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after)."""
    old = os.umask(0o022)
    try:
        yield lambda mask: os.umask(mask)
    finally:
        os.umask(old)


def mode(path: str | os.PathLike[str]) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002], ids=["022", "027", "077", "002"])
def test_downloads_honour_the_umask_as_cp_does(any_broker, tmp_path, umask, mask):
    any_broker.write_bytes("in/a.bin", b"a" * 1000)
    any_broker.write_bytes("in/b.bin", b"b" * 10)
    umask(mask)
    single = Path(any_broker.download("in/a.bin", tmp_path / "one" / "a.bin"))
    many = [Path(p) for p in any_broker.download_many([("in/a.bin", tmp_path / "many" / "a.bin"),
                                                         ("in/b.bin", tmp_path / "many" / "b.bin")])]
    (tmp_path / "over.bin").write_bytes(b"old")
    os.chmod(tmp_path / "over.bin", 0o600)
    replaced = Path(any_broker.download("in/b.bin", tmp_path / "over.bin"))
    for path in (single, *many, replaced):
        assert mode(path) == 0o666 & ~mask, (path.name, oct(mode(path)))
    assert single.read_bytes() == b"a" * 1000 and replaced.read_bytes() == b"b" * 10
    assert sorted(os.listdir(tmp_path / "many")) == ["a.bin", "b.bin"]  # no temporary file left


def fifo_fed_by_a_thread(path: Path, data: bytes) -> threading.Thread:
    os.mkfifo(path)

    def feed() -> None:
        with open(path, "wb") as f:
            for i in range(0, len(data), 65536):
                f.write(data[i:i + 65536])

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    return feeder


def test_upload_of_a_fifo_streams_until_eof(any_broker, tmp_path):
    data = os.urandom((9 << 20) + 12345)  # above the S3 multipart threshold
    feeder = fifo_fed_by_a_thread(tmp_path / "pipe", data)
    any_broker.upload(tmp_path / "pipe", "in/from-fifo.bin")
    feeder.join(30)
    assert any_broker.info("in/from-fifo.bin").size == len(data)
    assert any_broker.read_bytes("in/from-fifo.bin") == data


def test_upload_many_of_fifos(any_broker, tmp_path):
    payloads = {f"p{i}": os.urandom(100_000 + i) for i in range(3)}
    feeders = [fifo_fed_by_a_thread(tmp_path / name, data) for name, data in payloads.items()]
    assert any_broker.upload_many([(tmp_path / name, f"fifo/{name}") for name in payloads]) == 3
    for feeder in feeders:
        feeder.join(30)
    for name, data in payloads.items():
        assert any_broker.read_bytes(f"fifo/{name}") == data


@pytest.mark.parametrize("pseudo", ["/proc/self/cmdline", "/proc/self/status"])
def test_upload_of_a_proc_file_is_its_content(any_broker, pseudo):
    assert os.stat(pseudo).st_size == 0  # what fstat says about it
    any_broker.upload(pseudo, "in/proc.txt")
    uploaded = any_broker.read_bytes("in/proc.txt")
    if pseudo.endswith("cmdline"):  # the same for the whole life of the process
        assert uploaded == Path(pseudo).read_bytes()
    else:  # counters in it move; its shape does not
        assert uploaded.startswith(b"Name:\t") and b"\nPid:\t%d\n" % os.getpid() in uploaded
    assert any_broker.info("in/proc.txt").size == len(uploaded) > 0


def test_upload_of_dev_null_is_an_empty_file(any_broker):
    any_broker.write_bytes("in/n.txt", b"old")
    any_broker.upload("/dev/null", "in/n.txt")
    assert any_broker.read_bytes("in/n.txt") == b""
