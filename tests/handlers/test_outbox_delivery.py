"""Delivery: workers fan notices out and deliver them through the WeChat emulator, a real SMTP server and a fake
SMS gateway, all on 127.0.0.1, against a database whose commits are real (tests/outbox_support.py)."""
from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers import outbox, timeutil
from handlers.channels import Outcome
from handlers.models import Channel, Notice, OutboxAttempt, OutboxMessage, OutboxState, Role, WeChatIdentity
from tests.conftest import create_subject
from tests.outbox_support import (  # noqa: F401 - fixtures
    committed, dump_text, make_person, make_senders, make_worker, now_plus, outbox_engine, outbox_url, row_count,
    sms_gateway, smtp_server,
)
from tests.wechat_support import emulator, emulator_server  # noqa: F401 - fixtures


def attempts(s, message_id):
    return [(a.channel.value, a.outcome, a.errcode) for a in outbox.attempts_of(s, message_id)]


def message_of(s, person) -> OutboxMessage:
    return s.scalars(select(OutboxMessage).where(OutboxMessage.account_id == person.account_id)).one()


def kinds_in(emulator, openid):
    return [i["kind"] for i in emulator.inbox(openid)]


# --- the transactional outbox ---

def test_a_rolled_back_event_sends_nothing_a_committed_one_is_delivered(committed, outbox_engine, emulator):
    with committed() as s:
        p = make_person(s, emulator, oa=True)
        s.commit()
    worker = make_worker(outbox_engine, make_senders(outbox_engine, emulator=emulator))

    with committed() as s:
        outbox.notify(s, p.subject_id, "redemption", "已核销：西湖观光车免费乘坐", {"lines": ["西湖景区"]})
        s.rollback()
    assert worker.drain().claimed == 0
    assert emulator.inbox(p.oa_openid) == [] and row_count(outbox_engine, "notice") == 0

    with committed() as s:
        outbox.notify(s, p.subject_id, "redemption", "已核销：西湖观光车免费乘坐", {"lines": ["西湖景区"]},
                      page="/app/#/notices")
        s.commit()
    r = worker.drain()
    assert (r.fanned_out, r.created, r.outcomes["sent"]) == (1, 1, 1)
    inbox = emulator.inbox(p.oa_openid)
    assert [i["kind"] for i in inbox] == ["template"]
    assert inbox[0]["data"]["first"]["value"] == "已核销：西湖观光车免费乘坐"
    assert worker.drain().claimed == 0  # nothing twice
    with committed() as s:
        m = message_of(s, p)
        assert m.state == OutboxState.sent and m.external_id and m.sent_at is not None
        assert attempts(s, m.id) == [("template", "sent", 0)]
        assert s.scalar(select(Notice.fanout_at)) is not None


def test_fan_out_reaches_every_agent_of_an_enterprise_and_nobody_else(committed, outbox_engine, emulator):
    with committed() as s:
        firm = create_subject(s, kind="enterprise", grade="A")
        agents = [make_person(s, emulator, oa=True, subject=firm, role=Role.enterprise_agent) for _ in range(2)]
        bystander = make_person(s, emulator, oa=True)
        suspended = make_person(s, emulator, oa=True, subject=firm, role=Role.enterprise_agent)
        from handlers.models import Account, Status
        s.get(Account, suspended.account_id).status = Status.suspended
        outbox.notify(s, firm.id, "offer_matched", "您有一项政策可免申即享", {"lines": ["研发补贴 10,000 元"]})
        s.commit()
    r = make_worker(outbox_engine, make_senders(outbox_engine, emulator=emulator)).drain()
    assert r.created == 2 and r.outcomes["sent"] == 2
    for a in agents:
        assert kinds_in(emulator, a.oa_openid) == ["template"]
    assert emulator.inbox(bystander.oa_openid) == [] and emulator.inbox(suspended.oa_openid) == []


def test_channel_order_and_fallback_on_43101(committed, outbox_engine, emulator, smtp_server):
    with committed() as s:
        p = make_person(s, emulator, mp=True, oa=True, email="chen@example.com")
        q = make_person(s, emulator, mp=True, oa=True)
        outbox.notify(s, p.subject_id, "redemption", "已核销", {})
        outbox.notify(s, q.subject_id, "redemption", "已核销", {})
        s.commit()
    # p refused the subscription template: 43101, so the official account's template message instead.
    emulator.post("/_emulator/subscriptions", {"openid": p.mp_openid, "template_id": "sub-notice-tpl", "accept": False})
    worker = make_worker(outbox_engine, make_senders(outbox_engine, emulator=emulator, smtp=smtp_server))
    assert worker.drain().outcomes["sent"] == 2
    with committed() as s:
        mp = message_of(s, p)
        assert mp.channels == ["subscribe", "template", "email"]
        assert attempts(s, mp.id) == [("subscribe", "next_channel", 43101), ("template", "sent", 0)]
        assert attempts(s, message_of(s, q).id) == [("subscribe", "sent", 0)]
    assert kinds_in(emulator, p.mp_openid) == [] and kinds_in(emulator, p.oa_openid) == ["template"]
    assert kinds_in(emulator, q.mp_openid) == ["subscribe"] and kinds_in(emulator, q.oa_openid) == []
    assert smtp_server.mails == []


def test_unbound_channels_fall_back(committed, outbox_engine, emulator, smtp_server, sms_gateway):
    with committed() as s:
        only_sms = make_person(s, emulator, mobile="13800138001")
        unbinds = make_person(s, emulator, mp=True, email="wang@example.com")
        nothing = make_person(s, emulator)
        for p in (only_sms, unbinds, nothing):
            outbox.notify(s, p.subject_id, "redemption", "已核销", {"lines": ["慈云图书馆"]})
        s.commit()
    worker = make_worker(outbox_engine, make_senders(outbox_engine, emulator=emulator, smtp=smtp_server,
                                                     sms=sms_gateway))
    assert worker.fanout() == (3, 2)  # nothing is bound for the third: the notice stays in-app only
    with committed() as s:  # the mini-program openid is unbound after fan-out, before delivery
        s.execute(WeChatIdentity.__table__.delete().where(WeChatIdentity.account_id == unbinds.account_id))
        s.commit()
    assert worker.drain().outcomes["sent"] == 2
    with committed() as s:
        assert attempts(s, message_of(s, only_sms).id) == [("sms", "sent", 202)]
        assert attempts(s, message_of(s, unbinds).id) == [("subscribe", "next_channel", None), ("email", "sent", 250)]
        assert outbox.attempts_of(s, message_of(s, unbinds).id)[0].reply.startswith("unbound")
    assert list(sms_gateway.phones) == ["13800138001"]
    assert [m.recipients for m in smtp_server.mails] == [["wang@example.com"]]


def test_45009_backs_off_then_delivers(committed, outbox_engine, emulator):
    with committed() as s:
        p = make_person(s, emulator, oa=True)
        outbox.notify(s, p.subject_id, "redemption", "已核销", {})
        s.commit()
    emulator.fault("cgi-bin/message/template/send", errcode=45009)
    worker = make_worker(outbox_engine, make_senders(outbox_engine, emulator=emulator), backoff=1.0)
    t0 = timeutil.now()
    assert worker.drain(now=t0).outcomes["retry"] == 1
    with committed() as s:
        m = message_of(s, p)
        assert m.state == OutboxState.pending and m.lease_until is None
        # Not the 1-second backoff: 45009 is a quota, the worker stays away at least a minute.
        assert m.next_attempt_at >= t0 + timedelta(seconds=60)
    assert worker.drain(now=t0 + timedelta(seconds=30)).claimed == 0
    assert worker.drain(now=t0 + timedelta(seconds=600)).outcomes["sent"] == 1
    with committed() as s:
        assert attempts(s, message_of(s, p).id) == [("template", "retry", 45009), ("template", "sent", 0)]
    assert kinds_in(emulator, p.oa_openid) == ["template"]


def test_42001_refreshes_the_token_and_sends_in_the_same_attempt(committed, outbox_engine, emulator):
    with committed() as s:
        p = make_person(s, emulator, oa=True)
        outbox.notify(s, p.subject_id, "redemption", "第一条", {})
        s.commit()
    worker = make_worker(outbox_engine, make_senders(outbox_engine, emulator=emulator))
    worker.drain()
    appid = emulator.config.appid
    assert emulator.fetches(appid) == 1
    emulator.post("/_emulator/tokens/expire", {"appid": appid})
    with committed() as s:
        outbox.notify(s, p.subject_id, "redemption", "第二条", {})
        s.commit()
    assert worker.drain().outcomes["sent"] == 1
    assert emulator.fetches(appid) == 2
    assert [i["data"]["first"]["value"] for i in emulator.inbox(p.oa_openid)] == ["第一条", "第二条"]
    with committed() as s:
        second = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
        assert attempts(s, second.id) == [("template", "sent", 0)]


def test_40003_is_permanent_for_the_channel(committed, outbox_engine, emulator, smtp_server):
    seen = []

    @outbox.on_outcome("legal_document_test")
    def hook(session, message, outcome, attempt):
        seen.append((message.id, outcome, attempt.channel.value, attempt.errcode))

    try:
        with committed() as s:
            # An openid WeChat does not know (unfollowed): 40003, then e-mail.
            p = make_person(s, emulator, oa=True, follow=False, email="li@example.com")
            outbox.notify(s, p.subject_id, "redemption", "已核销", {})
            # A direct template message has no other channel: 40003 makes it dead at once, not retried.
            direct = outbox.send_direct(s, event_key="doc:1", channel="template", kind="legal_document_test",
                                        payload={"title": "法律文书送达"}, account_id=p.account_id)
            s.commit()
        worker = make_worker(outbox_engine, make_senders(outbox_engine, emulator=emulator, smtp=smtp_server))
        r = worker.drain()
        assert r.outcomes["sent"] == 1 and r.outcomes["dead"] == 1
        with committed() as s:
            fanned = s.scalars(select(OutboxMessage).where(OutboxMessage.notice_id.is_not(None))).one()
            assert attempts(s, fanned.id) == [("template", "next_channel", 40003), ("email", "sent", 250)]
            assert attempts(s, direct.id) == [("template", "dead", 40003)]
            assert s.get(OutboxMessage, direct.id).state == OutboxState.dead
        assert seen == [(direct.id, "dead", "template", 40003)]
        assert worker.drain().claimed == 0
    finally:
        outbox._HOOKS.pop("legal_document_test", None)


def test_dead_after_the_bounded_attempts_then_admin_retry(committed, outbox_engine, smtp_server):
    with committed() as s:
        p = make_person(s, email="zhao@example.com")
        outbox.notify(s, p.subject_id, "redemption", "已核销", {})
        s.commit()
    smtp_server.stop()
    worker = make_worker(outbox_engine, make_senders(outbox_engine, smtp=smtp_server), max_attempts=3, backoff=5.0,
                         max_backoff=100.0)
    t = timeutil.now()
    for _ in range(3):
        worker.drain(now=t)
        t += timedelta(seconds=200)
    with committed() as s:
        m = message_of(s, p)
        assert m.state == OutboxState.dead and m.dead_at is not None and m.attempts == 3
        tried = outbox.attempts_of(s, m.id)
        assert [a.outcome for a in tried] == ["retry", "retry", "dead"]
        assert all(a.reply and "ConnectionRefused" in a.reply for a in tried)
        assert len({a.started_at for a in tried}) == 3
    assert worker.drain(now=t + timedelta(days=1)).claimed == 0  # dead stays dead
    smtp_server.start()
    with committed() as s:
        outbox.retry(s, m.id)
        s.commit()
    assert worker.drain().outcomes["sent"] == 1
    assert len(smtp_server.mails) == 1
    with committed() as s:
        assert [a.number for a in outbox.attempts_of(s, m.id)] == [1, 2, 3, 4]
        assert message_of(s, p).state == OutboxState.sent


def test_a_stopped_smtp_server_restarted_drains_nothing_lost_nothing_doubled(committed, outbox_engine, smtp_server):
    with committed() as s:
        people = [make_person(s, email=f"user{i}@example.com") for i in range(20)]
        for p in people:
            outbox.notify(s, p.subject_id, "offer_matched", "政策匹配", {"lines": ["请确认"]})
        s.commit()
    worker = make_worker(outbox_engine, make_senders(outbox_engine, smtp=smtp_server), concurrency=4)
    smtp_server.stop()
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(4) as pool:
        r = worker.drain(pool=pool)
        assert r.outcomes["retry"] == 20 and smtp_server.mails == []
        smtp_server.start()
        smtp_server.handler.busy = 3  # and, coming back, a few 451s
        t = timeutil.now()
        for _ in range(5):
            t += timedelta(hours=2)
            worker.drain(now=t, pool=pool)
    mails = smtp_server.mails
    assert sorted(m.recipients[0] for m in mails) == sorted(p.email for p in people)
    assert len({m.message_id for m in mails}) == 20
    with committed() as s:
        assert {m.state for m in s.scalars(select(OutboxMessage))} == {OutboxState.sent}
        codes = [a.errcode for a in s.scalars(select(OutboxAttempt))]
        assert codes.count(451) == 3 and codes.count(250) == 20


def test_emulator_faults_then_recovery(committed, outbox_engine, emulator):
    with committed() as s:
        people = [make_person(s, emulator, oa=True) for _ in range(6)]
        for p in people:
            outbox.notify(s, p.subject_id, "redemption", "已核销", {})
        s.commit()
    path = "cgi-bin/message/template/send"
    emulator.fault(path, errcode=-1, times=2)  # system busy
    emulator.fault(path, status=502, times=2)  # WeChat's front end
    worker = make_worker(outbox_engine, make_senders(outbox_engine, emulator=emulator))
    r = worker.drain()
    assert r.outcomes["retry"] == 4 and r.outcomes["sent"] == 2
    worker.drain(now=now_plus(3600))
    for p in people:
        assert kinds_in(emulator, p.oa_openid) == ["template"]
    with committed() as s:
        codes = sorted((a.outcome, a.errcode) for a in s.scalars(select(OutboxAttempt)) if a.outcome != "sent")
        assert codes == [("retry", -1), ("retry", -1), ("retry", 502), ("retry", 502)]


def test_a_wechat_timeout_is_retried_at_least_once(committed, outbox_engine, emulator):
    """WeChat has no idempotency key: a send whose answer timed out may have arrived, and the retry sends it
    again (documented in docs/outbox.md). The SMS gateway's key prevents exactly this for SMS (next test)."""
    with committed() as s:
        p = make_person(s, emulator, oa=True)
        outbox.notify(s, p.subject_id, "redemption", "已核销", {})
        s.commit()
    emulator.fault("cgi-bin/message/template/send", timeout=1.5)
    worker = make_worker(outbox_engine, make_senders(outbox_engine, emulator=emulator, wechat_timeout=0.5))
    assert worker.drain().outcomes["retry"] == 1
    with committed() as s:
        assert attempts(s, message_of(s, p).id) == [("template", "retry", None)]
    assert worker.drain(now=now_plus(3600)).outcomes["sent"] == 1
    import time
    deadline = time.monotonic() + 5
    while len(emulator.inbox(p.oa_openid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kinds_in(emulator, p.oa_openid) == ["template", "template"]


def test_an_sms_retried_after_a_timeout_reaches_the_phone_once(committed, outbox_engine, sms_gateway):
    with committed() as s:
        p = make_person(s, mobile="13900139000")
        outbox.notify(s, p.subject_id, "offer_disbursed", "补贴已拨付", {"lines": ["10,000 元"]})
        s.commit()
    sms_gateway.slow.append(2.0)  # accepted, answered after our 1-second timeout
    worker = make_worker(outbox_engine, make_senders(outbox_engine, sms=sms_gateway))
    assert worker.drain().outcomes["retry"] == 1
    assert worker.drain(now=now_plus(3600)).outcomes["sent"] == 1
    assert sms_gateway.phones == {"13900139000": [sms_gateway.phones["13900139000"][0]]}
    assert sms_gateway.requests == 2
    with committed() as s:
        m = message_of(s, p)
        assert m.external_id == "sms-1" and attempts(s, m.id) == [("sms", "retry", None), ("sms", "sent", 200)]


def test_sms_gateway_answers_are_classified(committed, outbox_engine, sms_gateway):
    with committed() as s:
        people = [make_person(s, mobile=f"1370013700{i}") for i in range(3)]
        for p in people:
            outbox.notify(s, p.subject_id, "redemption", "已核销", {})
        s.commit()
    sms_gateway.statuses += [503, 429, 422]
    worker = make_worker(outbox_engine, make_senders(outbox_engine, sms=sms_gateway))
    r = worker.drain()
    assert (r.outcomes["retry"], r.outcomes["dead"]) == (2, 1)  # 422: no other channel left
    worker.drain(now=now_plus(3600))
    assert len(sms_gateway.phones) == 2


# --- several workers, dead workers ---

def test_a_worker_that_dies_mid_batch_loses_nothing(committed, outbox_engine, emulator):
    with committed() as s:
        people = [make_person(s, emulator, oa=True) for _ in range(10)]
        for p in people:
            outbox.notify(s, p.subject_id, "redemption", "已核销", {})
        s.commit()
    senders = make_senders(outbox_engine, emulator=emulator)
    dying = make_worker(outbox_engine, senders, name="dying", lease=60, batch=4)
    dying.fanout()
    token, batch = dying.claim()
    assert len(batch) == 4
    dying.deliver(batch[0], token)  # one delivered, then the process is gone: three stay leased to it
    heir = make_worker(outbox_engine, senders, name="heir", lease=60)
    r = heir.drain()
    assert r.outcomes["sent"] == 6  # not the three leased to the dead worker, not yet
    r = heir.drain(now=now_plus(61))  # their lease is over: taken over
    assert r.outcomes["sent"] == 3
    for p in people:
        assert kinds_in(emulator, p.oa_openid) == ["template"]
    with committed() as s:
        workers = {a.worker for a in s.scalars(select(OutboxAttempt))}
        assert workers == {"dying", "heir"}
    # Had the dying worker been only paused, it would find its lease over and send nothing.
    assert dying.deliver(batch[1], token, now=now_plus(61)) == "lost"
    # And a send that overlapped the takeover keeps its attempt as evidence, settling nothing twice.
    late = dying._record(batch[2], token, Channel.template, Outcome("sent", 0, "ok"), timeutil.now(), None)
    assert late == "lost"
    with committed() as s:
        assert [a.outcome for a in outbox.attempts_of(s, batch[2].id)] == ["sent", "sent-late"]
    for p in people:
        assert kinds_in(emulator, p.oa_openid) == ["template"]


@pytest.mark.skipif(not os.environ.get("XINMA_TEST_DATABASE_URL"),
                    reason="several workers side by side need PostgreSQL (on SQLite one worker runs)")
def test_two_workers_drain_500_messages_each_delivered_exactly_once(committed, outbox_engine, emulator):
    appid = emulator.config.appid
    with committed() as s:
        people = []
        for _ in range(250):
            subject = create_subject(s, kind="enterprise")
            for _ in range(2):
                people.append(make_person(s, emulator, oa=True, subject=subject, role=Role.enterprise_agent))
            outbox.notify(s, subject.id, "offer_matched", "政策匹配", {})
        s.commit()
    workers = [make_worker(outbox_engine, make_senders(outbox_engine, emulator=emulator), name=f"w{i}", batch=25,
                           concurrency=4) for i in range(2)]
    from concurrent.futures import ThreadPoolExecutor
    results = {}

    def run(w):
        with ThreadPoolExecutor(4) as pool:
            results[w.name] = w.drain(pool=pool)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert sum(r.outcomes["sent"] for r in results.values()) == 500
    assert all(r.outcomes["sent"] > 0 for r in results.values()), results  # both took part
    inbox = emulator.get("/_emulator/inbox")
    assert all(len(inbox.get(p.oa_openid, [])) == 1 for p in people)
    assert sum(len(v) for v in inbox.values()) == 500
    assert emulator.fetches(appid) == 1  # one shared token
    with committed() as s:
        assert {(m.state, m.attempts) for m in s.scalars(select(OutboxMessage))} == {(OutboxState.sent, 1)}


# --- privacy ---

def test_no_clear_address_in_the_database_or_the_logs(committed, outbox_engine, smtp_server, sms_gateway, caplog):
    email, refused, mobile = "secret.person@example.com", "gone.person@example.com", "13612345678"
    smtp_server.handler.refuse.add(refused)
    with committed() as s:
        p = make_person(s, email=email, mobile=mobile)
        q = make_person(s, email=refused)
        outbox.notify(s, p.subject_id, "redemption", "已核销", {})
        outbox.notify(s, q.subject_id, "redemption", "已核销", {})
        outbox.send_direct(s, event_key="doc:9", channel="sms", kind="legal_document", payload={"title": "送达"},
                           address="13512345678")
        outbox.send_direct(s, event_key="doc:9", channel="email", kind="legal_document", payload={"title": "送达"},
                           address="Direct.Person@Example.com")
        s.commit()
    caplog.set_level(logging.DEBUG)
    worker = make_worker(outbox_engine, make_senders(outbox_engine, smtp=smtp_server, sms=sms_gateway))
    r = worker.drain()
    assert r.outcomes["sent"] == 3 and r.outcomes["dead"] == 1  # the refused address: 550, no channel left
    assert sorted(m.recipients[0] for m in smtp_server.mails) == sorted([email, "direct.person@example.com"])
    everything = dump_text(outbox_engine)
    # Ours, that is: the test's SMTP server and gateway log their own traffic.
    logged = "\n".join(r.getMessage() + " " + str(r.__dict__) for r in caplog.records
                       if r.name.split(".")[0] in ("handlers", "webhooks")).lower()
    assert "outbox sent" in logged
    for clear in (email, refused, mobile, "13512345678", "direct.person@example.com", "secret.person", "gone.person",
                  "direct.person"):
        assert clear not in everything.lower()
        assert clear not in logged
    with committed() as s:
        dead = s.scalars(select(OutboxMessage).where(OutboxMessage.state == OutboxState.dead)).one()
        reply = outbox.attempts_of(s, dead.id)[0].reply
        assert reply.startswith("550") and "<recipient>" in reply  # the server quoted it; we did not keep it
    assert "s***@example.com" in everything and "136****5678" in everything
