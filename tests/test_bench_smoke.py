"""The benchmarks' quick run (``python -m bench --quick --no-write``) works end to end.

It starts s3rver (npm), moto and NFS-Ganesha on loopback and runs every case once at small sizes, broker and
peers alike. What is asserted is what the run reports: every case that started is in the table, every contender
of it has a measured median and its runs, the broker's row has a ratio to a peer, and nothing failed. A server or
peer the bench had to skip is reported through ``missing`` (a failure when BROKERS_REQUIRE_REAL_SERVERS is set).
How long the run takes is not asserted (the suite's own timeout bounds it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import missing

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| (?P<case>[^|]+) \| (?P<label>[^|]+) \| (?P<median>[^|]+) \| (?P<runs>\d+) \| (?P<ratio>[^|]*) \|$")
CASES = ("S3 upload", "S3 download", "ranged reads", "S3 usage", "NFSv3 write", "NFSv3 read", "NFSv4.1 write",
         "NFSv4.1 read", "host download", "host usage", "validate")
ALONE = ("validate",)
"""Cases with no peer by design: validation throughput is measured for its own sake."""


@pytest.mark.timeout(300)
def test_quick_benchmark_run():
    env = {k: v for k, v in os.environ.items() if k != "BROKERS_REQUIRE_REAL_SERVERS"}
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--no-write"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=280, check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    lines = result.stdout.splitlines()
    skipped = [line[len("skipped "):] for line in lines if line.startswith("skipped ")]
    for item in skipped:
        group, _, why = item.partition(": ")
        missing(f"benchmark peer/server for {group}", why)
    assert not [line for line in lines if " failed: " in line or line.startswith("FAILED")], out[-5000:]

    started = [line[len("running "):-len(" ...")] for line in lines if line.startswith("running ")]
    rows: dict[str, list[dict[str, str]]] = {}
    for line in lines:
        found = ROW.match(line)
        if found and found["case"] != "case" and not found["case"].startswith("---"):
            rows.setdefault(found["case"].strip(), []).append({k: v.strip() for k, v in found.groupdict().items()})
    assert started and sorted(rows) == sorted(started), (started, sorted(rows))
    for kind in CASES:
        assert any(kind in case for case in started), f"no {kind!r} case ran:\n{out[-3000:]}"
    for case, contenders in rows.items():
        assert contenders[0]["label"].startswith("brokers"), case
        for row in contenders:
            assert row["median"].endswith(" ms") and int(row["runs"]) >= 1, (case, row)
        if case.startswith(ALONE):
            continue
        assert len(contenders) >= 2, f"{case}: the broker has no peer beside it"
        assert float(contenders[0]["ratio"]) > 0, (case, contenders[0])
