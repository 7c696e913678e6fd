"""The Scale list query (v5 and v6): time range (datetimes or durations), names, ordering, pages with links."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import ColumnElement, Select, UnaryExpression, func, select
from sqlalchemy.orm import Session, raiseload, sessionmaker
from starlette.datastructures import URL

from ..db.models import Workspace, utcnow
from .errors import ApiError
from .fields import NameQuery

__all__ = ["MAX_NAMES", "ORDER_FIELDS", "ScaleQuery", "list_page", "order_by", "parse_moment", "scale_query",
           "time_filters"]

ORDER_FIELDS = ("id", "name", "title", "description", "base_url", "is_active", "created", "deprecated",
                "last_modified", "used_size", "total_size", "usage_measured")
"""Fields ``order`` accepts by default (the model's own names, as v6 shows them; prefix ``-`` to reverse)."""
MAX_NAMES = 500
"""How many ``name`` values one query may give."""

PageQuery = Annotated[int, Query(ge=1, description="The page of the results to return.")]
PageSizeQuery = Annotated[int, Query(ge=1, le=1000, description="Results per page (1-1000).")]
StartedQuery = Annotated[str | None, Query(max_length=100, description="ISO-8601 datetime or duration "
                                           "(PT3H0M0S, meaning now minus that): only workspaces modified since.")]
EndedQuery = Annotated[str | None, Query(max_length=100, description="ISO-8601 datetime or duration: only "
                                         "workspaces modified until.")]

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_moment(value: str, field: str, now: datetime | None = None) -> datetime:
    """Parse an ISO-8601 datetime, or an ISO-8601 duration meaning "that long before now".

    A datetime without an offset is UTC. Durations take weeks, days, hours, minutes and seconds
    (``PT3H0M0S``, ``P1DT12H``, ``P2W``); years and months are refused as they have no fixed length.

    Raises:
        ApiError: 400 naming ``field``.
    """
    text = value.strip()
    now = now or utcnow()
    match = _DURATION.match(text.upper()) if text[:1] in "Pp" else None
    if match:
        try:
            delta = timedelta(**{k: float(v) for k, v in match.groupdict().items() if v})
            return now - delta
        except (OverflowError, ValueError):
            raise ApiError.one(400, "invalid_value", f"{field} is a duration too long to subtract from now",
                               field, "query") from None
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" and text else text)
    except ValueError:
        raise ApiError.one(400, "invalid_value", f"{field} must be an ISO-8601 datetime (2015-01-01T00:00:00Z) "
                           "or duration (PT3H0M0S)", field, "query") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def time_filters(started: str | None, ended: str | None) -> list[ColumnElement[bool]]:
    """Return the ``last_modified`` conditions for ``started``/``ended``."""
    now = utcnow()
    conditions: list[ColumnElement[bool]] = []
    start = parse_moment(started, "started", now) if started is not None else None
    end = parse_moment(ended, "ended", now) if ended is not None else None
    if start is not None and end is not None and start > end:
        raise ApiError.one(400, "invalid_value", "started must not be after ended", "started", "query")
    if start is not None:
        conditions.append(Workspace.last_modified >= start)
    if end is not None:
        conditions.append(Workspace.last_modified <= end)
    return conditions


def order_by(query: Select[Any], order: Sequence[str], fields: Mapping[str, str] | None = None) -> Select[Any]:
    """Apply ``order`` (default: by name), with ``id`` last so that pages are stable; nulls sort as largest.

    Args:
        query: The query to order.
        order: Field names, ``-`` in front to reverse.
        fields: The API's field names and the model attributes they show (default: :data:`ORDER_FIELDS`, each
            its own attribute).

    Raises:
        ApiError: 400 for an unknown field.
    """
    columns = fields if fields is not None else {name: name for name in ORDER_FIELDS}
    clauses: list[UnaryExpression[Any]] = []
    seen: set[str] = set()
    for raw in order or ["name"]:
        descending = raw.startswith("-")
        name = raw[1:] if descending else raw
        if name not in columns:
            raise ApiError.one(400, "invalid_value", f"order: {name[:60]!r} is not a field to order by (known: "
                               f"{', '.join(columns)}; prefix with - to reverse)", "order", "query")
        attribute = columns[name]
        if attribute in seen:
            continue
        seen.add(attribute)
        column = getattr(Workspace, attribute)
        clause = column.desc() if descending else column.asc()
        if Workspace.__table__.c[attribute].nullable:  # (NULLS FIRST/LAST keeps SQLite from using an index)
            clause = clause.nulls_first() if descending else clause.nulls_last()
        clauses.append(clause)
    if "id" not in seen:
        clauses.append(Workspace.id.asc())
    return query.order_by(*clauses)


@dataclass(frozen=True)
class ScaleQuery:
    """The query parameters of a Scale list (v5, v6)."""

    page: int
    page_size: int
    started: str | None
    ended: str | None
    names: list[str]
    order: list[str]


def scale_query(fields: Iterable[str]) -> Callable[..., ScaleQuery]:
    """Return the FastAPI dependency reading a Scale list's parameters (``fields``: what ``order`` may name)."""
    known = ", ".join(fields)

    def dependency(
        page: PageQuery = 1,
        page_size: PageSizeQuery = 100,
        started: StartedQuery = None,
        ended: EndedQuery = None,
        name: Annotated[list[NameQuery], Query(description="Only workspaces with this name (repeat for more).")]
        = [],  # noqa: B006
        # (a default, not an annotation: the annotations are strings, which cannot name ``known``)
        order: list[str] = Query([], description="Fields to order by, - to reverse (repeat to multi-sort): "  # noqa: B008
                                 + known),
    ) -> ScaleQuery:
        return ScaleQuery(page, page_size, started, ended, name, order)

    return dependency


def list_page(sessions: sessionmaker[Session], url: URL, row: Callable[[Workspace], dict[str, Any]],
              query: ScaleQuery, fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return ``{count, next, previous, results}``: one page of the live workspaces matching the query.

    ``next``/``previous`` are absolute URLs (``url`` with another ``page``); ``row`` shapes each workspace.

    Raises:
        ApiError: 400 for a bad parameter, 404 for a page past the last one.
    """
    page, page_size, names = query.page, query.page_size, query.names
    conditions = [Workspace.trashed.is_(None), *time_filters(query.started, query.ended)]
    if len(names) > MAX_NAMES:
        raise ApiError.one(400, "invalid_value", f"name: at most {MAX_NAMES} names per query", "name", "query")
    if names:
        conditions.append(Workspace.name.in_(set(names)))
    ordered = order_by(select(Workspace).where(*conditions), query.order, fields)
    with sessions() as session:
        count = session.scalar(select(func.count()).select_from(Workspace).where(*conditions)) or 0
        offset = (page - 1) * page_size
        if page > 1 and offset >= count:
            pages = max(1, -(-count // page_size))
            raise ApiError.one(404, "invalid_page", f"invalid page: page {page} does not exist (there "
                               f"{'is' if pages == 1 else 'are'} {pages})", "page", "query")
        # Scale objects have no tags: not loaded.
        rows = session.scalars(ordered.offset(offset).limit(page_size).options(raiseload(Workspace.tag_rows))).all()
        results = [row(ws) for ws in rows]
    nxt = str(url.include_query_params(page=page + 1)) if offset + page_size < count else None
    prev = None
    if page > 1:
        prev = str(url.remove_query_params("page") if page == 2 else url.include_query_params(page=page - 1))
    return {"count": count, "next": nxt, "previous": prev, "results": results}
