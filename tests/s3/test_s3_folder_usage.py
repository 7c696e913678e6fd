"""S3 ``folder_usage``: per-folder sums from the listings ``usage()`` makes, errors as ``brokers.errors`` types."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from botocore.exceptions import ClientError

from brokers.errors import AccessDenied, BrokerError, FileNotFound, StorageUnavailable
from tests.contract.test_folder_usage import expected, shares
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY

from .test_s3_errors import broker_with

pytestmark = pytest.mark.s3

KEYS = ([f"ws/top{i}" for i in range(5)]  # files at the root, before and after the folders
        + [f"ws/a/f{i}" for i in range(9)] + [f"ws/b/c/d/f{i}" for i in range(11)] + ["ws/b/g", "ws/zz"]
        + [f"ws/m{i}/x" for i in range(6)] + ["ws/b/c/e/deeper/f"])
MARKERS = ["ws/dir/", "ws/b/c/"]  # directory markers are no files
OUTSIDE = ["other/ignored", "wsx/also-ignored"]


@pytest.fixture
def filled(s3_client, s3_bucket):
    """The bucket holding :data:`KEYS` (and keys that are no workspace files); return the files by path."""
    files = {}
    for n, key in enumerate(KEYS + MARKERS + OUTSIDE):
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"x" * n)
        if key in KEYS:
            files[key[len("ws/"):]] = n
    return files


@pytest.mark.parametrize("page", [1000, 7, 3])
def test_folders_whatever_the_paging(make_s3_broker, filled, page):
    broker = make_s3_broker()
    broker.list_page_size = page
    usage = broker.usage()
    for depth in (1, 2, 3, 5):
        report = broker.folder_usage(depth)
        assert shares(report) == expected(filled, depth), depth
        assert (report.usage.used_size, report.usage.file_count) == (usage.used_size, usage.file_count)
        assert (usage.used_size, usage.file_count) == (sum(filled.values()), len(filled))
        assert report.usage.total_size is None and report.usage.method == "list_objects_v2"


def test_a_small_workspace_is_one_request(s3_broker, s3_server):
    for i in range(20):
        s3_broker.write_bytes(f"d{i % 4}/f{i}", b"abc")
    mark = s3_server.mark()
    report = s3_broker.folder_usage()
    assert shares(report) == [(f"d{i}", 15, 5) for i in range(4)]
    assert len(s3_server.since(mark)) == 1


def test_a_large_workspace_lists_each_top_level_prefix_once(make_s3_broker, filled, s3_server):
    broker = make_s3_broker()
    broker.list_page_size = 4
    mark = s3_server.mark()
    assert shares(broker.folder_usage(2)) == expected(filled, 2)
    queries = [parse_qs(r.query) for r in s3_server.since(mark)]
    delimited = [q for q in queries if q.get("delimiter") == ["/"]]
    by_prefix = sorted(q["prefix"][0] for q in queries if "delimiter" not in q and "continuation-token" not in q)
    assert delimited and all(q["prefix"] == ["ws/"] for q in delimited)
    # the first page (no delimiter) ends in ws/a/: ws/a/ is listed from there on, every later prefix whole
    # (ws/dir/ holds only a directory marker)
    assert by_prefix == sorted(["ws/", "ws/a/", "ws/b/", "ws/dir/"] + [f"ws/m{i}/" for i in range(6)])


def test_missing_bucket_names_the_bucket(make_s3_broker):
    broker = make_s3_broker(bucket_name="brokers-no-such-bucket")
    with pytest.raises(BrokerError, match="bucket 'brokers-no-such-bucket' does not exist") as info:
        broker.folder_usage()
    assert not isinstance(info.value, FileNotFound) and isinstance(info.value.__cause__, ClientError)


def refused_on(prefix: str):
    """Match the broker's listings of ``prefix`` (the parallel part of a measurement)."""
    return lambda r: r.by_broker and parse_qs(r.query).get("prefix") == [prefix]


@pytest.mark.parametrize("where", ["everywhere", "in a parallel listing"])
def test_refusals_are_access_denied(make_s3_broker, filled, s3_server, s3_bucket, where):
    broker = make_s3_broker()
    broker.list_page_size = 4
    s3_server.inject(refused_on("ws/m3/") if where != "everywhere" else lambda r: r.by_broker,
                     status=403, code="AccessDenied")
    with pytest.raises(AccessDenied) as info:
        broker.folder_usage(2)
    message = str(info.value)
    assert f"access denied to bucket {s3_bucket!r} during usage" in message
    assert SECRET_KEY not in message and ACCESS_KEY not in message
    assert isinstance(info.value.__cause__, ClientError)


def test_a_store_that_keeps_failing_is_storage_unavailable(s3_config, filled, s3_server):
    broker = broker_with(s3_config, attempts=2)
    broker.list_page_size = 4
    s3_server.inject(refused_on("ws/b/"), status=503, code="ServiceUnavailable")
    with pytest.raises(StorageUnavailable) as info:
        broker.folder_usage(1)
    assert "usage failed on s3://" in str(info.value) and isinstance(info.value, ConnectionError)
    assert isinstance(info.value.__cause__, ClientError)
