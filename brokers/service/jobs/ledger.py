"""A job's way through its statuses, written so that no job runs twice at once whoever holds a message.

A worker **claims** a waiting job with a conditional update (``WHERE status = 'waiting'``) that sets a lease
token of its own and an expiry; it **renews** the lease while it runs (``WHERE lease = mine``) and **ends** the
job the same way. A second message for the same job finds it claimed and does nothing. A worker that stopped
renewing (it died) loses the job when the lease expires: the job waits again for another try, or ends in
``error`` after ``max_attempts``; either way a log line says so. A worker that was merely slow finds its lease
gone at its next renewal and stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..db import writing
from ..db.models import Job, JobLog, Workspace, utcnow
from ..store.jobs import log, mark, record

__all__ = ["Claim", "claim", "end", "expire_leases", "mark_dispatched", "release", "renew", "undelivered"]


@dataclass(frozen=True)
class Claim:
    """A job a worker holds: what it needs to run it."""

    job_id: int
    lease: str
    kind: str
    settings: dict[str, Any]
    workspace_id: int
    configuration: str | None
    attempt: int


def claim(sessions: sessionmaker[Session], job_id: int, lease: str, worker: str, seconds: float) -> Claim | None:
    """Take a waiting job for this worker; None if it is not waiting (taken, ended, canceled, gone)."""
    now = utcnow()
    with writing(sessions) as session:
        taken = session.execute(
            update(Job).where(Job.id == job_id, Job.status == "waiting")
            .values(status="running", lease=lease, lease_expires=now + timedelta(seconds=seconds), worker=worker,
                    started=now, attempts=Job.attempts + 1)
            .execution_options(synchronize_session=False))
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
        job = session.get(Job, job_id, populate_existing=True)
        assert job is not None
        mark(job, "running", now)
        job.progress = None
        record(session, job)
        log(session, job.id, "info", f"started on {worker}" + (f" (attempt {job.attempts})" if job.attempts > 1
                                                                else ""))
        ws = session.get(Workspace, job.workspace_id)
        return Claim(job_id=job.id, lease=lease, kind=job.kind, settings=dict(job.settings or {}),
                     workspace_id=job.workspace_id, configuration=None if ws is None else ws.configuration,
                     attempt=job.attempts)


def _write_lines(session: Session, job_id: int, lines: list[tuple[str, str]]) -> None:
    session.add_all(JobLog(job_id=job_id, level=level, text=text) for level, text in lines)


def renew(sessions: sessionmaker[Session], job_id: int, lease: str, seconds: float,
          progress: dict[str, int] | None, lines: list[tuple[str, str]]) -> bool | None:
    """Extend the lease, store the progress and new log lines.

    Returns:
        Whether a cancel was asked for; None if the lease is no longer this worker's.
    """
    with sessions() as session, session.begin():
        values: dict[str, Any] = {"lease_expires": utcnow() + timedelta(seconds=seconds)}
        if progress is not None:
            values["progress"] = progress
        done = session.execute(update(Job).where(Job.id == job_id, Job.lease == lease).values(**values)
                               .execution_options(synchronize_session=False))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return None
        _write_lines(session, job_id, lines)
        return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def end(sessions: sessionmaker[Session], claim: Claim, status: str, stats: dict[str, Any],
        progress: dict[str, int] | None, lines: list[tuple[str, str]]) -> Job | None:
    """End a held job (``finished``, ``error`` or ``canceled``), note the workspace's last run.

    Returns:
        The ended job, or None if the lease was lost meanwhile (another worker owns the job: nothing is written).
    """
    with writing(sessions) as session:
        # The workspace first, then the job: the order in which deleting a workspace (its jobs cascade) locks
        # them, so that the two never wait for each other (a deadlock on PostgreSQL).
        ws = session.get(Workspace, claim.workspace_id, with_for_update=True)
        job = session.get(Job, claim.job_id, populate_existing=True, with_for_update=True)
        if job is None or job.lease != claim.lease or job.status != "running":
            return None
        job.stats = {**(job.stats or {}), **stats}
        mark(job, status)
        job.progress = progress
        job.lease = None
        job.lease_expires = None
        _write_lines(session, job.id, lines)
        record(session, job)
        if ws is not None and job.started is not None and job.ended is not None:
            ws.last_run = job.started
            ws.last_run_duration = round((job.ended - job.started).total_seconds())
        return job


def release(sessions: sessionmaker[Session], claim: Claim, lines: list[tuple[str, str]], why: str) -> bool:
    """Give a held job back to the queue (the worker is shutting down); True if it was still this worker's."""
    with writing(sessions) as session:
        job = session.get(Job, claim.job_id, populate_existing=True, with_for_update=True)
        if job is None or job.lease != claim.lease or job.status != "running":
            return False
        mark(job, "waiting")
        job.lease = job.lease_expires = job.dispatched = None
        job.attempts = max(job.attempts - 1, 0)  # an interrupted run is not a failed attempt
        _write_lines(session, job.id, [*lines, ("warning", why)])
        record(session, job)
        return True


def expire_leases(sessions: sessionmaker[Session], max_attempts: int, now: datetime | None = None) -> list[int]:
    """Take running jobs back from workers that stopped renewing their lease.

    Returns:
        The ids of the jobs waiting again (to be sent to the queue); the others ended in ``error``.
    """
    now = now or utcnow()
    with sessions() as session:
        expired = list(session.scalars(select(Job.id).where(Job.status == "running", Job.lease_expires < now)))
    again: list[int] = []
    for job_id in expired:
        with writing(sessions) as session:
            job = session.get(Job, job_id, populate_existing=True, with_for_update=True)
            if job is None or job.status != "running" or job.lease_expires is None or job.lease_expires >= now:
                continue  # renewed or ended meanwhile
            who = job.worker or "its worker"
            job.lease = job.lease_expires = job.dispatched = None
            if job.cancel_requested:
                mark(job, "canceled")
                log(session, job.id, "warning", f"{who} stopped answering while the job was being canceled: "
                    "canceled (what it had finished stays done; no file is left half-written)")
            elif job.attempts < max_attempts:
                mark(job, "waiting")
                log(session, job.id, "warning", f"{who} stopped renewing its lease (it died or lost the database): "
                    f"the job is sent again (attempt {job.attempts + 1} of {max_attempts})")
                again.append(job.id)
            else:
                mark(job, "error")
                job.stats = {**job.stats, "error": "the worker running it stopped answering"}
                runs = "once" if job.attempts == 1 else f"{job.attempts} times"
                log(session, job.id, "error", f"{who} stopped renewing its lease, and the job has run {runs}: "
                    "it ends in error")
            record(session, job)
    return again


def undelivered(sessions: sessionmaker[Session], older_than: float, limit: int = 1000) -> list[int]:
    """Pick waiting jobs whose message was sent more than ``older_than`` seconds ago (or never), to send again.

    A job a stopping worker gave back (:func:`release`: started, never sent since) is picked at once. Their
    ``dispatched`` time is set now, so that two processes looking at once send each job about once (a second
    message is harmless anyway: the claim takes a job once).
    """
    now = utcnow()
    cutoff = now - timedelta(seconds=older_than)
    with writing(sessions) as session:
        ids = list(session.scalars(
            select(Job.id).where(Job.status == "waiting",
                                 or_(Job.dispatched < cutoff,
                                     Job.dispatched.is_(None) & ((Job.created < cutoff) | Job.started.is_not(None))))
            .order_by(Job.id).limit(limit)))
        if ids:
            session.execute(update(Job).where(Job.id.in_(ids)).values(dispatched=now)
                            .execution_options(synchronize_session=False))
    return ids


def mark_dispatched(sessions: sessionmaker[Session], ids: list[int]) -> None:
    """Note that these jobs' messages were sent now."""
    if ids:
        with sessions() as session, session.begin():
            session.execute(update(Job).where(Job.id.in_(ids), Job.status == "waiting").values(dispatched=utcnow())
                            .execution_options(synchronize_session=False))
