"""What the flow stored about each instrument: the instrument list, its latest book, its features."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.context import ApiContext
from api.errors import documented, invalid
from api.routes.common import V1, End, InstrumentPath, Limit, Offset, Start, found, next_offset, time_range
from api.schemas import Book, FeatureRows, InstrumentList
from quantumflow.features import FEATURE_INDEX, FEATURE_NAMES
from store import Reader
from store.schema import LEVELS


def market_router(context: ApiContext) -> APIRouter:
    router = APIRouter(prefix=V1, tags=["market"])
    store = context.store

    @router.get("/instruments", response_model=InstrumentList, responses=documented(429, 503))
    async def instruments() -> dict[str, Any]:
        """Every instrument the store has rows for."""
        return {"instruments": await store.run(lambda r: r.instruments())}

    @router.get("/book/{instrument:path}", response_model=Book, responses=documented(404, 429, 503))
    async def book(
        instrument: InstrumentPath,
        levels: Annotated[int, Query(ge=1, le=LEVELS, description="levels a side")] = LEVELS,
    ) -> dict[str, Any]:
        """The instrument's latest stored book, top `levels` a side (the flow stores at most 10 books a second)."""
        return await store.run(lambda reader: latest_book_answer(reader, instrument, levels))

    @router.get("/features/{instrument:path}", response_model=FeatureRows, responses=documented(404, 429, 503))
    async def features(
        instrument: InstrumentPath,
        names: Annotated[
            list[str] | None,
            Query(
                alias="features",
                description="feature names (repeat the parameter or separate by commas; default: all 63); "
                "docs/features.md lists them",
            ),
        ] = None,
        start: Start = None,
        end: End = None,
        limit: Limit = 1000,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """The latest feature row, or with `start` and/or `end` the rows in that time range, a page at a time."""
        chosen = feature_names(names)
        columns = ["exchange_ts", *chosen]
        if start is None and end is None:
            row = await store.run(lambda r: found(r, instrument, r.latest("features", instrument, columns)))
            rows, following = ([row] if row else []), None
        else:
            low, high = time_range(start, end)
            rows = await store.run(
                lambda r: found(r, instrument, r.range("features", instrument, low, high, columns, limit, offset))
            )
            following = next_offset(offset, limit, len(rows))
        return {
            "instrument": instrument,
            "features": chosen,
            "rows": [
                {
                    "ts": row["ts"],
                    "seq": row["seq"],
                    "exchange_ts": row["exchange_ts"],
                    "values": {n: row[n] for n in chosen},
                }
                for row in rows
            ],
            "next_offset": following,
        }

    return router


def latest_book_answer(reader: Reader, instrument: str, levels: int) -> dict[str, Any]:
    """The answer of ``GET /v1/book/{instrument}`` (also kept ready by api.latest_answers)."""
    columns = ["exchange_ts", "update_id", *book_columns(levels)]
    row = found(reader, instrument, reader.latest("book", instrument, columns), "book")
    return {**row, "bids": _side(row, "bid", levels), "asks": _side(row, "ask", levels)}


def book_columns(levels: int) -> list[str]:
    return [f"{side}_{what}_{k}" for side in ("bid", "ask") for k in range(1, levels + 1) for what in ("price", "size")]


def feature_names(names: list[str] | None) -> list[str]:
    """The names asked for, in registry order; a 422 naming any unknown one."""
    if not names:
        return list(FEATURE_NAMES)
    asked = {name.strip() for item in names for name in item.split(",") if name.strip()}
    unknown = sorted(asked - FEATURE_INDEX.keys())
    if unknown:
        raise invalid(
            "query", "features", f"unknown features: {', '.join(unknown)} (docs/features.md lists the 63 names)", names
        )
    if not asked:
        raise invalid("query", "features", "no feature named", names)
    return sorted(asked, key=FEATURE_INDEX.__getitem__)


def _side(row: dict[str, Any], side: str, levels: int) -> list[tuple[float, float]]:
    out = []
    for k in range(1, levels + 1):
        price, size = row[f"{side}_price_{k}"], row[f"{side}_size_{k}"]
        if price is None or size is None:
            break
        out.append((price, size))
    return out
