"""``python -m bench.bench_parquet_columns --quick --no-time`` runs end to end and reports every read.

Each read's values are checked by the script itself (it exits 1 on a mismatch). What is asserted here is the
report: a row per reader and filesystem with counted bytes and ratios, and pyarrow's own S3 client (the control)
within the script's 1.5x target, so the count and the target's arithmetic hold.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| (?P<read>[^|]+) \| (?P<fs>[^|]+) \| (?P<requests>\d+) \| (?P<sent>[\d,]+) \| "
                 r"(?P<ratio>[\d.]+) \| (?P<of_file>[\d.]+) \|$")


def test_quick_run_reports_every_read():
    result = subprocess.run([sys.executable, "-m", "bench.bench_parquet_columns", "--quick", "--no-time"],
                            cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    rows = [m.groupdict() for m in map(ROW.match, result.stdout.splitlines()) if m]
    assert {(r["read"], r["fs"]) for r in rows} == {
        (read, fs) for read in ("pd.read_parquet", "pq.read_table", "ds.dataset.to_table")
        for fs in ("brokers broker.fs", "pyarrow S3FileSystem", "s3fs (defaults)")}, out[-3000:]
    for row in rows:
        assert int(row["sent"].replace(",", "")) > 0, row
        if row["fs"] == "pyarrow S3FileSystem":
            assert 1.0 <= float(row["ratio"]) <= 1.5, row
