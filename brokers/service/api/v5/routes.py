"""The v5 workspace endpoints (mounted under ``/v5``): the v6 registry under the older document's names.

``archived`` is v6's ``deprecated`` and ``json_config`` its ``configuration`` (secrets masked); the list takes
v6's query parameters (``page``, ``page_size``, ``started``, ``ended``, ``name``, ``order``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from ...db.models import Workspace
from ...security import masked
from ...store import workspaces as store
from ..deps import get_state, require_read
from ..listing import ScaleQuery, list_page, scale_query
from ..v6.schemas import ErrorBody
from .schemas import V5WorkspaceDetail, V5WorkspaceList

__all__ = ["ORDER_FIELDS", "router"]

router = APIRouter(tags=["workspaces (v5)"])

ORDER_FIELDS = {"id": "id", "name": "name", "title": "title", "description": "description", "base_url": "base_url",
                "is_active": "is_active", "used_size": "used_size", "total_size": "total_size",
                "created": "created", "archived": "deprecated", "last_modified": "last_modified"}
"""The fields ``order`` accepts, and the model attributes they show."""

_ERR = {"model": ErrorBody}
_READ_ERRORS: dict[int | str, dict[str, Any]] = {400: _ERR, 401: _ERR, 403: _ERR, 404: _ERR}
_ETAG = {"ETag": {"description": "The workspace's version (the same as v6's)", "schema": {"type": "string"}}}


def _summary(ws: Workspace) -> dict[str, Any]:
    return {"id": ws.id, "name": ws.name, "title": ws.title, "description": ws.description, "base_url": ws.base_url,
            "is_active": ws.is_active, "used_size": ws.used_size, "total_size": ws.total_size,
            "created": ws.created, "archived": ws.deprecated, "last_modified": ws.last_modified}


def _detail(ws: Workspace) -> dict[str, Any]:
    return {**_summary(ws), "json_config": masked(ws.stored_configuration)}


@router.get("/workspaces/", response_model=V5WorkspaceList, responses=_READ_ERRORS,
            dependencies=[Depends(require_read)], summary="List workspaces (v5)")
def list_workspaces(request: Request,
                    query: Annotated[ScaleQuery, Depends(scale_query(ORDER_FIELDS))]) -> dict[str, Any]:
    """Return a page of workspaces with their last measured ``used_size``/``total_size`` (null until measured)."""
    return list_page(get_state(request).sessions, request.url, _summary, query, ORDER_FIELDS)


@router.get("/workspaces/{id}/", response_model=V5WorkspaceDetail,
            responses={**_READ_ERRORS, 200: {"headers": _ETAG}},
            dependencies=[Depends(require_read)], summary="Workspace details (v5)")
def get_workspace(id: int, request: Request, response: Response) -> dict[str, Any]:
    """Return one workspace with ``json_config`` (its configuration, secrets masked) and last measured usage."""
    with get_state(request).sessions() as session:
        ws = store.find(session, id)
    response.headers["ETag"] = store.etag(ws)
    return _detail(ws)
