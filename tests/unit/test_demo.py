"""The demo generator: deterministic, valid, the right network shape and a plan the
platform accepts in full."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import pytest

from domain.categories import Category
from domain.units import UnitTier
from domain.volunteers import is_valid_resident_id
from infra.settings import Settings
from services import commands as c
from services.bootstrap import build_application, build_runners, build_stream
from services.demo import DemoConfig, DemoPlan, generate, load, resident_id

C = TypeVar("C", bound=c.Command)

SECRET = b"demo-test-secret-0123456789abcdef"
SMALL = DemoConfig(seed=11, volunteers=60, months=1)


@pytest.fixture(scope="module")
def year() -> DemoPlan:
    """A year with a few hundred volunteers: big enough to use every feature."""
    return generate(DemoConfig(seed=3, volunteers=400, months=12), document_secret=SECRET)


def commands_of(plan: DemoPlan, kind: type[C]) -> list[C]:
    return [s.command for s in plan.steps if isinstance(s.command, kind)]


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    first = generate(SMALL, document_secret=SECRET)
    second = generate(SMALL, document_secret=SECRET)
    assert [(s.at, s.command) for s in first.steps] == [(s.at, s.command) for s in second.steps]
    other = generate(DemoConfig(seed=12, volunteers=60, months=1), document_secret=SECRET)
    assert [s.command for s in other.steps] != [s.command for s in first.steps]


def test_ids_are_deterministic_and_only_volunteer_ids_depend_on_the_secret() -> None:
    a = generate(SMALL, document_secret=SECRET)
    b = generate(SMALL, document_secret=b"another-secret-0123456789abcdefgh")

    def ids(plan: DemoPlan, kind: type[c.Command], attr: str) -> list[UUID | None]:
        return [getattr(cmd, attr) for cmd in commands_of(plan, kind)]

    for kind, attr in (
        (c.PublishActivity, "activity_id"),
        (c.ListReward, "reward_id"),
        (c.Redeem, "redemption_id"),
        (c.AwardPoints, "award_id"),
    ):
        assert ids(a, kind, attr) == ids(b, kind, attr)
        assert None not in ids(a, kind, attr)
    assert ids(a, c.SignUp, "volunteer_id") != ids(b, c.SignUp, "volunteer_id")


def test_resident_id_check_digit() -> None:
    # the worked example of GB 11643-1999
    assert resident_id("110105", date(1949, 12, 31), 2) == "11010519491231002X"


def test_volunteers_have_valid_unique_ids_phones_and_chinese_names(year: DemoPlan) -> None:
    registrations = commands_of(year, c.RegisterVolunteer)
    assert len(registrations) == 400
    numbers = [r.id_number for r in registrations]
    assert all(is_valid_resident_id(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)
    assert all(re.fullmatch(r"1[3-9]\d{9}", r.phone) for r in registrations)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", r.name) for r in registrations)


def test_network_is_one_center_nine_institutes_and_123_stations(year: DemoPlan) -> None:
    units = commands_of(year, c.OpenUnit)
    tiers = Counter(u.tier for u in units)
    assert tiers == {UnitTier.CENTER: 1, UnitTier.INSTITUTE: 9, UnitTier.STATION: 123}
    names = [u.name for u in units]
    assert names[0] == "江北区新时代文明实践中心"
    assert len(set(names)) == len(names)
    assert sum(n.endswith("新时代文明实践站") for n in names) == 123
    assert year.counts["units"] == 133


def test_history_runs_in_time_order(year: DemoPlan) -> None:
    times = [s.at for s in year.steps]
    assert times == sorted(times)
    starts: dict[UUID, tuple[datetime, datetime]] = {}
    for step in year.steps:
        cmd = step.command
        if isinstance(cmd, c.PublishActivity):
            assert cmd.activity_id is not None
            assert step.at < cmd.starts_at
            starts[cmd.activity_id] = (cmd.starts_at, cmd.ends_at)
        elif isinstance(cmd, c.SignUp | c.CancelSignup):
            assert step.at < starts[cmd.activity_id][0]
        elif isinstance(cmd, c.CheckIn | c.CheckOut):
            assert cmd.at is not None
            assert cmd.at <= step.at
        elif isinstance(cmd, c.ConfirmService):
            assert step.at >= starts[cmd.activity_id][1]


def test_a_year_uses_every_category_and_every_kind_of_command(year: DemoPlan) -> None:
    categories = {a.category for a in commands_of(year, c.PublishActivity)}
    assert categories == set(Category)
    kinds = {s.command.__class__ for s in year.steps}
    for kind in (
        c.CancelSignup,
        c.CheckIn,
        c.ConfirmService,
        c.CloseActivity,
        c.AwardPoints,
        c.Redeem,
        c.FulfilRedemption,
        c.CancelRedemption,
    ):
        assert kind in kinds
    confirmations = commands_of(year, c.ConfirmService)
    organizer = [x for x in confirmations if x.hours is not None]
    assert 0 < len(organizer) < len(confirmations) / 2  # mostly check-in/out


def test_batches_share_one_clock_and_respect_the_size(year: DemoPlan) -> None:
    batches = list(year.batches(250))
    assert sum(len(cmds) for _, cmds in batches) == len(year.steps)
    assert all(0 < len(cmds) <= 250 for _, cmds in batches)
    position = 0
    for at, cmds in batches:
        assert all(s.at == at for s in year.steps[position : position + len(cmds)])
        position += len(cmds)


def test_a_small_demo_loads_without_refusals_and_projections_catch_up(
    settings: Settings,
) -> None:
    app = build_application(settings)
    try:
        clock = app.clock
        plan = generate(
            SMALL, document_secret=settings.document_secret_bytes(), points_rule=app.points_rule
        )
        seen: list[int] = []
        report = load(app, plan, batch_size=200, progress=seen.append)
        assert report.failed == Counter(), report.failures
        assert report.commands == len(plan.steps) == sum(seen)
        assert report.events == app.head() > report.commands
        assert app.clock is clock  # restored

        runners = build_runners(settings, build_stream(settings, app))
        try:
            for runner in runners.values():
                runner.catch_up()
                assert runner.position == app.head()
                assert runner.healthy
        finally:
            for runner in runners.values():
                runner.stop()
                runner.store.close()
    finally:
        app.close()


def test_two_loads_with_the_same_seed_and_secret_record_the_same_aggregates(
    tmp_path: Path,
) -> None:
    def recorded(name: str) -> list[tuple[UUID, int, str]]:
        settings = Settings(data_dir=tmp_path / name, document_secret=SECRET.decode())
        app = build_application(settings)
        try:
            plan = generate(SMALL, document_secret=settings.document_secret_bytes())
            assert not load(app, plan).failed
            notes = app.recorder.select_notifications(start=1, limit=100_000)
            return [(UUID(str(n.originator_id)), n.originator_version, n.topic) for n in notes]
        finally:
            app.close()

    assert recorded("one") == recorded("two")
