"""The corpus of hostile workspace paths, and the operations every one is tried with."""

from __future__ import annotations

DOTDOT = [
    "..", "../", "../x", "../../etc/passwd", "a/../../x", "a/b/../../../x", "./../x", "a/./../../x", "../" * 40 + "x",
    "a/../..", "a/..", "../a/../..", "./..", "x/y/z/../../../../w", ".././x", "..//x", "a/.../../../x",
]
PERCENT = [
    "%2e%2e/x", "%2e%2e%2fx", "..%2fx", "%2e./x", ".%2e/x", "%2E%2E/%2E%2E/x", "%252e%252e%252fx", "..%252f..%252fx",
    "%c0%ae%c0%ae/x", "%c0%af", "..%c0%afx", "%e0%80%ae%e0%80%ae/x", "..%5cx", "%5c..%5cx", "%00", "x%00.txt",
    "%2f%2fetc%2fpasswd", "..%u2215x", "%uff0e%uff0e/x", "&#46;&#46;/x", "..;/x", "..%00/x",
]
ABSOLUTE = ["/etc/passwd", "/", "//", "///x", "/./x", "//server/share", "/tmp/../etc/passwd", "/..", "~/x", "~root/x"]
NUL = ["a\x00b", "\x00", "\x00../x", "a/\x00", "x\x00../../etc/passwd", "../\x00", "a\x00/b"]
BACKSLASH = ["..\\x", "a\\..\\..\\x", "\\etc\\passwd", "C:\\Windows", "\\\\server\\share", "a\\b", "..\\..\\",
             "C:/x", "C:", "\\"]
CONTROL = ["a\nb", "\r", "a\tb", "\x1b[2J", "\x7f", "x\x01", "../\n", "a\x0bb"]
LONG = ["x" * 256, "a/" + "y" * 300, "/".join(["d"] * 600), "é" * 128 + "/x", "x" * 255 + "/" + "z" * 255 + "/" + "w" * 600,
        "a/" * 511 + "b", "\U0001f600" * 64]
LOOKALIKE = [
    "\u2025/x", "\uff0e\uff0e/x", "a\u2215..\u2215..\u2215x", "a\uff0f..\uff0fx", "\u2024\u2024/x", "\u3002\u3002/x",
    "\ufe52\ufe52/x", "\ufe30/x", "..\u2044x", "..\u29f8x", "..\u2571x", "\u2026/x", "..\u200b/x", "\u200b../x",
    "\u202e../x", "\ufeff../x", ".\u0338./x", "\ud800", "a\udcff/x", "\udcae\udcae/x",
]
TRAILING = ["x.", "x ", " ", "...", ". /x", " ../x", ".. /x", "./", "a//b", "a/", "", "."]
SYMLINKS = [
    "link_out/passwd", "link_out", "link_file", "inside/../link_out/x", "deep/link_up/secret", "abs_root/etc/passwd",
    "chain1/secret", "loop/x", "link_out/new_file", "deep/link_up/new_file", "hard_secret",
]
CORPUS = DOTDOT + PERCENT + ABSOLUTE + NUL + BACKSLASH + CONTROL + LONG + LOOKALIKE + TRAILING + SYMLINKS


def operations(broker, path, local, download_dir):
    """Every broker operation that takes a workspace path, as (name, thunk)."""
    return [
        ("write_bytes", lambda: broker.write_bytes(path, b"pwned")),
        ("open_wb", lambda: broker.open(path, "wb").close()),
        ("upload", lambda: broker.upload(local, path)),
        ("read_bytes", lambda: broker.read_bytes(path)),
        ("read_range", lambda: broker.read_bytes(path, 1, 3)),
        ("open_rb", lambda: broker.open(path).read()),
        ("info", lambda: broker.info(path)),
        ("exists", lambda: broker.exists(path)),
        ("list", lambda: list(broker.list(path))),
        ("download", lambda: broker.download(path, download_dir / "dl.bin")),
        ("download_partial", lambda: broker.download(path, download_dir / "dlp.bin", partial=True)),
        ("local_path", lambda: broker.local_path(path)),
        ("move_to", lambda: broker.move("inside/ok.txt", path)),
        ("move_from", lambda: broker.move(path, "inside/moved.txt")),
        ("delete", lambda: broker.delete(path)),
    ]
