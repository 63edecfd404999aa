"""The composition root: builds the application, the stream and the projection
runners from settings. Nothing connects at import time."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

from eventsourcing.utils import get_topic

from domain.points import HoursSource, PointsRule
from infra.embedded_stream import EmbeddedStream
from infra.event_store import GroupCommitSQLiteRecorder
from infra.settings import Settings
from infra.vault import PersonalDataVault
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from projections.stream import EventStream
from services.application import CivicApplication
from services.handlers.volunteers import shred_erased

if TYPE_CHECKING:
    from infra.relay import Relay


def event_store_env(settings: Settings) -> dict[str, str]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.event_store == "postgres":
        return postgres_env(settings)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(settings.events_db),
        "SQLITE_LOCK_TIMEOUT": "30",
        "APPLICATION_RECORDER_TOPIC": get_topic(GroupCommitSQLiteRecorder),
        "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
    }


def postgres_env(settings: Settings) -> dict[str, str]:
    from urllib.parse import urlsplit  # noqa: PLC0415

    from infra.postgres_store import PostgresIdempotentRecorder  # noqa: PLC0415

    dsn = urlsplit(settings.postgres_dsn or "")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": dsn.path.lstrip("/"),
        "POSTGRES_HOST": dsn.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(dsn.port or 5432),
        "POSTGRES_USER": dsn.username or "",
        "POSTGRES_PASSWORD": dsn.password or "",
        "POSTGRES_SCHEMA": settings.postgres_schema,
        "APPLICATION_RECORDER_TOPIC": get_topic(PostgresIdempotentRecorder),
        "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
    }


def build_application(settings: Settings) -> CivicApplication:
    rule = PointsRule(
        source_factors={
            HoursSource.CHECKIN: Fraction(1),
            HoursSource.ORGANIZER: Fraction(settings.organizer_hours_factor),
        }
    )
    app = CivicApplication(
        event_store_env(settings),
        document_secret=settings.document_secret_bytes(),
        points_rule=rule,
        expiry_policy=settings.expiry_policy,
        vault=PersonalDataVault(settings.vault_db, settings.vault_master_key_bytes()),
    )
    # erasures recorded in the store win over a vault restored from an older backup
    shred_erased(app.recorder, app.vault)
    return app


def build_stream(settings: Settings, app: CivicApplication) -> EventStream:
    if settings.kafka:
        from infra.kafka_stream import KafkaStream  # noqa: PLC0415 - optional adapter

        kafka = KafkaStream.from_settings(settings)
        kafka.attach_store(app.recorder)  # read-your-writes: which partition holds a position
        return kafka
    stream = EmbeddedStream(app.recorder)
    recorder = app.recorder
    if isinstance(recorder, GroupCommitSQLiteRecorder):
        recorder.listeners.append(stream.notify)
    return stream


def build_relay(settings: Settings, app: CivicApplication) -> Relay | None:
    """The relay from the store to Kafka (Kafka mode only)."""
    if not settings.kafka:
        return None
    from infra.relay import Relay  # noqa: PLC0415 - optional adapter

    return Relay.from_settings(settings, app)


def build_runners(settings: Settings, stream: EventStream) -> dict[str, ProjectionRunner]:
    from projections.catalog import PROJECTIONS  # noqa: PLC0415 - avoid import cycles

    runners = {}
    for name, factory in PROJECTIONS.items():
        store = ViewStore(settings.views_dir / f"{name}.sqlite")
        runners[name] = ProjectionRunner(factory(timezone=settings.timezone), store, stream)
    return runners


@dataclass
class Platform:
    settings: Settings
    app: CivicApplication
    stream: EventStream
    runners: dict[str, ProjectionRunner] = field(default_factory=dict)
    relay: Relay | None = None

    @classmethod
    def build(cls, settings: Settings) -> Platform:
        app = build_application(settings)
        stream = build_stream(settings, app)
        relay = build_relay(settings, app)
        return cls(settings, app, stream, build_runners(settings, stream), relay)

    def start(self) -> None:
        # With run_projections off the pipeline runs in its own processes
        # (``civic relay``, ``civic project NAME``): the relay stays off here too.
        if self.settings.run_projections:
            if self.relay is not None:
                self.relay.start()
            for runner in self.runners.values():
                runner.start()

    def close(self) -> None:
        for runner in self.runners.values():
            runner.stop()
        if self.relay is not None:
            self.relay.stop()
        close_stream = getattr(self.stream, "close", None)
        if callable(close_stream):
            close_stream()
        self.app.close()
