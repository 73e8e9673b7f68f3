"""Keys and rotation: a retired key outlives every token that may still be signed with it."""
from datetime import timedelta

from sqlalchemy import select

from handlers import codes, signing, timeutil
from handlers.models import SigningKey

from ..conftest import KEYS, create_subject


def test_a_retired_key_verifies_the_last_batch_a_stale_process_signs_with_it(db, keyring):
    subject = create_subject(db)
    old_kid, _ = keyring.signer(db)
    signing.create_key(db, KEYS)  # another process rotates; this one keeps its cached signer until the TTL
    late = timeutil.now() + timedelta(seconds=signing.KEYRING_TTL)
    batch = signing.issue_codes(db, keyring, subject, count=signing.MAX_BATCH_SECONDS // signing.WINDOW, at=late)
    last = codes.parse(batch[-1].token)[0]
    assert last.kid == old_kid
    old = db.scalar(select(SigningKey).where(SigningKey.kid == old_kid))
    assert old.verify_until.timestamp() >= last.not_after + signing.SKEW
