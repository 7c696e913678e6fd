"""``brokers serve``: run the workspace service (its options are the service's own, see ``brokers serve -h``)."""

from __future__ import annotations

import argparse
from typing import IO, Any

from ..errors import MissingDependency

__all__ = ["register"]


def cmd_serve(args: argparse.Namespace, out: IO[str]) -> int:
    """Hand the rest of the command line to the service."""
    try:
        from ..service.serve import main
    except ImportError as exc:  # the service's modules import only the standard library until it starts
        raise MissingDependency(f"the service needs its extra: pip install 'brokers[service]' ({exc.name})") from exc
    status: int = main(args.rest)
    return status


def register(sub: Any) -> None:
    """Add ``serve`` (every option after it belongs to the service)."""
    p = sub.add_parser("serve", help="run the workspace HTTP service (needs brokers[service])", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(run=cmd_serve)
