"""S3 fast paths: requests a download and a usage report cost."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.s3


def test_small_download_is_one_request(s3_broker, s3_server, tmp_path):
    s3_broker.write_bytes("a.txt", b"hello")
    mark = s3_server.mark()
    assert s3_broker.download_many([("a.txt", tmp_path / "a.txt")]) == [str(tmp_path / "a.txt")]
    assert (tmp_path / "a.txt").read_bytes() == b"hello"
    assert [r.method for r in s3_server.since(mark)] == ["GET"]


@pytest.mark.parametrize("page", [1000, 7, 3])
def test_usage_counts_every_object_once_whatever_the_paging(make_s3_broker, s3_client, s3_bucket, page):
    keys = [f"ws/top{i}" for i in range(5)]  # files directly under the prefix, before and after directories
    keys += [f"ws/a/f{i}" for i in range(9)] + [f"ws/b/c/d/f{i}" for i in range(11)] + ["ws/b/g", "ws/zz"]
    keys += [f"ws/m{i}/x" for i in range(6)] + ["ws/dir/"]  # a directory marker is not a file
    keys += ["other/ignored", "wsx/also-ignored"]  # outside the workspace prefix
    sizes = {}
    for n, key in enumerate(keys):
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"x" * n)
        sizes[key] = n
    inside = {k: v for k, v in sizes.items() if k.startswith("ws/") and not k.endswith("/")}
    broker = make_s3_broker()
    broker.list_page_size = page
    usage = broker.usage()
    assert (usage.used_size, usage.file_count) == (sum(inside.values()), len(inside))
    assert usage.total_size is None and usage.method == "list_objects_v2"


def test_usage_of_a_small_workspace_is_one_request(s3_broker, s3_server):
    for i in range(20):
        s3_broker.write_bytes(f"d{i % 4}/f{i}", b"abc")
    mark = s3_server.mark()
    usage = s3_broker.usage()
    assert (usage.used_size, usage.file_count) == (60, 20)
    assert len(s3_server.since(mark)) == 1


def test_usage_of_an_empty_workspace(s3_broker):
    usage = s3_broker.usage()
    assert (usage.used_size, usage.file_count) == (0, 0)
