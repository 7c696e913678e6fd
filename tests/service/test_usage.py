"""used_size/total_size: measured by usage scan jobs, cached with their time, never waited for by a request."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone

import brokers
from brokers.types import FolderUsage, Usage, UsageReport


def sizes(service, ws_id: int) -> dict:
    body = service.client.get(f"/v6/workspaces/{ws_id}/").json()
    return {k: body[k] for k in ("used_size", "total_size", "usage_measured")}


def listed(service, ws_id: int) -> dict:
    rows = service.client.get("/v6/workspaces/").json()["results"]
    return next(r for r in rows if r["id"] == ws_id)


def test_host_usage_appears_after_the_background_refresh(service, host_root) -> None:
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(host_root)}})
    payloads = {"a.bin": os.urandom(1000), "dir/b.bin": os.urandom(123_457), "dir/sub/c.txt": b"hello"}
    for path, data in payloads.items():
        broker.write_bytes(path, data)
    written = sum(len(d) for d in payloads.values())
    created = service.client.post("/v6/workspaces/", json={
        "title": "Host", "configuration": {"broker": {"type": "host", "host_path": str(host_root)}}}).json()
    row = service.wait_for(lambda: (r := listed(service, created["id"]))["used_size"] is not None and r)
    vfs = os.statvfs(host_root)
    assert row["used_size"] == written
    assert row["total_size"] == vfs.f_blocks * vfs.f_frsize
    assert row["usage_measured"].endswith("Z")
    assert sizes(service, created["id"])["used_size"] == written


def test_quota_is_the_total(service, host_root) -> None:
    (host_root / "f").write_bytes(b"x" * 10)
    ws_id = service.client.post("/v6/workspaces/", json={"title": "Quota", "configuration": {
        "broker": {"type": "host", "host_path": str(host_root), "total_size": 5000}}}).json()["id"]
    got = service.wait_for(lambda: (s := sizes(service, ws_id))["used_size"] is not None and s)
    assert (got["used_size"], got["total_size"]) == (10, 5000)


def test_new_configuration_resets_and_remeasures(service, tmp_path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    (first / "f").write_bytes(b"1" * 11)
    (second / "f").write_bytes(b"2" * 22)
    ws_id = service.client.post("/v6/workspaces/", json={
        "title": "Moving", "configuration": {"broker": {"type": "host", "host_path": str(first)}}}).json()["id"]
    service.wait_for(lambda: sizes(service, ws_id)["used_size"] == 11)
    service.client.patch(f"/v6/workspaces/{ws_id}/",
                         json={"configuration": {"broker": {"type": "host", "host_path": str(second)}}})
    service.wait_for(lambda: sizes(service, ws_id)["used_size"] == 22)
    # A title change is not a new configuration: the measurement stays.
    service.client.patch(f"/v6/workspaces/{ws_id}/", json={"title": "Renamed"})
    assert sizes(service, ws_id)["used_size"] == 22


def test_stale_usage_is_refreshed_periodically(start_service, host_root) -> None:
    service = start_service(usage_interval=0.3)
    ws_id = service.client.post("/v6/workspaces/", json={
        "title": "Growing", "configuration": {"broker": {"type": "host", "host_path": str(host_root)}}}).json()["id"]
    service.wait_for(lambda: sizes(service, ws_id)["used_size"] == 0)
    (host_root / "new").write_bytes(b"z" * 77)
    service.wait_for(lambda: sizes(service, ws_id)["used_size"] == 77, timeout=10)


class SlowBroker:
    """Stands for a store that does not answer until released."""

    def __init__(self, release: threading.Event, calls: list[str], path: str) -> None:
        self.release, self.calls, self.path = release, calls, path

    def folder_usage(self, depth: int = 1) -> UsageReport:
        self.calls.append(self.path)
        if "slow" in self.path:
            self.release.wait(30)
        usage = Usage(used_size=42, total_size=None, free_size=None, file_count=1,
                      measured_at=datetime.now(timezone.utc), method="fake")
        return UsageReport(usage=usage, folders=(FolderUsage("", 42, 1),), depth=depth)


def test_a_slow_store_neither_blocks_requests_nor_other_workspaces(start_service, monkeypatch) -> None:
    release = threading.Event()
    calls: list[str] = []
    monkeypatch.setattr("brokers.service.jobs.runner.get_broker",
                        lambda cfg, policy: SlowBroker(release, calls, cfg["broker"]["host_path"]))
    service = start_service(job_workers=2)
    try:
        slow = service.client.post("/v6/workspaces/", json={
            "title": "Slow", "configuration": {"broker": {"type": "host", "host_path": "/slow"}}}).json()["id"]
        service.wait_for(lambda: calls)
        started = time.monotonic()
        row = listed(service, slow)
        assert time.monotonic() - started < 0.5  # the list does not wait for the measurement
        assert row["used_size"] is None
        # The slow store holds one worker; the other measures the next workspace.
        fast = service.client.post("/v6/workspaces/", json={
            "title": "Fast", "configuration": {"broker": {"type": "host", "host_path": "/fast"}}}).json()["id"]
        service.wait_for(lambda: sizes(service, fast)["used_size"] == 42, timeout=5)
        assert sizes(service, slow)["used_size"] is None
        # Asking again while it runs joins the running scan: the store is not asked twice.
        again = service.client.post(f"/workspaces/{slow}/jobs")
        assert again.status_code == 200 and again.json()["workspace_job"]["status"] == "running"
        assert calls.count("/slow") == 1
    finally:
        release.set()
    service.wait_for(lambda: sizes(service, slow)["used_size"] == 42, timeout=5)  # stored when it arrives


def test_a_failing_store_leaves_the_sizes_unknown(service, tmp_path) -> None:
    missing = tmp_path / "does-not-exist"
    ws_id = service.client.post("/v6/workspaces/", json={
        "title": "Gone", "configuration": {"broker": {"type": "host", "host_path": str(missing)}}}).json()["id"]
    time.sleep(0.5)
    got = sizes(service, ws_id)
    assert got["used_size"] in (None, 0)
    assert service.client.get("/v6/workspaces/").status_code == 200


def test_s3_usage_through_the_service(service, s3_config, make_s3_broker) -> None:
    """An S3 workspace (real moto server): used_size sums the objects, total_size is null (no capacity)."""
    broker = make_s3_broker()
    broker.write_bytes("a", b"a" * 300)
    broker.write_bytes("d/b", b"b" * 4000)
    created = service.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": s3_config})
    assert created.status_code == 201
    assert created.json()["configuration"]["broker"]["credentials"]["secret_access_key"] == "************"
    got = service.wait_for(lambda: (s := sizes(service, created.json()["id"]))["usage_measured"] and s, timeout=20)
    assert (got["used_size"], got["total_size"]) == (4300, None)
    # The secret was decrypted for the measurement, and is still encrypted at rest.
    quota = {**s3_config, "broker": {**s3_config["broker"], "total_size": 10_000}}
    quota["broker"]["credentials"] = {"access_key_id": "************", "secret_access_key": "************"}
    assert service.client.patch(f"/v6/workspaces/{created.json()['id']}/",
                                json={"configuration": quota}).status_code == 204
    got = service.wait_for(lambda: (s := sizes(service, created.json()["id"]))["usage_measured"] and s, timeout=20)
    assert (got["used_size"], got["total_size"]) == (4300, 10_000)
