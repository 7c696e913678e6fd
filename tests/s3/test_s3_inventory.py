"""Usage from an S3 Inventory report, written in the documented layout into a real (moto) bucket.

moto does not publish inventories, so the tests write one as S3 does: ``PREFIX/SOURCE/CONFIG/YYYY-MM-DDTHH-MMZ/
manifest.json`` naming gzip'd CSV files (no header, keys URL-encoded) or Parquet files, with the columns of
``fileSchema``. The same objects are written to the workspace, so that the report must agree with a listing.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import uuid
from urllib.parse import quote_plus

import pytest

from brokers.errors import BrokerError, FileNotFound

SCHEMA = "Bucket, Key, Size, LastModifiedDate, ETag, IsLatest, IsDeleteMarker"
OBJECTS = {"in/a b.csv": 100, "in/deep/c.csv": 20, "out/r+s.txt": 7, "top.txt": 3}


def _csv_gz(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL).writerows(rows)
    return gzip.compress(text.getvalue().encode())


@pytest.fixture
def inventory(s3_client, s3_bucket):
    """``publish(stamp, rows, fmt="CSV", source=bucket) -> location``: a report of the test bucket."""
    destination = f"inventory-{uuid.uuid4().hex[:8]}"
    s3_client.create_bucket(Bucket=destination)
    base = f"reports/{s3_bucket}/daily"

    def publish(stamp: str, rows: list[tuple[str, int, bool, bool]], fmt: str = "CSV",
                source: str = s3_bucket) -> str:
        key = f"{base}/{stamp}/data/{uuid.uuid4().hex}.{'csv.gz' if fmt == 'CSV' else 'parquet'}"
        records = [[source, k, str(size), "2026-11-30T00:00:00.000Z", "etag", str(latest).lower(),
                    str(marker).lower()] for k, size, latest, marker in rows]
        if fmt == "CSV":
            body = _csv_gz([[r[0], quote_plus(r[1], safe="/"), *r[2:]] for r in records])
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            columns = [c.strip() for c in SCHEMA.split(",")]
            table = pa.table({name: [r[i] for r in records] for i, name in enumerate(columns)})
            out = io.BytesIO()
            pq.write_table(table, out)
            body = out.getvalue()
        s3_client.put_object(Bucket=destination, Key=key, Body=body)
        manifest = {"sourceBucket": source, "destinationBucket": f"arn:aws:s3:::{destination}",
                    "version": "2016-11-30", "creationTimestamp": "1764460800000", "fileFormat": fmt,
                    "fileSchema": SCHEMA, "files": [{"key": key, "size": len(body), "MD5checksum": "x"}]}
        s3_client.put_object(Bucket=destination, Key=f"{base}/{stamp}/manifest.json", Body=json.dumps(manifest))
        return f"s3://{destination}/{base}"

    return publish


def _rows(prefix: str) -> list[tuple[str, int, bool, bool]]:
    rows = [(prefix + k, size, True, False) for k, size in OBJECTS.items()]
    rows += [(prefix + "in/old.csv", 999, False, False),  # an older version
             (prefix + "in/gone.csv", 0, True, True),  # a delete marker
             ("elsewhere/x", 5000, True, False),  # another workspace's
             (prefix + "in/", 0, True, False)]  # a folder marker
    return rows


@pytest.mark.parametrize("fmt", ["CSV", "Parquet"])
def test_the_report_agrees_with_a_listing(s3_broker, inventory, fmt) -> None:
    for path, size in OBJECTS.items():
        s3_broker.write_bytes(path, b"i" * size)
    inventory("2026-11-28T00-00Z", [("ws/stale.csv", 1, True, False)])  # an older report
    location = inventory("2026-11-30T00-00Z", _rows("ws/"), fmt=fmt.upper())
    report = s3_broker.inventory_usage(location)
    listed = s3_broker.folder_usage(1)
    assert report.folders == listed.folders
    assert (report.usage.used_size, report.usage.file_count) == (listed.usage.used_size, 4) == (130, 4)
    assert report.usage.method == "s3 inventory 2026-11-30T00-00Z"
    assert report.usage.measured_at.isoformat() == "2025-11-30T00:00:00+00:00"  # the report's creation
    deeper = s3_broker.inventory_usage(location, depth=2)
    assert [(f.path, f.used_size) for f in deeper.folders] == [("", 3), ("in", 100), ("in/deep", 20), ("out", 7)]


def test_a_quota_bounds_the_free_space(make_s3_broker, inventory) -> None:
    broker = make_s3_broker(total_size=1000)
    report = broker.inventory_usage(inventory("2026-11-30T00-00Z", _rows("ws/")))
    assert (report.usage.total_size, report.usage.free_size) == (1000, 870)


def test_refusals(s3_broker, inventory, s3_bucket) -> None:
    with pytest.raises(ValueError, match="must look like s3://"):
        s3_broker.inventory_usage("https://example.com/report")
    with pytest.raises(ValueError, match="depth"):
        s3_broker.inventory_usage("s3://b/p", depth=0)
    other = inventory("2026-11-30T00-00Z", _rows("ws/"), source="another-bucket")
    with pytest.raises(BrokerError, match="lists bucket 'another-bucket'"):
        s3_broker.inventory_usage(other)
    with pytest.raises(FileNotFound, match="no inventory report under"):
        s3_broker.inventory_usage(other + "-missing")


def test_a_usage_scan_job_reads_the_report(service, s3_config, s3_broker, inventory, tmp_path) -> None:
    for path, size in OBJECTS.items():
        s3_broker.write_bytes(path, b"i" * size)
    location = inventory("2026-11-30T00-00Z", _rows("ws/"))
    ws_id = service.client.post("/workspaces", json={"name": "inventoried", "configuration": s3_config}
                                ).json()["workspace"]["id"]
    posted = service.client.post(f"/workspaces/{ws_id}/jobs", json={"settings": {"inventory": location}})
    assert posted.status_code in (200, 201), posted.text
    job_id = posted.json()["workspace_job"]["id"]

    def ended():
        job = service.client.get(f"/workspaces/{ws_id}/jobs/{job_id}").json()["workspace_job"]
        return job if job["status"] not in ("waiting", "running") else None

    job = service.wait_for(ended, timeout=30)
    if job["settings"] != {"inventory": location}:  # joined the creation's scan: run ours now
        posted = service.client.post(f"/workspaces/{ws_id}/jobs", json={"settings": {"inventory": location}})
        job_id = posted.json()["workspace_job"]["id"]
        job = service.wait_for(ended, timeout=30)
    assert job["status"] == "finished", job
    assert job["stats"]["data_volumes"] == {"/": 3, "/in": 120, "/out": 7}
    assert job["stats"]["method"] == "s3 inventory 2026-11-30T00-00Z"
    host = service.client.post("/workspaces", json={"name": "not-s3", "configuration": {
        "broker": {"type": "host", "host_path": str(tmp_path)}}}).json()["workspace"]["id"]
    refused = service.client.post(f"/workspaces/{host}/jobs", json={"settings": {"inventory": location}})
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "settings.inventory"
    bad = service.client.post(f"/workspaces/{ws_id}/jobs", json={"settings": {"inventory": "ftp://x"}})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "settings.inventory"
