"""``civic relay`` and ``civic project [NAME...]``: the pipeline as its own processes.

``civic relay`` publishes the event store to Kafka (one per store: a second one
fences the first, which then retries, so run one). ``civic project NAME`` feeds
read models (all of them when none is named) outside the API process:

- with Kafka configured, from consumer group ``civic.NAME`` (several read models
  named to one process: one consumer, group ``civic.NAME+NAME...``, feeding them
  all: ``projections.group``); several processes of the same NAME share the
  topic's partitions and may even write the same view database: each batch checks
  the applied offsets inside its own SQLite write transaction, so whatever one
  applied the other skips. (Read models that join aggregates want the store's
  order, which one consumer owning every partition gives; run those as one
  process.)
- on the embedded default (no Kafka), by following the event store's notification
  log from this process (every ``--poll-interval``, 50 ms: it cannot be woken by
  the API's commits, which happen in another process; each look that finds commits
  applies them all in one transaction per read model; several read models named
  to one process share one read of the log and one thread: ``projections.group``).
  The API then spends its interpreter on commands only, and its reads still wait
  for their positions (read-your-writes) by looking at the view databases.

Run the API with ``civic serve --no-projections`` (``CIVIC_RUN_PROJECTIONS=false``)
when these run beside it. Both stop cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import structlog
import typer
from pydantic import ValidationError

from infra.heap import freeze_startup_heap
from infra.logging import configure_logging
from infra.settings import Settings
from projections.group import RunnerGroup
from projections.stream import EventStream

log = structlog.get_logger(__name__)

KafkaOption = Annotated[
    str | None,
    typer.Option(
        "--kafka",
        metavar="HOST:PORT",
        help="Kafka bootstrap servers on loopback (default: CIVIC_KAFKA).",
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="CIVIC_DATA_DIR",
        help="Where the event store and views live.",
        show_default="./var",
        file_okay=False,
    ),
]
GroupPrefix = Annotated[
    str,
    typer.Option("--group-prefix", hidden=True, help="Consumer group prefix (tests)."),
]


def _settings(data_dir: Path | None, kafka: str | None, *, need_kafka: bool = True) -> Settings:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if kafka is not None:
        overrides["kafka"] = kafka
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        typer.secho(f"error: invalid configuration: {problems}", fg="red", err=True)
        raise typer.Exit(2) from None
    if need_kafka and not settings.kafka:
        typer.secho(
            "error: no Kafka: pass --kafka HOST:PORT or set CIVIC_KAFKA", fg="red", err=True
        )
        raise typer.Exit(2)
    configure_logging(settings.log_format, settings.log_level)
    return settings


def _until_signalled() -> None:
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("process.signalled", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    while not stop.wait(1.0):
        pass


def relay(
    kafka: KafkaOption = None,
    data_dir: DataDir = None,
    poll_interval: Annotated[
        float,
        typer.Option(
            "--poll-interval",
            min=0.001,
            help="Seconds between looks at the store for commits made by other processes.",
        ),
    ] = 0.02,
) -> None:
    """Publish the event store to Kafka until stopped (the transactional relay)."""
    from infra.relay import Relay  # noqa: PLC0415 - the Kafka adapter loads on demand
    from services.bootstrap import build_application  # noqa: PLC0415 - avoid import cycles

    settings = _settings(data_dir, kafka)
    app = build_application(settings)
    relay = Relay.from_settings(settings, app, poll_interval=poll_interval)
    freeze_startup_heap()
    relay.start()
    try:
        _until_signalled()
    finally:
        relay.stop()
        app.close()


def project(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="The read models to run, e.g. leaderboard (default: all of them)."),
    ] = None,
    kafka: KafkaOption = None,
    data_dir: DataDir = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Events applied per transaction at most.")
    ] = 20_000,
    poll_interval: Annotated[
        float,
        typer.Option(
            "--poll-interval",
            min=0.001,
            help="Without Kafka: seconds between looks at the store for new commits "
            "(shorter: fresher read models, more transactions).",
        ),
    ] = 0.05,
    group_prefix: GroupPrefix = "civic.",
    session_timeout_ms: Annotated[
        int,
        typer.Option(
            "--session-timeout-ms",
            hidden=True,
            min=1,
            help="Consumer group session timeout (tests: how soon a killed member's "
            "partitions move to its replacement).",
        ),
    ] = 10_000,
    group_instance_id: Annotated[
        str | None,
        typer.Option(
            "--group-instance-id",
            hidden=True,
            help="Static group membership: a restarted process with the same id takes "
            "its partitions back at once, without waiting for the session timeout.",
        ),
    ] = None,
) -> None:
    """Feed read models until stopped: from Kafka when it is configured (consumer group
    civic.NAME; several names share one, civic.NAME+NAME...), else by following the
    event store from this process."""
    from projections.catalog import PROJECTIONS  # noqa: PLC0415 - avoid import cycles
    from projections.view_files import live_path  # noqa: PLC0415
    from services.bootstrap import (  # noqa: PLC0415
        build_application,
        build_swapper,
        runner_factory,
    )

    chosen = list(dict.fromkeys(names or PROJECTIONS))
    unknown = [n for n in chosen if n not in PROJECTIONS]
    if unknown:
        known = ", ".join(sorted(PROJECTIONS))
        typer.secho(f"error: no read model {unknown[0]!r} (known: {known})", fg="red", err=True)
        raise typer.Exit(2)
    settings = _settings(data_dir, kafka, need_kafka=False)
    app = None
    stream: EventStream
    if settings.kafka:
        from infra.kafka_stream import KafkaStream  # noqa: PLC0415 - loads on demand

        stream = KafkaStream.from_settings(
            settings,
            group_prefix=group_prefix,
            session_timeout_ms=session_timeout_ms,
            consumer_options={"group_instance_id": group_instance_id}
            if group_instance_id
            else None,
        )
    else:
        from infra.embedded_stream import EmbeddedStream  # noqa: PLC0415

        app = build_application(settings)
        # one read, of the event types the read models handle, feeds them all (a
        # group when there are several): nothing decoded is kept for sharing
        stream = EmbeddedStream(app.recorder, poll_interval=poll_interval, keep_decoded=0)
    # no lingering: in a process of its own a runner shares the interpreter with no
    # API, and the consumer's fetch already gathers (CIVIC_PROJECTION_LINGER is for
    # the runners inside `civic serve`)
    make = runner_factory(settings, stream, batch_size=batch_size, linger=0.0)
    runners = {name: make(name, live_path(settings.views_dir, name)) for name in chosen}
    swapper = build_swapper(settings, runners, make)  # follows `civic projections rebuild`
    # Several read models share one thread and one read of the stream
    # (projections.group): on Kafka one consumer group, civic.NAME+NAME...
    group = RunnerGroup(list(runners.values()), stream) if len(runners) > 1 else None
    freeze_startup_heap()
    if group is not None:
        group.start()
    for runner in runners.values():
        runner.start()  # (a runner in the group has no thread of its own)
    swapper.start()
    log.info("project.started", read_models=chosen, stream="kafka" if settings.kafka else "store")
    try:
        _until_signalled()
    finally:
        swapper.stop()
        if group is not None:
            group.stop()
        for runner in list(runners.values()):  # the versions serving now
            runner.stop()
            runner.store.close()
        close_stream = getattr(stream, "close", None)
        if callable(close_stream):
            close_stream()
        if app is not None:
            app.close()


def register(app: typer.Typer) -> None:
    """Add ``relay`` and ``project`` to the ``civic`` command line."""
    app.command("relay")(relay)
    app.command("project")(project)


def main() -> None:  # ``python -m services.cli_stream``: the two commands on their own
    cli = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    register(cli)
    cli()


if __name__ == "__main__":
    main()
