"""Reads of micro-wishes, venture calls and charity funds, served straight from
their aggregates (always current), authorised by the aggregate's unit lineage.

A wish's ``resident_ref`` is shown only to callers who may write in the wish's
unit (its staff), opened from its seal (``[erased]`` once erased), never to
auditors, and never in lists or the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from domain.errors import NotFoundError
from domain.funds import Direction, Fund
from domain.venture import CallStatus, ProjectStatus, VentureCall
from domain.wishes import ClaimantKind, Wish, WishStatus
from services import personal_data as pd
from services.application import CivicApplication
from services.principals import ForbiddenError, Principal
from services.queries import ReadModel, load

# -- wishes --------------------------------------------------------------------------


class WishView(ReadModel):
    wish_id: UUID
    unit_id: UUID
    unit_path: list[UUID]
    title: str
    description: str
    points: int = Field(description="awarded to a volunteer claimant on confirmation")
    status: WishStatus
    claimant_kind: ClaimantKind | None
    volunteer_id: UUID | None
    claims: int = Field(description="how many times the wish was claimed (released claims too)")
    confirmation_id: UUID | None
    resident_ref: str | None = Field(
        description="the unit's reference to the resident: shown to the unit's writers "
        'only; "[erased]" after erasure'
    )
    resident_erased: bool = Field(description="the personal data on the wish was erased")
    version: int


def _may_write(principal: Principal, lineage: list[UUID]) -> bool:
    try:
        principal.ensure_can_write(lineage)
    except ForbiddenError:
        return False
    return True


def get_wish(app: CivicApplication, principal: Principal, wish_id: UUID) -> WishView:
    wish = load(app, Wish, wish_id)
    principal.ensure_can_read(wish.lineage)
    return WishView(
        wish_id=wish.id,
        unit_id=wish.unit_id,
        unit_path=wish.unit_path,
        title=wish.title,
        description=wish.description,
        points=wish.points,
        status=wish.status,
        claimant_kind=wish.claimant_kind,
        volunteer_id=wish.volunteer_id,
        claims=wish.claims,
        confirmation_id=wish.confirmation_id,
        resident_ref=(
            pd.reveal(
                app.vault, wish.id, pd.RESIDENT_REF, wish.resident_ref, erased=wish.resident_erased
            )
            if _may_write(principal, wish.lineage)
            else None
        ),
        resident_erased=wish.resident_erased,
        version=wish.version,
    )


# -- venture calls -------------------------------------------------------------------


class ScoreView(ReadModel):
    reviewer: str
    score: int


class MilestoneView(ReadModel):
    title: str
    note: str
    reported_at: datetime


class ProjectView(ReadModel):
    project_id: UUID
    title: str
    organisation: str
    requested_fen: int
    summary: str
    status: ProjectStatus
    scores: list[ScoreView]
    average_score: float | None
    funded_fen: int
    milestones: list[MilestoneView]
    final_score: int | None
    evaluation: str


class VentureCallView(ReadModel):
    call_id: UUID
    unit_id: UUID
    unit_path: list[UUID]
    title: str
    description: str
    budget_fen: int
    funded_total_fen: int
    remaining_fen: int
    deadline: datetime
    status: CallStatus
    summary: str = Field(description="the published results' summary")
    projects: list[ProjectView] = Field(description="in order of submission")
    version: int


def get_venture_call(app: CivicApplication, principal: Principal, call_id: UUID) -> VentureCallView:
    call = load(app, VentureCall, call_id)
    principal.ensure_can_read(call.lineage)
    return VentureCallView(
        call_id=call.id,
        unit_id=call.unit_id,
        unit_path=call.unit_path,
        title=call.title,
        description=call.description,
        budget_fen=call.budget_fen,
        funded_total_fen=call.funded_total_fen,
        remaining_fen=call.remaining_fen,
        deadline=call.deadline,
        status=call.status,
        summary=call.summary,
        projects=[
            ProjectView(
                project_id=p.project_id,
                title=p.title,
                organisation=p.organisation,
                requested_fen=p.requested_fen,
                summary=p.summary,
                status=p.status,
                scores=[ScoreView(reviewer=r, score=s) for r, s in p.scores.items()],
                average_score=p.average_score,
                funded_fen=p.funded_fen,
                milestones=[
                    MilestoneView(title=m.title, note=m.note, reported_at=m.at)
                    for m in p.milestones
                ],
                final_score=p.final_score,
                evaluation=p.evaluation,
            )
            for p in call.projects.values()
        ],
        version=call.version,
    )


# -- funds ---------------------------------------------------------------------------


class MovementView(ReadModel):
    movement_id: UUID
    direction: Direction
    amount_fen: int
    kind: str = Field(description="source kind (money in) or purpose kind (money out)")
    purpose: str
    approved_by: str
    beneficiaries: int | None = Field(description="people served (money out)")
    balance_after_fen: int
    recorded_at: datetime
    recorded_by: str = Field(description="the key that recorded it")
    donor_erased: bool = Field(
        default=False, description="the donor's name on this receipt was erased"
    )


class FundView(ReadModel):
    fund_id: UUID
    unit_id: UUID
    unit_path: list[UUID]
    title: str
    balance_fen: int
    total_in_fen: int
    total_out_fen: int
    movements: list[MovementView] = Field(description="oldest first")
    version: int


def _movement(event: Any) -> MovementView | None:
    if isinstance(event, Fund.MoneyReceived):
        direction, kind, beneficiaries = Direction.IN, event.source_kind, None
    elif isinstance(event, Fund.MoneyDisbursed):
        direction, kind, beneficiaries = Direction.OUT, event.purpose_kind, event.beneficiaries
    else:
        return None
    return MovementView(
        movement_id=event.movement_id,
        direction=direction,
        amount_fen=event.amount_fen,
        kind=kind,
        purpose=event.purpose,
        approved_by=event.approved_by,
        beneficiaries=beneficiaries,
        balance_after_fen=event.balance_after_fen,
        recorded_at=event.timestamp,
        recorded_by=event.actor,
    )


def get_fund(app: CivicApplication, principal: Principal, fund_id: UUID) -> FundView:
    """The fund and its movements, folded from one read of its events (so the
    balance and the movements always agree)."""
    fund: Fund | None = None
    movements: list[MovementView] = []
    events: Iterable[Any] = app.events.get(fund_id)
    for event in events:
        fund = event.mutate(fund)
        line = _movement(event)
        if line is not None:
            movements.append(line)
    if not isinstance(fund, Fund):
        raise NotFoundError(f"Fund {fund_id} not found")
    principal.ensure_can_read(fund.lineage)
    movements = [  # an erasure comes after its receipt: marked once all are read
        m.model_copy(update={"donor_erased": True}) if m.movement_id in fund.donor_erased else m
        for m in movements
    ]
    return FundView(
        fund_id=fund.id,
        unit_id=fund.unit_id,
        unit_path=fund.unit_path,
        title=fund.title,
        balance_fen=fund.balance_fen,
        total_in_fen=fund.total_in_fen,
        total_out_fen=fund.total_out_fen,
        movements=movements,
        version=fund.version,
    )
