"""Path confinement: traversal attempts against HostBroker leave everything outside untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import brokers
from brokers.paths import normalize

TRAVERSALS = [
    "..", "../", "../x", "../../etc/passwd", "a/../../x", "a/b/../../../x", "./../x", "a/./../../x",
    "/etc/passwd", "/", "//etc/passwd", "/tmp/../etc/passwd",
    "a\x00b", "\x00", "a/\x00/b", "x\x00../../etc",
    "..\\x", "a\\..\\..\\x", "\\etc\\passwd", "C:\\Windows",
    "a//b", "a/", "", ".", "./", "a/b/",
    "\u2025/x",  # two-dot leader
    "\uff0e\uff0e/x",  # fullwidth full stops
    "a\u2215..\u2215..\u2215x",  # division slash
    "a\uff0f..\uff0fx",  # fullwidth solidus
    "\u2024\u2024/x",  # one-dot leaders
    "a/\x1b[31m", "a\nb", "a\rb", "\x7f",
    "x" * 256, "a/" + "y" * 300,
    "/".join(["d"] * 600),
    "../" * 50 + "etc/passwd",
    "a/../..",
    "link_out/passwd",  # symlink to a directory outside
    "link_file",  # symlink to a file outside
    "inside/../link_out/x",
    "deep/link_up/secret",  # symlink pointing up and out
]


@pytest.fixture
def arena(tmp_path):
    """A workspace inside tmp_path, with an 'outside' sibling holding a secret and escape links."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"top secret")
    (outside / "passwd").write_bytes(b"root:x:0:0")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "inside").mkdir()
    (ws / "inside" / "ok.txt").write_bytes(b"fine")
    (ws / "link_out").symlink_to(outside)
    (ws / "link_file").symlink_to(outside / "secret")
    (ws / "deep").mkdir()
    (ws / "deep" / "link_up").symlink_to("../../outside")
    return ws, outside


def snapshot(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns,
                      Path(p).read_bytes() if os.path.isfile(p) and not os.path.islink(p) else None)
    return out


OPERATIONS = {
    "read_bytes": lambda b, p, tmp: b.read_bytes(p),
    "read_range": lambda b, p, tmp: b.read_bytes(p, 0, 4),
    "open_rb": lambda b, p, tmp: b.open(p).read(),
    "open_wb": lambda b, p, tmp: b.open(p, "wb").close(),
    "write_bytes": lambda b, p, tmp: b.write_bytes(p, b"pwned"),
    "upload": lambda b, p, tmp: b.upload(tmp, p),
    "download": lambda b, p, tmp: b.download(p, tmp + ".dl"),
    "download_partial": lambda b, p, tmp: b.download(p, tmp + ".dl", partial=True),
    "delete": lambda b, p, tmp: b.delete(p),
    "move_from": lambda b, p, tmp: b.move(p, "inside/moved"),
    "move_to": lambda b, p, tmp: b.move("inside/ok.txt", p),
    "info": lambda b, p, tmp: b.info(p),
    "local_path": lambda b, p, tmp: b.local_path(p),
}


LINK_ATTACKS = {"link_out/passwd", "link_file", "inside/../link_out/x", "deep/link_up/secret"}
"""Lexically fine paths that leave through a symlink of the arena: only the broker's opening can refuse them."""


@pytest.mark.parametrize("path", TRAVERSALS, ids=[repr(p)[:40] for p in TRAVERSALS])
def test_each_attack_is_refused_by_the_layer_meant_to(arena, path):
    """Lexical attacks never reach the filesystem (``normalize`` refuses them, naming the path); link attacks pass
    ``normalize`` and are refused when the broker opens them, with a message that names the link."""
    ws, _ = arena
    if path in LINK_ATTACKS:
        rel = normalize(path)
        with pytest.raises(brokers.PathOutsideWorkspace, match="a symbolic link leads outside the workspace"):
            brokers.get_broker({"broker": {"type": "host", "host_path": str(ws)}}).read_bytes(rel)
        return
    with pytest.raises(brokers.PathOutsideWorkspace) as refused:
        normalize(path)
    assert str(refused.value).startswith("path "), str(refused.value)
    assert " is not allowed: " in str(refused.value)


@pytest.mark.parametrize("path", TRAVERSALS, ids=[repr(p)[:40] for p in TRAVERSALS])
def test_traversal_rejected_and_nothing_outside_changes(arena, tmp_path, path):
    ws, outside = arena
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(ws)}})
    local = tmp_path / "local.bin"
    local.write_bytes(b"payload")
    before = snapshot(outside)
    for name, op in OPERATIONS.items():
        with pytest.raises(brokers.PathOutsideWorkspace):
            op(broker, path, str(local))
            pytest.fail(f"{name} accepted {path!r}")
        assert broker.exists("inside/ok.txt"), name
    assert snapshot(outside) == before
    assert sorted(os.listdir(tmp_path)) == ["local.bin", "outside", "ws"]


def test_listing_never_follows_links_out(arena):
    ws, _ = arena
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(ws)}})
    assert [i.path for i in broker.list()] == ["inside/ok.txt"]
    with pytest.raises(brokers.PathOutsideWorkspace):
        list(broker.list("link_out"))
    assert broker.usage().file_count == 1


def test_symlink_inside_the_workspace_is_followed(tmp_path):
    (tmp_path / "data.txt").write_bytes(b"abc")
    (tmp_path / "alias.txt").symlink_to("data.txt")
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(tmp_path)}})
    assert broker.read_bytes("alias.txt") == b"abc"
    broker.delete("alias.txt")  # removes the link, not its target
    assert (tmp_path / "data.txt").read_bytes() == b"abc"


@pytest.mark.parametrize(("given", "expected"), [
    ("a", "a"), ("a/b", "a/b"), ("./a", "a"), ("a/./b", "a/b"), ("a/../b", "b"), ("a/b/..", "a"),
    ("dir/file.tar.gz", "dir/file.tar.gz"), ("..a", "..a"), ("a..", "a.."), ("...", "..."), ("é/ü", "é/ü"),
    ("with space", "with space"),
])
def test_normalize_keeps_legal_paths(given, expected):
    assert normalize(given) == expected


def test_normalize_root_only_when_allowed():
    assert normalize("", allow_root=True) == ""
    assert normalize(".", allow_root=True) == ""
    assert normalize("in/", allow_root=True) == "in"
    with pytest.raises(brokers.PathOutsideWorkspace):
        normalize("")
    with pytest.raises(brokers.PathOutsideWorkspace, match="must be a string"):
        normalize(b"a")  # type: ignore[arg-type]
