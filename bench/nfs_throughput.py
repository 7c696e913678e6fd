"""``python -m bench.nfs_throughput [--size-mib 64] [--repeat 5]``: NFS direct-mode throughput and usage.

Starts NFS-Ganesha on loopback (the test fixture's :class:`~tests.fixtures.nfs.GaneshaServer`), then times a
whole-file write and read of the same payload through

- the broker in direct mode (``write_bytes``/``read_bytes``, and ``open`` streams with 8 MiB chunks),
- raw nfs-rs (one ``File.write``/``File.read`` call, what the broker is built on),
- libnfs ``nfs-cp`` (Debian libnfs-utils, an independent client; includes its process start; NFSv3 only,
  as libnfs 4.0's NFSv4 writes fail against Ganesha with "Failed to write to dest file"),

for NFSv3 and NFSv4.1, alternating contenders, and prints medians in MB/s (10^6 bytes per second). Then compares
``usage()`` of the whole export with ``df`` and ``du`` on the backing directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import brokers
from tests.fixtures.nfs import GaneshaServer

CHUNK = 8 << 20


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nfs_throughput")
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = os.urandom(args.size_mib << 20)
    with tempfile.TemporaryDirectory(prefix="brokers-nfs-bench-") as tmp:
        work = Path(tmp)
        local_in, local_out = work / "in.bin", work / "out.bin"
        local_in.write_bytes(data)
        server = GaneshaServer(work / "server")
        server.base.mkdir()
        server.start()
        try:
            (server.export_dir / "ws").mkdir()
            rows: list[tuple[str, str, str, float]] = []
            for version in ("3", "4.1"):
                rows += run_version(server, version, data, args.repeat, local_in, local_out)

            print(f"\n{args.size_mib} MiB, median of {args.repeat}, MB/s (10^6 B/s), loopback NFS-Ganesha VFS\n")
            print("| NFS | client | write MB/s | read MB/s |")
            print("|---|---|---:|---:|")
            by: dict[tuple[str, str], dict[str, float]] = {}
            for version, label, op, rate in rows:
                by.setdefault((version, label), {})[op] = rate
            for (version, label), rates in by.items():
                print(f"| {version} | {label} | {rates['write']:.0f} | {rates['read']:.0f} |")

            usage_report(server)
        finally:
            server.stop()


Contenders = dict[str, tuple[Callable[[], object], Callable[[], object]]]


def contenders(server: GaneshaServer, version: str, data: bytes, local_in: Path, local_out: Path
               ) -> tuple[Contenders, Callable[[str], None], Callable[[], None]]:
    """Build every contender's (write, read) pair for one protocol version (also used by ``python -m bench``).

    Returns:
        The contenders by label, a ``setup(label)`` to call (untimed) before a contender's write, and a
        ``close()`` for the connections.
    """
    import nfs_rs

    size = len(data)
    cfg = {"broker": {"type": "nfs", "nfs_path": "127.0.0.1:/export/ws", "nfs_version": version,
                      "nfs_port": server.nfs_port, "mount_port": server.mount_port}}
    broker = brokers.get_broker(cfg)
    raw = nfs_rs.Client.connect(server.url("ws", version))

    def b_write() -> None:
        broker.write_bytes("b.bin", data)

    def b_read() -> None:
        assert len(broker.read_bytes("b.bin")) == size

    def s_write() -> None:
        with broker.open("s.bin", "wb", buffer_size=CHUNK) as f:
            for i in range(0, size, CHUNK):
                f.write(data[i:i + CHUNK])

    def s_read() -> None:
        total = 0
        with broker.open("s.bin", buffer_size=CHUNK) as f:
            while chunk := f.read(CHUNK):
                total += len(chunk)
        assert total == size

    def r_write() -> None:
        for attempt in range(3):  # raw nfs-rs has no retries; the broker retries such failures itself
            try:
                with raw.open("r.bin", "wb") as f:
                    f.write(data)
                return
            except nfs_rs.NfsError as exc:
                print(f"  raw nfs-rs write failed ({type(exc).__name__}: {exc}), attempt {attempt + 1}")
        raise RuntimeError("raw nfs-rs write kept failing")

    def r_read() -> None:
        with raw.open("r.bin", "rb") as f:
            assert len(f.read()) == size

    url = (f"nfs://127.0.0.1/export/ws/c.bin?version=3&nfsport={server.nfs_port}&mountport={server.mount_port}")

    def c_write() -> None:
        done = subprocess.run(["nfs-cp", str(local_in), url], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr

    def c_read() -> None:
        local_out.unlink(missing_ok=True)
        subprocess.run(["nfs-cp", url, str(local_out)], check=True, capture_output=True)

    def setup(label: str) -> None:
        if label == "libnfs nfs-cp":  # nfs-cp creates exclusively: remove the targets first (not timed)
            raw.remove("c.bin", missing_ok=True)  # through NFS: Ganesha caches entries of the backing directory
            local_out.unlink(missing_ok=True)

    def close() -> None:
        raw.close()
        broker.close()  # type: ignore[attr-defined]

    found: Contenders = {
        "broker write_bytes/read_bytes": (b_write, b_read),
        "broker open() 8 MiB chunks": (s_write, s_read),
        "raw nfs-rs File.write/read": (r_write, r_read),
    }
    if shutil.which("nfs-cp") and version == "3":  # libnfs 4.0's NFSv4 writes fail against Ganesha
        found["libnfs nfs-cp"] = (c_write, c_read)
    return found, setup, close


def run_version(server: GaneshaServer, version: str, data: bytes, repeat: int, local_in: Path, local_out: Path
                ) -> list[tuple[str, str, str, float]]:
    """Time every contender's write and read for one protocol version; return (version, label, op, MB/s)."""
    size = len(data)
    found, setup, close = contenders(server, version, data, local_in, local_out)
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeat):
        for label, (write, read) in found.items():
            setup(label)
            times.setdefault((label, "write"), []).append(timed(write))
            times.setdefault((label, "read"), []).append(timed(read))
    close()
    return [(f"v{version}", label, op, size / statistics.median(values) / 1e6)
            for (label, op), values in times.items()]


def usage_report(server: GaneshaServer) -> None:
    """Compare the broker's usage of the whole export with df and du on the backing directory."""
    for version in ("3", "4.1"):
        cfg = {"broker": {"type": "nfs", "nfs_path": "127.0.0.1:/export", "nfs_version": version,
                          "nfs_port": server.nfs_port, "mount_port": server.mount_port}}
        broker = brokers.get_broker(cfg)
        start = time.perf_counter()
        usage = broker.usage()
        took = time.perf_counter() - start
        df = subprocess.run(["df", "-B1", "--output=size,avail", str(server.export_dir)],
                            capture_output=True, text=True, check=True).stdout.split()[-2:]
        du = subprocess.run(["du", "-sb", "--apparent-size", str(server.export_dir)],
                            capture_output=True, text=True, check=True).stdout.split()[0]
        files = sum(len(f) for _, _, f in os.walk(server.export_dir))
        print(f"\nusage() v{version} ({usage.method}, {took * 1000:.0f} ms): used {usage.used_size} B in "
              f"{usage.file_count} files, total {usage.total_size} B, free {usage.free_size} B")
        print(f"df -B1: total {df[0]} B, avail {df[1]} B; du -sb --apparent-size: {du} B (includes directories); "
              f"{files} files")


if __name__ == "__main__":
    main()
