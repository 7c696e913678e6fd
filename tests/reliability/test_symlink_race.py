"""A symlink swapped in between the broker's check and its use must never let a write (or delete) out."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time

import pytest

import brokers

ATTEMPTS = 2000
"""Operations tried per case while the flipper runs (a count, not a time window)."""


def _flipper(ws, outside, stop: threading.Event, flips: list[int]) -> None:
    """Keep swapping ws/d between a real directory and a symlink to the outside directory (atomic renames).

    The broker may create ``d`` itself (makedirs) while it is momentarily absent; the flipper copes.
    """
    d, real, tmp = ws / "d", ws / "d.real", ws / "d.tmp"
    n = 0
    while not stop.is_set():
        try:
            # -> a real directory
            if d.is_symlink():
                os.unlink(d)
            if not d.exists():
                if real.is_dir():
                    os.rename(real, d)
                else:
                    d.mkdir()
            time.sleep(0)
            # -> a symlink leading outside
            if d.is_dir() and not d.is_symlink():
                if real.exists():
                    shutil.rmtree(d)
                else:
                    os.rename(d, real)
            if tmp.is_symlink():
                os.unlink(tmp)
            os.symlink(outside, tmp)
            os.rename(tmp, d)
            time.sleep(0)
            n += 1
            flips[0] = n
        except OSError:
            continue


@pytest.mark.timeout(60)
@pytest.mark.parametrize("operation", ["write_bytes", "open_wb", "upload", "move_to", "delete", "read", "list",
                                       "info"])
def test_symlink_swapped_in_during_operations_never_escapes(tmp_path, operation):
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_bytes(b"outside secret")
    (outside / "victim").write_bytes(b"keep me")
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(ws)}})
    local = tmp_path / "local.bin"
    local.write_bytes(b"pwned")
    (ws / "src").write_bytes(b"pwned")

    stop, flips = threading.Event(), [0]
    thread = threading.Thread(target=_flipper, args=(ws, outside, stop, flips), daemon=True)
    leaks = 0
    flips_during = 0
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: the swaps land between the broker's steps
    thread.start()
    try:
        while flips[0] == 0:
            time.sleep(0.001)
        first = flips[0]
        for _ in range(ATTEMPTS):
            try:
                if operation == "write_bytes":
                    broker.write_bytes("d/f", b"pwned")
                elif operation == "open_wb":
                    with broker.open("d/f", "wb") as f:
                        f.write(b"pwned")
                elif operation == "upload":
                    broker.upload(local, "d/f")
                elif operation == "move_to":
                    if not (ws / "src").exists():
                        (ws / "src").write_bytes(b"pwned")
                    broker.move("src", "d/f")
                elif operation == "delete":
                    broker.delete("d/victim", missing_ok=True)
                elif operation == "read" and broker.read_bytes("d/f") == b"outside secret":
                    leaks += 1
                elif operation == "list":
                    leaks += len([i for i in broker.list() if i.path.startswith("d/")])  # d holds nothing of its own
                elif operation == "info" and broker.info("d/f").size == len(b"outside secret"):
                    leaks += 1
            except (brokers.BrokerError, OSError):
                pass
        flips_during = flips[0] - first
    finally:
        stop.set()
        thread.join(10)
        sys.setswitchinterval(interval)
    assert flips_during > 10, f"only {flips_during} swaps happened during {ATTEMPTS} operations"
    assert (outside / "f").read_bytes() == b"outside secret"
    assert (outside / "victim").read_bytes() == b"keep me"
    assert sorted(os.listdir(outside)) == ["f", "victim"], "a temporary or moved file landed outside"
    assert leaks == 0, f"{leaks} reads returned the content of a file outside the workspace"
