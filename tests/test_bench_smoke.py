"""The benchmarks' quick run (``python -m bench --quick --no-write``) works end to end, in under 120 s.

It starts s3rver (npm), moto and NFS-Ganesha on loopback and runs every case once at small sizes, broker and
peers alike. A server or peer the bench had to skip is reported through ``missing`` (a failure when
BROKERS_REQUIRE_REAL_SERVERS is set).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import missing

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(180)
def test_quick_benchmark_run():
    env = {k: v for k, v in os.environ.items() if k != "BROKERS_REQUIRE_REAL_SERVERS"}
    start = time.monotonic()
    try:
        result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--no-write"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=150, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the quick benchmark run took over 150 s:\n{(exc.stdout or b'')[-3000:]!r}")
    elapsed = time.monotonic() - start
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    assert "| case | contender | median |" in result.stdout
    assert "failed:" not in result.stdout, out[-5000:]
    assert elapsed < 120, f"the quick run took {elapsed:.0f} s (limit 120 s)"
    skipped = [line[len("skipped "):] for line in result.stdout.splitlines() if line.startswith("skipped ")]
    for item in skipped:
        group, _, why = item.partition(": ")
        missing(f"benchmark peer/server for {group}", why)
