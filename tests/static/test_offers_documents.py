"""Policy offers and legal documents in Chromium, on the real API: the demo story of policy offers (an admin
publishes a subsidy, the matched enterprise gets the push, confirms with one click, the admin approves and pays,
the enterprise confirms receipt with one click); a refused click that says why; a court serves a PDF, the agent
opens it in the page and acknowledges it, the court reads the evidence and downloads the receipt; an agent
commits, changes and revokes the service address; the WeChat binding code; contacts with consent."""
from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest

from handlers import checks, demo, demo_policies, documents, offers, wechat_users
from handlers.errors import DomainError

from .support import assert_reads_well, sign_in, wait_for_view

NOTICES_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "pages" / "notices.js"
DEMO_POLICY = demo_policies.TITLE


def api_ok(served, method: str, path: str, body: dict | None = None, *, account: str, status: int = 200):
    code, answer = served.call(method, path, body, token=served.token_of(account))
    assert code == status, answer
    return answer


def offer_of(served, account: str, policy_title: str) -> dict:
    mine = api_ok(served, "GET", "/me/offers?limit=200", account=account)["items"]
    return next(o for o in mine if o["policy"]["title"] == policy_title)


def notices_of(served, account: str, **query) -> list[dict]:
    qs = "&".join(f"{k}={v}" for k, v in {"limit": 200, **query}.items())
    return api_ok(served, "GET", f"/me/notices?{qs}", account=account)["items"]


def pdf(title: str) -> bytes:
    """A one-page PDF showing the title (in Chinese, with the CJK font the browser tests need anyway)."""
    from PIL import Image, ImageDraw, ImageFont
    font_path = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
    font = ImageFont.truetype(str(font_path), 30) if font_path.exists() else ImageFont.load_default()
    page = Image.new("RGB", (595, 842), "white")
    draw = ImageDraw.Draw(page)
    for n, line in enumerate(["惠州市中级人民法院", title, "（2026）粤13民初1234号", "本院认为……"]):
        draw.text((60, 90 + 60 * n), line, fill="black", font=font)
    out = io.BytesIO()
    page.save(out, "PDF")
    return out.getvalue()


def frame_with(page, test, attempts: int = 100):
    """The page's frame whose URL passes ``test``, once it exists (frames of other origins cannot be awaited from
    the page's own script)."""
    for _ in range(attempts):
        found = next((f for f in page.frames if test(f.url)), None)
        if found is not None:
            return found
        page.wait_for_timeout(100)
    return None


def drawn_page(frame, attempts: int = 100) -> bool:
    """Whether the PDF viewer in ``frame`` came to show a white page (for the screenshot: it draws after loading)."""
    from PIL import Image
    for _ in range(attempts):
        picture = Image.open(io.BytesIO(frame.screenshot())).convert("L")
        white = sum(picture.histogram()[241:])
        if white > picture.width * picture.height // 4:
            return True
        frame.page.wait_for_timeout(100)
    return False


def serve_through_the_page(court, served, *, identifier: str, case_number: str, title: str, data: bytes) -> None:
    court.click("#tabbar >> text=送达")
    wait_for_view(court, "serve")
    court.fill("#serve-form input[name=identifier]", identifier)
    court.fill("#serve-form input[name=case_number]", case_number)
    court.fill("#serve-form input[name=title]", title)
    court.set_input_files("#serve-form input[name=file]", files=[{
        "name": "ruling.pdf", "mimeType": "application/pdf", "buffer": data}])
    court.click("#serve-form button[type=submit]")


# --- the kinds of notices --------------------------------------------------------------------------------

def test_the_notices_page_knows_every_kind_of_notice_the_server_writes():
    # handlers write these kinds (offers.NOTICES, documents.KIND, the redemption receipts); the page's KINDS table
    # must have each, or a notice shows without its label and buttons.
    source = NOTICES_JS.read_text(encoding="utf-8")
    table = source[source.index("export const KINDS = {"):source.index("\n};", source.index("export const KINDS"))]
    known = set(re.findall(r"^  (\w+):", table, re.MULTILINE))
    written = set(offers.NOTICES) | {documents.KIND, "redemption", "redemption_voided"}
    assert known == written


# --- policy offers -------------------------------------------------------------------------------------

def test_admin_publishes_enterprise_confirms_with_one_click_admin_pays_enterprise_confirms_receipt(
        served, new_page, shoot):
    admin = new_page()
    sign_in(admin, served, "admin", expect="admin")
    admin.click("#tabbar >> text=政策")
    wait_for_view(admin, "policies")
    admin.locator("#policies li", has_text=DEMO_POLICY).locator("a.title").click()
    admin.wait_for_selector("#policy[data-state=draft]")
    assert "上年度纳税额的 5%，单户最高 200,000.00 元" in admin.inner_text("#policy")
    assert "红码或 D 级企业不予兑现" in admin.inner_text("#policy")

    # A preview tells nobody.
    admin.click("[data-action=preview]")
    assert "可兑现 2 户" in admin.inner_text("#match-result")
    assert not [n for n in notices_of(served, "enterprise-a") if n["body"].get("policy_title") == DEMO_POLICY]

    admin.click("[data-action=publish]")
    admin.click(".dialog button:has-text('发布')")
    admin.wait_for_selector("#policy[data-state=published]")
    assert "推送 2 户" in admin.inner_text("#match-result")
    assert admin.inner_text("#stats tr[data-state=notified] td") == "2"
    assert_reads_well(admin)

    # The enterprise got the push: the 消息 tab counts it.
    agent = new_page()
    sign_in(agent, served, "enterprise-a", expect="code")
    badge = agent.locator("#tabbar [data-tab=notices] .tab-badge")
    badge.wait_for()
    assert int(badge.inner_text()) >= 1
    assert "未读" in agent.locator("#tabbar [data-tab=notices]").get_attribute("aria-label")
    agent.click("#tabbar >> text=消息")
    wait_for_view(agent, "notices")
    item = agent.locator("#notices li[data-kind=offer_matched]", has_text=DEMO_POLICY)
    assert "143000.00 元" in item.inner_text() and "待确认" in item.inner_text()
    assert_reads_well(agent)
    shoot(agent, "notices-enterprise")
    # Shown, so read: nothing unread is left of what was listed.
    badge.wait_for(state="hidden")
    assert notices_of(served, "enterprise-a", unread="true") == []

    # One click, no dialog: the state changes in place.
    offer = offer_of(served, "enterprise-a", DEMO_POLICY)
    assert offer["state"] == "notified" and offer["actions"] == ["confirm", "decline"]
    item.locator("[data-action=confirm]").click()
    item.locator(".now [data-state=confirmed]").wait_for()
    assert item.locator("[data-action=confirm]").count() == 0
    assert agent.locator(".dialog").count() == 0
    offer = offer_of(served, "enterprise-a", DEMO_POLICY)
    assert offer["state"] == "confirmed" and offer["confirmed_at"]
    # … and the server's own notice of it shows on the tab.
    badge.wait_for()
    assert [n["kind"] for n in notices_of(served, "enterprise-a", unread="true")] == ["offer_confirmed"]

    item.locator("[data-action=open]").click()
    agent.wait_for_selector("section.offer[data-state=confirmed]")
    card = agent.inner_text("section.offer")
    assert "已确认，待审核" in card and "143,000.00 元" in card and "惠州市工业和信息化局" in card
    assert "确认享受" in agent.inner_text("section.offer ol.steps")
    assert_reads_well(agent)
    shoot(agent, "offer")

    # The department approves the confirmed and pays the approved, with the payment's reference.
    admin.reload()
    admin.wait_for_selector("#stats tr[data-state=confirmed] td:text-is('1')")
    admin.click("[data-action=approve]")
    admin.wait_for_selector("#stats tr[data-state=approved] td:text-is('1')")
    admin.fill("#pay-form input[name=payment_reference]", "GK2026-000123")
    admin.click("#pay-form button[type=submit]")
    admin.wait_for_selector("#stats tr[data-state=disbursed] td:text-is('1')")
    paid = admin.locator("#policy-offers li[data-state=disbursed]")
    assert "GK2026-000123" in paid.inner_text()
    assert_reads_well(admin)
    admin.locator("#stats").scroll_into_view_if_needed()
    shoot(admin, "policy")

    # The enterprise is told it was paid, and confirms receipt with one click.
    agent.click("#tabbar >> text=消息")
    wait_for_view(agent, "notices")
    told = agent.locator("#notices li[data-kind=offer_disbursed]", has_text=DEMO_POLICY)
    assert "拨付凭证号：GK2026-000123" in told.inner_text() and "已拨付，待确认到账" in told.inner_text()
    told.locator("[data-action=open]").click()
    agent.wait_for_selector("section.offer[data-state=disbursed]")
    assert "GK2026-000123" in agent.inner_text("section.offer")
    agent.click("section.offer [data-action=receipt]")
    agent.wait_for_selector("section.offer[data-state=received]")
    assert "已到账" in agent.inner_text("section.offer .state-line")
    assert agent.locator("section.offer [data-action]").count() == 0  # nothing left to click
    offer = offer_of(served, "enterprise-a", DEMO_POLICY)
    assert offer["state"] == "received" and offer["received_at"]
    shoot(agent, "offer-received")
    assert admin.errors == agent.errors == []


def test_a_refused_click_says_why_and_shows_the_state_now(served, new_page):
    # A policy of its own, for A-grade enterprises only: enterprise-a's offer.
    orgs = api_ok(served, "GET", "/admin/organisations?status=approved&limit=200", account="admin")["items"]
    bureau = next(o for o in orgs if o["name"] == "惠州市工业和信息化局")
    today = checks.today()
    policy = api_ok(served, "POST", "/admin/policies", {
        "organisation_id": bureau["id"], "title": "A级纳税企业稳岗奖励", "amount_rule": {"fixed_fen": 500000},
        "conditions": {"kinds": ["enterprise"], "min_grade": "A"}, "notice_from": today.isoformat(),
        "notice_until": (today + timedelta(days=14)).isoformat()}, account="admin", status=201)
    api_ok(served, "POST", f"/admin/policies/{policy['id']}/publish", {}, account="admin")
    offer = offer_of(served, "enterprise-a", policy["title"])

    agent = new_page()
    sign_in(agent, served, "enterprise-a", expect="code")
    agent.goto(served.url(f"#/offers/{offer['id']}"))
    agent.wait_for_selector("section.offer[data-state=notified] [data-action=confirm]")
    assert "5,000.00 元" in agent.inner_text("section.offer")

    # Meanwhile another agent's decline wins (here, through the API).
    api_ok(served, "POST", f"/offers/{offer['id']}/decline", {"note": "本企业不符合稳岗条件"}, account="enterprise-a")
    agent.click("section.offer [data-action=confirm]")
    agent.wait_for_selector("section.offer[data-state=declined]")
    problem = agent.inner_text("section.offer .problem")
    assert "当前状态下不能进行此操作" in problem and "当前状态：已放弃" in problem and "illegal_transition" in problem
    assert agent.locator("section.offer [data-action=confirm]").count() == 0
    assert "本企业不符合稳岗条件" in agent.inner_text("section.offer")
    assert offer_of(served, "enterprise-a", policy["title"])["state"] == "declined"
    assert agent.errors == []


def test_admin_writes_a_draft_policy_in_the_page(served, new_page):
    admin = new_page()
    sign_in(admin, served, "admin", expect="admin")
    admin.click("#tabbar >> text=政策")
    wait_for_view(admin, "policies")
    admin.click("text=新建政策")
    form = admin.locator("#policy-form")
    form.locator("select[name=organisation_id]").select_option(label="惠州市工业和信息化局")
    form.locator("input[name=title]").fill("专精特新企业首次认定奖励")
    form.locator("input[value=rate]").check()
    form.locator("input[name=rate_percent]").fill("2.5")
    form.locator("input[name=cap_yuan]").fill("50000")
    form.locator("select[name=min_grade]").select_option("B")
    form.locator("input[name=industry_prefixes]").fill("C39, C38")
    form.locator("input[name=tags_all]").fill("专精特新")
    form.locator("input[name=budget_yuan]").fill("300000")
    form.locator("input[name=notice_until]").fill((checks.today() + timedelta(days=10)).isoformat())
    form.locator("button[type=submit]").click()
    admin.wait_for_selector("#policy[data-state=draft]")
    shown = admin.inner_text("#policy")
    assert "上年度纳税额的 2.5%，单户最高 50,000.00 元" in shown and "须具备：专精特新" in shown

    policy = next(p for p in api_ok(served, "GET", "/admin/policies?limit=200", account="admin")["items"]
                  if p["title"] == "专精特新企业首次认定奖励")
    assert policy["amount_rule"] == {"base": "last_year_tax", "rate_bp": 250, "cap_fen": 5_000_000}
    assert policy["budget_fen"] == 30_000_000 and policy["state"] == "draft"
    c = policy["conditions"]
    assert c["min_grade"] == "B" and c["industry_prefixes"] == ["C39", "C38"] and c["tags_all"] == ["专精特新"]
    assert admin.errors == []


def test_a_held_offer_says_why_and_offers_no_click(served, new_page):
    # Held by the credit gate (here set directly: the demo's enterprise-a stays green for the other tests).
    from handlers import timeutil
    from handlers.models import Offer, OfferState

    orgs = api_ok(served, "GET", "/admin/organisations?status=approved&limit=200", account="admin")["items"]
    bureau = next(o for o in orgs if o["name"] == "惠州市工业和信息化局")
    today = checks.today()
    policy = api_ok(served, "POST", "/admin/policies", {
        "organisation_id": bureau["id"], "title": "A级企业用电补贴", "amount_rule": {"fixed_fen": 200000},
        "conditions": {"kinds": ["enterprise"], "min_grade": "A"}, "notice_from": today.isoformat(),
        "notice_until": (today + timedelta(days=14)).isoformat()}, account="admin", status=201)
    api_ok(served, "POST", f"/admin/policies/{policy['id']}/publish", {}, account="admin")
    offer = offer_of(served, "enterprise-a", policy["title"])
    with served.app.extensions["xinma.sessionmaker"]() as session:
        row = session.get(Offer, offer["id"])
        row.state, row.held_from, row.reason, row.held_at = (OfferState.held, OfferState.confirmed, "credit_red",
                                                             timeutil.now())
        session.commit()

    agent = new_page()
    sign_in(agent, served, "enterprise-a", expect="code")
    agent.goto(served.url(f"#/offers/{offer['id']}"))
    agent.wait_for_selector("section.offer[data-state=held]")
    card = agent.inner_text("section.offer")
    assert "暂缓兑现" in card and f"暂缓原因：{offers.HOLD_REASONS['credit_red']}" in card
    assert "信用状况恢复后" in card
    assert agent.locator("section.offer [data-action]").count() == 0
    assert_reads_well(agent)
    assert agent.errors == []


# --- legal documents ---------------------------------------------------------------------------------

def test_court_serves_a_pdf_the_agent_opens_it_in_the_page_and_acknowledges_it(served, new_page, shoot):
    data = pdf("民事裁定书")
    case = "（2026）粤13民初1234号"
    court = new_page()
    sign_in(court, served, "court", expect="scan")
    serve_through_the_page(court, served, identifier=demo.identifier("pengcheng-electronics"), case_number=case,
                           title="民事裁定书", data=data)
    served_item = court.locator("#served li", has_text=case)
    served_item.wait_for()
    assert "待签收" in served_item.inner_text()
    assert_reads_well(court)
    doc = next(d for d in api_ok(served, "GET", "/documents?limit=200", account="court")["items"]
               if d["case_number"] == case)
    assert doc["content_sha256"] == hashlib.sha256(data).hexdigest() and doc["content_type"] == "application/pdf"

    agent = new_page()
    sign_in(agent, served, "enterprise-a", expect="code")
    agent.click("#tabbar >> text=消息")
    wait_for_view(agent, "notices")
    notice = agent.locator(f"#notices li[data-kind=legal_document]:has-text('{case}')")
    assert "惠州市中级人民法院" in notice.inner_text() and "待签收" in notice.inner_text()
    notice.locator("[data-action=open]").click()
    agent.wait_for_selector(f"section.document[data-document='{doc['id']}'][data-role=recipient]")

    # The page shows the file served, in a frame of its own (the policy allows blob: frames: a refused one would be
    # an error page), having checked it against the SHA-256 the service recorded.
    frame = agent.locator("iframe.doc-frame")
    frame.wait_for()
    assert frame.get_attribute("data-sha256") == doc["content_sha256"]
    assert "文件与送达时一致" in agent.inner_text("#file-check")
    shown = frame_with(agent, lambda url: url == frame.get_attribute("src"))
    assert shown is not None, [f.url for f in agent.frames]
    assert "未签收" in agent.inner_text("#acknowledged")
    assert_reads_well(agent)
    shoot(agent, "document")
    # Chromium's PDF viewer draws it (frames of its own inside ours): photographed once the page is drawn.
    agent.locator(".doc-content").scroll_into_view_if_needed()
    drawn_page(frame)
    shoot(agent, "document-content")

    agent.click("section.document [data-action=acknowledge]")
    agent.wait_for_selector("section.document [data-state=acknowledged]")
    assert "✓ 已签收" in agent.inner_text("#acknowledged")
    assert agent.locator("section.document [data-action=acknowledge]").count() == 0

    # What the page did is evidence: opened (the details), downloaded (the file shown), acknowledged.
    ev = api_ok(served, "GET", f"/documents/{doc['id']}/evidence", account="court")
    reads = [(e["event"], e["channel"]) for e in ev["entries"] if e["actor"].startswith("account:")]
    assert ("opened", "miniprogram") in reads and ("downloaded", "miniprogram") in reads
    assert ("acknowledged", "miniprogram") in reads
    assert ev["receipt"]["acknowledged_at"] and ev["verification"]["ok"]

    # The court follows it: acknowledged, the evidence verified, the receipt downloaded.
    court.goto(served.url(f"#/documents/{doc['id']}"))
    court.wait_for_selector("section.document[data-role=issuer] [data-state=acknowledged]")
    assert court.locator("section.document [data-action=acknowledge]").count() == 0
    court.click("[data-action=evidence]")
    court.wait_for_selector("#evidence")
    assert "证据链校验通过" in court.inner_text("#evidence")
    with court.expect_download() as download:
        court.click("#evidence [data-action=receipt]")
    assert download.value.suggested_filename == f"送达回证-{case}.html"
    receipt = Path(download.value.path()).read_text(encoding="utf-8")
    assert "送达回证" in receipt and case in receipt and "受送达人签收" in receipt
    assert_reads_well(court)
    shoot(court, "document-evidence")
    assert court.errors == agent.errors == []


def test_agent_commits_changes_and_revokes_the_service_address(served, new_page, shoot):
    # enterprise-d has never committed: the court cannot serve on it until it does.
    agent = new_page()
    sign_in(agent, served, "enterprise-d", expect="code")
    agent.click("#tabbar >> text=我的")
    wait_for_view(agent, "me")
    agent.click("#enterprise-links >> text=电子送达地址承诺")
    wait_for_view(agent, "service-address")
    agent.wait_for_selector("#commitment[data-status=none]")
    subject_id = next(r["subject_id"] for r in api_ok(served, "GET", "/me", account="enterprise-d")["roles"]
                      if r["role"] == "enterprise_agent")
    path = f"/enterprises/{subject_id}/service-address"
    consent = api_ok(served, "GET", path, account="enterprise-d")["consent"]
    assert agent.inner_text("#consent-text") == consent["text"]  # the exact text, word for word

    form = agent.locator("#commit-form")
    form.locator("textarea[name=emails]").fill("legal@hongsheng-demo.example")
    form.locator("button[type=submit]").click()  # not agreed yet: refused in the page, nothing written
    assert "请先阅读并勾选同意" in form.inner_text()
    assert api_ok(served, "GET", path, account="enterprise-d")["commitment"] is None

    form.locator("input[name=agree]").check()
    form.locator("button[type=submit]").click()
    agent.wait_for_selector("#commitment[data-version='1']")
    shown = agent.inner_text("#commitment")
    assert "微信：enterprise-d" in shown and "l***@hongsheng-demo.example" in shown
    committed = api_ok(served, "GET", path, account="enterprise-d")["commitment"]
    assert committed["consent_sha256"] == consent["sha256"] and len(committed["addresses"]) == 2
    assert_reads_well(agent)

    # A change is a new version (the masked addresses cannot be kept unseen: they are typed again).
    form = agent.locator("#commit-form")
    form.locator("textarea[name=emails]").fill("legal@hongsheng-demo.example")
    form.locator("textarea[name=mobiles]").fill("13800138000")
    form.locator("input[name=agree]").check()
    form.locator("button[type=submit]").click()
    agent.wait_for_selector("#commitment[data-version='2']")
    assert "138****8000" in agent.inner_text("#commitment")
    agent.click("#history summary")
    assert "已变更" in agent.inner_text("#history li[data-version='1']")

    agent.click("[data-action=revoke]")
    agent.click(".dialog button:has-text('撤回')")
    agent.wait_for_selector("#commitment[data-status=none]")
    agent.click("#history summary")
    assert "已撤回" in agent.inner_text("#history li[data-version='2']")
    assert api_ok(served, "GET", path, account="enterprise-d")["commitment"] is None

    # Serving on it now is refused, in words, and nothing is served.
    before = api_ok(served, "GET", "/documents?limit=200", account="court")["total"]
    court = new_page()
    sign_in(court, served, "court", expect="scan")
    serve_through_the_page(court, served, identifier=demo.identifier("hongsheng-chemicals"),
                           case_number="（2026）粤13执99号", title="执行通知书", data=pdf("执行通知书"))
    court.wait_for_selector("#serve-form .error")
    assert "已撤回电子送达地址承诺" in court.inner_text("#serve-form .error")
    assert "service_address_revoked" in court.inner_text("#serve-form .error")
    assert api_ok(served, "GET", "/documents?limit=200", account="court")["total"] == before
    assert agent.errors == court.errors == []


# --- 我的: WeChat binding and contacts -------------------------------------------------------------

def test_the_binding_code_button_gives_a_code_that_binds(served, new_page, shoot):
    page = new_page()
    sign_in(page, served, "citizen-green", expect="code")
    page.click("#tabbar >> text=我的")
    wait_for_view(page, "me")
    page.click("[data-action=binding-code]")
    page.wait_for_selector("#binding-code")
    first = page.inner_text("#binding-code")
    assert re.fullmatch(f"[{wechat_users.BINDING_ALPHABET}]{{{wechat_users.BINDING_LENGTH}}}", first)
    assert f"绑定 {first}" in page.inner_text("#binding-message")  # the server's own words
    assert f"发送：绑定 {first}" in page.inner_text("#binding")
    page.locator("#wechat-binding").scroll_into_view_if_needed()
    assert_reads_well(page)
    shoot(page, "me-wechat")

    # Asking again withdraws the first code; the one shown binds the sender's WeChat to this account.
    page.click("[data-action=binding-code]")
    page.wait_for_function("first => document.querySelector('#binding-code').textContent !== first", arg=first)
    second = page.inner_text("#binding-code")
    keys = served.app.extensions["xinma.keys"]
    with served.app.extensions["xinma.sessionmaker"]() as session:
        with pytest.raises(DomainError) as refused:
            wechat_users.bind_with_code(session, keys, "wx-browser-test", "openid-browser-1", first)
        assert refused.value.code == "binding_code_invalid"
        account = wechat_users.bind_with_code(session, keys, "wx-browser-test", "openid-browser-1", second)
        assert account.login == "citizen-green"
        session.rollback()  # leave the shared database as it was
    assert page.errors == []


def test_contacts_need_consent_and_are_shown_masked(served, new_page):
    page = new_page()
    sign_in(page, served, "citizen-blue", expect="code")
    page.click("#tabbar >> text=我的")
    wait_for_view(page, "me")
    form = page.locator("#contact-form")
    form.locator("select[name=kind]").select_option("mobile")
    consent = api_ok(served, "GET", "/me/contacts", account="citizen-blue")["consent"]["mobile"]
    assert page.inner_text("#contact-consent") == consent
    form.locator("input[name=address]").fill("13900139000")
    form.locator("button[type=submit]").click()  # consent not given: the server refuses
    form.locator(".error").wait_for()
    assert "consent_required" in form.inner_text()
    assert api_ok(served, "GET", "/me/contacts", account="citizen-blue")["items"] == []

    form.locator("input[name=consent]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#contact-list li[data-kind=mobile]")
    assert "139****9000" in page.inner_text("#contact-list") and "13900139000" not in page.inner_text("main")
    [saved] = api_ok(served, "GET", "/me/contacts", account="citizen-blue")["items"]
    assert saved["kind"] == "mobile" and saved["consent_text"] == consent

    page.click("#contact-list li[data-kind=mobile] button")
    page.click(".dialog button:has-text('删除')")
    page.wait_for_selector("#contact-list", state="detached")
    assert api_ok(served, "GET", "/me/contacts", account="citizen-blue")["items"] == []
    assert page.errors == []


def test_the_docs_give_the_credit_code_the_court_serves_on_in_the_demo():
    # The court types enterprise-a's credit code; the README and docs/frontend.md print it, and it must be the
    # demo's (identifiers are never stored in clear, so nothing else can show it).
    code = demo.identifier("pengcheng-electronics")
    root = NOTICES_JS.parents[3]
    for doc in ("README.md", "docs/frontend.md"):
        assert f"`{code}`" in (root / doc).read_text(encoding="utf-8"), doc
