"""Scratch read models: the real projection code replayed into throw-away SQLite.

The same ``Projection.apply`` the runners call, batch by batch, into an in-memory
database (as-of answers) or a temporary file (the replay check over millions of
events), with the applied position recorded as the runners record it. Nothing
here touches the served views.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from projections.base import Projection
from projections.catalog import create
from projections.envelope import EventEnvelope
from projections.periods import DEFAULT_TIMEZONE
from projections.store import ViewStore

PARTITION = 0


@dataclass
class ScratchModel:
    projection: Projection
    store: ViewStore
    applied: int = 0
    position: int = 0

    @property
    def name(self) -> str:
        return self.projection.name

    def apply(self, envelopes: Sequence[EventEnvelope]) -> None:
        if not envelopes:
            return
        with self.store.transaction() as conn:
            self.projection.apply(conn, envelopes)
            last = envelopes[-1].position
            self.store.save_offsets(conn, {PARTITION: (last, last)})
        self.applied += len(envelopes)
        self.position = max(self.position, envelopes[-1].position)

    def reader(self) -> sqlite3.Connection:
        return self.store.reader()

    def close(self) -> None:
        self.store.close()


@dataclass
class Scratch:
    """Several scratch read models fed from one pass over the history."""

    models: dict[str, ScratchModel] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        names: Iterable[str],
        *,
        directory: Path | None = None,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> Scratch:
        """In memory, or one file per model in ``directory`` (for big histories)."""
        models = {}
        for name in names:
            path = ":memory:" if directory is None else str(directory / f"{name}.sqlite")
            store = ViewStore(path)
            projection = create(name, timezone=timezone)
            with store.transaction() as conn:
                projection.create_tables(conn)
                for statement in projection.read_indexes:
                    conn.execute(statement)
            models[name] = ScratchModel(projection, store)
        return cls(models)

    def apply(self, envelopes: Sequence[EventEnvelope], upto: dict[str, int] | None = None) -> None:
        """Apply a page of events to every model (to each only up to its ``upto``)."""
        for name, model in self.models.items():
            limit = None if upto is None else upto.get(name)
            if limit is not None and envelopes and envelopes[-1].position > limit:
                model.apply([e for e in envelopes if e.position <= limit])
            else:
                model.apply(envelopes)

    def __getitem__(self, name: str) -> ScratchModel:
        return self.models[name]

    def close(self) -> None:
        for model in self.models.values():
            model.close()
