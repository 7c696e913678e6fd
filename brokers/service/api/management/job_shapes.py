"""The management API's job answers and bodies: jobs (light or full), their history items and log lines.

``stats`` holds the document's ``statuses_history`` (when the job entered each status), and what the kind
measured: a usage scan's ``data_volumes`` (bytes) and ``files_count`` per top-level folder (``"/in"``, ``"/"``
for files at the root), ``used_size``/``total_size``/``free_size``/``file_count``; a clone's ``copied_files``...
``progress`` (``files_done``/``files_total``, ``bytes_done``/``bytes_total``) is live while the job runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from ...db.models import MAX_BIG_ID, MAX_ID, Job, JobHistory, JobLog
from ...stamps import stamp
from ...store.jobs import state_of
from ..errors import ApiError, validation_items

__all__ = ["JobRequest", "checked_settings", "job", "job_history_item", "log_line"]

_STRICT = ConfigDict(strict=True, extra="forbid")


def job(row: Job, full_structure: bool = False) -> dict[str, Any]:
    """A job as the document shows it; the full object adds when it started and ended, its runs and worker."""
    answer = state_of(row)
    if full_structure:
        answer.update(started=stamp(row.started), ended=stamp(row.ended), attempts=row.attempts, worker=row.worker,
                      cancel_requested=int(row.cancel_requested))
    return answer


def _historic(item: JobHistory) -> dict[str, Any]:
    return {"id": item.id, "created": stamp(item.created), "workspace_job": dict(item.state)}


def job_history_item(item: JobHistory, previous: JobHistory | None) -> dict[str, Any]:
    """One history item: the job's state after a status change, and the one before it."""
    answer = _historic(item)
    if previous is not None:
        answer["previous_history"] = _historic(previous)
    return answer


def log_line(row: JobLog) -> dict[str, Any]:
    """One log line."""
    return {"id": row.id, "workspace_job_id": row.job_id, "level": row.level, "text": row.text,
            "created": stamp(row.created)}


# ------------------------------------------------------------------------------------------------- request body
class CloneSettings(BaseModel):
    """``clone_data``: where to copy, and whether the source is emptied once every copy is verified."""

    model_config = _STRICT
    target_workspace_id: Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
    delete_data_after_success: StrictBool | None = Field(
        None, description="Delete the source files once every copy is verified (a move); default: the source "
                          "workspace's settings.delete_data_after_success.")


class CleanupSettings(BaseModel):
    """``cleanup``: how old a leftover must be to go."""

    model_config = _STRICT
    older_than: Annotated[float, Field(ge=0, le=10 * 365 * 86400, allow_inf_nan=False)] = Field(
        3600.0, description="Seconds; leftovers younger than this may belong to a write in progress.")


class ScanSettings(BaseModel):
    """``usage_scan``: whether to split it over the workers."""

    model_config = _STRICT
    split: StrictBool | None = Field(None, description=(
        "true: scan each top-level folder as a part on the queue, so that several workers share the scan; "
        "false: one pass on one worker. Default: split S3 workspaces when the workers are on Redis."))
    inventory: Annotated[str, Field(pattern=r"^s3://[^/\s]+(/[^\s]*)?$", max_length=1024)] | None = Field(
        None, description=("S3 workspaces: read the newest S3 Inventory report at s3://BUCKET/PREFIX/SOURCE-BUCKET/"
                           "CONFIG-ID instead of listing the bucket (for buckets too large to list); the figures "
                           "are the report's, as old as it is."))


class NoSettings(BaseModel):
    """The kinds that take no settings."""

    model_config = _STRICT


_SETTINGS: dict[str, type[BaseModel]] = {"usage_scan": ScanSettings, "delete_data": NoSettings,
                                         "clone_data": CloneSettings, "cleanup": CleanupSettings,
                                         "verify": NoSettings}


class JobRequest(BaseModel):
    """What to run: ``kind`` (default ``usage_scan``) and its ``settings``."""

    model_config = _STRICT
    kind: Literal["usage_scan", "delete_data", "clone_data", "cleanup", "verify"] = "usage_scan"
    settings: dict[str, Any] = Field(default_factory=dict, description=(
        "usage_scan: split, inventory. delete_data, verify: none. clone_data: target_workspace_id (required), "
        "delete_data_after_success. cleanup: older_than (seconds, default 3600)."))
    variables: dict[str, Any] = Field(default_factory=dict, description="Free-form values kept with the job.")
    dawg_job_id: Annotated[StrictInt | None, Field(ge=1, le=MAX_BIG_ID,
                                                   description="The group (dawg) job this job belongs to.")] = None


def checked_settings(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Check a job's settings against its kind's model.

    Raises:
        ApiError: 400, naming the field (``settings.target_workspace_id``).
    """
    try:
        return _SETTINGS[kind].model_validate(settings).model_dump(exclude_none=True)
    except ValidationError as exc:
        items = validation_items([{**e, "loc": ("body", "settings", *e["loc"])} for e in exc.errors()])
        raise ApiError(400, f"the settings of a {kind} job are not valid: "
                       + "; ".join(i["description"] for i in items), items) from None


# ---------------------------------------------------------------------------------------------- OpenAPI schemas
class JobOut(BaseModel):
    """A job; the fields marked full come with ``load_full_structure=1``."""

    id: int
    user_id: int | None = Field(description="Who asked for it (the service's own jobs: the user `service`).")
    workspace_id: int
    kind: str
    status: Literal["waiting", "running", "finished", "error", "canceled"]
    settings: dict[str, Any]
    variables: dict[str, Any]
    dawg_job_id: int | None
    stats: dict[str, Any] = Field(description="statuses_history, and what the kind measured (see the tag's text)")
    progress: dict[str, int] | None = Field(description="files_done/files_total, bytes_done/bytes_total")
    origin: str = Field(description="request, schedule, or refresh (the service's periodic usage scans)")
    created: str
    origin_created: str
    started: str | None = Field(None, description="full")
    ended: str | None = Field(None, description="full")
    attempts: int | None = Field(None, description="full; runs so far (a retry after a worker died counts)")
    worker: str | None = Field(None, description="full; host:pid/thread of the last worker")
    cancel_requested: int | None = Field(None, description="full")


class JobSelection(BaseModel):
    """What a list applied."""

    limit: int
    offset: int | None
    order_by: str
    order_dir: str
    include_deleted_workspaces_jobs: bool | None = None


class JobList(BaseModel):
    """A list of jobs."""

    workspace_jobs: list[JobOut]
    selection_settings: JobSelection


class OneJob(BaseModel):
    """One job."""

    workspace_job: JobOut


class JobHistoryPrevious(BaseModel):
    """A job history item."""

    id: int
    created: str
    workspace_job: dict[str, Any]


class JobHistoryOut(JobHistoryPrevious):
    """A job history item with the one before it."""

    previous_history: JobHistoryPrevious | None = None


class JobHistoryList(BaseModel):
    """``GET .../jobs/{job_id}/history``."""

    history_list: list[JobHistoryOut]
    selection_settings: JobSelection


class OneJobHistory(BaseModel):
    """``GET .../jobs/{job_id}/history/{history_id}``."""

    history: JobHistoryOut


class LogOut(BaseModel):
    """A log line."""

    id: int
    workspace_job_id: int
    level: Literal["info", "warning", "error"]
    text: str
    created: str


class LogList(BaseModel):
    """``GET .../jobs/{job_id}/logs``."""

    workspace_logs: list[LogOut]
    selection_settings: JobSelection


class OneLog(BaseModel):
    """``GET .../jobs/{job_id}/logs/{log_id}``."""

    workspace_log: LogOut


class LastJob(BaseModel):
    """A workspace's last job (null if it has none)."""

    workspace_id: int
    last_job: JobOut | None


class LastJobSelection(BaseModel):
    """The workspaces asked for."""

    workspace_ids: list[int]


class LastJobs(BaseModel):
    """``GET /workspaces/last_jobs``."""

    last_workspace_jobs: list[LastJob]
    selection_settings: LastJobSelection

