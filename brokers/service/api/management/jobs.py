"""Workspace jobs of the management document: run, list, retrieve, cancel, history, logs, group listings.

``POST /workspaces/{id}/jobs`` creates the job's record and sends its id to the queue; a worker runs it. A usage
scan asked for while one is waiting or running joins it (200 with that job, instead of 201).
``DELETE /workspaces/{id}/jobs/{job_id}`` cancels a waiting job at once and asks a running one to stop at its
next safe point (within about a second). ``DELETE /workspaces/{id}/data`` runs a ``delete_data`` job.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ...db import writing
from ...db.models import MAX_BIG_ID, MAX_ID, Job, JobHistory, JobLog, Workspace
from ...store import jobs as store
from ...store.users import Actor
from ...store.workspaces import find
from ..deps import ServiceState, get_state, require_read, require_write
from ..errors import ApiError
from .common import ONE_ERRORS, WRITE_ERRORS
from .job_shapes import (
    JobHistoryList,
    JobList,
    JobRequest,
    LastJobs,
    LogList,
    OneJob,
    OneJobHistory,
    OneLog,
    checked_settings,
    job,
    job_history_item,
    log_line,
)
from .listing import Direction, Full, Limit, Offset, Paging, full_flag, history_paging, page_of
from .shapes import Message

__all__ = ["last_jobs_router", "router"]

router = APIRouter(tags=["management: jobs"])
last_jobs_router = APIRouter(tags=["management: jobs"])
WorkspaceIdPath = Annotated[int, Path(description="The workspace's id.")]
JobIdPath = Annotated[int, Path(description="The job's id.")]
DawgIdPath = Annotated[int, Path(description="The dawg's (group's) id.", ge=1, le=MAX_BIG_ID)]

_JOB_COLUMNS: dict[str, Any] = {"id": Job.id, "created": Job.created, "status": Job.status, "kind": Job.kind,
                                "workspace_id": Job.workspace_id, "user_id": Job.user_id,
                                "dawg_job_id": Job.dawg_job_id, "origin_created": Job.origin_created}
_LOG_COLUMNS: dict[str, Any] = {"id": JobLog.id, "created": JobLog.created, "level": JobLog.level}
_HISTORY_COLUMNS: dict[str, Any] = {"id": JobHistory.id, "created": JobHistory.created}


def job_paging(limit: Limit = 20, offset: Offset = None, order_by: Annotated[Literal[
        "id", "created", "status", "kind", "workspace_id", "user_id", "dawg_job_id", "origin_created"], Query(
        description="The field to order by.")] = "id", order_dir: Direction = "ASC",
        load_full_structure: Full = False) -> Paging:
    """The list parameters of a job list."""
    return Paging(limit, offset, order_by, order_dir.upper(), load_full_structure)


def log_paging(limit: Limit = 20, offset: Offset = None, order_by: Annotated[Literal["id", "created", "level"], Query(
        description="The field to order by.")] = "id", order_dir: Direction = "ASC",
        load_full_structure: Full = False) -> Paging:
    """The list parameters of a log list."""
    return Paging(limit, offset, order_by, order_dir.upper(), load_full_structure)


_Deleted = Annotated[bool, Query(description="1: also the jobs of workspaces in the trash (default 0).")]


def _jobs(state: ServiceState, query: Select[Any], page: Paging, **echo: Any) -> dict[str, Any]:
    with state.sessions() as session:
        rows = page_of(session, query, page, _JOB_COLUMNS, Job.id)
    return {"workspace_jobs": [job(row, page.full) for row in rows], "selection_settings": {**page.echo(), **echo}}


def _live_jobs(include_deleted: bool) -> Select[Any]:
    query = select(Job).join(Workspace, Workspace.id == Job.workspace_id)
    return query if include_deleted else query.where(Workspace.trashed.is_(None))


def _job_of(session: Session, workspace_id: int, job_id: int) -> Job:
    return store.find_job(session, workspace_id, job_id)


def _start(state: ServiceState, actor: Actor, workspace_id: int, body: JobRequest) -> tuple[Job, bool]:
    settings = checked_settings(body.kind, body.settings)
    with writing(state.sessions) as session:
        ws = find(session, workspace_id, lock=True)
        created, new = store.create(session, actor, ws, body.kind, settings, variables=body.variables,
                                    dawg_job_id=body.dawg_job_id)
    if new:
        state.jobs.send([created.id])
    return created, new


@router.post("/workspaces/{workspace_id}/jobs", status_code=201, response_model=OneJob,
             response_model_exclude_unset=True, summary="Run a workspace job", responses={
                 **WRITE_ERRORS,
                 200: {"model": OneJob, "description": "A usage scan was under way: this request joins it."}})
def run_job(workspace_id: WorkspaceIdPath, request: Request, response: Response,
            actor: Annotated[Actor, Depends(require_write)],
            full_structure: Annotated[bool, Depends(full_flag)],
            body: Annotated[JobRequest | None, Body()] = None) -> dict[str, Any]:
    """Start a job on the workspace (no body: a usage scan); only its owner or an admin may."""
    created, new = _start(get_state(request), actor, workspace_id, body or JobRequest())
    if not new:
        response.status_code = 200
    return {"workspace_job": job(created, full_structure)}


@router.get("/workspaces/{workspace_id}/jobs", response_model=JobList, response_model_exclude_unset=True,
            responses=ONE_ERRORS, dependencies=[Depends(require_read)], summary="List a workspace's jobs")
def list_jobs(workspace_id: WorkspaceIdPath, request: Request,
              page: Annotated[Paging, Depends(job_paging)]) -> dict[str, Any]:
    """The workspace's jobs, ordered and paged."""
    state = get_state(request)
    with state.sessions() as session:
        find(session, workspace_id)
    return _jobs(state, select(Job).where(Job.workspace_id == workspace_id), page)


@router.get("/workspaces/{workspace_id}/jobs/{job_id}", response_model=OneJob, response_model_exclude_unset=True,
            responses=ONE_ERRORS, dependencies=[Depends(require_read)], summary="Retrieve a workspace job")
def get_job(workspace_id: WorkspaceIdPath, job_id: JobIdPath, request: Request,
            full_structure: Annotated[bool, Depends(full_flag)]) -> dict[str, Any]:
    """One job, with its live progress while it runs."""
    with get_state(request).sessions() as session:
        return {"workspace_job": job(_job_of(session, workspace_id, job_id), full_structure)}


@router.delete("/workspaces/{workspace_id}/jobs/{job_id}", response_model=Message, responses=WRITE_ERRORS,
               summary="Cancel a workspace job")
def cancel_job(workspace_id: WorkspaceIdPath, job_id: JobIdPath, request: Request,
               actor: Annotated[Actor, Depends(require_write)]) -> dict[str, Any]:
    """Cancel a waiting job now; a running one stops at its next safe point (its status then says canceled)."""
    with writing(get_state(request).sessions) as session:
        row = _job_of(session, workspace_id, job_id)
        what = store.cancel(session, actor, row)
    return {"message": "OK" if what == "canceled" else "OK: the job stops at its next safe point"}


@router.get("/workspaces/{workspace_id}/jobs/{job_id}/history", response_model=JobHistoryList,
            response_model_exclude_unset=True, responses=ONE_ERRORS, dependencies=[Depends(require_read)],
            summary="List a job's history")
def list_job_history(workspace_id: WorkspaceIdPath, job_id: JobIdPath, request: Request,
                     page: Annotated[Paging, Depends(history_paging)]) -> dict[str, Any]:
    """The job's state after each status change, each with the one before it."""
    with get_state(request).sessions() as session:
        _job_of(session, workspace_id, job_id)
        rows = page_of(session, select(JobHistory).where(JobHistory.job_id == job_id), page, _HISTORY_COLUMNS,
                       JobHistory.id)
        previous = _previous_items(session, job_id, rows)
    return {"history_list": [job_history_item(row, previous.get(row.id)) for row in rows],
            "selection_settings": page.echo()}


def _previous_items(session: Session, job_id: int, rows: list[JobHistory]) -> dict[int, JobHistory | None]:
    """The item before each of ``rows`` (by id), in one query."""
    if not rows:
        return {}
    items = list(session.scalars(select(JobHistory).where(JobHistory.job_id == job_id,
                                                          JobHistory.id <= max(r.id for r in rows))
                                 .order_by(JobHistory.id)))
    before: dict[int, JobHistory | None] = {}
    for prior, item in itertools.pairwise([None, *items]):
        assert item is not None
        before[item.id] = prior
    return before


@router.get("/workspaces/{workspace_id}/jobs/{job_id}/history/{history_id}", response_model=OneJobHistory,
            response_model_exclude_unset=True, responses=ONE_ERRORS, dependencies=[Depends(require_read)],
            summary="Retrieve a job's history item")
def get_job_history(workspace_id: WorkspaceIdPath, job_id: JobIdPath,
                    history_id: Annotated[int, Path(description="The history item's id.")],
                    request: Request) -> dict[str, Any]:
    """One history item, with the one before it."""
    with get_state(request).sessions() as session:
        _job_of(session, workspace_id, job_id)
        item = session.get(JobHistory, history_id) if 1 <= history_id <= MAX_ID else None
        if item is None or item.job_id != job_id:
            raise ApiError.one(404, "not_found", f"job {job_id} has no history item {history_id}", "history_id",
                               "path")
        previous = session.scalar(select(JobHistory).where(JobHistory.job_id == job_id, JobHistory.id < item.id)
                                  .order_by(JobHistory.id.desc()).limit(1))
    return {"history": job_history_item(item, previous)}


@router.get("/workspaces/{workspace_id}/jobs/{job_id}/logs", response_model=LogList,
            response_model_exclude_unset=True, responses=ONE_ERRORS, dependencies=[Depends(require_read)],
            summary="List a job's log lines")
def list_logs(workspace_id: WorkspaceIdPath, job_id: JobIdPath, request: Request,
              page: Annotated[Paging, Depends(log_paging)]) -> dict[str, Any]:
    """What the job said, line by line (``info``, ``warning``, ``error``)."""
    with get_state(request).sessions() as session:
        _job_of(session, workspace_id, job_id)
        rows = page_of(session, select(JobLog).where(JobLog.job_id == job_id), page, _LOG_COLUMNS, JobLog.id)
    return {"workspace_logs": [log_line(row) for row in rows], "selection_settings": page.echo()}


@router.get("/workspaces/{workspace_id}/jobs/{job_id}/logs/{log_id}", response_model=OneLog, responses=ONE_ERRORS,
            dependencies=[Depends(require_read)], summary="Retrieve a job's log line")
def get_log(workspace_id: WorkspaceIdPath, job_id: JobIdPath,
            log_id: Annotated[int, Path(description="The log line's id.")], request: Request) -> dict[str, Any]:
    """One log line."""
    with get_state(request).sessions() as session:
        _job_of(session, workspace_id, job_id)
        row = session.get(JobLog, log_id) if 1 <= log_id <= MAX_ID else None
        if row is None or row.job_id != job_id:
            raise ApiError.one(404, "not_found", f"job {job_id} has no log line {log_id}", "log_id", "path")
        return {"workspace_log": log_line(row)}


@router.delete("/workspaces/{workspace_id}/data", response_model=Message, summary="Delete a workspace's data",
               responses={**WRITE_ERRORS, 200: {"headers": {"Location": {
                   "description": "The delete_data job", "schema": {"type": "string"}}}}})
def delete_data(workspace_id: WorkspaceIdPath, request: Request, response: Response,
                actor: Annotated[Actor, Depends(require_write)]) -> dict[str, Any]:
    """Empty the workspace's storage: runs a ``delete_data`` job, named in the message and ``Location``."""
    created, _ = _start(get_state(request), actor, workspace_id, JobRequest(kind="delete_data"))
    response.headers["Location"] = f"/workspaces/{workspace_id}/jobs/{created.id}"
    return {"message": f"ok: job {created.id} (delete_data) empties the workspace"}


@router.get("/workspace_jobs", response_model=JobList, response_model_exclude_unset=True, responses=ONE_ERRORS,
            dependencies=[Depends(require_read)], summary="List every workspace job")
def project_jobs(request: Request, page: Annotated[Paging, Depends(job_paging)],
                 include_deleted_workspaces_jobs: _Deleted = False) -> dict[str, Any]:
    """The jobs of every workspace (of the trashed ones too, if asked)."""
    return _jobs(get_state(request), _live_jobs(include_deleted_workspaces_jobs), page,
                 include_deleted_workspaces_jobs=include_deleted_workspaces_jobs)


@router.get("/dawgs/{dawg_id}/workspace_jobs", response_model=JobList, response_model_exclude_unset=True,
            responses=ONE_ERRORS, dependencies=[Depends(require_read)], summary="List a dawg's workspace jobs")
def dawg_jobs(dawg_id: DawgIdPath, request: Request, page: Annotated[Paging, Depends(job_paging)],
              include_deleted_workspace_jobs: _Deleted = False) -> dict[str, Any]:
    """The jobs of the workspaces of a dawg (group)."""
    query = _live_jobs(include_deleted_workspace_jobs).where(Workspace.dawg_id == dawg_id)
    return _jobs(get_state(request), query, page, include_deleted_workspaces_jobs=include_deleted_workspace_jobs)


@router.get("/dawgs/{dawg_id}/jobs/{job_id}/workspace_jobs", response_model=JobList,
            response_model_exclude_unset=True, responses=ONE_ERRORS, dependencies=[Depends(require_read)],
            summary="List the workspace jobs of a dawg job")
def dawg_job_jobs(dawg_id: DawgIdPath, job_id: Annotated[int, Path(description="The dawg job's id.", ge=1,
                                                                   le=MAX_BIG_ID)],
                  request: Request, page: Annotated[Paging, Depends(job_paging)],
                  include_deleted_workspace_jobs: _Deleted = False) -> dict[str, Any]:
    """The workspace jobs that belong to one dawg (group) job."""
    query = _live_jobs(include_deleted_workspace_jobs).where(Workspace.dawg_id == dawg_id, Job.dawg_job_id == job_id)
    return _jobs(get_state(request), query, page, include_deleted_workspaces_jobs=include_deleted_workspace_jobs)


@last_jobs_router.get("/workspaces/last_jobs", response_model=LastJobs, response_model_exclude_unset=True,
                      responses=ONE_ERRORS, dependencies=[Depends(require_read)],
                      summary="List workspaces' last jobs")
def last_jobs(request: Request, workspace_ids: Annotated[list[Annotated[int, Query(ge=1, le=MAX_ID)]] | None, Query(
        max_length=1000, description="The workspaces (repeat the parameter); default: every live one.")] = None,
              load_full_structure: Full = False) -> dict[str, Any]:
    """The newest job of each workspace asked for (``last_job`` null for one that has run none)."""
    state = get_state(request)
    with state.sessions() as session:
        live = select(Workspace.id).where(Workspace.trashed.is_(None))
        if workspace_ids:
            live = live.where(Workspace.id.in_(workspace_ids))
        ids = list(session.scalars(live.order_by(Workspace.id)))
        newest = (select(func.max(Job.id)).where(Job.workspace_id.in_(ids)).group_by(Job.workspace_id))
        rows = {row.workspace_id: row for row in session.scalars(select(Job).where(Job.id.in_(newest)))} if ids \
            else {}
    wanted = list(dict.fromkeys(workspace_ids)) if workspace_ids else ids
    missing = [i for i in wanted if i not in set(ids)]
    if missing:
        raise ApiError.one(404, "not_found", f"there is no workspace with id {missing[0]}", "workspace_ids", "query")
    return {"last_workspace_jobs": [{"workspace_id": i, "last_job": job(rows[i], load_full_structure) if i in rows
                                     else None}
                                    for i in wanted],
            "selection_settings": {"workspace_ids": wanted}}
