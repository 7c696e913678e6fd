"""The list parameters of the management API (``limit``, ``offset``, ``order_by``, ``order_dir``...) and paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Query
from sqlalchemy import ColumnElement, Select, false, func, select
from sqlalchemy.orm import Session

from ...db.models import MAX_BIG_ID, MAX_ID, Workspace, WorkspaceTag

__all__ = ["Paging", "WorkspaceFilters", "page_of", "paging", "workspace_filters"]

WorkspaceOrder = Literal["id", "name", "created", "last_activity", "disk_usage", "user_id", "author_id", "dawg_id",
                         "disabled"]
_COLUMNS: dict[str, Any] = {"id": Workspace.id, "name": func.lower(Workspace.title), "created": Workspace.created,
                            "last_activity": Workspace.last_activity, "disk_usage": Workspace.used_size,
                            "user_id": Workspace.owner_id, "author_id": Workspace.author_id,
                            "dawg_id": Workspace.dawg_id, "disabled": Workspace.is_active}
_REVERSED = {"disabled"}  # disabled ascending is is_active descending


@dataclass(frozen=True)
class Paging:
    """``limit``, ``offset``, ``order_by``, ``order_dir`` and ``load_full_structure`` of a list."""

    limit: int
    offset: int | None
    order_by: str
    order_dir: str
    full: bool

    def echo(self) -> dict[str, Any]:
        """The ``selection_settings`` part these make."""
        return {"limit": self.limit, "offset": self.offset, "order_by": self.order_by, "order_dir": self.order_dir}


Limit = Annotated[int, Query(ge=1, le=1000, description="How many records to return (1-1000, default 20).")]
Offset = Annotated[int | None, Query(ge=0, le=MAX_ID, description="How many records to skip.")]
Direction = Annotated[str, Query(pattern=r"^(?i:asc|desc)$", description="ASC or DESC.")]
Full = Annotated[bool, Query(description="1: the full objects; 0 (default): the light ones.")]


def paging(limit: Limit = 20, offset: Offset = None, order_by: Annotated[WorkspaceOrder, Query(
        description="The field to order by.")] = "id", order_dir: Direction = "ASC",
        load_full_structure: Full = False) -> Paging:
    """The list parameters of a workspace list."""
    return Paging(limit, offset, order_by, order_dir.upper(), load_full_structure)


def history_paging(limit: Limit = 20, offset: Offset = None, order_by: Annotated[Literal["id", "created"], Query(
        description="The field to order by.")] = "id", order_dir: Direction = "ASC",
        load_full_structure: Full = False) -> Paging:
    """The list parameters of a history list."""
    return Paging(limit, offset, order_by, order_dir.upper(), load_full_structure)


def full_flag(load_full_structure: Full = False) -> bool:
    """``load_full_structure`` of a single object."""
    return load_full_structure


@dataclass(frozen=True)
class WorkspaceFilters:
    """``name_filter``, ``tag_ids``, ``show_enabled``, ``show_disabled``."""

    name_filter: str | None
    tag_ids: list[int] | None
    show_enabled: bool
    show_disabled: bool

    def conditions(self) -> list[ColumnElement[bool]]:
        """The SQL conditions these make."""
        conditions: list[ColumnElement[bool]] = []
        if self.name_filter:
            escaped = self.name_filter.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(Workspace.title.ilike(f"%{escaped}%", escape="\\"))
        if self.tag_ids:
            conditions.append(Workspace.id.in_(select(WorkspaceTag.workspace_id)
                                               .where(WorkspaceTag.tag_id.in_(self.tag_ids))))
        if not self.show_enabled:
            conditions.append(Workspace.is_active.is_(False))
        if not self.show_disabled:
            conditions.append(Workspace.is_active.is_(True))
        if not (self.show_enabled or self.show_disabled):
            conditions.append(false())
        return conditions

    def echo(self) -> dict[str, Any]:
        """The ``selection_settings`` part these make."""
        return {"name_filter": self.name_filter, "tag_ids": self.tag_ids, "show_enabled": self.show_enabled,
                "show_disabled": self.show_disabled}


def workspace_filters(
    name_filter: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00]*$",
                                             description="Only workspaces whose name contains this (any case).")]
    = None,
    tag_ids: Annotated[list[Annotated[int, Query(ge=0, le=MAX_BIG_ID)]] | None, Query(
        max_length=100, description="Only workspaces with one of these tags (repeat the parameter).")] = None,
    show_enabled: Annotated[bool, Query(description="Show enabled workspaces (default 1).")] = True,
    show_disabled: Annotated[bool, Query(description="Show disabled workspaces (default 1).")] = True,
) -> WorkspaceFilters:
    """The filters of a workspace list."""
    return WorkspaceFilters(name_filter or None, tag_ids or None, show_enabled, show_disabled)


def page_of(session: Session, query: Select[Any], paging: Paging, columns: dict[str, Any] | None = None,
            id_column: Any = None) -> list[Any]:
    """Apply the order (then ``id``, so pages are stable; nulls last; names in any case) and the page.

    ``columns`` maps ``order_by`` names to columns (default: the workspace list's), ``id_column`` is the key that
    breaks ties (default ``Workspace.id``).
    """
    columns = _COLUMNS if columns is None else columns
    id_column = Workspace.id if id_column is None else id_column
    column = columns[paging.order_by]
    descending = (paging.order_dir == "DESC") != (paging.order_by in _REVERSED and columns is _COLUMNS)
    clauses = [column.desc().nulls_last() if descending else column.asc().nulls_last()]
    if paging.order_by != "id":
        clauses.append(id_column.desc() if paging.order_dir == "DESC" else id_column.asc())
    return list(session.scalars(query.order_by(*clauses).offset(paging.offset or 0).limit(paging.limit)))
