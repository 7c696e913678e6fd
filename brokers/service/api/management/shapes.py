"""The management API's answers: workspaces (light or full), history items, and their OpenAPI schemas.

Flags are ``0``/``1``, times ``YYYY-MM-DD HH:MM:SS`` in UTC, as in the document. ``disk_usage`` is the last
measured ``used_size`` (null until measured); ``high_disk_usage`` is 1 when used/total passes the service's
threshold.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ...db.models import Workspace, WorkspaceHistory
from ...security import masked
from ...stamps import stamp

__all__ = ["full", "history_item", "light", "stamp"]


DEFAULT_SETTINGS: dict[str, Any] = {"schedules": [], "notification_emails": [], "delete_data_after_success": False}
"""What ``settings`` holds when not given (workspaces created through Scale, or before the management API)."""


def _settings(stored: Any) -> dict[str, Any]:
    return {**DEFAULT_SETTINGS, **(stored or {})}


def _high(ws: Workspace, threshold: float) -> int:
    used, total = ws.used_size, ws.total_size
    return int(used is not None and bool(total) and used / total > threshold)  # type: ignore[operator]


def light(ws: Workspace, threshold: float) -> dict[str, Any]:
    """The default object of lists and answers."""
    return {"id": ws.id, "user_id": ws.owner_id, "name": ws.title, "description": ws.description,
            "dawg_id": ws.dawg_id, "disk_usage": ws.used_size, "high_disk_usage": _high(ws, threshold),
            "disabled": int(not ws.is_active), "deleted": int(ws.trashed is not None),
            "last_activity": stamp(ws.last_activity), "author_id": ws.author_id, "tags": ws.tags,
            "created": stamp(ws.created), "version": ws.version}


def full(ws: Workspace, threshold: float) -> dict[str, Any]:
    """The object with ``load_full_structure=1``: every field, the storage configuration masked."""
    return {**light(ws, threshold), "settings": _settings(ws.settings), "frontend_settings": ws.frontend_settings,
            "variables": ws.variables, "input_settings": {"inputs": list(ws.inputs)},
            "continue_on_failure": int(ws.continue_on_failure), "last_run": stamp(ws.last_run),
            "last_run_duration": ws.last_run_duration,
            "configuration": masked(ws.stored_configuration)}


def _historic(item: WorkspaceHistory) -> dict[str, Any]:
    state = item.state
    return {"id": item.workspace_id, "user_id": state.get("owner_id"), "name": state.get("title"),
            "description": state.get("description"), "settings": _settings(state.get("settings")),
            "frontend_settings": state.get("frontend_settings", {}), "variables": state.get("variables", {}),
            "dawg_id": state.get("dawg_id"), "input_settings": {"inputs": list(state.get("inputs", []))},
            "continue_on_failure": int(bool(state.get("continue_on_failure"))),
            "disabled": int(not state.get("is_active", True)), "deleted": int(bool(state.get("trashed"))),
            "author_id": state.get("author_id"), "tags": list(state.get("tags", [])),
            "configuration": masked(state.get("configuration")), "version": state.get("version"),
            "created": stamp(item.created)}


def history_item(item: WorkspaceHistory, previous: WorkspaceHistory | None) -> dict[str, Any]:
    """One history item: the state after a change, who made it, and the state before it."""
    answer: dict[str, Any] = {"id": item.id, "action": item.action, "changed_by": item.user_id,
                              "created": stamp(item.created), "workspace": _historic(item)}
    if previous is not None:
        answer["previous_history"] = {"id": previous.id, "action": previous.action,
                                      "changed_by": previous.user_id, "created": stamp(previous.created),
                                      "workspace": _historic(previous)}
    return answer


# ---------------------------------------------------------------------------------------------- OpenAPI schemas
Time = str | None


class InputsOut(BaseModel):
    """``input_settings``."""

    inputs: list[int]


class WorkspaceOut(BaseModel):
    """A workspace: the light object; the fields marked full come with ``load_full_structure=1``."""

    id: int
    user_id: int | None = Field(description="The owner.")
    name: str
    description: str | None
    dawg_id: int | None
    disk_usage: int | None = Field(description="Bytes used, last measured; null until measured.")
    high_disk_usage: int = Field(description="1 when used/total passes the service's threshold.")
    disabled: int
    deleted: int
    last_activity: Time
    author_id: int | None = Field(description="The creator.")
    tags: list[int]
    created: str
    version: int = Field(description="Grows with every change; the ETag of the workspace.")
    settings: dict[str, Any] | None = Field(None, description="full")
    frontend_settings: dict[str, Any] | None = Field(None, description="full")
    variables: dict[str, Any] | None = Field(None, description="full")
    input_settings: InputsOut | None = Field(None, description="full")
    continue_on_failure: int | None = Field(None, description="full")
    last_run: Time = Field(None, description="full; null until the workspace has run a job")
    last_run_duration: int | None = Field(None, description="full")
    configuration: dict[str, Any] | None = Field(None, description="full; the storage configuration, masked")


class HistoricWorkspace(BaseModel):
    """A workspace as a history item recorded it."""

    id: int
    user_id: int | None
    name: str | None
    description: str | None
    settings: dict[str, Any]
    frontend_settings: dict[str, Any]
    variables: dict[str, Any]
    dawg_id: int | None
    input_settings: InputsOut
    continue_on_failure: int
    disabled: int
    deleted: int
    author_id: int | None
    tags: list[int]
    configuration: dict[str, Any] | None
    version: int | None
    created: str


class PreviousHistory(BaseModel):
    """The history item before another one."""

    id: int
    action: str
    changed_by: int | None
    created: str
    workspace: HistoricWorkspace


class HistoryOut(PreviousHistory):
    """A history item, with the one before it (absent for the first)."""

    previous_history: PreviousHistory | None = None


class Selection(BaseModel):
    """What a list applied."""

    limit: int
    offset: int | None
    order_by: str
    order_dir: str
    name_filter: str | None = None
    tag_ids: list[int] | None = None
    show_enabled: bool = True
    show_disabled: bool = True


class WorkspaceList(BaseModel):
    """``GET /workspaces``."""

    workspaces: list[WorkspaceOut]
    selection_settings: Selection


class TrashList(BaseModel):
    """``GET /workspaces/trash``."""

    trashed_workspaces: list[WorkspaceOut]
    selection_settings: Selection


class OneWorkspace(BaseModel):
    """One workspace."""

    workspace: WorkspaceOut


class ManyWorkspaces(BaseModel):
    """The workspaces a bulk edit changed."""

    workspaces: list[WorkspaceOut]


class HistoryList(BaseModel):
    """``GET /workspaces/{id}/history``."""

    history_list: list[HistoryOut]
    selection_settings: Selection


class OneHistory(BaseModel):
    """``GET /workspaces/{id}/history/{history_id}``."""

    history: HistoryOut


class Message(BaseModel):
    """``{"message": "OK"}``."""

    message: str
