"""Keys, roles and reach: 401 without a valid key, 403 outside the key's subtree
or role, key management over HTTP."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from tests.conftest import Clock, MintKey
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"


def test_every_route_but_the_probes_needs_a_key(api: Api, network: Network) -> None:
    unit = api.client.get(f"/v1/units/{network.station}")
    assert unit.status_code == 401
    assert unit.headers["WWW-Authenticate"] == "Bearer"
    assert unit.headers["content-type"] == PROBLEM
    assert unit.json()["code"] == "unauthenticated"

    post = api.client.post("/v1/units", json={"code": "x", "name": "x", "tier": "center"})
    assert post.status_code == 401
    for path in ("/v1/leaderboards", "/v1/audit", "/v1/projections", "/v1/keys"):
        assert api.client.get(path).status_code == 401, path

    for path in ("/healthz", "/readyz", "/docs", "/openapi.json"):
        assert api.client.get(path).status_code == 200, path


def test_invalid_keys_are_401(api: Api) -> None:
    for authorization in (
        "Bearer civic_0000000000000000_nope",
        "Bearer garbage",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ):
        response = api.client.get(f"/v1/units/{uuid4()}", headers={"Authorization": authorization})
        assert response.status_code == 401, authorization
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_station_key_cannot_act_on_another_station(
    api: Api, network: Network, mint_key: MintKey, clock: Clock
) -> None:
    station_key = mint_key("service", network.station)
    mine = api.register(network.station, key=station_key)
    theirs = api.register(network.other_station)
    activity = api.publish(network.other_station, clock.now + timedelta(hours=1))

    refused = api.post(
        f"/v1/activities/{activity}/signups", {"volunteer_id": mine}, key=station_key
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["code"] == "forbidden"
    assert (
        api.post(
            f"/v1/passbooks/{theirs}/awards", {"points": 5, "reason": "x"}, key=station_key
        ).status_code
        == 403
    )
    # reads too
    assert api.get(f"/v1/volunteers/{theirs}", key=station_key, expect=403)
    assert api.get(f"/v1/passbooks/{theirs}", key=station_key, expect=403)
    assert api.get(f"/v1/units/{network.other_station}/metrics", key=station_key, expect=403)
    assert api.get("/v1/audit", unit_id=network.center, key=station_key, expect=403)
    # within its own subtree all is well; its reports default to its own unit
    assert api.get(f"/v1/volunteers/{mine}", key=station_key).json()["volunteer_id"] == mine
    board = api.get("/v1/leaderboards", key=station_key).json()
    assert board["unit_id"] == network.station


def test_auditor_reads_everything_and_writes_nothing(
    api: Api, network: Network, mint_key: MintKey
) -> None:
    auditor = mint_key("auditor")
    volunteer = api.register(network.other_station)
    assert api.get(f"/v1/passbooks/{volunteer}", key=auditor).json()["balance"] == 0
    head = api.platform.app.head()
    assert api.get("/v1/audit", key=auditor, min_position=head).json()["items"]

    refused = api.post(f"/v1/passbooks/{volunteer}/awards", {"points": 5, "reason": "x"},
                       key=auditor)  # fmt: skip
    assert refused.status_code == 403
    assert refused.json()["detail"] == "auditors cannot write"
    assert api.post("/v1/keys", {"name": "x", "role": "auditor"}, key=auditor).status_code == 403


def test_key_management(api: Api, network: Network, mint_key: MintKey) -> None:
    institute_admin = mint_key("unit_admin", network.institute)

    created = api.post(
        "/v1/keys",
        {"name": "站点自助机", "role": "service", "unit_id": network.station},
        key=institute_admin,
        expect=201,
    )
    key = created.json()
    assert key["key"].startswith(f"civic_{key['key_id']}_")
    assert created.headers["Cache-Control"] == "no-store"
    assert created.headers["Location"] == f"/v1/keys/{key['key_id']}"
    shown = api.get(created.headers["Location"], key=institute_admin).json()
    assert shown["created_by"].startswith("key:") and "key" not in shown
    # the new key works, within its station
    assert api.get(f"/v1/units/{network.station}", key=key["key"]).status_code == 200

    # a unit admin cannot mint admins, nor keys beyond its subtree
    assert api.post("/v1/keys", {"name": "x", "role": "admin"}, key=institute_admin,
                    expect=403)  # fmt: skip
    assert api.post(
        "/v1/keys",
        {"name": "x", "role": "service", "unit_id": network.other_station},
        key=institute_admin,
        expect=403,
    )
    # scoped keys need an existing unit; unscoped keys take none
    assert api.post("/v1/keys", {"name": "x", "role": "service", "unit_id": str(uuid4())},
                    expect=404)  # fmt: skip
    assert api.post("/v1/keys", {"name": "x", "role": "service"}, expect=422)
    assert api.post(
        "/v1/keys", {"name": "x", "role": "auditor", "unit_id": network.center}, expect=422
    )
    listed = api.get("/v1/keys", key=institute_admin).json()
    assert key["key_id"] in {k["key_id"] for k in listed}
    assert all("key" not in k and "secret" not in str(k) for k in listed)

    rotated = api.post(f"/v1/keys/{key['key_id']}/rotate", key=institute_admin, expect=201)
    new_key = rotated.json()
    assert new_key["replaces"] == key["key_id"]
    assert api.get(f"/v1/units/{network.station}", key=key["key"], expect=401)
    assert api.get(f"/v1/units/{network.station}", key=new_key["key"], expect=200)

    revoked = api.client.delete(f"/v1/keys/{new_key['key_id']}", headers=api.headers(None))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert api.get(f"/v1/units/{network.station}", key=new_key["key"], expect=401)
    assert api.client.delete("/v1/keys/unknown", headers=api.headers(None)).status_code == 404
