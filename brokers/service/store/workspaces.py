"""Every change to a workspace, whichever API asks: checks, versions, names, history, secrets.

The functions work inside the caller's session and transaction (so that a bulk edit is all-or-nothing) and
raise :class:`~brokers.service.problems.ApiError` naming the field at fault. Each change bumps ``version``, sets
``last_modified``/``last_activity`` and appends a history row with the new full state.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from brokers.registry import validate_configuration

from ..db import writing
from ..db.models import MAX_ID, NAME_LENGTH, TITLE_LENGTH, User, Workspace, WorkspaceHistory, utcnow
from ..problems import ApiError
from ..security import SecretBox, SecretError, keep_masked_secrets
from .snapshot import CONTENT_FIELDS, snapshot
from .users import Actor

__all__ = [
    "change_owner",
    "check_version",
    "clone",
    "create",
    "etag",
    "find",
    "names_locked",
    "purge",
    "record",
    "restore",
    "revert",
    "slugify",
    "trash",
    "update",
]

_ADVISORY_KEY = 0x6272_6B73  # "brks": the PostgreSQL advisory lock serialising management-name checks


def slugify(title: str) -> str:
    """Return the stable name derived from a title: lower-case ASCII words joined by ``-`` (``raw-source``)."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:NAME_LENGTH].rstrip("-") or "workspace"


def _candidates(base: str) -> Iterator[str]:
    yield base
    number = 2
    while True:
        suffix = f"-{number}"
        yield base[:NAME_LENGTH - len(suffix)].rstrip("-") + suffix
        number += 1


def etag(ws: Workspace) -> str:
    """Return the ``ETag`` of a workspace's representations: its version, quoted."""
    return f'"{ws.version}"'


def check_version(ws: Workspace, if_match: str | None) -> None:
    """Refuse a change based on a stale representation (``If-Match`` not naming the current version).

    Raises:
        ApiError: 412 ``version_mismatch``.
    """
    if if_match is None:
        return
    wanted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" in wanted or etag(ws) in wanted:
        return
    raise ApiError.one(412, "version_mismatch", f"the workspace changed since that version: it is now {etag(ws)}; "
                       "read it again and repeat the change", "If-Match", "header")


def _not_found(ws_id: int, trashed: bool = False) -> ApiError:
    where = "in the trash" if trashed else ""
    return ApiError.one(404, "not_found", f"there is no workspace with id {ws_id}{' ' + where if where else ''}",
                        "id", "path")


def find(session: Session, ws_id: int, *, trashed: bool = False, lock: bool = False) -> Workspace:
    """Return a live workspace (or, with ``trashed``, one in the trash), locked for update if asked.

    Raises:
        ApiError: 404 when there is none.
    """
    if not 1 <= ws_id <= MAX_ID:
        raise _not_found(ws_id, trashed)
    ws = session.get(Workspace, ws_id, with_for_update=lock)
    if ws is None or (ws.trashed is not None) != trashed:
        raise _not_found(ws_id, trashed)
    return ws


def _may_change(actor: Actor, ws: Workspace) -> None:
    if not actor.may_change(ws.owner_id):
        raise ApiError.one(403, "not_owner", f"workspace {ws.id} belongs to another user: only its owner or an "
                           "admin may change it", "X-Access-Token", "header")


@contextmanager
def names_locked(session: Session, needed: bool = True) -> Iterator[None]:
    """Serialise the write transactions that check management names, until they end (``needed``: they do).

    SQLite's write transactions (:func:`~brokers.service.db.writing`) are serial already; on PostgreSQL this
    takes a transaction-level advisory lock, which every process of the service shares.
    """
    if needed and session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})
    yield


def _check_title_free(session: Session, title: str, exclude: int | None, field: str) -> None:
    """Refuse a management name another workspace holds, in any case (the database's ``lower``), trash included."""
    query = select(Workspace.id, Workspace.trashed).where(func.lower(Workspace.title) == func.lower(title))
    if exclude is not None:
        query = query.where(Workspace.id != exclude)
    taken = session.execute(query.limit(1)).first()
    if taken is not None:
        where = " (by a workspace in the trash; it is reserved until purged)" if taken.trashed else ""
        raise ApiError.one(409, "name_taken", f"the name {title[:100]!r} is taken{where}", field)


def _pointer_to_dotted(pointer: str) -> str:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]] if pointer else []
    return ".".join(["configuration", *parts])


def checked_configuration(box: SecretBox, new: Mapping[str, Any], stored: Any) -> tuple[Any, Any]:
    """Return the configuration (plain, sealed) to store, masked secrets replaced by the stored ones.

    Raises:
        ApiError: 400 when a secret is masked without a stored value, or the configuration is not valid.
    """
    try:
        plain = box.open(keep_masked_secrets(new, stored))
    except SecretError as exc:
        raise ApiError.one(400, "masked_secret", str(exc), f"configuration.{exc.field}") from None
    result = validate_configuration(plain, check_access=False)
    if not result.is_valid:
        items = [{"name": e["name"], "description": e["description"], "field": _pointer_to_dotted(e["path"]),
                  "location": "body"} for e in result.errors]
        raise ApiError(400, "the configuration is not valid: " + "; ".join(e["description"] for e in items), items)
    return plain, box.seal(plain)


def _open_quietly(box: SecretBox, stored: Any) -> Any:
    try:
        return box.open(stored)
    except SecretError:
        return None


def _check_inputs(session: Session, inputs: list[int], own_id: int | None, field: str) -> None:
    """Refuse inputs that are not workspaces (trashed ones are: they may come back), itself, or make a cycle."""
    wanted = set(inputs)
    if own_id is not None and own_id in wanted:
        raise ApiError.one(400, "invalid_value", f"{field}: a workspace cannot be its own input", field)
    if not wanted:
        return
    if any(not 1 <= i <= MAX_ID for i in wanted):
        raise ApiError.one(400, "invalid_value", f"{field}: workspace ids are 1-{MAX_ID}", field)
    found = set(session.scalars(select(Workspace.id).where(Workspace.id.in_(wanted))))
    missing = sorted(wanted - found)
    if missing:
        raise ApiError.one(400, "unknown_workspace", f"{field}: there is no workspace with id "
                           f"{', '.join(map(str, missing[:10]))}", field)
    if own_id is None:
        return
    seen: set[int] = set()
    frontier = wanted
    while frontier:  # follow the inputs' inputs: reaching this workspace again would be a cycle
        if own_id in frontier:
            raise ApiError.one(400, "input_cycle", f"{field}: workspace {own_id} would become an input of "
                               "itself through its inputs", field)
        seen |= frontier
        rows = session.scalars(select(Workspace.inputs).where(Workspace.id.in_(frontier)))
        frontier = {i for listed in rows for i in listed} - seen


def record(session: Session, ws: Workspace, action: str, actor: Actor) -> WorkspaceHistory:
    """Append the workspace's current full state to its history."""
    row = WorkspaceHistory(workspace_id=ws.id, action=action, user_id=actor.id, created=ws.last_modified,
                           state=snapshot(ws))
    session.add(row)
    return row


def _touch(ws: Workspace) -> None:
    now = utcnow()
    ws.last_modified = ws.last_activity = now
    ws.version = (ws.version or 0) + 1


def _set_active(ws: Workspace, active: bool) -> None:
    if not active and ws.deprecated is None:
        ws.deprecated = ws.last_modified  # the moment of this change (set first)
    elif active:
        ws.deprecated = None
    ws.is_active = active


def _apply(session: Session, box: SecretBox, ws: Workspace, changes: Mapping[str, Any], *, unique_title: bool,
           fields: Mapping[str, str]) -> bool:
    """Set the given fields on ``ws``; return True if its storage configuration changed."""
    remeasure = False
    if "configuration" in changes:
        stored = ws.stored_configuration
        if changes["configuration"] is None:
            remeasure = ws.configuration is not None
            ws.configuration = None
        else:
            plain, sealed = checked_configuration(box, changes["configuration"], stored)
            if stored is None or plain != _open_quietly(box, stored):
                ws.configuration = json.dumps(sealed)
                remeasure = True
        if remeasure:
            ws.used_size = ws.total_size = ws.usage_measured = None
    if "title" in changes and changes["title"] != ws.title:  # (a change of case only is checked too)
        if unique_title:
            _check_title_free(session, changes["title"], ws.id, fields.get("title", "title"))
        ws.title = changes["title"]
    if "inputs" in changes:
        _check_inputs(session, list(changes["inputs"]), ws.id, fields.get("inputs", "inputs"))
        ws.inputs = list(dict.fromkeys(changes["inputs"]))
    if "tags" in changes:
        ws.tags = list(changes["tags"])
    if "is_active" in changes:
        _set_active(ws, bool(changes["is_active"]))
    for field in ("description", "base_url", "settings", "frontend_settings", "variables", "dawg_id",
                  "continue_on_failure"):
        if field in changes:
            setattr(ws, field, changes[field])
    return remeasure


def create(sessions: sessionmaker[Session], box: SecretBox, actor: Actor, changes: Mapping[str, Any], *,
           unique_title: bool = False, fields: Mapping[str, str] | None = None, action: str = "create") -> Workspace:
    """Register a workspace owned and authored by ``actor``, in a transaction of its own.

    ``changes`` holds the fields to set (``title`` required). Its ``name`` is derived from the title (``-2``,
    ``-3`` on collision). With ``unique_title`` (the management API's ``name``), a title held by any other
    workspace, trashed ones included, is refused.

    Raises:
        ApiError: 400 for a bad configuration or input, 409 for a taken name.
    """
    fields = fields or {}
    base = slugify(changes["title"])
    for _attempt in range(10):
        try:
            with writing(sessions) as session, names_locked(session, unique_title):
                now = utcnow()
                ws = Workspace(title=changes["title"], configuration=None, created=now, last_modified=now,
                               last_activity=now, owner_id=actor.id, author_id=actor.id, version=1, is_active=True,
                               settings={}, frontend_settings={}, variables={}, inputs=[], continue_on_failure=False)
                if unique_title:
                    _check_title_free(session, changes["title"], None, fields.get("title", "title"))
                stem = base[:NAME_LENGTH - 6]
                taken = set(session.scalars(select(Workspace.name).where(Workspace.name.like(stem + "%"))))
                ws.name = next(c for c in _candidates(base) if c not in taken)
                _apply(session, box, ws, {k: v for k, v in changes.items() if k != "title"}, unique_title=False,
                       fields=fields)
                session.add(ws)
                session.flush()
                record(session, ws, action, actor)
        except IntegrityError:  # a concurrent create took the name: try the next one
            continue
        return ws
    raise ApiError.one(409, "name_conflict", "could not find a free name, try again", fields.get("title", "title"))


def update(session: Session, box: SecretBox, actor: Actor, ws: Workspace, changes: Mapping[str, Any], *,
           if_match: str | None = None, unique_title: bool = False, fields: Mapping[str, str] | None = None,
           action: str = "edit") -> bool:
    """Change the given fields of ``ws`` (locked by the caller) as ``actor``; return True if it needs measuring.

    Nothing given: nothing changes (no new version, no history row).

    Raises:
        ApiError: 403 if ``actor`` may not change it, 412 for a stale ``if_match``, 400/409 for bad values.
    """
    _may_change(actor, ws)
    check_version(ws, if_match)
    if not changes:
        return False
    _touch(ws)
    remeasure = _apply(session, box, ws, changes, unique_title=unique_title, fields=fields or {})
    record(session, ws, action, actor)
    return remeasure


def trash(session: Session, actor: Actor, ws: Workspace, *, if_match: str | None = None) -> None:
    """Move a live workspace to the trash: every list stops showing it; its names stay reserved."""
    _may_change(actor, ws)
    check_version(ws, if_match)
    _touch(ws)
    ws.trashed = ws.last_modified
    record(session, ws, "trash", actor)


def restore(session: Session, actor: Actor, ws: Workspace) -> None:
    """Bring a workspace back from the trash."""
    _may_change(actor, ws)
    _touch(ws)
    ws.trashed = None
    record(session, ws, "restore", actor)


def purge(session: Session, actor: Actor, ws: Workspace) -> None:
    """Delete a trashed workspace for good, with its history (its names become free).

    Raises:
        ApiError: 409 while another workspace lists it as an input (its id would point at nothing).
    """
    _may_change(actor, ws)
    users = [row.id for row in session.execute(select(Workspace.id, Workspace.inputs)) if ws.id in row.inputs]
    if users:
        raise ApiError.one(409, "in_use", f"workspace {ws.id} is an input of workspace "
                           f"{', '.join(map(str, users[:10]))}: remove it from their input_settings first",
                           "workspace_id", "path")
    session.delete(ws)


def change_owner(session: Session, actor: Actor, ws: Workspace, user_id: int, *, field: str = "user_id",
                 if_match: str | None = None) -> None:
    """Give ``ws`` to another (active) user.

    Raises:
        ApiError: 400 if there is no such active user.
    """
    _may_change(actor, ws)
    check_version(ws, if_match)
    user = session.get(User, user_id) if 1 <= user_id <= MAX_ID else None
    if user is None or user.revoked is not None:
        raise ApiError.one(400, "unknown_user", f"{field}: there is no active user with id {user_id}", field)
    if ws.owner_id == user_id:
        return
    ws.owner_id = user_id
    _touch(ws)
    record(session, ws, "owner", actor)


def revert(session: Session, box: SecretBox, actor: Actor, ws: Workspace, item: WorkspaceHistory, *,
           unique_title: bool = True, if_match: str | None = None) -> bool:
    """Make the workspace's content what it was at a history item, as a new change (history is never rewritten).

    The owner and the trash state stay as they are; the configuration is checked again (and re-sealed).
    Returns True if the workspace needs measuring.
    """
    state = item.state
    changes: dict[str, Any] = {k: state[k] for k in CONTENT_FIELDS if k in state}
    stored = state.get("configuration")
    if stored is None:
        changes["configuration"] = None
    else:
        try:
            changes["configuration"] = box.open(stored)
        except SecretError as exc:
            raise ApiError.one(409, "sealed_secret", f"history item {item.id}: {exc}", "history_id",
                               "path") from None
    return update(session, box, actor, ws, changes, if_match=if_match, unique_title=unique_title,
                  fields={"title": "name", "inputs": "input_settings.inputs"}, action="revert")


def clone(sessions: sessionmaker[Session], box: SecretBox, actor: Actor, source: Workspace) -> Workspace:
    """Create ``clone_<name>`` (then ``clone_<name>_2``...) with the source's configuration and settings.

    Only the source's owner or an admin may clone it: a clone carries the source's storage secrets.
    """
    _may_change(actor, source)
    changes: dict[str, Any] = {k: getattr(source, k) for k in ("description", "base_url", "is_active", "settings",
                                                               "frontend_settings", "variables", "dawg_id",
                                                               "continue_on_failure")}
    changes.update(inputs=list(source.inputs), tags=list(source.tags))
    if source.configuration is not None:
        try:
            changes["configuration"] = box.open(source.stored_configuration)
        except SecretError as exc:
            raise ApiError.one(409, "sealed_secret", str(exc), "id", "path") from None
    stem = "clone_" + source.title
    for number in range(1, 1000):
        suffix = "" if number == 1 else f"_{number}"
        title = stem[:TITLE_LENGTH - len(suffix)] + suffix
        try:
            return create(sessions, box, actor, {**changes, "title": title}, unique_title=True, action="clone",
                          fields={"title": "name", "inputs": "input_settings.inputs"})
        except ApiError as exc:
            if exc.status != 409 or exc.errors[0]["name"] != "name_taken":
                raise
    raise ApiError.one(409, "name_taken", f"every clone name of {source.title[:100]!r} is taken", "name")
