"""An order goes round the whole loop over HTTP — 点单 → 审单 → 下派 → 派单 → 拒单 →
再派单 → 接单 → 完成 → 评单 → 晒单 — and shows up in the passbooks, the order
board, the unit and team metrics, the leaderboard and the audit trail (without
the resident's personal data)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.principals import Role
from tests.conftest import Clock, MintKey
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e

PERSONAL = ("刘奶奶", "13912345678", "建新东路3号", "wx-openid-42")


def _team(api: Api, unit: str, leader: str, name: str) -> str:
    body = {"unit_id": unit, "name": name, "kind": "team", "leader_id": leader}
    return str(api.post("/v1/teams", body, expect=201).json()["team_id"])


def test_an_order_goes_round_the_whole_loop(
    api: Api, network: Network, clock: Clock, mint_key: MintKey
) -> None:
    leader = api.register(network.station, name="王队长")
    member = api.register(network.station, name="李队员")
    first_team = _team(api, network.station, leader, "理发服务队")
    api.post(f"/v1/teams/{first_team}/members", {"volunteer_id": member}, expect=201)
    busy_team = _team(api, network.station, api.register(network.station), "忙碌的队")

    item = api.post(
        "/v1/service-menu",
        {
            "unit_id": network.institute,
            "category": "elderly_disabled",
            "title": "上门理发",
            "description": "为行动不便的老人上门理发",
            "points_per_hour": 10,
        },
        expect=201,
    ).json()["item_id"]
    app_key = mint_key(Role.SERVICE, network.institute, name="居民小程序")
    institute_admin = mint_key(Role.UNIT_ADMIN, network.institute)
    station_admin = mint_key(Role.UNIT_ADMIN, network.station)
    other_admin = mint_key(Role.UNIT_ADMIN, network.other_institute)

    # 点单: the resident orders through the mini-program's key
    placed = api.post(
        "/v1/orders",
        {
            "menu_item_id": item,
            "channel": "resident",
            "resident_ref": PERSONAL[3],
            "resident_name": PERSONAL[0],
            "resident_phone": PERSONAL[1],
            "address": PERSONAL[2],
            "details": "腿脚不便，周末上午在家",
        },
        key=app_key,
        idempotency_key="order-1",
        expect=201,
    )
    order = placed.json()["order_id"]
    assert placed.headers["Location"] == f"/v1/orders/{order}"

    # 审单, then passed down to the station, 派单 to a team that declines, 派单 again
    clock.advance(timedelta(minutes=30))
    api.post(f"/v1/orders/{order}/approve", {"note": "已回访"}, key=institute_admin, expect=200)
    api.post(f"/v1/orders/{order}/dispatch", {"team_id": first_team}, key=other_admin, expect=403)
    api.post(
        f"/v1/orders/{order}/pass-down",
        {"unit_id": network.station, "reason": "由社区就近服务"},
        key=institute_admin,
        expect=200,
    )
    clock.advance(timedelta(minutes=30))
    api.post(f"/v1/orders/{order}/dispatch", {"team_id": busy_team}, key=station_admin, expect=200)
    wrong = api.post(
        f"/v1/orders/{order}/accept", {"team_id": first_team}, key=station_admin, expect=409
    )
    assert wrong.json()["code"] == "not-dispatched-to-team"
    api.post(
        f"/v1/orders/{order}/decline",
        {"team_id": busy_team, "reason": "本周人手不足"},
        key=station_admin,
        expect=200,
    )
    api.post(f"/v1/orders/{order}/dispatch", {"team_id": first_team}, key=station_admin, expect=200)
    not_yet = api.post(
        f"/v1/orders/{order}/rate", {"stars": 5, "resident_ref": PERSONAL[3]}, expect=409
    )
    assert not_yet.json()["code"] == "not-completed"
    api.post(f"/v1/orders/{order}/accept", {"team_id": first_team}, key=station_admin, expect=200)

    # the team serves for two hours and reports: both passbooks are credited
    clock.advance(timedelta(hours=3))
    completion = {
        "team_id": first_team,
        "services": [
            {"volunteer_id": leader, "hours": "2"},
            {"volunteer_id": member, "hours": "1.5"},
        ],
        "people_served": 1,
    }
    completed = api.post(
        f"/v1/orders/{order}/complete",
        completion,
        key=station_admin,
        idempotency_key="complete-1",
        expect=200,
    ).json()
    assert [(a["minutes"], a["points"]) for a in completed["awards"]] == [(120, 16), (90, 12)]
    again = api.post(f"/v1/orders/{order}/complete", completion, expect=409)
    assert again.json()["code"] == "already-completed"
    assert api.get(f"/v1/passbooks/{leader}").json()["balance"] == 16
    assert api.get(f"/v1/passbooks/{member}").json()["earned_minutes"] == 90

    # 评单 by the resident, 晒单 by an admin
    api.post(
        f"/v1/orders/{order}/rate",
        {"stars": 4, "comment": "师傅很耐心", "resident_ref": "someone-else"},
        key=app_key,
        expect=422,
    )
    api.post(
        f"/v1/orders/{order}/rate",
        {"stars": 4, "comment": "师傅很耐心", "resident_ref": PERSONAL[3]},
        key=app_key,
        expect=200,
    )
    api.post(f"/v1/orders/{order}/showcase", {"story": "x"}, key=app_key, expect=403)
    last = api.post(
        f"/v1/orders/{order}/showcase",
        {"story": "八旬老人在家理了发", "photo_links": ["https://example.org/1.jpg"]},
        key=institute_admin,
        expect=200,
    ).json()["position"]

    view = api.get(f"/v1/orders/{order}", key=station_admin).json()
    assert (view["status"], view["stars"], view["declines"], view["overdue"]) == (
        "completed",
        4,
        1,
        False,
    )
    assert view["timers"] == {
        "to_review": 30,
        "to_dispatch": 30,
        "to_accept": 0,
        "to_complete": 240,
    }
    assert view["resident_name"] == PERSONAL[0]  # staff who may read the order see it

    _check_read_models(api, network, order, first_team, leader, last)


def _check_read_models(
    api: Api, network: Network, order: str, first_team: str, leader: str, last: int
) -> None:
    board = api.get(
        "/v1/orders", unit_id=network.institute, status="completed", min_position=last
    ).json()
    assert [o["order_id"] for o in board["items"]] == [order]
    assert board["items"][0]["handling_unit_id"] == network.station
    metrics = api.get(
        f"/v1/units/{network.center}/metrics", granularity="all", min_position=last
    ).json()["periods"][0]
    assert {k: metrics[k] for k in ("orders_received", "orders_dispatched", "orders_declined")} == {
        "orders_received": 1,
        "orders_dispatched": 2,
        "orders_declined": 1,
    }
    assert (metrics["orders_completed"], metrics["order_service_minutes"]) == (1, 210)
    assert (metrics["average_rating"], metrics["average_complete_hours"]) == (4.0, 4.0)
    assert (metrics["orders_open"], metrics["orders_overdue"]) == (0, 0)
    assert metrics["points_awarded"] == 28
    team = api.get(f"/v1/teams/{first_team}/metrics", min_position=last).json()
    assert (team["orders_completed"], team["service_minutes"], team["average_rating"]) == (
        1,
        210,
        4.0,
    )
    ranked = api.get("/v1/teams/leaderboard", unit_id=network.station, min_position=last).json()
    assert ranked["entries"][0]["team_id"] == first_team
    hours = api.get(
        "/v1/leaderboards", unit_id=network.station, by="hours", min_position=last
    ).json()
    assert hours["entries"][0]["volunteer_id"] == leader
    assert hours["entries"][0]["minutes"] == 120

    audit = api.get("/v1/audit", unit_id=network.institute, min_position=last, limit=1000).json()
    order_events = [e["event_type"] for e in audit["items"] if e["aggregate_id"] == order]
    assert order_events == [
        "Placed",
        "Approved",
        "PassedDown",
        "Dispatched",
        "DeclinedByTeam",
        "Dispatched",
        "AcceptedByTeam",
        "Completed",
        "Rated",
        "Showcased",
    ]
    text = json.dumps(audit, ensure_ascii=False)
    assert not any(p in text for p in PERSONAL)
    board_text = json.dumps(board, ensure_ascii=False)
    assert not any(p in board_text for p in PERSONAL)


def test_overdue_orders_are_listed_and_counted(api: Api, network: Network, clock: Clock) -> None:
    item = api.post(
        "/v1/service-menu",
        {
            "unit_id": network.station,
            "category": "convenience",
            "title": "家电维修",
            "deadline_minutes": {"review": 60},
        },
        expect=201,
    ).json()["item_id"]
    late = api.post("/v1/orders", {"menu_item_id": item}, expect=201).json()["order_id"]
    clock.advance(timedelta(minutes=90))
    fresh = api.post("/v1/orders", {"menu_item_id": item}, expect=201).json()
    overdue = api.get(
        "/v1/orders/overdue", unit_id=network.institute, min_position=fresh["position"]
    ).json()
    assert [(o["order_id"], o["step"]) for o in overdue["items"]] == [(late, "review")]
    metrics = api.get(
        f"/v1/units/{network.station}/metrics", min_position=fresh["position"]
    ).json()["periods"][0]
    assert (metrics["orders_open"], metrics["orders_overdue"]) == (2, 1)
    menu = api.get("/v1/service-menu", unit_id=network.institute).json()
    assert [i["title"] for i in menu["items"]] == ["家电维修"]
