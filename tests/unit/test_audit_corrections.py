"""Corrections of service records: requested, decided by an admin of the activity's
subtree, approved as compensating events (never edits), counted in the period of
the service they correct."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from domain.activities import Activity
from domain.corrections import CorrectionStatus, ServiceCorrectionRequest
from domain.errors import ConflictError
from domain.passbook import Passbook
from projections import leaderboard, unit_metrics
from services import commands as c
from services.audit_replay import as_of, statement
from services.bootstrap import Platform
from services.principals import ForbiddenError, Principal, Role
from tests.unit.audit_fixtures import audit_platform_fixture, catch_up, district_fixture  # noqa: F401 - fixtures
from tests.unit.audit_scenario import MARCH, NOVEMBER, District

pytestmark = pytest.mark.usefixtures("audit_platform")


def _request(d: District, who: str, hours: str, principal: Principal | None = None) -> UUID:
    cmd = c.RequestServiceCorrection(
        activity_id=d.activities["march_s1"],
        volunteer_id=d.volunteers[who],
        hours=Decimal(hours),
        reason="签退漏记",
    )
    result = d.run(cmd) if principal is None else d.run(cmd, principal)
    return UUID(result["correction_id"])


def _month(platform: Platform, vid: UUID, key: str) -> tuple[int, int] | None:
    conn = platform.runners["leaderboard"].store.reader()
    found = leaderboard.rank_of(conn, str(vid), period="month", period_key=key)
    return None if found is None else (found[1].points, found[1].minutes)


def test_a_backdated_correction_changes_march_not_november(
    audit_platform: Platform, district: District
) -> None:
    d = district
    li = d.volunteers["li"]
    d.at(NOVEMBER)
    correction = _request(d, "li", "2")  # li's 3 h measured; should have been 2 h
    result = d.run(c.ApproveServiceCorrection(correction_id=correction, note="核实签到表"))
    assert (result["old_minutes"], result["new_minutes"], result["points_delta"]) == (180, 120, -10)
    catch_up(audit_platform)

    assert _month(audit_platform, li, "2026-03") == (20, 120)
    assert _month(audit_platform, li, "2026-11") is None
    conn = audit_platform.runners["unit_metrics"].store.reader()
    march = unit_metrics.metrics(conn, str(d.units["S1"]), "month", "2026-03")
    november = unit_metrics.metrics(conn, str(d.units["S1"]), "month", "2026-11")
    assert (march.service_minutes, march.points_awarded, march.points_deducted) == (240, 60, 10)
    assert (november.service_minutes, november.points_deducted) == (0, 0)

    # the original confirmation stays; the correction is a new event beside it
    events = list(d.app.events.get(d.activities["march_s1"]))
    confirmed = [e for e in events if isinstance(e, Activity.ServiceConfirmed)]
    corrected = [e for e in events if isinstance(e, Activity.ServiceCorrected)]
    assert [e.minutes for e in confirmed if e.volunteer_id == li] == [180]
    assert [(e.old_minutes, e.new_minutes, e.correction_id) for e in corrected] == [
        (180, 120, correction)
    ]
    assert corrected[0].service_at == MARCH + timedelta(hours=5)
    request: ServiceCorrectionRequest = d.app.repository.get(correction)
    assert isinstance(request, ServiceCorrectionRequest)
    assert request.status == CorrectionStatus.APPROVED

    # as-of answers before and after are both explainable
    before, _, _ = as_of.leaderboard_as_of(
        d.app.recorder, NOVEMBER - timedelta(days=1), period="month", period_key="2026-03"
    )
    after, _, _ = as_of.leaderboard_as_of(
        d.app.recorder, NOVEMBER + timedelta(days=1), period="month", period_key="2026-03"
    )
    assert {e.volunteer_id: e.minutes for e in before}[str(li)] == 180
    assert {e.volunteer_id: e.minutes for e in after}[str(li)] == 120

    # the statement books the debit in November and names the service's March
    passbook_events = list(d.app.events.get(Passbook.create_id(li)))
    nov = statement.statement(passbook_events, start=NOVEMBER - timedelta(days=1))
    assert (nov.opening_balance, nov.closing_balance) == (30, 20)
    [line] = nov.entries
    assert (line.type, line.points, line.business_at) == (
        "correction",
        -10,
        MARCH + timedelta(hours=5),
    )


def test_an_increase_is_a_backdated_award(audit_platform: Platform, district: District) -> None:
    d = district
    wang = d.volunteers["wang"]
    d.at(NOVEMBER)
    correction = _request(d, "wang", "3")
    result = d.run(c.ApproveServiceCorrection(correction_id=correction))
    assert result["points_delta"] == 10
    assert result["balance"] == 15
    catch_up(audit_platform)
    assert _month(audit_platform, wang, "2026-03") == (40, 180)
    passbook: Passbook = d.app.repository.get(Passbook.create_id(wang))
    assert passbook.earned == 30
    assert passbook.earned_minutes == 180


def test_rejection_leaves_the_record_alone(district: District) -> None:
    d = district
    correction = _request(d, "li", "2")
    d.run(c.RejectServiceCorrection(correction_id=correction, reason="签到表显示3小时"))
    activity: Activity = d.app.repository.get(d.activities["march_s1"])
    assert activity.attendance[d.volunteers["li"]].minutes == 180
    with pytest.raises(ConflictError) as err:
        d.run(c.ApproveServiceCorrection(correction_id=correction))
    assert err.value.code == "correction-decided"


def test_who_may_ask_and_who_may_decide(district: District) -> None:
    d = district
    s1, s2 = d.units["S1"], d.units["S2"]
    station_app = Principal("svc", "station app", Role.SERVICE, s1)
    other_admin = Principal("ua2", "S2 admin", Role.UNIT_ADMIN, s2)
    s1_admin = Principal("ua1", "S1 admin", Role.UNIT_ADMIN, s1)
    auditor = Principal("aud", "auditor", Role.AUDITOR)
    with pytest.raises(ForbiddenError):
        _request(d, "li", "2", auditor)
    correction = _request(d, "li", "2", station_app)
    for outsider in (station_app, other_admin, auditor):
        with pytest.raises(ForbiddenError):
            d.run(c.ApproveServiceCorrection(correction_id=correction), outsider)
    d.run(c.ApproveServiceCorrection(correction_id=correction), s1_admin)


def test_points_already_spent_cannot_be_taken_back(district: District) -> None:
    d = district
    correction = _request(d, "wang", "0.5")  # 20 -> 5 points, but wang has 5 left
    with pytest.raises(ConflictError) as err:
        d.run(c.ApproveServiceCorrection(correction_id=correction))
    assert err.value.code == "insufficient-points"
    request: ServiceCorrectionRequest = d.app.repository.get(correction)
    assert request.status == CorrectionStatus.REQUESTED  # nothing half-written
    activity: Activity = d.app.repository.get(d.activities["march_s1"])
    assert activity.attendance[d.volunteers["wang"]].minutes == 120


@pytest.mark.parametrize(("hours", "code"), [("3", "unchanged"), ("5", "hours-exceed-attendance")])
def test_bad_requests_are_refused(district: District, hours: str, code: str) -> None:
    with pytest.raises(ConflictError if code == "unchanged" else Exception) as err:
        _request(district, "li", hours)
    assert getattr(err.value, "code", None) == code
