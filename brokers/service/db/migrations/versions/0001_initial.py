"""Initial schema: the workspace table.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from brokers.service.db.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``workspace``."""
    op.create_table(
        "workspace",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("base_url", sa.String(1000), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("configuration", sa.Text(), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("deprecated", UTCDateTime(), nullable=True),
        sa.Column("last_modified", UTCDateTime(), nullable=False),
        sa.Column("used_size", sa.BigInteger(), nullable=True),
        sa.Column("total_size", sa.BigInteger(), nullable=True),
        sa.Column("usage_measured", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("name", name="uq_workspace_name"),
    )
    op.create_index("ix_workspace_last_modified", "workspace", ["last_modified"])


def downgrade() -> None:
    """Drop ``workspace``."""
    op.drop_index("ix_workspace_last_modified", table_name="workspace")
    op.drop_table("workspace")
