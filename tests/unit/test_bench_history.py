"""The benchmarks' history generator: a small history recorded through the
application's batch path is a consistent history (the replay check finds no
difference, the hash chain verifies), with activities served and points redeemed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.bench_audit import build_served
from bench.civic_history import generate, open_recorder
from infra.hash_chain import notifications, verify_chain
from services.audit_replay.check import run_check


def test_a_generated_history_passes_the_replay_check_and_the_chain(tmp_path: Path) -> None:
    store = tmp_path / "store"
    recorded = generate(store, 2_000, seed=3)
    assert recorded >= 2_000

    views = tmp_path / "views"
    views.mkdir()
    head, _, _ = build_served(store, views)
    assert head == recorded

    recorder = open_recorder(store)
    try:
        report = run_check(recorder, views, scratch_dir=tmp_path)
        assert report.ok, report
        assert report.events_read == recorded
        chain = verify_chain(notifications(recorder), recorder.chain)
        assert chain.ok
        assert chain.events == recorded
        topics = Counter(
            n.topic.rsplit(".", 1)[-1]
            for n in recorder.select_notifications(start=1, limit=recorded)
        )
    finally:
        recorder.close()
    for kind in ("SignedUp", "CheckedIn", "ServiceConfirmed", "PointsAwarded", "PointsRedeemed"):
        assert topics[kind] > 0, (kind, topics)
