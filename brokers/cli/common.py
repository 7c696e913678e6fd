"""What the ``brokers`` commands share: exit statuses, the usage error, the parser, human sizes, progress bars."""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from ..core.broker import Broker
from ..core.streams import Progress
from ..registry import get_broker

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_STATUS_HELP", "EXIT_UNREACHABLE", "EXIT_USAGE",
           "PROGRESS_THRESHOLD", "WS", "Parser", "UsageError", "add_command", "byte_range", "human_size",
           "open_broker", "transfer_progress"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130
EXIT_STATUS_HELP = """\
exit status:
  0    success (validate: the configuration is valid)
  1    the operation failed: a file that is not there, a path outside the workspace, refused access,
       an unreachable store, a missing workspace folder (validate: the configuration is invalid)
  2    usage error: bad arguments, or a configuration file that is missing, unreadable or invalid
  3    validate --check-access: the configuration is valid, but the workspace cannot be reached from here
  130  interrupted"""
"""The exit statuses, as ``brokers --help`` shows them (the README repeats them)."""

WS = "ws:"
"""Marks the workspace side of ``cp`` (``ws:PATH``)."""
PROGRESS_THRESHOLD = 16 * 1024 * 1024
"""Copies of at least this many bytes show a progress bar on a terminal (any size with ``--progress``)."""


class UsageError(Exception):
    """Bad command-line arguments or configuration file (exit status 2).

    Attributes:
        prog: Who says so (``brokers cat``); None: the command that ran.
    """

    def __init__(self, message: str, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """An argument parser that raises :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        """Raise the usage error (the caller prints it and exits with 2)."""
        raise UsageError(message, prog=self.prog)


def human_size(n: int | float | None) -> str:
    """Format a byte count for people in binary units, labelled as such: ``1.5 GiB``.

    One unit system everywhere (``du``, progress bars, their rates): binary, as disks, quotas and ``du -h``
    count, and labelled so (``MiB``, ``MiB/s``), not tqdm's ``M`` beside ``MB/s``.
    """
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(size) < 1024 or unit == "PiB":
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


def non_empty(text: str) -> str:
    """An option's value that must hold something (a mount target, a volume name)."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def open_broker(config: str) -> Broker:
    """Return the broker of a configuration file (``-``: read it from stdin).

    Raises:
        InvalidConfiguration: The file is missing, unreadable or invalid.
    """
    return get_broker(Path(config) if config != "-" else sys.stdin.read())


def _bar_class() -> Any:
    from tqdm import tqdm

    class BinaryBar(tqdm):  # type: ignore[misc]
        """A tqdm bar whose sizes and rate are :func:`human_size` (tqdm's own would say ``20.0M``, ``286MB/s``)."""

        @property
        def format_dict(self) -> dict[str, Any]:
            values: dict[str, Any] = super().format_dict
            rate = values["rate"]
            if rate is None and values["elapsed"]:
                rate = values["n"] / values["elapsed"]
            done = human_size(values["n"])
            values["size"] = f"{done}/{human_size(values['total'])}" if values["total"] else done
            values["speed"] = f"{human_size(rate)}/s" if rate else "? B/s"
            return values

    return BinaryBar


_KNOWN = "{desc} {percentage:3.0f}%|{bar}| {size} [{elapsed}<{remaining}, {speed}]"
_UNKNOWN = "{desc} {size} [{elapsed}, {speed}]"


@contextlib.contextmanager
def transfer_progress(total: int | None, label: str, finishing: str, force: bool) -> Iterator[Progress | None]:
    """Yield the ``progress`` callback of a copy of ``total`` bytes (None: nobody is watching, or it is small).

    The bar counts what the broker reports; once every byte is across it says ``LABEL FINISHING`` (e.g.
    ``verifying``, ``committing``) until the broker returns, instead of sitting at 100 % in silence.

    Args:
        total: Bytes to copy (None: unknown, e.g. a pipe).
        label: What is copied (shown first).
        finishing: The phase after the last byte (``committing`` for uploads, ``verifying`` for downloads).
        force: Show the bar whatever the size and even when stderr is not a terminal (``--progress``).
    """
    if not force and not (sys.stderr.isatty() and (total or 0) >= PROGRESS_THRESHOLD):
        yield None
        return
    bar = _bar_class()(total=total or None, desc=label, file=sys.stderr, bar_format=_KNOWN if total else _UNKNOWN,
                       dynamic_ncols=True)
    lock = threading.Lock()
    waiting = bool(total)  # with a known total, the finishing phase starts at its last byte
    if total == 0:
        bar.set_description_str(f"{label} {finishing}")

    def progress(count: int) -> None:
        nonlocal waiting
        with lock:  # parts of one upload report from several threads
            bar.update(count)
            if waiting and bar.n >= bar.total:
                waiting = False
                bar.set_description_str(f"{label} {finishing}")

    try:
        yield progress
        with lock:
            bar.set_description_str(label, refresh=False)
    finally:
        bar.close()


def add_command(sub: Any, name: str, help_text: str, *, config: bool = True) -> argparse.ArgumentParser:
    """Add a subcommand; with ``config`` it takes the workspace configuration file first."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text,
                                                     epilog=EXIT_STATUS_HELP,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if config:
        parser.add_argument("config", help="workspace configuration JSON file ('-' for stdin)")
    return parser
