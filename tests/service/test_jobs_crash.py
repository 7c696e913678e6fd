"""Workers that die, stop or lose their queue mid-run: no job is lost, stuck in ``running``, or run twice at once.

Real parts: ``redis-server`` without persistence, ``brokers worker`` processes (lease 3 s) on the service's
registry (a shared SQLite file, or PostgreSQL), host workspaces. The long job is a ``clone_data`` of a few
thousand small files between two host workspaces, so it is surely running when the worker is hit.

- SIGKILL: the job's lease expires, a warning says so, and the other worker runs it again (the second ``started
  on`` line comes after that warning), resuming the clone; with ``--job-attempts 1`` it ends in ``error`` with an
  error line instead. The killed write's temp file is the only leftover, and a ``cleanup`` job removes it.
- Redis restarted (its queued messages lost): the maintenance pass sends the waiting jobs again, the workers
  reconnect by themselves, every job ends ``finished`` having started once.
- SIGTERM: the job stops at a safe point and waits again (a warning says so), the worker exits 0, the other
  worker finishes it at once; nothing half-written at the clone's target.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from brokers.core.streams import TEMP_PREFIX
from tests.fixtures.redis import RedisServer, WorkerProcess
from tests.service.job_helpers import get_job, host_config, jobs_of, start, temp_files, workspace
from tests.service.jobs_support import (
    full_logs,
    job_statuses,
    many_files,
    same_files,
    started_lines,
    tree,
    wait_all,
    wait_job,
    worker_pid,
    write_sized,
)

pytestmark = pytest.mark.timeout(300)

LEASE = "3"
CLONE_FILES = many_files(3000, 4096)


def _clone_setup(live: Any, tmp_path: Path) -> tuple[int, int, Path, Path]:
    """A source workspace with :data:`CLONE_FILES`, an empty target; their creation scans ended."""
    source, target = tmp_path / "source", tmp_path / "target"
    write_sized(source, CLONE_FILES)
    target.mkdir()
    return workspace(live, host_config(source)), workspace(live, host_config(target)), source, target


def _running_on(live: Any, ws: int, job_id: int, workers: list[WorkerProcess]) -> tuple[WorkerProcess, str]:
    """Wait until the job runs and has copied something; return the worker process running it, and its name."""
    job = wait_job(live, ws, job_id, ["running"], timeout=30)
    deadline = time.monotonic() + 30
    while not (get_job(live, ws, job_id)["progress"] or {}).get("files_done"):
        assert time.monotonic() < deadline, get_job(live, ws, job_id)
        time.sleep(0.02)
    pid = worker_pid(job["worker"])
    return next(w for w in workers if w.pid == pid), job["worker"]


def _index(lines: list[dict[str, Any]], text: str) -> int:
    found = [n for n, line in enumerate(lines) if text in line["text"]]
    assert len(found) == 1, (text, lines)
    return found[0]


def test_sigkill_mid_job_the_lease_expires_and_the_other_worker_runs_it(
        start_service: Any, start_workers: Any, redis_url: str, database_url: str, tmp_path: Path) -> None:
    live = start_service(queue_url=redis_url, job_workers=0)
    workers = start_workers(redis_url, database_url, 2, "--job-workers", "1", "--job-lease", LEASE)
    source_id, target_id, source, target = _clone_setup(live, tmp_path)
    job_id = start(live, source_id, "clone_data", {"target_workspace_id": target_id})["id"]
    victim, victim_name = _running_on(live, source_id, job_id, workers)
    victim.kill()
    survivor = next(w for w in workers if w is not victim)

    job = wait_job(live, source_id, job_id, timeout=90)
    assert (job["status"], job["attempts"]) == ("finished", 2), job
    assert worker_pid(job["worker"]) == survivor.pid
    assert job_statuses(live, source_id, job_id) == ["waiting", "running", "waiting", "running", "finished"]
    lines = full_logs(live, source_id, job_id)
    first, second = started_lines(lines)
    assert first["text"] == f"started on {victim_name}"
    assert second["text"].startswith("started on ") and second["text"].endswith(" (attempt 2)")
    assert worker_pid(second["text"]) == survivor.pid
    expired = _index(lines, "stopped renewing its lease")
    assert lines[expired]["level"] == "warning"
    assert lines[expired]["text"].startswith(f"{victim_name} stopped renewing its lease")
    assert "sent again (attempt 2 of 3)" in lines[expired]["text"]
    assert lines.index(first) < expired < lines.index(second), "the second run started before the lease expired"
    assert job["stats"]["copied_files"] + job["stats"]["skipped_files"] == len(CLONE_FILES)
    assert job["stats"]["skipped_files"] > 0, "the retry did not resume the clone"

    # What the killed write left: at most its one temp file; every file in place is whole.
    leftovers = temp_files(target)
    assert len(leftovers) <= 1, leftovers
    whole = {rel: data for rel, data in tree(target).items() if not Path(rel).name.startswith(TEMP_PREFIX)}
    assert whole == tree(source)
    cleanup = start(live, target_id, "cleanup", {"older_than": 0})
    assert wait_job(live, target_id, cleanup["id"])["stats"]["removed_leftovers"] == len(leftovers)
    same_files(source, target)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SIGKILL above runs on both
def test_sigkill_with_one_attempt_ends_the_job_in_error(start_service: Any, start_workers: Any, redis_url: str,
                                                        database_url: str, tmp_path: Path) -> None:
    live = start_service(queue_url=redis_url, job_workers=0, job_attempts=1)
    workers = start_workers(redis_url, database_url, 2, "--job-workers", "1", "--job-lease", LEASE,
                            "--job-attempts", "1")
    source_id, target_id, _, _ = _clone_setup(live, tmp_path)
    job_id = start(live, source_id, "clone_data", {"target_workspace_id": target_id})["id"]
    victim, victim_name = _running_on(live, source_id, job_id, workers)
    victim.kill()

    job = wait_job(live, source_id, job_id, timeout=60)
    assert (job["status"], job["attempts"]) == ("error", 1), job
    assert job["stats"]["error"] == "the worker running it stopped answering"
    assert job_statuses(live, source_id, job_id) == ["waiting", "running", "error"]
    lines = full_logs(live, source_id, job_id)
    assert [line["text"] for line in started_lines(lines)] == [f"started on {victim_name}"]
    assert (lines[-1]["level"], lines[-1]["text"]) == (
        "error", f"{victim_name} stopped renewing its lease, and the job has run once: it ends in error")
    time.sleep(float(LEASE))  # a message sent again by mistake would have started it by now
    assert get_job(live, source_id, job_id)["status"] == "error"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SIGKILL above runs on both
def test_redis_restarted_mid_run_every_job_still_runs_once(start_service: Any, start_workers: Any,
                                                          redis_server: RedisServer, redis_url: str,
                                                          database_url: str, tmp_path: Path) -> None:
    live = start_service(queue_url=redis_url, job_workers=0, job_resend=2)
    workers = start_workers(redis_url, database_url, 2, "--job-workers", "1", "--job-lease", LEASE)
    db = int(redis_url.rsplit("/", 1)[1])
    root = tmp_path / "data"
    write_sized(root, many_files(2000, 2048))
    ws = workspace(live, host_config(root))
    ids = [start(live, ws, "verify")["id"] for _ in range(40)]

    def ended() -> int:
        return sum(j["status"] == "finished" for j in jobs_of(live, ws) if j["id"] in ids)

    live.wait_for(lambda: ended() >= 3, timeout=60)
    assert redis_server.keys(db) > 0, "no message was waiting in Redis"
    redis_server.restart()
    assert redis_server.keys(db) == 0  # no persistence: every queued message is gone
    waiting = [j["id"] for j in jobs_of(live, ws) if j["status"] == "waiting"]
    assert len(waiting) >= 10, "too few jobs were waiting when Redis went away"

    wait_all(live, [(ws, job_id) for job_id in ids], timeout=180)
    jobs = [get_job(live, ws, job_id, full=True) for job_id in ids]
    assert [(j["status"], j["attempts"]) for j in jobs] == [("finished", 1)] * len(ids)
    ran_after: set[int] = set()
    for job_id in ids:
        lines = full_logs(live, ws, job_id)
        assert len(started_lines(lines)) == 1, lines
        pid = worker_pid(started_lines(lines)[0]["text"])
        assert pid in {w.pid for w in workers}
        if job_id in waiting:
            ran_after.add(pid)
        assert job_statuses(live, ws, job_id) == ["waiting", "running", "finished"]
    assert ran_after == {w.pid for w in workers}, "a worker did not reconnect to the new Redis"
    assert all(w.alive() for w in workers)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SIGKILL above runs on both
def test_sigterm_mid_job_it_waits_again_and_the_other_worker_finishes_it(
        start_service: Any, start_workers: Any, redis_url: str, database_url: str, tmp_path: Path) -> None:
    live = start_service(queue_url=redis_url, job_workers=0)
    workers = start_workers(redis_url, database_url, 2, "--job-workers", "1", "--job-lease", LEASE)
    source_id, target_id, source, target = _clone_setup(live, tmp_path)
    job_id = start(live, source_id, "clone_data", {"target_workspace_id": target_id})["id"]
    stopping, stopping_name = _running_on(live, source_id, job_id, workers)
    stopping.signal(signal.SIGTERM)
    assert stopping.proc.wait(30) == 0
    survivor = next(w for w in workers if w is not stopping)

    job = wait_job(live, source_id, job_id, timeout=20)  # at once: not after the 60 s re-send delay
    assert (job["status"], job["attempts"]) == ("finished", 1), job
    assert worker_pid(job["worker"]) == survivor.pid
    assert job_statuses(live, source_id, job_id) == ["waiting", "running", "waiting", "running", "finished"]
    lines = full_logs(live, source_id, job_id)
    first, second = started_lines(lines)
    assert first["text"] == f"started on {stopping_name}"
    released = _index(lines, "the worker is shutting down")
    assert lines[released]["level"] == "warning"
    assert lines.index(first) < released < lines.index(second)
    assert job["stats"]["copied_files"] + job["stats"]["skipped_files"] == len(CLONE_FILES)
    same_files(source, target)
