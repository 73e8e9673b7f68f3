"""Every error leaves as {"error": {"code", "message"}} with the status its kind calls for."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from handlers import errors as domain
from handlers.errors import DomainError

from . import db

log = logging.getLogger(__name__)

STATUS = {
    domain.INVALID: 422,
    domain.NOT_FOUND: 404,
    domain.FORBIDDEN: 403,
    domain.CONFLICT: 409,
    domain.UNAUTHENTICATED: 401,
}

# Errors raised by the edge itself (HTTP, parsing, limits): code, Chinese message.
HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求格式不正确"),
    401: ("not_authenticated", "请先登录"),
    403: ("forbidden", "无权进行此操作"),
    404: ("not_found", "未找到请求的资源"),
    405: ("method_not_allowed", "不支持该请求方法"),
    409: ("conflict", "数据冲突，请刷新后重试"),
    413: ("payload_too_large", "请求内容过大"),
    415: ("unsupported_media_type", "请求内容类型应为 application/json"),
    422: ("validation_failed", "请求数据不完整或格式不正确"),
    429: ("rate_limited", "操作过于频繁，请稍后再试"),
    500: ("internal_error", "服务器内部错误，请稍后再试"),
    503: ("unavailable", "服务暂时不可用"),
}
MALFORMED_JSON = ("malformed_json", "请求内容不是有效的 JSON")


def error_response(status: int, code: str, message: str, **extra):
    body = {"error": {"code": code, "message": message, **extra}}
    response = jsonify(body)
    response.status_code = status
    return response


def http_error_response(error: HTTPException):
    status = error.code or 500
    code, message = HTTP_ERRORS.get(status, ("http_error", error.name))
    extra = {}
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") if isinstance(data, dict) else None
    if status == 400 and messages and "json" in messages and "Invalid JSON body." in str(messages):
        code, message = MALFORMED_JSON
    elif messages:
        # webargs: {"json": {"field": ["msg"]}} -> fields
        fields = {}
        for location in messages.values():
            fields.update(location if isinstance(location, dict) else {"_": location})
        extra["fields"] = fields
    if status == 400 and getattr(error, "description", "").startswith("Failed to decode JSON"):
        code, message = MALFORMED_JSON
    return error_response(status, code, message, **extra)


def domain_error_response(error: DomainError):
    db.rollback()
    extra = {"detail": error.detail} if error.detail else {}
    return error_response(STATUS[error.kind], error.code, error.message, **extra)


def init_app(app: Flask) -> None:
    app.register_error_handler(DomainError, domain_error_response)
    app.register_error_handler(HTTPException, http_error_response)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return http_error_response(error)
        db.rollback()
        log.exception("unhandled error")
        return error_response(500, *HTTP_ERRORS[500])
