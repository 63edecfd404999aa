"""``civic backup`` and ``civic restore``: the embedded store, copied while it runs.

What a backup holds and why it is consistent: ``infra.backup``. A backup is only
written out whole: the copy's hash chain is verified (``services.audit.chain``)
before ``manifest.json`` is, and ``civic restore`` takes nothing without a
manifest whose checksums match. A restore never deletes: what it replaces is
moved into ``<data-dir>/replaced-<time>/``. It leaves the read models out (they
are rebuilt from the restored history at the next start) and refuses while a
server runs on the data directory.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from pydantic import SecretStr, ValidationError

from infra.backup import (
    ADMIN_KEY_FILE,
    DATABASES,
    MANIFEST,
    SECRET_FILES,
    BackupManifest,
    SecretFingerprint,
    copy_database,
    copy_file,
    damaged_files,
    describe,
    fingerprint,
    processes_using,
    read_manifest,
    sync_directory,
)
from infra.settings import Settings
from services.cli_common import DataDir, console, fail, load_settings

if TYPE_CHECKING:
    from services.audit.chain import VerifyReport

PG_DUMP_HINT = (
    "the event store is in PostgreSQL (CIVIC_EVENT_STORE=postgres): back it up with pg_dump "
    '(e.g. pg_dump --format=custom --file=events.dump "$CIVIC_POSTGRES_DSN"), then copy '
    "vault.sqlite and keys.sqlite from the data directory, in that order"
)
PG_RESTORE_HINT = (
    "the event store is in PostgreSQL (CIVIC_EVENT_STORE=postgres): restore it with "
    "pg_restore, and vault.sqlite and keys.sqlite into the data directory, the server stopped"
)


def _size(n: int) -> str:
    return f"{n / 1_048_576:,.1f} MiB" if n >= 1_048_576 else f"{n / 1024:,.1f} KiB"


def _secret_in_use(
    settings: Settings, field: str, directory: Path
) -> tuple[str, Literal["environment", "data-dir"]] | None:
    """The secret ``field`` the platform would use with the data in ``directory``:
    the one configured in the environment, else the one kept in that directory
    (the platform would generate one if neither exists: None)."""
    configured: SecretStr | None = getattr(settings, field)
    if configured is not None:
        return configured.get_secret_value(), "environment"
    path = directory / SECRET_FILES[field]
    if path.exists():
        return path.read_text().strip(), "data-dir"  # as Settings reads it
    return None


# -- backup ------------------------------------------------------------------------------


def backup(
    destination: Annotated[
        Path, typer.Argument(help="A new (or empty) directory for the backup.", file_okay=False)
    ],
    data_dir: DataDir = None,
) -> None:
    """Copy the event store, the vault and the API keys while the platform runs,
    verify the copy's hash chain, and write manifest.json (checksums, head, chain)."""
    settings = load_settings(data_dir)
    if settings.event_store != "sqlite":
        raise fail(PG_DUMP_HINT, 2)
    if not settings.events_db.exists():
        raise fail(f"no event store at {settings.events_db}", 2)
    if destination.exists() and any(destination.iterdir()):
        raise fail(f"{destination} is not empty: give a new directory", 2)
    destination.mkdir(parents=True, exist_ok=True)
    out = console(stderr=True)
    started = time.perf_counter()
    for name in DATABASES:  # the event store first, the vault after it (infra.backup)
        source = settings.data_dir / name
        if not source.exists():
            out.print(f"{name}: not in {settings.data_dir} (never created), skipped")
            continue
        out.print(f"{name}: copying {_size(source.stat().st_size)} ...")
        began = time.perf_counter()
        copy_database(source, destination / name)
        size = (destination / name).stat().st_size
        out.print(f"{name}: {_size(size)} copied in {time.perf_counter() - began:.1f} s")
    fingerprints, values = _copy_secrets(settings, destination)
    if (settings.data_dir / ADMIN_KEY_FILE).exists():
        copy_file(settings.data_dir / ADMIN_KEY_FILE, destination / ADMIN_KEY_FILE, private=True)
    out.print("verifying the copy's hash chain ...")
    report = _verify_copy(settings, destination, values)
    if not report.ok:
        where = f" at position {report.first_break.position}" if report.first_break else ""
        raise fail(
            f"the copied store does not verify{where} ({report.breaks_total} break(s), "
            f"{sum(not c.ok for c in report.checkpoints)} checkpoint(s) off): the source is "
            f"damaged or altered; run `civic audit verify`. No manifest was written to "
            f"{destination}, so it cannot be restored.",
        )
    names = [*DATABASES, *SECRET_FILES.values(), ADMIN_KEY_FILE]
    files = [describe(destination / n) for n in names if (destination / n).exists()]
    manifest = BackupManifest(
        created_at=datetime.now(UTC),
        source=str(settings.data_dir.resolve()),
        head_position=report.head_position,
        chain_head=report.head_hash,
        events_checked=report.events_checked,
        files=files,
        secrets=fingerprints,
    )
    partial = destination / f"{MANIFEST}.partial"
    partial.write_text(manifest.model_dump_json(indent=2) + "\n")
    partial.replace(destination / MANIFEST)
    sync_directory(destination)
    out.print(
        f"backup of {report.head_position:,} events (chain head {report.head_hash[:16]}…, "
        f"{report.events_checked:,} links verified) in {destination}, "
        f"{time.perf_counter() - started:.1f} s"
    )
    from_env = [s.name for s in fingerprints if s.source == "environment"]
    if from_env:
        out.print(
            "not in the backup (configured in the environment; a restore checks their "
            f"fingerprints): {', '.join(from_env)}"
        )
    if any(s.source == "data-dir" for s in fingerprints):
        out.print(
            "the backup holds the secrets generated in the data directory: keep it as "
            "private as the data directory"
        )


def _copy_secrets(
    settings: Settings, destination: Path
) -> tuple[list[SecretFingerprint], dict[str, str]]:
    """Fingerprints of the secrets in use, copying those kept in the data directory;
    also the secrets' values (to open the copy with)."""
    fingerprints: list[SecretFingerprint] = []
    values: dict[str, str] = {}
    for field, file_name in SECRET_FILES.items():
        found = _secret_in_use(settings, field, settings.data_dir)
        if found is None:
            continue
        value, source = found
        values[field] = value
        if source == "data-dir":
            copy_file(settings.data_dir / file_name, destination / file_name, private=True)
        fingerprints.append(
            SecretFingerprint(name=field, source=source, fingerprint=fingerprint(value.encode()))
        )
    return fingerprints, values


def _verify_copy(settings: Settings, destination: Path, values: dict[str, str]) -> VerifyReport:
    """Open the copy as the platform would and recompute its hash chain. Secrets
    that never existed get a throwaway value: nothing in the copy depends on them,
    and none is written into the backup."""
    from services.audit import chain  # noqa: PLC0415 - only this command needs it
    from services.bootstrap import build_application  # noqa: PLC0415 - avoid import cycles

    given = {f: SecretStr(values.get(f) or secrets.token_urlsafe(48)) for f in SECRET_FILES}
    copy = settings.model_copy(update={"data_dir": destination, "kafka": None, **given})
    app = build_application(copy)
    try:
        report = chain.verify(app, given["audit_secret"].get_secret_value().encode())
    finally:
        app.close()
    for leftover in destination.glob("*.writer-lock"):  # the application's, not the data's
        leftover.unlink()
    return report


# -- restore -----------------------------------------------------------------------------


def restore(
    source: Annotated[
        Path, typer.Argument(help="A directory written by `civic backup`.", file_okay=False)
    ],
    data_dir: DataDir = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace an existing store (it is moved to <data-dir>/replaced-<time>/).",
        ),
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only check the backup (checksums, secrets, its hash chain, in a scratch "
            "copy); change nothing. Runs beside a live server.",
        ),
    ] = False,
) -> None:
    """Put a backup in place as the data directory's store (the server stopped).
    Checks every checksum and that the secrets in use match the backup's first."""
    from services.cli import ServerLock  # noqa: PLC0415 - services.cli imports this module

    settings = load_settings(data_dir)
    if settings.event_store != "sqlite":
        raise fail(PG_RESTORE_HINT, 2)
    try:
        manifest = read_manifest(source)
    except FileNotFoundError:
        raise fail(f"{source} holds no {MANIFEST}: not a complete backup", 2) from None
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise fail(f"{source / MANIFEST} is not a backup manifest: {problem}", 2) from None
    problems = damaged_files(source, manifest)
    if problems:
        raise fail(f"the backup in {source} is damaged: " + "; ".join(problems))
    mismatched = _secret_mismatches(settings, source, manifest)
    if mismatched:
        raise fail(
            "the platform would run on the restored data with other secrets than the "
            "backup's (personal data or identity checks would break): " + "; ".join(mismatched)
        )
    if check:
        _check_restorable(settings, source, manifest)
        return
    lock = ServerLock(settings.data_dir)
    if not lock.acquire():
        info = ServerLock.holder(settings.data_dir) or {}
        raise fail(
            f"a civic server (pid {info.get('pid', '?')}) is running on {settings.data_dir}; "
            "stop it first"
        )
    try:
        users = processes_using([settings.data_dir / name for name in DATABASES])
        if users:  # `civic project` or `civic relay` reading the store, a tool...
            listed = "; ".join(f"pid {pid}: {command[:80]}" for pid, command in users.items())
            raise fail(f"processes have the store open ({listed}); stop them first")
        moved = _move_aside(settings.data_dir, manifest, force)
        for f in manifest.files:
            private = f.name in (*SECRET_FILES.values(), ADMIN_KEY_FILE)
            copy_file(source / f.name, settings.data_dir / f.name, private=private)
        sync_directory(settings.data_dir)
    finally:
        lock.release()
    out = console(stderr=True)
    if moved is not None:
        out.print(f"the store that was there is in {moved}")
    out.print(
        f"restored {manifest.head_position:,} events (chain head {manifest.chain_head[:16]}…, "
        f"backup of {manifest.created_at:%Y-%m-%d %H:%M:%S} UTC) into {settings.data_dir}; "
        "the read models are rebuilt from this history at the next start "
        "(or run `civic projections catch-up`)"
    )
    if settings.kafka:
        out.print(
            f"Kafka: topic {settings.kafka_topic!r} may hold events this store does not; "
            "point CIVIC_KAFKA_TOPIC at a new topic before starting the relay (it publishes "
            "the restored history there) and rebuild the read models from it"
        )


def _check_restorable(settings: Settings, source: Path, manifest: BackupManifest) -> None:
    """Open a scratch copy of the backup as a restore would leave it and verify its
    hash chain against the manifest."""
    values = {f: found[0] for f in SECRET_FILES if (found := _secret_in_use(settings, f, source))}
    with tempfile.TemporaryDirectory(prefix="civic-restore-check-") as scratch:
        copy = Path(scratch)
        for f in manifest.files:
            shutil.copyfile(source / f.name, copy / f.name)
        report = _verify_copy(settings, copy, values)
    same = (report.head_position, report.head_hash) == (manifest.head_position, manifest.chain_head)
    if not report.ok or not same:
        raise fail(
            f"the backup in {source} does not verify: chain {'intact' if report.ok else 'BROKEN'}"
            f", head {report.head_position} {report.head_hash[:16]}… against the manifest's "
            f"{manifest.head_position} {manifest.chain_head[:16]}…"
        )
    console(stderr=True).print(
        f"the backup in {source} is restorable: {manifest.head_position:,} events, chain "
        f"verified to {manifest.chain_head[:16]}…, checksums and secrets match"
    )


def _secret_mismatches(settings: Settings, source: Path, manifest: BackupManifest) -> list[str]:
    mismatched = []
    for s in manifest.secrets:
        env = f"CIVIC_{s.name.upper()}"
        found = _secret_in_use(settings, s.name, source)  # a backed-up file is in `source`
        if found is None:
            mismatched.append(f"{env} was configured when the backup was taken: set it again")
        elif fingerprint(found[0].encode()) != s.fingerprint:
            mismatched.append(
                f"{env} differs from the one the backup was taken with"
                if found[1] == "environment"
                else f"{SECRET_FILES[s.name]} in the backup differs"
            )
    return mismatched


def _store_paths(data_dir: Path, manifest: BackupManifest) -> list[Path]:
    """What a restore replaces: the databases (with their journals), the read models
    and the backup's other files."""
    paths = []
    for name in DATABASES:
        paths += [data_dir / name, *(data_dir / f"{name}{s}" for s in ("-wal", "-shm"))]
    paths.append(data_dir / "views")
    paths += [data_dir / f.name for f in manifest.files if f.name not in DATABASES]
    return [p for p in paths if p.exists()]


def _move_aside(data_dir: Path, manifest: BackupManifest, force: bool) -> Path | None:
    present = _store_paths(data_dir, manifest)
    if not present:
        return None
    if any(p.name in DATABASES for p in present) and not force:
        raise fail(
            f"{data_dir} already holds a store; pass --force to replace it (it is moved "
            "aside, not deleted)"
        )
    aside = data_dir / f"replaced-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    aside.mkdir()
    for path in present:
        path.rename(aside / path.name)
    sync_directory(data_dir)
    return aside


def register(app: typer.Typer) -> None:
    """Add ``civic backup`` and ``civic restore`` to the ``civic`` command line."""
    app.command("backup")(backup)
    app.command("restore")(restore)
