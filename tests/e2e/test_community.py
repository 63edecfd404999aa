"""Micro-wishes, venture calls and charity funds over HTTP: each workflow end to
end, its refusals as problem details, and its traces in the unit metrics and the
audit trail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Clock, MintKey
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e


def _metrics(api: Api, unit: str, position: int) -> dict[str, Any]:
    report = api.get(f"/v1/units/{unit}/metrics", granularity="all", min_position=position).json()
    return dict(report["periods"][0])


def _audit_types(api: Api, unit: str, position: int, prefix: str) -> list[str]:
    page = api.get("/v1/audit", unit_id=unit, min_position=position, limit=1000).json()
    return [item["event_type"] for item in page["items"] if item["aggregate_type"] == prefix]


# -- funds ------------------------------------------------------------------------------


def test_a_charity_fund_round_trip(api: Api, network: Network, mint_key: MintKey) -> None:
    opened = api.post(
        "/v1/funds", {"unit_id": network.station, "title": "观音桥社区慈善基金"}, expect=201
    )
    fund = opened.json()["fund_id"]
    assert opened.headers["Location"] == f"/v1/funds/{fund}"
    api.post(
        f"/v1/funds/{fund}/receipts",
        {
            "amount_fen": 500_000,
            "source_kind": "donation",
            "purpose": "重阳节募捐",
            "donor": "张先生",
        },
        idempotency_key="don-1",
        expect=201,
    )
    again = api.post(
        f"/v1/funds/{fund}/receipts",
        {
            "amount_fen": 500_000,
            "source_kind": "donation",
            "purpose": "重阳节募捐",
            "donor": "张先生",
        },
        idempotency_key="don-1",
        expect=201,
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    api.post(
        f"/v1/funds/{fund}/receipts",
        {"amount_fen": 38_800, "source_kind": "charity_sale", "purpose": "手工艺品义卖"},
        expect=201,
    )
    paid = api.post(
        f"/v1/funds/{fund}/disbursements",
        {
            "amount_fen": 120_000,
            "purpose_kind": "meal_subsidy",
            "purpose": "低收入老人助餐补贴",
            "approved_by": "社区主任",
            "beneficiaries": 24,
        },
        expect=201,
    ).json()
    assert paid["balance_fen"] == 500_000 + 38_800 - 120_000

    over = api.post(
        f"/v1/funds/{fund}/disbursements",
        {
            "amount_fen": 1_000_000,
            "purpose_kind": "hardship_relief",
            "purpose": "困难帮扶",
            "approved_by": "社区主任",
        },
        expect=409,
    )
    assert over.headers["content-type"].startswith("application/problem+json")
    assert over.json()["code"] == "insufficient-funds"
    floats = api.post(
        f"/v1/funds/{fund}/receipts",
        {"amount_fen": 10.5, "source_kind": "donation", "purpose": "x"},
        expect=422,
    )
    assert floats.json()["status"] == 422
    api.post(
        f"/v1/funds/{fund}/disbursements",
        {"amount_fen": 100, "purpose_kind": "other", "purpose": "x"},
        expect=422,
    )  # no approver
    outsider = mint_key("unit_admin", network.other_institute)
    forbidden = api.post(
        f"/v1/funds/{fund}/disbursements",
        {"amount_fen": 1, "purpose_kind": "other", "purpose": "x", "approved_by": "y"},
        key=outsider,
        expect=403,
    )
    assert forbidden.json()["code"] == "forbidden"

    view = api.get(f"/v1/funds/{fund}").json()
    assert (view["balance_fen"], view["total_in_fen"], view["total_out_fen"]) == (
        418_800,
        538_800,
        120_000,
    )
    assert [(m["direction"], m["kind"]) for m in view["movements"]] == [
        ("in", "donation"),
        ("in", "charity_sale"),
        ("out", "meal_subsidy"),
    ]
    position = paid["position"]
    for unit in (network.station, network.institute, network.center):
        figures = _metrics(api, unit, position)
        assert (figures["fund_in_fen"], figures["fund_out_fen"]) == (538_800, 120_000)
        assert figures["fund_net_fen"] == 418_800
    assert _metrics(api, network.other_institute, position)["fund_in_fen"] == 0
    audit = api.get("/v1/audit", unit_id=network.station, min_position=position).json()
    fund_rows = [i for i in audit["items"] if i["aggregate_type"] == "Fund"]
    assert [i["event_type"] for i in fund_rows] == [
        "Opened",
        "MoneyReceived",
        "MoneyReceived",
        "MoneyDisbursed",
    ]
    assert "donor" not in fund_rows[1]["summary"]
    assert "张先生" not in str(audit)
    assert fund_rows[3]["summary"]["approved_by"] == "社区主任"


# -- wishes -----------------------------------------------------------------------------


def test_a_micro_wish_round_trip(api: Api, network: Network, mint_key: MintKey) -> None:
    volunteer = api.register(network.station)
    posted = api.post(
        "/v1/wishes",
        {
            "unit_id": network.station,
            "title": "一个新书包",
            "description": "三年级",
            "resident_ref": "档案-0042",
            "points": 12,
        },
        expect=201,
    )
    wish = posted.json()["wish_id"]
    assert posted.headers["Location"] == f"/v1/wishes/{wish}"
    other = api.post(
        "/v1/wishes",
        {"unit_id": network.station, "title": "冬季棉衣", "resident_ref": "档案-0043"},
        expect=201,
    ).json()["wish_id"]
    api.post(f"/v1/wishes/{other}/cancel", {"reason": "已由亲属解决"}, expect=200)

    early = api.post(f"/v1/wishes/{wish}/confirm", expect=409)
    assert early.json()["code"] == "not-fulfilled"
    api.post(f"/v1/wishes/{wish}/claims", {"volunteer_id": volunteer}, expect=200)
    taken = api.post(f"/v1/wishes/{wish}/claims", {"claimant_ref": "党支部"}, expect=409)
    assert taken.json()["code"] == "already-claimed"
    api.post(f"/v1/wishes/{wish}/release", expect=200)
    api.post(f"/v1/wishes/{wish}/claims", {"volunteer_id": volunteer}, expect=200)
    api.post(f"/v1/wishes/{wish}/claims", {}, expect=422)
    outsider = mint_key("service", network.other_station)
    api.post(f"/v1/wishes/{wish}/fulfil", {"note": "x"}, key=outsider, expect=403)
    api.post(f"/v1/wishes/{wish}/fulfil", {"note": "书包已送到"}, expect=200)
    confirmed = api.post(f"/v1/wishes/{wish}/confirm", idempotency_key="cw-1", expect=200)
    replay = api.post(f"/v1/wishes/{wish}/confirm", idempotency_key="cw-1", expect=200)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == {**confirmed.json(), "replayed": True}
    body = confirmed.json()
    assert (body["status"], body["points"]) == ("confirmed", 12)
    again = api.post(f"/v1/wishes/{wish}/confirm", expect=409)
    assert again.json()["code"] == "already-confirmed"
    assert api.get(f"/v1/passbooks/{volunteer}").json()["balance"] == 12

    staff = api.get(f"/v1/wishes/{wish}").json()
    assert (staff["resident_ref"], staff["claims"]) == ("档案-0042", 2)
    auditor = mint_key("auditor")
    assert api.get(f"/v1/wishes/{wish}", key=auditor).json()["resident_ref"] is None

    position = body["position"]
    listed = api.get(
        "/v1/wishes", unit_id=network.institute, status="confirmed", min_position=position
    ).json()
    assert [w["wish_id"] for w in listed["items"]] == [wish]
    assert "resident_ref" not in listed["items"][0]
    everything = api.get("/v1/wishes", unit_id=network.station, min_position=position).json()
    assert {w["status"] for w in everything["items"]} == {"confirmed", "cancelled"}
    assert api.get("/v1/wishes", unit_id=network.other_institute).json()["items"] == []
    api.get("/v1/wishes", unit_id=network.station, key=outsider, expect=403)

    for unit in (network.station, network.center):
        figures = _metrics(api, unit, position)
        assert (figures["wishes_posted"], figures["wishes_fulfilled"]) == (2, 1)
        assert figures["wishes_cancelled"] == 1
        assert figures["points_awarded"] == 12
    assert _audit_types(api, network.station, position, "Wish") == [
        "Posted",
        "Posted",
        "Cancelled",
        "Claimed",
        "ClaimReleased",
        "Claimed",
        "Fulfilled",
        "Confirmed",
    ]
    audit = api.get("/v1/audit", volunteer_id=volunteer, min_position=position).json()
    assert "Confirmed" in [i["event_type"] for i in audit["items"]]
    assert "档案-0042" not in str(api.get("/v1/audit", min_position=position).json())


# -- venture calls ----------------------------------------------------------------------


def test_a_venture_call_round_trip(
    api: Api, network: Network, clock: Clock, mint_key: MintKey
) -> None:
    deadline = clock.now + timedelta(days=20)
    opened = api.post(
        "/v1/venture-calls",
        {
            "unit_id": network.institute,
            "title": "2026年公益创投大赛",
            "budget_fen": 1_000_000,
            "deadline": deadline.isoformat(),
        },
        expect=201,
    )
    call = opened.json()["call_id"]
    assert opened.headers["Location"] == f"/v1/venture-calls/{call}"
    base = f"/v1/venture-calls/{call}/projects"
    a = api.post(
        base,
        {"title": "长者助餐", "organisation": "阳光社工", "requested_fen": 700_000},
        expect=201,
    ).json()["project_id"]
    b = api.post(
        base,
        {"title": "四点半课堂", "organisation": "青年志愿者协会", "requested_fen": 500_000},
        expect=201,
    ).json()["project_id"]
    api.post(base, {"title": "x", "organisation": "y", "requested_fen": 1.5}, expect=422)
    for project, scores in ((a, (90, 86)), (b, (75,))):
        for n, score in enumerate(scores):
            api.post(
                f"{base}/{project}/scores",
                {"reviewer": f"专家{n}", "score": score},
                expect=200,
            )
    twice = api.post(f"{base}/{a}/scores", {"reviewer": "专家0", "score": 10}, expect=409)
    assert twice.json()["code"] == "already-scored"
    api.post(f"{base}/{a}/scores", {"reviewer": "专家9", "score": 101}, expect=422)
    api.post(f"{base}/{a}/funding", {"amount_fen": 700_000}, expect=200)
    over = api.post(f"{base}/{b}/funding", {"amount_fen": 400_000}, expect=409)
    assert over.json()["code"] == "budget-exceeded"
    funded = api.post(f"{base}/{b}/funding", {"amount_fen": 300_000}, expect=200).json()
    assert funded["funded_total_fen"] == 1_000_000
    outsider = mint_key("unit_admin", network.other_institute)
    api.post(f"{base}/{b}/milestones", {"title": "x"}, key=outsider, expect=403)
    early = api.post(f"{base}/{a}/acceptance", {"final_score": 90}, expect=409)
    assert early.json()["code"] == "no-milestones"
    for project in (a, b):
        api.post(f"{base}/{project}/milestones", {"title": "中期报告"}, expect=200)
        api.post(
            f"{base}/{project}/acceptance",
            {"final_score": 88, "evaluation": "服务成效明显"},
            expect=200,
        )
    not_yet = api.post(f"/v1/venture-calls/{call}/results", {"summary": "x"}, expect=409)
    assert not_yet.json()["code"] == "deadline-not-passed"
    clock.advance(timedelta(days=21))
    published = api.post(
        f"/v1/venture-calls/{call}/results", {"summary": "资助2个项目"}, expect=200
    ).json()
    assert published["status"] == "published"
    closed = api.post(base, {"title": "x", "organisation": "y", "requested_fen": 1}, expect=409)
    assert closed.json()["code"] == "call-closed"

    view = api.get(f"/v1/venture-calls/{call}").json()
    assert (view["status"], view["remaining_fen"]) == ("published", 0)
    first = view["projects"][0]
    assert (first["average_score"], first["funded_fen"], first["final_score"]) == (
        88.0,
        700_000,
        88,
    )
    assert [s["score"] for s in first["scores"]] == [90, 86]
    assert first["milestones"][0]["title"] == "中期报告"
    api.get(f"/v1/venture-calls/{call}", key=mint_key("service", network.other_station), expect=403)

    position = published["position"]
    for unit in (network.institute, network.center):
        figures = _metrics(api, unit, position)
        assert figures["venture_projects_submitted"] == 2
        assert (figures["venture_projects_funded"], figures["venture_funded_fen"]) == (
            2,
            1_000_000,
        )
    assert _metrics(api, network.station, position)["venture_projects_funded"] == 0
    types = _audit_types(api, network.institute, position, "VentureCall")
    assert types[0] == "Opened" and types[-1] == "ResultsPublished"
    assert types.count("ProjectScored") == 3 and types.count("ProjectFunded") == 2
