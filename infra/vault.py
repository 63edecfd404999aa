"""The personal-data vault: one data key per volunteer, kept outside the event stream.

Names, phone numbers and masked identity numbers are sealed (AES-256-GCM) with a
key of their own volunteer before they reach the domain, so the event store, the
Kafka topic and the read models only ever hold opaque tokens::

    pii1.<base64url(nonce ‖ ciphertext ‖ tag)>

The associated data binds a token to its volunteer and field, so a token copied
onto another volunteer or field does not open. Each volunteer's data key is kept
here, wrapped (AES-256-GCM again) under the master key from settings
(``CIVIC_VAULT_MASTER_KEY``); the vault is a SQLite file of its own
(``<data dir>/vault.sqlite``) with ``PRAGMA secure_delete=ON``.

Erasing a volunteer (:meth:`PersonalDataVault.shred`) deletes their key and keeps a
tombstone (the volunteer id and when), then checkpoints and truncates the write-ahead
log, so the wrapped key is overwritten in the file and no older copy of its page
survives in the log. Every token sealed with it is from then on unreadable
wherever it was copied: stored events, Kafka messages, read models, backups.

Opened keys are cached in memory for speed. The cache is dropped whenever another
connection (another process: an API worker, the CLI, a projector) has changed the
vault (``PRAGMA data_version``), so an erasure is effective at once in every process
that shares the file.
"""

from __future__ import annotations

import base64
import binascii
import os
import sqlite3
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from domain.randomness import random_bytes

TOKEN_PREFIX: Final = "pii1."  # noqa: S105 - a format marker, not a secret
ERASED: Final = "[erased]"
_NONCE: Final = 12
_KEY_INFO: Final = b"civic personal-data vault master key v1"
DEFAULT_CACHE_SIZE: Final = 65_536

VAULT_DDL: Final = """
CREATE TABLE IF NOT EXISTS subject_keys (
    subject_id TEXT PRIMARY KEY,
    wrapped_key BLOB,            -- NULL once shredded
    created_at TEXT NOT NULL,
    shredded_at TEXT
) WITHOUT ROWID
"""


class SubjectErasedError(Exception):
    """The subject was erased: nothing can be sealed for them any more."""


def derive_master_key(secret: bytes) -> bytes:
    """A 256-bit wrapping key from the configured master secret (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(secret)


def is_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)


def _aad(subject: UUID, field: str) -> bytes:
    return f"civic-pii-v1|{subject}|{field}".encode()


def _wrap_aad(subject: UUID) -> bytes:
    return f"civic-vault-v1|{subject}".encode()


class PersonalDataVault:
    def __init__(
        self,
        path: Path | str,
        master_secret: bytes,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if len(master_secret) < 16:
            msg = "the vault master secret must be at least 16 bytes"
            raise ValueError(msg)
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._master = AESGCM(derive_master_key(master_secret))
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.execute("PRAGMA secure_delete=ON")
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(VAULT_DDL)
        self._lock = threading.RLock()
        self._cache_size = cache_size
        # subject -> its opened key, or None once erased (tombstones are permanent)
        self._cache: OrderedDict[UUID, AESGCM | None] = OrderedDict()
        self._data_version = self._read_data_version()

    @classmethod
    def in_memory(cls) -> PersonalDataVault:
        """A private vault for one process (tests, tools): random master secret."""
        return cls(":memory:", os.urandom(32))

    # -- sealing and opening ---------------------------------------------------------

    def seal(self, subject: UUID, field: str, value: str) -> str:
        """Encrypt ``value`` for ``subject`` (creating their key on first use)."""
        key = self._key(subject, create=True)
        if key is None:
            raise SubjectErasedError(str(subject))
        nonce = random_bytes(_NONCE)
        sealed = key.encrypt(nonce, value.encode(), _aad(subject, field))
        return TOKEN_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, subject: UUID, field: str, token: str) -> str | None:
        """The plaintext of a token, or None when the subject was erased (or the token
        does not belong to this subject and field)."""
        if not is_token(token):
            return None
        key = self._key(subject, create=False)
        if key is None:
            return None
        body = token[len(TOKEN_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return key.decrypt(raw[:_NONCE], raw[_NONCE:], _aad(subject, field)).decode()
        except (InvalidTag, ValueError, binascii.Error):
            return None

    def reveal(self, subject: UUID | str, field: str, token: str) -> str:
        """For display: the plaintext, or ``[erased]``."""
        subject_id = subject if isinstance(subject, UUID) else UUID(subject)
        value = self.open(subject_id, field, token)
        return ERASED if value is None else value

    # -- erasure -----------------------------------------------------------------------

    def shred(self, subject: UUID) -> bool:
        """Delete the subject's key for good (idempotent); True if a key was deleted.
        A tombstone keeps the subject from being given a new key."""
        now = datetime.now(UTC).isoformat()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._conn.execute(
                    "UPDATE subject_keys SET wrapped_key = NULL, shredded_at = ? "
                    "WHERE subject_id = ? AND wrapped_key IS NOT NULL",
                    (now, str(subject)),
                )
                deleted = cursor.rowcount == 1
                self._conn.execute(
                    "INSERT INTO subject_keys (subject_id, wrapped_key, created_at, shredded_at) "
                    "VALUES (?, NULL, ?, ?) ON CONFLICT DO NOTHING",
                    (str(subject), now, now),
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            if self.path != ":memory:":
                # copy the overwritten page into the file and empty the log, so no
                # earlier version of the page (with the key) stays in the WAL
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._cache[subject] = None
            self._data_version = self._read_data_version()
        return deleted

    def is_erased(self, subject: UUID) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT wrapped_key FROM subject_keys WHERE subject_id = ?", (str(subject),)
            ).fetchone()
        return row is not None and row[0] is None

    # -- keys --------------------------------------------------------------------------

    def _read_data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _key(self, subject: UUID, *, create: bool) -> AESGCM | None:
        with self._lock:
            version = self._read_data_version()
            if version != self._data_version:  # another process changed the vault
                self._cache.clear()
                self._data_version = version
            if subject in self._cache:
                self._cache.move_to_end(subject)
                return self._cache[subject]
            row = self._conn.execute(
                "SELECT wrapped_key FROM subject_keys WHERE subject_id = ?", (str(subject),)
            ).fetchone()
            if row is None:
                if not create:
                    return None
                key = self._create(subject)
            elif row[0] is None:
                key = None
            else:
                key = AESGCM(self._unwrap(subject, bytes(row[0])))
            self._cache[subject] = key
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return key

    def _create(self, subject: UUID) -> AESGCM:
        data_key = random_bytes(32)  # a 256-bit AES key, as AESGCM.generate_key reads it
        nonce = random_bytes(_NONCE)
        wrapped = nonce + self._master.encrypt(nonce, data_key, _wrap_aad(subject))
        self._conn.execute(
            "INSERT INTO subject_keys (subject_id, wrapped_key, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (str(subject), wrapped, datetime.now(UTC).isoformat()),
        )
        # another process may have created it first: use whichever key was stored
        row = self._conn.execute(
            "SELECT wrapped_key FROM subject_keys WHERE subject_id = ?", (str(subject),)
        ).fetchone()
        if row[0] is None:
            msg = f"subject {subject} was erased"
            raise SubjectErasedError(msg)
        return AESGCM(self._unwrap(subject, bytes(row[0])))

    def _unwrap(self, subject: UUID, wrapped: bytes) -> bytes:
        return self._master.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], _wrap_aad(subject))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
