"""handlers/wechat.py against the emulator running for real: tokens shared and refreshed once, bounded
retries, timeouts, and every call we make, through wechatpy exactly as in production."""
from __future__ import annotations

import io
import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from handlers import wechat
from handlers.models import WeChatAccessToken
from tests.wechat_support import emulator, emulator_server  # noqa: F401 - fixtures

STORES = ["database", "redis"]


@pytest.fixture
def redis_client():
    import redis
    r = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5, socket_timeout=5)
    try:
        r.ping()
    except redis.exceptions.RedisError:
        r.close()
        pytest.skip("Redis is not reachable at 127.0.0.1:6379 (CI has one; start redis-server to run this here)")
    yield r
    r.close()


@pytest.fixture
def appid(emulator):
    """An app of our own on the emulator, so that rows and keys of other tests never meet ours."""
    appid = "wxt" + uuid.uuid4().hex[:15]
    emulator.post("/_emulator/apps", {"appid": appid, "secret": "s3cret-" + appid})
    return appid


@pytest.fixture
def make_store(request, engine, appid):
    """store("database" | "redis", margin=…) -> a new store, as a separate process would have."""
    prefix = f"xinma:test:{uuid.uuid4().hex}:"
    redis_clients = []

    def make(kind: str = "database", margin: float = 300.0):
        if kind == "database":
            return wechat.DatabaseTokenStore(engine, margin=margin)
        r = request.getfixturevalue("redis_client")
        redis_clients.append(r)
        return wechat.RedisTokenStore(r, margin=margin, prefix=prefix)

    yield make
    with Session(engine) as s, s.begin():
        s.execute(delete(WeChatAccessToken).where(WeChatAccessToken.appid == appid))
    for r in redis_clients[:1]:
        for key in r.scan_iter(prefix + "*"):
            r.delete(key)


@pytest.fixture
def make_wechat(emulator, appid, make_store):
    """A WeChat client for our test app against the emulator; separate stores stand for separate processes."""
    made = []

    def make(store=None, **kwargs):
        kwargs.setdefault("timeout", 5.0)
        kwargs.setdefault("backoff", 0.05)
        w = wechat.WeChat(appid, "s3cret-" + appid, store=store or make_store(), api_base=emulator.base, **kwargs)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


@pytest.fixture
def follower(emulator, appid):
    return emulator.user(appid)


# --- the access token ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", STORES)
def test_token_is_fetched_once_and_reused_by_every_process(kind, emulator, appid, make_wechat, make_store, follower):
    first = make_wechat(make_store(kind))
    first.send_custom_text(follower, "一")
    first.send_custom_text(follower, "二")
    other_process = make_wechat(make_store(kind))
    other_process.send_custom_text(follower, "三")
    assert emulator.fetches(appid) == 1
    assert [m["text"]["content"] for m in emulator.inbox(follower)] == ["一", "二", "三"]


def test_the_token_lives_in_the_database(engine, emulator, appid, make_wechat, follower):
    make_wechat().send_custom_text(follower, "hi")
    with Session(engine) as s:
        row = s.scalars(select(WeChatAccessToken).where(WeChatAccessToken.appid == appid)).one()
    assert row.token and row.expires_at.tzinfo is not None
    assert 7000 < row.expires_at.timestamp() - time.time() <= 7200


@pytest.mark.parametrize("kind", STORES)
def test_a_token_is_refreshed_a_little_before_it_expires(kind, emulator, appid, make_wechat, make_store, follower):
    emulator.post("/_emulator/config", {"token_ttl": 3})
    w = make_wechat(make_store(kind, margin=2))  # usable for one second
    w.send_custom_text(follower, "a")
    w.send_custom_text(follower, "b")
    assert emulator.fetches(appid) == 1
    time.sleep(1.1)
    w.send_custom_text(follower, "c")
    assert emulator.fetches(appid) == 2
    # refreshed before WeChat had to refuse anything: one request per message
    assert emulator.requests_to("cgi-bin/message/custom/send") == 3


def test_a_token_wechat_says_expired_is_refreshed_and_the_call_retried(emulator, appid, make_wechat, follower):
    w = make_wechat()
    w.send_custom_text(follower, "a")
    emulator.post("/_emulator/tokens/expire", {"appid": appid})  # WeChat expires it early: 42001
    w.send_custom_text(follower, "b")
    assert emulator.fetches(appid) == 2
    assert len(emulator.inbox(follower)) == 2


def test_40001_once_means_one_refresh_and_one_retry(emulator, appid, make_wechat, follower):
    w = make_wechat()
    w.send_custom_text(follower, "warm up")
    emulator.fault("cgi-bin/message/custom/send", errcode=40001)
    w.send_custom_text(follower, "after a refused token")
    assert emulator.fetches(appid) == 2
    assert emulator.requests_to("cgi-bin/message/custom/send") == 3
    assert [m["text"]["content"] for m in emulator.inbox(follower)] == ["warm up", "after a refused token"]


def test_persistent_40001_is_bounded_and_raised(emulator, appid, make_wechat, follower):
    w = make_wechat()
    emulator.fault("cgi-bin/message/custom/send", times=100, errcode=40001)
    with pytest.raises(wechat.WeChatError) as excinfo:
        w.send_custom_text(follower, "never")
    assert excinfo.value.errcode == 40001
    assert emulator.requests_to("cgi-bin/message/custom/send") == 2  # the try and one retry
    assert emulator.fetches(appid) == 2
    assert emulator.inbox(follower) == []


def test_a_rejected_token_already_replaced_by_another_process_is_not_refreshed_again(
        emulator, appid, make_wechat, make_store, follower):
    store = make_store()
    a, b = make_wechat(store), make_wechat(make_store())
    a.send_custom_text(follower, "a")
    b.send_custom_text(follower, "b")  # b holds the same token in its process
    emulator.post("/_emulator/tokens/expire", {"appid": appid})
    a.send_custom_text(follower, "a again")  # a refreshes
    b.send_custom_text(follower, "b again")  # b is refused, finds a's new token stored, reuses it
    assert emulator.fetches(appid) == 2


def test_45009_backs_off_then_succeeds(emulator, make_wechat, follower):
    w = make_wechat(backoff=0.2)
    emulator.fault("cgi-bin/message/custom/send", times=2, errcode=45009)
    started = time.monotonic()
    w.send_custom_text(follower, "eventually")
    elapsed = time.monotonic() - started
    assert emulator.requests_to("cgi-bin/message/custom/send") == 3
    assert 0.1 + 0.2 <= elapsed < 5  # at least half of each ceiling (0.2, then 0.4)
    assert len(emulator.inbox(follower)) == 1


def test_45009_that_persists_raises_rate_limited(emulator, make_wechat, follower):
    w = make_wechat()
    emulator.fault("cgi-bin/message/custom/send", times=10, errcode=45009)
    with pytest.raises(wechat.WeChatRateLimited) as excinfo:
        w.send_custom_text(follower, "no")
    assert excinfo.value.errcode == 45009
    assert emulator.requests_to("cgi-bin/message/custom/send") == 3


def test_a_slow_wechat_raises_within_the_timeout_and_is_not_retried(emulator, make_wechat, follower):
    w = make_wechat(timeout=0.3)
    w.send_custom_text(follower, "warm up")  # the token fetch is not part of what we time
    emulator.fault("cgi-bin/message/custom/send", timeout=5)
    started = time.monotonic()
    with pytest.raises(wechat.WeChatUnavailable) as excinfo:
        w.send_custom_text(follower, "slow")
    assert time.monotonic() - started < 1.5
    assert excinfo.value.errcode is None
    assert emulator.requests_to("cgi-bin/message/custom/send") == 2


def test_the_token_fetch_has_a_timeout_too(emulator, appid, make_wechat, follower):
    w = make_wechat(timeout=0.3)
    emulator.fault("cgi-bin/token", timeout=5)
    started = time.monotonic()
    with pytest.raises(wechat.WeChatUnavailable):
        w.send_custom_text(follower, "no token")
    assert time.monotonic() - started < 1.5


def test_http_errors_and_other_errcodes_are_typed(emulator, make_wechat, follower):
    w = make_wechat()
    emulator.fault("cgi-bin/message/custom/send", status=502)
    with pytest.raises(wechat.WeChatUnavailable) as excinfo:
        w.send_custom_text(follower, "x")
    assert excinfo.value.http_status == 502
    with pytest.raises(wechat.WeChatError) as excinfo:
        w.send_custom_text("o-nobody-follows-with-this-id", "x")
    assert excinfo.value.errcode == 40003 and "invalid openid" in excinfo.value.errmsg


def test_a_wrong_secret_is_a_clear_error(emulator, appid, make_store):
    w = wechat.WeChat(appid, "wrong", store=make_store(), api_base=emulator.base, timeout=5)
    with pytest.raises(wechat.WeChatError) as excinfo:
        w.send_custom_text("o-anyone", "x")
    assert excinfo.value.errcode == 40125
    w.close()


# --- the race -----------------------------------------------------------------------------------

def _race(emulator, make_wechat, make_store, kind, follower, *, shared_process: bool, n: int = 8):
    """n threads ask for the token at once, the moment it has expired."""
    clients = [make_wechat(make_store(kind, margin=0))] if shared_process else [
        make_wechat(make_store(kind, margin=0)) for _ in range(n)]
    emulator.post("/_emulator/config", {"token_ttl": 1, "token_grace": 0})
    clients[0].send_custom_text(follower, "first")  # a token with one second to live
    emulator.post("/_emulator/config", {"token_ttl": 600})  # the next one outlives the race, however slow
    time.sleep(1.05)
    _all_at_once([lambda i=i: clients[i % len(clients)].send_custom_text(follower, f"thread {i}") for i in range(n)])


def _all_at_once(calls) -> None:
    """Run each call in its own thread, released together by a barrier; fail on any exception."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call):
        try:
            barrier.wait()
            call()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


@pytest.mark.parametrize("kind", STORES)
def test_token_race_eight_processes_one_fetch(kind, emulator, appid, make_wechat, make_store, follower):
    _race(emulator, make_wechat, make_store, kind, follower, shared_process=False)
    assert emulator.fetches(appid) == 2  # the first token, then exactly one refresh for all eight
    assert len(emulator.inbox(follower)) == 9


@pytest.mark.parametrize("kind", STORES)
def test_token_race_eight_threads_of_one_process_one_fetch(kind, emulator, appid, make_wechat, make_store, follower):
    _race(emulator, make_wechat, make_store, kind, follower, shared_process=True)
    assert emulator.fetches(appid) == 2
    assert len(emulator.inbox(follower)) == 9


# --- the calls -------------------------------------------------------------------------------------

@pytest.fixture
def mini(emulator, make_store, engine):
    cfg = emulator.config
    w = wechat.WeChat(cfg.miniprogram_appid, cfg.miniprogram_secret, store=make_store(), api_base=emulator.base)
    yield w
    w.close()
    with Session(engine) as s, s.begin():
        s.execute(delete(WeChatAccessToken).where(WeChatAccessToken.appid == cfg.miniprogram_appid))


def test_code_to_session_good_bad_and_reused_codes(emulator, mini):
    login = emulator.post("/_emulator/login-code", {})
    openid, unionid = mini.code_to_session(login["code"])
    assert (openid, unionid) == (login["openid"], login["unionid"])
    with pytest.raises(wechat.WeChatError) as reused:
        mini.code_to_session(login["code"])
    assert reused.value.errcode == 40163
    with pytest.raises(wechat.WeChatError) as bad:
        mini.code_to_session("not-a-code")
    assert bad.value.errcode == 40029


def test_an_expired_login_code_is_refused(emulator, mini):
    emulator.post("/_emulator/config", {"code_ttl": 0})
    code = emulator.post("/_emulator/login-code", {})["code"]
    with pytest.raises(wechat.WeChatError) as excinfo:
        mini.code_to_session(code)
    assert excinfo.value.errcode == 40029


def test_upload_media_and_send_it_as_an_image(emulator, make_wechat, follower):
    w = make_wechat()
    image = b"\x89PNG\r\n\x1a\n" + b"pretend" * 10
    media_id = w.upload_media(image, filename="code.png")
    w.send_custom_image(follower, media_id)
    [sent] = emulator.inbox(follower)
    assert sent["kind"] == "custom" and sent["msgtype"] == "image" and sent["image"]["media_id"] == media_id
    assert emulator.http.get(f"{emulator.base}/_emulator/media/{media_id}").content == image


def test_an_unknown_media_id_is_refused(emulator, make_wechat, follower):
    with pytest.raises(wechat.WeChatError) as excinfo:
        make_wechat().send_custom_image(follower, "no-such-media")
    assert excinfo.value.errcode == 40007


def test_template_and_subscription_messages(emulator, appid, make_wechat, mini, follower):
    w = make_wechat()
    msgid = w.send_template(follower, "TPL-redeemed", {"first": {"value": "核销成功"}}, url="https://example.org/r/1")
    assert isinstance(msgid, int)
    [sent] = emulator.inbox(follower)
    assert sent["kind"] == "template" and sent["msgid"] == msgid and sent["data"]["first"]["value"] == "核销成功"

    person = emulator.post("/_emulator/login-code", {})["openid"]  # a mini-program user
    mini.send_subscribe(person, "SUB-notice", {"thing1": {"value": "新的权益"}}, page="pages/notices/index")
    assert emulator.inbox(person)[0]["page"] == "pages/notices/index"
    emulator.post("/_emulator/subscriptions", {"openid": person, "template_id": "SUB-notice", "accept": False})
    with pytest.raises(wechat.WeChatError) as excinfo:
        mini.send_subscribe(person, "SUB-notice", {"thing1": {"value": "x"}})
    assert excinfo.value.errcode == 43101


def test_parametric_qrcode_renders_its_url(emulator, make_wechat):
    import zxingcpp
    from PIL import Image

    qr = make_wechat().create_qrcode("invite:abc123", expire_seconds=600)
    assert qr.expire_seconds == 600 and qr.url.startswith("http://weixin.qq.com/q/")
    assert qr.image_url.startswith(emulator.base + "/cgi-bin/showqrcode?ticket=")
    r = requests.get(qr.image_url, timeout=10)
    assert r.headers["Content-Type"] == "image/png"
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(r.content)))
    assert found.text == qr.url
    assert emulator.get(f"/_emulator/qrcodes/{qr.ticket}")["scene"] == "invite:abc123"
    permanent = make_wechat().create_qrcode("clerk-desk")
    assert permanent.expire_seconds is None


def test_menu_and_mini_program_code(emulator, appid, make_wechat, mini):
    menu = {"button": [{"type": "view", "name": "我的信用码", "url": "https://example.org/code"},
                       {"type": "click", "name": "我的权益", "key": "incentives"},
                       {"type": "scancode_waitmsg", "name": "扫码核销", "key": "scan"}]}
    make_wechat().create_menu(menu)
    assert emulator.get("/_emulator/menus")[appid] == menu
    with pytest.raises(wechat.WeChatError) as excinfo:
        make_wechat().create_menu({"button": []})
    assert excinfo.value.errcode == 40016
    png = mini.get_wxa_code_unlimited("c=42", page="pages/code/index")
    assert png.startswith(b"\x89PNG")
    with pytest.raises(wechat.WeChatError) as excinfo:
        mini.get_wxa_code_unlimited("x" * 33)
    assert excinfo.value.errcode == 40097


def test_clients_from_settings(emulator, make_store):
    settings = {"WECHAT_APPID": "wxa", "WECHAT_SECRET": "s", "MINIPROGRAM_APPID": "wxm", "MINIPROGRAM_SECRET": "t",
                "WECHAT_API_BASE": emulator.base + "/", "WECHAT_TIMEOUT": 2.5}
    oa, mp = wechat.official_account(settings, make_store()), wechat.mini_program(settings, make_store())
    assert (oa.appid, mp.appid) == ("wxa", "wxm")
    assert oa.client.API_BASE_URL == emulator.base + "/cgi-bin/" and mp.client.wxa.API_BASE_URL == emulator.base + "/"
    assert oa.client.timeout == 2.5
    production = wechat.official_account({**settings, "WECHAT_API_BASE": None}, make_store())
    assert production.client.API_BASE_URL == "https://api.weixin.qq.com/cgi-bin/"
    assert production.client.showqrcode_url == "https://mp.weixin.qq.com/cgi-bin/showqrcode"
    with pytest.raises(wechat.WeChatNotConfigured):
        wechat.official_account({}, make_store())
    for w in (oa, mp, production):
        w.close()


def test_token_store_follows_the_settings(engine):
    assert isinstance(wechat.token_store({}, engine), wechat.DatabaseTokenStore)
    store = wechat.token_store({"REDIS_URL": "redis://127.0.0.1:6379/0"}, engine)
    assert isinstance(store, wechat.RedisTokenStore)
    store.redis.close()


@pytest.mark.parametrize("kind", STORES)
def test_token_race_on_the_very_first_fetch_one_fetch(kind, emulator, appid, make_wechat, make_store, follower):
    """No row (or key) yet: nothing to lock, so the first insert is what serialises the processes."""
    clients = [make_wechat(make_store(kind)) for _ in range(8)]
    _all_at_once([lambda c=c: c.send_custom_text(follower, "hello") for c in clients])
    assert emulator.fetches(appid) == 1
