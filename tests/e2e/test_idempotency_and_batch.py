"""Retries with Idempotency-Key, and batches of commands in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from uuid import uuid4

import pytest

from infra.event_store import GroupCommitSQLiteRecorder
from services.bootstrap import Platform
from tests.conftest import Clock, MintKey
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e


def _registration(station: str, id_number: str) -> dict[str, str]:
    return {
        "home_station_id": station,
        "name": "李四",
        "phone": "13900000000",
        "id_number": id_number,
    }


def test_retry_with_the_same_key_replays_the_original_result(
    api: Api, network: Network, platform: Platform, new_resident_id: Callable[[], str]
) -> None:
    body = _registration(network.station, new_resident_id())
    first = api.post("/v1/volunteers", body, idempotency_key="reg-0001", expect=201)
    head = platform.app.head()

    retry = api.post("/v1/volunteers", body, idempotency_key="reg-0001", expect=201)

    assert platform.app.head() == head  # nothing new recorded
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert retry.headers["Location"] == first.headers["Location"]
    assert {**retry.json(), "replayed": False} == first.json()
    assert retry.json()["replayed"] is True


def test_replayed_check_in_keeps_its_timestamp(api: Api, network: Network, clock: Clock) -> None:
    volunteer = api.register(network.station)
    activity = api.publish(network.station, clock.now + timedelta(minutes=30))
    api.post(f"/v1/activities/{activity}/signups", {"volunteer_id": volunteer}, expect=201)
    body = {"volunteer_id": volunteer}
    first = api.post(f"/v1/activities/{activity}/checkins", body, idempotency_key="ci-1")
    retry = api.post(f"/v1/activities/{activity}/checkins", body, idempotency_key="ci-1")
    assert first.status_code == retry.status_code == 201
    assert retry.json()["at"] == first.json()["at"]


def test_same_key_with_a_different_body_is_422(
    api: Api, network: Network, new_resident_id: Callable[[], str]
) -> None:
    api.post(
        "/v1/volunteers",
        _registration(network.station, new_resident_id()),
        idempotency_key="reg-0002",
        expect=201,
    )
    reused = api.post(
        "/v1/volunteers",
        _registration(network.station, new_resident_id()),
        idempotency_key="reg-0002",
        expect=422,
    )
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["code"] == "idempotency-key-reused"


def test_malformed_idempotency_key_is_400(api: Api) -> None:
    body = {"code": "c-x", "name": "x", "tier": "center"}
    for bad_key in ("", "x" * 256, "with space", "ключ".encode()):
        response = api.client.post(
            "/v1/units", json=body, headers={**api.admin, "Idempotency-Key": bad_key}
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid-idempotency-key"


def test_batch_records_only_the_good_items_in_one_transaction(
    api: Api, network: Network, platform: Platform
) -> None:
    volunteer = api.register(network.station)
    recorder = platform.app.recorder
    assert isinstance(recorder, GroupCommitSQLiteRecorder)  # the default store: SQLite
    head, groups = platform.app.head(), recorder.groups_committed
    items = [
        {
            "command": {
                "type": "open_unit",
                "code": "jiangbei-guanyinqiao-02",
                "name": "二站",
                "tier": "station",
                "parent_id": network.institute,
            }
        },
        {"command": {"type": "sign_up", "activity_id": str(uuid4()), "volunteer_id": volunteer}},
        {
            "idempotency_key": "award-77",
            "command": {
                "type": "award_points",
                "volunteer_id": volunteer,
                "points": 7,
                "reason": "文明户",
            },
        },
        {"command": {"type": "open_unit", "code": "jiangbei", "name": "dup", "tier": "center"}},
    ]
    response = api.post("/v1/batch", {"items": items}, expect=200)
    outcome = response.json()

    assert [i["status"] for i in outcome["items"]] == [201, 404, 201, 409]
    assert (outcome["succeeded"], outcome["failed"]) == (2, 2)
    assert outcome["items"][1]["problem"]["code"] == "not-found"
    assert outcome["items"][3]["problem"]["code"] == "unit-exists"
    assert outcome["items"][2]["result"]["balance"] == 7
    assert platform.app.head() == head + 2  # one event per good item, none for the bad
    assert recorder.groups_committed == groups + 1  # in one commit
    assert outcome["position"] == head + 2

    # the keyed item replays; the others run again (and fail or conflict again)
    again = api.post("/v1/batch", {"items": items[2:3]}, expect=200)
    assert again.json()["items"][0]["replayed"] is True
    assert again.headers["Idempotent-Replayed"] == "true"
    assert platform.app.head() == head + 2


def test_batch_items_are_authorised_one_by_one(
    api: Api, network: Network, mint_key: MintKey
) -> None:
    station_key = mint_key("service", network.station)
    items = [
        {"command": {"type": "register_volunteer", "home_station_id": s, "name": "王五",
                     "phone": "13700000000", "id_number": api.new_resident_id()}}
        for s in (network.station, network.other_station)
    ]  # fmt: skip
    outcome = api.post("/v1/batch", {"items": items}, key=station_key, expect=200).json()
    assert [i["status"] for i in outcome["items"]] == [201, 403]


def test_batch_validation(api: Api, network: Network) -> None:
    unknown = api.post("/v1/batch", {"items": [{"command": {"type": "nope"}}]}, expect=422)
    assert unknown.json()["errors"]
    assert api.post("/v1/batch", {"items": []}, expect=422).json()["code"] == "invalid-request"
