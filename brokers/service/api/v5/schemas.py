"""Response bodies of the v5 workspace API: the v6 workspace under the older document's field names."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..v6.schemas import Timestamp

__all__ = ["V5Workspace", "V5WorkspaceDetail", "V5WorkspaceList"]


class V5Workspace(BaseModel):
    """One workspace as v5 lists it."""

    id: int = Field(description="The unique identifier of the workspace.")
    name: str = Field(description="The stable name of the workspace used for queries.")
    title: str = Field(description="The human readable display name of the workspace.")
    description: str | None = Field(description="A longer description of the workspace.")
    base_url: str | None = Field(description="URL prefix of the workspace's files; null if not web-accessible.")
    is_active: bool = Field(description="Whether the workspace is active (false once archived).")
    used_size: int | None = Field(description="Bytes used by the workspace's files; null until measured.")
    total_size: int | None = Field(description="Capacity in bytes (store capacity or quota); null if unknown.")
    created: Timestamp
    archived: Timestamp | None = Field(description="When the workspace was archived (v6: deprecated).")
    last_modified: Timestamp


class V5WorkspaceDetail(V5Workspace):
    """One workspace with its configuration (secrets masked; null if it was registered without storage)."""

    json_config: dict[str, Any] | None = Field(description="The workspace configuration (v6: configuration).")


class V5WorkspaceList(BaseModel):
    """A page of workspaces."""

    count: int = Field(description="How many workspaces match the query.")
    next: str | None = Field(description="Absolute URL of the next page, or null.")
    previous: str | None = Field(description="Absolute URL of the previous page, or null.")
    results: list[V5Workspace]
