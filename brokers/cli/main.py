"""The ``brokers`` command: validate configurations and work with a workspace's files.

Every command except ``validate``, ``serve``, ``worker`` and ``users`` takes the workspace configuration file
first. Workspace paths are written ``ws:PATH`` where a command also accepts local paths (``cp``). Every error is
one line on stderr, ``brokers CMD: what went wrong``, never a traceback; the exit statuses are
:data:`~.common.EXIT_STATUS_HELP`.

One module per command group: :mod:`~brokers.cli.config` (validate), :mod:`~brokers.cli.files` (ls, cat, cp,
mv, rm), :mod:`~brokers.cli.usage` (du, volume), :mod:`~brokers.cli.serve` (serve, worker), :mod:`~brokers.cli.users`
(users add, list, revoke).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import BrokerError, InvalidConfiguration
from . import config, files, serve, usage, users
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_STATUS_HELP, EXIT_USAGE, Parser, UsageError

__all__ = ["build_parser", "main"]

log = logging.getLogger("brokers.cli")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``brokers`` command."""
    parser = Parser(prog="brokers", description="Work with host, NFS and S3 workspaces.", epilog=EXIT_STATUS_HELP,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"brokers {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (secrets are never logged)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in (config, files, usage, serve, users):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``brokers`` command; return its exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] in (["serve"], ["worker"]):  # a REMAINDER argument does not take leading options
        args_list = [args_list[0], "--", *args_list[1:]]
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(args_list)
    except UsageError as exc:
        return _fail(exc.prog or "brokers", str(exc), EXIT_USAGE)
    prog = f"brokers {args.command}"
    if extra:
        return _fail(prog, f"unrecognized arguments: {' '.join(extra)}", EXIT_USAGE)
    missing = _unfilled(parser, args)
    if missing:
        return _fail(prog, f"the following arguments are required: {', '.join(missing)}", EXIT_USAGE)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format=f"{prog}: %(message)s")
    try:
        status: int = args.run(args, sys.stdout)
        sys.stdout.flush()
        return status
    except UsageError as exc:
        return _fail(exc.prog or prog, str(exc), EXIT_USAGE)
    except InvalidConfiguration as exc:  # missing, unreadable or invalid: the command cannot start
        unreadable = [e["description"] for e in exc.errors if e["name"] == "unreadable_file"]
        return _fail(prog, unreadable[0] if unreadable else str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail(prog, "interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:  # the reader went away (`brokers cat ... | head`): nothing to say
        _silence_stdout()
        return EXIT_FAILED
    except (BrokerError, OSError, ValueError) as exc:
        return _fail(prog, _one_line(exc), EXIT_FAILED)
    except Exception as exc:  # a bug: still one line; -v shows where
        log.debug("%s failed", prog, exc_info=True)
        return _fail(prog, f"unexpected error ({type(exc).__name__}: {_one_line(exc)}); -v shows the traceback",
                     EXIT_FAILED)


def _unfilled(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """Positional arguments argparse left as ``[]`` (it does so after a second ``--``, e.g. ``cp CFG ws:a -- --``)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    chosen = sub.choices[args.command]
    return [a.dest for a in chosen._actions if not a.option_strings and a.nargs is None
            and getattr(args, a.dest, None) == []]


def _fail(prog: str, message: str, status: int) -> int:
    """Print the one line (control characters of a path or argument escaped, as ``repr`` shows them)."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    sys.stderr.write(f"{prog}: {shown}\n")
    return status


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit does not raise the broken pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no real file (a test's capture): nothing is flushed at exit
        pass


def _one_line(exc: BaseException) -> str:
    """The message of an error (an OS error: ``path: reason``); :func:`_fail` escapes what would break the line."""
    text = str(exc) if not isinstance(exc, OSError) or not exc.strerror else (
        f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror)
    return text[:1000] or type(exc).__name__
