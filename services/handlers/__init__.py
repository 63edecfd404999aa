"""Command handlers: load aggregates, check the caller's reach, call the domain.

Each handler takes a command, a unit of work and the command context, and
returns the command's result as simple JSON-ready values. Authorisation happens
here because this is where the target's place in the hierarchy is known. One
module per resource, each with its own ``HANDLERS``; this one merges them.
"""

from __future__ import annotations

from services.commands import Command
from services.handlers import (
    activities,
    audit,
    corrections,
    funds,
    orders,
    passbooks,
    rewards,
    service_menu,
    teams,
    units,
    venture,
    volunteers,
    wishes,
)
from services.handlers.base import Context, Handler, Result

HANDLERS: dict[type[Command], Handler] = {
    **units.HANDLERS,
    **volunteers.HANDLERS,
    **activities.HANDLERS,
    **passbooks.HANDLERS,
    **rewards.HANDLERS,
    **corrections.HANDLERS,
    **funds.HANDLERS,
    **wishes.HANDLERS,
    **venture.HANDLERS,
    **teams.HANDLERS,
    **service_menu.HANDLERS,
    **orders.HANDLERS,
    **audit.HANDLERS,  # not in AnyCommand: the audit interface records these itself
}

__all__ = ["HANDLERS", "Context", "Handler", "Result"]
