"""The personal-data vault: sealing, binding, erasure, processes sharing the file,
restored backups, and the master key's configuration."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import ValidationError

from infra.settings import Settings
from infra.vault import ERASED, PersonalDataVault, SubjectErasedError
from services import commands as c
from services.bootstrap import build_application
from services.principals import SYSTEM
from tests.conftest import open_network, register_volunteer

MASTER = b"a-master-secret-of-enough-length-0123456789"


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[PersonalDataVault]:
    v = PersonalDataVault(tmp_path / "vault.sqlite", MASTER)
    yield v
    v.close()


def test_a_token_opens_only_for_its_volunteer_and_field(vault: PersonalDataVault) -> None:
    alice, bob = uuid4(), uuid4()
    token = vault.seal(alice, "name", "王秀英")
    assert token.startswith("pii1.") and "王秀英" not in token
    assert vault.seal(alice, "name", "王秀英") != token  # a fresh nonce every time
    assert vault.open(alice, "name", token) == "王秀英"
    assert vault.open(alice, "phone", token) is None
    assert vault.open(bob, "name", token) is None
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert vault.open(alice, "name", tampered) is None
    assert vault.open(alice, "name", "plain text") is None
    assert vault.reveal(str(alice), "name", "pii1.!!!") == ERASED


def test_shredding_is_final_and_seen_by_other_processes(
    tmp_path: Path, vault: PersonalDataVault
) -> None:
    alice = uuid4()
    token = vault.seal(alice, "name", "王秀英")
    other = PersonalDataVault(tmp_path / "vault.sqlite", MASTER)
    try:
        assert other.open(alice, "name", token) == "王秀英"  # now in other's cache
        assert vault.shred(alice) is True
        assert other.open(alice, "name", token) is None  # at once, cache or not
        assert vault.shred(alice) is False  # idempotent
        assert vault.is_erased(alice)
        with pytest.raises(SubjectErasedError):
            other.seal(alice, "name", "again")
    finally:
        other.close()


def test_the_wrong_master_key_fails_loudly(tmp_path: Path, vault: PersonalDataVault) -> None:
    """A misconfigured master key must not pass for an erasure."""
    alice = uuid4()
    token = vault.seal(alice, "name", "王秀英")
    intruder = PersonalDataVault(tmp_path / "vault.sqlite", b"another-master-secret-0123456789")
    try:
        with pytest.raises(InvalidTag):
            intruder.open(alice, "name", token)
    finally:
        intruder.close()


def test_start_up_reshreds_keys_a_restored_backup_brought_back(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", document_secret="x" * 40, log_format="json")
    app = build_application(settings)
    _, _, station = open_network(app)
    volunteer = str(register_volunteer(app, station))
    token = app.get(UUID(volunteer)).name
    app.vault.close()
    backup = tmp_path / "vault-backup.sqlite"
    shutil.copy(settings.vault_db, backup)
    app.vault = PersonalDataVault(settings.vault_db, settings.vault_master_key_bytes())
    app.execute(c.EraseVolunteer(volunteer_id=volunteer, reason="本人申请"), SYSTEM)
    app.close()
    # restore the older vault file: the erased key is back...
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.vault_db}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, settings.vault_db)
    restored = PersonalDataVault(settings.vault_db, settings.vault_master_key_bytes())
    assert restored.open(UUID(volunteer), "name", token) == "王秀英"
    restored.close()
    # ...until the platform starts: the store's erasures are applied again
    again = build_application(settings)
    try:
        assert again.vault.open(UUID(volunteer), "name", token) is None
    finally:
        again.close()


def test_production_needs_a_strong_master_key() -> None:
    strong = "s" * 40
    # keyword arguments for the settings model, which validates (and converts) them
    base: dict[str, Any] = {
        "environment": "production",
        "document_secret": strong,
        "audit_secret": "a" * 40,
    }
    with pytest.raises(ValidationError, match="CIVIC_VAULT_MASTER_KEY"):
        Settings(**base)
    with pytest.raises(ValidationError, match="CIVIC_VAULT_MASTER_KEY"):
        Settings(**base, vault_master_key="changeme")
    with pytest.raises(ValidationError, match="CIVIC_VAULT_MASTER_KEY"):
        Settings(**base, vault_master_key=strong)
    ok = Settings(**base, vault_master_key="m" * 40)
    assert ok.vault_master_key_bytes() == b"m" * 40
