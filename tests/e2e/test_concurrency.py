"""Racing requests over HTTP."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from tests.conftest import Clock
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e


def test_two_redemptions_of_the_last_item_one_wins(api: Api, network: Network) -> None:
    first, second = api.register(network.station), api.register(network.station)
    for volunteer in (first, second):
        api.award(volunteer, 100)
    reward = api.list_reward(network.station, cost=60, stock=1)
    start = threading.Barrier(2)

    def redeem(volunteer: str) -> httpx.Response:
        start.wait()
        return api.post("/v1/redemptions", {"volunteer_id": volunteer, "reward_id": reward})

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(redeem, (first, second)))

    assert sorted(r.status_code for r in responses) == [201, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["code"] == "out-of-stock"
    assert api.get(f"/v1/rewards/{reward}").json()["stock"] == 0
    balances = sorted(api.get(f"/v1/passbooks/{v}").json()["balance"] for v in (first, second))
    assert balances == [40, 100]  # the loser kept every point


def test_concurrent_sign_ups_fill_places_then_the_waitlist(
    api: Api, network: Network, clock: Clock
) -> None:
    volunteers = [api.register(network.station) for _ in range(6)]
    activity = api.publish(network.station, clock.now + timedelta(hours=1), capacity=4)
    start = threading.Barrier(len(volunteers))

    def sign_up(volunteer: str) -> httpx.Response:
        start.wait()
        return api.post(f"/v1/activities/{activity}/signups", {"volunteer_id": volunteer})

    with ThreadPoolExecutor(max_workers=len(volunteers)) as pool:
        responses = list(pool.map(sign_up, volunteers))

    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["enrolled"] * 4 + ["waitlisted"] * 2
    view = api.get(f"/v1/activities/{activity}").json()
    assert (view["enrolled_count"], len(view["waitlist"])) == (4, 2)
