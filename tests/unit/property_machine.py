"""What the service-layer state machines share (``test_properties_exchange.py`` and
``test_properties_orders.py``): the reach rule their models predict with, refusal
codes, the record of a keyed command that succeeded, and a base machine holding the
application, client-chosen ids, idempotency keys and the checks of a batch's
outcomes against what the machine predicted for each item."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
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


@runtime_checkable
class Expected(Protocol):
    """A machine's prediction for a command: its refusal code, or how many events it
    records."""

    error: str | None
    events: int


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

    def run_batch(
        self, principal: Principal, batch: list[BatchItem], expected: list[tuple[str, Any]]
    ) -> None:
        """Run ``batch`` and check each item against its prediction: ``("run",
        expected)``; ``("follow", i)``, a key repeated from item ``i``; ``("replay" |
        "mismatch", _)``, a key stored before. Successful items take consecutive
        positions in order; refused ones record nothing."""
        app = self.application
        head = app.head()
        outcomes = app.execute_batch(batch, principal)
        assert len(outcomes) == len(batch)
        end = head
        for i, ((how, what), outcome, item) in enumerate(
            zip(expected, outcomes, batch, strict=True)
        ):
            if how == "run":
                assert isinstance(what, Expected)
                assert code_of(outcome.error) == what.error, (i, item.command, outcome.error)
                if outcome.ok:
                    assert not outcome.replayed
                    assert outcome.position == end + what.events, (i, item.command)
                    end = end + what.events
                    if item.idempotency_key is not None:
                        self.keyed[(principal.key_id, item.idempotency_key)] = Keyed(
                            item.command, principal, outcome.result or {}, outcome.position, True
                        )
            elif how == "follow":
                assert isinstance(what, int)
                self.check_follower(outcome, outcomes[what], item, batch[what])
            else:
                key = item.idempotency_key
                assert key is not None
                keyed = self.keyed[(principal.key_id, key)]
                if how == "replay":
                    assert outcome.ok and outcome.replayed and outcome.result == keyed.result
                else:
                    assert isinstance(outcome.error, application_module.IdempotencyMismatchError)
        assert app.head() == end, "refused items left events behind"
