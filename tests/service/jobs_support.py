"""What the job tests across processes add to ``job_helpers``: files of known sizes, and jobs followed closely.

Everything goes through the management API of a served service, as an operator would; the full job objects
(``load_full_structure=1``) carry ``attempts`` and ``worker`` (``host:pid/thread``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.service.job_helpers import ENDED, get_job, temp_files


def write_sized(root: Path, files: dict[str, int], seed: int = 0) -> None:
    """Write files of these sizes (relative path -> bytes) under ``root``; the bytes depend on path and seed."""
    for rel, size in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        block = hashlib.sha256(f"{seed}:{rel}".encode()).digest()
        path.write_bytes((block * (size // len(block) + 1))[:size])


def many_files(count: int, size: int, folders: int = 20) -> dict[str, int]:
    """``count`` files of ``size`` bytes spread over ``folders`` top-level folders."""
    return {f"d{n % folders:02d}/f{n:06d}.bin": size for n in range(count)}


def folder_figures(files: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """What a usage scan must report for these files: bytes and file counts per top-level folder (``"/"``: root)."""
    volumes: dict[str, int] = {}
    counts: dict[str, int] = {}
    for rel, size in files.items():
        key = "/" + rel.split("/", 1)[0] if "/" in rel else "/"
        volumes[key] = volumes.get(key, 0) + size
        counts[key] = counts.get(key, 0) + 1
    return volumes, counts


def _pages(client: Any, url: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        answer = client.get(url, params={"limit": 1000, "offset": len(items), **params})
        assert answer.status_code == 200, answer.text
        page = answer.json()[key]
        items += page
        if len(page) < 1000:
            return items


def full_logs(service: Any, ws_id: int, job_id: int) -> list[dict[str, Any]]:
    """Every log line of the job (``id``, ``level``, ``text``...), oldest first."""
    return _pages(service.client, f"/workspaces/{ws_id}/jobs/{job_id}/logs", "workspace_logs")


def job_statuses(service: Any, ws_id: int, job_id: int) -> list[str]:
    """The job's status after each change, from its history (oldest first)."""
    return [item["workspace_job"]["status"]
            for item in _pages(service.client, f"/workspaces/{ws_id}/jobs/{job_id}/history", "history_list")]


def full_jobs(service: Any, ws_id: int) -> list[dict[str, Any]]:
    """Every job of the workspace, full objects."""
    return _pages(service.client, f"/workspaces/{ws_id}/jobs", "workspace_jobs", load_full_structure=1)


def wait_job(service: Any, ws_id: int, job_id: int, statuses: Iterable[str] = ENDED,
             timeout: float = 60.0) -> dict[str, Any]:
    """Poll the job until its status is one of ``statuses``; return its full object."""
    wanted = tuple(statuses)
    deadline = time.monotonic() + timeout
    while True:
        job = get_job(service, ws_id, job_id, full=True)
        if job["status"] in wanted:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not reach {wanted} within {timeout} s: {job}")
        time.sleep(0.05)


def wait_all(service: Any, jobs: Iterable[tuple[int, int]], timeout: float = 120.0) -> None:
    """Wait until every (workspace id, job id) has ended."""
    pending = list(jobs)
    deadline = time.monotonic() + timeout
    while pending:
        pending = [key for key in pending if get_job(service, *key)["status"] not in ENDED]
        if pending and time.monotonic() > deadline:
            raise AssertionError(f"{len(pending)} jobs did not end within {timeout} s, e.g. "
                                 f"{get_job(service, *pending[0], full=True)}")
        if pending:
            time.sleep(0.1)


def started_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``started on WORKER`` lines of a job's log."""
    return [line for line in lines if line["text"].startswith("started on ")]


def worker_pid(worker: str) -> int:
    """The process id in a job's ``worker`` or ``started on`` line (``host:pid/thread``)."""
    return int(worker.removeprefix("started on ").split("/", 1)[0].rsplit(":", 1)[1])


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (temp files included), by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def same_files(source: Path, target: Path) -> None:
    """Assert the target holds exactly the source's files, byte for byte, and no temp file."""
    assert temp_files(target) == []
    src, dst = tree(source), tree(target)
    assert sorted(dst) == sorted(src)
    different = [rel for rel in src if dst[rel] != src[rel]]
    assert different == [], different[:5]
