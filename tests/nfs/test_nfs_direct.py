"""Direct mode (userspace NFS client) against a real NFS-Ganesha server, NFSv3 and NFSv4.1."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import threading
import time

import pytest

import brokers
from brokers.backends.nfs import NfsBroker
from brokers.backends.nfs.direct.client import READ_CHUNK, WRITE_CHUNK

pytestmark = pytest.mark.nfs


def payload(n: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (n // len(block) + 1))[:n]


@pytest.fixture(params=["3", "4.1"], ids=["v3", "v41"])
def broker(request, make_nfs_broker) -> NfsBroker:
    made = make_nfs_broker(request.param)
    assert made.mode == "direct"
    return made


@pytest.fixture
def spy(monkeypatch):
    """Record positional reads and writes made through nfs_rs files."""
    import nfs_rs

    calls: list[tuple[str, int, int]] = []
    real = {name: getattr(nfs_rs.File, name) for name in ("read_at", "readinto_at", "write_at")}

    def read_at(self, offset, size=-1):
        calls.append(("read_at", offset, size))
        return real["read_at"](self, offset, size)

    def readinto_at(self, target, offset):
        calls.append(("readinto_at", offset, len(memoryview(target))))
        return real["readinto_at"](self, target, offset)

    def write_at(self, data, offset):
        calls.append(("write_at", offset, len(data)))
        return real["write_at"](self, data, offset)

    monkeypatch.setattr(nfs_rs.File, "read_at", read_at)
    monkeypatch.setattr(nfs_rs.File, "readinto_at", readinto_at)
    monkeypatch.setattr(nfs_rs.File, "write_at", write_at)
    return calls


def test_mode_and_description(broker, nfs_workspace):
    assert broker.broker_type == "nfs" and broker.mode == "direct"
    assert broker.describe() == f"nfs://{nfs_workspace.nfs_path.replace(':/', '/', 1)}"
    assert broker.local_path("x") is None


def test_ranged_reads_fetch_only_the_range(broker, nfs_workspace, spy):
    data = payload(3 << 20, 1)
    (nfs_workspace.backing / "r.bin").write_bytes(data)
    assert broker.read_bytes("r.bin", 1_000_000, 1_000_100) == data[1_000_000:1_000_100]
    assert spy == [("read_at", 1_000_000, 100)]
    spy.clear()
    assert broker.read_bytes("r.bin", len(data) - 5, len(data) + 50) == data[-5:]
    assert broker.read_bytes("r.bin") == data
    assert [c[1:] for c in spy] == [(len(data) - 5, 55), (0, READ_CHUNK)]  # one call; short at EOF


def test_large_transfers_are_cut_into_bounded_calls(broker, spy, monkeypatch):
    monkeypatch.setattr("brokers.backends.nfs.direct.io.WRITE_CHUNK", 1 << 20)
    monkeypatch.setattr("brokers.backends.nfs.direct.io.READ_CHUNK", 1 << 20)
    data = payload((2 << 20) + 1000, 8)
    broker.write_bytes("big.bin", data)
    assert [c[1:] for c in spy] == [(0, 1 << 20), (1 << 20, 1 << 20), (2 << 20, 1000)]
    spy.clear()
    assert broker.read_bytes("big.bin", 10) == data[10:]
    assert [c[1:] for c in spy] == [(10, 1 << 20), (10 + (1 << 20), 1 << 20), (10 + (2 << 20), 1 << 20)]
    assert WRITE_CHUNK >= READ_CHUNK >= 1 << 20


def test_streaming_reader_has_a_bounded_buffer(broker, nfs_workspace, spy):
    data = payload(1 << 20, 2)
    (nfs_workspace.backing / "s.bin").write_bytes(data)
    with broker.open("s.bin", buffer_size=64 * 1024) as f:
        assert f.read(10) == data[:10]
        f.seek(500_000)
        assert f.read(1000) == data[500_000:501_000]
        assert f.tell() == 501_000
        rest = f.read()
    assert rest == data[501_000:]
    sizes = [c[2] for c in spy if c[0] in ("read_at", "readinto_at")]
    assert sizes and max(sizes[:2]) <= 64 * 1024
    with pytest.raises(brokers.FileNotFound):
        broker.open("missing.bin")


def test_streaming_write_and_atomic_replace(broker, nfs_workspace):
    data = payload(2_500_000, 3)
    with broker.open("out/w.bin", "wb", buffer_size=1 << 20) as f:
        for i in range(0, len(data), 300_000):
            f.write(data[i:i + 300_000])
        # nothing is visible under the target name before the commit
        assert not (nfs_workspace.backing / "out" / "w.bin").exists()
        assert [p.name.startswith(".brokers-tmp-") for p in (nfs_workspace.backing / "out").iterdir()] == [True]
    assert (nfs_workspace.backing / "out" / "w.bin").read_bytes() == data
    assert os.listdir(nfs_workspace.backing / "out") == ["w.bin"]


def test_failed_write_keeps_old_content_and_leaves_no_temp_file(broker, nfs_workspace):
    broker.write_bytes("keep.txt", b"old content")
    with pytest.raises(RuntimeError), broker.open("keep.txt", "wb") as f:
        f.write(b"new content that never lands" * 1000)
        f.flush()
        raise RuntimeError("boom")
    assert broker.read_bytes("keep.txt") == b"old content"
    assert os.listdir(nfs_workspace.backing) == ["keep.txt"]
    assert [i.path for i in broker.list()] == ["keep.txt"]


def test_temp_files_hidden_and_cleaned_up(broker, nfs_workspace):
    broker.write_bytes("d/real", b"1")
    old = nfs_workspace.backing / "d" / ".brokers-tmp-crashed"
    new = nfs_workspace.backing / ".brokers-tmp-in-progress"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    stale = time.time() - 7200
    os.utime(old, (stale, stale))
    assert [i.path for i in broker.list()] == ["d/real"]
    assert broker.cleanup(older_than=3600) == 1
    assert not old.exists() and new.exists()
    assert broker.cleanup(older_than=0) == 1


def test_move_creates_parents_and_replaces(broker, nfs_workspace):
    broker.write_bytes("a.txt", b"A")
    broker.write_bytes("b.txt", b"B")
    broker.move("a.txt", "deep/er/c.txt")
    assert (nfs_workspace.backing / "deep" / "er" / "c.txt").read_bytes() == b"A"
    assert not broker.exists("a.txt")
    broker.move("b.txt", "deep/er/c.txt")
    assert broker.read_bytes("deep/er/c.txt") == b"B" and not broker.exists("b.txt")
    with pytest.raises(brokers.FileNotFound):
        broker.move("nope", "x")
    with pytest.raises(brokers.FileNotFound):
        broker.move("deep", "x")  # a directory is not a file


def test_delete_and_delete_all_stay_inside(broker, nfs_workspace, nfs_server):
    sibling = nfs_server.export_dir / f"{nfs_workspace.name}-sibling"
    sibling.mkdir()
    (sibling / "keep").write_bytes(b"k")
    for name in ("a", "b/c", "b/d/e", "f g/h"):
        broker.write_bytes(name, b"x")
    (nfs_workspace.backing / ".brokers-tmp-left").write_bytes(b"t")
    broker.delete("a")
    with pytest.raises(brokers.FileNotFound):
        broker.delete("a")
    broker.delete("a", missing_ok=True)
    with pytest.raises(brokers.BrokerError):
        broker.delete("b")  # a directory
    assert broker.delete_all() == 3
    assert nfs_workspace.backing.is_dir() and os.listdir(nfs_workspace.backing) == []
    assert (sibling / "keep").read_bytes() == b"k"
    assert broker.delete_all() == 0


def test_list_recursive_prefix_and_paging(broker, nfs_workspace, monkeypatch):
    import nfs_rs

    pool = broker._direct.pool
    pool.endpoint = dataclasses.replace(pool.endpoint, readdir_buffer=1024)  # many small pages
    pages = []
    real = nfs_rs.Client.scandir_page

    def counting(self, *args, **kwargs):
        pages.append(args)
        return real(self, *args, **kwargs)

    big = nfs_workspace.backing / "many"
    big.mkdir()
    for i in range(300):
        (big / f"file-{i:04d}.dat").write_bytes(b"z" * (i % 7))
    (nfs_workspace.backing / "top.txt").write_bytes(b"t")
    (big / "sub").mkdir()
    (big / "sub" / "inner").write_bytes(b"i")
    monkeypatch.setattr(nfs_rs.Client, "scandir_page", counting)
    everything = list(broker.list())
    assert len(pages) > 5, "the listing should need several directory pages"
    paths = [i.path for i in everything]
    assert paths[0] == "top.txt" and len(paths) == 302
    assert paths[1:301] == [f"many/file-{i:04d}.dat" for i in range(300)]
    assert paths[-1] == "many/sub/inner"
    assert {i.path: i.size for i in everything}["many/file-0006.dat"] == 6
    assert [i.path for i in broker.list("many/sub")] == ["many/sub/inner"]
    assert len(list(broker.list("many", recursive=False))) == 300
    assert [i.path for i in broker.list("", recursive=False)] == ["top.txt"]
    assert list(broker.list("nothing/here")) == []
    assert list(broker.list("top.txt")) == []


def test_symlinks_are_not_followed(broker, nfs_workspace):
    (nfs_workspace.backing / "real.txt").write_bytes(b"inside")
    os.symlink("/etc/passwd", nfs_workspace.backing / "abs-link")
    os.symlink("real.txt", nfs_workspace.backing / "rel-link")
    os.symlink("../../", nfs_workspace.backing / "up")
    assert [i.path for i in broker.list()] == ["real.txt"]
    for name in ("abs-link", "rel-link", "up/export"):
        with pytest.raises(brokers.FileNotFound):
            broker.read_bytes(name)
        with pytest.raises(brokers.FileNotFound):
            broker.info(name)
    with pytest.raises(brokers.PathOutsideWorkspace):
        broker.read_bytes("../x")


def test_usage_matches_the_backing_directory(broker, nfs_workspace):
    for i in range(20):
        broker.write_bytes(f"u/{i % 3}/f{i}", payload(1000 * i, i))
    os.link(nfs_workspace.backing / "u" / "0" / "f3", nfs_workspace.backing / "hard")  # counted once
    usage = broker.usage()
    walked = sum(p.stat().st_size for p in nfs_workspace.backing.rglob("*") if p.is_file() and p.name != "hard")
    assert usage.used_size == walked == sum(1000 * i for i in range(20))
    assert usage.file_count == 21
    assert usage.method == "walk+fsstat"
    vfs = os.statvfs(nfs_workspace.backing)
    assert usage.total_size == vfs.f_blocks * vfs.f_frsize == shutil.disk_usage(nfs_workspace.backing).total
    assert abs(usage.free_size - vfs.f_bavail * vfs.f_frsize) < 256 << 20


def test_usage_with_quota(make_nfs_broker):
    broker = make_nfs_broker("3", total_size=10_000)
    broker.write_bytes("a", b"x" * 4000)
    usage = broker.usage()
    assert (usage.used_size, usage.total_size, usage.free_size) == (4000, 10_000, 6000)


def test_upload_download(broker, tmp_path):
    src = tmp_path / "src.bin"
    data = payload(3_000_000, 4)
    src.write_bytes(data)
    broker.upload(src, "up/loaded.bin")
    for partial in (False, True):
        out = broker.download("up/loaded.bin", tmp_path / f"out-{partial}.bin", partial=partial)
        assert not os.path.islink(out)  # nothing is mounted: partial falls back to a copy
        with open(out, "rb") as f:
            assert f.read() == data
    with pytest.raises(brokers.FileNotFound):
        broker.download("nope", tmp_path / "nope")


def test_fsspec_view(broker):
    broker.write_bytes("t/a.csv", b"x,y\n1,2\n")
    assert broker.fs.cat_file("t/a.csv") == b"x,y\n1,2\n"
    assert broker.fs.ls("t", detail=False) == ["t/a.csv"]


def test_threads_share_one_broker(broker):
    errors: list[BaseException] = []
    shared = payload(500_000, 9)
    broker.write_bytes("shared.bin", shared)

    def work(n: int) -> None:
        try:
            for j in range(5):
                data = payload(20_000 + n, n * 10 + j)
                broker.write_bytes(f"t{n}/f{j}", data)
                assert broker.read_bytes(f"t{n}/f{j}") == data
                assert broker.read_bytes("shared.bin", n * 1000, n * 1000 + 500) == shared[n * 1000:n * 1000 + 500]
                with broker.open("shared.bin") as f:
                    assert f.read() == shared
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(list(broker.list())) == 41
    assert len(broker._direct.pool._conns) <= broker._direct.pool.size


def test_works_after_fork(broker):
    broker.write_bytes("before", b"parent")
    pid = os.fork()
    if pid == 0:  # child: must not touch the parent's connections
        code = 1
        try:
            broker.write_bytes("from-child", broker.read_bytes("before") + b"+child")
            code = 0
        finally:
            os._exit(code)
    assert _wait_for_child(pid) == 0
    assert broker.read_bytes("from-child") == b"parent+child"


def _wait_for_child(pid: int, seconds: float = 30.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the child hung")


def test_forked_child_survives_garbage_of_a_retried_call(broker, monkeypatch):
    """A connection dropped by a retry may still sit in uncollected garbage when the process forks."""
    import gc


    broker.write_bytes("r", b"data")
    _flaky_stat(monkeypatch, 1)
    gc.disable()  # keep whatever garbage the retry left until the child collects it
    try:
        assert broker.info("r").size == 4
        pid = os.fork()
        if pid == 0:  # child: freeing an nfs_rs object inherited from the parent would wait forever
            code = 1
            try:
                gc.collect()
                code = 0
            finally:
                os._exit(code)
    finally:
        gc.enable()
    assert _wait_for_child(pid) == 0


def _flaky_stat(monkeypatch, failing: int) -> dict[str, int]:
    """Make the next ``failing`` STAT calls fail with a connection reset; return the count left."""
    import nfs_rs

    failures = {"left": failing}
    real_stat = nfs_rs.Client.stat

    def flaky(self, path):
        if failures["left"]:
            failures["left"] -= 1
            raise nfs_rs.NfsConnectionError(message="connection reset by peer (injected)")
        return real_stat(self, path)

    monkeypatch.setattr(nfs_rs.Client, "stat", flaky)
    return failures


def test_transient_errors_are_retried(broker, monkeypatch):
    import nfs_rs

    broker.write_bytes("r", b"data")
    failures = _flaky_stat(monkeypatch, 2)
    assert broker.info("r").size == 4
    assert failures["left"] == 0

    def stale(self, path):
        raise nfs_rs.NfsStateLostError(message="NFS3 error: invalid file handle (injected)",
                                       code_name="NFS3ERR_STALE")

    monkeypatch.setattr(nfs_rs.Client, "stat", stale)
    broker._direct.pool.retry = dataclasses.replace(broker._direct.pool.retry, backoff=0.001)
    started = time.monotonic()
    with pytest.raises(brokers.StorageUnavailable) as info:
        broker.info("r")
    assert isinstance(info.value, ConnectionError)
    assert "5 attempts" in str(info.value) and time.monotonic() - started < 5


def test_errors_are_translated(broker, nfs_workspace, monkeypatch):
    """Errors name the server, the export and the path (never a bare "/:" for the workspace root)."""
    import nfs_rs

    def denied(self, *args):
        raise nfs_rs.NfsPermissionError(message="NFS3 error: permission denied (injected)")

    monkeypatch.setattr(nfs_rs.Client, "stat", denied)
    with pytest.raises(brokers.AccessDenied) as info:
        broker.info("x/y")
    assert str(info.value) == f"{nfs_workspace.nfs_path}/x/y: permission denied by the NFS server"
    monkeypatch.setattr(nfs_rs.Client, "scandir_page", denied)
    with pytest.raises(brokers.AccessDenied) as info:
        broker.usage()
    assert str(info.value) == f"{nfs_workspace.nfs_path}: permission denied by the NFS server"


def test_server_down_is_storage_unavailable(nfs_workspace):
    config = nfs_workspace.config("3")
    config["broker"]["nfs_port"] = config["broker"]["mount_port"] = 1  # nothing listens there
    broker = brokers.get_broker(config)
    broker._direct.pool.retry = dataclasses.replace(broker._direct.pool.retry, backoff=0.001)
    with pytest.raises(brokers.StorageUnavailable) as info:
        broker.read_bytes("x")
    assert str(info.value).startswith(f"{nfs_workspace.nfs_path}/x: the NFS server kept failing after 5 attempts: ")
    with pytest.raises(brokers.StorageUnavailable) as info:
        broker.usage()
    assert str(info.value).startswith(f"{nfs_workspace.nfs_path}: the NFS server kept failing after 5 attempts: ")


def test_workspace_directory_created_on_first_write(make_nfs_broker, nfs_server, nfs_workspace):
    nfs_workspace.backing.rmdir()
    seen = []
    for version in ("3", "4.1"):
        broker = make_nfs_broker(version)
        assert [i.path for i in broker.list()] == seen
        broker.write_bytes(f"v{version}/a", b"1")
        seen.append(f"v{version}/a")
    assert sorted(p.name for p in nfs_workspace.backing.iterdir()) == ["v3", "v4.1"]


@pytest.mark.parametrize("version", ["3", "4.1"])
def test_workspace_name_that_cannot_go_in_a_url(nfs_server, version):
    name = f"odd name%41?x=1#frag-{version}"
    (nfs_server.export_dir / name).mkdir()
    config = {"broker": {"type": "nfs", "nfs_path": f"127.0.0.1:/export/{name}", "nfs_version": version,
                         "nfs_port": nfs_server.nfs_port, "mount_port": nfs_server.mount_port}}
    broker = brokers.get_broker(config)
    try:
        broker.write_bytes("f.txt", b"odd")
        assert (nfs_server.export_dir / name / "f.txt").read_bytes() == b"odd"
        assert [i.path for i in broker.list()] == ["f.txt"]
        assert broker.usage().total_size == shutil.disk_usage(nfs_server.export_dir).total
    finally:
        broker.close()


@pytest.mark.parametrize("version", ["3", "4.1"])
@pytest.mark.parametrize("path", ["/nonexistent/ws", "/nonexistent"])
def test_missing_export_is_a_clear_error(nfs_server, version, path):
    config = {"broker": {"type": "nfs", "nfs_path": f"127.0.0.1:{path}", "nfs_version": version,
                         "nfs_port": nfs_server.nfs_port, "mount_port": nfs_server.mount_port}}
    broker = brokers.get_broker(config)
    with pytest.raises(brokers.BrokerError, match=f"cannot mount 127.0.0.1:{path}") as info:
        broker.read_bytes("x")
    assert not isinstance(info.value, FileNotFoundError)


CHILD_EXITS_NORMALLY = """
import os, sys
import brokers
broker = brokers.get_broker(sys.argv[1])
broker.write_bytes("p", b"parent")
reader = broker.open("p")
pid = os.fork()
if pid == 0:
    broker.write_bytes("c", broker.read_bytes("p") + reader.read())
    sys.exit(0)  # a normal exit frees everything: the inherited nfs-rs objects must not hang it
_, status = os.waitpid(pid, 0)
reader.close()
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("version", ["3", "4.1"])
def test_forked_child_can_exit_normally(nfs_workspace, version, tmp_path):
    import json
    import subprocess
    import sys

    config = tmp_path / "ws.json"
    config.write_text(json.dumps(nfs_workspace.config(version)))
    done = subprocess.run([sys.executable, "-c", CHILD_EXITS_NORMALLY, str(config)], capture_output=True,
                          timeout=30, check=False, cwd=os.getcwd())
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert (nfs_workspace.backing / "c").read_bytes() == b"parentparent"


def test_short_writes_are_completed(broker, nfs_workspace, monkeypatch):
    """The server may take fewer bytes than sent (a short WRITE): the rest is sent again, never skipped."""
    import nfs_rs

    real = nfs_rs.File.write_at
    taken: list[int] = []

    def short(self, data, offset):
        n = real(self, memoryview(data)[:300_000], offset)
        taken.append(n)
        return n

    monkeypatch.setattr(nfs_rs.File, "write_at", short)
    data = payload(1_000_000, 11)
    broker.write_bytes("short.bin", data)
    with broker.open("streamed.bin", "wb", buffer_size=64 * 1024) as f:
        f.write(data)
    monkeypatch.undo()
    assert taken[:4] == [300_000, 300_000, 300_000, 100_000]
    assert (nfs_workspace.backing / "short.bin").read_bytes() == data
    assert broker.read_bytes("streamed.bin") == data


def test_a_write_the_server_takes_nothing_of_fails(broker, nfs_workspace, monkeypatch):
    import nfs_rs

    broker.write_bytes("keep.bin", b"old content")
    monkeypatch.setattr(nfs_rs.File, "write_at", lambda self, data, offset: 0)
    with pytest.raises(brokers.StorageUnavailable) as info:
        broker.write_bytes("keep.bin", b"fresh")
    assert str(info.value) == f"{nfs_workspace.nfs_path}/keep.bin: the NFS server took none of 5 bytes at offset 0"
    monkeypatch.undo()
    assert broker.read_bytes("keep.bin") == b"old content"
    assert os.listdir(nfs_workspace.backing) == ["keep.bin"]


@pytest.mark.timeout(60)
def test_a_file_where_a_folder_must_go_is_an_error(broker, nfs_workspace):
    broker.write_bytes("f", b"a file")
    with pytest.raises(brokers.FileNotFound):
        broker.write_bytes("f/x/y", b"cannot go below a file")
    assert (nfs_workspace.backing / "f").read_bytes() == b"a file"
    assert os.listdir(nfs_workspace.backing) == ["f"]


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077], ids=["022", "027", "077"])
def test_direct_writes_honour_the_umask_as_a_kernel_mount_does(broker, nfs_workspace, tmp_path, mask):
    """Files 0666 and folders 0777 less the umask, as the kernel NFS client (and the host broker) make them."""
    src = tmp_path / "src.bin"
    src.write_bytes(b"uploaded")
    old = os.umask(mask)
    try:
        broker.write_bytes("new/deep/w.bin", b"written")
        with broker.open("new/s.bin", "wb") as f:
            f.write(b"streamed")
        broker.upload(src, "u.bin")
        broker.move("u.bin", "moved/u.bin")
    finally:
        os.umask(old)
    backing = nfs_workspace.backing
    for rel in ("new/deep/w.bin", "new/s.bin", "moved/u.bin"):
        assert oct((backing / rel).stat().st_mode & 0o777) == oct(0o666 & ~mask), rel
    for rel in ("new", "new/deep", "moved"):
        assert oct((backing / rel).stat().st_mode & 0o777) == oct(0o777 & ~mask), rel
