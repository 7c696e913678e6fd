"""``broker.open(path, "rb")``: a regular seekable binary file on every backend, that fetches what is read.

- Every backend: random seeks and reads (hypothesis) against the file's bytes, the end of the file, lines, the
  file's flags and errors, pyarrow and pandas reading through the stream.
- The read-ahead policy of :class:`brokers.core.reading.ReadStream` over an in-memory source that records what
  it is asked: a read after a seek fetches a small window, sequential reads double it up to ``buffer_size``,
  large reads go straight into the caller's memory, a seek fetches nothing, nothing past the end is asked.
- S3, counted at the server: four random 100-byte reads of a 32 MiB object fetch at most 1 MiB each, with
  bounded ranges and ``If-Match``; a sequential read fetches each byte once; a body that breaks is asked again.
- NFS direct mode, counted at the raw reader (each call is a READ sent to the server): the same random reads.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import signal
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brokers.core.reading import ReadStream
from brokers.core.streams import PositionalReader

KiB, MiB = 1024, 1024 * 1024
SIZE = 300_000  # a few read-ahead windows of 64 KiB
BIG = 32 * MiB


def payload(n: int, seed: int = 0) -> bytes:
    block = b"".join(hashlib.sha256(f"{seed}-{i}".encode()).digest() for i in range(2048))  # 64 KiB
    return (block * (n // len(block) + 1))[:n]


# ------------------------------------------------------------------------------------------ every backend
OPS = st.lists(st.one_of(
    st.tuples(st.just("seek"), st.integers(-SIZE - 100, SIZE + 100), st.sampled_from([0, 1, 2])),
    st.tuples(st.just("read"), st.integers(-1, 200_000)),
    st.tuples(st.just("read1"), st.integers(-1, 200_000)),
    st.tuples(st.just("readinto"), st.integers(0, 200_000)),
    st.tuples(st.just("readline"), st.integers(-1, 3000)),
), max_size=10)


def apply(f: Any, ref: io.BytesIO, op: tuple[Any, ...]) -> None:
    """Do ``op`` on the broker's stream and on the model; both must agree (what is returned and the position)."""
    kind = op[0]
    if kind == "seek":
        offset, whence = op[1], op[2]
        target = (0, ref.tell(), len(ref.getbuffer()))[whence] + offset
        if target < 0:  # as a regular file: EINVAL, the position is kept
            with pytest.raises(OSError):
                f.seek(offset, whence)
        else:
            assert f.seek(offset, whence) == ref.seek(target) == target
    elif kind == "read":
        assert f.read(op[1]) == ref.read(op[1])
    elif kind == "read1":  # at most one fetch: fewer bytes than asked are fine, none only at the end
        got = f.read1(op[1])
        assert got == ref.read(len(got))
        assert got or op[1] == 0 or ref.tell() >= len(ref.getbuffer())
        assert op[1] < 0 or len(got) <= op[1]
    elif kind == "readinto":
        target = bytearray(op[1])
        count = f.readinto(target)
        assert bytes(target[:count]) == ref.read(op[1])
    else:
        assert f.readline(op[1]) == ref.readline(op[1])
    assert f.tell() == ref.tell()


def test_random_seeks_and_reads_return_the_files_bytes(any_broker):
    data = payload(SIZE, 1).replace(b"\x0a", b"-")
    data = b"\n".join(data[i:i + 700 + i % 900] for i in range(0, SIZE, 1600))  # lines of many lengths
    any_broker.write_bytes("r/data.bin", data)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ops=OPS, buffer_size=st.sampled_from([1000, 4 * KiB, 100_000, 8 * MiB]))
    def check(ops: list[tuple[Any, ...]], buffer_size: int) -> None:
        ref = io.BytesIO(data)
        with any_broker.open("r/data.bin", buffer_size=buffer_size) as f:
            for op in ops:
                apply(f, ref, op)
            assert f.read() == ref.read()

    check()


def test_end_of_file_lines_and_file_flags(any_broker):
    text = b"id,value\n1,alpha\n\n2,beta\nno newline at the end"
    any_broker.write_bytes("t/a.csv", text)
    any_broker.write_bytes("t/empty", b"")
    with any_broker.open("t/empty") as f:
        assert (f.read(), f.read(10), f.readline(), f.read1(5), f.readinto(bytearray(4))) == (b"", b"", b"", b"",
                                                                                                0)
        assert f.seek(0, io.SEEK_END) == 0 and list(f) == []
    with any_broker.open("t/a.csv") as f:
        assert (f.readable(), f.seekable(), f.writable(), f.closed) == (True, True, False, False)
        assert f.name.endswith("a.csv")
        assert list(f) == text.splitlines(keepends=True)
        assert f.tell() == len(text) and f.read() == b"" and f.read(1) == b"" and f.readinto(bytearray(3)) == 0
        assert f.seek(0) == 0 and f.readlines() == text.splitlines(keepends=True)
        assert f.seek(2) == 2 and f.readline(4) == b",val" and f.readline() == b"ue\n"
        assert f.seek(-4, io.SEEK_END) == len(text) - 4 and f.read(100) == b" end"
        assert f.seek(len(text) + 50) == len(text) + 50 and f.read() == b"" and f.tell() == len(text) + 50
        assert f.seek(-60, io.SEEK_CUR) == len(text) - 10 and f.read() == text[-10:]
        with pytest.raises(OSError):
            f.seek(-1)
        with pytest.raises(OSError):
            f.seek(-len(text) - 1, io.SEEK_END)
        assert f.tell() == len(text)  # a refused seek keeps the position
        with pytest.raises(ValueError):
            f.seek(0, 7)
        with pytest.raises(io.UnsupportedOperation):
            f.write(b"x")
    assert f.closed
    for call in (f.read, f.readline, lambda: f.seek(0), f.tell, lambda: f.readinto(bytearray(1))):
        with pytest.raises(ValueError):
            call()


def test_pyarrow_and_pandas_read_through_the_stream(any_broker):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": list(range(20_000)), "name": [f"n{i}" for i in range(20_000)]})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=5000)
    any_broker.write_bytes("t/p.parquet", sink.getvalue().to_pybytes())
    any_broker.write_bytes("t/a.csv", b"id,value\n1,alpha\n2,beta\n")
    with any_broker.open("t/p.parquet") as f:
        assert pa.PythonFile(f, mode="r").size() == any_broker.info("t/p.parquet").size
        assert pq.read_table(f, columns=["name"]).column("name").to_pylist() == table.column("name").to_pylist()
    with any_broker.open("t/a.csv") as f:
        assert pd.read_csv(f).to_dict("list") == {"id": [1, 2], "value": ["alpha", "beta"]}


# ------------------------------------------------------------------------------------ the read-ahead policy
class MemorySource(PositionalReader):
    """Bytes in memory, read by position; records every call (position, length asked, the caller's buffer)."""

    def __init__(self, data: bytes, most: int | None = None) -> None:
        super().__init__(len(data), "mem.bin")
        self.data, self.most = data, most
        self.calls: list[tuple[int, int, Any]] = []
        self.threads: set[str] = set()

    def _read_into(self, view: memoryview, position: int) -> int:
        self.calls.append((position, len(view), view.obj))
        self.threads.add(threading.current_thread().name)
        piece = self.data[position:position + min(len(view), self.most or len(view))]
        view[:len(piece)] = piece
        return len(piece)

    def fetched(self) -> list[tuple[int, int]]:
        calls, self.calls = self.calls, []
        return [(position, length) for position, length, _ in calls]


def stream(data: bytes, buffer_size: int = 8 * MiB, most: int | None = None, ahead: int = 0
           ) -> tuple[Any, MemorySource]:
    source = MemorySource(data, most)
    return ReadStream(source, buffer_size, ahead=ahead), source


def contiguous(fetched: list[tuple[int, int]], size: int) -> int:
    """Check the fetches cover [0, end) once each, in any order; return end."""
    position = 0
    for at, length in sorted(fetched):
        assert at == position, fetched
        position += min(length, size - at)
    return position


@settings(max_examples=500, deadline=None)
@given(ops=OPS, buffer_size=st.sampled_from([1, 1000, 64 * KiB, 100_000]), ahead=st.sampled_from([0, 1, 2]),
       most=st.sampled_from([None, 777, 5000]))
def test_any_reads_return_the_files_bytes_whatever_the_buffer_and_read_ahead(ops, buffer_size, ahead, most):
    data = payload(SIZE, 11)
    f, _ = stream(data, buffer_size, most, ahead)
    ref = io.BytesIO(data)
    with f:
        for op in ops:
            apply(f, ref, op)
        assert f.read() == ref.read()


def test_a_read_after_a_seek_fetches_a_small_window_and_a_seek_fetches_nothing():
    data = payload(BIG, 2)
    f, source = stream(data)
    assert f.size == BIG and f.name == "mem.bin"
    for at in (7, 20 * MiB, 3 * MiB + 5, BIG - 40):
        f.seek(at)
        assert source.fetched() == []
        assert f.read(100) == data[at:at + 100]
        assert source.fetched() == [(at, min(64 * KiB, BIG - at))]  # never past the end
        f.seek(at + 20)  # back into what was fetched: no request
        assert f.read(30) == data[at + 20:at + 50] and source.fetched() == []
    f.seek(BIG)
    assert f.read(10) == b"" and source.fetched() == []


def test_sequential_reads_double_the_window_up_to_the_buffer_size():
    data = payload(4 * MiB, 3)
    f, source = stream(data, buffer_size=512 * KiB)
    assert b"".join(iter(lambda: f.read(1000), b"")) == data
    fetched = source.fetched()
    assert [length for _, length in fetched[:5]] == [64 * KiB, 128 * KiB, 256 * KiB, 512 * KiB, 512 * KiB]
    assert all(length <= 512 * KiB for _, length in fetched)
    assert [at for at, _ in fetched] == sorted(at for at, _ in fetched)  # in order: no thread without ahead
    assert contiguous(fetched, len(data)) == len(data) and source.threads == {threading.current_thread().name}


@pytest.mark.parametrize("chunk", [1000, 300 * KiB])
def test_a_sequential_stream_fetches_the_next_windows_in_the_background(chunk):
    data = payload(6 * MiB, 9)
    f, source = stream(data, buffer_size=256 * KiB, ahead=2)
    with f:
        assert b"".join(iter(lambda: f.read(chunk), b"")) == data
        fetched = source.fetched()
    assert contiguous(fetched, len(data)) == len(data)  # each byte once, nothing past the end
    assert all(length <= 300 * KiB for _, length in fetched)
    assert any(name.startswith("brokers-read-ahead") for name in source.threads)


def test_a_seek_drops_the_windows_fetched_ahead():
    data = payload(16 * MiB, 10)
    f, source = stream(data, buffer_size=256 * KiB, ahead=2)
    assert f.read(2 * MiB) == data[:2 * MiB] and f.read(10) == data[2 * MiB:2 * MiB + 10]  # streaming now
    f.seek(9 * MiB)
    assert f.read(100) == data[9 * MiB:9 * MiB + 100]
    f.close()  # waits for the fetches in flight
    fetched = source.fetched()
    assert sum(length for _, length in fetched) <= 2 * MiB + 10 + 3 * 256 * KiB + 64 * KiB, fetched
    assert (9 * MiB, 64 * KiB) in fetched  # a read elsewhere is a small window again, not a stream
    assert source.fetched() == []  # nothing runs after close


def test_large_reads_go_straight_into_the_callers_memory():
    data = payload(8 * MiB, 4)
    f, source = stream(data, buffer_size=256 * KiB, most=300 * KiB)  # the source answers short reads
    target = bytearray(3 * MiB)
    f.seek(100)
    assert f.readinto(target) == len(target) and target == data[100:100 + 3 * MiB]
    calls, source.calls = source.calls, []
    assert all(obj is target for _, _, obj in calls)  # no buffer in between
    assert calls[0][:2] == (100, 3 * MiB)
    assert f.read(2 * MiB) == data[100 + 3 * MiB:100 + 5 * MiB]
    assert f.read() == data[100 + 5 * MiB:]
    assert f.read1(10) == b"" and f.tell() == len(data)


def test_a_source_that_ends_early_ends_the_stream():
    f, _ = stream(payload(1000), most=None)
    f.raw.data = f.raw.data[:600]  # the file shrank after it was opened
    assert f.read() == payload(1000)[:600]
    assert f.read(10) == b""


def test_a_forked_child_reads_on_without_the_parents_threads():
    data = payload(4 * MiB, 12)

    class Slow(MemorySource):
        def _read_into(self, view: memoryview, position: int) -> int:
            if threading.current_thread().name.startswith("brokers-read-ahead"):
                time.sleep(0.3)  # still running when the process forks
            return super()._read_into(view, position)

    f = ReadStream(Slow(data), 256 * KiB, ahead=2)
    assert f.read(MiB) == data[:MiB] and f.read(1000) == data[MiB:MiB + 1000]  # streaming, windows in flight
    pid = os.fork()
    if pid == 0:  # the child: the threads fetching ahead stayed in the parent
        try:
            os._exit(0 if b"".join(iter(lambda: f.read(100 * KiB), b"")) == data[MiB + 1000:] else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 30  # a guard against a hang, not a measure
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert done[0] == pid and os.waitstatus_to_exitcode(done[1]) == 0, "the child hung or read other bytes"
    assert f.read() == data[MiB + 1000:]
    f.close()


# ------------------------------------------------------------------------------- S3, counted at the server
RANGE = re.compile(r"bytes=(\d+)-(\d+)$")


def gets(server: Any, mark: int) -> list[Any]:
    seen = server.since(mark)
    assert all(r.method == "GET" for r in seen), [(r.method, r.range) for r in seen]
    return seen


@pytest.mark.s3
def test_s3_random_reads_fetch_close_to_what_is_read(s3_broker, s3_server):
    data = payload(BIG, 5)
    s3_broker.write_bytes("big.bin", data)
    rng = random.Random(13)
    with s3_broker.open("big.bin") as f:
        assert f.size == BIG
        for _ in range(4):
            at = rng.randrange(BIG - 100)
            mark = s3_server.mark()
            f.seek(at)
            assert s3_server.since(mark) == []  # a seek fetches nothing
            assert f.read(100) == data[at:at + 100]
            seen = gets(s3_server, mark)
            assert len(seen) == 1 and seen[0].status == 206, [(r.range, r.status) for r in seen]
            first, last = map(int, RANGE.match(seen[0].range or "").groups())  # a bounded range
            assert first == at and last - first + 1 <= MiB and seen[0].sent == last - first + 1 <= MiB
            assert seen[0].headers.get("if-match")  # a stream never mixes two versions


@pytest.mark.s3
@pytest.mark.parametrize("chunk", [100 * KiB, 8 * MiB])
def test_s3_sequential_read_fetches_each_byte_once(s3_broker, s3_server, chunk):
    data = payload(BIG, 6)
    s3_broker.write_bytes("big.bin", data)
    mark = s3_server.mark()
    with s3_broker.open("big.bin") as f:
        assert b"".join(iter(lambda: f.read(chunk), b"")) == data
    seen = gets(s3_server, mark + 1)  # after the HEAD of open()
    ranges = [tuple(map(int, RANGE.match(r.range or "").groups())) for r in seen]
    assert all(r.sent == last - first + 1 for r, (first, last) in zip(seen, ranges, strict=True))
    assert contiguous([(first, last - first + 1) for first, last in ranges], BIG) == BIG  # each byte once
    assert sum(r.sent for r in seen) == BIG and all(r.headers.get("if-match") for r in seen)
    assert len(seen) <= 12  # the window grew: large requests, not one per read


@pytest.mark.s3
def test_s3_a_body_that_breaks_is_asked_again_from_the_byte_reached(s3_broker, s3_server, monkeypatch):
    from botocore.exceptions import ResponseStreamingError
    from botocore.response import StreamingBody

    data = payload(3 * MiB, 7)
    s3_broker.write_bytes("b.bin", data)
    real_read, broken = StreamingBody.read, []

    def read(self: Any, amt: int | None = None) -> bytes:
        if not broken and self._amount_read >= 512 * KiB:  # the connection breaks 512 KiB into the answer
            broken.append(True)
            raise ResponseStreamingError(error="connection reset by the test")
        return bytes(real_read(self, amt))

    monkeypatch.setattr(StreamingBody, "read", read)
    with s3_broker.open("b.bin") as f:
        f.seek(100)
        mark = s3_server.mark()
        assert f.read(2 * MiB) == data[100:100 + 2 * MiB]
    assert broken
    ranges = [r.range for r in gets(s3_server, mark)]
    assert ranges == [f"bytes=100-{100 + 2 * MiB - 1}", f"bytes={100 + 512 * KiB}-{100 + 2 * MiB - 1}"]


# ------------------------------------------------------------------ NFS direct mode, counted at the reader
@pytest.mark.nfs
@pytest.mark.parametrize("version", ["3", "4.1"])
def test_nfs_random_reads_fetch_close_to_what_is_read(make_nfs_broker, monkeypatch, version):
    import nfs_rs

    broker = make_nfs_broker(version)
    data = payload(BIG, 8)
    broker.write_bytes("big.bin", data)
    sent: list[int] = []  # bytes the server sent, READ by READ
    read_at, readinto_at = nfs_rs.File.read_at, nfs_rs.File.readinto_at

    def spy_read_at(self: Any, offset: int, size: int = -1) -> bytes:
        got = read_at(self, offset, size)
        sent.append(len(got))
        return got

    def spy_readinto_at(self: Any, target: Any, offset: int) -> int:
        count = readinto_at(self, target, offset)
        sent.append(count)
        return count

    monkeypatch.setattr(nfs_rs.File, "read_at", spy_read_at)
    monkeypatch.setattr(nfs_rs.File, "readinto_at", spy_readinto_at)
    rng = random.Random(17)
    with broker.open("big.bin") as f:
        for _ in range(4):
            at = rng.randrange(BIG - 100)
            sent.clear()
            f.seek(at)
            assert f.read(100) == data[at:at + 100]
            assert 100 <= sum(sent) <= MiB, sent
    with broker.open("big.bin") as f:
        sent.clear()
        assert b"".join(iter(lambda: f.read(100 * KiB), b"")) == data
        assert sum(sent) == BIG  # a sequential read fetches each byte once
        assert len(sent) <= 12
