"""``brokers worker``: run workspace jobs from a shared queue, on any machine that reaches the registry.

Usage::

    brokers worker --queue redis://HOST:PORT/N --database-url postgresql://... [--job-workers N]
                   [--secret-key KEY] [--s3-endpoint-allow PATTERN ...] [--nfs-server-allow HOST ...]

The registry (the database) is the record of every job; the queue carries their ids. A worker claims a job with
a lease it renews while the job runs, so a job runs once at a time however many workers get its message, and
the job of a worker that died is retried when its lease expires. SIGINT/SIGTERM stop the worker: running jobs
stop at a safe point and go back to the queue.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .serve import add_common_arguments, require_service_dependencies, settings_from_args

__all__ = ["build_parser", "main"]

DESCRIPTION = "Run workspace jobs from the job queue (Redis, or the embedded SQLite file on this machine)."


def build_parser(prog: str = "brokers worker") -> argparse.ArgumentParser:
    """Return the argument parser of ``brokers worker``."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_common_arguments(parser, default_workers=4)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``brokers worker`` (``argv`` without the ``worker`` word); returns the exit status.

    Raises:
        MissingDependency: The ``service`` extra is not installed.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--"]:
        args_list = args_list[1:]
    args = build_parser().parse_args(args_list)
    require_service_dependencies()
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"brokers worker: {exc}", file=sys.stderr)
        return 2
    if settings.job_workers < 1:
        print("brokers worker: --job-workers must be at least 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        force=True)
    from .app import job_settings
    from .db import make_engine, make_sessions, upgrade
    from .jobs.system import JobSystem
    from .security import SecretBox
    from .settings import hide_password
    from .store.users import ensure_service_user

    engine = make_engine(settings.url)
    upgrade(engine)
    sessions = make_sessions(engine)
    with sessions() as session, session.begin():
        actor = ensure_service_user(session)
    jobs = JobSystem(sessions, SecretBox(settings.secret_keys), settings.access_policy, actor,
                     job_settings(settings, serving=False))
    logging.getLogger(__name__).info("worker on %s: %d jobs at once from %s", hide_password(settings.url),
                                     settings.job_workers, jobs.describe())
    try:
        jobs.consume()
    finally:
        engine.dispose()
    return 0
