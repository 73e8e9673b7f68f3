"""The demo's in-process outbox worker, for real: `xinma serve --demo`, a redemption at the West Lake shuttle,
and the citizen's push arriving in the WeChat emulator's inbox."""
from __future__ import annotations

import re
import time

import pytest

from tests.webhooks.test_serve import _request, running_demo

pytestmark = pytest.mark.slow


def test_a_redemption_in_the_demo_is_pushed_to_the_citizen(tmp_path):
    with running_demo(tmp_path) as (base, _proc, output):
        found = re.search(r"emulator on (http://127\.0\.0\.1:\d+)", output())
        assert found, output()
        emulator = found.group(1)
        _, citizen = _request(base + "/api/v1/session/demo", body={"account": "citizen-green"})
        _, codes = _request(base + "/api/v1/codes", body={}, token=citizen["token"])
        _, clerk = _request(base + "/api/v1/session/demo", body={"account": "clerk-westlake"})
        _, catalogue = _request(base + "/api/v1/incentives")
        shuttle = next(i["id"] for i in catalogue["items"] if i["title"] == "西湖观光车免费乘坐")
        status, verdict = _request(base + "/api/v1/redemptions", token=clerk["token"], body={
            "token": codes["tokens"][0]["token"], "incentive_id": shuttle, "idempotency_key": "outbox-demo-1"})
        assert status in (200, 201) and verdict["status"] == "redeemed", verdict

        inbox_url = emulator + "/_emulator/inbox/oXmDemoCitizenGreen000000001"
        deadline = time.monotonic() + 30
        pushed = []
        while time.monotonic() < deadline and not pushed:
            pushed = [i for i in _request(inbox_url)[1] if i["kind"] == "template"]
            time.sleep(0.2)
        assert pushed, output()
        assert pushed[0]["data"]["first"]["value"] == "已核销：西湖观光车免费乘坐"
        _, notices = _request(base + "/api/v1/me/notices", token=citizen["token"])
        assert notices["items"][0]["title"] == "已核销：西湖观光车免费乘坐" and notices["unread"] >= 1
