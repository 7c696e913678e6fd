"""Hostile paths against every broker: each is rejected or confined; nothing outside the workspace changes.

The same corpus (tests/reliability/hostile.py: dot-dot in every form, percent-encodings, absolute, NUL,
backslashes, control characters, very long names, Unicode look-alikes, symbolic and hard links) goes through
every path-taking operation of a host, an NFS (direct) and an S3 broker. An operation may succeed only inside
the workspace; any failure must be a ``BrokerError``, never a crash. Afterwards the world outside the workspace is
compared with a snapshot: a sibling directory (host), the rest of the export (NFS), the keys outside the prefix
(S3). Hypothesis then generates random paths and operations with the same check.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import brokers
from brokers.paths import normalize
from tests.reliability.hostile import CORPUS, operations


def test_corpus_size():
    assert len(CORPUS) >= 100
    assert len(set(CORPUS)) == len(CORPUS)


def tree(root: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Everything under ``root`` (but ``skip``): type, size, content digest, link target."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None and Path(dirpath) == skip.parent and skip.name in dirnames:
            dirnames.remove(skip.name)
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                out[str(p)] = ("link", os.readlink(p))
            elif p.is_file():
                out[str(p)] = ("file", st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            else:
                out[str(p)] = ("dir", st.st_mode)
    return out


def populate_local(ws: Path, outside: Path) -> None:
    """A workspace with escape hatches: links out (relative, absolute, chained, looping) and a hard link."""
    outside.mkdir(exist_ok=True)
    (outside / "secret").write_bytes(b"top secret")
    (outside / "passwd").write_bytes(b"root:x:0:0")
    (ws / "inside").mkdir(exist_ok=True)
    (ws / "inside" / "ok.txt").write_bytes(b"fine")
    (ws / "link_out").symlink_to(outside)
    (ws / "link_file").symlink_to(outside / "secret")
    (ws / "deep").mkdir()
    (ws / "deep" / "link_up").symlink_to(os.path.relpath(outside, ws / "deep"))
    (ws / "abs_root").symlink_to("/")
    (ws / "chain2").symlink_to("link_out")
    (ws / "chain1").symlink_to("chain2")
    (ws / "loop").symlink_to("loop")
    os.link(outside / "secret", ws / "hard_secret")


# For paths a remote broker accepts (confined by its prefix or export, no links involved), these operations
# cover writing, reading, listing, moving and deleting; the others repeat the same key mapping over the network.
REMOTE_ACCEPTED_OPS = {"write_bytes", "upload", "read_range", "list", "download", "move_to", "move_from", "delete"}


def attack(broker, tmp_path: Path, reset, corpus=CORPUS, remote: bool = False) -> tuple[int, list[str]]:
    """Try every operation with every path (remote: fewer for accepted paths); return (attempts, crashes)."""
    local = tmp_path / "local.bin"
    if not local.exists():
        local.write_bytes(b"pwned")
    dl = tmp_path / "downloads"
    dl.mkdir(exist_ok=True)
    attempts, crashes = 0, []
    for path in corpus:
        try:
            normalize(path)
            accepted = True
        except brokers.BrokerError:
            accepted = False
        for name, op in operations(broker, path, local, dl):
            if remote and accepted and name not in REMOTE_ACCEPTED_OPS:
                continue
            attempts += 1
            try:
                op()
            except brokers.BrokerError:
                pass
            except Exception as exc:  # anything else is a crash
                crashes.append(f"{name}({path!r}): {type(exc).__name__}: {exc}")
            if name in ("move_to", "move_from", "delete"):
                reset()
    return attempts, crashes


def test_corpus_against_host(tmp_path):
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    populate_local(ws, outside)
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(ws)}})
    (tmp_path / "local.bin").write_bytes(b"pwned")
    before = tree(tmp_path, skip=ws)

    def reset():
        if not (ws / "inside" / "ok.txt").exists():
            (ws / "inside" / "ok.txt").write_bytes(b"fine")

    attempts, crashes = attack(broker, tmp_path, reset)
    assert not crashes, "\n".join(crashes)
    after = tree(tmp_path, skip=ws)
    for key in [k for k in after if k.startswith(str(tmp_path / "downloads"))]:
        after.pop(key)  # downloads are where we asked for them
    before = {k: v for k, v in before.items() if not k.startswith(str(tmp_path / "downloads"))}
    assert after == before
    assert (outside / "secret").read_bytes() == b"top secret"
    assert attempts >= 100 * 15


def export_view(export: Path, outside: Path) -> tuple:
    """What a write escaping an NFS workspace could change: the export's top level and the outside directory.

    (Other tests' workspaces live in the same export; walking all of them would only cost time.)
    """
    top = sorted((p.name, p.is_symlink(), p.is_dir()) for p in export.iterdir())
    return top, tree(outside)


# 511 nested directories created and walked over NFS one RPC at a time take ~20 s: use a shallower one there.
DEEP = "a/" * 511 + "b"
NFS_CORPUS = [p if p != DEEP else "a/" * 40 + "b" for p in CORPUS]


def test_corpus_against_nfs(make_nfs_broker, nfs_workspace, nfs_server, tmp_path):
    export = nfs_server.export_dir
    ws = nfs_workspace.backing
    outside = export / f"{ws.name}-outside"
    populate_local(ws, outside)
    (ws / "abs_root").unlink()
    (ws / "abs_root").symlink_to(export)  # "/" on the server is the pseudo root; point at the export instead
    broker = make_nfs_broker("3")
    assert broker.mode == "direct"
    before = export_view(export, outside)

    def reset():
        if not (ws / "inside" / "ok.txt").exists():
            (ws / "inside" / "ok.txt").write_bytes(b"fine")

    attempts, crashes = attack(broker, tmp_path, reset, NFS_CORPUS)
    assert not crashes, "\n".join(crashes)
    assert export_view(export, outside) == before
    assert attempts >= 100 * 15


S3_OUTSIDE = ["outside.txt", "ws", "ws2/secret", "wsx/a", "w/s", "ws%2f..%2fsecret", "other/ws/inside/ok.txt",
              "inside/ok.txt", "ws.", "secret", "escape", "etc/passwd"]


def s3_outside(client, bucket) -> dict[str, str]:
    keys = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            if not item["Key"].startswith("ws/"):
                keys[item["Key"]] = item["ETag"]
    return keys


def test_corpus_against_s3(s3_broker, s3_client, s3_bucket, tmp_path):
    for key in S3_OUTSIDE:
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"outside " + key.encode())
    s3_client.put_object(Bucket=s3_bucket, Key="ws/inside/ok.txt", Body=b"fine")
    before = s3_outside(s3_client, s3_bucket)
    assert len(before) == len(S3_OUTSIDE)

    def reset():
        if not s3_broker.exists("inside/ok.txt"):
            s3_broker.write_bytes("inside/ok.txt", b"fine")

    attempts, crashes = attack(s3_broker, tmp_path, reset, remote=True)
    assert not crashes, "\n".join(crashes)
    assert s3_outside(s3_client, s3_bucket) == before
    assert attempts >= 100 * 10


# ---------------------------------------------------------------------------------------------------- hypothesis
COMPONENT = st.one_of(
    st.sampled_from(["..", ".", "", "a", "b", "inside", "ok.txt", "link_out", "deep", "link_up", "%2e%2e", "\\..",
                     "\u2025", "\uff0e\uff0e", "\x00", "..\u200b", "~", "C:", " ", "…", "ws", "ws2"]),
    st.text(max_size=6),
)
PATHS = st.builds(lambda lead, parts: lead + "/".join(parts), st.sampled_from(["", "/", "./", "../"]),
                  st.lists(COMPONENT, min_size=1, max_size=6))
OPS = st.sampled_from(["write_bytes", "upload", "move_to", "move_from", "delete", "read_bytes", "list", "download"])


def run_op(broker, op, path, tmp_path):
    local = tmp_path / "hyp-local.bin"
    if not local.exists():
        local.write_bytes(b"pwned")
    try:
        if op == "write_bytes":
            broker.write_bytes(path, b"pwned")
        elif op == "upload":
            broker.upload(local, path)
        elif op == "move_to":
            if not broker.exists("inside/ok.txt"):
                broker.write_bytes("inside/ok.txt", b"fine")
            broker.move("inside/ok.txt", path)
        elif op == "move_from":
            broker.move(path, "inside/moved.txt")
        elif op == "delete":
            broker.delete(path)
        elif op == "read_bytes":
            broker.read_bytes(path)
        elif op == "list":
            list(broker.list(path))
        elif op == "download":
            broker.download(path, tmp_path / "hyp-dl" / "x.bin")
    except brokers.BrokerError:
        pass


def hyp(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def host_arena(tmp_path):
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    populate_local(ws, outside)
    sibling = tmp_path / "sibling"
    sibling.mkdir()
    (sibling / "data").write_bytes(b"sibling")
    return brokers.get_broker({"broker": {"type": "host", "host_path": str(ws)}}), tmp_path, ws


@hyp(300)
@given(op=OPS, path=PATHS)
def test_random_paths_host(host_arena, op, path):
    broker, tmp_path, ws = host_arena
    before = tree(tmp_path, skip=ws)
    run_op(broker, op, path, tmp_path)
    after = tree(tmp_path, skip=ws)
    assert {k: v for k, v in after.items() if "hyp-" not in k} == {k: v for k, v in before.items() if "hyp-" not in k}


@hyp(80)
@given(op=OPS, path=PATHS)
def test_random_paths_s3(s3_broker, s3_client, s3_bucket, tmp_path, op, path):
    if not s3_outside(s3_client, s3_bucket):
        for key in S3_OUTSIDE:
            s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"outside " + key.encode())
    before = s3_outside(s3_client, s3_bucket)
    run_op(s3_broker, op, path, tmp_path)
    assert s3_outside(s3_client, s3_bucket) == before


@hyp(50)
@given(op=OPS, path=PATHS)
def test_random_paths_nfs(make_nfs_broker, nfs_workspace, nfs_server, tmp_path, op, path):
    export, ws = nfs_server.export_dir, nfs_workspace.backing
    outside = export / f"{ws.name}-outside"
    if not outside.exists():
        populate_local(ws, outside)
    broker = getattr(test_random_paths_nfs, "_broker", None)
    if broker is None or broker.config.broker.nfs_path != nfs_workspace.nfs_path:
        broker = make_nfs_broker("3")
        test_random_paths_nfs._broker = broker
    before = export_view(export, outside)
    run_op(broker, op, path, tmp_path)
    assert export_view(export, outside) == before


@pytest.mark.parametrize("path", ["\ud800", "a/\udcff", "\udcae\udcae/x"])
def test_lone_surrogates_are_refused_not_a_crash(host_broker, path):
    """A lone surrogate cannot be encoded for a filesystem or an S3 key: it used to escape as UnicodeEncodeError."""
    with pytest.raises(brokers.PathOutsideWorkspace, match="surrogate"):
        host_broker.write_bytes(path, b"x")
    with pytest.raises(brokers.PathOutsideWorkspace, match="surrogate"):
        host_broker.read_bytes(path)
