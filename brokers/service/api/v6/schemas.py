"""Request and response bodies of the workspace API (pydantic), and the JSON error body."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, StrictBool, WithJsonSchema

from ...db.models import BASE_URL_LENGTH, DESCRIPTION_LENGTH, TITLE_LENGTH
from ..fields import clean_text

__all__ = [
    "ErrorBody",
    "ErrorItem",
    "Timestamp",
    "ValidationBody",
    "ValidationItem",
    "WorkspaceCreate",
    "WorkspaceDetail",
    "WorkspaceList",
    "WorkspacePatch",
    "WorkspaceSummary",
    "WorkspaceValidation",
    "clean_text",
    "format_timestamp",
]


def format_timestamp(value: datetime) -> str:
    """Format a datetime as ISO-8601 UTC with a ``Z`` suffix (``2015-10-05T21:26:04.876000Z``)."""
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


Text = Annotated[str, AfterValidator(clean_text)]
Timestamp = Annotated[
    datetime,
    PlainSerializer(format_timestamp, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Title = Annotated[str, Field(min_length=1, max_length=TITLE_LENGTH, pattern=r"^[^\x00]*\S[^\x00]*$",
                             description="The human-readable name of the workspace."), AfterValidator(clean_text)]
Description = Annotated[str, Field(max_length=DESCRIPTION_LENGTH, pattern=r"^[^\x00]*$",
                                   description="A longer description."), AfterValidator(clean_text)]
BaseUrl = Annotated[str, Field(max_length=BASE_URL_LENGTH, pattern=r"^https?://[^\s\x00]+$",
                               description="URL prefix of the workspace's files; null if not web-accessible."),
                    AfterValidator(clean_text)]
Configuration = Annotated[dict[str, Any], Field(description="The workspace configuration JSON (a JSON object).")]
IsActive = Annotated[StrictBool, Field(description="Whether the workspace is available for use.")]

_STRICT = ConfigDict(strict=True, extra="forbid")


class WorkspaceCreate(BaseModel):
    """Body of ``POST /v6/workspaces/``."""

    model_config = _STRICT
    title: Title
    description: Description | None = None
    base_url: BaseUrl | None = None
    is_active: IsActive = True
    configuration: Configuration


class WorkspacePatch(BaseModel):
    """Body of ``PATCH /v6/workspaces/{id}/``: only given fields change; ``description``/``base_url`` take null."""

    model_config = _STRICT
    title: Title = None  # type: ignore[assignment]  # absent is fine, null is not
    description: Description | None = None
    base_url: BaseUrl | None = None
    is_active: IsActive = None  # type: ignore[assignment]
    configuration: Configuration = None  # type: ignore[assignment]


class WorkspaceValidation(WorkspaceCreate):
    """Body of ``POST /v6/workspaces/validation/``: a create body, plus ``name`` of an existing workspace."""

    name: Annotated[Text, Field(max_length=200, description="Name of an existing workspace this would change.")] \
        | None = None


class WorkspaceSummary(BaseModel):
    """One workspace as listed."""

    id: int = Field(description="The unique identifier of the workspace.")
    name: str = Field(description="The stable identifying name, derived from the title at creation.")
    title: str
    description: str | None
    base_url: str | None
    is_active: bool
    used_size: int | None = Field(description="Bytes used by the workspace's files; null until measured.")
    total_size: int | None = Field(description="Capacity in bytes (store capacity or quota); null if unknown.")
    usage_measured: Timestamp | None = Field(description="When used_size/total_size were measured.")
    created: Timestamp
    deprecated: Timestamp | None
    last_modified: Timestamp


class WorkspaceDetail(WorkspaceSummary):
    """One workspace with its configuration (secrets masked; null if it was registered without storage)."""

    configuration: dict[str, Any] | None


class WorkspaceList(BaseModel):
    """A page of workspaces."""

    count: int = Field(description="How many workspaces match the query.")
    next: str | None = Field(description="Absolute URL of the next page, or null.")
    previous: str | None = Field(description="Absolute URL of the previous page, or null.")
    results: list[WorkspaceSummary]


class ValidationItem(BaseModel):
    """An error or warning of a validation; ``path`` is a JSON pointer into the request body."""

    name: str
    description: str
    path: str = ""


class ValidationBody(BaseModel):
    """The validation response."""

    is_valid: bool
    errors: list[ValidationItem]
    warnings: list[ValidationItem]


class ErrorItem(BaseModel):
    """One reason a request was refused."""

    name: str = Field(description="A stable identifier, e.g. missing_field, invalid_value, invalid_token.")
    description: str = Field(description="What is wrong, in words.")
    field: str = Field(description="The field concerned (dotted), e.g. title or configuration.broker.type.")
    location: str = Field(description="Where the field is: body, query, path or header.")


class ErrorBody(BaseModel):
    """The body of every 4xx/5xx response."""

    detail: str
    errors: list[ErrorItem] = []
