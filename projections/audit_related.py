"""What the audit trail knows about a volunteer: the aggregates whose events
concern them (their volunteer and passbook, redemptions, activities they took
part in, ...). The histories themselves are read from the event store."""

from __future__ import annotations

import sqlite3

from projections.audit_trail import stable_code


def related_aggregates(conn: sqlite3.Connection, volunteer_id: str) -> list[str]:
    """Ids of every aggregate with an event tagged with the volunteer, first seen first."""
    rows = conn.execute(
        "SELECT n.name FROM (SELECT aggregate, MIN(position) AS first FROM audit_events "
        "WHERE volunteer = ? GROUP BY aggregate) a JOIN audit_names n ON n.code = a.aggregate "
        "ORDER BY a.first",
        (stable_code(volunteer_id),),
    )
    return [str(r[0]) for r in rows]
