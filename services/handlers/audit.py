"""Command handlers for what the audit interface records: personal-data views and
chain checkpoints."""

from __future__ import annotations

from domain.audit import AccessLog, ChainCheckpoint
from domain.errors import ConflictError
from domain.units import PracticeUnit
from services.commands.audit import RecordChainCheckpoint, RecordPersonalDataView
from services.handlers.base import Context, Handler, Result
from services.principals import ForbiddenError
from services.unit_of_work import UnitOfWork


def record_personal_data_view(cmd: RecordPersonalDataView, uow: UnitOfWork, ctx: Context) -> Result:
    if not ctx.principal.can_read_everything():
        raise ForbiddenError("only auditors and admins read through the audit interface")
    log = uow.find(AccessLog, AccessLog.create_id(cmd.day))
    if log is None:
        log = AccessLog.open(cmd.day)
        uow.add(log)
    log.record_view(cmd.subject_id, cmd.subject_type, cmd.view, cmd.purpose)
    return {"access_log_id": str(log.id), "views": log.views}


def record_chain_checkpoint(cmd: RecordChainCheckpoint, uow: UnitOfWork, ctx: Context) -> Result:
    ctx.principal.ensure_admin()
    unit = uow.get(PracticeUnit, cmd.unit_id)
    checkpoint_id = ChainCheckpoint.create_id(unit.id, cmd.quarter)
    if uow.find(ChainCheckpoint, checkpoint_id) is not None:
        raise ConflictError(
            f"unit {unit.id} already has a checkpoint for {cmd.quarter}",
            code="checkpoint-exists",
        )
    checkpoint = ChainCheckpoint.record(
        unit_id=unit.id,
        unit_path=unit.lineage,
        quarter=cmd.quarter,
        position=cmd.position,
        chain_hash=cmd.chain_hash,
        subtree_events=cmd.subtree_events,
        signature=cmd.signature,
    )
    uow.add(checkpoint)
    return {"checkpoint_id": str(checkpoint.id)}


HANDLERS: dict[type, Handler] = {
    RecordPersonalDataView: record_personal_data_view,
    RecordChainCheckpoint: record_chain_checkpoint,
}
