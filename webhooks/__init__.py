"""The edge of Xinma: the Flask application, its configuration and its HTTP surfaces."""
from __future__ import annotations

from flask import Flask, request
from werkzeug.routing import IntegerConverter

from handlers.models import MAX_ID
from handlers.privacy import Keys
from handlers.redemptions import MeasureCache
from handlers.signing import KeyRing

from . import api, config, db, demo_chat, document_links, errors, limits, observability, pages, wechat


class RowId(IntegerConverter):
    """`<int:…>` in our routes: our ids are INTEGER columns (signed 32-bit on PostgreSQL), so a larger
    number is a 404, not an out-of-range error from the database (the OpenAPI document states the maximum)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def create_app(config_overrides: dict | None = None) -> Flask:
    """Build the app. No database work happens here: migrations are `xinma db upgrade`."""
    settings = config.load(config_overrides)
    app = Flask(__name__, instance_path=settings["INSTANCE_PATH"], static_folder=None)
    app.config.update(settings)
    app.url_map.converters["int"] = RowId  # before any route is added
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["xinma.keys"] = Keys.from_secret(app.config["SECRET_KEY"])
    # One per process: verify keys and the signer are cached here, not looked up per scan.
    app.extensions["xinma.keyring"] = KeyRing(app.extensions["xinma.keys"])
    # Measures as scans judge them, for a few seconds (handlers/redemptions.py, MEASURE_TTL).
    app.extensions["xinma.measures"] = MeasureCache()

    db.init_app(app)
    observability.init_app(app)
    errors.init_app(app)
    limits.init_app(app)
    api.init_app(app)
    wechat.init_app(app)
    demo_chat.init_app(app)
    pages.init_app(app)
    document_links.init_app(app)

    @app.after_request
    def _commit(response):
        # One commit per request, and only for a request that succeeded.
        if response.status_code < 400:
            db.commit()
        else:
            db.rollback()
        return response

    @app.before_request
    def _json_only():
        if (request.path.startswith("/api/") and request.method in limits.WRITE_METHODS
                and request.content_length and not request.is_json
                and not getattr(app.view_functions.get(request.endpoint), "accepts_files", False)):
            return errors.error_response(415, *errors.HTTP_ERRORS[415])
        return None

    return app
