"""Micro-wishes: post, claim (one claimant at a time), release, fulfil, confirm
with its points award (once, ever), cancel; every refusal."""

from __future__ import annotations

import pytest

from domain.errors import ConflictError, RuleViolationError
from domain.passbook import AwardKind, Passbook
from domain.points import ExpiryPolicy
from domain.wishes import ClaimantKind, Wish, WishStatus, confirm_wish
from tests.unit.domain_builders import T0, network, volunteer

NEVER = ExpiryPolicy()


def _wish(points: int = 5) -> Wish:
    _, _, station = network()
    return Wish.post(
        unit=station,
        title="一个新书包",
        description="三年级小学生",
        resident_ref="档案 2024-031",
        points=points,
    )


def _claimed(points: int = 5) -> tuple[Wish, Passbook]:
    wish = _wish(points)
    _, _, station = network()
    v = volunteer(station)
    wish.claim_by_volunteer(v)
    return wish, Passbook.open_for(v.id, v.home_path)


def test_the_whole_loop_awards_the_volunteer_once() -> None:
    wish, passbook = _claimed(points=8)
    assert wish.status == WishStatus.CLAIMED
    wish.fulfil("书包已送到")
    confirmation, points, lot = confirm_wish(wish=wish, passbook=passbook, now=T0, policy=NEVER)
    assert (wish.status, points, passbook.balance) == (WishStatus.CONFIRMED, 8, 8)
    assert lot is not None and passbook.lots[lot].kind == AwardKind.WISH
    assert passbook.has_award_for(confirmation)
    with pytest.raises(ConflictError) as err:
        confirm_wish(wish=wish, passbook=passbook, now=T0, policy=NEVER)
    assert err.value.code == "already-confirmed"
    assert passbook.balance == 8


def test_an_award_already_in_the_passbook_stops_the_confirmation() -> None:
    wish, passbook = _claimed()
    wish.fulfil()
    passbook.award(
        points=1,
        kind=AwardKind.WISH,
        source_id=wish.confirmation_id_for,
        reason="x",
        now=T0,
        policy=NEVER,
    )
    with pytest.raises(ConflictError) as err:
        confirm_wish(wish=wish, passbook=passbook, now=T0, policy=NEVER)
    assert err.value.code == "already-awarded"
    assert wish.status == WishStatus.FULFILLED  # nothing changed


def test_confirming_an_unfulfilled_wish_is_refused() -> None:
    wish, passbook = _claimed()
    with pytest.raises(ConflictError) as err:
        confirm_wish(wish=wish, passbook=passbook, now=T0, policy=NEVER)
    assert err.value.code == "not-fulfilled"
    assert passbook.balance == 0
    with pytest.raises(ConflictError):
        _wish().confirm()


def test_one_claimant_at_a_time_and_a_release_reopens_it() -> None:
    wish, _ = _claimed()
    _, _, station = network()
    with pytest.raises(ConflictError) as err:
        wish.claim_by_volunteer(volunteer(station, 2))
    assert err.value.code == "already-claimed"
    with pytest.raises(ConflictError):
        wish.claim_by_member("区税务局党支部")
    wish.release("临时出差")
    assert (wish.status, wish.volunteer_id) == (WishStatus.OPEN, None)
    wish.claim_by_member("区税务局党支部")
    assert (wish.claimant_kind, wish.claims) == (ClaimantKind.MEMBER, 2)


def test_a_member_claimant_earns_no_points() -> None:
    wish = _wish(points=10)
    wish.claim_by_member("机关党支部")
    wish.fulfil()
    _, points, lot = confirm_wish(wish=wish, passbook=None, now=T0, policy=NEVER)
    assert (points, lot, wish.status) == (0, None, WishStatus.CONFIRMED)


def test_a_volunteer_claimant_needs_their_passbook_for_points() -> None:
    wish, _ = _claimed()
    wish.fulfil()
    with pytest.raises(ConflictError) as err:
        confirm_wish(wish=wish, passbook=None, now=T0, policy=NEVER)
    assert err.value.code == "no-passbook"


def test_refusals_on_the_way() -> None:
    wish = _wish()
    with pytest.raises(ConflictError) as err:
        wish.release("x")
    assert err.value.code == "not-claimed"
    with pytest.raises(ConflictError) as err:
        wish.fulfil()
    assert err.value.code == "not-claimed"
    with pytest.raises(RuleViolationError) as rule:
        wish.claim_by_member("  ")
    assert rule.value.code == "claimant-required"
    _, _, station = network()
    suspended = volunteer(station, 3)
    suspended.suspend("违规")
    with pytest.raises(ConflictError) as err:
        wish.claim_by_volunteer(suspended)
    assert err.value.code == "volunteer-suspended"


def test_cancelled_wishes_take_no_more_claims_and_fulfilled_ones_cannot_be_cancelled() -> None:
    wish = _wish()
    wish.cancel("居民已搬走")
    assert wish.status == WishStatus.CANCELLED
    _, _, station = network()
    with pytest.raises(ConflictError) as err:
        wish.claim_by_volunteer(volunteer(station))
    assert err.value.code == "wish-not-open"
    fulfilled, _ = _claimed()
    fulfilled.fulfil()
    with pytest.raises(ConflictError) as err:
        fulfilled.cancel("x")
    assert err.value.code == "wish-not-open"


def test_posting_rules() -> None:
    _, _, station = network()
    with pytest.raises(RuleViolationError) as err:
        Wish.post(unit=station, title="x", description="", resident_ref="r", points=-1)
    assert err.value.code == "bad-points"
    with pytest.raises(RuleViolationError) as err:
        Wish.post(unit=station, title="x", description="", resident_ref=" ")
    assert err.value.code == "resident-required"
    station.close("撤并")
    with pytest.raises(ConflictError) as conflict:
        Wish.post(unit=station, title="x", description="", resident_ref="r")
    assert conflict.value.code == "unit-closed"
