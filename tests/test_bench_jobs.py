"""``bench.bench_jobs`` end to end, small: 30 jobs on Redis (PostgreSQL) and on the embedded queue (SQLite).

Asserted is what the run reports: every job finished having run exactly once (one attempt, one ``started on``
line), and a throughput and dispatch latencies were produced. No time is asserted (no clock in the tests). What a
canceled clone leaves is tested in ``tests/service/test_job_cancel.py``; the bench measures its latency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.bench_jobs import BEGIN, END, HEADING, failed, measure_queue, render, replace_section

JOBS = 30


def _check_once(figures: dict[str, Any]) -> None:
    assert figures["jobs"] == JOBS
    assert (figures["ran_once"], figures["not_finished"], figures["extra_starts"]) == (JOBS, 0, 0)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("queue", "database_url"), [("redis", "postgresql"), ("embedded", "sqlite")],
                         indirect=["database_url"])
def test_small_queue_run_runs_each_job_once(queue: str, database_url: str, request: pytest.FixtureRequest,
                                            tmp_path: Path) -> None:
    redis_url = request.getfixturevalue("redis_url") if queue == "redis" else None
    setup = f"{queue}-{'sqlite' if database_url.startswith('sqlite') else 'postgresql'}"
    report = measure_queue(setup, database_url, redis_url, jobs=JOBS, workers_count=2, rate=50, work=tmp_path)
    _check_once(report["backlog"])
    _check_once(report["paced"])
    assert report["backlog"]["jobs_per_second"] > 0
    assert 0 <= report["paced"]["dispatch_p50_ms"] <= report["paced"]["dispatch_p99_ms"]
    section = render([report], None, "python -m bench.bench_jobs --quick", 2)
    assert section.startswith(BEGIN + "\n" + HEADING) and section.endswith(END + "\n")
    assert f"| {setup} | " in section and f"| {JOBS} / {JOBS} | " in section
    assert failed([report], None) == []


def test_the_section_replaces_its_own_and_keeps_the_others() -> None:
    first, second = f"{BEGIN}\nold\n{END}\n", f"{BEGIN}\nnew\n{END}\n"
    other = "<!-- bench_service_load: begin -->\nload\n<!-- bench_service_load: end -->\n"
    assert replace_section("", first) == first
    appended = replace_section(f"# Results\n\n{other}", first)
    assert appended == f"# Results\n\n{other}\n{first}"
    assert replace_section(appended, second) == f"# Results\n\n{other}\n{second}"
