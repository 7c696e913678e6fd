"""``python -m bench.bench_usage_scan``: the ``usage_scan`` job on a large host tree and a large S3 bucket.

Usage::

    python -m bench.bench_usage_scan [--files 100000] [--objects 20000] [--runs 3] [--quick] [--no-write]

For a host workspace of ``--files`` files in nested folders (and a few at the root) and an S3 workspace of
``--objects`` objects (a moto server of its own, seeded in its memory, :func:`bench.servers.tree_keys`):

- the truth per top-level folder: ``find DIR -type f -printf '%s'`` on the host (``du -sb`` also counts the
  folders' own entries, so it is shown for the total only), a plain boto3 listing grouped by first key segment on S3;
- ``broker.usage()`` and ``broker.folder_usage(1)`` in this process, and a ``usage_scan`` job through the service
  (embedded SQLite queue, in-process workers): its run (``started`` to ``ended`` in its record) and its dispatch
  (``created`` to ``started``), medians of ``--runs``.

The job's ``stats.data_volumes``/``files_count`` must equal the truth (exit status 1 otherwise). The result goes
into ``bench/RESULTS.md`` as its own section between markers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .harness import replace_section, versions
from .servers import MotoProcess, Unavailable, tree_keys

RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- bench_usage_scan: begin -->", "<!-- bench_usage_scan: end -->"
TOKEN = "bench-usage-scan"


def make_tree(root: Path, files: int) -> None:
    """``files`` files: 1 in 1,000 at the root, the rest in ``d0``..``d9``, two levels below; sizes 0..4095."""
    for i in range(files):
        if i % 1000 == 999:
            path = root / f"top{i}.bin"
        else:
            path = root / f"d{i % 10}" / f"e{(i // 10) % 25}" / f"f{(i // 250) % 8}" / f"{i}.bin"
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"x" * ((i * 37) % 4096))
        os.close(fd)


def host_truth(root: Path) -> tuple[dict[str, int], dict[str, int], int]:
    """Bytes and files per top-level folder (``"/"``: the root's own files) by ``find``; and ``du -sb``."""
    volumes: dict[str, int] = {}
    counts: dict[str, int] = {}
    for entry in sorted(os.listdir(root)):
        path = root / entry
        if path.is_dir():
            sizes = subprocess.run(["find", str(path), "-type", "f", "-printf", "%s\n"], check=True,
                                   capture_output=True, text=True).stdout.split()
            volumes[f"/{entry}"], counts[f"/{entry}"] = sum(map(int, sizes)), len(sizes)
    root_sizes = subprocess.run(["find", str(root), "-maxdepth", "1", "-type", "f", "-printf", "%s\n"], check=True,
                                capture_output=True, text=True).stdout.split()
    if root_sizes:
        volumes["/"], counts["/"] = sum(map(int, root_sizes)), len(root_sizes)
    du = int(subprocess.run(["du", "-sb", str(root)], check=True, capture_output=True, text=True).stdout.split()[0])
    return volumes, counts, du


def s3_truth(client: Any, bucket: str) -> tuple[dict[str, int], dict[str, int]]:
    """Bytes and objects per first key segment, from a plain listing."""
    volumes: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            head, sep, _ = item["Key"].partition("/")
            folder = f"/{head}" if sep else "/"
            volumes[folder] += item["Size"]
            counts[folder] += 1
    return dict(volumes), dict(counts)


def median_seconds(run: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class Service:
    """The service in this process (embedded SQLite queue, two job workers), driven by a test client."""

    def __init__(self, tmp: Path, allow: tuple[str, ...]) -> None:
        from fastapi.testclient import TestClient

        from brokers.service.app import create_app
        from brokers.service.settings import Settings

        settings = Settings(database_url=f"sqlite:///{tmp / 'service.db'}", tokens=(TOKEN,), usage_interval=0,
                            check_access=False, s3_endpoint_allow=allow)
        app = create_app(settings)
        self.sessions = app.state.service.sessions
        self.client = TestClient(app, headers={"X-Access-Token": TOKEN})
        self.client.__enter__()

    def close(self) -> None:
        self.client.__exit__(None, None, None)

    def workspace(self, name: str, configuration: dict[str, Any]) -> int:
        created = self.client.post("/workspaces", json={"name": name, "configuration": configuration})
        created.raise_for_status()
        ws_id = int(created.json()["workspace"]["id"])
        self.wait_idle(ws_id)
        return ws_id

    def wait_idle(self, ws_id: int) -> None:
        while any(j["status"] in ("waiting", "running") for j in
                  self.client.get(f"/workspaces/{ws_id}/jobs?limit=1000").json()["workspace_jobs"]):
            time.sleep(0.02)

    def scan(self, ws_id: int) -> dict[str, Any]:
        """Run one usage scan to its end; return the job, with its run and dispatch times from its record."""
        from brokers.service.db.models import Job

        posted = self.client.post(f"/workspaces/{ws_id}/jobs", json={"kind": "usage_scan"})
        posted.raise_for_status()
        job_id = posted.json()["workspace_job"]["id"]
        while True:
            job: dict[str, Any] = self.client.get(f"/workspaces/{ws_id}/jobs/{job_id}").json()["workspace_job"]
            if job["status"] not in ("waiting", "running"):
                break
            time.sleep(0.05)
        with self.sessions() as session:
            row = session.get(Job, job_id)
            job["run_seconds"] = (row.ended - row.started).total_seconds()
            job["dispatch_seconds"] = (row.started - row.created).total_seconds()
        return job


def measure(service: Service, name: str, configuration: dict[str, Any], truth: tuple[dict[str, int], dict[str, int]],
            runs: int) -> dict[str, Any]:
    import brokers

    broker = brokers.get_broker(configuration)
    ws_id = service.workspace(name, configuration)
    jobs = [service.scan(ws_id) for _ in range(runs)]
    job_time = statistics.median(j["run_seconds"] for j in jobs)
    dispatch = statistics.median(j["dispatch_seconds"] for j in jobs)
    job = jobs[-1]
    stats = job["stats"]
    same = job["status"] == "finished" and (stats["data_volumes"], stats["files_count"]) == truth
    return {"name": name, "status": job["status"], "same": same, "files": stats.get("file_count"),
            "bytes": stats.get("used_size"), "folders": len(stats.get("data_volumes", {})),
            "usage": median_seconds(broker.usage, runs), "folder_usage": median_seconds(
                lambda: broker.folder_usage(1), runs), "job": job_time, "dispatch": dispatch,
            "method": stats.get("method")}


def section(rows: list[dict[str, Any]], notes: list[str], command: str) -> str:
    lines = [BEGIN, "## Usage scans (issue 15)", "", f"Command: `{command}` ({versions()})", "",
             "| workspace | files | bytes | folders | per-folder stats = truth | `usage()` | `folder_usage(1)` "
             "| `usage_scan` job (running) | job / `usage()` | dispatch |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['files']:,} | {r['bytes']:,} | {r['folders']} | "
                     f"{'yes' if r['same'] else '**no**'} | {r['usage']:.2f} s | {r['folder_usage']:.2f} s | "
                     f"{r['job']:.2f} s | {r['job'] / r['usage']:.2f}x | {r['dispatch'] * 1000:.0f} ms |")
    lines += ["", *notes, "", END]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_usage_scan")
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 files, 1,000 objects, one run")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.objects, args.runs = 2000, 1000, 1
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="brokers-bench-scan-") as tmp_name:
        tmp = Path(tmp_name)
        tree = tmp / "tree"
        tree.mkdir()
        make_tree(tree, args.files)
        volumes, counts, du = host_truth(tree)
        moto = MotoProcess(tmp, seed=("scan", args.objects))
        try:
            moto.start()
        except Unavailable as exc:
            if os.environ.get("BROKERS_REQUIRE_REAL_SERVERS"):
                raise
            moto = None  # type: ignore[assignment]
            notes.append(f"S3 skipped: {exc}")
        service = Service(tmp, (moto.endpoint,) if moto else ())
        try:
            row = measure(service, f"host, {args.files:,} files", {"broker": {"type": "host",
                                                                            "host_path": str(tree)}},
                          (volumes, counts), args.runs)
            rows.append(row)
            notes.append(f"- host truth: `find -type f` per top-level folder; `du -sb` says {du:,} bytes for the "
                         f"whole tree, {du - row['bytes']:,} more than the files: the folders' own entries.")
            if moto is not None:
                expected = s3_truth(moto.boto3_client(), "scan")
                assert sum(expected[1].values()) == len(tree_keys(args.objects))
                rows.append(measure(service, f"S3 (moto), {args.objects:,} objects", moto.broker_config("scan"),
                                    expected, args.runs))
                notes.append("- S3 truth: one boto3 `list_objects_v2` listing grouped by first key segment. The "
                             "moto server is a process of its own; its Python request handling dominates.")
        finally:
            service.close()
            if moto is not None:
                moto.stop()
    text = section(rows, notes, "python -m bench.bench_usage_scan " + " ".join(argv if argv is not None
                                                                               else sys.argv[1:]))
    print(text)
    if not args.no_write:
        RESULTS.write_text(replace_section(RESULTS.read_text() if RESULTS.exists() else "", text, BEGIN, END))
    return 0 if all(r["same"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
