"""``quantumflow dashboard ...``: serve the Panel dashboards.

Panel, pandas and the ESG package are imported only when a dashboard starts, so the rest of the
command line stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SAMPLE = "the fictional sample in esg/sample/"
# the options every dashboard is served with
AddressOption = Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 for every interface.")]
OriginsOption = Annotated[
    list[str] | None,
    typer.Option(help="Host[:port] that browsers may connect from when not on localhost; repeatable."),
]
ShowOption = Annotated[bool, typer.Option(help="Open the dashboard in a browser.")]

dashboard_app = typer.Typer(no_args_is_help=True, add_completion=False)


@dashboard_app.callback()
def dashboards() -> None:
    """Serve the Panel dashboards."""  # a callback keeps each dashboard a subcommand


@dashboard_app.command("esg")
def esg_command(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8502,
    companies: Annotated[
        Path | None,
        typer.Option(help="Company records, CSV or Parquet, in the schema of docs/esg.md.", show_default=SAMPLE),
    ] = None,
    holdings: Annotated[
        Path | None,
        typer.Option(
            help="Starting portfolio, CSV or Parquet: `holding` (id or ticker), `weight`.", show_default=SAMPLE
        ),
    ] = None,
    headlines: Annotated[
        Path | None,
        typer.Option(help="News headlines, CSV or JSON Lines: `timestamp`, `headline`, `source`.", show_default=SAMPLE),
    ] = None,
    alerts_db: Annotated[
        Path | None,
        typer.Option(
            help="SQLite file the alerts are stored in.", show_default="$QF_ESG_DB, else $QF_DATA_DIR/esg_alerts.sqlite"
        ),
    ] = None,
    address: AddressOption = "127.0.0.1",
    allow_websocket_origin: OriginsOption = None,
    show: ShowOption = False,
) -> None:
    """ESG screening: scorecards, what-if, portfolio analysis and news alerts (http://localhost:8502 by default)."""
    from dashboards.esg import EsgSettings, build_app, load_universe
    from esg.loader import SAMPLE_COMPANIES, SAMPLE_HEADLINES, SAMPLE_HOLDINGS, HeadlineFile, load_holdings
    from esg.validation import EsgDataError
    from quantumflow.net import check_port

    settings = EsgSettings(
        companies or SAMPLE_COMPANIES, holdings or SAMPLE_HOLDINGS, headlines or SAMPLE_HEADLINES, alerts_db
    )
    try:  # fail here, with the file's problems, rather than in every browser session
        load_universe(settings.companies)
        load_holdings(settings.holdings)
        list(HeadlineFile(settings.headlines))
    except EsgDataError as problem:
        raise typer.BadParameter(str(problem)) from problem
    check_port(address, port)
    _serve(lambda: build_app(settings), "ESG dashboard", "QuantumFlow ESG", address, port, allow_websocket_origin, show)


@dashboard_app.command("live")
def live_command(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8503,
    store: Annotated[
        str | None,
        typer.Option(
            help="The store the flow writes: sqlite:///PATH or questdb://HOST[:PORT].", show_default="QF_STORE"
        ),
    ] = None,
    address: AddressOption = "127.0.0.1",
    allow_websocket_origin: OriginsOption = None,
    show: ShowOption = False,
) -> None:
    """Live trading view of the store: book ladder, depth heatmap, predictions, scores, arbitrage, microstructure
    (http://localhost:8503 by default; settings QF_LIVE_*)."""
    from dashboards.live_settings import LiveSettings
    from quantumflow.net import check_port
    from store import StoreConfigError, open_store

    try:
        settings = LiveSettings.from_env(store)
        url = open_store(settings.store_url).url  # a bad URL fails here; an unreachable store shows a banner
    except (ValueError, StoreConfigError) as problem:
        raise typer.BadParameter(str(problem)) from problem
    check_port(address, port)
    from dashboards.live import build_app

    page = f"Live dashboard of {url}"
    _serve(lambda: build_app(settings), page, "QuantumFlow live", address, port, allow_websocket_origin, show)


def _serve(build, what: str, title: str, address: str, port: int, origins: list[str] | None, show: bool) -> None:
    """Serve the page ``build`` makes for each browser session until Ctrl-C, saying where."""
    import panel as pn

    host = "localhost" if address == "127.0.0.1" else address
    typer.echo(f"{what} on http://{host}:{port}/ (Ctrl-C stops it)")
    pn.serve(
        build, port=port, address=address, websocket_origin=origins or None, show=show, title=title, print_url=False
    )


if __name__ == "__main__":
    dashboard_app()
