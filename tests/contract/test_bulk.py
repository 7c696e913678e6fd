"""``upload_many`` / ``download_many``: many files at once on a bounded pool, on every backend."""

from __future__ import annotations

import threading

import pytest

import brokers


def test_upload_many_and_download_many_round_trip(any_broker, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    pairs = []
    for i in range(40):
        (src / f"f{i}").write_bytes(f"file {i}".encode() * (i + 1))
        pairs.append((src / f"f{i}", f"bulk/d{i % 3}/f{i}"))
    assert any_broker.upload_many(pairs, workers=4) == 40
    assert sorted(i.path for i in any_broker.list("bulk")) == sorted(p for _, p in pairs)
    out = tmp_path / "out"
    written = any_broker.download_many([(p, out / p) for _, p in pairs])
    assert written == [str(out / p) for _, p in pairs]
    for local, path in pairs:
        assert (out / path).read_bytes() == local.read_bytes()
    assert not [p for p in out.rglob(".brokers-tmp-*")]


def test_bulk_checks_every_path_before_sending(any_broker, tmp_path):
    (tmp_path / "a").write_bytes(b"a")
    with pytest.raises(brokers.PathOutsideWorkspace):
        any_broker.upload_many([(tmp_path / "a", "ok/a"), (tmp_path / "a", "../escape")])
    assert not any_broker.exists("ok/a")
    with pytest.raises(brokers.PathOutsideWorkspace):
        any_broker.download_many([("ok/a", tmp_path / "x"), ("/etc/passwd", tmp_path / "y")])


def test_bulk_raises_the_first_failure_and_leaves_no_temp_files(any_broker, tmp_path):
    any_broker.write_bytes("there", b"x")
    out = tmp_path / "out"
    with pytest.raises(brokers.FileNotFound):
        any_broker.download_many([("there", out / "a"), ("missing", out / "b")], workers=2)
    assert not (out / "b").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".brokers-tmp-")]
    with pytest.raises(FileNotFoundError):
        any_broker.upload_many([(tmp_path / "nope", "n")])


def test_bulk_pool_is_bounded(tmp_path):
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(tmp_path / "ws")}})
    (tmp_path / "ws").mkdir()
    running = peak = 0
    lock = threading.Lock()
    real = broker._upload
    together = threading.Barrier(3, timeout=30)  # every upload waits until three run at once: a smaller pool breaks it

    def counting(local, rel):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            together.wait()
            real(local, rel)
        finally:
            with lock:
                running -= 1

    broker._upload = counting
    (tmp_path / "f").write_bytes(b"f")
    assert broker.upload_many([(tmp_path / "f", f"x{i}") for i in range(30)], workers=3) == 30
    assert peak == 3
    assert broker.upload_many([]) == 0
