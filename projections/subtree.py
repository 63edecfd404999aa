"""A unit's subtree in SQL: views keep each row's unit lineage (unit ids from the
center down, joined with ``/``), and a unit's subtree is every row whose lineage
passes through the unit."""

from __future__ import annotations


def in_subtree(column: str = "lineage") -> str:
    """The condition on ``column`` (a lineage), with one parameter: :func:`pattern`."""
    return f"'/' || {column} || '/' LIKE ? ESCAPE '\\'"


def pattern(unit_id: str) -> str:
    """The parameter of :func:`in_subtree` for ``unit_id`` (LIKE's wildcards escaped)."""
    escaped = unit_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%/{escaped}/%"
