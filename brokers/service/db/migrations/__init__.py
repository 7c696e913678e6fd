"""Alembic migrations of the service database (run on startup: ``upgrade head``)."""
