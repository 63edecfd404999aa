from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from uuid import uuid4

import pytest

from domain.categories import Category
from domain.errors import ConflictError, RuleViolationError
from domain.passbook import AwardKind, Passbook
from domain.points import ExpiryKind, ExpiryPolicy, HoursSource, PointsRule
from domain.redemptions import RedemptionStatus, redeem
from domain.rewards import Reward
from tests.unit.domain_builders import T0, network, volunteer

NEVER = ExpiryPolicy()


def _passbook() -> Passbook:
    _, _, station = network()
    v = volunteer(station)
    return Passbook.open_for(v.id, v.home_path)


def _award(p: Passbook, points: int, days: int = 0, policy: ExpiryPolicy = NEVER) -> None:
    p.award(
        points=points,
        kind=AwardKind.MANUAL,
        source_id=uuid4(),
        reason="文明户评比",
        now=T0 + timedelta(days=days),
        policy=policy,
    )


def test_one_source_one_award_ever() -> None:
    p = _passbook()
    source = uuid4()
    p.award(points=10, kind=AwardKind.SERVICE, source_id=source, reason="x", now=T0, policy=NEVER)
    with pytest.raises(ConflictError) as err:
        p.award(
            points=10, kind=AwardKind.SERVICE, source_id=source, reason="x", now=T0, policy=NEVER
        )
    assert err.value.code == "already-awarded"
    assert p.balance == 10


def test_spending_is_first_in_first_out_and_traceable_to_lots() -> None:
    p = _passbook()
    _award(p, 5, days=0)
    _award(p, 7, days=1)
    lots = [lot.lot_id for lot in p.open_lots()]
    spent = p.redeem(redemption_id=uuid4(), points=9, now=T0 + timedelta(days=2))
    assert spent == [(lots[0], 5), (lots[1], 4)]
    assert p.balance == 3


def test_balance_never_goes_negative() -> None:
    p = _passbook()
    _award(p, 5)
    with pytest.raises(ConflictError) as err:
        p.redeem(redemption_id=uuid4(), points=6, now=T0)
    assert err.value.code == "insufficient-points"
    with pytest.raises(ConflictError):
        p.deduct(points=6, reason="correction", adjustment_id=uuid4(), now=T0)
    assert p.balance == 5
    assert not p.pending_events[2:]  # nothing recorded by the refusals


def test_points_expire_after_n_days_and_cannot_be_spent() -> None:
    p = _passbook()
    policy = ExpiryPolicy(kind=ExpiryKind.DAYS, days=30)
    _award(p, 5, days=0, policy=policy)
    _award(p, 5, days=20, policy=policy)
    later = T0 + timedelta(days=31)
    with pytest.raises(ConflictError):
        p.plan_redemption(6, later)
    assert p.expire_due(later) == 5
    assert p.balance == 5
    assert p.expire_due(later) == 0


def test_end_of_year_expiry_is_local_time() -> None:
    policy = ExpiryPolicy(kind=ExpiryKind.END_OF_YEAR)
    expires = policy.expires_at(T0)
    assert expires is not None
    assert expires.isoformat() == "2027-01-01T00:00:00+08:00"


def test_refund_restores_the_original_lots() -> None:
    p = _passbook()
    _award(p, 5)
    rid = uuid4()
    spent = p.redeem(redemption_id=rid, points=4, now=T0)
    p.refund(redemption_id=rid, reason="not picked up")
    assert p.balance == 5
    assert p.lots[spent[0][0]].remaining == 5
    with pytest.raises(ConflictError):
        p.refund(redemption_id=rid, reason="twice")


def test_points_rule_treats_sources_and_categories_differently() -> None:
    rule = PointsRule(category_factors={Category.CIVILITY: Fraction(2)})
    base = {"minutes": 90, "points_per_hour": 10}
    assert rule.points_for(**base, source=HoursSource.CHECKIN, category=Category.HEALTH) == 15
    assert rule.points_for(**base, source=HoursSource.ORGANIZER, category=Category.HEALTH) == 12
    assert rule.points_for(**base, source=HoursSource.CHECKIN, category=Category.CIVILITY) == 30
    capped = PointsRule(max_minutes_per_service=60)
    assert capped.points_for(**base, source=HoursSource.CHECKIN, category=Category.HEALTH) == 10


def test_redemption_debits_reserves_and_records_or_changes_nothing() -> None:
    _, _, station = network()
    v = volunteer(station)
    p = Passbook.open_for(v.id, v.home_path)
    _award(p, 12)
    rice = Reward.list_at(unit=station, name="大米 5kg", description="", cost_points=5, stock=1)
    r = redeem(redemption_id=uuid4(), volunteer=v, passbook=p, reward=rice, quantity=1, now=T0)
    assert (p.balance, rice.stock, r.points) == (7, 0, 5)
    before = (len(p.pending_events), len(rice.pending_events))
    with pytest.raises(ConflictError) as err:
        redeem(redemption_id=uuid4(), volunteer=v, passbook=p, reward=rice, quantity=1, now=T0)
    assert err.value.code == "out-of-stock"
    rice.restock(1, "delivery")
    oil = Reward.list_at(unit=station, name="食用油", description="", cost_points=50, stock=3)
    with pytest.raises(ConflictError) as err:
        redeem(redemption_id=uuid4(), volunteer=v, passbook=p, reward=oil, quantity=1, now=T0)
    assert err.value.code == "insufficient-points"
    assert (len(p.pending_events), oil.stock) == (before[0], 3)
    r.cancel("not picked up", p, rice)
    assert (p.balance, rice.stock, r.status) == (12, 2, RedemptionStatus.CANCELLED)
    with pytest.raises(ConflictError):
        r.fulfil()


def test_rewards_validate_stock_and_cost() -> None:
    _, _, station = network()
    with pytest.raises(RuleViolationError):
        Reward.list_at(unit=station, name="x", description="", cost_points=0, stock=1)
    towel = Reward.list_at(unit=station, name="毛巾", description="", cost_points=2, stock=0)
    towel.delist("discontinued")
    with pytest.raises(ConflictError):
        towel.restock(5, "x")
