"""A real server restart under a live broker: operations retry on fresh connections and carry on."""

from __future__ import annotations

import dataclasses
import threading

import pytest

import brokers

pytestmark = pytest.mark.nfs


@pytest.mark.parametrize("version", ["3", "4.1"])
def test_operations_survive_a_server_restart(make_nfs_broker, nfs_server, version):
    broker = make_nfs_broker(version)
    pool = broker._direct.pool
    pool.retry = dataclasses.replace(pool.retry, backoff=0.2)  # up to ~3 s of retries: enough for a restart
    # nfs-rs notices a reset transport only at the RPC deadline: a short one makes the test quick
    pool.endpoint = dataclasses.replace(pool.endpoint, operation_timeout=1.0)
    data = bytes(range(256)) * 4096
    broker.write_bytes("before.bin", data)
    reader = broker.open("before.bin", buffer_size=64 * 1024)
    assert reader.read(1000) == data[:1000]

    nfs_server.restart()  # every connection is reset; NFSv4.1 sessions and open state are lost
    assert broker.read_bytes("before.bin", 10, 20) == data[10:20]
    assert reader.read(1000) == data[1000:2000]  # the open file is reopened, same file id
    broker.write_bytes("after.bin", b"after")
    assert sorted(i.path for i in broker.list()) == ["after.bin", "before.bin"]
    reader.close()

    # the server is down when the call starts and back a moment later
    restarter = threading.Thread(target=nfs_server.restart, kwargs={"down": 0.5})
    restarter.start()
    try:
        assert broker.read_bytes("after.bin") == b"after"
    finally:
        restarter.join()
    assert nfs_server.alive()


def test_a_file_replaced_while_streaming_is_reported(make_nfs_broker, nfs_server):
    broker = make_nfs_broker("3")
    broker.write_bytes("f", b"a" * 300_000)
    reader = broker.open("f", buffer_size=4096)
    assert reader.read(10) == b"a" * 10
    broker.write_bytes("f", b"b" * 300_000)  # renamed over: NFSv3 reports the old handle as stale
    with pytest.raises(brokers.IntegrityError, match="replaced while it was open"):
        reader.read()  # never a mix of the old and the new file
    reader.close()
    broker41 = make_nfs_broker("4.1")
    reader = broker41.open("f", buffer_size=4096)
    assert reader.read(10) == b"b" * 10
    broker41.write_bytes("f", b"c" * 300_000)
    assert reader.read() == b"b" * 299_990  # NFSv4.1 open state keeps the old file readable
    reader.close()
