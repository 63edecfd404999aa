"""Reporting periods: which day, ISO week, month, quarter and year an event falls in.

Periods are local to one configurable timezone (the network's, by default
Asia/Shanghai) and are keyed by self-describing strings, so one text column can
hold a key of any granularity:

=========  ==============
day        ``2026-03-31``
week       ``2026-W14`` (ISO 8601 week-numbering year and week)
month      ``2026-03``
quarter    ``2026-Q1``
year       ``2026``
all-time   ``all``
=========  ==============

Projections turn every event's business time into keys millions of times while
replaying history, so :class:`PeriodClock` memoises the zone's offsets and the
keys of each day.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal, NoReturn
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE: Final = "Asia/Shanghai"

Granularity = Literal["day", "week", "month", "quarter", "year", "all"]
GRANULARITIES: Final[tuple[Granularity, ...]] = ("day", "week", "month", "quarter", "year", "all")
ALL: Final = "all"

_CACHE_LIMIT = 200_000
_QUARTER_HOUR = 900
_DAY = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_key(d: date) -> str:
    return d.isoformat()


def week_key(d: date) -> str:
    iso = d.isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


def month_key(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def quarter_key(d: date) -> str:
    return f"{d.year:04d}-Q{(d.month - 1) // 3 + 1}"


def year_key(d: date) -> str:
    return f"{d.year:04d}"


def period_key(granularity: Granularity, d: date) -> str:
    """The key of the period of ``granularity`` that contains ``d``."""
    if granularity == "day":
        return day_key(d)
    if granularity == "week":
        return week_key(d)
    if granularity == "month":
        return month_key(d)
    if granularity == "quarter":
        return quarter_key(d)
    if granularity == "year":
        return year_key(d)
    if granularity == "all":
        return ALL
    msg = f"unknown granularity {granularity!r}"
    raise ValueError(msg)


def period_start(granularity: Granularity, key: str) -> date:
    """The first day of the period ``key``; raises ``ValueError`` on a malformed key.

    The all-time period has no first day: ``date.min`` stands for it.
    """
    try:
        if granularity == "day":
            return date.fromisoformat(key) if len(key) == 10 else _bad(granularity, key)
        if granularity == "week":
            year, week = key.split("-W")
            if len(year) != 4 or len(week) != 2:
                _bad(granularity, key)
            return date.fromisocalendar(int(year), int(week), 1)
        if granularity == "month":
            year, month = key.split("-")
            if len(year) != 4 or len(month) != 2:
                _bad(granularity, key)
            return date(int(year), int(month), 1)
        if granularity == "quarter":
            year, quarter = key.split("-Q")
            q = int(quarter)
            if len(year) != 4 or not 1 <= q <= 4:
                _bad(granularity, key)
            return date(int(year), 3 * q - 2, 1)
        if granularity == "year":
            if len(key) != 4:
                _bad(granularity, key)
            return date(int(key), 1, 1)
        if granularity == "all":
            return date.min if key == ALL else _bad(granularity, key)
    except ValueError as exc:
        msg = f"{key!r} is not a {granularity} key"
        raise ValueError(msg) from exc
    msg = f"unknown granularity {granularity!r}"
    raise ValueError(msg)


def _bad(granularity: str, key: str) -> NoReturn:
    msg = f"{key!r} is not a {granularity} key"
    raise ValueError(msg)


def validate_key(granularity: Granularity, key: str) -> str:
    """``key`` if it is a well-formed key of ``granularity`` (canonical form)."""
    start = period_start(granularity, key)
    if granularity != "all" and period_key(granularity, start) != key:
        msg = f"{key!r} is not a {granularity} key"
        raise ValueError(msg)
    return key


def next_period_start(granularity: Granularity, start: date) -> date:
    if granularity == "day":
        return start + timedelta(days=1)
    if granularity == "week":
        return start + timedelta(weeks=1)
    if granularity in ("month", "quarter"):
        step = 1 if granularity == "month" else 3
        months = start.year * 12 + start.month - 1 + step
        return date(months // 12, months % 12 + 1, 1)
    if granularity == "year":
        return date(start.year + 1, 1, 1)
    msg = f"the {granularity} granularity has no next period"
    raise ValueError(msg)


def keys_between(granularity: Granularity, start_key: str, end_key: str) -> list[str]:
    """Every key of ``granularity`` from ``start_key`` to ``end_key``, both included."""
    if granularity == "all":
        validate_key("all", start_key)
        validate_key("all", end_key)
        return [ALL]
    current = period_start(granularity, validate_key(granularity, start_key))
    last = period_start(granularity, validate_key(granularity, end_key))
    keys: list[str] = []
    while current <= last:
        keys.append(period_key(granularity, current))
        current = next_period_start(granularity, current)
    return keys


@dataclass(frozen=True, slots=True)
class PeriodKeys:
    """The keys of every period that contains one local day."""

    day: str
    week: str
    month: str
    quarter: str
    year: str
    all: str = ALL

    @classmethod
    def of(cls, d: date) -> PeriodKeys:
        return cls(day_key(d), week_key(d), month_key(d), quarter_key(d), year_key(d))

    def key(self, granularity: Granularity) -> str:
        value: str = getattr(self, granularity)
        return value


class PeriodClock:
    """Maps instants (datetimes or ISO 8601 strings) to local days and period keys.

    Replaying history asks for millions of days, so the zone's UTC offset is kept
    per quarter hour (offsets change on quarter hours in every zone of the tz
    database since 1970; a quarter hour whose two ends disagree is not cached) and
    day keys per day number.
    """

    def __init__(self, timezone: str = DEFAULT_TIMEZONE) -> None:
        self.timezone = timezone
        self.zone = ZoneInfo(timezone)
        self._offsets: dict[int, float] = {}  # quarter hours since the epoch -> offset (s)
        self._days: dict[int, str] = {}  # local days since the epoch -> day key
        self._by_text: dict[str, str] = {}  # minute and offset of an ISO string -> day key
        self._periods: dict[str, PeriodKeys] = {}

    def local_date(self, at: datetime | str) -> date:
        when = datetime.fromisoformat(at) if isinstance(at, str) else at
        if when.tzinfo is None:
            msg = f"a business time must be timezone-aware, got {at!r}"
            raise ValueError(msg)
        return when.astimezone(self.zone).date()

    def day_of(self, at: datetime) -> str:
        """The local day key of an aware datetime (e.g. an envelope's ``recorded_at``)."""
        if at.tzinfo is None:
            msg = f"a business time must be timezone-aware, got {at!r}"
            raise ValueError(msg)
        seconds = at.timestamp()
        quarter = int(seconds // _QUARTER_HOUR)
        offset = self._offsets.get(quarter)
        if offset is None:
            offset = self._offset(quarter, seconds)
        day = int((seconds + offset) // _DAY)
        key = self._days.get(day)
        if key is None:
            key = self._days[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
        return key

    def day_of_iso(self, at: str) -> str:
        """The local day key of an ISO 8601 string from a payload (``at``, ``awarded_at``).

        Strings in the library's format (``YYYY-MM-DDTHH:MM:SS[.ffffff]+HH:MM``) are
        memoised by their minute and offset (awards made together share them).
        """
        if not isinstance(at, str):
            msg = f"a business time must be an ISO 8601 string, got {at!r}"
            raise TypeError(msg)
        if len(at) >= 25 and at[-6] in "+-" and at[-3] == ":" and at[10] == "T":
            bucket = at[:16] + at[-6:]
            key = self._by_text.get(bucket)
            if key is None:
                if len(self._by_text) >= _CACHE_LIMIT:
                    self._by_text.clear()
                key = self._by_text[bucket] = self.day_of(datetime.fromisoformat(at))
            return key
        return self.day_of(datetime.fromisoformat(at))

    def keys_of_day(self, day: str) -> PeriodKeys:
        keys = self._periods.get(day)
        if keys is None:
            keys = self._periods[day] = PeriodKeys.of(date.fromisoformat(day))
        return keys

    def current(self, granularity: Granularity, now: datetime | None = None) -> str:
        at = now if now is not None else datetime.now(UTC)
        return period_key(granularity, self.local_date(at))

    def _offset(self, quarter: int, seconds: float) -> float:
        start = quarter * _QUARTER_HOUR
        first = _utcoffset(start, self.zone)
        if first != _utcoffset(start + _QUARTER_HOUR - 1, self.zone):
            return _utcoffset(seconds, self.zone)  # a transition inside it: not cached
        if len(self._offsets) >= _CACHE_LIMIT:
            self._offsets.clear()
        self._offsets[quarter] = first
        return first


def _utcoffset(seconds: float, zone: ZoneInfo) -> float:
    offset = datetime.fromtimestamp(seconds, zone).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


# -- the timezone a view was built in ------------------------------------------------

META_DDL = """
CREATE TABLE IF NOT EXISTS projection_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"""


def remember_timezone(conn: sqlite3.Connection, timezone: str) -> None:
    """Record the view's timezone; refuse to mix periods of two timezones in one view."""
    ZoneInfo(timezone)  # fail fast on an unknown zone
    conn.execute(META_DDL)
    row = conn.execute("SELECT value FROM projection_meta WHERE key = 'timezone'").fetchone()
    if row is not None and row[0] != timezone:
        applied = conn.execute("SELECT MAX(position) FROM stream_position").fetchone()
        if applied is not None and applied[0] is not None:
            msg = (
                f"this view was built with periods in {row[0]}; rebuild it from "
                f"scratch to use {timezone}"
            )
            raise ValueError(msg)
    conn.execute(
        "INSERT INTO projection_meta (key, value) VALUES ('timezone', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (timezone,),
    )


def recall_timezone(conn: sqlite3.Connection) -> str:
    """The timezone a view was built in (the default if it was never recorded)."""
    try:
        row = conn.execute("SELECT value FROM projection_meta WHERE key = 'timezone'").fetchone()
    except sqlite3.OperationalError:  # no such table: the view was never created
        return DEFAULT_TIMEZONE
    return str(row[0]) if row is not None else DEFAULT_TIMEZONE
