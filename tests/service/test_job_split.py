"""A usage scan split over the workers: one part per top-level folder, sent on the queue, merged by the scan."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from brokers.service.db import writing
from brokers.service.db.models import Job, JobPart, utcnow
from brokers.service.jobs.parts import claim_part

FILES = {"in/a.csv": 100, "in/deep/b.csv": 20, "out/c": 3000, "logs/2026/x.log": 55, "tmp/y": 1, "root.txt": 9}
EXPECTED_VOLUMES = {"/in": 120, "/out": 3000, "/logs": 55, "/tmp": 1, "/": 9}
EXPECTED_COUNTS = {"/in": 2, "/out": 1, "/logs": 1, "/tmp": 1, "/": 1}


def scan(service, ws_id: int, **settings) -> dict:
    posted = service.client.post(f"/workspaces/{ws_id}/jobs", json={"kind": "usage_scan", "settings": settings})
    assert posted.status_code in (200, 201), posted.text
    job_id = posted.json()["workspace_job"]["id"]

    def ended():
        got = service.client.get(f"/workspaces/{ws_id}/jobs/{job_id}").json()["workspace_job"]
        return got if got["status"] not in ("waiting", "running") else None

    return service.wait_for(ended, timeout=30)


def parts_of(service, job_id: int) -> list[JobPart]:
    with service.app.state.service.sessions() as session:
        return list(session.scalars(select(JobPart).where(JobPart.job_id == job_id).order_by(JobPart.folder)))


def idle_workspace(service, name: str, configuration: dict) -> int:
    ws_id = service.client.post("/workspaces", json={"name": name, "configuration": configuration}
                                ).json()["workspace"]["id"]
    for job in service.client.get(f"/workspaces/{ws_id}/jobs").json()["workspace_jobs"]:
        service.wait_for(lambda j=job: service.client.get(f"/workspaces/{ws_id}/jobs/{j['id']}").json()[
            "workspace_job"]["status"] not in ("waiting", "running"), timeout=30)
    return ws_id


def test_an_s3_scan_split_into_parts_equals_the_one_pass_scan(service, s3_config, make_s3_broker) -> None:
    broker = make_s3_broker()
    for path, size in FILES.items():
        broker.write_bytes(path, b"s" * size)
    ws_id = idle_workspace(service, "split-s3", s3_config)
    whole = scan(service, ws_id, split=False)
    split = scan(service, ws_id, split=True)
    for job in (whole, split):
        assert job["status"] == "finished", job
        assert job["stats"]["data_volumes"] == EXPECTED_VOLUMES
        assert job["stats"]["files_count"] == EXPECTED_COUNTS
        assert (job["stats"]["used_size"], job["stats"]["file_count"]) == (3185, 6)
    assert split["stats"]["method"] == "list_objects_v2 in 4 parts on the queue"
    assert whole["stats"]["method"] == "list_objects_v2"
    parts = parts_of(service, split["id"])
    assert [(p.folder, p.status, p.used_size, p.file_count) for p in parts] == [
        ("in", "done", 120, 2), ("logs", "done", 55, 1), ("out", "done", 3000, 1), ("tmp", "done", 1, 1)]
    assert all(p.worker for p in parts)
    assert parts_of(service, whole["id"]) == []


def test_a_split_scan_ends_with_one_worker_alone(start_service, tmp_path) -> None:
    """The scan takes its own parts: with its worker the only one, it ends (host: the generic listing)."""
    service = start_service(job_workers=1)
    root = tmp_path / "ws"  # not tmp_path itself, which holds the SQLite database
    for path, size in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"h" * size)
    ws_id = idle_workspace(service, "split-host", {"broker": {"type": "host", "host_path": str(root)}})
    job = scan(service, ws_id, split=True)
    assert job["status"] == "finished", job
    assert job["stats"]["data_volumes"] == EXPECTED_VOLUMES and job["stats"]["files_count"] == EXPECTED_COUNTS
    assert job["stats"]["method"] == "list in 4 parts on the queue"
    assert {p.status for p in parts_of(service, job["id"])} == {"done"}


def test_a_part_whose_worker_died_is_taken_over(start_service, tmp_path) -> None:
    service = start_service(job_workers=0, usage_interval=0)
    ws_id = service.client.post("/workspaces", json={"name": "parts"}).json()["workspace"]["id"]
    sessions = service.app.state.service.sessions
    now = utcnow()
    with writing(sessions) as session:
        job = Job(workspace_id=ws_id, kind="usage_scan", status="running", settings={}, variables={}, stats={},
                  origin="request", attempts=1, cancel_requested=False)
        session.add(job)
        session.flush()
        session.add_all([
            JobPart(job_id=job.id, folder="dead", status="running", lease="old", worker="gone:1",
                    lease_expires=now - timedelta(seconds=1)),
            JobPart(job_id=job.id, folder="alive", status="running", lease="other", worker="busy:2",
                    lease_expires=now + timedelta(seconds=60)),
        ])
        job_id = job.id
    taken = claim_part(sessions, "new", "me:3", 30, job_id=job_id)
    assert taken is not None and (taken.folder, taken.lease, taken.worker) == ("dead", "new", "me:3")
    assert claim_part(sessions, "again", "me:3", 30, job_id=job_id) is None  # the live one stays its worker's
    with writing(sessions) as session:
        session.get(Job, job_id).status = "canceled"
        session.add(JobPart(job_id=job_id, folder="late", status="waiting"))
    assert claim_part(sessions, "x", "me:3", 30, job_id=job_id) is None  # no part of a job that ended


def test_on_redis_an_s3_scan_is_split_over_the_worker_processes(start_service, start_workers, redis_url,
                                                                 database_url, s3_config, make_s3_broker) -> None:
    broker = make_s3_broker()
    expected_volumes, expected_counts = {}, {}
    for folder in range(6):
        for n in range(60):
            broker.write_bytes(f"f{folder}/k{n:03d}", b"r" * (folder + n))
        expected_volumes[f"/f{folder}"] = sum(folder + n for n in range(60))
        expected_counts[f"/f{folder}"] = 60
    service = start_service(queue_url=redis_url, job_workers=0)
    workers = start_workers(redis_url, database_url, 2, "--job-workers", "2", "--s3-endpoint-allow",
                            "http://127.0.0.1:*")
    ws_id = idle_workspace(service, "split-redis", s3_config)
    job = scan(service, ws_id)  # no setting: split, since the workers are on Redis
    assert job["status"] == "finished", job
    assert job["stats"]["method"] == "list_objects_v2 in 6 parts on the queue"
    assert (job["stats"]["data_volumes"], job["stats"]["files_count"]) == (expected_volumes, expected_counts)
    parts = parts_of(service, job["id"])
    assert [p.status for p in parts] == ["done"] * 6
    pids = {int(p.worker.split(":")[1].split("/")[0]) for p in parts}
    assert pids <= {w.pid for w in workers}
    assert len({p.worker for p in parts}) >= 2  # the scan's worker thread and at least one other took parts
