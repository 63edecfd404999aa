from __future__ import annotations

import pytest

from domain.base import acting_as
from domain.errors import ConflictError, RuleViolationError
from domain.units import PracticeUnit, UnitTier
from domain.volunteers import (
    Volunteer,
    document_digest,
    is_valid_resident_id,
    mask_document_number,
)
from tests.unit.domain_builders import network, volunteer


def test_three_tier_hierarchy_records_lineage() -> None:
    center, institute, station = network()
    assert station.path == [center.id, institute.id]
    assert station.lineage == [center.id, institute.id, station.id]
    assert station.is_within(center.id)
    assert not institute.is_within(station.id)


@pytest.mark.parametrize(
    ("tier", "parent_tier", "code"),
    [
        (UnitTier.STATION, None, "parent-required"),
        (UnitTier.STATION, UnitTier.CENTER, "wrong-parent-tier"),
        (UnitTier.INSTITUTE, UnitTier.INSTITUTE, "wrong-parent-tier"),
        (UnitTier.CENTER, UnitTier.CENTER, "center-has-parent"),
    ],
)
def test_a_unit_sits_under_the_tier_above(
    tier: UnitTier, parent_tier: UnitTier | None, code: str
) -> None:
    center, institute, _ = network()
    parent = {None: None, UnitTier.CENTER: center, UnitTier.INSTITUTE: institute}[parent_tier]
    with pytest.raises(RuleViolationError) as err:
        PracticeUnit.open(code="x", name="x", tier=tier, parent=parent)
    assert err.value.code == code


def test_rename_and_close_are_events_with_actor_and_reason() -> None:
    center, _, _ = network()
    center.collect_events()
    with acting_as("key:admin1"):
        center.rename("江北区新时代文明实践中心", reason="official name")
        center.close(reason="merged")
    renamed, closed = center.collect_events()
    assert type(renamed).__name__ == "Renamed"
    assert renamed.actor == "key:admin1"  # type: ignore[attr-defined]
    assert renamed.reason == "official name"  # type: ignore[attr-defined]
    assert type(closed).__name__ == "Closed"
    with pytest.raises(ConflictError):
        center.rename("again", reason="x")


def test_no_unit_opens_under_a_closed_parent() -> None:
    center, _, _ = network()
    center.close(reason="merged")
    with pytest.raises(ConflictError):
        PracticeUnit.open(code="y", name="y", tier=UnitTier.INSTITUTE, parent=center)


def test_resident_id_check_digit() -> None:
    assert is_valid_resident_id("11010519491231002X")
    assert is_valid_resident_id("11010519491231002x")
    assert not is_valid_resident_id("110105194912310021")
    assert not is_valid_resident_id("1101051949123100")


def test_same_document_same_volunteer_id_and_the_number_is_never_in_an_event() -> None:
    _, _, station = network()
    digest = document_digest(b"k" * 32, "11010519491231002X")
    assert digest == document_digest(b"k" * 32, " 11010519491231002x ")
    assert digest != document_digest(b"other-secret" * 3, "11010519491231002X")
    v = Volunteer.register(
        document_digest=digest,
        document_masked=mask_document_number("11010519491231002X"),
        home_station=station,
        name="张三",
        phone="13800000000",
    )
    assert v.id == Volunteer.create_id(digest)
    (registered,) = v.collect_events()
    assert "19491231" not in repr(registered)
    assert registered.document_masked == "110***********002X"  # type: ignore[attr-defined]


def test_volunteers_register_at_stations_only() -> None:
    _, institute, _ = network()
    with pytest.raises(RuleViolationError):
        volunteer(institute)


def test_suspend_and_reinstate() -> None:
    _, _, station = network()
    v = volunteer(station)
    v.suspend("complaint under review")
    assert not v.is_active
    with pytest.raises(ConflictError):
        v.suspend("again")
    v.reinstate("cleared")
    assert v.is_active
    with pytest.raises(ConflictError):
        v.update_profile(name=None, phone=None, reason="nothing")
    v.update_profile(name="张三丰", phone=None, reason="typo")
    assert v.name == "张三丰"
