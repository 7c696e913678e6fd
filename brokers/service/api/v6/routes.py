"""The v6 workspace endpoints (mounted under ``/v6`` and ``/v7``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy import select

from brokers.registry import validate_configuration

from ...db import writing
from ...db.models import Workspace
from ...security import SecretError, keep_masked_secrets, masked
from ...store import workspaces as store
from ...store.users import Actor
from ..deps import ServiceState, get_state, require_read, require_write
from ..errors import ApiError, read_json, validation_items
from ..fields import clean_text
from ..listing import ORDER_FIELDS, ScaleQuery, list_page, scale_query
from .schemas import (
    ErrorBody,
    ValidationBody,
    WorkspaceCreate,
    WorkspaceDetail,
    WorkspaceList,
    WorkspacePatch,
    WorkspaceValidation,
)

__all__ = ["router"]

router = APIRouter(tags=["workspaces"])

_ERR = {"model": ErrorBody}
_READ_ERRORS: dict[int | str, dict[str, Any]] = {400: _ERR, 401: _ERR, 403: _ERR}
_ONE_ERRORS: dict[int | str, dict[str, Any]] = {**_READ_ERRORS, 404: _ERR}
_ETAG = {"ETag": {"description": "The workspace's version, for If-Match", "schema": {"type": "string"}}}


def _summary(ws: Workspace) -> dict[str, Any]:
    return {"id": ws.id, "name": ws.name, "title": ws.title, "description": ws.description, "base_url": ws.base_url,
            "is_active": ws.is_active, "used_size": ws.used_size, "total_size": ws.total_size,
            "usage_measured": ws.usage_measured, "created": ws.created, "deprecated": ws.deprecated,
            "last_modified": ws.last_modified}


def _detail(ws: Workspace) -> dict[str, Any]:
    return {**_summary(ws), "configuration": masked(ws.stored_configuration)}


def _load(state: ServiceState, ws_id: int) -> Workspace:
    with state.sessions() as session:
        return store.find(session, ws_id)


IfMatch = Annotated[str | None, Header(alias="If-Match", description="Change only if the workspace is still at "
                                       "this version (its ETag); 412 otherwise.")]


@router.get("/workspaces/", response_model=WorkspaceList, responses=_ONE_ERRORS,
            dependencies=[Depends(require_read)], summary="List workspaces")
def list_workspaces(request: Request,
                    query: Annotated[ScaleQuery, Depends(scale_query(ORDER_FIELDS))]) -> dict[str, Any]:
    """Return a page of workspaces with their last measured ``used_size``/``total_size``."""
    return list_page(get_state(request).sessions, request.url, _summary, query)


@router.post("/workspaces/", status_code=201, response_model=WorkspaceDetail,
             responses={**_READ_ERRORS, 201: {"headers": {"Location": {
                 "description": "URL of the new workspace's details", "schema": {"type": "string"}}, **_ETAG}}},
             summary="Create a workspace")
def create_workspace(body: WorkspaceCreate, request: Request, response: Response,
                     actor: Annotated[Actor, Depends(require_write)]) -> dict[str, Any]:
    """Register a workspace; its ``name`` is derived from the title (``-2``, ``-3`` on collision)."""
    state = get_state(request)
    ws = store.create(state.sessions, state.box, actor, {
        "title": body.title, "description": body.description, "base_url": body.base_url,
        "is_active": body.is_active, "configuration": body.configuration})
    state.jobs.scan([ws.id])
    response.headers["Location"] = f"{request.url.replace(query='')}{ws.id}/"
    response.headers["ETag"] = store.etag(ws)
    return _detail(ws)


@router.post("/workspaces/validation/", response_model=ValidationBody, responses=_READ_ERRORS,
             dependencies=[Depends(require_read)], summary="Validate a workspace",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": WorkspaceValidation.model_json_schema()}}}})
async def validate_workspace(request: Request) -> dict[str, Any]:
    """Check a create or edit without saving it; always 200 with ``{is_valid, errors, warnings}``.

    With ``name`` of an existing workspace, a change of broker type gives the ``broker_type`` warning, and masked
    secrets stand for the stored ones.
    """
    raw = await request.body()
    return await run_in_threadpool(_validate, get_state(request), raw)


def _item(name: str, description: str, path: str = "") -> dict[str, str]:
    return {"name": name, "description": description, "path": path}


def _validate(state: ServiceState, raw: bytes) -> dict[str, Any]:
    data, problem = read_json(raw)
    if problem is not None:
        return {"is_valid": False, "errors": [_item("invalid_json", problem)], "warnings": []}
    if not isinstance(data, dict):
        return {"is_valid": False, "errors": [_item("not_an_object", "the body must be a JSON object")],
                "warnings": []}
    errors: list[dict[str, str]] = []
    warnings: list[dict[str, str]] = []
    try:
        WorkspaceValidation.model_validate(data)
    except ValidationError as exc:
        for e in validation_items(exc.errors()):
            if e["field"] != "configuration" or e["name"] == "missing_field" or not isinstance(
                    data.get("configuration"), dict):
                errors.append(_item(e["name"], e["description"], "/" + e["field"].replace(".", "/")))
    config = data.get("configuration")
    if isinstance(config, dict):
        stored = None
        name = data.get("name")
        if isinstance(name, str) and name:
            try:
                clean_text(name)
                with state.sessions() as session:
                    text = session.scalar(select(Workspace.configuration).where(Workspace.name == name,
                                                                                Workspace.trashed.is_(None)))
            except ValueError:
                text = None
            if text is None:
                warnings.append(_item("unknown_workspace", f"there is no workspace named {name[:60]!r} (or it "
                                      "has no configuration); validated as a new workspace", "/name"))
            else:
                stored = json.loads(text)
        try:
            opened = state.box.open(keep_masked_secrets(config, stored))
        except SecretError as exc:
            errors.append(_item("masked_secret", str(exc), "/configuration/" + exc.field.replace(".", "/")))
        else:
            result = validate_configuration(opened, previous=stored, check_access=state.settings.check_access,
                                            policy=state.settings.access_policy)
            errors.extend(_item(e["name"], e["description"], "/configuration" + e["path"]) for e in result.errors)
            warnings.extend(_item(w["name"], w["description"], "/configuration" + w["path"])
                            for w in result.warnings)
    return {"is_valid": not errors, "errors": errors, "warnings": warnings}


@router.get("/workspaces/{id}/", response_model=WorkspaceDetail,
            responses={**_ONE_ERRORS, 200: {"headers": _ETAG}},
            dependencies=[Depends(require_read)], summary="Workspace details")
def get_workspace(id: int, request: Request, response: Response) -> dict[str, Any]:
    """Return one workspace with its configuration (secrets masked) and last measured usage."""
    ws = _load(get_state(request), id)
    response.headers["ETag"] = store.etag(ws)
    return _detail(ws)


@router.patch("/workspaces/{id}/", status_code=204, response_class=Response,
              responses={**_ONE_ERRORS, 412: _ERR, 204: {"headers": _ETAG}}, summary="Edit a workspace")
def edit_workspace(id: int, body: WorkspacePatch, request: Request, actor: Annotated[Actor, Depends(require_write)],
                   if_match: IfMatch = None) -> Response:
    """Change the fields given; null clears ``description``/``base_url``; masked secrets keep the stored ones.

    ``is_active: false`` sets ``deprecated`` (once); ``is_active: true`` clears it. A new configuration resets
    the usage fields until the next measurement. Only the workspace's owner or an admin may edit it; with
    ``If-Match``, only if it is still at that version (412 otherwise).
    """
    state = get_state(request)
    given = body.model_fields_set
    for field in ("title", "is_active", "configuration"):
        if field in given and getattr(body, field) is None:
            raise ApiError.one(400, "wrong_type", f"{field} cannot be null", field)
    changes = {field: getattr(body, field) for field in given}
    with writing(state.sessions) as session:
        ws = store.find(session, id, lock=True)
        remeasure = store.update(session, state.box, actor, ws, changes, if_match=if_match)
    if remeasure:
        state.jobs.scan([id])
    return Response(status_code=204, headers={"ETag": store.etag(ws)})


@router.post("/workspaces/{id}/", status_code=204, response_class=Response,
             responses={**_ONE_ERRORS, 412: _ERR, 204: {"headers": _ETAG}}, deprecated=True,
             summary="Edit a workspace (POST alias)")
def edit_workspace_post(id: int, body: WorkspacePatch, request: Request,
                        actor: Annotated[Actor, Depends(require_write)], if_match: IfMatch = None) -> Response:
    """Same as PATCH: the reference's example edits with POST."""
    return edit_workspace(id, body, request, actor, if_match)

