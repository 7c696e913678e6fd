"""``python -m bench.bench_parquet_columns [--quick] [--no-time]``: one column of a 10-column parquet file on S3.

A 50 MB parquet file (10 random float64 columns, one row group, plain encoding, snappy) is read one column at a
time with ``pd.read_parquet(columns=...)``, ``pq.read_table(columns=...)`` and ``ds.dataset(...).to_table(columns=
...)`` through three filesystems on the same server: ``broker.fs`` (a workspace under a prefix), pyarrow's own
``pyarrow.fs.S3FileSystem`` and plain s3fs (defaults).

- **Bytes**: every response body the server sends during one read (GETs and listings; a warm-up read first),
  counted by the test suite's recording middleware around moto (:class:`bench.servers.MotoServer`), next to what
  the read needs: the column's chunks plus the footer (metadata + 8), from the file's own metadata. Target for
  the broker: at most 1.5x.
- **Time**: the same reads side by side on s3rver (objects on disk, ranged GETs served without reading the whole
  object), through :class:`bench.harness.Case`.

Every read's values are checked against the column written.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import brokers

from .harness import Case, table, versions
from .servers import REGION, MotoServer, S3Endpoint, S3rver, Unavailable, running

MB = 1_000_000
COLUMNS = [f"c{i}" for i in range(10)]
COLUMN = "c3"
PREFIX = "bench"
KEY = "tables/t.parquet"
LIMIT = 1.5


def _peer_versions() -> str:
    from importlib.metadata import version

    return ", " + ", ".join(f"{d} {version(d)}" for d in ("pandas", "pyarrow", "s3fs", "fsspec", "moto"))


def parquet_file(size: int) -> tuple[bytes, Any]:
    """A parquet file of about ``size`` bytes (10 random float64 columns) and the column written."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = size // (8 * len(COLUMNS))
    rng = np.random.default_rng(13)
    table = pa.table({c: rng.random(rows) for c in COLUMNS})
    sink = io.BytesIO()
    pq.write_table(table, sink, use_dictionary=False)  # random floats: a dictionary would be dropped anyway
    return sink.getvalue(), table.column(COLUMN).to_numpy()


def needed_bytes(data: bytes) -> tuple[int, int]:
    """The column's chunks (all row groups) and the footer (serialized metadata + 8), from the file's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(pa.BufferReader(data)).metadata
    index = COLUMNS.index(COLUMN)
    column = sum(meta.row_group(g).column(index).total_compressed_size for g in range(meta.num_row_groups))
    return column, meta.serialized_size + 8


def readers() -> dict[str, Callable[[Any, str], Any]]:
    """The three one-column reads, each given a filesystem and the file's path on it."""
    import pandas as pd
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    return {
        "pd.read_parquet": lambda fs, p: pd.read_parquet(p, filesystem=fs, columns=[COLUMN])[COLUMN].to_numpy(),
        "pq.read_table": lambda fs, p: pq.read_table(p, filesystem=fs, columns=[COLUMN])[COLUMN].to_numpy(),
        "ds.dataset.to_table": lambda fs, p: ds.dataset(p, filesystem=fs, format="parquet").to_table(
            columns=[COLUMN])[COLUMN].to_numpy(),
    }


def filesystems(server: S3Endpoint, bucket: str) -> dict[str, tuple[Any, str]]:
    """Each contender's filesystem on ``bucket`` and the file's path there (the broker's first)."""
    import pyarrow.fs as pafs

    broker = brokers.get_broker(server.broker_config(bucket, prefix=PREFIX))
    arrow = pafs.S3FileSystem(access_key=server.access_key, secret_key=server.secret_key, region=REGION,
                              endpoint_override=urlsplit(server.endpoint).netloc, scheme="http")
    key = f"{bucket}/{PREFIX}/{KEY}"
    return {"brokers broker.fs": (broker.fs, KEY), "pyarrow S3FileSystem": (arrow, key),
            "s3fs (defaults)": (server.s3fs(), key)}


def upload(server: S3Endpoint, stem: str, data: bytes) -> str:
    bucket = server.new_bucket(stem)
    server.boto3_client().put_object(Bucket=bucket, Key=f"{PREFIX}/{KEY}", Body=data)
    return bucket


def _checked(read: Callable[[Any, str], Any], fs: Any, path: str, expected: Any) -> Callable[[], None]:
    import numpy as np

    def run() -> None:
        if not np.array_equal(read(fs, path), expected):
            raise RuntimeError(f"{path}: the column read back differs from the column written")

    return run


def byte_rows(server: MotoServer, data: bytes, expected: Any) -> list[str]:
    """One row per reader and filesystem: requests and body bytes the server sent, and the ratio to the need."""
    column, footer = needed_bytes(data)
    need = column + footer
    bucket = upload(server, "bench-columns", data)
    out = [f"One column of a {len(data) / MB:.1f} MB, {len(COLUMNS)}-column parquet file: column {column:,} bytes "
           f"+ footer {footer:,} = {need:,} bytes; counted at the server (moto + recording middleware). "
           f"Target: broker.fs <= {LIMIT}x.", "",
           "| read | filesystem | requests | body bytes sent | sent / (column + footer) | sent / file |",
           "|---|---|---|---|---|---|"]
    for reader, read in readers().items():
        for label, (fs, path) in filesystems(server, bucket).items():
            run = _checked(read, fs, path, expected)
            run()  # warm: a first request may be a credential lookup or a bucket region probe
            mark = server.mark()
            run()
            seen = server.since(mark)
            sent = sum(r.sent for r in seen)
            out.append(f"| {reader} | {label} | {len(seen)} | {sent:,} | {sent / need:.2f} | "
                       f"{sent / len(data):.2f} |")
    return out


def time_cases(server: S3Endpoint, data: bytes, expected: Any, repeat: int) -> list[Case]:
    """One case per reader: broker.fs, pyarrow's S3FileSystem and s3fs alternately."""
    bucket = upload(server, "bench-columns", data)
    fss = filesystems(server, bucket)
    return [Case(f"one column of {len(data) // MB} MB parquet, {reader} ({server.name})",
                 {label: _checked(read, fs, path, expected) for label, (fs, path) in fss.items()}, repeat=repeat)
            for reader, read in readers().items()]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_parquet_columns")
    parser.add_argument("--quick", action="store_true", help="an 8 MB file, one timed run: a smoke run")
    parser.add_argument("--no-time", action="store_true", help="count bytes only (no s3rver)")
    args = parser.parse_args()
    strict = bool(os.environ.get("BROKERS_REQUIRE_REAL_SERVERS"))
    started = time.monotonic()
    data, expected = parquet_file((8 if args.quick else 50) * MB)
    notes: list[str] = []
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="brokers-bench-") as tmp:
        work = Path(tmp)
        with running(MotoServer(work)) as moto:
            rows = byte_rows(moto, data, expected)
        print("\n".join(rows), flush=True)
        if not args.no_time:
            try:
                with running(S3rver(work)) as s3rver:
                    cases = time_cases(s3rver, data, expected, 1 if args.quick else 5)
                    for case in cases:
                        print(f"running {case.name} ...", flush=True)
                        case.run()
            except Unavailable as exc:
                if strict:
                    print(f"FAILED: s3rver: {exc} (BROKERS_REQUIRE_REAL_SERVERS is set)", file=sys.stderr)
                    raise SystemExit(1) from exc
                notes.append(f"skipped timing: {exc}")
    failures = [f"FAILED {case.name} / {label}: {err}" for case in cases for label, err in case.errors.items()]
    command = " ".join(["python -m bench.bench_parquet_columns", *sys.argv[1:]])
    print(f"\nCommand: `{command}` ({time.monotonic() - started:.0f} s)  \nMachine: {versions(_peer_versions())}\n")
    if cases:
        print(table(cases))
    print("\n".join(notes + failures))
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
