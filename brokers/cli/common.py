"""What the ``brokers`` commands share: the usage error, the parser, human sizes, progress bars."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from ..core.broker import Broker
from ..registry import get_broker

__all__ = ["PROGRESS_THRESHOLD", "WS", "Parser", "UsageError", "add_command", "byte_range", "human_size",
           "open_broker", "progress_bar"]

WS = "ws:"
"""Marks the workspace side of ``cp`` (``ws:PATH``)."""
PROGRESS_THRESHOLD = 16 * 1024 * 1024
"""Copies of at least this many bytes show a progress bar (on a terminal, or with ``--progress``)."""


class UsageError(Exception):
    """Bad command-line arguments (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """An argument parser that raises :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        """Raise the usage error (the caller prints it and exits with 2)."""
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


def byte_range(text: str) -> tuple[int, int | None]:
    """Parse ``A-B`` (end exclusive) or ``A-`` into ``(start, end)``, for ``--range``."""
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


def open_broker(config: str) -> Broker:
    """Return the broker of a configuration file (``-``: read it from stdin)."""
    return get_broker(config if config != "-" else sys.stdin.read())


def progress_bar(total: int, label: str, force: bool) -> Any:
    """Return a tqdm bar for a copy of ``total`` bytes, or None when it is small or nobody is watching."""
    if total < PROGRESS_THRESHOLD or not (force or sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, file=sys.stderr)


def add_command(sub: Any, name: str, help_text: str, *, config: bool = True) -> argparse.ArgumentParser:
    """Add a subcommand; with ``config`` it takes the workspace configuration file first."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    if config:
        parser.add_argument("config", help="workspace configuration JSON file ('-' for stdin)")
    return parser
