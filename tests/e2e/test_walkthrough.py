"""The whole journey over HTTP: units, a volunteer, an activity from sign-up to
confirmed service, a manual award, a redemption, then the read models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from infra.settings import Settings
from services.api.app import create_app
from tests.conftest import Clock
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e


def _serve(api: Api, station: str, volunteer: str, clock: Clock) -> str:
    """Publish an activity, sign up, check in and out, confirm: returns the activity."""
    starts_at = clock.now + timedelta(minutes=30)
    activity = api.publish(station, starts_at, capacity=5, points_per_hour=10)
    signed_up = api.post(
        f"/v1/activities/{activity}/signups", {"volunteer_id": volunteer}, expect=201
    )
    assert signed_up.json()["status"] == "enrolled"
    assert signed_up.headers["Location"] == f"/v1/activities/{activity}"

    clock.advance(timedelta(hours=3))  # the activity has run
    api.post(
        f"/v1/activities/{activity}/checkins",
        {"volunteer_id": volunteer, "at": starts_at.isoformat()},
        expect=201,
    )
    checked_out = api.post(
        f"/v1/activities/{activity}/checkouts",
        {"volunteer_id": volunteer, "at": (starts_at + timedelta(hours=2)).isoformat()},
        expect=201,
    ).json()
    assert checked_out["attended_minutes"] == 120

    confirmed = api.post(
        f"/v1/activities/{activity}/confirmations",
        {"volunteer_id": volunteer, "people_served": 12},
        expect=201,
    ).json()
    assert (confirmed["minutes"], confirmed["hours_source"], confirmed["points"]) == (
        120,
        "checkin",
        20,
    )
    return activity


def _check_passbook(api: Api, volunteer: str, before_redemption: datetime) -> None:
    passbook = api.get(f"/v1/passbooks/{volunteer}").json()
    assert passbook["balance"] == 10
    assert passbook["earned_points"] == 20
    assert passbook["earned_minutes"] == 120
    assert [line["type"] for line in passbook["statement"]] == [
        "Opened",
        "PointsAwarded",
        "PointsAwarded",
        "PointsRedeemed",
    ]
    assert [line["balance_after"] for line in passbook["statement"]] == [0, 20, 50, 10]
    assert sum(lot["remaining"] for lot in passbook["open_lots"]) == 10
    assert all(line["actor"].startswith("key:") for line in passbook["statement"])

    # the balance as it stood before the redemption
    then = api.get(f"/v1/passbooks/{volunteer}", as_of=before_redemption.isoformat()).json()
    assert then["balance"] == 50
    assert len(then["statement"]) == 3


def _check_read_models(api: Api, network: Network, volunteer: str, position: int) -> None:
    board = api.get("/v1/leaderboards", min_position=position, volunteer_id=volunteer).json()
    assert board["entries"][0]["volunteer_id"] == volunteer
    assert board["entries"][0]["points"] == 50
    assert board["entries"][0]["minutes"] == 120
    assert board["volunteer"]["rank"] == 1
    assert board["position"] >= position

    by_hours = api.get(
        "/v1/leaderboards", by="hours", unit_id=network.institute, min_position=position
    ).json()
    assert by_hours["entries"][0]["hours"] == 2.0
    elsewhere = api.get(
        "/v1/leaderboards", unit_id=network.other_institute, min_position=position
    ).json()
    assert elsewhere["entries"] == []

    metrics = api.get(f"/v1/units/{network.center}/metrics", min_position=position).json()
    figures = metrics["periods"][0]
    assert figures["services_confirmed"] == 1
    assert figures["service_minutes"] == 120
    assert figures["people_served"] == 12
    assert figures["points_awarded"] == 50
    assert figures["points_redeemed"] == 40
    assert figures["redemptions_requested"] == 1
    assert figures["volunteers_registered"] == 1

    audit = api.get("/v1/audit", volunteer_id=volunteer, min_position=position).json()
    types = [item["event_type"] for item in audit["items"]]
    assert "ServiceConfirmed" in types
    assert types.count("PointsAwarded") == 2
    assert "PointsRedeemed" in types
    assert all("phone" not in item["summary"] for item in audit["items"])
    awards = api.get("/v1/audit", type="PointsAwarded", min_position=position).json()
    assert len(awards["items"]) == 2


def test_full_walkthrough(api: Api, network: Network, clock: Clock) -> None:
    volunteer = api.register(network.station)
    activity = _serve(api, network.station, volunteer, clock)
    assert api.award(volunteer, 30).json()["balance"] == 50
    before_redemption = clock.advance(timedelta(seconds=1))
    clock.advance(timedelta(seconds=1))

    reward = api.list_reward(network.station, cost=40, stock=3)
    redeemed = api.post(
        "/v1/redemptions", {"volunteer_id": volunteer, "reward_id": reward}, expect=201
    )
    body = redeemed.json()
    assert redeemed.headers["Location"] == f"/v1/redemptions/{body['redemption_id']}"
    assert (body["balance"], body["stock_left"]) == (10, 2)
    assert sum(lot["points"] for lot in body["spent_lots"]) == 40

    # aggregate-backed reads are current
    activity_view = api.get(f"/v1/activities/{activity}").json()
    assert activity_view["enrolled_count"] == 1
    assert activity_view["places_left"] == 4
    assert activity_view["signups"][0]["confirmed"] is True
    redemption = api.get(f"/v1/redemptions/{body['redemption_id']}").json()
    assert redemption["status"] == "requested"
    assert api.get(f"/v1/rewards/{reward}").json()["stock"] == 2
    volunteer_view = api.get(f"/v1/volunteers/{volunteer}").json()
    assert "*" in volunteer_view["document_masked"]
    assert "id_number" not in volunteer_view
    _check_passbook(api, volunteer, before_redemption)

    # projection-backed reads, waiting for the last write
    _check_read_models(api, network, volunteer, body["position"])


def test_waitlist_promotion(api: Api, network: Network, clock: Clock) -> None:
    first, second, third = (api.register(network.station) for _ in range(3))
    activity = api.publish(network.station, clock.now + timedelta(hours=2), capacity=1)

    statuses = [
        api.post(f"/v1/activities/{activity}/signups", {"volunteer_id": v}, expect=201).json()
        for v in (first, second, third)
    ]
    assert [s["status"] for s in statuses] == ["enrolled", "waitlisted", "waitlisted"]
    assert [s["waitlist_position"] for s in statuses] == [None, 1, 2]

    cancelled = api.client.delete(
        f"/v1/activities/{activity}/signups/{first}",
        params={"reason": "家中有事"},
        headers=api.headers(None),
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["promoted_volunteer_id"] == second

    view = api.get(f"/v1/activities/{activity}").json()
    assert view["enrolled_count"] == 1
    assert view["places_left"] == 0
    assert view["waitlist"] == [third]
    enrolled = [s["volunteer_id"] for s in view["signups"] if s["status"] == "enrolled"]
    assert enrolled == [second]


def test_passbook_before_it_was_opened_is_404(api: Api, network: Network) -> None:
    opened_before = datetime.now(UTC) - timedelta(days=1)
    volunteer = api.register(network.station)
    response = api.get(f"/v1/passbooks/{volunteer}", as_of=opened_before.isoformat(), expect=404)
    assert response.headers["content-type"] == "application/problem+json"


def test_read_your_writes_times_out_with_503(
    admin_headers: dict[str, str], settings: Settings
) -> None:
    # projections not running in this process: a recorded position is never reached
    quick = settings.model_copy(update={"read_wait_timeout": 0.2, "run_projections": False})
    with TestClient(create_app(quick)) as client:
        unit = {"code": "c-503", "name": "x", "tier": "center"}
        position = client.post("/v1/units", json=unit, headers=admin_headers).json()["position"]
        response = client.get(
            "/v1/leaderboards", params={"min_position": position}, headers=admin_headers
        )
        # a position no write has returned is the client's error, not a wait
        beyond = client.get(
            "/v1/leaderboards", params={"min_position": 10_000}, headers=admin_headers
        )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["code"] == "projection-behind"
    assert beyond.status_code == 422
    assert beyond.json()["code"] == "unknown-position"
