"""The PostgreSQL event store: the library's recorder plus idempotency records
written in the same transaction as the events (see ``infra.event_store``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from infra.event_store import IdempotencyKeyTakenError, IdempotencyRecord, StoredResponse
from infra.hash_chain import PostgresChainTable

IDEMPOTENCY_TABLE = "idempotency_keys"


class PostgresIdempotentRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._table = Identifier(datastore.schema or "public", IDEMPOTENCY_TABLE)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {t} ("
                "scope text NOT NULL, key text NOT NULL, fingerprint text NOT NULL, "
                "response text NOT NULL, position bigint, "
                "recorded_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (scope, key))"
            ).format(t=self._table)
        )
        # the oldest first, for forgetting them (prune_idempotency)
        self.sql_create_statements.append(
            SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} (recorded_at)").format(
                i=Identifier(f"{IDEMPOTENCY_TABLE}_recorded_at"), t=self._table
            )
        )
        # tamper evidence (infra.hash_chain): linked after the ids are assigned, under
        # the table lock the library takes for every insert of events
        self.chain = PostgresChainTable(datastore, events_table_name)
        self.sql_create_statements.extend(self.chain.create_statements())

    def create_table(self) -> None:
        super().create_table()
        self.chain.backfill(self.events_table_name)  # a store older than the chain

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        try:
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        except IntegrityError as exc:
            records: Sequence[IdempotencyRecord] = kwargs.get("idempotency") or ()
            if records and IDEMPOTENCY_TABLE in str(exc):
                raise IdempotencyKeyTakenError(records[0].scope, records[0].key) from exc
            raise

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        records: Sequence[IdempotencyRecord] = kwargs.get("idempotency") or ()
        for r in records:
            curs.execute(
                SQL(
                    "INSERT INTO {t} (scope, key, fingerprint, response) VALUES (%s, %s, %s, %s)"
                ).format(t=self._table),
                (r.scope, r.key, r.fingerprint, r.response),
            )

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        records: Sequence[IdempotencyRecord] = kwargs.get("idempotency") or ()
        if records and ids:
            for r in records:
                curs.execute(
                    SQL("UPDATE {t} SET position = %s WHERE scope = %s AND key = %s").format(
                        t=self._table
                    ),
                    (r.position(ids), r.scope, r.key),
                )
        if ids:
            self.chain.append(curs, ids, stored_events)
        return ids

    def prune_idempotency(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` of the oldest idempotency records, those recorded
        before ``before``; returns how many."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "DELETE FROM {t} WHERE (scope, key) IN (SELECT scope, key FROM {t} "
                    "WHERE recorded_at < %s ORDER BY recorded_at LIMIT %s)"
                ).format(t=self._table),
                (before, limit),
            )
            return max(curs.rowcount, 0)

    def find_responses(self, scope: str, keys: Sequence[str]) -> dict[str, StoredResponse]:
        """The stored responses of those of ``keys`` that were used, in one query."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT key, fingerprint, response, position FROM {t} "
                    "WHERE scope = %s AND key = ANY(%s)"
                ).format(t=self._table),
                (scope, list(dict.fromkeys(keys))),
            )
            rows = curs.fetchall()
        return {
            row["key"]: StoredResponse(row["fingerprint"], row["response"], row["position"])
            for row in rows
        }
