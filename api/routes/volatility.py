"""Realized-volatility forecasts the flow stored (``models.volatility``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.context import ApiContext
from api.errors import documented
from api.routes.common import V1, End, InstrumentPath, Limit, Offset, Start, found, next_offset, time_range
from api.schemas import LatestVolatility, VolatilityRows
from store import Reader

VolHorizons = Annotated[
    list[Literal["10s", "60s"]] | None,
    Query(alias="horizon", max_length=2, description="horizons to return (repeatable; default: both)"),
]


def volatility_router(context: ApiContext) -> APIRouter:
    router = APIRouter(prefix=V1, tags=["volatility"])
    store = context.store

    @router.get(
        "/volatility/{instrument:path}/history", response_model=VolatilityRows, responses=documented(404, 429, 503)
    )
    async def volatility_range(
        instrument: InstrumentPath,
        start: Start = None,
        end: End = None,
        horizons: VolHorizons = None,
        limit: Limit = 1000,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Stored forecasts with start <= ts < end, a page at a time; each gains its realized volatility
        once matured."""
        low, high = time_range(start, end)

        def query(reader: Reader) -> list[dict[str, Any]]:
            rows = reader.vol_forecast_range(instrument, low, high, horizons, limit, offset)
            return found(reader, instrument, rows)

        rows = await store.run(query)
        return {"instrument": instrument, "rows": rows, "next_offset": next_offset(offset, limit, len(rows))}

    @router.get("/volatility/{instrument:path}", response_model=LatestVolatility, responses=documented(404, 429, 503))
    async def latest_volatility(instrument: InstrumentPath) -> dict[str, Any]:
        """The latest forecast of each horizon and model (empty before the flow has made any for the instrument)."""

        def query(reader: Reader) -> list[dict[str, Any]]:
            return found(reader, instrument, reader.latest_vol_forecasts(instrument))

        return {"instrument": instrument, "forecasts": await store.run(query)}

    return router
