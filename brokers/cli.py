"""The ``brokers`` command: validate configurations and work with a workspace's files.

Every command except ``validate`` and ``serve`` takes the workspace configuration file first. Workspace paths are
written ``ws:PATH`` where a command also accepts local paths (``cp``). Errors print one line to stderr, never a
traceback; exit status 0 on success, 1 on failure (an invalid configuration), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any, NoReturn

from . import __version__
from .broker import Broker
from .errors import BrokerError
from .registry import get_broker
from .validation import validate_configuration

__all__ = ["main"]

WS = "ws:"
PROGRESS_THRESHOLD = 16 * 1024 * 1024
"""Copies of at least this many bytes show a progress bar (on a terminal, or with ``--progress``)."""


class UsageError(Exception):
    """Bad command-line arguments (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def human_size(n: int | None) -> str:
    """Format a byte count for people: ``1.5 GiB``."""
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _range(text: str) -> tuple[int, int | None]:
    start, sep, end = text.partition("-")
    try:
        if not sep:
            raise ValueError
        a = int(start) if start else 0
        b = int(end) if end else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a byte range like 100-200 (end exclusive) or 100-") from None
    if a < 0 or (b is not None and b < a):
        raise argparse.ArgumentTypeError(f"{text!r}: the end must not be before the start")
    return a, b


def _broker(config: str) -> Broker:
    return get_broker(config if config != "-" else sys.stdin.read())


def _progress(total: int, label: str, force: bool) -> Any:
    if total < PROGRESS_THRESHOLD or not (force or sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, file=sys.stderr)


def cmd_validate(args: argparse.Namespace, out: IO[str]) -> int:
    config: str = sys.stdin.read() if args.file == "-" else args.file
    if args.file != "-" and not os.path.exists(args.file):
        raise UsageError(f"validate: {args.file}: no such file")
    result = validate_configuration(config, previous=args.previous, check_access=not args.offline)
    if args.json:
        out.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        out.write("valid\n" if result.is_valid else "invalid\n")
        for kind, items in (("error", result.errors), ("warning", result.warnings)):
            for item in items:
                out.write(f"  {kind} {item['name']} at {item['path'] or '/'}: {item['description']}\n")
    return 0 if result.is_valid else 1


def cmd_ls(args: argparse.Namespace, out: IO[str]) -> int:
    broker = _broker(args.config)
    for item in broker.list(args.prefix, recursive=not args.no_recursive):
        if args.long:
            when = item.modified.strftime("%Y-%m-%d %H:%M:%S") if item.modified else "-"
            out.write(f"{item.size:>14} {when}  {item.path}\n")
        else:
            out.write(item.path + "\n")
    return 0


def cmd_cat(args: argparse.Namespace, out: IO[str]) -> int:
    broker = _broker(args.config)
    sink = sys.stdout.buffer
    if args.range is not None:
        sink.write(broker.read_bytes(args.path, *args.range))
    else:
        with broker.open(args.path) as stream:
            while chunk := stream.read(1 << 20):
                sink.write(chunk)
    sink.flush()
    return 0


def _split(spec: str) -> tuple[bool, str]:
    return (True, spec[len(WS):]) if spec.startswith(WS) else (False, spec)


def cmd_cp(args: argparse.Namespace, out: IO[str]) -> int:
    (src_ws, src), (dst_ws, dst) = _split(args.src), _split(args.dst)
    if src_ws == dst_ws:
        raise UsageError("cp: exactly one of SRC and DST must be a workspace path (ws:PATH)")
    broker = _broker(args.config)
    if dst_ws:
        if dst.endswith("/") or dst == "":
            dst = dst + os.path.basename(src)
        bar = _progress(os.path.getsize(src), os.path.basename(src), args.progress)
        if bar is None:
            broker.upload(src, dst)
        else:
            with bar, open(src, "rb") as source, broker.open(dst, "wb") as target:
                while chunk := source.read(8 << 20):
                    target.write(chunk)
                    bar.update(len(chunk))
    else:
        if os.path.isdir(dst):
            dst = os.path.join(dst, os.path.basename(src))
        bar = _progress(broker.info(src).size, os.path.basename(src), args.progress)
        if bar is None or args.partial:
            broker.download(src, dst, partial=args.partial)
        else:
            tmp = dst + ".part"
            with bar, broker.open(src) as source, open(tmp, "wb") as target:
                while chunk := source.read(8 << 20):
                    target.write(chunk)
                    bar.update(len(chunk))
            os.replace(tmp, dst)
    return 0


def cmd_mv(args: argparse.Namespace, out: IO[str]) -> int:
    _broker(args.config).move(args.src, args.dst)
    return 0


def cmd_rm(args: argparse.Namespace, out: IO[str]) -> int:
    broker = _broker(args.config)
    if args.all:
        if args.paths:
            raise UsageError("rm: give paths or --all, not both")
        out.write(f"deleted {broker.delete_all()} files\n")
        return 0
    if not args.paths:
        raise UsageError("rm: give at least one path (or --all)")
    for path in args.paths:
        broker.delete(path, missing_ok=args.missing_ok)
    return 0


def cmd_du(args: argparse.Namespace, out: IO[str]) -> int:
    usage = _broker(args.config).usage()
    if args.json:
        out.write(json.dumps(usage.to_dict(), indent=2) + "\n")
        return 0
    fmt: Callable[[int | None], str] = (lambda n: str(n)) if args.bytes else human_size
    out.write(f"used   {fmt(usage.used_size)} in {usage.file_count} files\n")
    out.write(f"total  {fmt(usage.total_size)}\n")
    out.write(f"free   {fmt(usage.free_size)}\n")
    out.write(f"measured {usage.measured_at.isoformat(timespec='seconds')} by {usage.method}\n")
    return 0


def cmd_volume(args: argparse.Namespace, out: IO[str]) -> int:
    broker = _broker(args.config)
    volume = broker.volume
    if volume is None:
        raise BrokerError(f"a {broker.broker_type} workspace without host_path has no volume to mount")
    if args.docker:
        out.write(f"--mount {volume.docker_mount(args.docker)}\n")
    elif args.kubernetes:
        out.write(json.dumps(volume.kubernetes_volume(args.kubernetes), indent=2) + "\n")
    else:
        out.write(" ".join(volume.mount_argv(args.mount)) + "\n")
    return 0


def cmd_serve(args: argparse.Namespace, out: IO[str]) -> int:
    try:
        serve = importlib.import_module("brokers.service.serve")
    except ImportError as exc:
        from .errors import MissingDependency

        raise MissingDependency(f"the service needs its extra: pip install 'brokers[service]' ({exc.name})") from exc
    status: int = serve.main(args.rest)
    return status


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``brokers`` command."""
    parser = _Parser(prog="brokers", description="Work with host, NFS and S3 workspaces.")
    parser.add_argument("--version", action="version", version=f"brokers {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (secrets are never logged)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p: argparse.ArgumentParser = sub.add_parser(
        "validate", help="validate a workspace configuration (exit 0 valid, 1 invalid)")
    p.add_argument("file", help="configuration JSON file ('-' for stdin)")
    p.add_argument("--previous", help="the configuration it replaces (warns on a broker type change)")
    p.add_argument("--json", action="store_true", help="print the {is_valid, errors, warnings} response")
    p.add_argument("--offline", action="store_true", help="do not try to reach the store")
    p.set_defaults(run=cmd_validate)

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=help_text)
        q.add_argument("config", help="workspace configuration JSON file ('-' for stdin)")
        return q

    p = with_config("ls", "list files")
    p.add_argument("prefix", nargs="?", default="", help="directory to list (default: everything)")
    p.add_argument("-l", "--long", action="store_true", help="show size and modification time")
    p.add_argument("--no-recursive", action="store_true", help="only files directly under PREFIX")
    p.set_defaults(run=cmd_ls)

    p = with_config("cat", "write a file (or a byte range of it) to stdout")
    p.add_argument("path")
    p.add_argument("--range", type=_range, metavar="A-B", help="bytes A (inclusive) to B (exclusive); 'A-' to the end")
    p.set_defaults(run=cmd_cat)

    p = with_config("cp", "copy between this machine and the workspace (ws:PATH marks the workspace side)")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--partial", action="store_true", help="link to the file in place where a mount allows")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    p.set_defaults(run=cmd_cp)

    p = with_config("mv", "move a file within the workspace")
    p.add_argument("src")
    p.add_argument("dst")
    p.set_defaults(run=cmd_mv)

    p = with_config("rm", "delete files")
    p.add_argument("paths", nargs="*")
    p.add_argument("--missing-ok", action="store_true", help="no error for files that do not exist")
    p.add_argument("--all", action="store_true", help="delete every file of the workspace")
    p.set_defaults(run=cmd_rm)

    p = with_config("du", "used, total and free size")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--bytes", action="store_true", help="exact byte counts instead of human sizes")
    p.set_defaults(run=cmd_du)

    p = with_config("volume", "how a job mounts the workspace")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--docker", metavar="TARGET", help="a docker run --mount option mounting at TARGET")
    which.add_argument("--kubernetes", metavar="NAME", help="a Kubernetes pod volume named NAME")
    which.add_argument("--mount", metavar="TARGET", help="the mount command line for this machine")
    p.set_defaults(run=cmd_volume)

    p = sub.add_parser("serve", help="run the workspace HTTP service (needs brokers[service])", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(run=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``brokers`` command; return its exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["serve"]:  # a REMAINDER argument does not take leading options: mark them as positional
        args_list = ["serve", "--", *args_list[1:]]
    try:
        args = build_parser().parse_args(args_list)
    except UsageError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="brokers: %(message)s")
    try:
        status: int = args.run(args, sys.stdout)
        return status
    except UsageError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    except (BrokerError, OSError, ValueError) as exc:
        sys.stderr.write(f"brokers {args.command}: {_one_line(exc)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("brokers: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1


def _one_line(exc: BaseException) -> str:
    text = str(exc) if not isinstance(exc, OSError) or not exc.strerror else (
        f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror)
    return " ".join(text.split())[:500] or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
