"""The database model: workspaces, their tags and history, and the users who own and change them."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["ACTIVE_STATUSES", "JOB_STATUSES", "SERVICE_USER", "Base", "Job", "JobHistory", "JobLog", "JobPart",
           "UTCDateTime", "User", "Workspace", "WorkspaceHistory", "WorkspaceTag", "utcnow"]

NAME_LENGTH = 50
TITLE_LENGTH = 100
DESCRIPTION_LENGTH = 500
BASE_URL_LENGTH = 1000
USER_NAME_LENGTH = 100
MAX_ID = 2**31 - 1
"""The largest id of an ``Integer`` key (workspaces, users, history items)."""
MAX_BIG_ID = 2**63 - 1
"""The largest value of a ``BigInteger`` column (dawg and tag ids, which other systems assign)."""
SERVICE_USER = "service"
"""The built-in admin user the service's own tokens (``--token``) act as; it owns workspaces created before users."""


JOB_STATUSES = ("waiting", "running", "finished", "error", "canceled")
"""A job's statuses, in the order a job goes through them (it ends in one of the last three)."""
ACTIVE_STATUSES = ("waiting", "running")
"""The statuses of a job that has not ended."""


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite keeps naive UTC, PostgreSQL ``timestamptz``)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store as UTC (naive on SQLite, whose text storage cannot keep an offset comparably)."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of the service's tables."""


class User(Base):
    """Someone who owns and changes workspaces. ``token_digest`` is the SHA-256 of their token (never the token)."""

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(USER_NAME_LENGTH), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    token_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Workspace(Base):
    """A registered workspace, as every API sees it.

    ``configuration`` holds the storage configuration as JSON text (None: the workspace has no storage yet); S3
    secrets in it are Fernet tokens when a secret key is configured. ``used_size``/``total_size``/
    ``usage_measured`` are the last background measurement. ``trashed`` is when it went to the trash (None: it
    is live). ``version`` grows by one with every change (the ``ETag``). ``last_run``/``last_run_duration``
    (seconds) are those of the last job that ended.
    """

    __tablename__ = "workspace"
    # AUTOINCREMENT on SQLite: a purged workspace's id is never given to another one.
    __table_args__ = (UniqueConstraint("name", name="uq_workspace_name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    title: Mapped[str] = mapped_column(String(TITLE_LENGTH))
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_LENGTH))
    base_url: Mapped[str | None] = mapped_column(String(BASE_URL_LENGTH))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    configuration: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deprecated: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    used_size: Mapped[int | None] = mapped_column(BigInteger)
    total_size: Mapped[int | None] = mapped_column(BigInteger)
    usage_measured: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    frontend_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inputs: Mapped[list[int]] = mapped_column(JSON, default=list)
    dawg_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    continue_on_failure: Mapped[bool] = mapped_column(Boolean, default=False)
    trashed: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    last_activity: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    last_run: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_duration: Mapped[int | None] = mapped_column(Integer)
    tag_rows: Mapped[list[WorkspaceTag]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                        order_by="WorkspaceTag.tag_id")

    @property
    def stored_configuration(self) -> Any:
        """The configuration as stored (JSON data, secrets sealed), or None."""
        return None if self.configuration is None else json.loads(self.configuration)

    @property
    def tags(self) -> list[int]:
        """The workspace's tag ids, ascending."""
        return [row.tag_id for row in self.tag_rows]

    @tags.setter
    def tags(self, values: list[int]) -> None:
        self.tag_rows = [WorkspaceTag(tag_id=value) for value in sorted(set(values))]


class WorkspaceTag(Base):
    """One tag id of a workspace (a table, so that lists filter by tag in SQL on every database)."""

    __tablename__ = "workspace_tag"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)


class WorkspaceHistory(Base):
    """The full state of a workspace after one change, who made it and how (``create``, ``edit``, ``trash``...).

    The state's configuration is sealed like the live one. History rows are never changed: a revert is a new row.
    """

    __tablename__ = "workspace_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)


class Job(Base):
    """A workspace job: the record of one storage operation (the task queue only carries its id).

    ``status`` moves ``waiting`` → ``running`` → ``finished``/``error``/``canceled``. A worker claims a waiting job
    by setting ``lease`` (a token of its own) and ``lease_expires``, and renews the lease while it runs; a job whose
    lease expired is retried (``attempts`` counts the runs) or ends in ``error``. ``cancel_requested`` asks a running
    job to stop at its next safe point. ``stats`` is the document's (``data_volumes``, ``files_count``,
    ``statuses_history``) plus the job kind's own figures; ``progress`` is live while it runs.
    """

    __tablename__ = "workspace_job"
    __table_args__ = (
        # One usage scan of a workspace at a time: a second request joins the waiting or running one.
        Index("uq_job_active_usage_scan", "workspace_id", unique=True,
              sqlite_where=text("kind = 'usage_scan' AND status IN ('waiting', 'running')"),
              postgresql_where=text("kind = 'usage_scan' AND status IN ('waiting', 'running')")),
        # A schedule fires once per slot and kind, however many processes look at the clock.
        UniqueConstraint("workspace_id", "kind", "scheduled_for", name="uq_job_schedule_slot"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="waiting", index=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dawg_job_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    origin: Mapped[str] = mapped_column(String(20), default="request")
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    origin_created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease: Mapped[str | None] = mapped_column(String(64))
    lease_expires: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class JobHistory(Base):
    """The state of a job after one status change (the document's job history)."""

    __tablename__ = "workspace_job_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("workspace_job.id", ondelete="CASCADE"), index=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)


class JobLog(Base):
    """One log line of a job: ``info``, ``warning`` or ``error``, written for a person following the job."""

    __tablename__ = "workspace_job_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("workspace_job.id", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobPart(Base):
    """One folder of a usage scan split over the workers: claimed under a lease like a job, its tally kept here.

    ``status`` is ``waiting``, ``running`` or ``done``; the scan that made the parts merges them (and takes over
    any part whose lease expired).
    """

    __tablename__ = "workspace_job_part"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("workspace_job.id", ondelete="CASCADE"), index=True)
    folder: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="waiting")
    lease: Mapped[str | None] = mapped_column(String(64))
    lease_expires: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(String(200))
    used_size: Mapped[int | None] = mapped_column(BigInteger)
    file_count: Mapped[int | None] = mapped_column(Integer)
