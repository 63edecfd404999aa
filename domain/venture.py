"""Venture philanthropy calls (公益创投): a unit opens a call with a budget (fen,
an integer) and a submission deadline; organisations submit projects; named
reviewers score them (0–100, each reviewer once per project); the unit funds
projects, never beyond the call's budget in total; funded projects report
milestones, and are accepted with a final evaluation score; publishing the
results closes the call.

The projects live inside their call's aggregate, so the budget rule is checked
against every other project's funding in the same consistent state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from domain.base import CivicAggregate
from domain.errors import ConflictError, NotFoundError, RuleViolationError
from domain.funds import check_amount
from domain.randomness import new_id
from domain.units import PracticeUnit

MIN_SCORE, MAX_SCORE = 0, 100


class CallStatus(StrEnum):
    OPEN = "open"
    PUBLISHED = "published"  # results published: the call is closed


class ProjectStatus(StrEnum):
    SUBMITTED = "submitted"
    FUNDED = "funded"
    DECLINED = "declined"
    ACCEPTED = "accepted"  # evaluated with a final score


@dataclass
class Milestone:
    title: str
    note: str
    at: datetime


@dataclass
class Project:
    project_id: UUID
    title: str
    organisation: str
    requested_fen: int
    summary: str
    status: ProjectStatus = ProjectStatus.SUBMITTED
    scores: dict[str, int] = field(default_factory=dict)  # by reviewer
    funded_fen: int = 0
    milestones: list[Milestone] = field(default_factory=list)
    final_score: int | None = None
    evaluation: str = ""

    @property
    def average_score(self) -> float | None:
        if not self.scores:
            return None
        return round(sum(self.scores.values()) / len(self.scores), 2)


def _check_score(score: int) -> None:
    if type(score) is not int or not MIN_SCORE <= score <= MAX_SCORE:
        raise RuleViolationError(
            f"a score is a whole number from {MIN_SCORE} to {MAX_SCORE}", code="bad-score"
        )


class VentureCall(CivicAggregate):
    class Opened(CivicAggregate.Created):
        unit_id: UUID
        unit_path: list[UUID]
        title: str
        description: str
        budget_fen: int
        deadline: datetime

    class ProjectSubmitted(CivicAggregate.Event):
        project_id: UUID
        title: str
        organisation: str
        requested_fen: int
        summary: str

    class ProjectScored(CivicAggregate.Event):
        project_id: UUID
        reviewer: str
        score: int
        comment: str

    class ProjectFunded(CivicAggregate.Event):
        project_id: UUID
        amount_fen: int
        funded_total_fen: int  # the call's total funding after this one
        reason: str

    class ProjectDeclined(CivicAggregate.Event):
        project_id: UUID
        reason: str

    class MilestoneReported(CivicAggregate.Event):
        project_id: UUID
        title: str
        note: str
        reported_at: datetime

    class ProjectAccepted(CivicAggregate.Event):
        project_id: UUID
        final_score: int
        evaluation: str

    class ResultsPublished(CivicAggregate.Event):
        funded_projects: int
        funded_total_fen: int
        summary: str

    @classmethod
    def open_call(
        cls,
        *,
        unit: PracticeUnit,
        title: str,
        description: str,
        budget_fen: int,
        deadline: datetime,
        now: datetime,
        call_id: UUID | None = None,
    ) -> VentureCall:
        if unit.closed:
            raise ConflictError("the unit is closed", code="unit-closed")
        check_amount(budget_fen)
        if deadline <= now:
            raise RuleViolationError("the deadline must be in the future", code="bad-deadline")
        return cls._create(
            cls.Opened,
            id=call_id or new_id(),
            unit_id=unit.id,
            unit_path=unit.lineage,
            title=title,
            description=description,
            budget_fen=budget_fen,
            deadline=deadline,
        )

    @event(Opened)
    def __init__(
        self,
        unit_id: UUID,
        unit_path: list[UUID],
        title: str,
        description: str,
        budget_fen: int,
        deadline: datetime,
    ) -> None:
        self.unit_id = unit_id
        self.unit_path = list(unit_path)
        self.title = title
        self.description = description
        self.budget_fen = budget_fen
        self.deadline = deadline
        self.status = CallStatus.OPEN
        self.projects: dict[UUID, Project] = {}
        self.funded_total_fen = 0
        self.summary = ""

    def __deepcopy__(self, memo: dict[int, object]) -> VentureCall:
        # projects hold lists and dicts: copy them properly for the repository's cache
        clone = super().__deepcopy__(memo)
        clone.__dict__["projects"] = {
            pid: Project(
                project_id=p.project_id,
                title=p.title,
                organisation=p.organisation,
                requested_fen=p.requested_fen,
                summary=p.summary,
                status=p.status,
                scores=dict(p.scores),
                funded_fen=p.funded_fen,
                milestones=list(p.milestones),
                final_score=p.final_score,
                evaluation=p.evaluation,
            )
            for pid, p in self.projects.items()
        }
        return clone  # type: ignore[return-value]

    @property
    def lineage(self) -> list[UUID]:
        return list(self.unit_path)

    @property
    def remaining_fen(self) -> int:
        return self.budget_fen - self.funded_total_fen

    def project(self, project_id: UUID) -> Project:
        found = self.projects.get(project_id)
        if found is None:
            raise NotFoundError(f"project {project_id} is not in this call")
        return found

    # -- submissions -------------------------------------------------------------------

    def submit(
        self,
        *,
        title: str,
        organisation: str,
        requested_fen: int,
        summary: str,
        now: datetime,
        project_id: UUID | None = None,
    ) -> UUID:
        self._ensure_open()
        if now >= self.deadline:
            raise ConflictError("submissions closed at the deadline", code="deadline-passed")
        check_amount(requested_fen)
        if requested_fen > self.budget_fen:
            raise RuleViolationError(
                f"{requested_fen} fen requested, the call's budget is {self.budget_fen}",
                code="exceeds-budget",
            )
        pid = project_id or new_id()
        if pid in self.projects:
            raise ConflictError("a project with this id exists", code="project-exists")
        self._submit(
            project_id=pid,
            title=title,
            organisation=organisation,
            requested_fen=requested_fen,
            summary=summary,
        )
        return pid

    @event(ProjectSubmitted)
    def _submit(
        self, project_id: UUID, title: str, organisation: str, requested_fen: int, summary: str
    ) -> None:
        self.projects[project_id] = Project(project_id, title, organisation, requested_fen, summary)

    # -- review ------------------------------------------------------------------------

    def score(self, project_id: UUID, *, reviewer: str, score: int, comment: str = "") -> None:
        self._ensure_open()
        project = self.project(project_id)
        if project.status != ProjectStatus.SUBMITTED:
            raise ConflictError(
                f"the project is {project.status.value}; only submitted projects are scored",
                code="review-closed",
            )
        who = reviewer.strip()
        if not who:
            raise RuleViolationError("a score names its reviewer", code="reviewer-required")
        if who in project.scores:
            raise ConflictError(
                "this reviewer has already scored this project", code="already-scored"
            )
        _check_score(score)
        self._score(project_id=project_id, reviewer=who, score=score, comment=comment)

    @event(ProjectScored)
    def _score(self, project_id: UUID, reviewer: str, score: int, comment: str) -> None:
        self.projects[project_id].scores[reviewer] = score

    # -- funding -----------------------------------------------------------------------

    def fund(self, project_id: UUID, *, amount_fen: int, reason: str) -> None:
        self._ensure_open()
        project = self.project(project_id)
        if project.status != ProjectStatus.SUBMITTED:
            raise ConflictError(f"the project is {project.status.value}", code="not-submitted")
        if not project.scores:
            raise ConflictError("a project is scored before it is funded", code="not-reviewed")
        check_amount(amount_fen)
        if amount_fen > project.requested_fen:
            raise RuleViolationError(
                f"{amount_fen} fen is more than the {project.requested_fen} fen requested",
                code="exceeds-request",
            )
        if amount_fen > self.remaining_fen:
            raise ConflictError(
                f"{amount_fen} fen would exceed the budget: {self.remaining_fen} fen left",
                code="budget-exceeded",
            )
        self._fund(
            project_id=project_id,
            amount_fen=amount_fen,
            funded_total_fen=self.funded_total_fen + amount_fen,
            reason=reason,
        )

    @event(ProjectFunded)
    def _fund(self, project_id: UUID, amount_fen: int, funded_total_fen: int, reason: str) -> None:
        project = self.projects[project_id]
        project.status = ProjectStatus.FUNDED
        project.funded_fen = amount_fen
        self.funded_total_fen = funded_total_fen

    def decline(self, project_id: UUID, reason: str) -> None:
        self._ensure_open()
        project = self.project(project_id)
        if project.status != ProjectStatus.SUBMITTED:
            raise ConflictError(f"the project is {project.status.value}", code="not-submitted")
        self._decline(project_id=project_id, reason=reason)

    @event(ProjectDeclined)
    def _decline(self, project_id: UUID, reason: str) -> None:
        self.projects[project_id].status = ProjectStatus.DECLINED

    # -- delivery and evaluation -------------------------------------------------------

    def report_milestone(
        self, project_id: UUID, *, title: str, now: datetime, note: str = ""
    ) -> None:
        self._ensure_open()
        project = self.project(project_id)
        if project.status != ProjectStatus.FUNDED:
            raise ConflictError(
                f"the project is {project.status.value}; only funded projects report",
                code="not-funded",
            )
        self._report(project_id=project_id, title=title, note=note, reported_at=now)

    @event(MilestoneReported)
    def _report(self, project_id: UUID, title: str, note: str, reported_at: datetime) -> None:
        self.projects[project_id].milestones.append(Milestone(title, note, reported_at))

    def accept(self, project_id: UUID, *, final_score: int, evaluation: str) -> None:
        self._ensure_open()
        project = self.project(project_id)
        if project.status != ProjectStatus.FUNDED:
            raise ConflictError(
                f"the project is {project.status.value}; only funded projects are accepted",
                code="not-funded",
            )
        if not project.milestones:
            raise ConflictError(
                "a project reports a milestone before it is accepted", code="no-milestones"
            )
        _check_score(final_score)
        self._accept(project_id=project_id, final_score=final_score, evaluation=evaluation)

    @event(ProjectAccepted)
    def _accept(self, project_id: UUID, final_score: int, evaluation: str) -> None:
        project = self.projects[project_id]
        project.status = ProjectStatus.ACCEPTED
        project.final_score = final_score
        project.evaluation = evaluation

    # -- results -----------------------------------------------------------------------

    def publish_results(self, summary: str, now: datetime) -> None:
        self._ensure_open()
        if now < self.deadline:
            raise ConflictError(
                "results are published after the submission deadline", code="deadline-not-passed"
            )
        unfinished = [p for p in self.projects.values() if p.status == ProjectStatus.FUNDED]
        if unfinished:
            raise ConflictError(
                f"{len(unfinished)} funded project(s) not yet accepted", code="projects-unfinished"
            )
        funded = [
            p
            for p in self.projects.values()
            if p.status in (ProjectStatus.FUNDED, ProjectStatus.ACCEPTED)
        ]
        self._publish(
            funded_projects=len(funded), funded_total_fen=self.funded_total_fen, summary=summary
        )

    @event(ResultsPublished)
    def _publish(self, funded_projects: int, funded_total_fen: int, summary: str) -> None:
        self.status = CallStatus.PUBLISHED
        self.summary = summary

    def _ensure_open(self) -> None:
        if self.status != CallStatus.OPEN:
            raise ConflictError(
                "the call's results are published: it is closed", code="call-closed"
            )
