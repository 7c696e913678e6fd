"""NFS ``folder_usage``: direct mode tallies per folder in its walk (hard links by file id); a mount agrees."""

from __future__ import annotations

import os

import pytest

import brokers
from brokers.backends.nfs import NfsBroker
from tests.contract.test_folder_usage import FILES, expected, shares, write_files

pytestmark = pytest.mark.nfs


@pytest.mark.parametrize("version", ["3", "4.1"])
def test_direct_and_mounted_modes_agree(make_nfs_broker, nfs_workspace, nfs_server, version):
    direct = make_nfs_broker(version)
    assert direct.mode == "direct"
    write_files(direct, FILES)
    backing = nfs_workspace.backing
    os.link(backing / "in" / "raw" / "b.bin", backing / "in" / "raw" / "same.bin")  # once within in/raw
    os.link(backing / "out" / "r.txt", backing / "in" / "from-out.txt")  # in two folders: once overall
    # The backing directory stands in for a kernel mount (no NFS client here), as in test_nfs_crosscheck.
    mountinfo = (f"40 22 0:45 / {nfs_server.export_dir} rw - nfs4 127.0.0.1:/export "
                 f"rw,vers={version},addr=127.0.0.1\n")
    mounted = NfsBroker(brokers.load_configuration(nfs_workspace.config(version, host_path=str(backing))),
                        mountinfo=mountinfo)
    assert mounted.mode == "mounted"
    for depth in (1, 2, 3):
        want = {path: (size, count) for path, size, count in expected(FILES, depth)}
        raw = "in/raw" if depth > 1 else "in"
        size, count = want[raw]
        want[raw] = (size, count + 1)  # same.bin: one more name, no more bytes
        size, count = want["in"]
        want["in"] = (size + FILES["out/r.txt"], count + 1)  # from-out.txt: its bytes count in "in" too
        for broker in (direct, mounted):
            report = broker.folder_usage(depth)
            assert {path: (size, count) for path, size, count in shares(report)} == want, (broker.mode, depth)
            assert (report.usage.used_size, report.usage.file_count) == (sum(FILES.values()), len(FILES) + 2)
            usage = broker.usage()
            assert (usage.used_size, usage.file_count, usage.method) == (
                report.usage.used_size, report.usage.file_count, report.usage.method)
