"""Workspace jobs: the job table (the record; the task queue only carries ids), history, log lines, scan parts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from brokers.service.db.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ACTIVE_SCAN = "kind = 'usage_scan' AND status IN ('waiting', 'running')"


def upgrade() -> None:
    """Add the job tables (jobs, their history, log lines and scan parts) and ``workspace.last_run*``."""
    with op.batch_alter_table("workspace") as batch:
        batch.add_column(sa.Column("last_run", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_run_duration", sa.Integer(), nullable=True))
    op.create_table(
        "workspace_job",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("dawg_job_id", sa.BigInteger(), nullable=True),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("scheduled_for", UTCDateTime(), nullable=True),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("origin_created", UTCDateTime(), nullable=False),
        sa.Column("started", UTCDateTime(), nullable=True),
        sa.Column("ended", UTCDateTime(), nullable=True),
        sa.Column("dispatched", UTCDateTime(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("lease", sa.String(64), nullable=True),
        sa.Column("lease_expires", UTCDateTime(), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.UniqueConstraint("workspace_id", "kind", "scheduled_for", name="uq_job_schedule_slot"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_workspace_job_workspace_id", "workspace_job", ["workspace_id"])
    op.create_index("ix_workspace_job_status", "workspace_job", ["status"])
    op.create_index("ix_workspace_job_dawg_job_id", "workspace_job", ["dawg_job_id"])
    op.create_index("uq_job_active_usage_scan", "workspace_job", ["workspace_id"], unique=True,
                    sqlite_where=sa.text(_ACTIVE_SCAN), postgresql_where=sa.text(_ACTIVE_SCAN))
    op.create_table(
        "workspace_job_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("workspace_job.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
    )
    op.create_index("ix_workspace_job_history_job_id", "workspace_job_history", ["job_id"])
    op.create_table(
        "workspace_job_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("workspace_job.id", ondelete="CASCADE"), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_workspace_job_log_job_id", "workspace_job_log", ["job_id"])
    op.create_table(
        "workspace_job_part",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("workspace_job.id", ondelete="CASCADE"), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("lease", sa.String(64), nullable=True),
        sa.Column("lease_expires", UTCDateTime(), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("used_size", sa.BigInteger(), nullable=True),
        sa.Column("file_count", sa.Integer(), nullable=True),
    )
    op.create_index("ix_workspace_job_part_job_id", "workspace_job_part", ["job_id"])


def downgrade() -> None:
    """Drop the job tables and columns."""
    op.drop_table("workspace_job_part")
    op.drop_table("workspace_job_log")
    op.drop_table("workspace_job_history")
    op.drop_table("workspace_job")
    with op.batch_alter_table("workspace") as batch:
        batch.drop_column("last_run_duration")
        batch.drop_column("last_run")
