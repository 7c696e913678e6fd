"""A workspace's full state as history keeps it (configuration sealed, as stored), and back."""

from __future__ import annotations

from typing import Any

from ..db.models import Workspace

__all__ = ["CONTENT_FIELDS", "snapshot"]

CONTENT_FIELDS = ("title", "description", "base_url", "is_active", "settings", "frontend_settings", "variables",
                  "inputs", "tags", "dawg_id", "continue_on_failure")
"""What a revert restores, besides the configuration (ownership and trash are not content: they stay)."""


def snapshot(ws: Workspace) -> dict[str, Any]:
    """Return the state of ``ws``: every field a change can touch, the configuration as stored (sealed)."""
    state: dict[str, Any] = {field: getattr(ws, field) for field in CONTENT_FIELDS}
    state["tags"] = list(ws.tags)
    state["inputs"] = list(ws.inputs)
    state.update(name=ws.name, configuration=ws.stored_configuration,
                 owner_id=ws.owner_id, author_id=ws.author_id, trashed=ws.trashed is not None, version=ws.version)
    return state
