"""What every command shares: the base model and the constrained field types."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

# No control characters (NUL, escape, DEL...) in any text: one line for names and
# titles; tabs and line breaks allowed in free text. PostgreSQL's JSONB refuses NUL.
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
FREE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=ONE_LINE)
]
LongText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=FREE_TEXT)
]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500, pattern=FREE_TEXT)
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 -]{5,20}$")]
Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._-]{1,64}$")]


def _in_range(t: datetime) -> datetime:
    if not 2000 <= t.year <= 2100:
        msg = "must be between the years 2000 and 2100"
        raise ValueError(msg)
    return t


When = Annotated[AwareDatetime, AfterValidator(_in_range)]
Hours = Annotated[Decimal, Field(gt=0, le=24 * 7, max_digits=6, decimal_places=2)]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def minutes(hours: Decimal | None) -> int | None:
    return None if hours is None else int((hours * 60).to_integral_value())
