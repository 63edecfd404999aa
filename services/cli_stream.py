"""``civic relay`` and ``civic project NAME``: the Kafka pipeline as its own processes.

``civic relay`` publishes the event store to Kafka (one per store: a second one
fences the first, which then retries, so run one). ``civic project NAME`` feeds
one read model from Kafka; several processes of the same NAME share the topic's
partitions through the consumer group ``civic.NAME`` and may even write the same
view database: each batch checks the applied offsets inside its own SQLite write
transaction, so whatever one applied the other skips. (Read models that join
aggregates want the store's order, which one consumer owning every partition
gives; run those as one process.)

Run the API with ``CIVIC_RUN_PROJECTIONS=false`` when these run beside it. Both
stop cleanly on SIGINT or SIGTERM.
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


def _settings(data_dir: Path | None, kafka: str | None) -> Settings:
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
    if not settings.kafka:
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
    name: Annotated[str, typer.Argument(help="The read model to run, e.g. leaderboard.")],
    kafka: KafkaOption = None,
    data_dir: DataDir = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Events applied per transaction at most.")
    ] = 20_000,
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
    """Feed one read model from Kafka until stopped (a consumer of group civic.NAME)."""
    from infra.kafka_stream import KafkaStream  # noqa: PLC0415 - the Kafka adapter loads on demand
    from projections.catalog import PROJECTIONS  # noqa: PLC0415 - avoid import cycles
    from projections.view_files import live_path  # noqa: PLC0415
    from services.bootstrap import build_swapper, runner_factory  # noqa: PLC0415

    factory = PROJECTIONS.get(name)
    if factory is None:
        known = ", ".join(sorted(PROJECTIONS))
        typer.secho(f"error: no read model {name!r} (known: {known})", fg="red", err=True)
        raise typer.Exit(2)
    settings = _settings(data_dir, kafka)
    stream = KafkaStream.from_settings(
        settings,
        group_prefix=group_prefix,
        session_timeout_ms=session_timeout_ms,
        consumer_options={"group_instance_id": group_instance_id} if group_instance_id else None,
    )
    # no lingering: in a process of its own a runner shares the interpreter with no
    # API, and the consumer's fetch already gathers (CIVIC_PROJECTION_LINGER is for
    # the runners inside `civic serve`)
    make = runner_factory(settings, stream, batch_size=batch_size, linger=0.0)
    runners = {name: make(name, live_path(settings.views_dir, name))}
    swapper = build_swapper(settings, runners, make)  # follows `civic projections rebuild`
    freeze_startup_heap()
    runners[name].start()
    swapper.start()
    try:
        _until_signalled()
    finally:
        swapper.stop()
        runners[name].stop()
        stream.close()
        runners[name].store.close()


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
