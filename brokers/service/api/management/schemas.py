"""Request bodies of the management API, with the document's field names and checks of every field.

Flags (``disabled``, ``continue_on_failure``) are ``0``/``1`` as in the document, ``true``/``false`` too.
``settings.schedules`` are cron fields (checked with croniter), ``notification_emails`` e-mail addresses
(checked with email-validator, without DNS).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from croniter import croniter
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from ...db.models import DESCRIPTION_LENGTH, MAX_BIG_ID, MAX_ID, TITLE_LENGTH
from ...jobs.maintenance import SCHEDULE_KINDS
from ..fields import clean_text

__all__ = ["BulkItem", "OwnerChange", "Schedule", "WorkspaceCreate", "WorkspacePatch", "WorkspaceSettings"]

_STRICT = ConfigDict(strict=True, extra="forbid")
_CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_EXAMPLES = {"minute": "0-59", "hour": "0-23", "day": "1-31", "month": "1-12 or jan-dec",
             "day_of_week": "0-6 or sun-sat"}


def _json_text(value: Any) -> Any:
    """Take settings given as JSON text too (the document types them as a string holding JSON)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            raise ValueError("must be a JSON object (or a string holding one)") from None
    return value


def _email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"is not an e-mail address: {exc}") from None


Flag = Annotated[StrictBool | Literal[0, 1], AfterValidator(bool), Field(description="0 or 1 (or false/true).")]
Name = Annotated[str, Field(min_length=1, max_length=TITLE_LENGTH, pattern=r"^[^\x00]*\S[^\x00]*$",
                            description="The workspace's name (Scale's title), without leading or trailing "
                                        "spaces; unique in any case, trashed workspaces included."),
                 AfterValidator(clean_text), AfterValidator(str.strip)]
Description = Annotated[str, Field(max_length=DESCRIPTION_LENGTH, pattern=r"^[^\x00]*$"), AfterValidator(clean_text)]
Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
WorkspaceId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
GroupId = Annotated[StrictInt, Field(ge=1, le=MAX_BIG_ID, description="The id of the workspace's dawg (group).")]
TagId = Annotated[StrictInt, Field(ge=0, le=MAX_BIG_ID)]
JsonObject = Annotated[dict[str, Any], Field(description="Any JSON object.")]


class Schedule(BaseModel):
    """When the workspace runs: cron fields, ``*`` when left out; ``kind``, the job it starts (a usage scan)."""

    model_config = _STRICT
    minute: str = Field("*", max_length=100)
    hour: str = Field("*", max_length=100)
    day: str = Field("*", max_length=100)
    month: str = Field("*", max_length=100)
    day_of_week: str = Field("*", max_length=100)
    kind: str | None = Field(None, json_schema_extra={"enum": list(SCHEDULE_KINDS)},
                             description="The job the schedule starts (default usage_scan); stored only when given.")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        if value is not None and value not in SCHEDULE_KINDS:
            raise ValueError(f"is not a kind a schedule starts ({', '.join(SCHEDULE_KINDS)})")
        return value

    @field_validator(*_CRON_FIELDS)
    @classmethod
    def _cron(cls, value: str, info: Any) -> str:
        position = _CRON_FIELDS.index(info.field_name)
        expression = " ".join(value if i == position else "*" for i in range(5))
        if not value.strip() or " " in value.strip() or not croniter.is_valid(expression):
            raise ValueError(f"is not a cron {info.field_name} field ({_EXAMPLES[info.field_name]}, *, */N, "
                             "lists and ranges)")
        return value.strip()


class WorkspaceSettings(BaseModel):
    """The workspace's ``settings``."""

    model_config = _STRICT
    schedules: list[Schedule] = Field(default_factory=list, max_length=100)
    notification_emails: list[Email] = Field(default_factory=list, max_length=100)
    delete_data_after_success: StrictBool = False
    notify_on_finished: StrictBool | None = Field(
        None, description="Mail notification_emails when a job finishes too, not only when one ends in error; "
                          "stored only when given.")


class InputSettings(BaseModel):
    """The workspaces whose outputs this one reads."""

    model_config = _STRICT
    inputs: list[WorkspaceId] = Field(default_factory=list, max_length=1000)


class WorkspacePatch(BaseModel):
    """A partial workspace: only the given fields change. ``description`` and ``dawg_id`` take null."""

    model_config = _STRICT
    name: Name = None  # type: ignore[assignment]  # absent is fine, null is refused
    description: Description | None = None
    settings: Annotated[WorkspaceSettings, BeforeValidator(_json_text)] = None  # type: ignore[assignment]
    frontend_settings: JsonObject = None  # type: ignore[assignment]
    variables: JsonObject = None  # type: ignore[assignment]
    dawg_id: GroupId | None = None
    input_settings: InputSettings = None  # type: ignore[assignment]
    tags: list[TagId] = Field(None, max_length=100)  # type: ignore[arg-type]
    continue_on_failure: Flag = None  # type: ignore[assignment]
    disabled: Flag = None  # type: ignore[assignment]
    configuration: JsonObject = Field(None, description="The storage configuration (v6 `configuration`).")  # type: ignore[arg-type]


class WorkspaceCreate(WorkspacePatch):
    """A new workspace: ``name`` is required."""

    name: Name


class BulkItem(WorkspacePatch):
    """One item of a bulk edit: the ``id`` of the workspace and the fields to change."""

    id: WorkspaceId
    workspace_id: StrictInt | None = Field(None, description="Accepted for the document's example; ignored.")


class OwnerChange(BaseModel):
    """The new owner."""

    model_config = _STRICT
    user_id: Annotated[StrictInt, Field(ge=1, le=MAX_ID)]


NULLABLE = frozenset({"description", "dawg_id"})
"""The fields a PATCH may set to null."""


def changes_of(body: WorkspacePatch) -> dict[str, Any]:
    """Translate the given fields into the store's names (``name`` -> ``title``, ``disabled`` -> ``is_active``...).

    Raises:
        ValueError: A field that cannot be null is null (the message names it).
    """
    changes: dict[str, Any] = {}
    for field in body.model_fields_set - {"id", "workspace_id"}:
        value = getattr(body, field)
        if value is None and field not in NULLABLE:
            raise ValueError(field)
        if field == "name":
            changes["title"] = value
        elif field == "disabled":
            changes["is_active"] = not value
        elif field == "input_settings":
            changes["inputs"] = list(value.inputs)
        elif field == "settings":
            changes["settings"] = value.model_dump(exclude_none=True)  # optional keys only when given
        else:
            changes[field] = value
    return changes
