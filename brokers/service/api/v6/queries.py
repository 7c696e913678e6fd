"""The list query: time range (datetimes or durations), names, ordering, pages with absolute links."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Select, UnaryExpression

from ...db.models import Workspace, utcnow
from ..errors import ApiError

__all__ = ["ORDER_FIELDS", "order_by", "parse_moment", "time_filters"]

ORDER_FIELDS = ("id", "name", "title", "description", "base_url", "is_active", "created", "deprecated",
                "last_modified", "used_size", "total_size", "usage_measured")
"""Fields ``order`` accepts (prefix ``-`` to reverse)."""

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


def order_by(query: Select[Any], order: Sequence[str]) -> Select[Any]:
    """Apply ``order`` (default: by name), with ``id`` last so that pages are stable; nulls sort as largest.

    Raises:
        ApiError: 400 for an unknown field.
    """
    clauses: list[UnaryExpression[Any]] = []
    seen: set[str] = set()
    for raw in order or ["name"]:
        descending = raw.startswith("-")
        name = raw[1:] if descending else raw
        if name not in ORDER_FIELDS:
            raise ApiError.one(400, "invalid_value", f"order: {name[:60]!r} is not a field to order by (known: "
                               f"{', '.join(ORDER_FIELDS)}; prefix with - to reverse)", "order", "query")
        if name in seen:
            continue
        seen.add(name)
        column = getattr(Workspace, name)
        clauses.append(column.desc().nulls_first() if descending else column.asc().nulls_last())
    if "id" not in seen:
        clauses.append(Workspace.id.asc())
    return query.order_by(*clauses)
