"""``/workspaces/{id}/history`` (with revert) and ``/workspaces/trash`` (with restore and purge)."""

from __future__ import annotations

import itertools
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...db import writing
from ...db.models import MAX_ID, Workspace, WorkspaceHistory
from ...store import workspaces as store
from ...store.users import Actor
from ..deps import get_state, require_read, require_write
from ..errors import ApiError
from .common import ONE_ERRORS, WRITE_ERRORS, IfMatch, answer, represent
from .listing import Paging, full_flag, history_paging, page_of, paging
from .shapes import HistoryList, Message, OneHistory, OneWorkspace, TrashList, history_item

__all__ = ["history_router", "trash_router"]

trash_router = APIRouter(tags=["management: trash"])
history_router = APIRouter(tags=["management: history"])
WorkspaceIdPath = Annotated[int, Path(description="The workspace's id.")]
HistoryIdPath = Annotated[int, Path(description="The history item's id.")]


@trash_router.get("/workspaces/trash", response_model=TrashList, response_model_exclude_unset=True,
                  responses=ONE_ERRORS, dependencies=[Depends(require_read)], summary="List trashed workspaces")
def list_trash(request: Request, page: Annotated[Paging, Depends(paging)]) -> dict[str, Any]:
    """The workspaces in the trash (``deleted: 1``)."""
    state = get_state(request)
    with state.sessions() as session:
        rows = page_of(session, select(Workspace).where(Workspace.trashed.is_not(None)), page)
    return {"trashed_workspaces": [represent(state, ws, page.full) for ws in rows], "selection_settings": page.echo()}


@trash_router.patch("/workspaces/trash/{workspace_id}", response_model=OneWorkspace,
                    response_model_exclude_unset=True, responses=WRITE_ERRORS, summary="Restore a trashed workspace")
def restore_workspace(workspace_id: WorkspaceIdPath, request: Request, response: Response,
                      actor: Annotated[Actor, Depends(require_write)],
                      full_structure: Annotated[bool, Depends(full_flag)]) -> dict[str, Any]:
    """Bring the workspace back (its name was reserved meanwhile)."""
    state = get_state(request)
    with writing(state.sessions) as session:
        ws = store.find(session, workspace_id, trashed=True, lock=True)
        store.restore(session, actor, ws)
    if ws.configuration is not None:
        state.jobs.scan([ws.id])
    return answer(state, ws, full_structure, response)


@trash_router.delete("/workspaces/trash/{workspace_id}", response_model=Message, responses=WRITE_ERRORS,
                     summary="Purge a trashed workspace")
def purge_workspace(workspace_id: WorkspaceIdPath, request: Request,
                    actor: Annotated[Actor, Depends(require_write)]) -> dict[str, Any]:
    """Delete a trashed workspace and its history for good; its name becomes free (the files are not touched)."""
    state = get_state(request)
    with writing(state.sessions) as session:
        store.purge(session, actor, store.find(session, workspace_id, trashed=True, lock=True))
    return {"message": "OK"}


def _predecessors(session: Session, ws_id: int, items: list[WorkspaceHistory]) -> dict[int, WorkspaceHistory]:
    """Map each item's id to the item before it (by id) in the workspace's history."""
    ids = list(session.scalars(select(WorkspaceHistory.id).where(WorkspaceHistory.workspace_id == ws_id)
                               .order_by(WorkspaceHistory.id)))
    before = {later: earlier for earlier, later in itertools.pairwise(ids)}
    wanted = {before[i.id] for i in items if i.id in before}
    rows = session.scalars(select(WorkspaceHistory).where(WorkspaceHistory.id.in_(wanted))) if wanted else ()
    by_id: dict[int, WorkspaceHistory] = {row.id: row for row in rows}
    return {item.id: by_id[before[item.id]] for item in items if item.id in before}


def _item(session: Session, ws_id: int, history_id: int) -> WorkspaceHistory:
    item = session.get(WorkspaceHistory, history_id) if 1 <= history_id <= MAX_ID else None
    if item is None or item.workspace_id != ws_id:
        raise ApiError.one(404, "not_found", f"workspace {ws_id} has no history item {history_id}", "history_id",
                           "path")
    return item


@history_router.get("/workspaces/{workspace_id}/history", response_model=HistoryList,
                    response_model_exclude_unset=True, responses=ONE_ERRORS, dependencies=[Depends(require_read)],
                    summary="A workspace's history")
def list_history(workspace_id: WorkspaceIdPath, request: Request,
                 page: Annotated[Paging, Depends(history_paging)]) -> dict[str, Any]:
    """Every change: the full state after it, who made it, and the state before it (``previous_history``)."""
    state = get_state(request)
    column = WorkspaceHistory.created if page.order_by == "created" else WorkspaceHistory.id
    descending = page.order_dir == "DESC"
    with state.sessions() as session:
        store.find(session, workspace_id)
        items = list(session.scalars(
            select(WorkspaceHistory).where(WorkspaceHistory.workspace_id == workspace_id)
            .order_by(column.desc() if descending else column.asc(),
                      WorkspaceHistory.id.desc() if descending else WorkspaceHistory.id.asc())
            .offset(page.offset or 0).limit(page.limit)))
        previous = _predecessors(session, workspace_id, items)
    return {"history_list": [history_item(i, previous.get(i.id)) for i in items], "selection_settings": page.echo()}


@history_router.get("/workspaces/{workspace_id}/history/{history_id}", response_model=OneHistory,
                    response_model_exclude_unset=True, responses=ONE_ERRORS, dependencies=[Depends(require_read)],
                    summary="A workspace's history item")
def get_history(workspace_id: WorkspaceIdPath, history_id: HistoryIdPath, request: Request,
                _full: Annotated[bool, Depends(full_flag)]) -> dict[str, Any]:
    """One history item, with the one before it."""
    state = get_state(request)
    with state.sessions() as session:
        store.find(session, workspace_id)
        item = _item(session, workspace_id, history_id)
        previous = _predecessors(session, workspace_id, [item]).get(item.id)
    return {"history": history_item(item, previous)}


@history_router.patch("/workspaces/{workspace_id}/history/{history_id}", response_model=OneWorkspace,
                      response_model_exclude_unset=True, responses=WRITE_ERRORS, summary="Revert to a history item")
def revert_to(workspace_id: WorkspaceIdPath, history_id: HistoryIdPath, request: Request, response: Response,
              actor: Annotated[Actor, Depends(require_write)], full_structure: Annotated[bool, Depends(full_flag)],
              if_match: IfMatch = None) -> dict[str, Any]:
    """Make the workspace what it was at that item, as a new change (the history is never rewritten)."""
    state = get_state(request)
    with writing(state.sessions) as session, store.names_locked(session):
        ws = store.find(session, workspace_id, lock=True)
        remeasure = store.revert(session, state.box, actor, ws, _item(session, workspace_id, history_id),
                                 if_match=if_match)
    if remeasure:
        state.jobs.scan([ws.id])
    return answer(state, ws, full_structure, response)
