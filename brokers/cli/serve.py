"""``brokers serve`` and ``brokers worker``: the workspace service and its job workers.

Their options are the service's own (``brokers serve -h``, ``brokers worker -h``).
"""

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


def cmd_worker(args: argparse.Namespace, out: IO[str]) -> int:
    """Hand the rest of the command line to the job worker."""
    try:
        from ..service.worker import main
    except ImportError as exc:
        raise MissingDependency(f"the worker needs its extra: pip install 'brokers[service]' ({exc.name})") from exc
    status: int = main(args.rest)
    return status


def register(sub: Any) -> None:
    """Add ``serve`` and ``worker`` (every option after them belongs to the service)."""
    p = sub.add_parser("serve", help="run the workspace HTTP service (needs brokers[service])", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(run=cmd_serve)
    w = sub.add_parser("worker", help="run workspace jobs from the job queue (needs brokers[service])",
                       add_help=False)
    w.add_argument("rest", nargs=argparse.REMAINDER)
    w.set_defaults(run=cmd_worker)
