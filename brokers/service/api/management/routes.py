"""``/workspaces`` and ``/dawgs/{dawg_id}/workspaces``: list, create, bulk edit, retrieve, edit, trash, clone, owner."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response
from sqlalchemy import select

from ...db import writing
from ...db.models import MAX_BIG_ID, Workspace
from ...store import workspaces as store
from ...store.users import Actor
from ..deps import get_state, require_read, require_write
from ..errors import ApiError
from .common import FIELDS, ONE_ERRORS, WRITE_ERRORS, IfMatch, answer, changes, represent
from .listing import Paging, WorkspaceFilters, full_flag, page_of, paging, workspace_filters
from .schemas import BulkItem, OwnerChange, WorkspaceCreate, WorkspacePatch
from .shapes import ManyWorkspaces, Message, OneWorkspace, WorkspaceList

__all__ = ["router"]

router = APIRouter(tags=["management: workspaces"])
WorkspaceIdPath = Annotated[int, Path(description="The workspace's id.")]
_ETAG = {"headers": {"ETag": {"description": "The workspace's version, for If-Match", "schema": {"type": "string"}}}}


@router.get("/workspaces", response_model=WorkspaceList, response_model_exclude_unset=True, responses=ONE_ERRORS,
            dependencies=[Depends(require_read)], summary="List all workspaces")
def list_workspaces(request: Request, page: Annotated[Paging, Depends(paging)],
                    filters: Annotated[WorkspaceFilters, Depends(workspace_filters)]) -> dict[str, Any]:
    """Live workspaces (not the trashed ones), filtered, ordered and paged; light objects unless asked for full."""
    state = get_state(request)
    query = select(Workspace).where(Workspace.trashed.is_(None), *filters.conditions())
    with state.sessions() as session:
        rows = page_of(session, query, page)
    return {"workspaces": [represent(state, ws, page.full) for ws in rows],
            "selection_settings": {**page.echo(), **filters.echo()}}


@router.post("/workspaces", status_code=201, response_model=OneWorkspace, response_model_exclude_unset=True,
             responses={**WRITE_ERRORS, 201: _ETAG}, summary="Create a workspace")
def create_workspace(body: WorkspaceCreate, request: Request, response: Response,
                     actor: Annotated[Actor, Depends(require_write)],
                     full_structure: Annotated[bool, Depends(full_flag)]) -> dict[str, Any]:
    """Create a workspace owned and authored by the caller; its name must be free (trashed ones included)."""
    state = get_state(request)
    ws = store.create(state.sessions, state.box, actor, changes(body), unique_title=True, fields=FIELDS)
    if ws.configuration is not None:
        state.jobs.scan([ws.id])
    return answer(state, ws, full_structure, response)


@router.patch("/workspaces", response_model=ManyWorkspaces, response_model_exclude_unset=True,
              responses=WRITE_ERRORS, summary="Update multiple workspaces")
def bulk_edit(items: Annotated[list[BulkItem], Body(max_length=1000)], request: Request,
              actor: Annotated[Actor, Depends(require_write)],
              full_structure: Annotated[bool, Depends(full_flag)]) -> dict[str, Any]:
    """Edit several workspaces in one transaction: every item applies, or none (the error names the item)."""
    state = get_state(request)
    seen: set[int] = set()
    for index, item in enumerate(items):
        if item.id in seen:
            raise ApiError.one(400, "duplicate_id", f"{index}.id: workspace {item.id} is listed twice", f"{index}.id")
        seen.add(item.id)
    done: list[Workspace] = []
    remeasure: list[int] = []
    renames = any("name" in item.model_fields_set for item in items)
    with writing(state.sessions) as session, store.names_locked(session, renames):
        for index, item in enumerate(items):
            try:
                ws = store.find(session, item.id, lock=True)
                if store.update(session, state.box, actor, ws, changes(item), unique_title=True, fields=FIELDS,
                                action="bulk_edit"):
                    remeasure.append(ws.id)
            except ApiError as exc:
                raise ApiError(exc.status, f"item {index} (workspace {item.id}): {exc.detail}; nothing was changed",
                               [{**e, "field": f"{index}.{e['field']}" if e["location"] == "body" else e["field"]}
                                for e in exc.errors], exc.headers) from None
            done.append(ws)
    state.jobs.scan(remeasure)
    return {"workspaces": [represent(state, ws, full_structure) for ws in done]}


@router.get("/workspaces/{workspace_id}", response_model=OneWorkspace, response_model_exclude_unset=True,
            responses={**ONE_ERRORS, 200: _ETAG}, dependencies=[Depends(require_read)],
            summary="Retrieve a workspace")
def get_workspace(workspace_id: WorkspaceIdPath, request: Request, response: Response,
                  full_structure: Annotated[bool, Depends(full_flag)]) -> dict[str, Any]:
    """One live workspace, with its ``ETag``."""
    state = get_state(request)
    with state.sessions() as session:
        ws = store.find(session, workspace_id)
    return answer(state, ws, full_structure, response)


@router.patch("/workspaces/{workspace_id}", response_model=OneWorkspace, response_model_exclude_unset=True,
              responses={**WRITE_ERRORS, 200: _ETAG}, summary="Modify a workspace")
def edit_workspace(workspace_id: WorkspaceIdPath, body: WorkspacePatch, request: Request, response: Response,
                   actor: Annotated[Actor, Depends(require_write)],
                   full_structure: Annotated[bool, Depends(full_flag)], if_match: IfMatch = None) -> dict[str, Any]:
    """Change the given fields (owner or admin); with ``If-Match``, only if still at that version (412)."""
    state = get_state(request)
    wanted = changes(body)
    with writing(state.sessions) as session, store.names_locked(session, "title" in wanted):
        ws = store.find(session, workspace_id, lock=True)
        remeasure = store.update(session, state.box, actor, ws, wanted, if_match=if_match, unique_title=True,
                                 fields=FIELDS)
    if remeasure:
        state.jobs.scan([ws.id])
    return answer(state, ws, full_structure, response)


@router.delete("/workspaces/{workspace_id}", response_model=Message, responses=WRITE_ERRORS,
               summary="Delete a workspace (to the trash)")
def trash_workspace(workspace_id: WorkspaceIdPath, request: Request, actor: Annotated[Actor, Depends(require_write)],
                    if_match: IfMatch = None) -> dict[str, Any]:
    """Move the workspace to the trash: it leaves every list; ``PATCH /workspaces/trash/{id}`` restores it."""
    state = get_state(request)
    with writing(state.sessions) as session:
        store.trash(session, actor, store.find(session, workspace_id, lock=True), if_match=if_match)
    return {"message": "OK"}


@router.post("/workspaces/{workspace_id}", response_model=OneWorkspace, response_model_exclude_unset=True,
             responses={**WRITE_ERRORS, 200: _ETAG}, summary="Clone a workspace")
def clone_workspace(workspace_id: WorkspaceIdPath, request: Request, response: Response,
                    actor: Annotated[Actor, Depends(require_write)],
                    full_structure: Annotated[bool, Depends(full_flag)]) -> dict[str, Any]:
    """Create ``clone_<name>`` with the same configuration and settings, owned by the caller (owner or admin)."""
    state = get_state(request)
    with state.sessions() as session:
        source = store.find(session, workspace_id)
    ws = store.clone(state.sessions, state.box, actor, source)
    if ws.configuration is not None:
        state.jobs.scan([ws.id])
    return answer(state, ws, full_structure, response)


@router.patch("/workspaces/{workspace_id}/owner", response_model=OneWorkspace, response_model_exclude_unset=True,
              responses={**WRITE_ERRORS, 200: _ETAG}, summary="Change a workspace's owner")
def change_owner(workspace_id: WorkspaceIdPath, body: OwnerChange, request: Request, response: Response,
                 actor: Annotated[Actor, Depends(require_write)], full_structure: Annotated[bool, Depends(full_flag)],
                 if_match: IfMatch = None) -> dict[str, Any]:
    """Give the workspace to another active user (its owner or an admin may)."""
    state = get_state(request)
    with writing(state.sessions) as session:
        ws = store.find(session, workspace_id, lock=True)
        store.change_owner(session, actor, ws, body.user_id, if_match=if_match)
    return answer(state, ws, full_structure, response)


@router.get("/dawgs/{dawg_id}/workspaces", response_model=WorkspaceList, response_model_exclude_unset=True,
            responses=ONE_ERRORS, dependencies=[Depends(require_read)], summary="List a dawg's workspaces")
def dawg_workspaces(dawg_id: Annotated[int, Path(ge=1, le=MAX_BIG_ID, description="The dawg (group) id.")],
                    request: Request, page: Annotated[Paging, Depends(paging)]) -> dict[str, Any]:
    """The live workspaces of a dawg (group)."""
    state = get_state(request)
    query = select(Workspace).where(Workspace.trashed.is_(None), Workspace.dawg_id == dawg_id)
    with state.sessions() as session:
        rows = page_of(session, query, page)
    return {"workspaces": [represent(state, ws, page.full) for ws in rows], "selection_settings": page.echo()}
