"""A usage scan split over the workers: one part per top-level folder, each sent as a task on the queue.

The scan that splits (the *parent*) writes one ``workspace_job_part`` row per folder and sends their ids. Any
worker claims a part the way a job is claimed (a conditional update setting its lease), lists that folder and
writes its tally. The parent does not only wait: it claims waiting parts itself, and takes over a part whose
lease expired (its worker died), so a scan always ends, even with one worker. A part renews its lease while
its listing goes on, and writes its tally only while the lease is its own.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from brokers.core.broker import Broker

from ..db import writing
from ..db.models import Job, JobPart, utcnow
from .context import JobContext, LeaseLost

__all__ = ["PartLost", "claim_part", "release_part", "run_part", "split_scan"]


class PartLost(Exception):
    """Another worker owns the part now."""


def claim_part(sessions: sessionmaker[Session], lease: str, worker: str, seconds: float, *,
               part_id: int | None = None, job_id: int | None = None) -> JobPart | None:
    """Take a part (this one, or any claimable part of ``job_id``): waiting, or running with an expired lease.

    A part of a job that is no longer running is never taken.
    """
    now = utcnow()
    claimable = or_(JobPart.status == "waiting", (JobPart.status == "running") & (JobPart.lease_expires < now))
    running = select(Job.id).where(Job.status == "running")
    with writing(sessions) as session:
        query = select(JobPart.id).where(claimable, JobPart.job_id.in_(running))
        query = query.where(JobPart.id == part_id) if part_id is not None else query.where(JobPart.job_id == job_id)
        chosen = session.scalar(query.order_by(JobPart.id).limit(1))
        if chosen is None:
            return None
        taken = session.execute(update(JobPart).where(JobPart.id == chosen, claimable).values(
            status="running", lease=lease, lease_expires=now + timedelta(seconds=seconds), worker=worker)
            .execution_options(synchronize_session=False))
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return session.get(JobPart, chosen, populate_existing=True)


def _renew(sessions: sessionmaker[Session], part: JobPart, seconds: float) -> None:
    with sessions() as session, session.begin():
        done = session.execute(update(JobPart).where(JobPart.id == part.id, JobPart.lease == part.lease)
                               .values(lease_expires=utcnow() + timedelta(seconds=seconds))
                               .execution_options(synchronize_session=False))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise PartLost


def run_part(sessions: sessionmaker[Session], part: JobPart, broker: Broker, seconds: float,
             check: Callable[[], None] = lambda: None) -> None:
    """List one folder and store its tally, renewing the lease on the way (``check``: the parent's safe point).

    Raises:
        PartLost: The lease went to another worker (nothing is written).
    """
    used = files = 0
    renewed = time.monotonic()
    for info in broker.list(part.folder):
        used += info.size
        files += 1
        if files % 1000 == 0:
            check()
            if time.monotonic() - renewed > seconds / 3:
                _renew(sessions, part, seconds)
                renewed = time.monotonic()
    with sessions() as session, session.begin():
        done = session.execute(update(JobPart).where(JobPart.id == part.id, JobPart.lease == part.lease)
                               .values(status="done", used_size=used, file_count=files, lease=None)
                               .execution_options(synchronize_session=False))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise PartLost


def release_part(sessions: sessionmaker[Session], part: JobPart) -> None:
    """Give a part that failed on this worker back to its scan, which runs it itself (failing if it fails again)."""
    with sessions() as session, session.begin():
        session.execute(update(JobPart).where(JobPart.id == part.id, JobPart.lease == part.lease)
                        .values(status="waiting", lease=None, lease_expires=None)
                        .execution_options(synchronize_session=False))


def split_scan(sessions: sessionmaker[Session], send: Callable[[list[int]], None], ctx: JobContext,
               broker: Broker, folders: list[str], *, worker: str, seconds: float,
               poll: float = 0.05) -> dict[str, tuple[int, int]]:
    """Scan ``folders`` as parts on the queue, taking part in the work; return ``{folder: (bytes, files)}``.

    Raises:
        JobCanceled, JobInterrupted, LeaseLost: At a safe point (between parts, or every 1,000 files).
    """
    with writing(sessions) as session:
        rows = [JobPart(job_id=ctx.job_id, folder=folder, status="waiting") for folder in folders]
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]
    send(ids)
    lease = uuid.uuid4().hex
    while True:
        ctx.check()
        part = claim_part(sessions, lease, worker, seconds, job_id=ctx.job_id)
        if part is not None:
            with contextlib.suppress(PartLost):  # taken over meanwhile: its new owner finishes it
                run_part(sessions, part, broker, seconds, ctx.check)
            continue
        with sessions() as session:
            parts = list(session.scalars(select(JobPart).where(JobPart.job_id == ctx.job_id)))
        if not parts:
            raise LeaseLost  # the job's record is gone
        if all(p.status == "done" for p in parts):
            return {p.folder: (int(p.used_size or 0), int(p.file_count or 0)) for p in parts}
        time.sleep(poll)
