"""``python -m bench.bench_reads --quick`` works end to end (moto and s3rver on loopback).

Asserted is what the run reports: the broker's random reads fetch at most 1 MiB each as counted at the server, and
every contender of the sequential read has a median. Speeds are not asserted (no clock in the tests).
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


@pytest.mark.timeout(300)
def test_quick_reads_benchmark_run():
    env = {k: v for k, v in os.environ.items() if k != "BROKERS_REQUIRE_REAL_SERVERS"}
    result = subprocess.run([sys.executable, "-m", "bench.bench_reads", "--quick"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=280, check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    for line in result.stdout.splitlines():
        if line.startswith("skipped reads: "):
            missing("benchmark server for the reads", line[len("skipped reads: "):])
    broker = next(line for line in result.stdout.splitlines() if line.startswith('| brokers open("rb") | '))
    per_read = [int(n.replace(",", "")) for n in broker.split(" | ")[2].split(", ")]
    assert len(per_read) == 4 and all(100 <= n <= 1 << 20 for n in per_read), broker
    medians = re.findall(r"^\| S3 sequential read [^|]+ \| ([^|]+) \| ([\d.]+) ms \| 1 \|", result.stdout, re.M)
    assert [label.strip() for label, _ in medians] == [
        'brokers open("rb") read(8 MiB)', "brokers download()", 'brokers open("rb") read(64 KiB)',
        "boto3 get_object body", "s3fs open read(8 MiB)"], out[-3000:]
    assert "x the speed of `download()`" in result.stdout
