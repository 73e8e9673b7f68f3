"""`xinma keys rotate` and `xinma keys list` against the test database, with real commits (cleaned up after)."""
from __future__ import annotations

import os
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from handlers import codes, signing, timeutil
from handlers.models import SigningKey
from webhooks.cli import main

from ..conftest import KEYS, SECRET


@pytest.fixture
def run(engine, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("XINMA_DATABASE_URL", database_url)
    monkeypatch.setenv("XINMA_SECRET_KEY", SECRET)
    monkeypatch.setenv("XINMA_INSTANCE_PATH", str(tmp_path / "instance"))
    with Session(engine) as s:
        before = {k.kid: (k.retired_at, k.verify_until) for k in s.scalars(select(SigningKey))}

    def invoke(*args):
        return CliRunner().invoke(main, ["keys", *args])

    yield invoke
    # The command commits for real: put the shared test database back as it was.
    with Session(engine) as s, s.begin():
        s.execute(delete(SigningKey).where(SigningKey.kid.not_in(before)))
        for kid, (retired_at, verify_until) in before.items():
            s.execute(update(SigningKey).where(SigningKey.kid == kid)
                      .values(retired_at=retired_at, verify_until=verify_until))


def _sign(engine) -> str:
    ring = signing.KeyRing(KEYS)
    with Session(engine) as s:
        kid, key = ring.signer(s)
    token, _ = codes.issue(key, kid, os.urandom(8), colour="green", kind="person", grade=None,
                           not_before=int(timeutil.now().timestamp()), lifetime=30)
    return token


def _verify(engine, token: str) -> codes.Claims:
    ring = signing.KeyRing(KEYS)
    with Session(engine) as s:
        return codes.verify(token, ring.verify_keys(s), now=timeutil.now().timestamp())


def test_rotate_adds_a_key_old_tokens_still_verify_new_ones_carry_the_new_kid(run, engine):
    first = run("rotate")
    assert first.exit_code == 0, first.output
    old_kid = int(re.search(r"kid=(\d+)", first.output).group(1))
    old_token = _sign(engine)
    assert codes.parse(old_token)[0].kid == old_kid

    second = run("rotate")
    assert second.exit_code == 0, second.output
    new_kid = int(re.search(r"kid=(\d+)", second.output).group(1))
    assert new_kid > old_kid

    assert _verify(engine, old_token).kid == old_kid  # retired, still verifying
    new_token = _sign(engine)
    assert codes.parse(new_token)[0].kid == new_kid and _verify(engine, new_token).kid == new_kid

    listing = run("list")
    assert listing.exit_code == 0, listing.output
    assert re.search(rf"kid={old_kid}\tretired\t.*verifies until 20", listing.output)
    assert re.search(rf"kid={new_kid}\tactive\t.*verifies until -", listing.output)
