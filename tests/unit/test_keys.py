"""The API key store: hashed secrets, revocation, rotation, the lookup cache."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from services import keys as keys_module
from services.keys import KeyInfo, KeyStore, RevokedKeyError, UnknownKeyError, parse_token
from services.principals import Role


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KeyStore]:
    keys = KeyStore(tmp_path / "keys.sqlite")
    yield keys
    keys.close()


def test_plaintext_is_never_stored(store: KeyStore, tmp_path: Path) -> None:
    principal, token = store.create(Role.ADMIN, "ops")
    parsed = parse_token(token)
    assert parsed is not None
    key_id, secret = parsed
    assert key_id == principal.key_id
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in raw
    assert token.encode() not in raw
    stored = (
        sqlite3.connect(tmp_path / "keys.sqlite")
        .execute("SELECT secret_sha256 FROM api_keys WHERE key_id = ?", (key_id,))
        .fetchone()[0]
    )
    assert len(stored) == 64 and secret not in stored


def test_authenticate(store: KeyStore) -> None:
    unit = uuid4()
    principal, token = store.create(Role.SERVICE, "kiosk", unit)
    assert store.authenticate(token) == principal
    assert principal.unit_id == unit and principal.role == Role.SERVICE
    parsed = parse_token(token)
    assert parsed is not None
    key_id, secret = parsed
    assert store.authenticate(f"civic_{key_id}_{secret[:-1]}x") is None
    assert store.authenticate(f"civic_{key_id}") is None
    assert store.authenticate("civic_unknown_secret") is None
    assert store.authenticate("not a key") is None
    assert store.authenticate("") is None


def test_scope_rules(store: KeyStore) -> None:
    with pytest.raises(ValueError, match="needs a unit_id"):
        store.create(Role.UNIT_ADMIN, "x")
    with pytest.raises(ValueError, match="has no unit_id"):
        store.create(Role.AUDITOR, "x", uuid4())
    with pytest.raises(ValueError, match="name"):
        store.create(Role.ADMIN, "  ")


def test_revoke_takes_effect_at_once_in_the_same_store(store: KeyStore) -> None:
    principal, token = store.create(Role.ADMIN, "ops")
    assert store.authenticate(token) is not None  # now cached
    info = store.revoke(principal.key_id)
    assert info.revoked_at is not None and not info.active
    assert store.authenticate(token) is None
    assert store.revoke(principal.key_id).revoked_at == info.revoked_at  # idempotent
    with pytest.raises(UnknownKeyError):
        store.revoke("nope")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_revoke_elsewhere_takes_effect_within_the_change_check_interval(tmp_path: Path) -> None:
    """Another process (the CLI, another API worker) revokes or rotates: the first
    lookup here once the change-check interval has passed is refused, though the
    key is in this process's cache."""
    clock = FakeClock()
    api = KeyStore(tmp_path / "keys.sqlite", cache_ttl=3600, clock=clock)
    cli = KeyStore(tmp_path / "keys.sqlite")
    try:
        principal, token = cli.create(Role.ADMIN, "ops")
        other, other_token = cli.create(Role.AUDITOR, "auditor")
        assert api.authenticate(token) == principal
        assert api.authenticate(other_token) == other
        assert api.cached(token) == principal  # served from the cache
        cli.revoke(principal.key_id)
        clock.now += api.change_check_interval
        assert api.cached(token) is None
        assert api.authenticate(token) is None
        new_token = cli.rotate(other.key_id)
        clock.now += api.change_check_interval
        assert api.authenticate(other_token) is None
        assert api.authenticate(new_token) is not None
    finally:
        api.close()
        cli.close()


def test_a_lookup_that_raced_a_revocation_does_not_cache_the_revoked_key(
    store: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup reads the key's row, the key is revoked (and its cache entries
    dropped) before the lookup caches what it read: the request in flight may pass,
    but the next one is refused, not served from the cache for the whole TTL."""
    principal, token = store.create(Role.ADMIN, "ops")
    real_info = keys_module._info

    def revoke_right_after_the_read(row: sqlite3.Row) -> KeyInfo:
        monkeypatch.setattr(keys_module, "_info", real_info)
        store.revoke(principal.key_id)
        return real_info(row)

    monkeypatch.setattr(keys_module, "_info", revoke_right_after_the_read)
    assert store.authenticate(token) == principal  # read before the revocation
    assert store.cached(token) is None
    assert store.authenticate(token) is None


def test_a_lookup_that_raced_a_revocation_elsewhere_does_not_cache_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same with the revocation made by another process and noticed (through the
    key file's data_version) by another request of this one while the lookup was
    between its read and its caching."""
    clock = FakeClock()
    api = KeyStore(tmp_path / "keys.sqlite", cache_ttl=3600, clock=clock)
    cli = KeyStore(tmp_path / "keys.sqlite")
    try:
        principal, token = cli.create(Role.ADMIN, "ops")
        _, other_token = cli.create(Role.AUDITOR, "auditor")
        real_info = keys_module._info

        def revoke_elsewhere_right_after_the_read(row: sqlite3.Row) -> KeyInfo:
            monkeypatch.setattr(keys_module, "_info", real_info)
            cli.revoke(principal.key_id)
            clock.now += api.change_check_interval
            assert api.authenticate(other_token) is not None  # notices the change
            return real_info(row)

        monkeypatch.setattr(keys_module, "_info", revoke_elsewhere_right_after_the_read)
        assert api.authenticate(token) == principal
        assert api.cached(token) is None
        assert api.authenticate(token) is None
    finally:
        api.close()
        cli.close()


def test_cached_lookups_look_at_the_key_file_at_most_once_per_interval(tmp_path: Path) -> None:
    """A cache hit costs no SQLite statement until the interval has passed; then
    exactly one (``PRAGMA data_version``)."""
    clock = FakeClock()
    store = KeyStore(tmp_path / "keys.sqlite", clock=clock)
    statements: list[str] = []
    try:
        _, token = store.create(Role.ADMIN, "ops")
        assert store.authenticate(token) is not None
        store._conn.set_trace_callback(statements.append)
        for _ in range(100):
            assert store.cached(token) is not None
        assert statements == []
        clock.now += store.change_check_interval
        for _ in range(100):
            assert store.cached(token) is not None
        assert statements == ["PRAGMA data_version"]
    finally:
        store.close()


def test_rotate(store: KeyStore) -> None:
    unit = uuid4()
    old, old_token = store.create(Role.UNIT_ADMIN, "station admin", unit, created_by="cli")
    store.authenticate(old_token)
    new_token = store.rotate(old.key_id, rotated_by="key:boss")
    new = store.authenticate(new_token)
    assert new is not None
    assert (new.role, new.unit_id, new.name) == (old.role, old.unit_id, old.name)
    assert new.key_id != old.key_id
    assert store.authenticate(old_token) is None
    assert store.get(new.key_id).replaces == old.key_id
    assert store.get(new.key_id).created_by == "key:boss"
    assert store.get(old.key_id).revoked_by == "key:boss"
    assert store.get(old.key_id).created_by == "cli"
    with pytest.raises(RevokedKeyError):
        store.rotate(old.key_id)
    with pytest.raises(UnknownKeyError):
        store.rotate("nope")


def test_list_has_no_secrets(store: KeyStore) -> None:
    store.create(Role.ADMIN, "a")
    _, token = store.create(Role.AUDITOR, "b")
    revoked, _ = store.create(Role.ADMIN, "c")
    store.revoke(revoked.key_id)
    listed = store.list()
    assert [k.name for k in listed] == ["a", "b", "c"]
    assert [k.name for k in store.list(include_revoked=False)] == ["a", "b"]
    assert token not in repr(listed)


def test_cache_is_bounded(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.sqlite", cache_size=2)
    try:
        tokens = [store.create(Role.ADMIN, f"k{i}")[1] for i in range(3)]
        for token in tokens:
            assert store.authenticate(token) is not None
        assert store.cached(tokens[0]) is None  # evicted
        assert store.cached(tokens[2]) is not None
    finally:
        store.close()
