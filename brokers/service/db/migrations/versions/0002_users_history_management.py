"""Users, workspace history and tags, and the workspace-management fields.

Existing workspaces are kept as they are: they are owned and authored by the built-in ``service`` user (whose
tokens are the service's ``--token`` values), get empty management fields and one history row (``migrate``) with
their state, so that a revert can always go back to what the landed version stored.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from brokers.service.db.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_EMPTY_OBJECT = sa.text("'{}'")
_EMPTY_LIST = sa.text("'[]'")


def upgrade() -> None:
    """Add ``user``, ``workspace_tag``, ``workspace_history`` and the new ``workspace`` columns."""
    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("token_digest", sa.String(64), nullable=True, unique=True),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("revoked", UTCDateTime(), nullable=True),
    )
    now = datetime.now(timezone.utc)
    users = sa.table("user", sa.column("name", sa.String), sa.column("is_admin", sa.Boolean),
                     sa.column("created", UTCDateTime()))
    op.bulk_insert(users, [{"name": "service", "is_admin": True, "created": now}])
    # On SQLite the table is rebuilt (batch mode), with AUTOINCREMENT: purged ids are never reused.
    with op.batch_alter_table("workspace", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("configuration", existing_type=sa.Text(), nullable=True)
        batch.add_column(sa.Column("settings", sa.JSON(), nullable=False, server_default=_EMPTY_OBJECT))
        batch.add_column(sa.Column("frontend_settings", sa.JSON(), nullable=False, server_default=_EMPTY_OBJECT))
        batch.add_column(sa.Column("variables", sa.JSON(), nullable=False, server_default=_EMPTY_OBJECT))
        batch.add_column(sa.Column("inputs", sa.JSON(), nullable=False, server_default=_EMPTY_LIST))
        batch.add_column(sa.Column("dawg_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("continue_on_failure", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("trashed", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("author_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_activity", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")))
        batch.create_foreign_key("fk_workspace_owner_id_user", "user", ["owner_id"], ["id"])
        batch.create_foreign_key("fk_workspace_author_id_user", "user", ["author_id"], ["id"])
        batch.create_index("ix_workspace_dawg_id", ["dawg_id"])
        batch.create_index("ix_workspace_trashed", ["trashed"])
    op.create_table(
        "workspace_tag",
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspace.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("tag_id", sa.BigInteger(), primary_key=True),
    )
    op.create_index("ix_workspace_tag_tag_id", "workspace_tag", ["tag_id"])
    op.create_table(
        "workspace_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=True),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
    )
    op.create_index("ix_workspace_history_workspace_id", "workspace_history", ["workspace_id"])
    _adopt_existing_workspaces(now)


def _adopt_existing_workspaces(now: datetime) -> None:
    """Give every existing workspace the service user as owner and author, and a first history row."""
    bind = op.get_bind()
    service_id = bind.execute(sa.text("SELECT id FROM \"user\" WHERE name = 'service'")).scalar_one()
    bind.execute(sa.text("UPDATE workspace SET owner_id = :u, author_id = :u, last_activity = last_modified"),
                 {"u": service_id})
    rows = bind.execute(sa.text("SELECT id, name, title, description, base_url, is_active, configuration "
                                "FROM workspace ORDER BY id")).mappings().all()
    history = sa.table("workspace_history", sa.column("workspace_id", sa.Integer), sa.column("action", sa.String),
                       sa.column("user_id", sa.Integer), sa.column("created", UTCDateTime()),
                       sa.column("state", sa.JSON()))
    op.bulk_insert(history, [{
        "workspace_id": row["id"], "action": "migrate", "user_id": service_id, "created": now,
        "state": {"name": row["name"], "title": row["title"], "description": row["description"],
                  "base_url": row["base_url"], "is_active": bool(row["is_active"]),
                  "configuration": json.loads(row["configuration"]), "settings": {}, "frontend_settings": {},
                  "variables": {}, "inputs": [], "tags": [], "dawg_id": None, "continue_on_failure": False,
                  "owner_id": service_id, "author_id": service_id, "trashed": False, "version": 1},
    } for row in rows])


def downgrade() -> None:
    """Drop what :func:`upgrade` added (workspaces without a configuration cannot go back: they are removed)."""
    op.drop_index("ix_workspace_history_workspace_id", table_name="workspace_history")
    op.drop_table("workspace_history")
    op.drop_index("ix_workspace_tag_tag_id", table_name="workspace_tag")
    op.drop_table("workspace_tag")
    op.execute("DELETE FROM workspace WHERE configuration IS NULL")
    with op.batch_alter_table("workspace") as batch:
        batch.drop_index("ix_workspace_trashed")
        batch.drop_index("ix_workspace_dawg_id")
        batch.drop_constraint("fk_workspace_author_id_user", type_="foreignkey")
        batch.drop_constraint("fk_workspace_owner_id_user", type_="foreignkey")
        for column in ("version", "last_activity", "author_id", "owner_id", "trashed", "continue_on_failure",
                       "dawg_id", "inputs", "variables", "frontend_settings", "settings"):
            batch.drop_column(column)
        batch.alter_column("configuration", existing_type=sa.Text(), nullable=False)
    op.drop_table("user")
