"""Random command sequences on an activity keep its invariants (hypothesis stateful).

Sign-ups, cancellations, check-ins, check-outs, confirmations and the passing of
time, in any order, with any of a handful of volunteers: the activity never holds
more enrolled volunteers than its capacity, its waitlist is promoted first come
first served, no confirmation credits more than the attended time (or, without
check-in, the activity's length) or the hour cap, and each confirmation earns
exactly one award.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.activities import Activity, ServiceRecord, SignupStatus
from domain.errors import DomainError
from domain.passbook import AwardKind, Passbook
from domain.points import ExpiryPolicy, PointsRule
from domain.volunteers import Volunteer
from tests.unit import domain_builders as build
from tests.unit.property_settings import PROPERTY_SETTINGS

PEOPLE = 6
who = st.integers(min_value=0, max_value=PEOPLE - 1)
# the k-th volunteer who signed up (so that most attendance commands are meaningful)
attendee = st.integers(min_value=0, max_value=PEOPLE - 1)
offsets = st.integers(min_value=-90, max_value=240)  # minutes from the start


class ActivityMachine(RuleBasedStateMachine):
    @initialize(
        capacity=st.integers(min_value=1, max_value=3),
        cap=st.one_of(st.none(), st.integers(min_value=30, max_value=240)),
    )
    def publish(self, capacity: int, cap: int | None) -> None:
        _, _, station = build.network()
        self.volunteers: list[Volunteer] = [build.volunteer(station, n) for n in range(PEOPLE)]
        self.passbooks = {v.id: Passbook.open_for(v.id, v.home_path) for v in self.volunteers}
        self.activity: Activity = build.activity(station, capacity=capacity, hour_cap_minutes=cap)
        self.now = build.T0
        # the model: sign-up order, and what was confirmed
        self.queue: list[UUID] = []  # waitlisted, in the order they signed up
        self.confirmed: dict[UUID, ServiceRecord] = {}
        self.rule = PointsRule()

    # -- commands --------------------------------------------------------------------

    @rule(n=who)
    def sign_up(self, n: int) -> None:
        volunteer = self.volunteers[n]
        had_room = self.activity.places_left > 0
        try:
            status = self.activity.sign_up(volunteer, self.now)
        except DomainError:
            return
        if had_room:
            assert status == SignupStatus.ENROLLED
        else:
            assert status == SignupStatus.WAITLISTED
            self.queue.append(volunteer.id)

    def _attendee(self, k: int) -> UUID | None:
        signed_up = list(self.activity.attendance)
        return signed_up[k % len(signed_up)] if signed_up else None

    @rule(k=attendee)
    def cancel(self, k: int) -> None:
        vid = self._attendee(k)
        if vid is None:
            return
        was_enrolled = vid in self.activity.enrolled
        try:
            promoted = self.activity.cancel_signup(vid, "有事", self.now)
        except DomainError:
            return
        if vid in self.queue:
            self.queue.remove(vid)
        if was_enrolled and self.queue and self.now < self.activity.ends_at:
            assert promoted == self.queue.pop(0)  # first come, first promoted
        else:
            assert promoted is None

    @rule(k=attendee, offset=offsets)
    def check_in(self, k: int, offset: int) -> None:
        vid = self._attendee(k)
        at = self.activity.starts_at + timedelta(minutes=offset)
        if vid is None:
            return
        try:
            self.activity.check_in(vid, at)
        except DomainError:
            return
        assert vid in self.activity.enrolled

    @rule(k=attendee, offset=offsets)
    def check_out(self, k: int, offset: int) -> None:
        vid = self._attendee(k)
        at = self.activity.starts_at + timedelta(minutes=offset)
        if vid is None:
            return
        try:
            self.activity.check_out(vid, at)
        except DomainError:
            return

    @rule(
        k=attendee,
        minutes=st.one_of(
            st.none(),
            st.sampled_from([30, 60, 90, 120, 180, 181, 240]),
            st.integers(min_value=-10, max_value=600),
        ),
    )
    def confirm(self, k: int, minutes: int | None) -> None:
        vid = self._attendee(k)
        if vid is None:
            return
        try:
            record = self.activity.confirm_service(
                vid, minutes=minutes, people_served=1, now=self.now
            )
        except DomainError:
            return
        assert vid not in self.confirmed
        self.confirmed[vid] = record
        passbook = self.passbooks[vid]
        points = self.rule.points_for(
            minutes=record.minutes,
            points_per_hour=record.points_per_hour,
            source=record.source,
            category=record.category,
        )
        passbook.award(points=points, kind=AwardKind.SERVICE, source_id=record.confirmation_id,
                       reason="服务确认", now=self.now, policy=ExpiryPolicy(),
                       activity_id=record.activity_id, minutes=record.minutes)  # fmt: skip

    @rule(n=who)
    def award_again(self, n: int) -> None:
        """A retried award for a confirmation is refused: one award per confirmation."""
        vid = self.volunteers[n].id
        record = self.confirmed.get(vid)
        if record is None:
            return
        try:
            self.passbooks[vid].award(points=1, kind=AwardKind.SERVICE,
                                      source_id=record.confirmation_id, reason="重复",
                                      now=self.now, policy=ExpiryPolicy())  # fmt: skip
        except DomainError as exc:
            assert exc.code == "already-awarded"
        else:
            raise AssertionError("a confirmation was awarded twice")

    @rule(minutes=st.one_of(st.sampled_from([60, 12 * 60, 24 * 60]), st.integers(1, 3 * 24 * 60)))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @precondition(lambda self: self.now >= self.activity.starts_at)
    @rule()
    def close(self) -> None:
        try:
            self.activity.close(self.now)
        except DomainError:
            return

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def capacity_is_never_exceeded(self) -> None:
        assert len(self.activity.enrolled) <= self.activity.capacity

    @invariant()
    def the_waitlist_is_first_come_first_served(self) -> None:
        assert self.activity.waitlist == self.queue
        assert not set(self.activity.waitlist) & set(self.activity.enrolled)

    @invariant()
    def nobody_is_credited_beyond_attendance_or_the_cap(self) -> None:
        activity = self.activity
        length = int((activity.ends_at - activity.starts_at).total_seconds() // 60)
        for vid, record in self.confirmed.items():
            attended = activity.attended_minutes(vid)
            assert 0 < record.minutes <= (attended if attended is not None else length)
            if activity.hour_cap_minutes is not None:
                assert record.minutes <= activity.hour_cap_minutes

    @invariant()
    def each_confirmation_earns_exactly_one_award(self) -> None:
        for vid, passbook in self.passbooks.items():
            record = self.confirmed.get(vid)
            service_lots = [lot for lot in passbook.lots.values() if lot.kind == AwardKind.SERVICE]
            assert len(service_lots) == (1 if record is not None else 0)
            if record is not None:
                assert passbook.has_award_for(record.confirmation_id)
                assert passbook.earned_minutes == record.minutes


ActivityMachine.TestCase.settings = PROPERTY_SETTINGS
TestActivityProperties = ActivityMachine.TestCase
