"""Appends from many transactions at once still make one chain: no gap, no fork, every document's links intact."""
# ruff: noqa: F811 - pytest fixtures are imported, then named as arguments
from __future__ import annotations

import itertools
import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from handlers import evidence
from handlers.models import EvidenceEntry
from tests.documents_support import legal_engine, legal_url  # noqa: F401 - fixtures

THREADS, EACH = 6, 15


def test_concurrent_appends_make_one_chain(legal_engine):
    with Session(legal_engine) as s, s.begin():
        evidence.append(s, "served", actor="system", document_id=10**6, payload={"content_sha256": "0" * 64})
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(EACH):
                with Session(legal_engine) as s, s.begin():
                    # Two appends per transaction, the second of a document shared by all threads.
                    evidence.append(s, "test_event", actor=f"thread:{n}", payload={"i": i})
                    evidence.append(s, "test_event", actor=f"thread:{n}", document_id=10**6, payload={"i": i})
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    with Session(legal_engine) as s:
        assert s.scalar(select(func.count()).select_from(EvidenceEntry)) == 2 * THREADS * EACH + 1
        result = evidence.verify(s, check_documents=False)
        assert result.ok, result.broken
        shared = evidence.document_entries(s, 10**6)
        assert len(shared) == THREADS * EACH + 1
        assert all(b.document_prev_hash == a.hash for a, b in itertools.pairwise(shared))
