"""Cross-checks: what direct mode writes is what a mount and an independent NFS client (libnfs) see."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

import brokers
from brokers.backends.nfs import NfsBroker

pytestmark = pytest.mark.nfs


def payload(n: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (n // len(block) + 1))[:n]


def libnfs(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        from tests.conftest import missing

        missing("libnfs-utils", f"{tool} is not installed (apt-get install libnfs-utils)")
    assert path is not None
    return path


@pytest.mark.parametrize("version", ["3", "4.1"])
def test_direct_write_read_by_mounted_broker(make_nfs_broker, nfs_workspace, nfs_server, version):
    direct = make_nfs_broker(version)
    data = payload(1_500_000, 5)
    direct.write_bytes("x/y/data.bin", data)
    direct.write_bytes("x/small.txt", b"small")

    # This machine has no kernel NFS client: the export's backing directory stands in for its mount (it shows
    # the same files), declared through the mountinfo line a kernel mount of 127.0.0.1:/export there would have.
    mountinfo = (f"40 22 0:45 / {nfs_server.export_dir} rw - nfs4 127.0.0.1:/export "
                 f"rw,vers={version},addr=127.0.0.1\n")
    config = brokers.load_configuration(nfs_workspace.config(version, host_path=str(nfs_workspace.backing)))
    mounted = NfsBroker(config, mountinfo=mountinfo)
    assert mounted.mode == "mounted" and mounted.host_path == str(nfs_workspace.backing)
    assert mounted.read_bytes("x/y/data.bin") == data
    assert mounted.read_bytes("x/y/data.bin", 1000, 2000) == data[1000:2000]
    assert [(i.path, i.size) for i in mounted.list()] == [(i.path, i.size) for i in direct.list()]
    assert mounted.local_path("x/small.txt") == str(nfs_workspace.backing / "x" / "small.txt")
    # and the other way round
    mounted.write_bytes("from-mount", b"written through the mount")
    assert direct.read_bytes("from-mount") == b"written through the mount"
    assert mounted.usage().used_size == direct.usage().used_size
    assert mounted.usage().file_count == direct.usage().file_count == 3


@pytest.mark.parametrize("version", ["3", "4.1"])
def test_direct_write_read_by_nfs_cat(make_nfs_broker, nfs_workspace, nfs_server, version):
    nfs_cat = libnfs("nfs-cat")
    broker = make_nfs_broker(version)
    data = payload(700_000, 6)
    broker.write_bytes("dir/file name.bin", data)
    url = (f"nfs://127.0.0.1/export/{nfs_workspace.name}/dir/file name.bin"
           f"?nfsport={nfs_server.nfs_port}&mountport={nfs_server.mount_port}")
    done = subprocess.run([nfs_cat, url], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout == data


def test_nfs_cp_write_read_by_direct_broker(make_nfs_broker, nfs_workspace, nfs_server, tmp_path):
    nfs_cp = libnfs("nfs-cp")
    local = tmp_path / "in.bin"
    data = payload(300_000, 7)
    local.write_bytes(data)
    url = (f"nfs://127.0.0.1/export/{nfs_workspace.name}/copied.bin"
           f"?nfsport={nfs_server.nfs_port}&mountport={nfs_server.mount_port}")
    done = subprocess.run([nfs_cp, str(local), url], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    for version in ("3", "4.1"):
        broker = make_nfs_broker(version)
        assert broker.read_bytes("copied.bin") == data
        assert broker.info("copied.bin").size == len(data)
