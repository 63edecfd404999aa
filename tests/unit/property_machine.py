"""What the service-layer state machines share (``test_properties_exchange.py`` and
``test_properties_orders.py``): the reach rule their models predict with, refusal
codes, the record of a keyed command that succeeded, and a base machine holding the
application, client-chosen ids, idempotency keys and the check of a batch item that
repeats a key used earlier in its batch."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

from hypothesis.stateful import RuleBasedStateMachine

from services import application as application_module
from services import commands as c
from services.application import BatchItem, CivicApplication, ItemOutcome
from services.principals import Principal, Role

ID_SPACE = UUID("6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab")


def hours(minutes: int) -> Decimal:
    return Decimal(minutes) / Decimal(60)  # quarter hours: exact in two decimals


def can_write(principal: Principal, lineage: list[UUID]) -> bool:
    if principal.role == Role.ADMIN:
        return True
    if principal.role == Role.AUDITOR:
        return False
    return principal.unit_id in lineage


def code_of(error: BaseException | None) -> str | None:
    return None if error is None else str(getattr(error, "code", type(error).__name__))


@dataclass
class Keyed:
    """A keyed command that succeeded: its key's scope and what it answered."""

    command: c.Command
    principal: Principal
    result: dict[str, Any]
    position: int | None
    in_batch: bool


class CommandMachine(RuleBasedStateMachine):
    """A state machine over one application in a directory of its own."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix=prefix))
        self.counter = 0
        self.keyed: dict[tuple[str, str], Keyed] = {}
        self.app: CivicApplication | None = None

    def teardown(self) -> None:
        if self.app is not None:
            self.app.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def application(self) -> CivicApplication:
        assert self.app is not None
        return self.app

    def fresh(self, kind: str) -> UUID:
        """A client-chosen id, deterministic per sequence (hypothesis replays them)."""
        self.counter += 1
        return uuid5(ID_SPACE, f"{kind}-{self.counter}")

    def key(self, keyed: bool) -> str | None:
        if not keyed:
            return None
        self.counter += 1
        return f"key-{self.counter}"

    def check_follower(
        self, outcome: ItemOutcome, leader: ItemOutcome, item: BatchItem, first: BatchItem
    ) -> None:
        if item.command != first.command:
            assert isinstance(outcome.error, application_module.IdempotencyMismatchError)
        elif leader.ok:
            assert outcome.ok and outcome.replayed
            assert (outcome.result, outcome.position) == (leader.result, leader.position)
        else:
            assert code_of(outcome.error) == code_of(leader.error)
