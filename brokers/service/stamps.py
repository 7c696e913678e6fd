"""Times as the workspace-management document writes them: ``2017-01-01 15:35:00`` (UTC)."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["stamp"]


def stamp(moment: datetime | None) -> str | None:
    """Format a time as the document does: ``2017-01-01 15:35:00`` (UTC); None stays None."""
    return None if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
