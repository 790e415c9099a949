"""Stored backtest results (``quantumflow backtest`` saves each one): the list, and one in full."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from api.context import ApiContext
from api.errors import documented
from api.routes.common import V1
from api.schemas import Backtest, BacktestList, BacktestSummary, ErrorMessage

MAX_BACKTESTS = 1000
NAME = r"^[^\s/]+$"  # what a strategy's name or an id may be: no spaces, no slashes
INSTRUMENT = r"^[^\s:]+:\S+$"
SUMMARY = tuple(BacktestSummary.model_fields)
UNKNOWN = {404: {"model": ErrorMessage, "description": "no backtest of that id is stored"}}


def backtests_router(context: ApiContext) -> APIRouter:
    router = APIRouter(prefix=V1, tags=["backtests"])
    store = context.store

    @router.get("/backtests", response_model=BacktestList, responses=documented(429, 503))
    async def backtests(
        limit: Annotated[int, Query(ge=1, le=MAX_BACKTESTS, description="most backtests to list")] = 100,
        strategy: Annotated[
            str | None, Query(max_length=100, pattern=NAME, description="only this strategy's, e.g. `follow`")
        ] = None,
        instrument: Annotated[
            str | None,
            Query(max_length=200, pattern=INSTRUMENT, description="only this instrument's, `exchange:symbol`"),
        ] = None,
    ) -> dict[str, Any]:
        """Stored backtests, newest first, with their headline metrics."""
        rows = await store.run(lambda r: r.backtests(limit, strategy, instrument))
        return {"backtests": [summary(row) for row in rows]}

    @router.get("/backtests/{id}", response_model=Backtest, responses={**UNKNOWN, **documented(429, 503)})
    async def backtest(
        id: Annotated[str, Path(max_length=200, pattern=NAME, description="the backtest's id, as listed")],
    ) -> dict[str, Any]:
        """One stored backtest: its recordings, settings, every metric and its benchmarks."""
        row = await store.run(lambda r: r.backtest(id))
        if row is None:
            raise HTTPException(404, f"no backtest {id!r} is stored: GET /v1/backtests lists those there are")
        return {**summary(row), **{k: row[k] for k in ("recordings", "settings", "metrics", "benchmarks")}}

    return router


def summary(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row["ts"] if name == "created" else row[name] for name in SUMMARY}
