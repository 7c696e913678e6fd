"""Alembic environment: runs on the connection the service hands over, or on ``BROKERS_DATABASE_URL``."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from brokers.service.db.models import Base
from brokers.service.settings import Settings

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:  # the alembic command line, for developers writing a new migration
    url = Settings(database_url=os.environ.get("BROKERS_DATABASE_URL")).url
    with create_engine(url).connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
