"""``brokers users add/list/revoke``: the workspace service's users and their tokens (needs brokers[service]).

Each command migrates the database first (as the service does when it starts). ``add`` prints the new token on
stdout, alone, the only time it is known: the database keeps its SHA-256. ``list`` never shows a token or digest.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from ..errors import MissingDependency
from ..service import EXTRA_HINT
from .common import EXIT_OK, Parser, add_command

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["register"]


@contextmanager
def _session(url: str | None) -> Iterator[Session]:
    """A transaction on the migrated database (the built-in ``service`` user in place), closed after.

    Raises:
        MissingDependency: The service extra is not installed.
        ValueError: The database cannot be reached or used, or the store refused (its message, one line).
    """
    try:
        from sqlalchemy.exc import ArgumentError, SQLAlchemyError

        from ..service.db import make_engine, make_sessions, upgrade, writing
        from ..service.problems import ApiError
        from ..service.settings import default_database_url, hide_password, normalize_database_url
        from ..service.store.users import ensure_service_user
    except ImportError as exc:
        raise MissingDependency(f"users live in the service's database, which needs its extra: {EXTRA_HINT} "
                                f"({exc.name})") from exc
    target = normalize_database_url(url or default_database_url())
    where = f"cannot use the database {hide_password(target)}"
    try:
        engine = make_engine(target)
    except ArgumentError:  # its message repeats the URL, password included
        raise ValueError(f"{where}: not a database URL (sqlite:///PATH, postgresql://USER@HOST/DB)") from None
    try:
        upgrade(engine)
        with writing(make_sessions(engine)) as session:
            ensure_service_user(session)
            yield session
    except ApiError as exc:
        raise ValueError(exc.detail) from None
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise ValueError(f"{where}: {reason[0] if reason else type(exc).__name__}") from None
    finally:
        engine.dispose()


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="seconds")


def cmd_add(args: argparse.Namespace, out: IO[str]) -> int:
    """Create a user; print its token (stdout, alone) and where it was added (stderr)."""
    with _session(args.database_url) as session:
        from ..service.store.users import add_user

        user, token = add_user(session, args.name, admin=args.admin)
        shown = f"user {user.name!r} (id {user.id}{', admin' if user.is_admin else ''})"
    out.write(token + "\n")
    out.flush()  # the token first, then the note, in a terminal that shows both
    sys.stderr.write(f"brokers users: added {shown}; its token is shown only this once "
                     "(send it as X-Access-Token)\n")
    return EXIT_OK


def cmd_list(args: argparse.Namespace, out: IO[str]) -> int:
    """Print every user: id, name, admin, created, revoked (never a token or its digest)."""
    with _session(args.database_url) as session:
        from ..service.store.users import list_users

        table = [(str(u.id), u.name, "yes" if u.is_admin else "no", _when(u.created), _when(u.revoked))
                 for u in list_users(session)]
    table.insert(0, ("id", "name", "admin", "created", "revoked"))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
    return EXIT_OK


def cmd_revoke(args: argparse.Namespace, out: IO[str]) -> int:
    """Revoke a user's token (it stops working at once; what the user did stays theirs)."""
    with _session(args.database_url) as session:
        from ..service.store.users import revoke_user

        user = revoke_user(session, args.name)
        shown = f"user {user.name!r} (id {user.id})"
    out.write(f"revoked {shown}: its token no longer works\n")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``users`` with its ``add``, ``list`` and ``revoke`` commands."""
    parser = add_command(sub, "users", "manage the workspace service's users and their access tokens "
                         "(needs brokers[service])", config=False)
    database = Parser(add_help=False)
    database.add_argument("--database-url", default=os.environ.get("BROKERS_DATABASE_URL") or None,
                          help="the service's database (default: BROKERS_DATABASE_URL, else the SQLite file "
                               "brokers serve uses)")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=Parser, metavar="ACTION")
    commands: list[tuple[str, str, Callable[[argparse.Namespace, IO[str]], int]]] = [
        ("add", "add a user and print its token, once", cmd_add),
        ("list", "list the users (id, name, admin, created, revoked)", cmd_list),
        ("revoke", "revoke a user's token, at once", cmd_revoke),
    ]
    for name, help_text, run in commands:
        action = actions.add_parser(name, help=help_text, description=help_text, parents=[database])
        if name != "list":
            action.add_argument("name", help="the user's name")
        if name == "add":
            action.add_argument("--admin", action="store_true", help="may change every workspace")
        action.set_defaults(run=run)
