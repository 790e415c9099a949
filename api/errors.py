"""Error answers: JSON ``{"detail": ...}`` everywhere, never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.schemas import ErrorMessage

log = logging.getLogger("quantumflow.api")


def invalid(where: str, name: str, message: str, value: Any = None) -> RequestValidationError:
    """A 422 in FastAPI's own shape, for checks that span several parameters (e.g. start before end)."""
    return RequestValidationError([{"type": "value_error", "loc": (where, name), "msg": message, "input": value}])


def unknown_instrument(instrument: str) -> HTTPException:
    return HTTPException(404, f"unknown instrument {instrument!r}: GET /v1/instruments lists those in the store")


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error answers shaped as ErrorMessage (422 is FastAPI's own)."""
    meaning = {
        400: "a body that cannot be read (not UTF-8 JSON)",
        401: "missing or wrong API key",
        404: "unknown instrument, or nothing stored for it",
        413: "request body too large",
        429: "rate limit exceeded; see Retry-After",
        503: "the store (or the models) cannot answer",
    }
    return {status: {"model": ErrorMessage, "description": meaning[status]} for status in statuses}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own shape without echoing the input, which may be large or not JSON (NaN)
        detail = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500)
