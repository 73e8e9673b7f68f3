"""Legal documents (法律文书电子送达): issuers upload and serve; recipients read and acknowledge; both export the
evidence, as JSON and as a print-ready receipt (送达回证)."""
from __future__ import annotations

from datetime import datetime

from flask import Response, current_app, render_template_string, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from handlers import documents, evidence, storage, subjects, timeutil
from handlers.errors import DomainError
from handlers.models import EvidenceEntry, LegalDocument, Organisation

from .. import auth, db
from ..limits import write_limit
from .common import BEARER, PageArgs, SubjectSummary, errors_doc, keys, page_schema, page_view

PREFIX = "/documents"
blp = Blueprint("documents", __name__, description="Legal documents served electronically (法律文书电子送达)")

# Room for the multipart envelope and the form fields around the file.
FORM_OVERHEAD = 64 * 1024


def store() -> storage.DocumentStore:
    """The document store of this app, made once from XINMA_DOCUMENT_STORE."""
    ext = current_app.extensions
    if "xinma.document_store" not in ext:
        ext["xinma.document_store"] = storage.from_setting(current_app.config.get("DOCUMENT_STORE"),
                                                          current_app.config["INSTANCE_PATH"])
    return ext["xinma.document_store"]


def settings() -> documents.Settings:
    return documents.Settings.from_config(current_app.config, link_base=request.host_url)


@blp.before_request
def _upload_limit():
    # The app's body limit is for JSON; an upload may be as large as a document. Refuse a larger body
    # before reading it.
    if request.endpoint != "documents.upload":
        return
    limit = int(current_app.config["DOCUMENT_MAX_BYTES"])
    if request.content_length is not None and request.content_length > limit + FORM_OVERHEAD:
        raise DomainError("document_too_large", detail={"max_bytes": limit})
    request.max_content_length = limit + FORM_OVERHEAD


# --- schemas -------------------------------------------------------------------------------------

class UploadFormSchema(Schema):
    case_number = fields.String(required=True, metadata={"description": f"at most {documents.CASE_NUMBER_MAX}"})
    title = fields.String(required=True, metadata={"description": f"at most {documents.TITLE_MAX}"})
    subject_id = fields.Integer(load_default=None, metadata={"description": "the recipient, by id; or identifier"})
    identifier = fields.String(load_default=None, metadata={
        "description": "the recipient's unified social credit code (or ID number), looked up by its keyed hash"})
    organisation_id = fields.Integer(load_default=None, metadata={
        "description": "the issuing organisation, when the account serves for several"})


class UploadFileSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary", "description":
                      "PDF, PNG or JPEG, recognised by content; at most XINMA_DOCUMENT_MAX_BYTES"})


class DeliverySchema(Schema):
    channel = fields.String(metadata={"enum": ["wechat", "email", "sms"]})
    address = fields.String(metadata={"description": "masked"})
    sent_at = fields.String(allow_none=True)
    delivered_at = fields.String(allow_none=True)
    failed_at = fields.String(allow_none=True)


class IssuerSchema(Schema):
    organisation_id = fields.Integer()
    name = fields.String()


class DocumentSchema(Schema):
    id = fields.Integer()
    case_number = fields.String()
    title = fields.String()
    issuer = fields.Nested(IssuerSchema)
    subject = fields.Nested(SubjectSummary)
    content_type = fields.String()
    size_bytes = fields.Integer()
    content_sha256 = fields.String()
    served_at = fields.DateTime()
    deadline_at = fields.DateTime()
    opened_at = fields.DateTime(allow_none=True)
    acknowledged_at = fields.DateTime(allow_none=True)
    status = fields.String(metadata={"enum": ["served", "honoured", "evaded"]})
    role = fields.String(metadata={"enum": ["recipient", "issuer"], "description": "what the caller is to it"})


class DocumentDetail(DocumentSchema):
    channels = fields.List(fields.Nested(DeliverySchema))


DocumentPage = page_schema("DocumentPage", DocumentSchema)


class EvidenceArgs(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "html"]),
                           metadata={"description": "json: the chain and the receipt; html: the receipt to print"})


class EvidenceSchema(Schema):
    document_id = fields.Integer()
    format = fields.Integer(metadata={"description": "of the canonical serialisation (docs/legal-service.md)"})
    entries = fields.List(fields.Dict(), metadata={"description": "the document's entries, in order"})
    commitment_entry = fields.Dict(allow_none=True, metadata={"description": "the commitment it was served under"})
    head = fields.Dict(metadata={"description": "the chain's head when exported: {seq, hash}"})
    verification = fields.Dict()
    receipt = fields.Dict()


# --- views ---------------------------------------------------------------------------------------

def _role(document: LegalDocument) -> str | None:
    return documents.role_of(auth.account(), document)


def document_view(document: LegalDocument, *, detail: bool = False) -> dict:
    s = db.session()
    issuer = s.get(Organisation, document.organisation_id)
    out = {
        "id": document.id, "case_number": document.case_number, "title": document.title,
        "issuer": {"organisation_id": issuer.id, "name": issuer.name},
        "subject": subjects.summary(s, subjects.get(s, document.subject_id)),
        "content_type": document.content_type, "size_bytes": document.size_bytes,
        "content_sha256": document.content_sha256, "served_at": document.served_at,
        "deadline_at": document.deadline_at, "opened_at": document.opened_at,
        "acknowledged_at": document.acknowledged_at, "status": document.status.value, "role": _role(document),
    }
    if detail:
        out["channels"] = [
            {"channel": d.channel, "address": d.address_masked, "sent_at": _iso(d.sent_at),
             "delivered_at": _iso(d.delivered_at), "failed_at": _iso(d.failed_at)}
            for d in documents.deliveries(s, document.id)]
    return out


def _iso(at: datetime | None) -> str | None:
    return evidence.timestamp(at) if at is not None else None


@blp.route("", methods=["POST"])
@write_limit()
@blp.arguments(UploadFormSchema, location="form")
@blp.arguments(UploadFileSchema, location="files")
@blp.response(201, DocumentDetail)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409, 413, 422)
def upload(form, files):
    """Serve a document (multipart/form-data): stored by its SHA-256 and sent to every committed address at once.

    409 no_service_address / service_address_revoked when the subject has no commitment in force;
    422 document_too_large (detail.max_bytes) or document_type_not_allowed; 403 not_an_issuer."""
    actor = auth.account()
    document = documents.serve(db.session(), keys(), store(), actor, settings(), data=files["file"].read(), **form)
    return document_view(document, detail=True)


upload.accepts_files = True  # multipart, not JSON (webhooks/__init__.py)


@blp.route("", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, DocumentPage)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 422)
def index(args):
    """Documents served on my enterprises and by my organisations, newest first. Listing is not reading."""
    page = documents.list_for(db.session(), auth.account(), **args)
    return page_view(page, document_view)


@blp.route("/<int:document_id>", methods=["GET"])
@blp.response(200, DocumentDetail)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def show(document_id):
    """The document's details and delivery per channel. A recipient's look is 'opened' in the evidence;
    anyone but the recipient's agents and the issuer gets 404."""
    document, _ = documents.read(db.session(), auth.account(), document_id, what="metadata")
    return document_view(document, detail=True)


@blp.route("/<int:document_id>/content", methods=["GET"])
@blp.response(200, description="the file (application/pdf, image/png or image/jpeg)")
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 409)
def content(document_id):
    """The file itself, exactly as served (its SHA-256 in X-Content-SHA256). Recorded as 'downloaded'."""
    document, _ = documents.read(db.session(), auth.account(), document_id, what="content")
    return file_response(document, documents.content(store(), document))


def file_response(document: LegalDocument, data: bytes) -> Response:
    name = f"document-{document.id}.{documents.EXTENSIONS.get(document.content_type, 'bin')}"
    response = Response(data, mimetype=document.content_type)
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    response.headers["X-Content-SHA256"] = document.content_sha256
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/<int:document_id>/acknowledge", methods=["POST"])
@write_limit()
@blp.response(200, DocumentDetail)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def acknowledge(document_id):
    """Acknowledge receipt (签收) with one click; again changes nothing. Only the recipient's agents."""
    return document_view(documents.acknowledge(db.session(), auth.account(), document_id), detail=True)


@blp.route("/<int:document_id>/evidence", methods=["GET"])
@blp.arguments(EvidenceArgs, location="query")
@blp.response(200, EvidenceSchema, description="format=json; format=html gives the receipt as text/html")
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404, 422)
def evidence_export(args, document_id):
    """The document's evidence: its hash-chained entries (they verify on their own), the commitment's
    entry, the chain's head, and the receipt (送达回证) with when service is deemed complete."""
    s = db.session()
    document, entries = documents.export_evidence(s, auth.account(), document_id)
    body = evidence_body(document, entries)
    if args["format"] == "html":
        return Response(receipt_html(body), mimetype="text/html")
    return body


def evidence_body(document: LegalDocument, entries: list) -> dict:
    s = db.session()
    rows = [evidence.as_dict(e) for e in entries]
    broken = evidence.verify_document(rows, content_sha256=document.content_sha256)
    seq = (rows[0]["payload"].get("commitment") or {}).get("evidence_seq") if rows else None
    commitment = s.get(EvidenceEntry, seq) if seq else None
    commitment_row = evidence.as_dict(commitment) if commitment is not None else None
    commitment_ok = commitment_row is not None and evidence.entry_hash(commitment_row) == commitment_row["hash"] \
        and commitment_row["hash"] == rows[0]["payload"]["commitment"].get("evidence_hash")
    try:
        file_ok = storage.sha256_hex(store().get(document.content_sha256)) == document.content_sha256
    except storage.StoreError:
        file_ok = False
    head = evidence.head(s)
    return {
        "document_id": document.id, "format": evidence.FORMAT, "entries": rows, "commitment_entry": commitment_row,
        "head": {"seq": head[0], "hash": head[1]} if head else None,
        "verification": {"ok": broken is None and commitment_ok and file_ok,
                         "document_chain": broken is None, "broken": broken.describe() if broken else None,
                         "commitment_entry": commitment_ok, "file_sha256": file_ok},
        "receipt": documents.receipt(rows),
    }


# --- the receipt, print-ready --------------------------------------------------------------------

EVENT_NAMES = {
    "served": "立案送达", "sent": "发出", "delivered": "到达送达地址", "delivery_failed": "投递失败",
    "notified": "站内通知", "notice_pushed": "通知推送成功", "notice_push_failed": "通知推送失败",
    "opened": "受送达人查阅", "downloaded": "受送达人下载", "acknowledged": "受送达人签收",
    "issuer_read": "送达机关查阅", "evidence_exported": "导出证据", "honoured": "按时接收（守信记录）",
    "evaded": "逾期未接收（失信记录）",
}
CHANNEL_NAMES = {"wechat": "微信", "email": "电子邮箱", "sms": "短信", "notice": "站内通知",
                 "miniprogram": "信码小程序", "subscribe": "小程序订阅消息", "template": "公众号模板消息"}
BASIS_NAMES = {"delivered": "文书到达受送达人确认的电子送达地址", "opened": "受送达人查阅文书",
               "acknowledged": "受送达人签收文书"}


def _local(stamp: str | None) -> str:
    if not stamp:
        return "—"
    at = datetime.fromisoformat(stamp).astimezone(timeutil.LOCAL)
    return at.strftime("%Y-%m-%d %H:%M:%S")


RECEIPT = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>送达回证 {{ r.document.case_number }}</title>
<style>
@page { size: A4; margin: 16mm 14mm; }
body { font-family: "Songti SC", "SimSun", "Noto Serif CJK SC", "Source Han Serif SC", serif; color: #000;
       max-width: 180mm; margin: 0 auto; font-size: 11pt; line-height: 1.5; }
h1 { text-align: center; font-size: 20pt; letter-spacing: .5em; margin: 0 0 2mm; }
p.sub { text-align: center; margin: 0 0 6mm; }
table { border-collapse: collapse; width: 100%; margin-bottom: 5mm; page-break-inside: auto; }
th, td { border: 1px solid #000; padding: 1.5mm 2mm; vertical-align: top; text-align: left; }
th { width: 28%; font-weight: normal; background: #f2f2f2; }
tr { page-break-inside: avoid; }
.hash { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 8pt; word-break: break-all; }
.chain th, .chain td { font-size: 9pt; width: auto; }
.ok { font-weight: bold; } .bad { font-weight: bold; color: #b00; }
.deemed { font-size: 13pt; font-weight: bold; }
@media screen { body { padding: 8mm; } }
</style></head><body>
<h1>送达回证</h1>
<p class="sub">（电子送达 · 信码平台）</p>
<table>
<tr><th>案号</th><td>{{ r.document.case_number }}</td></tr>
<tr><th>送达文书</th><td>{{ r.document.title }}</td></tr>
<tr><th>送达机关</th><td>{{ r.issuer.name }}</td></tr>
<tr><th>受送达人</th><td>{{ r.recipient.name }}（{{ r.recipient.identifier }}）</td></tr>
<tr><th>文书文件</th><td>{{ r.document.content_type }}，{{ r.document.size_bytes }} 字节<br>
  SHA-256 <span class="hash">{{ r.document.content_sha256 }}</span></td></tr>
<tr><th>送达地址承诺</th><td>第 {{ r.commitment.version }} 版，证据序号 {{ r.commitment.evidence_seq }}，
  承诺文本 SHA-256 <span class="hash">{{ r.commitment.consent_sha256 }}</span>
  {% if commitment_at %}<br>确认时间 {{ commitment_at }}{% endif %}</td></tr>
<tr><th>送达方式</th><td>电子送达，发出时间 {{ local(r.served_at) }}（北京时间，下同）</td></tr>
</table>
<table>
<tr><th>送达渠道</th><th>送达地址</th><th>发出</th><th>到达</th><th>投递失败</th></tr>
{% for c in r.channels %}
<tr><td>{{ channel_names.get(c.channel, c.channel) }}</td><td>{{ c.address }}</td><td>{{ local(c.sent_at) }}</td>
<td>{{ local(c.delivered_at) }}</td><td>{{ local(c.failed_at) }}</td></tr>
{% endfor %}
</table>
<table>
<tr><th>查阅时间</th><td>{{ local(r.opened_at) }}{% if r.opened_via %}（{{ channel_names.get(r.opened_via, r.opened_via) }}）{% endif %}</td></tr>
<tr><th>签收时间</th><td>{{ local(r.acknowledged_at) }}</td></tr>
<tr><th>送达完成时间</th><td class="deemed">{% if r.deemed_served_at %}{{ local(r.deemed_served_at) }}
  <br><span style="font-size:10pt;font-weight:normal">依据：{{ basis_names[r.deemed_served_basis] }}（证据序号 {{ r.deemed_served_seq }}）</span>
  {% else %}尚未完成{% endif %}</td></tr>
<tr><th>认定规则</th><td>{{ r.rule }}</td></tr>
</table>
<table class="chain">
<tr><th>序号</th><th>事件</th><th>渠道</th><th>时间</th><th>本条哈希（SHA-256）</th></tr>
{% for e in entries %}
<tr><td>{{ e.seq }}</td><td>{{ event_names.get(e.event, e.event) }}</td>
<td>{{ channel_names.get(e.channel, e.channel or "—") }}</td><td>{{ local(e.at) }}</td>
<td class="hash">{{ e.hash }}</td></tr>
{% endfor %}
</table>
<table>
<tr><th>证据链校验</th><td>{% if v.ok %}<span class="ok">通过</span>：本文书各条证据的哈希与链接、承诺记录、文件 SHA-256 均一致
  {% else %}<span class="bad">未通过</span>：{{ v.broken or "承诺记录或文件与证据不一致" }}{% endif %}</td></tr>
<tr><th>导出时证据链头</th><td>序号 {{ head.seq }}<br><span class="hash">{{ head.hash }}</span></td></tr>
<tr><th>如何核验</th><td>每条证据的哈希为其规范化 JSON（docs/legal-service.md）的 SHA-256，并包含上一条的哈希；
  平台可用 <span class="hash">xinma evidence verify --head {{ head.seq }}:{{ head.hash }}</span> 核验整条证据链未被改动。</td></tr>
</table>
<p style="text-align:right">生成时间 {{ generated }}</p>
</body></html>
"""


def receipt_html(body: dict) -> str:
    commitment = body["commitment_entry"]
    return render_template_string(
        RECEIPT, r=body["receipt"], entries=body["entries"], v=body["verification"], head=body["head"] or {},
        commitment_at=_local(commitment["at"]) if commitment else None, local=_local, event_names=EVENT_NAMES,
        channel_names=CHANNEL_NAMES, basis_names=BASIS_NAMES, generated=_local(evidence.timestamp(timeutil.now())))
