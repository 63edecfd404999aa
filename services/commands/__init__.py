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
from services.commands.corrections import (
    ApproveServiceCorrection,
    RejectServiceCorrection,
    RequestServiceCorrection,
)
from services.commands.funds import DisburseMoney, EraseDonorData, OpenFund, ReceiveMoney
from services.commands.orders import (
    AcceptOrder,
    ApproveOrder,
    CompleteOrder,
    DeclineOrder,
    DispatchOrder,
    EraseOrderResidentData,
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
from services.commands.venture import (
    AcceptProject,
    DeclineProject,
    FundProject,
    OpenVentureCall,
    PublishVentureResults,
    ReportMilestone,
    ScoreProject,
    SubmitProject,
)
from services.commands.volunteers import (
    EraseVolunteer,
    RegisterVolunteer,
    ReinstateVolunteer,
    SuspendVolunteer,
    UpdateVolunteerProfile,
)
from services.commands.wishes import (
    CancelWish,
    ClaimWish,
    ConfirmWish,
    EraseWishResidentData,
    FulfilWish,
    PostWish,
    ReleaseWish,
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
    | RequestServiceCorrection
    | ApproveServiceCorrection
    | RejectServiceCorrection
    | OpenFund
    | ReceiveMoney
    | DisburseMoney
    | PostWish
    | ClaimWish
    | ReleaseWish
    | FulfilWish
    | ConfirmWish
    | CancelWish
    | OpenVentureCall
    | SubmitProject
    | ScoreProject
    | FundProject
    | DeclineProject
    | ReportMilestone
    | AcceptProject
    | PublishVentureResults
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
    "AcceptProject",
    "AddMenuItem",
    "AdjustPoints",
    "AnyCommand",
    "ApproveOrder",
    "ApproveServiceCorrection",
    "AssignActivityToTeam",
    "AwardPoints",
    "CancelActivity",
    "CancelRedemption",
    "CancelSignup",
    "CancelWish",
    "ChangeTeamLeader",
    "CheckIn",
    "CheckOut",
    "ClaimWish",
    "CloseActivity",
    "CloseUnit",
    "Code",
    "Command",
    "CompleteOrder",
    "ConfirmService",
    "ConfirmWish",
    "DeclineOrder",
    "DeclineProject",
    "DelistReward",
    "DisbandTeam",
    "DisburseMoney",
    "DispatchOrder",
    "EraseDonorData",
    "EraseOrderResidentData",
    "EraseVolunteer",
    "EraseWishResidentData",
    "ExpirePoints",
    "FormTeam",
    "FulfilRedemption",
    "FulfilWish",
    "FundProject",
    "Hours",
    "JoinTeam",
    "LeaveTeam",
    "ListReward",
    "LongText",
    "OpenFund",
    "OpenUnit",
    "OpenVentureCall",
    "PassOrderDown",
    "Phone",
    "PlaceOrder",
    "PostWish",
    "PublishActivity",
    "PublishVentureResults",
    "RateOrder",
    "Reason",
    "ReceiveMoney",
    "Redeem",
    "RegisterVolunteer",
    "ReinstateVolunteer",
    "RejectOrder",
    "RejectServiceCorrection",
    "ReleaseWish",
    "RenameUnit",
    "ReportMilestone",
    "RequestServiceCorrection",
    "RestockReward",
    "ReviseMenuItem",
    "ScoreProject",
    "ServiceLine",
    "ShowcaseOrder",
    "SignUp",
    "SubmitProject",
    "SuspendVolunteer",
    "TakeOrder",
    "Text",
    "UpdateVolunteerProfile",
    "When",
    "WithdrawMenuItem",
    "minutes",
]
