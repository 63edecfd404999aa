"""A unit of work over the event store's repository.

Commands load aggregates through it (each at most once per unit of work, so a
batch's later items see its earlier items' changes), and it gathers the events
they trigger, in order, for one atomic ``save``. When an item fails after some
aggregate already changed, that aggregate is rebuilt from the store plus the
events earlier items produced, so the failed item leaves no trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate, OriginatorVersionError
from eventsourcing.persistence import IntegrityError

from domain.errors import NotFoundError

A = TypeVar("A", bound=Aggregate)


def project(aggregate: Aggregate | None, events: Iterable[Any]) -> Aggregate | None:
    """The library's ``project_aggregate`` without its per-event
    ``isinstance(event, CanMutateProtocol)`` assertion: a runtime-protocol check
    that cost a third of rebuilding an aggregate from the store."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class StaleUnitOfWorkError(IntegrityError):
    """An aggregate read again from the store no longer fits the events this unit of
    work gathered for it (another process changed it): nothing can be saved, and the
    commands must run again from the store's state, as after a conflict."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(f"aggregate {aggregate_id} changed in the store under this unit of work")


class UnitOfWork:
    def __init__(self, repository: Repository[UUID]) -> None:
        self._repository = repository
        self._aggregates: dict[UUID, Aggregate] = {}
        self._touched: dict[UUID, Aggregate] = {}  # by the current item
        self.events: list[Any] = []

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        aggregate = self._aggregates.get(aggregate_id)
        if aggregate is None:
            try:
                aggregate = self._repository.get(aggregate_id, projector_func=project)
            except AggregateNotFoundError:
                return None
            self._aggregates[aggregate_id] = aggregate
        self._touched[aggregate_id] = aggregate
        return aggregate if isinstance(aggregate, cls) else None

    def taken(self, aggregate_id: UUID) -> bool:
        """Whether an aggregate of any type has this id. A client-chosen id must be
        new: the store would refuse its first event as a conflict, over and over."""
        return self.find(Aggregate, aggregate_id) is not None

    def get(self, cls: type[A], aggregate_id: UUID) -> A:
        aggregate = self.find(cls, aggregate_id)
        if aggregate is None:
            raise NotFoundError(f"{cls.__name__} {aggregate_id} not found")
        return aggregate

    def add(self, aggregate: Aggregate) -> None:
        self._aggregates[aggregate.id] = aggregate
        self._touched[aggregate.id] = aggregate

    def commit_item(self) -> None:
        """Move the events the last command triggered into this unit of work."""
        for aggregate in self._touched.values():
            if aggregate.pending_events:
                self.events.extend(aggregate.collect_events())
        self._touched.clear()

    def discard_item(self, *, refresh: bool = False) -> None:
        """Undo what the last (failed) command did to the loaded aggregates; with
        ``refresh``, also reload every aggregate it touched from the store."""
        touched, self._touched = self._touched, {}
        for aggregate_id, aggregate in touched.items():
            if not refresh and not aggregate.pending_events:
                continue
            aggregate.collect_events()
            self._rebuild(aggregate_id)

    def mark(self) -> int:
        """A point to roll back to with :meth:`rollback_to`."""
        return len(self.events)

    def rollback_to(self, mark: int) -> None:
        """Take out every event gathered since ``mark``, and what they did to the
        aggregates (a job that failed half-way through its items)."""
        dropped, self.events = self.events[mark:], self.events[:mark]
        for aggregate_id in dict.fromkeys(e.originator_id for e in dropped):
            self._rebuild(aggregate_id)

    def _rebuild(self, aggregate_id: UUID) -> None:
        """The aggregate as the store has it plus the events still gathered here.
        The cached object may be the one that changed: it is evicted first."""
        evict(self._repository, aggregate_id)
        kept = [e for e in self.events if e.originator_id == aggregate_id]
        try:
            rebuilt: Aggregate | None = self._repository.get(aggregate_id, projector_func=project)
        except AggregateNotFoundError:
            rebuilt = None
        try:
            for event in kept:
                rebuilt = event.mutate(rebuilt)
        except OriginatorVersionError as exc:
            # another process moved the aggregate on: what this unit gathered for it
            # rests on a stale copy, and the whole unit must run again
            evict(self._repository, aggregate_id)
            raise StaleUnitOfWorkError(aggregate_id) from exc
        if rebuilt is None:
            self._aggregates.pop(aggregate_id, None)
        else:
            self._aggregates[aggregate_id] = rebuilt
            if kept:  # not the store's state: the cache must not keep it
                evict(self._repository, aggregate_id)

    def cache_into(self, repository: Repository[UUID]) -> None:
        """After a successful save: these aggregates are the store's current state."""
        if repository.cache is not None:
            for aggregate_id, aggregate in self._aggregates.items():
                repository.cache.put(aggregate_id, aggregate)

    def evict_from(self, repository: Repository[UUID]) -> None:
        """After a conflict: cached copies may be stale; the retry reads the store."""
        for aggregate_id in self._aggregates:
            evict(repository, aggregate_id)


def evict(repository: Repository[UUID], aggregate_id: UUID) -> None:
    """Forget a cached aggregate: the next ``get`` reads it from the store."""
    if repository.cache is not None:
        with contextlib.suppress(KeyError):
            repository.cache.get(aggregate_id, evict=True)
