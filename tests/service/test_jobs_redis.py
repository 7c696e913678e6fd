"""Jobs carried by Redis to ``brokers worker`` processes, and by the embedded SQLite queue to the service itself.

Real parts: Debian's ``redis-server`` (``tests.fixtures.redis``), ``brokers worker`` processes started by the test
on the same registry as the service (one shared SQLite file, or PostgreSQL), host workspaces with known bytes.
Asserted: every job finishes with the per-folder figures of what was written, ran exactly once (one
``started on`` line, ``attempts == 1``) although its message was sent three times, and ran where it should (the
worker processes on Redis; the service's own threads in the embedded mode).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.service.job_helpers import host_config, start, workspace
from tests.service.jobs_support import (
    folder_figures,
    full_jobs,
    full_logs,
    started_lines,
    wait_all,
    worker_pid,
    write_sized,
)

pytestmark = pytest.mark.timeout(240)

WORKER_OPTIONS = ("--job-workers", "2", "--job-lease", "3")


def _workspaces(live: Any, tmp_path: Path, count: int) -> dict[int, dict[str, int]]:
    """Host workspaces with files in ``in/``, ``out/`` and at the root; their files by workspace id."""
    made = {}
    for n in range(count):
        files = {"in/a.csv": 100 + n, "in/deep/b.bin": 5000 * n + 1, "out/result.txt": 77, "top.txt": n + 3}
        root = tmp_path / f"ws{n}"
        write_sized(root, files, seed=n)
        made[workspace(live, host_config(root), name=f"scan {n}")] = files
    return made


def _scan_everything(live: Any, made: dict[int, dict[str, int]]) -> set[int]:
    """Ask each workspace for a usage scan, send every job's message twice more, wait; return the runners' pids.

    Each workspace also has the scan its creation started (ended: :func:`workspace` waits for it).
    """
    asked = [(ws, start(live, ws, "usage_scan")["id"]) for ws in made]
    live.app.state.service.jobs.send([job_id for _, job_id in asked] * 2)  # duplicates: each is claimed once
    wait_all(live, asked)
    pids = set()
    for ws, files in made.items():
        jobs = full_jobs(live, ws)
        assert len(jobs) == 2
        assert [(j["status"], j["attempts"]) for j in jobs] == [("finished", 1)] * len(jobs), jobs
        volumes, counts = folder_figures(files)
        for job in jobs:
            assert job["stats"]["data_volumes"] == volumes
            assert job["stats"]["files_count"] == counts
            assert job["stats"]["used_size"] == sum(files.values())
            assert job["stats"]["file_count"] == len(files)
            assert list(job["stats"]["statuses_history"]) == ["waiting", "running", "finished"]
            started = started_lines(full_logs(live, ws, job["id"]))
            assert len(started) == 1, started
            assert worker_pid(started[0]["text"]) == worker_pid(job["worker"])
            pids.add(worker_pid(job["worker"]))
        shown = live.client.get(f"/workspaces/{ws}").json()["workspace"]
        assert shown["disk_usage"] == sum(files.values())
    return pids


def test_worker_processes_on_redis_run_each_job_once(start_service: Any, start_workers: Any, redis_url: str,
                                                     database_url: str, tmp_path: Path) -> None:
    live = start_service(queue_url=redis_url, job_workers=0)
    workers = start_workers(redis_url, database_url, 2, *WORKER_OPTIONS)
    made = _workspaces(live, tmp_path, 6)
    pids = _scan_everything(live, made)
    assert pids <= {w.pid for w in workers}, "a job ran outside the worker processes"
    assert all(w.alive() for w in workers)


def test_the_embedded_queue_runs_them_in_the_service(start_service: Any, tmp_path: Path) -> None:
    live = start_service()  # no queue URL: the SQLite file queue.db in the service's data folder, its own threads
    assert (live.settings.data_folder / "queue.db").is_file()
    made = _workspaces(live, tmp_path, 6)
    assert _scan_everything(live, made) == {os.getpid()}
