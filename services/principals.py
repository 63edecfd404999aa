"""Who is calling, and where they may act.

Roles: ``admin`` (everything), ``unit_admin`` (read and write within its unit's
subtree), ``service`` (post commands for its subtree), ``auditor`` (read
everything, write nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Role(StrEnum):
    ADMIN = "admin"
    UNIT_ADMIN = "unit_admin"
    SERVICE = "service"
    AUDITOR = "auditor"


SCOPED_ROLES = (Role.UNIT_ADMIN, Role.SERVICE)


class ForbiddenError(Exception):
    code = "forbidden"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: Role
    unit_id: UUID | None = None

    @property
    def actor(self) -> str:
        """How the principal is recorded on events."""
        return f"key:{self.key_id}"

    def _within(self, lineage: Sequence[UUID]) -> bool:
        return self.unit_id is not None and self.unit_id in lineage

    def can_read(self, lineage: Sequence[UUID]) -> bool:
        if self.role in (Role.ADMIN, Role.AUDITOR):
            return True
        return self._within(lineage)

    def can_read_everything(self) -> bool:
        return self.role in (Role.ADMIN, Role.AUDITOR)

    def ensure_can_read(self, lineage: Sequence[UUID]) -> None:
        if not self.can_read(lineage):
            raise ForbiddenError("outside your unit's subtree")

    def ensure_can_write(self, lineage: Sequence[UUID]) -> None:
        if self.role == Role.ADMIN:
            return
        if self.role == Role.AUDITOR:
            raise ForbiddenError("auditors cannot write")
        if not self._within(lineage):
            raise ForbiddenError("outside your unit's subtree")

    def ensure_admin(self) -> None:
        if self.role != Role.ADMIN:
            raise ForbiddenError("only an admin may do this")


SYSTEM = Principal(key_id="system", name="system", role=Role.ADMIN)
