"""Serving the app with uvicorn (uvloop and httptools when installed, as uvicorn[standard] installs them)."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from api.settings import ApiSettings


def serve(settings: ApiSettings, access_log: bool = False, log_level: str = "info") -> None:
    """Serve until interrupted. Access logs are off by default: /metrics counts every request."""
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="auto",
        http="auto",
        access_log=access_log,
        log_level=log_level,
        server_header=False,
    )
