"""NFS cases for ``python -m bench``: the contenders of :mod:`bench.nfs_throughput` as side-by-side cases.

The broker in direct mode (nfs-rs underneath) writes and reads one file, whole (``write_bytes``/``read_bytes``)
and streamed (``open``, 8 MiB chunks), against raw nfs-rs (one ``File.write``/``File.read``, the floor the
broker builds on) and libnfs ``nfs-cp`` (NFSv3 only; it includes its process start), on NFS-Ganesha.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .harness import Case
from .servers import Unavailable

MiB = 1 << 20


def nfs_cases(ganesha: Any, work: Path, size: int, repeat: int, versions: tuple[str, ...] = ("3", "4.1")
              ) -> list[Case]:
    """Write and read of one ``size``-byte file per protocol version."""
    try:
        import nfs_rs  # noqa: F401
    except ImportError as exc:
        raise Unavailable("nfs-rs: pip install 'brokers[nfs]'") from exc
    if shutil.which("nfs-cp") is None:
        raise Unavailable("nfs-cp: apt-get install libnfs-utils")
    from .nfs_throughput import contenders

    server = ganesha.server
    (server.export_dir / "ws").mkdir(exist_ok=True)
    data = os.urandom(size)
    local_in, local_out = work / "nfs-in.bin", work / "nfs-out.bin"
    local_in.write_bytes(data)
    cases = []
    for version in versions:
        found, setup, _close = contenders(server, version, data, local_in, local_out)
        label = {k: k.replace("broker ", "brokers ", 1) for k in found}  # "brokers ...": the broker's rows
        original = {v: k for k, v in label.items()}
        mib = size // MiB
        cases.append(Case(f"NFSv{version} write {mib} MiB", {label[k]: w for k, (w, _) in found.items()},
                          repeat=repeat, label_setup=lambda shown, setup=setup, original=original:
                          setup(original[shown])))
        cases.append(Case(f"NFSv{version} read {mib} MiB", {label[k]: r for k, (_, r) in found.items()},
                          repeat=repeat))
    return cases
