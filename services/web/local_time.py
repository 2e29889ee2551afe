"""The user's wall clock: times are stored in UTC and typed and read in the user's time zone.

A `datetime-local` input carries no zone; the operator means their own. Each web
user has one (their pick in the header, else `THREADLINE_TIMEZONE`), and these
helpers turn between that and the UTC the log and the views keep.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from threadline.domain.model.errors import InvalidInput


@cache
def zone(name: str) -> tzinfo:
    """The named zone; UTC for an empty or unknown name (a stored name the system lost)."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def parse_local(raw: str, where: tzinfo, field: str, example: str = "2030-05-01T09:00") -> datetime:
    """A `datetime-local` value typed in `where`, as an aware UTC time."""
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(field, f"expected a date and time, e.g. {example}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=where)
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00 east of UTC is before year 1
        utc = None
    if utc is None or not 1000 <= utc.year < 9000:  # what the API takes too
        raise InvalidInput(field, f"expected a date and time, e.g. {example}")
    return utc


def local_input(value: str | None, where: tzinfo) -> str:
    """A stored UTC time as the value of a `datetime-local` input in `where` (minutes)."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(where).strftime("%Y-%m-%dT%H:%M")
