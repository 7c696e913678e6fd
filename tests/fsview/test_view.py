"""``broker.fs`` keeps the broker's promises on every backend: confinement, atomic writes, fresh listings, rm."""

from __future__ import annotations

import pickle
from typing import Any

import fsspec
import pytest

from brokers.errors import BrokerError, PathOutsideWorkspace
from brokers.fsspec import BrokerFileSystem

ESCAPES = ["../ws2/evil.txt", "a/../../evil.txt", "/../evil.txt", "brokers://x/../evil.txt"]


def test_rm_of_the_root_empties_the_workspace_and_keeps_it(view_broker):
    fs = view_broker.fs
    for name in ("a.txt", "d/b.txt", "d/e/c.txt"):
        fs.pipe(name, b"x")
    fs.rm("", recursive=True)
    assert list(view_broker.list()) == [] and fs.ls("") == []
    view_broker.write_bytes("again.txt", b"the workspace is still there")
    assert fs.cat("again.txt") == b"the workspace is still there"


def test_rm_of_the_root_never_removes_the_bucket(make_s3_broker, s3_client, s3_bucket):
    fs = make_s3_broker(prefix=None).fs
    fs.pipe("a.txt", b"x")
    fs.rm("", recursive=True)
    s3_client.head_bucket(Bucket=s3_bucket)  # raises if the bucket went
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def test_rm_of_a_prefixed_root_leaves_its_neighbours(s3_broker, s3_client, s3_bucket):
    s3_client.put_object(Bucket=s3_bucket, Key="ws2/keep.txt", Body=b"neighbour")
    s3_broker.fs.pipe("a.txt", b"x")
    s3_broker.fs.rm("/", recursive=True)
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert keys == ["ws2/keep.txt"]


def test_rm_of_the_root_keeps_the_host_folder(host_broker, host_root):
    host_broker.fs.pipe("d/a.txt", b"x")
    host_broker.fs.rm("", recursive=True)
    assert host_root.is_dir() and list(host_broker.list()) == []


def test_rm_says_what_is_wrong(view_broker):
    fs = view_broker.fs
    fs.pipe("d/a.txt", b"x")
    with pytest.raises(IsADirectoryError):
        fs.rm("d")
    with pytest.raises(FileNotFoundError):
        fs.rm("missing.txt")
    fs.rm("d", recursive=True)
    assert not fs.exists("d") and not fs.exists("d/a.txt")


@pytest.mark.parametrize("path", ESCAPES)
def test_no_path_escapes_the_workspace(view_broker, path):
    fs = view_broker.fs
    for attempt in (lambda: fs.pipe(path, b"evil"), lambda: fs.cat(path), lambda: fs.open(path, "wb"),
                    lambda: fs.cp_file("x", path), lambda: fs.info(path)):
        with pytest.raises(PathOutsideWorkspace):
            attempt()
    assert list(view_broker.list()) == []


def test_no_literal_dotdot_key_is_stored(s3_broker, s3_client, s3_bucket):
    with pytest.raises(PathOutsideWorkspace):
        s3_broker.fs.pipe("../ws2/evil.txt", b"evil")
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def test_a_symbolic_link_out_of_the_workspace_is_refused(host_broker, host_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not yours")
    (host_root / "link").symlink_to(outside)
    fs = host_broker.fs
    for attempt in (lambda: fs.cat("link/secret"), lambda: fs.pipe("link/x", b"1"),
                    lambda: fs.open("link/secret", "rb"), lambda: fs.cat_file("link/secret", 0, 3)):
        with pytest.raises(PathOutsideWorkspace):
            attempt()
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_writes_need_no_parent_folders(view_broker):
    fs = view_broker.fs
    with fs.open("fresh/sub/a.csv", "wb") as f:
        f.write(b"a,b\n")
    fs.pipe("new/deeper/p.bin", b"\x00\x01")
    with fs.open("text/t.txt", "w") as f:
        f.write("text mode")
    assert view_broker.read_bytes("fresh/sub/a.csv") == b"a,b\n"
    assert view_broker.read_bytes("new/deeper/p.bin") == b"\x00\x01"
    assert view_broker.read_bytes("text/t.txt") == b"text mode"


def test_a_write_that_fails_leaves_the_old_file(view_broker):
    fs = view_broker.fs
    fs.pipe("keep.txt", b"old")
    for path in ("keep.txt", "new.txt"):
        with pytest.raises(RuntimeError), fs.open(path, "wb") as f:
            f.write(b"half of the new content")
            raise RuntimeError("the job failed mid-write")
    assert fs.cat("keep.txt") == b"old"
    assert not fs.exists("new.txt")
    assert [p["name"] for p in fs.ls("")] == ["keep.txt"]


def test_a_write_in_progress_is_invisible(view_broker):
    fs = view_broker.fs
    with fs.open("d/big.bin", "wb") as f:
        f.write(b"x" * (9 * 1024 * 1024))  # past the write buffer: bytes have reached the store
        assert fs.find("") == [] and not fs.exists("d/big.bin")
    assert fs.find("") == ["d/big.bin"] and fs.size("d/big.bin") == 9 * 1024 * 1024


def test_s3_writes_carry_the_brokers_checksum(s3_broker, s3_server):
    mark = s3_server.mark()
    with s3_broker.fs.open("a.bin", "wb") as f:
        f.write(b"checked")
    s3_broker.fs.pipe("b.bin", b"checked too")
    puts = [r for r in s3_server.since(mark) if r.method == "PUT"]
    assert len(puts) == 2
    assert all("content-md5" in r.headers for r in puts)
    assert not [h for r in puts for h in r.headers if h.startswith("x-amz-checksum")]


def test_listings_are_fresh(view_broker):
    fs = view_broker.fs
    fs.pipe("ds/p0.bin", b"0")
    assert fs.ls("ds", detail=False) == ["ds/p0.bin"]
    view_broker.write_bytes("ds/p1.bin", b"1")
    assert fs.ls("ds", detail=False) == ["ds/p0.bin", "ds/p1.bin"]
    assert fs.find("ds") == ["ds/p0.bin", "ds/p1.bin"]
    view_broker.delete("ds/p0.bin")
    assert not fs.exists("ds/p0.bin")
    assert fs.ls("ds", detail=False) == ["ds/p1.bin"]


def test_a_trailing_slash_means_into_this_folder(view_broker, tmp_path):
    fs = view_broker.fs
    fs.pipe("a.txt", b"a")
    fs.cp("a.txt", "newdir/")
    local = tmp_path / "l.txt"
    local.write_bytes(b"l")
    fs.put(str(local), "up/")
    fs.mv("a.txt", "moved/")
    assert sorted(fs.find("")) == ["moved/a.txt", "newdir/a.txt", "up/l.txt"]
    assert fs.cat("moved/a.txt") == b"a" and fs.cat("up/l.txt") == b"l"


def test_a_leading_slash_is_the_workspace_root(view_broker):
    fs = view_broker.fs
    fs.pipe("/ds/a.txt", b"a")
    assert view_broker.read_bytes("ds/a.txt") == b"a"
    assert fs.ls("/", detail=False) == ["ds"] and fs.cat("/ds/a.txt") == b"a"
    assert fs.find("/ds") == ["ds/a.txt"]


def test_exclusive_writes_and_appends(view_broker):
    fs = view_broker.fs
    with fs.open("x.txt", "xb") as f:
        f.write(b"first")
    with pytest.raises(FileExistsError):
        fs.open("x.txt", "xb")
    with pytest.raises(FileExistsError):
        fs.pipe_file("x.txt", b"again", mode="create")
    with fs.open("x.txt", "ab") as f:
        f.write(b"+more")
    assert fs.cat("x.txt") == b"first+more"


def test_ranges_negative_and_merged(view_broker, request):
    fs = view_broker.fs
    data = bytes(range(256)) * 40
    fs.pipe("r.bin", data)
    assert fs.cat_file("r.bin", start=-10) == data[-10:]
    assert fs.cat_file("r.bin", start=-20, end=-10) == data[-20:-10]
    assert fs.cat_file("r.bin", start=5, end=5) == b""
    starts, ends = [0, 100, 300, 9000], [10, 200, 400, None]
    assert fs.cat_ranges(["r.bin"] * 4, starts, ends) == [data[s:e] for s, e in zip(starts, ends, strict=True)]
    out = fs.cat_ranges(["r.bin", "missing.bin"], [0, 0], [1, 1])
    assert out[0] == data[:1] and isinstance(out[1], FileNotFoundError)
    if view_broker.broker_type == "s3":
        server = request.getfixturevalue("s3_server")
        mark = server.mark()
        fs.cat_ranges(["r.bin"] * 3, [0, 100, 300], [10, 200, 400])
        gets = [r for r in server.since(mark) if r.method == "GET"]
        assert len(gets) == 1 and gets[0].range == "bytes=0-399"  # three nearby ranges, one request


def test_transactions_commit_together(view_broker):
    fs = view_broker.fs
    with fs.transaction:
        fs.pipe("t/kept.bin", b"outside the transaction's files")
        with fs.open("t/a.bin", "wb") as f:
            f.write(b"a")
        assert not fs.exists("t/a.bin")
    assert fs.cat("t/a.bin") == b"a"
    with pytest.raises(RuntimeError), fs.transaction:
        with fs.open("t/b.bin", "wb") as f:
            f.write(b"b")
        raise RuntimeError("the job failed")
    assert not fs.exists("t/b.bin")


def test_json_pickle_and_urls(view_broker):
    fs = view_broker.fs
    fs.pipe("u/a.txt", b"by url")
    blob = fs.to_json()
    rebuilt = fsspec.AbstractFileSystem.from_json(blob)
    assert isinstance(rebuilt, BrokerFileSystem) and rebuilt == fs and rebuilt.cat("u/a.txt") == b"by url"
    unpickled = pickle.loads(pickle.dumps(fs))
    assert unpickled == fs and unpickled.cat("u/a.txt") == b"by url"
    url = fs.unstrip_protocol("u/a.txt")
    assert url.startswith("brokers://")
    with fsspec.open(url, "rb") as f:
        assert f.read() == b"by url"
    opened, path = fsspec.core.url_to_fs(url)
    assert opened == fs and path == "u/a.txt"


def test_a_url_from_another_process_says_so():
    with pytest.raises(BrokerError, match="no workspace 'unknownhandle' in this process"):
        fsspec.open("brokers://unknownhandle/a.txt", "rb").open()


def test_a_rebuilt_view_from_json_alone_reaches_the_same_files(host_broker):
    host_broker.fs.pipe("a.txt", b"x")
    data: dict[str, Any] = __import__("json").loads(host_broker.fs.to_json())
    data["workspace"] = "not-known-here"  # as in another process: rebuilt from the configuration
    assert fsspec.AbstractFileSystem.from_dict(data).cat("a.txt") == b"x"
