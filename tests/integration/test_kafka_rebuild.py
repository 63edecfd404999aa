"""Rebuild without downtime on Kafka: a separate ``civic projections rebuild``
process reads the topic through a consumer group of its own while the server's
consumers keep the live version current; the server swaps the rebuilt version
in, and read-your-writes keeps holding throughout."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.kafka_stream import KafkaStream
from infra.settings import Settings
from projections import leaderboard
from projections.runner import ProjectionRunner
from projections.view_files import live_path
from services import commands as c
from services.bootstrap import Platform
from services.cli import ServerLock
from services.principals import SYSTEM
from tests.conftest import civic_process
from tests.integration.conftest import DOCUMENT_SECRET, load_demo

pytestmark = pytest.mark.kafka


def _points(runner: ProjectionRunner, volunteer: str) -> int:
    with sqlite3.connect(runner.store.path) as conn:
        mine = leaderboard.rank_of(conn, volunteer, period="all")
    return mine[1].points if mine is not None else 0


def _rebuild(settings: Settings, name: str) -> subprocess.Popen[str]:
    env = {
        "CIVIC_DOCUMENT_SECRET": DOCUMENT_SECRET,
        "CIVIC_KAFKA": settings.kafka or "",
        "CIVIC_KAFKA_TOPIC": settings.kafka_topic,
        "CIVIC_LOG_FORMAT": "json",
        "CIVIC_LOG_LEVEL": "WARNING",
    }
    return civic_process(
        "projections", "rebuild", name, "--data-dir", str(settings.data_dir), env=env
    )


def test_rebuild_while_serving_on_kafka(kafka_config: Settings, group_prefix: str) -> None:
    platform = Platform.build(kafka_config)
    assert isinstance(platform.stream, KafkaStream)
    platform.stream.group_prefix = group_prefix
    platform.start()
    lock = ServerLock(kafka_config.data_dir)
    try:
        head = load_demo(platform.app, volunteers=30, months=1)
        assert platform.runners["leaderboard"].wait_for(head, 30)
        volunteer: Any = next(
            n.originator_id
            for n in platform.app.recorder.select_notifications(start=1, limit=head)
            if n.topic.endswith("Volunteer.Registered")
        )
        expected = _points(platform.runners["leaderboard"], str(volunteer))
        old_view = Path(platform.runners["leaderboard"].store.path)

        assert lock.acquire()
        lock.describe({"pid": os.getpid(), "projections": True})
        rebuild = _rebuild(kafka_config, "leaderboard")
        awards = 0
        while rebuild.poll() is None or awards < 3:
            result = platform.app.execute(
                c.AwardPoints(volunteer_id=volunteer, points=3, reason="文明户评比"), SYSTEM
            )
            expected += 3
            awards += 1
            assert result.position is not None
            assert platform.wait_for_view("leaderboard", result.position, 30)
            board = platform.runners["leaderboard"]  # whichever version serves now
            assert _points(board, str(volunteer)) == expected
        out, err = rebuild.communicate()
        assert rebuild.returncode == 0, err
        assert "swapped it in live" in out

        new_view = live_path(kafka_config.views_dir, "leaderboard")
        assert new_view != old_view
        board = platform.runners["leaderboard"]
        assert Path(board.store.path) == new_view
        result = platform.app.execute(
            c.AwardPoints(volunteer_id=volunteer, points=5, reason="文明户评比"), SYSTEM
        )
        assert result.position is not None
        assert board.wait_for(result.position, 30)
        assert _points(board, str(volunteer)) == expected + 5
    finally:
        lock.release()
        platform.close()
