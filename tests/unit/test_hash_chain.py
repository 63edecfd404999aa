"""The hash chain's rules, on rows held in memory (the real stores are tested in
tests/integration/test_chain_tamper.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Notification, StoredEvent

from infra.hash_chain import (
    GENESIS,
    ChainLink,
    RecordedEvent,
    canonical,
    link,
    links_for,
    verify_chain,
)

TOPIC = "domain.passbook:Passbook.PointsAwarded"


@dataclass
class MemoryChain:
    """The chain table's port, in memory."""

    rows: dict[int, ChainLink] = field(default_factory=dict)

    def create_statements(self) -> list[object]:
        return []

    def append(self, cursor: object, ids: Sequence[int], events: Sequence[StoredEvent]) -> None:
        head = self.head()
        for k in links_for(head, ids, events):
            self.rows[k.position] = k

    def links(self, after: int, limit: int) -> list[ChainLink]:
        return [self.rows[p] for p in sorted(self.rows) if p > after][:limit]

    def hash_at(self, position: int) -> bytes | None:
        k = self.rows.get(position)
        return None if k is None else k.hash

    def head(self) -> tuple[int, bytes] | None:
        if not self.rows:
            return None
        last = max(self.rows)
        return last, self.rows[last].hash

    def recorded(self, originator_id: UUID) -> list[RecordedEvent]:
        return []

    def backfill(self, events_table: str) -> int:
        return 0


def _notification(position: int, aggregate: UUID | str, state: bytes) -> Notification:
    return Notification(
        id=position, originator_id=aggregate, originator_version=1, topic=TOPIC, state=state
    )


@dataclass
class MemoryStore:
    events: dict[int, Notification] = field(default_factory=dict)
    chain: MemoryChain = field(default_factory=MemoryChain)

    def record(self, *states: bytes, gap: int = 0) -> list[int]:
        start = max(self.events, default=0) + 1 + gap
        ids = list(range(start, start + len(states)))
        stored = [StoredEvent(uuid4(), 1, TOPIC, s) for s in states]
        for i, s in zip(ids, stored, strict=True):
            self.events[i] = _notification(i, s.originator_id, s.state)
        self.chain.append(None, ids, stored)
        return ids

    def read(self, after: int, limit: int) -> list[Notification]:
        return [self.events[p] for p in sorted(self.events) if p > after][:limit]


def test_a_link_is_sha256_of_the_previous_hash_and_the_canonical_row() -> None:
    aggregate = uuid4()
    row = canonical(7, aggregate, 2, TOPIC, b"{}")
    assert link(GENESIS, 7, aggregate, 2, TOPIC, b"{}") == hashlib.sha256(GENESIS + row).digest()
    # every field counts, and fields cannot be shifted into one another
    assert (
        len(
            {
                canonical(7, aggregate, 2, TOPIC, b"{}"),
                canonical(8, aggregate, 2, TOPIC, b"{}"),
                canonical(7, uuid4(), 2, TOPIC, b"{}"),
                canonical(7, aggregate, 3, TOPIC, b"{}"),
                canonical(7, aggregate, 2, TOPIC + "x", b"{}"),
                canonical(7, aggregate, 2, TOPIC, b"{} "),
            }
        )
        == 6
    )
    assert canonical(1, aggregate, 1, "ab", b"c") != canonical(1, aggregate, 1, "a", b"bc")


def test_an_aggregate_id_hashes_the_same_as_uuid_or_hex() -> None:
    aggregate = uuid4()
    assert canonical(1, aggregate, 1, TOPIC, b"") == canonical(1, aggregate.hex, 1, TOPIC, b"")


def test_links_continue_from_the_head_in_position_order() -> None:
    events = [StoredEvent(uuid4(), 1, TOPIC, bytes([i])) for i in range(3)]
    links = links_for((4, b"h" * 32), [9, 5, 7], events)
    assert [(k.position, k.prev_position) for k in links] == [(5, 4), (7, 5), (9, 7)]
    assert links[0].hash == link(b"h" * 32, 5, events[1].originator_id, 1, TOPIC, b"\x01")


def test_an_intact_chain_verifies_across_pages_and_gaps() -> None:
    store = MemoryStore()
    store.record(*(bytes([i]) for i in range(10)))
    store.record(b"after a gap", gap=3)  # PostgreSQL's sequence leaves gaps
    report = verify_chain(store.read, store.chain, page=3)
    assert report.ok
    assert report.events == 11
    assert (report.head_position, report.head_hash) == store.chain.head()


def test_an_edited_event_is_the_first_break() -> None:
    store = MemoryStore()
    store.record(*(bytes([i]) for i in range(10)))
    store.events[4] = replace(store.events[4], state=b"forged")
    report = verify_chain(store.read, store.chain, page=4)
    assert [(b.position, b.kind) for b in report.breaks] == [(4, "altered")]
    assert report.breaks[0].aggregate_id == store.chain.rows[4].originator_id


def test_a_deleted_event_is_named_from_its_link() -> None:
    store = MemoryStore()
    store.record(*(bytes([i]) for i in range(10)))
    del store.events[6]
    [brk] = verify_chain(store.read, store.chain).breaks
    assert (brk.position, brk.kind, brk.topic) == (6, "missing", TOPIC)


def test_an_event_deleted_with_its_link_is_found_from_the_next_link() -> None:
    store = MemoryStore()
    store.record(*(bytes([i]) for i in range(10)))
    del store.events[6], store.chain.rows[6]
    [brk] = verify_chain(store.read, store.chain).breaks
    assert (brk.position, brk.kind) == (6, "missing")


def test_an_event_inserted_outside_the_recorder_is_unchained() -> None:
    store = MemoryStore()
    store.record(b"a", b"b")
    store.events[3] = _notification(3, uuid4(), b"smuggled")
    [brk] = verify_chain(store.read, store.chain).breaks
    assert (brk.position, brk.kind) == (3, "unchained")


def test_an_edited_link_breaks_too() -> None:
    store = MemoryStore()
    store.record(b"a", b"b", b"c")
    store.chain.rows[2] = replace(store.chain.rows[2], hash=bytes(32))
    first = verify_chain(store.read, store.chain).first_break
    assert first is not None
    assert (first.position, first.kind) == (2, "altered")


@pytest.mark.parametrize("up_to", [1, 5, 10])
def test_verification_can_stop_at_a_position(up_to: int) -> None:
    store = MemoryStore()
    store.record(*(bytes([i]) for i in range(10)))
    store.events[10] = replace(store.events[10], state=b"forged")
    report = verify_chain(store.read, store.chain, up_to=up_to, keep_hashes_at=frozenset({1}))
    assert report.ok == (up_to < 10)
    assert report.head_position == up_to
    assert report.hashes[1] == store.chain.rows[1].hash
