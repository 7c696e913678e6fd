"""Host benchmarks: a large copy vs ``cp``, usage of a big tree vs ``du -sb``, validation throughput."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import brokers

from .harness import Case


def drop(path: Path) -> None:
    path.unlink(missing_ok=True)


def copy_case(work: Path, size: int, repeat: int) -> Case:
    ws = work / "ws"
    ws.mkdir(parents=True, exist_ok=True)
    src = ws / "big.bin"
    with open(src, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            f.write(block)
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(ws)}})
    out = work / "out.bin"
    return Case(
        f"host download {size >> 20} MiB",
        {
            "brokers download": lambda: broker.download("big.bin", out),
            "cp": lambda: subprocess.run(["cp", str(src), str(out)], check=True),
            "shutil.copyfile": lambda: shutil.copyfile(src, out),
        },
        repeat=repeat,
        setup=lambda: drop(out),
    )


def usage_case(work: Path, files: int, repeat: int) -> Case:
    ws = work / "tree"
    if not ws.exists():
        per_dir = 50
        for i in range(files):
            d = ws / f"a{i // 5000}" / f"b{(i // per_dir) % 100}" / f"c{i // per_dir}"
            if i % per_dir == 0:
                d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i}").write_bytes(b"x" * (i % 97))
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(ws)}})

    def du() -> None:
        subprocess.run(["du", "-sb", str(ws)], check=True, capture_output=True)

    return Case(f"host usage {files} files", {"brokers usage()": broker.usage, "du -sb": du}, repeat=repeat)


def validation_case(count: int, repeat: int) -> Case:
    configs = [{"broker": {"type": "s3", "bucket_name": f"bucket-{i}", "region_name": "us-east-1",
                           "prefix": f"p/{i}/"}} for i in range(count)]
    configs += [{"broker": {"type": "nfs", "nfs_path": f"srv{i}:/exports/{i}"}} for i in range(count)]

    def run() -> None:
        for c in configs:
            brokers.validate_configuration(c, check_access=False)

    case = Case(f"validate {2 * count} configurations", {"brokers validate_configuration": run}, repeat=repeat)
    case.unit = "validations"
    return case


def per_second(case: Case, n: int) -> str:
    med = sorted(case.times[next(iter(case.times))])[len(case.times[next(iter(case.times))]) // 2]
    return f"{n / med:,.0f} validations/s"


def warm(path: Path) -> None:
    """Read a file once so that every contender starts from the page cache."""
    with open(path, "rb") as f:
        while f.read(8 << 20):
            pass
    time.sleep(0)
