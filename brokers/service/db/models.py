"""The database model: one table, ``workspace``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Dialect, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "UTCDateTime", "Workspace", "utcnow"]

NAME_LENGTH = 50
TITLE_LENGTH = 100
DESCRIPTION_LENGTH = 500
BASE_URL_LENGTH = 1000


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


class Workspace(Base):
    """A registered workspace.

    ``configuration`` holds the configuration as JSON text; S3 secrets in it are Fernet tokens when a secret key
    is configured. ``used_size``/``total_size``/``usage_measured`` are the last background measurement.
    """

    __tablename__ = "workspace"
    __table_args__ = (UniqueConstraint("name", name="uq_workspace_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    title: Mapped[str] = mapped_column(String(TITLE_LENGTH))
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_LENGTH))
    base_url: Mapped[str | None] = mapped_column(String(BASE_URL_LENGTH))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    configuration: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deprecated: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    used_size: Mapped[int | None] = mapped_column(BigInteger)
    total_size: Mapped[int | None] = mapped_column(BigInteger)
    usage_measured: Mapped[datetime | None] = mapped_column(UTCDateTime)
