"""Audit and replay over HTTP: statements and exports, as-of figures, a trace, the
replay check, what-if, and a correction from request to approval."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from tests.conftest import Clock, MintKey
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e


def _history(api: Api, network: Network, clock: Clock) -> dict[str, str]:
    volunteer = api.register(network.station)
    starts_at = clock.now + timedelta(minutes=30)
    activity = api.publish(network.station, starts_at, points_per_hour=10)
    api.post(f"/v1/activities/{activity}/signups", {"volunteer_id": volunteer}, expect=201)
    clock.advance(timedelta(hours=4))
    api.post(
        f"/v1/activities/{activity}/checkins",
        {"volunteer_id": volunteer, "at": starts_at.isoformat()},
        expect=201,
    )
    api.post(
        f"/v1/activities/{activity}/checkouts",
        {"volunteer_id": volunteer, "at": (starts_at + timedelta(hours=2)).isoformat()},
        expect=201,
    )
    api.post(f"/v1/activities/{activity}/confirmations", {"volunteer_id": volunteer}, expect=201)
    served_at = clock.now
    clock.advance(timedelta(days=1))
    api.award(volunteer, 5)
    reward = api.list_reward(network.station, cost=15, stock=3)
    clock.advance(timedelta(days=1))
    redemption = api.post(
        "/v1/redemptions", {"volunteer_id": volunteer, "reward_id": reward}, expect=201
    ).json()
    return {
        "volunteer": volunteer,
        "activity": activity,
        "redemption": redemption["redemption_id"],
        "position": str(redemption["position"]),
        "served_at": served_at.isoformat(),
    }


def _caught_up(api: Api, network: Network, position: str) -> None:
    api.get("/v1/leaderboards", min_position=position)
    api.get(f"/v1/units/{network.center}/metrics", min_position=position)
    api.get("/v1/audit", min_position=position)


def test_an_auditor_replays_explains_and_checks(
    api: Api, network: Network, clock: Clock, mint_key: MintKey
) -> None:
    h = _history(api, network, clock)
    auditor = mint_key("auditor")
    v = h["volunteer"]

    stmt = api.get(f"/v1/audit/passbooks/{v}/statement", key=auditor).json()
    assert [(e["type"], e["points"]) for e in stmt["entries"]] == [
        ("award", 20),
        ("award", 5),
        ("redemption", -15),
    ]
    assert (stmt["opening_balance"], stmt["closing_balance"]) == (0, 10)
    later = api.get(
        f"/v1/audit/passbooks/{v}/statement", key=auditor, params={"from": h["served_at"]}
    ).json()
    assert later["opening_balance"] == 0  # the service award was booked at served_at

    exported = api.get(f"/v1/audit/passbooks/{v}/statement", key=auditor, format="csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["line"] for r in rows] == ["opening", "entry", "entry", "entry", "closing"]
    lines = api.get(f"/v1/audit/passbooks/{v}/statement", key=auditor, format="jsonl").text
    assert json.loads(lines.splitlines()[-1]) == {"line": "closing", "balance": 10}

    balance = api.get(f"/v1/audit/passbooks/{v}/balance", key=auditor, as_of=h["served_at"]).json()
    assert balance["balance"] == 20

    board = api.get("/v1/audit/leaderboards", key=auditor, as_of=h["served_at"]).json()
    assert [(e["volunteer_id"], e["points"]) for e in board["entries"]] == [(v, 20)]
    metrics = api.get(
        f"/v1/audit/units/{network.center}/metrics", key=auditor, as_of=h["served_at"]
    ).json()
    assert metrics["metrics"]["service_minutes"] == 120

    trace = api.get(f"/v1/audit/redemptions/{h['redemption']}/trace", key=auditor).json()
    assert [lot["kind"] for lot in trace["lots"]] == ["service"]
    assert trace["lots"][0]["service"]["activity_id"] == h["activity"]

    _caught_up(api, network, h["position"])
    report = api.get("/v1/audit/check", key=auditor).json()
    assert report["ok"], report

    what_if = api.post(
        "/v1/audit/what-if", {"category_points_per_hour": {"health": 30}}, key=auditor, expect=200
    ).json()
    assert what_if["totals"]["points_proposed"] == 60 + 5

    bad = api.post("/v1/audit/what-if", {"expiry": {"kind": "days"}}, key=auditor, expect=422)
    assert bad.headers["content-type"].startswith("application/problem+json")


def test_the_audit_interface_is_for_auditors_and_admins(
    api: Api, network: Network, mint_key: MintKey
) -> None:
    unit_admin = mint_key("unit_admin", network.station)
    response = api.get("/v1/audit/check", key=unit_admin, expect=403)
    assert response.json()["code"] == "forbidden"
    api.get(f"/v1/audit/passbooks/{network.station}/statement", expect=404)


def test_a_correction_from_request_to_approval(
    api: Api, network: Network, clock: Clock, mint_key: MintKey
) -> None:
    h = _history(api, network, clock)
    station_app = mint_key("service", network.station)
    auditor = mint_key("auditor")
    body = {
        "activity_id": h["activity"],
        "volunteer_id": h["volunteer"],
        "hours": "2.5",
        "reason": "签退时间登记错误",
    }
    requested = api.post("/v1/corrections", body, key=station_app, expect=201).json()
    correction = requested["correction_id"]
    assert requested["status"] == "requested"
    api.post(f"/v1/corrections/{correction}/approval", {}, key=auditor, expect=403)
    api.post(f"/v1/corrections/{correction}/approval", {}, key=station_app, expect=403)
    approved = api.post(
        f"/v1/corrections/{correction}/approval", {"note": "核实"}, expect=200
    ).json()
    assert (approved["status"], approved["points_delta"]) == ("approved", 5)
    view = api.get(f"/v1/corrections/{correction}", key=auditor).json()
    assert (view["status"], view["recorded_minutes"], view["requested_minutes"]) == (
        "approved",
        120,
        150,
    )
    api.post(f"/v1/corrections/{correction}/rejection", {"reason": "晚了"}, expect=409)
    too_long = {**body, "hours": "9"}
    problem = api.post("/v1/corrections", too_long, expect=422).json()
    assert problem["code"] == "hours-exceed-attendance"

    _caught_up(api, network, str(approved["position"]))
    board = api.get("/v1/leaderboards", min_position=approved["position"]).json()
    assert board["entries"][0]["minutes"] == 150
    assert api.get("/v1/audit/check", key=auditor).json()["ok"]
