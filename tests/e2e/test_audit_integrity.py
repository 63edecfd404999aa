"""The auditor's integrity tools over HTTP: histories from the store, the access
log that records reading them, service certificates (JSON, HTML, verification),
streamed exports, chain verification, and who may use them."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.audit import AccessLog
from tests.conftest import Clock, MintKey
from tests.e2e.conftest import Api, Network

pytestmark = pytest.mark.e2e

TZ = ZoneInfo("Asia/Shanghai")

# the volunteer, the two activities they served in and the last confirmation's position
Served = tuple[str, list[str], int]


def _serve(
    api: Api, station: str, volunteer: str, clock: Clock, minutes: int = 120
) -> tuple[str, int]:
    """An activity the volunteer served in: returns it and the confirmation's position."""
    starts_at = clock.now + timedelta(minutes=30)
    activity = api.publish(station, starts_at, capacity=5, points_per_hour=10)
    api.post(f"/v1/activities/{activity}/signups", {"volunteer_id": volunteer}, expect=201)
    clock.advance(timedelta(hours=4))
    api.post(
        f"/v1/activities/{activity}/checkins",
        {"volunteer_id": volunteer, "at": starts_at.isoformat()},
        expect=201,
    )
    api.post(
        f"/v1/activities/{activity}/checkouts",
        {"volunteer_id": volunteer, "at": (starts_at + timedelta(minutes=minutes)).isoformat()},
        expect=201,
    )
    confirmed = api.post(
        f"/v1/activities/{activity}/confirmations",
        {"volunteer_id": volunteer, "people_served": 3},
        expect=201,
    ).json()
    return activity, confirmed["position"]


@pytest.fixture
def served(api: Api, network: Network, clock: Clock) -> Served:
    volunteer = api.register(network.station, name="王秀英")
    first, _ = _serve(api, network.station, volunteer, clock, minutes=120)
    second, position = _serve(api, network.station, volunteer, clock, minutes=90)
    return volunteer, [first, second], position


def test_history_of_a_volunteer_is_read_from_the_store_and_the_read_is_logged(
    api: Api, network: Network, mint_key: MintKey, served: Served
) -> None:
    volunteer, _, _ = served
    auditor = mint_key("auditor", name="审计员")
    body = api.get(f"/v1/audit/history/{volunteer}", key=auditor, purpose="年度审计").json()
    [entry] = body["entries"]
    assert (entry["type"], entry["aggregate_type"], entry["version"]) == (
        "Registered",
        "Volunteer",
        1,
    )
    assert entry["payload"]["name"] == "王秀英"
    assert entry["actor"].startswith("key:")
    assert len(entry["chain_hash"]) == 64

    log = api.get("/v1/audit/access-log", params={"from": _today(api)}).json()["entries"]
    assert [(e["subject_id"], e["view"], e["purpose"]) for e in log] == [
        (volunteer, "history", "年度审计")
    ]
    assert log[0]["actor"] == f"key:{auditor.split('_')[1]}"  # the auditor who looked


def _today(api: Api) -> str:
    return api.platform.app.clock().astimezone(TZ).date().isoformat()


def test_everything_about_a_volunteer(api: Api, served: Served) -> None:
    volunteer, activities, position = served
    body = api.get(
        f"/v1/audit/history/{volunteer}", everything="true", min_position=position
    ).json()
    types = [(e["aggregate_type"], e["type"]) for e in body["entries"]]
    assert types[0] == ("Volunteer", "Registered")
    assert ("Passbook", "Opened") in types
    assert types.count(("Activity", "ServiceConfirmed")) == 2
    assert types.count(("Passbook", "PointsAwarded")) == 2
    assert ("Activity", "Published") not in types  # not about this volunteer
    positions = [e["position"] for e in body["entries"]]
    assert positions == sorted(positions)
    assert set(activities) <= set(body["aggregates"])


def test_history_of_an_activity_and_an_unknown_aggregate(api: Api, served: Served) -> None:
    _, activities, _ = served
    entries = api.get(f"/v1/audit/history/{activities[0]}").json()["entries"]
    assert [e["type"] for e in entries][:2] == ["Published", "SignedUp"]
    confirmed = next(e for e in entries if e["type"] == "ServiceConfirmed")
    assert confirmed["payload"]["hours_source"] == "checkin"
    missing = api.get("/v1/audit/history/00000000-0000-4000-8000-000000000000", expect=404)
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_certificate_json_html_and_verification(api: Api, network: Network, served: Served) -> None:
    volunteer, activities, _ = served
    day = _today(api)
    params = {"volunteer_id": volunteer, "from": "2020-01-01", "to": day}
    cert = api.get("/v1/audit/certificates", params=params).json()
    assert cert["service_count"] == 2
    assert cert["total_minutes"] == 210
    assert cert["total_hours"] == "3.50"
    assert cert["issuing_unit_id"] == network.station
    assert [s["activity_id"] for s in cert["services"]] == activities
    assert cert["range"]["chain_hash"] == cert["services"][-1]["event_hash"]
    assert cert["number"].startswith("CVS-20200101-")
    again = api.get("/v1/audit/certificates", params=params).json()
    assert again["number"] == cert["number"]  # the same history, the same number

    page = api.get("/v1/audit/certificates", format="html", params=params)
    assert page.headers["content-type"].startswith("text/html")
    assert "志愿服务记录证明" in page.text
    assert cert["number"] in page.text
    assert "王秀英" in page.text

    check = api.post("/v1/audit/certificates/verifications", cert, expect=200).json()
    assert check["ok"], check

    forged = json.loads(json.dumps(cert))
    forged["total_minutes"] = 600
    check = api.post("/v1/audit/certificates/verifications", forged, expect=200).json()
    assert not check["ok"]
    assert not check["signature_valid"]
    assert "total_minutes" in check["differences"]

    outside = api.get(
        "/v1/audit/certificates",
        volunteer_id=volunteer,
        params={"from": "2020-01-01", "to": "2020-12-31"},
    ).json()
    assert outside["service_count"] == 0


def test_certificate_reads_are_logged(api: Api, served: Served) -> None:
    volunteer, _, _ = served
    api.get(
        "/v1/audit/certificates",
        volunteer_id=volunteer,
        purpose="开具证明",
        params={"from": "2020-01-01", "to": _today(api)},
    )
    log = api.get("/v1/audit/access-log", params={"from": _today(api)}).json()["entries"]
    assert [(e["view"], e["purpose"]) for e in log] == [("certificate", "开具证明")]


def test_exports_stream_the_audit_trail(api: Api, served: Served) -> None:
    volunteer, _, position = served
    trail = api.get("/v1/audit", volunteer_id=volunteer, min_position=position, limit=1000)
    expected = [item["position"] for item in trail.json()["items"]]
    assert expected

    jsonl = api.get("/v1/audit/export", format="jsonl", volunteer_id=volunteer)
    assert jsonl.headers["content-type"].startswith("application/jsonl")
    rows = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["position"] for r in rows] == expected
    assert all(r["volunteer_id"] == volunteer for r in rows)
    assert "name" not in rows[0]["summary"]  # the trail's rows carry no personal fields

    text = api.get("/v1/audit/export", format="csv", volunteer_id=volunteer).text
    table = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["position"]) for r in table] == expected
    assert table[0]["event_type"] == "Registered"


def test_export_of_everything_spans_many_pages(api: Api, network: Network, served: Served) -> None:
    _, _, position = served
    api.get("/v1/audit", min_position=position, limit=1)  # the trail has caught up
    export = api.get("/v1/audit/export", format="jsonl")
    assert int(export.headers["X-Civic-Position"]) == position
    rows = [json.loads(line) for line in export.text.splitlines()]
    # every event once, whatever the page size
    assert [r["position"] for r in rows] == list(range(1, position + 1))


def test_verify_over_http(api: Api, served: Served) -> None:
    report = api.get("/v1/audit/verify").json()
    assert report["ok"]
    assert report["first_break"] is None
    assert report["events_checked"] == report["head_position"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/audit/verify", {}),
        ("/v1/audit/checkpoints", {}),
        ("/v1/audit/history/{volunteer}", {}),
        ("/v1/audit/export", {"format": "csv"}),
        ("/v1/audit/access-log", {"from": "2026-01-01"}),
        ("/v1/audit/certificates", {"from": "2026-01-01", "to": "2026-12-31"}),
    ],
)
def test_unit_admins_are_refused(
    api: Api, network: Network, mint_key: MintKey, served: Served, path: str, params: dict[str, str]
) -> None:
    volunteer, _, _ = served
    unit_admin = mint_key("unit_admin", network.center)
    if "certificates" in path:
        params = {**params, "volunteer_id": volunteer}
    response = api.get(path.format(volunteer=volunteer), key=unit_admin, expect=403, params=params)
    assert response.json()["code"] == "forbidden"


def test_only_admins_read_the_access_log(api: Api, mint_key: MintKey, served: Served) -> None:
    volunteer, _, _ = served
    auditor = mint_key("auditor")
    api.get("/v1/audit/access-log", key=auditor, expect=403, params={"from": "2026-01-01"})
    api.get(f"/v1/audit/history/{volunteer}", key=auditor)  # recorded in today's log
    log_id = AccessLog.create_id(date.fromisoformat(_today(api)))
    api.get(f"/v1/audit/history/{log_id}", key=auditor, expect=403)
    entries = api.get(f"/v1/audit/history/{log_id}").json()["entries"]
    assert [e["type"] for e in entries] == ["Opened", "PersonalDataViewed"]
    api.get("/v1/audit/verify", key=auditor, expect=200)
