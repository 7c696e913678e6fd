"""``brokers validate``: check a workspace configuration (exit 0 valid, 1 invalid, 3 unreachable)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, Any

from ..config.source import SourceError, read_source
from ..registry import validate_configuration
from .common import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, UsageError, add_command

__all__ = ["CONFIGURATION_WARNINGS", "cmd_validate", "register"]

CONFIGURATION_WARNINGS = frozenset({"broker_type", "inline_credentials"})
"""Warnings about the configuration itself. Every other warning says the workspace cannot be reached from this
machine (``bucket_access``, ``host_path_missing``, ``host_path_not_mounted``, a third-party type's own), which
``--check-access`` turns into a failure."""


def cmd_validate(args: argparse.Namespace, out: IO[str]) -> int:
    """Print ``valid``/``invalid``/``unreachable`` with every error and warning (or the JSON response)."""
    config: object = sys.stdin.read() if args.file == "-" else Path(args.file)
    previous: object = None
    if args.previous is not None:
        try:
            previous = read_source(Path(args.previous))
        except SourceError as exc:
            raise UsageError(f"--previous: {exc}" if exc.item["name"] != "unreadable_file" else str(exc)) from None
    result = validate_configuration(config, previous=previous, check_access=not args.offline)
    unreadable = [e for e in result.errors if e["name"] == "unreadable_file"]
    if unreadable:  # no configuration to judge: the same usage error as every other command gives
        raise UsageError(unreadable[0]["description"])
    unreachable = args.check_access and any(w["name"] not in CONFIGURATION_WARNINGS for w in result.warnings)
    if args.json:
        out.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        out.write("unreachable\n" if unreachable else "valid\n" if result.is_valid else "invalid\n")
        for kind, items in (("error", result.errors), ("warning", result.warnings)):
            for item in items:
                out.write(f"  {kind} {item['name']} at {item['path'] or '/'}: {item['description']}\n")
    if not result.is_valid:
        return EXIT_FAILED
    return EXIT_UNREACHABLE if unreachable else EXIT_OK


def register(sub: Any) -> None:
    """Add ``validate``."""
    p = add_command(sub, "validate", "validate a workspace configuration (exit 0 valid, 1 invalid, 3 unreachable "
                    "with --check-access)", config=False)
    p.add_argument("file", help="configuration JSON file ('-' for stdin)")
    p.add_argument("--previous", metavar="OLD", help="the configuration it replaces (warns on a broker type change)")
    p.add_argument("--json", action="store_true", help="print the {is_valid, errors, warnings} response")
    reach = p.add_mutually_exclusive_group()
    reach.add_argument("--offline", action="store_true", help="do not try to reach the store")
    reach.add_argument("--check-access", action="store_true",
                       help="fail (exit 3, 'unreachable') when the store or host_path cannot be reached from here; "
                            "without it such warnings are printed and the configuration is still valid")
    p.set_defaults(run=cmd_validate)
