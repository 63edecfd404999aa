"""Command handlers for venture philanthropy calls (公益创投)."""

from __future__ import annotations

from uuid import UUID

from domain.units import PracticeUnit
from domain.venture import VentureCall
from services import commands as c
from services.handlers.base import Context, Handler, Result, ensure_new_id
from services.unit_of_work import UnitOfWork


def open_call(cmd: c.OpenVentureCall, uow: UnitOfWork, ctx: Context) -> Result:
    unit = uow.get(PracticeUnit, cmd.unit_id)
    ctx.principal.ensure_can_write(unit.lineage)
    ensure_new_id(uow, cmd.call_id, "a call", "call-exists")
    call = VentureCall.open_call(
        unit=unit,
        title=cmd.title,
        description=cmd.description,
        budget_fen=cmd.budget_fen,
        deadline=cmd.deadline,
        now=ctx.now,
        call_id=cmd.call_id,
    )
    uow.add(call)
    return _call(call)


def _call_for_write(uow: UnitOfWork, ctx: Context, call_id: UUID) -> VentureCall:
    call = uow.get(VentureCall, call_id)
    ctx.principal.ensure_can_write(call.lineage)
    return call


def _call(call: VentureCall) -> Result:
    return {
        "call_id": str(call.id),
        "status": call.status.value,
        "budget_fen": call.budget_fen,
        "funded_total_fen": call.funded_total_fen,
    }


def _project(call: VentureCall, project_id: UUID) -> Result:
    project = call.project(project_id)
    return {
        **_call(call),
        "project_id": str(project_id),
        "project_status": project.status.value,
        "average_score": project.average_score,
    }


def submit_project(cmd: c.SubmitProject, uow: UnitOfWork, ctx: Context) -> Result:
    call = _call_for_write(uow, ctx, cmd.call_id)
    project_id = call.submit(
        title=cmd.title,
        organisation=cmd.organisation,
        requested_fen=cmd.requested_fen,
        summary=cmd.summary,
        now=ctx.now,
        project_id=cmd.project_id,
    )
    return _project(call, project_id)


def score_project(cmd: c.ScoreProject, uow: UnitOfWork, ctx: Context) -> Result:
    call = _call_for_write(uow, ctx, cmd.call_id)
    call.score(cmd.project_id, reviewer=cmd.reviewer, score=cmd.score, comment=cmd.comment)
    return _project(call, cmd.project_id)


def fund_project(cmd: c.FundProject, uow: UnitOfWork, ctx: Context) -> Result:
    call = _call_for_write(uow, ctx, cmd.call_id)
    call.fund(cmd.project_id, amount_fen=cmd.amount_fen, reason=cmd.reason)
    return _project(call, cmd.project_id)


def decline_project(cmd: c.DeclineProject, uow: UnitOfWork, ctx: Context) -> Result:
    call = _call_for_write(uow, ctx, cmd.call_id)
    call.decline(cmd.project_id, cmd.reason)
    return _project(call, cmd.project_id)


def report_milestone(cmd: c.ReportMilestone, uow: UnitOfWork, ctx: Context) -> Result:
    call = _call_for_write(uow, ctx, cmd.call_id)
    call.report_milestone(cmd.project_id, title=cmd.title, note=cmd.note, now=ctx.now)
    return _project(call, cmd.project_id)


def accept_project(cmd: c.AcceptProject, uow: UnitOfWork, ctx: Context) -> Result:
    call = _call_for_write(uow, ctx, cmd.call_id)
    call.accept(cmd.project_id, final_score=cmd.final_score, evaluation=cmd.evaluation)
    return _project(call, cmd.project_id)


def publish_results(cmd: c.PublishVentureResults, uow: UnitOfWork, ctx: Context) -> Result:
    call = _call_for_write(uow, ctx, cmd.call_id)
    call.publish_results(cmd.summary, ctx.now)
    return _call(call)


HANDLERS: dict[type[c.Command], Handler] = {
    c.OpenVentureCall: open_call,
    c.SubmitProject: submit_project,
    c.ScoreProject: score_project,
    c.FundProject: fund_project,
    c.DeclineProject: decline_project,
    c.ReportMilestone: report_milestone,
    c.AcceptProject: accept_project,
    c.PublishVentureResults: publish_results,
}
