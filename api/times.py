"""Times in query parameters: integer nanoseconds since the Unix epoch, or ISO 8601 read exactly to the nanosecond."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from api.schemas import MAX_NS

EXAMPLE = "2024-08-09T00:00:00Z"
_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:[.,](?P<fraction>\d{1,9}))?"
    r"(?P<zone>Z|z|[+\- ]\d{2}(?::?\d{2})?)?)?\Z"  # " 02:00" is "+02:00" with its + decoded as a space in a URL
)
_INTEGER = re.compile(r"[+-]?\d+\Z")
_EPOCH = datetime(1970, 1, 1)  # naive: the date-time read is naive too, and shifted by its offset


def to_ns(value: object) -> int:
    """``value`` as ns since the epoch: an integer (or its digits) as it is, or an ISO 8601 date or date-time with
    ``Z`` or an offset (none means UTC) and up to nine decimals of a second. ValueError saying why otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        ns = value
    elif isinstance(value, str) and _INTEGER.match(value.strip()):
        ns = int(value.strip())
    elif isinstance(value, str):
        ns = _iso_ns(value.strip())
    else:
        raise ValueError(f"expected nanoseconds since the epoch or an ISO 8601 time such as {EXAMPLE}")
    if not 0 <= ns <= MAX_NS:
        raise ValueError(f"the time must lie from 1970-01-01T00:00:00Z to 2262-04-11 (0 to {MAX_NS} ns)")
    return ns


def _iso_ns(text: str) -> int:
    match = _ISO.match(text)
    if match is None:
        raise ValueError(
            f"not a time: expected nanoseconds since the epoch (an integer) or ISO 8601 such as {EXAMPLE}, "
            "2024-08-09T02:00:00+02:00 or 2024-08-09 (no zone means UTC)"
        )
    clock = match["time"] or "00:00"
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{clock}")
    except ValueError as error:
        raise ValueError(f"not a time: {error}") from None
    offset = _offset(match["zone"])
    seconds = (moment - _EPOCH - offset) // timedelta(seconds=1)
    fraction = int((match["fraction"] or "").ljust(9, "0"))
    return seconds * 1_000_000_000 + fraction


def _offset(zone: str | None) -> timedelta:
    if zone is None or zone in ("Z", "z"):
        return timedelta(0)
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"not a time: the UTC offset {zone} is out of range")
    sign = -1 if zone[0] == "-" else 1
    return sign * timedelta(hours=hours, minutes=minutes)
