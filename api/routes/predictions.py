"""Predictions: those the flow stored, and fresh ones from the trained ensemble for books a client sends."""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.security import APIKeyHeader
from pydantic import StringConstraints

from api.context import ApiContext
from api.errors import documented, invalid
from api.horizons import StoredHorizons, in_horizon_order
from api.routes.common import V1, End, InstrumentPath, Limit, Offset, Start, found, next_offset, time_range
from api.schemas import LatestPredictions, PredictionRows, PredictRequest, PredictResponse
from store import Reader
from store.base import MAX_HORIZONS

HorizonName = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Horizons = Annotated[
    list[HorizonName] | None,
    Query(
        alias="horizon",
        max_length=MAX_HORIZONS,
        description="horizons to return (repeatable; default: all): `10` is 10 best bid/offer changes, `1s` one "
        "second; one the instrument has no predictions of is a 422 naming those it has",
    ),
]
API_KEY_HEADER = "X-API-Key"


def predictions_router(context: ApiContext) -> APIRouter:
    router = APIRouter(prefix=V1, tags=["predictions"])
    store = context.store
    known = context.horizons

    @router.get(
        "/predictions/{instrument:path}/latest", response_model=LatestPredictions, responses=documented(404, 429, 503)
    )
    async def latest_predictions(instrument: InstrumentPath, horizons: Horizons = None) -> dict[str, Any]:
        """The latest prediction of each horizon (empty before the flow has made any for the instrument)."""
        return await store.run(lambda reader: latest_predictions_answer(reader, known, instrument, horizons))

    @router.get("/predictions/{instrument:path}", response_model=PredictionRows, responses=documented(404, 429, 503))
    async def prediction_range(
        instrument: InstrumentPath,
        start: Start = None,
        end: End = None,
        horizons: Horizons = None,
        limit: Limit = 1000,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Stored predictions with start <= ts < end, a page at a time; each gains its label once matured."""
        low, high = time_range(start, end)

        def query(reader: Reader) -> list[dict[str, Any]]:
            rows = reader.prediction_range(instrument, low, high, horizons, limit, offset)
            known.check(reader, instrument, horizons, {row["horizon"] for row in rows})
            return found(reader, instrument, rows)

        rows = await store.run(query)
        return {
            "instrument": instrument,
            "rows": [stored_prediction(row) for row in in_horizon_order(rows)],
            "next_offset": next_offset(offset, limit, len(rows)),
        }

    @router.post(
        "/predict",
        response_model=PredictResponse,
        responses=documented(400, *((401,) if context.settings.api_key else ()), 413, 429, 503),
        dependencies=[Depends(api_key_check(context.settings.api_key))] if context.settings.api_key else [],
    )
    async def predict(request: PredictRequest) -> dict[str, Any]:
        """The ensemble's probabilities for the last of a short sequence of book snapshots, without a flow."""
        snapshots = [
            {"ts": s.ts, "bids": [list(level) for level in s.bids], "asks": [list(level) for level in s.asks]}
            for s in request.snapshots
        ]
        try:
            predictions = await context.predictor.predict(snapshots)
        except ValueError as error:
            raise invalid("body", "snapshots", str(error)) from None
        return {"ts": snapshots[-1]["ts"], "predictions": predictions}

    return router


def latest_predictions_answer(
    reader: Reader, known: StoredHorizons, instrument: str, horizons: list[str] | None
) -> dict[str, Any]:
    """The answer of ``GET /v1/predictions/{instrument}/latest`` (also kept ready by api.latest_answers)."""
    rows = reader.latest_predictions(instrument, horizons)
    known.check(reader, instrument, horizons, {row["horizon"] for row in rows})
    rows = found(reader, instrument, rows)  # in the models' order of horizons, as the store gives them
    return {"instrument": instrument, "predictions": [stored_prediction(row) for row in rows]}


def stored_prediction(row: dict[str, Any]) -> dict[str, Any]:
    """A predictions row as the API shows it: the JSON columns decoded."""
    out = dict(row)
    out["models"] = json.loads(out.pop("model_probs"))
    out["weights"] = json.loads(out.pop("model_weights"))
    return out


def api_key_check(key: str) -> Any:
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="the key set in QF_API_KEY")
    expected = key.encode()

    async def check(given: str | None = Depends(header)) -> None:
        if given is None or not hmac.compare_digest(given.encode(), expected):
            raise HTTPException(
                401, f"missing or wrong API key: send it in the {API_KEY_HEADER} header", {"WWW-Authenticate": "ApiKey"}
            )

    return check
