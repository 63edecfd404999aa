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

from domain.funds import Fund
from infra.settings import Settings
from infra.vault import ERASED, PersonalDataVault, SubjectErasedError
from services import commands as c
from services.bootstrap import build_application
from services.personal_data import shred_erased
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


def _sealed_records(app: Any, station: UUID) -> list[tuple[UUID, str, str, str, Any]]:
    """A volunteer, a resident's order, a wish and a donation, each with personal data
    sealed under its own subject: (subject, field, token, plaintext, its erasure)."""
    volunteer = register_volunteer(app, station)
    item = app.execute(
        c.AddMenuItem(unit_id=station, category="elderly_disabled", title="助餐"), SYSTEM
    ).result["item_id"]
    order = app.execute(
        c.PlaceOrder(menu_item_id=item, channel="resident", resident_ref="wx-77"), SYSTEM
    ).result["order_id"]
    wish = app.execute(
        c.PostWish(unit_id=station, title="书包", resident_ref="档案-9"), SYSTEM
    ).result["wish_id"]
    fund = app.execute(c.OpenFund(unit_id=station, title="基金"), SYSTEM).result["fund_id"]
    receipt = c.ReceiveMoney(
        fund_id=fund, amount_fen=100, source_kind="donation", purpose="助老", donor="慕容先生"
    )
    movement = UUID(app.execute(receipt, SYSTEM).result["movement_id"])
    donor_token = next(
        e.donor for e in app.events.get(UUID(fund)) if isinstance(e, Fund.MoneyReceived)
    )
    reason = "本人申请"
    return [
        (
            volunteer,
            "name",
            app.get(volunteer).name,
            "王秀英",
            c.EraseVolunteer(volunteer_id=volunteer, reason=reason),
        ),
        (
            UUID(order),
            "resident_ref",
            app.get(UUID(order)).resident_ref,
            "wx-77",
            c.EraseOrderResidentData(order_id=order, reason=reason),
        ),
        (
            UUID(wish),
            "resident_ref",
            app.get(UUID(wish)).resident_ref,
            "档案-9",
            c.EraseWishResidentData(wish_id=wish, reason=reason),
        ),
        (
            movement,
            "donor",
            donor_token,
            "慕容先生",
            c.EraseDonorData(fund_id=fund, movement_id=movement, reason=reason),
        ),
    ]


def test_start_up_reshreds_keys_a_restored_backup_brought_back(tmp_path: Path) -> None:
    """Every kind of erasure (a volunteer, an order's resident, a wish's resident, a
    donor) is a fact in the store; a vault restored from before it brings the key
    back, and the next start deletes it again, and only it."""
    settings = Settings(data_dir=tmp_path / "data", document_secret="x" * 40, log_format="json")
    app = build_application(settings)
    _, _, station = open_network(app)
    records = _sealed_records(app, station)
    other = register_volunteer(app, station, name="李四")  # never erased
    other_token = app.get(other).name
    app.vault.close()
    backup = tmp_path / "vault-backup.sqlite"
    shutil.copy(settings.vault_db, backup)
    app.vault = PersonalDataVault(settings.vault_db, settings.vault_master_key_bytes())
    for *_, erasure in records:
        app.execute(erasure, SYSTEM)
    for subject, field, token, _, _ in records:
        assert app.vault.open(subject, field, token) is None
    app.close()
    # restore the older vault file: the erased keys are back...
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.vault_db}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, settings.vault_db)
    restored = PersonalDataVault(settings.vault_db, settings.vault_master_key_bytes())
    for subject, field, token, plain, _ in records:
        assert restored.open(subject, field, token) == plain
    restored.close()
    # ...until the platform starts: the store's erasures are applied again
    again = build_application(settings)
    try:
        for subject, field, token, _, _ in records:
            assert again.vault.open(subject, field, token) is None, field
            assert again.vault.is_erased(subject)
        assert again.vault.open(other, "name", other_token) == "李四"
        # run again, it finds nothing left to delete
        assert shred_erased(again.recorder, again.mapper, again.vault) == 0
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
