"""S3 fast paths: requests a download and a usage report cost."""

from __future__ import annotations


def test_small_download_is_one_request(s3_broker, s3_server, tmp_path):
    s3_broker.write_bytes("a.txt", b"hello")
    mark = s3_server.mark()
    assert s3_broker.download_many([("a.txt", tmp_path / "a.txt")]) == [str(tmp_path / "a.txt")]
    assert (tmp_path / "a.txt").read_bytes() == b"hello"
    assert [r.method for r in s3_server.since(mark)] == ["GET"]
