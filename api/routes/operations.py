"""For operators of the service: /health and /metrics (Prometheus)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from api.context import ApiContext
from api.schemas import Health
from api.store_access import StoreUnavailable
from api.telemetry import CONTENT_TYPE, exposition, render_flow
from store import Reader


def operations_router(context: ApiContext) -> APIRouter:
    router = APIRouter(tags=["operations"])
    store = context.store

    @router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "store down"}})
    async def health() -> Any:
        """Whether the store answers, and how long ago each instrument's last event was received."""
        answer = {"status": "ok", "store": store.store.url, "detail": None, "instruments": []}
        try:
            last = await store.run(last_events)
        except StoreUnavailable as error:
            return JSONResponse({**answer, "status": "unavailable", "detail": error.detail}, status_code=503)
        now = time.time_ns()
        answer["instruments"] = [
            {"instrument": i, "last_event_ts": ts, "age_s": (now - ts) / 1e9} for i, ts in sorted(last.items())
        ]
        return answer

    @router.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {}}, "description": "Prometheus text format"}},
    )
    async def metrics() -> PlainTextResponse:
        """Request counts and latency histograms per route, the flow's progress and lag, and dead letters."""
        try:
            run, dead = await store.run(lambda r: (r.latest_run_metrics(), r.count("dead_letters")))
            flow = render_flow(run, dead, True, time.time_ns())
        except StoreUnavailable:
            flow = render_flow([], None, False, time.time_ns())
        return PlainTextResponse(exposition([*context.metrics.render(), *flow]), media_type=CONTENT_TYPE)

    return router


def last_events(reader: Reader) -> dict[str, int]:
    """Each instrument's latest receive time over its book events (feature rows) and trades."""
    last: dict[str, int] = {}
    for table in ("features", "trades"):
        for row in reader.latest_per_instrument(table, []):
            last[row["instrument"]] = max(row["ts"], last.get(row["instrument"], row["ts"]))
    return last
