"""Personal data at rest and the right to erasure, over HTTP.

Names, phone numbers and masked identity numbers never reach the event store, the
read models or the audit trail in clear; erasing a volunteer deletes their key, so
what was stored becomes unreadable everywhere while points, hours, unit metrics
and the audit trail stay exactly as they were.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.volunteers import mask_document_number
from infra.settings import Settings
from infra.vault import ERASED, PersonalDataVault
from services.bootstrap import Platform
from tests.conftest import Clock, MintKey
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e

NAME = "欧阳晓燕"
PHONE = "13912345678"


def _forms(text: str) -> list[bytes]:
    """How a string could appear in a file: UTF-8, and JSON with ASCII escapes."""
    return [text.encode(), json.dumps(text).strip('"').encode()]


def _files_bytes(*paths: Path) -> bytes:
    """A database file with its write-ahead log and journal, if any."""
    data = b""
    for path in paths:
        for suffix in ("", "-wal", "-journal"):
            candidate = Path(f"{path}{suffix}")
            if candidate.exists():
                data += candidate.read_bytes()
    return data


def _assert_absent(data: bytes, secrets: list[str], where: str) -> None:
    for secret in secrets:
        for form in _forms(secret):
            assert form not in data, f"{secret!r} found in {where}"


@pytest.fixture
def person(
    api: Api, network: Network, new_resident_id: Callable[[], str], clock: Clock
) -> dict[str, str]:
    """A volunteer with service, points and a redemption: every read model has them."""
    id_number = new_resident_id()
    body = {"home_station_id": network.station, "name": NAME, "phone": PHONE,
            "id_number": id_number}  # fmt: skip
    volunteer = api.post("/v1/volunteers", body, expect=201).json()["volunteer_id"]
    starts_at = clock.now + timedelta(minutes=30)
    activity = api.publish(network.station, starts_at)
    api.post(f"/v1/activities/{activity}/signups", {"volunteer_id": volunteer}, expect=201)
    clock.advance(timedelta(hours=3))
    for step, at in (("checkins", starts_at), ("checkouts", starts_at + timedelta(hours=2))):
        attendance = {"volunteer_id": volunteer, "at": at.isoformat()}
        api.post(f"/v1/activities/{activity}/{step}", attendance, expect=201)
    confirm = {"volunteer_id": volunteer, "people_served": 3}
    api.post(f"/v1/activities/{activity}/confirmations", confirm, expect=201)
    api.award(volunteer, 30)
    reward = api.list_reward(network.station, cost=5, stock=3)
    api.post("/v1/redemptions", {"volunteer_id": volunteer, "reward_id": reward}, expect=201)
    return {"volunteer": volunteer, "id_number": id_number, "station": network.station}


def _reads(api: Api, network: Network, volunteer: str, position: int) -> dict[str, Any]:
    """Everything the API shows about the volunteer and their units."""
    board = api.get("/v1/leaderboards", unit_id=network.center, min_position=position).json()
    entry = next(e for e in board["entries"] if e["volunteer_id"] == volunteer)
    metrics = api.get(f"/v1/units/{network.center}/metrics", min_position=position).json()
    audit = api.get("/v1/audit", volunteer_id=volunteer, min_position=position, limit=500).json()
    return {
        "volunteer": api.get(f"/v1/volunteers/{volunteer}").json(),
        "passbook": api.get(f"/v1/passbooks/{volunteer}").json(),
        "entry": entry,
        "metrics": metrics["periods"],
        "audit": audit["items"],
    }


def test_personal_data_is_never_stored_in_clear(
    api: Api, network: Network, person: dict[str, str], settings: Settings, platform: Platform
) -> None:
    volunteer, id_number = person["volunteer"], person["id_number"]
    secrets = [NAME, PHONE, id_number, mask_document_number(id_number)]
    shown = api.get(f"/v1/volunteers/{volunteer}").json()
    assert (shown["name"], shown["phone"]) == (NAME, PHONE)
    assert shown["document_masked"] == mask_document_number(id_number)

    head = platform.app.head()
    reads = _reads(api, network, volunteer, head)
    assert reads["entry"]["name"] == NAME  # the board opens the sealed name
    views = [settings.views_dir / f"{name}.sqlite" for name in platform.runners]
    _assert_absent(_files_bytes(settings.events_db), secrets, "the event store")
    _assert_absent(_files_bytes(*views), secrets, "the read models")
    _assert_absent(json.dumps(reads["audit"], ensure_ascii=False).encode(), secrets, "audit")

    # what the store holds is a token bound to this volunteer and field
    stored = platform.app.get(UUID(volunteer))
    assert stored.name.startswith("pii1.") and NAME not in stored.name
    vault = platform.app.vault
    assert vault.open(UUID(volunteer), "name", stored.name) == NAME
    assert vault.open(UUID(volunteer), "phone", stored.name) is None  # wrong field
    other = api.register(network.station)
    assert vault.open(UUID(other), "name", stored.name) is None  # wrong volunteer


def test_erasure_makes_personal_data_unreadable_and_keeps_the_figures(
    api: Api, network: Network, person: dict[str, str], settings: Settings, platform: Platform
) -> None:
    volunteer, id_number = person["volunteer"], person["id_number"]
    secrets = [NAME, PHONE, id_number, mask_document_number(id_number)]
    head = platform.app.head()
    before = _reads(api, network, volunteer, head)
    with sqlite3.connect(settings.vault_db) as conn:
        (wrapped,) = conn.execute(
            "SELECT wrapped_key FROM subject_keys WHERE subject_id = ?", (volunteer,)
        ).fetchone()
    assert wrapped in _files_bytes(settings.vault_db)

    erased = api.post(f"/v1/volunteers/{volunteer}/erasure", {"reason": "本人申请删除个人信息"},
                      expect=200).json()  # fmt: skip
    assert erased["status"] == "erased"
    after = _reads(api, network, volunteer, erased["position"])

    # unreadable everywhere it was shown
    shown = after["volunteer"]
    assert (shown["name"], shown["phone"], shown["document_masked"]) == (ERASED,) * 3
    assert shown["status"] == "erased"
    assert after["entry"]["name"] == ERASED
    # the figures stay: points, hours, rank, balance, unit metrics
    entry_before = {k: v for k, v in before["entry"].items() if k != "name"}
    assert {k: v for k, v in after["entry"].items() if k != "name"} == entry_before
    assert after["passbook"] == before["passbook"]
    assert after["metrics"] == before["metrics"]
    # the audit trail keeps every earlier row and adds the fact, with no personal data
    assert after["audit"][: len(before["audit"])] == before["audit"]
    (fact,) = after["audit"][len(before["audit"]) :]
    assert (fact["aggregate_type"], fact["event_type"]) == ("Volunteer", "Erased")

    # the key is gone from the vault file (no copy left in its log either)
    assert wrapped not in _files_bytes(settings.vault_db)
    # what was stored can no longer be opened, in this process or another
    stored_name = _stored_registration(platform, volunteer)["name"]
    assert platform.app.vault.open(UUID(volunteer), "name", stored_name) is None
    elsewhere = PersonalDataVault(settings.vault_db, settings.vault_master_key_bytes())
    try:
        assert elsewhere.open(UUID(volunteer), "name", stored_name) is None
    finally:
        elsewhere.close()
    views = [settings.views_dir / f"{name}.sqlite" for name in platform.runners]
    files = _files_bytes(settings.events_db, settings.vault_db, *views)
    _assert_absent(files, secrets, "the data files")
    _assert_absent(json.dumps(after, ensure_ascii=False).encode(), secrets, "the API")


def _stored_registration(platform: Platform, volunteer: str) -> dict[str, str]:
    """The registration event's payload as recorded (the token, not the aggregate)."""
    for n in platform.app.recorder.select_notifications(start=1, limit=10_000):
        if str(n.originator_id) == volunteer and n.topic.endswith("Volunteer.Registered"):
            payload: dict[str, str] = json.loads(n.state)
            return payload
    raise AssertionError("no registration")


def test_an_erased_volunteer_can_do_nothing_more_and_may_register_again(
    api: Api, network: Network, person: dict[str, str], clock: Clock, mint_key: MintKey
) -> None:
    volunteer = person["volunteer"]
    path = f"/v1/volunteers/{volunteer}/erasure"
    # admins only
    for key in (mint_key("unit_admin", network.center), mint_key("auditor"),
                mint_key("service", network.station)):  # fmt: skip
        refused = api.post(path, {"reason": "x"}, key=key)
        assert refused.status_code == 403, refused.text
    api.post(path, {"reason": "本人申请"}, expect=200)
    assert api.post(path, {"reason": "again"}, expect=409).json()["code"] == "volunteer-erased"

    activity = api.publish(network.station, clock.now + timedelta(hours=1))
    signup = api.post(f"/v1/activities/{activity}/signups", {"volunteer_id": volunteer})
    assert signup.status_code == 409
    assert signup.json()["code"] == "volunteer-erased"
    for action in ("suspend", "reinstate"):
        api.post(f"/v1/volunteers/{volunteer}/{action}", {"reason": "x"}, expect=409)
    patch = api.client.patch(
        f"/v1/volunteers/{volunteer}", json={"name": "x", "reason": "x"}, headers=api.admin
    )
    assert patch.status_code == 409

    # the same person registers again: a new volunteer, a new passbook, no old points
    body = {"home_station_id": network.station, "name": NAME, "phone": PHONE,
            "id_number": person["id_number"]}  # fmt: skip
    again = api.post("/v1/volunteers", body, expect=201).json()
    assert again["volunteer_id"] != volunteer
    assert api.get(f"/v1/volunteers/{again['volunteer_id']}").json()["name"] == NAME
    assert api.get(f"/v1/passbooks/{again['volunteer_id']}").json()["balance"] == 0
    # ...once: the new registration is active, so a third is a duplicate
    assert api.post("/v1/volunteers", body, expect=409).json()["code"] == "already-registered"


def test_profile_updates_are_sealed_too(
    api: Api, network: Network, person: dict[str, str], settings: Settings, platform: Platform
) -> None:
    volunteer = person["volunteer"]
    new_name, new_phone = "欧阳晓红", "13700001111"
    update = {"name": new_name, "phone": new_phone, "reason": "改名"}
    response = api.client.patch(f"/v1/volunteers/{volunteer}", json=update, headers=api.admin)
    assert response.status_code == 200, response.text
    unchanged = api.client.patch(f"/v1/volunteers/{volunteer}", json=update, headers=api.admin)
    assert unchanged.status_code == 409
    assert unchanged.json()["code"] == "unchanged"
    shown = api.get(f"/v1/volunteers/{volunteer}").json()
    assert (shown["name"], shown["phone"]) == (new_name, new_phone)
    position = response.json()["position"]
    board = api.get("/v1/leaderboards", min_position=position).json()
    assert {e["name"] for e in board["entries"] if e["volunteer_id"] == volunteer} == {new_name}
    views = [settings.views_dir / f"{name}.sqlite" for name in platform.runners]
    _assert_absent(_files_bytes(settings.events_db, *views), [new_name, new_phone], "files")
