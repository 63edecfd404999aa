from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic

from domain.activities import Activity, SignupStatus
from domain.errors import ConflictError, RuleViolationError
from domain.points import HoursSource
from tests.unit.domain_builders import T0, activity, network, volunteer

START = T0 + timedelta(days=1)
BEFORE = T0


def test_sign_ups_fill_capacity_then_the_waitlist_promotes_in_order() -> None:
    _, _, station = network()
    a = activity(station, capacity=2)
    v1, v2, v3, v4 = (volunteer(station, n) for n in range(1, 5))
    assert a.sign_up(v1, BEFORE) == SignupStatus.ENROLLED
    assert a.sign_up(v2, BEFORE) == SignupStatus.ENROLLED
    assert a.sign_up(v3, BEFORE) == SignupStatus.WAITLISTED
    assert a.sign_up(v4, BEFORE) == SignupStatus.WAITLISTED
    assert a.places_left == 0
    promoted = a.cancel_signup(v1.id, "sick", BEFORE)
    assert promoted == v3.id
    assert a.enrolled == [v2.id, v3.id]
    assert a.waitlist == [v4.id]
    # a waitlisted volunteer leaving promotes nobody
    assert a.cancel_signup(v4.id, "busy", BEFORE) is None
    names = [type(e).__name__ for e in a.collect_events()]
    assert names[-3:] == ["SignupCancelled", "PromotedFromWaitlist", "SignupCancelled"]


def test_no_double_sign_up_and_no_sign_up_after_start() -> None:
    _, _, station = network()
    a = activity(station)
    v1, v2 = volunteer(station, 1), volunteer(station, 2)
    a.sign_up(v1, BEFORE)
    with pytest.raises(ConflictError) as err:
        a.sign_up(v1, BEFORE)
    assert err.value.code == "already-signed-up"
    with pytest.raises(ConflictError) as err:
        a.sign_up(v2, START)
    assert err.value.code == "started"


def test_suspended_volunteers_cannot_sign_up() -> None:
    _, _, station = network()
    a, v = activity(station), volunteer(station)
    v.suspend("review")
    with pytest.raises(ConflictError):
        a.sign_up(v, BEFORE)


def test_hours_from_check_in_and_out_never_exceed_attended_time() -> None:
    _, _, station = network()
    a, v = activity(station), volunteer(station)
    a.sign_up(v, BEFORE)
    with pytest.raises(ConflictError):
        a.check_in(v.id, START - timedelta(hours=2))  # too early
    a.check_in(v.id, START)
    with pytest.raises(RuleViolationError):
        a.check_out(v.id, START)
    a.check_out(v.id, START + timedelta(minutes=100))
    assert a.attended_minutes(v.id) == 100
    with pytest.raises(RuleViolationError) as err:
        a.confirm_service(v.id, minutes=101, people_served=1, now=START + timedelta(hours=4))
    assert err.value.code == "hours-exceed-attendance"
    record = a.confirm_service(v.id, minutes=None, people_served=4, now=START + timedelta(hours=4))
    assert (record.minutes, record.source) == (100, HoursSource.CHECKIN)
    with pytest.raises(ConflictError) as conflict:
        a.confirm_service(v.id, minutes=10, people_served=0, now=START + timedelta(hours=5))
    assert conflict.value.code == "already-confirmed"


def test_organizer_entered_hours_are_marked_and_bounded_by_the_activity() -> None:
    _, _, station = network()
    a, v = activity(station), volunteer(station)
    a.sign_up(v, BEFORE)
    with pytest.raises(RuleViolationError) as err:
        a.confirm_service(v.id, minutes=None, people_served=0, now=START + timedelta(hours=4))
    assert err.value.code == "hours-required"
    with pytest.raises(RuleViolationError):
        a.confirm_service(v.id, minutes=181, people_served=0, now=START + timedelta(hours=4))
    record = a.confirm_service(v.id, minutes=120, people_served=0, now=START + timedelta(hours=4))
    assert record.source == HoursSource.ORGANIZER


def test_hour_cap_applies() -> None:
    _, _, station = network()
    a, v = activity(station, hour_cap_minutes=60), volunteer(station)
    a.sign_up(v, BEFORE)
    with pytest.raises(RuleViolationError) as err:
        a.confirm_service(v.id, minutes=90, people_served=0, now=START + timedelta(hours=4))
    assert err.value.code == "hours-exceed-cap"


def test_checked_in_but_not_out_cannot_be_confirmed() -> None:
    _, _, station = network()
    a, v = activity(station), volunteer(station)
    a.sign_up(v, BEFORE)
    a.check_in(v.id, START)
    with pytest.raises(ConflictError) as err:
        a.confirm_service(v.id, minutes=30, people_served=0, now=START + timedelta(hours=4))
    assert err.value.code == "not-checked-out"


def test_attendance_is_frozen_once_the_service_is_confirmed() -> None:
    """Found by the stateful property test: organizer-entered hours confirmed, then a
    one-minute check-in and check-out left 30 confirmed minutes over 1 attended."""
    _, _, station = network()
    a, v = activity(station), volunteer(station)
    a.sign_up(v, BEFORE)
    a.confirm_service(v.id, minutes=30, people_served=0, now=START + timedelta(days=1))
    with pytest.raises(ConflictError) as err:
        a.check_in(v.id, START)
    assert err.value.code == "already-confirmed"
    assert a.attended_minutes(v.id) is None

    checked = volunteer(station, 2)
    a.sign_up(checked, BEFORE)
    a.check_in(checked.id, START)
    a.check_out(checked.id, START + timedelta(minutes=45))
    a.confirm_service(checked.id, minutes=None, people_served=1, now=START + timedelta(hours=4))
    with pytest.raises(ConflictError) as again:
        a.check_out(checked.id, START + timedelta(hours=2))
    assert again.value.code == "already-confirmed"
    assert a.attended_minutes(checked.id) == 45


def test_waitlisted_volunteers_cannot_check_in() -> None:
    _, _, station = network()
    a = activity(station, capacity=1)
    v1, v2 = volunteer(station, 1), volunteer(station, 2)
    a.sign_up(v1, BEFORE)
    a.sign_up(v2, BEFORE)
    with pytest.raises(ConflictError) as err:
        a.check_in(v2.id, START)
    assert err.value.code == "waitlisted"


def test_cancelled_activity_refuses_everything_and_confirmed_one_cannot_be_cancelled() -> None:
    _, _, station = network()
    a, v = activity(station), volunteer(station)
    a.cancel("rain")
    with pytest.raises(ConflictError):
        a.sign_up(v, BEFORE)
    b = activity(station)
    b.sign_up(v, BEFORE)
    b.confirm_service(v.id, minutes=60, people_served=0, now=START + timedelta(hours=4))
    with pytest.raises(ConflictError):
        b.cancel("too late")
    with pytest.raises(ConflictError):
        b.close(BEFORE)
    b.close(START + timedelta(hours=4))


def test_bad_publication_is_refused() -> None:
    _, _, station = network()
    with pytest.raises(RuleViolationError):
        Activity.publish(
            unit=station,
            title="x",
            category=activity(station).category,
            starts_at=START,
            ends_at=START,
            location="x",
            capacity=1,
            points_per_hour=1,
        )


def test_version_1_service_confirmations_are_upcast_to_organizer_entered() -> None:
    """Legacy imports stored ServiceConfirmed v1 without ``hours_source``."""
    _, _, station = network()
    a, v = activity(station), volunteer(station)
    a.sign_up(v, BEFORE)
    a.confirm_service(v.id, minutes=60, people_served=2, now=START + timedelta(hours=4))
    current = a.collect_events()[-1]
    transcoder = JSONTranscoder()
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    stored = mapper.to_stored_event(current)
    state = transcoder.decode(stored.state)
    assert state.pop("class_version") == 2
    del state["hours_source"]  # what a version-1 event looked like
    v1 = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=get_topic(Activity.ServiceConfirmed),
        state=transcoder.encode(state),
    )
    upcast = mapper.to_domain_event(v1)
    assert upcast.hours_source == HoursSource.ORGANIZER.value  # type: ignore[attr-defined]
    assert upcast.minutes == 60  # type: ignore[attr-defined]
