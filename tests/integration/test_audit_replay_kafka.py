"""The replay check after the read models were fed by Kafka: what the consumers
served (per-partition offsets, partitions merged back into store order) equals the
history replayed, corrections included, and the invariants hold."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from decimal import Decimal

import pytest

from infra.kafka_stream import KafkaStream
from infra.settings import Settings
from services import commands as c
from services.audit_replay.check import run_check
from services.bootstrap import Platform
from tests.conftest import wait_until
from tests.integration.conftest import load_demo
from tests.unit.audit_scenario import NOVEMBER, District


@pytest.mark.kafka
def test_check_after_kafka_fed_projections(kafka_config: Settings, group_prefix: str) -> None:
    platform = Platform.build(kafka_config)
    assert isinstance(platform.stream, KafkaStream)
    platform.stream.group_prefix = group_prefix
    platform.start()
    try:
        app = platform.app
        load_demo(app, volunteers=30, months=1)
        district = District(app).build()
        district.at(NOVEMBER)
        correction = district.run(
            c.RequestServiceCorrection(
                activity_id=district.activities["march_s1"],
                volunteer_id=district.volunteers["li"],
                hours=Decimal(2),
                reason="签退漏记",
            )
        )["correction_id"]
        district.run(c.ApproveServiceCorrection(correction_id=correction))
        head = app.head()
        for runner in platform.runners.values():
            assert runner.wait_for(head, 30), runner.name
        wait_until(lambda: all(r.position >= head for r in platform.runners.values()), 30)

        report = run_check(app.recorder, kafka_config.views_dir, timezone=kafka_config.timezone)
        assert report.ok, report.model_dump_json(indent=2)
        assert all(v.served_position == head for v in report.views)

        # and an edit behind the consumers' back is still caught
        path = kafka_config.views_dir / "unit_metrics.sqlite"
        with closing(sqlite3.connect(path, timeout=10)) as conn, conn:
            conn.execute(
                "UPDATE um_counters SET service_minutes = service_minutes + 1 "
                "WHERE unit_id = ? AND period = '2026-03'",
                (str(district.units["S1"]),),
            )
        report = run_check(app.recorder, kafka_config.views_dir, timezone=kafka_config.timezone)
        metrics = next(v for v in report.views if v.name == "unit_metrics")
        assert not report.ok and metrics.differences == 1
    finally:
        platform.close()
