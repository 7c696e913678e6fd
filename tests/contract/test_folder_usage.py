"""``folder_usage(depth)``: each folder's share of the workspace, measured with ``usage()`` in one pass.

Run on every backend (host, S3, NFSv3, NFSv4.1); the expectation is computed here from the files written.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

import pytest

import brokers
from brokers import FolderUsage, UsageReport

MiB = 1 << 20

FILES = {
    "top.txt": 11,
    "zero": 0,
    "in/a.csv": 100,
    "in/raw/b.bin": 2000,
    "in/raw/deep/c.bin": 3000,
    "in/raw/deep/d.bin": 1,
    "in/raw2/e.bin": 7,
    "out/r.txt": 50,
    "out/x/y/z/w.bin": 70,
    "solo/only/here/f": 5,
}


def folder_of(path: str, depth: int) -> str:
    """The folder ``path`` counts in at ``depth``: the first ``depth`` components of its directory."""
    return "/".join(path.split("/")[:-1][:depth])


def expected(files: dict[str, int], depth: int) -> list[tuple[str, int, int]]:
    sizes: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for path, size in files.items():
        sizes[folder_of(path, depth)] += size
        counts[folder_of(path, depth)] += 1
    return [(folder, sizes[folder], counts[folder]) for folder in sorted(sizes)]


def shares(report: UsageReport) -> list[tuple[str, int, int]]:
    return [(f.path, f.used_size, f.file_count) for f in report.folders]


def write_files(broker: brokers.Broker, files: dict[str, int]) -> None:
    for path, size in files.items():
        broker.write_bytes(path, bytes([len(path) % 251]) * size)


class _Abandon(Exception):
    """Ends a write without committing it: what a crash leaves is still there while the block runs."""


def test_folders_at_each_depth_leave_out_unfinished_writes(any_broker):
    write_files(any_broker, FILES)
    any_broker.write_bytes("gone/x.bin", b"x")
    any_broker.delete("gone/x.bin")  # its folder may stay behind, empty: no share
    assert {i.path: i.size for i in any_broker.list()} == FILES
    total = sum(FILES.values())
    with pytest.raises(_Abandon), any_broker.open("in/raw/partial.bin", "wb") as pending:
        pending.write(bytes(9 * MiB))  # past S3's multipart threshold: an upload is under way
        pending.flush()
        usage = any_broker.usage()
        assert (usage.used_size, usage.file_count) == (total, len(FILES))
        for depth in (1, 2, 3, 4, 10):
            report = any_broker.folder_usage(depth)
            assert report.depth == depth
            assert shares(report) == expected(FILES, depth), depth
            assert (report.usage.used_size, report.usage.file_count) == (total, len(FILES))
            assert sum(f.used_size for f in report.folders) == report.usage.used_size
            assert sum(f.file_count for f in report.folders) == report.usage.file_count
            assert (report.usage.total_size, report.usage.method) == (usage.total_size, usage.method)
            assert (report.usage.free_size is None) == (usage.free_size is None)
            assert report.usage.measured_at.tzinfo is not None
        assert any_broker.cleanup(older_than=0) == 1  # the unfinished write was there all along
        raise _Abandon
    assert shares(any_broker.folder_usage()) == expected(FILES, 1)


def test_the_default_hook_agrees(any_broker):
    """The base class's two-pass default (``_usage`` and a listing), for brokers without a one-pass walk."""
    write_files(any_broker, FILES)
    for depth in (1, 2, 3):
        default = brokers.Broker._folder_usage(any_broker, depth)
        assert default.depth == depth
        assert shares(default) == shares(any_broker.folder_usage(depth)) == expected(FILES, depth)
        assert (default.usage.used_size, default.usage.file_count) == (sum(FILES.values()), len(FILES))


def test_default_depth_and_the_shape_of_a_report(any_broker):
    write_files(any_broker, {"in/a": 3, "in/b/c": 4, "x": 5})
    report = any_broker.folder_usage()
    assert report.depth == 1
    assert report.folders == (FolderUsage("", 5, 1), FolderUsage("in", 7, 2))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["depth"] == 1
    assert data["folders"] == [{"path": "", "used_size": 5, "file_count": 1},
                               {"path": "in", "used_size": 7, "file_count": 2}]
    assert data["usage"] == report.usage.to_dict()


def test_root_files_only_and_no_root_files(any_broker):
    write_files(any_broker, {"a": 1, "b": 2})
    assert shares(any_broker.folder_usage(2)) == [("", 3, 2)]
    any_broker.delete_many(["a", "b"])
    write_files(any_broker, {"d/a": 1})
    assert shares(any_broker.folder_usage(1)) == [("d", 1, 1)]


def test_empty_workspace_has_no_folders(any_broker):
    for depth in (1, 3):
        report = any_broker.folder_usage(depth)
        assert report.folders == ()
        assert (report.usage.used_size, report.usage.file_count) == (0, 0)


@pytest.mark.parametrize("depth", [0, -1, 1.5, True, "1", None])
def test_bad_depth_is_refused(any_broker, depth):
    with pytest.raises(ValueError, match=r"depth must be a whole number >= 1, not "):
        any_broker.folder_usage(depth)


# ---------------------------------------------------------------------- host only
def test_hard_links_count_once_within_a_folder(host_broker, host_root):
    (host_root / "in").mkdir()
    (host_root / "in" / "a.bin").write_bytes(b"a" * 1000)
    os.link(host_root / "in" / "a.bin", host_root / "in" / "same.bin")  # one file, two names
    (host_root / "out").mkdir()
    (host_root / "out" / "b.bin").write_bytes(b"b" * 300)
    os.link(host_root / "out" / "b.bin", host_root / "in" / "from-out.bin")  # one file in two folders
    report = host_broker.folder_usage(1)
    assert shares(report) == [("in", 1300, 3), ("out", 300, 1)]
    assert (report.usage.used_size, report.usage.file_count) == (1300, 4)  # across folders: once as well
    usage = host_broker.usage()
    assert (usage.used_size, usage.file_count) == (1300, 4)


def test_quota_is_applied_as_usage_does(host_root):
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(host_root), "total_size": 10_000}})
    broker.write_bytes("in/a", b"x" * 1234)
    report = broker.folder_usage()
    assert (report.usage.used_size, report.usage.total_size, report.usage.free_size) == (1234, 10_000, 8766)
    assert report.usage.total_size == broker.usage().total_size


def test_missing_workspace_folder(host_root):
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(host_root / "gone")}})
    with pytest.raises(brokers.WorkspaceNotFound):
        broker.folder_usage()


def test_parallel_walk_agrees(host_broker, host_root, monkeypatch):
    """On a network filesystem the subtrees are walked on several threads: the same shares."""
    from brokers.core.local import usage as local_usage

    files = {f"t{i % 3}/s{i % 7}/u{i % 2}/f{i}": i for i in range(200)} | {"r": 5, "t0/x": 6}
    write_files(host_broker, files)
    local = [shares(host_broker.folder_usage(depth)) for depth in (1, 2, 3)]
    monkeypatch.setattr(local_usage, "on_network_filesystem", lambda path: True)
    parallel = [shares(host_broker.folder_usage(depth)) for depth in (1, 2, 3)]
    assert local == parallel == [expected(files, depth) for depth in (1, 2, 3)]
    assert host_broker.usage().file_count == len(files)
