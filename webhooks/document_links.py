"""One-time document links sent by e-mail and SMS (/d/<token>): HTML pages for a browser, no account needed.

GET /d/<token> only shows a button: mail scanners and link previews fetch links with GET, and must
neither use the link up nor count as the recipient opening the document. POST consumes the link
(single use) and starts a short view session, held in an HttpOnly, SameSite=Strict cookie scoped to
/d/; the pages of that session record every look and download, and take the acknowledgement.
"""
from __future__ import annotations

import hmac

from flask import Blueprint, Flask, Response, redirect, render_template_string, request

from handlers import documents, timeutil
from handlers.errors import DomainError
from handlers.models import Organisation

from . import db
from .api.documents import file_response, settings, store
from .errors import STATUS

bp = Blueprint("document_links", __name__)
COOKIE = "xinma_document_view"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{ heading }}</title>
<style>body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;max-width:40em;margin:2em auto;
padding:0 1em;line-height:1.6}button{font-size:1.1em;padding:.5em 1.5em}dt{color:#555}dd{margin:0 0 .6em}</style>
</head><body data-code="{{ code or '' }}">
<h1>{{ heading }}</h1>
{% if message %}<p>{{ message }}</p>{% endif %}
{% if token %}
<p>您收到一份电子送达的法律文书。点击下方按钮查看；此链接仅可使用一次，请在本人设备上打开。</p>
<form method="post" action="/d/{{ token }}"><button type="submit">查看文书</button></form>
{% endif %}
{% if document %}
<dl>
<dt>案号</dt><dd>{{ document.case_number }}</dd>
<dt>文书</dt><dd>{{ document.title }}</dd>
<dt>送达机关</dt><dd>{{ issuer }}</dd>
<dt>文件 SHA-256</dt><dd style="word-break:break-all;font-family:monospace">{{ document.content_sha256 }}</dd>
</dl>
<p><a href="/d/view/content">查看 / 下载文书文件</a></p>
{% if document.acknowledged_at %}<p>已于 {{ acknowledged }} 签收。</p>
{% else %}
<form method="post" action="/d/view/acknowledge"><input type="hidden" name="csrf" value="{{ csrf }}">
<button type="submit">确认签收</button></form>
{% endif %}
<p>查看时间有限（{{ minutes }} 分钟）；之后请在信码小程序中查看。</p>
{% endif %}
</body></html>
"""


@bp.after_request
def _hide_token(response: Response) -> Response:
    # The app's access log (webhooks/observability.py) records the path, and the token in it is a secret:
    # whoever reads the log could open the document first. Blueprint hooks run before the app's.
    if request.view_args and "token" in request.view_args:
        request.path = "/d/[token]"
    return response


def _page(status: int = 200, **context) -> Response:
    context.setdefault("heading", "法律文书电子送达")
    for name in ("code", "message", "token", "document"):
        context.setdefault(name, None)
    response = Response(render_template_string(PAGE, **context), status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token must not leak to another site
    return response


def _error(e: DomainError) -> Response:
    return _page(STATUS[e.kind], heading="无法打开文书", code=e.code, message=e.message)


@bp.route("/d/<token>", methods=["GET"])
def landing(token):
    try:
        documents.peek_link(db.session(), token)
    except DomainError as e:
        return _error(e)
    return _page(token=token)


@bp.route("/d/<token>", methods=["POST"])
def open_link(token):
    cfg = settings()
    try:
        view = documents.open_link(db.session(), cfg, token)
    except DomainError as e:
        return _error(e)
    response = redirect("/d/view", code=303)
    response.set_cookie(COOKIE, view, max_age=int(cfg.link_session.total_seconds()), path="/d/", httponly=True,
                        samesite="Strict", secure=request.is_secure)
    return response


def _session():
    return documents.link_session(db.session(), request.cookies.get(COOKIE))


@bp.route("/d/view", methods=["GET"])
def view():
    s = db.session()
    try:
        document, link = _session()
    except DomainError as e:
        return _error(e)
    documents.read_via_link(s, document, link, what="metadata")
    issuer = s.get(Organisation, document.organisation_id)
    return _page(document=document, issuer=issuer.name, csrf=documents.link_csrf(request.cookies[COOKIE]),
                 acknowledged=timeutil.local_date(document.acknowledged_at) if document.acknowledged_at
                 else None, minutes=int(settings().link_session.total_seconds() // 60))


@bp.route("/d/view/content", methods=["GET"])
def content():
    try:
        document, link = _session()
        data = documents.content(store(), document)
    except DomainError as e:
        return _error(e)
    documents.read_via_link(db.session(), document, link, what="content")
    return file_response(document, data)


@bp.route("/d/view/acknowledge", methods=["POST"])
def acknowledge():
    try:
        document, link = _session()
    except DomainError as e:
        return _error(e)
    if not hmac.compare_digest(request.form.get("csrf", ""), documents.link_csrf(request.cookies[COOKIE])):
        return _error(DomainError("forbidden"))
    documents.acknowledge_via_link(db.session(), document, link)
    return redirect("/d/view", code=303)
