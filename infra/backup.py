"""Online backups of an embedded data directory, and what a restore checks.

A backup is a directory holding copies of the data directory's databases, the
secrets the platform generated there (if any) and ``manifest.json``:

``events.sqlite``
    the event store: the only source of truth (with its hash chain, idempotency
    records and checkpoints);
``vault.sqlite``
    each volunteer's personal-data key, wrapped with the vault master key
    (without it, every name and phone number in the store is unreadable);
``keys.sqlite``
    the API keys (hashed).

Read models (``views/``) are not copied: they are rebuilt from the history. Each
database is copied with SQLite's online backup API in a single step, that is
inside one read transaction: a consistent snapshot, taken while the server keeps
writing (in WAL mode readers and the writer do not wait for each other). The
event store is copied first and the vault after it: a volunteer's key is written
before their registration is recorded and never changes, so every volunteer in
the copied history has their key in the copied vault.

Secrets configured in the environment (``CIVIC_DOCUMENT_SECRET``,
``CIVIC_AUDIT_SECRET``, ``CIVIC_VAULT_MASTER_KEY``) are never copied; the manifest
keeps a fingerprint of each secret (a keyed SHA-256, not the secret), so a restore
can tell before it changes anything whether the platform would run on the
restored data with the same ones. Secrets the platform generated in the data
directory (development) are copied, as the data directory holds them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

MANIFEST: Final = "manifest.json"
DATABASES: Final = ("events.sqlite", "vault.sqlite", "keys.sqlite")  # in copy order
# secrets the platform keeps in the data directory when none is configured
SECRET_FILES: Final = {
    "document_secret": "document-secret",
    "audit_secret": "audit-secret",
    "vault_master_key": "vault-master-key",
}
ADMIN_KEY_FILE: Final = "admin-key"
_FINGERPRINT_KEY: Final = b"civic backup secret fingerprint v1\0"
_CHUNK: Final = 1 << 20


class BackupFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="file name inside the backup and the data directory")
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class SecretFingerprint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Literal["document_secret", "audit_secret", "vault_master_key"]
    source: Literal["environment", "data-dir"] = Field(
        description="configured in the environment (not in the backup), or generated in "
        "the data directory (copied with it)"
    )
    fingerprint: str = Field(description="keyed SHA-256 of the secret, not the secret")


class BackupManifest(BaseModel):
    """``manifest.json``: what a backup holds and how to check it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    created_at: datetime
    source: str = Field(description="the data directory it was taken from")
    head_position: int = Field(ge=0, description="the last event in the copied store")
    chain_head: str = Field(description="the hash chain's head at that position (hex)")
    events_checked: int = Field(ge=0, description="events whose chain links were verified")
    files: list[BackupFile]
    secrets: list[SecretFingerprint]

    def file(self, name: str) -> BackupFile | None:
        return next((f for f in self.files if f.name == name), None)


def fingerprint(secret: bytes) -> str:
    return hashlib.sha256(_FINGERPRINT_KEY + secret).hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe(path: Path) -> BackupFile:
    return BackupFile(name=path.name, bytes=path.stat().st_size, sha256=sha256_of(path))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_database(source: Path, target: Path, *, busy_timeout: float = 30.0) -> None:
    """A consistent copy of the SQLite database ``source`` at ``target`` (which must
    not exist), taken while others may write to it; checked with ``integrity_check``
    and made durable before it takes its final name."""
    if target.exists():
        msg = f"{target} exists"
        raise FileExistsError(msg)
    partial = target.with_name(f"{target.name}.partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=busy_timeout)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # pages=-1: every page in one step, one read transaction
            (verdict,) = dst.execute("PRAGMA integrity_check").fetchone()
        finally:
            dst.close()
    finally:
        src.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        msg = f"the copy of {source.name} fails SQLite's integrity check: {verdict}"
        raise ValueError(msg)
    _fsync(partial)
    partial.replace(target)


def copy_file(source: Path, target: Path, *, private: bool = False) -> None:
    """Copy a plain file durably (``private``: readable by its owner only)."""
    partial = target.with_name(f"{target.name}.partial")
    shutil.copyfile(source, partial)
    if private:
        partial.chmod(0o600)
    _fsync(partial)
    partial.replace(target)


def sync_directory(path: Path) -> None:
    """Make the directory's entries (new names, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def damaged_files(backup: Path, manifest: BackupManifest) -> list[str]:
    """The manifest's files that are missing from ``backup`` or differ from it."""
    problems = []
    for f in manifest.files:
        path = backup / f.name
        if not path.is_file():
            problems.append(f"{f.name}: missing")
        elif path.stat().st_size != f.bytes or sha256_of(path) != f.sha256:
            problems.append(f"{f.name}: differs from the manifest (damaged or altered)")
    return problems


def read_manifest(backup: Path) -> BackupManifest:
    """The backup's manifest (``FileNotFoundError``; ``pydantic.ValidationError``)."""
    return BackupManifest.model_validate_json((backup / MANIFEST).read_bytes())


def processes_using(paths: list[Path]) -> dict[int, str]:
    """Other processes that have any of ``paths`` open, by pid, with their command
    line (from ``/proc``: empty where there is none, as on systems without it)."""
    targets = {str(p.resolve()) for p in paths}
    found: dict[int, str] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to look at
            continue
        if targets.intersection(links):
            found[int(entry.name)] = command.strip()
    return found
