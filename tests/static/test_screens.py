"""Every page at a phone's size: it renders without a script error, its text passes WCAG AA contrast, its buttons
are large, nothing scrolls sideways at 360 px, and a 390x844 screenshot is taken (docs/screenshots with
XINMA_SCREENSHOTS=1; the README shows them)."""
from __future__ import annotations

import pytest

from .support import CONTRAST_FAILURES_JS, SMALL_BUTTONS_JS, sign_in, wait_for_view

# (screenshot, account, route, what shows that the page has its data)
PAGES = [
    ("login", None, "", ".demo-account"),
    ("code", "citizen-green", "code", ".code-card[data-colour] canvas[data-token]"),
    ("incentives", "citizen-green", "incentives", "text=我的核销记录"),
    ("declare", "citizen-blue", "declare", "#declarations"),
    ("notices", "citizen-green", "notices", "main .list, main .empty"),
    ("me", "citizen-red", "me", ".credit-file"),
    ("scan", "clerk-westlake", "scan", "#recent li"),
    ("org", "orgadmin-westlake", "org", "#measures"),
    ("admin", "admin", "admin", "#queue .list, #queue .empty"),
    # offers and legal service (their flows, with more pictures: test_offers_documents.py)
    ("offers", "enterprise-a", "offers", "#offers, main .empty"),
    ("documents", "enterprise-a", "documents", "#documents, main .empty"),
    ("service-address", "enterprise-a", "service-address", "#commitment"),
    ("serve", "court", "serve", "#serve-form"),
    ("policies", "admin", "policies", "#policies"),
]


@pytest.mark.parametrize(("name", "account", "route", "ready"), PAGES, ids=[p[0] for p in PAGES])
def test_page_reads_well_on_a_phone(served, new_page, shoot, name, account, route, ready):
    page = new_page()
    if account:
        sign_in(page, served, account, expect=page_of(account))
        page.goto(served.url(f"#/{route}"))
        wait_for_view(page, route)
    else:
        page.goto(served.url())
    page.wait_for_selector(ready)

    assert page.evaluate("getComputedStyle(document.body).fontSize") == "18px"  # large type
    assert page.evaluate(CONTRAST_FAILURES_JS) == []
    assert page.evaluate(SMALL_BUTTONS_JS) == []
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    shoot(page, name)

    page.set_viewport_size({"width": 360, "height": 740})
    page.wait_for_function("() => window.innerWidth === 360")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.errors == []


def page_of(account: str) -> str:
    """Where an account lands after signing in: its first tab."""
    return {"clerk-westlake": "scan", "orgadmin-westlake": "scan", "court": "scan", "admin": "admin"}.get(account, "code")


def test_the_contrast_check_finds_low_contrast(served, new_page):
    # The check above must be able to fail: grey #aaa on white is 2.3:1.
    page = new_page()
    page.goto(served.url())
    page.wait_for_selector(".demo-account")
    page.evaluate("() => { const p = document.createElement('p'); p.textContent = '浅灰色文字'; p.style.color = '#aaa';"
                  " document.querySelector('main').append(p); }")
    failures = page.evaluate(CONTRAST_FAILURES_JS)
    assert len(failures) == 1 and failures[0].startswith("浅灰色文字")
