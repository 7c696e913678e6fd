"""The schema: Alembic migrations and the fast path for new databases agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from brokers.service.db import HEAD, MIGRATIONS, make_engine, run_migrations, upgrade
from brokers.service.db.models import Base


def differences(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def version(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def test_head_constant_is_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


def test_migrations_and_the_new_database_fast_path_give_the_models_schema(database_url) -> None:
    engine = make_engine(database_url)
    try:
        run_migrations(engine)  # the migration scripts, step by step
        assert version(engine) == [HEAD]
        assert differences(engine) == []
        upgrade(engine)  # at head: nothing to do
        assert version(engine) == [HEAD]
        Base.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
        upgrade(engine)  # empty database: tables from the models, stamped
        assert version(engine) == [HEAD]
        assert differences(engine) == []
        assert {"workspace", "alembic_version"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_an_older_database_is_migrated(database_url) -> None:
    engine = make_engine(database_url)
    try:
        run_migrations(engine, "base")  # an empty database as Alembic left it: only alembic_version
        assert "alembic_version" in inspect(engine).get_table_names()
        upgrade(engine)
        assert version(engine) == [HEAD]
        assert differences(engine) == []
    finally:
        engine.dispose()
