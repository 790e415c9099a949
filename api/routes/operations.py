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

    @router.get(
        "/health",
        response_model=Health,
        responses={503: {"model": Health, "description": "the store cannot be queried"}},
    )
    async def health() -> Any:
        """Whether the store answers (503 if not) and its data is fresh: `degraded` (still 200: the API serves
        what is stored) when an instrument's last event is older than QF_API_STALE_AFTER_S, or none is stored."""
        answer = {"status": "ok", "store": store.store.url, "detail": None, "instruments": []}
        try:
            last = await store.run(last_events)
        except StoreUnavailable as error:
            return JSONResponse({**answer, "status": "unavailable", "detail": error.detail}, status_code=503)
        return {**answer, **freshness(last, time.time_ns(), context.settings.stale_after_s)}

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


def freshness(last: dict[str, int], now: int, stale_after_s: float | None) -> dict[str, Any]:
    """``status``, ``detail`` and ``instruments`` of /health, from each instrument's last event time."""
    instruments = []
    for instrument, ts in sorted(last.items()):
        age = (now - ts) / 1e9
        old = stale_after_s is not None and age > stale_after_s
        instruments.append({"instrument": instrument, "last_event_ts": ts, "age_s": age, "stale": old})
    stale = [i for i in instruments if i["stale"]]
    if stale:
        listed = ", ".join(f"{i['instrument']} (last event {age_text(i['age_s'])} ago)" for i in stale)
        detail = f"no new events for over {stale_after_s:g} s (QF_API_STALE_AFTER_S): {listed}"
        return {"status": "degraded", "detail": detail, "instruments": instruments}
    if not last and stale_after_s is not None:
        return {"status": "degraded", "detail": "no events in the store yet", "instruments": []}
    return {"status": "ok", "detail": None, "instruments": instruments}


def age_text(seconds: float) -> str:
    """``75 s``, ``12 min``, ``5 h``, ``730 days``: an age as people read it."""
    for unit, size in (("days", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
