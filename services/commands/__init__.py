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
from services.commands.passbooks import AdjustPoints, AwardPoints, ExpirePoints
from services.commands.rewards import (
    CancelRedemption,
    DelistReward,
    FulfilRedemption,
    ListReward,
    Redeem,
    RestockReward,
)
from services.commands.units import CloseUnit, OpenUnit, RenameUnit
from services.commands.volunteers import (
    EraseVolunteer,
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
    | CancelRedemption,
    Field(discriminator="type"),
]

__all__ = [
    "AdjustPoints",
    "AnyCommand",
    "AwardPoints",
    "CancelActivity",
    "CancelRedemption",
    "CancelSignup",
    "CheckIn",
    "CheckOut",
    "CloseActivity",
    "CloseUnit",
    "Code",
    "Command",
    "ConfirmService",
    "DelistReward",
    "EraseVolunteer",
    "ExpirePoints",
    "FulfilRedemption",
    "Hours",
    "ListReward",
    "LongText",
    "OpenUnit",
    "Phone",
    "PublishActivity",
    "Reason",
    "Redeem",
    "RegisterVolunteer",
    "ReinstateVolunteer",
    "RenameUnit",
    "RestockReward",
    "SignUp",
    "SuspendVolunteer",
    "Text",
    "UpdateVolunteerProfile",
    "When",
    "minutes",
]
