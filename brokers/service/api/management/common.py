"""What the management routes share: the answer of one workspace, errors, body translation, the If-Match header."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Response

from ...db.models import Workspace
from ...store import workspaces as store
from ..deps import ServiceState
from ..errors import ApiError
from ..v6.schemas import ErrorBody
from .schemas import WorkspacePatch, changes_of
from .shapes import full, light

__all__ = ["FIELDS", "ONE_ERRORS", "WRITE_ERRORS", "IfMatch", "answer", "changes", "represent"]

_ERR = {"model": ErrorBody}
ONE_ERRORS: dict[int | str, dict[str, Any]] = {400: _ERR, 401: _ERR, 403: _ERR, 404: _ERR}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {**ONE_ERRORS, 409: _ERR, 412: _ERR}
FIELDS = {"title": "name", "inputs": "input_settings.inputs"}
"""The management names of the store's fields, for errors."""

IfMatch = Annotated[str | None, Header(alias="If-Match", description="Change only if the workspace is still at "
                                       "this version (its ETag, e.g. \"3\"); 412 otherwise.")]


def represent(state: ServiceState, ws: Workspace, full_structure: bool) -> dict[str, Any]:
    """The light or full object of a workspace."""
    threshold = state.settings.high_disk_usage
    return full(ws, threshold) if full_structure else light(ws, threshold)


def answer(state: ServiceState, ws: Workspace, full_structure: bool, response: Response) -> dict[str, Any]:
    """``{"workspace": ...}`` with the workspace's ``ETag``."""
    response.headers["ETag"] = store.etag(ws)
    return {"workspace": represent(state, ws, full_structure)}


def changes(body: WorkspacePatch) -> dict[str, Any]:
    """The store's changes for a body.

    Raises:
        ApiError: 400 for a null where a value is needed.
    """
    try:
        return changes_of(body)
    except ValueError as exc:
        field = exc.args[0]
        raise ApiError.one(400, "wrong_type", f"{field} cannot be null", field) from None
