"""``upload``/``download`` with ``progress``: every byte is reported once, by the same verified, atomic transfer."""

from __future__ import annotations

import os
import threading

import pytest


class Counter:
    """A progress callback that counts (thread-safe: S3 parts report from worker threads)."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self.calls.append(n)


@pytest.mark.parametrize("size", [0, 5, (20 << 20) + 123])
def test_progress_reports_every_byte(any_broker, tmp_path, size):
    data = os.urandom(size)
    local = tmp_path / "in.bin"
    local.write_bytes(data)
    up = Counter()
    any_broker.upload(local, "p/x.bin", progress=up)
    assert sum(up.calls) == size and all(n > 0 for n in up.calls)
    assert any_broker.read_bytes("p/x.bin") == data
    down = Counter()
    out = tmp_path / "out" / "x.bin"
    assert any_broker.download("p/x.bin", out, progress=down) == str(out)
    assert sum(down.calls) == size and all(n > 0 for n in down.calls)
    assert out.read_bytes() == data


def test_a_failing_progress_callback_aborts_the_transfer(any_broker, tmp_path):
    """The callback raising (as Ctrl-C in it would) stops the copy: the old content stays, no temporary file."""
    here = tmp_path / "here"
    here.mkdir()
    local = here / "in.bin"
    local.write_bytes(os.urandom((20 << 20) + 5))
    any_broker.write_bytes("p/x.bin", b"old")
    (here / "out.bin").write_bytes(b"old here")

    def stop(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        any_broker.upload(local, "p/x.bin", progress=stop)
    assert any_broker.read_bytes("p/x.bin") == b"old"
    assert [i.path for i in any_broker.list()] == ["p/x.bin"]
    with pytest.raises(KeyboardInterrupt):
        any_broker.download("p/x.bin", here / "out.bin", progress=stop)
    assert (here / "out.bin").read_bytes() == b"old here"
    assert sorted(os.listdir(here)) == ["in.bin", "out.bin"]
