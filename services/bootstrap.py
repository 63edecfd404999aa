"""The composition root: builds the application, the stream and the projection
runners from settings. Nothing connects at import time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventsourcing.utils import get_topic

from domain.points import HoursSource, PointsRule
from infra.embedded_stream import EmbeddedStream
from infra.event_store import GroupCommitSQLiteRecorder
from infra.heap import freeze_startup_heap
from infra.retention import IdempotencyPruner
from infra.settings import Settings
from infra.vault import PersonalDataVault
from projections.group import RunnerGroup
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from projections.stream import EventStream
from projections.view_files import live_path
from services.application import CivicApplication
from services.personal_data import shred_erased
from services.view_swap import ViewSwapper

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
    shred_erased(app.recorder, app.mapper, app.vault)
    return app


def build_stream(
    settings: Settings, app: CivicApplication, *, group_prefix: str | None = None
) -> EventStream:
    """The embedded stream, or Kafka when configured (consumer groups named
    ``group_prefix`` + read model, ``civic.`` unless given)."""
    if settings.kafka:
        from infra.kafka_stream import KafkaStream  # noqa: PLC0415 - optional adapter

        options = {} if group_prefix is None else {"group_prefix": group_prefix}
        kafka = KafkaStream.from_settings(settings, **options)
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


def runner_factory(
    settings: Settings, stream: EventStream, **options: Any
) -> Callable[[str, Path], ProjectionRunner]:
    """Builds the runner of a read model on one version of its view database."""
    from projections.catalog import PROJECTIONS  # noqa: PLC0415 - avoid import cycles

    def make(name: str, path: Path) -> ProjectionRunner:
        projection = PROJECTIONS[name](timezone=settings.timezone)
        options.setdefault("linger", settings.projection_linger)
        return ProjectionRunner(projection, ViewStore(path), stream, **options)

    return make


def build_runners(settings: Settings, stream: EventStream) -> dict[str, ProjectionRunner]:
    """One runner per read model, on the version of its view being served."""
    from projections.catalog import PROJECTIONS  # noqa: PLC0415 - avoid import cycles

    make = runner_factory(settings, stream)
    return {name: make(name, live_path(settings.views_dir, name)) for name in PROJECTIONS}


def build_pruner(settings: Settings, app: CivicApplication) -> IdempotencyPruner | None:
    """Forgets used idempotency keys after the retention period (none: kept for ever)."""
    if settings.idempotency_retention_days == 0 or not hasattr(app.recorder, "prune_idempotency"):
        return None
    return IdempotencyPruner(
        app.recorder,
        timedelta(days=settings.idempotency_retention_days),
        settings.idempotency_prune_interval,
    )


def build_swapper(
    settings: Settings,
    runners: dict[str, ProjectionRunner],
    make_runner: Callable[[str, Path], ProjectionRunner],
) -> ViewSwapper:
    """Swaps rebuilt read models into ``runners`` while they serve."""
    return ViewSwapper(settings.views_dir, runners, make_runner)


@dataclass
class Platform:
    settings: Settings
    app: CivicApplication
    stream: EventStream
    runners: dict[str, ProjectionRunner] = field(default_factory=dict)
    relay: Relay | None = None
    swapper: ViewSwapper | None = None
    pruner: IdempotencyPruner | None = None
    group: RunnerGroup | None = None  # on Kafka: one consumer feeds every runner

    @classmethod
    def build(cls, settings: Settings) -> Platform:
        app = build_application(settings)
        stream = build_stream(settings, app)
        relay = build_relay(settings, app)
        runners = build_runners(settings, stream)
        swapper = build_swapper(settings, runners, runner_factory(settings, stream))
        return cls(settings, app, stream, runners, relay, swapper, build_pruner(settings, app))

    def wait_for_view(self, name: str, position: int, timeout: float) -> bool:
        """Read-your-writes: block until read model ``name`` has applied ``position``.

        Asks whichever runner serves it at the moment, so a wait that spans a live
        swap (see :mod:`services.view_swap`) ends on the new version."""
        deadline = time.monotonic() + timeout
        while True:
            runner = self.runners.get(name)
            remaining = deadline - time.monotonic()
            if runner is None or remaining <= 0:
                return False
            if runner.wait_for(position, min(remaining, 0.25)) and self.runners.get(name) is runner:
                return True

    def start(self) -> None:
        freeze_startup_heap()  # infra/heap.py: full collections skip the start-up heap
        # With run_projections off the pipeline runs in its own processes
        # (``civic relay``, ``civic project NAME``): the relay stays off here too.
        if self.settings.run_projections:
            if self.relay is not None:
                self.relay.start()
            self.start_runners()
        if self.swapper is not None:  # also where others run them: follow their swaps
            self.swapper.start()
        if self.pruner is not None:
            self.pruner.start()

    def start_runners(self) -> None:
        """Feed the read models. On Kafka one consumer (group civic.NAME+NAME...)
        fetches and parses each record once for all of them, where a consumer each
        did it seven times: 1.19-1.54 against 2.37-3.23 ms of this process's CPU per
        command at 1,000 commands/s. On the embedded stream they share decoded
        events already, and grouped they were no faster: they keep their threads."""
        if self.settings.kafka and len(self.runners) > 1 and self.group is None:
            self.group = RunnerGroup(list(self.runners.values()), self.stream)
            self.group.start()
        for runner in self.runners.values():
            runner.start()  # (a runner in the group has no thread of its own)

    def close(self) -> None:
        if self.pruner is not None:
            self.pruner.stop()
        if self.swapper is not None:
            self.swapper.stop()
        if self.group is not None:
            self.group.stop()
        for runner in self.runners.values():
            runner.stop()
        if self.relay is not None:
            self.relay.stop()
        close_stream = getattr(self.stream, "close", None)
        if callable(close_stream):
            close_stream()
        self.app.close()
