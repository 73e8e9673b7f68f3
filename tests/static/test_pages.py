"""The other pages in Chromium, each on a real capability: incentives with reasons, declaring an honour and
following its review, the admin's review turning a code green, an organisation admin's measures, the notices."""
from __future__ import annotations

from .support import sign_in, wait_for_view

SHOWN = ".code-card[data-colour] canvas[data-token]"


def tabs(page) -> list[str]:
    return page.locator("#tabbar a .tab-label").all_inner_texts()


def test_each_role_sees_its_own_tabs_and_a_tab_forgets_who_signed_out(served, new_page):
    citizen = new_page()
    sign_in(citizen, served, "citizen-green", expect="code")
    assert tabs(citizen) == ["信用码", "权益", "申报", "消息", "我的"]
    clerk = new_page()
    sign_in(clerk, served, "clerk-westlake", expect="scan")
    assert tabs(clerk) == ["扫码", "我的"]
    clerk.goto(served.url("#/admin"))  # not a clerk's page: back to its own
    wait_for_view(clerk, "scan")
    admin = new_page()
    sign_in(admin, served, "admin", expect="admin")
    assert tabs(admin) == ["审核", "政策", "我的"]
    court = new_page()  # a court's admin: its department serves documents and may issue policies
    sign_in(court, served, "court", expect="scan")
    assert tabs(court) == ["扫码", "单位", "送达", "政策", "我的"]
    agent = new_page()
    sign_in(agent, served, "enterprise-a", expect="code")
    assert tabs(agent) == ["信用码", "权益", "申报", "消息", "我的"]

    admin.click("#tabbar >> text=我的")
    admin.click("text=退出登录")
    admin.wait_for_selector(".demo-account")
    assert admin.evaluate("sessionStorage.length") == 0

    # The session ends elsewhere (expired, signed out on the server): the next request finds out, and the
    # tab forgets everything, the offline codes above all.
    citizen.wait_for_selector(SHOWN)
    assert citizen.evaluate("sessionStorage.getItem('xinma.batch.own')")  # kept while signed in
    status, _ = served.call("DELETE", "/session", token=citizen.evaluate("sessionStorage.getItem('xinma.session')"))
    assert status == 204
    citizen.click("#tabbar >> text=权益")
    citizen.wait_for_selector(".demo-account")
    assert citizen.evaluate("sessionStorage.length") == 0

    # The next person in this tab sees their own code, never a moment of the last one's.
    citizen.evaluate("window.colours = []; new MutationObserver(() => { const c = document.querySelector("
                     "'.code-card[data-colour]'); if (c) window.colours.push(c.dataset.colour); })"
                     ".observe(document.body, {subtree: true, attributes: true, childList: true})")
    citizen.click("[data-account='citizen-red']")
    citizen.wait_for_selector(".code-card[data-colour='red']")
    assert set(citizen.evaluate("window.colours")) == {"red"}
    assert citizen.errors == clerk.errors == admin.errors == court.errors == agent.errors == []


def test_incentives_usable_now_and_not_with_the_reason(served, new_page):
    green = new_page()
    sign_in(green, served, "enterprise-a", expect="code")
    green.click("#tabbar >> text=权益")
    rent = green.locator("section[aria-label='租赁安居'] li[data-usable='true']", has_text="入园租金减免（信易租）")
    rent.wait_for()
    assert "累计剩余 1 次" in rent.inner_text() and "名额剩余 20" in rent.inner_text()
    assert "公共信用等级：A级" in green.inner_text("main")

    red = new_page()
    sign_in(red, served, "citizen-red", expect="code")
    red.click("#tabbar >> text=权益")
    red.wait_for_selector("text=暂不可用")
    assert "现在可用（0）" in red.inner_text("main")
    refused = red.locator("li[data-usable='false']", has_text="西湖观光车免费乘坐")
    assert "信用码颜色不符合本措施条件" in refused.inner_text()
    assert green.errors == red.errors == []


def test_declare_an_honour_and_follow_its_review(served, new_page):
    citizen = new_page()
    sign_in(citizen, served, "citizen-repaired", expect="code")
    citizen.click("#tabbar >> text=申报")
    citizen.select_option("select[name=category]", "star_volunteer")
    citizen.fill("input[name=title]", "2025年度五星级志愿者")
    citizen.fill("input[name=issued_by]", "惠州市志愿者联合会")
    citizen.fill("input[name=awarded_on]", "2025-05-01")
    citizen.fill("textarea[name=evidence]", "志愿惠州平台证书编号 ZY-2025-0501")
    citizen.click("text=提交申报")
    mine = citizen.locator("#declarations li", has_text="2025年度五星级志愿者")
    mine.wait_for()
    assert "待审核" in mine.inner_text()

    admin = new_page()
    sign_in(admin, served, "admin", expect="admin")
    admin.click("[data-queue=declarations]")
    item = admin.locator("#queue li", has_text="2025年度五星级志愿者")
    item.locator("button", has_text="驳回").click()
    admin.click(".dialog button:has-text('驳回')")  # no reason: refused in the page
    assert admin.locator(".dialog .error").is_visible()
    admin.fill("#dialog-reason", "证书编号查无此证，请补充材料")
    admin.click(".dialog button:has-text('驳回')")
    item.wait_for(state="detached")

    citizen.reload()
    mine = citizen.locator("#declarations li", has_text="2025年度五星级志愿者")
    assert "已驳回" in mine.inner_text() and "证书编号查无此证" in mine.inner_text()
    assert citizen.errors == admin.errors == []


def test_admin_approves_the_declaration_and_the_code_turns_green(served, new_page):
    before = new_page()
    sign_in(before, served, "citizen-blue", expect="code")
    before.wait_for_selector(SHOWN)
    assert before.locator(".code-card").get_attribute("data-colour") == "blue"

    admin = new_page()
    sign_in(admin, served, "admin", expect="admin")
    admin.click("[data-queue=declarations]")
    item = admin.locator("#queue li", has_text="惠州好人")
    item.locator("button", has_text="通过").click()
    admin.click(".dialog button:has-text('通过')")
    item.wait_for(state="detached")

    after = new_page()
    sign_in(after, served, "citizen-blue", expect="code")
    after.wait_for_selector(SHOWN)
    card = after.locator(".code-card")
    assert card.get_attribute("data-colour") == "green" and "绿码" in card.inner_text()
    assert before.errors == admin.errors == after.errors == []


def test_organisation_admin_publishes_edits_closes_and_reopens_a_measure(served, new_page):
    page = new_page()
    sign_in(page, served, "orgadmin-westlake", expect="scan")
    page.click("#tabbar >> text=单位")
    page.click("text=发布新措施")
    form = page.locator("#measure-form")
    form.locator("input[name=title]").fill("绿码游客免费寄存行李")
    form.locator("select[name=scenario]").select_option("tourism")
    form.locator("input[name=limit_count]").fill("1")
    form.locator("select[name=limit_period]").select_option("day")
    form.locator("input[name=stock_total]").fill("50")
    form.locator("textarea[name=venues]").fill("西湖景区北门游客中心\n西湖景区南门")
    form.locator("button[type=submit]").click()
    item = page.locator("#measures li", has_text="绿码游客免费寄存行李")
    item.wait_for()
    text = item.inner_text()
    assert "开放中" in text and "每天限 1 次" in text and "0 / 50" in text

    item.locator("button", has_text="编辑").click()
    page.locator("#measure-form input[name=stock_total]").fill("60")
    page.locator("#measure-form button[type=submit]").click()
    page.wait_for_selector("#measures li:has-text('0 / 60')")

    item = page.locator("#measures li", has_text="绿码游客免费寄存行李")
    item.locator("button", has_text="关闭").click()
    page.click(".dialog button:has-text('关闭')")
    page.wait_for_selector("#measures li:has-text('绿码游客免费寄存行李'):has-text('已关闭')")
    page.locator("#measures li", has_text="绿码游客免费寄存行李").locator("button", has_text="重新开放").click()
    page.wait_for_selector("#measures li:has-text('绿码游客免费寄存行李'):has-text('开放中')")

    # The measure is what the API says it is.
    status, body = served.call("GET", "/incentives")
    assert status == 200
    found = next(i for i in body["items"] if i["title"] == "绿码游客免费寄存行李")
    assert found["stock_total"] == 60 and found["venues"] == ["西湖景区北门游客中心", "西湖景区南门"]
    assert found["status"] == "open" and found["eligible_colours"] == ["green"]

    # Clerks: listed; a WeChat invite needs WeChat, which this server has not: said in words.
    page.click("[data-tab=members]")
    page.wait_for_selector("#members li:has-text('clerk-westlake')")
    page.click("text=生成微信邀请码")
    page.wait_for_selector("text=微信服务暂时不可用")

    page.click("[data-tab=redemptions]")
    page.wait_for_selector("text=合计")
    assert page.errors == []


def test_notices_show_the_redemption_receipt(served, new_page):
    # A clerk redeems the police hall's measure for citizen-green, through the API.
    citizen_token = served.token_of("citizen-green")
    status, issued = served.call("POST", "/codes", {}, token=citizen_token)
    assert status == 200, issued
    status, catalogue = served.call("GET", "/incentives")
    measure = next(i for i in catalogue["items"] if i["title"] == "车辆、户籍业务免预约办理")
    status, verdict = served.call("POST", "/redemptions", {
        "token": issued["tokens"][0]["token"], "incentive_id": measure["id"], "idempotency_key": "browser-notice-1",
        "venue": None}, token=served.token_of("clerk-police"))
    assert verdict["status"] == "redeemed", verdict

    page = new_page()
    sign_in(page, served, "citizen-green", expect="code")
    page.click("#tabbar >> text=消息")
    receipt = page.locator("main li", has_text="车辆、户籍业务免预约办理")
    receipt.wait_for()
    assert "惠城区公安分局办证大厅" in receipt.inner_text()
    assert page.errors == []
