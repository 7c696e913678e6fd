"""``brokers validate``: check a workspace configuration (exit 0 valid, 1 invalid)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import IO, Any

from ..registry import validate_configuration
from .common import UsageError, add_command

__all__ = ["cmd_validate", "register"]


def cmd_validate(args: argparse.Namespace, out: IO[str]) -> int:
    """Print ``valid``/``invalid`` with every error and warning (or the JSON response)."""
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


def register(sub: Any) -> None:
    """Add ``validate``."""
    p = add_command(sub, "validate", "validate a workspace configuration (exit 0 valid, 1 invalid)", config=False)
    p.add_argument("file", help="configuration JSON file ('-' for stdin)")
    p.add_argument("--previous", help="the configuration it replaces (warns on a broker type change)")
    p.add_argument("--json", action="store_true", help="print the {is_valid, errors, warnings} response")
    p.add_argument("--offline", action="store_true", help="do not try to reach the store")
    p.set_defaults(run=cmd_validate)
