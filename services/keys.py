"""API keys: who may call the HTTP API, with which role, over which unit's subtree.

A key reads ``civic_<key_id>_<secret>``. Only the SHA-256 digest of the secret is
stored (the secret is 256 random bits, so a plain digest is enough: there is
nothing to brute-force), and it is compared in constant time.

Lookups are cached in memory (an LRU keyed by the digest of the whole token) for
:data:`DEFAULT_CACHE_TTL` seconds so that request throughput is not bound by a
SQLite read per request. Revoking or rotating through this store drops the key's
cache entries at once. A change made by another process (another API worker, the
CLI) is noticed within :data:`CHANGE_CHECK_INTERVAL` (250 ms): at most that often,
a lookup asks SQLite for ``PRAGMA data_version``, which changes when another
connection commits, and the whole cache is dropped then. So a revocation elsewhere
takes effect within 250 ms in every process sharing the key file (the TTL only
bounds how long a hit is trusted without that check, i.e. never, in practice).

A lookup that read a key's row before a revocation committed must not cache what
it read after the cache was emptied for that revocation (it would then serve the
revoked key for the whole TTL): every emptying bumps an epoch, and a lookup caches
its principal only if the epoch it saw before reading the row is still current.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from services.principals import SCOPED_ROLES, Principal, Role

PREFIX = "civic_"
DEFAULT_CACHE_TTL = 5.0  # seconds: the longest a revoked key stays usable elsewhere
DEFAULT_CACHE_SIZE = 4096
# seconds between two looks at the key file's data_version: the longest a key
# revoked by another process stays usable here
CHANGE_CHECK_INTERVAL = 0.25

KEYS_DDL = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    unit_id TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    replaces TEXT,
    created_by TEXT,
    revoked_by TEXT
)
"""
COLUMNS = "key_id, name, role, unit_id, created_at, revoked_at, replaces, created_by, revoked_by"


class UnknownKeyError(LookupError):
    """No key with that id."""


class RevokedKeyError(ValueError):
    """The key was revoked and cannot be rotated."""


@dataclass(frozen=True)
class KeyInfo:
    """A key's record, without its secret."""

    key_id: str
    name: str
    role: Role
    unit_id: UUID | None
    created_at: datetime
    revoked_at: datetime | None
    replaces: str | None = None
    created_by: str | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def principal(self) -> Principal:
        return Principal(key_id=self.key_id, name=self.name, role=self.role, unit_id=self.unit_id)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """``civic_<key_id>_<secret>`` → (key_id, secret), or None if malformed."""
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or not key_id or not secret or len(token) > 200:
        return None
    return key_id, secret


def _check_scope(role: Role, unit_id: UUID | None) -> None:
    if role in SCOPED_ROLES and unit_id is None:
        msg = f"a {role.value} key needs a unit_id"
        raise ValueError(msg)
    if role not in SCOPED_ROLES and unit_id is not None:
        msg = f"an {role.value} key has no unit_id"
        raise ValueError(msg)


class KeyStore:
    def __init__(
        self,
        path: Path | str,
        *,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        cache_size: int = DEFAULT_CACHE_SIZE,
        change_check_interval: float = CHANGE_CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self.change_check_interval = change_check_interval
        self._clock = clock
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(KEYS_DDL)
        self._lock = threading.Lock()
        # token digest -> (principal, expires at monotonic time)
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._epoch = 0  # bumped whenever entries are dropped for a change (see module doc)
        self._data_version = self._read_data_version()
        self._next_change_check = self._clock() + change_check_interval

    # -- managing keys ---------------------------------------------------------------

    def create(
        self,
        role: Role | str,
        name: str,
        unit_id: UUID | None = None,
        *,
        created_by: str | None = None,
    ) -> tuple[Principal, str]:
        """Create a key; returns its principal and the plaintext token (shown once).
        ``created_by`` records who asked (an actor such as ``key:<id>`` or ``cli``)."""
        with self._transaction() as conn:
            return self._insert(conn, Role(role), name, unit_id, created_by, replaces=None)

    def _insert(
        self,
        conn: sqlite3.Connection,
        role: Role,
        name: str,
        unit_id: UUID | None,
        created_by: str | None,
        *,
        replaces: str | None,
    ) -> tuple[Principal, str]:
        _check_scope(role, unit_id)
        name = name.strip()
        if not name or len(name) > 200:
            msg = "a key needs a name of 1 to 200 characters"
            raise ValueError(msg)
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        conn.execute(
            "INSERT INTO api_keys (key_id, secret_sha256, name, role, unit_id, created_at, "
            "replaces, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key_id,
                _digest(secret),
                name,
                role.value,
                _str(unit_id),
                datetime.now(UTC).isoformat(),
                replaces,
                created_by,
            ),
        )
        principal = Principal(key_id=key_id, name=name, role=role, unit_id=unit_id)
        return principal, f"{PREFIX}{key_id}_{secret}"

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def get(self, key_id: str) -> KeyInfo:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {COLUMNS} FROM api_keys WHERE key_id = ?",  # noqa: S608 - fixed names
                (key_id,),
            ).fetchone()
        if row is None:
            raise UnknownKeyError(key_id)
        return _info(row)

    def list(self, *, include_revoked: bool = True) -> list[KeyInfo]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {COLUMNS} FROM api_keys "  # noqa: S608 - fixed names
                "WHERE revoked_at IS NULL OR ? ORDER BY rowid",
                (include_revoked,),
            ).fetchall()
        return [_info(r) for r in rows]

    def revoke(self, key_id: str, *, revoked_by: str | None = None) -> KeyInfo:
        """Revoke a key (idempotent); it stops working here at once, in other
        processes sharing the key file within ``change_check_interval``."""
        with self._transaction() as conn:
            self._revoke(conn, key_id, revoked_by)
        self._forget(key_id)
        return self.get(key_id)

    def _revoke(self, conn: sqlite3.Connection, key_id: str, revoked_by: str | None) -> bool:
        if conn.execute("SELECT 1 FROM api_keys WHERE key_id = ?", (key_id,)).fetchone() is None:
            raise UnknownKeyError(key_id)
        cursor = conn.execute(
            "UPDATE api_keys SET revoked_at = ?, revoked_by = ? "
            "WHERE key_id = ? AND revoked_at IS NULL",
            (datetime.now(UTC).isoformat(), revoked_by, key_id),
        )
        return cursor.rowcount == 1

    def rotate(self, key_id: str, *, rotated_by: str | None = None) -> str:
        """Issue a new key with the same name, role and unit and revoke the old one,
        atomically. Returns the new plaintext token."""
        old = self.get(key_id)
        with self._transaction() as conn:
            if not self._revoke(conn, key_id, rotated_by):
                msg = f"key {key_id} is revoked"
                raise RevokedKeyError(msg)
            _, token = self._insert(
                conn, old.role, old.name, old.unit_id, rotated_by, replaces=old.key_id
            )
        self._forget(key_id)
        return token

    # -- authenticating ----------------------------------------------------------------

    def authenticate(self, token: str) -> Principal | None:
        """The principal of an active key, or None (unknown, malformed, revoked)."""
        cache_key = _digest(token)
        cached = self.cached(token, cache_key)
        if cached is not None:
            return cached
        parsed = parse_token(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        epoch = self._epoch  # before the read: a drop after it voids what we read
        with self._lock:
            row = self._conn.execute(
                f"SELECT secret_sha256, {COLUMNS} FROM api_keys "  # noqa: S608 - fixed names
                "WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(_digest(secret), row["secret_sha256"]):
            return None
        principal = _info(row).principal()
        with self._cache_lock:
            if epoch != self._epoch:  # revoked or changed meanwhile: answer, do not keep
                return principal
            self._cache[cache_key] = (principal, self._clock() + self.cache_ttl)
            self._cache.move_to_end(cache_key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return principal

    def _read_data_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _drop_cache_if_changed_elsewhere(self, now: float) -> None:
        """Another connection (process) committed: a key may have been revoked there.
        Looked at no more often than every ``change_check_interval`` seconds."""
        if now < self._next_change_check:
            return
        self._next_change_check = now + self.change_check_interval
        version = self._read_data_version()
        if version != self._data_version:
            with self._cache_lock:
                self._cache.clear()
                self._epoch += 1
                self._data_version = version

    def cached(self, token: str, cache_key: str | None = None) -> Principal | None:
        """The cached principal for ``token`` if it is fresh and, as of the last look
        (at most ``change_check_interval`` ago: one ``PRAGMA data_version``, no table
        read), no other process has changed the key file since it was cached."""
        cache_key = cache_key or _digest(token)
        now = self._clock()
        self._drop_cache_if_changed_elsewhere(now)
        with self._cache_lock:
            hit = self._cache.get(cache_key)
            if hit is None:
                return None
            principal, expires = hit
            if expires <= now:
                del self._cache[cache_key]
                return None
            self._cache.move_to_end(cache_key)
            return principal

    def _forget(self, key_id: str) -> None:
        with self._cache_lock:
            for k in [k for k, (p, _) in self._cache.items() if p.key_id == key_id]:
                del self._cache[k]
            self._epoch += 1

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _str(unit_id: UUID | None) -> str | None:
    return None if unit_id is None else str(unit_id)


def _info(row: sqlite3.Row) -> KeyInfo:
    return KeyInfo(
        key_id=row["key_id"],
        name=row["name"],
        role=Role(row["role"]),
        unit_id=UUID(row["unit_id"]) if row["unit_id"] else None,
        created_at=datetime.fromisoformat(row["created_at"]),
        revoked_at=datetime.fromisoformat(row["revoked_at"]) if row["revoked_at"] else None,
        replaces=row["replaces"],
        created_by=row["created_by"],
        revoked_by=row["revoked_by"],
    )
