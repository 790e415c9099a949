"""``quantumflow api``: serve the query and prediction API. Runs alone too: ``python -m api.cli``."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from api.settings import ApiSettings


def api_command(
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default: $QF_API_PORT, else 8000).")] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: $QF_API_HOST, else 127.0.0.1; 0.0.0.0: all).")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(help="Store URL: sqlite:///PATH or questdb://HOST[:PORT]. Default: $QF_STORE, else data/."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Server processes (default: $QF_API_WORKERS, else one per core, at most 8)."),
    ] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
) -> None:
    """Serve the query and prediction API (books, features, predictions, arbitrage; docs at /docs)."""
    from quantumflow.net import check_port
    from store import open_store

    try:
        settings = ApiSettings.from_env()
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    settings = replace(
        settings,
        port=port or settings.port,
        host=host or settings.host,
        store_url=store or settings.store_url,
        workers=workers or settings.workers,
    )
    # Before serving: a bad URL, a store that cannot be read, a port that cannot be listened on.
    backend = open_store(settings.store_url)
    backend.check(write=False)
    check_port(settings.host, settings.port)
    from api.server import serve

    shown = "localhost" if settings.host == "127.0.0.1" else settings.host
    processes = f", {settings.workers} processes" if settings.workers > 1 else ""
    typer.echo(
        f"QuantumFlow API on http://{shown}:{settings.port}/docs, store {backend.url}{processes} (Ctrl-C stops it)"
    )
    serve(settings, access_log)


if __name__ == "__main__":
    typer.run(api_command)
