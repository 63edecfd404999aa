"""Commands: what a caller asks the platform to do, one pydantic model each.

The same models validate single HTTP requests (path parameters merged in) and the
items of a batch, where the ``type`` field says which command an item is. One
module per resource; ``AnyCommand`` is the union a batch item is parsed into.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from services.commands.activities import (
    CancelActivity,
    CancelSignup,
    CheckIn,
    CheckOut,
    CloseActivity,
    ConfirmService,
    PublishActivity,
    SignUp,
)
from services.commands.base import (
    Code,
    Command,
    Hours,
    LongText,
    Phone,
    Reason,
    Text,
    When,
    minutes,
)
from services.commands.orders import (
    AcceptOrder,
    ApproveOrder,
    CompleteOrder,
    DeclineOrder,
    DispatchOrder,
    PassOrderDown,
    PlaceOrder,
    RateOrder,
    RejectOrder,
    ServiceLine,
    ShowcaseOrder,
    TakeOrder,
)
from services.commands.passbooks import AdjustPoints, AwardPoints, ExpirePoints
from services.commands.rewards import (
    CancelRedemption,
    DelistReward,
    FulfilRedemption,
    ListReward,
    Redeem,
    RestockReward,
)
from services.commands.service_menu import AddMenuItem, ReviseMenuItem, WithdrawMenuItem
from services.commands.teams import (
    AssignActivityToTeam,
    ChangeTeamLeader,
    DisbandTeam,
    FormTeam,
    JoinTeam,
    LeaveTeam,
)
from services.commands.units import CloseUnit, OpenUnit, RenameUnit
from services.commands.volunteers import (
    RegisterVolunteer,
    ReinstateVolunteer,
    SuspendVolunteer,
    UpdateVolunteerProfile,
)

AnyCommand = Annotated[
    OpenUnit
    | RenameUnit
    | CloseUnit
    | RegisterVolunteer
    | UpdateVolunteerProfile
    | SuspendVolunteer
    | ReinstateVolunteer
    | PublishActivity
    | SignUp
    | CancelSignup
    | CheckIn
    | CheckOut
    | ConfirmService
    | CancelActivity
    | CloseActivity
    | AwardPoints
    | AdjustPoints
    | ExpirePoints
    | ListReward
    | RestockReward
    | DelistReward
    | Redeem
    | FulfilRedemption
    | CancelRedemption
    | FormTeam
    | JoinTeam
    | LeaveTeam
    | ChangeTeamLeader
    | DisbandTeam
    | AssignActivityToTeam
    | AddMenuItem
    | ReviseMenuItem
    | WithdrawMenuItem
    | PlaceOrder
    | ApproveOrder
    | RejectOrder
    | DispatchOrder
    | PassOrderDown
    | TakeOrder
    | AcceptOrder
    | DeclineOrder
    | CompleteOrder
    | RateOrder
    | ShowcaseOrder,
    Field(discriminator="type"),
]

__all__ = [
    "AcceptOrder",
    "AddMenuItem",
    "AdjustPoints",
    "AnyCommand",
    "ApproveOrder",
    "AssignActivityToTeam",
    "AwardPoints",
    "CancelActivity",
    "CancelRedemption",
    "CancelSignup",
    "ChangeTeamLeader",
    "CheckIn",
    "CheckOut",
    "CloseActivity",
    "CloseUnit",
    "Code",
    "Command",
    "CompleteOrder",
    "ConfirmService",
    "DeclineOrder",
    "DelistReward",
    "DisbandTeam",
    "DispatchOrder",
    "ExpirePoints",
    "FormTeam",
    "FulfilRedemption",
    "Hours",
    "JoinTeam",
    "LeaveTeam",
    "ListReward",
    "LongText",
    "OpenUnit",
    "PassOrderDown",
    "Phone",
    "PlaceOrder",
    "PublishActivity",
    "RateOrder",
    "Reason",
    "Redeem",
    "RegisterVolunteer",
    "ReinstateVolunteer",
    "RejectOrder",
    "RenameUnit",
    "RestockReward",
    "ReviseMenuItem",
    "ServiceLine",
    "ShowcaseOrder",
    "SignUp",
    "SuspendVolunteer",
    "TakeOrder",
    "Text",
    "UpdateVolunteerProfile",
    "When",
    "WithdrawMenuItem",
    "minutes",
]
