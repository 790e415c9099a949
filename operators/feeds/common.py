"""What every feed decoder shares: the bad-message error and checked number parsing."""

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
    value = float(text)  # type: ignore[arg-type]
    if not 0.0 < value < _INF:
        raise BadMessage(f"price must be positive and finite, got {text!r}")
    return value


def size(text: object) -> float:
    value = float(text)  # type: ignore[arg-type]
    if not 0.0 <= value < _INF:
        raise BadMessage(f"size must be non-negative and finite, got {text!r}")
    return value


def levels(rows: Iterable[Sequence[object]]) -> list[Level]:
    """``[[price, size, ...], ...]`` as sent -> checked ``(price, size)`` floats."""
    parsed = [(float(row[0]), float(row[1])) for row in rows]  # type: ignore[arg-type]
    for level in parsed:  # the hot path: checks inline rather than a call per number
        if not (0.0 < level[0] < _INF and 0.0 <= level[1] < _INF):
            price(level[0])
            size(level[1])
    return parsed


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


_ONE_SECOND = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC) - _EPOCH
