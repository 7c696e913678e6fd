"""Cancel: a waiting job never starts; a running clone stops at a safe point, leaving only complete files.

The cancel latencies measured (DELETE sent -> status ``canceled`` seen) are printed (``pytest -s``) and bounded
generously here; the issue's target is 2 s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from brokers.core.streams import COPY_CHUNK
from brokers.service.jobs.context import JobCanceled, JobContext
from brokers.service.jobs.kinds import clone_data
from tests.fixtures.sqlite_only import database_url, shared_service  # noqa: F401 - SQLite only: storage tests
from tests.service.job_helpers import (
    Storage,
    get_job,
    logs,
    run,
    start,
    storage_factory,
    target_is_clean,
    wait_end,
    workspace,
    write_files,
)

LATENCY_BOUND = 10.0
"""Seconds a cancel may take here (CI machines are slow and shared); the latencies are printed."""
SAFE_POINT = "canceled at a safe point: what was done stays done, no file is left half-written"


@pytest.fixture
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Storage]:
    return storage_factory(request, tmp_path)


def test_a_waiting_job_is_canceled_at_once_and_never_runs(start_service, make_storage) -> None:
    sender = start_service(job_workers=0)  # nothing runs its jobs: they wait
    source, target = make_storage("host"), make_storage("host")
    write_files(source.broker, {"a.txt": b"a", "in/b.txt": b"bb"})
    source_ws = sender.client.post("/workspaces", json={"name": "waits", "configuration": source.config}
                                   ).json()["workspace"]["id"]
    target_ws = sender.client.post("/workspaces", json={"name": "target", "configuration": target.config}
                                   ).json()["workspace"]["id"]
    doomed = start(sender, source_ws, "clone_data", {"target_workspace_id": target_ws})
    kept = start(sender, source_ws, "verify")
    assert doomed["status"] == kept["status"] == "waiting"

    answer = sender.client.delete(f"/workspaces/{source_ws}/jobs/{doomed['id']}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "OK"
    assert get_job(sender, source_ws, doomed["id"])["status"] == "canceled"
    assert any(level == "info" and "before it started: nothing was done" in text
               for level, text in logs(sender, source_ws, doomed["id"]))

    # A second service on the same database, with workers, sends the waiting jobs again and runs them: the
    # verify job runs, the canceled clone never does.
    worker = start_service(job_resend=0.3)
    assert wait_end(worker, source_ws, kept["id"])["status"] == "finished"
    job = get_job(worker, source_ws, doomed["id"], full=True)
    assert (job["status"], job["attempts"], job["started"]) == ("canceled", 0, None)
    assert set(job["stats"]["statuses_history"]) == {"waiting", "canceled"}
    assert not any("started on" in text for _, text in logs(worker, source_ws, doomed["id"]))
    assert list(target.broker.list()) == []


def test_an_ended_job_cannot_be_canceled(service, make_storage) -> None:
    ws = workspace(service, make_storage("host").config)
    job = run(service, ws, "verify")
    answer = service.client.delete(f"/workspaces/{ws}/jobs/{job['id']}")
    assert answer.status_code == 409
    assert (answer.json()["errors"][0]["name"], answer.json()["errors"][0]["field"]) == ("job_ended", "job_id")
    assert get_job(service, ws, job["id"])["status"] == "finished"


def _cancel_when(service: Any, ws: int, job_id: int, ready: Callable[[dict[str, int]], bool]) -> float:
    """Wait until the job's progress is ``ready``, cancel it, and return the seconds until it said canceled."""
    service.wait_for(lambda: (p := get_job(service, ws, job_id)["progress"]) is not None and ready(p), timeout=120,
                     interval=0.02)
    began = time.monotonic()
    answer = service.client.delete(f"/workspaces/{ws}/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "OK: the job stops at its next safe point"
    service.wait_for(lambda: get_job(service, ws, job_id)["status"] != "running", timeout=LATENCY_BOUND,
                     interval=0.01)
    return time.monotonic() - began


# (files, size of each, cancel when): many small files stop between two files; large ones (several copy
# chunks, S3 multipart uploads) stop between two chunks of a file, whose write is then discarded.
SHAPES = {"small": (3000, 4096, lambda p: p["files_done"] >= 300),
          "large": (6, 40 * 1024 * 1024 + 3, lambda p: p["bytes_done"] >= 9 * 1024 * 1024)}


# host -> host copies 40 MiB in a few hundredths of a second: a cancel seen at the next heartbeat (0.5 s) finds
# that job ended. Its mid-file stop is shown deterministically below, by a context that cancels after one chunk.
@pytest.mark.parametrize(("target_kind", "shape"), [("host", "small"), ("s3", "small"), ("s3", "large")])
def test_a_running_clone_stops_at_a_safe_point(service, make_storage, request, target_kind, shape) -> None:
    if (target_kind, shape) == ("s3", "small"):
        count, size, ready = 1500, 4096, SHAPES["small"][2]  # one PUT each on moto: fewer suffice
    else:
        count, size, ready = SHAPES[shape]
    source, target = make_storage("host"), make_storage(target_kind)
    assert source.root is not None
    for number in range(count):
        path = source.root / f"d{number % 10}" / f"f{number:05d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(os.urandom(size))
    source_ws, target_ws = workspace(service, source.config), workspace(service, target.config)
    s3_server = request.getfixturevalue("s3_server") if target_kind == "s3" else None
    mark = s3_server.mark() if s3_server is not None else 0
    job = start(service, source_ws, "clone_data", {"target_workspace_id": target_ws})

    latency = _cancel_when(service, source_ws, job["id"], ready)
    print(f"\ncancel latency, host -> {target_kind}, {count} files of {size} bytes: {latency:.3f} s")
    if s3_server is not None and shape == "large":  # every multipart upload begun was completed or aborted
        seen = s3_server.since(mark)
        begun = sum(r.method == "POST" and r.query == "uploads" for r in seen)
        completed = sum(r.method == "POST" and r.query.startswith("uploadId=") and r.status == 200 for r in seen)
        aborted = sum(r.method == "DELETE" and r.query.startswith("uploadId=") for r in seen)
        print(f"multipart uploads: {begun} begun, {completed} completed, {aborted} aborted by the cancel")
        assert begun == completed + aborted
    ended = wait_end(service, source_ws, job["id"])
    assert ended["status"] == "canceled", logs(service, source_ws, job["id"])
    assert set(ended["stats"]["statuses_history"]) == {"waiting", "running", "canceled"}
    lines = logs(service, source_ws, job["id"])
    assert ("info", SAFE_POINT) in lines
    assert any(level == "info" and text.startswith("cancel requested by") for level, text in lines)
    # What is at the target is complete, byte for byte; the job stopped before its end.
    copied = {info.path: info for info in target.broker.list()}
    assert 0 < len(copied) < count
    for path in copied:
        assert target.broker.read_bytes(path) == source.broker.read_bytes(path), path
    assert any(text.startswith(f"copied {len(copied)} files") for _, text in lines), lines
    assert ended["progress"]["files_done"] == len(copied) < ended["progress"]["files_total"] == count
    target_is_clean(target, request)


class _CancelAfterOneChunk(JobContext):
    """A context whose cancel arrives once a whole chunk of a copy has been written."""

    def advance(self, files: int = 0, size: int = 0) -> None:
        super().advance(files, size)
        if size >= COPY_CHUNK:
            self.canceled.set()


def test_a_cancel_between_two_chunks_discards_the_unfinished_write(make_storage) -> None:
    source, target = make_storage("host"), make_storage("host")
    assert source.root is not None and target.root is not None
    (source.root / "small.txt").write_bytes(b"one chunk")
    big = os.urandom(COPY_CHUNK * 2 + 5)  # three chunks
    (source.root / "big.bin").write_bytes(big)
    ctx = _CancelAfterOneChunk(job_id=1, settings={})
    with pytest.raises(JobCanceled):
        clone_data(ctx, source.broker, target.broker)
    left = sorted(p.relative_to(target.root).as_posix() for p in target.root.rglob("*") if p.is_file())
    # The big file was stopped after its first chunk: its temporary file is gone, nothing half-written. The small
    # one is there, whole, if the listing gave it first.
    assert left in ([], ["small.txt"]), left
    if left:
        assert (target.root / "small.txt").read_bytes() == b"one chunk"
    assert ctx.progress()["bytes_done"] == COPY_CHUNK + (len(b"one chunk") if left else 0)
