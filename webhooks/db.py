"""The request's database session: opened on first use, committed once when the request succeeded."""
from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from handlers.db import make_engine, make_sessionmaker


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["xinma.engine"] = engine
    app.extensions["xinma.sessionmaker"] = make_sessionmaker(engine)
    app.teardown_appcontext(_close)


def session() -> Session:
    if "db" not in g:
        g.db = current_app.extensions["xinma.sessionmaker"]()
    return g.db


def commit() -> None:
    """Commit the request's work. Called by the edge once per request, never by operations."""
    if "db" in g:
        g.db.commit()


def rollback() -> None:
    if "db" in g:
        g.db.rollback()


def _close(exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        if exc is not None:
            db.rollback()
        db.close()
