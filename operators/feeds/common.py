"""What every feed decoder shares: the bad-message error, checked number parsing and shape checks.

A decoder reports anything its venue's protocol does not allow as ``BadMessage``, values of the
wrong type or shape included, so that any other exception out of it is a bug (see
``operators.feeds.parse``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from quantumflow.events import Level

_INF = math.inf
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BadMessage(ValueError):
    """A message that is not what its venue's protocol allows; the reason says why."""


def price(text: object) -> float:
    value = _float(text, "price")
    if not 0.0 < value < _INF:
        raise BadMessage(f"price must be positive and finite, got {text!r}")
    return value


def size(text: object) -> float:
    value = _float(text, "size")
    if not 0.0 <= value < _INF:
        raise BadMessage(f"size must be non-negative and finite, got {text!r}")
    return value


def levels(rows: Iterable[Sequence[object]]) -> list[Level]:
    """``[[price, size, ...], ...]`` as sent -> checked ``(price, size)`` floats."""
    try:
        parsed = [(float(row[0]), float(row[1])) for row in rows]  # type: ignore[arg-type]
    except (TypeError, IndexError) as error:
        raise BadMessage(f"levels must be [price, size, ...] arrays: {error}") from error
    for level in parsed:  # the hot path: checks inline rather than a call per number
        if not (0.0 < level[0] < _INF and 0.0 <= level[1] < _INF):
            price(level[0])
            size(level[1])
    return parsed


def objects(value: object, what: str) -> list[dict]:
    """A JSON array of objects, as the venue must send ``what``."""
    if type(value) is not list or any(type(item) is not dict for item in value):
        raise BadMessage(f"{what} must be an array of JSON objects")
    return value


def arrays(value: object, what: str, length: int) -> list[list]:
    """A JSON array of arrays of at least ``length`` items, as the venue must send ``what``."""
    if type(value) is not list or any(type(item) is not list or len(item) < length for item in value):
        raise BadMessage(f"{what} must be an array of arrays of {length} or more items")
    return value


def integer(message: dict, field: str) -> int:
    value = message[field]
    if type(value) is not int:
        raise BadMessage(f"field {field!r} must be an integer, got {value!r}")
    return value


def ms_to_ns(value: object) -> int:
    if type(value) is not int:
        raise BadMessage(f"timestamp must be integer milliseconds, got {value!r}")
    return value * 1_000_000


def decimal_seconds_to_ns(text: str) -> int:
    """``"1618677817.0618958"`` -> exact integer nanoseconds (no float rounding)."""
    if not isinstance(text, str):
        raise BadMessage(f"not a decimal epoch time in seconds: {text!r}")
    whole, _, fraction = text.strip().partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 9:
        raise BadMessage(f"not a decimal epoch time in seconds: {text!r}")
    return int(whole) * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


def iso_to_ns(text: object) -> int:
    """``"2021-04-17T16:43:37.075687Z"`` (UTC, up to nanoseconds) -> integer nanoseconds."""
    if not isinstance(text, str) or not text.endswith("Z"):
        raise BadMessage(f"not a UTC ISO-8601 time: {text!r}")
    main, _, fraction = text[:-1].partition(".")
    if (fraction and not fraction.isdigit()) or len(fraction) > 9:
        raise BadMessage(f"not a UTC ISO-8601 time: {text!r}")
    try:
        moment = datetime.fromisoformat(main).replace(tzinfo=UTC)
    except ValueError as error:
        raise BadMessage(f"not a UTC ISO-8601 time: {text!r}") from error
    seconds = (moment - _EPOCH) // _ONE_SECOND
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


def _float(text: object, what: str) -> float:
    try:
        return float(text)  # type: ignore[arg-type]
    except TypeError as error:
        raise BadMessage(f"{what} must be a number or a numeric string, got {text!r}") from error


_ONE_SECOND = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC) - _EPOCH
