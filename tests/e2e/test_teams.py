"""Teams over HTTP: form, join, leave, hand over, assign an activity, disband; scoped
keys act only within their subtree; the batch endpoint takes team commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.principals import Role
from tests.conftest import MintKey
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e


def test_a_team_round_trip(api: Api, network: Network, mint_key: MintKey) -> None:
    leader = api.register(network.station, name="队长")
    member = api.register(network.station, name="队员")
    formed = api.post(
        "/v1/teams",
        {
            "unit_id": network.institute,
            "name": "观音桥街道法律援助专业队",
            "kind": "specialised",
            "specialty": "legal_aid",
            "leader_id": leader,
        },
        idempotency_key="team-1",
        expect=201,
    )
    team = formed.json()["team_id"]
    assert formed.headers["Location"] == f"/v1/teams/{team}"
    replay = api.post(
        "/v1/teams",
        {
            "unit_id": network.institute,
            "name": "观音桥街道法律援助专业队",
            "kind": "specialised",
            "specialty": "legal_aid",
            "leader_id": leader,
        },
        idempotency_key="team-1",
        expect=201,
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["team_id"] == team

    api.post(f"/v1/teams/{team}/members", {"volunteer_id": member}, expect=201)
    again = api.post(f"/v1/teams/{team}/members", {"volunteer_id": member}, expect=409)
    assert again.json()["code"] == "already-a-member"
    refused = api.client.delete(f"/v1/teams/{team}/members/{leader}", headers=api.admin)
    assert refused.status_code == 409
    assert refused.json()["code"] == "leader-cannot-leave"
    api.post(f"/v1/teams/{team}/leader", {"volunteer_id": member, "reason": "换届"}, expect=200)
    left = api.client.delete(
        f"/v1/teams/{team}/members/{leader}", params={"reason": "卸任"}, headers=api.admin
    )
    assert left.status_code == 200, left.text
    assert left.json()["members"] == 1

    starts = datetime.now(UTC) + timedelta(days=1)
    activity = api.publish(network.station, starts)
    api.post(f"/v1/teams/{team}/activities", {"activity_id": activity}, expect=200)
    outside = api.publish(network.other_station, starts)
    wrong = api.post(f"/v1/teams/{team}/activities", {"activity_id": outside}, expect=422)
    assert wrong.json()["code"] == "team-outside-subtree"

    view = api.get(f"/v1/teams/{team}").json()
    assert view["leader_id"] == member
    assert view["members"] == [member]
    assert [(h["volunteer_id"], h["left_at"] is None) for h in view["history"]] == [
        (leader, False),
        (member, True),
    ]

    other_admin = mint_key(Role.UNIT_ADMIN, network.other_institute)
    forbidden = api.post(f"/v1/teams/{team}/disband", {"reason": "x"}, key=other_admin, expect=403)
    assert forbidden.json()["code"] == "forbidden"
    api.post(f"/v1/teams/{team}/disband", {"reason": "任务完成"}, expect=200)
    assert api.get(f"/v1/teams/{team}").json()["disbanded"] is True


def test_team_commands_run_in_a_batch(api: Api, network: Network) -> None:
    leader = api.register(network.station)
    member = api.register(network.station, name="李四")
    team = "7d1f3c55-1b9e-4f51-9b59-1f0a3c1e2d4b"
    batch = api.post(
        "/v1/batch",
        {
            "items": [
                {
                    "command": {
                        "type": "form_team",
                        "team_id": team,
                        "unit_id": network.station,
                        "name": "站点服务队",
                        "kind": "team",
                        "leader_id": leader,
                    }
                },
                {"command": {"type": "join_team", "team_id": team, "volunteer_id": member}},
                {"command": {"type": "join_team", "team_id": team, "volunteer_id": member}},
            ]
        },
        expect=200,
    ).json()
    assert [i["status"] for i in batch["items"]] == [201, 201, 409]
    assert api.get(f"/v1/teams/{team}").json()["members"] == [leader, member]
