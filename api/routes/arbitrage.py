"""Current cross-venue arbitrage opportunities, from each instrument's latest stored book."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.context import ApiContext
from api.errors import documented
from api.routes.common import V1
from api.schemas import ArbitrageView
from operators.arbitrage import Quote, find_opportunities, markets

TOP = ["bid_price_1", "bid_size_1", "ask_price_1", "ask_size_1"]


def arbitrage_router(context: ApiContext) -> APIRouter:
    router = APIRouter(prefix=V1, tags=["arbitrage"])
    rules = context.settings.arbitrage

    @router.get("/arbitrage", response_model=ArbitrageView, responses=documented(429, 503))
    async def arbitrage(
        min_net_bps: Annotated[
            float | None, Query(ge=-10_000, le=10_000, description="only opportunities with at least this net edge")
        ] = None,
        max_age_ms: Annotated[
            float | None, Query(gt=0, le=1e12, description="leave out quotes older than this (default: keep all)")
        ] = None,
    ) -> dict[str, Any]:
        """Pairs of venues quoting the same asset where one's best bid is above the other's best ask, with the
        executable size and the edge before and after taker fees (see docs/api.md for the rules)."""
        rows = await context.store.run(lambda r: r.latest_per_instrument("book", TOP))
        now = time.time_ns()
        quotes = [
            Quote(row["instrument"], row["ts"], *(row[c] for c in TOP))
            for row in rows
            if None not in (row[c] for c in TOP)
        ]
        found = find_opportunities(quotes, now, rules, max_age_ms)
        return {
            "ts": now,
            "taker_fees_bps": dict(rules.taker_fees_bps),
            "markets": [
                {"asset": asset, "quotes": [{**asdict(q), "age_ms": (now - q.ts) / 1e6} for q in group]}
                for asset, group in markets(quotes, rules, now, max_age_ms).items()
            ],
            "opportunities": [asdict(o) for o in found if min_net_bps is None or o.net_bps >= min_net_bps],
        }

    return router
