"""Listings over HTTP: a unit's activities with their places, the gift catalogue
with its stock, each kept by the ``listings`` read model, filtered by subtree and
refused outside a unit admin's reach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import MintKey
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e

SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)


def _activities(api: Api, position: int, **query: Any) -> list[dict[str, Any]]:
    page = api.get("/v1/activities", min_position=position, **query).json()
    return list(page["items"])


def _position(response: Any) -> int:
    return int(response.json()["position"])


def test_activities_list_with_places_and_waitlist(api: Api, network: Network) -> None:
    later = api.publish(network.station, SOON + timedelta(days=1), capacity=5)
    full = api.publish(network.station, SOON, capacity=2)
    elsewhere = api.publish(network.other_station, SOON, capacity=9)
    people = [api.register(network.station) for _ in range(4)]
    for volunteer in people:  # two enrolled, then two on the waitlist
        api.post(f"/v1/activities/{full}/signups", {"volunteer_id": volunteer}, expect=201)
    # the first enrolled volunteer cancels: the first on the waitlist takes the place
    cancelled = api.client.delete(
        f"/v1/activities/{full}/signups/{people[0]}", headers=api.headers(None)
    )
    assert cancelled.status_code == 200, cancelled.text
    position = _position(cancelled)

    listed = _activities(api, position, unit_id=network.institute)
    assert [a["activity_id"] for a in listed] == [full, later]  # by start, subtree only
    first = listed[0]
    assert (first["capacity"], first["enrolled"], first["waitlisted"]) == (2, 2, 1)
    assert (first["places_left"], first["status"], first["category"]) == (0, "published", "health")
    assert datetime.fromisoformat(first["starts_at"]) == SOON

    everywhere = _activities(api, position)
    assert {a["activity_id"] for a in everywhere} == {full, later, elsewhere}
    with_places = _activities(api, position, with_places=True)
    assert {a["activity_id"] for a in with_places} == {later, elsewhere}
    window = {"starts_from": (SOON + timedelta(hours=1)).isoformat()}
    assert [a["activity_id"] for a in _activities(api, position, params=window)] == [later]

    done = api.post(f"/v1/activities/{later}/cancel", {"reason": "暴雨"}, expect=200)
    gone = _activities(api, _position(done), status="published", unit_id=network.station)
    assert [a["activity_id"] for a in gone] == [full]


def test_the_gift_catalogue_follows_the_stock(api: Api, network: Network) -> None:
    rice = api.list_reward(network.station, cost=10, stock=1)
    oil = api.list_reward(network.station, cost=30, stock=5)
    volunteer = api.register(network.station)
    api.award(volunteer, 50)
    redeemed = api.post(
        "/v1/redemptions", {"volunteer_id": volunteer, "reward_id": rice}, expect=201
    )
    page = api.get("/v1/rewards", unit_id=network.station, min_position=_position(redeemed)).json()
    stock = {item["reward_id"]: item["stock"] for item in page["items"]}
    assert stock == {rice: 0, oil: 5}
    in_stock = api.get(
        "/v1/rewards", unit_id=network.station, in_stock=True, min_position=_position(redeemed)
    ).json()
    assert [item["reward_id"] for item in in_stock["items"]] == [oil]

    redemption = redeemed.json()["redemption_id"]
    back = api.post(f"/v1/redemptions/{redemption}/cancel", {"reason": "未领取"}, expect=200)
    delisted = api.post(f"/v1/rewards/{oil}/delist", {"reason": "停产"}, expect=200)
    at = max(_position(back), _position(delisted))
    page = api.get("/v1/rewards", unit_id=network.station, min_position=at).json()
    assert {item["reward_id"]: item["stock"] for item in page["items"]} == {rice: 1}
    everything = api.get(
        "/v1/rewards", unit_id=network.station, include_delisted=True, min_position=at
    ).json()
    assert {item["reward_id"]: item["status"] for item in everything["items"]} == {
        rice: "listed",
        oil: "delisted",
    }


def test_a_unit_admin_lists_its_own_subtree_only(
    api: Api, network: Network, mint_key: MintKey
) -> None:
    mine = api.publish(network.station, SOON)
    api.publish(network.other_station, SOON)
    reward = api.list_reward(network.station, cost=10, stock=1)
    position = _position(api.post(f"/v1/rewards/{reward}/restock", {"quantity": 2}, expect=200))
    key = mint_key("unit_admin", network.institute)
    own = api.get("/v1/activities", key=key, min_position=position).json()
    assert own["unit_id"] == network.institute
    assert [a["activity_id"] for a in own["items"]] == [mine]
    rewards = api.get("/v1/rewards", key=key, min_position=position).json()
    assert [(r["reward_id"], r["stock"]) for r in rewards["items"]] == [(reward, 3)]
    for path in ("/v1/activities", "/v1/rewards"):
        refused = api.get(path, key=key, unit_id=network.other_institute, expect=403)
        assert refused.headers["content-type"].startswith("application/problem+json")


def test_redemptions_waiting_for_pickup(api: Api, network: Network) -> None:
    rice = api.list_reward(network.station, cost=10, stock=5)
    alice, bob = api.register(network.station), api.register(network.station)
    api.award(alice, 30)
    api.award(bob, 30)

    def redeem(volunteer: str) -> str:
        body = {"volunteer_id": volunteer, "reward_id": rice}
        return str(api.post("/v1/redemptions", body, expect=201).json()["redemption_id"])

    first, second, third = redeem(alice), redeem(bob), redeem(alice)
    picked = api.post(f"/v1/redemptions/{first}/fulfil", {"note": "已领取"}, expect=200)
    at = _position(picked)
    waiting = api.get(
        "/v1/redemptions", unit_id=network.institute, status="requested", min_position=at
    ).json()
    assert [r["redemption_id"] for r in waiting["items"]] == [second, third]
    assert {(r["reward_name"], r["points"], r["quantity"]) for r in waiting["items"]} == {
        ("大米 5kg", 10, 1)
    }
    alices = api.get("/v1/redemptions", volunteer_id=alice, min_position=at).json()
    assert [(r["redemption_id"], r["status"]) for r in alices["items"]] == [
        (first, "fulfilled"),
        (third, "requested"),
    ]
    elsewhere = api.get("/v1/redemptions", unit_id=network.other_station, min_position=at)
    assert elsewhere.json()["items"] == []


def test_units_of_a_subtree(api: Api, network: Network, mint_key: MintKey) -> None:
    closed = api.open_unit("jiangbei-guanyinqiao-02", "station", network.institute)
    renamed = api.post(
        f"/v1/units/{network.station}/rename", {"name": "和鑫社区", "reason": "更名"}
    )
    assert renamed.status_code == 200, renamed.text
    done = api.post(f"/v1/units/{closed}/close", {"reason": "合并"}, expect=200)
    at = _position(done)
    everything = api.get("/v1/units", min_position=at).json()["items"]
    assert len(everything) == 5  # the closed station left out
    subtree = api.get("/v1/units", unit_id=network.institute, min_position=at).json()["items"]
    assert [(u["unit_id"], u["tier"]) for u in subtree] == [
        (network.institute, "institute"),
        (network.station, "station"),
    ]
    assert subtree[1]["name"] == "和鑫社区" and subtree[1]["parent_id"] == network.institute
    with_closed = api.get(
        "/v1/units", unit_id=network.institute, include_closed=True, min_position=at
    ).json()["items"]
    assert {u["unit_id"]: u["closed"] for u in with_closed}[closed] is True
    children = api.get("/v1/units", parent_id=network.center, min_position=at).json()["items"]
    assert {u["unit_id"] for u in children} == {network.institute, network.other_institute}
    stations = api.get("/v1/units", tier="station", min_position=at).json()["items"]
    assert {u["unit_id"] for u in stations} == {network.station, network.other_station}
    key = mint_key("unit_admin", network.station)
    own = api.get("/v1/units", key=key, min_position=at).json()
    assert [u["unit_id"] for u in own["items"]] == [network.station]
    api.get("/v1/units", key=key, unit_id=network.institute, expect=403)


def test_a_volunteers_signups(api: Api, network: Network, mint_key: MintKey) -> None:
    later = api.publish(network.station, SOON + timedelta(days=2), capacity=1)
    sooner = api.publish(network.other_station, SOON, capacity=5)
    left = api.publish(network.station, SOON, capacity=5)
    first, volunteer = api.register(network.station), api.register(network.station)
    api.post(f"/v1/activities/{later}/signups", {"volunteer_id": first}, expect=201)
    for activity in (later, sooner, left):
        api.post(f"/v1/activities/{activity}/signups", {"volunteer_id": volunteer}, expect=201)
    gone = api.client.delete(
        f"/v1/activities/{left}/signups/{volunteer}", headers=api.headers(None)
    )
    assert gone.status_code == 200, gone.text
    page = api.get(f"/v1/volunteers/{volunteer}/signups", min_position=_position(gone)).json()
    assert [(s["activity"]["activity_id"], s["status"]) for s in page["items"]] == [
        (sooner, "enrolled"),
        (later, "waitlisted"),
    ]
    window = {"starts_from": (SOON + timedelta(days=1)).isoformat()}
    upcoming = api.get(
        f"/v1/volunteers/{volunteer}/signups", params=window, min_position=_position(gone)
    ).json()
    assert [s["activity"]["activity_id"] for s in upcoming["items"]] == [later]
    outsider = mint_key("unit_admin", network.other_institute)
    api.get(f"/v1/volunteers/{volunteer}/signups", key=outsider, expect=403)
