"""Workspace jobs as the APIs ask for them: create (a usage scan joins the one under way), find, cancel.

The job row is the record; what runs it (:mod:`brokers.service.jobs`) only moves it through its statuses. Every
status change appends a history row with the job's state, and a log line tells a person what happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.models import MAX_ID, Job, JobHistory, JobLog, Workspace, utcnow
from ..problems import ApiError
from ..stamps import stamp
from .users import Actor
from .workspaces import find

__all__ = ["KINDS", "LEVELS", "cancel", "create", "find_job", "log", "mark", "record", "state_of"]

KINDS = ("usage_scan", "delete_data", "clone_data", "cleanup", "verify")
"""The job kinds a workspace runs (``usage_scan`` when a request names none)."""
LEVELS = ("info", "warning", "error")
"""The levels of a job's log lines."""


def state_of(job: Job) -> dict[str, Any]:
    """The job as the document shows it (and as its history keeps it)."""
    return {"id": job.id, "user_id": job.user_id, "workspace_id": job.workspace_id, "kind": job.kind,
            "status": job.status, "settings": dict(job.settings or {}), "variables": dict(job.variables or {}),
            "dawg_job_id": job.dawg_job_id, "stats": dict(job.stats or {}), "progress": job.progress,
            "origin": job.origin, "created": stamp(job.created), "origin_created": stamp(job.origin_created)}


def record(session: Session, job: Job) -> None:
    """Append the job's state to its history (after a status change)."""
    session.flush()
    session.add(JobHistory(job_id=job.id, state=state_of(job)))


def log(session: Session, job_id: int, level: str, text: str) -> None:
    """Add one log line to a job."""
    session.add(JobLog(job_id=job_id, level=level, text=text))


def mark(job: Job, status: str, moment: datetime | None = None) -> None:
    """Set a job's status and note when, in ``stats.statuses_history``."""
    moment = moment or utcnow()
    job.status = status
    job.stats = {**(job.stats or {}), "statuses_history": {**(job.stats or {}).get("statuses_history", {}),
                                                             status: stamp(moment)}}
    if status in ("finished", "error", "canceled"):
        job.ended = moment


def _not_found(job_id: int, ws_id: int) -> ApiError:
    return ApiError.one(404, "not_found", f"workspace {ws_id} has no job with id {job_id}", "job_id", "path")


def find_job(session: Session, ws_id: int, job_id: int, *, trashed_ok: bool = False) -> Job:
    """Return a job of a live workspace.

    Raises:
        ApiError: 404 when the workspace or the job does not exist (or the job belongs to another workspace).
    """
    if not trashed_ok:
        find(session, ws_id)
    job = session.get(Job, job_id) if 1 <= job_id <= MAX_ID else None
    if job is None or job.workspace_id != ws_id:
        raise _not_found(job_id, ws_id)
    return job


def _storage_of(session: Session, ws_id: int, field: str) -> Workspace:
    """Return a live workspace that has storage (a configuration), for a job to work on."""
    try:
        ws = find(session, ws_id)
    except ApiError:
        raise ApiError.one(404, "not_found", f"there is no workspace with id {ws_id}", field) from None
    if ws.configuration is None:
        raise ApiError.one(409, "no_configuration", f"workspace {ws_id} has no storage configuration: a storage "
                           "job has nothing to work on (give it a configuration first)", field)
    return ws


def _check(session: Session, actor: Actor, ws: Workspace, kind: str, settings: Mapping[str, Any]) -> None:
    if not actor.may_change(ws.owner_id):
        raise ApiError.one(403, "not_owner", f"workspace {ws.id} belongs to another user: only its owner or an "
                           "admin may run its jobs", "X-Access-Token", "header")
    _storage_of(session, ws.id, "workspace_id")
    if kind == "usage_scan" and settings.get("inventory"):
        broker_type = (ws.stored_configuration or {}).get("broker", {}).get("type")
        if broker_type != "s3":
            raise ApiError.one(400, "not_s3", f"an inventory report measures S3 workspaces; workspace {ws.id} is "
                               f"a {broker_type} workspace", "settings.inventory")
    if kind == "clone_data":
        target_id = settings["target_workspace_id"]
        if target_id == ws.id:
            raise ApiError.one(400, "same_workspace", "a workspace cannot be cloned into itself",
                               "settings.target_workspace_id")
        target = _storage_of(session, target_id, "settings.target_workspace_id")
        if not actor.may_change(target.owner_id):
            raise ApiError.one(403, "not_owner", f"workspace {target.id} belongs to another user: only its owner "
                               "or an admin may write into it", "settings.target_workspace_id")


def create(session: Session, actor: Actor, ws: Workspace, kind: str = "usage_scan",
           settings: Mapping[str, Any] | None = None, *, variables: Mapping[str, Any] | None = None,
           dawg_job_id: int | None = None, origin: str = "request", scheduled_for: datetime | None = None,
           checked: bool = True) -> tuple[Job, bool]:
    """Create a waiting job; a usage scan of a workspace that has one waiting or running joins it.

    Args:
        session: In the caller's write transaction (committed by the caller, who then sends the job).
        actor: Who asks (the job's ``user_id``).
        ws: The workspace to work on.
        kind: One of :data:`KINDS`.
        settings: The kind's settings, already checked by the API's schema.
        variables: Free-form values kept with the job.
        dawg_job_id: The group job this one belongs to.
        origin: ``request``, ``schedule`` or ``refresh`` (the service's periodic usage scans).
        scheduled_for: The schedule slot (a slot fires once, whoever looks at the clock).
        checked: Check ownership and storage (the service's own schedules skip it).

    Returns:
        The job, and whether it is new (False: an existing usage scan, or a slot that already fired).

    Raises:
        ApiError: 403 ``not_owner``, 404, 409 ``no_configuration``.
    """
    settings = dict(settings or {})
    if kind == "clone_data":  # the source workspace's setting, unless the job says otherwise (shown in the job)
        settings.setdefault("delete_data_after_success", bool((ws.settings or {}).get("delete_data_after_success")))
    if checked:
        _check(session, actor, ws, kind, settings)
    if kind == "usage_scan" and (running := _active_scan(session, ws.id)) is not None:
        return running, False
    job = Job(workspace_id=ws.id, user_id=actor.id, kind=kind, settings=settings, variables=dict(variables or {}),
              dawg_job_id=dawg_job_id, origin=origin, scheduled_for=scheduled_for, stats={}, attempts=0,
              cancel_requested=False)
    mark(job, "waiting")
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:  # a scan created meanwhile, or the slot fired elsewhere
        existing = _active_scan(session, ws.id) if kind == "usage_scan" else None
        if existing is None and scheduled_for is not None:
            existing = session.scalar(select(Job).where(Job.workspace_id == ws.id, Job.kind == kind,
                                                        Job.scheduled_for == scheduled_for))
        if existing is None:
            raise
        return existing, False
    record(session, job)
    why = {"request": f"asked for by {actor.name}", "schedule": "started by the workspace's schedule",
           "refresh": "the periodic usage scan"}.get(origin, origin)
    log(session, job.id, "info", f"{kind} queued ({why})")
    return job, True


def _active_scan(session: Session, ws_id: int) -> Job | None:
    return session.scalar(select(Job).where(Job.workspace_id == ws_id, Job.kind == "usage_scan",
                                            Job.status.in_(("waiting", "running"))))


def cancel(session: Session, actor: Actor, job: Job) -> str:
    """Cancel a waiting job now, or ask a running one to stop at its next safe point.

    Returns:
        What happened, for the answer (``canceled`` or ``stopping``).

    Raises:
        ApiError: 403 ``not_owner``; 409 ``job_ended`` for a job that has ended.
    """
    ws = session.get(Workspace, job.workspace_id)
    if ws is not None and not actor.may_change(ws.owner_id):
        raise ApiError.one(403, "not_owner", f"workspace {ws.id} belongs to another user: only its owner or an "
                           "admin may cancel its jobs", "X-Access-Token", "header")
    session.refresh(job, with_for_update=True)
    if job.status == "waiting":
        mark(job, "canceled")
        job.lease = None
        record(session, job)
        log(session, job.id, "info", f"canceled by {actor.name} before it started: nothing was done")
        return "canceled"
    if job.status == "running":
        if not job.cancel_requested:
            job.cancel_requested = True
            log(session, job.id, "info", f"cancel requested by {actor.name}: the job stops at its next safe point")
        return "stopping"
    raise ApiError.one(409, "job_ended", f"job {job.id} has already ended ({job.status}): there is nothing to cancel",
                       "job_id", "path")
