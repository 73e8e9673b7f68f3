"""Alembic migrations; run them with `xinma db upgrade`."""
