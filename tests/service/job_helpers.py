"""Helpers of the workspace job tests: make workspaces, run jobs through the management API, wait for their end."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brokers
from brokers.core.streams import TEMP_PREFIX
from brokers.service.store.users import add_user

ENDED = ("finished", "error", "canceled")
_names = itertools.count(1)
_users = itertools.count(1)


def host_config(path: Path | str) -> dict[str, Any]:
    return {"broker": {"type": "host", "host_path": str(path)}}


def user(service: Any, name: str, admin: bool = False) -> tuple[int, dict[str, str]]:
    """A new user and the headers that carry its token."""
    with service.app.state.service.sessions() as session, session.begin():
        row, token = add_user(session, f"{name}-{next(_users)}", admin=admin)
        return row.id, {"X-Access-Token": token}


def workspace(service: Any, configuration: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
              **fields: Any) -> int:
    """Create a workspace through the management API; wait until the usage scan its configuration started ends."""
    body = {"name": f"jobs-ws-{next(_names)}", **fields}
    if configuration is not None:
        body["configuration"] = configuration
    response = service.client.post("/workspaces", json=body, headers=headers)
    assert response.status_code == 201, response.text
    ws_id = int(response.json()["workspace"]["id"])
    idle(service, ws_id)
    return ws_id


def jobs_of(service: Any, ws_id: int) -> list[dict[str, Any]]:
    response = service.client.get(f"/workspaces/{ws_id}/jobs", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return list(response.json()["workspace_jobs"])


def idle(service: Any, ws_id: int, timeout: float = 60) -> None:
    """Wait until every job of the workspace has ended."""
    service.wait_for(lambda: all(j["status"] in ENDED for j in jobs_of(service, ws_id)), timeout=timeout)


def get_job(service: Any, ws_id: int, job_id: int, full: bool = False) -> dict[str, Any]:
    response = service.client.get(f"/workspaces/{ws_id}/jobs/{job_id}", params={"load_full_structure": int(full)})
    assert response.status_code == 200, response.text
    return dict(response.json()["workspace_job"])


def start(service: Any, ws_id: int, kind: str, settings: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Start a job (201, or 200 for a usage scan that joined one under way); return it."""
    response = service.client.post(f"/workspaces/{ws_id}/jobs", json={"kind": kind, "settings": settings or {}},
                                   headers=headers)
    assert response.status_code in (200, 201), response.text
    return dict(response.json()["workspace_job"])


def wait_end(service: Any, ws_id: int, job_id: int, timeout: float = 60) -> dict[str, Any]:
    """Wait until the job has ended and its worker let go of it (its notification sent); return it."""
    runner = service.app.state.service.jobs.runner
    service.wait_for(lambda: get_job(service, ws_id, job_id)["status"] in ENDED and job_id not in runner.running(),
                     timeout=timeout)
    return get_job(service, ws_id, job_id)


def run(service: Any, ws_id: int, kind: str, settings: dict[str, Any] | None = None,
        timeout: float = 60) -> dict[str, Any]:
    """Start a job and wait for its end."""
    return wait_end(service, ws_id, start(service, ws_id, kind, settings)["id"], timeout)


def logs(service: Any, ws_id: int, job_id: int) -> list[tuple[str, str]]:
    response = service.client.get(f"/workspaces/{ws_id}/jobs/{job_id}/logs", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [(line["level"], line["text"]) for line in response.json()["workspace_logs"]]


def write_files(broker: Any, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        broker.write_bytes(path, data)


def contents(broker: Any) -> dict[str, bytes]:
    """Every file of a workspace and its bytes."""
    return {info.path: broker.read_bytes(info.path) for info in broker.list()}


def temp_files(root: Path) -> list[str]:
    """The temporary files of unfinished writes under a folder (which listings never show)."""
    return [os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names
            if name.startswith(TEMP_PREFIX)]


_prefixes = itertools.count(1)


@dataclass
class Storage:
    """A workspace's storage: the configuration given to the service, and a broker of the test's own on it."""

    kind: str
    config: dict[str, Any]
    broker: Any
    root: Path | None = None  # host, NFS: the folder holding the files on this machine

    def pending_uploads(self, s3_client: Any) -> list[str]:
        """S3: the keys of incomplete multipart uploads under this workspace's prefix."""
        broker = self.config["broker"]
        answer = s3_client.list_multipart_uploads(Bucket=broker["bucket_name"], Prefix=broker["prefix"] + "/")
        return [u["Key"] for u in answer.get("Uploads", [])]


def storage_factory(request: Any, tmp_path: Path) -> Callable[[str], Storage]:
    """``make(kind)``: a fresh empty workspace storage of that kind (``host``, ``s3``, ``nfs``)."""

    def make(kind: str) -> Storage:
        number = next(_prefixes)
        if kind == "host":
            root = tmp_path / f"host-{number}"
            root.mkdir()
            return Storage(kind, host_config(root), brokers.get_broker(host_config(root)), root)
        if kind == "s3":
            s3_config = request.getfixturevalue("s3_config")
            config = {**s3_config, "broker": {**s3_config["broker"], "prefix": f"ws-{number}"}}
            return Storage(kind, config, brokers.get_broker(config))
        assert kind == "nfs"
        nfs = request.getfixturevalue("nfs_workspace")
        return Storage(kind, nfs.config("3"), request.getfixturevalue("make_nfs_broker")("3"), nfs.backing)

    return make


def target_is_clean(storage: Storage, request: Any) -> None:
    """No temporary file (host, NFS: in the backing folder) and no incomplete multipart upload (S3) is left."""
    if storage.root is not None:
        assert temp_files(storage.root) == []
    if storage.kind == "s3":
        assert storage.pending_uploads(request.getfixturevalue("s3_client")) == []
