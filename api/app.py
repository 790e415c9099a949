"""``create_app(settings)``: the FastAPI application, its routes and its protective middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.context import ApiContext
from api.docs import install_docs
from api.errors import install_error_handlers
from api.latest_answers import LatestAnswers, LatestAnswersPath, answer_builder
from api.limits import BodySizeLimit, RateLimiter
from api.predictor import PredictorHolder
from api.routes.arbitrage import arbitrage_router
from api.routes.backtests import backtests_router
from api.routes.market import market_router
from api.routes.operations import operations_router
from api.routes.predictions import API_KEY_HEADER, predictions_router
from api.routes.volatility import volatility_router
from api.settings import ApiSettings
from api.store_access import StoreGateway
from api.telemetry import MetricsMiddleware, RequestMetrics
from store import open_store

DESCRIPTION = """Query what the QuantumFlow predict flow stored (books, features, predictions, cross-venue
arbitrage) and the backtests saved, and ask the trained ensemble for predictions on books you send.

Times are integers, nanoseconds since the Unix epoch (UTC); `start` and `end` also take ISO 8601
(`2024-08-09T00:00:00Z`; no zone means UTC). Instruments are `exchange:symbol`.
Errors are JSON `{"detail": ...}`. Routes under `/v1` are rate limited per client (429 with Retry-After)."""


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The app for ``settings`` (default: from the environment). Opens no connection until a request comes."""
    settings = settings or ApiSettings.from_env()
    context = ApiContext(
        settings, StoreGateway(open_store(settings.store_url)), PredictorHolder(settings.models_dir), RequestMetrics()
    )

    kept = LatestAnswers(context.store.run, answer_builder(context.horizons), settings.refresh_s or 0.0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await kept.stop()
        context.store.close()

    app = FastAPI(
        title="QuantumFlow API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    app.state.context = context
    app.state.latest_answers = kept
    routers = (
        operations_router,
        market_router,
        predictions_router,
        volatility_router,
        arbitrage_router,
        backtests_router,
    )
    for router in routers:
        app.include_router(router(context))
    install_error_handlers(app)

    # The last added runs first: metrics see every answer, CORS headers reach 429s, limits run before routing
    # and before the kept answers.
    if settings.refresh_s is not None:
        app.add_middleware(LatestAnswersPath, answers=kept)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.rate_limit is not None:
        app.add_middleware(RateLimiter, limit=settings.rate_limit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", API_KEY_HEADER],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware, metrics=context.metrics)
    return app
