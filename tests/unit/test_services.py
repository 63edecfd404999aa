"""Service-layer scenarios, each run on SQLite and on PostgreSQL (when the suite
started the server: ``CIVIC_PG_DSN``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args
from uuid import UUID

import pytest

from domain.activities import Activity
from domain.errors import ConflictError, NotFoundError
from domain.passbook import Passbook
from infra.event_store import GroupCommitSQLiteRecorder
from services import commands as c
from services.application import (
    BatchItem,
    CivicApplication,
    IdempotencyMismatchError,
)
from services.bootstrap import build_application
from services.handlers import HANDLERS
from services.principals import SYSTEM, ForbiddenError, Principal, Role
from tests.conftest import STORES, store_settings

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ID_NUMBERS = ["11010519491231002X", "440524188001010014", "110101199003074477"]


@pytest.fixture(params=STORES)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CivicApplication]:
    with store_settings(request.param, tmp_path) as settings:
        application = build_application(settings)
        application.clock = lambda: NOW
        yield application
        application.close()


def _network(app: CivicApplication) -> dict[str, UUID]:
    ids: dict[str, UUID] = {}
    ids["center"] = UUID(
        app.execute(c.OpenUnit(code="c", name="中心", tier="center"), SYSTEM).result["unit_id"]
    )
    ids["institute"] = UUID(
        app.execute(
            c.OpenUnit(code="i", name="所", tier="institute", parent_id=ids["center"]), SYSTEM
        ).result["unit_id"]
    )
    for s in ("s1", "s2"):
        ids[s] = UUID(
            app.execute(
                c.OpenUnit(code=s, name=s, tier="station", parent_id=ids["institute"]), SYSTEM
            ).result["unit_id"]
        )
    return ids


def _volunteer(app: CivicApplication, station: UUID, n: int = 0) -> UUID:
    cmd = c.RegisterVolunteer(
        home_station_id=station, name=f"志愿者{n}", phone="13800000000", id_number=ID_NUMBERS[n]
    )
    return UUID(app.execute(cmd, SYSTEM).result["volunteer_id"])


def _activity(app: CivicApplication, unit: UUID, capacity: int = 5) -> UUID:
    cmd = c.PublishActivity(
        unit_id=unit,
        title="垃圾分类宣传",
        category="environment",
        starts_at=NOW + timedelta(hours=2),
        ends_at=NOW + timedelta(hours=5),
        location="小区广场",
        capacity=capacity,
        points_per_hour=10,
    )
    return UUID(app.execute(cmd, SYSTEM).result["activity_id"])


def test_confirmation_awards_points_once(app: CivicApplication) -> None:
    ids = _network(app)
    v = _volunteer(app, ids["s1"])
    a = _activity(app, ids["s1"])
    app.execute(c.SignUp(activity_id=a, volunteer_id=v), SYSTEM)
    app.clock = lambda: NOW + timedelta(hours=6)
    app.execute(c.CheckIn(activity_id=a, volunteer_id=v, at=NOW + timedelta(hours=2)), SYSTEM)
    app.execute(c.CheckOut(activity_id=a, volunteer_id=v, at=NOW + timedelta(hours=4)), SYSTEM)
    result = app.execute(c.ConfirmService(activity_id=a, volunteer_id=v), SYSTEM).result
    assert (result["minutes"], result["points"], result["hours_source"]) == (120, 20, "checkin")
    with pytest.raises(ConflictError):
        app.execute(c.ConfirmService(activity_id=a, volunteer_id=v), SYSTEM)
    assert app.repository.get(Passbook.create_id(v)).balance == 20


def test_duplicate_registration_is_refused(app: CivicApplication) -> None:
    ids = _network(app)
    _volunteer(app, ids["s1"])
    with pytest.raises(ConflictError) as err:
        _volunteer(app, ids["s2"])
    assert err.value.code == "already-registered"


def test_idempotent_retry_records_one_event(app: CivicApplication) -> None:
    ids = _network(app)
    cmd = c.RegisterVolunteer(
        home_station_id=ids["s1"], name="李四", phone="13900000000", id_number=ID_NUMBERS[1]
    )
    first = app.execute(cmd, SYSTEM, idempotency_key="reg-1")
    head = app.head()
    again = app.execute(cmd, SYSTEM, idempotency_key="reg-1")
    assert again.replayed and again.result == first.result and again.position == first.position
    assert app.head() == head
    other = cmd.model_copy(update={"name": "王五"})
    with pytest.raises(IdempotencyMismatchError):
        app.execute(other, SYSTEM, idempotency_key="reg-1")


def test_concurrent_retries_of_one_key_record_one_event(app: CivicApplication) -> None:
    ids = _network(app)
    v = _volunteer(app, ids["s1"])
    head = app.head()
    cmd = c.AwardPoints(volunteer_id=v, points=3, reason="文明户评比")
    results = []
    barrier = threading.Barrier(12)

    def go() -> None:
        barrier.wait()
        results.append(app.execute(cmd, SYSTEM, idempotency_key="award-7"))

    threads = [threading.Thread(target=go) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert app.head() == head + 1
    assert len({r.result["award_id"] for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1


def test_batch_commits_good_items_in_one_transaction_and_leaves_no_trace_of_bad(
    app: CivicApplication,
) -> None:
    ids = _network(app)
    v1, v2 = _volunteer(app, ids["s1"], 0), _volunteer(app, ids["s1"], 1)
    a = _activity(app, ids["s1"], capacity=1)
    recorder = app.recorder
    groups = getattr(recorder, "groups_committed", 0)
    items = [
        BatchItem(c.SignUp(activity_id=a, volunteer_id=v1), "b1"),
        BatchItem(c.SignUp(activity_id=a, volunteer_id=v1), "b2"),  # already signed up
        BatchItem(c.SignUp(activity_id=a, volunteer_id=v2), "b3"),  # waitlisted
        BatchItem(c.CancelSignup(activity_id=a, volunteer_id=v1), "b4"),  # promotes v2
        BatchItem(c.SignUp(activity_id=UUID(int=1), volunteer_id=v2), "b5"),  # no such activity
    ]
    outcomes = app.execute_batch(items, SYSTEM)
    assert [o.ok for o in outcomes] == [True, False, True, True, False]
    assert isinstance(outcomes[1].error, ConflictError)
    assert isinstance(outcomes[4].error, NotFoundError)
    assert outcomes[3].result is not None
    assert outcomes[3].result["promoted_volunteer_id"] == str(v2)
    if isinstance(recorder, GroupCommitSQLiteRecorder):
        assert recorder.groups_committed == groups + 1  # one transaction for the batch
    activity: Activity = app.repository.get(a)
    assert activity.enrolled == [v2]
    # the batch is replayable item by item
    again = app.execute_batch(items, SYSTEM)
    assert [o.replayed for o in again] == [True, False, True, True, False]


def test_a_replayed_batch_answers_each_item_with_its_own_result_and_position(
    app: CivicApplication,
) -> None:
    """Over a thousand keyed items (more than one lookup's worth of keys): a retry of
    the batch records nothing and answers each item as it was answered first, its
    own position included, not the batch's last."""
    ids = _network(app)
    vols = [_volunteer(app, ids["s1"], n) for n in range(3)]
    items = [
        BatchItem(c.AwardPoints(volunteer_id=vols[n % 3], points=1 + n % 7, reason="评比"), f"k{n}")
        for n in range(1_100)
    ]
    first = app.execute_batch(items, SYSTEM)
    assert all(o.ok and not o.replayed for o in first)
    positions = [o.position for o in first if o.position is not None]
    assert positions == sorted(positions) and len(set(positions)) == len(items)
    head = app.head()
    # a retry of the batch with one new item in the middle
    items.insert(
        500, BatchItem(c.AwardPoints(volunteer_id=vols[0], points=9, reason="评比"), "new")
    )
    again = app.execute_batch(items, SYSTEM)
    assert app.head() == head + 1
    replayed = again[:500] + again[501:]
    assert all(o.replayed for o in replayed) and not again[500].replayed
    assert [o.result for o in replayed] == [o.result for o in first]
    assert [o.position for o in replayed] == positions


def test_failed_item_in_a_batch_does_not_leak_partial_changes(app: CivicApplication) -> None:
    ids = _network(app)
    v = _volunteer(app, ids["s1"])
    rice = app.execute(
        c.ListReward(unit_id=ids["s1"], name="大米", cost_points=5, stock=3), SYSTEM
    ).result["reward_id"]
    app.execute(c.AwardPoints(volunteer_id=v, points=7, reason="x"), SYSTEM)
    outcomes = app.execute_batch(
        [
            BatchItem(c.Redeem(volunteer_id=v, reward_id=rice)),
            BatchItem(c.Redeem(volunteer_id=v, reward_id=rice)),  # only 2 points left
            BatchItem(c.AwardPoints(volunteer_id=v, points=1, reason="y")),
        ],
        SYSTEM,
    )
    assert [o.ok for o in outcomes] == [True, False, True]
    assert app.repository.get(Passbook.create_id(v)).balance == 3
    assert app.repository.get(UUID(rice)).stock == 2


def test_scoped_keys_act_only_within_their_subtree(app: CivicApplication) -> None:
    ids = _network(app)
    station_key = Principal("k1", "s1 kiosk", Role.SERVICE, ids["s1"])
    institute_admin = Principal("k2", "i admin", Role.UNIT_ADMIN, ids["institute"])
    auditor = Principal("k3", "auditor", Role.AUDITOR)
    v = _volunteer(app, ids["s1"])
    own = _activity(app, ids["s1"])
    other = _activity(app, ids["s2"])
    app.execute(c.SignUp(activity_id=own, volunteer_id=v), station_key)
    with pytest.raises(ForbiddenError):
        app.execute(c.SignUp(activity_id=other, volunteer_id=v), station_key)
    app.execute(c.SignUp(activity_id=other, volunteer_id=v), institute_admin)
    with pytest.raises(ForbiddenError):
        app.execute(c.OpenUnit(code="c2", name="c2", tier="center"), institute_admin)
    with pytest.raises(ForbiddenError):
        app.execute(c.AwardPoints(volunteer_id=v, points=1, reason="x"), auditor)
    with pytest.raises(ForbiddenError):
        app.execute(c.AdjustPoints(volunteer_id=v, delta=5, reason="x"), institute_admin)


def test_racing_for_the_last_item_exactly_one_wins(app: CivicApplication) -> None:
    ids = _network(app)
    volunteers = [_volunteer(app, ids["s1"], n) for n in range(3)]
    for v in volunteers:
        app.execute(c.AwardPoints(volunteer_id=v, points=50, reason="x"), SYSTEM)
    oil = app.execute(
        c.ListReward(unit_id=ids["s1"], name="食用油", cost_points=20, stock=1), SYSTEM
    ).result["reward_id"]
    wins, losses = [], []
    barrier = threading.Barrier(9)

    def go(v: UUID) -> None:
        barrier.wait()
        try:
            wins.append(app.execute(c.Redeem(volunteer_id=v, reward_id=oil), SYSTEM))
        except ConflictError as exc:
            losses.append(exc.code)

    threads = [threading.Thread(target=go, args=(volunteers[n % 3],)) for n in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert losses == ["out-of-stock"] * 8
    assert app.repository.get(UUID(oil)).stock == 0


def test_concurrent_sign_ups_never_exceed_capacity(app: CivicApplication) -> None:
    ids = _network(app)
    volunteers = [_volunteer(app, ids["s1"], n) for n in range(3)]
    a = _activity(app, ids["s1"], capacity=2)
    barrier = threading.Barrier(3)

    def go(v: UUID) -> None:
        barrier.wait()
        app.execute(c.SignUp(activity_id=a, volunteer_id=v), SYSTEM)

    threads = [threading.Thread(target=go, args=(v,)) for v in volunteers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    activity: Activity = app.repository.get(a)
    assert len(activity.enrolled) == 2
    assert len(activity.waitlist) == 1


def test_a_second_process_writing_the_same_store_never_yields_stale_decisions(
    app: CivicApplication,
) -> None:
    """Commands use a write-through cache; another writer's changes surface as a
    conflict (retried from the store) or a refusal re-checked against the store."""
    ids = _network(app)
    v = _volunteer(app, ids["s1"])
    app.execute(c.AwardPoints(volunteer_id=v, points=100, reason="x"), SYSTEM)
    rice = UUID(
        app.execute(
            c.ListReward(unit_id=ids["s1"], name="大米", cost_points=5, stock=1), SYSTEM
        ).result["reward_id"]
    )
    other = CivicApplication(dict(app.env), document_secret=app.document_secret, clock=lambda: NOW)
    try:
        other.execute(c.Redeem(volunteer_id=v, reward_id=rice), SYSTEM)  # takes the last one
        with pytest.raises(ConflictError) as err:  # our cache still says 1 left
            app.execute(c.Redeem(volunteer_id=v, reward_id=rice), SYSTEM)
        assert err.value.code == "out-of-stock"
        other.execute(c.RestockReward(reward_id=rice, quantity=2), SYSTEM)
        app.execute(c.Redeem(volunteer_id=v, reward_id=rice), SYSTEM)  # our cache says 0
        assert app.get(rice).stock == 1
    finally:
        other.close()


def test_events_are_stamped_with_the_command_time_and_actor(app: CivicApplication) -> None:
    ids = _network(app)
    station_key = Principal("k9", "kiosk", Role.SERVICE, ids["s1"])
    v = _volunteer(app, ids["s1"])
    app.clock = lambda: NOW + timedelta(days=3)
    app.execute(c.AwardPoints(volunteer_id=v, points=2, reason="文明户评比"), station_key)
    last = list(app.events.get(Passbook.create_id(v)))[-1]
    assert isinstance(last, Passbook.PointsAwarded)
    assert last.timestamp == NOW + timedelta(days=3)
    assert last.actor == "key:k9"
    assert last.reason == "文明户评比"


def test_every_command_has_a_handler() -> None:
    union = get_args(c.AnyCommand)[0]
    assert set(get_args(union)) <= set(HANDLERS)
