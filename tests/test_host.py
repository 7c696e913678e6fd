"""HostBroker specifics: atomicity, ranged reads, kernel copies, links, usage, volumes, mounts."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import brokers
from brokers.core.local import files as local_files
from brokers.core.local.io import kernel_copy
from brokers.core.mounts import is_mount_point
from brokers.core.streams import TEMP_PREFIX
from tests.conftest import missing


def test_ranged_read_reads_only_the_range(host_broker, host_root, monkeypatch):
    (host_root / "big.bin").write_bytes(os.urandom(8 << 20))
    asked = []
    real_pread = os.pread

    def spy(fd, n, offset):
        asked.append((n, offset))
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", spy)
    data = host_broker.read_bytes("big.bin", 4 << 20, (4 << 20) + 4096)
    assert data == (host_root / "big.bin").read_bytes()[4 << 20:(4 << 20) + 4096]
    assert asked == [(4096, 4 << 20)]


def test_exception_inside_open_leaves_old_content_and_no_stray_file(host_broker, host_root):
    host_broker.write_bytes("out/r.txt", b"old result")
    with pytest.raises(KeyError), host_broker.open("out/r.txt", "wb") as f:
        f.write(b"partial" * 100_000)
        raise KeyError("boom")
    assert (host_root / "out" / "r.txt").read_bytes() == b"old result"
    assert os.listdir(host_root / "out") == ["r.txt"]


def test_dropped_stream_is_not_committed(host_broker, host_root):
    f = host_broker.open("dropped.txt", "wb")
    f.write(b"never closed")
    del f
    assert not (host_root / "dropped.txt").exists()
    assert os.listdir(host_root) == []


def test_write_is_fsynced_and_renamed(host_broker, host_root, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync"))
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b, **kw: (calls.append("replace"), real_replace(a, b, **kw)))
    host_broker.write_bytes("a.txt", b"x")
    assert calls == ["fsync", "replace", "fsync"]  # file, rename, directory


def test_failed_upload_leaves_no_partial_file(host_broker, host_root, tmp_path, monkeypatch):
    host_broker.write_bytes("r.bin", b"previous")
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(1 << 20))

    def broken(src_fd, dst_fd, progress=None):
        os.write(dst_fd, b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(local_files, "kernel_copy", broken)
    with pytest.raises(brokers.BrokerError, match="No space left on device"):
        host_broker.upload(src, "r.bin")
    assert (host_root / "r.bin").read_bytes() == b"previous"
    assert os.listdir(host_root) == ["r.bin"]


def test_download_uses_the_kernel_fast_path(host_broker, host_root, tmp_path, monkeypatch):
    data = os.urandom(3 << 20)
    (host_root / "f.bin").write_bytes(data)
    used = []
    real = os.copy_file_range
    monkeypatch.setattr(os, "copy_file_range", lambda *a: (used.append(a[2]), real(*a))[1])
    host_broker.download("f.bin", tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == data
    assert sum(used) >= len(data)


def test_kernel_copy_falls_back_to_sendfile(tmp_path, monkeypatch):
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_bytes(os.urandom(100_000))

    def refuse(*args):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    with open(src, "rb") as s, open(dst, "wb") as d:
        assert kernel_copy(s.fileno(), d.fileno()) == 100_000
    assert dst.read_bytes() == src.read_bytes()


def test_partial_download_links_in_place(host_broker, host_root, tmp_path):
    (host_root / "in").mkdir()
    (host_root / "in" / "huge.dat").write_bytes(b"0123456789")
    local = host_broker.download("in/huge.dat", tmp_path / "job" / "huge.dat", partial=True)
    assert os.path.islink(local)
    assert os.readlink(local) == str(host_root / "in" / "huge.dat")
    assert host_broker.local_path("in/huge.dat") == str(host_root / "in" / "huge.dat")
    assert host_broker.local_path("in/missing") is None
    # a second partial download replaces the link atomically
    host_broker.download("in/huge.dat", local, partial=True)
    assert Path(local).read_bytes() == b"0123456789"


def test_move_across_filesystems_copies_verifies_then_deletes(host_broker, host_root, monkeypatch):
    host_broker.write_bytes("a/src.bin", b"s" * 5000)

    def exdev(a, b, **kw):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "rename", exdev)
    host_broker.move("a/src.bin", "b/dst.bin")
    assert not (host_root / "a" / "src.bin").exists()
    assert (host_root / "b" / "dst.bin").read_bytes() == b"s" * 5000


def test_failed_cross_filesystem_move_keeps_the_source(host_broker, host_root, monkeypatch):
    host_broker.write_bytes("src.bin", b"precious")
    monkeypatch.setattr(os, "rename", lambda a, b, **kw: (_ for _ in ()).throw(OSError(errno.EXDEV, "cross-device")))
    monkeypatch.setattr(local_files, "kernel_copy", lambda s, d, p=None: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(brokers.BrokerError):
        host_broker.move("src.bin", "dst.bin")
    assert (host_root / "src.bin").read_bytes() == b"precious"
    assert sorted(os.listdir(host_root)) == ["src.bin"]


def test_usage_counts_hard_links_once_and_matches_statvfs(host_broker, host_root):
    (host_root / "d" / "e").mkdir(parents=True)
    (host_root / "d" / "a").write_bytes(b"a" * 1000)
    (host_root / "d" / "e" / "b").write_bytes(b"b" * 500)
    os.link(host_root / "d" / "a", host_root / "hard")
    (host_root / "sym").symlink_to("d/a")
    usage = host_broker.usage()
    assert usage.used_size == 1500
    assert usage.file_count == 3
    vfs = os.statvfs(host_root)
    assert usage.total_size == vfs.f_blocks * vfs.f_frsize
    assert abs(usage.free_size - vfs.f_bavail * vfs.f_frsize) < 64 * 1024 * 1024
    assert usage.method == "walk+statvfs"
    assert usage.to_dict()["measured_at"].endswith("+00:00")


def test_quota_is_reported_as_total(host_root):
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(host_root), "total_size": 10_000}})
    broker.write_bytes("f", b"x" * 2500)
    usage = broker.usage()
    assert (usage.used_size, usage.total_size, usage.free_size) == (2500, 10_000, 7500)


def test_volume_renderings(host_broker, host_root):
    volume = host_broker.volume
    assert volume.docker_mount("/workspace") == f"type=bind,source={host_root},target=/workspace"
    assert volume.kubernetes_volume("ws") == {"name": "ws", "hostPath": {"path": str(host_root), "type": "Directory"}}
    assert volume.kubernetes_mount("ws", "/workspace") == {"name": "ws", "mountPath": "/workspace", "readOnly": False}
    assert volume.mount_argv("/mnt/ws") == ["mount", "--bind", str(host_root), "/mnt/ws"]


def test_read_only_volume_renderings_keep_read_only():
    volume = brokers.Volume(kind="bind", source="/mnt/bucket/ws", read_only=True)  # an S3 FUSE mount's
    assert volume.docker_mount("/in") == "type=bind,source=/mnt/bucket/ws,target=/in,readonly"
    assert volume.mount_argv("/in") == ["mount", "--bind", "-o", "ro", "/mnt/bucket/ws", "/in"]
    # a hostPath volume has no read-only switch: Kubernetes sets it on the container's volumeMount
    assert volume.kubernetes_volume("in") == {"name": "in", "hostPath": {"path": "/mnt/bucket/ws", "type": "Directory"}}
    assert volume.kubernetes_mount("in", "/in") == {"name": "in", "mountPath": "/in", "readOnly": True}
    nfs = brokers.Volume(kind="nfs", source="/export/ws", server="fs", read_only=True)
    assert nfs.kubernetes_volume("in") == {"name": "in", "nfs": {"server": "fs", "path": "/export/ws", "readOnly": True}}
    assert nfs.kubernetes_mount("in", "/in")["readOnly"] is True


def test_mount_binds_the_workspace(host_broker, host_root, tmp_path):
    if os.geteuid() != 0:
        missing("root", "a bind mount needs root (CI runs the suite as root)")
    target = tmp_path / "target"
    host_broker.write_bytes("seen.txt", b"through the mount")
    host_broker.mount(str(target))
    try:
        assert is_mount_point(str(target))
        assert (target / "seen.txt").read_bytes() == b"through the mount"
        (target / "back.txt").write_bytes(b"written by the job")
        assert host_broker.read_bytes("back.txt") == b"written by the job"
    finally:
        host_broker.unmount(str(target))
    assert not is_mount_point(str(target))
    assert list(target.iterdir()) == []


def fake_mount(tmp_path, monkeypatch, script: str) -> None:
    """Put a ``mount`` program that runs ``script`` (sh) first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mount").write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / "mount").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_a_refused_mount_says_why(host_broker, tmp_path, monkeypatch):
    fake_mount(tmp_path, monkeypatch, "echo 'mount: /t: permission denied.' >&2; exit 32")
    with pytest.raises(brokers.MountError) as info:
        host_broker.mount(str(tmp_path / "t"))
    assert str(info.value) == f"mount --bind {host_broker.files.root} ... failed: mount: /t: permission denied."


def test_a_mount_that_did_not_happen_is_an_error(host_broker, tmp_path, monkeypatch):
    fake_mount(tmp_path, monkeypatch, "exit 0")
    with pytest.raises(brokers.MountError, match=r"t is not a mount point after mount succeeded$"):
        host_broker.mount(str(tmp_path / "t"))


def test_mount_failure_is_a_mount_error(host_broker, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no mount binary at all
    with pytest.raises(brokers.MountError, match="cannot run"):
        host_broker.mount(str(tmp_path / "t"))


def test_cleanup_removes_only_stale_temp_files(host_broker, host_root):
    stale = host_root / f"{TEMP_PREFIX}crashed"
    fresh = host_root / f"{TEMP_PREFIX}in-progress"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(stale, (0, 0))
    (host_root / "real.txt").write_bytes(b"z")
    assert [i.path for i in host_broker.list()] == ["real.txt"]
    assert host_broker.cleanup(older_than=3600) == 1
    assert sorted(os.listdir(host_root)) == sorted([fresh.name, "real.txt"])


def test_fs_is_rooted_at_the_workspace(host_broker, host_root):
    import csv
    import io

    host_broker.write_bytes("t/data.csv", b"a,b\n1,2\n3,4\n")
    with host_broker.fs.open("t/data.csv", "rb") as f:
        rows = list(csv.reader(io.TextIOWrapper(f)))
    assert rows == [["a", "b"], ["1", "2"], ["3", "4"]]
    assert host_broker.fs.ls("t", detail=False) == ["t/data.csv"]


def test_delete_refuses_directories(host_broker, host_root):
    (host_root / "dir").mkdir()
    with pytest.raises(brokers.BrokerError, match="directory"):
        host_broker.delete("dir")
    assert (host_root / "dir").is_dir()


def test_delete_all_stays_inside(host_broker, host_root, tmp_path):
    outside = tmp_path / "keep.txt"
    outside.write_bytes(b"keep")
    (host_root / "a" / "b").mkdir(parents=True)
    (host_root / "a" / "b" / "c").write_bytes(b"c")
    (host_root / "link").symlink_to(tmp_path)
    host_broker.delete_all()
    assert os.listdir(host_root) == []
    assert outside.read_bytes() == b"keep"


def test_download_matches_cp(host_broker, host_root, tmp_path):
    if shutil.which("cp") is None:
        missing("cp", "coreutils is not installed")
    data = os.urandom(4 << 20)
    (host_root / "x.bin").write_bytes(data)
    host_broker.download("x.bin", tmp_path / "ours.bin")
    subprocess.run(["cp", str(host_root / "x.bin"), str(tmp_path / "theirs.bin")], check=True)
    assert (tmp_path / "ours.bin").read_bytes() == (tmp_path / "theirs.bin").read_bytes() == data


def every_operation(broker, tmp_path):
    """Each public operation of a broker, as a zero-argument call."""
    local = tmp_path / "local.txt"
    local.write_bytes(b"local")
    return {
        "list": lambda: list(broker.list()), "list prefix": lambda: list(broker.list("in", recursive=False)),
        "info": lambda: broker.info("in/a.txt"), "exists": lambda: broker.exists("in/a.txt"),
        "read_bytes": lambda: broker.read_bytes("in/a.txt"), "read range": lambda: broker.read_bytes("a", 2, 2),
        "open rb": lambda: broker.open("in/a.txt"), "open wb": lambda: broker.open("out/b.txt", "wb").close(),
        "write_bytes": lambda: broker.write_bytes("out/b.txt", b"x"), "upload": lambda: broker.upload(local, "b"),
        "upload_many": lambda: broker.upload_many([(local, "b")]),
        "download": lambda: broker.download("in/a.txt", tmp_path / "down" / "a.txt"),
        "download partial": lambda: broker.download("in/a.txt", tmp_path / "down" / "p.txt", partial=True),
        "download_many": lambda: broker.download_many([("in/a.txt", tmp_path / "down" / "m.txt")]),
        "move": lambda: broker.move("in/a.txt", "in/b.txt"), "delete": lambda: broker.delete("in/a.txt"),
        "delete missing_ok": lambda: broker.delete("in/a.txt", missing_ok=True),
        "delete_all": broker.delete_all, "usage": broker.usage, "cleanup": broker.cleanup,
    }


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_a_missing_workspace_folder_is_named_by_every_operation(tmp_path, kind):
    folder = tmp_path / "no-such-workspace"
    if kind == "a file":
        folder.write_bytes(b"not a folder")
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(folder)}})
    detail = "does not exist" if kind == "missing" else "is not a directory"
    for name, call in every_operation(broker, tmp_path).items():
        with pytest.raises(brokers.WorkspaceNotFound) as info:
            call()
        assert str(info.value) == f"workspace folder {folder} {detail}", name
        assert isinstance(info.value, brokers.FileNotFound) and info.value.path == ""
    assert not folder.is_dir()  # nothing created it
    assert list((tmp_path / "down").iterdir()) == []  # no download left a temporary file


def test_a_workspace_folder_removed_after_start_is_named(host_broker, host_root, tmp_path):
    host_broker.write_bytes("in/a.txt", b"a")
    shutil.rmtree(host_root)
    with pytest.raises(brokers.WorkspaceNotFound, match=f"^workspace folder {host_root} does not exist$"):
        host_broker.read_bytes("in/a.txt")
    with pytest.raises(brokers.WorkspaceNotFound):
        list(host_broker.list())


def test_an_unreadable_workspace_folder_is_an_error_not_an_empty_list(host_broker, host_root, monkeypatch):
    """Only a missing directory lists as nothing; a refusal is AccessDenied naming the folder (never "/:")."""
    def refuse(root, rel, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(local_files, "open_beneath", refuse)  # root runs the tests: no real refusal possible
    with pytest.raises(brokers.AccessDenied) as info:
        list(host_broker.list())
    assert str(info.value) == f"{host_root}: permission denied"
    with pytest.raises(brokers.AccessDenied, match=r"^in: permission denied$"):
        list(host_broker.list("in"))
