"""Serving the app with uvicorn (uvloop and httptools when installed, as uvicorn[standard] installs them)."""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.settings import ApiSettings


def serve(settings: ApiSettings, access_log: bool = False, log_level: str = "info") -> None:
    """Serve until interrupted, in ``settings.workers`` processes sharing the port (each with its own store
    readers and kept answers). Access logs are off by default: /metrics counts every request."""
    options = dict(
        host=settings.host,
        port=settings.port,
        loop="auto",
        http="auto",
        access_log=access_log,
        log_level=log_level,
        server_header=False,
    )
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Each worker process builds its app from the environment: what the command line chose goes there.
    os.environ["QF_API_HOST"], os.environ["QF_API_PORT"] = settings.host, str(settings.port)
    if settings.store_url is not None:
        os.environ["QF_STORE"] = settings.store_url
    uvicorn.run("api.server:app_from_env", factory=True, workers=settings.workers, **options)


def app_from_env() -> FastAPI:
    return create_app(ApiSettings.from_env())
