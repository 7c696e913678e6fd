"""``brokers ls``, ``cat``, ``cp``, ``mv``, ``rm``: a workspace's files."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from typing import IO, Any

from .common import WS, UsageError, add_command, byte_range, open_broker, transfer_progress

__all__ = ["register"]


def cmd_ls(args: argparse.Namespace, out: IO[str]) -> int:
    """List files (``-l``: size and modification time)."""
    broker = open_broker(args.config)
    for item in broker.list(args.prefix, recursive=not args.no_recursive):
        if args.long:
            when = item.modified.strftime("%Y-%m-%d %H:%M:%S") if item.modified else "-"
            out.write(f"{item.size:>14} {when}  {item.path}\n")
        else:
            out.write(item.path + "\n")
    return 0


def cmd_cat(args: argparse.Namespace, out: IO[str]) -> int:
    """Write a file, or a byte range of it, to stdout."""
    broker = open_broker(args.config)
    sink = sys.stdout.buffer
    if args.range is not None:
        sink.write(broker.read_bytes(args.path, *args.range))
    else:
        with broker.open(args.path) as stream:
            while chunk := stream.read(1 << 20):
                sink.write(chunk)
    sink.flush()
    return 0


def _side(spec: str) -> tuple[bool, str]:
    return (True, spec[len(WS):]) if spec.startswith(WS) else (False, spec)


def _watched(progress: bool) -> bool:
    """Whether a bar may be shown, so whether the size is worth asking for (a HEAD on S3)."""
    return progress or sys.stderr.isatty()


def cmd_cp(args: argparse.Namespace, out: IO[str]) -> int:
    """Copy between this machine and the workspace (``ws:PATH`` marks the workspace side).

    Both directions are the broker's own ``upload``/``download`` (atomic, verified), bar or no bar: the bar
    only listens to the bytes they report.
    """
    (src_ws, src), (dst_ws, dst) = _side(args.src), _side(args.dst)
    if src_ws == dst_ws:
        raise UsageError("exactly one of SRC and DST must be a workspace path (ws:PATH)")
    broker = open_broker(args.config)
    label = os.path.basename(src.rstrip("/")) or src
    if dst_ws:
        if dst.endswith("/") or dst == "":
            dst = dst + os.path.basename(src)
        total = _local_size(src) if _watched(args.progress) else None
        with transfer_progress(total, label, "committing", args.progress) as progress:
            broker.upload(src, dst, progress=progress)
        return 0
    if os.path.isdir(dst):
        dst = os.path.join(dst, os.path.basename(src))
    if args.partial and broker.local_path(src) is not None:  # a link: nothing to watch
        broker.download(src, dst, partial=True)
        return 0
    total = broker.info(src).size if _watched(args.progress) else None
    with transfer_progress(total, label, "verifying", args.progress) as progress:
        broker.download(src, dst, partial=args.partial, progress=progress)
    return 0


def _local_size(path: str) -> int | None:
    """The size of a regular local file; None for a pipe or a device (copied to its end)."""
    st = os.stat(path)
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def cmd_mv(args: argparse.Namespace, out: IO[str]) -> int:
    """Move a file within the workspace."""
    open_broker(args.config).move(args.src, args.dst)
    return 0


def cmd_rm(args: argparse.Namespace, out: IO[str]) -> int:
    """Delete files, or every file with ``--all``."""
    broker = open_broker(args.config)
    if args.all:
        if args.paths:
            raise UsageError("give paths or --all, not both")
        out.write(f"deleted {broker.delete_all()} files\n")
        return 0
    if not args.paths:
        raise UsageError("give at least one path (or --all)")
    for path in args.paths:
        broker.delete(path, missing_ok=args.missing_ok)
    return 0


def register(sub: Any) -> None:
    """Add ``ls``, ``cat``, ``cp``, ``mv`` and ``rm``."""
    p = add_command(sub, "ls", "list files")
    p.add_argument("prefix", nargs="?", default="", help="directory to list (default: everything)")
    p.add_argument("-l", "--long", action="store_true", help="show size and modification time")
    p.add_argument("--no-recursive", action="store_true", help="only files directly under PREFIX")
    p.set_defaults(run=cmd_ls)

    p = add_command(sub, "cat", "write a file (or a byte range of it) to stdout")
    p.add_argument("path")
    p.add_argument("--range", type=byte_range, metavar="A-B",
                   help="bytes A (inclusive) to B (exclusive); 'A-' to the end")
    p.set_defaults(run=cmd_cat)

    p = add_command(sub, "cp", "copy between this machine and the workspace (ws:PATH marks the workspace side)")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--partial", action="store_true", help="link to the file in place where a mount allows")
    p.add_argument("--progress", action="store_true",
                   help="show a progress bar whatever the size (on a terminal it shows from 16 MiB)")
    p.set_defaults(run=cmd_cp)

    p = add_command(sub, "mv", "move a file within the workspace")
    p.add_argument("src")
    p.add_argument("dst")
    p.set_defaults(run=cmd_mv)

    p = add_command(sub, "rm", "delete files")
    p.add_argument("paths", nargs="*")
    p.add_argument("--missing-ok", action="store_true", help="no error for files that do not exist")
    p.add_argument("--all", action="store_true", help="delete every file of the workspace")
    p.set_defaults(run=cmd_rm)
