"""Residents' personal data at rest and the right to erasure, over HTTP.

A service order's resident reference, name, phone and address, a wish's resident
and member-claimant references and a donor's name never reach the event store, the
read models or the audit trail in clear: they are sealed with a key per order,
wish or fund movement. Erasing the personal data on an order or a wish deletes
that key, so what was stored becomes unreadable everywhere while the order's and
the wish's figures, the unit metrics, the passbooks and the audit chain stay.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from infra.vault import ERASED, PersonalDataVault
from services.principals import Role
from tests.conftest import Clock, MintKey
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e

ORDER_DATA = {
    "resident_ref": "wx-openid-7731",
    "resident_name": "司马秀英",
    "resident_phone": "13698765432",
    "address": "观音桥街道建新东路17号",
}
WISH_REF = "档案-秘密-0917"
CLAIMANT_REF = "红星机械厂党支部"
DONOR = "慕容先生"
ORDER_SECRETS = list(ORDER_DATA.values())
WISH_SECRETS = [WISH_REF, CLAIMANT_REF]


def _forms(text: str) -> list[bytes]:
    """How a string could appear in a file: UTF-8, and JSON with ASCII escapes."""
    return [text.encode(), json.dumps(text).strip('"').encode()]


def _files_bytes(*paths: Path) -> bytes:
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


def _wrapped_key(settings: Any, subject: str) -> bytes:
    with sqlite3.connect(settings.vault_db) as conn:
        (wrapped,) = conn.execute(
            "SELECT wrapped_key FROM subject_keys WHERE subject_id = ?", (subject,)
        ).fetchone()
    return bytes(wrapped)


@pytest.fixture
def community(api: Api, network: Network, clock: Clock) -> dict[str, str]:
    """A completed, rated order, a confirmed wish claimed by a member, a donation."""
    leader = api.register(network.station, name="王队长")
    team_body = {"unit_id": network.station, "name": "理发服务队", "kind": "team",
                 "leader_id": leader}  # fmt: skip
    team = api.post("/v1/teams", team_body, expect=201).json()["team_id"]
    item_body = {"unit_id": network.station, "category": "elderly_disabled",
                 "title": "上门理发", "points_per_hour": 10}  # fmt: skip
    item = api.post("/v1/service-menu", item_body, expect=201).json()["item_id"]
    order_body = {"menu_item_id": item, "channel": "resident", **ORDER_DATA}
    order = api.post("/v1/orders", order_body, expect=201).json()["order_id"]
    api.post(f"/v1/orders/{order}/approve", {}, expect=200)
    api.post(f"/v1/orders/{order}/dispatch", {"team_id": team}, expect=200)
    api.post(f"/v1/orders/{order}/accept", {"team_id": team}, expect=200)
    clock.advance(timedelta(hours=2))
    completion = {"team_id": team, "services": [{"volunteer_id": leader, "hours": "1.5"}]}
    api.post(f"/v1/orders/{order}/complete", completion, expect=200)
    rating = {"stars": 5, "comment": "很好", "resident_ref": ORDER_DATA["resident_ref"]}
    api.post(f"/v1/orders/{order}/rate", rating, expect=200)

    wish_body = {"unit_id": network.station, "title": "一个新书包", "resident_ref": WISH_REF}
    wish = api.post("/v1/wishes", wish_body, expect=201).json()["wish_id"]
    api.post(f"/v1/wishes/{wish}/claims", {"claimant_ref": CLAIMANT_REF}, expect=200)
    api.post(f"/v1/wishes/{wish}/fulfil", {}, expect=200)
    api.post(f"/v1/wishes/{wish}/confirm", {}, expect=200)

    fund = api.post("/v1/funds", {"unit_id": network.station, "title": "社区慈善基金"},
                    expect=201).json()["fund_id"]  # fmt: skip
    donation = {"amount_fen": 50_000, "source_kind": "donation", "purpose": "助老",
                "donor": DONOR}  # fmt: skip
    api.post(f"/v1/funds/{fund}/receipts", donation, expect=201)
    return {"order": order, "wish": wish, "fund": fund, "leader": leader, "team": team}


def _reads(api: Api, network: Network, c: dict[str, str], position: int) -> dict[str, Any]:
    """Everything the API shows about the order, the wish and their units."""
    at = {"min_position": position}
    orders = api.get("/v1/orders", unit_id=network.center, params=at).json()["items"]
    wishes = api.get("/v1/wishes", unit_id=network.center, params=at).json()["items"]
    audit = api.get("/v1/audit", unit_id=network.center, limit=1000, params=at).json()["items"]
    return {
        "order": api.get(f"/v1/orders/{c['order']}").json(),
        "wish": api.get(f"/v1/wishes/{c['wish']}").json(),
        "fund": api.get(f"/v1/funds/{c['fund']}").json(),
        "orders": orders,
        "wishes": wishes,
        "metrics": api.get(f"/v1/units/{network.center}/metrics", params=at).json(),
        "team": api.get(f"/v1/teams/{c['team']}/metrics", params=at).json(),
        "passbook": api.get(f"/v1/passbooks/{c['leader']}").json(),
        "audit": audit,
        "order_history": api.get(f"/v1/audit/history/{c['order']}").json(),
        "wish_history": api.get(f"/v1/audit/history/{c['wish']}").json(),
    }


def _figures(read: Any) -> Any:
    """A read without the store position it was read at."""
    return {k: v for k, v in read.items() if k != "position"} if isinstance(read, dict) else read


def _views(settings: Any, platform: Any) -> list[Path]:
    return [settings.views_dir / f"{name}.sqlite" for name in platform.runners]


def test_residents_personal_data_is_never_stored_in_clear(
    api: Api, network: Network, community: dict[str, str], settings: Any, platform: Any
) -> None:
    secrets = [*ORDER_SECRETS, *WISH_SECRETS, DONOR]
    order = api.get(f"/v1/orders/{community['order']}").json()
    assert {k: order[k] for k in ORDER_DATA} == ORDER_DATA  # shown where it was shown
    assert order["resident_erased"] is False
    assert api.get(f"/v1/wishes/{community['wish']}").json()["resident_ref"] == WISH_REF

    reads = _reads(api, network, community, platform.app.head())
    _assert_absent(_files_bytes(settings.events_db), secrets, "the event store")
    _assert_absent(_files_bytes(*_views(settings, platform)), secrets, "the read models")
    revealing = ("order", "wish", "order_history", "wish_history")
    others = {k: v for k, v in reads.items() if k not in revealing}
    _assert_absent(json.dumps(others, ensure_ascii=False).encode(), secrets, "lists and metrics")
    # the store's own history (admins, auditors) opens the seals, as for volunteers
    placed = reads["order_history"]["entries"][0]["payload"]
    assert {k: placed[k] for k in ORDER_DATA} == ORDER_DATA
    fund_history = api.get(f"/v1/audit/history/{community['fund']}").json()
    assert fund_history["entries"][-1]["payload"]["donor"] == DONOR

    # the stored values are tokens bound to their record and field
    stored = platform.app.get(UUID(community["order"]))
    assert stored.resident_name.startswith("pii1.")
    vault = platform.app.vault
    assert (
        vault.open(stored.id, "resident_name", stored.resident_name) == ORDER_DATA["resident_name"]
    )
    assert vault.open(stored.id, "address", stored.resident_name) is None  # wrong field
    wish = platform.app.get(UUID(community["wish"]))
    assert vault.open(wish.id, "resident_name", stored.resident_name) is None  # wrong record
    assert vault.open(wish.id, "claimant_ref", wish.claimant_ref) == CLAIMANT_REF


def test_erasing_an_order_and_a_wish_keeps_every_figure(
    api: Api, network: Network, community: dict[str, str], settings: Any, platform: Any
) -> None:
    order, wish = community["order"], community["wish"]
    before = _reads(api, network, community, platform.app.head())
    keys = {subject: _wrapped_key(settings, subject) for subject in (order, wish)}
    vault_bytes = _files_bytes(settings.vault_db)
    assert all(key in vault_bytes for key in keys.values())
    assert (before["metrics"]["periods"][0]["orders_completed"], before["passbook"]["balance"]) == (
        1,
        12,
    )
    stored_order = platform.app.get(UUID(order))
    stored_wish = platform.app.get(UUID(wish))

    reason = {"reason": "居民申请删除个人信息"}
    erased_order = api.post(f"/v1/orders/{order}/erasure", reason, expect=200).json()
    assert (erased_order["status"], erased_order["resident_erased"]) == ("completed", True)
    erased_wish = api.post(f"/v1/wishes/{wish}/erasure", reason, expect=200).json()
    assert (erased_wish["status"], erased_wish["resident_erased"]) == ("confirmed", True)
    after = _reads(api, network, community, erased_wish["position"])

    # unreadable where it was shown; everything else on the order and the wish stays
    assert {k: after["order"][k] for k in ORDER_DATA} == dict.fromkeys(ORDER_DATA, ERASED)
    assert after["order"]["resident_erased"] is True
    unchanged = set(ORDER_DATA) | {"resident_erased", "version"}
    assert {k: v for k, v in after["order"].items() if k not in unchanged} == {
        k: v for k, v in before["order"].items() if k not in unchanged
    }
    assert after["order"]["version"] == before["order"]["version"] + 1
    assert (after["wish"]["resident_ref"], after["wish"]["resident_erased"]) == (ERASED, True)
    assert after["wish"]["status"] == before["wish"]["status"]
    # the figures stay: lists, unit and team metrics, passbook, fund
    for figure in ("orders", "wishes", "metrics", "team", "passbook", "fund"):
        assert _figures(after[figure]) == _figures(before[figure]), figure
    # the audit trail keeps every earlier row and adds the two facts, no personal data
    assert after["audit"][: len(before["audit"])] == before["audit"]
    facts = [
        (row["aggregate_type"], row["event_type"]) for row in after["audit"][len(before["audit"]) :]
    ]
    assert facts == [("ServiceOrder", "ResidentDataErased"), ("Wish", "ResidentDataErased")]
    placed = after["order_history"]["entries"][0]["payload"]
    assert {k: placed[k] for k in ORDER_DATA} == dict.fromkeys(ORDER_DATA, ERASED)
    claimed = [e for e in after["wish_history"]["entries"] if e["type"] == "Claimed"]
    assert claimed[0]["payload"]["claimant_ref"] == ERASED
    # the hash chain over the store still verifies
    report = api.get("/v1/audit/verify").json()
    assert report["ok"] and report["first_break"] is None
    assert report["events_checked"] == report["head_position"]

    # the keys are gone from the vault file (no copy left in its log either)
    vault_bytes = _files_bytes(settings.vault_db)
    assert not any(key in vault_bytes for key in keys.values())
    # what was stored can no longer be opened, in this process or another
    elsewhere = PersonalDataVault(settings.vault_db, settings.vault_master_key_bytes())
    try:
        for vault in (platform.app.vault, elsewhere):
            assert vault.open(stored_order.id, "resident_name", stored_order.resident_name) is None
            assert vault.open(stored_order.id, "resident_ref", stored_order.resident_ref) is None
            assert vault.open(stored_wish.id, "resident_ref", stored_wish.resident_ref) is None
            assert vault.open(stored_wish.id, "claimant_ref", stored_wish.claimant_ref) is None
    finally:
        elsewhere.close()
    files = _files_bytes(settings.events_db, settings.vault_db, *_views(settings, platform))
    _assert_absent(files, [*ORDER_SECRETS, *WISH_SECRETS, DONOR], "the data files")
    _assert_absent(json.dumps(after, ensure_ascii=False).encode(), ORDER_SECRETS, "the API")
    _assert_absent(json.dumps(after, ensure_ascii=False).encode(), WISH_SECRETS, "the API")


def test_only_admins_erase_once_and_nothing_personal_is_added_afterwards(
    api: Api, network: Network, clock: Clock, mint_key: MintKey
) -> None:
    item_body = {"unit_id": network.station, "category": "elderly_disabled", "title": "助餐"}
    item = api.post("/v1/service-menu", item_body, expect=201).json()["item_id"]
    order_body = {"menu_item_id": item, "channel": "resident", **ORDER_DATA}
    order = api.post("/v1/orders", order_body, expect=201).json()["order_id"]
    wish_body = {"unit_id": network.station, "title": "冬季棉衣", "resident_ref": WISH_REF}
    wish = api.post("/v1/wishes", wish_body, expect=201).json()["wish_id"]

    for path in (f"/v1/orders/{order}/erasure", f"/v1/wishes/{wish}/erasure"):
        for key in (
            mint_key(Role.UNIT_ADMIN, network.center),
            mint_key(Role.AUDITOR),
            mint_key(Role.SERVICE, network.station),
        ):
            refused = api.post(path, {"reason": "x"}, key=key)
            assert refused.status_code == 403, refused.text
        api.post(path, {"reason": "居民申请"}, expect=200)
        again = api.post(path, {"reason": "again"}, expect=409)
        assert again.json()["code"] == "resident-erased"

    # a member can no longer be named on the erased wish; the order goes on without
    # its resident, who can no longer be recognised to rate it
    claim = api.post(f"/v1/wishes/{wish}/claims", {"claimant_ref": CLAIMANT_REF}, expect=409)
    assert claim.json()["code"] == "resident-erased"
    volunteer = api.register(network.station)
    api.post(f"/v1/wishes/{wish}/claims", {"volunteer_id": volunteer}, expect=200)
    team_body = {"unit_id": network.station, "name": "助餐队", "kind": "team",
                 "leader_id": volunteer}  # fmt: skip
    team = api.post("/v1/teams", team_body, expect=201).json()["team_id"]
    for step, body in (("approve", {}), ("dispatch", {"team_id": team}),
                       ("accept", {"team_id": team})):  # fmt: skip
        api.post(f"/v1/orders/{order}/{step}", body, expect=200)
    clock.advance(timedelta(hours=1))
    completion = {"team_id": team, "services": [{"volunteer_id": volunteer, "hours": "1"}]}
    api.post(f"/v1/orders/{order}/complete", completion, expect=200)
    rating = {"stars": 5, "resident_ref": ORDER_DATA["resident_ref"]}
    rate = api.post(f"/v1/orders/{order}/rate", rating, expect=409)
    assert rate.json()["code"] == "resident-erased"
    shown = api.get(f"/v1/orders/{order}").json()
    assert (shown["status"], shown["resident_name"]) == ("completed", ERASED)


def test_erasing_a_donors_name_keeps_the_fund(
    api: Api,
    network: Network,
    community: dict[str, str],
    settings: Any,
    platform: Any,
    mint_key: MintKey,
) -> None:
    fund = community["fund"]
    subsidy = {"amount_fen": 1_000, "purpose_kind": "meal_subsidy", "purpose": "助餐",
               "approved_by": "主任"}  # fmt: skip
    api.post(f"/v1/funds/{fund}/disbursements", subsidy, expect=201)
    shown = api.get(f"/v1/funds/{fund}").json()
    donation, paid = (m["movement_id"] for m in shown["movements"])
    before = _reads(api, network, community, platform.app.head())
    history = api.get(f"/v1/audit/history/{fund}").json()["entries"]
    assert [e["payload"].get("donor") for e in history] == [None, DONOR, None]
    key = _wrapped_key(settings, donation)
    path = f"/v1/funds/{fund}/movements/{donation}/erasure"

    for other in (
        mint_key(Role.UNIT_ADMIN, network.center),
        mint_key(Role.AUDITOR),
        mint_key(Role.SERVICE, network.station),
    ):
        assert api.post(path, {"reason": "x"}, key=other).status_code == 403
    erased = api.post(path, {"reason": "捐赠人申请删除姓名"}, expect=200).json()
    assert (erased["movement_id"], erased["donor_erased"]) == (donation, True)
    assert erased["balance_fen"] == before["fund"]["balance_fen"]
    for movement, status, code in (
        (donation, 409, "donor-erased"),
        (paid, 409, "no-donor"),
        (community["order"], 404, "movement-not-found"),
    ):
        refused = api.post(f"/v1/funds/{fund}/movements/{movement}/erasure", {"reason": "x"})
        assert (refused.status_code, refused.json()["code"]) == (status, code)

    after = _reads(api, network, community, erased["position"])
    # the name is unreadable in the store's history; every figure stays
    history = api.get(f"/v1/audit/history/{fund}").json()["entries"]
    assert [e["payload"].get("donor") for e in history[:3]] == [None, ERASED, None]
    assert history[-1]["type"] == "DonorDataErased"
    assert history[-1]["payload"] == {"movement_id": donation, "reason": "捐赠人申请删除姓名"}
    moved = after["fund"]["movements"]
    assert [m["donor_erased"] for m in moved] == [True, False]
    plain = [{k: v for k, v in m.items() if k != "donor_erased"} for m in moved]
    assert plain == [
        {k: v for k, v in m.items() if k != "donor_erased"} for m in before["fund"]["movements"]
    ]
    assert after["fund"]["version"] == before["fund"]["version"] + 1
    same = ("balance_fen", "total_in_fen", "total_out_fen")
    assert [after["fund"][k] for k in same] == [before["fund"][k] for k in same]
    for figure in ("orders", "wishes", "metrics", "team", "passbook"):
        assert _figures(after[figure]) == _figures(before[figure]), figure
    assert after["audit"][: len(before["audit"])] == before["audit"]
    facts = [(r["aggregate_type"], r["event_type"]) for r in after["audit"][len(before["audit"]) :]]
    assert facts == [("Fund", "DonorDataErased")]
    report = api.get("/v1/audit/verify").json()
    assert report["ok"] and report["first_break"] is None
    # the key is gone from the vault's file and its log
    assert key not in _files_bytes(settings.vault_db)
    files = _files_bytes(settings.events_db, settings.vault_db, *_views(settings, platform))
    _assert_absent(files, [DONOR], "the data files")
