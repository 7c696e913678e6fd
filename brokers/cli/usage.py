"""``brokers du`` and ``volume``: a workspace's size, and how a job mounts it."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import IO, Any

from ..errors import BrokerError, WorkspaceNotFound
from .common import add_command, human_size, non_empty, open_broker

__all__ = ["register"]


def cmd_du(args: argparse.Namespace, out: IO[str]) -> int:
    """Print used, total and free size (or the JSON usage)."""
    usage = open_broker(args.config).usage()
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
    """Print how a job mounts the workspace (docker, Kubernetes or mount)."""
    broker = open_broker(args.config)
    volume = broker.volume
    if volume is None:
        raise BrokerError(f"this {broker.broker_type} workspace has no host_path: there is no volume to mount")
    if volume.kind == "bind" and not os.path.isdir(volume.source):  # a bind of nothing: docker and Kubernetes refuse
        raise WorkspaceNotFound(volume.source)
    if args.docker is not None:
        out.write(f"--mount {volume.docker_mount(args.docker)}\n")
    elif args.kubernetes is not None:
        out.write(json.dumps(volume.kubernetes_volume(args.kubernetes), indent=2) + "\n")
    else:
        out.write(" ".join(volume.mount_argv(args.mount)) + "\n")
    return 0


def register(sub: Any) -> None:
    """Add ``du`` and ``volume``."""
    p = add_command(sub, "du", "used, total and free size")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--bytes", action="store_true", help="exact byte counts instead of human sizes")
    p.set_defaults(run=cmd_du)

    p = add_command(sub, "volume", "how a job mounts the workspace")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--docker", metavar="TARGET", type=non_empty,
                       help="a docker run --mount option mounting at TARGET")
    which.add_argument("--kubernetes", metavar="NAME", type=non_empty, help="a Kubernetes pod volume named NAME")
    which.add_argument("--mount", metavar="TARGET", type=non_empty, help="the mount command line for this machine")
    p.set_defaults(run=cmd_volume)
