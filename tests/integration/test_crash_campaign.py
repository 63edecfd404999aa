"""Crash anywhere: the relay and every projection consumer, each a ``civic``
process, are killed with SIGKILL at random points (seeded) while a generated
workload runs, and restarted; afterwards the topic holds each event exactly once
and every read model equals a from-scratch recomputation from the event store.

The quick campaign runs in CI; the long one (over a hundred kills) with
``--run-slow``. Each prints its figures (``-s`` shows them)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.settings import Settings
from projections.catalog import PROJECTIONS
from services.application import CivicApplication
from services.bootstrap import build_application
from tests.integration.conftest import KafkaBroker, kafka_settings
from tests.integration.crash_harness import Campaign, CampaignConfig, CampaignReport

pytestmark = pytest.mark.kafka

QUICK = CampaignConfig(seed=2024, kills=14, volunteers=80, months=2)
FULL = CampaignConfig(
    seed=2024, kills=120, volunteers=400, months=6, outage_after=60, outage_seconds=15
)


@pytest.fixture
def store(kafka_config: Settings) -> Iterator[CivicApplication]:
    app = build_application(kafka_config)
    try:
        yield app
    finally:
        app.close()


def run_campaign(
    config: CampaignConfig,
    app: CivicApplication,
    settings: Settings,
    group_prefix: str,
    scratch: Path,
    broker: KafkaBroker | None = None,
) -> CampaignReport:
    campaign = Campaign(config, app, settings, group_prefix, broker)
    report = campaign.run()
    campaign.verify(scratch)
    print(f"\ncrash campaign: {report.summary()}")  # noqa: T201 - the figures for the README
    return report


def assert_nothing_lost_or_repeated(report: CampaignReport, config: CampaignConfig) -> None:
    assert report.total_kills == config.kills
    assert report.commands > 1000
    assert not report.command_failures, report.command_failures
    assert report.topic_missing == 0
    assert report.topic_duplicates == 0
    assert report.differences, "nothing was compared"
    assert set(report.differences.values()) == {0}, report.differences
    # none died on its own; each stopped when told to at the end
    assert set(report.exit_codes.values()) <= {0, -signal.SIGTERM}, report.exit_codes


def test_quick_crash_campaign_on_kafka(
    kafka_config: Settings, store: CivicApplication, group_prefix: str, tmp_path: Path
) -> None:
    report = run_campaign(QUICK, store, kafka_config, group_prefix, tmp_path / "recomputed")
    assert_nothing_lost_or_repeated(report, QUICK)
    assert set(report.kills) == {"relay", *PROJECTIONS}  # every process died at least once


@pytest.mark.slow
def test_full_crash_campaign_on_kafka_with_a_broker_outage(
    restartable_broker: KafkaBroker, group_prefix: str, tmp_path: Path
) -> None:
    settings = kafka_settings(tmp_path / "data", restartable_broker.bootstrap)
    app = build_application(settings)
    try:
        report = run_campaign(
            FULL, app, settings, group_prefix, tmp_path / "recomputed", restartable_broker
        )
    finally:
        app.close()
    assert_nothing_lost_or_repeated(report, FULL)
    assert report.total_kills >= 100
    assert report.commands_during_outage > 0  # commands kept committing while Kafka was away
