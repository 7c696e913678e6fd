"""The ``brokers`` command: validate configurations and work with a workspace's files.

Every command except ``validate`` and ``serve`` takes the workspace configuration file first. Workspace paths are
written ``ws:PATH`` where a command also accepts local paths (``cp``). Errors print one line to stderr, never a
traceback; exit status 0 on success, 1 on failure (an invalid configuration), 2 on a usage error.

One module per command group: :mod:`~brokers.cli.config` (validate), :mod:`~brokers.cli.files` (ls, cat, cp,
mv, rm), :mod:`~brokers.cli.usage` (du, volume), :mod:`~brokers.cli.serve` (serve).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import BrokerError
from . import config, files, serve, usage
from .common import Parser, UsageError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``brokers`` command."""
    parser = Parser(prog="brokers", description="Work with host, NFS and S3 workspaces.")
    parser.add_argument("--version", action="version", version=f"brokers {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (secrets are never logged)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in (config, files, usage, serve):
        group.register(sub)
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
