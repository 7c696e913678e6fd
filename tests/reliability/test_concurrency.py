"""Concurrency: 16 threads hammer one broker of each type; a broker keeps working in a forked child.

Each thread owns a directory (its expected state is modelled exactly) and also writes and reads files shared by
all threads, whose content is self-describing, so a torn or mixed file is detected. At the end the workspace
holds exactly the union of the threads' models. A deadlock fails through the timeout.

Operations per thread: 500 on host; NFS (direct) 250 and S3 60, still 16 threads, to stay inside the suite's
time budget on two shared cores (NFS: ~16 s for 500 each; S3 through moto: ~14 s for 80 each).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time

import pytest

import brokers
from tests.reliability.test_crash import content, decode

THREADS = 16
OPS = {"host": 500, "nfs3": 250, "s3": 60}
SHARED = [f"shared/s{i}.bin" for i in range(4)]
WRITES = 300


@pytest.fixture
def any_reliability_broker(request):
    backend = request.param
    name = {"host": "host_broker", "nfs3": "nfs3_contract_broker", "s3": "s3_broker"}[backend]
    return backend, request.getfixturevalue(name)


def worker(broker, index: int, ops: int, model: dict[str, bytes], errors: list[str], barrier) -> None:
    rng = random.Random(index)
    mine = f"t{index:02d}"
    barrier.wait()
    for n in range(ops):
        kind = rng.choices(["write", "read", "range", "move", "delete", "list", "exists", "shared_w", "shared_r",
                            "stream"], [20, 15, 10, 8, 6, 6, 5, 10, 15, 5])[0]
        rel = f"{mine}/f{rng.randint(0, 7)}.bin"
        try:
            if kind == "write":
                data = rng.randbytes(rng.choice([0, 10, 4096, 70_000]))
                broker.write_bytes(rel, data)
                model[rel] = data
            elif kind == "stream":
                data = rng.randbytes(rng.choice([1, 200_000]))
                with broker.open(rel, "wb", buffer_size=65536) as f:
                    f.write(data[: len(data) // 2])
                    f.write(data[len(data) // 2:])
                model[rel] = data
            elif kind in ("read", "range"):
                if rel not in model:
                    assert not broker.exists(rel), f"{rel} exists but was never written"
                    continue
                data = model[rel]
                if kind == "read":
                    assert broker.read_bytes(rel) == data, f"{rel}: wrong bytes"
                else:
                    a = rng.randint(0, len(data))
                    b = rng.randint(a, len(data) + 5)
                    assert broker.read_bytes(rel, a, b) == data[a:b], f"{rel}[{a}:{b}]: wrong bytes"
            elif kind == "move":
                if rel not in model:
                    continue
                dst = f"{mine}/m{rng.randint(0, 3)}.bin"
                if dst == rel:
                    continue
                broker.move(rel, dst)
                model[dst] = model.pop(rel)
            elif kind == "delete":
                if rel in model:
                    broker.delete(rel)
                    del model[rel]
                else:
                    broker.delete(rel, missing_ok=True)
            elif kind == "list":
                listed = {i.path: i.size for i in broker.list(mine)}
                assert listed == {k: len(v) for k, v in model.items()}, f"{mine}: list differs from the model"
            elif kind == "exists":
                assert broker.exists(rel) == (rel in model), f"{rel}: exists() is wrong"
            elif kind == "shared_w":
                version = index * 1_000_000 + n
                broker.write_bytes(rng.choice(SHARED), content(version, rng.choice([0, 5000, 120_000])))
            elif kind == "shared_r":
                with contextlib.suppress(brokers.FileNotFound):
                    decode(broker.read_bytes(rng.choice(SHARED)))
        except Exception as exc:
            errors.append(f"thread {index} op {n} {kind} {rel}: {type(exc).__name__}: {exc}")
            return


@pytest.mark.timeout(150)
@pytest.mark.parametrize("any_reliability_broker", ["host", "nfs3", "s3"], indirect=True)
def test_sixteen_threads_of_mixed_operations(any_reliability_broker):
    backend, broker = any_reliability_broker
    ops = OPS[backend]
    models: list[dict[str, bytes]] = [{} for _ in range(THREADS)]
    errors: list[str] = []
    barrier = threading.Barrier(THREADS)
    threads = [threading.Thread(target=worker, args=(broker, i, ops, models[i], errors, barrier), daemon=True)
               for i in range(THREADS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(140)
    assert not any(t.is_alive() for t in threads), "a thread is stuck (deadlock?)"
    assert not errors, "\n".join(errors[:20])
    expected = {k: v for m in models for k, v in m.items()}
    listed = {i.path: i.size for i in broker.list() if not i.path.startswith("shared/")}
    assert listed == {k: len(v) for k, v in expected.items()}
    for rel, data in expected.items():
        assert broker.read_bytes(rel) == data, rel
    for rel in SHARED:
        if broker.exists(rel):
            decode(broker.read_bytes(rel))
    print(f"\n{backend}: {THREADS} threads x {ops} operations in {time.monotonic() - started:.1f} s, "
          f"{len(expected)} files checked")


FORKS = {"host": 20, "nfs3": 60, "s3": 20}
"""Forks while the threads work. A child of nfs-rs inheriting a native lock held hung about once in 100 forks
(three per run never showed it); forks now wait for a quiet moment (``_ForkGate``)."""


@pytest.mark.timeout(180)
@pytest.mark.parametrize("any_reliability_broker", ["host", "nfs3", "s3"], indirect=True)
def test_broker_used_after_fork_while_threads_are_busy(any_reliability_broker):
    """Fork while 4 threads are inside the broker (locks may be held at that instant); the child must work."""
    backend, broker = any_reliability_broker
    forks = FORKS[backend]
    broker.write_bytes("before/fork.bin", b"written by the parent")
    stop = threading.Event()
    errors: list[str] = []

    def busy(i: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                broker.write_bytes(f"busy/{i}.bin", content(n, 20_000))
                decode(broker.read_bytes(f"busy/{i}.bin"))
                list(broker.list("busy"))
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            n += 1

    threads = [threading.Thread(target=busy, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    results = []
    try:
        for attempt in range(forks):
            time.sleep(0.05)
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    assert broker.read_bytes("before/fork.bin") == b"written by the parent"
                    broker.write_bytes(f"child/{attempt}.bin", b"child %d" % attempt)
                    assert broker.read_bytes(f"child/{attempt}.bin") == b"child %d" % attempt
                    assert f"child/{attempt}.bin" in {i.path for i in broker.list("child")}
                    broker.move(f"child/{attempt}.bin", f"child/moved{attempt}.bin")
                    code = 0
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 30
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    pytest.fail(f"the forked child {attempt} hung (deadlock on a lock copied in a held state?)")
                time.sleep(0.02)
            results.append(os.waitstatus_to_exitcode(status))
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert results == [0] * forks
    assert not errors, errors
    for attempt in range(forks):
        assert broker.read_bytes(f"child/moved{attempt}.bin") == b"child %d" % attempt
    assert broker.read_bytes("before/fork.bin") == b"written by the parent"


@pytest.fixture
def strict_umask():
    """Run under umask 077 and a very short thread switch interval (threads interleave at every bytecode)."""
    import sys

    old_mask, old_interval = os.umask(0o077), sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old_interval)
        os.umask(old_mask)


@pytest.mark.timeout(120)
def test_threads_writing_under_umask_077_make_private_files(host_broker, host_root, tmp_path, strict_umask):
    """No write changes the process's umask, even for an instant: every file is 0600 and every folder 0700."""
    errors: list[str] = []
    barrier = threading.Barrier(THREADS)

    def write(i: int) -> None:
        barrier.wait()
        try:
            for j in range(WRITES):
                host_broker.write_bytes(f"t{i}/d{j % 4}/f{j}.bin", b"%d" % j)
            host_broker.download(f"t{i}/d0/f0.bin", tmp_path / "down" / f"{i}.bin")
        except Exception as exc:
            errors.append(f"thread {i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(100)
    assert not errors, errors
    modes: dict[str, list[str]] = {}
    for top in (host_root, tmp_path / "down"):
        for dirpath, dirnames, filenames in os.walk(top):
            for name in filenames:
                modes.setdefault(f"file {os.stat(os.path.join(dirpath, name)).st_mode & 0o777:04o}", []).append(name)
            for name in dirnames:
                modes.setdefault(f"dir {os.stat(os.path.join(dirpath, name)).st_mode & 0o777:04o}", []).append(name)
    assert sorted(modes) == ["dir 0700", "file 0600"], {k: len(v) for k, v in modes.items()}
    assert len(modes["file 0600"]) == THREADS * (WRITES + 1)
