"""The contract again, for NFS workspaces at the root of an export (``server:/export``, the documented form).

The other contract runs use a sub-directory of an export; at the root, NFSv4.1 reaches the workspace from the
read-only pseudo root above it, where a folder must never be created. Every contract test is imported here and
runs against ``nfs3_root`` and ``nfs41_root`` through the ``any_broker`` fixture below.
"""

from __future__ import annotations

import pytest

from tests.contract.test_bulk import *  # noqa: F403 - the same tests, on the brokers below
from tests.contract.test_contract import *  # noqa: F403
from tests.contract.test_local_files import *  # noqa: F403

pytestmark = pytest.mark.nfs


@pytest.fixture(params=["nfs3_root", "nfs41_root"])
def any_broker(request: pytest.FixtureRequest):
    """A fresh, empty NFS workspace that is a whole export (``127.0.0.1:/whole``)."""
    return request.getfixturevalue(f"{request.param}_contract_broker")


def test_folders_at_the_export_root(any_broker, nfs_root_workspace):
    version = any_broker.version
    for rel in (f"v{version}/a.bin", f"v{version}/deep/er/b.bin", "top.bin"):
        any_broker.write_bytes(rel, rel.encode())
    any_broker.move("top.bin", f"moved/v{version}/top.bin")
    assert (nfs_root_workspace.backing / f"v{version}" / "deep" / "er" / "b.bin").read_bytes() == \
        f"v{version}/deep/er/b.bin".encode()
    assert [i.path for i in any_broker.list()] == [f"moved/v{version}/top.bin", f"v{version}/a.bin",
                                                   f"v{version}/deep/er/b.bin"]
    assert any_broker.usage().file_count == 3
    assert any_broker.delete_all() == 3
    assert list(nfs_root_workspace.backing.iterdir()) == []
