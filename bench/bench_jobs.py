"""``python -m bench.bench_jobs``: workspace jobs on their queue, and how fast a running clone stops.

Usage::

    python -m bench.bench_jobs [--quick] [--jobs 1000] [--workers 4] [--rate 20] [--cancel-files 10000]
                               [--cancel-repeats 5] [--setup redis-postgresql redis-sqlite embedded-sqlite]
                               [--no-s3] [--json PATH] [--no-write]

**Queue** (per setup): ``brokers serve`` in a process of its own on a fresh registry (a new database on a
throwaway PostgreSQL cluster, ``tests.fixtures.postgres``, or one SQLite file) with one small host workspace.
``--jobs`` ``cleanup`` jobs of that workspace (a cheap kind that never joins another job) are sent through
``POST /workspaces/{id}/jobs``:

- *backlog*: the jobs are sent while nobody consumes (Redis: no worker yet; embedded: ``brokers serve
  --job-workers 0``), then the consumers start (Redis: ``--workers`` ``brokers worker`` processes of one job
  thread each; embedded: ``brokers serve`` again, its default two threads, on the same data folder). Throughput
  is jobs / (last end - first start);
- *paced*: the same number sent at ``--rate`` jobs/s to idle consumers. Dispatch latency is a job's ``started``
  minus its ``created`` (the registry's columns, microseconds), p50/p99.

Every job must end ``finished`` having run exactly once: ``attempts == 1`` and one ``started on`` log line.

**Cancel** (Redis + the first database): a ``clone_data`` of ``--cancel-files`` files of 4 KiB from a host
workspace, into a fresh host workspace and into a fresh bucket of a moto server process, run by a ``brokers
worker``; once it has copied a few hundred files, ``DELETE /workspaces/{id}/jobs/{job_id}``, then ``GET`` every
20 ms until ``canceled``. The latency is from sending the DELETE to the first answer saying ``canceled`` (target:
at most 2 s). The target is then checked: no temp file and no multipart upload, every file there has the
source's bytes. The result goes into ``bench/RESULTS.md`` as its own section between markers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from .harness import versions
from .servers import Unavailable, free_port
from .servers import _stop as stop_server

RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- bench_jobs: begin -->", "<!-- bench_jobs: end -->"
HEADING = "## Workspace jobs on the queue"
SETUPS = ("redis-postgresql", "redis-sqlite", "embedded-sqlite")
BROKERS = Path(sys.executable).with_name("brokers")
ENDED = ("finished", "error", "canceled")
FILE_SIZE = 4096


@dataclass
class Service:
    """A ``brokers serve`` process and the client that talks to it."""

    base: str
    client: httpx.Client
    proc: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def serve(database_url: str, work: Path, name: str, *, queue: str | None, job_workers: int, secret: str,
          data_dir: Path) -> Iterator[Service]:
    """Run ``brokers serve`` on a registry and a queue (None: the embedded one in ``data_dir``)."""
    port = free_port()
    token = secrets.token_urlsafe(16)
    log = work / f"serve-{name}.log"
    argv = [str(BROKERS), "serve", "--port", str(port), "--database-url", database_url, "--usage-interval", "0",
            "--job-workers", str(job_workers), "--data-dir", str(data_dir), "--s3-endpoint-allow",
            "http://127.0.0.1:*", "--log-level", "warning", *(["--queue", queue] if queue else [])]
    env = {**os.environ, "BROKERS_SERVICE_TOKENS": token, "BROKERS_SECRET_KEY": secret}
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base, headers={"X-Access-Token": token}, timeout=60)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"brokers serve exited ({proc.returncode}): {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/openapi.json").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"brokers serve did not answer within 120 s: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Service(base, client, proc, log)
    finally:
        client.close()
        stop_server(proc, timeout=60)  # its running jobs stop at a safe point first


@contextlib.contextmanager
def workers(queue: str, database_url: str, count: int, work: Path, secret: str) -> Iterator[list[Any]]:
    """``count`` ``brokers worker`` processes of one job thread each, started and ready; stopped (SIGTERM) after."""
    from tests.fixtures.redis import worker_process

    started = [worker_process(queue, database_url, work / f"worker-{n}.log", ["--job-workers", "1", "--log-level",
                                                                                 "warning"], secret_key=secret)
               for n in range(count)]
    try:
        yield started
    finally:
        for worker in started:
            stop_server(worker.proc, timeout=60)


def _workspace(client: httpx.Client, name: str, configuration: dict[str, Any]) -> int:
    answer = client.post("/workspaces", json={"name": name, "configuration": configuration})
    if answer.status_code != 201:
        raise RuntimeError(f"POST /workspaces: {answer.status_code} {answer.text[:500]}")
    return int(answer.json()["workspace"]["id"])


def _job(client: httpx.Client, ws_id: int, kind: str, settings: dict[str, Any]) -> int:
    answer = client.post(f"/workspaces/{ws_id}/jobs", json={"kind": kind, "settings": settings})
    if answer.status_code != 201:
        raise RuntimeError(f"POST /workspaces/{ws_id}/jobs: {answer.status_code} {answer.text[:500]}")
    return int(answer.json()["workspace_job"]["id"])


def submit(client: httpx.Client, ws_id: int, count: int, rate: float | None = None) -> list[int]:
    """Send ``count`` cleanup jobs, as fast as the service takes them or at ``rate`` per second."""
    ids = []
    begun = time.perf_counter()
    for n in range(count):
        if rate:
            pause = begun + n / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        ids.append(_job(client, ws_id, "cleanup", {}))
    return ids


class Registry:
    """Reads the job rows the benchmark checks, straight from the database."""

    def __init__(self, url: str) -> None:
        from brokers.service.db import make_engine

        self.engine = make_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def ended(self, ids: list[int]) -> int:
        from sqlalchemy import func, select

        from brokers.service.db.models import Job

        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(Job)
                                   .where(Job.id.in_(ids), Job.status.in_(ENDED))) or 0)

    def wait(self, ids: list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.ended(ids) < len(ids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(ids) - self.ended(ids)} of {len(ids)} jobs did not end in {timeout:.0f} s")
            time.sleep(0.2)

    def rows(self, ids: list[int]) -> list[dict[str, Any]]:
        """Each job's status, attempts, created/started/ended and how many ``started on`` lines its log has."""
        from sqlalchemy import func, select

        from brokers.service.db.models import Job, JobLog

        with self.engine.connect() as conn:
            starts = {job_id: count for job_id, count in conn.execute(select(JobLog.job_id, func.count()).where(
                JobLog.job_id.in_(ids), JobLog.text.like("started on %")).group_by(JobLog.job_id))}
            jobs = conn.execute(select(Job.id, Job.status, Job.attempts, Job.created, Job.started, Job.ended)
                                .where(Job.id.in_(ids))).all()
        return [{"id": j.id, "status": j.status, "attempts": j.attempts, "created": j.created,
                 "started": j.started, "ended": j.ended, "starts": int(starts.get(j.id, 0))} for j in jobs]


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in milliseconds (None without samples)."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000, 1)


def _seconds(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


def once(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How the jobs ran: exactly once (finished, one attempt, one start), not finished, started more than once."""
    return {"jobs": len(rows),
            "ran_once": sum(r["status"] == "finished" and r["attempts"] == 1 and r["starts"] == 1 for r in rows),
            "not_finished": sum(r["status"] != "finished" for r in rows),
            "extra_starts": sum(max(r["starts"] - 1, 0) for r in rows)}


def backlog_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    started = min(r["started"] for r in rows)
    ended = max(r["ended"] for r in rows)
    span = _seconds(started, ended)
    return {**once(rows), "drain_seconds": round(span, 2),
            "jobs_per_second": round(len(rows) / span, 1) if span > 0 else None}


def paced_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(_seconds(r["created"], r["started"]) for r in rows if r["started"] is not None)
    return {**once(rows), "dispatch_p50_ms": _percentile(latencies, 0.50),
            "dispatch_p99_ms": _percentile(latencies, 0.99),
            "dispatch_max_ms": _percentile(latencies, 1.0)}


def _small_workspace(work: Path) -> dict[str, Any]:
    root = work / "small"
    for n in range(3):
        (root / f"d{n}").mkdir(parents=True, exist_ok=True)
        (root / f"d{n}" / "f.txt").write_bytes(b"x" * (100 + n))
    return {"broker": {"type": "host", "host_path": str(root)}}


def measure_queue(setup: str, database_url: str, redis_url: str | None, *, jobs: int, workers_count: int,
                  rate: float, work: Path) -> dict[str, Any]:
    """One setup's backlog and paced runs (``redis_url`` None: the embedded queue of ``brokers serve``)."""
    secret = secrets.token_urlsafe(16)
    data_dir = work / f"data-{setup}"
    registry = Registry(database_url)
    timeout = 60 + jobs * 0.5
    load = os.getloadavg()[0]
    try:
        if redis_url is not None:
            with serve(database_url, work, setup, queue=redis_url, job_workers=0, secret=secret,
                       data_dir=data_dir) as service:
                ws = _workspace(service.client, "bench jobs", _small_workspace(work))
                backlog = submit(service.client, ws, jobs)
                with workers(redis_url, database_url, workers_count, work, secret):
                    registry.wait(backlog, timeout)
                    paced = submit(service.client, ws, jobs, rate)
                    registry.wait(paced, timeout)
            consumers = f"{workers_count} `brokers worker` processes, 1 job thread each"
        else:
            with serve(database_url, work, setup, queue=None, job_workers=0, secret=secret,
                       data_dir=data_dir) as service:
                ws = _workspace(service.client, "bench jobs", _small_workspace(work))
                backlog = submit(service.client, ws, jobs)
            with serve(database_url, work, setup, queue=None, job_workers=2, secret=secret,
                       data_dir=data_dir) as service:
                registry.wait(backlog, timeout)
                paced = submit(service.client, ws, jobs, rate)
                registry.wait(paced, timeout)
            consumers = "`brokers serve`'s own 2 job threads (the default)"
        return {"setup": setup, "consumers": consumers, "rate": rate,
                "load_average": [round(load, 1), round(os.getloadavg()[0], 1)],
                "backlog": backlog_figures(registry.rows(backlog)), "paced": paced_figures(registry.rows(paced))}
    finally:
        registry.close()


def _source(work: Path, files: int) -> Path:
    root = work / "clone-source"
    for n in range(files):
        path = root / f"d{n % 50:02d}" / f"f{n:06d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(n.to_bytes(4, "big") * (FILE_SIZE // 4))
    return root


def _host_leftovers(source: Path, target: Path) -> dict[str, int]:
    """What a canceled clone left at a host target: temp files, files whose bytes differ from the source's."""
    from brokers.core.streams import TEMP_PREFIX

    found = [p for p in target.rglob("*") if p.is_file()]
    temp = [p for p in found if p.name.startswith(TEMP_PREFIX)]
    wrong = [p for p in found if p not in temp and p.read_bytes() != (source / p.relative_to(target)).read_bytes()]
    return {"files": len(found) - len(temp), "temp_files": len(temp), "partial_files": len(wrong),
            "multipart_uploads": 0}


def _s3_leftovers(source: Path, s3: Any, bucket: str) -> dict[str, int]:
    """What a canceled clone left in a bucket: objects whose bytes differ from the source's, open multipart uploads."""
    client = s3.boto3_client()
    keys = [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in page.get("Contents", [])]
    wrong = [key for key in keys if client.get_object(Bucket=bucket, Key=key)["Body"].read()
             != (source / key).read_bytes()]
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return {"files": len(keys), "temp_files": 0, "partial_files": len(wrong), "multipart_uploads": len(uploads)}


def _cancel_once(service: Service, source_id: int, target_id: int, files_before: int) -> dict[str, Any]:
    job_id = _job(service.client, source_id, "clone_data", {"target_workspace_id": target_id})
    url = f"/workspaces/{source_id}/jobs/{job_id}"
    deadline = time.monotonic() + 300
    while True:
        job = service.client.get(url).json()["workspace_job"]
        if (job["progress"] or {}).get("files_done", 0) >= files_before:
            break
        if job["status"] in ENDED or time.monotonic() > deadline:
            raise RuntimeError(f"the clone ended or stalled before it could be canceled: {job}")
        time.sleep(0.02)
    sent = time.perf_counter()
    answer = service.client.delete(url)
    if answer.status_code != 200:
        raise RuntimeError(f"DELETE {url}: {answer.status_code} {answer.text[:500]}")
    while True:
        job = service.client.get(url).json()["workspace_job"]
        if job["status"] in ENDED:
            latency = time.perf_counter() - sent
            break
        if time.perf_counter() - sent > 60:
            raise RuntimeError(f"the clone did not stop within 60 s of its cancel: {job}")
        time.sleep(0.02)
    return {"status": job["status"], "latency_s": round(latency, 3), "files_done": job["progress"]["files_done"]}


def measure_cancel(database_url: str, redis_url: str, *, files: int, repeats: int, work: Path,
                   s3: Any | None) -> dict[str, Any]:
    """Cancel running clones host -> host (and host -> S3 with ``s3``); latency and what each left."""
    secret = secrets.token_urlsafe(16)
    source = _source(work, files)
    targets: list[tuple[str, Any]] = [("host", None)] + ([("s3", s3)] if s3 is not None else [])
    runs: list[dict[str, Any]] = []
    with serve(database_url, work, "cancel", queue=redis_url, job_workers=0, secret=secret,
               data_dir=work / "data-cancel") as service, workers(redis_url, database_url, 1, work, secret):
        source_id = _workspace(service.client, "clone source", {"broker": {"type": "host",
                                                                            "host_path": str(source)}})
        for kind, endpoint in targets:
            for n in range(repeats):
                name = f"clone target {kind} {n}"
                if endpoint is None:
                    target = work / f"clone-target-{n}"
                    target.mkdir()
                    target_id = _workspace(service.client, name, {"broker": {"type": "host",
                                                                              "host_path": str(target)}})
                else:
                    bucket = f"bench-cancel-{n}-{secrets.token_hex(4)}"
                    endpoint.boto3_client().create_bucket(Bucket=bucket)
                    target_id = _workspace(service.client, name, endpoint.broker_config(bucket))
                run = {"target": kind, **_cancel_once(service, source_id, target_id, min(300, files // 3))}
                run.update(_host_leftovers(source, target) if endpoint is None
                           else _s3_leftovers(source, endpoint, bucket))
                runs.append(run)
    return {"files": files, "file_size": FILE_SIZE, "runs": runs}


def cancel_summary(report: dict[str, Any], kind: str) -> dict[str, Any] | None:
    runs = [r for r in report["runs"] if r["target"] == kind]
    if not runs:
        return None
    latencies = sorted(r["latency_s"] for r in runs)
    return {"target": kind, "runs": len(runs), "canceled": sum(r["status"] == "canceled" for r in runs),
            "median_s": latencies[len(latencies) // 2], "max_s": latencies[-1],
            "files_at_cancel": [r["files_done"] for r in runs],
            "temp_files": sum(r["temp_files"] for r in runs), "partial_files": sum(r["partial_files"] for r in runs),
            "multipart_uploads": sum(r["multipart_uploads"] for r in runs)}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def render(queues: list[dict[str, Any]], cancel: dict[str, Any] | None, command: str, workers_count: int) -> str:
    """The RESULTS.md section."""
    lines = [BEGIN, HEADING, "", f"Command: `{command}`  ", f"Machine: {versions()}", ""]
    if queues:
        jobs, rate = queues[0]["backlog"]["jobs"], queues[0]["rate"]
        lines += [f"{jobs:,} `cleanup` jobs of one small host workspace, sent through `POST /workspaces/{{id}}/jobs` "
                  f"to `brokers serve` (its own process; Redis setups: `--job-workers 0` and {workers_count} "
                  "`brokers worker` processes of 1 job thread each). *Backlog*: all sent before any consumer "
                  "runs; throughput = jobs / (last end - first start). *Paced*: the same number sent at "
                  f"{rate:g} jobs/s to idle consumers; dispatch latency = `started` - `created` in the registry. "
                  "Ran once: `finished`, `attempts` 1, one `started on` log line.", "",
                  "| setup | consumers | backlog: ran once | jobs/s | paced: ran once | dispatch p50 ms | p99 ms "
                  "| max ms |", "|---|---|---|---|---|---|---|---|"]
        for q in queues:
            b, p = q["backlog"], q["paced"]
            lines.append(f"| {q['setup']} | {q['consumers']} | {b['ran_once']:,} / {b['jobs']:,} | "
                         f"{_ms(b['jobs_per_second'])} | {p['ran_once']:,} / {p['jobs']:,} | "
                         f"{_ms(p['dispatch_p50_ms'])} | {_ms(p['dispatch_p99_ms'])} | {_ms(p['dispatch_max_ms'])} |")
        lines.append("")
        lines += [f"- {q['setup']}: backlog drained in {q['backlog']['drain_seconds']:.1f} s; machine load average "
                  f"{q['load_average'][0]} at the start, {q['load_average'][1]} at the end" for q in queues]
        lines.append("")
    if cancel is not None:
        lines += [f"Cancel: `clone_data` of {cancel['files']:,} files of {cancel['file_size']:,} bytes from a host "
                  "workspace, run by a `brokers worker` (Redis, lease heartbeat 0.5 s); canceled once a few hundred "
                  "files are copied; latency from sending the DELETE to the first GET (every 20 ms) answering "
                  "`canceled` (target: 2 s). Then the target is read back: every file there must have the source's "
                  "bytes, with no temp file or open multipart upload.", "",
                  "| target | runs | canceled | median s | max s | files copied when it stopped | temp files | "
                  "partial files | multipart uploads |", "|---|---|---|---|---|---|---|---|---|"]
        for kind in ("host", "s3"):
            s = cancel_summary(cancel, kind)
            if s is not None:
                lines.append(f"| {kind} | {s['runs']} | {s['canceled']} | {s['median_s']:.3f} | {s['max_s']:.3f} | "
                             f"{', '.join(str(n) for n in s['files_at_cancel'])} | {s['temp_files']} | "
                             f"{s['partial_files']} | {s['multipart_uploads']} |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def replace_section(text: str, section: str) -> str:
    """Put ``section`` (markers included) in place of the one between this module's markers, or append it."""
    start, end = text.find(BEGIN), text.find(END)
    if start != -1 and end > start:
        rest = text[end + len(END):].lstrip("\n")
        return text[:start] + section + ("\n" + rest if rest else "")
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + section


def failed(queues: list[dict[str, Any]], cancel: dict[str, Any] | None) -> list[str]:
    """What went wrong: a job that did not run exactly once, a cancel that did not cancel or left something."""
    problems = [f"{q['setup']} {phase}: {q[phase]['ran_once']} of {q[phase]['jobs']} ran exactly once"
                for q in queues for phase in ("backlog", "paced") if q[phase]["ran_once"] != q[phase]["jobs"]]
    for run in (cancel or {}).get("runs", []):
        if run["status"] != "canceled" or run["temp_files"] or run["partial_files"] or run["multipart_uploads"]:
            problems.append(f"cancel {run}")
    return problems


@contextlib.contextmanager
def _registry(database: str, work: Path, name: str) -> Iterator[str]:
    if database == "sqlite":
        yield f"sqlite:///{work / f'{name}.db'}"
        return
    from tests.fixtures.postgres import PostgresUnavailable, postgres_cluster

    try:
        with postgres_cluster() as server:
            yield server.url(server.create_database())
    except PostgresUnavailable as exc:
        raise Unavailable(f"PostgreSQL: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_jobs")
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke run")
    parser.add_argument("--jobs", type=int, default=None, help="jobs per run (default 1000; quick 40)")
    parser.add_argument("--workers", type=int, default=4, help="brokers worker processes (default 4)")
    parser.add_argument("--rate", type=float, default=20.0, help="jobs/s of the paced run (default 20)")
    parser.add_argument("--cancel-files", type=int, default=None, help="files of the canceled clone (10000)")
    parser.add_argument("--cancel-repeats", type=int, default=None, help="cancels per target (default 5)")
    parser.add_argument("--setup", nargs="+", choices=SETUPS, default=list(SETUPS))
    parser.add_argument("--no-s3", action="store_true", help="cancel host -> host only (no moto server)")
    parser.add_argument("--json", type=Path, help="also write the raw report here")
    parser.add_argument("--no-write", action="store_true", help=f"print only, leave {RESULTS.name} alone")
    args = parser.parse_args(argv)
    jobs = args.jobs or (40 if args.quick else 1000)
    files = args.cancel_files or (2000 if args.quick else 10_000)
    repeats = args.cancel_repeats or (1 if args.quick else 5)
    command = " ".join(["python -m bench.bench_jobs", *(sys.argv[1:] if argv is None else argv)])
    from tests.fixtures.redis import RedisUnavailable, redis_process

    queues: list[dict[str, Any]] = []
    cancel = None
    with tempfile.TemporaryDirectory(prefix="brokers-bench-jobs-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        try:
            redis = stack.enter_context(redis_process())
        except RedisUnavailable as exc:
            raise Unavailable(f"Redis: {exc}") from exc
        for n, setup in enumerate(args.setup):
            queue, database = setup.split("-")
            print(f"{setup}: {jobs} jobs, backlog then paced at {args.rate:g}/s ...", flush=True)
            with _registry(database, work, setup) as url:
                queues.append(measure_queue(setup, url, redis.url(n) if queue == "redis" else None,
                                            jobs=jobs, workers_count=args.workers, rate=args.rate, work=work))
            print(json.dumps(queues[-1], default=str), flush=True)
        print(f"cancel: clone of {files} files, {repeats} times per target ...", flush=True)
        with _registry("postgresql", work, "cancel") as url:
            s3 = None
            if not args.no_s3:
                from .servers import MotoProcess, running

                s3 = stack.enter_context(running(MotoProcess(work)))
            cancel = measure_cancel(url, redis.url(15), files=files, repeats=repeats, work=work, s3=s3)
    section = render(queues, cancel, command, args.workers)
    print(section)
    if args.json:
        args.json.write_text(json.dumps({"command": command, "queues": queues, "cancel": cancel}, indent=2,
                                        default=str) + "\n")
    if not args.no_write:
        RESULTS.write_text(replace_section(RESULTS.read_text() if RESULTS.exists() else "", section))
    problems = failed(queues, cancel)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
