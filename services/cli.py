"""The ``civic`` command line: run the API, manage API keys, load the demo network
and look after the read models.

Every command takes ``--data-dir`` (default ``./var``, or ``CIVIC_DATA_DIR``); the
rest of the configuration comes from ``CIVIC_*`` environment variables (see
:mod:`infra.settings`).

``civic serve`` holds an exclusive lock on ``<data-dir>/server.lock`` while it
runs. Other commands read it to stay out of the server's way: ``projections
catch-up`` refuses while the server runs the projections itself, and
``projections rebuild`` leaves a rebuilt view for the server to swap in at its
next start instead of pulling the file from under its open connections.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import structlog
import typer
from rich.progress import (
    Progress,
)
from rich.table import Table

from domain.units import PracticeUnit
from infra.heap import freeze_startup_heap
from infra.settings import Settings
from projections import view_files
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from services import cli_audit as audit_commands
from services import cli_backup as backup_commands
from services import cli_stream as stream_commands
from services.bootstrap import Platform, build_application, build_runners, build_stream
from services.cli_common import DataDir, console, fail, load_settings, progress_bar
from services.principals import Role

log = structlog.get_logger(__name__)

app = typer.Typer(
    name="civic",
    help="The civic volunteering platform: API server, keys, demo data and read models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Create, list, revoke and rotate API keys.", no_args_is_help=True)
projections_app = typer.Typer(
    help="Inspect, catch up and rebuild the read models.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(projections_app, name="projections")
stream_commands.register(app)  # civic relay, civic project [NAME...] (the pipeline as processes)
audit_commands.register(app)  # civic audit ...
backup_commands.register(app)  # civic backup, civic restore

ADMIN_KEY_FILE = "admin-key"
LOCK_FILE = "server.lock"
LOOPBACK_NAMES = ("localhost",)


def main() -> None:
    app()


# -- helpers -----------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# -- the server lock ---------------------------------------------------------------------


class ServerLock:
    """An advisory ``flock`` on ``<data-dir>/server.lock``.

    ``civic serve`` holds it exclusively for its whole life and writes its pid and
    whether it runs the projections into the file; the lock, not the file's
    existence, says whether a server is running (the file is never deleted).
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock, trying for up to ``wait`` seconds; False if it stays taken."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.1)
            else:
                self._fd = fd
                return True

    def describe(self, info: dict[str, Any]) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, json.dumps(info).encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @contextmanager
    def held(self) -> Iterator[bool]:
        """Try to hold the lock for a block; yields whether it was free."""
        acquired = self.acquire()
        try:
            yield acquired
        finally:
            if acquired:
                self.release()

    @classmethod
    def holder(cls, data_dir: Path) -> dict[str, Any] | None:
        """What the running server wrote about itself, or None if none runs."""
        lock = cls(data_dir)
        if not lock.path.exists():
            return None
        with lock.held() as free:
            if free:
                return None
        try:
            info = json.loads(lock.path.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        return info if isinstance(info, dict) else {}


# -- serve -------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    kafka: Annotated[
        str | None,
        typer.Option(metavar="HOST:PORT", help="Feed the read models from Kafka (loopback)."),
    ] = None,
    no_projections: Annotated[
        bool,
        typer.Option("--no-projections", help="Do not run the read models in this server."),
    ] = False,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    data_dir: DataDir = None,
) -> None:
    """Run the HTTP API (uvicorn with uvloop and httptools).

    On the first start with no API keys, an admin key is created, printed once and
    written to <data-dir>/admin-key (mode 0600) so you can call the API at once.
    With several workers the read models run once, in this supervising process.
    """
    if not is_loopback(host):
        raise fail(
            f"refusing to listen on {host!r}: only loopback addresses (127.0.0.1, ::1, "
            "localhost) are allowed. Put a reverse proxy with TLS in front to expose the API.",
            2,
        )
    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "run_projections": not no_projections,
    }
    if kafka is not None:
        overrides["kafka"] = kafka
    settings = load_settings(data_dir, **overrides)
    lock = ServerLock(settings.data_dir)
    if not lock.acquire(wait=5.0):  # a CLI command may hold it briefly (a view swap)
        info = ServerLock.holder(settings.data_dir) or {}
        raise fail(
            f"another civic server (pid {info.get('pid', '?')}) is running on "
            f"{settings.data_dir}; stop it first"
        )
    platform: Platform | None = None
    try:
        lock.describe({"pid": os.getpid(), "projections": settings.run_projections, "port": port})
        remove_stale_views(settings)
        first_admin_key(settings)
        os.environ.update(server_environment(settings))
        if workers > 1 and settings.run_projections:
            # one set of runners for all workers: two runners must never write the
            # same view database at once
            platform = Platform.build(settings)
            platform.start_runners()
            os.environ["CIVIC_RUN_PROJECTIONS"] = "false"
        run_uvicorn(settings, workers)
    finally:
        if platform is not None:
            platform.close()
        lock.release()


def server_environment(settings: Settings) -> dict[str, str]:
    """What the app factory (in this or a worker process) reads its settings from."""
    env = {
        "CIVIC_DATA_DIR": str(settings.data_dir.resolve()),
        "CIVIC_HOST": settings.host,
        "CIVIC_PORT": str(settings.port),
        "CIVIC_RUN_PROJECTIONS": "true" if settings.run_projections else "false",
    }
    if settings.kafka:
        env["CIVIC_KAFKA"] = settings.kafka
    return env


def run_uvicorn(settings: Settings, workers: int) -> None:  # pragma: no cover - blocks
    import uvicorn  # noqa: PLC0415 - only the server needs it

    uvicorn.run(
        "services.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        access_log=False,
    )


def first_admin_key(settings: Settings) -> None:
    """With an empty key store, create an admin key, print it once and save it to
    ``<data-dir>/admin-key`` (readable by the owner only)."""
    from services.keys import KeyStore  # noqa: PLC0415 - keeps `civic --help` light

    store = KeyStore(settings.keys_db)
    try:
        if store.list():
            return
        principal, token = store.create(Role.ADMIN, "admin (created on first start)")
    finally:
        store.close()
    path = settings.data_dir / ADMIN_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(token + "\n")
    log.info("keys.first_admin_created", key_id=principal.key_id, path=str(path))
    url = f"http://{settings.host}:{settings.port}"
    rule = "=" * 78
    typer.echo(
        f"\n{rule}\n"
        "  First start: no API keys existed, so an ADMIN API KEY was created.\n"
        "  It is shown only this once; a copy is in "
        f"{path} (mode 0600).\n\n"
        f"    {token}\n\n"
        f'  Try:  curl -H "Authorization: Bearer $(cat {path})" {url}/v1/keys\n'
        "  Create your own keys with `civic keys create`, then revoke this one\n"
        f"  (`civic keys revoke {principal.key_id}`) and delete the file.\n"
        f"{rule}\n"
    )


# -- keys --------------------------------------------------------------------------------


def _resolve_unit(settings: Settings, unit: str) -> UUID:
    """A unit by id or by code (e.g. ``JB-01``); checked against the event store
    when there is one."""
    try:
        unit_id = UUID(unit)
    except ValueError:
        unit_id = PracticeUnit.create_id(unit)
    if settings.event_store == "postgres" or settings.events_db.exists():
        application = build_application(settings)
        try:
            found = application.get(unit_id)
        finally:
            application.close()
        if not isinstance(found, PracticeUnit):
            raise fail(f"no practice unit {unit!r} in the event store", 2)
    return unit_id


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="What the key may do.", case_sensitive=False)],
    unit: Annotated[
        str | None,
        typer.Option(help="Unit id or code whose subtree a unit_admin/service key acts in."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Who or what uses the key.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an API key. The key itself is the last line of the output."""
    from services.keys import KeyStore  # noqa: PLC0415

    settings = load_settings(data_dir)
    unit_id = _resolve_unit(settings, unit) if unit is not None else None
    store = KeyStore(settings.keys_db)
    try:
        principal, token = store.create(role, name or f"{role.value} key (cli)", unit_id)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    finally:
        store.close()
    scope = f" for unit {unit_id}" if unit_id else ""
    typer.echo(
        f"Created {role.value} key {principal.key_id} ({principal.name}){scope}. "
        "Store it now: it cannot be shown again."
    )
    typer.echo(token)


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDir = None,
) -> None:
    """List every key (never the secrets)."""
    from services.keys import KeyStore  # noqa: PLC0415

    settings = load_settings(data_dir)
    store = KeyStore(settings.keys_db)
    try:
        keys = store.list()
    finally:
        store.close()
    rows = [
        {
            "key_id": k.key_id,
            "name": k.name,
            "role": k.role.value,
            "unit_id": str(k.unit_id) if k.unit_id else None,
            "created_at": k.created_at.isoformat(timespec="seconds"),
            "revoked_at": k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else None,
            "replaces": k.replaces,
        }
        for k in keys
    ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("No keys yet: `civic keys create --role admin` makes one.")
        return
    table = Table("key id", "name", "role", "unit", "created", "status")
    for r in rows:
        status = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        table.add_row(
            r["key_id"], r["name"], r["role"], r["unit_id"] or "-", r["created_at"], status
        )
    console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Revoke a key: it stops working at once here, within seconds in a running server."""
    from services.keys import KeyStore, UnknownKeyError  # noqa: PLC0415

    settings = load_settings(data_dir)
    store = KeyStore(settings.keys_db)
    try:
        info = store.revoke(key_id)
    except UnknownKeyError:
        raise fail(f"no key {key_id!r}") from None
    finally:
        store.close()
    typer.echo(f"Revoked key {info.key_id} ({info.name}).")


@keys_app.command("rotate")
def keys_rotate(key_id: str, data_dir: DataDir = None) -> None:
    """Replace a key with a new one (same name, role and unit) and revoke the old.
    The new key is the last line of the output."""
    from services.keys import KeyStore, RevokedKeyError, UnknownKeyError  # noqa: PLC0415

    settings = load_settings(data_dir)
    store = KeyStore(settings.keys_db)
    try:
        token = store.rotate(key_id)
    except UnknownKeyError:
        raise fail(f"no key {key_id!r}") from None
    except RevokedKeyError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    typer.echo(f"Rotated key {key_id}: it is revoked; use the new key below.")
    typer.echo(token)


# -- demo --------------------------------------------------------------------------------


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Same seed, same network and history.")] = 7,
    volunteers: Annotated[int, typer.Option(min=1, max=200_000)] = 3000,
    months: Annotated[int, typer.Option(min=1, max=36)] = 12,
    start: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="First day of the demo period.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
    force: Annotated[
        bool, typer.Option("--force", help="Load even if the event store is not empty.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Load a realistic demo network (江北区: 1 center, 9 institutes, 123 stations)
    with volunteers and a year of activities, points and redemptions."""
    from services.demo import DEFAULT_START, DemoConfig, generate, load  # noqa: PLC0415

    settings = load_settings(data_dir)
    try:
        first_day = date.fromisoformat(start) if start else DEFAULT_START
    except ValueError:
        raise fail(f"--start {start!r} is not a date (YYYY-MM-DD)", 2) from None
    config = DemoConfig(
        seed=seed,
        volunteers=volunteers,
        months=months,
        start=first_day,
        timezone=settings.timezone,
    )
    application = build_application(settings)
    try:
        existing = application.head()
        if existing and not force:
            raise fail(
                f"the event store in {settings.data_dir} is not empty ({existing} events). "
                "Use another --data-dir, or --force to load anyway (commands that clash "
                "with what is there are refused and counted)."
            )
        started = time.perf_counter()
        typer.echo(
            f"Generating the demo (seed {seed}, {volunteers} volunteers, {months} months)…",
            err=True,
        )
        plan = generate(
            config,
            document_secret=settings.document_secret_bytes(),
            points_rule=application.points_rule,
        )
        generated = time.perf_counter() - started
        with progress_bar() as progress:
            task = progress.add_task("Loading", total=len(plan.steps))
            report = load(
                application,
                plan,
                batch_size=batch_size,
                progress=lambda n: progress.advance(task, n),
            )
    finally:
        application.close()

    counts = plan.counts
    typer.echo(
        f"Loaded the demo into {settings.data_dir}\n"
        f"  units          {counts['units']} (1 center, {counts['institutes']} institutes, "
        f"{counts['stations']} stations)\n"
        f"  volunteers     {counts['volunteers']}\n"
        f"  activities     {counts['activities']} ({counts['cmd:SignUp']} sign-ups, "
        f"{counts['cmd:ConfirmService']} confirmed services)\n"
        f"  rewards        {counts['rewards']} listed, {counts['cmd:Redeem']} redemptions\n"
        f"  commands       {report.commands} ({sum(report.failed.values())} refused)\n"
        f"  events written {report.events}\n"
        f"  time           {generated:.1f} s generating, {report.seconds:.1f} s loading "
        f"({report.events_per_second:,.0f} events/s)"
    )
    if report.failed:
        typer.secho("Refused commands by reason:", fg="yellow", err=True)
        for reason, n in report.failed.most_common():
            typer.echo(f"  {n:6d}  {reason}", err=True)
        for step, detail in report.failures[:5]:
            typer.echo(f"  e.g. {step.command.__class__.__name__}: {detail}", err=True)
        if not force:
            raise typer.Exit(1)
    typer.echo(
        "Next: `civic serve` (the read models catch up as it starts) or "
        "`civic projections catch-up`."
    )


# -- projections -------------------------------------------------------------------------


def _catalog() -> dict[str, Any]:
    from projections.catalog import PROJECTIONS  # noqa: PLC0415 - avoid import cycles

    return dict(PROJECTIONS)


def _check_name(name: str) -> None:
    known = _catalog()
    if name not in known:
        raise fail(f"no projection {name!r}; known: {', '.join(sorted(known))}", 2)


@contextmanager
def _runners(settings: Settings, only: str | None = None) -> Iterator[dict[str, ProjectionRunner]]:
    application = build_application(settings)
    stream = build_stream(settings, application)
    runners = build_runners(settings, stream)
    try:
        yield {n: r for n, r in runners.items() if only is None or n == only}
    finally:
        for runner in runners.values():
            runner.stop()
            _close_store(runner.store)
        application.close()


def _close_store(store: ViewStore) -> None:
    """Close the writer and this thread's reader (the only one the CLI uses), so the
    view file is not held open after the command."""
    store.reader().close()
    store.close()


def _dead_letter_count(runner: ProjectionRunner) -> int:
    row = runner.store.reader().execute("SELECT COUNT(*) FROM dead_letters").fetchone()
    return int(row[0])


# How long a catch-up waits for the stream before it calls itself stalled: longer for
# the first records (a Kafka consumer group's first join can take seconds) than
# between batches.
FIRST_RECORDS_PATIENCE = 30.0
IDLE_PATIENCE = 2.0


@dataclass(frozen=True)
class CaughtUp:
    applied: int  # events applied
    stalled: bool  # the stream stopped delivering short of the head it reported


def catch_up(
    runner: ProjectionRunner, progress: Progress, description: str | None = None
) -> CaughtUp:
    """Apply everything up to the head, showing progress."""
    head = runner.stream.head()
    task = progress.add_task(description or runner.name, total=max(head, 1))
    progress.update(task, completed=min(runner.position, head))
    applied = 0
    stalled = False
    last_record = time.monotonic()
    while True:
        n = runner.run_once(timeout=0.0)
        applied += n
        head = max(head, runner.stream.head())
        progress.update(task, total=max(head, 1), completed=min(runner.position, head))
        if n:
            last_record = time.monotonic()
            continue
        if runner.position >= head:
            break
        patience = IDLE_PATIENCE if applied else FIRST_RECORDS_PATIENCE
        if time.monotonic() - last_record > patience:  # nothing more for us (a gap?)
            log.warning("projection.catch_up_stalled", projection=runner.name, head=head)
            stalled = True
            break
        time.sleep(0.05)
    if runner.read_indexes_pending:  # (a stalled view still answers its reads)
        runner.build_read_indexes()
    if not stalled:
        progress.update(task, completed=max(head, 1))
    return CaughtUp(applied, stalled=stalled)


@projections_app.command("status")
def projections_status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Per read model: position applied, store head, lag, health, dead letters."""
    settings = load_settings(data_dir)
    rows = []
    with _runners(settings) as runners:
        for name, runner in runners.items():
            head = runner.stream.head()
            rows.append(
                {
                    "name": name,
                    "position": runner.position,
                    "head": head,
                    "lag": runner.lag(),
                    "healthy": runner.healthy,
                    "dead_letters": _dead_letter_count(runner),
                }
            )
    server = ServerLock.holder(settings.data_dir)
    if as_json:
        typer.echo(json.dumps({"projections": rows, "server": server}, indent=2))
        return
    table = Table("projection", "position", "head", "lag", "healthy", "dead letters")
    for r in rows:
        healthy = "[green]yes[/]" if r["healthy"] else "[red]no[/]"
        table.add_row(
            str(r["name"]),
            str(r["position"]),
            str(r["head"]),
            str(r["lag"]),
            healthy,
            str(r["dead_letters"]),
        )
    console().print(table)
    if server is not None:
        runs = "runs" if server.get("projections") else "does not run"
        typer.echo(f"A server (pid {server.get('pid', '?')}) {runs} the projections.")


@projections_app.command("catch-up")
def projections_catch_up(data_dir: DataDir = None) -> None:
    """Run every read model up to the store's head once."""
    settings = load_settings(data_dir)
    server = ServerLock.holder(settings.data_dir)
    if server is not None and server.get("projections", True):
        raise fail(
            f"the server (pid {server.get('pid', '?')}) runs the projections itself; "
            "two runners must not write the same view at once"
        )
    with _runners(settings) as runners, progress_bar() as progress:
        totals = {name: catch_up(runner, progress) for name, runner in runners.items()}
    for name, caught_up in totals.items():
        stalled = " (stalled short of the head: see the log)" if caught_up.stalled else ""
        typer.echo(f"{name}: applied {caught_up.applied} events{stalled}")


@projections_app.command("rebuild")
def projections_rebuild(
    name: str,
    wait: Annotated[
        float, typer.Option("--wait", min=1, help="Seconds to wait for a running server's swap.")
    ] = 120.0,
    data_dir: DataDir = None,
) -> None:
    """Build a new version of one read model from position 0 and swap it in, live.

    The new version is built into its own file (views/NAME.<stamp>.sqlite) while the
    old one keeps serving. With no server running it then becomes the served
    version at once; a running server (or ``civic project`` process) is offered it,
    catches it up, switches its readers over in one step and deletes the old file.
    """
    settings = load_settings(data_dir)
    _check_name(name)
    views = settings.views_dir
    version = view_files.new_version_path(views, name)
    factory = _catalog()[name]
    application = build_application(settings)
    # on Kafka a consumer group of its own, so that the rebuild takes no partitions
    # from the consumers keeping the live version up to date
    stream = build_stream(settings, application, group_prefix=f"civic.rebuild.{version.stem}.")
    store = ViewStore(version)
    freeze_startup_heap()  # infra/heap.py: the whole history goes through this process
    try:
        runner = ProjectionRunner(factory(timezone=settings.timezone), store, stream)
        with progress_bar() as progress:
            caught_up = catch_up(runner, progress, f"rebuilding {name}")
        applied, position = caught_up.applied, runner.position
        runner.stop()
        if caught_up.stalled:  # never swap in a version that stopped short of the head
            raise fail(
                f"rebuilding {name} stalled at position {position} of {stream.head()}; "
                "nothing was swapped (the live version keeps serving): check the stream "
                "(for Kafka: the broker, and that the relay has published) and run it again"
            )
    except BaseException:
        _close_store(store)
        view_files.remove_database(version)
        raise
    finally:
        close_stream = getattr(stream, "close", None)
        if callable(close_stream):
            close_stream()
        application.close()
    _close_store(store)
    lock = ServerLock(settings.data_dir)
    with lock.held() as free:
        if free:
            lock.describe({"pid": os.getpid(), "projections": False, "command": "rebuild"})
            old = view_files.live_path(views, name)
            view_files.point_to(views, name, version)
            view_files.remove_database(old)
            typer.echo(
                f"Rebuilt {name}: {applied} events applied up to position {position}; "
                f"now serving {version.name}."
            )
            return
    view_files.offer(views, name, version)
    server = ServerLock.holder(settings.data_dir) or {}
    deadline = time.monotonic() + wait
    with console(stderr=True).status(f"waiting for the server to swap {name} in"):
        while view_files.live_path(views, name) != version:
            if time.monotonic() > deadline:
                raise fail(
                    f"rebuilt {name} up to position {position}, but the server "
                    f"(pid {server.get('pid', '?')}) did not swap it in within {wait:.0f} s; "
                    f"it stays offered in {view_files.READY.format(name=name)}"
                )
            time.sleep(0.2)
    typer.echo(
        f"Rebuilt {name}: {applied} events applied up to position {position}; the server "
        f"(pid {server.get('pid', '?')}) swapped it in live and serves {version.name}."
    )


def remove_stale_views(settings: Settings) -> None:
    """Delete view versions nothing serves (called by ``serve`` with the lock held)."""
    from projections.catalog import PROJECTIONS  # noqa: PLC0415 - avoid import cycles

    if not settings.views_dir.exists():
        return
    for name in PROJECTIONS:
        for path in view_files.stale_versions(settings.views_dir, name):
            view_files.remove_database(path)
            log.info("projection.stale_view_removed", view=path.name)


@projections_app.command("dead-letters")
def projections_dead_letters(
    name: str,
    replay: Annotated[
        int | None,
        typer.Option(metavar="POSITION", help="Apply the parked event at POSITION again."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """List the events a read model parked, or replay one of them."""
    settings = load_settings(data_dir)
    _check_name(name)
    with _runners(settings, only=name) as runners:
        runner = runners[name]
        if replay is not None:
            try:
                replayed = runner.replay_dead_letter(replay)
            except Exception as exc:  # the projection failed again: report it, keep it parked
                raise fail(f"replaying position {replay} failed again: {exc!r}") from None
            if not replayed:
                raise fail(f"{name} has no dead letter at position {replay}")
            typer.echo(f"Replayed position {replay} into {name}.")
            return
        letters = runner.dead_letters()
    if not letters:
        typer.echo(f"{name} has no dead letters.")
        return
    table = Table("position", "type", "attempts", "parked at", "error")
    for letter in letters:
        parked = datetime.fromtimestamp(float(str(letter["parked_at"])), UTC)
        table.add_row(
            str(letter["position"]),
            str(letter["type"]),
            str(letter["attempts"]),
            parked.isoformat(timespec="seconds"),
            str(letter["error"]),
        )
    console().print(table)


if __name__ == "__main__":  # pragma: no cover
    main()
