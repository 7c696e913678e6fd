"""Usage of a bucket too large to list, from its S3 Inventory report (daily CSV or Parquet lists of every object).

An inventory configuration publishes, in its destination bucket, ``PREFIX/SOURCE-BUCKET/CONFIG-ID/
YYYY-MM-DDTHH-MMZ/manifest.json``: the report's format, its columns (``fileSchema``) and its data files. Reading
those files costs a few GETs where listing a billion objects costs a million LISTs. The figures are as old as
the report (``measured_at`` is the report's creation time), and the method says so.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus, urlsplit

from ...core.tally import Tally, folder_at, folder_shares
from ...errors import BrokerError, FileNotFound
from ...types import Usage, UsageReport
from .errors import s3_errors

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["inventory_report", "parse_location"]

_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d-\d\dZ$")


def parse_location(location: str) -> tuple[str, str]:
    """Split ``s3://BUCKET/PREFIX/SOURCE-BUCKET/CONFIG-ID`` (or a ``.../manifest.json``) into bucket and key.

    Raises:
        ValueError: Not an ``s3://`` location with a bucket.
    """
    parts = urlsplit(location)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"the inventory location must look like s3://BUCKET/PREFIX/SOURCE-BUCKET/CONFIG-ID, "
                         f"not {location!r}")
    return parts.netloc, parts.path.strip("/")


def _newest_manifest(client: S3Client, bucket: str, key: str) -> str:
    """The key of the newest ``manifest.json`` under a report's folder (or the manifest named)."""
    if key.endswith("manifest.json"):
        return key
    stamps = []
    with s3_errors(bucket=bucket, path=key or None, action="list the inventory reports of"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key + "/",
                                                                     Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(key) + 1:].rstrip("/")
                if _STAMP.match(name):
                    stamps.append(name)
    if not stamps:
        raise FileNotFound(f"no inventory report under s3://{bucket}/{key}/ (folders named YYYY-MM-DDTHH-MMZ)")
    return f"{key}/{max(stamps)}/manifest.json"


def _rows(client: S3Client, bucket: str, manifest: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """``(key, size)`` of every current object the report lists (delete markers and old versions left out)."""
    kind = str(manifest.get("fileFormat", "")).upper()
    columns = [c.strip() for c in str(manifest.get("fileSchema", "")).split(",")]
    if "Key" not in columns or "Size" not in columns:
        raise BrokerError(f"the inventory report has no Key and Size columns (fileSchema {columns})")
    for item in manifest.get("files", []):
        with s3_errors(bucket=bucket, path=item["key"], action="read the inventory file"):
            body = client.get_object(Bucket=bucket, Key=item["key"])["Body"].read()
        if kind == "CSV":
            reader = csv.reader(io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(body)), encoding="utf-8"))
            records: Iterator[dict[str, Any]] = (dict(zip(columns, row, strict=False)) for row in reader)
            decode = True
        elif kind == "PARQUET":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise BrokerError("reading a Parquet inventory needs pyarrow (pip install pyarrow)") from None
            records = iter(pq.read_table(io.BytesIO(body)).to_pylist())
            decode = False
        else:
            raise BrokerError(f"inventory reports in {kind or 'an unnamed'} format are not read (CSV or Parquet)")
        for record in records:
            if str(record.get("IsDeleteMarker", "false")).lower() == "true" or \
                    str(record.get("IsLatest", "true")).lower() == "false":
                continue
            size = record.get("Size")
            if size in (None, ""):
                continue
            key = str(record["Key"])
            yield (unquote_plus(key) if decode else key), int(size)


def inventory_report(client: S3Client, source_bucket: str, prefix: str, location: str,
                     depth: int) -> UsageReport:
    """Measure the objects under ``prefix`` of ``source_bucket`` from the newest inventory report at ``location``.

    Args:
        client: A client with the workspace's own endpoint and credentials.
        source_bucket: The workspace's bucket (the report must be of it).
        prefix: The workspace's key prefix (``"ws/"``, or ``""``).
        location: ``s3://BUCKET/PREFIX/SOURCE-BUCKET/CONFIG-ID`` or the ``manifest.json`` itself.
        depth: The folder depth of the report's folders.

    Raises:
        ValueError: A location that is not ``s3://...``.
        FileNotFound: No report there.
        BrokerError: The report is of another bucket, or in a format this reader does not take.
    """
    bucket, key = parse_location(location)
    manifest_key = _newest_manifest(client, bucket, key)
    with s3_errors(bucket=bucket, path=manifest_key, action="read the inventory manifest"):
        manifest = json.loads(client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    if manifest.get("sourceBucket") != source_bucket:
        raise BrokerError(f"the inventory at s3://{bucket}/{manifest_key} lists bucket "
                          f"{manifest.get('sourceBucket')!r}, not the workspace's {source_bucket!r}")
    tallies: dict[str, Tally] = defaultdict(Tally)
    for object_key, size in _rows(client, bucket, manifest):
        if not object_key.startswith(prefix) or object_key.endswith("/"):
            continue  # another workspace's, or a folder marker
        rel = object_key[len(prefix):]
        tallies[folder_at(rel.rpartition("/")[0], depth)].add(size)
    total, shares = folder_shares(tallies)
    created = manifest.get("creationTimestamp")
    measured = (datetime.fromtimestamp(int(created) / 1000, timezone.utc) if str(created).isdigit()
                else datetime.now(timezone.utc))
    stamp = manifest_key.rsplit("/", 2)[-2] if manifest_key.count("/") >= 1 else manifest_key
    usage = Usage(used_size=total.used, total_size=None, free_size=None, file_count=total.files,
                  measured_at=measured, method=f"s3 inventory {stamp}")
    return UsageReport(usage=usage, folders=shares, depth=depth)
