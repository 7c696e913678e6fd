"""Engine, sessions and migrations (Alembic ``upgrade head`` on startup).

Alembic is only imported when a migration has to run: a database already at :data:`HEAD` is left alone, and an
empty one gets the current tables from the models and is stamped with :data:`HEAD` (Alembic's recommended
"create_all, then stamp" for new databases), so that ``brokers serve`` answers quickly.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["HEAD", "MIGRATIONS", "make_engine", "make_sessions", "upgrade", "writing"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
"""The Alembic script directory shipped with the package."""
HEAD = "0003"
"""The newest migration's revision (a test checks it against the script directory)."""


_WRITE = "brokers_write"
"""The execution option :func:`writing` sets: SQLite then begins with ``BEGIN IMMEDIATE``."""


def make_engine(url: str) -> Engine:
    """Create the engine; a SQLite file gets its directory created, WAL journaling and a busy timeout.

    On SQLite the engine emits ``BEGIN`` itself (SQLAlchemy's recipe for pysqlite), so that a write transaction
    (:func:`writing`) can begin with ``BEGIN IMMEDIATE``: it waits for the write lock up front instead of reading
    a snapshot that another writer then makes stale (which SQLite refuses with "database is locked").
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # pysqlite's own BEGIN off: the "begin" event below emits it
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(_WRITE)
                                       else "BEGIN")

        return engine
    # As many pooled connections as request threads (anyio's default 40): none opened and closed per request.
    return create_engine(url, pool_pre_ping=True, pool_size=40, max_overflow=10)


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory (objects stay readable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def writing(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session in a write transaction, committed at the end (rolled back on error).

    A read-then-write transaction (check a version or a name, then change) must use it: on SQLite it holds the
    write lock from the start; on PostgreSQL the rows it reads ``FOR UPDATE`` are locked as usual.
    """
    with sessions() as session, session.begin():
        session.connection(execution_options={_WRITE: True})
        yield session


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic ``upgrade head``)."""
    from .models import Base

    with engine.begin() as connection:
        tables = set(inspect(connection).get_table_names())
        if "alembic_version" in tables:
            if list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars()) == [HEAD]:
                return
        elif not tables & set(Base.metadata.tables):
            Base.metadata.create_all(connection)
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                                    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
            connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD})
            log.info("created the service tables (schema revision %s)", HEAD)
            return
    run_migrations(engine)


def run_migrations(engine: Engine, revision: str = "head") -> None:
    """Run Alembic ``upgrade`` to ``revision`` on the engine's database."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
