"""Write ``landed_0001.json``: every row of ``workspace`` as the landed service (commit 5b59609, schema 0001) stores it.

Run with the landed code, not this checkout's::

    mkdir -p /tmp/landed && git archive 5b59609 | tar -x -C /tmp/landed
    PYTHONPATH=/tmp/landed .venv/bin/python tests/service/data/make_landed_0001.py

The workspaces are made through the landed API (a service token, a secret key): host (measured by the landed
usage refresher on a folder of known bytes, with a quota), NFS, S3 with keys and an ``endpoint_url`` holding user
info, and one made inactive (``deprecated`` set). The NFS and S3 stores are not reachable here, so their
measurements are written as the refresher writes them. The file keeps the secret key and the plain secrets, so
that the test can show the sealed ones survive the migration byte for byte and still open.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

import brokers
from brokers.service.app import create_app
from brokers.service.db.models import Workspace
from brokers.service.settings import Settings

LANDED = "5b59609"
TOKEN = "landed-service-token"
SECRET_KEY = "landed-0001-secret-passphrase"
S3_KEYS = {"access_key_id": "AKIALANDED0001EXAMPLE", "secret_access_key": "landed/0001/secret+AccessKey/EXAMPLE"}
ENDPOINT = "http://minio-admin:landed-endpoint-pa55@127.0.0.1:9"
HOST_FILES = {"a.bin": 1000, "dir/b.bin": 23_456, "dir/sub/c.txt": 7}
QUOTA = 50_000_000
HOST_PATH = "/tmp/brokers-landed-0001-host"
MEASURED = {"nfs": (123_456_789, 1_000_000_000_000), "s3": (987_654, None)}


def main() -> None:
    assert Path(brokers.__file__).parts[:3] == ("/", "tmp", "landed"), f"not the landed code: {brokers.__file__}"
    out = Path(__file__).with_name("landed_0001.json")
    with tempfile.TemporaryDirectory(prefix="brokers-landed-") as tmp:
        root = Path(HOST_PATH)  # a fixed path: the fixture does not change with the temporary directory
        shutil.rmtree(root, ignore_errors=True)
        for path, size in HOST_FILES.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(b"x" * size)
        settings = Settings(database_url=f"sqlite:///{tmp}/landed.db", tokens=(TOKEN,), secret_keys=(SECRET_KEY,),
                            check_access=False, s3_endpoint_allow=("http://127.0.0.1:*",))
        app = create_app(settings)
        configs: dict[str, dict[str, Any]] = {
            "host": {"broker": {"type": "host", "host_path": str(root), "total_size": QUOTA}},
            "nfs": {"version": "7", "broker": {"type": "nfs", "nfs_path": "fileserver:/exports/landed",
                                               "nfs_version": "4.1"}},
            "s3": {"version": "6", "broker": {"type": "s3", "bucket_name": "landed-bucket", "region_name": "us-east-1",
                                              "endpoint_url": ENDPOINT, "prefix": "team/ws/",
                                              "credentials": S3_KEYS}},
            "old": {"broker": {"type": "host", "host_path": "/srv/landed/retired"}},
        }
        bodies = {
            "host": {"title": "Raw Source", "description": "Raw Source Workspace", "base_url": "http://host.com/rs"},
            "nfs": {"title": "Products", "description": "Products Workspace"},
            "s3": {"title": "Bucket Space", "base_url": "https://files.example.com/bucket"},
            "old": {"title": "Retired Products", "description": "archived before the migration"},
        }
        ids: dict[str, int] = {}
        with TestClient(app, headers={"X-Access-Token": TOKEN}) as client:  # the lifespan runs the refresher
            for key, body in bodies.items():
                response = client.post("/v6/workspaces/", json={**body, "configuration": configs[key]})
                assert response.status_code == 201, response.text
                ids[key] = response.json()["id"]
            assert client.patch(f"/v6/workspaces/{ids['old']}/", json={"is_active": False}).status_code == 204
            deadline = time.monotonic() + 30
            while client.get(f"/v6/workspaces/{ids['host']}/").json()["used_size"] is None:
                assert time.monotonic() < deadline, "the landed refresher did not measure the host workspace"
                time.sleep(0.1)
            sessions = app.state.service.sessions
            with sessions() as session, session.begin():
                for key, (used, total) in MEASURED.items():
                    session.execute(update(Workspace).where(Workspace.id == ids[key]).values(
                        used_size=used, total_size=total, usage_measured=datetime.now(timezone.utc)))
            with sessions() as session:
                revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
                rows = [dict(row) for row in session.execute(select(Workspace.__table__).order_by(
                    Workspace.id)).mappings()]
        shutil.rmtree(root)
    assert revision == "0001", revision
    assert rows[0]["used_size"] == sum(HOST_FILES.values()) and rows[0]["total_size"] == QUOTA
    for row in rows:
        for field, value in row.items():
            if isinstance(value, datetime):
                row[field] = value.isoformat()
    document = {
        "about": f"every row of table workspace written by the landed service (commit {LANDED}, schema "
                 f"{revision}) through its API; made by {Path(__file__).name}",
        "revision": revision, "secret_key": SECRET_KEY, "token": TOKEN,
        "plain_configurations": {str(ids[k]): v for k, v in configs.items()},
        "workspace": rows,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {len(rows)} workspaces to {out}")


if __name__ == "__main__":
    main()
