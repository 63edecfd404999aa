"""The fast UUID constructors equal the standard library's."""

from __future__ import annotations

import os
import uuid

from hypothesis import given
from hypothesis import strategies as st

from domain.base import CIVIC_NAMESPACE, name_id, unique_name_id
from domain.randomness import new_id
from domain.uuids import uuid4_from, uuid5_of


@given(st.binary(min_size=16, max_size=16))
def test_uuid4_from_equals_the_standard_constructor(random16: bytes) -> None:
    ours, theirs = uuid4_from(random16), uuid.UUID(bytes=random16, version=4)
    assert ours == theirs
    assert (str(ours), ours.version, ours.variant, hash(ours)) == (
        str(theirs),
        4,
        uuid.RFC_4122,
        hash(theirs),
    )


@given(st.text())
def test_uuid5_of_equals_uuid5(name: str) -> None:
    namespace = uuid.UUID(bytes=os.urandom(16))
    ours, theirs = uuid5_of(namespace, name), uuid.uuid5(namespace, name)
    assert ours == theirs
    assert (str(ours), ours.version, ours.variant) == (str(theirs), 5, uuid.RFC_4122)


def test_ids_keep_their_derivation() -> None:
    """Ids already in stores must come out the same: a volunteer's passbook, a lot."""
    volunteer, source = uuid.UUID(int=1), uuid.UUID(int=2)
    assert name_id("passbook", volunteer) == uuid.uuid5(CIVIC_NAMESPACE, f"passbook/{volunteer}")
    assert unique_name_id("lot", volunteer, source) == uuid.uuid5(
        CIVIC_NAMESPACE, f"lot/{volunteer}/{source}"
    )
    assert new_id().version == 4
    assert new_id() != new_id()
