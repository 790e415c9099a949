"""What the routes share: query parameters, the checks that span several, and the 404 of an empty answer."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import HTTPException, Path, Query
from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from api.errors import invalid, unknown_instrument
from api.schemas import MAX_NS
from api.times import to_ns
from store import Reader

T = TypeVar("T")
V1 = "/v1"  # the prefix of the versioned routes (routers carry it, so route templates are whole paths)

MAX_PAGE = 10_000

InstrumentPath = Annotated[str, Path(description="`exchange:symbol`, e.g. `binance:BTCUSDT` or `kraken:XBT/USD`")]
TIME_FORMS = (
    "nanoseconds since the Unix epoch (an integer), or ISO 8601: `2024-08-09T00:00:00Z`, "
    "`2024-08-09T02:00:00.5+02:00`, `2024-08-09` (no zone means UTC; up to nine decimals of a second)"
)
TIME_EXAMPLES = {
    "iso": {"summary": "ISO 8601, UTC", "value": "2024-08-09T00:00:00Z"},
    "offset": {"summary": "ISO 8601 with an offset", "value": "2024-08-09T02:00:00+02:00"},
    "ns": {"summary": "nanoseconds since the epoch", "value": 1723161600000000000},
}
Time = Annotated[
    int | None,
    BeforeValidator(lambda value: None if value is None else query_time(value)),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_NS}, {"type": "string", "format": "date-time"}]}
    ),
]
Start = Annotated[
    Time, Query(description=f"start of a time range, inclusive: {TIME_FORMS}", openapi_examples=TIME_EXAMPLES)
]
End = Annotated[
    Time,
    Query(
        description=f"end of the time range, exclusive (default: no end): {TIME_FORMS}", openapi_examples=TIME_EXAMPLES
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="rows a page")]
Offset = Annotated[int, Query(ge=0, le=2**62, description="rows to skip (next_offset of the previous page)")]


def query_time(value: object) -> int:
    """A time parameter as ns; a 422 with the reason, without pydantic's "Value error, " before it."""
    try:
        return to_ns(value)
    except ValueError as error:
        raise PydanticCustomError("value_error", "{reason}", {"reason": str(error)}) from None


def time_range(start: int | None, end: int | None) -> tuple[int, int]:
    """[start, end) with an open start or end filled in; a 422 saying why when it is empty or inverted."""
    low = 0 if start is None else start
    high = MAX_NS if end is None else end
    if low >= high:
        raise invalid("query", "end", f"the time range is empty: start ({low}) must be before end ({high})", end)
    return low, high


def next_offset(offset: int, limit: int, returned: int) -> int | None:
    return offset + returned if returned == limit else None


def found(reader: Reader, instrument: str, answer: T, missing: str | None = None) -> T:
    """The answer of a query about ``instrument`` if it is not empty. If it is: a 404 when the instrument is
    unknown; for a known one, a 404 saying that no ``missing`` is stored yet, or the empty answer (None)."""
    if answer:
        return answer
    if instrument not in reader.instruments():
        raise unknown_instrument(instrument)
    if missing is not None:
        raise HTTPException(404, f"no {missing} stored for {instrument!r} yet")
    return answer
