"""NFS benchmarks: the broker (direct mode, nfs-rs) vs raw nfs-rs and libnfs ``nfs-cp`` against NFS-Ganesha.

Write: a local file into the export; read: an exported file to a local file. Raw nfs-rs is the floor the
broker builds on (the broker adds an atomic temporary name + RENAME on write, and a bounded stream on read).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import brokers

from .harness import Case
from .servers import Unavailable

MiB = 1 << 20
# Raw nfs-rs uses the broker's own call sizes, so the ratio shows what the broker adds around the calls.
WRITE_CHUNK = 64 * MiB
READ_CHUNK = 16 * MiB


def _raw_write(client: Any, remote: str, local: Path) -> None:
    with open(local, "rb") as src, client.open(remote, "wb") as f:
        offset = 0
        while chunk := src.read(WRITE_CHUNK):
            offset += f.write_at(chunk, offset)


def _raw_read(client: Any, remote: str, local: Path, size: int) -> None:
    with client.open(remote, "rb") as f, open(local, "wb") as out:
        offset = 0
        while offset < size:
            chunk = f.read_at(offset, min(READ_CHUNK, size - offset))
            if not chunk:
                break
            out.write(chunk)
            offset += len(chunk)


def _clear(client: Any) -> None:
    """Remove nfs-cp's target through NFS (it refuses to overwrite; Ganesha caches what is under its export)."""
    with contextlib.suppress(FileNotFoundError):
        client.remove("nfscp.bin")


def nfs_cases(ganesha: Any, work: Path, size: int, repeat: int, version: str = "3") -> list[Case]:
    """Write and read of one ``size``-byte file: broker vs raw nfs-rs vs ``nfs-cp``."""
    try:
        import nfs_rs
    except ImportError as exc:
        raise Unavailable("nfs-rs: pip install 'brokers[nfs]'") from exc
    nfs_cp = shutil.which("nfs-cp")
    if nfs_cp is None:
        raise Unavailable("nfs-cp: apt-get install libnfs-utils")
    server = ganesha.server
    name = f"bench-v{version.replace('.', '')}"
    (server.export_dir / name).mkdir(exist_ok=True)
    broker = brokers.get_broker({"broker": {
        "type": "nfs", "nfs_path": f"127.0.0.1:{server.pseudo}/{name}", "nfs_version": version,
        "nfs_port": server.nfs_port, "mount_port": server.mount_port}})
    client = nfs_rs.Client.connect(server.url(name, version=version))
    local = work / "nfs-src.bin"
    with open(local, "wb") as f:
        block = os.urandom(MiB)
        for _ in range(size // MiB):
            f.write(block)
    out = work / "nfs-out.bin"
    libnfs_url = (f"nfs://127.0.0.1{server.pseudo}/{name}/{{}}?nfsport={server.nfs_port}"
                  f"&mountport={server.mount_port}&version={version.split('.')[0]}")

    def cp(src: str, dst: str) -> None:
        result = subprocess.run([nfs_cp, src, dst], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"nfs-cp failed: {result.stderr.strip()[-300:]}")

    mib = size // MiB
    write = Case(f"NFSv{version} write {mib} MiB", {
        "brokers upload": lambda: broker.upload(local, "w/broker.bin"),
        "nfs-rs write_at": lambda: _raw_write(client, "raw.bin", local),
        "nfs-cp": lambda: cp(str(local), libnfs_url.format("nfscp.bin")),
    }, repeat=repeat, setup=lambda: _clear(client))
    broker.upload(local, "big.bin")
    read = Case(f"NFSv{version} read {mib} MiB", {
        "brokers download": lambda: broker.download("big.bin", out),
        "nfs-rs read_at": lambda: _raw_read(client, "big.bin", out, size),
        "nfs-cp": lambda: cp(libnfs_url.format("big.bin"), str(out)),
    }, repeat=repeat, setup=lambda: out.unlink(missing_ok=True))
    return [write, read]
