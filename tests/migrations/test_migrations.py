"""Migrations build exactly the models' schema, and downgrade back to nothing, on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from handlers import migrate
from handlers.db import make_engine, scratch_schema
from handlers.models import Base


@pytest.fixture
def empty_database_url(database_url, tmp_path):
    """A second, empty database of the same kind as the test database."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    base, _, _ = database_url.partition("?options=")
    base = base.rstrip("?&")
    with scratch_schema(base, "xinma_mig") as url:
        yield url


def _diff(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def test_upgrade_to_head_matches_the_models(empty_database_url):
    migrate.upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        assert _diff(engine) == []
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM category")).scalar() > 10
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_everything(empty_database_url):
    migrate.upgrade(empty_database_url)
    migrate.downgrade(empty_database_url, "base")
    engine = make_engine(empty_database_url)
    try:
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        migrate.upgrade(empty_database_url)  # and back up again
        assert _diff(engine) == []
    finally:
        engine.dispose()
