"""The JSON API under /api/v1, described by an OpenAPI 3 document generated from the code."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api as _Api

from .. import errors
from .common import ApiError


class Api(_Api):
    ERROR_SCHEMA = ApiError

    def handle_http_exception(self, error):
        # Our error shape, not flask-smorest's.
        return errors.http_error_response(error)


def init_app(app: Flask) -> None:
    from . import (
        accounts, admin, categories, codes, declarations, incentives, me, organisations, redemptions, session, subjects,
    )

    app.config.update(
        API_TITLE="Xinma (信码) API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": "Credit codes, incentives and notices. Errors are always "
                                    "{\"error\": {\"code\", \"message\"}}; see docs/errors.md."},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        },
    )
    api = Api(app)
    app.extensions["xinma.api"] = api
    for module in (session, me, accounts, organisations, declarations, subjects, categories, admin, codes, redemptions,
                   incentives):
        api.register_blueprint(module.blp, url_prefix="/api/v1" + module.PREFIX)
    from . import admin_outbox, contacts, notices  # the outbox (docs/outbox.md)
    for module in (notices, contacts, admin_outbox):
        api.register_blueprint(module.blp, url_prefix="/api/v1" + module.PREFIX)
    from . import documents, service_address  # legal service (docs/legal-service.md)
    for module in (documents, service_address):
        api.register_blueprint(module.blp, url_prefix="/api/v1" + module.PREFIX)
    from . import offers, policies  # policy offers (docs/policies.md)
    for module in (policies, offers):
        api.register_blueprint(module.blp, url_prefix="/api/v1" + module.PREFIX)
