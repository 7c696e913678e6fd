"""``brokers serve``: run the workspace service with uvicorn.

Usage::

    brokers serve [--host 127.0.0.1] [--port 8000] [--database-url URL] [--token TOKEN ...] [--public-reads]
                  [--secret-key KEY] [--usage-interval S] [--s3-endpoint-allow PATTERN ...]
                  [--s3-ambient-credentials] [--nfs-server-allow HOST ...] [--high-disk-usage PERCENT]
                  [--queue URL] [--job-workers N] [--job-lease S] [--job-attempts N] [--job-resend S]
                  [--smtp-url URL]

Tokens also come from ``BROKERS_SERVICE_TOKENS`` (comma-separated; preferred, as command lines are visible to
other users), the secret key from ``BROKERS_SECRET_KEY`` (comma-separated for rotation: the first encrypts), the
database URL from ``BROKERS_DATABASE_URL``, the job queue from ``BROKERS_QUEUE_URL``, the SMTP server from
``BROKERS_SMTP_URL``, endpoint patterns from ``BROKERS_S3_ENDPOINT_ALLOW`` and NFS
servers from ``BROKERS_NFS_SERVER_ALLOW`` (comma-separated, added to the options). Without a database URL the
service keeps a SQLite file at ``$XDG_DATA_HOME/brokers/brokers.db`` (``~/.local/share/brokers/brokers.db``).

The service validates and measures configurations its users wrote, so it contacts no S3 ``endpoint_url`` unless
a pattern allows it (``scheme://host[:port]``; ``host`` may be ``*.domain`` or ``*``, ``port`` ``*``; no port:
80 or 443), and never signs a request with its own AWS identity unless ``--s3-ambient-credentials`` says so:
without keys in the configuration, requests go unsigned. Likewise it connects to no NFS server itself (direct mode
speaks as the service's own uid and gid) unless ``--nfs-server-allow`` names it; exports mounted on its machine
are used as they are.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from brokers.config import AccessPolicy
from brokers.errors import MissingDependency

from . import EXTRA_HINT
from .settings import Settings, check_queue_url, check_smtp_url, default_database_url

__all__ = ["add_serve_command", "build_parser", "main", "require_service_dependencies", "settings_from_args"]

_MODULES = ("fastapi", "uvicorn", "sqlalchemy", "alembic", "cryptography")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_service_dependencies() -> None:
    """Raise :class:`~brokers.errors.MissingDependency` if the ``service`` extra is not installed."""
    missing = [m for m in _MODULES if not _installed(m)]
    if missing:
        raise MissingDependency(f"brokers serve needs {', '.join(missing)}: {EXTRA_HINT}")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _argument(check: Callable[[str], object]) -> Callable[[str], str]:
    """Return the argparse type that runs ``check`` on the text (its ValueError: exit 2 with its message)."""
    def checked(text: str) -> str:
        try:
            check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return checked


_endpoint_pattern = _argument(lambda text: AccessPolicy(endpoint_allow=(text,)))
_nfs_server_pattern = _argument(lambda text: AccessPolicy(nfs_server_allow=(text,)))


DESCRIPTION = "Run the workspace service (the Scale v5, v6/v7 and workspace-management REST APIs)."


def _percent(text: str) -> float:
    """Parse a percentage in (0, 100] (bad: exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage in (0, 100]")
    return value


def _positive(text: str) -> float:
    """Parse a number of seconds > 0 (bad: exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


_queue_url = _argument(check_queue_url)
_smtp_url = _argument(check_smtp_url)


def add_common_arguments(parser: argparse.ArgumentParser, *, default_workers: int) -> None:
    """Add what ``brokers serve`` and ``brokers worker`` share: the registry, secrets, reach, the job queue."""
    parser.add_argument("--database-url", default=os.environ.get("BROKERS_DATABASE_URL"),
                        help=f"SQLAlchemy URL, e.g. postgresql://user@host/db (default: {default_database_url()})")
    parser.add_argument("--secret-key", default=None, metavar="KEY",
                        help="Fernet key encrypting S3 secrets at rest (also BROKERS_SECRET_KEY)")
    parser.add_argument("--s3-endpoint-allow", action="append", default=[], metavar="PATTERN", type=_endpoint_pattern,
                        help="an S3 endpoint_url the service may contact, as scheme://host[:port] (host may be "
                             "*.domain or *, port *; no port: 80/443); repeatable; also BROKERS_S3_ENDPOINT_ALLOW. "
                             "Default: no custom endpoint (AWS only)")
    parser.add_argument("--s3-ambient-credentials", action="store_true",
                        help="sign requests of S3 configurations without keys with the service's own AWS identity "
                             "(default: they go unsigned)")
    parser.add_argument("--nfs-server-allow", action="append", default=[], metavar="HOST", type=_nfs_server_pattern,
                        help="an NFS server the service may connect to itself (direct mode): a host name, an IP, "
                             "*.domain or *; repeatable; also BROKERS_NFS_SERVER_ALLOW. Default: none (mounted "
                             "exports are always used)")
    parser.add_argument("--queue", default=os.environ.get("BROKERS_QUEUE_URL"), metavar="URL", type=_queue_url,
                        help="the job queue: redis://HOST:PORT/N for workers on several machines (also "
                             "BROKERS_QUEUE_URL); default: a SQLite file queue.db in the data folder")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="the data folder (the embedded queue); default: the SQLite database's folder, else "
                             "$XDG_DATA_HOME/brokers")
    parser.add_argument("--job-workers", type=int, default=default_workers, metavar="N",
                        help=f"jobs run at once in this process (default {default_workers}"
                             + ("; 0: only send them to brokers worker processes)" if default_workers == 2 else ")"))
    parser.add_argument("--job-lease", type=_positive, default=30.0, metavar="SECONDS",
                        help="a job whose worker stopped renewing its lease this long is retried (default 30)")
    parser.add_argument("--job-attempts", type=int, default=3, metavar="N",
                        help="runs a job gets when its workers keep dying (default 3)")
    parser.add_argument("--job-resend", type=_positive, default=60.0, metavar="SECONDS",
                        help="a waiting job whose message is older than this is sent again: the queue lost it "
                             "(default 60)")
    parser.add_argument("--smtp-url", default=os.environ.get("BROKERS_SMTP_URL"), metavar="URL", type=_smtp_url,
                        help="smtp://[USER:PASSWORD@]HOST[:PORT] (or smtps://) for job notification mails (also "
                             "BROKERS_SMTP_URL, preferred when it holds a password)")
    parser.add_argument("--mail-from", default="brokers@localhost", metavar="ADDRESS",
                        help="the From address of notification mails (default brokers@localhost)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--token", action="append", default=[], metavar="TOKEN",
                        help="an access token for X-Access-Token (repeatable; also BROKERS_SERVICE_TOKENS)")
    parser.add_argument("--public-reads", action="store_true", help="let reads through without a token")
    parser.add_argument("--usage-interval", type=float, default=300.0, metavar="SECONDS",
                        help="give each workspace a usage scan (a job) this often (default 300; 0: never)")
    parser.add_argument("--high-disk-usage", type=_percent, default=90.0, metavar="PERCENT",
                        help="the management API reports high_disk_usage: 1 above this share of total_size "
                             "(default 90)")
    add_common_arguments(parser, default_workers=2)


def build_parser(prog: str = "brokers serve") -> argparse.ArgumentParser:
    """Return the argument parser of ``brokers serve``."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    _add_arguments(parser)
    return parser


def add_serve_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to a CLI's subcommands; the parsed namespace carries ``func=run``."""
    parser = subparsers.add_parser("serve", help="run the workspace service",
                                   description=DESCRIPTION)
    _add_arguments(parser)
    parser.set_defaults(func=run)


def _from_environment(name: str, check: Callable[[str], str]) -> tuple[str, ...]:
    """Return the comma-separated patterns of an environment variable, each checked.

    Raises:
        ValueError: A pattern is not valid (the message names the variable).
    """
    try:
        return tuple(check(p) for p in _split(os.environ.get(name)))
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"{name}: {exc}") from None


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Build :class:`Settings` from parsed arguments and the environment."""
    tokens = tuple(getattr(args, "token", ())) + _split(os.environ.get("BROKERS_SERVICE_TOKENS"))  # worker: none
    keys = _split(args.secret_key) or _split(os.environ.get("BROKERS_SECRET_KEY"))
    allow = tuple(args.s3_endpoint_allow) + _from_environment("BROKERS_S3_ENDPOINT_ALLOW", _endpoint_pattern)
    servers = tuple(args.nfs_server_allow) + _from_environment("BROKERS_NFS_SERVER_ALLOW", _nfs_server_pattern)
    serving = {"tokens": tokens, "public_reads": args.public_reads, "usage_interval": args.usage_interval,
               "high_disk_usage": args.high_disk_usage / 100} if hasattr(args, "token") else {"usage_interval": 0.0}
    return Settings(database_url=args.database_url, secret_keys=keys, s3_endpoint_allow=allow,
                    s3_ambient_credentials=args.s3_ambient_credentials, nfs_server_allow=servers,
                    queue_url=args.queue or None, job_workers=args.job_workers, job_lease=args.job_lease,
                    job_heartbeat=min(0.5, args.job_lease / 3), job_attempts=args.job_attempts,
                    job_resend=args.job_resend,
                    smtp_url=args.smtp_url or None, mail_from=args.mail_from,
                    data_dir=Path(args.data_dir) if args.data_dir else None, **serving)


def run(args: argparse.Namespace) -> int:
    """Run the service until interrupted; return the exit status.

    Raises:
        MissingDependency: The ``service`` extra is not installed.
    """
    require_service_dependencies()
    try:
        settings = settings_from_args(args)
    except ValueError as exc:  # a bad pattern in an environment variable (options are checked by argparse)
        print(f"brokers serve: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from .app import create_app

    # force: the ``brokers`` command has set up its own logging (WARNING) before handing over to the service
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        force=True)
    app = create_app(settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, proxy_headers=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``brokers serve`` (``argv`` without the ``serve`` word).

    Raises:
        MissingDependency: The ``service`` extra is not installed.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:  # what a CLI passes to keep argparse from taking our options for its own
        args = args[1:]
    return run(build_parser().parse_args(args))
