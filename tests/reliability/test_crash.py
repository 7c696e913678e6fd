"""Crash safety: a child writing through a broker is SIGKILLed at random points, 50 times per broker type.

After each kill, a reader sees the old content or the new one (the last version the child reported as
committed, or the one it was writing), never a torn file; ``list()`` shows no temporary file. Writes cut off by
a kill leave leftovers (temporary files, incomplete multipart uploads) that ``cleanup(older_than=...)`` removes:
not while they are younger than ``older_than``, all of them once they are older. The test asserts that the kills
really cut writes off (leftovers appeared after a share of them), not only that nothing tore.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import struct
import time

import pytest

import brokers
from brokers.backends.s3 import S3Broker, TransferSettings

RUNS = 50
READY = 0  # reported once the child is warmed up; versions start at 1,000,000
MiB = 1024 * 1024
TARGET = "out/result.bin"


def content(version: int, size: int) -> bytes:
    """A self-describing version: header (version, size, digest of the rest) and a pattern body."""
    seed = hashlib.sha256(str(version).encode()).digest()
    body = (seed * (size // len(seed) + 1))[:size]
    return struct.pack(">QQ", version, size) + hashlib.sha256(body).digest() + body


def decode(data: bytes) -> int:
    """Return the version of a complete file; fail on anything torn."""
    assert len(data) >= 48, f"torn: only {len(data)} bytes"
    version, size = struct.unpack(">QQ", data[:16])
    assert len(data) == 48 + size, f"torn: version {version} should have {48 + size} bytes, has {len(data)}"
    assert data == content(version, size), f"torn: version {version} has the right size but wrong bytes"
    return version


SETTINGS = {
    # backend: (sizes written by the child, longest delay before the kill in seconds)
    "host": ([0, 1000, 200_000, 1 * MiB], 0.03),
    "nfs3": ([0, 1000, 200_000, 1 * MiB], 0.15),
    "s3": ([0, 1000, 200_000, 6 * MiB], 0.25),  # 6 MiB: a multipart upload (threshold 5 MiB)
}


@pytest.fixture
def crash_broker(request, tmp_path):
    backend = request.param
    if backend == "host":
        return backend, request.getfixturevalue("host_broker")
    if backend == "nfs3":
        broker = request.getfixturevalue("nfs3_contract_broker")
        assert broker.mode == "direct"
        return backend, broker
    config = brokers.load_configuration(request.getfixturevalue("s3_config"))
    return backend, S3Broker(config, transfer=TransferSettings(multipart_threshold=5 * MiB, part_size=5 * MiB,
                                                               max_concurrency=2))


def _child(broker, first_version: int, sizes: list[int], report: int, mode: str) -> None:
    """Write versions forever (killed by the parent); report each committed version on the pipe."""
    rng = random.Random(first_version)
    version = first_version
    broker.exists("out/keep.txt")  # warm up (a forked S3 broker builds its client, NFS connects)
    os.write(report, struct.pack(">Q", READY))
    while True:
        data = content(version, rng.choice(sizes))
        how = rng.choice(["write_bytes", "open_wb"]) if mode == "mixed" else mode
        if how == "write_bytes":
            broker.write_bytes(TARGET, data)
        elif how == "open_wb":
            with broker.open(TARGET, "wb", buffer_size=256 * 1024) as f:
                for i in range(0, len(data), 300_000):
                    f.write(data[i:i + 300_000])
        elif how == "hang":  # leave a write open forever: guarantees a leftover for cleanup
            f = broker.open("out/hung.bin", "wb", buffer_size=64 * 1024)
            f.write(content(version, 6 * MiB))
            f.flush()
            os.write(report, struct.pack(">Q", version))
            while True:
                time.sleep(1)
        os.write(report, struct.pack(">Q", version))
        version += 1


def run_and_kill(broker, first_version: int, sizes: list[int], delay: float, mode: str = "mixed") -> list[int]:
    """Fork a writer, SIGKILL it after ``delay`` seconds; return the versions it reported as committed."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read_end)
            _child(broker, first_version, sizes, write_end, mode)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    reaped = False
    try:
        ready = os.read(read_end, 8)  # the child is warmed up: the kill lands among its writes
        assert ready == struct.pack(">Q", READY), "the writer died before it was ready"
        if mode == "hang":
            os.read(read_end, 8)  # wait until the write is under way
        else:
            time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        reaped = True
        assert os.WIFSIGNALED(status), f"the writer ended by itself (status {status}) instead of being killed"
        reported = b""
        while chunk := os.read(read_end, 65536):
            reported += chunk
    finally:
        os.close(read_end)
        if not reaped:  # the test failed (or timed out) first: never leave a writer running after it
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return [struct.unpack(">Q", reported[i:i + 8])[0] for i in range(0, len(reported) - len(reported) % 8, 8)]


def leftovers(backend: str, broker, request) -> int:
    """Count what crashed writes left behind (temporary files; incomplete multipart uploads)."""
    if backend == "host":
        return sum(n.startswith(".brokers-tmp-") for _, _, names in os.walk(broker.host_path) for n in names)
    if backend == "nfs3":
        backing = request.getfixturevalue("nfs_workspace").backing
        return sum(n.startswith(".brokers-tmp-") for _, _, names in os.walk(backing) for n in names)
    client, bucket = request.getfixturevalue("s3_client"), request.getfixturevalue("s3_bucket")
    return len(client.list_multipart_uploads(Bucket=bucket, Prefix="ws/").get("Uploads", []))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("crash_broker", ["host", "nfs3", "s3"], indirect=True)
def test_sigkill_during_writes_never_tears_a_file(crash_broker, request):
    backend, broker = crash_broker
    sizes, max_delay = SETTINGS[backend]
    rng = random.Random(7)
    broker.write_bytes("out/keep.txt", b"unrelated file")
    current: int | None = None
    committed_total = killed_mid_write = interrupted = 0
    for run in range(RUNS):
        before = leftovers(backend, broker, request)
        first = (run + 1) * 1_000_000
        reported = run_and_kill(broker, first, sizes, rng.uniform(0, max_delay))
        committed_total += len(reported)
        if backend == "s3":
            # A request moto had fully received when the child died is still carried out (a server does not
            # cancel a request because its client vanished): let such a request finish before reading.
            time.sleep(0.1)
        # The file holds the last version reported, or the one the child was committing when it died, or (if
        # nothing was reported) the old content.
        allowed = {reported[-1], reported[-1] + 1} if reported else {current, first}
        try:
            seen: int | None = decode(broker.read_bytes(TARGET))
        except brokers.FileNotFound:
            seen = None
        assert seen in allowed, f"run {run}: found version {seen}, expected one of {allowed}"
        killed_mid_write += seen == (reported[-1] + 1 if reported else first)
        interrupted += leftovers(backend, broker, request) > before
        current = seen
        names = sorted(info.path for info in broker.list())
        expected = sorted(["out/keep.txt"] + ([TARGET] if seen is not None else []))
        assert names == expected, f"run {run}: list() shows {names}"
    # One more writer killed while a large write is surely open: a leftover is guaranteed.
    run_and_kill(broker, 999_000_000, sizes, 0, mode="hang")
    assert broker.read_bytes("out/keep.txt") == b"unrelated file"
    assert "out/hung.bin" not in {info.path for info in broker.list()}
    left = leftovers(backend, broker, request)
    assert left >= 1
    assert broker.cleanup(older_than=3600) == 0, "cleanup removed a leftover younger than older_than"
    assert leftovers(backend, broker, request) == left
    assert broker.cleanup(older_than=0) == left
    assert leftovers(backend, broker, request) == 0
    assert sorted(info.path for info in broker.list()) == sorted(["out/keep.txt"] + ([TARGET] if current else []))
    # The kills land among writes, not between runs: most writers had committed versions, and a share of the
    # kills cut a write off half-way (a temporary file or an open multipart upload appeared).
    assert committed_total >= RUNS, f"only {committed_total} versions were committed by {RUNS} writers"
    assert interrupted >= RUNS // 10, f"only {interrupted} of {RUNS} kills cut a write off"
    print(f"\n{backend}: {RUNS + 1} writers killed, {committed_total} versions committed before the kills, "
          f"{interrupted} kills cut a write off, {killed_mid_write} landed after a version was in place but before "
          f"it was reported, "
          f"{left} leftovers cleaned")
